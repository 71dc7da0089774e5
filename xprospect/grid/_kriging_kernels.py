"""Numba kernels for ordinary kriging in a local neighbourhood on lattices and points.

numpy arrays in, a preallocated ``out`` written in place; no xarray, no dask. The
neighbours come from :mod:`xprospect.grid._neighbours`. For each cell and element the
(n + 1) x (n + 1) ordinary kriging system in variogram form::

    [ G  1 ] [ w  ]   [ g ]        G[i, j] = gamma(|p_i - p_j|), g[i] = gamma(|p_i - q|)
    [ 1' 0 ] [ mu ] = [ 1 ]

is solved in its equivalent covariance form: with ``C = sill - G`` (``sill = psill +
nugget``, ``C[i, i] = sill`` since ``gamma(0) = 0``) and ``c = sill - g``, ``C`` is
symmetric positive definite, so one Cholesky factorisation gives ``a = C^-1 c`` and
``u = C^-1 1``; then ``kappa = (1 - 1'a) / 1'u``, ``w = a + kappa u``, the estimate is
``w . v`` and the kriging variance ``w . g + mu = sill - w . c + kappa``. Neighbouring
cells mostly share their neighbour set, so the factorisation (and ``u``) is kept and
reused while the set does not change: a cell then costs two triangular solves. A cell
on a sample takes its value with variance 0. A numerically singular system (a pivot
below ``1e-12`` of the sill, e.g. a Gaussian model with near-coincident samples) is
retried with a relative ridge of ``1e-10`` on the diagonal; should that fail too, the
cell takes its nearest sample's value with variance ``gamma(d)``, so a singular system
never leaves NaN.

Variogram models by code: 0 spherical, 1 exponential, 2 Gaussian (see
:mod:`xprospect.grid.variogram`); ``vpar[e] = (psill, range, nugget)``.
"""

from __future__ import annotations

import math

import numpy as np

from xprospect.grid._jit import jit
from xprospect.grid._neighbours import knn_tile, new_task, put_tile, tile_at

__all__ = ["ok_task"]

_jit = jit()
# the small dense solves may reassociate and fuse (no change to NaN or inf handling)
_jit_fast = jit(fastmath={"reassoc", "contract", "arcp"})
_PIVOT_TOL = 1e-12
_HASH_MUL = 2654435761
_RIDGE = 1e-10


@jit(inline="always")
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


@_jit_fast
def _cholesky(c, n, tol):
    """Factor ``c[:n, :n] = L L'`` in place (lower triangle); False when not definite."""
    for j in range(n):
        d = c[j, j]
        for t in range(j):
            d -= c[j, t] * c[j, t]
        if d <= tol:
            return False
        d = math.sqrt(d)
        c[j, j] = d
        inv = 1.0 / d
        for i in range(j + 1, n):
            v = c[i, j]
            for t in range(j):
                v -= c[i, t] * c[j, t]
            c[i, j] = v * inv
    return True


@_jit_fast
def _chol_solve(c, n, b):
    """Solve ``L L' x = b`` with the factor of :func:`_cholesky`; ``b[:n]`` becomes ``x``."""
    for i in range(n):
        v = b[i]
        for t in range(i):
            v -= c[i, t] * b[t]
        b[i] = v / c[i, i]
    for i in range(n - 1, -1, -1):
        v = b[i]
        for t in range(i + 1, n):
            v -= c[t, i] * b[t]
        b[i] = v / c[i, i]


@_jit_fast
def _factor(e, n, dmat, vmodel, vpar, chol, u):
    """Build and factor element ``e``'s covariance matrix; ``u[e] = C^-1 1``."""
    model, psill, rng, nugget = vmodel[e], vpar[e, 0], vpar[e, 1], vpar[e, 2]
    sill = psill + nugget
    tol = _PIVOT_TOL * sill
    for attempt in range(2):
        ridge = 0.0 if attempt == 0 else _RIDGE * sill
        ce = chol[e]
        for i in range(n):
            ce[i, i] = sill + ridge
            for j in range(i + 1, n):
                ce[j, i] = sill - _gamma(model, psill, rng, nugget, dmat[i, j])
        if _cholesky(ce, n, tol):
            for i in range(n):
                u[e, i] = 1.0
            _chol_solve(ce, n, u[e])
            usum = 0.0
            for i in range(n):
                usum += u[e, i]
            if usum > 0.0:
                u[e, n] = usum
                return True
    return False


