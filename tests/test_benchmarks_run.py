"""Run every asv benchmark body once at a tiny size so the benchmark code never rots."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("scipy")
pytest.importorskip("pykdtree")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_bench"))

from benchmarks import idw as bidw

TINY = {
    bidw.IDW2D: 64,
    bidw.IDW2DDask: 64,
    bidw.IDW2DPeers: 64,
    bidw.IDW3D: 12,
    bidw.IDW3DPeers: 12,
}


def _run_bodies(cls, size):
    bench = cls()
    bench.n_samples = 200
    if cls is bidw.IDW2DDask:
        bench.chunks = 24  # uneven blocks at 65 x 65
    bench.setup(size)
    names = [n for n in dir(bench) if n.startswith(("time_", "peakmem_"))]
    assert names
    for n in names:
        getattr(bench, n)(size)
    return bench


@pytest.mark.parametrize("cls", list(TINY), ids=lambda c: c.__name__)
def test_bodies_run(cls):
    _run_bodies(cls, TINY[cls])


def test_outofcore_is_manual(monkeypatch):
    monkeypatch.delenv(bidw.OUTOFCORE_ENV, raising=False)
    with pytest.raises(NotImplementedError):
        bidw.OutOfCoreZarr().setup(True)


@pytest.mark.parametrize("mask", [True, False])
def test_grid_to_zarr_tiny(tmp_path, mask):
    xr = pytest.importorskip("xarray")
    world = bidw.survey_2d(200)
    like = bidw.grid_2d(world, 64, chunks=24)
    bidw.grid_to_zarr(world.samples, like, str(tmp_path / "m.zarr"), mask=mask)
    back = xr.open_zarr(tmp_path / "m.zarr", consolidated=False)
    assert back["Au"].encoding["chunks"] == (24, 24)
    expect = bidw.idw_xprospect(world.samples, bidw.grid_2d(world, 64))
    for n in expect.data_vars:
        np.testing.assert_array_equal(back[n].values, expect[n].values)


@pytest.mark.parametrize(("ndim", "size"), [(2, 64), (3, 12)])
def test_xprospect_equals_peers(ndim, size):
    if ndim == 2:
        world = bidw.survey_2d(200)
        samples, like = world.samples, bidw.grid_2d(world, size)
    else:
        samples, like = bidw.samples_3d(200), bidw.voxels_3d(size)
    pts, vals, coords, names = bidw.peer_inputs(samples, like)
    ours = bidw.idw_xprospect(samples, like)
    ours = np.stack([ours[n].values for n in names])
    ref = bidw.idw_scipy(pts, vals, coords)
    assert ours.shape == ref.shape == (len(names), *(c.size for c in coords))
    assert np.isfinite(ref).all()
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    np.testing.assert_allclose(bidw.idw_pykdtree(pts, vals, coords), ref, rtol=1e-5)


def test_dask_path_equals_numpy_path():
    world = bidw.survey_2d(200)
    eager = bidw.idw_xprospect(world.samples, bidw.grid_2d(world, 64))
    lazy = bidw.idw_xprospect(world.samples, bidw.grid_2d(world, 64, chunks=(24, 40)))
    for n in eager.data_vars:
        np.testing.assert_array_equal(lazy[n].values, eager[n].values)


def test_peer_takes_coincident_samples_mean():
    pts = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0]])
    vals = np.array([[1.0], [3.0], [100.0]])
    coords = [np.array([0.0]), np.array([0.0, 5.0])]

    def query(q):
        d = np.sqrt(((q[:, None, :] - pts[None]) ** 2).sum(-1))
        return d, np.broadcast_to(np.arange(3), d.shape)

    out = bidw.idw_peer(query, pts, vals, coords)
    assert out[0, 0, 0] == 2.0
    w = 1 / np.array([25.0, 25.0, 125.0])  # (y, x) = (0, 5) to each sample
    assert out[0, 0, 1] == pytest.approx((w * vals[:, 0]).sum() / w.sum())


def test_score_benchmark_bodies_tiny():
    """The score benchmark's peer gives score's map, and its dense-rate pieces run."""
    from benchmarks import score as bscore

    b = bscore.ScoreVsLoop()
    b.lattice = 10  # 20^2 at stride 2: one dask chunk larger than the 18-cell halo
    b.setup(2)
    np.testing.assert_allclose(b.time_score(2), b.time_naive_loop(2), rtol=0, atol=1e-5)
    r = bscore.DenseRate()
    r.size = 40
    r.setup()
    assert r.flops > 0 and r.time_dense().shape == (40, 40)
    assert r.track_gflops() > 0


def test_score_benchmark_multiscale_bodies_tiny():
    """The multiscale dense benchmark: its window loop gives its dense map; its rate runs."""
    from benchmarks import score as bscore

    b = bscore.MultiScaleVsLoop()
    b.chunks, b.kwargs = 13, {"window": 5, "context": 9, "widths": [4, 4]}
    b.setup(30)
    assert b.window == 9
    np.testing.assert_allclose(b.time_dense(30), b.time_window_loop(30), rtol=1e-5, atol=1e-6)
    r = bscore.MultiScaleRate()
    r.size = 40
    r.setup()
    assert r.model.config["name"] == "multiscale_cnn" and r.flops > 0
    assert r.time_dense().shape == (40, 40)


def test_province_baselines_body_runs():
    from benchmarks import harness as bh

    stack, deposits = bh.province(500)
    assert stack.shape == (bh.N_LAYERS, 500, 500) and deposits.sizes["point"] == bh.N_DEPOSITS
    # 50 km a side: 3 x 3 blocks of 20 km for the 5 folds
    b = bh.run(["logistic"], 500)
    assert list(b.table.index) == ["logistic"] and b.table.loc["logistic", "seconds"] > 0
    assert b.table.loc["logistic", "auc"] > 0.7  # the deposits sit on a learnable signal
