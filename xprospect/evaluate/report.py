"""``evaluate``: every check of a score map against known deposits in one report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect._json import jsonable
from xprospect._sanity import warn_if_constant
from xprospect.evaluate._common import DEFAULT_TOP_PERCENT, resolve_map, top_area_threshold
from xprospect.evaluate.blocks import _block_grid
from xprospect.evaluate.curves import _capture, _success_rate, roc_curve
from xprospect.evaluate.delineate import TargetSet, targets
from xprospect.evaluate.metrics import auc_ci, classification_metrics, score_metrics
from xprospect.evaluate.plots import plot_blocks, plot_map, plot_roc, plot_success_rate
from xprospect.exceptions import DataError
from xprospect.io._atomic import atomic_path
from xprospect.points import negative_cells

__all__ = ["EvaluationReport", "evaluate"]


@dataclass
class EvaluationReport:
    """What :func:`evaluate` found.

    Attributes
    ----------
    metrics : dict
        Point metrics (deposit cells against negative cells) at the threshold (by default
        the score of the top 10 % of the area)
        (:func:`classification_metrics`), every registered metric
        (:func:`~xprospect.evaluate.metrics.register_metric`, ``roc_auc`` among them),
        ``auc_ci`` (:func:`auc_ci`), ``success_rate_auc``
        and, when blocks were asked for, ``blocks`` (the block metrics).
    roc : pandas.DataFrame
        ROC curve of deposit cells against negative cells.
    success_rate : pandas.DataFrame
        Success-rate curve over every finite cell.
    capture : dict
        Capture efficiency at the threshold (:func:`capture_efficiency`).
    blocks : pandas.DataFrame or None
        The block grid (:func:`block_grid`; 2-D maps only).
    settings : dict
        How the report was made: threshold (and the ``top_percent`` it came from, None
        for a given threshold), buffer, negatives, seed, deposit counts.
    score_map : xarray.DataArray or None
        The evaluated map, computed (a lazy map was computed once by :func:`evaluate`).
    deposits : points or None
        The deposits as given.
    """

    metrics: dict[str, Any]
    roc: pd.DataFrame
    success_rate: pd.DataFrame
    capture: dict[str, Any]
    blocks: pd.DataFrame | None
    settings: dict[str, Any]
    score_map: xr.DataArray | None = field(default=None, repr=False)
    deposits: Any = field(default=None, repr=False)

    def targets(self, **kwargs: Any) -> TargetSet:
        """Delineate target regions of the evaluated map, reusing its computed values.

        :func:`evaluate` computed a lazy map once; this hands those values (not the lazy
        graph) to :func:`~xprospect.evaluate.targets`, with the report's deposits, so
        the model behind the map does not run again.

        Parameters
        ----------
        **kwargs
            Options of :func:`~xprospect.evaluate.targets` (``levels=``, ``quantiles=``,
            ``min_cells=``...); ``deposits=`` defaults to the report's.

        Returns
        -------
        TargetSet

        Raises
        ------
        DataError
            When the report holds no map.
        """
        if self.score_map is None:
            raise DataError("this report holds no score map to delineate targets on")
        kwargs.setdefault("deposits", self.deposits)
        return targets(self.score_map, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (curves as column lists; non-finite numbers as None)."""
        out = {
            "metrics": self.metrics,
            "capture": self.capture,
            "settings": self.settings,
            "roc": self.roc,
            "success_rate": self.success_rate,
        }
        if self.blocks is not None:
            out["blocks"] = self.blocks.reset_index()
        return jsonable(out)

    def to_json(self, path: str | Path | None = None) -> str:
        """Write (when ``path`` is given) and return the report as JSON."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            with atomic_path(path) as tmp:  # a failed write leaves nothing behind
                tmp.write_text(text)
        return text

    def plot(self, path_or_ax: Any = None) -> Any:
        """Draw the map with deposits (and blocks), the ROC and the success-rate curve.

        Parameters
        ----------
        path_or_ax : str, Path, sequence of three Axes, or None
            A PNG/PDF path to save to, three Axes to draw on, or None for a new figure.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt  # optional heavy dependency, only for figures

        path = None
        if path_or_ax is None or isinstance(path_or_ax, (str, Path)):
            path = path_or_ax
            fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
        else:
            axes = list(path_or_ax)
            fig = axes[0].figure
        if self.score_map is not None:
            plot_map(self.score_map, self.deposits, ax=axes[0])
            if self.blocks is not None:
                plot_blocks(self.blocks, ax=axes[0], numbers=len(self.blocks) <= 400)
        plot_roc(self.roc, ax=axes[1])
        plot_success_rate(self.success_rate, ax=axes[2])
        if path is not None:
            try:
                with atomic_path(path) as tmp:  # a failed write leaves nothing behind
                    fig.savefig(tmp, dpi=120)
            finally:
                plt.close(fig)
        return fig


