"""Experimental variograms and the fit of a spherical, exponential or Gaussian model.

The models follow PyKrige's parametrisation, so a fitted or given variogram means the
same thing in both packages (``h`` a lag, ``r`` the range, ``c`` the partial sill,
``c0`` the nugget)::

    spherical    c * (1.5 h / r - 0.5 (h / r)**3) + c0  for h < r,  c + c0 beyond
    exponential  c * (1 - exp(-3 h / r)) + c0
    gaussian     c * (1 - exp(-(h / (4 r / 7))**2)) + c0

and ``gamma(0) = 0``: the nugget is a jump at the origin, so kriging stays exact at the
samples whatever the nugget.

The fit is a weighted least-squares fit to the experimental semivariance (weights: the
pair counts per lag). Given the range the model is linear in the partial sill and the
nugget, so the fit scans the range and solves a 2 x 2 non-negative least-squares
problem per candidate: deterministic and free of starting values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xprospect.exceptions import DataError

__all__ = ["MIN_PAIRS", "MODELS", "experimental_variogram", "fit_variogram", "variogram"]

#: The variogram models, in the order of their codes in the kriging kernels.
MODELS = ("spherical", "exponential", "gaussian")
#: Fewer sample pairs than this within the largest lag: no variogram is fitted.
MIN_PAIRS = 30
#: Fewer non-empty lag bins than this: no variogram is fitted (three parameters).
MIN_LAGS = 3


def _unit(model: str, h: np.ndarray, r: float) -> np.ndarray:
    """Evaluate the model with unit partial sill and no nugget (no ``gamma(0)`` case)."""
    if model == "spherical":
        t = np.minimum(h / r, 1.0)
        return 1.5 * t - 0.5 * t**3
    if model == "exponential":
        return 1.0 - np.exp(-3.0 * h / r)
    return 1.0 - np.exp(-((h / (4.0 * r / 7.0)) ** 2))


def check_model(model: str) -> str:
    """Return ``model`` if it names a variogram model, else raise DataError."""
    if model not in MODELS:
        raise DataError(f"variogram model must be one of {list(MODELS)}; got {model!r}")
    return model


def variogram(model: str, h: Any, *, psill: float, range: float, nugget: float) -> np.ndarray:
    """Evaluate a variogram model at lags ``h`` (``gamma(0) = 0``).

    Parameters
    ----------
    model : {"spherical", "exponential", "gaussian"}
        The model.
    h : array-like
        Lags (>= 0).
    psill, range, nugget : float
        Partial sill, range and nugget.

    Returns
    -------
    numpy.ndarray
        The semivariance at each lag.

    Examples
    --------
    >>> from xprospect.grid.variogram import variogram
    >>> variogram("spherical", [0.0, 50.0, 200.0], psill=2.0, range=100.0, nugget=0.5).tolist()
    [0.0, 1.875, 2.5]
    """
    h = np.asarray(h, dtype="float64")
    g = psill * _unit(check_model(model), h, float(range)) + nugget
    return np.where(h == 0.0, 0.0, g)


def experimental_variogram(
    points: np.ndarray,
    values: np.ndarray,
    *,
    n_lags: int = 12,
    max_lag: float | None = None,
    max_samples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Binned semivariance ``mean((v_i - v_j)**2 / 2)`` over sample pairs by distance.

    Parameters
    ----------
    points : (n, 3) array
        Sample coordinates (already in the search space: distances in units of the
        major range under anisotropy).
    values : (n,) array
        Finite values.
    n_lags : int
        Number of equal-width lag bins on ``(0, max_lag]``.
    max_lag : float, optional
        The largest lag (default: half the diagonal of the samples' bounding box).
    max_samples : int
        Above this many samples, a random subset of this size (``seed``) gives the pairs.
    seed : int
        Seed of that subset.

    Returns
    -------
    dict
        ``lags`` (mean pair distance per non-empty bin), ``semivariance`` and ``pairs``
        (counts), plus ``max_lag`` and ``total_pairs``.
    """
    n = points.shape[0]
    if n > max_samples:
        keep = np.random.default_rng(seed).choice(n, max_samples, replace=False)
        points, values = points[keep], values[keep]
        n = max_samples
    if max_lag is None:
        ext = points.max(axis=0) - points.min(axis=0) if n else np.zeros(3)
        max_lag = 0.5 * float(np.sqrt((ext**2).sum()))
    i, j = np.triu_indices(n, 1)
    d = np.sqrt(((points[i] - points[j]) ** 2).sum(axis=1))
    sv = 0.5 * (values[i] - values[j]) ** 2
    inside = (d > 0) & (d <= max_lag)
    d, sv = d[inside], sv[inside]
    if max_lag > 0 and d.size:
        b = np.minimum((d / (max_lag / n_lags)).astype(np.int64), n_lags - 1)
    else:
        b = np.zeros(0, dtype=np.int64)
        d, sv = d[:0], sv[:0]
    cnt = np.bincount(b, minlength=n_lags)
    ok = cnt > 0
    lags = np.bincount(b, weights=d, minlength=n_lags)[ok] / cnt[ok]
    gam = np.bincount(b, weights=sv, minlength=n_lags)[ok] / cnt[ok]
    return {
        "lags": lags,
        "semivariance": gam,
        "pairs": cnt[ok],
        "max_lag": float(max_lag),
        "total_pairs": int(d.size),
    }


