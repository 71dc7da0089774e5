"""Patch plans, lazy extraction, NaN/edge policies, augmentation, stitching."""

from __future__ import annotations

import logging

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import xprospect as xp  # noqa: F401  (registers .prospect)
from xprospect._dims import GridGeometry, grid_geometry
from xprospect.exceptions import DataError, GridError
from xprospect.patches import (
    PatchPlan,
    PatchSet,
    extract_patches,
    iter_patches,
    make_patches,
    plan_around_points,
    plan_grid,
    plan_random,
    stitch_patches,
)
from xprospect.patches.extract import read_region
from xprospect.testing import assert_georef_equal, raise_if_dask_computes

CRS = "EPSG:32750"


def make_stack(shape=(40, 50), n_el=3, seed=0, res=10.0):
    rng = np.random.default_rng(seed)
    nd = len(shape)
    coords = {"element": [f"E{i}" for i in range(n_el)]}
    coords["y"] = 6_200_000.0 + res * (shape[-2] - 1 - np.arange(shape[-2]))
    coords["x"] = 500_000.0 + res * np.arange(shape[-1])
    dims = ("element", "y", "x")
    if nd == 3:
        coords["z"] = -200.0 + res * np.arange(shape[0])
        dims = ("element", "z", "y", "x")
    data = rng.normal(size=(n_el, *shape)).astype("float32")
    return xr.DataArray(data, dims=dims, coords=coords, name="stack").rio.write_crs(CRS)


def points_at(stack, idx):
    g = grid_geometry(stack)
    idx = np.asarray(idx)
    c = {d: ("point", g.origin[a] + idx[:, a] * g.step[a]) for a, d in enumerate(g.dims)}
    c["point_id"] = ("point", [f"D{i}" for i in range(len(idx))])
    return xr.Dataset(coords=c).rio.write_crs(CRS)


def numpy_windows(arr, plan, pad_value=0.0):
    """Oracle: pad the whole array and slice every window."""
    pad = max(plan.size) + int(np.abs(plan.origins).max()) + 1
    p = np.pad(arr, [(0, 0)] + [(pad, pad)] * plan.ndim, constant_values=pad_value)
    out = []
    for o in plan.origins:
        sl = tuple(slice(int(a) + pad, int(a) + pad + s) for a, s in zip(o, plan.size, strict=True))
        out.append(p[(slice(None), *sl)])
    return np.stack(out)


GEOM = GridGeometry(("y", "x"), (40, 50), (95.0, 5.0), (-10.0, 10.0))


# ---- plans -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ndim", [2, 3])
def test_plan_around_points_keeps_points_inside(ndim):
    shape = (30, 40, 50)[-ndim:]
    geom = GridGeometry(("z", "y", "x")[-ndim:], shape, (0.0,) * ndim, (1.0,) * ndim)
    rng = np.random.default_rng(1)
    idx = np.stack([rng.integers(0, n, 20) for n in shape], axis=1)
    plan = plan_around_points(geom, idx, size=9, jitter=3, n_per_point=4, edge="pad", seed=2)
    assert plan.n == 80 and plan.origins.shape == (80, ndim)
    pts = np.repeat(idx, 4, axis=0)
    assert np.all((plan.origins <= pts) & (plan.origins + 9 > pts))
    offset = plan.centres - pts
    assert np.abs(offset).max() <= 3 and np.abs(offset).max() > 0
    np.testing.assert_array_equal(plan.groups, np.repeat(np.arange(20), 4))
    again = plan_around_points(geom, idx, size=9, jitter=3, n_per_point=4, edge="pad", seed=2)
    np.testing.assert_array_equal(again.origins, plan.origins)
    centred = plan_around_points(geom, idx, size=9, jitter=0, edge="pad")
    np.testing.assert_array_equal(centred.centres, idx)


def test_plan_edge_policies_counted(caplog):
    idx = np.array([[0, 0], [20, 25], [39, 49]])
    with caplog.at_level(logging.INFO, logger="xprospect.patches"):
        drop = plan_around_points(GEOM, idx, size=8, edge="drop")
    assert drop.n == 1 and drop.report["edge_dropped"] == 2
    assert "cross the grid edge" in caplog.text
    pad = plan_around_points(GEOM, idx, size=8, edge="pad")
    assert pad.n == 3 and pad.report["edge_padded"] == 2 and (~pad.inside()).sum() == 2
    shift = plan_around_points(GEOM, idx, size=8, edge="shift")
    assert shift.n == 3 and shift.report["edge_shifted"] == 2 and shift.inside().all()
    assert np.all((shift.origins <= idx) & (shift.origins + 8 > idx))


