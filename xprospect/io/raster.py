"""GeoTIFF export and import of 2-D grids through rioxarray, keeping CRS and transform.

A GeoTIFF holds one or more bands on one (y, x) grid. We write one file per
variable or one multi-band file whose band descriptions are the variable names,
and read either back into a Dataset with one variable per band. Each variable's
attrs travel as band tags, the Dataset's attrs as file tags: each as a plain tag
(for other software) and all of them together as JSON under the tag
``XPROSPECT_ATTRS``, from which they are read back with their types (a string
``"1"`` stays a string). Tags of files not written by xprospect are read as the
strings they are.

The transform comes from the grid's own resolution (the spacing of its
coordinates, or for an axis of a single cell the ``resolution`` recorded by
:func:`~xprospect.make_grid`), so one-row, one-column and 1 x 1 grids keep their
georeference. Files are written under a temporary name and renamed on success
(see :mod:`xprospect.io._atomic`).
"""

from __future__ import annotations

import json
import os
import threading
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dask
import numpy as np
import rasterio
import rioxarray
import xarray as xr
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

from xprospect._dims import GRID_DIMS_2D, element_vars, grid_geometry, require_crs
from xprospect._json import jsonable
from xprospect.exceptions import DataError, GridError, XProspectWarning
from xprospect.io._atomic import atomic_path, write_error

__all__ = ["read_geotiff", "to_geotiff"]

# attrs that rasterio/rioxarray handle themselves or that make no sense as tags
_SKIP_ATTRS = (
    "_FillValue",
    "missing_value",
    "grid_mapping",
    "scale_factor",
    "add_offset",
    "long_name",
    "band_tags",
    "nodatavals",
    "transform",
    "crs",
)
# the tag holding every attr as JSON, so that types survive the trip through text tags
ATTRS_TAG = "XPROSPECT_ATTRS"


def _grid_variables(ds: xr.Dataset, variables: str | Sequence[str] | None, path: Path) -> list[str]:
    if "z" in ds.dims and variables is None:
        msg = (
            f"cannot write {path}: a GeoTIFF holds 2-D (y, x) grids and this is a voxel "
            f"model with dims {tuple(ds.dims)}; write a level (ds.isel(z=k)) or use to_zarr"
        )
        raise GridError(msg)
    if variables is None:
        names = element_vars(ds, GRID_DIMS_2D)
        names += [
            str(n)
            for n, v in ds.data_vars.items()
            if v.dtype.kind == "b" and set(v.dims) == set(GRID_DIMS_2D) and n not in names
        ]
        if not names:
            raise DataError(
                f"nothing to write to {path}: no numeric (y, x) variables in "
                f"{sorted(map(str, ds.data_vars))}"
            )
        return names
    names = [variables] if isinstance(variables, str) else list(variables)
    if not names:
        raise DataError(f"to_geotiff({path}) got an empty list of variables")
    for n in names:
        if n not in ds.data_vars:
            raise DataError(
                f"variable {n!r} is not in the Dataset; it holds {sorted(map(str, ds.data_vars))}"
            )
        dims = ds[n].dims
        if "z" in dims:
            msg = (
                f"cannot write variable {n!r} to {path}: a GeoTIFF holds 2-D (y, x) grids "
                f"and it is a voxel variable with dims {dims}; write a level "
                "(ds.isel(z=k)) or use to_zarr"
            )
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


def _tags(attrs: Mapping[Any, Any], *, keep_long_name: bool) -> dict[str, str]:
    """Plain string tags for other software, and all attrs as JSON under ``ATTRS_TAG``."""
    kept = {
        str(k): v
        for k, v in attrs.items()
        if k not in _SKIP_ATTRS or (keep_long_name and k == "long_name")
    }
    tags = {k: _tag_value(v) for k, v in kept.items() if k != ATTRS_TAG}
    # objects with no JSON form (dates, CRS objects) are kept as their text
    tags[ATTRS_TAG] = json.dumps(
        jsonable({k: v for k, v in kept.items() if k != ATTRS_TAG}, nonfinite="keep"), default=str
    )
    return tags


