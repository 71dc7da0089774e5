"""Proximity: distances from cell and voxel centres to structures and samples, and masks.

* :func:`distance_to_structures` and :func:`buffer_structures`: distance to (and buffers
  around) faults, contacts and other structures given as triangulated surfaces, lines,
  polygons or points; exact point-triangle / point-segment distances through a
  bounding-volume hierarchy, points through a k-d tree;
* :func:`distance_to_samples` and :func:`mask_distance`: distance to the nearest sample
  (optionally in an anisotropic search metric) and the block model with every voxel
  beyond a chosen distance blanked, so nothing extrapolated beyond the drilling shows.

Every function evaluates its distances cell by cell through the package's one runner,
:func:`xprospect._dask.map_cells`: numpy in, numpy out; dask chunks in, a lazy result with
the same chunks out. Distance to deposit points lives with the points, in
:func:`xprospect.points.distance_to_points`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.spatial import cKDTree

from xprospect._dask import Block, map_cells
from xprospect._dims import (
    GRID_DIMS_2D,
    GRID_DIMS_3D,
    check_same_crs,
    get_crs,
    grid_geometry,
    parse_crs,
    sample_coords,
    write_crs,
)
from xprospect.evidence.mesh import _check_mesh_crs, _grid_result, _TriangleIndex, as_mesh
from xprospect.exceptions import DataError, GridError
from xprospect.grid.idw import anisotropy_matrix

__all__ = [
    "buffer_structures",
    "distance_to_samples",
    "distance_to_structures",
    "mask_distance",
    "sampling_density",
]

log = logging.getLogger(__name__)


def _xyz_centres(block: Block) -> np.ndarray:
    """Cell centres of a block as (ncells, 3) x, y, z columns (z = 0 on a 2-D grid)."""
    cen = block.centres()
    q = np.zeros((cen.shape[0], 3))
    for j, ax in enumerate(block.dims):
        q[:, "xyz".index(ax)] = cen[:, j]
    return q


# -- structures -----------------------------------------------------------------------


def _points_array(obj: Any, ndim: int, what: str) -> np.ndarray:
    axes = ("x", "y", "z")[:ndim]
    if isinstance(obj, xr.Dataset):
        cols = []
        for a in axes:
            if a not in obj.coords and a not in obj.data_vars:
                raise DataError(f"{what} has no {a!r} coordinate (needed on a {ndim}-D grid)")
            cols.append(np.asarray(obj[a].values, dtype="float64").ravel())
        arr = np.stack(cols, axis=1)
    elif isinstance(obj, pd.DataFrame):
        missing = [a for a in axes if a not in obj.columns]
        if missing:
            raise DataError(f"{what} has no columns {missing}; it has {list(obj.columns)}")
        arr = obj[list(axes)].to_numpy(dtype="float64")
    else:
        arr = np.asarray(obj, dtype="float64")
        if arr.ndim != 2 or arr.shape[1] not in (2, 3) or (ndim == 3 and arr.shape[1] != 3):
            raise DataError(
                f"{what} as an array must be (n, {ndim}) coordinates; got shape {arr.shape}"
            )
        arr = arr[:, :ndim]
    if arr.shape[0] == 0:
        raise DataError(f"{what} holds no points")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{what} has non-finite coordinates")
    out = np.zeros((arr.shape[0], 3))
    out[:, :ndim] = arr
    return out


def _shapely_parts(geom: Any, ndim: int, what: str, pts: list, segs: list) -> None:
    gtype = geom.geom_type
    if geom.is_empty:
        return
    if gtype in ("Point", "MultiPoint"):
        coords = (
            np.asarray([g.coords[0] for g in geom.geoms])
            if gtype == "MultiPoint"
            else np.asarray(geom.coords)
        )
        pts.append(_lift(coords, ndim, geom.has_z, what))
    elif gtype in ("LineString", "LinearRing"):
        c = _lift(np.asarray(geom.coords), ndim, geom.has_z, what)
        if len(c) == 1:
            pts.append(c)
        else:
            segs.append(np.stack([c[:-1], c[1:], c[1:]], axis=1))
    elif gtype == "Polygon":
        _shapely_parts(geom.exterior, ndim, what, pts, segs)
        for ring in geom.interiors:
            _shapely_parts(ring, ndim, what, pts, segs)
    elif hasattr(geom, "geoms"):
        for g in geom.geoms:
            _shapely_parts(g, ndim, what, pts, segs)
    else:  # pragma: no cover - every shapely type is handled above
        raise DataError(f"{what}: geometry type {gtype!r} is not supported")


def _lift(coords: np.ndarray, ndim: int, has_z: bool, what: str) -> np.ndarray:
    if ndim == 3 and not has_z:
        raise DataError(
            f"{what} has 2-D geometries; a voxel grid needs x, y, z coordinates "
            "(give 3-D lines or a triangulated surface)"
        )
    out = np.zeros((coords.shape[0], 3))
    out[:, :ndim] = coords[:, :ndim]
    return out


def _collect(
    structures: Any, like: xr.Dataset | xr.DataArray, ndim: int
) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """Split ``structures`` into points (n, 3) and triangles (m, 3, 3) in grid space."""
    import trimesh  # optional heavy dependency, only needed to recognise meshes

    items = list(structures) if isinstance(structures, (list, tuple)) else [structures]
    pts: list[np.ndarray] = []
    tris: list[np.ndarray] = []
    kinds: list[str] = []
    grid_crs = get_crs(like)
    for i, obj in enumerate(items):
        what = f"structure {i}" if len(items) > 1 else "the structures"
        if isinstance(obj, (str, Path, trimesh.Trimesh, trimesh.Scene)):
            if ndim != 3:
                raise GridError(
                    f"{what} is a triangulated surface; it needs a voxel grid "
                    "(z, y, x). On a 2-D grid give its trace as lines or points"
                )
            mesh = as_mesh(obj, what=what)
            _check_mesh_crs(mesh, like, what)
            tris.append(np.asarray(mesh.triangles, dtype="float64"))
            kinds.append(f"mesh ({len(mesh.faces)} triangles)")
            continue
        if hasattr(obj, "geom_type") or hasattr(obj, "geometry"):
            crs = getattr(obj, "crs", None)
            if crs is not None and grid_crs is not None:
                check_same_crs(parse_crs(crs), grid_crs, what, "the grid (like=)")
            geoms = list(obj.geometry) if hasattr(obj, "geometry") else [obj]
            p: list[np.ndarray] = []
            s: list[np.ndarray] = []
            for g in geoms:
                if g is not None:
                    _shapely_parts(g, ndim, what, p, s)
            pts += p
            tris += s
            kinds.append(
                f"geometries ({sum(len(a) for a in s)} segments, {sum(len(a) for a in p)} points)"
            )
            continue
        if isinstance(obj, xr.Dataset):
            crs = get_crs(obj)
            if crs is not None and grid_crs is not None:
                check_same_crs(crs, grid_crs, what, "the grid (like=)")
        arr = _points_array(obj, ndim, what)
        pts.append(arr)
        kinds.append(f"points ({len(arr)})")
    p_all = np.concatenate(pts) if pts else None
    t_all = np.concatenate(tris) if tris else None
    return p_all, t_all, kinds


def _structure_block(
    block: Block, *, index: _TriangleIndex | None, tree: Any, max_distance: float, out_dtype: Any
) -> np.ndarray:
    q = _xyz_centres(block)
    best = np.full(q.shape[0], np.inf)
    if index is not None:
        best = np.minimum(best, index.query(q, max_distance, parallel=block.parallel))
    if tree is not None:
        # scipy's bound is strict: widen it a hair so cells exactly at the cap count
        bound = max_distance * (1 + 1e-9) + 1e-12 if np.isfinite(max_distance) else np.inf
        d, _ = tree.query(q, k=1, distance_upper_bound=bound)
        best = np.minimum(best, d)
    if np.isfinite(max_distance):
        best[best > max_distance] = np.inf
    return best.reshape(block.shape).astype(out_dtype, copy=False)


def distance_to_structures(
    like: xr.Dataset | xr.DataArray,
    structures: Any,
    *,
    max_distance: float | None = None,
    name: str = "structure_distance",
    dtype: Any = "float32",
) -> xr.DataArray:
    """Euclidean distance from each cell centre to the nearest structure.

    Structures may be triangulated surfaces (fault or contact wireframes: a
    ``trimesh.Trimesh`` or a mesh file path, voxel grids only), point sets (a ``point``
    Dataset from :func:`~xprospect.evidence.read_points`, a DataFrame with ``x``,
    ``y`` [, ``z``] columns or an (n, 2|3) array), shapely geometries or a
    GeoDataFrame/GeoSeries (lines as exact segments; polygons by their boundary;
    points), or a list mixing them. Surfaces and lines use exact point-triangle /
    point-segment distances through a bounding-volume hierarchy, points a k-d tree.
    Lazy per dask chunk of ``like``.

    Parameters
    ----------
    like : xarray.Dataset or DataArray
        Grid (y, x) or voxels (z, y, x).
    structures : mesh, path, points, geometries or a list of them
        In ``like``'s CRS (checked when they carry one).
    max_distance : float, optional
        Search no farther; cells beyond get ``inf``.
    name : str
        Result name.
    dtype : dtype
        Output dtype.

    Returns
    -------
    xarray.DataArray
        Distances in CRS units on ``like``'s grid and CRS.

    Raises
    ------
    DataError
        Unusable structures (empty, non-finite, 2-D geometries on voxels).
    GridError
        A surface given for a 2-D grid.
    CRSError
        A CRS mismatch.

    Examples
    --------
    >>> import numpy as np
    >>> import xprospect as xp
    >>> grid = xp.make_grid((0, 0, 4, 4), resolution=1, crs="EPSG:28350")
    >>> d = xp.evidence.distance_to_structures(grid, np.array([[0.5, 0.5]]))
    >>> float(d.sel(y=3.5, x=0.5))
    3.0
    """
    geom = grid_geometry(like)
    pts, tris, kinds = _collect(structures, like, geom.ndim)
    cap = np.inf if max_distance is None else float(max_distance)
    if not cap > 0:
        raise DataError(f"max_distance must be > 0; got {max_distance!r}")
    index = _TriangleIndex(tris) if tris is not None else None
    tree = cKDTree(pts) if pts is not None else None
    dtype = np.dtype(dtype)
    data, dims = map_cells(
        like,
        _structure_block,
        dtype=dtype,
        index=index,
        tree=tree,
        max_distance=cap,
        out_dtype=dtype,
    )
    attrs: dict[str, Any] = {
        "units": "CRS units",
        "long_name": "distance to structures",
        "structures": "; ".join(kinds),
        "method": "exact distance to triangles/segments (BVH) and points (k-d tree)",
    }
    if max_distance is not None:
        attrs["max_distance"] = cap
    return _grid_result(data, like, dims, name, attrs)


def buffer_structures(
    like: xr.Dataset | xr.DataArray,
    structures: Any,
    distance: float = 30.0,
    *,
    name: str = "structure_buffer",
) -> xr.DataArray:
    """Cells within ``distance`` of a structure (the "30 m fracture buffer" layer).

    Parameters
    ----------
    like : xarray.Dataset or DataArray
        Grid or voxels.
    structures : see :func:`distance_to_structures`
    distance : float
        Buffer width in CRS units (> 0); a cell centre exactly at it is inside.
    name : str
        Result name.

    Returns
    -------
    xarray.DataArray
        Boolean, True inside the buffer; lazy per chunk.

    Examples
    --------
    >>> import numpy as np
    >>> import xprospect as xp
    >>> grid = xp.make_grid((0, 0, 4, 4), resolution=1, crs="EPSG:28350")
    >>> int(xp.evidence.buffer_structures(grid, np.array([[0.5, 0.5]]), 1.0).sum())
    3
    """
    width = float(distance)
    if not width > 0:
        raise DataError(f"buffer distance must be > 0; got {distance!r}")
    d = distance_to_structures(like, structures, max_distance=width, dtype="float64")
    out = d <= width
    out.name = name
    out.attrs = {
        "long_name": f"within {width:g} of structures",
        "distance": width,
        "structures": d.attrs["structures"],
    }
    crs = get_crs(like)
    return write_crs(out, crs) if crs is not None else out


# -- samples ----------------------------------------------------------------------------


def _search_points(samples: xr.Dataset, ndim: int, amat: np.ndarray) -> np.ndarray:
    c = sample_coords(samples)
    if ndim == 3 and "z" not in c:
        raise DataError("masking a voxel grid needs samples with a 'z' coordinate")
    z = c["z"] if ndim == 3 else np.zeros_like(c["x"])
    pts = np.column_stack([c["x"], c["y"], z])
    ok = np.all(np.isfinite(pts), axis=1)
    if not ok.any():
        raise DataError("the samples have no finite coordinates to measure distances from")
    return pts[ok] @ amat.T


def _sample_tree(samples: xr.Dataset, ndim: int, amat: np.ndarray) -> Any:
    """Build the KD-tree of the samples' search coordinates (both distance functions')."""
    from sklearn.neighbors import KDTree  # lazy: scikit-learn's tree, as this module always used

    return KDTree(_search_points(samples, ndim, amat))


def distance_to_samples_at(
    xyz: Any, samples: xr.Dataset, *, anisotropy: Mapping[str, Any] | None = None
) -> np.ndarray:
    """Distance from each point to the nearest sample, measured as :func:`distance_to_samples`.

    Parameters
    ----------
    xyz : array_like, shape (n, 3)
        Points as ``x, y, z`` columns in the samples' CRS (voxel centres, say).
    samples : xarray.Dataset
        Samples along ``sample`` with ``x``, ``y`` and ``z``.
    anisotropy : dict, optional
        See :func:`distance_to_samples`.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64 distances; ``distance_to_samples_at(c, s) <= r`` is the test
        :func:`mask_distance` applies to a voxel centred at ``c``.
    """
    amat = anisotropy_matrix(anisotropy, 3)
    q = np.asarray(xyz, dtype="float64").reshape(-1, 3) @ amat.T
    if not len(q):
        return np.empty(0)
    d, _ = _sample_tree(samples, 3, amat).query(q, k=1)
    return np.asarray(d[:, 0])


def _sample_distance_block(block: Block, *, tree: Any, amat: np.ndarray) -> np.ndarray:
    """Distance from each cell centre of a block to the nearest sample."""
    q = _xyz_centres(block) @ amat.T
    if not q.size:
        return np.empty(block.shape)
    d, _ = tree.query(q, k=1)
    return d[:, 0].reshape(block.shape)


def distance_to_samples(
    like: xr.Dataset | xr.DataArray,
    samples: xr.Dataset,
    *,
    anisotropy: Mapping[str, Any] | None = None,
) -> xr.DataArray:
    """Distance from every cell or voxel centre to the nearest sample.

    Parameters
    ----------
    like : xarray.Dataset or DataArray
        A grid (y, x) or voxel block (z, y, x); its dask chunks (of the first variable on the
        grid dims, if any) are the result's.
    samples : xarray.Dataset
        Samples along ``sample`` with ``x``, ``y`` (and ``z``) in the grid's CRS.
    anisotropy : dict, optional
        Measure distance in the search ellipsoid's metric (see
        :func:`xprospect.grid.idw.anisotropy_matrix`): distances are in units of the major
        range.

    Returns
    -------
    xarray.DataArray
        ``distance`` (float64) on the grid's dims and coordinates, with its CRS; lazy when the
        grid is chunked (a scikit-learn KD-tree over the samples is built once and shared).

    Examples
    --------
    >>> import xarray as xr
    >>> import xprospect as xp
    >>> grid = xp.make_grid((0, 0, 40, 30), resolution=10, crs="EPSG:28350")
    >>> s = xr.Dataset(coords={"x": ("sample", [5.0]), "y": ("sample", [25.0])})
    >>> float(distance_to_samples(grid, s.rio.write_crs("EPSG:28350")).sel(x=35, y=25))
    30.0
    """
    attrs = {"long_name": "distance to the nearest sample"}
    return _per_cell(like, samples, _sample_distance_block, "distance", attrs, anisotropy)


def _per_cell(
    like: xr.Dataset | xr.DataArray,
    samples: xr.Dataset,
    block_fn: Any,
    name: str,
    attrs: dict[str, Any],
    anisotropy: Mapping[str, Any] | None,
    **kwargs: Any,
) -> xr.DataArray:
    """Map ``block_fn`` (a block, the samples' KD-tree, the anisotropy matrix) over the cells.

    The one path of :func:`distance_to_samples` and :func:`sampling_density`: CRS check, one
    tree shared by every chunk, the result on the grid's dims, coordinates and CRS.
    """
    geom = grid_geometry(like)
    s_crs, g_crs = get_crs(samples), get_crs(like)
    if s_crs is not None and g_crs is not None:
        check_same_crs(s_crs, g_crs, "the samples", "the block")
    amat = anisotropy_matrix(anisotropy, geom.ndim)
    tree = _sample_tree(samples, geom.ndim, amat)
    data, dims = map_cells(like, block_fn, dtype="float64", tree=tree, amat=amat, **kwargs)
    out = xr.DataArray(data, dims=dims, coords={k: like[k] for k in dims}, name=name, attrs=attrs)
    crs = g_crs if g_crs is not None else s_crs
    return write_crs(out, crs) if crs is not None else out


def _sample_count_block(block: Block, *, tree: Any, amat: np.ndarray, radius: float) -> np.ndarray:
    """Count the samples within ``radius`` of each cell centre of a block."""
    q = _xyz_centres(block) @ amat.T
    if not q.size:
        return np.empty(block.shape)
    counts = tree.query_radius(q, r=radius, count_only=True)
    return np.asarray(counts, dtype="float64").reshape(block.shape)


def sampling_density(
    like: xr.Dataset | xr.DataArray,
    samples: xr.Dataset,
    *,
    radius: float,
    anisotropy: Mapping[str, Any] | None = None,
) -> xr.DataArray:
    """Count the samples within ``radius`` of every cell or voxel centre: where sampling is.

    A geometry layer, not chemistry: put it in a stack beside the elements and run it as a
    raw layer of :func:`xprospect.benchmark` (``"raw:sampling_density"``) to see how much
    of a table where sampling is dense or sparse explains (a sampling-bias layer, as species
    distribution models use). A learned model that ranks deposits no better than it has
    learned the survey's layout, not its geochemistry.

    Parameters
    ----------
    like : xarray.Dataset or DataArray
        A grid (y, x) or voxel block (z, y, x); its dask chunks are the result's.
    samples : xarray.Dataset
        Samples along ``sample`` with ``x``, ``y`` (and ``z``) in the grid's CRS.
    radius : float
        Search radius in CRS units (> 0; in units of the major range with ``anisotropy``);
        a sample exactly at it counts.
    anisotropy : dict, optional
        Count in a search ellipsoid (see :func:`distance_to_samples`).

    Returns
    -------
    xarray.DataArray
        ``sampling_density`` (float64 counts) on the grid's dims and coordinates, with its
        CRS; lazy when the grid is chunked (one scikit-learn KD-tree, shared).

    Raises
    ------
    DataError
        A radius that is not a positive number, or samples without finite coordinates.

    Examples
    --------
    >>> import xarray as xr
    >>> import xprospect as xp
    >>> grid = xp.make_grid((0, 0, 40, 30), resolution=10, crs="EPSG:28350")
    >>> s = xr.Dataset(coords={"x": ("sample", [5.0, 15.0]), "y": ("sample", [25.0, 25.0])})
    >>> d = sampling_density(grid, s.rio.write_crs("EPSG:28350"), radius=10.0)
    >>> [float(d.sel(x=x, y=25)) for x in (5, 15, 25, 35)]
    [2.0, 2.0, 1.0, 0.0]
    """
    msg = f"sampling_density radius must be a positive number; got {radius!r}"
    try:
        r = float(radius)
    except (TypeError, ValueError):
        raise DataError(msg) from None
    if not np.isfinite(r) or not r > 0:
        raise DataError(msg)
    attrs = {"long_name": f"samples within {r:g} of the cell centre", "radius": r}
    return _per_cell(
        like, samples, _sample_count_block, "sampling_density", attrs, anisotropy, radius=r
    )


def mask_distance(
    block: xr.Dataset | xr.DataArray,
    samples: xr.Dataset,
    *,
    max_distance: float,
    anisotropy: Mapping[str, Any] | None = None,
) -> xr.Dataset | xr.DataArray:
    """Set to NaN every voxel farther than ``max_distance`` from all samples.

    Parameters
    ----------
    block : xarray.Dataset or DataArray
        Voxel block (z, y, x) or grid (y, x), numpy or dask backed.
    samples : xarray.Dataset
        The samples the block was gridded from (same CRS).
    max_distance : float
        In CRS units (in units of the major range with ``anisotropy``). Voxels at exactly
        this distance are kept.
    anisotropy : dict, optional
        Measure distance in a search ellipsoid (see :func:`distance_to_samples`).

    Returns
    -------
    xarray.Dataset or DataArray
        ``block`` with float variables on the grid dims NaN beyond ``max_distance`` (other
        variables, e.g. a boolean ``mask``, are left alone); attrs record the distance. Lazy
        when ``block`` is chunked.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> import xprospect as xp
    >>> vox = xp.make_voxels((0, 0, 0, 100, 100, 100), resolution=50, crs="EPSG:28350")
    >>> block = vox.assign(Cu=(("z", "y", "x"), np.ones((2, 2, 2))))
    >>> s = xr.Dataset(coords={"x": ("sample", [25.0]), "y": ("sample", [75.0]),
    ...                        "z": ("sample", [25.0])}).rio.write_crs("EPSG:28350")
    >>> int(mask_distance(block, s, max_distance=10)["Cu"].notnull().sum())
    1
    """
    r = float(max_distance)
    if not math.isfinite(r) or r <= 0:
        raise GridError(f"max_distance must be a positive number; got {max_distance!r}")
    dims = GRID_DIMS_3D if "z" in block.dims else GRID_DIMS_2D
    near = distance_to_samples(block, samples, anisotropy=anisotropy) <= r

    def _mask(v: xr.DataArray) -> xr.DataArray:
        if not set(dims) <= set(v.dims) or not np.issubdtype(v.dtype, np.floating):
            return v
        out = v.where(near)
        out.attrs = dict(v.attrs)
        out.attrs["masked_beyond_distance"] = r
        return out

    out: xr.Dataset | xr.DataArray
    if isinstance(block, xr.DataArray):
        out = _mask(block)
    else:
        out = block.copy(deep=False)
        for name in block.data_vars:
            out[name] = _mask(block[name])
    out.attrs["masked_beyond_distance"] = r
    crs = get_crs(block)
    return write_crs(out, crs) if crs is not None else out
