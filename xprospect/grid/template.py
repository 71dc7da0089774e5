"""Empty georeferenced templates: 2-D grids (y, x) and 3-D voxel block models (z, y, x).

Conventions (see ``docs/conventions.md``): coordinates are cell centres; ``y`` is
descending (north-up, row 0 is the northern edge); ``z`` is ascending elevation;
cell edges are snapped to whole multiples of the resolution so that two templates
made with the same resolution over overlapping areas share cell boundaries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from xprospect._dask import even_chunks
from xprospect._dims import (
    check_same_crs,
    get_crs,
    grid_geometry,
    parse_crs,
    sample_coords,
    write_crs,
)
from xprospect.exceptions import CRSError, GridError

__all__ = ["make_grid", "make_voxels"]

# Templates whose cells exceed these counts are refused before anything is allocated: an
# in-memory template (a bool mask, and every float layer gridded onto it) and a lazy one
# (dask; the coordinates alone are allocated, but a 2**40-cell map is no one's intent).
MAX_CELLS_IN_MEMORY = 2**31
MAX_CELLS_LAZY = 2**40


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if nbytes < 1024 or unit == "EiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} EiB"  # pragma: no cover


def _as_tuple(value: float | Sequence[float], n: int, name: str) -> tuple[float, ...]:
    if np.isscalar(value):
        out = (float(value),) * n  # type: ignore[arg-type]
    else:
        out = tuple(float(v) for v in value)  # type: ignore[union-attr]
        if len(out) != n:
            raise GridError(f"{name} must be a number or {n} numbers; got {value!r}")
    if not all(math.isfinite(v) for v in out):
        raise GridError(f"{name} must be finite; got {value!r}")
    return out


def _edges(lo: float, hi: float, res: float, pad: float, name: str) -> tuple[float, int]:
    """Snap [lo - pad, hi + pad] outwards to multiples of ``res``; return (start, n)."""
    if res <= 0:
        raise GridError(f"resolution along {name} must be > 0; got {res!r}")
    if pad < 0:
        raise GridError(f"pad along {name} must be >= 0; got {pad!r}")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise GridError(f"bounds along {name} must be finite; got min {lo!r}, max {hi!r}")
    if not hi >= lo:
        raise GridError(f"bounds along {name} are inverted: min {lo!r} > max {hi!r}")
    cells = ((hi + pad) - (lo - pad)) / res + 2
    if not math.isfinite(cells) or cells > MAX_CELLS_LAZY:
        msg = (
            f"a grid from {lo!r} to {hi!r} along {name} at resolution {res!r} would have "
            f"{cells:.3g} cells along that axis alone; check the bounds (a coordinate of "
            f"{max(abs(lo), abs(hi)):.3g}?) and the resolution"
        )
        raise GridError(msg)
    start = math.floor((lo - pad) / res) * res
    stop = math.ceil((hi + pad) / res) * res
    n = max(round((stop - start) / res), 1)
    return start, n


def _resolve_chunks(chunks: Any, dims: tuple[str, ...]) -> dict[str, int] | None:
    if chunks is None:
        return None
    if isinstance(chunks, dict):
        return {d: int(chunks.get(d, -1)) for d in dims}
    if np.isscalar(chunks):
        return {d: int(chunks) for d in dims}  # type: ignore[arg-type]
    chunks = tuple(chunks)
    if len(chunks) != len(dims):
        raise GridError(f"chunks must be an int, a dict or {len(dims)} ints; got {chunks!r}")
    return {d: int(c) for d, c in zip(dims, chunks, strict=True)}


def _bounds_from_like(like: xr.Dataset | xr.DataArray, ndim: int) -> tuple[float, ...]:
    """(xmin, ymin, [zmin,] xmax, ymax, [zmax]) of sample points or a grid's outer edges."""
    if "sample" in like.dims:
        c = sample_coords(like)  # type: ignore[arg-type]
        axes = ["x", "y"] + (["z"] if ndim == 3 else [])
        if ndim == 3 and "z" not in c:
            raise GridError("make_voxels(like=samples) needs samples with a 'z' coordinate")
        lo = [float(np.nanmin(c[a])) for a in axes]
        hi = [float(np.nanmax(c[a])) for a in axes]
        return (*lo, *hi)
    b = grid_geometry(like).bounds()
    axes = ["x", "y"] + (["z"] if ndim == 3 else [])
    if any(a not in b for a in axes):
        raise GridError(f"like= has no {axes} axes to take bounds from")
    return (*(b[a][0] for a in axes), *(b[a][1] for a in axes))


