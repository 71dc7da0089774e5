"""Known deposits as points, their cells on a grid, and negatives drawn away from them.

Points are an :class:`xarray.Dataset` with one dimension ``point``, coordinates ``x``, ``y``
(and ``z``), ``point_id``, any attribute columns as variables, and the CRS written the
rioxarray way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect._dims import (
    ELEMENT_DIM,
    check_same_crs,
    get_crs,
    grid_geometry,
    parse_crs,
    write_crs,
)
from xprospect.exceptions import DataError, GridError

__all__ = [
    "POINT_DIM",
    "as_points",
    "distance_to_points",
    "points_to_index",
    "rasterize_points",
    "read_points",
    "sample_negatives",
]

POINT_DIM = "point"
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
        pts = as_points(source)
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
    from pyproj import Transformer

    src = get_crs(pts)
    if src is None:
        raise DataError("the points have no CRS to reproject from")
    tr = Transformer.from_crs(src, dst, always_xy=True)
    xs, ys = tr.transform(pts["x"].values, pts["y"].values)
    out = pts.assign_coords(x=(POINT_DIM, np.asarray(xs)), y=(POINT_DIM, np.asarray(ys)))
    return write_crs(out, dst)


def as_points(obj: xr.Dataset | pd.DataFrame | Any, *, crs: Any = None) -> xr.Dataset:
    """Return ``obj`` as a ``point`` Dataset.

    Accepts a ``point`` Dataset (returned as is), any Dataset with a single dimension and ``x``,
    ``y`` coordinates (e.g. a synthetic world's ``deposits``, dimension ``deposit``; an id
    coordinate such as ``deposit_id`` becomes ``point_id``), or a table with ``x``/``y`` columns
    (``crs=`` then required).
    """
    if isinstance(obj, pd.DataFrame):
        return read_points(obj, crs=crs)
    if not isinstance(obj, xr.Dataset):
        raise DataError(f"points must be a Dataset or DataFrame; got {type(obj).__name__}")
    if POINT_DIM in obj.dims and "point_id" in obj.coords:
        return obj
    dims = [d for d in obj.dims if d != "spatial_ref"]
    if len(dims) != 1:
        raise DataError(f"points need exactly one dimension; got {tuple(obj.dims)}")
    for c in ("x", "y"):
        if c not in obj.coords and c not in obj.data_vars:
            raise DataError(f"points need an {c!r} coordinate; got {list(obj.coords)}")
    dim = dims[0]
    out = obj.rename({dim: POINT_DIM}) if dim != POINT_DIM else obj
    out = out.set_coords([c for c in ("x", "y", "z") if c in out.data_vars])
    if "point_id" not in out.coords:
        idc = f"{dim}_id"
        if idc in out.coords:
            out = out.rename({idc: "point_id"})
        else:
            ids = [f"P{i}" for i in range(out.sizes[POINT_DIM])]
            out = out.assign_coords(point_id=(POINT_DIM, ids))
    if crs is not None:
        out = write_crs(out, parse_crs(crs))
    return out


def _check_points_crs(points: xr.Dataset, like: xr.Dataset | xr.DataArray) -> None:
    a, b = get_crs(points), get_crs(like)
    if a is not None and b is not None:
        check_same_crs(a, b, "the points", "the grid")


def points_to_index(points: xr.Dataset, like: xr.Dataset | xr.DataArray, *,
                    drop_outside: bool = False) -> np.ndarray:
    """Grid cell index of every point.

    Parameters
    ----------
    points : xarray.Dataset
        Points (see :func:`as_points`).
    like : Dataset or DataArray
        A 2-D (y, x) or 3-D (z, y, x) grid.
    drop_outside : bool
        Drop points outside the grid instead of raising.

    Returns
    -------
    numpy.ndarray
        ``(n, ndim)`` int64 indices in the grid's dim order (row, col) or (layer, row, col).
    """
    points = as_points(points)
    _check_points_crs(points, like)
    geom = grid_geometry(like)
    idx = []
    for d, o, s in zip(geom.dims, geom.origin, geom.step, strict=True):
        if d not in points.coords:
            raise DataError(f"the grid is {geom.ndim}-D but the points have no {d!r} coordinate")
        v = np.asarray(points[d].values, dtype="float64")
        i = np.floor((v - o) / s + 0.5).astype("int64") if s != 0 else np.zeros(v.shape, "int64")
        idx.append(i)
    out = np.stack(idx, axis=1) if idx else np.zeros((0, geom.ndim), "int64")
    inside = np.all((out >= 0) & (out < np.asarray(geom.shape)), axis=1)
    if not inside.all():
        if not drop_outside:
            bad = int(np.flatnonzero(~inside)[0])
            pid = str(points["point_id"].values[bad])
            px, py = points["x"].values[bad], points["y"].values[bad]
            msg = (f"{int((~inside).sum())} of {len(inside)} points lie outside the grid, e.g. "
                   f"point {pid!r} at x={px!r}, y={py!r}; "
                   "pass drop_outside=True to ignore them")
            raise GridError(msg)
        out = out[inside]
    return out


def rasterize_points(points: xr.Dataset, like: xr.Dataset | xr.DataArray, *,
                     name: str = "deposits") -> xr.DataArray:
    """Count points per grid cell (0 where none), on ``like``'s grid and CRS.

    Points outside the grid are ignored (their number is in ``attrs["outside"]``).
    """
    points = as_points(points)
    geom = grid_geometry(like)
    idx = points_to_index(points, like, drop_outside=True)
    counts = np.zeros(geom.shape, dtype="int32")
    np.add.at(counts, tuple(idx.T), 1)
    out = xr.DataArray(counts, dims=geom.dims, coords={d: like[d] for d in geom.dims}, name=name)
    out.attrs["outside"] = int(points.sizes[POINT_DIM] - len(idx))
    crs = get_crs(like)
    return write_crs(out, crs) if crs is not None else out


def _point_xyz(points: xr.Dataset, dims: Sequence[str]) -> np.ndarray:
    cols = []
    for d in dims:
        if d not in points.coords:
            raise DataError(f"the grid has a {d!r} axis but the points have no {d!r} coordinate")
        cols.append(np.asarray(points[d].values, dtype="float64"))
    return np.stack(cols, axis=1)


def _nearest_distance_block(*coords: np.ndarray, pts: np.ndarray) -> np.ndarray:
    from sklearn.neighbors import KDTree

    grids = np.meshgrid(*coords, indexing="ij")
    q = np.stack([g.ravel() for g in grids], axis=1)
    if len(pts) == 0:
        return np.full(grids[0].shape, np.inf)
    d, _ = KDTree(pts).query(q, k=1)
    return d[:, 0].reshape(grids[0].shape)


def distance_to_points(points: xr.Dataset, like: xr.Dataset | xr.DataArray, *,
                       name: str = "distance") -> xr.DataArray:
    """Euclidean distance (CRS units) from each cell centre to the nearest point.

    Lazy over ``like``'s dask chunks when it has them; 2-D or 3-D.
    """
    points = as_points(points)
    _check_points_crs(points, like)
    geom = grid_geometry(like)
    pts = _point_xyz(points, geom.dims)
    ref = like if isinstance(like, xr.DataArray) else None
    chunks = None
    if ref is None:
        for v in like.data_vars.values():
            if tuple(v.dims) == geom.dims and v.chunks is not None:
                ref = v
                break
    if ref is not None and ELEMENT_DIM in ref.dims:
        ref = ref.isel({ELEMENT_DIM: 0}, drop=True)
    if ref is not None and ref.chunks is not None:
        chunks = dict(zip(ref.dims, ref.chunks, strict=True))
    coords = [like[d].values.astype("float64") for d in geom.dims]
    if chunks is None:
        data = _nearest_distance_block(*coords, pts=pts)
    else:
        import dask.array as da

        carrs = [da.from_array(c, chunks=(chunks[d],))
                 for c, d in zip(coords, geom.dims, strict=True)]
        idx = "".join("abc"[i] for i in range(geom.ndim))
        data = da.blockwise(
            _nearest_distance_block, idx,
            *[a for i, c in enumerate(carrs) for a in (c, idx[i])],
            pts=pts, dtype="float64",
        )
    out = xr.DataArray(data, dims=geom.dims, coords={d: like[d] for d in geom.dims}, name=name)
    out.attrs["units"] = "CRS units"
    crs = get_crs(like)
    return write_crs(out, crs) if crs is not None else out


def sample_negatives(like: xr.Dataset | xr.DataArray, points: xr.Dataset, n: int, *,
                     buffer: float, seed: int = 0,
                     mask: xr.DataArray | np.ndarray | None = None) -> xr.Dataset:
    """Draw ``n`` random cell centres farther than ``buffer`` from every known point.

    Parameters
    ----------
    like : Dataset or DataArray
        The grid (a stack (``element``, y, x) counts a cell as valid only where every element
        is finite).
    points : xarray.Dataset
        Known deposits.
    n : int
        Number of negatives (cells are drawn without replacement).
    buffer : float
        Exclusion distance from every point, in CRS units.
    seed : int
        Random seed.
    mask : bool DataArray or array, optional
        Cells allowed (e.g. the study area); combined with the data-validity mask.

    Returns
    -------
    xarray.Dataset
        ``point`` Dataset of the negatives, with ``attrs`` ``buffer``, ``n``, ``seed``,
        ``candidates`` (cells that qualified) and ``excluded_by_buffer``.

    Notes
    -----
    The distance and validity masks are global: this function computes them.
    """
    if n < 0:
        raise DataError(f"n must be >= 0; got {n}")
    if buffer < 0:
        raise DataError(f"buffer must be >= 0; got {buffer}")
    points = as_points(points)
    geom = grid_geometry(like)
    dist = distance_to_points(points, like).values
    allowed = np.ones(geom.shape, dtype=bool)
    if isinstance(like, xr.DataArray) and ELEMENT_DIM in like.dims:
        allowed &= np.isfinite(like).all(ELEMENT_DIM).values
    elif isinstance(like, xr.Dataset) and "mask" in like.data_vars:
        allowed &= like["mask"].values.astype(bool)
    if mask is not None:
        m = np.asarray(mask.values if isinstance(mask, xr.DataArray) else mask, dtype=bool)
        if m.shape != geom.shape:
            raise DataError(f"mask has shape {m.shape}; the grid is {geom.shape}")
        allowed &= m
    n_valid = int(allowed.sum())
    ok = allowed & (dist > buffer)
    cand = np.flatnonzero(ok.ravel())
    if len(cand) < n:
        msg = (f"only {len(cand)} cells lie farther than buffer={buffer} from the "
               f"{points.sizes[POINT_DIM]} points (of {n_valid} valid cells); asked for {n} "
               "negatives: lower n or the buffer")
        raise DataError(msg)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(cand, size=n, replace=False))
    ij = np.unravel_index(pick, geom.shape)
    coords: dict[str, Any] = {}
    for a, d in enumerate(geom.dims):
        coords[d] = (POINT_DIM, like[d].values.astype("float64")[ij[a]])
    coords["point_id"] = (POINT_DIM, np.array([f"N{i}" for i in range(n)]))
    out = xr.Dataset(coords=coords)
    out.attrs.update(buffer=float(buffer), n=int(n), seed=int(seed), candidates=len(cand),
                     excluded_by_buffer=int(n_valid - len(cand)))
    log.info("negatives: %d drawn from %d cells outside a %.1f buffer (%d valid cells excluded)",
             n, len(cand), buffer, n_valid - len(cand))
    crs = get_crs(like)
    return write_crs(out, crs) if crs is not None else out