def _band_tags(var: xr.DataArray) -> dict[str, str]:
    # the band description holds the variable name, so a string long_name is a tag
    return _tags(var.attrs, keep_long_name=isinstance(var.attrs.get("long_name"), str))


def _read_tags(tags: Mapping[str, str], path: Path) -> dict[str, Any]:
    """Attrs from tags: the JSON ones as written (with types), foreign tags as strings."""
    if ATTRS_TAG not in tags:
        return dict(tags)
    try:
        attrs = json.loads(tags[ATTRS_TAG])
    except ValueError as err:
        raise DataError(f"{path}: tag {ATTRS_TAG} is not valid JSON ({err})") from err
    if not isinstance(attrs, dict):
        raise DataError(f"{path}: tag {ATTRS_TAG} holds {type(attrs).__name__}, not an object")
    # tags that other software added after xprospect wrote the file stay as strings
    extra = {k: v for k, v in tags.items() if k != ATTRS_TAG and k not in attrs}
    return {**attrs, **extra}


def _nodata_value(var: xr.DataArray, dtype: np.dtype) -> float | int | None:
    """Nodata for an integer output: the variable's own, else the dtype's extreme."""
    info = np.iinfo(dtype)
    for nd in (var.rio.encoded_nodata, var.rio.nodata):
        if (
            nd is not None
            and np.isfinite(nd)
            and float(nd).is_integer()
            and info.min <= nd <= info.max
        ):
            return int(nd)
    if not np.issubdtype(var.dtype, np.floating):
        return None  # integers or booleans hold no missing values to mark
    return int(info.min) if info.min < 0 else int(info.max)


def _recorded_resolution(ds: xr.Dataset, dim: str) -> float | None:
    """Return the cell size along ``dim`` recorded with the grid (for a single-cell axis)."""
    res = ds[dim].attrs.get("resolution")
    if res is None:
        grid_res = ds.attrs.get("resolution")
        if isinstance(grid_res, (list, tuple, np.ndarray)) and len(grid_res) == 2:
            res = grid_res[GRID_DIMS_2D.index(dim)]  # make_grid records (dy, dx)
    if res is None and "spatial_ref" in ds.coords:
        gt = ds["spatial_ref"].attrs.get("GeoTransform")
        if isinstance(gt, str) and len(gt.split()) == 6:
            parts = [float(v) for v in gt.split()]
            res = parts[1] if dim == "x" else parts[5]
    try:
        value = abs(float(res)) if res is not None else None
    except (TypeError, ValueError):
        return None
    return value if value is not None and np.isfinite(value) and value > 0 else None


def grid_transform(ds: xr.Dataset | xr.DataArray) -> Affine:
    """Return the affine transform of a (y, x) grid from its own resolution.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        A regular (y, x) grid with cell-centre coordinates.

    Returns
    -------
    affine.Affine
        Upper-left corner and signed cell sizes. Along an axis with more than one cell
        the size is the coordinates' spacing; along an axis of a single cell it is the
        ``resolution`` attr of the coordinate (as :func:`~xprospect.make_grid` and
        :func:`read_geotiff` record it), else the grid's ``resolution`` attr (dy, dx), else
        the ``GeoTransform`` of its ``spatial_ref``; y of a single row is taken as
        north-up (descending).

    Raises
    ------
    GridError
        When an axis has a single cell and no recorded resolution: the transform cannot
        be known, and writing the identity transform would lose the georeference.
    """
    geom = grid_geometry(ds)
    steps = []
    for axis, dim in enumerate(GRID_DIMS_2D):
        step = geom.step[axis]
        if step == 0:
            res = _recorded_resolution(
                ds if isinstance(ds, xr.Dataset) else ds.to_dataset(name="_"), dim
            )
            if res is None:
                msg = (
                    f"the grid has a single cell along {dim!r} (shape {geom.shape}) and no "
                    f"recorded resolution (a 'resolution' attr on coordinate {dim!r}), so "
                    "its cell size, hence its georeference, is unknown; set "
                    f"ds[{dim!r}].attrs['resolution'] = <cell size>"
                )
                raise GridError(msg)
            step = -res if dim == "y" else res
        steps.append(step)
    dy, dx = steps
    return Affine(dx, 0.0, geom.origin[1] - dx / 2, 0.0, dy, geom.origin[0] - dy / 2)