def _template(
    centres: dict[str, np.ndarray],
    dims: tuple[str, ...],
    crs: Any,
    chunks: dict[str, int] | None,
    resolution: tuple[float, ...],
) -> xr.Dataset:
    shape = tuple(centres[d].size for d in dims)
    if chunks is None:
        mask = np.ones(shape, dtype=bool)
    else:
        # no sliver chunks (a template of size + 1 cells would leave a one-cell chunk)
        even = tuple(even_chunks(n, chunks[d]) for n, d in zip(shape, dims, strict=True))
        mask = da.ones(shape, dtype=bool, chunks=even)
    ds = xr.Dataset(
        {"mask": (dims, mask, {"long_name": "cells inside the study area"})},
        coords={d: (d, centres[d]) for d in dims},
    )
    for d, r in zip(dims, resolution, strict=True):
        ds[d].attrs.update(
            {
                "long_name": {"x": "easting", "y": "northing", "z": "elevation"}[d],
                "resolution": r,
                "cell_position": "centre",
            }
        )
    ds.attrs["resolution"] = list(resolution)
    ds = write_crs(ds, crs)
    return ds


def make_grid(
    bounds: Sequence[float] | None = None,
    *,
    like: xr.Dataset | xr.DataArray | None = None,
    resolution: float | Sequence[float],
    crs: Any = None,
    pad: float | Sequence[float] = 0.0,
    chunks: int | Sequence[int] | dict[str, int] | None = None,
) -> xr.Dataset:
    """Make an empty, georeferenced, north-up 2-D grid template.

    Parameters
    ----------
    bounds : (xmin, ymin, xmax, ymax), optional
        Area to cover, in the CRS's units. Taken from ``like`` when omitted.
    like : Dataset or DataArray, optional
        Samples (dim ``sample``) or a grid whose extent and CRS to cover.
    resolution : float or (dy, dx)
        Cell size in CRS units.
    crs : optional
        Any CRS pyproj accepts; defaults to the CRS of ``like``.
    pad : float or (py, px)
        Margin added around the bounds before snapping to the resolution.
    chunks : int, (cy, cx) or dict, optional
        Dask chunking of the template; results gridded onto it inherit it.

    Returns
    -------
    xarray.Dataset
        Coordinates ``y`` (descending) and ``x`` at cell centres, a boolean ``mask``
        variable (the study area, all True) and the CRS written by rioxarray.

    Examples
    --------
    >>> import xprospect as xp
    >>> grid = xp.make_grid((0, 0, 1000, 500), resolution=100, crs="EPSG:32750")
    >>> dict(grid.sizes)
    {'y': 5, 'x': 10}
    >>> float(grid.y[0]), float(grid.x[0])
    (450.0, 50.0)
    """
    return _make(bounds, like=like, resolution=resolution, crs=crs, pad=pad, chunks=chunks, ndim=2)


