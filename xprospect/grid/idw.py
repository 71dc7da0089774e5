"""Inverse-distance-weighted gridding of sample tables onto 2-D grids and 3-D voxels."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from xprospect._dask import Block, map_cells, study_mask
from xprospect._dims import (
    SAMPLE_DIM,
    GridGeometry,
    check_same_crs,
    element_vars,
    grid_geometry,
    require_crs,
    sample_coords,
    write_crs,
)
from xprospect.exceptions import DataError, GridError
from xprospect.grid import _kernels

__all__ = ["anisotropy_matrix", "grid_idw"]

# Query tiles sharing one candidate list, per (z, y, x).
_TILE_2D = (1, 16, 16)
_TILE_3D = (4, 4, 8)


def anisotropy_matrix(anisotropy: Mapping[str, Any] | None, ndim: int) -> np.ndarray:
    """Linear map from (x, y, z) offsets to isotropic search space.

    Distances in the mapped space are in units of the major range: a point on the
    search ellipsoid's surface at ``ranges[i]`` along axis ``i`` maps to distance
    ``ranges[0]``. So ``radius`` keeps its meaning along the major axis.

    Parameters
    ----------
    anisotropy : dict or None
        ``ranges`` (major, minor) in 2-D or (major, semi-major, minor) in 3-D;
        ``azimuth`` of the major axis in degrees clockwise from north; in 3-D also
        ``dip`` of the major axis in degrees (negative points down) and ``rake``,
        the rotation of the semi-major axis about the major axis, in degrees.
    ndim : int
        2 or 3.

    Returns
    -------
    numpy.ndarray
        (3, 3) matrix acting on column vectors (x, y, z).
    """
    if anisotropy is None:
        return np.eye(3)
    if not isinstance(anisotropy, Mapping):
        msg = f"anisotropy must be a dict with 'ranges' (and angles); got {anisotropy!r}"
        raise GridError(msg)
    allowed = {"ranges", "azimuth", "dip", "rake"} if ndim == 3 else {"ranges", "azimuth"}
    unknown = set(anisotropy) - allowed
    if unknown:
        raise GridError(f"anisotropy has unknown keys {sorted(unknown)} for a {ndim}-D grid; "
                        f"allowed: {sorted(allowed)}")
    if "ranges" not in anisotropy:
        raise GridError("anisotropy needs 'ranges'")
    ranges = np.asarray(anisotropy["ranges"], dtype="float64").ravel()
    if ranges.size != ndim or not np.all(np.isfinite(ranges)) or np.any(ranges <= 0):
        raise GridError(f"anisotropy ranges must be {ndim} positive numbers; got "
                        f"{anisotropy['ranges']!r}")
    az = math.radians(float(anisotropy.get("azimuth", 0.0)))
    dip = math.radians(float(anisotropy.get("dip", 0.0)))
    rake = math.radians(float(anisotropy.get("rake", 0.0)))
    u1 = np.array([math.sin(az) * math.cos(dip), math.cos(az) * math.cos(dip), math.sin(dip)])
    u2 = np.array([math.cos(az), -math.sin(az), 0.0])
    u3 = np.cross(u1, u2)
    if ndim == 3:
        cr, sr = math.cos(rake), math.sin(rake)
        u2, u3 = cr * u2 + sr * u3, -sr * u2 + cr * u3
        rows = [u1, u2, u3]
        full = ranges
    else:
        rows = [u1, u2, np.array([0.0, 0.0, 1.0])]
        full = np.array([ranges[0], ranges[1], ranges[0]])
    scale = full[0] / full
    return np.vstack([r * s for r, s in zip(rows, scale, strict=True)])


@dataclass
class _Group:
    """Samples sharing one set of valid values: one neighbour search serves them all."""

    points: np.ndarray  # (n, 3) bucket-sorted, (z, y, x) columns, search space
    values: np.ndarray  # (n, ne) float64, same order
    start: np.ndarray
    blo: np.ndarray
    bsize: float
    bshape: np.ndarray
    eidx: np.ndarray  # output slots


def _validate_params(k, power, radius, min_points) -> tuple[int, float, float, int]:
    if k is None:
        if radius is None:
            raise GridError("k=None (every sample within the radius) needs a radius")
        k_int = 0
    else:
        if isinstance(k, bool) or not float(k).is_integer() or k < 1:
            raise GridError(f"k must be an integer >= 1 (or None with a radius); got {k!r}")
        k_int = int(k)
    if isinstance(power, bool) or not np.isfinite(power) or power <= 0:
        raise GridError(f"power must be a finite number > 0; got {power!r}")
    if radius is None:
        r = math.inf
    else:
        r = float(radius)
        if not np.isfinite(r) or r <= 0:
            raise GridError(f"radius must be a finite number > 0 (or None); got {radius!r}")
    if isinstance(min_points, bool) or not float(min_points).is_integer() or min_points < 1:
        raise GridError(f"min_points must be an integer >= 1; got {min_points!r}")
    if k_int and min_points > k_int:
        raise GridError(f"min_points={min_points} can never be reached with k={k_int}")
    return k_int, float(power), r, int(min_points)


def _select_elements(samples: xr.Dataset, elements: Sequence[str] | None) -> list[str]:
    if elements is None:
        names = element_vars(samples, (SAMPLE_DIM,))
        if not names:
            raise DataError("samples hold no numeric variables along 'sample' to grid")
        return names
    if isinstance(elements, str):
        elements = [elements]
    names = list(elements)
    for n in names:
        if n not in samples.data_vars:
            raise DataError(f"element {n!r} is not in the samples; they hold "
                            f"{sorted(map(str, samples.data_vars))}")
        var = samples[n]
        if var.dims != (SAMPLE_DIM,):
            raise DataError(f"element {n!r} has dims {var.dims}, expected ('sample',)")
        if not np.issubdtype(var.dtype, np.number) or np.issubdtype(var.dtype, np.complexfloating):
            raise DataError(f"element {n!r} is not numeric (dtype {var.dtype})")
    return names


def _search_space(samples: xr.Dataset, geom: GridGeometry, amat: np.ndarray):
    """Sample points and the query lattice, both in (z, y, x) search-space columns."""
    c = sample_coords(samples)
    n = c["x"].size
    if geom.ndim == 3 and "z" not in c:
        raise GridError("a voxel grid (z, y, x) needs samples with a 'z' coordinate")
    z = c["z"] if geom.ndim == 3 else np.zeros(n)
    xyz = np.column_stack([c["x"], c["y"], z])
    bad = ~np.all(np.isfinite(xyz), axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = (f"{int(bad.sum())} samples have missing or non-finite coordinates, e.g. sample "
               f"{i} at (x={xyz[i, 0]!r}, y={xyz[i, 1]!r}, z={xyz[i, 2]!r})")
        raise DataError(msg)
    # translate to the grid's first node first: the maths stays well conditioned
    o = dict(zip(geom.dims, geom.origin, strict=True))
    ref = np.array([o["x"], o["y"], o.get("z", 0.0)])
    pts = (xyz - ref) @ amat.T
    step = dict(zip(geom.dims, geom.step, strict=True))
    unit = {"x": np.array([1.0, 0, 0]), "y": np.array([0, 1.0, 0]), "z": np.array([0, 0, 1.0])}
    lattice_dims = ("z", "y", "x")
    axes = np.zeros((3, 3))
    for a, d in enumerate(lattice_dims):
        if d in step:
            axes[a] = amat @ (unit[d] * step[d])
    zyx = [2, 1, 0]
    return np.ascontiguousarray(pts[:, zyx]), np.ascontiguousarray(axes[:, zyx]), xyz


def _check_overlap(xyz: np.ndarray, geom: GridGeometry, radius: float, amat: np.ndarray) -> None:
    b = geom.bounds()
    # a radius along the major axis reaches at most radius * max stretch in world units
    reach = 0.0 if not np.isfinite(radius) else radius / float(np.linalg.svd(amat)[1].min())
    for a, d in enumerate(("x", "y", "z")):
        if d not in b:
            continue
        lo, hi = float(xyz[:, a].min()), float(xyz[:, a].max())
        if hi + reach < b[d][0] or lo - reach > b[d][1]:
            msg = (f"the template does not overlap the samples: along {d} the grid spans "
                   f"[{b[d][0]:.6g}, {b[d][1]:.6g}] but the samples span [{lo:.6g}, {hi:.6g}]; "
                   "check that both are in the same CRS")
            raise GridError(msg)


def _groups(samples, names, pts) -> list[_Group]:
    """Group elements by their pattern of valid samples."""
    values = []
    masks: dict[bytes, list[int]] = {}
    for i, n in enumerate(names):
        v = np.asarray(samples[n].values, dtype="float64")
        ok = np.isfinite(v)
        if not ok.any():
            raise DataError(f"element {n!r} has no valid values: every sample is missing")
        values.append(v)
        masks.setdefault(np.packbits(ok).tobytes() + bytes([ok.size % 8]), []).append(i)
    out = []
    for slots in masks.values():
        ok = np.isfinite(values[slots[0]])
        p = pts[ok]
        vals = np.column_stack([values[i][ok] for i in slots])
        order, start, blo, bsize, bshape = _kernels.bucket_points(p)
        out.append(_Group(np.ascontiguousarray(p[order]), np.ascontiguousarray(vals[order]),
                          start, blo, bsize, bshape, np.asarray(slots, dtype=np.int64)))
    return out


def _run(groups, origin, axes, qshape, tile, params, nout, dtype, parallel: bool) -> np.ndarray:
    k, power, radius, min_points = params
    # filled in one sequential pass: cheaper than the page faults the kernel's threads
    # would otherwise take on first touch, and NaN wherever nothing is written
    out = np.full((nout, *qshape), np.nan, dtype=dtype)
    kernel = _kernels.idw_grid_parallel if parallel else _kernels.idw_grid_serial
    for g in groups:
        kernel(g.points, g.values, g.start, g.blo, g.bsize, g.bshape, origin, axes,
               np.asarray(qshape, dtype=np.int64), np.asarray(tile, dtype=np.int64),
               k, power, radius, min_points, g.eidx, out)
    return out


def _idw_block(block: Block, *, groups, origin, axes, tile, params, n_out, out_dtype
               ) -> np.ndarray:
    """IDW on one block of cells: the lattice origin moves to the block's first node."""
    starts, shape = list(block.start), list(block.shape)
    if block.ndim == 2:
        starts, shape = [0, *starts], [1, *shape]
    o = origin + np.asarray(starts, dtype="float64") @ axes
    out = _run(groups, o, axes, tuple(shape), tile, params, n_out, out_dtype,
               parallel=block.parallel)
    return out if block.ndim == 3 else out[:, 0]