def _check_range(
    vars_: list[xr.DataArray], dtype: np.dtype, nodata: float | int | None, target: Path
) -> None:
    """Refuse values that the output dtype cannot hold (a cast would wrap or overflow)."""
    if dtype.kind == "f":
        top = float(np.finfo(dtype).max)
        lo_ok, hi_ok = -top, top
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo_ok, hi_ok = float(info.min), float(info.max)
    else:
        return
    checks = []
    for v in vars_:
        if (
            v.dtype == bool
            or (v.dtype.kind in "iu" and np.can_cast(v.dtype, dtype))
            or (v.dtype.kind == "f" and dtype.kind == "f" and dtype.itemsize >= v.dtype.itemsize)
        ):
            continue
        finite = v.where(np.isfinite(v)) if v.dtype.kind == "f" else v
        checks.append(
            (
                v,
                finite.min(),
                finite.max(),
                (v == nodata).any() if nodata is not None and v.dtype.kind == "f" else None,
            )
        )
    if not checks:
        return
    computed = dask.compute(
        *[(lo.data, hi.data, None if c is None else c.data) for _, lo, hi, c in checks]
    )
    for (v, *_), (lo, hi, clash) in zip(checks, computed, strict=True):
        lo, hi = float(lo), float(hi)
        for value in (lo, hi):
            if np.isfinite(value) and not lo_ok <= value <= hi_ok:
                msg = (
                    f"cannot write variable {v.name!r} to {target} as {dtype}: it holds "
                    f"{value!r}, outside the range [{lo_ok:g}, {hi_ok:g}] of {dtype} (a cast "
                    "would wrap or overflow); rescale it or choose a wider dtype"
                )
                raise DataError(msg)
        if clash is not None and bool(clash):
            msg = (
                f"cannot write variable {v.name!r} to {target} as {dtype}: it holds the "
                f"value {nodata!r}, which marks its missing (NaN) cells as nodata, so they "
                "could not be told apart; choose another dtype"
            )
            raise DataError(msg)


def _output_dtype(vars_: list[xr.DataArray], dtype: Any, target: Path) -> np.dtype:
    if dtype is not None:
        out = np.dtype(dtype)
    else:
        out = np.result_type(*[np.uint8 if v.dtype == bool else v.dtype for v in vars_])
    if out == np.float16:
        # GDAL has no 16-bit float type before 3.11: widen rather than fail in rasterio
        warnings.warn(
            f"{target}: float16 is written as float32 (GeoTIFF through GDAL "
            f"{rasterio.__gdal_version__} has no float16)",
            XProspectWarning,
            stacklevel=3,
        )
        out = np.dtype("float32")
    if out.kind not in "iuf":
        raise DataError(f"cannot write {target} as dtype {out}: a GeoTIFF holds integers or floats")
    return out


