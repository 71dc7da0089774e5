"""GeoTIFF export and import of 2-D grids through rioxarray, keeping CRS and transform.

A GeoTIFF holds one or more bands on one (y, x) grid. We write one file per
variable or one multi-band file whose band descriptions are the variable names,
and read either back into a Dataset with one variable per band. Each variable's
attrs travel as band tags, the Dataset's attrs as file tags.
"""

from __future__ import annotations

import ast
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rioxarray
import xarray as xr

from xprospect._dims import GRID_DIMS_2D, element_vars, grid_geometry, require_crs
from xprospect.exceptions import DataError, GridError

__all__ = ["read_geotiff", "to_geotiff"]

# attrs that rasterio/rioxarray handle themselves or that make no sense as tags
_SKIP_ATTRS = ("_FillValue", "missing_value", "grid_mapping", "scale_factor", "add_offset",
               "long_name", "band_tags", "nodatavals", "transform", "crs")


def _grid_variables(ds: xr.Dataset, variables: str | Sequence[str] | None,
                    path: Path) -> list[str]:
    if "z" in ds.dims and variables is None:
        msg = (f"cannot write {path}: a GeoTIFF holds 2-D (y, x) grids and this is a voxel "
               f"model with dims {tuple(ds.dims)}; write a level (ds.isel(z=k)) or use to_zarr")
        raise GridError(msg)
    if variables is None:
        names = element_vars(ds, GRID_DIMS_2D)
        names += [str(n) for n, v in ds.data_vars.items()
                  if v.dtype.kind == "b" and set(v.dims) == set(GRID_DIMS_2D) and n not in names]
        if not names:
            raise DataError(f"nothing to write to {path}: no numeric (y, x) variables in "
                            f"{sorted(map(str, ds.data_vars))}")
        return names
    names = [variables] if isinstance(variables, str) else list(variables)
    if not names:
        raise DataError(f"to_geotiff({path}) got an empty list of variables")
    for n in names:
        if n not in ds.data_vars:
            raise DataError(f"variable {n!r} is not in the Dataset; it holds "
                            f"{sorted(map(str, ds.data_vars))}")
        dims = ds[n].dims
        if "z" in dims:
            msg = (f"cannot write variable {n!r} to {path}: a GeoTIFF holds 2-D (y, x) grids "
                   f"and it is a voxel variable with dims {dims}; write a level "
                   "(ds.isel(z=k)) or use to_zarr")
            raise GridError(msg)
        if set(dims) != set(GRID_DIMS_2D):
            raise GridError(f"variable {n!r} has dims {dims}; to_geotiff writes (y, x) grids")
        dt = ds[n].dtype
        if dt.kind != "b" and not np.issubdtype(dt, np.number):
            raise DataError(f"variable {n!r} has dtype {dt}, which a GeoTIFF cannot hold")
    return names


def _targets(path: Path, names: list[str], multiband: bool) -> list[Path]:
    if multiband:
        if path.is_dir():
            raise DataError(f"{path} is a folder; multiband=True writes one file: give its name")
        return [path]
    if path.is_dir():
        return [path / f"{n}.tif" for n in names]
    if len(names) == 1:
        return [path]
    suffix = path.suffix or ".tif"
    return [path.with_name(f"{path.stem}_{n}{suffix}") for n in names]


def _tag_value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return str(value)


def _band_tags(var: xr.DataArray) -> dict[str, str]:
    tags = {k: _tag_value(v) for k, v in var.attrs.items() if k not in _SKIP_ATTRS}
    if isinstance(var.attrs.get("long_name"), str):  # the description holds the name
        tags["long_name"] = var.attrs["long_name"]
    return tags


def _nodata_value(var: xr.DataArray, dtype: np.dtype) -> float | int | None:
    """Nodata for an integer output: the variable's own, else the dtype's extreme."""
    info = np.iinfo(dtype)
    for nd in (var.rio.encoded_nodata, var.rio.nodata):
        if nd is not None and np.isfinite(nd) and float(nd).is_integer() \
                and info.min <= nd <= info.max:
            return int(nd)
    if not np.issubdtype(var.dtype, np.floating):
        return None  # integers or booleans hold no missing values to mark
    return int(info.min) if info.min < 0 else int(info.max)


