"""Classification metrics and ROC AUC with standard errors and confidence intervals.

The AUC is the Mann-Whitney statistic (ties count one half), identical to
:func:`sklearn.metrics.roc_auc_score`. Its standard error comes from Hanley & McNeil (1982),
DeLong et al. (1988) or a stratified bootstrap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from xprospect.exceptions import DataError

__all__ = [
    "auc_ci",
    "classification_metrics",
    "delong_se",
    "hanley_mcneil_se",
    "roc_auc",
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
        msg = (f"score holds {int(bad.sum())} non-finite values (first at position "
               f"{int(np.flatnonzero(bad)[0])}); drop those cells before scoring metrics")
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
    n1, n0 = _counts(y)
    ranks = stats.rankdata(s)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


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
    v10 = (r_all[y] - r_pos) / n0           # share of negatives below each positive
    v01 = 1.0 - (r_all[~y] - r_neg) / n1     # share of positives above each negative
    var = (np.var(v10, ddof=1) / n1 if n1 > 1 else 0.0) + \
        (np.var(v01, ddof=1) / n0 if n0 > 1 else 0.0)
    return float(np.sqrt(var))


def _auc_from_ranks(pos: np.ndarray, neg: np.ndarray) -> float:
    ranks = stats.rankdata(np.concatenate([pos, neg]))
    n1 = len(pos)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * len(neg)))


def auc_ci(y_true: Any, score: Any, *, level: float = 0.95, method: str = "hanley",
           n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
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
            boots[b] = _auc_from_ranks(pos[rng.integers(0, n1, n1)], neg[rng.integers(0, n0, n0)])
        se = float(np.std(boots, ddof=1))
        lo, hi = np.quantile(boots, [0.5 - level / 2.0, 0.5 + level / 2.0])
    z = z_auc(auc, se)
    return {"auc": auc, "se": float(se), "lower": float(max(lo, 0.0)),
            "upper": float(min(hi, 1.0)), "level": float(level), "method": method,
            "z_auc": z, "p_value": float(2.0 * stats.norm.sf(abs(z))),
            "n_pos": n1, "n_neg": n0}


def classification_metrics(y_true: Any, score: Any, *, threshold: float = 0.5
                           ) -> dict[str, Any]:
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
        "tn": tn, "fp": fp, "fn": fn, "tp": tp,
        "n_pos": tp + fn, "n_neg": tn + fp,
        "threshold": float(threshold),
    }