def _prepare(
    vars_: list[xr.DataArray], names: list[str], attrs: dict[str, Any], dtype: np.dtype
) -> xr.DataArray:
    arrays = []
    for var in vars_:
        arr = var.transpose(*GRID_DIMS_2D)
        if arr.dtype == bool:
            arr = arr.astype("uint8")
        arrays.append(arr.variable.to_base_variable())
    band = (
        xr.Variable.concat(arrays, dim="band") if len(arrays) > 1 else arrays[0].expand_dims("band")
    )
    first = vars_[0]
    out = xr.DataArray(band, coords={d: first[d] for d in GRID_DIMS_2D})
    out = out.assign_coords(band=np.arange(1, len(vars_) + 1))
    out.encoding = {}  # stale dtype/scale encodings of a previous read must not apply
    file_attrs: dict[str, Any] = dict(_tags(attrs, keep_long_name=False))
    file_attrs["long_name"] = list(names)  # one band description per variable
    file_attrs["band_tags"] = [_band_tags(v) for v in vars_]
    out.attrs = file_attrs
    out.rio.write_crs(first.rio.crs, inplace=True)
    out.rio.write_transform(grid_transform(first), inplace=True)
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
    cog: bool = False,
    overview_resampling: str | None = None,
    lock: Any = None,
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
    cog : bool
        Write a Cloud Optimized GeoTIFF (GDAL's COG driver: 512-cell tiles, overviews
        down to one tile, the image data after every IFD), which web maps and QGIS read
        efficiently, also over HTTP.
    overview_resampling : str, optional
        Resampling of the COG's overviews: default ``"average"`` for continuous (float)
        maps and ``"nearest"`` for class (integer) maps.
    lock : lock, optional
        The lock serialising the chunk writes of dask data (passed to
        :meth:`rioxarray.raster_array.RasterArray.to_raster`). Default: a thread lock, or
        a ``distributed.Lock`` when a distributed client is active, so that a lazy map
        writes from a cluster's workers.

    Returns
    -------
    list of pathlib.Path
        The files written, in variable order.

    Raises
    ------
    GridError
        For voxels (z, y, x) or variables not on (y, x), naming them; for an axis of a
        single cell without a recorded resolution (see :func:`grid_transform`).
    CRSError
        When the grid has no CRS.
    DataError
        When a target file exists (``overwrite=False``) or its folder does not; when a
        value lies outside the range of ``dtype`` (300 as uint8 would wrap to 44) or, for
        integer outputs, equals the nodata value that marks NaN cells, naming the variable,
        the value and the range; when the write fails (disk full, read-only target), saying
        why. Nothing is left behind: files are written under a temporary name in the
        target's folder and renamed on success.

    Warns
    -----
    XProspectWarning
        For float16 data or ``dtype="float16"``, written as float32.

    Notes
    -----
    Files are tiled. Dask data are written chunk by chunk under ``lock``, so a grid
    larger than memory never has to be loaded at once. The bands of a multi-band file
    are written together (dask chunks along the band axis are merged first, and y/x
    chunks are made multiples of the 256-cell tile): a pixel-interleaved, compressed tile
    written in parts would be decompressed and recompressed at each part (about 50 times
    slower than writing computed data).
    A narrowing ``dtype`` costs one more pass over the data (its minimum and maximum
    are checked before writing). The transform comes from :func:`grid_transform`.
    A COG is written as a tiled GeoTIFF first and then copied by GDAL's COG driver,
    which streams the data and builds the overviews without loading the map.

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
        raise DataError(
            f"to_geotiff() writes an xarray Dataset or DataArray; got {type(ds).__name__}"
        )
    names = _grid_variables(ds, variables, path)
    require_crs(ds, f"the grid written to {path}")
    grid_geometry(ds[names[0]])  # uniform, axis-aligned spacing or a GridError naming the axis
    targets = _targets(path, names, multiband)
    for t in targets:
        if not t.parent.is_dir():
            raise DataError(f"cannot write {t}: folder {t.parent} does not exist")
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise DataError(
            f"{', '.join(existing)} already exist(s); pass overwrite=True to "
            "replace or choose another path"
        )
    grid_transform(ds)  # a single-cell axis without a recorded resolution fails before any work
    groups = [names] if multiband else [[n] for n in names]
    written = []
    for target, group in zip(targets, groups, strict=True):
        vars_ = [_with_resolution(ds, n) for n in group]
        out_dtype = _output_dtype(vars_, dtype, target)
        band = _prepare(vars_, group, dict(ds.attrs), out_dtype)
        encoded = band.rio.encoded_nodata
        nodata = int(encoded) if encoded is not None and out_dtype.kind in "iu" else None
        _check_range(vars_, out_dtype, nodata, target)
        lazy = band.chunks is not None
        if lazy:
            band = _write_chunks(band)
        kwargs: dict[str, Any] = {
            "driver": "GTiff",
            "dtype": out_dtype,
            "tiled": True,
            "blockxsize": _TILE,
            "blockysize": _TILE,
            "BIGTIFF": "IF_SAFER",
            "recalc_transform": False,
        }
        if compress:
            kwargs["compress"] = compress
        if lazy:
            kwargs["lock"] = lock if lock is not None else _default_lock()
        with atomic_path(target) as tmp:
            if not cog:
                band.rio.to_raster(tmp, **kwargs)
            else:
                plain = tmp.with_name(tmp.stem + ".plain.tif")
                try:
                    band.rio.to_raster(plain, **kwargs)
                    _copy_to_cog(plain, tmp, compress, overview_resampling, out_dtype)
                finally:
                    plain.unlink(missing_ok=True)
        written.append(target)
    return written


