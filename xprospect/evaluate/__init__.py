"""Evaluation of prospectivity maps: metrics, curves, block grids, spatial CV, comparisons.

Metrics (``classification_metrics``, ``auc_ci`` and the registry of named map metrics),
ROC and success-rate curves, capture efficiency, the study-style block grid, spatial
splits (:mod:`xprospect.evaluate.splits`), one-call ``evaluate`` reports and ``compare``
tables for several models; target delineation lives in :mod:`xprospect.evaluate.delineate`
(its front door is the function ``xprospect.evaluate.targets``). Maps that say how sure they
are: ensemble and Monte Carlo dropout spread (:mod:`~xprospect.evaluate.uncertainty`),
calibrated probabilities (:mod:`~xprospect.evaluate.calibration`), the area of
applicability (:mod:`~xprospect.evaluate.applicability`) and per-element attribution maps
(:mod:`~xprospect.evaluate.attribution`).
"""

from __future__ import annotations

import sys
import types
import warnings
from typing import Any

from xprospect.evaluate import delineate
from xprospect.evaluate._common import DEFAULT_TOP_PERCENT, top_area_threshold
from xprospect.evaluate.anomaly_protocol import (
    control_sites,
    pool_cases,
    sample_protocol,
    sample_scores,
)
from xprospect.evaluate.applicability import area_of_applicability, dissimilarity_index
from xprospect.evaluate.attribution import integrated_gradients_maps, occlusion_maps
from xprospect.evaluate.blocks import block_edges, block_grid, block_labels
from xprospect.evaluate.calibration import Calibrator, calibrate_inner_folds, plot_reliability
from xprospect.evaluate.compare import compare, plot_compare
from xprospect.evaluate.curves import capture_efficiency, roc_curve, success_rate_curve
from xprospect.evaluate.delineate import TargetSet, targets
from xprospect.evaluate.delong import delong_covariance, delong_test
from xprospect.evaluate.metrics import (
    Metric,
    auc_ci,
    average_precision,
    brier_score,
    capture_at,
    classification_metrics,
    delong_se,
    hanley_mcneil_se,
    metric_registry,
    permutation_p,
    register_metric,
    roc_auc,
    score_metrics,
    unregister_metric,
    z_auc,
)
from xprospect.evaluate.plots import plot_blocks, plot_map, plot_roc, plot_success_rate
from xprospect.evaluate.report import EvaluationReport, evaluate
from xprospect.evaluate.splits import hole_folds, spatial_block_folds, spatial_fold_ids
from xprospect.evaluate.uncertainty import ensemble_map, mc_dropout_map, plot_risk_return
from xprospect.exceptions import XProspectDeprecationWarning
from xprospect.preprocess import scaling
from xprospect.preprocess.scaling import minmax_scale

__all__ = [
    "DEFAULT_TOP_PERCENT",
    "Calibrator",
    "EvaluationReport",
    "Metric",
    "TargetSet",
    "area_of_applicability",
    "auc_ci",
    "average_precision",
    "block_edges",
    "block_grid",
    "block_labels",
    "brier_score",
    "calibrate_inner_folds",
    "capture_at",
    "capture_efficiency",
    "classification_metrics",
    "compare",
    "control_sites",
    "delong_covariance",
    "delong_se",
    "delong_test",
    "dissimilarity_index",
    "ensemble_map",
    "evaluate",
    "hanley_mcneil_se",
    "hole_folds",
    "integrated_gradients_maps",
    "mc_dropout_map",
    "metric_registry",
    "minmax_scale",
    "occlusion_maps",
    "permutation_p",
    "plot_blocks",
    "plot_compare",
    "plot_map",
    "plot_reliability",
    "plot_risk_return",
    "plot_roc",
    "plot_success_rate",
    "pool_cases",
    "register_metric",
    "roc_auc",
    "roc_curve",
    "sample_protocol",
    "sample_scores",
    "score_metrics",
    "spatial_block_folds",
    "spatial_fold_ids",
    "success_rate_curve",
    "targets",
    "top_area_threshold",
    "unregister_metric",
    "z_auc",
]


class _MovedModule(types.ModuleType):
    """A module that was renamed: each name resolves from its new home with a FutureWarning."""

    def __init__(self, name: str, homes: dict[str, types.ModuleType]) -> None:
        super().__init__(name, f"Former module {name}; see the FutureWarning of each name.")
        self._homes = homes

    def __getattr__(self, attr: str) -> Any:
        home = self.__dict__["_homes"].get(attr)
        if home is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        warnings.warn(
            f"{self.__name__}.{attr} moved to {home.__name__}.{attr}",
            XProspectDeprecationWarning,
            stacklevel=2,
        )
        return getattr(home, attr)


# ``xprospect.evaluate.targets`` is the function; the module that held it is now
# ``delineate``. This entry keeps old ``from xprospect.evaluate.targets import ...``
# statements working (with a XProspectDeprecationWarning) without shadowing the function.
sys.modules[f"{__name__}.targets"] = _MovedModule(
    f"{__name__}.targets",
    {
        "TargetSet": delineate,
        "targets": delineate,
        "DEFAULT_LEVELS": delineate,
        "minmax_scale": scaling,
    },
)
