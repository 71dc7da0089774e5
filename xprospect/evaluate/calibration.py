"""Calibrated probabilities: temperature, Platt and isotonic calibration fitted on inner folds.

A score map ranks cells; a probability map should also mean what it says (of the cells called
0.2, about one in five holds a deposit). :class:`Calibrator` learns a monotone map from scores
to probabilities on held-out scores, and applies it lazily to a whole map. The held-out scores
must come from *inner* spatial folds of the training ground (:func:`calibrate_inner_folds`,
through :func:`xprospect.evaluate.splits.spatial_block_folds`): scores of the training points
themselves are overconfident, and the outer test fold must never be seen.

:func:`plot_reliability` draws the reliability diagram
(:func:`sklearn.calibration.calibration_curve`) with the Brier score of each curve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from xprospect._figures import finish_figure
from xprospect.evaluate.metrics import brier_score
from xprospect.evaluate.splits import spatial_block_folds
from xprospect.exceptions import DataError, XProspectError

__all__ = ["CALIBRATION_METHODS", "Calibrator", "calibrate_inner_folds", "plot_reliability"]

#: ``"temperature"``: ``sigmoid(logit(p) / T)`` (Guo et al., 2017); ``"platt"``:
#: ``sigmoid(a logit(p) + b)`` (Platt, 1999: temperature and a shift, which also corrects a
#: change of deposit prevalence); ``"isotonic"``: a monotone step function
#: (:class:`sklearn.isotonic.IsotonicRegression`), for any score.
CALIBRATION_METHODS = ("temperature", "platt", "isotonic")

_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(q) - np.log1p(-q)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


class Calibrator:
    """Map scores to calibrated probabilities (scikit-learn style: ``fit``, then ``predict``).

    Parameters
    ----------
    method : {"platt", "temperature", "isotonic"}
        See :data:`CALIBRATION_METHODS`. Temperature and Platt scaling need scores that are
        probabilities in [0, 1] (a classifier's); isotonic takes any score. Temperature
        scaling keeps the class balance the model was trained with (it only sharpens or
        softens), so it cannot correct a model trained on balanced classes for the rarity
        of deposits; Platt scaling (temperature and a shift, the default) and isotonic can.

    Attributes
    ----------
    temperature_ : float
        ``T`` (temperature), or ``1 / a`` (Platt).
    bias_ : float
        ``b`` (Platt; 0 for temperature).
    isotonic_ : sklearn.isotonic.IsotonicRegression
        The fitted step function (isotonic).
    n_fit_ : int
        Scores it was fitted on; ``fit_report_`` holds what :func:`calibrate_inner_folds` used.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.random(2000) < 0.1
    >>> p = np.clip(0.5 + 0.3 * (y - 0.5) + 0.2 * rng.standard_normal(2000), 0.01, 0.99)
    >>> cal = Calibrator("platt").fit(p, y)
    >>> brier_score(y, cal.predict(p)) < brier_score(y, p)
    True
    """

    fit_report_: dict[str, Any]

    def __init__(self, method: str = "platt") -> None:
        self.method = method

    def _check_method(self) -> None:
        if self.method not in CALIBRATION_METHODS:
            raise DataError(f"method must be one of {CALIBRATION_METHODS}; got {self.method!r}")

    def _check_scores(self, s: Any, what: str) -> np.ndarray:
        arr = np.asarray(s, dtype="float64").ravel()
        if self.method != "isotonic":
            fin = arr[np.isfinite(arr)]
            if fin.size and (fin.min() < 0.0 or fin.max() > 1.0):
                raise DataError(
                    f"{self.method} calibration needs {what} that are probabilities in [0, 1]; "
                    f"got values from {fin.min():g} to {fin.max():g} (use method='isotonic' "
                    "for other scores)"
                )
        return arr

    def fit(self, score: Any, y_true: Any) -> Calibrator:
        """Fit on held-out scores and their true classes.

        Parameters
        ----------
        score : array-like of float
            Held-out scores (finite).
        y_true : array-like of bool or 0/1
            True class of each (True: deposit).

        Returns
        -------
        self
        """
        self._check_method()
        s = self._check_scores(score, "scores")
        y = np.asarray(y_true)
        if y.shape != s.shape:
            raise DataError(f"{s.size} scores for {y.size} labels")
        if not np.isin(np.unique(y), [0, 1]).all():
            raise DataError(f"y_true must be boolean or 0/1; got {np.unique(y)[:5].tolist()}")
        y = y.astype(bool)
        bad = ~np.isfinite(s)
        if bad.any():
            raise DataError(
                f"scores hold {int(bad.sum())} non-finite values (first at position "
                f"{int(np.flatnonzero(bad)[0])})"
            )
        if y.all() or not y.any():
            raise DataError(f"calibration needs both classes; got {int(y.sum())} of {y.size}")
        self.n_fit_ = int(s.size)
        self.bias_ = 0.0
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression  # lazy: sklearn is heavy

            self.isotonic_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            self.isotonic_.fit(s, y.astype("float64"))
            self.temperature_ = float("nan")
            return self
        z = _logit(s)
        if self.method == "temperature":
            from scipy.optimize import minimize_scalar  # lazy: as sklearn

            def nll(log_t: float) -> float:
                q = np.clip(_sigmoid(z / np.exp(log_t)), 1e-12, 1 - 1e-12)
                return float(-np.mean(y * np.log(q) + (~y) * np.log1p(-q)))

            res = minimize_scalar(nll, bounds=(-5.0, 5.0), method="bounded")
            self.temperature_ = float(np.exp(res.x))
        else:
            from sklearn.linear_model import LogisticRegression  # lazy: sklearn is heavy

            # Platt scaling is an unpenalised logistic regression on the logit
            lr = LogisticRegression(C=1e6, max_iter=1000).fit(z[:, None], y)
            a = float(lr.coef_[0, 0])
            if a <= 0:
                raise DataError(
                    "Platt scaling found a decreasing link (the held-out scores rank "
                    "deposits below the rest); the model has no calibratable signal there"
                )
            self.temperature_ = 1.0 / a
            self.bias_ = float(lr.intercept_[0])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_fit_"):
            raise XProspectError("this Calibrator is not fitted: call fit(score, y) first")

    def predict(self, score: Any) -> np.ndarray:
        """Calibrated probabilities of ``score`` (NaN stays NaN).

        Parameters
        ----------
        score : array-like of float
            Scores of the kind it was fitted on.

        Returns
        -------
        numpy.ndarray
            Probabilities in [0, 1], float64, ``score``'s shape.
        """
        self._check_fitted()
        arr = np.asarray(score, dtype="float64")
        flat = self._check_scores(arr, "scores")
        out = np.full(flat.shape, np.nan)
        ok = np.isfinite(flat)
        if self.method == "isotonic":
            out[ok] = self.isotonic_.predict(flat[ok])
        else:
            out[ok] = _sigmoid(_logit(flat[ok]) / self.temperature_ + self.bias_)
        return out.reshape(arr.shape)

    def apply(self, score_map: xr.DataArray) -> xr.DataArray:
        """Calibrate a score map, lazily over its dask chunks; georeferencing kept.

        Parameters
        ----------
        score_map : xarray.DataArray
            A score on a grid (numpy or dask backed).

        Returns
        -------
        xarray.DataArray
            ``probability``: calibrated, float64, same dims, coords, chunks and CRS.
        """
        self._check_fitted()
        out = xr.apply_ufunc(
            self.predict,
            score_map,
            dask="parallelized",
            output_dtypes=["float64"],
            keep_attrs=True,
        )
        out.name = "probability"
        out.attrs["calibration"] = self.method
        return out


def calibrate_inner_folds(
    fit_score: Callable[[np.ndarray, np.ndarray], Any],
    xy: Any,
    y_true: Any,
    *,
    method: str = "platt",
    n_folds: int = 4,
    block_size: Any = None,
    blocks: Any = None,
    buffer: float = 0.0,
    groups: Any = None,
    seed: int = 0,
) -> Calibrator:
    """Fit a :class:`Calibrator` on out-of-fold scores of inner spatial folds.

    Pass the *training* points of an outer fold only: they are dealt into ``n_folds`` spatial
    block folds (:func:`xprospect.evaluate.splits.spatial_block_folds`, with the buffer);
    for each, ``fit_score`` trains the model on the inner training points and scores the
    inner held-out ones. The calibrator is fitted on those pooled held-out scores, so it never
    sees a score of a point the model was trained on, nor the outer test fold. Apply it to the
    map of the model refitted on the whole outer training set.

    Parameters
    ----------
    fit_score : callable
        ``fit_score(train_idx, test_idx) -> scores``: fit on the points ``train_idx`` (indices
        into ``xy``), return one score per point of ``test_idx``.
    xy : (n, 2) array or points Dataset
        Coordinates of the training points (deposits and negatives).
    y_true : array-like of bool or 0/1
        Their classes.
    method : {"platt", "temperature", "isotonic"}
        Calibration method (see :class:`Calibrator`).
    n_folds, block_size, blocks, buffer, groups, seed
        Inner folds, as :func:`~xprospect.evaluate.splits.spatial_block_folds`.

    Returns
    -------
    Calibrator
        Fitted; ``fit_report_`` holds ``n_folds``, ``n_points``, ``n_scored``, ``method``,
        ``fold_sizes`` and the inner-fold Brier score before and after calibration
        (``brier_raw``, ``brier_calibrated``: in-sample of the calibrator, out-of-fold of
        the model).

    Raises
    ------
    DataError
        If ``fit_score`` returns the wrong number of scores or every fold lacks a class.
    """
    y = np.asarray(y_true).astype(bool)
    folds = spatial_block_folds(
        xy,
        n_folds=n_folds,
        block_size=block_size,
        blocks=blocks,
        buffer=buffer,
        groups=groups,
        seed=seed,
    )
    if len(y) != sum(len(te) for _, te in folds):
        raise DataError(f"{len(y)} labels for {sum(len(te) for _, te in folds)} points")
    oof = np.full(len(y), np.nan)
    sizes = []
    for k, (tr, te) in enumerate(folds):
        if not 0 < y[tr].sum() < len(tr):
            continue  # a model cannot be trained without both classes
        s = np.asarray(fit_score(tr, te), dtype="float64").ravel()
        if s.shape != te.shape:
            raise DataError(f"inner fold {k}: fit_score returned {s.size} scores for {te.size}")
        oof[te] = s
        sizes.append([int(tr.size), int(te.size)])
    done = np.isfinite(oof)
    if not done.any():
        raise DataError("no inner fold held both classes in its training points")
    cal = Calibrator(method).fit(oof[done], y[done])
    raw_ok = method == "isotonic" or (oof[done].min() >= 0 and oof[done].max() <= 1)
    cal.fit_report_ = {
        "method": method,
        "n_folds": int(n_folds),
        "n_points": len(y),
        "n_scored": int(done.sum()),
        "fold_sizes": sizes,
        "brier_raw": brier_score(y[done], oof[done]) if raw_ok else float("nan"),
        "brier_calibrated": brier_score(y[done], cal.predict(oof[done])),
    }
    return cal


def plot_reliability(
    y_true: Any,
    probabilities: Mapping[str, Any] | Any,
    *,
    n_bins: int = 10,
    strategy: str = "quantile",
    path: Any = None,
    ax: Any = None,
) -> Any:
    """Reliability diagram of one or more probability vectors, with their Brier scores.

    Parameters
    ----------
    y_true : array-like of bool or 0/1
        True classes (e.g. held-out deposits and negatives of the outer folds).
    probabilities : array-like or mapping of name to array-like
        Probabilities of the same points, e.g. ``{"raw": p, "calibrated": q}``.
    n_bins : int
        Bins of :func:`sklearn.calibration.calibration_curve`.
    strategy : {"quantile", "uniform"}
        Its binning (quantile bins hold equal numbers of points: right for rare deposits).
    path : str or path, optional
        Write the figure there.
    ax : matplotlib Axes, optional
        Draw into it.

    Returns
    -------
    matplotlib.figure.Figure
        The legend gives each curve's Brier score.
    """
    import matplotlib.pyplot as plt  # lazy: optional heavy dependency, only for figures
    from sklearn.calibration import calibration_curve  # lazy: sklearn is heavy

    curves = dict(probabilities) if isinstance(probabilities, Mapping) else {"model": probabilities}
    y = np.asarray(y_true).astype(bool)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 5))
    else:
        fig = ax.figure
    ax.plot([0, 1], [0, 1], ls="--", c="0.5", lw=1, label="perfectly calibrated")
    for name, p in curves.items():
        q = np.asarray(p, dtype="float64").ravel()
        if q.shape != y.shape:
            raise DataError(f"{name!r}: {q.size} probabilities for {y.size} labels")
        frac, mean_p = calibration_curve(y, q, n_bins=n_bins, strategy=strategy)
        ax.plot(mean_p, frac, marker="o", label=f"{name} (Brier {brier_score(y, q):.4f})")
    ax.set_xlabel("mean predicted probability (0-1, per bin)")
    ax.set_ylabel("observed share of deposits (0-1, per bin)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Reliability diagram")
    ax.legend(loc="upper left")
    return finish_figure(fig, path)
