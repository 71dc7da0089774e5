"""Classical baselines on pixel / voxel tables, behind one scikit-learn style API.

Each estimator is fitted on a stack (``element``, y, x) or (``element``, z, y, x)
(``fit(stack, labels=None, *, normal=None, negatives=None, seed=None)`` returns ``self``)
and predicts a georeferenced map lazily over dask chunks (``predict(stack)``):

- :class:`GaussianMixtureDetector`: density of normal cells; anomaly = negative log-likelihood.
- :class:`IsolationForestDetector`: isolation forest on normal cells.
- :class:`MaxEntModel`: presence-background MaxEnt through ``elapid``.
- :class:`RandomForestModel`, :class:`SVMModel`: deposit cells against sampled negatives.
"""

from __future__ import annotations

from xprospect.baselines.anomaly import GaussianMixtureDetector, IsolationForestDetector
from xprospect.baselines.base import AnomalyDetector, BaselineModel, SupervisedModel
from xprospect.baselines.supervised import MaxEntModel, RandomForestModel, SVMModel

__all__ = [
    "AnomalyDetector",
    "BaselineModel",
    "GaussianMixtureDetector",
    "IsolationForestDetector",
    "MaxEntModel",
    "RandomForestModel",
    "SVMModel",
    "SupervisedModel",
]
