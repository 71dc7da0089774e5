"""Classification metrics, ROC AUC with standard errors and intervals, and the metric registry.

The AUC is the Mann-Whitney statistic (ties count one half), identical to
:func:`sklearn.metrics.roc_auc_score`; :func:`roc_auc` is the package's one implementation
(element selection, evaluation, comparison, cross-validation and training history all call
it). Its standard error comes from Hanley & McNeil (1982), DeLong et al. (1988) or a
stratified bootstrap.

Ranking metrics of known deposits against negatives are *registered* once, by name, with
:func:`register_metric`: every registered metric then appears in the metrics of
:func:`xprospect.evaluate.evaluate`, as a column of :func:`xprospect.evaluate.compare`'s
table and wherever :func:`score_metrics` is called (cross-validation folds, training history).

This module imports nothing of the package but its exceptions, so any layer may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy import stats

from xprospect.exceptions import DataError, XProspectError

__all__ = [
    "Metric",
    "auc_ci",
    "average_precision",
    "brier_score",
    "capture_at",
    "classification_metrics",
    "delong_se",
    "hanley_mcneil_se",
    "metric_registry",
    "permutation_p",
    "register_metric",
    "roc_auc",
    "score_metrics",
    "unregister_metric",
    "z_auc",
]

_CI_METHODS = ("hanley", "delong", "bootstrap")


def _binary_inputs(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(score, dtype="float64")
    if y.ndim != 1 or s.ndim != 1 or y.shape != s.shape:
        msg = f"y_true and score must be 1-D and of equal length; got {y.shape} and {s.shape}"
        raise DataError(msg)
    if y.dtype != bool:
        uniq = np.unique(y)
        if not np.isin(uniq, [0, 1]).all():
            msg = f"y_true must be boolean or 0/1; got values such as {uniq[:5].tolist()}"
            raise DataError(msg)
        y = y.astype(bool)
    bad = ~np.isfinite(s)
    if bad.any():
        msg = (
            f"score holds {int(bad.sum())} non-finite values (first at position "
            f"{int(np.flatnonzero(bad)[0])}); drop those cells before scoring metrics"
        )
        raise DataError(msg)
    return y, s


def _counts(y: np.ndarray) -> tuple[int, int]:
    n1 = int(y.sum())
    n0 = int(y.size - n1)
    if n1 == 0 or n0 == 0:
        msg = f"ROC AUC needs both classes; got {n1} positives and {n0} negatives"
        raise DataError(msg)
    return n1, n0


def roc_auc(y_true: Any, score: Any) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n1 n0), ties counted one half).

    Parameters
    ----------
    y_true : array-like of bool or 0/1
        True class (True or 1: deposit).
    score : array-like of float
        Higher means more prospective.

    Returns
    -------
    float

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, s = _binary_inputs(y_true, score)
    _counts(y)
    return _mann_whitney_auc(s[y], s[~y])


def _mann_whitney_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """AUC of positive scores ``pos`` against negative scores ``neg`` (both non-empty)."""
    ranks = stats.rankdata(np.concatenate([pos, neg]))
    n1 = len(pos)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * len(neg)))


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    r"""Return the standard error of an AUC by Hanley & McNeil (1982).

    .. math::
        SE = \sqrt{\frac{A(1-A) + (n_1-1)(Q_1-A^2) + (n_2-1)(Q_2-A^2)}{n_1 n_2}},
        \quad Q_1 = \frac{A}{2-A},\quad Q_2 = \frac{2A^2}{1+A}

    Parameters
    ----------
    auc : float
        The AUC, ``A``.
    n_pos, n_neg : int
        Number of positives (``n1``, e.g. deposits) and negatives (``n2``).

    Returns
    -------
    float

    Examples
    --------
    >>> round(hanley_mcneil_se(0.6762, 122, 122), 5)
    0.03418
    """
    if not 0.0 <= auc <= 1.0:
        raise DataError(f"auc must lie in [0, 1]; got {auc!r}")
    if n_pos < 1 or n_neg < 1:
        raise DataError(f"need n_pos >= 1 and n_neg >= 1; got {n_pos} and {n_neg}")
    a = float(auc)
    q1 = a / (2.0 - a)
    q2 = 2.0 * a * a / (1.0 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return float(np.sqrt(max(var, 0.0)))


def z_auc(auc: float, se: float) -> float:
    """Z statistic of an AUC against chance: ``(AUC - 0.5) / SE`` (inf when SE is 0)."""
    if se == 0:
        return float(np.copysign(np.inf, auc - 0.5)) if auc != 0.5 else 0.0
    return float((auc - 0.5) / se)


def delong_se(y_true: Any, score: Any) -> float:
    """Return the standard error of the AUC by DeLong, DeLong & Clarke-Pearson (1988).

    Uses the structural components (placement values) computed from mid-ranks, so it costs
    one sort of the scores.
    """
    y, s = _binary_inputs(y_true, score)
    n1, n0 = _counts(y)
    r_all = stats.rankdata(s)
    r_pos = stats.rankdata(s[y])
    r_neg = stats.rankdata(s[~y])
    v10 = (r_all[y] - r_pos) / n0  # share of negatives below each positive
    v01 = 1.0 - (r_all[~y] - r_neg) / n1  # share of positives above each negative
    var = (np.var(v10, ddof=1) / n1 if n1 > 1 else 0.0) + (
        np.var(v01, ddof=1) / n0 if n0 > 1 else 0.0
    )
    return float(np.sqrt(var))


def auc_ci(
    y_true: Any,
    score: Any,
    *,
    level: float = 0.95,
    method: str = "hanley",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """ROC AUC with a confidence interval and its test against chance.

    Parameters
    ----------
    y_true : array-like of bool or 0/1
        True class.
    score : array-like of float
        Scores.
    level : float
        Confidence level of the interval (0.95 gives a 95 % interval).
    method : {"hanley", "delong", "bootstrap"}
        ``hanley`` and ``delong``: normal interval ``AUC ± z SE`` clipped to [0, 1], with the
        SE of Hanley & McNeil (1982) or DeLong et al. (1988). ``bootstrap``: percentile
        interval of ``n_boot`` stratified resamples (positives and negatives resampled
        separately), SE their standard deviation.
    n_boot : int
        Bootstrap resamples.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``auc``, ``se``, ``lower``, ``upper``, ``level``, ``method``, ``z_auc``
        (``(AUC - 0.5) / SE``), ``p_value`` (two-sided, normal), ``n_pos``, ``n_neg``.

    Notes
    -----
    Every interval treats cells as independent. Neighbouring cells of a smooth map are
    not, so on maps the interval is optimistic; spatial block cross-validation
    (:func:`spatial_block_folds`) is the honest check of generalisation.

    Examples
    --------
    >>> r = auc_ci([0, 0, 1, 1, 0, 1], [0.1, 0.3, 0.7, 0.9, 0.6, 0.5])
    >>> round(r["auc"], 4), r["method"]
    (0.8889, 'hanley')
    """
    if method not in _CI_METHODS:
        raise DataError(f"method must be one of {_CI_METHODS}; got {method!r}")
    if not 0.0 < level < 1.0:
        raise DataError(f"level must lie strictly between 0 and 1; got {level!r}")
    y, s = _binary_inputs(y_true, score)
    n1, n0 = _counts(y)
    auc = roc_auc(y, s)
    zc = float(stats.norm.ppf(0.5 + level / 2.0))
    if method == "hanley":
        se = hanley_mcneil_se(auc, n1, n0)
        lo, hi = auc - zc * se, auc + zc * se
    elif method == "delong":
        se = delong_se(y, s)
        lo, hi = auc - zc * se, auc + zc * se
    else:
        if n_boot < 10:
            raise DataError(f"n_boot must be >= 10; got {n_boot}")
        rng = np.random.default_rng(seed)
        pos, neg = s[y], s[~y]
        boots = np.empty(n_boot)
        for b in range(n_boot):
            boots[b] = _mann_whitney_auc(pos[rng.integers(0, n1, n1)], neg[rng.integers(0, n0, n0)])
        se = float(np.std(boots, ddof=1))
        lo, hi = np.quantile(boots, [0.5 - level / 2.0, 0.5 + level / 2.0])
    z = z_auc(auc, se)
    return {
        "auc": auc,
        "se": float(se),
        "lower": float(max(lo, 0.0)),
        "upper": float(min(hi, 1.0)),
        "level": float(level),
        "method": method,
        "z_auc": z,
        "p_value": float(2.0 * stats.norm.sf(abs(z))),
        "n_pos": n1,
        "n_neg": n0,
    }


def classification_metrics(y_true: Any, score: Any, *, threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, ROC AUC and the confusion matrix at a threshold.

    Parameters
    ----------
    y_true : array-like of bool or 0/1
        True class (True: deposit / "ore").
    score : array-like of float
        Scores; a cell is predicted positive when ``score >= threshold``.
    threshold : float
        Decision threshold.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, ``precision``, ``recall``, ``specificity``,
        ``f1`` (of the positive class), ``f1_macro`` (F1 of each class averaged, as the
        Pangxidong study reports it), ``roc_auc``, ``confusion_matrix``
        (``[[tn, fp], [fn, tp]]``, scikit-learn's layout), ``tn``, ``fp``, ``fn``, ``tp``,
        ``n_pos``, ``n_neg``, ``threshold``. A ratio whose denominator is zero (no predicted
        positive, say) is reported as 0.0, as scikit-learn's ``zero_division=0`` does.

    Examples
    --------
    >>> m = classification_metrics([0, 0, 1, 1], [0.2, 0.6, 0.7, 0.4])
    >>> m["accuracy"], m["confusion_matrix"]
    (0.5, [[1, 1], [1, 1]])
    """
    y, s = _binary_inputs(y_true, score)
    _counts(y)
    pred = s >= threshold
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    tn = int((~pred & ~y).sum())

    def ratio(a: float, b: float) -> float:
        return float(a / b) if b else 0.0

    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    specificity, npv = ratio(tn, tn + fp), ratio(tn, tn + fn)
    f1 = ratio(2 * precision * recall, precision + recall)
    f1_neg = ratio(2 * npv * specificity, npv + specificity)
    return {
        "accuracy": ratio(tp + tn, y.size),
        "balanced_accuracy": (recall + specificity) / 2.0,
        "precision": precision,
        "recall": recall,
        "specificity": specificity,
        "f1": f1,
        "f1_macro": (f1 + f1_neg) / 2.0,
        "roc_auc": roc_auc(y, s),
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
        "n_pos": tp + fn,
        "n_neg": tn + fp,
        "threshold": float(threshold),
    }


