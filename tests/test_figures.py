"""Every figure the package draws says what it shows (issue 12, part 8).

Each figure is rendered with the Agg backend and its axes inspected: a title, axis labels
with units (map axes: easting and northing in km, the CRS named, km tick labels), and a
legend holding every labelled mark.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xprospect as xp
from xprospect._dims import get_crs, write_crs
from xprospect._figures import map_axis_labels
from xprospect.harness import Benchmark


@pytest.fixture(scope="module")
def world_map():
    world = xp.synthetic.survey(seed=2, n_samples=200, n_deposits=20)
    g = xp.make_grid(world.bounds, resolution=1000.0, crs=world.crs)
    fp = world.footprint(*np.meshgrid(g.x.values, g.y.values))
    m = xr.DataArray(
        fp / fp.max(), dims=("y", "x"), coords={"y": g.y, "x": g.x}, name="prospectivity"
    )
    return world, write_crs(m, world.crs)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _check_axes(ax, *, crs=None):
    """Title, labelled axes, a legend naming every labelled mark; map axes in km with the CRS."""
    assert ax.get_title().strip(), "no title"
    assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), "unlabelled axis"
    legend = ax.get_legend()
    assert legend is not None, f"no legend on {ax.get_title()!r}"
    entries = [t.get_text() for t in legend.get_texts()]
    assert entries and all(e.strip() for e in entries)
    for art in [*ax.lines, *ax.collections]:
        lab = art.get_label()
        if lab and not lab.startswith("_"):
            assert lab in entries, f"{lab!r} missing from the legend {entries}"
    if crs is not None:
        name = get_crs(crs).name if not isinstance(crs, str) else crs
        assert "km" in ax.get_xlabel() and "km" in ax.get_ylabel()
        assert name in ax.get_xlabel()
        ax.figure.canvas.draw()
        for axis in (ax.xaxis, ax.yaxis):
            for loc, tick in zip(axis.get_majorticklocs(), axis.get_ticklabels(), strict=False):
                text = tick.get_text().replace("\N{MINUS SIGN}", "-")
                if text:
                    assert float(text) == pytest.approx(loc / 1000.0), (text, loc)


def test_axis_labels_follow_the_crs():
    assert map_axis_labels("EPSG:32750")[2] == 1.0
    assert map_axis_labels("EPSG:4326")[0].startswith("longitude (°)")
    assert map_axis_labels(None)[2] is None


def test_evaluation_figure(world_map, tmp_path):
    world, m = world_map
    rep = xp.evaluate.evaluate(m, world.deposits, blocks=(6, 6), negatives=200)
    fig = rep.plot()
    map_ax, roc_ax, src_ax = fig.axes[:3]
    _check_axes(map_ax, crs=m)
    entries = [t.get_text() for t in map_ax.get_legend().get_texts()]
    assert "deposits" in entries and "block called prospective" in entries
    colourbar = fig.axes[3]
    assert "unitless" in colourbar.get_ylabel()
    _check_axes(roc_ax)
    _check_axes(src_ax)
    assert "fraction" in roc_ax.get_xlabel() and "fraction" in src_ax.get_ylabel()
    # voxels: the maximum over z, still in km with the CRS
    vox = xp.make_voxels(
        (*world.bounds[:2], 0.0, *world.bounds[2:], 300.0),
        resolution=(100.0, 4000.0, 4000.0),
        crs=world.crs,
    )
    v = xr.DataArray(
        np.random.default_rng(0).random(tuple(vox.sizes[d] for d in "zyx")),
        dims=("z", "y", "x"),
        coords={d: vox[d] for d in "zyx"},
        name="p3",
    )
    ax = xp.evaluate.plot_map(write_crs(v, world.crs))
    assert "max over z" in ax.get_title() and "km" in ax.get_xlabel()


def test_compare_reliability_risk_return_and_selection(world_map):
    world, m = world_map
    fig = xp.evaluate.plot_compare(
        {"truth": m, "noisy": m * 0.5 + 0.1}, world.deposits, negatives=200
    )
    for ax in fig.axes[:2]:
        _check_axes(ax)
        assert len(ax.get_legend().get_texts()) == 3  # two maps and the random ranking
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.2
    fig = xp.evaluate.plot_reliability(y, {"raw": rng.random(300), "other": rng.random(300)})
    _check_axes(fig.axes[0])
    ds = xr.Dataset({"mean": m, "std": m * 0.1 + 0.01})
    fig = xp.evaluate.plot_risk_return(ds, deposits=world.deposits)
    _check_axes(fig.axes[0])
    maps = xr.Dataset({e: m * (i + 1) for i, e in enumerate(["Au", "As", "Cu"])})
    table = xp.evidence.select_elements(maps, world.deposits, negatives=100, seed=0)
    ax = xp.evidence.plot_selection(table)
    _check_axes(ax)
    assert {"selected", "not selected"} <= {t.get_text() for t in ax.get_legend().get_texts()}


def test_benchmark_figure(world_map):
    world, m = world_map
    table = pd.DataFrame(
        {
            "auc": [0.9, 0.6],
            "auc_lower": [0.85, 0.5],
            "auc_upper": [0.95, 0.7],
            "kind": ["baseline", "raw"],
        },
        index=pd.Index(["rf", "Au"], name="method"),
    )
    dep = xr.zeros_like(m, dtype=bool)
    dep[5, 5] = True
    maps = write_crs(xr.Dataset({"rf": m, "Au": m, "deposit": dep}), world.crs)
    result = Benchmark(
        table=table, maps=maps, folds=pd.DataFrame(), training={}, controls=None, settings={}
    )
    fig = result.plot()
    _check_axes(fig.axes[0])
    _check_axes(fig.axes[1], crs=m)


def test_block_model_slices_and_section(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    saved = []
    real = Figure.savefig
    monkeypatch.setattr(
        Figure, "savefig", lambda self, *a, **k: (saved.append(self), real(self, *a, **k))[1]
    )
    crs = "EPSG:32750"
    vox = xp.make_voxels(
        (500_000, 6_400_000, 0, 510_000, 6_410_000, 400),
        resolution=(100.0, 1000.0, 1000.0),
        crs=crs,
    )
    cu = xr.DataArray(
        np.random.default_rng(0).random(tuple(vox.sizes[d] for d in "zyx")),
        dims=("z", "y", "x"),
        coords={d: vox[d] for d in "zyx"},
        name="Cu",
        attrs={"units": "ppm"},
    )
    block = write_crs(cu.to_dataset(), crs)
    xp.io.plot_slices(block, "Cu", elevations=[150.0], path=tmp_path / "s.png")
    ax = saved[-1].axes[0]
    assert ax.get_title().startswith("Cu: z =")
    assert "km" in ax.get_xlabel() and get_crs(block).name in ax.get_xlabel()
    xp.io.plot_section(
        block, "Cu", start=(500_500, 6_400_500), end=(509_500, 6_409_500), path=tmp_path / "x.png"
    )
    ax = saved[-1].axes[0]
    assert ax.get_title() == "Cu (ppm): vertical section"
    assert "distance (km)" in ax.get_xlabel() and get_crs(block).name in ax.get_xlabel()
    assert "metre" in ax.get_ylabel()
