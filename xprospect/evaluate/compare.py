"""One table and one figure comparing several score maps on the same deposits."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect.evaluate._common import (
    as_score_map,
    grid_values,
    negative_cells,
    point_cells,
)
from xprospect.evaluate.curves import capture_efficiency, roc_curve, success_rate_curve
from xprospect.evaluate.metrics import auc_ci, classification_metrics
from xprospect.exceptions import DataError
from xprospect.preprocess.scaling import minmax_scale

__all__ = ["compare", "plot_compare"]

log = logging.getLogger(__name__)

_SCALE = ("auto", "minmax", None)


def _prepare(maps: Mapping[str, xr.DataArray], scale: str | None
             ) -> tuple[dict[str, xr.DataArray], dict[str, bool]]:
    if scale not in _SCALE:
        raise DataError(f"scale must be one of {_SCALE}; got {scale!r}")
    if not maps:
        raise DataError("compare needs at least one map")
    out, scaled = {}, {}
    for name, m in maps.items():
        m = as_score_map(m, what=f"map {name!r}")
        do = scale == "minmax"
        if scale == "auto":
            lo, hi = float(m.min(skipna=True)), float(m.max(skipna=True))
            do = lo < 0.0 or hi > 1.0
        if do:
            m = minmax_scale(m)
            log.info("compare: map %r min-max scaled to [0, 1] before thresholding", name)
        out[str(name)] = m
        scaled[str(name)] = do
    return out, scaled


def _evaluate_all(maps: Mapping[str, xr.DataArray], deposits: Any, *, negatives: Any,
                  buffer: float | None, threshold: float, scale: str | None, ci: str,
                  level: float, seed: int):
    from xprospect.evidence.labels import as_points, sample_negatives

    prepared, scaled = _prepare(maps, scale)
    first = next(iter(prepared.values()))
    if isinstance(negatives, (int, np.integer)) and not isinstance(negatives, bool):
        # draw once, on the cells finite in every map, so every model meets the same cells
        valid = np.ones(first.shape, bool)
        for m in prepared.values():
            if m.shape != first.shape:
                raise DataError("with negatives=int every map must share one grid; pass "
                                "negative points instead")
            valid &= np.isfinite(np.asarray(m.values))
        from xprospect._dims import grid_geometry
        from xprospect.evaluate._common import default_buffer

        buf = default_buffer(grid_geometry(first)) if buffer is None else float(buffer)
        negatives = sample_negatives(first, as_points(deposits), int(negatives), buffer=buf,
                                     seed=seed, mask=xr.DataArray(valid, dims=first.dims))
    rows, rocs, srcs = {}, {}, {}
    for name, m in prepared.items():
        vals = grid_values(m, what=f"map {name!r}")
        valid = np.isfinite(vals)
        pos = point_cells(deposits, m, valid, "deposits")
        neg, _ = negative_cells(m, valid, deposits, negatives, buffer=buffer, seed=seed)
        flat = vals.ravel()
        s = np.concatenate([flat[pos.flat], flat[neg.flat]])
        y = np.concatenate([np.ones(len(pos.flat), bool), np.zeros(len(neg.flat), bool)])
        cm = classification_metrics(y, s, threshold=threshold)
        a = auc_ci(y, s, level=level, method=ci, seed=seed)
        src = success_rate_curve(m, deposits)
        cap = capture_efficiency(m, deposits, threshold=threshold)
        rows[name] = {
            "auc": a["auc"], "auc_lower": a["lower"], "auc_upper": a["upper"],
            "auc_se": a["se"], "z_auc": a["z_auc"],
            "accuracy": cm["accuracy"], "precision": cm["precision"], "recall": cm["recall"],
            "f1": cm["f1"], "f1_macro": cm["f1_macro"],
            "success_rate_auc": src.attrs["auc"],
            "capture_deposit_fraction": cap["deposit_fraction"],
            "capture_area_fraction": cap["area_fraction"],
            "capture_efficiency": cap["efficiency"],
            "n_deposits": len(pos.flat), "n_negatives": len(neg.flat),
            "scaled": scaled[name],
        }
        rocs[name] = roc_curve(y, s)
        srcs[name] = src
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    table.attrs.update(threshold=float(threshold), ci=ci, level=float(level), seed=int(seed),
                       scale=scale)
    return table, rocs, srcs


def compare(maps: Mapping[str, xr.DataArray], deposits: Any, *, negatives: Any = None,
            buffer: float | None = None, threshold: float = 0.5, scale: str | None = "auto",
            ci: str = "hanley", level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Compare several score maps on the same deposits in one table.

    Parameters
    ----------
    maps : mapping of name to DataArray
        Score maps (y, x) or voxels (z, y, x), e.g. ``{"ResNet": p, "VAE": err}``.
    deposits : points
        Known deposits.
    negatives : None, int or points
        As in :func:`evaluate`. An int draws the negatives once, on cells finite in every
        map, so every model is judged on the same cells.
    buffer : float, optional
        Clearance around deposits when choosing negatives (default one cell diagonal).
    threshold : float
        Threshold of precision, recall, F1 and capture efficiency, applied after scaling.
    scale : {"auto", "minmax", None}
        ``"auto"`` (default) min-max scales to [0, 1] every map with values outside [0, 1]
        (reconstruction errors, Mahalanobis distances) and leaves probability maps as they
        are; ``"minmax"`` scales all; None none. The ``scaled`` column says what was done.
        AUCs and success-rate curves do not depend on it.
    ci, level : str, float
        AUC confidence interval method and level (:func:`auc_ci`).
    seed : int
        Seed of the negatives and the bootstrap.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``model``: ``auc``, ``auc_lower``, ``auc_upper``, ``auc_se``, ``z_auc``,
        ``accuracy``, ``precision``, ``recall``, ``f1``, ``f1_macro``, ``success_rate_auc``,
        ``capture_deposit_fraction``, ``capture_area_fraction``, ``capture_efficiency``,
        ``n_deposits``, ``n_negatives``, ``scaled``.
    """
    table, _, _ = _evaluate_all(maps, deposits, negatives=negatives, buffer=buffer,
                                threshold=threshold, scale=scale, ci=ci, level=level,
                                seed=seed)
    return table


def plot_compare(maps: Mapping[str, xr.DataArray], deposits: Any, *, path: str | Path | None
                 = None, axes: Any = None, negatives: Any = None, buffer: float | None = None,
                 threshold: float = 0.5, scale: str | None = "auto", seed: int = 0) -> Any:
    """One figure of ROC and success-rate curves for several maps on the same deposits.

    Parameters as in :func:`compare`; ``path`` saves the figure (PNG, PDF), ``axes`` (two
    Axes) draws on existing ones. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    from xprospect.evaluate.plots import plot_roc, plot_success_rate

    _, rocs, srcs = _evaluate_all(maps, deposits, negatives=negatives, buffer=buffer,
                                  threshold=threshold, scale=scale, ci="hanley", level=0.95,
                                  seed=seed)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), layout="constrained")
    else:
        fig = axes[0].figure
    plot_roc(rocs, ax=axes[0])
    plot_success_rate(srcs, ax=axes[1])
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
