"""Test helpers, public so that users can reuse them: georeferencing and laziness checks."""

from __future__ import annotations

from typing import Any

import dask
import numpy as np
import xarray as xr

from xprospect._dims import get_crs, grid_geometry

__all__ = ["CountingScheduler", "assert_georef_equal", "raise_if_dask_computes"]


class CountingScheduler:
    """A dask scheduler that counts computes and raises once more than ``max_computes`` ran.

    Parameters
    ----------
    max_computes : int
        Computes allowed before the next one raises :class:`RuntimeError`.

    Attributes
    ----------
    total_computes : int
        Computes asked for so far (including the one that raised).
    """

    def __init__(self, max_computes: int = 0) -> None:
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        """Count this compute, raise past the limit, else run it synchronously."""
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            msg = (
                f"Too many dask computes: {self.total_computes} > max {self.max_computes} "
                "(the code should have stayed lazy)"
            )
            raise RuntimeError(msg)
        return dask.get(dsk, keys, **kwargs)


def raise_if_dask_computes(max_computes: int = 0) -> Any:
    """Return a context in which computing a dask collection more than ``max_computes`` raises.

    xarray's pattern: the dask scheduler is replaced by a :class:`CountingScheduler`, so a
    function that should build a lazy result but computes (``.values``, ``.compute()``,
    ``bool(array)``) fails where it computes.

    Parameters
    ----------
    max_computes : int
        Computes allowed inside the context (0: the code must stay lazy).

    Returns
    -------
    context manager
        ``dask.config.set(scheduler=CountingScheduler(max_computes))``.

    Examples
    --------
    >>> import dask.array as da
    >>> from xprospect.testing import raise_if_dask_computes
    >>> x = da.ones(4, chunks=2)
    >>> with raise_if_dask_computes():
    ...     y = x + 1  # lazy: fine
    >>> with raise_if_dask_computes():
    ...     y.sum().compute()
    Traceback (most recent call last):
    ...
    RuntimeError: Too many dask computes: 1 > max 0 (the code should have stayed lazy)
    """
    return dask.config.set(scheduler=CountingScheduler(max_computes))


def assert_georef_equal(
    result: xr.Dataset | xr.DataArray, expected: xr.Dataset | xr.DataArray
) -> None:
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
        np.testing.assert_array_equal(
            result[d].values, expected[d].values, err_msg=f"coordinate {d!r} differs"
        )
    ce, cr = get_crs(expected), get_crs(result)
    assert (ce is None) == (cr is None), f"CRS differs: {cr} != {ce}"
    if ce is not None:
        assert cr.equals(ce), f"CRS differs: {cr.to_string()} != {ce.to_string()}"  # type: ignore[union-attr]
    if ge.ndim == 2:
        te, tr = expected.rio.transform(), result.rio.transform()
        assert tr.almost_equals(te), f"transform differs: {tr} != {te}"
