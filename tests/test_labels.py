"""Points, cell indices, distances, negatives and model cards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xprospect as xp
from xprospect.evidence import read_points
from xprospect.models.card import check_card, make_card, normalise
from xprospect.points import (
    as_points,
    distance_to_points,
    points_to_index,
    rasterize_points,
    sample_negatives,
)


@pytest.fixture(scope="module")
def grid_stack(world):
    g = xp.make_grid(like=world.samples, resolution=1000.0, chunks=(5, 7))
    maps = world.samples.prospect.idw(like=g, k=8)
    return g, maps.prospect.stack(["Au", "Cu", "As"])


def test_read_points_table_and_reproject(tmp_path):
    df = pd.DataFrame({"lon": [117.92, 117.91], "lat": [-33.57, -33.54], "name": ["a", "b"]})
    path = tmp_path / "sites.csv"
    df.to_csv(path, index=False)
    pts = read_points(path, x="lon", y="lat", crs="EPSG:4326", to_crs="EPSG:32750", id="name")
    assert pts.sizes["point"] == 2
    assert list(pts.point_id.values) == ["a", "b"]
    assert pts.rio.crs.to_epsg() == 32750
    assert 5.8e5 < pts.x.values[0] < 5.9e5
    assert pd.read_csv(path).equals(df)  # the user's file is untouched


def test_read_points_errors(tmp_path):
    df = pd.DataFrame({"E": [1.0, np.nan], "N": [2.0, 3.0]})
    with pytest.raises(xp.DataError, match=r"column 'E'.*row 1"):
        read_points(df, x="E", y="N", crs="EPSG:32750")
    with pytest.raises(xp.DataError, match="no x column 'X'"):
        read_points(df, x="X", y="N", crs="EPSG:32750")
    with pytest.raises(xp.DataError, match="crs="):
        read_points(df.dropna(), x="E", y="N")
    with pytest.raises(xp.DataError, match="does not exist"):
        read_points(tmp_path / "nope.csv", crs="EPSG:4326")


def test_as_points_from_world(world):
    pts = as_points(world.deposits)
    assert pts.sizes["point"] == world.deposits.sizes["deposit"]
    assert list(pts.point_id.values) == list(world.deposits.deposit_id.values)
    assert pts.rio.crs == world.samples.rio.crs


def test_index_and_rasterize(world, grid_stack):
    g, stack = grid_stack
    pts = as_points(world.deposits)
    idx, inside = points_to_index(pts, g)
    assert inside.all()
    ys, xs = g.y.values, g.x.values
    for (r, c), x, y in zip(idx, pts.x.values, pts.y.values, strict=True):
        assert abs(xs[c] - x) <= 500 and abs(ys[r] - y) <= 500
    r = rasterize_points(pts, stack)
    assert r.sum() == len(idx) and r.dims == ("y", "x")
    far = pts.assign_coords(x=pts.x + 1e6)
    with pytest.raises(xp.GridError, match="outside the grid"):
        points_to_index(far, g, outside="raise")
    assert not points_to_index(far, g)[1].any()


def test_old_point_helpers_warn_and_keep_their_behaviour(world, grid_stack):
    from xprospect.evidence import labels

    g, stack = grid_stack
    pts = as_points(world.deposits)
    with pytest.warns(FutureWarning, match="xprospect.points.points_to_index"):
        idx = labels.points_to_index(pts, g)
    np.testing.assert_array_equal(idx, points_to_index(pts, g)[0])
    far = pts.assign_coords(x=pts.x + 1e6)
    with pytest.warns(FutureWarning), pytest.raises(xp.GridError, match="drop_outside=True"):
        labels.points_to_index(far, g)
    with pytest.warns(FutureWarning):
        assert labels.points_to_index(far, g, drop_outside=True).shape == (0, 2)
    with pytest.warns(FutureWarning, match="xprospect.points.distance_to_points"):
        d = xp.evidence.distance_to_points(pts, stack)
    xr.testing.assert_identical(d, distance_to_points(pts, stack))
    with pytest.warns(FutureWarning, match="xprospect.points.sample_negatives"):
        a = labels.sample_negatives(stack, pts, 5, buffer=4000.0, seed=3)
    assert a.identical(sample_negatives(stack, pts, 5, buffer=4000.0, seed=3))
    with pytest.warns(FutureWarning, match="xprospect.points.as_points"):
        assert labels.as_points(world.deposits).identical(pts)
    with pytest.warns(FutureWarning, match="xprospect.points.rasterize_points"):
        r = labels.rasterize_points(pts, stack)
    xr.testing.assert_identical(r, rasterize_points(pts, stack))


def test_distance_matches_brute_force(world, grid_stack):
    _, stack = grid_stack
    pts = as_points(world.deposits)
    d = distance_to_points(pts, stack)
    assert d.chunks is not None  # lazy, on the stack's chunks
    yy, xx = np.meshgrid(stack.y.values, stack.x.values, indexing="ij")
    ref = np.min(np.hypot(xx[..., None] - pts.x.values, yy[..., None] - pts.y.values), axis=-1)
    np.testing.assert_allclose(d.values, ref, rtol=1e-12)


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
    with pytest.raises(xp.DataError, match="farther than buffer"):
        sample_negatives(stack, pts, 40, buffer=1e6, seed=0)


def test_card_checks(grid_stack):
    _, stack = grid_stack
    card = make_card(stack, window=5, mean=[0, 1, 2], std=[1, 2, 4], data_hash="abc")
    check_card(card, stack)
    with pytest.raises(xp.ModelCardError, match="missing"):
        check_card(card, stack.sel(element=["Au", "Cu"]))
    with pytest.raises(xp.ModelCardError, match="order"):
        check_card(card, stack.sel(element=["Cu", "Au", "As"]))
    with pytest.raises(xp.ModelCardError, match="resolution"):
        check_card(card, stack.isel(x=slice(None, None, 2)))
    with pytest.raises(xp.ModelCardError, match="CRS"):
        check_card(card, stack.rio.write_crs("EPSG:32751"))
    out = normalise(stack, card)
    assert out.chunks is not None
    np.testing.assert_allclose(out.sel(element="As").values,
                               (stack.sel(element="As").values - 2) / 4, rtol=1e-6)
    assert isinstance(out, xr.DataArray) and out.rio.crs == stack.rio.crs