# -- the metric registry ----------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A named ranking metric of known deposits (1) against negatives (0).

    Attributes
    ----------
    name : str
        Key in :func:`~xprospect.evaluate.evaluate`'s metrics and in :func:`score_metrics`.
    func : callable
        ``func(y_true, score) -> float`` with ``y_true`` a boolean array and ``score`` a
        finite float64 array of the same length, holding both classes.
    column : str
        Column of the metric in tables (:func:`~xprospect.evaluate.compare`,
        cross-validation folds); the name unless given.
    description : str
        One line saying what the metric measures.
    greater_is_better : bool
        Whether a higher value means a better map (for early stopping and rankings).
    """

    name: str
    func: Callable[[np.ndarray, np.ndarray], float]
    column: str
    description: str = ""
    greater_is_better: bool = True

    def __call__(self, y_true: Any, score: Any) -> float:
        """Value of the metric on ``(y_true, score)`` (validated as for :func:`roc_auc`)."""
        y, s = _binary_inputs(y_true, score)
        _counts(y)
        return float(self.func(y, s))


_REGISTRY: dict[str, Metric] = {}


def register_metric(
    name: str,
    func: Callable[[np.ndarray, np.ndarray], float],
    *,
    column: str | None = None,
    description: str = "",
    greater_is_better: bool = True,
    replace: bool = False,
) -> Metric:
    """Register a ranking metric so that evaluation, comparison and cross-validation report it.

    Parameters
    ----------
    name : str
        The metric's name (a key of :func:`~xprospect.evaluate.evaluate`'s ``metrics``).
    func : callable
        ``func(y_true, score) -> float``: ``y_true`` boolean (True: deposit), ``score``
        finite float64, both classes present.
    column : str, optional
        Its column in tables such as :func:`~xprospect.evaluate.compare`'s (default ``name``).
    description : str
        One line saying what it measures.
    greater_is_better : bool
        Whether higher is better.
    replace : bool
        Replace a metric already registered under ``name`` instead of refusing.

    Returns
    -------
    Metric
        The registered metric.

    Raises
    ------
    XProspectError
        If ``name`` is taken (and ``replace`` is False), empty, or ``func`` is not callable.

    Examples
    --------
    >>> import numpy as np
    >>> def top_share(y, s):
    ...     return float(y[s >= np.quantile(s, 0.9)].mean())
    >>> m = register_metric("top_decile_precision", top_share,
    ...                     description="share of deposits among the top 10 % of scores")
    >>> sorted(score_metrics([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.9]))[-2:]
    ['roc_auc', 'top_decile_precision']
    >>> unregister_metric("top_decile_precision")
    """
    if not isinstance(name, str) or not name:
        raise XProspectError(f"a metric needs a non-empty string name; got {name!r}")
    if not callable(func):
        raise XProspectError(f"metric {name!r}: func must be callable; got {type(func).__name__}")
    if name in _REGISTRY and not replace:
        raise XProspectError(
            f"a metric named {name!r} is already registered; pass replace=True to replace it"
        )
    metric = Metric(
        name=name,
        func=func,
        column=column or name,
        description=description,
        greater_is_better=bool(greater_is_better),
    )
    _REGISTRY[name] = metric
    return metric


def unregister_metric(name: str) -> None:
    """Remove a registered metric.

    Parameters
    ----------
    name : str
        Its name.

    Raises
    ------
    XProspectError
        If no metric of that name is registered.
    """
    if name not in _REGISTRY:
        raise XProspectError(
            f"no metric named {name!r} is registered; registered: {sorted(_REGISTRY)}"
        )
    del _REGISTRY[name]


def metric_registry() -> Mapping[str, Metric]:
    """Return the registered metrics by name, in registration order (a read-only view).

    Returns
    -------
    Mapping of str to Metric
        ``roc_auc`` first, then the package's ``average_precision`` (column ``pr_auc``),
        ``brier`` and ``capture_5`` / ``capture_10`` / ``capture_20``, then those registered
        with :func:`register_metric`.

    Examples
    --------
    >>> metric_registry()["roc_auc"].column
    'auc'
    """
    return MappingProxyType(_REGISTRY)


def score_metrics(
    y_true: Any, score: Any, *, names: Iterable[str] | None = None
) -> dict[str, float]:
    """Every registered metric (or those named) of ``score`` against ``y_true``.

    Parameters
    ----------
    y_true : array-like of bool or 0/1
        True class (True or 1: deposit).
    score : array-like of float
        Scores, finite.
    names : iterable of str, optional
        Only these metrics (default: all registered).

    Returns
    -------
    dict
        Metric name -> value, in registration order.

    Raises
    ------
    DataError
        For a single class or non-finite scores.
    XProspectError
        For an unregistered name.

    Examples
    --------
    >>> score_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], names=["roc_auc"])
    {'roc_auc': 0.75}
    """
    y, s = _binary_inputs(y_true, score)
    _counts(y)
    wanted = list(_REGISTRY) if names is None else list(names)
    unknown = [n for n in wanted if n not in _REGISTRY]
    if unknown:
        raise XProspectError(
            f"metrics {unknown} are not registered; registered: {sorted(_REGISTRY)}"
        )
    return {n: float(_REGISTRY[n].func(y, s)) for n in wanted}


def _roc_auc_checked(y: np.ndarray, s: np.ndarray) -> float:
    return _mann_whitney_auc(s[y], s[~y])


register_metric(
    "roc_auc",
    _roc_auc_checked,
    column="auc",
    description="area under the ROC curve (Mann-Whitney, ties count one half)",
)


# -- further ranking and probability scores (plain functions) ---------------------------


def average_precision(y_true: Any, score: Any) -> float:
    """Area under the precision-recall curve (scikit-learn's average precision).

    Examples
    --------
    >>> round(average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    from sklearn.metrics import average_precision_score  # lazy: sklearn is heavy

    y, s = _binary_inputs(y_true, score)
    _counts(y)
    return float(average_precision_score(y, s))


def brier_score(y_true: Any, probability: Any) -> float:
    """Mean squared difference between probabilities in [0, 1] and the 0/1 outcome.

    Raises
    ------
    DataError
        When a probability lies outside [0, 1] (a score that is not a probability).

    Examples
    --------
    >>> brier_score([0, 1], [0.2, 0.6])
    0.1
    """
    y, p = _binary_inputs(y_true, probability)
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        msg = (
            f"brier_score needs probabilities in [0, 1]; got values from {p.min():g} to {p.max():g}"
        )
        raise DataError(msg)
    return float(np.round(np.mean((p - y) ** 2), 15))


def permutation_p(real: Any, null: Any) -> Any:
    """One-sided permutation p of ``real`` against control draws: ``(1 + k) / (1 + n)``.

    ``k`` counts the ``n`` draws at or above ``real``. The ``+ 1`` of Phipson & Smyth
    (2010) keeps it from ever being 0, and its smallest value, ``1 / (n + 1)``, says how
    few draws it rests on.

    Parameters
    ----------
    real : float or array-like
        The real figure(s), e.g. each method's AUC.
    null : array-like
        The control draws, along the first axis (shape ``(n,)`` or ``(n, *real.shape)``).
        A NaN draw never counts as at or above.

    Returns
    -------
    float or numpy.ndarray
        The p value(s), shaped like ``real``.

    Examples
    --------
    >>> float(permutation_p(0.8, [0.5, 0.6, 0.85, 0.4]))
    0.4
    """
    r = np.asarray(real, dtype="float64")
    draws = np.asarray(null, dtype="float64")
    if draws.ndim == 0 or draws.shape[0] == 0:
        raise DataError("permutation_p needs at least one control draw")
    p = (1.0 + (draws >= r).sum(axis=0)) / (1.0 + draws.shape[0])
    return float(p) if np.ndim(p) == 0 else p


def capture_at(y_true: Any, score: Any, area: float) -> tuple[float, float]:
    """Share of positives in the top ``area`` share of cells, and the area truly taken.

    The threshold is the ``1 - area`` quantile of the scores; every cell scoring at least
    the threshold is counted, so ties at the threshold enlarge the area: the second value
    says by how much (the true share of cells at or above the threshold).

    Parameters
    ----------
    y_true : array-like of bool or 0/1
        True class (True: deposit cell).
    score : array-like of float
        Scores of every cell.
    area : float
        Share of the cells called prospective, in (0, 1).

    Returns
    -------
    (capture, true_area) : tuple of float

    Examples
    --------
    >>> capture_at([0, 0, 0, 1], [0.1, 0.2, 0.2, 0.9], 0.25)
    (1.0, 0.25)
    """
    if not 0.0 < area < 1.0:
        raise DataError(f"area must lie in (0, 1); got {area!r}")
    y, s = _binary_inputs(y_true, score)
    _counts(y)
    thr = np.quantile(s, 1.0 - area)
    top = s >= thr
    return float(top[y].mean()), float(top.mean())


# -- registered beside roc_auc: precision-recall, calibration and capture ----------------


def _average_precision_checked(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score  # lazy: sklearn is heavy

    return float(average_precision_score(y, s))


def _brier_or_nan(y: np.ndarray, s: np.ndarray) -> float:
    # a score that is not a probability (an anomaly score, a raw element) has no Brier
    # score: NaN rather than an error, so tables of mixed maps still fill
    if s.min() < 0.0 or s.max() > 1.0:
        return float("nan")
    return float(np.round(np.mean((s - y) ** 2), 15))


def _capture_metric(share: float) -> Callable[[np.ndarray, np.ndarray], float]:
    def capture(y: np.ndarray, s: np.ndarray) -> float:
        return float((s[y] >= np.quantile(s, 1.0 - share)).mean())

    capture.__name__ = f"capture_{round(share * 100)}"
    return capture


register_metric(
    "average_precision",
    _average_precision_checked,
    column="pr_auc",
    description="area under the precision-recall curve (scikit-learn's average precision)",
)
register_metric(
    "brier",
    _brier_or_nan,
    column="brier",
    description="Brier score of probabilities (NaN for scores outside [0, 1])",
    greater_is_better=False,
)
for _pct in (5, 10, 20):
    register_metric(
        f"capture_{_pct}",
        _capture_metric(_pct / 100.0),
        column=f"capture_{_pct}",
        description=(
            f"share of deposits scoring in the top {_pct} % of the scored cells (deposits and "
            "negatives; the top share of the area when the negatives sample it)"
        ),
    )
del _pct