def evaluate(
    score_map: xr.DataArray,
    deposits: Any,
    *,
    negatives: Any = None,
    buffer: float | None = None,
    threshold: float | None = None,
    top_percent: float | None = None,
    blocks: Any = (12, 12),
    ci: str = "hanley",
    level: float = 0.95,
    seed: int = 0,
) -> EvaluationReport:
    """Evaluate a prospectivity (or anomaly) map against known deposits.

    Parameters
    ----------
    score_map : xarray.DataArray
        Score map (y, x) or voxels (z, y, x); higher means more prospective; NaN cells are
        outside the study area.
    deposits : points
        Known deposits (:func:`xprospect.points.as_points`); those outside the grid or on
        NaN cells are dropped and counted in ``settings``.
    negatives : None, int or points
        Cells the deposits are ranked against for ROC and the point metrics. None: every
        finite cell farther than ``buffer`` from every deposit. int: that many such cells
        drawn at random (:func:`xprospect.points.sample_negatives`, ``seed``). Points:
        used as given.
    buffer : float, optional
        Distance (CRS units) kept clear around deposits when choosing negatives; default
        :func:`xprospect.points.default_buffer` (one cell width), the package's one default.
    threshold : float, optional
        Score at or above which a cell (and a block) is called prospective, applied to the
        scores as they are. Give this or ``top_percent``, not both.
    top_percent : float, optional
        Share of the area (percent of the map's valid cells) called prospective: the
        threshold is the score at or above which that share lies. The default when neither
        is given: ``DEFAULT_TOP_PERCENT[0]`` (:data:`~xprospect.evaluate.DEFAULT_TOP_PERCENT`),
        the top 10 % of the area, a choice that means the same on any map (a probability,
        an uncalibrated or anomaly score), where a fixed score such as 0.5 may call 40 % of
        the area prospective on one map and nothing on another. ``settings`` records both.
    blocks : int, (nx, ny) or None
        Block grid of the Pangxidong study's test (2-D maps; ignored for voxels); None skips.
    ci : {"hanley", "delong", "bootstrap"}
        Confidence interval of the AUC.
    level : float
        Confidence level.
    seed : int
        Seed of the negative sampling and the bootstrap.

    Returns
    -------
    EvaluationReport

    Notes
    -----
    The map is computed once (ranking cells is global; on a distributed client the
    computation runs on the cluster) and the deposits are located once; the curves, the
    capture and the block grid all reuse them, and so does :meth:`EvaluationReport.targets`
    (the report keeps the computed map). Metrics on cells treat them as
    independent, which neighbouring cells of a smooth map are not; held-out deposits and
    :func:`spatial_block_folds` are the honest test of generalisation.

    Examples
    --------
    >>> import xprospect as xp
    >>> world = xp.synthetic.survey(seed=0, n_samples=200)
    >>> g = xp.make_grid(world.bounds, resolution=1000.0, crs=world.crs)
    >>> fp = world.footprint(*np.meshgrid(g.x.values, g.y.values))
    >>> m = xr.DataArray(fp, dims=("y", "x"), coords={"y": g.y, "x": g.x})
    >>> r = evaluate(m, world.deposits, blocks=(6, 6))
    >>> r.metrics["roc_auc"] > 0.9
    True
    """
    # the map is computed and the deposits located once; every part below reuses them
    if threshold is not None and top_percent is not None:
        raise DataError(
            f"pass threshold= ({threshold!r}) or top_percent= ({top_percent!r}), not both"
        )
    r = resolve_map(score_map, deposits)
    warn_if_constant(r.values, f"the score map {r.score_map.name!r}")
    if threshold is None:
        top_percent = DEFAULT_TOP_PERCENT[0] if top_percent is None else top_percent
        threshold = top_area_threshold(
            r.values[r.valid], top_percent, f"the score map {r.score_map.name!r}"
        )
    assert r.deposits is not None
    pos = r.deposits
    neg, neg_rec = negative_cells(
        r.score_map, r.valid, deposits, negatives, buffer=buffer, seed=seed
    )
    flat = r.values.ravel()
    s = np.concatenate([flat[pos.flat], flat[neg.flat]])
    y = np.concatenate([np.ones(len(pos.flat), bool), np.zeros(len(neg.flat), bool)])
    metrics = classification_metrics(y, s, threshold=threshold)
    metrics.update(score_metrics(y, s))
    metrics["auc_ci"] = auc_ci(y, s, level=level, method=ci, seed=seed)
    roc = roc_curve(y, s)
    src = _success_rate(r)
    metrics["success_rate_auc"] = src.attrs["auc"]
    capture = _capture(r, threshold=threshold)
    table = None
    if blocks is not None and "z" not in r.score_map.dims:
        table = _block_grid(r, blocks, threshold=threshold, reduce="mean")
        metrics["blocks"] = table.attrs.get("metrics", {"note": table.attrs.get("metrics_note")})
    settings = {
        "threshold": float(threshold),
        "top_percent": None if top_percent is None else float(top_percent),
        "blocks": None if table is None else table.attrs["blocks"],
        "ci": ci,
        "level": float(level),
        "seed": int(seed),
        "ndim": int(r.score_map.ndim),
        "name": str(r.score_map.name),
        **pos.info("deposits"),
        **neg_rec,
    }
    return EvaluationReport(
        metrics=metrics,
        roc=roc,
        success_rate=src,
        capture=capture,
        blocks=table,
        settings=settings,
        score_map=r.score_map,
        deposits=deposits,
    )
