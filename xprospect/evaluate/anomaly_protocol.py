"""The sample-level protocol of geochemical anomaly benchmarks: deposits judged at samples.

Each deposit takes the score of its nearest sample. The negatives are as many samples as
deposits, drawn with replacement from the samples at least ``min_dist`` from every deposit,
and the ROC AUC and average precision are averaged over ``n_draws`` such draws (fixed seed).
Three ranking figures complete it: the success rate (deposits whose nearest sample lies in
the top 5 % of the samples), the recall in the top 50 samples, and the mean distance from the
top 1 % of samples to their nearest deposit. Any per-sample score works: a variable of the
samples Dataset, an array with one value per sample, or a gridded map read at the samples.

``controls`` adds a null for the same score: the deposits are moved to random sites of the
sampled ground (:func:`control_sites`) and judged again, so a method whose AUC owes
something to the protocol or to where samples lie (edges, sparse ground) shows it in its
control AUC, and the real AUC is read against those draws with a permutation p.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from scipy.spatial import cKDTree

from xprospect._dims import grid_geometry
from xprospect.evaluate.metrics import average_precision, permutation_p, roc_auc
from xprospect.exceptions import DataError
from xprospect.points import as_points, points_to_index

__all__ = ["control_sites", "pool_cases", "sample_protocol", "sample_scores"]


def _xy(points: xr.Dataset) -> np.ndarray:
    return np.column_stack(
        [np.asarray(points["x"].values, "float64"), np.asarray(points["y"].values, "float64")]
    )


def sample_scores(score: Any, samples: Any, *, crs: Any = None) -> np.ndarray:
    """One value of ``score`` per sample, as :func:`sample_protocol` reads it.

    Parameters
    ----------
    score : str, array-like or xarray.DataArray
        A variable name of ``samples``, one value per sample, or a (y, x) map read at the
        samples' cells (NaN for a sample off the map).
    samples : points
        The samples (anything :func:`xprospect.points.as_points` takes).
    crs : any CRS spec, optional
        CRS of samples given as a table or an array.

    Returns
    -------
    numpy.ndarray
        float64, one value per sample.

    Examples
    --------
    >>> import numpy as np
    >>> xy = np.array([[0.0, 0.0], [1.0, 1.0]])
    >>> sample_scores([3, 4], xy, crs="EPSG:32750").tolist()
    [3.0, 4.0]
    """
    return _sample_scores(score, as_points(samples, crs=crs))


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


# rejection sampling of control sites: candidates per batch, batches before giving up
_BATCH = 4096
_MAX_BATCHES = 256


def control_sites(
    samples_xy: np.ndarray,
    deposits_xy: np.ndarray,
    *,
    draws: int,
    seed: int = 0,
    reach_from: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Random stand-ins for the deposits, uniform over the sampled ground, one set per draw.

    The sampled ground is every place within ``reach`` of a sample, ``reach`` being the
    farthest any real deposit lies from its nearest sample (at least the median spacing of
    the samples): the one condition every real deposit meets. Each draw places as many
    sites as there are deposits, uniformly over that ground (rejection sampling in the
    samples' bounding box widened by ``reach``), so sparse ground and the survey's edges
    get their share by area, as a deposit would.

    Parameters
    ----------
    samples_xy, deposits_xy : numpy.ndarray
        ``(n, 2)`` coordinates of the samples and the deposits.
    draws : int
        Sets of sites to draw.
    seed : int
        Draw ``r`` uses the random stream ``[seed, r]``, so a draw does not depend on how
        many are drawn.
    reach_from : numpy.ndarray of bool, optional
        The deposits whose distance to a sample sets ``reach`` (default all); a deposit
        off the survey would stretch the sampled ground over empty country.

    Returns
    -------
    list of numpy.ndarray
        ``draws`` arrays of shape ``(n_deposits, 2)``.

    Examples
    --------
    >>> import numpy as np
    >>> xy = np.random.default_rng(0).uniform(0, 1000, (200, 2))
    >>> sites = control_sites(xy, xy[:5] + 1.0, draws=3, seed=0)
    >>> len(sites), sites[0].shape
    (3, (5, 2))
    """
    tree = cKDTree(samples_xy)
    inside = deposits_xy if reach_from is None else deposits_xy[np.asarray(reach_from, bool)]
    reach = float(tree.query(inside)[0].max()) if inside.shape[0] else 0.0
    if samples_xy.shape[0] > 1:
        # a sample's nearest other sample: k=2, the first hit is itself
        reach = max(reach, float(np.median(tree.query(samples_xy, k=2)[0][:, 1])))
    lo = samples_xy.min(axis=0) - reach
    hi = samples_xy.max(axis=0) + reach
    n = deposits_xy.shape[0]
    out = []
    for r in range(int(draws)):
        rng = np.random.default_rng([int(seed), r])
        got: list[np.ndarray] = []
        have = 0
        for _ in range(_MAX_BATCHES):
            cand = rng.uniform(lo, hi, size=(_BATCH, 2))
            ok = cand[tree.query(cand)[0] <= reach]
            got.append(ok)
            have += ok.shape[0]
            if have >= n:
                break
        if have < n:
            raise DataError(
                f"control draw {r}: only {have} of {_BATCH * _MAX_BATCHES} random places lie "
                f"within {reach:g} of a sample; the samples cover too little of their "
                "bounding box to place control sites"
            )
        out.append(np.concatenate(got)[:n])
    return out


