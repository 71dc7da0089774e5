"""Points on grids and their neighbourhood: the one home of the on-grid test.

Points (known deposits, occurrences, negatives, window centres) are an
:class:`xarray.Dataset` with one dimension ``point``, coordinates ``x``, ``y`` (and ``z``)
and ``point_id``, any attribute columns as variables, and the CRS written the rioxarray
way. This module turns tables and arrays into such Datasets, finds the grid cell of each
point, measures distances from cell centres to points, draws negatives away from points and
looks up the cells that evaluation and fitting use. Everything that asks "is this point on
the grid?" calls :func:`points_to_index`.

The cell of a point is the one whose centre is nearest along every axis: the index along an
axis with cell-centre origin ``o`` and signed step ``s`` is ``floor((v - o) / s + 0.5)``, so
a point exactly on the boundary between two cells belongs to the cell after it (in index
order), so the first cell's outer edge is on the grid and the last cell's outer edge is not.
Along an axis of a single cell there is no spacing to read (step 0): every point falls in
that cell along that axis.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import pandas as pd
import xarray as xr

from xprospect._dask import Block, map_cells
from xprospect._dims import (
    ELEMENT_DIM,
    SAMPLE_DIM,
    GridGeometry,
    check_same_crs,
    get_crs,
    grid_geometry,
    parse_crs,
    write_crs,
)
from xprospect.exceptions import DataError, GridError, MissingFileError, ModelCardError

__all__ = [
    "POINT_DIM",
    "RIO_SAFE_NAMES",
    "VECTOR_SUFFIXES",
    "CellPoints",
    "as_points",
    "cells_near_points",
    "cells_to_points",
    "default_buffer",
    "distance_to_points",
    "geoframe_xy",
    "is_geoframe",
    "is_vector_path",
    "make_points",
    "negative_cells",
    "point_cells",
    "point_coords",
    "points_to_index",
    "rasterize_points",
    "read_vector",
    "sample_negatives",
    "sample_table",
]

POINT_DIM = "point"
log = logging.getLogger(__name__)
#: Suffixes of the vector files read through GDAL (geopandas with pyogrio): GeoPackage,
#: Shapefile, GeoJSON, FlatGeobuf, GML, KML and zipped Shapefiles.
VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".gml", ".kml", ".shp.zip")

Grid = xr.Dataset | xr.DataArray


# ---- building point Datasets ---------------------------------------------------------------


def _finite_coord(values: Any, name: str, where: str) -> np.ndarray:
    vals = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce")
    arr = vals.to_numpy(dtype="float64")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = (
            f"{where}: coordinate {name!r} has {int(bad.sum())} missing or non-numeric "
            f"values, first at row {i} ({np.asarray(values).ravel()[i]!r})"
        )
        raise DataError(msg)
    return arr


#: Point columns stored under another name so that rioxarray works on the points
#: (``ds.name`` on a Dataset resolves to a variable called ``name``; see
#: :data:`xprospect._dims.RIO_SHADOWED`).
RIO_SAFE_NAMES = {"name": "point_name"}


def make_points(
    x: Any,
    y: Any,
    z: Any = None,
    *,
    crs: Any = None,
    ids: Any = None,
    data: dict[str, Any] | None = None,
    source: str | None = None,
) -> xr.Dataset:
    """Build a ``point`` Dataset from coordinate arrays.

    Parameters
    ----------
    x, y : array-like
        Coordinates (CRS units), one per point; every value must be finite.
    z : array-like, optional
        Elevation of each point.
    crs : any CRS spec, optional
        CRS of the coordinates (written the rioxarray way); None writes none.
    ids : array-like, optional
        Point identifiers (stored as strings); ``P0, P1, ...`` otherwise.
    data : dict of str to array-like, optional
        Attribute columns, one value per point, stored as variables along ``point``
        (object columns as strings). A column ``name`` is stored as ``point_name``
        (:data:`RIO_SAFE_NAMES`): rioxarray reads ``ds.name`` as a DataArray's name, and a
        Dataset variable of that name breaks ``.rio.crs`` and ``.rio.write_crs``.
    source : str, optional
        Where the points came from (``attrs["source"]``; also names the table in errors).

    Returns
    -------
    xarray.Dataset
        Dimension ``point``; coordinates ``x``, ``y`` (``z``), ``point_id``.

    Raises
    ------
    DataError
        If a coordinate is missing, non-numeric or the arrays differ in length.

    Examples
    --------
    >>> pts = make_points([500100.0, 500300.0], [6.2e6, 6.2e6], crs="EPSG:32750")
    >>> pts.sizes["point"], pts.point_id.values.tolist()
    (2, ['P0', 'P1'])
    """
    where = source or "the points"
    xs = _finite_coord(x, "x", where)
    ys = _finite_coord(y, "y", where)
    n = len(xs)
    coords: dict[str, Any] = {"x": (POINT_DIM, xs), "y": (POINT_DIM, ys)}
    if z is not None:
        coords["z"] = (POINT_DIM, _finite_coord(z, "z", where))
    if ids is None:
        ids = np.array([f"P{i}" for i in range(n)])
    coords["point_id"] = (POINT_DIM, np.asarray(ids).astype(str))
    variables: dict[str, Any] = {}
    for name, col in (data or {}).items():
        vals = np.asarray(col)
        if vals.dtype == object:
            vals = vals.astype(str)
        safe = RIO_SAFE_NAMES.get(str(name), str(name))
        if safe != str(name) and safe in (data or {}):
            raise DataError(
                f"{where}: columns {name!r} and {safe!r} both given; {name!r} is stored as "
                f"{safe!r} (rioxarray reads a variable called {name!r} as the data's name): "
                "rename one"
            )
        variables[safe] = (POINT_DIM, vals)
    lengths = {k: len(v[1]) for k, v in {**coords, **variables}.items()}
    if any(v != n for v in lengths.values()):
        raise DataError(f"{where}: columns differ in length: {lengths}")
    pts = xr.Dataset(variables, coords=coords)
    if source is not None:
        pts.attrs["source"] = source
    return pts if crs is None else write_crs(pts, parse_crs(crs))


def _table_to_points(df: pd.DataFrame, crs: Any) -> xr.Dataset:
    for c in ("x", "y"):
        if c not in df.columns:
            raise DataError(
                f"the points table has no {c} column {c!r}; columns are {list(df.columns)}"
            )
    has_z = "z" in df.columns
    used = {"x", "y", "z", "point_id"} if has_z else {"x", "y", "point_id"}
    ids = df["point_id"].to_numpy() if "point_id" in df.columns else None
    data = {str(c): df[c].to_numpy() for c in df.columns if c not in used}
    return make_points(
        df["x"].to_numpy(),
        df["y"].to_numpy(),
        df["z"].to_numpy() if has_z else None,
        crs=crs,
        ids=ids,
        data=data,
        source="the points table",
    )


def is_geoframe(obj: Any) -> bool:
    """Whether ``obj`` is a :class:`geopandas.GeoDataFrame` (tested without importing geopandas).

    Parameters
    ----------
    obj : object
        Anything.

    Returns
    -------
    bool

    Examples
    --------
    >>> import pandas as pd
    >>> is_geoframe(pd.DataFrame({"x": [1.0]}))
    False
    """
    return any(
        t.__name__ == "GeoDataFrame" and t.__module__.startswith("geopandas")
        for t in type(obj).__mro__
    )


def is_vector_path(obj: Any) -> TypeGuard[str | Path]:
    """Whether ``obj`` is a path whose suffix names a vector format in :data:`VECTOR_SUFFIXES`."""
    if not isinstance(obj, str | Path):
        return False
    name = Path(obj).name.lower()
    return any(name.endswith(s) for s in VECTOR_SUFFIXES)


def read_vector(path: str | Path) -> Any:
    """Read a vector file (GeoPackage, Shapefile, GeoJSON, FlatGeobuf...) as a GeoDataFrame.

    Parameters
    ----------
    path : str or Path
        Any file GDAL reads as vectors (read by :func:`geopandas.read_file` with pyogrio).

    Returns
    -------
    geopandas.GeoDataFrame
        With its geometry and CRS.

    Raises
    ------
    MissingFileError
        If the file does not exist.
    DataError
        If GDAL cannot read it (the message names the file and GDAL's reason).
    """
    import geopandas  # lazy: a heavy optional import needed only for vector files

    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"points file {path} does not exist")
    try:
        return geopandas.read_file(path, engine="pyogrio")
    except Exception as err:  # pyogrio raises its own DataSourceError/FieldError types
        raise DataError(f"cannot read {path} as vectors through GDAL: {err}") from err


def geoframe_xy(gdf: Any, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Coordinates of a GeoDataFrame's point geometries.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Points (``Point`` or single-part ``MultiPoint`` geometries, 2-D or 3-D).
    where : str
        How to name the table in messages.

    Returns
    -------
    tuple
        ``x``, ``y`` and ``z`` (None when the geometries are 2-D) as float64 arrays.

    Raises
    ------
    DataError
        If a geometry is missing, empty, or not a point (naming the first such row and its
        type; take ``gdf.representative_point()`` first for polygons).
    """
    geom = gdf.geometry
    types = np.asarray(geom.geom_type.to_numpy(), dtype=object)
    multi = types == "MultiPoint"
    if multi.any():
        parts = np.asarray(geom[multi].count_geometries().to_numpy())
        if (parts == 1).all():
            geom = geom.explode(index_parts=False)
            types = np.asarray(geom.geom_type.to_numpy(), dtype=object)
    bad = (types != "Point") | np.asarray(geom.is_empty.to_numpy() | geom.isna().to_numpy())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = (
            f"{where}: row {i + 1} holds a {types[i] or 'missing'} geometry and "
            f"{int(bad.sum())} rows are not points; points need Point geometries "
            "(use gdf.representative_point() for polygons)"
        )
        raise DataError(msg)
    xs = np.asarray(geom.x.to_numpy(), dtype="float64")
    ys = np.asarray(geom.y.to_numpy(), dtype="float64")
    zs = None
    if bool(geom.has_z.any()):
        zs = np.asarray(geom.z.to_numpy(), dtype="float64")
    return xs, ys, zs


def _geoframe_to_points(gdf: Any, crs: Any, where: str) -> xr.Dataset:
    xs, ys, zs = geoframe_xy(gdf, where)
    own = gdf.crs
    if own is not None and crs is not None:
        check_same_crs(parse_crs(own), parse_crs(crs), where, "crs=")
    use = own if own is not None else crs
    if use is None:
        raise DataError(f"{where} has no CRS: pass crs= for the point coordinates")
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    ids = frame.pop("point_id").to_numpy() if "point_id" in frame.columns else None
    # the geometry is the authority on coordinates: columns of the same name are dropped
    frame = frame.drop(columns=[c for c in ("x", "y", "z") if c in frame.columns])
    data = {str(c): frame[c].to_numpy() for c in frame.columns}
    return make_points(xs, ys, zs, crs=use, ids=ids, data=data, source=where)


def _array_to_points(arr: np.ndarray, crs: Any) -> xr.Dataset:
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise DataError(
            f"a points array must be (n, 2) as x, y or (n, 3) as x, y, z; got shape {arr.shape}"
        )
    z = arr[:, 2] if arr.shape[1] == 3 else None
    return make_points(arr[:, 0], arr[:, 1], z, crs=crs, source="the points array")


def as_points(
    obj: xr.Dataset | pd.DataFrame | np.ndarray | Any, *, crs: Any = None, like: Grid | None = None
) -> xr.Dataset:
    """Return ``obj`` as a ``point`` Dataset, CRS-checked against ``like`` when given.

    Parameters
    ----------
    obj : Dataset, GeoDataFrame, vector file, DataFrame or array
        A ``point`` Dataset (returned as is); a :class:`geopandas.GeoDataFrame` of points
        (its geometry and CRS; other columns become variables); a path to a vector file
        GDAL reads (GeoPackage, Shapefile, GeoJSON, FlatGeobuf: :data:`VECTOR_SUFFIXES`);
        any Dataset with a single dimension and
        ``x``, ``y`` coordinates or variables (e.g. a synthetic world's ``deposits``,
        dimension ``deposit``; an id coordinate such as ``deposit_id`` becomes
        ``point_id``); a table with columns ``x``, ``y`` (``z``, ``point_id``; other
        columns become variables); or an ``(n, 2)`` / ``(n, 3)`` array of x, y (z).
    crs : any CRS spec, optional
        CRS of a table's or array's coordinates (written onto a Dataset when given).
    like : Dataset or DataArray, optional
        A grid: a table or array without ``crs`` is taken to be in its CRS (or in none
        when the grid has none), and points with a CRS must be in the grid's.

    Returns
    -------
    xarray.Dataset
        Dimension ``point``; coordinates ``x``, ``y`` (``z``), ``point_id``.

    Raises
    ------
    DataError
        If ``obj`` is not one of the accepted forms, or a table has no CRS.
    CRSError
        If the points and ``like`` are in different CRSs.

    Examples
    --------
    >>> import numpy as np
    >>> pts = as_points(np.array([[500100.0, 6.2e6]]), crs="EPSG:32750")
    >>> pts.sizes["point"], str(pts.point_id.values[0])
    (1, 'P0')
    """
    if is_vector_path(obj):
        out = _geoframe_to_points(read_vector(obj), crs, f"points file {obj}")
    elif is_geoframe(obj):
        out = _geoframe_to_points(obj, crs, "the points GeoDataFrame")
    elif isinstance(obj, (pd.DataFrame, np.ndarray)):
        use = crs if crs is not None or like is None else get_crs(like)
        if use is None and like is None:
            raise DataError(
                "the points table has no CRS: pass crs= for the point coordinates "
                "(e.g. crs='EPSG:4326')"
            )
        if isinstance(obj, pd.DataFrame):
            out = _table_to_points(obj, use)
        else:
            out = _array_to_points(np.asarray(obj), use)
    elif isinstance(obj, xr.Dataset):
        out = _dataset_to_points(obj)
        if crs is not None:
            out = write_crs(out, parse_crs(crs))
    else:
        msg = (
            "points must be a Dataset, DataFrame, GeoDataFrame, vector file path or "
            f"(n, 2|3) array; got {type(obj).__name__}"
        )
        raise DataError(msg)
    if like is not None:
        _check_crs(out, like)
    return out


def _dataset_to_points(obj: xr.Dataset) -> xr.Dataset:
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
    return out


def _check_crs(points: xr.Dataset, like: Grid) -> None:
    a, b = get_crs(points), get_crs(like)
    if a is not None and b is not None:
        check_same_crs(a, b, "the points", "the grid")


def point_coords(points: Any, like: Grid) -> np.ndarray:
    """Coordinates of the points in the grid's dim order, CRS-checked against the grid.

    Parameters
    ----------
    points : points
        Anything :func:`as_points` takes.
    like : Dataset or DataArray
        A 2-D (y, x) or 3-D (z, y, x) grid.

    Returns
    -------
    numpy.ndarray
        ``(n, ndim)`` float64, columns (y, x) or (z, y, x).

    Raises
    ------
    DataError
        If the grid has an axis (``z``) the points lack.
    """
    pts = as_points(points, like=like)
    geom = grid_geometry(like)
    cols = []
    for d in geom.dims:
        if d not in pts.coords:
            raise DataError(f"the grid is {geom.ndim}-D but the points have no {d!r} coordinate")
        cols.append(np.asarray(pts[d].values, dtype="float64"))
    if not cols[0].size:
        return np.zeros((0, geom.ndim), dtype="float64")
    return np.stack(cols, axis=1)


# ---- the on-grid test ----------------------------------------------------------------------


def _index(xyz: np.ndarray, geom: GridGeometry) -> tuple[np.ndarray, np.ndarray]:
    idx = np.zeros(xyz.shape, dtype="int64")
    for a, (o, s) in enumerate(zip(geom.origin, geom.step, strict=True)):
        if s != 0:
            idx[:, a] = np.floor((xyz[:, a] - o) / s + 0.5).astype("int64")
    inside = np.all((idx >= 0) & (idx < np.asarray(geom.shape, dtype="int64")), axis=1)
    return idx, inside


def points_to_index(
    points: Any, like: Grid, *, outside: str = "flag"
) -> tuple[np.ndarray, np.ndarray]:
    """Grid cell index of every point, and whether it lies on the grid.

    Parameters
    ----------
    points : points
        Anything :func:`as_points` takes (a table or array is taken in the grid's CRS).
    like : Dataset or DataArray
        A 2-D (y, x) or 3-D (z, y, x) grid.
    outside : {"flag", "raise"}
        ``"flag"`` returns every point's index with ``inside`` False for those off the grid
        (their index is out of range); ``"raise"`` raises naming the first of them.

    Returns
    -------
    index : numpy.ndarray
        ``(n, ndim)`` int64 indices in the grid's dim order (row, col) or (layer, row, col);
        ``index[inside]`` are the cells of the points on the grid.
    inside : numpy.ndarray
        ``(n,)`` bool, True where the point falls in a cell.

    Raises
    ------
    GridError
        With ``outside="raise"``, if any point lies off the grid.

    Notes
    -----
    The rule (nearest cell centre per axis, the half-way boundary belonging to the next
    cell, a single-cell axis holding every point) is in the module docstring.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> g = xr.Dataset(coords={"y": [15.0, 5.0], "x": [5.0, 15.0, 25.0]})
    >>> idx, inside = points_to_index(np.array([[24.0, 6.0], [31.0, 6.0]]), g)
    >>> idx[inside].tolist(), inside.tolist()
    ([[1, 2]], [True, False])
    """
    if outside not in ("flag", "raise"):
        raise DataError(f"outside={outside!r}; expected 'flag' or 'raise'")
    pts = as_points(points, like=like)
    geom = grid_geometry(like)
    idx, inside = _index(point_coords(pts, like), geom)
    if outside == "raise" and not inside.all():
        bad = int(np.flatnonzero(~inside)[0])
        pid = str(pts["point_id"].values[bad])
        px, py = pts["x"].values[bad], pts["y"].values[bad]
        msg = (
            f"{int((~inside).sum())} of {len(inside)} points lie outside the grid, e.g. "
            f"point {pid!r} at x={px!r}, y={py!r}"
        )
        raise GridError(msg)
    return idx, inside


def rasterize_points(points: Any, like: Grid, *, name: str = "deposits") -> xr.DataArray:
    """Count points per grid cell (0 where none), on ``like``'s grid and CRS.

    Parameters
    ----------
    points : points
        Anything :func:`as_points` takes.
    like : Dataset or DataArray
        The grid.
    name : str
        Name of the result.

    Returns
    -------
    xarray.DataArray
        int32 counts on the grid dims; points off the grid are ignored and their number is
        in ``attrs["outside"]``.
    """
    geom = grid_geometry(like)
    idx, inside = points_to_index(points, like)
    counts = np.zeros(geom.shape, dtype="int32")
    np.add.at(counts, tuple(idx[inside].T), 1)
    out = xr.DataArray(counts, dims=geom.dims, coords={d: like[d] for d in geom.dims}, name=name)
    out.attrs["outside"] = int((~inside).sum())
    crs = get_crs(like)
    return write_crs(out, crs) if crs is not None else out


# ---- distance and buffers ------------------------------------------------------------------


def _nearest_distance(block: Block, *, tree: Any) -> np.ndarray:
    if tree is None:
        return np.full(block.shape, np.inf)
    d, _ = tree.query(block.centres(), k=1)
    return np.asarray(d, dtype="float64").reshape(block.shape)


def distance_to_points(points: Any, like: Grid, *, name: str = "distance") -> xr.DataArray:
    """Euclidean distance (CRS units) from each cell centre to the nearest point.

    Parameters
    ----------
    points : points
        Anything :func:`as_points` takes; in 3-D they need ``z``.
    like : Dataset or DataArray
        A 2-D or 3-D grid; the result is lazy over its dask chunks when it has them.
    name : str
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float64 on the grid dims (``inf`` everywhere when there are no points), with the
        grid's CRS and ``attrs["units"]``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> g = xr.Dataset(coords={"y": [15.0, 5.0], "x": [5.0, 15.0, 25.0]})
    >>> distance_to_points(np.array([[5.0, 5.0]]), g).values.tolist()
    [[10.0, 14.142135623730951, 22.360679774997898], [0.0, 10.0, 20.0]]
    """
    # scipy is a heavy import used only here
    from scipy.spatial import cKDTree

    geom = grid_geometry(like)
    xyz = point_coords(points, like)
    tree = cKDTree(xyz) if len(xyz) else None
    data, dims = map_cells(like, _nearest_distance, dtype="float64", tree=tree)
    out = xr.DataArray(data, dims=dims, coords={d: like[d] for d in geom.dims}, name=name)
    out.attrs["units"] = "CRS units"
    crs = get_crs(like)
    return write_crs(out, crs) if crs is not None else out


def default_buffer(like: Grid, *, window: int | Sequence[int] = 1) -> float:
    """Return the default exclusion distance around known points: the edge of ``window`` cells.

    ``max(window) * max(|step|)`` in CRS units: one cell width by default, the window's
    edge for patch windows. A negative cell, or a window of ``window`` cells centred on a
    negative cell, whose centre lies farther than this from every deposit never holds a
    deposit (that needs only half the window's diagonal, at most 0.87 of its edge in 3-D).
    Every default buffer of the package (evaluation, element selection, baselines,
    patches, cross-validation) is this function.

    Parameters
    ----------
    like : Dataset or DataArray
        The grid.
    window : int or sequence of int
        Window edge in cells (per axis or one for all); 1 for single cells.

    Returns
    -------
    float
        The buffer in CRS units (0.0 for a grid of a single cell).

    Examples
    --------
    >>> import xarray as xr
    >>> g = xr.Dataset(coords={"y": [15.0, 5.0], "x": [5.0, 15.0, 25.0]})
    >>> default_buffer(g), default_buffer(g, window=8)
    (10.0, 80.0)
    """
    geom = grid_geometry(like)
    w = np.asarray(window)
    if w.size == 0 or not np.issubdtype(w.dtype, np.number) or (w < 1).any():
        raise DataError(f"window must be one or more cell counts >= 1; got {window!r}")
    return float(np.max(w) * max(abs(s) for s in geom.step))


# ---- negatives -----------------------------------------------------------------------------


def _valid_cells(like: Grid, shape: tuple[int, ...], mask: Any) -> np.ndarray:
    allowed = np.ones(shape, dtype=bool)
    if isinstance(like, xr.DataArray) and ELEMENT_DIM in like.dims:
        allowed &= xr.apply_ufunc(np.isfinite, like, dask="allowed").all(ELEMENT_DIM).values
    elif isinstance(like, xr.Dataset) and "mask" in like.data_vars:
        allowed &= like["mask"].values.astype(bool)
    if mask is not None:
        m = np.asarray(mask.values if isinstance(mask, xr.DataArray) else mask, dtype=bool)
        if m.shape != shape:
            raise DataError(f"mask has shape {m.shape}; the grid is {shape}")
        allowed &= m
    return allowed


def sample_negatives(
    like: Grid,
    points: Any,
    n: int,
    *,
    buffer: float | None = None,
    seed: int = 0,
    mask: xr.DataArray | np.ndarray | None = None,
) -> xr.Dataset:
    """Draw ``n`` random cell centres farther than ``buffer`` from every known point.

    Parameters
    ----------
    like : Dataset or DataArray
        The grid (a stack (``element``, y, x) counts a cell as valid only where every element
        is finite; a template's ``mask`` variable limits the cells too).
    points : points
        Known deposits (anything :func:`as_points` takes).
    n : int
        Number of negatives (cells are drawn without replacement).
    buffer : float, optional
        Exclusion distance from every point, in CRS units; :func:`default_buffer` when None.
    seed : int
        Random seed.
    mask : bool DataArray or array, optional
        Cells allowed (e.g. the study area); combined with the data-validity mask.

    Returns
    -------
    xarray.Dataset
        ``point`` Dataset of the negatives (ids ``N0, N1, ...``), with ``attrs`` ``buffer``,
        ``n``, ``seed``, ``candidates`` (cells that qualified) and ``excluded_by_buffer``.

    Raises
    ------
    DataError
        If ``n`` or ``buffer`` is negative or fewer than ``n`` cells qualify.

    Notes
    -----
    The distance and validity masks are global: this function computes them.
    """
    if n < 0:
        raise DataError(f"n must be >= 0; got {n}")
    buf = default_buffer(like) if buffer is None else float(buffer)
    if buf < 0:
        raise DataError(f"buffer must be >= 0; got {buffer}")
    pts = as_points(points, like=like)
    geom = grid_geometry(like)
    dist = np.asarray(distance_to_points(pts, _template(like)).values)
    allowed = _valid_cells(like, geom.shape, mask)
    n_valid = int(allowed.sum())
    cand = np.flatnonzero((allowed & (dist > buf)).ravel())
    if len(cand) < n:
        msg = (
            f"only {len(cand)} cells lie farther than buffer={buf} from the "
            f"{pts.sizes[POINT_DIM]} points (of {n_valid} valid cells); asked for {n} "
            "negatives: lower n or the buffer"
        )
        raise DataError(msg)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(cand, size=n, replace=False))
    out = cells_to_points(pick, like, "N")
    out.attrs.update(
        buffer=buf,
        n=int(n),
        seed=int(seed),
        candidates=len(cand),
        excluded_by_buffer=int(n_valid - len(cand)),
    )
    log.info(
        "negatives: %d drawn from %d cells outside a %.1f buffer (%d valid cells excluded)",
        n,
        len(cand),
        buf,
        n_valid - len(cand),
    )
    return out


