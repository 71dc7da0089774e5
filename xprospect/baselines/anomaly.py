"""Unsupervised baselines: Gaussian mixture density and isolation forest."""

from __future__ import annotations

import warnings

import numpy as np

from xprospect.baselines.base import AnomalyDetector
from xprospect.exceptions import DataError, XProspectWarning

__all__ = ["GaussianMixtureDetector", "IsolationForestDetector"]


class GaussianMixtureDetector(AnomalyDetector):
    """Gaussian mixture density of normal cells; anomaly = negative log-likelihood.

    Cells (or samples) the mixture finds unlikely (low density) score high. Elements are
    standardised by the normal cells' mean and standard deviation before fitting.

    Covariance-based: feed it isometric log-ratio coordinates (``ds.prospect.ilr()``), not
    clr ones. clr coordinates sum to zero in every row, so a full (or tied) covariance of
    them is singular by construction; :meth:`fit` warns (:class:`XProspectWarning`) when the
    elements are linearly dependent that way.

    Parameters
    ----------
    n_components : int
        Mixture components.
    covariance_type : {"full", "tied", "diag", "spherical"}
        As :class:`sklearn.mixture.GaussianMixture`.
    reg_covar : float
        Added to covariance diagonals.
    n_init : int
        Initialisations (the best is kept).
    max_cells : int or None
        Fit on at most this many normal cells, drawn at random.
    buffer : float, optional
        Cells within this distance of ``labels`` points are not normal (default
        :func:`xprospect.points.default_buffer`: one cell width).
    seed : int
        Random seed (``fit(seed=)`` overrides it).
    dependent : {"warn", "project"}
        What a full or tied covariance does with linearly dependent elements: warn (the
        default; the mixture then rests on ``reg_covar``) or fit in their span (see above).

    Attributes
    ----------
    mixture_ : sklearn.mixture.GaussianMixture
    mean_, scale_ : numpy.ndarray
        Standardisation of each element.
    basis_ : numpy.ndarray or None
        Orthonormal basis the mixture was fitted in (``dependent="project"`` with dependent
        elements), else None.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> s = xr.DataArray(rng.normal(size=(2, 20, 20)), dims=("element", "y", "x"),
    ...                  coords={"element": ["Au", "Cu"], "y": np.arange(20.0)[::-1],
    ...                          "x": np.arange(20.0)})
    >>> GaussianMixtureDetector(n_components=2).fit(s).predict(s).dims
    ('y', 'x')
    """

    def __init__(
        self,
        n_components: int = 3,
        *,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        n_init: int = 1,
        max_cells: int | None = 100_000,
        buffer: float | None = None,
        seed: int = 0,
        dependent: str = "warn",
    ) -> None:
        if dependent not in ("warn", "project"):
            raise DataError(f"dependent must be 'warn' or 'project'; got {dependent!r}")
        self.dependent = dependent
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.n_init = n_init
        self.max_cells = max_cells
        self.buffer = buffer
        self.seed = seed

    def _fit_table(self, x: np.ndarray, y: np.ndarray | None, seed: int) -> None:
        from sklearn.mixture import GaussianMixture  # heavy: loaded when a model is fitted

        self.mean_ = x.mean(axis=0)
        sd = x.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        self.basis_ = None
        z = (x - self.mean_) / self.scale_
        if self.covariance_type in ("full", "tied"):
            if self.dependent == "project":
                # principal axes with non-zero variance: the span the data actually occupy
                vals, vecs = np.linalg.eigh(np.cov(z, rowvar=False))
                keep = vals > 1e-8 * max(float(vals.max()), 1e-300)
                if not keep.all():
                    self.basis_ = vecs[:, keep]
            else:
                _warn_if_dependent(x, self.elements_)
        self.n_dims_ = z.shape[1] if self.basis_ is None else int(self.basis_.shape[1])
        self.mixture_ = GaussianMixture(
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            reg_covar=self.reg_covar,
            n_init=self.n_init,
            random_state=seed,
        ).fit(self._coordinates(x))

    def _coordinates(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean_) / self.scale_
        return z if self.basis_ is None else z @ self.basis_

    def _score_table(self, x: np.ndarray) -> np.ndarray:
        return -self.mixture_.score_samples(self._coordinates(x))


class IsolationForestDetector(AnomalyDetector):
    """Isolation forest on normal cells; anomaly = minus sklearn's ``score_samples``.

    Cells isolated in few random splits score high (about 0.5 for ordinary cells, up to 1).

    Parameters
    ----------
    n_estimators : int
        Trees.
    max_samples : int, float or "auto"
        Cells per tree (as :class:`sklearn.ensemble.IsolationForest`).
    max_features : float
        Share of elements drawn per tree.
    max_cells : int or None
        Fit on at most this many normal cells, drawn at random.
    buffer : float, optional
        Cells within this distance of ``labels`` points are not normal (default
        :func:`xprospect.points.default_buffer`: one cell width).
    seed : int
        Random seed (``fit(seed=)`` overrides it).

    Attributes
    ----------
    forest_ : sklearn.ensemble.IsolationForest
    """

    def __init__(
        self,
        n_estimators: int = 200,
        *,
        max_samples: int | float | str = "auto",
        max_features: float = 1.0,
        max_cells: int | None = 100_000,
        buffer: float | None = None,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.max_cells = max_cells
        self.buffer = buffer
        self.seed = seed

    def _fit_table(self, x: np.ndarray, y: np.ndarray | None, seed: int) -> None:
        from sklearn.ensemble import IsolationForest  # heavy: loaded when a model is fitted

        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            max_features=self.max_features,
            random_state=seed,
            n_jobs=1,
        ).fit(x)

    def _score_table(self, x: np.ndarray) -> np.ndarray:
        return -self.forest_.score_samples(x)


def _warn_if_dependent(x: np.ndarray, elements: list[str]) -> None:
    """Warn when the columns of ``x`` are linearly dependent (e.g. clr coordinates)."""
    if x.shape[1] < 2 or x.shape[0] <= x.shape[1]:
        return
    corr = np.corrcoef(x, rowvar=False)
    if not np.isfinite(corr).all():
        return
    smallest = float(np.linalg.eigvalsh(corr)[0])
    if smallest < 1e-8:
        msg = (
            f"the elements {elements} are linearly dependent (smallest correlation "
            f"eigenvalue {smallest:.1e}; clr coordinates, which sum to zero, are): a full "
            "covariance of them is singular and the mixture rests on reg_covar alone. Pass "
            "ilr coordinates (ds.prospect.ilr()) or covariance_type='diag'"
        )
        warnings.warn(msg, XProspectWarning, stacklevel=4)
