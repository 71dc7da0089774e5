"""Every xprospect transform's output chains into rioxarray (issue 12, part 4).

rioxarray gives a meaning to some attribute names (``transform`` is read as the affine,
``_FillValue``/``nodata`` as the fill, ``grid_mapping`` as the CRS link): an xprospect
transform must not write them with another meaning.
"""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

import xprospect as xp
from xprospect.preprocess import HISTORY_ATTR, transform_history

MAPS = ["Au", "Cu", "As", "Zn"]


@pytest.fixture(scope="module")
def maps(world_maps) -> xr.Dataset:
    """Strictly positive maps (compositional transforms take logs)."""
    return world_maps[MAPS].clip(min=1e-3)


@pytest.fixture(scope="module")
def outputs(maps) -> dict[str, xr.DataArray]:
    """One output of each transform, computed once for the module."""
    au = maps["Au"]
    stack = maps.prospect.stack(MAPS)
    fa_scores, _ = xp.preprocess.factor_analysis(maps, elements=MAPS, n_factors=2, seed=0)
    return {
        "log10": xp.preprocess.log10(maps)["Au"],
        "clr": xp.preprocess.clr(maps)["Au"],
        "ilr": xp.preprocess.ilr(maps)["ilr1"],
        "zscore": xp.preprocess.zscore(xp.preprocess.log10(maps))["Au"],
        "robust": xp.preprocess.robust_scale(maps)["Au"],
        "minmax": xp.preprocess.minmax_scale(au),
        "balance": xp.preprocess.balance(maps, ["Au", "Cu"], ["Zn"]),
        "halo_ratio": xp.preprocess.halo_ratio(maps, ["As"], ["Zn"]),
        "factor_scores": fa_scores.isel(factor=0),
        "fractal_class": xp.preprocess.classify_fractal(au, xp.preprocess.fractal_thresholds(au)),
        "stack": stack.isel(element=0),
    }


@pytest.mark.parametrize(
    "name",
    [
        "log10",
        "clr",
        "ilr",
        "zscore",
        "robust",
        "minmax",
        "balance",
        "halo_ratio",
        "factor_scores",
        "fractal_class",
        "stack",
    ],
)
def test_rio_chains_on_every_transform(outputs, name):
    out = outputs[name]
    assert "transform" not in out.attrs, out.attrs
    assert out.rio.crs is not None
    x0, y0, x1, y1 = out.rio.bounds()
    box = out.rio.clip_box(x0, y0, (x0 + x1) / 2, (y0 + y1) / 2)
    assert 0 < box.sizes["x"] < out.sizes["x"] and 0 < box.sizes["y"] < out.sizes["y"]
    with_nodata = out.rio.write_nodata(-1 if out.dtype.kind in "iu" else np.nan)
    assert with_nodata.rio.nodata is not None or np.isnan(with_nodata.rio.encoded_nodata)
    rep = out.rio.reproject("EPSG:4326")
    assert rep.rio.crs.to_epsg() == 4326 and rep.sizes["x"] > 1


def test_history_attr_and_legacy_name(maps):
    out = xp.preprocess.zscore(xp.preprocess.log10(maps))["Au"]
    assert out.attrs[HISTORY_ATTR] == "log10, zscore"
    old = maps["Au"].assign_attrs(transform="log10")  # a map written by xprospect <= 0.x
    again = xp.preprocess.zscore(old)
    assert again.attrs[HISTORY_ATTR] == "log10, zscore" and "transform" not in again.attrs
    assert transform_history(old.attrs) == "log10"


def test_points_with_a_name_column_stay_rio_safe(tmp_path):
    """A deposit list with a ``name`` column broke rioxarray (``ds.name`` is the variable)."""
    import geopandas
    import pandas as pd

    world = xp.synthetic.survey(seed=0, n_samples=100, n_deposits=4)
    dep = world.deposits
    names = [f"Mine {i}" for i in range(dep["x"].size)]
    table = {"x": dep["x"].values, "y": dep["y"].values, "name": names}
    pd.DataFrame(table).to_csv(tmp_path / "deposits.csv", index=False)
    gdf = geopandas.GeoDataFrame(
        {"name": names}, geometry=geopandas.points_from_xy(table["x"], table["y"]), crs=world.crs
    )
    gdf.to_file(tmp_path / "deposits.gpkg", engine="pyogrio")
    for source in (tmp_path / "deposits.csv", tmp_path / "deposits.gpkg", gdf):
        kw = (
            {"crs": world.crs}
            if isinstance(source, type(tmp_path)) and source.suffix == ".csv"
            else {}
        )
        pts = xp.read_points(source, **kw)
        assert "name" not in pts.variables and pts["point_name"].values.tolist() == names
        assert pts.rio.crs.to_epsg() == xp._dims.get_crs(world.deposits).to_epsg()
        assert pts.rio.write_crs("EPSG:4326").rio.crs.to_epsg() == 4326
    # the package's own CRS helpers survive such a variable on any Dataset
    raw = xr.Dataset(
        {"name": ("point", names)}, coords={"x": ("point", table["x"]), "y": ("point", table["y"])}
    )
    assert xp._dims.get_crs(raw) is None
    written = xp._dims.write_crs(raw, world.crs)
    assert "name" in written and xp._dims.get_crs(written).equals(xp._dims.get_crs(dep))
    # and the evaluation reads such deposits
    grid = xp.make_grid(world.bounds, resolution=2000.0, crs=world.crs)
    m = xr.DataArray(
        np.random.default_rng(0).random(grid["mask"].shape),
        dims=("y", "x"),
        coords={"y": grid.y, "x": grid.x},
        name="score",
    )
    m = xp._dims.write_crs(m, world.crs)
    assert xp.evaluate.targets(m, deposits=written).table["n_deposits"].sum() >= 0
    with pytest.raises(xp.DataError, match="point_name"):
        xp.points.make_points([0.0], [0.0], data={"name": ["a"], "point_name": ["b"]})


def test_scores_chain_into_rio_without_a_false_nodata(maps):
    """A score's attributes give rioxarray no nodata: its lowest cell stays a value.

    ``fill_value`` (the fill of NaN inputs) was read by rioxarray as the map's nodata, so
    ``minmax`` of a score had its lowest cell (0.0) masked and a reprojection filled with 0.
    """
    torch = pytest.importorskip("torch")
    stack = maps.prospect.stack(MAPS)
    net = xp.models.SmallCNN(len(MAPS), window=9, widths=(4, 4, 4, 4), seed=0).eval()
    gmm = xp.baselines.GaussianMixtureDetector(n_components=2, seed=0).fit(stack)
    with torch.no_grad():
        scored = {
            "cnn": stack.prospect.score(net, device="cpu", allow_no_card=True),
            "gmm": stack.prospect.score(gmm),
        }
    for name, s in scored.items():
        for out in (s, s.prospect.minmax()):
            assert not set(out.attrs) & {"fill_value", "nodata", "missing_value", "transform"}
            assert out.rio.nodata is None or np.isnan(out.rio.nodata), (name, out.attrs)
            rep = out.rio.reproject("EPSG:4326")
            assert rep.rio.crs.to_epsg() == 4326
            assert np.isfinite(rep.values).any(), name
            assert rep.rio.nodata is None or np.isnan(rep.rio.nodata), name
        low = s.prospect.minmax()
        box = low.rio.clip_box(*low.rio.bounds())
        assert int((box == 0).sum()) == 1, name  # the lowest cell is a value, not nodata