# ---- cell lookups --------------------------------------------------------------------------


def _template(like: Grid) -> xr.Dataset:
    """Return a data-free Dataset with the grid's coordinates and CRS (nothing to compute)."""
    geom = grid_geometry(like)
    out = xr.Dataset(coords={d: like[d] for d in geom.dims})
    crs = get_crs(like)
    return write_crs(out, crs) if crs is not None else out


def cells_to_points(flat: np.ndarray, like: Grid, prefix: str = "C") -> xr.Dataset:
    """Cell centres of flat (C-order) cell indices as a ``point`` Dataset.

    Parameters
    ----------
    flat : numpy.ndarray
        Flat indices into the grid's shape (dims order).
    like : Dataset or DataArray
        The grid (its CRS is written on the result).
    prefix : str
        Point ids are ``f"{prefix}{i}"``.

    Returns
    -------
    xarray.Dataset
        ``point`` Dataset with the grid's coordinates of each cell centre.
    """
    geom = grid_geometry(like)
    ij = np.unravel_index(np.asarray(flat, dtype="int64"), geom.shape)
    coords: dict[str, Any] = {
        d: (POINT_DIM, np.asarray(like[d].values, "float64")[ij[a]])
        for a, d in enumerate(geom.dims)
    }
    coords["point_id"] = (POINT_DIM, np.array([f"{prefix}{i}" for i in range(len(ij[0]))]))
    out = xr.Dataset(coords=coords)
    crs = get_crs(like)
    return write_crs(out, crs) if crs is not None else out


