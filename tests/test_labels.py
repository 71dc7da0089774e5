"""Reading points and model cards (points on grids are tested in test_points.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xprospect as xp
from xprospect.io import read_points
from xprospect.models.card import check_card, make_card, normalise, validate_card
from xprospect.points import (
    as_points,
    distance_to_points,
    points_to_index,
    rasterize_points,
    sample_negatives,
)


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
    with pytest.raises(xp.DataError, match=r"column 'E' \(x\) in the points table.*row 2"):
        read_points(df, x="E", y="N", crs="EPSG:32750")
    with pytest.raises(xp.DataError, match=r"column 'X' \(for x=\) is not in the points"):
        read_points(df, x="X", y="N", crs="EPSG:32750")
    with pytest.raises(xp.DataError, match="crs="):
        read_points(df.dropna(), x="E", y="N")
    # the one table reader: a missing file is a DataError and a FileNotFoundError
    with pytest.raises(xp.DataError, match="does not exist"):
        read_points(tmp_path / "nope.csv", crs="EPSG:4326")
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        read_points(tmp_path / "nope.csv", crs="EPSG:4326")


def test_read_points_keeps_text_ids_and_reads_z(tmp_path):
    path = tmp_path / "sites.csv"
    path.write_text("id,E,N,RL,kind\n007,500100,6200000,310,gossan\n8,500200,6200100,305,vein\n")
    pts = read_points(path, x="E", y="N", z="RL", id="id", crs="EPSG:32750")
    assert pts.point_id.values.tolist() == ["007", "8"]
    assert pts.z.values.tolist() == [310.0, 305.0] and pts["kind"].values.tolist()[1] == "vein"
    assert xp.read_points is read_points


def test_card_checks(world_stack, backend):
    stack = world_stack
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
    assert (out.chunks is not None) == (backend == "dask")
    np.testing.assert_allclose(
        out.sel(element="As").values, (stack.sel(element="As").values - 2) / 4, rtol=1e-6
    )
    assert isinstance(out, xr.DataArray) and out.rio.crs == stack.rio.crs


@pytest.mark.parametrize("dtype", ["uint8", "int32", "bool"])
def test_normalise_integer_and_binary_stacks_in_float(dtype):
    # a 0/1 evidence stack and an integer ppm stack: the card's std 0.47 must not become 0
    data = np.array([[[0, 1], [1, 0]], [[120, 35], [7, 200]]])
    if dtype == "bool":
        data = data > 0
    stack = xr.DataArray(
        data.astype(dtype),
        dims=("element", "y", "x"),
        coords={"element": ["evidence", "Zn"], "y": [15.0, 5.0], "x": [5.0, 15.0]},
    )
    card = make_card(stack, mean=[0.5, 140.5], std=[0.47, 151.25])
    out = normalise(stack, card)
    assert out.dtype == np.float32
    assert np.isfinite(out.values).all()
    np.testing.assert_allclose(
        out.values,
        (data.astype("float64") - np.array([0.5, 140.5])[:, None, None])
        / np.array([0.47, 151.25])[:, None, None],
        rtol=1e-6,
    )


def test_normalise_keeps_float64_stacks_in_float64(world_stack):
    stack = world_stack.astype("float64")
    card = make_card(stack, mean=[0, 1, 2], std=[1, 2, 4])
    assert normalise(stack, card).dtype == np.float64


def test_card_refuses_zero_or_non_finite_std(world_stack):
    with pytest.raises(xp.ModelCardError, match=r"std must be finite and > 0.*element 'Cu'"):
        make_card(world_stack, mean=[0, 1, 2], std=[1, 0, 4])
    with pytest.raises(xp.ModelCardError, match=r"std must be finite and > 0.*element 'As'"):
        make_card(world_stack, mean=[0, 1, 2], std=[1, 2, float("nan")])


def test_malformed_cards_cannot_switch_their_checks_off(world_stack):
    card = make_card(world_stack, window=5, mean=[0, 1, 2], std=[1, 2, 4])
    validate_card(card)
    for key, bad in [
        ("elements", None),
        ("crs", "not a crs"),
        ("std", [1, 2]),
        ("window", -5),
        ("ndim", 4),
    ]:
        with pytest.raises(xp.ModelCardError, match=f"'{key}'"):
            check_card({**card, key: bad}, world_stack)
    check_card({}, world_stack)  # an empty card describes nothing (untrained model)
    check_card({"pretraining": {"epochs": 1}}, world_stack)  # notes only


def test_old_point_helpers_warn_and_keep_their_behaviour(world, world_stack):
    from xprospect.evidence import labels

    g = stack = world_stack
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