def _prepare(vars_: list[xr.DataArray], names: list[str], attrs: dict[str, Any],
             dtype: np.dtype) -> xr.DataArray:
    arrays = []
    for var in vars_:
        arr = var.transpose(*GRID_DIMS_2D)
        if arr.dtype == bool:
            arr = arr.astype("uint8")
        arrays.append(arr.variable.to_base_variable())
    band = xr.Variable.concat(arrays, dim="band") if len(arrays) > 1 else \
        arrays[0].expand_dims("band")
    first = vars_[0]
    out = xr.DataArray(band, coords={d: first[d] for d in GRID_DIMS_2D})
    out = out.assign_coords(band=np.arange(1, len(vars_) + 1))
    out.encoding = {}  # stale dtype/scale encodings of a previous read must not apply
    out.attrs = {k: _tag_value(v) for k, v in attrs.items() if k not in _SKIP_ATTRS}
    out.attrs["long_name"] = list(names)  # one band description per variable
    out.attrs["band_tags"] = [_band_tags(v) for v in vars_]
    out.rio.write_crs(first.rio.crs, inplace=True)
    if np.issubdtype(dtype, np.floating):
        out.rio.write_nodata(np.nan, encoded=False, inplace=True)
    else:
        nd = None
        for v in vars_:
            nd = _nodata_value(v, dtype)
            if nd is not None:
                break
        if nd is not None:
            # encoded: NaN cells are filled with nd as they are written
            out.rio.write_nodata(nd, encoded=True, inplace=True)
    return out


def to_geotiff(
    ds: xr.Dataset | xr.DataArray,
    path: str | os.PathLike,
    *,
    variables: str | Sequence[str] | None = None,
    multiband: bool = False,
    dtype: str | np.dtype | None = None,
    compress: str | None = "deflate",
    overwrite: bool = False,
) -> list[Path]:
    """Write 2-D grid variables to GeoTIFF files with their CRS and transform.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        A georeferenced (y, x) grid with a CRS; numpy or dask backed.
    path : path
        The file to write. With ``multiband=False`` and several variables, one
        file ``<stem>_<variable>.tif`` is written per variable beside ``path``;
        when ``path`` is an existing folder, ``<variable>.tif`` inside it.
    variables : str or list of str, optional
        Variables to write; default every numeric (y, x) variable and boolean
        masks (written as uint8 0/1).
    multiband : bool
        Write one file with one band per variable; band descriptions are the
        variable names.
    dtype : dtype, optional
        Output dtype; default the variables' (their common type for multi-band).
        Floats mark missing cells as NaN nodata; for integer outputs NaN cells are
        written as the variable's nodata, or else the dtype's minimum (signed) or
        maximum (unsigned).
    compress : str or None
        GDAL compression (``"deflate"``, ``"lzw"``, ``"zstd"``, None).
    overwrite : bool
        Replace existing files; by default an existing file is an error and
        nothing is written.

    Returns
    -------
    list of pathlib.Path
        The files written, in variable order.

    Raises
    ------
    GridError
        For voxels (z, y, x) or variables not on (y, x), naming them.
    CRSError
        When the grid has no CRS.
    DataError
        When a target file exists (``overwrite=False``) or its folder does not.

    Notes
    -----
    Files are tiled. Dask data are written chunk by chunk under a thread lock,
    so a grid larger than memory never has to be loaded at once (use the
    threaded scheduler; a distributed cluster needs a distributed lock).

    Examples
    --------
    >>> import tempfile, xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu"])
    >>> maps = xp.grid_idw(w.samples, like=xp.make_grid(like=w.samples, resolution=5000))
    >>> files = xp.to_geotiff(maps, tempfile.mkdtemp() + "/maps.tif")
    >>> [f.name for f in files]
    ['maps_Au.tif', 'maps_Cu.tif']
    """
    path = Path(path)
    if isinstance(ds, xr.DataArray):
        ds = ds.to_dataset(name=ds.name if ds.name is not None else path.stem)
    if not isinstance(ds, xr.Dataset):
        raise DataError(f"to_geotiff() writes an xarray Dataset or DataArray; got "
                        f"{type(ds).__name__}")
    names = _grid_variables(ds, variables, path)
    require_crs(ds, f"the grid written to {path}")
    grid_geometry(ds[names[0]])  # uniform, axis-aligned spacing or a GridError naming the axis
    targets = _targets(path, names, multiband)
    for t in targets:
        if not t.parent.is_dir():
            raise DataError(f"cannot write {t}: folder {t.parent} does not exist")
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise DataError(f"{', '.join(existing)} already exist(s); pass overwrite=True to "
                        "replace or choose another path")
    groups = [names] if multiband else [[n] for n in names]
    written = []
    for target, group in zip(targets, groups, strict=True):
        vars_ = [ds[n] for n in group]
        if dtype is not None:
            out_dtype = np.dtype(dtype)
        else:
            out_dtype = np.result_type(*[np.uint8 if v.dtype == bool else v.dtype
                                         for v in vars_])
        band = _prepare(vars_, group, dict(ds.attrs), out_dtype)
        lazy = band.chunks is not None
        kwargs: dict[str, Any] = {"driver": "GTiff", "dtype": out_dtype, "tiled": True,
                                  "BIGTIFF": "IF_SAFER"}
        if compress:
            kwargs["compress"] = compress
        if lazy:
            kwargs["lock"] = threading.Lock()
        band.rio.to_raster(target, **kwargs)
        written.append(target)
    return written


