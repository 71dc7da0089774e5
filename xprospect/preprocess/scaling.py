"""Per-element transforms of element variables: log10, z-scores and robust scaling.

:func:`minmax_scale` scales one map (a score or anomaly map) to [0, 1] by its global
extremes, as target delineation and model comparison do.

Every function takes a Dataset of element variables (a grid, a voxel model or a
sample table) and returns a new Dataset with the chosen elements transformed and
everything else (coordinates, CRS, attrs, non-element variables such as ``mask``
or sample ids) untouched. They never compute dask data: value checks that would
need the data (non-positive values before a log, a zero spread) run inside the
dask tasks and raise :class:`~xprospect.exceptions.DataError` when the result is
computed; on numpy data the same checks run at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dask
import numpy as np
import xarray as xr

from xprospect._dims import GRID_DIMS_2D, GRID_DIMS_3D, SAMPLE_DIM, element_vars
from xprospect.exceptions import DataError

__all__ = [
    "log10",
    "minmax_scale",
    "robust_scale",
    "robust_stats",
    "zscore",
    "zscore_stats",
]

_DA_NAME = "__xprospect_dataarray__"


# -- shared helpers (also used by compositional.py) -------------------------------------


def _data_dims(ds: xr.Dataset) -> tuple[str, ...]:
    """Return the dims element variables lie on: samples, voxels or a 2-D grid."""
    if SAMPLE_DIM in ds.dims:
        return (SAMPLE_DIM,)
    if "z" in ds.dims:
        return GRID_DIMS_3D
    return GRID_DIMS_2D


def _as_dataset(obj: xr.Dataset | xr.DataArray, func: str) -> tuple[xr.Dataset, bool]:
    """Wrap a DataArray in a one-variable Dataset; return (dataset, was_dataarray)."""
    if isinstance(obj, xr.Dataset):
        return obj, False
    if isinstance(obj, xr.DataArray):
        return obj.to_dataset(name=_DA_NAME), True
    msg = f"{func}() needs an xarray.Dataset of element variables; got {type(obj).__name__}"
    raise DataError(msg)


def _from_dataset(out: xr.Dataset, obj: xr.Dataset | xr.DataArray, was_da: bool):
    if was_da:
        return out[_DA_NAME].rename(obj.name)
    return out


def _select(
    ds: xr.Dataset, elements: str | Sequence[str] | None, func: str, *, was_da: bool = False
) -> list[str]:
    """Resolve ``elements=``: names given, or every numeric variable on the data dims."""
    if was_da:
        names = [_DA_NAME]
    elif elements is None:
        dims = _data_dims(ds)
        names = element_vars(ds, dims)
        if not names:
            msg = (
                f"{func}() found no numeric element variables on dims {dims}; the Dataset "
                f"holds {sorted(map(str, ds.data_vars))}; pass elements=[...]"
            )
            raise DataError(msg)
        return names
    else:
        names = [elements] if isinstance(elements, str) else list(elements)
        if not names:
            raise DataError(f"{func}() got an empty list of elements")
    for n in names:
        if n not in ds.data_vars:
            msg = (
                f"element {n!r} is not a data variable of the Dataset; it holds "
                f"{sorted(map(str, ds.data_vars))}"
            )
            raise DataError(msg)
        dt = ds[n].dtype
        if dt.kind not in "iuf":  # not bool, complex, strings or dates
            label = "the DataArray" if was_da else f"element {n!r}"
            raise DataError(f"{label} is not a real numeric variable (dtype {dt})")
    return names


def _label(name: str) -> str:
    return "the DataArray" if name == _DA_NAME else f"element {name!r}"


def _float_dtype(dtype: np.dtype) -> np.dtype:
    """At least float32: ints and float16 become float32/float64, not float16."""
    return np.result_type(dtype, np.float32)


def _is_lazy(var: xr.DataArray) -> bool:
    return var.chunks is not None


#: The attribute holding a variable's transform history ("log10, zscore"). Not ``transform``:
#: rioxarray reads an attribute of that name as the affine geotransform.
HISTORY_ATTR = "xprospect_transform"
# Attribute names rioxarray or CF conventions give a meaning to; a transform never copies them
# from its input to its output (the values are new, so an old fill, scale or offset is wrong).
_RESERVED_ATTRS = ("transform", "scale_factor", "add_offset", "_FillValue", "missing_value")


def transform_history(attrs: Mapping[str, Any]) -> str | None:
    """Return the transform history in attrs (also read from the old name ``transform``).

    Parameters
    ----------
    attrs : mapping
        A variable's attrs.

    Returns
    -------
    str or None
        E.g. ``"log10, zscore"``; None when no xprospect transform was applied.

    Examples
    --------
    >>> transform_history({"transform": "clr"}), transform_history({"xprospect_transform": "ilr"})
    ('clr', 'ilr')
    """
    old = attrs.get(HISTORY_ATTR)
    if old is None:
        legacy = attrs.get("transform")
        old = legacy if isinstance(legacy, str) else None
    return None if old is None else str(old)


def _new_attrs(var: xr.DataArray, transform: str, units: str, **extra: Any) -> dict[str, Any]:
    """Attrs of a transformed variable: the input's, with units and a transform history."""
    old = transform_history(var.attrs)
    attrs = {k: v for k, v in var.attrs.items() if k not in _RESERVED_ATTRS}
    attrs[HISTORY_ATTR] = f"{old}, {transform}" if old else transform
    attrs["units"] = units
    attrs.update(extra)
    return attrs


