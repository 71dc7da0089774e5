"""Assertions for georeferenced xarray objects, public so that users can reuse them."""

from __future__ import annotations

import numpy as np
import xarray as xr

from xprospect._dims import get_crs, grid_geometry

__all__ = ["assert_georef_equal"]


def assert_georef_equal(result: xr.Dataset | xr.DataArray,
                        expected: xr.Dataset | xr.DataArray) -> None:
    """Assert that two grids share dims, coordinates, CRS and affine transform.

    Parameters
    ----------
    result, expected : xarray.Dataset or DataArray
        Grids (y, x) or voxels (z, y, x).

    Raises
    ------
    AssertionError
        Naming the first difference found.
    """
    ge, gr = grid_geometry(expected), grid_geometry(result)
    assert gr.dims == ge.dims, f"dims differ: {gr.dims} != {ge.dims}"
    assert gr.shape == ge.shape, f"shapes differ: {gr.shape} != {ge.shape}"
    for d in ge.dims:
        np.testing.assert_array_equal(result[d].values, expected[d].values,
                                      err_msg=f"coordinate {d!r} differs")
    ce, cr = get_crs(expected), get_crs(result)
    assert (ce is None) == (cr is None), f"CRS differs: {cr} != {ce}"
    if ce is not None:
        assert cr.equals(ce), f"CRS differs: {cr.to_string()} != {ce.to_string()}"  # type: ignore[union-attr]
    if ge.ndim == 2:
        te, tr = expected.rio.transform(), result.rio.transform()
        assert tr.almost_equals(te), f"transform differs: {tr} != {te}"
