"""Factor analysis of element variables: rotated loadings and per-cell factor scores.

R-mode factor analysis is the classic way to find element associations in exploration
geochemistry (e.g. an Sb-Hg factor tracing ore-bearing fractures). Here scikit-learn's
:class:`~sklearn.decomposition.FactorAnalysis` (maximum-likelihood, SVD method) is fitted
on the cells or samples where every chosen element is valid, after a log10 transform
(optional) and standardisation to zero mean and unit variance, so the loadings are on the
correlation scale. ``rotation="varimax"`` (or ``"quartimax"``) is sklearn's own rotation.

Factor scores are the posterior means ``E[f | x] = (x_std - mu) @ B`` with
``B = Psi^-1 W^T (I + W Psi^-1 W^T)^-1`` (W the rotated loadings, Psi the noise
variances): a fixed linear map, so scores are computed lazily per dask chunk.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import dask
import dask.array
import numpy as np
import pandas as pd
import xarray as xr

from xprospect._dims import ELEMENT_DIM, get_crs, write_crs
from xprospect.exceptions import DataError
from xprospect.preprocess.scaling import _checked_log, _data_dims, _select

__all__ = ["FACTOR_DIM", "factor_analysis", "factor_label"]

FACTOR_DIM = "factor"
_ROTATIONS = ("varimax", "quartimax", None)
log = logging.getLogger(__name__)


def _as_stack(data: xr.Dataset | xr.DataArray, elements: Sequence[str] | None) -> xr.DataArray:
    """(element, ...) DataArray of the chosen elements from a Dataset or a stack."""
    if isinstance(data, xr.DataArray):
        if ELEMENT_DIM not in data.dims:
            raise DataError(
                f"factor_analysis needs a Dataset of elements or a stack with an "
                f"{ELEMENT_DIM!r} dim; got a DataArray with dims {data.dims}"
            )
        stack = data
        if elements is not None:
            have = [str(e) for e in stack[ELEMENT_DIM].values]
            missing = [e for e in elements if e not in have]
            if missing:
                raise DataError(f"elements {missing} are not in the stack; it holds {have}")
            stack = stack.sel({ELEMENT_DIM: list(elements)})
        return stack.transpose(ELEMENT_DIM, ...)
    if not isinstance(data, xr.Dataset):
        raise DataError(
            f"factor_analysis needs an xarray Dataset or DataArray; got {type(data).__name__}"
        )
    names = _select(data, elements, "factor_analysis")
    dims = _data_dims(data)
    bad = [n for n in names if tuple(data[n].dims) != dims]
    if bad:
        raise DataError(f"factor_analysis: variables {bad} are not on the data dims {dims}")
    return data[names].to_array(dim=ELEMENT_DIM)


def factor_label(loadings: pd.Series, *, rel: float = 0.5, max_elements: int = 4) -> str:
    """Name a factor by its dominant loadings, e.g. ``"Sb+Hg"`` or ``"Au+Ag-Co"``.

    Elements whose absolute loading is at least ``rel`` times the largest are listed by
    decreasing absolute loading (at most ``max_elements``), each with its sign.

    Parameters
    ----------
    loadings : pandas.Series
        Loadings of one factor, indexed by element.
    rel : float
        Relative cut-off.
    max_elements : int
        Most elements named.

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> factor_label(pd.Series({"Sb": 0.9, "Hg": 0.8, "Au": 0.1, "Co": -0.6}))
    'Sb+Hg-Co'
    """
    a = loadings.abs().sort_values(ascending=False)
    top = a[a >= rel * a.iloc[0]].index[:max_elements]
    out = ""
    for i, e in enumerate(top):
        sign = "-" if loadings[e] < 0 else ("+" if i else "")
        out += f"{sign}{e}"
    return out


def _score_kernel(
    x: np.ndarray,
    *,
    center: np.ndarray,
    scale: np.ndarray,
    proj: np.ndarray,
    log10: bool,
    names: list[str],
) -> np.ndarray:
    # x: (..., element) -> (..., factor)
    x = np.asarray(x, dtype="float64")
    if log10:
        bad = x <= 0
        if bad.any():
            j = int(np.argwhere(bad)[0][-1])
            raise DataError(
                f"element {names[j]!r} has {int(bad[..., j].sum())} non-positive "
                "value(s) in one block; log10 needs positive concentrations "
                "(pass log10=False for already transformed data)"
            )
        x = np.log10(x)
    z = (x - center) / scale
    out = z @ proj
    out[~np.all(np.isfinite(z), axis=-1)] = np.nan
    return out.astype("float32")


def _moments(
    stack: xr.DataArray, names: list[str], log10: bool
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean, std and correlation matrix over cells where every element is valid.

    One pass over the data (a dask reduction on lazy input), computed at once.
    """
    spatial = [d for d in stack.dims if d != ELEMENT_DIM]
    x = stack.astype("float64").reset_coords(drop=True)
    if log10:
        x = xr.concat(
            [_checked_log(x.isel({ELEMENT_DIM: i}), n, np.log10) for i, n in enumerate(names)],
            dim=ELEMENT_DIM,
        )
    valid = x.notnull().all(ELEMENT_DIM)
    xv = x.where(valid, 0.0)
    with warnings.catch_warnings():
        # the cross-product contracts every chunk into one small (p, p) matrix
        warnings.simplefilter("ignore", dask.array.PerformanceWarning)
        cross = xr.dot(xv, xv.rename({ELEMENT_DIM: "_e2"}), dim=spatial)
    n, s1, s2 = dask.compute(valid.sum(), xv.sum(spatial), cross)
    n = int(n)
    if n == 0:
        return 0, np.zeros(len(names)), np.zeros(len(names)), np.eye(len(names))
    mean = np.asarray(s1.transpose(ELEMENT_DIM).values) / n
    cov = np.asarray(s2.transpose(ELEMENT_DIM, "_e2").values) / n - np.outer(mean, mean)
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(std, std)
    return n, mean, std, corr