def _finish(new: xr.DataArray, like: xr.DataArray, attrs: Mapping[str, Any]) -> xr.Variable:
    """Return the bare result variable with its attrs.

    Assigning a Variable (not a DataArray) leaves the input's coordinates, and
    their attrs, untouched: arithmetic would otherwise drop coordinate attrs.
    """
    var = new.variable.copy(deep=False)
    var.attrs = dict(attrs)
    var.encoding = {}
    if "grid_mapping" in like.encoding:  # rioxarray keeps the CRS link here
        var.encoding["grid_mapping"] = like.encoding["grid_mapping"]
    return var


def _log_kernel(
    x: np.ndarray, *, name: str, log: Callable, dtype: np.dtype, lazy: bool
) -> np.ndarray:
    x = np.asarray(x)
    bad = int(np.count_nonzero(x <= 0))  # NaN compares False: missing values pass through
    if bad:
        where = " in one dask chunk" if lazy else ""
        msg = (
            f"{_label(name)} has {bad} non-positive value(s){where}; logarithms need "
            "positive concentrations: replace zeros and below-detection codes first "
            "(e.g. with half the detection limit) or mask them as NaN"
        )
        raise DataError(msg)
    return log(x.astype(dtype, copy=False))


def _checked_log(var: xr.DataArray, name: str, log: Callable = np.log) -> xr.DataArray:
    """``log(var)`` that raises DataError naming ``name`` on values <= 0.

    On numpy data the check runs now; on dask data it runs inside each task.
    """
    dtype = _float_dtype(var.dtype)
    return xr.apply_ufunc(
        _log_kernel,
        var,
        kwargs={"name": name, "log": log, "dtype": dtype, "lazy": _is_lazy(var)},
        dask="parallelized",
        output_dtypes=[dtype],
        keep_attrs=False,
    )


def _scale_kernel(
    x: np.ndarray, center: np.ndarray, scale: np.ndarray, *, name: str, what: str, dtype: np.dtype
) -> np.ndarray:
    s = float(np.asarray(scale))
    if not np.isfinite(s) or s <= 0:
        msg = (
            f"{_label(name)} cannot be scaled: its {what} is {s!r} (constant, mostly "
            "one value, or all missing); drop it from elements="
        )
        raise DataError(msg)
    c = float(np.asarray(center))
    return ((np.asarray(x, dtype="float64") - c) / s).astype(dtype, copy=False)


def _center_scale(var: xr.DataArray, center: Any, scale: Any, name: str, what: str) -> xr.DataArray:
    """``(var - center) / scale`` with ``scale`` checked to be finite and > 0.

    ``center`` and ``scale`` are numbers or 0-d (possibly dask) DataArrays; with
    lazy statistics the check runs inside the dask tasks.
    """
    dtype = _float_dtype(var.dtype)
    return xr.apply_ufunc(
        _scale_kernel,
        var,
        center,
        scale,
        kwargs={"name": name, "what": what, "dtype": dtype},
        dask="parallelized",
        output_dtypes=[dtype],
        keep_attrs=False,
    )


def _scalar_stat(stat: xr.DataArray) -> xr.DataArray:
    """Drop the scalar coordinates a reduction keeps (``spatial_ref``, ``quantile``)."""
    return stat.reset_coords(drop=True)


