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
    DEFAULT_TOP_PERCENT,
    ResolvedMap,
    resolve_map,
    top_area_threshold,
)
from xprospect.evaluate.curves import _capture, _success_rate, roc_curve
from xprospect.evaluate.metrics import (
    auc_ci,
    classification_metrics,
    metric_registry,
    score_metrics,
)
from xprospect.evaluate.plots import plot_roc, plot_success_rate
from xprospect.exceptions import DataError
from xprospect.io._atomic import atomic_path
from xprospect.points import default_buffer, negative_cells, sample_negatives
from xprospect.preprocess.scaling import minmax_scale

__all__ = ["compare", "plot_compare"]

log = logging.getLogger(__name__)

_SCALE = ("auto", "minmax", None)


def _prepare(
    maps: Mapping[str, xr.DataArray], deposits: Any, scale: str | None
) -> tuple[dict[str, ResolvedMap], dict[str, bool]]:
    """Read every map once, min-max scale those that need it, and locate the deposits."""
    if scale not in _SCALE:
        raise DataError(f"scale must be one of {_SCALE}; got {scale!r}")
    if not maps:
        raise DataError("compare needs at least one map")
    out, scaled = {}, {}
    for name, m in maps.items():
        r = resolve_map(m, deposits, what=f"map {name!r}")
        do = scale == "minmax"
        if scale == "auto":
            lo, hi = float(np.nanmin(r.values)), float(np.nanmax(r.values))
            do = lo < 0.0 or hi > 1.0
        if do:
            # scaling keeps NaN cells NaN, so validity and deposit cells are unchanged
            sm = minmax_scale(r.score_map)
            r = ResolvedMap(
                score_map=sm,
                values=np.asarray(sm.values, dtype="float64"),
                valid=r.valid,
                deposits=r.deposits,
            )
            log.info("compare: map %r min-max scaled to [0, 1] before thresholding", name)
        out[str(name)] = r
        scaled[str(name)] = do
    return out, scaled


def _evaluate_all(
    maps: Mapping[str, xr.DataArray],
    deposits: Any,
    *,
    negatives: Any,
    buffer: float | None,
    threshold: float | None,
    top_percent: float | None,
    scale: str | None,
    ci: str,
    level: float,
    seed: int,
):
    if threshold is not None and top_percent is not None:
        raise DataError(
            f"pass threshold= ({threshold!r}) or top_percent= ({top_percent!r}), not both"
        )
    if threshold is None and top_percent is None:
        top_percent = DEFAULT_TOP_PERCENT[0]
    share = DEFAULT_TOP_PERCENT[0] if top_percent is None else float(top_percent)
    prepared, scaled = _prepare(maps, deposits, scale)
    first = next(iter(prepared.values()))
    if isinstance(negatives, (int, np.integer)) and not isinstance(negatives, bool):
        # draw once, on the cells finite in every map, so every model meets the same cells
        valid = np.ones(first.values.shape, bool)
        for r in prepared.values():
            if r.values.shape != first.values.shape:
                raise DataError(
                    "with negatives=int every map must share one grid; pass negative points instead"
                )
            valid &= r.valid
        buf = default_buffer(first.score_map) if buffer is None else float(buffer)
        negatives = sample_negatives(
            first.score_map, deposits, int(negatives), buffer=buf, seed=seed, mask=valid
        )
    rows, rocs, srcs = {}, {}, {}
    for name, r in prepared.items():
        pos = r.deposits
        assert pos is not None
        neg, _ = negative_cells(r.score_map, r.valid, deposits, negatives, buffer=buffer, seed=seed)
        flat = r.values.ravel()
        s = np.concatenate([flat[pos.flat], flat[neg.flat]])
        y = np.concatenate([np.ones(len(pos.flat), bool), np.zeros(len(neg.flat), bool)])
        # each map's own top share of the area (scores of different models are not on one
        # scale), or the one given threshold
        thr = (
            float(threshold)
            if threshold is not None
            else top_area_threshold(r.values[r.valid], share, f"map {name!r}")
        )
        cm = classification_metrics(y, s, threshold=thr)
        a = auc_ci(y, s, level=level, method=ci, seed=seed)
        src = _success_rate(r)
        cap = _capture(r, threshold=thr)
        rows[name] = {
            "threshold": thr,
            "auc": a["auc"],
            "auc_lower": a["lower"],
            "auc_upper": a["upper"],
            "auc_se": a["se"],
            "z_auc": a["z_auc"],
            "accuracy": cm["accuracy"],
            "precision": cm["precision"],
            "recall": cm["recall"],
            "f1": cm["f1"],
            "f1_macro": cm["f1_macro"],
            "success_rate_auc": src.attrs["auc"],
            "capture_deposit_fraction": cap["deposit_fraction"],
            "capture_area_fraction": cap["area_fraction"],
            "capture_efficiency": cap["efficiency"],
            "n_deposits": len(pos.flat),
            "n_negatives": len(neg.flat),
            "scaled": scaled[name],
        }
        # every registered metric, in its column (roc_auc's is "auc", filled above)
        registry = metric_registry()
        for key, value in score_metrics(y, s).items():
            rows[name][registry[key].column] = value
        rocs[name] = roc_curve(y, s)
        srcs[name] = src
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    table.attrs.update(
        threshold=None if threshold is None else float(threshold),
        top_percent=None if top_percent is None else float(top_percent),
        ci=ci,
        level=float(level),
        seed=int(seed),
        scale=scale,
    )
    return table, rocs, srcs


