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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect import points as _points
from xprospect._dims import get_crs, parse_crs, write_crs
from xprospect.exceptions import DataError, GridError
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


def _coord_column(df: pd.DataFrame, name: str, what: str, where: str) -> np.ndarray:
    if name not in df.columns:
        msg = f"{where} has no {what} column {name!r}; columns are {list(df.columns)}"
        raise DataError(msg)
    vals = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype="float64")
    bad = ~np.isfinite(vals)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = (f"{where}: column {name!r} has {int(bad.sum())} missing or non-numeric values, "
               f"first at row {i} ({df[name].iloc[i]!r})")
        raise DataError(msg)
    return vals


def read_points(source: str | Path | pd.DataFrame | xr.Dataset, *, x: str = "x", y: str = "y",
                z: str | None = None, crs: Any = None, to_crs: Any = None,
                id: str | None = None, query: str | None = None) -> xr.Dataset:
    """Read point locations (known deposits, occurrences) into a ``point`` Dataset.

    Parameters
    ----------
    source : path, DataFrame or Dataset
        A CSV or Parquet file, a table, or an xarray Dataset with one dimension and ``x``/``y``
        coordinates (e.g. ``world.deposits``; its CRS is kept).
    x, y, z : str
        Coordinate column names (``z`` optional, elevation).
    crs : optional
        CRS of the coordinates (required for tables).
    to_crs : optional
        Reproject to this CRS.
    id : str, optional
        Column with point identifiers; ``point_id`` is ``P0, P1, ...`` otherwise.
    query : str, optional
        A :meth:`pandas.DataFrame.query` expression selecting rows
        (e.g. ``"SITE_TYPE_ != 'Occurrence'"``).

    Returns
    -------
    xarray.Dataset
        Dimension ``point``; coordinates ``x``, ``y`` (``z``), ``point_id``; other columns as
        variables.

    Examples
    --------
    >>> import pandas as pd
    >>> pts = read_points(pd.DataFrame({"E": [500100.0], "N": [6.2e6]}), x="E", y="N",
    ...                   crs="EPSG:32750")
    >>> pts.sizes["point"], str(pts.point_id.values[0])
    (1, 'P0')
    """
    if isinstance(source, xr.Dataset):
        if query is not None:
            raise DataError("query= applies to tables; select on the Dataset instead")
        pts = _points.as_points(source)
        if to_crs is not None:
            pts = _reproject(pts, parse_crs(to_crs, "to_crs"))
        return pts
    where = "the points table"
    if isinstance(source, (str, Path)):
        path = Path(source)
        where = str(path)
        if not path.exists():
            raise DataError(f"points file {str(path)!r} does not exist")
        is_parquet = path.suffix.lower() in (".parquet", ".pq")
        df = pd.read_parquet(path) if is_parquet else pd.read_csv(path)
    elif isinstance(source, pd.DataFrame):
        df = source.copy()
    else:
        msg = f"read_points needs a path, DataFrame or Dataset; got {type(source).__name__}"
        raise DataError(msg)
    if query is not None:
        df = df.query(query)
    if crs is None:
        raise DataError(f"{where}: pass crs= for the point coordinates (e.g. crs='EPSG:4326')")
    src = parse_crs(crs)
    xs = _coord_column(df, x, "x", where)
    ys = _coord_column(df, y, "y", where)
    coords: dict[str, Any] = {"x": (POINT_DIM, xs), "y": (POINT_DIM, ys)}
    if z is not None:
        coords["z"] = (POINT_DIM, _coord_column(df, z, "z", where))
    if id is not None:
        if id not in df.columns:
            raise DataError(f"{where} has no id column {id!r}; columns are {list(df.columns)}")
        ids = df[id].astype(str).to_numpy()
    else:
        ids = np.array([f"P{i}" for i in range(len(df))])
    coords["point_id"] = (POINT_DIM, ids)
    used = {x, y, z, id}
    data = {}
    for c in df.columns:
        if c in used:
            continue
        col = df[c]
        vals = col.astype(str).to_numpy() if col.dtype == object else col.to_numpy()
        data[str(c)] = (POINT_DIM, vals)
    pts = xr.Dataset(data, coords=coords)
    pts.attrs["source"] = where
    pts = write_crs(pts, src)
    if to_crs is not None:
        pts = _reproject(pts, parse_crs(to_crs, "to_crs"))
    return pts


def _reproject(pts: xr.Dataset, dst: Any) -> xr.Dataset:
    from pyproj import Transformer  # pyproj is a heavy import needed only to reproject

    src = get_crs(pts)
    if src is None:
        raise DataError("the points have no CRS to reproject from")
    tr = Transformer.from_crs(src, dst, always_xy=True)
    xs, ys = tr.transform(pts["x"].values, pts["y"].values)
    out = pts.assign_coords(x=(POINT_DIM, np.asarray(xs)), y=(POINT_DIM, np.asarray(ys)))
    return write_crs(out, dst)


def _moved(old: str, new: str) -> None:
    warnings.warn(f"xprospect.evidence.{old} is replaced by xprospect.points.{new}",
                  FutureWarning, stacklevel=3)


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


def points_to_index(points: xr.Dataset, like: xr.Dataset | xr.DataArray, *,
                    drop_outside: bool = False) -> np.ndarray:
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


def rasterize_points(points: xr.Dataset, like: xr.Dataset | xr.DataArray, *,
                     name: str = "deposits") -> xr.DataArray:
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


def distance_to_points(points: xr.Dataset, like: xr.Dataset | xr.DataArray, *,
                       name: str = "distance") -> xr.DataArray:
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


def sample_negatives(like: xr.Dataset | xr.DataArray, points: xr.Dataset, n: int, *,
                     buffer: float, seed: int = 0,
                     mask: xr.DataArray | np.ndarray | None = None) -> xr.Dataset:
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
