"""Training: one loop for fitting, anomaly detectors and pre-training; checkpoints; transfer."""

from __future__ import annotations

from xprospect.train.anomaly import (
    AnomalyFit,
    StoadFit,
    fit_anomaly,
    fit_stoad,
    points_score_map,
    score_samples,
)
from xprospect.train.checkpoint import load_checkpoint, save_checkpoint
from xprospect.train.crossval import CrossValidation, cross_validate
from xprospect.train.fitting import FitResult, fit, predict
from xprospect.train.recipes import RECIPES, Recipe, get_recipe
from xprospect.train.transfer import (
    ReconstructionResult,
    fine_tune,
    pretrain,
    pretrain_reconstruction,
)

__all__ = [
    "RECIPES",
    "AnomalyFit",
    "CrossValidation",
    "FitResult",
    "Recipe",
    "ReconstructionResult",
    "StoadFit",
    "cross_validate",
    "fine_tune",
    "fit",
    "fit_anomaly",
    "fit_stoad",
    "get_recipe",
    "load_checkpoint",
    "points_score_map",
    "predict",
    "pretrain",
    "pretrain_reconstruction",
    "save_checkpoint",
    "score_samples",
]
