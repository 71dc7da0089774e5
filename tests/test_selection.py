"""Element selection by AUC and Z_AUC (Hanley & McNeil), with optional SVM ranking."""

from __future__ import annotations

import doctest

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.metrics import roc_auc_score

import xprospect as xp
from xprospect._dims import write_crs
from xprospect.evidence import plot_selection, select_elements

CRS = "EPSG:32750"


def _maps(**layers):
    ny, nx = next(iter(layers.values())).shape
    x = 5.0 + 10 * np.arange(nx)
    y = 10.0 * ny - 5.0 - 10 * np.arange(ny)
    ds = xr.Dataset(
        {k: (("y", "x"), np.asarray(v, float)) for k, v in layers.items()}, coords={"y": y, "x": x}
    )
    return write_crs(ds, CRS)


def _pts(x, y, prefix):
    return write_crs(
        xr.Dataset(
            coords={
                "x": ("point", np.asarray(x, float)),
                "y": ("point", np.asarray(y, float)),
                "point_id": ("point", [f"{prefix}{i}" for i in range(len(x))]),
            }
        ),
        CRS,
    )


def test_hand_computed_z_auc():
    # one row of 9 cells; deposits on the cells valued 5, 6, 7, 8, negatives on 1, 2, 3, 4, 9
    # A = 16/20 = 0.8, n1 = 4, n2 = 5. By hand (Hanley & McNeil 1982):
    #   Q1 = 0.8/1.2 = 2/3, Q2 = 2*0.64/1.8 = 32/45, A^2 = 16/25
    #   SE^2 = (0.8*0.2 + 3*(2/3 - 16/25) + 4*(32/45 - 16/25)) / 20 = (118/225) / 20 = 59/2250
    #   SE = 0.16193277, Z = 0.3 / SE = 1.8526198, p (two-sided) = 0.06394
    row = np.array([[5, 6, 7, 8, 1, 2, 3, 4, 9]], dtype=float)
    maps = _maps(Au=row, Cu=-row)
    xs = 5.0 + 10 * np.arange(9)
    dep = _pts(xs[:4], [5.0] * 4, "D")
    neg = _pts(xs[4:], [5.0] * 5, "N")
    t = select_elements(maps, dep, negatives=neg, alpha=0.1)
    au = t.loc["Au"]
    assert au["auc"] == pytest.approx(0.8)
    assert au["se"] == pytest.approx(0.16193277, abs=1e-8)
    assert au["z_auc"] == pytest.approx(1.8526198, abs=1e-6)
    assert au["p_value"] == pytest.approx(0.06394, abs=1e-4)
    assert (au["n_pos"], au["n_neg"]) == (4, 5)
    assert bool(au["selected"])  # |Z| > 1.645 at alpha = 0.1
    assert not select_elements(maps, dep, negatives=neg, alpha=0.01).loc["Au", "selected"]
    cu = t.loc["Cu"]  # the same element mirrored: depleted
    assert cu["auc"] == pytest.approx(0.2) and cu["direction"] == "depleted"
    assert cu["z_auc"] == pytest.approx(-1.8526198, abs=1e-6) and not cu["selected"]
    assert select_elements(maps, dep, negatives=neg, alpha=0.1, depleted=True).loc["Cu", "selected"]
    assert list(t.index) == ["Au", "Cu"]  # sorted by Z_AUC
    assert t.attrs["critical_value"] == pytest.approx(1.6448536, abs=1e-6)


@pytest.fixture(scope="module")
def world_maps():
    world = xp.synthetic.survey(seed=4, n_samples=200, n_deposits=30)
    g = xp.make_grid(world.bounds, resolution=1000.0, crs=world.crs)
    maps = world.truth(g, ["Au", "Ag", "As", "Ni", "Cr"])
    return world, maps.prospect.log10()


