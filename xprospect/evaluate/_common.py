"""Shared plumbing of the evaluation functions: score maps read once, with their deposits.

Evaluation is inherently global (ranking every cell of a map), so these helpers read the
score map's values once; nothing here is lazy. Points on the grid (deposit cells,
negatives, the default buffer) come from :mod:`xprospect.points`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from xprospect._dask import compute_once
from xprospect._dims import GRID_DIMS_2D, GRID_DIMS_3D
from xprospect.exceptions import DataError, GridError
from xprospect.points import CellPoints, point_cells

log = logging.getLogger("xprospect.evaluate")

#: Default shares of the area called prospective (percent of the map's valid cells): the
#: evaluation's threshold is the top 10 %; targets are drawn at the top 10 % and 2 %. A share
#: of the area, unlike a fixed score such as 0.5, means the same on every map (a probability,
#: an anomaly score, a map that is not calibrated) and is what a programme can follow up.
DEFAULT_TOP_PERCENT: tuple[float, ...] = (10.0, 2.0)


def top_area_threshold(values: np.ndarray, percent: float, what: str = "map") -> float:
    """Return the score at or above which ``percent`` % of the finite cells lie.

    Parameters
    ----------
    values : numpy.ndarray
        The map's values (non-finite cells are outside the study area).
    percent : float
        Share of the area, in (0, 100].
    what : str
        How to name the map in errors.

    Returns
    -------
    float
        The ``1 - percent / 100`` quantile of the finite values.

    Raises
    ------
    DataError
        For a share outside (0, 100] or a map without finite values.

    Examples
    --------
    >>> top_area_threshold(np.arange(1.0, 11.0), 10)  # one cell of ten lies at or above it
    9.1
    """
    share = as_share(percent)
    v = np.asarray(values, dtype="float64")
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise DataError(f"{what} holds no finite values")
    return float(np.quantile(v, 1 - share / 100))


def as_share(percent: Any) -> float:
    """Return ``percent`` as a float in (0, 100], or raise a :class:`DataError`."""
    ok = isinstance(percent, (int, float, np.integer, np.floating)) and not isinstance(
        percent, bool
    )
    if not ok or not 0 < float(percent) <= 100:
        raise DataError(f"top percent must be in (0, 100]; got {percent!r}")
    return float(percent)


def as_score_map(score_map: xr.DataArray | xr.Dataset, what: str = "score_map") -> xr.DataArray:
    """Return ``score_map`` as a (y, x) or (z, y, x) DataArray, or raise naming the problem.

    A Dataset with a single data variable is accepted (that variable is used); extra
    dimensions of size 1 (e.g. a GeoTIFF ``band``) are squeezed away.
    """
    if isinstance(score_map, xr.Dataset):
        names = [n for n in score_map.data_vars if n != "mask"]
        if len(names) != 1:
            msg = (
                f"{what} is a Dataset with variables {list(score_map.data_vars)}; "
                "pass the one DataArray to evaluate"
            )
            raise DataError(msg)
        score_map = score_map[names[0]]
    if not isinstance(score_map, xr.DataArray):
        raise DataError(f"{what} must be an xarray DataArray; got {type(score_map).__name__}")
    extra = [d for d in score_map.dims if d not in GRID_DIMS_3D]
    if extra:
        if any(score_map.sizes[d] != 1 for d in extra):
            msg = (
                f"{what} has dims {tuple(score_map.dims)}; a score map is (y, x) or "
                "(z, y, x) (select one element or band first)"
            )
            raise GridError(msg)
        score_map = score_map.squeeze(extra, drop=True)
    dims = GRID_DIMS_3D if "z" in score_map.dims else GRID_DIMS_2D
    if set(score_map.dims) != set(dims):
        msg = f"{what} has dims {tuple(score_map.dims)}; expected {dims}"
        raise GridError(msg)
    return score_map.transpose(*dims)


def grid_values(score_map: xr.DataArray, what: str = "score_map") -> np.ndarray:
    """Float64 values of a score map (computes dask data), refusing an all-NaN map."""
    vals = np.asarray(score_map.values, dtype="float64")
    if not np.isfinite(vals).any():
        raise DataError(f"{what} {score_map.name!r} holds no finite value")
    return vals


@dataclass(frozen=True)
class ResolvedMap:
    """A score map read once, with the cells of the deposits on it.

    :func:`~xprospect.evaluate.evaluate` and :func:`~xprospect.evaluate.compare` resolve
    each map once and hand this to the curves, the capture and the block grid, so a lazy
    map is computed and the deposits are located once per call.

    Attributes
    ----------
    score_map : xarray.DataArray
        The map on its grid dims (y, x) or (z, y, x), backed by ``values``.
    values : numpy.ndarray
        Its float64 values.
    valid : numpy.ndarray
        Boolean: finite cells (within the mask, when one was given).
    deposits : CellPoints or None
        The deposits' cells on valid cells (None when no deposits were given).
    """

    score_map: xr.DataArray
    values: np.ndarray
    valid: np.ndarray
    deposits: CellPoints | None


def resolve_map(
    score_map: xr.DataArray | xr.Dataset,
    deposits: Any = None,
    *,
    mask: Any = None,
    what: str = "score_map",
) -> ResolvedMap:
    """Read a score map's values once (computing dask data) and locate the deposits on it.

    A lazy map is computed once by :func:`xprospect._dask.compute_once`: persisted on the
    cluster and gathered when a ``dask.distributed`` client is active, computed by the local
    scheduler otherwise.

    Parameters
    ----------
    score_map : DataArray or single-variable Dataset
        The map (see :func:`as_score_map`).
    deposits : points, optional
        Known deposits; those off the grid or on invalid cells are dropped and counted.
    mask : bool DataArray or array, optional
        Cells to consider (combined with the map's finite cells).
    what : str
        What the map is, for messages.

    Returns
    -------
    ResolvedMap
    """
    m = compute_once(as_score_map(score_map, what))  # on a cluster: persisted there, gathered
    vals = grid_values(m, what)
    valid = np.isfinite(vals)
    if mask is not None:
        mk = np.asarray(mask.values if isinstance(mask, xr.DataArray) else mask, dtype=bool)
        if mk.shape != vals.shape:
            raise DataError(f"mask has shape {mk.shape}; the map is {vals.shape}")
        valid &= mk
    m = m.copy(data=vals) if m.chunks is not None or m.dtype != vals.dtype else m
    cells = None if deposits is None else point_cells(deposits, m, valid, "deposits")
    return ResolvedMap(score_map=m, values=vals, valid=valid, deposits=cells)