def _given_stats(
    given: Mapping[str, Any] | None, names: list[str], label: str, func: str
) -> dict[str, float] | None:
    if given is None:
        return None
    if not isinstance(given, Mapping):
        raise DataError(f"{func}({label}=...) must be a dict of element -> number; got {given!r}")
    is_da = names == [_DA_NAME]
    if is_da and len(given) != 1:
        raise DataError(
            f"{func}({label}=...) for a DataArray needs exactly one entry; "
            f"got {sorted(map(str, given))}"
        )
    out = {}
    for n in names:
        key = next(iter(given)) if is_da else n  # a DataArray: whatever its single key
        if key not in given:
            missing = [m for m in names if m not in given]
            raise DataError(f"{func}({label}=...) has no value for elements {missing}")
        try:
            out[n] = float(given[key])
        except (TypeError, ValueError) as err:
            raise DataError(
                f"{func}({label}=...) value for {key!r} is not a number: {given[key]!r}"
            ) from err
    return out


# -- public functions ------------------------------------------------------------------


def log10(
    ds: xr.Dataset | xr.DataArray, *, elements: str | Sequence[str] | None = None
) -> xr.Dataset | xr.DataArray:
    """Base-10 logarithm of element concentrations.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        Grid (y, x), voxels (z, y, x) or samples (``sample``), numpy or dask backed.
    elements : str or list of str, optional
        Variables to transform; default every numeric (non-boolean) variable laid
        out on the data dims. Other variables are returned untouched.

    Returns
    -------
    xarray.Dataset or DataArray
        Same layout, coordinates, CRS and attrs; transformed variables get
        ``units = "log10(<units>)"`` and ``transform`` appended with ``"log10"``.
        Lazy when the input is.

    Raises
    ------
    DataError
        When a value is zero or negative (NaN passes through), naming the element.
        Checked now on numpy data; on dask data when the result is computed.

    Examples
    --------
    >>> import xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu"])
    >>> logged = xp.preprocess.log10(w.samples)
    >>> logged["Au"].attrs["units"]
    'log10(ppb)'
    """
    data, was_da = _as_dataset(ds, "log10")
    names = _select(data, elements, "log10", was_da=was_da)
    new = {}
    for n in names:
        var = data[n]
        u = var.attrs.get("units")
        attrs = _new_attrs(var, "log10", f"log10({u})" if u else "log10")
        new[n] = _finish(_checked_log(var, n, np.log10), var, attrs)
    return _from_dataset(data.assign(new), ds, was_da)


def _compute_stats(data: xr.Dataset, names: list[str], stats: Callable) -> tuple[dict, dict]:
    first, second = {}, {}
    for n in names:
        a, b = stats(data[n])
        first[n], second[n] = _scalar_stat(a), _scalar_stat(b)
    return first, second