def cells_near_points(points: Any, like: Grid, buffer: float) -> np.ndarray:
    """Flat indices of the cells whose centre lies within ``buffer`` (inclusive) of a point.

    Parameters
    ----------
    points : points
        Anything :func:`as_points` takes.
    like : Dataset or DataArray
        The grid (only its coordinates are used; nothing is computed).
    buffer : float
        Distance in CRS units, >= 0.

    Returns
    -------
    numpy.ndarray
        Sorted unique flat (C-order) int64 indices.
    """
    if buffer < 0:
        raise DataError(f"buffer must be >= 0; got {buffer}")
    dist = np.asarray(distance_to_points(points, _template(like)).values)
    return np.flatnonzero(dist.ravel() <= buffer).astype("int64")


@dataclass
class CellPoints:
    """Flat cell indices of points on a grid, with what was dropped and why.

    Attributes
    ----------
    flat : numpy.ndarray
        Flat (C-order) cell index of every point kept, in point order (a cell holding two
        points appears twice).
    n_points : int
        Points given.
    n_outside : int
        Points off the grid (dropped).
    n_nan : int
        Points on invalid (NaN) cells (dropped).
    ids : list of str
        ``point_id`` of every point kept.
    """

    flat: np.ndarray
    n_points: int
    n_outside: int = 0
    n_nan: int = 0
    ids: list[str] = field(default_factory=list)

    def info(self, prefix: str) -> dict[str, int]:
        """JSON-able counts, keys prefixed (e.g. ``deposits_used``)."""
        return {
            f"{prefix}_given": self.n_points,
            f"{prefix}_used": len(self.flat),
            f"{prefix}_outside_grid": self.n_outside,
            f"{prefix}_on_nan": self.n_nan,
        }


