"""Evaluation of prospectivity maps: metrics, curves, block grids, spatial CV, comparisons.

Metrics (``classification_metrics``, ``auc_ci``), ROC and success-rate curves, capture
efficiency, the study-style block grid, spatial block cross-validation folds, one-call
``evaluate`` reports and ``compare`` tables for several models; targets and fractal
thresholds live in :mod:`xprospect.evaluate.targets`.
"""

from __future__ import annotations

from xprospect.evaluate.blocks import block_edges, block_grid, block_labels
from xprospect.evaluate.compare import compare, plot_compare
from xprospect.evaluate.curves import capture_efficiency, roc_curve, success_rate_curve
from xprospect.evaluate.metrics import (
    auc_ci,
    classification_metrics,
    delong_se,
    hanley_mcneil_se,
    roc_auc,
    z_auc,
)
from xprospect.evaluate.plots import plot_blocks, plot_map, plot_roc, plot_success_rate
from xprospect.evaluate.report import EvaluationReport, evaluate
from xprospect.evaluate.splits import spatial_block_folds, spatial_fold_ids
from xprospect.evaluate.targets import TargetSet, minmax_scale, targets

__all__ = [
    "EvaluationReport",
    "TargetSet",
    "auc_ci",
    "block_edges",
    "block_grid",
    "block_labels",
    "capture_efficiency",
    "classification_metrics",
    "compare",
    "delong_se",
    "evaluate",
    "hanley_mcneil_se",
    "minmax_scale",
    "plot_blocks",
    "plot_compare",
    "plot_map",
    "plot_roc",
    "plot_success_rate",
    "roc_auc",
    "roc_curve",
    "spatial_block_folds",
    "spatial_fold_ids",
    "success_rate_curve",
    "targets",
    "z_auc",
]
