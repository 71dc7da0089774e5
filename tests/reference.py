"""Slow, obviously-correct numpy references that the fast kernels are checked against."""

from __future__ import annotations

import numpy as np


def idw_brute_force(points, values, queries, *, k=12, power=2.0, radius=None, min_points=1,
                    amat=None):
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
            w = dq ** -power
            out[q, e] = (w * ve[idx]).sum() / w.sum()
    return out