def point_cells(
    points: Any,
    like: Grid,
    valid: np.ndarray | None = None,
    what: str = "points",
    *,
    require: bool = True,
) -> CellPoints:
    """Flat indices of the cells holding ``points``; drop (and count) off-grid or invalid ones.

    Parameters
    ----------
    points : points
        Anything :func:`as_points` takes.
    like : Dataset or DataArray
        The grid.
    valid : numpy.ndarray, optional
        Boolean validity of every cell (grid shape), e.g. where a map is finite; points on
        invalid cells are dropped and counted in ``n_nan``.
    what : str
        What the points are, for messages (``"deposits"``, ``"negatives"``).
    require : bool
        Raise when no point is given or none is kept (points are never silently scored
        as nothing).

    Returns
    -------
    CellPoints
        The kept points' cells and ids, and the counts of those dropped (logged at INFO).

    Raises
    ------
    DataError
        With ``require``, if there are no points or none falls on a valid cell.
    """
    pts = as_points(points, like=like)
    n = int(pts.sizes[POINT_DIM])
    if n == 0 and require:
        raise DataError(f"{what} holds no points")
    geom = grid_geometry(like)
    idx, inside = points_to_index(pts, like)
    flat = (
        np.ravel_multi_index(tuple(idx[inside].T), geom.shape).astype("int64")
        if inside.any()
        else np.zeros(0, "int64")
    )
    ids = np.asarray(pts["point_id"].values).astype(str)[inside]
    ok = (
        np.ones(len(flat), dtype=bool)
        if valid is None
        else np.asarray(valid, dtype=bool).ravel()[flat]
    )
    out = CellPoints(
        flat=flat[ok],
        n_points=n,
        n_outside=int((~inside).sum()),
        n_nan=int((~ok).sum()),
        ids=[str(i) for i in ids[ok]],
    )
    if out.n_outside or out.n_nan:
        log.info(
            "%s: %d of %d points dropped (%d outside the grid, %d on NaN cells)",
            what,
            out.n_outside + out.n_nan,
            n,
            out.n_outside,
            out.n_nan,
        )
    if require and len(out.flat) == 0:
        msg = (
            f"none of the {n} {what} points falls on a finite cell of the map "
            f"({out.n_outside} outside the grid, {out.n_nan} on NaN cells)"
        )
        raise DataError(msg)
    return out


