"""ROC and success-rate curves, and the capture efficiency of a prospective area.

The success-rate curve ranks every finite cell of a score map (2-D map or 3-D voxels) from
the highest score down and plots the share of known deposits captured against the share of
the area (or volume) taken. Ranking is global, so these functions compute the map.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect.evaluate._common import ResolvedMap, resolve_map
from xprospect.evaluate.metrics import _binary_inputs, _counts, roc_auc
from xprospect.exceptions import DataError

__all__ = ["capture_efficiency", "roc_curve", "success_rate_curve"]


def roc_curve(y_true: Any, score: Any, *, drop_intermediate: bool = True) -> pd.DataFrame:
    """ROC curve as a table.

    Parameters
    ----------
    y_true : array-like of bool or 0/1
        True class.
    score : array-like of float
        Scores (higher: more prospective).
    drop_intermediate : bool
        Drop thresholds that do not change the curve's shape (scikit-learn's option).

    Returns
    -------
    pandas.DataFrame
        Columns ``fpr``, ``tpr``, ``threshold`` (the first row, ``(0, 0)``, has threshold
        ``inf``); ``attrs["auc"]`` holds the area under it.

    Examples
    --------
    >>> roc_curve([0, 1, 0, 1], [0.1, 0.9, 0.4, 0.3])["tpr"].tolist()
    [0.0, 0.5, 0.5, 1.0, 1.0]
    """
    from sklearn.metrics import roc_curve as _sk_roc  # heavy import, only for this curve

    y, s = _binary_inputs(y_true, score)
    _counts(y)
    fpr, tpr, thr = _sk_roc(y, s, drop_intermediate=drop_intermediate)
    out = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr.astype("float64")})
    out.attrs["auc"] = roc_auc(y, s)
    return out


def success_rate_curve(
    score_map: xr.DataArray, deposits: Any, *, mask: Any = None, vertices_only: bool = True
) -> pd.DataFrame:
    """Share of deposits captured against share of the area, cells ordered by score.

    Parameters
    ----------
    score_map : xarray.DataArray
        Score map (y, x) or voxels (z, y, x); higher means more prospective. NaN cells are
        outside the study area: they count neither in the area nor as capturing deposits.
    deposits : points
        Known deposits (see :func:`xprospect.points.as_points`). A deposit counts once
        per point, so two deposits in one cell count twice. Deposits outside the grid or on
        NaN cells are dropped; their numbers are in ``attrs``.
    mask : bool DataArray or array, optional
        Cells to consider (combined with the map's finite cells).
    vertices_only : bool
        Keep only the curve's vertices (the rows where the captured share changes and the
        rows just before): the piecewise-linear curve is the same, and a map of millions of
        cells gives a table of at most about twice the number of deposits. False keeps one
        row per distinct score.

    Returns
    -------
    pandas.DataFrame
        Columns ``area_fraction``, ``deposit_fraction``, ``threshold`` (the area is the
        cells with ``score >= threshold``; cells of equal score enter together), starting
        at ``(0, 0, inf)`` and ending at ``(1, 1)``. ``attrs``: ``auc`` (area under the
        curve; 0.5 for a random map), ``n_cells``, and the deposit counts.

    Notes
    -----
    The area under this curve equals the ROC AUC of the deposits' cells against all valid
    cells (ties counted one half). The map is computed (the ranking is global).

    Examples
    --------
    >>> import xarray as xr
    >>> m = xr.DataArray([[4.0, 3.0], [2.0, 1.0]], dims=("y", "x"),
    ...                  coords={"y": [1.5, 0.5], "x": [0.5, 1.5]})
    >>> dep = xr.Dataset(coords={"x": ("point", [0.5]), "y": ("point", [1.5]),
    ...                          "point_id": ("point", ["D1"])})
    >>> success_rate_curve(m, dep)[["area_fraction", "deposit_fraction"]].values.tolist()
    [[0.0, 0.0], [0.25, 1.0], [1.0, 1.0]]
    """
    return _success_rate(resolve_map(score_map, deposits, mask=mask), vertices_only)


def _success_rate(r: ResolvedMap, vertices_only: bool = True) -> pd.DataFrame:
    """Return the success-rate curve of a map read once (see :func:`success_rate_curve`)."""
    vals, valid, cells = r.values, r.valid, r.deposits
    assert cells is not None
    counts = np.bincount(cells.flat, minlength=vals.size)
    flat_valid = np.flatnonzero(valid.ravel())
    v = vals.ravel()[flat_valid]
    c = counts[flat_valid]
    order = np.argsort(-v, kind="stable")
    v, c = v[order], c[order]
    ends = np.flatnonzero(np.diff(v) != 0)
    ends = np.append(ends, len(v) - 1)  # last cell of each run of equal scores
    n_cells, n_dep = len(v), int(c.sum())
    area = np.concatenate([[0.0], (ends + 1) / n_cells])
    dep = np.concatenate([[0.0], np.cumsum(c)[ends] / n_dep])
    thr = np.concatenate([[np.inf], v[ends]])
    if vertices_only and len(dep) > 2:
        change = np.diff(dep) != 0
        keep = np.zeros(len(dep), dtype=bool)
        keep[[0, -1]] = True
        keep[1:][change] = True  # rows where the captured share rises
        keep[:-1][change] = True  # and the rows just before them
        area, dep, thr = area[keep], dep[keep], thr[keep]
    out = pd.DataFrame({"area_fraction": area, "deposit_fraction": dep, "threshold": thr})
    out.attrs.update(
        auc=float(np.trapezoid(dep, area)), n_cells=int(n_cells), **cells.info("deposits")
    )
    return out


def capture_efficiency(
    score_map: xr.DataArray,
    deposits: Any,
    *,
    threshold: float | None = None,
    quantile: float | None = None,
    mask: Any = None,
) -> dict[str, Any]:
    """Share of known deposits inside the prospective area, and that area's share.

    The prospective area is the finite cells with ``score >= threshold``; Li et al. (2020)
    report 88 % of known Au deposits inside the areas they call prospective.

    Parameters
    ----------
    score_map : xarray.DataArray
        Score map (y, x) or voxels (z, y, x).
    deposits : points
        Known deposits (dropped and counted when outside the grid or on NaN cells).
    threshold : float, optional
        Score threshold of the prospective area.
    quantile : float, optional
        Instead of ``threshold``: the prospective area is the cells at or above this
        quantile of the finite scores (``quantile=0.9`` takes the top 10 % of the area).
        Exactly one of ``threshold`` and ``quantile`` must be given.
    mask : bool DataArray or array, optional
        Cells to consider.

    Returns
    -------
    dict
        ``threshold``, ``deposit_fraction`` (deposits captured / deposits used),
        ``area_fraction`` (prospective cells / finite cells), ``efficiency``
        (``deposit_fraction / area_fraction``: 1 is no better than chance; NaN when the
        prospective area is empty), ``n_captured``,
        ``n_prospective_cells``, ``n_cells`` and the deposit counts.

    Examples
    --------
    >>> import xarray as xr
    >>> m = xr.DataArray([[0.9, 0.2], [0.1, 0.8]], dims=("y", "x"),
    ...                  coords={"y": [1.5, 0.5], "x": [0.5, 1.5]})
    >>> dep = xr.Dataset(coords={"x": ("point", [0.5, 0.5]), "y": ("point", [1.5, 0.5]),
    ...                          "point_id": ("point", ["D1", "D2"])})
    >>> r = capture_efficiency(m, dep, threshold=0.5)
    >>> r["deposit_fraction"], r["area_fraction"], r["efficiency"]
    (0.5, 0.5, 1.0)
    """
    if (threshold is None) == (quantile is None):
        msg = (
            "give exactly one of threshold= (a score) and quantile= (e.g. 0.9 for the top "
            f"10 % of the area); got threshold={threshold!r}, quantile={quantile!r}"
        )
        raise DataError(msg)
    return _capture(
        resolve_map(score_map, deposits, mask=mask), threshold=threshold, quantile=quantile
    )


def _capture(
    r: ResolvedMap, *, threshold: float | None = None, quantile: float | None = None
) -> dict[str, Any]:
    """Capture efficiency of a map read once (see :func:`capture_efficiency`)."""
    vals, valid, cells = r.values, r.valid, r.deposits
    assert cells is not None
    v = vals[valid]
    if quantile is not None:
        if not 0.0 <= quantile <= 1.0:
            raise DataError(f"quantile must lie in [0, 1]; got {quantile!r}")
        thr = float(np.quantile(v, quantile))
    else:
        thr = float(threshold)  # type: ignore[arg-type]
    n_prosp = int((v >= thr).sum())
    n_capt = int((vals.ravel()[cells.flat] >= thr).sum())
    dep_frac = n_capt / len(cells.flat)
    area_frac = n_prosp / v.size
    return {
        "threshold": thr,
        "quantile": None if quantile is None else float(quantile),
        "deposit_fraction": float(dep_frac),
        "area_fraction": float(area_frac),
        "efficiency": float(dep_frac / area_frac) if area_frac else float("nan"),
        "n_captured": n_capt,
        "n_prospective_cells": n_prosp,
        "n_cells": int(v.size),
        **cells.info("deposits"),
    }