def compare(
    maps: Mapping[str, xr.DataArray],
    deposits: Any,
    *,
    negatives: Any = None,
    buffer: float | None = None,
    threshold: float | None = None,
    top_percent: float | None = None,
    scale: str | None = "auto",
    ci: str = "hanley",
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
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
        Clearance around deposits when choosing negatives (default
        :func:`xprospect.points.default_buffer`, one cell width).
    threshold : float, optional
        One threshold of precision, recall, F1 and capture efficiency for every map, applied
        after scaling. Give this or ``top_percent``, not both.
    top_percent : float, optional
        Judge each map at its own top ``top_percent`` % of the area (the threshold is the
        score at or above which that share lies, so maps on different scales are judged
        alike). The default when neither is given is the top
        ``DEFAULT_TOP_PERCENT[0]`` % (10 %), as in :func:`evaluate`.
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
        Indexed by ``model``: ``threshold`` (the one used for that map), ``auc``,
        ``auc_lower``, ``auc_upper``, ``auc_se``, ``z_auc``, ``accuracy``, ``precision``,
        ``recall``, ``f1``, ``f1_macro``, ``success_rate_auc``,
        ``capture_deposit_fraction``, ``capture_area_fraction``, ``capture_efficiency``,
        ``n_deposits``, ``n_negatives``, ``scaled``, then one column per metric registered
        with :func:`~xprospect.evaluate.metrics.register_metric` (``roc_auc`` fills ``auc``).
        Each map is computed once.
    """
    table, _, _ = _evaluate_all(
        maps,
        deposits,
        negatives=negatives,
        buffer=buffer,
        threshold=threshold,
        top_percent=top_percent,
        scale=scale,
        ci=ci,
        level=level,
        seed=seed,
    )
    return table


def plot_compare(
    maps: Mapping[str, xr.DataArray],
    deposits: Any,
    *,
    path: str | Path | None = None,
    axes: Any = None,
    negatives: Any = None,
    buffer: float | None = None,
    threshold: float | None = None,
    top_percent: float | None = None,
    scale: str | None = "auto",
    seed: int = 0,
) -> Any:
    """One figure of ROC and success-rate curves for several maps on the same deposits.

    Parameters as in :func:`compare`; ``path`` saves the figure (PNG, PDF), ``axes`` (two
    Axes) draws on existing ones. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt  # optional heavy dependency, only for figures

    _, rocs, srcs = _evaluate_all(
        maps,
        deposits,
        negatives=negatives,
        buffer=buffer,
        threshold=threshold,
        top_percent=top_percent,
        scale=scale,
        ci="hanley",
        level=0.95,
        seed=seed,
    )
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), layout="constrained")
    else:
        fig = axes[0].figure
    plot_roc(rocs, ax=axes[0])
    plot_success_rate(srcs, ax=axes[1])
    if path is not None:
        try:
            with atomic_path(path) as tmp:  # a failed write leaves nothing behind
                fig.savefig(tmp, dpi=120)
        finally:
            plt.close(fig)
    return fig