def negative_cells(
    like: Grid,
    valid: np.ndarray,
    deposits: Any,
    negatives: Any,
    *,
    buffer: float | None = None,
    seed: int = 0,
    n_default: int | None = None,
) -> tuple[CellPoints, dict[str, Any]]:
    """Cells used as negatives, and a JSON-able record of how they were chosen.

    Parameters
    ----------
    like : Dataset or DataArray
        The grid (e.g. a score map).
    valid : numpy.ndarray
        Boolean validity of every cell (grid shape).
    deposits : points
        Known deposits.
    negatives : None, int or points
        None: every valid cell farther than ``buffer`` from every deposit (or ``n_default``
        of them drawn at random when given). int: that many drawn with
        :func:`sample_negatives` outside ``buffer`` on valid cells only. Points: used as
        given, minus those off the grid or on invalid cells.
    buffer : float, optional
        Exclusion distance (CRS units); :func:`default_buffer` when None.
    seed : int
        Seed of the draw.
    n_default : int, optional
        Number drawn when ``negatives`` is None.

    Returns
    -------
    cells : CellPoints
        The negative cells.
    record : dict
        ``negatives`` (how), ``buffer``, ``n_negatives`` (and ``seed`` or the counts of
        given points dropped).
    """
    buf = default_buffer(like) if buffer is None else float(buffer)
    if buf < 0:
        raise DataError(f"buffer must be >= 0; got {buffer}")
    geom = grid_geometry(like)
    if negatives is None and n_default is not None:
        negatives = int(n_default)
    if negatives is None:
        dist = np.asarray(distance_to_points(deposits, _template(like)).values)
        flat = np.flatnonzero((np.asarray(valid, dtype=bool) & (dist > buf)).ravel())
        if len(flat) == 0:
            msg = (
                f"no valid cell lies farther than buffer={buf} from the deposits; lower the buffer"
            )
            raise DataError(msg)
        rec = {"negatives": "all cells outside buffer", "buffer": buf, "n_negatives": len(flat)}
        return CellPoints(flat=flat, n_points=len(flat)), rec
    if isinstance(negatives, (int, np.integer)) and not isinstance(negatives, bool):
        mask = np.asarray(valid, dtype=bool).reshape(geom.shape)
        pts = sample_negatives(
            _template(like), deposits, int(negatives), buffer=buf, seed=seed, mask=mask
        )
        cells = point_cells(pts, like, valid, "negatives")
        rec = {
            "negatives": "sampled",
            "buffer": buf,
            "n_negatives": len(cells.flat),
            "seed": int(seed),
        }
        return cells, rec
    cells = point_cells(negatives, like, valid, "negatives")
    rec = {
        "negatives": "given",
        "buffer": None,
        **cells.info("negatives"),
        "n_negatives": len(cells.flat),
    }
    return cells, rec