def test_world_selection_finds_halo_elements(world_maps):
    world, maps = world_maps
    t = select_elements(maps, world.deposits, negatives=60, seed=0, svm=True)
    assert set(t.index[t["selected"]]) == {"Au", "Ag", "As"}
    assert not t.loc[["Ni", "Cr"], "selected"].any()  # no halo: background only
    assert (np.diff(t["z_auc"].to_numpy()) <= 0).all()
    assert sorted(t["svm_rank"].tolist()) == [1, 2, 3, 4, 5]
    assert t.attrs["n_negatives"] == 60 and t.attrs["deposits_used"] == 30
    # AUC equals scikit-learn's on the same cells
    from xprospect.points import negative_cells, point_cells

    like = maps["Au"]
    valid = np.isfinite(like.values)
    pos = point_cells(world.deposits, like, valid, "deposits")
    neg, _ = negative_cells(like, valid, world.deposits, 60, buffer=None, seed=0)
    vals = like.values.ravel()
    y = np.r_[np.ones(len(pos.flat)), np.zeros(len(neg.flat))]
    s = np.r_[vals[pos.flat], vals[neg.flat]]
    assert t.loc["Au", "auc"] == pytest.approx(roc_auc_score(y, s))


def test_stack_and_accessor_agree_and_default_negatives(world_maps):
    world, maps = world_maps
    a = select_elements(maps, world.deposits, seed=1)
    stack = maps.prospect.stack(["Au", "Ag", "As", "Ni", "Cr"]).chunk({"y": 7, "x": 5})
    b = stack.prospect.select_elements(world.deposits, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["n_negatives"] == a.attrs["deposits_used"]  # balanced by default
    c = maps.prospect.select_elements(world.deposits, seed=1, elements=["Ni", "Au"])
    assert set(c.index) == {"Ni", "Au"}
    pd.testing.assert_frame_equal(a, select_elements(maps, world.deposits, seed=1))


def test_selection_drops_nan_cells_and_bad_input(world_maps, tmp_path):
    world, maps = world_maps
    m = maps.copy()
    m["Au"] = m["Au"].where(m["x"] > 530_000)
    t = select_elements(m, world.deposits, negatives=20, seed=0)
    assert t.attrs["deposits_on_nan"] > 0
    assert t.attrs["deposits_used"] + t.attrs["deposits_on_nan"] == 30
    with pytest.raises(xp.DataError, match="not"):
        select_elements(maps, world.deposits, elements=["Zr"])
    with pytest.raises(xp.DataError, match="alpha"):
        select_elements(maps, world.deposits, alpha=0)
    ax = plot_selection(t)
    path = tmp_path / "sel.png"
    ax.figure.savefig(path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_selection_doctest():
    import xprospect.evidence.selection as mod

    res = doctest.testmod(mod)
    assert res.failed == 0 and res.attempted > 0


@pytest.mark.realdata
def test_katanning_selection_and_au_map(data_dir):
    folder = data_dir / "wa_katanning_stream_sediment_au"
    if not (folder / "area1_sediment_au.csv").is_file():
        pytest.skip("Katanning data not found")
    from xprospect.evaluate import evaluate
    from xprospect.evidence import read_points

    s = xp.read_samples(
        folder / "area1_sediment_au.csv",
        x="X",
        y="Y",
        crs="EPSG:4326",
        to_crs="EPSG:32750",
        duplicates="drop",
    )
    sites = read_points(
        folder / "area1_sediment_au_site.csv",
        x="X",
        y="Y",
        crs="EPSG:4326",
        to_crs="EPSG:32750",
        id="SITE_CODE",
    )
    g = xp.make_grid(like=s, resolution=1000.0, pad=2000.0)
    els = ["Au", "Ag", "As", "Cu", "Hg", "Mo", "Ni", "W"]
    maps = xp.grid_idw(s, like=g, k=8, elements=els).prospect.log10().prospect.zscore()
    t = select_elements(maps, sites, negatives=500, buffer=3000.0, seed=0)
    # measured: Au 0.837 (Z 7.6), Hg 0.805, W 0.786, Ag 0.650 selected; Cu, Ni, As not
    assert t.attrs["deposits_used"] == 32
    assert t.loc["Au", "selected"] and t.loc["Au", "auc"] > 0.75
    assert not t.loc["Ni", "selected"]
    rep = evaluate(maps["Au"], sites, buffer=3000.0)
    assert rep.metrics["roc_auc"] > 0.75  # measured 0.832 (95 % CI 0.744-0.919)
