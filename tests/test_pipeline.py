"""The pipeline core: configuration schema, digests, the top-N % choice, vector inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xprospect as xp
from xprospect.pipeline import ConfigError, digest, load_config, steps, validate_config

MINIMAL = {
    "samples": {"path": "s.csv", "crs": "EPSG:32750"},
    "deposits": {"path": "d.csv"},
    "grid": {"resolution": 500},
}


def test_defaults_fill_in_and_types_are_checked():
    cfg = validate_config(MINIMAL)
    assert cfg["grid"]["resolution"] == 500.0 and isinstance(cfg["grid"]["resolution"], float)
    assert cfg["targets"]["top_percent"] == [10.0, 2.0]
    assert cfg["train"]["window_m"] == 6000.0
    with pytest.raises(ConfigError, match=r"\[train\] epochs: expected int"):
        validate_config({**MINIMAL, "train": {"epochs": "ten"}})
    with pytest.raises(ConfigError, match=r"\[train\] validation: expected a share in \[0, 1\)"):
        validate_config({**MINIMAL, "train": {"validation": 1.5}})
    with pytest.raises(ConfigError, match=r"\[colour\]: unknown section"):
        validate_config({**MINIMAL, "colour": {}})


def test_errors_name_the_line_of_the_key(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text(
        '# comment\n[samples]\npath = "s.csv"\ncrs = "EPSG:32750"\n\n[deposits]\n'
        'path = "d.csv"\n\n[grid]\nresolution = 500\n\n[train]\n# epochs = 3\nepochs = 0\n'
    )
    with pytest.raises(ConfigError, match=rf"{p}, line 14: \[train\] epochs: expected > 0"):
        load_config(p)
    p.write_text("[grid\nresolution = 5\n")
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 1"):
        load_config(p)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_digest_follows_content_not_time(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    (a / "x.bin").write_bytes(b"1234")
    first = digest(a)
    (a / "x.bin").write_bytes(b"1234")
    assert digest(a) == first
    (a / "x.bin").write_bytes(b"1235")
    assert digest(a) != first
    assert digest(tmp_path / "none") == "missing"


def test_top_percent_threshold_and_targets():
    grid = xp.make_grid((0, 0, 1000, 1000), resolution=10, crs="EPSG:32750")
    values = np.arange(10_000, dtype="float64").reshape(100, 100)
    m = xr.DataArray(values, coords={"y": grid.y, "x": grid.x}, dims=("y", "x"), name="p")
    m = m.rio.write_crs("EPSG:32750")
    thr = steps.top_threshold(m, 10)
    assert np.mean(values >= thr) == pytest.approx(0.10, abs=1e-3)
    t = steps.make_targets(m, top_percent=[10, 2])
    cells = t.table.groupby("level")["n_cells"].sum()
    assert cells["top 10 %"] == 1000 and cells["top 2 %"] == 200
    with pytest.raises(xp.XProspectError, match=r"top percent must be in \(0, 100\]"):
        steps.make_targets(m, top_percent=[150])


def test_significant_digits():
    assert steps.significant(0.876543) == "0.877"
    assert steps.significant(float("nan")) == "n/a"


def test_deposits_from_a_geopackage_match_the_csv(tmp_path):
    gpd = pytest.importorskip("geopandas")
    table = pd.DataFrame({"X": [117.9, 118.0, 118.1], "Y": [-33.5, -33.4, -33.3], "n": [1, 2, 3]})
    table.to_csv(tmp_path / "d.csv", index=False)
    gdf = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(table.X, table.Y), crs=4326)
    gdf.to_file(tmp_path / "d.gpkg", driver="GPKG")
    a = steps.read_deposits(tmp_path / "d.csv", x="X", y="Y", crs="EPSG:4326", to_crs="EPSG:28350")
    b = steps.read_deposits(tmp_path / "d.gpkg", to_crs="EPSG:28350")
    np.testing.assert_allclose(a["x"].values, b["x"].values)
    np.testing.assert_allclose(a["y"].values, b["y"].values)
    assert b.rio.crs.to_epsg() == 28350


def test_samples_from_a_shapefile_match_the_csv(tmp_path):
    gpd = pytest.importorskip("geopandas")
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "X": rng.uniform(500e3, 510e3, 30),
            "Y": rng.uniform(6.2e6, 6.21e6, 30),
            "Au_ppb": rng.lognormal(0, 1, 30),
            "As_ppm": rng.lognormal(1, 1, 30),
        }
    )
    table.to_csv(tmp_path / "s.csv", index=False)
    gdf = gpd.GeoDataFrame(
        table[["Au_ppb", "As_ppm"]], geometry=gpd.points_from_xy(table.X, table.Y), crs=32750
    )
    gdf.to_file(tmp_path / "s.shp")
    a = steps.read_survey(tmp_path / "s.csv", x="X", y="Y", crs="EPSG:32750")
    b = steps.read_survey(tmp_path / "s.shp")
    assert b.rio.crs.to_epsg() == 32750 and list(b.data_vars) == list(a.data_vars)
    for v in ("x", "y", "Au", "As"):
        np.testing.assert_allclose(a[v].values, b[v].values)


def test_every_offered_ingest_policy_is_one_the_reader_takes(tmp_path):
    """The configuration and ``xprospect grid`` offered ``duplicates = "first"`` (and bdl
    "zero"/"missing"), which read_samples refuses only when the run reaches the grid."""
    from xprospect.cli import build_parser
    from xprospect.pipeline import SCHEMA, steps

    pd.DataFrame(
        {
            "x": [500000.0, 500000.0, 501000.0],
            "y": [6.2e6, 6.2e6, 6.2e6],
            "Au_ppb": ["<1", "<1", "12"],
            "Cu_ppm": [3.0, 3.0, 35.0],
        }
    ).to_csv(tmp_path / "s.csv", index=False)
    for policy in SCHEMA["samples"]["duplicates"].choices:
        if policy == "error":  # refuses a repeated location, naming its rows
            with pytest.raises(xp.DataError, match="row 2 repeats row 1"):
                steps.read_survey(tmp_path / "s.csv", crs="EPSG:32750", duplicates=policy)
            continue
        got = steps.read_survey(tmp_path / "s.csv", crs="EPSG:32750", duplicates=policy)
        assert got.sizes["sample"] == (3 if policy == "keep" else 2), policy
    for policy in SCHEMA["samples"]["bdl"].choices:
        got = steps.read_survey(tmp_path / "s.csv", crs="EPSG:32750", bdl=policy)
        assert float(got["Au"].max()) == 12.0
    grid = next(a for a in build_parser()._actions if a.dest == "command").choices["grid"]
    dup = next(a for a in grid._actions if a.dest == "duplicates")
    assert set(dup.choices) == set(SCHEMA["samples"]["duplicates"].choices)
    with pytest.raises(ConfigError, match=r"\[samples\] bdl: expected one of"):
        validate_config({**MINIMAL, "samples": {**MINIMAL["samples"], "bdl": "zero"}})


def test_a_window_too_small_for_the_model_is_named_in_metres(world_maps, world):
    """The example's 6000 m window on a 1000 m grid is 6 cells: say so, in metres."""
    window = steps.cells_from_metres(6000.0, world_maps, least=5)
    assert window == 6
    with pytest.raises(xp.DataError, match=r"6 cells \(6000 m at 1000 m cells\).*9000 m"):
        steps.train_model(world_maps, world.deposits, ["Au", "As"], window=window, epochs=1)