def sample_table(
    samples: xr.Dataset, n: int | None, elements: Sequence[str] | None
) -> tuple[list[str], np.ndarray]:
    """Element table ``(n_samples, n)`` of a point table, in the given element order.

    Parameters
    ----------
    samples : xarray.Dataset
        Point table along ``sample``.
    n : int or None
        Number of elements the model takes (None: any).
    elements : list of str, optional
        Variables in order; default every numeric variable along ``sample``.

    Returns
    -------
    names : list of str
    values : ndarray of float64
        One row per sample, one column per element.
    """
    if elements is None:
        names = [
            str(k)
            for k, v in samples.data_vars.items()
            if v.dims == (SAMPLE_DIM,) and np.issubdtype(v.dtype, np.number) and v.dtype != bool
        ]
    else:
        names = list(elements)
        missing = [e for e in names if e not in samples.data_vars]
        if missing:
            raise DataError(f"elements {missing} are not variables of the samples")
    if not names:
        raise DataError("the samples hold no numeric variable along 'sample'")
    if n is not None and len(names) != n:
        raise ModelCardError(
            f"the model takes {n} elements; the samples give {len(names)}: "
            f"{names} (pass elements=[...])"
        )
    values = np.stack([np.asarray(samples[e].values, dtype="float64") for e in names], axis=1)
    return names, values