def _nnls2(f: np.ndarray, g: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """Weighted least squares of ``g ~ a f + b`` with ``a, b >= 0``: (a, b, sse)."""
    sw, sf, sg = w.sum(), (w * f).sum(), (w * g).sum()
    sff, sfg = (w * f * f).sum(), (w * f * g).sum()
    cands = []
    det = sw * sff - sf * sf
    if det > 0:
        a = (sw * sfg - sf * sg) / det
        b = (sg - a * sf) / sw
        if a >= 0 and b >= 0:
            cands.append((a, b))
    if sff > 0:
        cands.append((max(sfg / sff, 0.0), 0.0))
    cands.append((0.0, max(sg / sw, 0.0)))
    best = (0.0, 0.0, math.inf)
    for a, b in cands:
        sse = float((w * (a * f + b - g) ** 2).sum())
        if sse < best[2]:
            best = (float(a), float(b), sse)
    return best


def fit_variogram(exp: dict[str, Any], model: str, *, what: str = "the values") -> dict[str, Any]:
    """Fit a model to an experimental variogram (see :func:`experimental_variogram`).

    Parameters
    ----------
    exp : dict
        The experimental variogram.
    model : {"spherical", "exponential", "gaussian"}
        The model.
    what : str
        Names the data in error messages (e.g. ``"element 'Au'"``).

    Returns
    -------
    dict
        JSON-safe: ``model``, ``psill``, ``range``, ``nugget``, ``sill``, ``rmse`` and
        the experimental ``lags``, ``semivariance`` and ``pairs`` as lists.

    Raises
    ------
    DataError
        With fewer than :data:`MIN_PAIRS` pairs or :data:`MIN_LAGS` non-empty lags, or
        when every value is equal (a flat variogram has no range).
    """
    check_model(model)
    if exp["total_pairs"] < MIN_PAIRS:
        raise DataError(
            f"cannot fit a variogram to {what}: only {exp['total_pairs']} sample "
            f"pairs within the largest lag {exp['max_lag']:.6g}; need at least "
            f"{MIN_PAIRS} (more samples, or give variogram parameters)"
        )
    lags, gam, w = exp["lags"], exp["semivariance"], exp["pairs"].astype("float64")
    if lags.size < MIN_LAGS:
        raise DataError(
            f"cannot fit a variogram to {what}: only {lags.size} lag bins hold "
            f"pairs; need at least {MIN_LAGS}"
        )
    if not np.any(gam > 0):
        raise DataError(
            f"cannot fit a variogram to {what}: every value is equal, so the "
            "semivariance is zero at every lag"
        )
    max_lag = exp["max_lag"]
    ranges = np.linspace(max_lag / 100.0, 2.0 * max_lag, 200)
    best = (0.0, 0.0, math.inf, ranges[0])
    for _ in range(2):  # a coarse scan, then a fine one around its best
        for r in ranges:
            a, b, sse = _nnls2(_unit(model, lags, float(r)), gam, w)
            if sse < best[2]:
                best = (a, b, sse, float(r))
        step = ranges[1] - ranges[0]
        ranges = np.linspace(max(best[3] - step, max_lag / 1000.0), best[3] + step, 101)
    psill, nugget, sse, rng = best
    if psill + nugget <= 0:
        raise DataError(f"cannot fit a variogram to {what}: the fitted sill is zero")
    return {
        "model": model,
        "psill": psill,
        "range": rng,
        "nugget": nugget,
        "sill": psill + nugget,
        "rmse": math.sqrt(sse / w.sum()),
        "lags": [float(v) for v in lags],
        "semivariance": [float(v) for v in gam],
        "pairs": [int(v) for v in exp["pairs"]],
    }