#: GDAL's default GeoTIFF tile side; the dask chunks written are aligned to it.
_TILE = 256


def _write_chunks(band: xr.DataArray) -> xr.DataArray:
    """Rechunk dask data so that every compressed tile is written exactly once.

    A tile written in parts (by several band chunks of a pixel-interleaved file, or by
    several y/x chunks that split it) is read back, decompressed and recompressed by GDAL
    at each part: merge the bands, and make every y/x chunk a multiple of the tile side,
    rounded up (chunks of 300 become 512, not 256: at most four times the area, and a
    quarter of the locked window writes; a lazy 4 x 1024^2 write went from 1.39-1.58x to
    1.17-1.28x the computed write, and 4 x 2048^2 from 1.43-1.55x to 1.09-1.21x).
    """
    spec: dict[str, int] = {"band": -1}
    for dim, sizes in zip(band.dims, band.chunks or (), strict=True):
        if dim in GRID_DIMS_2D and any(c % _TILE for c in sizes[:-1]):
            spec[dim] = -(-max(sizes) // _TILE) * _TILE  # round up: fewer, whole-tile writes
    return band.chunk(spec)


def _default_lock() -> Any:
    """Return a distributed lock when a distributed client is active, else a thread lock."""
    try:
        from distributed import Lock, get_client  # lazy: optional, only for a cluster

        get_client()  # raises ValueError when no client is active
    except (ImportError, ValueError):
        return threading.Lock()
    return Lock(f"xprospect-geotiff-{uuid.uuid4().hex}")


def _copy_to_cog(
    src: Path, dst: Path, compress: str | None, resampling: str | None, dtype: np.dtype
) -> None:
    """Copy a tiled GeoTIFF into a Cloud Optimized GeoTIFF with GDAL's COG driver."""
    if resampling is None:
        resampling = "average" if np.issubdtype(dtype, np.floating) else "nearest"
    options = {
        "COMPRESS": (compress or "NONE").upper(),
        "OVERVIEWS": "AUTO",
        "OVERVIEW_RESAMPLING": resampling.upper(),
        "BIGTIFF": "IF_SAFER",
        "NUM_THREADS": "ALL_CPUS",
    }
    try:
        rio_copy(str(src), str(dst), driver="COG", **options)
    except RasterioError as err:
        raise write_error(dst, err) from err


def _with_resolution(ds: xr.Dataset, name: str) -> xr.DataArray:
    """Return the variable, its x/y coordinates carrying the grid's recorded resolution."""
    var = ds[name]
    for d in GRID_DIMS_2D:
        res = _recorded_resolution(ds, d)
        if res is not None and "resolution" not in var[d].attrs:
            var = var.assign_coords({d: var[d].copy().assign_attrs(resolution=res)})
    return var


def _band_names(
    descriptions: Sequence[str | None], name: str | Sequence[str] | None, path: Path
) -> list[str]:
    n = len(descriptions)
    if name is not None:
        names = [name] if isinstance(name, str) else [str(v) for v in name]
        if len(names) != n:
            raise DataError(f"{path} has {n} band(s) but name= gives {len(names)} name(s): {names}")
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
        raise DataError(
            f"read_geotiff(chunks=...) must be an int, (cy, cx) or a dict; got {chunks!r}"
        )
    return {"band": 1, "y": chunks[0], "x": chunks[1]}


def _open_checked(path: Path) -> dict[str, Any]:
    """Header, tags and a read of the last block of every band, or a DataError naming the file."""
    try:
        with rasterio.open(path) as src:
            info = {
                "descriptions": list(src.descriptions),
                "units": list(src.units),
                "file_tags": src.tags(),
                "band_tags": [src.tags(i) for i in src.indexes],
                "dtypes": list(src.dtypes),
                "nodata": src.nodata,
            }
            # a truncated file keeps its header: read the last block, which it lost
            h, w = src.block_shapes[0]
            last = Window(
                ((src.width - 1) // w) * w,
                ((src.height - 1) // h) * h,
                min(w, src.width - ((src.width - 1) // w) * w),
                min(h, src.height - ((src.height - 1) // h) * h),
            )
            src.read(window=last)
    except RasterioError as err:
        size = path.stat().st_size
        what = (
            "an empty file"
            if size == 0
            else f"not a readable GeoTIFF ({size} bytes: truncated or of another format)"
        )
        raise DataError(f"{path} is {what}: {err}") from err
    return info


def read_geotiff(
    path: str | os.PathLike, *, chunks: Any = None, name: str | Sequence[str] | None = None
) -> xr.Dataset:
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
        Dims (y, x) with y descending and coordinates at cell centres (each with its
        cell size as a ``resolution`` attr, so that a one-row or one-column grid keeps
        its georeference), the CRS as ``spatial_ref`` (no stored transform: it derives
        from the coordinates), band tags and units as variable attrs and file tags as
        Dataset attrs (with their types when written by :func:`to_geotiff`, else as
        strings).

    Raises
    ------
    DataError
        When the file does not exist, is empty, truncated or not a GeoTIFF, or
        ``name`` does not fit the bands.
    GridError
        When the raster is rotated (no regular x/y coordinates).

    Notes
    -----
    The on-disk type decides how values are read. Integer bands are class (or
    count) rasters: they are read as integers, their nodata value kept as such and
    recorded as ``_FillValue`` (a later NetCDF or GeoTIFF write keeps both).
    Floating bands are continuous: read as floats with nodata cells as NaN. A
    float16 band is read as float32 (with an :class:`XProspectWarning`).

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
    info = _open_checked(path)
    dtypes = [np.dtype(d) for d in info["dtypes"]]
    classes = all(d.kind in "iub" for d in dtypes)
    try:
        raster = rioxarray.open_rasterio(path, chunks=_read_chunks(chunks), masked=not classes)
    except RasterioError as err:
        raise DataError(f"{path} cannot be read as a GeoTIFF: {err}") from err
    if not isinstance(raster, xr.DataArray):
        raise DataError(f"{path} holds several subdatasets; read a single-raster GeoTIFF")
    if "x" not in raster.coords or "y" not in raster.coords:
        raise GridError(
            f"{path} has no regular x/y coordinates (a rotated or ungeoreferenced "
            "raster); warp it to a north-up grid first"
        )
    crs = raster.rio.crs
    transform = raster.rio.transform()
    if any(d == np.float16 for d in dtypes):
        warnings.warn(
            f"{path} holds float16 bands; they are read as float32", XProspectWarning, stacklevel=2
        )
        raster = raster.astype("float32")
    raster = raster.drop_vars("spatial_ref", errors="ignore")  # drops its stored GeoTransform
    names = _band_names(info["descriptions"], name, path)
    coords = {"y": raster["y"].copy(), "x": raster["x"].copy()}
    coords["x"].attrs = {**coords["x"].attrs, "resolution": abs(float(transform.a))}
    coords["y"].attrs = {**coords["y"].attrs, "resolution": abs(float(transform.e))}
    ds = xr.Dataset(coords=coords)
    for i, var_name in enumerate(names):
        var = raster.isel(band=i, drop=True).variable.transpose(*GRID_DIMS_2D)
        attrs = _read_tags(info["band_tags"][i], path)
        if info["units"][i] and "units" not in attrs:
            attrs["units"] = info["units"][i]
        if classes and info["nodata"] is not None:
            attrs["_FillValue"] = np.asarray(info["nodata"]).astype(dtypes[i]).item()
        var.attrs = attrs
        var.encoding = {
            k: v
            for k, v in raster.encoding.items()
            if k not in ("grid_mapping", "preferred_chunks", "_FillValue")
        }
        ds[var_name] = var
    ds.attrs = {
        k: v
        for k, v in _read_tags(info["file_tags"], path).items()
        if k != "AREA_OR_POINT" or v != "Area"
    }
    if crs is not None:
        ds.rio.write_crs(crs, inplace=True)
    if 1 in (ds.sizes["x"], ds.sizes["y"]):
        # coordinates alone cannot give the cell size of a single row or column
        ds.rio.write_transform(transform, inplace=True)
    return ds