def _parse_tag(value: str) -> Any:
    """Tags come back as strings: numbers, lists and dicts are parsed back."""
    try:
        out = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return value
    if isinstance(out, (bool, int, float, list, dict, tuple)):
        return list(out) if isinstance(out, tuple) else out
    return value


def _band_names(descriptions: Sequence[str | None], name: str | Sequence[str] | None,
                path: Path) -> list[str]:
    n = len(descriptions)
    if name is not None:
        names = [name] if isinstance(name, str) else [str(v) for v in name]
        if len(names) != n:
            raise DataError(f"{path} has {n} band(s) but name= gives {len(names)} name(s): "
                            f"{names}")
    elif n == 1:
        names = [descriptions[0] or path.stem]
    else:
        names = [d or f"band_{i + 1}" for i, d in enumerate(descriptions)]
    if len(set(names)) != n:  # repeated descriptions: make them unique
        names = [f"{v}_{i + 1}" for i, v in enumerate(names)]
    return names


def _read_chunks(chunks: Any) -> Any:
    """Our chunks are per (y, x); rioxarray's also cover the band dim."""
    if chunks is None or isinstance(chunks, str):
        return chunks
    if isinstance(chunks, int) and not isinstance(chunks, bool):
        return {"band": 1, "y": chunks, "x": chunks}
    if isinstance(chunks, Mapping):
        return {"band": 1, **chunks}
    chunks = tuple(chunks)
    if len(chunks) != 2:
        raise DataError(f"read_geotiff(chunks=...) must be an int, (cy, cx) or a dict; "
                        f"got {chunks!r}")
    return {"band": 1, "y": chunks[0], "x": chunks[1]}


def read_geotiff(path: str | os.PathLike, *, chunks: Any = None,
                 name: str | Sequence[str] | None = None) -> xr.Dataset:
    """Read a GeoTIFF into a Dataset with one (y, x) variable per band.

    Parameters
    ----------
    path : path
        The GeoTIFF.
    chunks : int, (cy, cx), dict, "auto" or None
        Dask chunks along y and x (see :func:`rioxarray.open_rasterio`); None
        reads lazily from the file without dask, loading on first access.
    name : str or list of str, optional
        Variable names, one per band; default the band descriptions (as written by
        :func:`to_geotiff`), else the file's stem for a single band and
        ``band_<k>`` for multi-band files.

    Returns
    -------
    xarray.Dataset
        Dims (y, x) with y descending and coordinates at cell centres, the CRS as
        ``spatial_ref`` (no stored transform: it derives from the coordinates),
        nodata cells as NaN (integer bands become float), band tags and units as
        variable attrs and file tags as Dataset attrs.

    Raises
    ------
    DataError
        When the file does not exist or ``name`` does not fit the bands.
    GridError
        When the raster is rotated (no regular x/y coordinates).

    Examples
    --------
    >>> import tempfile, xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu"])
    >>> maps = xp.grid_idw(w.samples, like=xp.make_grid(like=w.samples, resolution=5000))
    >>> [f] = xp.to_geotiff(maps, tempfile.mkdtemp() + "/maps.tif", multiband=True)
    >>> sorted(xp.read_geotiff(f).data_vars)
    ['Au', 'Cu']
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no GeoTIFF at {path}")
    with rasterio.open(path) as src:
        descriptions = list(src.descriptions)
        units = list(src.units)
        file_tags = src.tags()
        band_tags = [src.tags(i) for i in src.indexes]
    raster = rioxarray.open_rasterio(path, chunks=_read_chunks(chunks), masked=True)
    if not isinstance(raster, xr.DataArray):
        raise DataError(f"{path} holds several subdatasets; read a single-raster GeoTIFF")
    if "x" not in raster.coords or "y" not in raster.coords:
        raise GridError(f"{path} has no regular x/y coordinates (a rotated or ungeoreferenced "
                        "raster); warp it to a north-up grid first")
    crs = raster.rio.crs
    raster = raster.drop_vars("spatial_ref", errors="ignore")  # drops its stored GeoTransform
    names = _band_names(descriptions, name, path)
    ds = xr.Dataset(coords={"y": raster["y"], "x": raster["x"]})
    for i, var_name in enumerate(names):
        var = raster.isel(band=i, drop=True).variable.transpose(*GRID_DIMS_2D)
        attrs = {k: _parse_tag(v) for k, v in band_tags[i].items()}
        if units[i] and "units" not in attrs:
            attrs["units"] = units[i]
        var.attrs = attrs
        var.encoding = {k: v for k, v in raster.encoding.items()
                        if k not in ("grid_mapping", "preferred_chunks")}
        ds[var_name] = var
    ds.attrs = {k: _parse_tag(v) for k, v in file_tags.items() if k != "AREA_OR_POINT"
                or v != "Area"}
    if crs is not None:
        ds.rio.write_crs(crs, inplace=True)
    return ds