def grid_idw(
    samples: xr.Dataset,
    *,
    like: xr.Dataset | xr.DataArray,
    k: int | None = 12,
    power: float = 2.0,
    radius: float | None = None,
    min_points: int = 1,
    anisotropy: Mapping[str, Any] | None = None,
    elements: Sequence[str] | None = None,
    dtype: str | np.dtype = "float32",
    chunks: int | Sequence[int] | Mapping[str, int] | None = None,
) -> xr.Dataset:
    """Grid every element of a sample table onto a template by inverse distance weighting.

    Each cell gets ``sum(w_i v_i) / sum(w_i)`` over its ``k`` nearest samples
    (optionally only those within ``radius``), with ``w_i = 1 / d_i ** power``. A cell
    that coincides with samples takes their value (their mean if several), so the
    map is exact at sample locations. Per element, only samples that have a value
    for it are used: a sample missing one element still counts for the others.
    Elements that share the same valid samples share one neighbour search.

    Parameters
    ----------
    samples : xarray.Dataset
        Point table with dim ``sample``, coordinates ``x``, ``y`` (and ``z``) and a CRS.
    like : xarray.Dataset or DataArray
        The template (``make_grid`` / ``make_voxels``) or any grid on the same
        lattice; its CRS must equal the samples'. Its dask chunks, if any, are the
        output's chunks.
    k : int or None
        Number of nearest samples. None uses every sample within ``radius``.
    power : float
        Distance exponent (> 0).
    radius : float, optional
        Search radius in CRS units (along the major axis with ``anisotropy``).
        Cells with fewer than ``min_points`` samples within it are NaN.
    min_points : int
        Minimum neighbours for a value.
    anisotropy : dict, optional
        Search ellipsoid; see :func:`anisotropy_matrix`.
    elements : list of str, optional
        Variables to grid (default: every numeric variable along ``sample``).
    dtype : dtype
        Output dtype (computation is float64).
    chunks : int, tuple or dict, optional
        Override the output chunks (dask).

    Returns
    -------
    xarray.Dataset
        One variable per element on the template's dims and coordinates, with the
        template's CRS; lazy (dask) when the template is chunked.

    Examples
    --------
    >>> import xprospect as xp
    >>> world = xp.synthetic.survey(seed=0, n_samples=300, elements=["Au", "Cu"])
    >>> grid = xp.make_grid(like=world.samples, resolution=1000)
    >>> maps = xp.grid_idw(world.samples, like=grid, k=8)
    >>> sorted(maps.data_vars)
    ['Au', 'Cu']
    """
    if not isinstance(samples, xr.Dataset):
        raise DataError(f"samples must be an xarray.Dataset with dim 'sample'; got {type(samples)}")
    if SAMPLE_DIM not in samples.dims:
        raise DataError(f"samples must have a 'sample' dimension; got dims {tuple(samples.dims)}")
    params = _validate_params(k, power, radius, min_points)
    geom = grid_geometry(like)
    s_crs = require_crs(samples, "the samples")
    g_crs = require_crs(like, "the template (like=)")
    check_same_crs(s_crs, g_crs, "the samples", "the template (like=)")
    names = _select_elements(samples, elements)
    amat = anisotropy_matrix(anisotropy, geom.ndim)
    pts, axes, xyz = _search_space(samples, geom, amat)
    _check_overlap(xyz, geom, params[2], amat)
    groups = _groups(samples, names, pts)
    dtype = np.dtype(dtype)
    nout = len(names)
    origin = np.zeros(3)
    tile = _TILE_3D if geom.ndim == 3 else _TILE_2D
    data, _ = map_cells(like, _idw_block, dtype=dtype, nout=nout, chunks=chunks,
                        mask=study_mask(like), groups=groups, origin=origin, axes=axes,
                        tile=tile, params=params, n_out=nout, out_dtype=dtype)
    return _to_dataset(samples, like, names, data, geom, params, anisotropy)


def _to_dataset(samples, like, names, data, geom, params, anisotropy) -> xr.Dataset:
    k, power, radius, min_points = params
    coords = {d: like[d] for d in geom.dims}
    out = xr.Dataset(coords=coords)
    for i, n in enumerate(names):
        attrs = dict(samples[n].attrs)
        attrs["gridding"] = "idw"
        out[n] = (geom.dims, data[i], attrs)
    out.attrs.update({k_: v for k_, v in samples.attrs.items() if k_ in ("title", "source")})
    out.attrs["idw_k"] = int(k) if k else "all within radius"
    out.attrs["idw_power"] = power
    if np.isfinite(radius):
        out.attrs["idw_radius"] = radius
    out.attrs["idw_min_points"] = min_points
    if anisotropy is not None:
        out.attrs["idw_anisotropy"] = {kk: (list(v) if isinstance(v, (list, tuple)) else v)
                                       for kk, v in anisotropy.items()}
    return write_crs(out, like.rio.crs)
