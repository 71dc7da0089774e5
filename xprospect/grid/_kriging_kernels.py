"""Numba kernels for ordinary kriging in a local neighbourhood on lattices and points.

numpy arrays in, a preallocated ``out`` written in place; no xarray, no dask. The
neighbours come from :mod:`xprospect.grid._neighbours`. For each cell and element the
(n + 1) x (n + 1) ordinary kriging system in variogram form::

    [ G  1 ] [ w  ]   [ g ]        G[i, j] = gamma(|p_i - p_j|), g[i] = gamma(|p_i - q|)
    [ 1' 0 ] [ mu ] = [ 1 ]

is solved by LU with partial pivoting; the estimate is ``w . v`` and the kriging
variance ``w . g + mu``. Neighbouring cells mostly share their neighbour set, so the
factorisation is kept and reused while the set does not change (only the right-hand
side is new). A cell on a sample takes its value with variance 0. A numerically
singular system (a pivot below ``1e-12`` of the matrix scale, e.g. a Gaussian model
with near-coincident samples) is retried with a relative ridge of ``1e-10`` on the
diagonal of ``G``; should that fail too, the cell takes its nearest sample's value
with variance ``gamma(d)``, so a singular system never leaves NaN.

Variogram models by code: 0 spherical, 1 exponential, 2 Gaussian (see
:mod:`xprospect.grid.variogram`); ``vpar[e] = (psill, range, nugget)``.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from xprospect.grid._neighbours import knn_tile, new_state

__all__ = ["ok_grid_parallel", "ok_grid_serial", "ok_points_parallel", "ok_points_serial"]

_JIT = {"nogil": True, "cache": True, "error_model": "numpy"}
_PIVOT_TOL = 1e-12
_RIDGE = 1e-10


@nb.njit(inline="always", **_JIT)
def _gamma(model, psill, rng, nugget, h):
    if h == 0.0:
        return 0.0
    if model == 0:
        if h >= rng:
            return psill + nugget
        t = h / rng
        return psill * (1.5 * t - 0.5 * t * t * t) + nugget
    if model == 1:
        return psill * (1.0 - math.exp(-3.0 * h / rng)) + nugget
    s = h / (4.0 * rng / 7.0)
    return psill * (1.0 - math.exp(-s * s)) + nugget


@nb.njit(**_JIT)
def _lu(a, piv, m):
    """Factor ``a[:m, :m]`` in place (partial pivoting); False when numerically singular."""
    scale = 0.0
    for i in range(m):
        for j in range(m):
            v = abs(a[i, j])
            if v > scale:
                scale = v
    tol = _PIVOT_TOL * scale
    for c in range(m):
        p = c
        big = abs(a[c, c])
        for r in range(c + 1, m):
            v = abs(a[r, c])
            if v > big:
                big = v
                p = r
        if big <= tol:
            return False
        piv[c] = p
        if p != c:
            for j in range(m):
                t = a[c, j]
                a[c, j] = a[p, j]
                a[p, j] = t
        inv = 1.0 / a[c, c]
        for r in range(c + 1, m):
            f = a[r, c] * inv
            a[r, c] = f
            if f != 0.0:
                for j in range(c + 1, m):
                    a[r, j] -= f * a[c, j]
    return True


@nb.njit(**_JIT)
def _lu_solve(a, piv, m, b):
    """Solve with the factors of :func:`_lu`; ``b[:m]`` is overwritten by the solution."""
    for c in range(m):
        p = piv[c]
        if p != c:
            t = b[c]
            b[c] = b[p]
            b[p] = t
    for i in range(m):
        s = b[i]
        for j in range(i):
            s -= a[i, j] * b[j]
        b[i] = s
    for i in range(m - 1, -1, -1):
        s = b[i]
        for j in range(i + 1, m):
            s -= a[i, j] * b[j]
        b[i] = s / a[i, i]


@nb.njit(**_JIT)
def _factor(e, n, dmat, vmodel, vpar, lu, piv):
    """Build and factor element ``e``'s system from the neighbour distances ``dmat``."""
    model, psill, rng, nugget = vmodel[e], vpar[e, 0], vpar[e, 1], vpar[e, 2]
    ok = False
    for attempt in range(2):
        ridge = 0.0 if attempt == 0 else _RIDGE * (psill + nugget)
        for i in range(n):
            lu[e, i, i] = -ridge
            for j in range(i + 1, n):
                g = _gamma(model, psill, rng, nugget, dmat[i, j])
                lu[e, i, j] = g
                lu[e, j, i] = g
            lu[e, i, n] = 1.0
            lu[e, n, i] = 1.0
        lu[e, n, n] = 0.0
        ok = _lu(lu[e], piv[e], n + 1)
        if ok:
            break
    return ok