def pool_cases(
    samples: Any, deposits: Any, *, min_dist: float = 5000.0, crs: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the protocol's cases with every negative at once, for tests that pair scores.

    The protocol's AUC, a mean over draws of as many negatives as deposits, estimates the
    AUC of the deposits' nearest samples against the whole pool of samples at least
    ``min_dist`` from every deposit. These are the cases of that AUC, the same for every
    score of the samples, so that scores can be compared on them with a paired DeLong test.

    Parameters
    ----------
    samples, deposits : points
        As in :func:`sample_protocol`.
    min_dist : float
        Distance from every deposit that makes a sample a negative (CRS units).
    crs : any CRS spec, optional
        CRS of tables or arrays.

    Returns
    -------
    positives : numpy.ndarray of int
        Index of each deposit's nearest sample (a sample near two deposits counts twice).
    negatives : numpy.ndarray of int
        Indices of the samples of the pool.

    Examples
    --------
    >>> import numpy as np
    >>> xy = np.array([[0.0, 0.0], [10.0, 0.0], [10_000.0, 0.0]])
    >>> pos, neg = pool_cases(xy, np.array([[1.0, 0.0]]), min_dist=5000.0, crs="EPSG:32750")
    >>> pos.tolist(), neg.tolist()
    ([0], [2])
    """
    xy_s = _xy(as_points(samples, crs=crs))
    xy_d = _xy(as_points(deposits, crs=crs))
    if xy_d.shape[0] == 0:
        raise DataError("no deposits given")
    _, nearest = cKDTree(xy_s).query(xy_d)
    d_dep, _ = cKDTree(xy_d).query(xy_s)
    negatives = np.flatnonzero(d_dep >= min_dist)
    if negatives.size == 0:
        raise DataError(f"no sample lies at least min_dist={min_dist:g} from every deposit")
    return np.asarray(nearest, dtype=np.intp), negatives


def _negative_pool(s: np.ndarray, xy_s: np.ndarray, xy_d: np.ndarray, min_dist: float) -> Any:
    d_dep, _ = cKDTree(xy_d).query(xy_s)
    return d_dep, s[d_dep >= min_dist]


def _draw_aucs(
    pos: np.ndarray, pool: np.ndarray, n_draws: int, seed: int
) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(seed)
    aucs, aps = [], []
    y = np.r_[np.ones(pos.size, bool), np.zeros(pos.size, bool)]
    for _ in range(int(n_draws)):
        neg = pool[rng.integers(0, pool.size, pos.size)]
        sc = np.r_[pos, neg]
        aucs.append(roc_auc(y, sc))
        aps.append(average_precision(y, sc))
    return aucs, aps


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
    controls: int = 0,
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
    controls : int
        Control draws: each moves the deposits to random sites of the sampled ground
        (:func:`control_sites`, stream ``[seed, draw]``) and judges the same score
        against them with the same negative draws. 0 for none.
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
        ``n_deposits``, ``n_deposits_far`` (deposits at least ``min_dist`` from every
        sample: each takes the score of a sample that far away) and
        ``n_far_also_negative`` (of those, the ones whose sample is also in the negative
        pool, as it is at least ``min_dist`` from every deposit), ``n_negative_pool``,
        ``n_samples``, ``n_samples_dropped`` and the settings. With ``controls``, also
        ``control_auc`` and ``control_auc_sd`` (mean and standard deviation of the control
        draws' AUCs, each itself a mean over ``n_draws``), ``control_p`` (the permutation
        p of ``auc`` against them, see :func:`~xprospect.evaluate.metrics.permutation_p`)
        and ``controls``; the deposits counted in ``n_deposits_far`` do not set the
        reach of the control sites.

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
    if int(controls) < 0:
        raise DataError(f"controls must be a number of draws >= 0; got {controls}")
    for name, v in (("top_fraction", top_fraction), ("distance_fraction", distance_fraction)):
        if not 0.0 < v <= 1.0:
            raise DataError(f"{name} must lie in (0, 1]; got {v!r}")
    s = _sample_scores(score, smp)
    keep = np.isfinite(s)
    xy_all = _xy(smp)
    xy_s = xy_all[keep]
    s = s[keep]
    if s.size < 2:
        raise DataError(f"only {s.size} samples have a finite score")
    xy_d = _xy(dep)
    if xy_d.shape[0] == 0:
        raise DataError("no deposits given")
    tree_s = cKDTree(xy_s)
    gap, nearest = tree_s.query(xy_d)
    pos = s[nearest]
    d_dep, pool = _negative_pool(s, xy_s, xy_d, min_dist)
    # deposits between or off the samples: each takes the score of a sample as far away
    # as a negative must be from every deposit, and that sample can be a negative too;
    # the protocol keeps them, as the benchmark does, and counts them
    far = gap >= min_dist
    if pool.size == 0:
        raise DataError(f"no sample lies at least min_dist={min_dist:g} from every deposit")
    aucs, aps = _draw_aucs(pos, pool, n_draws, seed)
    thr = np.quantile(s, 1.0 - top_fraction)
    order = np.argsort(-s, kind="stable")
    top = np.zeros(s.size, bool)
    top[order[: int(top_n)]] = True
    n_top = max(1, int(np.ceil(distance_fraction * s.size)))
    out = {
        "auc": float(np.mean(aucs)),
        "auc_std": float(np.std(aucs)),
        "average_precision": float(np.mean(aps)),
        "average_precision_std": float(np.std(aps)),
        "success_rate": float(np.mean(pos >= thr)),
        "recall_top_n": float(np.mean(top[nearest])),
        "top_distance_mean": float(np.mean(d_dep[order[:n_top]])),
        "n_deposits": int(pos.size),
        "n_deposits_far": int(far.sum()),
        "n_far_also_negative": int((far & (d_dep[nearest] >= min_dist)).sum()),
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
    if int(controls) > 0:
        # the sampled ground is read from every sample, finite score or not, so that all
        # scores of one survey meet the same control sites; a deposit off the survey (see
        # _warn_outlying) does not stretch it
        near = cKDTree(xy_all).query(xy_d)[0] < min_dist  # every sample, as the ground
        sites_of = control_sites(
            xy_all, xy_d, draws=int(controls), seed=seed, reach_from=near if near.any() else None
        )
        null = []
        for r, sites in enumerate(sites_of):
            _, c_pool = _negative_pool(s, xy_s, sites, min_dist)
            if c_pool.size == 0:
                raise DataError(
                    f"control draw {r}: no sample lies at least min_dist={min_dist:g} from "
                    "every control site; use a smaller min_dist or controls=0"
                )
            c_aucs, _ = _draw_aucs(s[tree_s.query(sites)[1]], c_pool, n_draws, seed)
            null.append(float(np.mean(c_aucs)))
        out["control_auc"] = float(np.mean(null))
        out["control_auc_sd"] = float(np.std(null, ddof=1)) if len(null) > 1 else float("nan")
        out["control_p"] = float(permutation_p(out["auc"], null))
        out["controls"] = int(controls)
    return out
