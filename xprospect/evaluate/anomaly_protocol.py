"""The sample-level protocol of geochemical anomaly benchmarks: deposits judged at samples.

Each deposit takes the score of its nearest sample. The negatives are as many samples as
deposits, drawn with replacement from the samples at least ``min_dist`` from every deposit,
and the ROC AUC and average precision are averaged over ``n_draws`` such draws (fixed seed).
Three ranking figures complete it: the success rate (deposits whose nearest sample lies in
the top 5 % of the samples), the recall in the top 50 samples, and the mean distance from the
top 1 % of samples to their nearest deposit. Any per-sample score works: a variable of the
samples Dataset, an array with one value per sample, or a gridded map read at the samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from scipy.spatial import cKDTree

from xprospect._dims import grid_geometry
from xprospect.evaluate.metrics import average_precision, roc_auc
from xprospect.exceptions import DataError
from xprospect.points import as_points, points_to_index

__all__ = ["sample_protocol"]


def _xy(points: xr.Dataset) -> np.ndarray:
    return np.column_stack(
        [np.asarray(points["x"].values, "float64"), np.asarray(points["y"].values, "float64")]
    )


def _sample_scores(score: Any, samples: xr.Dataset) -> np.ndarray:
    n = samples.sizes["point"]
    if isinstance(score, str):
        if score not in samples.data_vars:
            raise DataError(
                f"score {score!r} is not a variable of the samples; they hold "
                f"{sorted(map(str, samples.data_vars))}"
            )
        s = np.asarray(samples[score].values, dtype="float64")
    elif isinstance(score, xr.DataArray) and {"y", "x"} <= set(score.dims):
        geom = grid_geometry(score)
        if geom.ndim != 2:
            raise DataError(f"a gridded score must be 2-D (y, x); got dims {score.dims}")
        idx, inside = points_to_index(samples, score)
        vals = np.asarray(score.transpose(*geom.dims).values, dtype="float64")
        s = np.full(n, np.nan)
        s[inside] = vals[tuple(idx[inside].T)]
    else:
        s = np.asarray(score, dtype="float64").ravel()
    if s.shape != (n,):
        raise DataError(f"score has {s.size} values for {n} samples")
    return s


def sample_protocol(
    score: Any,
    samples: Any,
    deposits: Any,
    *,
    min_dist: float = 5000.0,
    n_draws: int = 20,
    seed: int = 0,
    top_fraction: float = 0.05,
    top_n: int = 50,
    distance_fraction: float = 0.01,
    crs: Any = None,
) -> dict[str, Any]:
    """Judge a per-sample (or gridded) anomaly score at the samples, deposits as positives.

    Parameters
    ----------
    score : str, array-like or xarray.DataArray
        A variable name of ``samples``, one value per sample, or a (y, x) map read at the
        samples' cells. Larger means more anomalous. Samples with a non-finite score are
        dropped (counted in ``n_samples_dropped``).
    samples : points
        The sample sites (anything :func:`xprospect.points.as_points` takes).
    deposits : points
        Known deposits, in the samples' CRS.
    min_dist : float
        Negatives are drawn from samples at least this far (CRS units) from every deposit.
    n_draws : int
        Draws of negatives averaged.
    seed : int
        Seed of the draws.
    top_fraction : float
        Share of samples whose scores define the success rate.
    top_n : int
        Samples of highest score in which recall is counted.
    distance_fraction : float
        Share of highest-scoring samples whose mean distance to a deposit is reported.
    crs : any CRS spec, optional
        CRS of ``samples`` and ``deposits`` given as tables or arrays.

    Returns
    -------
    dict
        ``auc`` and ``auc_std`` (mean and standard deviation over draws), ``average_precision``
        and ``average_precision_std``, ``success_rate`` (deposits whose nearest sample is
        in the top ``top_fraction`` of samples), ``recall_top_n`` (deposits whose nearest
        sample is among the ``top_n`` highest), ``top_distance_mean`` (mean distance from
        the top ``distance_fraction`` of samples to their nearest deposit, CRS units),
        ``n_deposits``, ``n_negative_pool``, ``n_samples``, ``n_samples_dropped`` and the
        settings.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> xy = rng.uniform(0, 100_000, (500, 2))
    >>> dep = xy[:10] + 10.0
    >>> r = sample_protocol(-np.hypot(*(xy[:, None, :] - dep[None]).transpose(2, 0, 1)).min(1),
    ...                     xy, dep, crs="EPSG:32750")
    >>> r["auc"]
    1.0
    """
    smp = as_points(samples, crs=crs)
    dep = as_points(deposits, crs=crs)
    if n_draws < 1:
        raise DataError(f"n_draws must be >= 1; got {n_draws}")
    for name, v in (("top_fraction", top_fraction), ("distance_fraction", distance_fraction)):
        if not 0.0 < v <= 1.0:
            raise DataError(f"{name} must lie in (0, 1]; got {v!r}")
    s = _sample_scores(score, smp)
    keep = np.isfinite(s)
    xy_s = _xy(smp)[keep]
    s = s[keep]
    if s.size < 2:
        raise DataError(f"only {s.size} samples have a finite score")
    xy_d = _xy(dep)
    if xy_d.shape[0] == 0:
        raise DataError("no deposits given")
    tree_s = cKDTree(xy_s)
    _, nearest = tree_s.query(xy_d)
    pos = s[nearest]
    d_dep, _ = cKDTree(xy_d).query(xy_s)
    pool = s[d_dep >= min_dist]
    if pool.size == 0:
        raise DataError(f"no sample lies at least min_dist={min_dist:g} from every deposit")
    rng = np.random.default_rng(seed)
    aucs, aps = [], []
    y = np.r_[np.ones(pos.size, bool), np.zeros(pos.size, bool)]
    for _ in range(int(n_draws)):
        neg = pool[rng.integers(0, pool.size, pos.size)]
        sc = np.r_[pos, neg]
        aucs.append(roc_auc(y, sc))
        aps.append(average_precision(y, sc))
    thr = np.quantile(s, 1.0 - top_fraction)
    order = np.argsort(-s, kind="stable")
    top = np.zeros(s.size, bool)
    top[order[: int(top_n)]] = True
    n_top = max(1, int(np.ceil(distance_fraction * s.size)))
    return {
        "auc": float(np.mean(aucs)),
        "auc_std": float(np.std(aucs)),
        "average_precision": float(np.mean(aps)),
        "average_precision_std": float(np.std(aps)),
        "success_rate": float(np.mean(pos >= thr)),
        "recall_top_n": float(np.mean(top[nearest])),
        "top_distance_mean": float(np.mean(d_dep[order[:n_top]])),
        "n_deposits": int(pos.size),
        "n_negative_pool": int(pool.size),
        "n_samples": int(s.size),
        "n_samples_dropped": int((~keep).sum()),
        "min_dist": float(min_dist),
        "n_draws": int(n_draws),
        "seed": int(seed),
        "top_fraction": float(top_fraction),
        "top_n": int(top_n),
        "distance_fraction": float(distance_fraction),
    }