def test_plan_random_and_grid():
    ex = np.zeros(GEOM.shape, bool)
    ex[:, :25] = True
    plan = plan_random(GEOM, 30, size=6, exclude=ex, seed=3)
    assert plan.n == 30 and plan.inside().all() and (plan.centres[:, 1] >= 25).all()
    assert (plan.labels == 0).all() and (plan.groups == -1).all()
    np.testing.assert_array_equal(
        plan_random(GEOM, 30, size=6, exclude=ex, seed=3).origins, plan.origins
    )
    g = plan_grid(GEOM, size=8, stride=5)
    assert g.kind == "grid" and tuple(g.origins[0]) == (0, 0)
    assert set(np.unique(g.origins[:, 0])) == set(range(0, 36, 5))
    cover = np.zeros(GEOM.shape, int)
    for i in range(g.n):
        cover[g.slices(i)] += 1
    assert (cover > 0).all()
    gd = plan_grid(GEOM, size=8, stride=5, edge="drop")
    assert gd.inside().all() and gd.origins[:, 0].max() == 30
    sub = g.subset([0, 2])
    assert sub.n == 2 and (sub.origins == g.origins[[0, 2]]).all()
    with pytest.raises(GridError):
        plan_random(GEOM, 10, size=60)


# ---- extraction --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["numpy", "dask", "zarr"])
def test_extract_equals_numpy_slicing(kind, tmp_path):
    stack = make_stack()
    rng = np.random.default_rng(0)
    idx = np.stack([rng.integers(0, 40, 25), rng.integers(0, 50, 25)], axis=1)
    plan = plan_around_points(stack, idx, size=(9, 12), jitter=4, edge="pad", seed=0)
    assert (~plan.inside()).any()
    expect = numpy_windows(stack.values, plan, pad_value=-5.0)
    if kind == "dask":
        stack = stack.chunk({"element": 2, "y": 5, "x": 7})
    elif kind == "zarr":
        stack.to_dataset(name="v").chunk({"y": 5, "x": 7}).to_zarr(tmp_path / "s.zarr")
        stack = xr.open_zarr(tmp_path / "s.zarr")["v"]
        assert stack.chunks is not None
    got = extract_patches(stack, plan, pad_value=-5.0)
    np.testing.assert_array_equal(got, expect)
    # tiny batches (one chunk budget) give the same windows; batches come in chunk order
    seen = np.zeros(plan.n, int)
    for ids, win in iter_patches(stack, plan, pad_value=-5.0, max_bytes=1, batch_size=3):
        assert len(ids) <= 3
        np.testing.assert_array_equal(win, expect[ids])
        seen[ids] += 1
    assert (seen == 1).all()
    np.testing.assert_array_equal(
        extract_patches(stack, plan, idx=[4, 1], pad_value=-5.0), expect[[4, 1]]
    )


def test_extract_3d_dask():
    stack = make_stack(shape=(12, 14, 16), n_el=2)
    plan = plan_grid(stack, size=(4, 5, 6), stride=3)
    expect = numpy_windows(stack.values, plan)
    got = extract_patches(stack.chunk({"z": 5, "y": 7, "x": 5}), plan)
    np.testing.assert_array_equal(got, expect)