def test_a_geopackage_in_another_crs_is_reprojected_to_the_map(tmp_path):
    """Deposits kept in a lon/lat GeoPackage against maps in MGA: the command passed the
    map's CRS as the file's, and the file was refused for disagreeing with it."""
    import argparse

    gpd = pytest.importorskip("geopandas")
    from xprospect.cli._common import deposits_from

    table = pd.DataFrame({"X": [117.9, 118.0, 118.1], "Y": [-33.5, -33.4, -33.3]})
    gdf = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(table.X, table.Y), crs=4326)
    gdf.to_file(tmp_path / "d.gpkg", driver="GPKG")
    want = steps.read_deposits(tmp_path / "d.gpkg", to_crs="EPSG:28350")
    like = xr.DataArray(
        np.zeros((2, 2)), dims=("y", "x"), coords={"y": [6.3e6, 6.29e6], "x": [4e5, 4.1e5]}
    ).rio.write_crs(28350)
    args = argparse.Namespace(
        deposits=str(tmp_path / "d.gpkg"),
        deposits_x="x",
        deposits_y="y",
        deposits_crs=None,
        deposits_query=None,
    )
    got = deposits_from(args, like)
    assert got.rio.crs.to_epsg() == 28350
    np.testing.assert_allclose(got["x"].values, want["x"].values)
    # the pipeline's fallback (the survey's CRS) does not override the file's own either
    got = steps.read_deposits(tmp_path / "d.gpkg", to_crs="EPSG:28350", default_crs="EPSG:32750")
    np.testing.assert_allclose(got["y"].values, want["y"].values)
    # a CRS the user states must still agree with the file's
    with pytest.raises(xp.CRSError):
        deposits_from(argparse.Namespace(**{**vars(args), "deposits_crs": "EPSG:32750"}), like)
    # a table without crs= takes the map's
    table.assign(X=want["x"].values, Y=want["y"].values).to_csv(tmp_path / "d.csv", index=False)
    args = argparse.Namespace(
        **{**vars(args), "deposits": str(tmp_path / "d.csv"), "deposits_x": "X", "deposits_y": "Y"}
    )
    np.testing.assert_allclose(deposits_from(args, like)["x"].values, want["x"].values)


def test_gridding_lon_lat_samples_in_metres_is_refused_with_the_utm_zone():
    """--crs EPSG:4326 without --to-crs gridded 500 'metres' as 500 degrees: 5 x 5 cells."""
    samples = xp.read_samples(
        pd.DataFrame(
            {"x": [117.9, 118.0, 118.1], "y": [-33.5, -33.4, -33.3], "Au_ppb": [1.0, 2.0, 3.0]}
        ),
        x="x",
        y="y",
        crs="EPSG:4326",
    )
    with pytest.raises(xp.DataError, match=r"degrees.*to_crs \(--to-crs\), e.g. EPSG:32750"):
        steps.grid_samples(samples, resolution=500.0)