def make_voxels(
    bounds: Sequence[float] | None = None,
    *,
    like: xr.Dataset | xr.DataArray | None = None,
    resolution: float | Sequence[float],
    crs: Any = None,
    pad: float | Sequence[float] = 0.0,
    chunks: int | Sequence[int] | dict[str, int] | None = None,
) -> xr.Dataset:
    """Make an empty, georeferenced 3-D voxel block-model template (z, y, x).

    Parameters
    ----------
    bounds : (xmin, ymin, zmin, xmax, ymax, zmax), optional
        Volume to cover. Taken from ``like`` when omitted.
    like : Dataset or DataArray, optional
        3-D samples (coords ``x``, ``y``, ``z``) or a voxel grid to cover.
    resolution : float or (dz, dy, dx)
        Voxel size in CRS units.
    crs : optional
        Any CRS pyproj accepts; defaults to the CRS of ``like``.
    pad : float or (pz, py, px)
        Margin added around the bounds before snapping.
    chunks : int, (cz, cy, cx) or dict, optional
        Dask chunking of the template.

    Returns
    -------
    xarray.Dataset
        Coordinates ``z`` (ascending elevation), ``y`` (descending) and ``x`` at voxel
        centres, a boolean ``mask`` and the CRS.

    Examples
    --------
    >>> import xprospect as xp
    >>> vox = xp.make_voxels((0, 0, -100, 100, 50, 0), resolution=(10, 25, 25), crs="EPSG:28350")
    >>> dict(vox.sizes)
    {'z': 10, 'y': 2, 'x': 4}
    """
    return _make(bounds, like=like, resolution=resolution, crs=crs, pad=pad, chunks=chunks, ndim=3)


def _make(bounds, *, like, resolution, crs, pad, chunks, ndim: int) -> xr.Dataset:
    dims = ("z", "y", "x") if ndim == 3 else ("y", "x")
    if crs is None:
        if like is None or get_crs(like) is None:
            msg = "no CRS: pass crs= or like= an object that carries one (obj.rio.crs)"
            raise CRSError(msg)
        crs = get_crs(like)
    else:
        crs = parse_crs(crs)
        if like is not None and get_crs(like) is not None:
            check_same_crs(crs, get_crs(like), "crs=", "like=")  # type: ignore[arg-type]
    if bounds is None:
        if like is None:
            raise GridError("pass bounds= or like= to say what area the grid covers")
        bounds = _bounds_from_like(like, ndim)
    bounds = tuple(float(b) for b in bounds)
    if len(bounds) != 2 * ndim:
        names = "(xmin, ymin, xmax, ymax)" if ndim == 2 else "(xmin, ymin, zmin, xmax, ymax, zmax)"
        raise GridError(f"bounds must be {names}; got {bounds!r}")
    res = _as_tuple(resolution, ndim, "resolution")  # in dims order
    pads = _as_tuple(pad, ndim, "pad")
    # bounds order is x, y[, z]; dims order is [z,] y, x
    axis_bounds = {"x": (bounds[0], bounds[ndim]), "y": (bounds[1], bounds[ndim + 1])}
    if ndim == 3:
        axis_bounds["z"] = (bounds[2], bounds[5])
    edges = {d: _edges(*axis_bounds[d], r, p, d) for d, r, p in zip(dims, res, pads, strict=True)}
    shape = {d: n for d, (_, n) in edges.items()}
    _check_size(shape, chunks is None)
    centres = {}
    for d, r in zip(dims, res, strict=True):
        start, n = edges[d]
        c = start + (np.arange(n, dtype="float64") + 0.5) * r
        centres[d] = c[::-1].copy() if d == "y" else c
    return _template(centres, dims, crs, _resolve_chunks(chunks, dims), res)


def _check_size(shape: dict[str, int], in_memory: bool) -> None:
    """Refuse a template too large to allocate, naming the memory it would need."""
    cells = math.prod(shape.values())
    limit = MAX_CELLS_IN_MEMORY if in_memory else MAX_CELLS_LAZY
    if cells <= limit:
        return
    dims = " x ".join(f"{n:,} ({d})" for d, n in shape.items())
    how = (
        "pass chunks= for a lazy (dask) template, or a coarser resolution"
        if in_memory
        else "use a coarser resolution or a smaller area"
    )
    msg = (
        f"a {dims} grid has {cells:.3g} cells: its mask alone would need {_size(cells)} "
        f"and one float64 layer {_size(8.0 * cells)} (limit {limit:.3g} cells "
        f"{'in memory' if in_memory else 'for a lazy template'}); {how}"
    )
    raise GridError(msg)
