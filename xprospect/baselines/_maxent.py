"""MaxEnt's penalised logistic fit with an intercept the penalty cannot tilt into the features.

elapid fits MaxEnt as an L1-penalised logistic regression of presences against a background
weighted 100 to 1. With glmnet installed the intercept is unpenalised; without it (the
plain-pip case, and this project's) elapid falls back to scikit-learn's ``liblinear``, which
penalises the intercept like any other weight. The weighting asks for a large negative
intercept (about ``log(1 / 1000)``), and MaxEnt's features live in [0, 1] and are linearly
dependent on the constant (a forward and a reverse hinge at one knot sum, with the linear
feature, to a constant): the fit then pays for the offset with negative weights spread over
the features instead. A map fitted that way falls with every element, whatever the presences
say: on the synthetic benchmark world a MaxEnt fitted to random "deposits" ranked the real
held-out deposits at 0.36 (intercept -0.01, sum of weights -10.9 on average), and the same fit
on the negated evidence ranked them at 0.50; see :class:`CentredMaxent`.
"""

from __future__ import annotations

from typing import Any

import elapid
import numpy as np
from sklearn.linear_model import LogisticRegression

__all__ = ["CentredMaxent"]


class _CentredLogistic(LogisticRegression):
    """Logistic regression fitted on features centred on the (weighted) background.

    The weights are those of the uncentred problem (centring moves only the intercept), but no
    combination of features can stand in for the intercept any more: on centred features a
    combination that is constant is zero, so a penalised intercept is shrunk on its own and
    leaves the slopes symmetric under a change of sign of any covariate.
    """

    def fit(
        self, X: Any, y: Any, sample_weight: Any = None
    ) -> _CentredLogistic:  # sklearn's signature
        x = np.asarray(X, dtype="float64")
        yy = np.asarray(y)
        w = np.ones(yy.size) if sample_weight is None else np.asarray(sample_weight, "float64")
        bg = yy == 0
        centre = np.average(x[bg], axis=0, weights=w[bg]) if bg.any() else x.mean(axis=0)
        super().fit(x - centre, yy, sample_weight=sample_weight)
        fitted: Any = self  # sklearn sets the fitted attributes at run time
        fitted.intercept_ = fitted.intercept_ - fitted.coef_ @ centre
        return self


class CentredMaxent(elapid.MaxentModel):
    """``elapid.MaxentModel`` whose scikit-learn fit cannot trade its intercept for slopes.

    Only elapid's scikit-learn path changes (used when glmnet is not installed): its
    ``liblinear`` L1 logistic regression is fitted on features centred on the background (see
    :class:`_CentredLogistic`). The glmnet path, whose intercept is unpenalised, is elapid's own.
    """

    def initialize_sklearn_model(self, C: float, fit_intercept: bool = True) -> None:
        """Create elapid's L1 logistic regression, fitted on centred features.

        Parameters
        ----------
        C : float
            Inverse regularisation strength (elapid's conversion of ``beta_multiplier``).
        fit_intercept : bool
            Fit an intercept.
        """
        super().initialize_sklearn_model(C, fit_intercept=fit_intercept)
        model: Any = self  # elapid sets its estimator at run time
        model.estimator = _CentredLogistic(**model.estimator.get_params())
