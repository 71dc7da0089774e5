"""Reading known deposits as points; the point helpers that lived here moved to points.py.

Points are an :class:`xarray.Dataset` with one dimension ``point``, coordinates ``x``, ``y``
(and ``z``), ``point_id``, any attribute columns as variables, and the CRS written the
rioxarray way. :func:`read_points` reads them from files and tables. Their cells on a
grid, distances, rasterising and negatives live in :mod:`xprospect.points`, the package's
one home of the on-grid test; the names below are thin aliases of those functions that
raise a ``FutureWarning`` naming the new one.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect import points as _points
from xprospect.exceptions import GridError, XProspectDeprecationWarning
from xprospect.io.points import read_points
from xprospect.points import POINT_DIM

__all__ = [
    "POINT_DIM",
    "as_points",
    "distance_to_points",
    "points_to_index",
    "rasterize_points",
    "read_points",
    "sample_negatives",
]

log = logging.getLogger(__name__)


def _moved(old: str, new: str) -> None:
    warnings.warn(
        f"xprospect.evidence.{old} is replaced by xprospect.points.{new}",
        XProspectDeprecationWarning,
        stacklevel=3,
    )


def as_points(obj: xr.Dataset | pd.DataFrame | Any, *, crs: Any = None) -> xr.Dataset:
    """Return ``obj`` as a ``point`` Dataset; an alias of :func:`xprospect.points.as_points`.

    .. deprecated::
        Use :func:`xprospect.points.as_points`.

    Parameters
    ----------
    obj : Dataset or DataFrame
        Points (see :func:`xprospect.points.as_points`).
    crs : optional
        CRS of a table's coordinates.

    Returns
    -------
    xarray.Dataset
    """
    _moved("as_points", "as_points")
    return _points.as_points(obj, crs=crs)


def points_to_index(
    points: xr.Dataset, like: xr.Dataset | xr.DataArray, *, drop_outside: bool = False
) -> np.ndarray:
    """Grid cell index of every point; an alias of :func:`xprospect.points.points_to_index`.

    .. deprecated::
        Use :func:`xprospect.points.points_to_index`, which returns ``(index, inside)``.

    Parameters
    ----------
    points : xarray.Dataset
        Points.
    like : Dataset or DataArray
        A 2-D (y, x) or 3-D (z, y, x) grid.
    drop_outside : bool
        Drop points outside the grid instead of raising.

    Returns
    -------
    numpy.ndarray
        ``(n, ndim)`` int64 indices in the grid's dim order.
    """
    _moved("points_to_index", "points_to_index")
    idx, inside = _points.points_to_index(points, like)
    if inside.all():
        return idx
    if not drop_outside:
        try:
            _points.points_to_index(points, like, outside="raise")
        except GridError as err:
            raise GridError(f"{err}; pass drop_outside=True to ignore them") from None
    return idx[inside]


def rasterize_points(
    points: xr.Dataset, like: xr.Dataset | xr.DataArray, *, name: str = "deposits"
) -> xr.DataArray:
    """Count points per grid cell; an alias of :func:`xprospect.points.rasterize_points`.

    .. deprecated::
        Use :func:`xprospect.points.rasterize_points`.

    Parameters
    ----------
    points : xarray.Dataset
        Points.
    like : Dataset or DataArray
        The grid.
    name : str
        Name of the result.

    Returns
    -------
    xarray.DataArray
    """
    _moved("rasterize_points", "rasterize_points")
    return _points.rasterize_points(points, like, name=name)


def distance_to_points(
    points: xr.Dataset, like: xr.Dataset | xr.DataArray, *, name: str = "distance"
) -> xr.DataArray:
    """Distance from each cell centre to the nearest point; see :mod:`xprospect.points`.

    .. deprecated::
        Use :func:`xprospect.points.distance_to_points`.

    Parameters
    ----------
    points : xarray.Dataset
        Points.
    like : Dataset or DataArray
        A 2-D or 3-D grid (lazy over its dask chunks).
    name : str
        Name of the result.

    Returns
    -------
    xarray.DataArray
    """
    _moved("distance_to_points", "distance_to_points")
    return _points.distance_to_points(points, like, name=name)


def sample_negatives(
    like: xr.Dataset | xr.DataArray,
    points: xr.Dataset,
    n: int,
    *,
    buffer: float,
    seed: int = 0,
    mask: xr.DataArray | np.ndarray | None = None,
) -> xr.Dataset:
    """Draw ``n`` cells away from every point; an alias of :mod:`xprospect.points`'s.

    .. deprecated::
        Use :func:`xprospect.points.sample_negatives`.

    Parameters
    ----------
    like : Dataset or DataArray
        The grid.
    points : xarray.Dataset
        Known deposits.
    n : int
        Number of negatives.
    buffer : float
        Exclusion distance from every point, in CRS units.
    seed : int
        Random seed.
    mask : bool DataArray or array, optional
        Cells allowed.

    Returns
    -------
    xarray.Dataset
    """
    _moved("sample_negatives", "sample_negatives")
    return _points.sample_negatives(like, points, n, buffer=buffer, seed=seed, mask=mask)
