"""Classical baselines on pixel / voxel tables, behind one scikit-learn style API.

Each estimator is fitted on a stack (``element``, y, x) or (``element``, z, y, x)
(``fit(stack, labels=None, *, normal=None, negatives=None, seed=None)`` returns ``self``)
and predicts a georeferenced map lazily over dask chunks (``predict(stack)``):

- :class:`GaussianMixtureDetector`: density of normal cells; anomaly = negative log-likelihood.
- :class:`IsolationForestDetector`: isolation forest on normal cells.
- :class:`MaxEntModel`: presence-background MaxEnt through ``elapid``.
- :class:`RandomForestModel`, :class:`SVMModel`, :class:`GradientBoostingModel`,
  :class:`LogisticModel`: deposit cells against sampled negatives.
- :class:`WeightsOfEvidence`: weights of evidence counted over every cell of the study area.

Prediction runs in row batches per chunk, and an in-memory stack is cut into chunks scored in
parallel, so memory stays bounded on large grids.
"""

from __future__ import annotations

from xprospect.baselines.anomaly import GaussianMixtureDetector, IsolationForestDetector
from xprospect.baselines.base import AnomalyDetector, BaselineModel, SupervisedModel
from xprospect.baselines.supervised import (
    GradientBoostingModel,
    LogisticModel,
    MaxEntModel,
    RandomForestModel,
    SVMModel,
)
from xprospect.baselines.wofe import WeightsOfEvidence, weights_table

__all__ = [
    "AnomalyDetector",
    "BaselineModel",
    "GaussianMixtureDetector",
    "GradientBoostingModel",
    "IsolationForestDetector",
    "LogisticModel",
    "MaxEntModel",
    "RandomForestModel",
    "SVMModel",
    "SupervisedModel",
    "WeightsOfEvidence",
    "weights_table",
]