@_jit
def _krige_cells(pts, vals, nbr, ncells, min_points, vmodel, vpar, cache, tb):
    """Ordinary kriging of the cells of one tile into ``tb`` (values, then variances).

    ``nbr`` holds each cell's neighbours (see ``knn_tile``); ``cache`` carries the
    neighbour set and its factorisations from cell to cell: see :func:`_new_cache`.
    """
    nbr_i, nbr_d2, nbr_n = nbr
    ne = vals.shape[1]
    sidx, dist, dmat, chol, u, okf, sets, hashes, nxt = cache
    nslots = hashes.shape[0]
    k = nbr_i.shape[1]
    b = np.empty(k)
    cvec = np.empty(k)
    for c in range(ncells):
        n = nbr_n[c]
        if n < min_points or n == 0:
            for e in range(ne):
                tb[c, e] = np.nan
                tb[c, ne + e] = np.nan
            continue
        if nbr_d2[c, 0] == 0.0:
            # on a sample (co-located samples were merged): exact, no uncertainty
            for e in range(ne):
                tb[c, e] = vals[nbr_i[c, 0], e]
                tb[c, ne + e] = 0.0
            continue
        # neighbours in sample order: the same set gives the same system
        h = n
        for j in range(n):
            i = nbr_i[c, j]
            h += (i + 1) * _HASH_MUL
            d = math.sqrt(nbr_d2[c, j])
            pos = j
            while pos > 0 and sidx[pos - 1] > i:
                sidx[pos] = sidx[pos - 1]
                dist[pos] = dist[pos - 1]
                pos -= 1
            sidx[pos] = i
            dist[pos] = d
        slot = -1
        for sl in range(nslots):
            if hashes[sl] != h or sets[sl, 0] != n:
                continue
            hit = True
            for j in range(n):
                if sets[sl, 1 + j] != sidx[j]:
                    hit = False
                    break
            if hit:
                slot = sl
                break
        if slot < 0:
            slot = nxt[0]
            nxt[0] = (slot + 1) % nslots
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
                okf[slot, e] = _factor(e, n, dmat, vmodel, vpar, chol[slot], u[slot])
            hashes[slot] = h
            sets[slot, 0] = n
            for j in range(n):
                sets[slot, 1 + j] = sidx[j]
        chol_s = chol[slot]
        u_s = u[slot]
        for e in range(ne):
            model, psill, rng, nugget = vmodel[e], vpar[e, 0], vpar[e, 1], vpar[e, 2]
            if not okf[slot, e]:
                g0 = _gamma(model, psill, rng, nugget, math.sqrt(nbr_d2[c, 0]))
                tb[c, e] = vals[nbr_i[c, 0], e]
                tb[c, ne + e] = g0
                continue
            sill = psill + nugget
            for j in range(n):
                cj = sill - _gamma(model, psill, rng, nugget, dist[j])
                cvec[j] = cj
                b[j] = cj
            _chol_solve(chol_s[e], n, b)
            asum = 0.0
            for j in range(n):
                asum += b[j]
            kappa = (1.0 - asum) / u_s[e, n]
            est = 0.0
            wc = 0.0
            for j in range(n):
                w = b[j] + kappa * u_s[e, j]
                est += w * vals[sidx[j], e]
                wc += w * cvec[j]
            var = sill - wc + kappa
            tb[c, e] = est
            tb[c, ne + e] = var if var > 0.0 else 0.0


@_jit
def _new_cache(k, ne, nslots):
    """Scratch for :func:`_krige_cells`, one per task.

    The sorted neighbour rows of a cell and their distances to it, their distance
    matrix, then ``nslots`` recently used neighbour sets, each with per element the
    Cholesky factor, ``u = C^-1 1`` (its sum in slot ``k``) and whether the
    factorisation succeeded; the sets (count first), a hash of each, and the next slot
    to replace. Cells of the next row of a tile often share the set of a cell above, so
    a few tile widths of slots avoid most refactorisations.
    """
    return (
        np.empty(k, dtype=np.int64),
        np.empty(k),
        np.empty((k, k)),
        np.empty((nslots, ne, k, k)),
        np.empty((nslots, ne, k + 1)),
        np.zeros((nslots, ne), dtype=np.bool_),
        np.full((nslots, k + 1), -1, dtype=np.int64),
        np.full(nslots, -1, dtype=np.int64),
        np.zeros(1, dtype=np.int64),
    )


@_jit
def ok_task(t0, t1, bk, vals, rows, lattice, params, outs):
    """Ordinary kriging over tiles ``t0 <= t < t1`` of a lattice (or query points).

    bk : ``(pts, start, blo, bsize, bshape)``, the bucket-sorted samples; vals : (n, ne)
    their values, same order; rows : (2 ne,) the slot in ``out`` of each element's value,
    then of its variance; lattice : ``(origin, axes, queries, qshape, tile)`` (see
    ``tile_at``); params : ``(k, radius, min_points, vmodel, vpar)``: k neighbours, the
    search radius (inf: none), the fewest neighbours for a value (fewer give NaN), the
    model codes (ne,) and their (psill, range, nugget) (ne, 3). outs : ``(out32, out64)``,
    one of them empty, the other (nout, *qshape) written (see ``put_tile``).
    """
    k, radius, min_points, vmodel, vpar = params
    ne = vals.shape[1]
    axes = lattice[1]
    lo, hi, state, work, nbr, tb = new_task(bk[3], lattice[4], k, 2 * ne)
    cache = _new_cache(k, ne, min(2 * lattice[4][2] + 2, 64))
    for t in range(t0, t1):
        origin = tile_at(t, lattice, lo, hi)
        work = knn_tile(bk, origin, axes, lo, hi, k, radius, state, work, nbr)
        ncells = (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2])
        _krige_cells(bk[0], vals, nbr, ncells, min_points, vmodel, vpar, cache, tb)
        put_tile(tb, lo, hi, rows, outs)
