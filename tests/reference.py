"""Slow, obviously-correct numpy references that the fast kernels are checked against."""

from __future__ import annotations

import numpy as np


def idw_brute_force(
    points, values, queries, *, k=12, power=2.0, radius=None, min_points=1, amat=None
):
    """IDW by brute force.

    points : (n, d) sample coordinates; values : (n, ne) with NaN for missing;
    queries : (m, d); amat : (d, d) linear map applied to offsets (anisotropy).
    Returns (m, ne). Per element only the samples that have it are used.
    """
    points = np.asarray(points, dtype="float64")
    queries = np.asarray(queries, dtype="float64")
    values = np.asarray(values, dtype="float64")
    if amat is not None:
        points = points @ amat.T
        queries = queries @ amat.T
    d = np.sqrt(((queries[:, None, :] - points[None, :, :]) ** 2).sum(-1))  # (m, n)
    out = np.full((queries.shape[0], values.shape[1]), np.nan)
    for e in range(values.shape[1]):
        ok = np.isfinite(values[:, e])
        de = d[:, ok]
        ve = values[ok, e]
        order = np.argsort(de, axis=1, kind="stable")
        for q in range(queries.shape[0]):
            idx = order[q] if k is None else order[q, :k]
            dq = de[q, idx]
            if radius is not None:
                keep = dq <= radius
                idx, dq = idx[keep], dq[keep]
            if idx.size < min_points or idx.size == 0:
                continue
            if dq[0] == 0:
                out[q, e] = ve[idx[dq == 0]].mean()
                continue
            w = dq**-power
            out[q, e] = (w * ve[idx]).sum() / w.sum()
    return out


def _variogram(model, h, psill, rng, nugget):
    h = np.asarray(h, dtype="float64")
    if model == "spherical":
        t = np.minimum(h / rng, 1.0)
        g = psill * (1.5 * t - 0.5 * t**3) + nugget
    elif model == "exponential":
        g = psill * (1.0 - np.exp(-3.0 * h / rng)) + nugget
    else:
        g = psill * (1.0 - np.exp(-((h / (4.0 * rng / 7.0)) ** 2))) + nugget
    return np.where(h == 0.0, 0.0, g)


def ordinary_kriging_dense(
    points, values, queries, *, model, psill, rng, nugget, k=16, radius=None, amat=None
):
    """Ordinary kriging by solving each cell's dense system with numpy.

    points : (n, d) samples; values : (n,) finite; queries : (m, d); amat : (d, d) linear
    map applied to offsets (anisotropy). For each query its ``k`` nearest samples (within
    ``radius``) set up ``[[G, 1], [1', 0]] [w, mu] = [g, 1]`` with ``gamma(0) = 0``; the
    estimate is ``w . v`` and the variance ``w . g + mu``. Returns (estimate, variance),
    NaN where no sample is in reach.
    """
    points = np.asarray(points, dtype="float64")
    queries = np.asarray(queries, dtype="float64")
    if amat is not None:
        points = points @ amat.T
        queries = queries @ amat.T
    est = np.full(queries.shape[0], np.nan)
    var = np.full(queries.shape[0], np.nan)
    for q in range(queries.shape[0]):
        d = np.sqrt(((points - queries[q]) ** 2).sum(-1))
        idx = np.argsort(d, kind="stable")[:k]
        if radius is not None:
            idx = idx[d[idx] <= radius]
        if idx.size == 0:
            continue
        n = idx.size
        p = points[idx]
        dm = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))
        a = np.ones((n + 1, n + 1))
        a[:n, :n] = _variogram(model, dm, psill, rng, nugget)
        a[n, n] = 0.0
        b = np.ones(n + 1)
        b[:n] = _variogram(model, d[idx], psill, rng, nugget)
        x = np.linalg.solve(a, b)
        est[q] = x[:n] @ values[idx]
        var[q] = x @ b
    return est, var