def _pseudo_data(corr: np.ndarray) -> np.ndarray:
    """Rows with zero mean whose covariance (divided by n) is exactly ``corr``.

    The maximum-likelihood factor model depends on the data only through their
    covariance, so fitting these 2p rows gives the same loadings as fitting every
    standardised cell, at a cost that does not grow with the grid.
    """
    p = corr.shape[0]
    evals, evecs = np.linalg.eigh((corr + corr.T) / 2)
    half = np.sqrt(p) * (evecs * np.sqrt(np.clip(evals, 0.0, None))).T  # half.T @ half = p*C
    return np.concatenate([half, -half])  # (2p, p): mean 0, rows.T @ rows / 2p = corr


def factor_analysis(
    data: xr.Dataset | xr.DataArray,
    *,
    n_factors: int,
    rotation: str | None = "varimax",
    elements: Sequence[str] | None = None,
    log10: bool = True,
    seed: int = 0,
) -> tuple[xr.DataArray, pd.DataFrame]:
    """R-mode factor analysis of element variables with rotated loadings.

    The model is fitted on every cell (or sample) where all chosen elements are finite,
    after log10 (optional) and standardisation; scores are then computed for every cell,
    lazily per dask chunk. Factors are ordered by the variance they explain after
    rotation, signed so that their largest loading is positive, and labelled by their
    dominant elements (``"F1: Sb+Hg"``). The fit needs the mean and correlation matrix
    of the valid cells, an inherently global step: one reduction pass over dask data is
    computed. Since the maximum-likelihood factor model depends on the data only through
    that matrix, scikit-learn is then fitted on ``2 p`` pseudo-rows with exactly the same
    correlation (``p`` elements): the same loadings as a fit on every cell, at a cost
    independent of the grid size.

    Parameters
    ----------
    data : xarray.Dataset or DataArray
        Grid (y, x), voxels (z, y, x) or samples (``sample``) with one variable per
        element, or a stack (``element``, ...).
    n_factors : int
        Number of factors (``1 <= n_factors < n_elements``).
    rotation : {"varimax", "quartimax", None}
        Rotation of the loadings (scikit-learn's implementation).
    elements : list of str, optional
        Elements to analyse; default every numeric element variable.
    log10 : bool
        Take log10 of concentrations first (standard for geochemistry); pass False for
        data already transformed (clr, log).
    seed : int
        Seed passed to scikit-learn (the lapack fit is deterministic).

    Returns
    -------
    scores : xarray.DataArray
        ``(factor, ...)`` float32 scores on the input's grid and CRS, coordinate
        ``factor`` (``"F1"``, ...) and ``label`` (``"F1: Sb+Hg"``); NaN where an element
        is missing. Attrs hold the method and the loadings.
    loadings : pandas.DataFrame
        Elements x factors (columns ``F1`` ...) and a ``communality`` column;
        ``loadings.attrs`` holds ``labels``, ``variance`` (sum of squared loadings per
        factor), ``rotation``, ``log10``, ``n_fit`` (cells fitted), ``converged`` and
        ``n_iter`` (EM iterations; a fit that did not converge is kept and logged).

    Raises
    ------
    DataError
        Bad ``n_factors`` or ``rotation``, fewer valid cells than elements, a constant
        element, or non-positive values under ``log10``.

    Examples
    --------
    >>> import xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=300, elements=["Au", "Ag", "As", "Sb", "Cu"])
    >>> scores, loadings = xp.preprocess.factor_analysis(w.samples, n_factors=2)
    >>> scores.dims, list(loadings.columns)
    (('factor', 'sample'), ['F1', 'F2', 'communality'])
    """
    # scikit-learn is a heavy import needed only to fit the factor model
    from sklearn.decomposition import FactorAnalysis
    from sklearn.exceptions import ConvergenceWarning

    if rotation not in _ROTATIONS:
        raise DataError(f"rotation must be one of {list(_ROTATIONS)}; got {rotation!r}")
    stack = _as_stack(data, elements)
    names = [str(e) for e in stack[ELEMENT_DIM].values]
    n_el = len(names)
    if not (isinstance(n_factors, (int, np.integer)) and 1 <= n_factors < n_el):
        raise DataError(
            f"n_factors must be an integer from 1 to {n_el - 1} (there are {n_el} "
            f"elements: {names}); got {n_factors!r}"
        )
    # -- fit: one global pass for the moments, then the ML fit on the correlation matrix
    n_valid, center, scale, corr = _moments(stack, names, log10)
    if n_valid <= n_el:
        raise DataError(
            f"factor_analysis found {n_valid} cells where all of {names} are "
            f"valid; at least {n_el + 1} are needed"
        )
    bad = ~(np.isfinite(scale) & (scale > 0))
    if bad.any():
        raise DataError(
            f"element {names[int(np.argmax(bad))]!r} is constant over the valid cells; drop it"
        )
    pseudo = _pseudo_data(corr)
    # sklearn stops when the total log-likelihood gains less than tol (default 1e-2); the
    # likelihood scales with the number of rows, so scale tol to stop exactly where a fit
    # on all n_valid rows would
    fa = FactorAnalysis(
        n_components=int(n_factors),
        rotation=rotation,
        svd_method="lapack",
        tol=1e-2 * pseudo.shape[0] / n_valid,
        max_iter=1000,
        random_state=seed,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        fa.fit(pseudo)
    converged = not any(issubclass(c.category, ConvergenceWarning) for c in caught)
    if not converged:  # EM only improves the likelihood: keep the result, say so
        log.warning(
            "factor_analysis: %d factors of %s did not converge in %d iterations",
            n_factors,
            names,
            fa.n_iter_,
        )
    w = fa.components_.copy()  # (factor, element)
    # order by explained variance, make the dominant loading positive
    var = (w**2).sum(axis=1)
    order = np.argsort(-var, kind="stable")
    w = w[order]
    signs = np.sign(w[np.arange(w.shape[0]), np.argmax(np.abs(w), axis=1)])
    signs[signs == 0] = 1.0
    w = w * signs[:, None]
    psi = fa.noise_variance_
    wpsi = w / psi  # W Psi^-1
    proj = wpsi.T @ np.linalg.inv(np.eye(w.shape[0]) + wpsi @ w.T)  # (element, factor)
    fnames = [f"F{i + 1}" for i in range(w.shape[0])]
    loadings = pd.DataFrame(w.T, index=pd.Index(names, name="element"), columns=fnames)
    labels = [f"{f}: {factor_label(loadings[f])}" for f in fnames]
    loadings["communality"] = (w**2).sum(axis=0)
    loadings.attrs = {
        "labels": dict(zip(fnames, labels, strict=True)),
        "variance": dict(zip(fnames, (w**2).sum(axis=1).tolist(), strict=True)),
        "rotation": str(rotation),
        "log10": log10,
        "n_fit": n_valid,
        "converged": converged,
        "n_iter": int(fa.n_iter_),
    }
    # -- scores: a linear map, lazy per chunk
    if stack.chunks is not None:
        stack = stack.chunk({ELEMENT_DIM: -1})
    scores = xr.apply_ufunc(
        _score_kernel,
        stack,
        input_core_dims=[[ELEMENT_DIM]],
        output_core_dims=[[FACTOR_DIM]],
        kwargs={"center": center, "scale": scale, "proj": proj, "log10": log10, "names": names},
        dask="parallelized",
        output_dtypes=["float32"],
        dask_gufunc_kwargs={"output_sizes": {FACTOR_DIM: len(fnames)}},
    )
    scores = scores.transpose(FACTOR_DIM, ...).assign_coords(
        {FACTOR_DIM: fnames, "label": (FACTOR_DIM, labels)}
    )
    scores.name = "factor_scores"
    scores.attrs = {
        "long_name": "factor scores",
        "method": (
            f"sklearn FactorAnalysis (maximum likelihood), rotation={rotation}, on "
            f"{'log10, ' if log10 else ''}standardised {'-'.join(names)}; "
            "scores are posterior means"
        ),
        "elements": names,
        "units": "1",
    }
    log.info("factor_analysis: %s fitted on %d cells", labels, n_valid)
    crs = get_crs(data)
    return (write_crs(scores, crs) if crs is not None else scores), loadings
