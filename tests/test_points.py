"""Points on grids: the one on-grid test, distances, buffers, negatives and cell lookups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xprospect as xp
from xprospect._dims import write_crs
from xprospect.points import (
    CellPoints,
    as_points,
    cells_near_points,
    cells_to_points,
    default_buffer,
    distance_to_points,
    make_points,
    negative_cells,
    point_cells,
    point_coords,
    points_to_index,
    rasterize_points,
    sample_negatives,
)

CRS = "EPSG:32750"


def _grid(
    ny: int = 2, nx: int = 3, step: float = 10.0, nz: int | None = None, chunks: dict | None = None
) -> xr.DataArray:
    """A (y, x) or (z, y, x) grid of cell centres 5, 15, ...; y descending."""
    y = 5.0 + step * np.arange(ny)[::-1]
    x = 5.0 + step * np.arange(nx)
    coords = {"y": y, "x": x}
    shape: tuple[int, ...] = (ny, nx)
    dims: tuple[str, ...] = ("y", "x")
    if nz is not None:
        coords["z"] = 5.0 + step * np.arange(nz)
        shape, dims = (nz, *shape), ("z", *dims)
    da = xr.DataArray(
        np.arange(np.prod(shape), dtype="float64").reshape(shape), dims=dims, coords=coords
    )
    if chunks:
        da = da.chunk(chunks)
    return write_crs(da, CRS)


def _pts(x, y, z=None) -> xr.Dataset:
    return make_points(
        np.asarray(x, float),
        np.asarray(y, float),
        None if z is None else np.asarray(z, float),
        crs=CRS,
    )


@pytest.fixture(scope="module")
def grid_stack(world):
    g = xp.make_grid(like=world.samples, resolution=1000.0, chunks=(5, 7))
    maps = world.samples.prospect.idw(like=g, k=8)
    return g, maps.prospect.stack(["Au", "Cu", "As"])


# ---------------------------------------------------------------- building points


def test_as_points_forms_agree():
    arr = np.array([[5.0, 15.0], [25.0, 5.0]])
    a = as_points(arr, crs=CRS)
    b = as_points(pd.DataFrame({"x": arr[:, 0], "y": arr[:, 1], "kind": ["a", "b"]}), crs=CRS)
    c = as_points(a.rename(point="site").drop_vars("point_id"))
    for p in (a, b, c):
        np.testing.assert_array_equal(p.x.values, arr[:, 0])
        assert list(p.point_id.values) == ["P0", "P1"] and p.rio.crs.to_epsg() == 32750
    assert list(b["kind"].values) == ["a", "b"]
    # a table or array without a CRS takes the grid's; without either it is refused
    assert as_points(arr, like=_grid()).rio.crs.to_epsg() == 32750
    with pytest.raises(xp.DataError, match="crs="):
        as_points(arr)
    with pytest.raises(xp.DataError, match=r"\(n, 2\)"):
        as_points(np.zeros((3, 4)), crs=CRS)
    with pytest.raises(xp.DataError, match="Dataset, DataFrame"):
        as_points([1, 2])
    with pytest.raises(xp.DataError, match=r"coordinate 'x'.*row 1"):
        make_points([1.0, np.nan], [2.0, 3.0], crs=CRS)


def test_as_points_from_world(world):
    pts = as_points(world.deposits)
    assert pts.sizes["point"] == world.deposits.sizes["deposit"]
    assert list(pts.point_id.values) == list(world.deposits.deposit_id.values)
    assert pts.rio.crs == world.samples.rio.crs


def test_crs_is_checked_against_the_grid():
    pts = make_points([5.0], [5.0], crs="EPSG:4326")
    with pytest.raises(xp.CRSError, match="EPSG:4326"):
        points_to_index(pts, _grid())
    with pytest.raises(xp.CRSError):
        distance_to_points(pts, _grid())


def test_point_coords_need_z_on_voxels():
    with pytest.raises(xp.DataError, match="no 'z' coordinate"):
        point_coords(_pts([5], [5]), _grid(nz=2))
    np.testing.assert_array_equal(
        point_coords(_pts([5], [15], [25]), _grid(nz=3)), [[25.0, 15.0, 5.0]]
    )


# ---------------------------------------------------------------- the on-grid test


def test_index_edges_and_half_way_rule():
    g = _grid()  # x centres 5, 15, 25 (edges 0..30); y centres 15, 5 (edges 20..0)
    # the boundary between two cells belongs to the later one in index order, so the
    # first cell's outer edge is on the grid and the last cell's is not (y runs downwards)
    x = [0.0, 29.999, 30.0, -0.001, 10.0, 5.0, 5.0, 5.0]
    y = [5.0, 5.0, 5.0, 5.0, 5.0, 20.0, 0.001, 0.0]
    idx, inside = points_to_index(_pts(x, y), g)
    assert inside.tolist() == [True, True, False, False, True, True, True, False]
    assert idx[inside].tolist() == [[1, 0], [1, 2], [1, 1], [0, 0], [1, 0]]
    with pytest.raises(xp.GridError, match="3 of 8 points lie outside the grid"):
        points_to_index(_pts(x, y), g, outside="raise")
    with pytest.raises(xp.DataError, match="outside="):
        points_to_index(_pts(x, y), g, outside="drop")


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_zero_step_axis_holds_every_point(axis):
    # a single-cell axis has no spacing to read: every point falls in that cell along it
    sizes = {"x": 3, "y": 2, "z": 2}
    sizes[axis] = 1
    g = _grid(ny=sizes["y"], nx=sizes["x"], nz=sizes["z"])
    far = {"x": [5.0, 5.0], "y": [5.0, 5.0], "z": [5.0, 5.0]}
    far[axis] = [5.0, 1e6]
    idx, inside = points_to_index(_pts(far["x"], far["y"], far["z"]), g)
    assert inside.all() and np.all(idx[:, g.dims.index(axis)] == 0)
    assert np.isfinite(distance_to_points(_pts(far["x"], far["y"], far["z"]), g).values).all()


def test_index_on_world(world, grid_stack):
    g, stack = grid_stack
    pts = as_points(world.deposits)
    idx, inside = points_to_index(pts, g)
    assert inside.all()
    ys, xs = g.y.values, g.x.values
    for (r, c), x, y in zip(idx, pts.x.values, pts.y.values, strict=True):
        assert abs(xs[c] - x) <= 500 and abs(ys[r] - y) <= 500
    r = rasterize_points(pts, stack)
    assert int(r.sum()) == len(idx) and r.dims == ("y", "x") and r.attrs["outside"] == 0
    far = pts.assign_coords(x=pts.x + 1e6)
    with pytest.raises(xp.GridError, match="outside the grid"):
        points_to_index(far, g, outside="raise")
    assert not points_to_index(far, g)[1].any()
    assert rasterize_points(far, g).attrs["outside"] == pts.sizes["point"]


def test_rasterize_counts_with_multiplicity_3d():
    g = _grid(nz=2)
    r = rasterize_points(_pts([5, 5, 25, 99], [5, 5, 15, 5], [15, 15, 5, 5]), g)
    assert r.dims == ("z", "y", "x") and int(r[1, 1, 0]) == 2 and int(r[0, 0, 2]) == 1
    assert r.attrs["outside"] == 1 and r.rio.crs.to_epsg() == 32750


# ---------------------------------------------------------------- distance


@pytest.mark.parametrize("chunks", [None, {"y": 1, "x": 2}])
def test_distance_matches_brute_force_2d_3d(chunks):
    rng = np.random.default_rng(0)
    for g in (
        _grid(ny=5, nx=7, chunks=chunks),
        _grid(ny=5, nx=7, nz=3, chunks=None if chunks is None else {**chunks, "z": 2}),
    ):
        xyz = rng.uniform(0, 60, size=(6, 3))
        pts = _pts(xyz[:, 0], xyz[:, 1], xyz[:, 2] if "z" in g.dims else None)
        d = distance_to_points(pts, g)
        assert (d.chunks is not None) == (chunks is not None)
        cells = np.stack(
            [c.ravel() for c in np.meshgrid(*[g[k].values for k in g.dims], indexing="ij")], axis=1
        )
        ref = np.sqrt(((cells[:, None, :] - point_coords(pts, g)[None]) ** 2).sum(-1)).min(1)
        np.testing.assert_allclose(d.values.ravel(), ref, rtol=1e-12)
        assert d.dims == g.dims and d.rio.crs.to_epsg() == 32750


def test_distance_lazy_on_the_stack_chunks(world, grid_stack):
    _, stack = grid_stack
    pts = as_points(world.deposits)
    d = distance_to_points(pts, stack)
    assert d.chunks is not None
    yy, xx = np.meshgrid(stack.y.values, stack.x.values, indexing="ij")
    ref = np.min(np.hypot(xx[..., None] - pts.x.values, yy[..., None] - pts.y.values), axis=-1)
    np.testing.assert_allclose(d.values, ref, rtol=1e-12)


def test_distance_without_points_is_infinite():
    d = distance_to_points(_pts([], []), _grid())
    assert np.isinf(d.values).all()


# ---------------------------------------------------------------- buffers and negatives


def test_default_buffer_is_the_window_edge():
    g = _grid()
    assert default_buffer(g) == 10.0
    assert default_buffer(g, window=8) == 80.0
    assert default_buffer(g, window=(4, 6)) == 60.0
    aniso = g.assign_coords(x=g.x * 3.0)  # 30-unit columns: the coarsest axis decides
    assert default_buffer(aniso) == 30.0
    assert default_buffer(_grid(ny=1, nx=1)) == 0.0
    with pytest.raises(xp.DataError, match="window"):
        default_buffer(g, window=0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_default_buffer_keeps_the_deposit_out_of_every_negative(ndim):
    # a point anywhere in a cell: every cell (or window) farther than the default buffer
    # from it never holds it
    rng = np.random.default_rng(1)
    g = _grid(ny=9, nx=9, nz=9 if ndim == 3 else None)
    for window in (1, 3):
        buf = default_buffer(g, window=window)
        xyz = rng.uniform(20, 70, size=(20, 3))
        for p in xyz:
            pts = _pts([p[0]], [p[1]], [p[2]] if ndim == 3 else None)
            d = distance_to_points(pts, g).values
            (idx,), _ = points_to_index(pts, g)
            centres = np.argwhere(d > buf)
            assert not (np.abs(centres - idx).max(axis=1) <= window // 2).any()


def test_negatives_outside_buffer_and_seeded(world, grid_stack):
    _, stack = grid_stack
    pts = as_points(world.deposits)
    a = sample_negatives(stack, pts, 40, buffer=4000.0, seed=3)
    b = sample_negatives(stack, pts, 40, buffer=4000.0, seed=3)
    c = sample_negatives(stack, pts, 40, buffer=4000.0, seed=4)
    assert a.identical(b) and not np.array_equal(a.x.values, c.x.values)
    d = np.min(np.hypot(a.x.values[:, None] - pts.x.values, a.y.values[:, None] - pts.y.values), 1)
    assert np.all(d > 4000.0)
    assert a.attrs["buffer"] == 4000.0 and a.attrs["n"] == 40 and a.attrs["candidates"] > 40
    assert sample_negatives(stack, pts, 5).attrs["buffer"] == default_buffer(stack)
    with pytest.raises(xp.DataError, match="farther than buffer"):
        sample_negatives(stack, pts, 40, buffer=1e6, seed=0)
    with pytest.raises(xp.DataError, match="buffer must be"):
        sample_negatives(stack, pts, 4, buffer=-1.0)


def test_negatives_respect_nan_cells_and_masks():
    g = _grid(ny=4, nx=4)
    stack = g.expand_dims(element=["Au"]).copy()
    stack[0, 0, :] = np.nan
    mask = np.ones((4, 4), bool)
    mask[:, 0] = False
    neg = sample_negatives(stack, _pts([35.0], [5.0]), 6, buffer=0.0, mask=mask)
    idx, inside = points_to_index(neg, g)
    assert inside.all() and (idx[:, 0] != 0).all() and (idx[:, 1] != 0).all()
    with pytest.raises(xp.DataError, match="mask has shape"):
        sample_negatives(stack, _pts([35.0], [5.0]), 1, buffer=0.0, mask=mask[:2])


# ---------------------------------------------------------------- cell lookups


def test_point_cells_drop_and_count():
    vals = np.array([[8, 7, 6, 5], [4, 3, np.nan, 1]], dtype=float)
    g = _grid(ny=2, nx=4)
    dep = _pts([15, 5, 5, 25, 99], [15, 5, 5, 5, 5])  # (0,1), (1,0) twice, NaN cell, outside
    cells = point_cells(dep, g, np.isfinite(vals), "deposits")
    assert cells.flat.tolist() == [1, 4, 4] and cells.ids == ["P0", "P1", "P2"]
    assert cells.info("deposits") == {
        "deposits_given": 5,
        "deposits_used": 3,
        "deposits_outside_grid": 1,
        "deposits_on_nan": 1,
    }
    with pytest.raises(xp.DataError, match="none of the 1 deposits"):
        point_cells(_pts([25], [5]), g, np.isfinite(vals), "deposits")
    with pytest.raises(xp.DataError, match="holds no points"):
        point_cells(_pts([], []), g)
    assert len(point_cells(_pts([], []), g, require=False).flat) == 0


def test_cells_near_points_and_back_to_points():
    g = _grid(ny=3, nx=3)
    near = cells_near_points(_pts([15.0], [15.0]), g, 10.0)
    assert near.tolist() == [1, 3, 4, 5, 7]  # the centre cell and its 4 edge neighbours
    assert cells_near_points(_pts([15.0], [15.0]), g, 0.0).tolist() == [4]
    back = cells_to_points(near, g, "L")
    assert list(back.point_id.values[:2]) == ["L0", "L1"]
    assert point_cells(back, g).flat.tolist() == near.tolist()


def test_negative_cells_three_ways():
    g = _grid(ny=4, nx=4)
    valid = np.ones((4, 4), bool)
    valid[3, 3] = False
    dep = _pts([5.0], [35.0])  # cell (0, 0)
    allc, rec = negative_cells(g, valid, dep, None)
    assert rec == {"negatives": "all cells outside buffer", "buffer": 10.0, "n_negatives": 12}
    assert isinstance(allc, CellPoints) and 0 not in allc.flat and 15 not in allc.flat
    drawn, rec = negative_cells(g, valid, dep, 5, seed=2)
    assert rec["negatives"] == "sampled" and len(drawn.flat) == 5 and rec["seed"] == 2
    assert set(drawn.flat) <= set(allc.flat)
    given, rec = negative_cells(g, valid, dep, _pts([35.0, 25.0, 99.0], [5.0, 5.0, 5.0]))
    assert given.flat.tolist() == [14] and rec["negatives_on_nan"] == 1
    assert rec["negatives_outside_grid"] == 1 and rec["buffer"] is None