@nb.njit(**_JIT)
def _krige_tile(pts, vals, start, blo, bsize, bshape, origin, axes, lo, hi, k, radius,
                min_points, vmodel, vpar, state, nbr_i, nbr_d2, nbr_n, cache, tb):
    """Ordinary kriging of the cells of one tile into ``tb`` (values, then variances).

    ``cache`` carries the neighbour set and its factorisations from cell to cell:
    ``(sidx, dist, dmat, lu, piv, okf, prev_n)``.
    """
    ne = vals.shape[1]
    sidx, dist, dmat, lu, piv, okf, prev = cache
    knn_tile(pts, start, blo, bsize, bshape, origin, axes, lo, hi, k, radius, state,
             nbr_i, nbr_d2, nbr_n)
    ncells = (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2])
    b = np.empty(k + 1)
    for c in range(ncells):
        n = nbr_n[c]
        if n < min_points or n == 0:
            for e in range(ne):
                tb[e, c] = np.nan
                tb[ne + e, c] = np.nan
            continue
        if nbr_d2[c, 0] == 0.0:
            # on a sample (co-located samples were merged): exact, no uncertainty
            for e in range(ne):
                tb[e, c] = vals[nbr_i[c, 0], e]
                tb[ne + e, c] = 0.0
            continue
        # neighbours in sample order: the same set gives the same system
        same = n == prev[0]
        for j in range(n):
            i = nbr_i[c, j]
            d = math.sqrt(nbr_d2[c, j])
            pos = j
            while pos > 0 and sidx[pos - 1] > i:
                sidx[pos] = sidx[pos - 1]
                dist[pos] = dist[pos - 1]
                pos -= 1
            sidx[pos] = i
            dist[pos] = d
        if same:
            for j in range(n):
                if sidx[j] != prev[1 + j]:
                    same = False
                    break
        if not same:
            for i in range(n):
                dmat[i, i] = 0.0
                pi = sidx[i]
                for j in range(i + 1, n):
                    pj = sidx[j]
                    dx = pts[pi, 0] - pts[pj, 0]
                    dy = pts[pi, 1] - pts[pj, 1]
                    dz = pts[pi, 2] - pts[pj, 2]
                    d = math.sqrt(dx * dx + dy * dy + dz * dz)
                    dmat[i, j] = d
                    dmat[j, i] = d
            for e in range(ne):
                okf[e] = _factor(e, n, dmat, vmodel, vpar, lu, piv)
            prev[0] = n
            for j in range(n):
                prev[1 + j] = sidx[j]
        for e in range(ne):
            model, psill, rng, nugget = vmodel[e], vpar[e, 0], vpar[e, 1], vpar[e, 2]
            if not okf[e]:
                g0 = _gamma(model, psill, rng, nugget, math.sqrt(nbr_d2[c, 0]))
                tb[e, c] = vals[nbr_i[c, 0], e]
                tb[ne + e, c] = g0
                continue
            for j in range(n):
                b[j] = _gamma(model, psill, rng, nugget, dist[j])
            b[n] = 1.0
            rhs = b.copy()
            _lu_solve(lu[e], piv[e], n + 1, b)
            est = 0.0
            var = b[n]
            for j in range(n):
                est += b[j] * vals[sidx[j], e]
                var += b[j] * rhs[j]
            tb[e, c] = est
            tb[ne + e, c] = var if var > 0.0 else 0.0


@nb.njit(**_JIT)
def _new_cache(k, ne):
    """Scratch for :func:`_krige_tile`, one per thread."""
    k1 = k + 1
    prev = np.full(k + 1, -1, dtype=np.int64)
    return (np.empty(k, dtype=np.int64), np.empty(k), np.empty((k, k)),
            np.empty((ne, k1, k1)), np.zeros((ne, k1), dtype=np.int64),
            np.zeros(ne, dtype=np.bool_), prev)