def _moments(var: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    # accumulate in float64: float32 sums over large grids lose digits, and
    # numpy and dask would round differently
    return var.mean(skipna=True, dtype="float64"), var.std(skipna=True, dtype="float64")


def _quartiles(var: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    if _is_lazy(var):
        # exact quantiles need the whole variable in one block; dask holds one
        # element at a time in memory when the graph runs
        var = var.chunk(dict.fromkeys(var.dims, -1))
    q = var.quantile([0.25, 0.5, 0.75], skipna=True)
    return q.isel(quantile=1), q.isel(quantile=2) - q.isel(quantile=0)


def _to_floats(d: dict[str, xr.DataArray]) -> dict[str, float]:
    return {("data" if n == _DA_NAME else n): float(v) for n, v in d.items()}


def zscore_stats(
    ds: xr.Dataset | xr.DataArray, *, elements: str | Sequence[str] | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """Compute the per-element mean and standard deviation that :func:`zscore` uses.

    This computes dask data (in one pass over the graph). Pass the result to
    ``zscore(new, mean=..., std=...)`` to scale another area with the statistics
    of a training area.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        Grid, voxels or samples.
    elements : str or list of str, optional
        Variables; default every numeric variable on the data dims.

    Returns
    -------
    mean, std : dict of str to float
        Over all cells (NaN skipped); ``std`` is the population standard deviation
        (``ddof=0``). A DataArray's entry is keyed ``"data"``.

    Examples
    --------
    >>> import xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu"])
    >>> mean, std = xp.preprocess.zscore_stats(w.samples)
    >>> sorted(mean)
    ['Au', 'Cu']
    """
    data, was_da = _as_dataset(ds, "zscore_stats")
    names = _select(data, elements, "zscore_stats", was_da=was_da)
    means, stds = dask.compute(*_compute_stats(data, names, _moments))
    return _to_floats(means), _to_floats(stds)


def robust_stats(
    ds: xr.Dataset | xr.DataArray, *, elements: str | Sequence[str] | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """Compute the per-element median and interquartile range that :func:`robust_scale` uses.

    This computes dask data.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        Grid, voxels or samples.
    elements : str or list of str, optional
        Variables; default every numeric variable on the data dims.

    Returns
    -------
    median, iqr : dict of str to float
        Median and ``q75 - q25`` (linear interpolation, NaN skipped).

    Examples
    --------
    >>> import xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu"])
    >>> median, iqr = xp.preprocess.robust_stats(w.samples)
    >>> iqr["Cu"] > 0
    True
    """
    data, was_da = _as_dataset(ds, "robust_stats")
    names = _select(data, elements, "robust_stats", was_da=was_da)
    medians, iqrs = dask.compute(*_compute_stats(data, names, _quartiles))
    return _to_floats(medians), _to_floats(iqrs)


def _scaled(
    ds, elements, center, scale, *, func, stats, what, attr_names, units, label_center, label_scale
):
    data, was_da = _as_dataset(ds, func)
    names = _select(data, elements, func, was_da=was_da)
    if (center is None) != (scale is None):
        raise DataError(f"{func}() needs both {label_center}= and {label_scale}= or neither")
    given_c = _given_stats(center, names, label_center, func)
    given_s = _given_stats(scale, names, label_scale, func)
    if given_c is None or given_s is None:
        cs, ss = _compute_stats(data, names, stats)
    else:
        for n in names:  # known numbers: check now, whatever the backend
            if not np.isfinite(given_s[n]) or given_s[n] <= 0:
                raise DataError(
                    f"{func}({label_scale}=...) for {_label(n)} is {given_s[n]!r}; "
                    "it must be a finite number > 0"
                )
        cs, ss = given_c, given_s
    new = {}
    for n in names:
        var = data[n]
        c, s = cs[n], ss[n]
        out = _center_scale(var, c, s, n, what)
        extra = {}
        if not (dask.is_dask_collection(c) or dask.is_dask_collection(s)):
            # numbers known without computing: keep them so they can be reused
            extra = {attr_names[0]: float(c), attr_names[1]: float(s)}
        new[n] = _finish(out, var, _new_attrs(var, func, units, **extra))
    return _from_dataset(data.assign(new), ds, was_da)


def zscore(
    ds: xr.Dataset | xr.DataArray,
    *,
    elements: str | Sequence[str] | None = None,
    mean: Mapping[str, float] | None = None,
    std: Mapping[str, float] | None = None,
) -> xr.Dataset | xr.DataArray:
    """Standardise each element: ``(x - mean) / std`` over all cells or samples.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        Grid, voxels or samples, numpy or dask backed. Often log-transformed first.
    elements : str or list of str, optional
        Variables to scale; default every numeric variable on the data dims.
    mean, std : dict of str to float, optional
        Statistics to use instead of this data's, e.g. a training area's from
        :func:`zscore_stats`. Pass both or neither.

    Returns
    -------
    xarray.Dataset or DataArray
        Same layout, coordinates, CRS and attrs; scaled variables get
        ``units = "standard deviations"``. The mean and (population, ``ddof=0``,
        NaN-skipping) standard deviation are stored as attrs ``zscore_mean`` and
        ``zscore_std`` when known without computing: on numpy data or when given.
        On dask data the statistics stay lazy (use :func:`zscore_stats`).

    Raises
    ------
    DataError
        When an element's standard deviation is zero or undefined (now on numpy
        data, at compute time on dask data), or ``mean``/``std`` lack an element.

    Examples
    --------
    >>> import xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu"])
    >>> z = xp.preprocess.zscore(xp.preprocess.log10(w.samples))
    >>> round(float(z["Cu"].mean()), 6) == 0
    True
    """
    return _scaled(
        ds,
        elements,
        mean,
        std,
        func="zscore",
        stats=_moments,
        what="standard deviation",
        attr_names=("zscore_mean", "zscore_std"),
        units="standard deviations",
        label_center="mean",
        label_scale="std",
    )


def robust_scale(
    ds: xr.Dataset | xr.DataArray,
    *,
    elements: str | Sequence[str] | None = None,
    median: Mapping[str, float] | None = None,
    iqr: Mapping[str, float] | None = None,
) -> xr.Dataset | xr.DataArray:
    """Scale each element robustly: ``(x - median) / IQR``.

    IQR is the interquartile range ``q75 - q25`` (quantiles by linear
    interpolation, NaN skipped), not scaled to match a normal standard deviation
    (divide by 1.349 for that) and not the MAD.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        Grid, voxels or samples, numpy or dask backed.
    elements : str or list of str, optional
        Variables to scale; default every numeric variable on the data dims.
    median, iqr : dict of str to float, optional
        Statistics to use instead of this data's (see :func:`robust_stats`).

    Returns
    -------
    xarray.Dataset or DataArray
        Same layout, coordinates, CRS and attrs; scaled variables get
        ``units = "IQR"`` and, when known without computing, attrs ``robust_median``
        and ``robust_iqr``.

    Raises
    ------
    DataError
        When an element's IQR is zero (e.g. most values at a detection limit) or
        undefined.

    Notes
    -----
    Exact quantiles need all of a variable at once: on dask data each element is
    rechunked to one block inside the graph, so computing holds one element's
    values in memory (lazily: nothing runs until the result is computed).

    Examples
    --------
    >>> import xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu"])
    >>> r = xp.preprocess.robust_scale(w.samples)
    >>> r["Cu"].attrs["units"]
    'IQR'
    """
    return _scaled(
        ds,
        elements,
        median,
        iqr,
        func="robust_scale",
        stats=_quartiles,
        what="interquartile range",
        attr_names=("robust_median", "robust_iqr"),
        units="IQR",
        label_center="median",
        label_scale="iqr",
    )


# -- min-max scaling of a map ----------------------------------------------------------


def _minmax_block(a: np.ndarray, lo: np.ndarray, hi: np.ndarray, name: str) -> np.ndarray:
    low, high = float(lo), float(hi)
    if np.isnan(low) or np.isnan(high):
        raise DataError(f"minmax_scale: map {name!r} holds no finite values")
    if np.isinf(low) or np.isinf(high):
        which = " and ".join(repr(v) for v in dict.fromkeys((low, high)) if np.isinf(v))
        raise DataError(
            f"minmax_scale: map {name!r} holds infinite values ({which}), so its "
            "range is unbounded and every finite cell would scale to 0 or NaN; "
            "mask them first (map.where(np.isfinite(map)))"
        )
    if high <= low:
        raise DataError(f"minmax_scale: map {name!r} is constant ({low!r}); it cannot be scaled")
    return (a - low) / (high - low)


def minmax_scale(map: xr.DataArray) -> xr.DataArray:
    """Scale a map linearly to [0, 1] by its global minimum and maximum (NaN ignored).

    A global reduction: every output cell depends on the minimum and maximum of the whole
    map. On dask the result stays lazy (the extremes are reduced inside the same graph);
    a constant or all-NaN map raises when computed.

    Parameters
    ----------
    map : xarray.DataArray
        Any map (2-D, 3-D or a stack, scaled over all of it).

    Returns
    -------
    xarray.DataArray
        Same dims, coords, name and CRS; NaN stays NaN; ``attrs["scaling"]`` says
        ``"minmax (global)"``.

    Raises
    ------
    DataError
        When the map is constant, has no finite value, or holds an infinite value (its
        range would be unbounded: the message says so, rather than that it has no finite
        value).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> minmax_scale(xr.DataArray([2.0, np.nan, 4.0, 3.0], dims="x")).values.tolist()
    [0.0, nan, 1.0, 0.5]
    """
    if not isinstance(map, xr.DataArray):
        raise DataError(f"minmax_scale needs a DataArray; got {type(map).__name__}")
    if not np.issubdtype(map.dtype, np.number) or map.dtype == bool:
        raise DataError(f"minmax_scale: map {map.name!r} is not numeric (dtype {map.dtype})")
    lo, hi = map.min(skipna=True), map.max(skipna=True)
    out = xr.apply_ufunc(
        _minmax_block,
        map,
        lo,
        hi,
        kwargs={"name": str(map.name)},
        dask="parallelized",
        output_dtypes=[map.dtype],
        keep_attrs=True,
    )
    out.attrs["scaling"] = "minmax (global)"
    return out
