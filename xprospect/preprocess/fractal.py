"""Fractal concentration-area (C-A) and concentration-volume (C-V) thresholds.

The C-A model (Cheng et al., 1994) plots, for a series of thresholds ``v``, the area
``A(>= v)`` of the map whose value is at least ``v`` against ``v`` on log-log axes.
Populations of a multifractal field (background, anomaly, ...) follow straight lines of
different slopes; the breaks between the lines are the thresholds that separate them.
The C-V model does the same with voxel volumes. Here breaks are found by an exact
piecewise linear least-squares fit of the log-log curve: dynamic programming over every
placement of the break points, each segment fitted by its own straight line, and each
threshold read where the fitted lines of neighbouring segments intersect.

Every function here is a global reduction (the curve counts cells over the whole map),
so lazy input is computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect._dims import GRID_DIMS_2D, GRID_DIMS_3D, get_crs, grid_geometry, write_crs
from xprospect.exceptions import DataError, GridError

__all__ = [
    "FractalThresholds",
    "classify_fractal",
    "concentration_area",
    "concentration_volume",
    "fractal_thresholds",
]

_METHODS = ("piecewise-lsq",)


@dataclass(frozen=True)
class FractalThresholds:
    """Breaks of a C-A / C-V log-log curve and the lines fitted between them.

    Attributes
    ----------
    thresholds : numpy.ndarray
        ``n_breaks`` thresholds in the map's units, ascending.
    slopes : numpy.ndarray
        Slope of the fitted line of each of the ``n_breaks + 1`` segments (log10 measure
        against log10 threshold); the segment's fractal dimension is ``-slope``.
    intercepts : numpy.ndarray
        Intercept of each segment's line (log10 measure at threshold 1).
    segments : list of (int, int)
        Index range ``[start, stop)`` of the curve's points in each segment.
    sse : float
        Total squared residual of the fit (log10 units).
    curve : pandas.DataFrame
        The curve that was fitted (see :func:`concentration_area`).
    kind : {"area", "volume"}
        C-A or C-V.
    """

    thresholds: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray
    segments: list[tuple[int, int]]
    sse: float
    curve: pd.DataFrame = field(repr=False)
    kind: str = "area"

    @property
    def dimensions(self) -> np.ndarray:
        """Fractal dimension of each segment (minus its slope)."""
        return -self.slopes

    def __len__(self) -> int:
        return len(self.thresholds)

    def __iter__(self):
        return iter(self.thresholds.tolist())

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.thresholds, dtype=dtype)


def _values_and_cell(
    values_or_map: Any, *, cell_size: float | None, ndim: int, what: str
) -> tuple[np.ndarray, float]:
    """Finite values (computed) and the area / volume of one cell."""
    if isinstance(values_or_map, xr.DataArray):
        dims = GRID_DIMS_3D if ndim == 3 else GRID_DIMS_2D
        if set(values_or_map.dims) != set(dims):
            msg = (
                f"{what} needs a map with dims {dims}; got {values_or_map.dims} "
                f"(variable {values_or_map.name!r})"
            )
            raise DataError(msg)
        if cell_size is None:
            geom = grid_geometry(values_or_map)
            steps = [abs(s) for s in geom.step]
            if any(s == 0 for s in steps):
                bad = [d for d, s in zip(geom.dims, steps, strict=True) if s == 0]
                msg = (
                    f"cannot infer the cell size of {values_or_map.name!r} from a single "
                    f"cell along {bad}; pass cell_size="
                )
                raise GridError(msg)
            cell_size = float(np.prod(steps))
        # Inherently global: the curve counts cells over the whole map.
        arr = np.asarray(values_or_map.values, dtype="float64").ravel()
    elif isinstance(values_or_map, xr.Dataset):
        msg = f"{what} takes one map (a DataArray) or an array; got a Dataset, pick a variable"
        raise DataError(msg)
    else:
        arr = np.asarray(values_or_map, dtype="float64").ravel()
        cell_size = 1.0 if cell_size is None else float(cell_size)
    if not np.isfinite(cell_size) or cell_size <= 0:
        raise DataError(f"cell_size must be a positive number; got {cell_size!r}")
    return arr[np.isfinite(arr)], float(cell_size)


def _curve(
    values: np.ndarray,
    cell: float,
    *,
    n_thresholds: int,
    thresholds: Sequence[float] | None,
    min_cells: int,
    measure: str,
    what: str,
) -> pd.DataFrame:
    if values.size == 0:
        raise DataError(f"{what}: the map holds no finite values")
    pos = values[values > 0]
    if pos.size == 0:
        msg = (
            f"{what} works on log-log axes and needs positive values; the map's values "
            f"lie in [{values.min()!r}, {values.max()!r}] (back-transform logs or shift)"
        )
        raise DataError(msg)
    if thresholds is None:
        if int(n_thresholds) < 4:
            raise DataError(f"n_thresholds must be at least 4; got {n_thresholds!r}")
        lo, hi = float(pos.min()), float(pos.max())
        if lo == hi:
            raise DataError(f"{what}: every positive value equals {lo!r}; there is no curve")
        thr = np.geomspace(lo, hi, int(n_thresholds))
    else:
        thr = np.unique(np.asarray(thresholds, dtype="float64"))
        if thr.size < 2 or not np.all(np.isfinite(thr)) or thr[0] <= 0:
            msg = f"thresholds must be at least two finite positive values; got {thresholds!r}"
            raise DataError(msg)
    srt = np.sort(values)
    count = srt.size - np.searchsorted(srt, thr, side="left")
    keep = count >= max(int(min_cells), 1)
    return pd.DataFrame(
        {"threshold": thr[keep], "n_cells": count[keep], measure: count[keep] * cell}
    )


def concentration_area(
    values_or_map: Any,
    *,
    n_thresholds: int = 100,
    thresholds: Sequence[float] | None = None,
    cell_size: float | None = None,
    min_cells: int = 1,
) -> pd.DataFrame:
    """Concentration-area curve: the area of the map at or above each threshold.

    A global reduction: lazy (dask) input is computed.

    Parameters
    ----------
    values_or_map : xarray.DataArray or array-like
        A (y, x) map (the cell area comes from its grid) or bare values (each cell of
        area ``cell_size``, default 1). NaN cells are ignored.
    n_thresholds : int
        Number of thresholds, spaced evenly in log between the smallest positive and the
        largest value (ignored when ``thresholds`` is given).
    thresholds : sequence of float, optional
        Explicit positive thresholds.
    cell_size : float, optional
        Area of one cell (overrides the grid's).
    min_cells : int
        Drop thresholds with fewer cells above them (the curve's noisy tail).

    Returns
    -------
    pandas.DataFrame
        Columns ``threshold``, ``n_cells`` (cells with value >= threshold) and ``area``
        (``n_cells`` times the cell area, in CRS units squared).

    Examples
    --------
    >>> import numpy as np
    >>> curve = concentration_area(np.array([1.0, 2.0, 4.0, 8.0]), n_thresholds=4)
    >>> curve["n_cells"].tolist()
    [4, 3, 2, 1]
    """
    vals, cell = _values_and_cell(
        values_or_map, cell_size=cell_size, ndim=2, what="concentration_area"
    )
    return _curve(
        vals,
        cell,
        n_thresholds=n_thresholds,
        thresholds=thresholds,
        min_cells=min_cells,
        measure="area",
        what="concentration_area",
    )


def concentration_volume(
    values_or_map: Any,
    *,
    n_thresholds: int = 100,
    thresholds: Sequence[float] | None = None,
    cell_size: float | None = None,
    min_cells: int = 1,
) -> pd.DataFrame:
    """Concentration-volume curve: the volume of a block model at or above each threshold.

    The same as :func:`concentration_area` on voxels; the cell volume comes from the
    (z, y, x) grid. A global reduction: lazy (dask) input is computed.

    Parameters
    ----------
    values_or_map : xarray.DataArray or array-like
        A (z, y, x) voxel map, or bare values (each of volume ``cell_size``, default 1).
    n_thresholds, thresholds, cell_size, min_cells
        As for :func:`concentration_area`.

    Returns
    -------
    pandas.DataFrame
        Columns ``threshold``, ``n_cells`` and ``volume`` (CRS units cubed).
    """
    vals, cell = _values_and_cell(
        values_or_map, cell_size=cell_size, ndim=3, what="concentration_volume"
    )
    return _curve(
        vals,
        cell,
        n_thresholds=n_thresholds,
        thresholds=thresholds,
        min_cells=min_cells,
        measure="volume",
        what="concentration_volume",
    )


def _segment_sse_table(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Prefix sums giving the least-squares line of any run ``[i, j)`` in O(1)."""
    z = np.zeros(1)
    c1 = np.concatenate([z, np.cumsum(np.ones_like(x))])
    cx = np.concatenate([z, np.cumsum(x)])
    cy = np.concatenate([z, np.cumsum(y)])
    cxx = np.concatenate([z, np.cumsum(x * x)])
    cxy = np.concatenate([z, np.cumsum(x * y)])
    cyy = np.concatenate([z, np.cumsum(y * y)])
    return c1, cx, cy, cxx, cxy, cyy


def _fit_run(sums: tuple[np.ndarray, ...], i: int, j: int) -> tuple[float, float, float]:
    """Slope, intercept and SSE of the least-squares line through points ``[i, j)``."""
    c1, cx, cy, cxx, cxy, cyy = sums
    n = c1[j] - c1[i]
    sx, sy = cx[j] - cx[i], cy[j] - cy[i]
    sxx, sxy, syy = cxx[j] - cxx[i], cxy[j] - cxy[i], cyy[j] - cyy[i]
    vxx = sxx - sx * sx / n
    vxy = sxy - sx * sy / n
    vyy = syy - sy * sy / n
    slope = vxy / vxx if vxx > 0 else 0.0
    intercept = (sy - slope * sx) / n
    sse = max(vyy - slope * vxy, 0.0)
    return float(slope), float(intercept), float(sse)


def _piecewise_lsq(
    x: np.ndarray, y: np.ndarray, n_segments: int, min_points: int
) -> tuple[list[tuple[int, int]], float]:
    """Exact optimal split of ``(x, y)`` into contiguous runs, each fitted by a line.

    Dynamic programming over break positions: ``best[k, j]`` is the least total SSE of
    the first ``j`` points cut into ``k`` runs of at least ``min_points`` points.
    """
    n = x.size
    sums = _segment_sse_table(x, y)
    sse = np.full((n + 1, n + 1), np.inf)
    for i in range(n):
        for j in range(i + min_points, n + 1):
            sse[i, j] = _fit_run(sums, i, j)[2]
    best = np.full((n_segments + 1, n + 1), np.inf)
    arg = np.zeros((n_segments + 1, n + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for k in range(1, n_segments + 1):
        for j in range(k * min_points, n + 1):
            cand = best[k - 1, :j] + sse[:j, j]
            i = int(np.argmin(cand))
            best[k, j], arg[k, j] = cand[i], i
    bounds, j = [], n
    for k in range(n_segments, 0, -1):
        i = int(arg[k, j])
        bounds.append((i, j))
        j = i
    return bounds[::-1], float(best[n_segments, n])


def fractal_thresholds(
    map: Any,
    *,
    n_breaks: int = 2,
    method: str = "piecewise-lsq",
    n_thresholds: int = 100,
    thresholds: Sequence[float] | None = None,
    min_points: int = 3,
    min_cells: int = 1,
    cell_size: float | None = None,
    kind: str | None = None,
) -> FractalThresholds:
    """Thresholds separating the populations of a map, from its C-A or C-V curve.

    The log-log curve (log10 threshold, log10 area or volume above it) is cut into
    ``n_breaks + 1`` contiguous segments, each fitted by its own least-squares line, at
    the break positions that minimise the total squared residual (an exhaustive dynamic
    programme, exact for the sampled curve). Each threshold is where the lines of two
    neighbouring segments cross, kept between the last point of the lower segment and the
    first of the upper one (their geometric mean when the lines are parallel or cross
    outside). A global reduction: lazy input is computed.

    Parameters
    ----------
    map : xarray.DataArray or array-like
        A (y, x) map (C-A), a (z, y, x) voxel map (C-V) or bare values.
    n_breaks : int
        Number of thresholds to find (2 gives background / anomaly / high anomaly).
    method : {"piecewise-lsq"}
        Break search.
    n_thresholds, thresholds, min_cells, cell_size
        The curve: see :func:`concentration_area`.
    min_points : int
        Least number of curve points per segment (at least 2).
    kind : {"area", "volume"}, optional
        C-A or C-V; default C-V for maps with a ``z`` dim, else C-A.

    Returns
    -------
    FractalThresholds
        Thresholds, segment slopes (minus fractal dimensions), the curve and the fit.

    Raises
    ------
    DataError
        For an unknown method, or a curve with too few points for the segments asked.

    Examples
    --------
    >>> import numpy as np
    >>> u = (np.arange(20_000) + 0.5) / 20_000
    >>> v = np.where(u > 0.1, u ** (-1 / 1.0), 10 * (u / 0.1) ** (-1 / 3.0))
    >>> ft = fractal_thresholds(v, n_breaks=1)
    >>> round(float(ft.thresholds[0]), 0)
    10.0
    """
    if method not in _METHODS:
        raise DataError(f"unknown method {method!r}; valid methods: {', '.join(_METHODS)}")
    if int(n_breaks) < 1:
        raise DataError(f"n_breaks must be at least 1; got {n_breaks!r}")
    if int(min_points) < 2:
        raise DataError(f"min_points must be at least 2; got {min_points!r}")
    if kind is None:
        kind = "volume" if isinstance(map, xr.DataArray) and "z" in map.dims else "area"
    if kind == "area":
        curve = concentration_area(
            map,
            n_thresholds=n_thresholds,
            thresholds=thresholds,
            cell_size=cell_size,
            min_cells=min_cells,
        )
    elif kind == "volume":
        curve = concentration_volume(
            map,
            n_thresholds=n_thresholds,
            thresholds=thresholds,
            cell_size=cell_size,
            min_cells=min_cells,
        )
    else:
        raise DataError(f"kind must be 'area' or 'volume'; got {kind!r}")
    x = np.log10(curve["threshold"].to_numpy())
    y = np.log10(curve[kind].to_numpy())
    n_seg = int(n_breaks) + 1
    if x.size < n_seg * int(min_points):
        msg = (
            f"the {kind} curve has {x.size} points, too few for {n_seg} segments of "
            f"{min_points} points; raise n_thresholds or lower n_breaks/min_points"
        )
        raise DataError(msg)
    segments, sse = _piecewise_lsq(x, y, n_seg, int(min_points))
    sums = _segment_sse_table(x, y)
    fits = [_fit_run(sums, i, j) for i, j in segments]
    slopes = np.array([f[0] for f in fits])
    intercepts = np.array([f[1] for f in fits])
    thr = []
    for k in range(n_seg - 1):
        lo, hi = x[segments[k][1] - 1], x[segments[k + 1][0]]
        ds = slopes[k] - slopes[k + 1]
        cross = (intercepts[k + 1] - intercepts[k]) / ds if ds != 0 else np.nan
        xb = cross if np.isfinite(cross) and lo <= cross <= hi else 0.5 * (lo + hi)
        thr.append(10.0**xb)
    return FractalThresholds(
        thresholds=np.asarray(thr),
        slopes=slopes,
        intercepts=intercepts,
        segments=[(int(i), int(j)) for i, j in segments],
        sse=sse,
        curve=curve,
        kind=kind,
    )


_DEFAULT_NAMES = {
    1: ("background", "anomaly"),
    2: ("background", "anomaly", "high anomaly"),
    3: ("background", "low anomaly", "medium anomaly", "high anomaly"),
}


def _classify_block(a: np.ndarray, thr: np.ndarray) -> np.ndarray:
    out = np.digitize(a, thr, right=False).astype("int8")
    out[~np.isfinite(a)] = -1
    return out


def classify_fractal(
    map: xr.DataArray,
    thresholds: FractalThresholds | Sequence[float],
    *,
    names: Sequence[str] | None = None,
) -> xr.DataArray:
    """Class map from fractal thresholds: 0 background, 1, 2, ... above each threshold.

    Elementwise and lazy on dask. A cell with value ``v`` belongs to class ``k`` when
    ``thresholds[k - 1] <= v < thresholds[k]``.

    Parameters
    ----------
    map : xarray.DataArray
        A (y, x) or (z, y, x) map.
    thresholds : FractalThresholds or sequence of float
        Ascending thresholds (from :func:`fractal_thresholds` or chosen).
    names : sequence of str, optional
        One name per class (``len(thresholds) + 1``); defaults to background / anomaly /
        high anomaly style names.

    Returns
    -------
    xarray.DataArray
        int8 classes named ``fractal_class`` on the map's grid, ``-1`` where the map is
        NaN (``attrs["nodata"]``), with ``attrs["class_names"]`` and ``attrs["thresholds"]``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> m = xr.DataArray(np.array([[1.0, 5.0], [50.0, np.nan]]), dims=("y", "x"))
    >>> classify_fractal(m, [2.0, 20.0]).values.tolist()
    [[0, 1], [2, -1]]
    """
    if not isinstance(map, xr.DataArray):
        raise DataError(f"classify_fractal needs a DataArray map; got {type(map).__name__}")
    thr = np.asarray(getattr(thresholds, "thresholds", thresholds), dtype="float64").ravel()
    if thr.size == 0 or not np.all(np.isfinite(thr)) or np.any(np.diff(thr) <= 0):
        raise DataError(f"thresholds must be finite and strictly ascending; got {thr.tolist()}")
    if names is None:
        names = _DEFAULT_NAMES.get(
            thr.size, ("background", *[f"anomaly {i + 1}" for i in range(thr.size)])
        )
    names = [str(n) for n in names]
    if len(names) != thr.size + 1:
        raise DataError(f"names needs {thr.size + 1} entries (one per class); got {names}")
    out = xr.apply_ufunc(
        _classify_block,
        map,
        kwargs={"thr": thr},
        dask="parallelized",
        output_dtypes=["int8"],
        keep_attrs=False,
    )
    out.name = "fractal_class"
    out.attrs = {
        "class_names": names,
        "thresholds": thr.tolist(),
        "nodata": -1,
        "long_name": "fractal anomaly class (0 = background)",
    }
    crs = get_crs(map)
    return write_crs(out, crs) if crs is not None else out