def _ok_grid(pts, vals, start, blo, bsize, bshape, origin, axes, qshape, tile, k, radius,
             min_points, vmodel, vpar, eidx, out):
    """Ordinary kriging at every node of a regular (possibly rotated) query lattice.

    pts : (n, 3) bucket-sorted sample coordinates; vals : (n, ne) values, same order.
    start, blo, bsize, bshape : the bucket grid. origin : (3,) node (0, 0, 0); axes : (3, 3)
    step vectors; qshape, tile : (3,) lattice and tile sizes. k : neighbours; radius :
    search radius (inf: none); min_points : fewer neighbours give NaN. vmodel : (ne,)
    model codes; vpar : (ne, 3) psill, range, nugget. eidx : (ne,) output slot of each
    element's value (its variance goes to ``eidx + nout // 2``). out : (nout, *qshape).
    """
    ne = vals.shape[1]
    half = out.shape[0] // 2
    nz, ny, nx = qshape[0], qshape[1], qshape[2]
    tz, ty, tx = tile[0], tile[1], tile[2]
    ntz = (nz + tz - 1) // tz
    nty = (ny + ty - 1) // ty
    ntx = (nx + tx - 1) // tx
    ntile_cells = tz * ty * tx
    for row in nb.prange(ntz * nty):
        lo = np.empty(3, dtype=np.int64)
        hi = np.empty(3, dtype=np.int64)
        lo[0] = (row // nty) * tz
        lo[1] = (row % nty) * ty
        hi[0] = min(lo[0] + tz, nz)
        hi[1] = min(lo[1] + ty, ny)
        tb = np.empty((2 * ne, ntile_cells))
        nbr_i = np.empty((ntile_cells, k), dtype=np.int64)
        nbr_d2 = np.empty((ntile_cells, k))
        nbr_n = np.empty(ntile_cells, dtype=np.int64)
        state = new_state(bsize)
        cache = _new_cache(k, ne)
        for tcol in range(ntx):
            lo[2] = tcol * tx
            hi[2] = min(lo[2] + tx, nx)
            _krige_tile(pts, vals, start, blo, bsize, bshape, origin, axes, lo, hi, k, radius,
                        min_points, vmodel, vpar, state, nbr_i, nbr_d2, nbr_n, cache, tb)
            wy = hi[1] - lo[1]
            wx = hi[2] - lo[2]
            for e2 in range(2 * ne):
                oe = eidx[e2] if e2 < ne else eidx[e2 - ne] + half
                for iz in range(lo[0], hi[0]):
                    for iy in range(lo[1], hi[1]):
                        base_c = ((iz - lo[0]) * wy + (iy - lo[1])) * wx - lo[2]
                        for ix in range(lo[2], hi[2]):
                            out[oe, iz, iy, ix] = tb[e2, base_c + ix]


def _ok_points(pts, vals, start, blo, bsize, bshape, queries, k, radius, min_points, vmodel,
               vpar, eidx, out):
    """Ordinary kriging at arbitrary (m, 3) points; out : (nout, m)."""
    ne = vals.shape[1]
    half = out.shape[0] // 2
    axes = np.zeros((3, 3))
    for q in nb.prange(queries.shape[0]):
        lo = np.zeros(3, dtype=np.int64)
        hi = np.ones(3, dtype=np.int64)
        tb = np.empty((2 * ne, 1))
        nbr_i = np.empty((1, k), dtype=np.int64)
        nbr_d2 = np.empty((1, k))
        nbr_n = np.empty(1, dtype=np.int64)
        origin = queries[q].copy()
        _krige_tile(pts, vals, start, blo, bsize, bshape, origin, axes, lo, hi, k, radius,
                    min_points, vmodel, vpar, new_state(bsize), nbr_i, nbr_d2, nbr_n,
                    _new_cache(k, ne), tb)
        for e in range(ne):
            out[eidx[e], q] = tb[e, 0]
            out[eidx[e] + half, q] = tb[ne + e, 0]


ok_grid_serial = nb.njit(**_JIT)(_ok_grid)
ok_grid_parallel = nb.njit(parallel=True, **_JIT)(_ok_grid)
ok_points_serial = nb.njit(**_JIT)(_ok_points)
ok_points_parallel = nb.njit(parallel=True, **_JIT)(_ok_points)
