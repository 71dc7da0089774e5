"""Supervised baselines: MaxEnt, random forest, SVM, gradient boosting, logistic regression."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from xprospect.baselines.base import SupervisedModel
from xprospect.exceptions import DataError

__all__ = ["GradientBoostingModel", "LogisticModel", "MaxEntModel", "RandomForestModel", "SVMModel"]

# Below this many rows a histogram-gradient-boosting fit runs on one OpenMP thread: each tree
# node's histograms are then tiny, and the OpenMP team's barriers cost more than they save
# (under load they spin: 6000 rows x 12 elements took 38-100 s on the default team against
# 6-9 s on one thread, in one run on this 2-core machine with a load average of 10).
_GBM_SERIAL_ROWS = 100_000
_CONTROLLER: dict[str, Any] = {}


def _one_openmp_thread(active: bool = True) -> AbstractContextManager[Any]:
    """OpenMP limited to one thread in the calling thread (a no-op when not ``active``)."""
    if not active:
        return nullcontext()
    if "ctl" not in _CONTROLLER:
        # made once, after sklearn (and so its OpenMP runtime) is loaded by the caller
        _CONTROLLER["ctl"] = ThreadpoolController()
    return _CONTROLLER["ctl"].select(user_api="openmp").limit(limits=1)


# Maxent's "auto features" (Phillips & Dudik 2008, Ecography 31:161-175, and the Maxent 3.x
# default): each feature class is used from this many presence records on.
_MAXENT_AUTO_FEATURES = (
    ("linear", 0),
    ("quadratic", 10),
    ("hinge", 15),
    ("product", 80),
    ("threshold", 80),
)
_MAXENT_FEATURES = {name for name, _ in _MAXENT_AUTO_FEATURES}


def _maxent_auto_features(n_presences: int) -> tuple[str, ...]:
    """Maxent's default feature classes for ``n_presences`` presence records.

    The "auto features" rule of Maxent (Phillips & Dudik 2008, Ecography 31:161-175):
    linear always; quadratic from 10 presences; hinge from 15; product and threshold
    from 80. (The R package ``maxnet``'s ``"default"`` classes follow the same thresholds
    but leave threshold features out.)

    Parameters
    ----------
    n_presences : int
        Presence records of the fit.

    Returns
    -------
    tuple of str
        elapid feature class names.
    """
    return tuple(name for name, least in _MAXENT_AUTO_FEATURES if n_presences >= least)


class MaxEntModel(SupervisedModel):
    """Maximum entropy presence-background model, through ``elapid.MaxentModel``.

    Presences are the deposit cells; the background is a random sample of valid cells
    (presence cells included, as MaxEnt expects), or the ``negatives`` points. elapid is
    a maintained implementation of Phillips' MaxEnt (linear, quadratic, product, hinge and
    threshold features with the Maxent regularisation, fitted by penalised logistic
    regression) that works on plain numpy arrays; its ``cloglog`` output in [0, 1] is the
    score.

    Parameters
    ----------
    feature_types : "auto" or sequence of str
        elapid feature classes: ``"linear"``, ``"quadratic"``, ``"product"``, ``"hinge"``,
        ``"threshold"``; ``"auto"`` (default) picks them by the presences of each fit with
        Maxent's own "auto features" rule (Phillips & Dudik 2008: linear; quadratic from 10
        presences; hinge from 15; product and threshold from 80), so that a fold with a
        few presences does not fit hinges to where they happen to fall.
    beta_multiplier : float
        Regularisation strength (larger = smoother).
    n_hinge_features : int
        Hinge knots per element.
    transform : {"cloglog", "logistic", "raw"}
        Output transform.
    n_background : int or None
        Background cells (default ``max(10 * presences, 200)``, capped by the valid cells).
    positive_buffer : float
        Cells within this distance of a deposit count as presences (0: the deposit's cell).
    seed : int
        Random seed of the background sample and of elapid (``fit(seed=)`` overrides it).

    Attributes
    ----------
    maxent_ : elapid.MaxentModel
        Without glmnet, elapid fits by scikit-learn's ``liblinear``, which penalises the
        intercept; the fit is then made on features centred on the background
        (:mod:`xprospect.baselines._maxent`), so that the penalty cannot tilt the map.
    feature_types_ : tuple of str
        The feature classes of the fit.
    """

    _sampling = "background"

    def __init__(
        self,
        feature_types: str | Sequence[str] = "auto",
        *,
        beta_multiplier: float = 1.0,
        n_hinge_features: int = 10,
        transform: str = "cloglog",
        n_background: int | None = None,
        positive_buffer: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.feature_types = feature_types
        self.beta_multiplier = beta_multiplier
        self.n_hinge_features = n_hinge_features
        self.transform = transform
        self.n_background = n_background
        self.positive_buffer = positive_buffer
        self.seed = seed

    @property
    def buffer(self) -> None:
        """MaxEnt draws background anywhere: no exclusion buffer."""
        return None

    @property
    def n_negatives(self) -> int | None:
        """The background sample size."""
        return self.n_background

    def _fit_table(self, x: np.ndarray, y: np.ndarray | None, seed: int) -> None:
        # lazy: elapid (and the fit that subclasses it) is heavy and only MaxEnt needs it
        from xprospect.baselines._maxent import CentredMaxent

        if isinstance(self.feature_types, str):
            if self.feature_types != "auto":
                raise DataError(
                    f"MaxEnt feature_types must be 'auto' or a sequence of "
                    f"{sorted(_MAXENT_FEATURES)}; got {self.feature_types!r}"
                )
            n_presences = int(np.count_nonzero(y)) if y is not None else 0
            self.feature_types_ = _maxent_auto_features(n_presences)
        else:
            bad = [f for f in self.feature_types if f not in _MAXENT_FEATURES]
            if bad:
                raise DataError(
                    f"unknown MaxEnt feature types {bad}; valid: {sorted(_MAXENT_FEATURES)}"
                )
            self.feature_types_ = tuple(self.feature_types)
        # elapid's model, with a fit whose penalised intercept cannot tilt the map (_maxent.py)
        self.maxent_ = CentredMaxent(
            feature_types=list(self.feature_types_),
            beta_multiplier=self.beta_multiplier,
            n_hinge_features=self.n_hinge_features,
            transform=self.transform,
            random_state=seed,
            n_cpus=1,
        )
        self.maxent_.fit(x, y)

    def _score_table(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.maxent_.predict(x), dtype="float64").ravel()


class RandomForestModel(SupervisedModel):
    """Random forest classifier of deposit cells against negatives; score = P(deposit).

    Parameters
    ----------
    n_estimators : int
        Trees.
    max_depth : int, optional
        Tree depth limit.
    min_samples_leaf : int
        Least cells per leaf.
    class_weight : str or dict, optional
        As :class:`sklearn.ensemble.RandomForestClassifier` (default balances classes).
    n_negatives : int, optional
        Negatives drawn (default ``max(10 * positives, 200)``).
    buffer : float, optional
        Negatives lie farther than this from every positive (default
        :func:`xprospect.points.default_buffer`: one cell width).
    positive_buffer : float
        Cells within this distance of a deposit count as positives (0: the deposit's cell).
    seed : int
        Random seed (``fit(seed=)`` overrides it).

    Attributes
    ----------
    forest_ : sklearn.ensemble.RandomForestClassifier
    """

    def __init__(
        self,
        n_estimators: int = 200,
        *,
        max_depth: int | None = None,
        min_samples_leaf: int = 1,
        class_weight: str | dict | None = "balanced",
        n_negatives: int | None = None,
        buffer: float | None = None,
        positive_buffer: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self._set_sampling(class_weight, n_negatives, buffer, positive_buffer, seed)

    def _fit_table(self, x: np.ndarray, y: np.ndarray | None, seed: int) -> None:
        from sklearn.ensemble import RandomForestClassifier  # heavy: loaded when fitted

        self.forest_ = RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            class_weight=self.class_weight,
            random_state=seed,
            n_jobs=1,
        ).fit(x, y)

    def _score_table(self, x: np.ndarray) -> np.ndarray:
        return self.forest_.predict_proba(x)[:, 1]


class SVMModel(SupervisedModel):
    """Support vector machine on standardised elements, deposit cells against negatives.

    The score is the SVM decision value (signed distance to the boundary, larger = more
    prospective) or, with ``probability=True``, Platt-scaled P(deposit) (a sigmoid fitted to
    out-of-fold decision values of a seeded stratified 5-fold split, through
    :class:`sklearn.calibration.CalibratedClassifierCV`; it needs at least 5 positives).

    Parameters
    ----------
    C : float
        Regularisation (smaller = smoother).
    kernel : str
        As :class:`sklearn.svm.SVC`.
    gamma : str or float
        RBF width.
    probability : bool
        Platt-scaled probabilities instead of decision values.
    class_weight : str or dict, optional
        Default balances the classes.
    n_negatives, buffer, positive_buffer, seed
        As :class:`RandomForestModel`.

    Attributes
    ----------
    svm_ : sklearn.pipeline.Pipeline
        ``StandardScaler`` then ``SVC`` (calibrated when ``probability``).
    """

    def __init__(
        self,
        C: float = 1.0,
        *,
        kernel: str = "rbf",
        gamma: str | float = "scale",
        probability: bool = False,
        class_weight: str | dict | None = "balanced",
        n_negatives: int | None = None,
        buffer: float | None = None,
        positive_buffer: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.probability = probability
        self._set_sampling(class_weight, n_negatives, buffer, positive_buffer, seed)

    def _fit_table(self, x: np.ndarray, y: np.ndarray | None, seed: int) -> None:
        # heavy sklearn modules, loaded only when an SVM is fitted
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        svc = SVC(
            C=self.C,
            kernel=self.kernel,
            gamma=self.gamma,
            class_weight=self.class_weight,
            random_state=seed,
        )
        if self.probability:
            if y is not None and int(y.sum()) < 5:
                raise DataError(
                    f"SVMModel(probability=True) needs at least 5 positive cells "
                    f"for Platt scaling; got {int(y.sum())} (use probability=False)"
                )
            folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
            est = CalibratedClassifierCV(svc, method="sigmoid", cv=folds, ensemble=False)
        else:
            est = svc
        self.svm_ = make_pipeline(StandardScaler(), est).fit(x, y)

    def _score_table(self, x: np.ndarray) -> np.ndarray:
        if self.probability:
            return self.svm_.predict_proba(x)[:, 1]
        return self.svm_.decision_function(x)


class GradientBoostingModel(SupervisedModel):
    """Histogram gradient boosting of deposit cells against negatives; score = P(deposit).

    scikit-learn's :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (the model that
    leads continental prospectivity benchmarks), with balanced class weights by default.

    Parameters
    ----------
    max_iter : int
        Boosting iterations.
    learning_rate : float
        Shrinkage.
    max_leaf_nodes : int
        Leaves per tree.
    min_samples_leaf : int
        Least cells per leaf.
    l2_regularization : float
        L2 penalty of the leaf values.
    class_weight : str or dict, optional
        Default balances the classes.
    n_negatives, buffer, positive_buffer, seed
        As :class:`RandomForestModel`.

    Attributes
    ----------
    booster_ : sklearn.ensemble.HistGradientBoostingClassifier
    """

    def __init__(
        self,
        max_iter: int = 200,
        *,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 10,
        l2_regularization: float = 1.0,
        class_weight: str | dict | None = "balanced",
        n_negatives: int | None = None,
        buffer: float | None = None,
        positive_buffer: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self._set_sampling(class_weight, n_negatives, buffer, positive_buffer, seed)

    def _fit_table(self, x: np.ndarray, y: np.ndarray | None, seed: int) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier  # heavy: lazy import

        booster = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            class_weight=self.class_weight,
            early_stopping=False,
            random_state=seed,
        )
        with _one_openmp_thread(x.shape[0] < _GBM_SERIAL_ROWS):
            self.booster_ = booster.fit(x, y)

    def _score_table(self, x: np.ndarray) -> np.ndarray:
        # row chunks are already scored side by side (score_cells, dask): one thread each
        with _one_openmp_thread():
            return self.booster_.predict_proba(x)[:, 1]


class LogisticModel(SupervisedModel):
    """Logistic regression on standardised elements, deposit cells against negatives.

    Parameters
    ----------
    C : float
        Inverse L2 regularisation strength.
    class_weight : str or dict, optional
        Default balances the classes.
    n_negatives, buffer, positive_buffer, seed
        As :class:`RandomForestModel`.

    Attributes
    ----------
    logistic_ : sklearn.pipeline.Pipeline
        ``StandardScaler`` then ``LogisticRegression``.
    """

    def __init__(
        self,
        C: float = 1.0,
        *,
        class_weight: str | dict | None = "balanced",
        n_negatives: int | None = None,
        buffer: float | None = None,
        positive_buffer: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.C = C
        self._set_sampling(class_weight, n_negatives, buffer, positive_buffer, seed)

    def _fit_table(self, x: np.ndarray, y: np.ndarray | None, seed: int) -> None:
        # heavy sklearn modules: lazy import
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.logistic_ = make_pipeline(
            StandardScaler(),
            LogisticRegression(
                C=self.C, class_weight=self.class_weight, max_iter=1000, random_state=seed
            ),
        ).fit(x, y)

    def _score_table(self, x: np.ndarray) -> np.ndarray:
        return self.logistic_.predict_proba(x)[:, 1]