@pytest.mark.parametrize("kind", ["numpy", "dask"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_read_region_windows_equal_extract_cell_for_cell(kind, ndim):
    """Windows sliced from the region equal extract_patches' (padding, then the NaN fill,
    then the cast), windows off the grid's edge included; the box is the windows' extent."""
    shape = (40, 50) if ndim == 2 else (12, 14, 16)
    stack = make_stack(shape=shape, n_el=2).astype("float64")
    stack[0, 3, 4] = np.nan
    stack[1, -1, -2] = np.nan
    rng = np.random.default_rng(1)
    idx = np.stack([rng.integers(0, n, 30) for n in shape], axis=1)
    size = (9, 7) if ndim == 2 else (5, 4, 3)
    plan = plan_around_points(stack, idx, size=size, jitter=3, edge="pad", seed=0)
    assert (~plan.inside()).any()
    if kind == "dask":
        stack = stack.chunk(dict.fromkeys(stack.dims[1:], 5))
    for pad, fill in ((np.nan, None), (-5.0, 0.5), (np.nan, -1.0)):
        want = extract_patches(stack, plan, pad_value=pad, fill_value=fill).astype("float32")
        assert np.isnan(want).any() == (fill is None)  # the stack's NaN lie in some window
        region, lo = read_region(stack, plan, pad_value=pad, fill_value=fill)
        assert region.dtype == np.float32
        np.testing.assert_array_equal(lo, plan.origins.min(axis=0))
        np.testing.assert_array_equal(region.shape[1:], plan.ends.max(axis=0) - lo)
        got = np.stack(
            [
                region[(slice(None), *(slice(a, a + s) for a, s in zip(o - lo, size, strict=True)))]
                for o in plan.origins
            ]
        )
        np.testing.assert_array_equal(got, want)  # NaN where both are NaN


def test_read_region_reads_only_the_windows_box():
    """A plan in one corner reads that corner, not the whole stack."""
    stack = make_stack(shape=(60, 60))
    plan = plan_around_points(stack, [[5, 5], [8, 9]], size=5, edge="shift")
    region, lo = read_region(stack, plan)
    np.testing.assert_array_equal(lo, [3, 3])
    assert region.shape == (3, 8, 9)
    np.testing.assert_array_equal(region, stack.values[:, 3:11, 3:12])


def test_extract_dask_reads_only_needed_chunks():
    stack = make_stack(shape=(60, 60)).chunk({"y": 10, "x": 10})
    plan = plan_around_points(stack, [[5, 5]], size=4, edge="shift")
    calls = []

    def tracked(block, block_info=None):
        calls.append(block_info[0]["chunk-location"])
        return block

    wrapped = stack.copy(data=stack.data.map_blocks(tracked, dtype=stack.dtype))
    extract_patches(wrapped, plan)
    assert len(calls) == 1


# ---- stitching ---------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    ny=st.integers(3, 20),
    nx=st.integers(3, 20),
    wy=st.integers(1, 6),
    wx=st.integers(1, 6),
    sy=st.integers(1, 7),
    sx=st.integers(1, 7),
    edge=st.sampled_from(["pad", "drop"]),
    seed=st.integers(0, 1000),
)
def test_stitch_inverts_extract(ny, nx, wy, wx, sy, sx, edge, seed):
    stack = make_stack(shape=(ny, nx), n_el=2, seed=seed)
    plan = plan_grid(stack, size=(wy, wx), stride=(sy, sx), edge=edge)
    if plan.n == 0:
        return
    win = extract_patches(stack, plan, pad_value=np.nan)
    back = stitch_patches(win, plan, stack)
    covered = np.zeros((ny, nx), bool)
    for i in range(plan.n):
        covered[tuple(slice(max(s.start, 0), s.stop) for s in plan.slices(i))] = True
    assert back.dims == ("element", "y", "x")
    np.testing.assert_array_equal(back.values[:, covered], stack.values[:, covered])
    assert np.isnan(back.values[:, ~covered]).all()
    assert back.attrs["uncovered_cells"] == int((~covered).sum())
    assert_georef_equal(back, stack)


def test_stitch_scalar_per_window_is_overlap_mean():
    g = GridGeometry(("y", "x"), (1, 4), (0.0, 0.0), (-1.0, 1.0))
    plan = PatchPlan(g, (1, 2), np.array([[0, 0], [0, 1], [0, 2]]), -1, -1)
    like = xr.DataArray(np.zeros((1, 4)), dims=("y", "x"), coords={"y": [0.0], "x": np.arange(4.0)})
    out = stitch_patches(np.array([1.0, 2.0, 4.0]), plan, like)
    np.testing.assert_allclose(out.values[0], [1.0, 1.5, 3.0, 4.0])


# ---- PatchSet ----------------------------------------------------------------------------------


def test_make_patches_labels_buffer_report(caplog):
    stack = make_stack(shape=(60, 70))
    deposits = points_at(stack, [[10, 10], [30, 40], [59, 69]])
    with caplog.at_level(logging.INFO, logger="xprospect.patches"):
        ps = stack.prospect.patches(
            positives=deposits, negatives=12, size=8, jitter=2, n_per_positive=3, seed=1
        )
    assert isinstance(ps, PatchSet) and len(ps) == 9 + 12
    assert (ps.labels[:9] == 1).all() and (ps.labels[9:] == 0).all()
    np.testing.assert_array_equal(ps.groups[:9], np.repeat([0, 1, 2], 3))
    assert ps.report["positives"]["edge_shifted"] >= 1 and ps.report["buffer"] == 80.0
    assert "patches: 9 positive, 12 negative" in caplog.text
    dep_xy = np.stack([deposits.x.values, deposits.y.values], axis=1)
    neg_xy = ps.xy[ps.labels == 0]
    dist = np.sqrt(((neg_xy[:, None] - dep_xy[None]) ** 2).sum(-1))
    assert dist.min() > 80.0
    x = ps.load()
    assert x.shape == (21, 3, 8, 8) and x.dtype == np.float32
    np.testing.assert_array_equal(x, numpy_windows(stack.values, ps.plan))
    same = make_patches(
        stack, positives=deposits, negatives=12, size=8, jitter=2, n_per_positive=3, seed=1
    )
    np.testing.assert_array_equal(same.plan.origins, ps.plan.origins)
    sub = ps.subset(ps.labels == 1)
    assert len(sub) == 9 and (sub.load() == x[:9]).all()
    pts = ps.to_points()
    assert pts.sizes["point"] == 21 and (pts.label.values == ps.labels).all()


def test_nan_policies_reported():
    stack = make_stack(shape=(40, 40))
    stack[:, :10, :10] = np.nan
    deposits = points_at(stack, [[5, 5], [30, 30]])
    negs = points_at(stack, [[4, 30], [30, 4]])
    kw = dict(positives=deposits, negatives=negs, size=6, jitter=0)
    drop = make_patches(stack, nan="drop", **kw)
    assert len(drop) == 3 and drop.report["positives"]["nan_dropped"] == 1
    assert not np.isnan(drop.load()).any()
    fill = make_patches(stack.chunk({"y": 5, "x": 7}), nan="fill", fill_value=-9.0, **kw)
    assert len(fill) == 4 and fill.report["positives"]["nan_filled"] == 1
    x = fill.load()
    assert not np.isnan(x).any() and (x[0] == -9.0).all()
    keep = make_patches(stack, nan="keep", **kw)
    assert np.isnan(keep.load()[0]).all() and keep.report["positives"]["nan_windows"] is None
    with pytest.raises(DataError):
        make_patches(stack, nan="ignore", **kw)


def test_torch_dataset_augmentation_deterministic():
    torch = pytest.importorskip("torch")
    stack = make_stack(shape=(50, 50))
    deposits = points_at(stack, [[20, 20], [30, 35]])
    ps = make_patches(
        stack, positives=deposits, negatives=4, size=10, jitter=2, n_per_positive=2, crop=8, seed=0
    )
    ds = ps.torch_dataset(augment=True, seed=5)
    x0, y0 = ds[1]
    assert x0.dtype == torch.float32 and tuple(x0.shape) == (3, 8, 8) and y0 == 1
    assert torch.equal(ps.torch_dataset(augment=True, seed=5)[1][0], x0)
    ds.set_epoch(1)
    others = [ds[1][0] for _ in range(1)] + [ps.torch_dataset(seed=6)[1][0]]
    assert not all(torch.equal(o, x0) for o in others)
    # augmentation only rearranges values of the window
    raw = ps.load([1])[0]
    vals = np.sort(x0.numpy().ravel())
    assert np.isin(vals, raw.ravel()).all()
    plain = ps.torch_dataset(augment=False, crop=(6, 6), preload=False)
    np.testing.assert_array_equal(plain[0][0].numpy(), raw_centre(ps.load([0])[0], 6))
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    xb, yb = next(iter(loader))
    assert tuple(xb.shape) == (4, 3, 8, 8) and yb.dtype == torch.int64


def raw_centre(x, c):
    a = (x.shape[1] - c) // 2
    return x[:, a : a + c, a : a + c]


def test_dask_stack_not_computed_at_build():
    stack = make_stack(shape=(40, 40)).chunk({"y": 10, "x": 10})
    deposits = points_at(stack, [[20, 20]])
    negs = points_at(stack, [[5, 30]])
    with raise_if_dask_computes():
        ps = make_patches(stack, positives=deposits, negatives=negs, size=6, nan="keep")
    assert len(ps) == 2 and isinstance(ps.stack.data, da.Array)


# ---- asv benchmark bodies at tiny size ---------------------------------------------------------


def _bench():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_bench"))
    from benchmarks import patches as bpatches

    return bpatches


def test_bench_extract_in_memory_tiny():
    b = _bench()
    bench = b.ExtractInMemory()
    bench.grid, bench.n_windows, bench.size, bench.chunk = 96, 20, 16, 40
    bench.setup()
    for name in ("time_numpy_slicing", "time_extract_numpy_stack", "time_extract_dask_stack"):
        getattr(bench, name)()
    assert bench.track_dask_over_numpy_slicing() > 0
    np.testing.assert_array_equal(
        extract_patches(bench.dask_stack, bench.plan), b.numpy_slicing(bench.arr, bench.plan)
    )


def test_bench_extract_zarr_tiny(monkeypatch):
    b = _bench()
    bench = b.ExtractZarr()
    bench.grid, bench.n_windows, bench.size, bench.chunk, bench.batch = 96, 20, 16, 40, 6
    monkeypatch.delenv("XPROSPECT_BENCH_ZARR_GRID", raising=False)
    path = bench.setup_cache()
    try:
        bench.setup(path)
        total = bench.peakmem_iter_batches(path)
        bench.time_iter_batches(path)
        win = bench.patches.load()
        assert win.shape == (20, 8, 16, 16)
        assert total == pytest.approx(float(win[:, 0, 0, 0].sum()), rel=1e-5)
    finally:
        bench.teardown_cache(path)
