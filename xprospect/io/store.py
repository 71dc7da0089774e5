"""Zarr round-trips of grids, voxels and sample tables that keep the CRS, attrs and chunks.

The CRS travels as rioxarray's ``spatial_ref`` coordinate (its attrs hold the WKT)
and each variable's ``grid_mapping``; the affine transform is never stored, it is
derived from the coordinates on reading. Dask arrays are written chunk by chunk.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xprospect.exceptions import DataError
from xprospect.io._atomic import write_error

__all__ = ["open_zarr", "to_zarr"]

_MODES = ("w-", "w")
# encodings that a previous read leaves behind and that would clash with new
# chunks or another zarr format; zarr picks its defaults instead
_STALE_ENCODING = (
    "chunks", "preferred_chunks", "shards", "compressor", "compressors", "filters", "serializer",
)
# data variables come back from a zarr group in alphabetical or arbitrary order
_ORDER_ATTR = "xprospect_variable_order"
# files that mark the root of a zarr store (format 3, format 2 group or array, consolidated)
_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray", ".zmetadata")
# default zarr chunks for in-memory data, per dim: about 1 MB (2-D) to 8 MB (3-D) of float32
_DEFAULT_CHUNKS_2D = {"y": 512, "x": 512, "sample": 131_072}
_DEFAULT_CHUNKS_3D = {"z": 128, "y": 128, "x": 128}


def _is_path(store: Any) -> bool:
    return isinstance(store, (str, os.PathLike))


def _default_chunks(ds: xr.Dataset) -> dict[str, int]:
    return _DEFAULT_CHUNKS_3D if "z" in ds.dims else _DEFAULT_CHUNKS_2D


def _resolve_chunks(ds: xr.Dataset, chunks: Any) -> dict[str, int] | None:
    if chunks is None:
        return None
    if isinstance(chunks, Mapping):
        unknown = [d for d in chunks if d not in ds.dims]
        if unknown:
            raise DataError(f"to_zarr(chunks=...) names dims {unknown} that the Dataset lacks; "
                            f"its dims are {tuple(ds.dims)}")
        return {str(d): int(c) for d, c in chunks.items()}
    if isinstance(chunks, int) and not isinstance(chunks, bool):
        return dict.fromkeys(map(str, ds.dims), int(chunks))
    raise DataError(f"to_zarr(chunks=...) must be an int or a dict of dim -> int; got {chunks!r}")


def _regular(chunks: tuple[int, ...]) -> bool:
    """Zarr needs equal chunks along a dim, except a smaller last one."""
    return all(c == chunks[0] for c in chunks[:-1]) and chunks[-1] <= chunks[0]


def _prepare(ds: xr.Dataset, chunks: dict[str, int] | None) -> xr.Dataset:
    """Shallow copy with regular dask chunks and matching, fresh zarr chunk encodings."""
    if chunks is not None:
        ds = ds.chunk({d: min(c, ds.sizes[d]) if c > 0 else -1 for d, c in chunks.items()})
    # zarr needs equal chunks along a dim except a smaller last one: make dask
    # chunks regular first, then derive each variable's zarr chunks from them
    for name, var in list(ds.variables.items()):
        if var.chunks is not None and name not in ds.indexes:
            fixed = {d: max(c) for d, c in zip(var.dims, var.chunks, strict=True)
                     if not _regular(c)}
            if fixed:
                if name in ds.coords:
                    ds = ds.assign_coords({name: var.chunk(fixed)})
                else:
                    ds = ds.assign({name: var.chunk(fixed)})
    out = ds.copy(deep=False)
    defaults = _default_chunks(out)
    for name, var in out.variables.items():
        enc = {k: v for k, v in var.encoding.items() if k not in _STALE_ENCODING}
        if var.ndim and name not in out.indexes:
            if var.chunks is not None:
                enc["chunks"] = tuple(c[0] for c in var.chunks)
            else:
                enc["chunks"] = tuple(max(1, min(n, defaults.get(str(d), n)))
                                      for d, n in zip(var.dims, var.shape, strict=True))
        var.encoding = enc
    return out


def to_zarr(
    ds: xr.Dataset | xr.DataArray,
    store: str | os.PathLike | Any,
    *,
    mode: str = "w-",
    chunks: int | Mapping[str, int] | None = None,
    compute: bool = True,
) -> Any:
    """Write a grid, voxel model or sample table to a zarr store, keeping its CRS.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        What to write; a DataArray is written as a one-variable Dataset named after
        it (``"data"`` when it has no name).
    store : path or zarr store
        Folder to create (or any store xarray accepts).
    mode : {"w-", "w"}
        ``"w-"`` (default) refuses to touch an existing store; ``"w"`` replaces it.
    chunks : int or dict of dim -> int, optional
        Zarr chunk sizes; dask data are rechunked to match. By default dask data
        keep their chunks (made regular when they are not: zarr needs equal
        chunks except a smaller last one) and numpy data are stored in chunks of
        512 x 512 cells (2-D), 128 voxels a side (3-D) or 131072 samples.
    compute : bool
        With ``False``, return a dask ``Delayed`` that writes the data when
        computed (the metadata is written at once).

    Returns
    -------
    dask.delayed.Delayed or None
        The pending write when ``compute=False``.

    Raises
    ------
    DataError
        When the store exists and ``mode="w-"``, for a bad ``mode``/``chunks``, or when the
        target cannot be written (read-only file system, permission denied, disk full),
        saying which.

    Notes
    -----
    Written as zarr format 3 with consolidated metadata; dask arrays stream to
    disk chunk by chunk. Dataset and variable attrs, coordinates, the
    ``spatial_ref`` coordinate (CRS) and the order of data variables survive
    :func:`open_zarr`. Encodings left by a previous read that would clash with the
    new chunks (``chunks``, ``preferred_chunks``, codecs) are dropped.

    Examples
    --------
    >>> import tempfile, xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu"])
    >>> grid = xp.make_grid(like=w.samples, resolution=5000)
    >>> path = tempfile.mkdtemp() + "/maps.zarr"
    >>> xp.to_zarr(xp.grid_idw(w.samples, like=grid), path)
    >>> xp.open_zarr(path).rio.crs.to_epsg()
    32750
    """
    if isinstance(ds, xr.DataArray):
        ds = ds.to_dataset(name=ds.name if ds.name is not None else "data")
    if not isinstance(ds, xr.Dataset):
        raise DataError(f"to_zarr() writes an xarray Dataset or DataArray; got {type(ds).__name__}")
    if mode not in _MODES:
        raise DataError(f"to_zarr(mode={mode!r}) is not supported; use 'w-' (never overwrite, "
                        "the default) or 'w' (replace an existing store)")
    if _is_path(store):
        path = Path(store)
        if mode == "w-" and path.exists():
            raise DataError(f"{path} already exists; pass mode='w' to replace it or choose "
                            "another path")
        store = str(path)
    out = _prepare(ds, _resolve_chunks(ds, chunks))
    out.attrs[_ORDER_ATTR] = [str(n) for n in ds.data_vars]
    with warnings.catch_warnings():
        # zarr warns that consolidated metadata is not (yet) in the v3 spec; xarray
        # and zarr-python read it, and it saves one request per array on opening
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        # one call for both values of compute (xarray types them as two overloads)
        options: dict[str, Any] = {"mode": mode, "compute": compute, "consolidated": True,
                                   "zarr_format": 3}
        try:
            result = out.to_zarr(store, **options)
        except OSError as err:  # read-only target, permission denied, disk full
            raise write_error(store, err) from err
    return None if compute else result


def open_zarr(
    store: str | os.PathLike | Any,
    *,
    chunks: Any = "auto",
    **kwargs: Any,
) -> xr.Dataset:
    """Open a zarr store lazily, with its CRS, attrs and variable order restored.

    Parameters
    ----------
    store : path or zarr store
        A store written by :func:`to_zarr` (or any xarray-readable zarr store).
    chunks : "auto", dict, {} or None
        Dask chunks: ``"auto"`` (default) uses multiples of the stored chunks
        sized by dask, ``{}`` exactly the stored chunks, None numpy arrays
        loaded on access.
    **kwargs
        Passed to :func:`xarray.open_zarr`.

    Returns
    -------
    xarray.Dataset
        Lazy (dask) unless ``chunks=None``; ``ds.rio.crs`` is the CRS written.

    Raises
    ------
    DataError
        When no store exists at a given path, or the path is a file, an empty folder or
        a folder without zarr metadata.

    Examples
    --------
    >>> import tempfile, xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu"])
    >>> path = tempfile.mkdtemp() + "/samples.zarr"
    >>> xp.to_zarr(w.samples, path)
    >>> list(xp.open_zarr(path).data_vars)
    ['Au', 'Cu']
    """
    if _is_path(store):
        path = Path(store)
        if not path.exists():
            raise DataError(f"no zarr store at {path}")
        if not path.is_dir():
            raise DataError(f"{path} is a file, not a zarr store (a folder)")
        if not any((path / m).exists() for m in _ZARR_MARKERS):
            what = "an empty folder" if not any(path.iterdir()) else \
                f"a folder without zarr metadata (none of {', '.join(_ZARR_MARKERS)})"
            raise DataError(f"{path} is not a zarr store: it is {what}")
        store = str(path)
    kwargs.setdefault("decode_coords", "all")
    auto = isinstance(chunks, str) and chunks == "auto"
    # dask cannot size string (sample id) chunks automatically: open with the
    # stored chunks, then let dask grow the numeric ones
    try:
        ds = xr.open_zarr(store, chunks={} if auto else chunks, **kwargs)
    except FileNotFoundError as err:  # zarr's GroupNotFoundError: no group at the root
        raise DataError(f"{store} is not a zarr group written by to_zarr (or any xarray "
                        f"Dataset): {err}") from err
    if auto:
        grown = {n: v.chunk("auto") for n, v in ds.variables.items()
                 if v.chunks is not None and np.issubdtype(v.dtype, np.number)}
        ds = ds.assign_coords({n: v for n, v in grown.items() if n in ds.coords})
        ds = ds.assign({n: v for n, v in grown.items() if n not in ds.coords})
    if "spatial_ref" in ds.data_vars and ds["spatial_ref"].ndim == 0:
        ds = ds.set_coords("spatial_ref")
    order = ds.attrs.pop(_ORDER_ATTR, None)
    if order is not None:
        names = [n for n in order if n in ds.data_vars]
        names += [n for n in ds.data_vars if n not in names]
        if names != list(ds.data_vars):
            coords = ds.coords
            ds = ds[names]
            missing = {c: coords[c] for c in coords if c not in ds.coords}
            if missing:
                ds = ds.assign_coords(missing)
    return ds

