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

import numba as nb
import numpy as np

from xprospect.grid._neighbours import knn_tile, new_state

__all__ = ["ok_grid_parallel", "ok_grid_serial", "ok_points_parallel", "ok_points_serial"]

# nogil: dask threads run chunks side by side; cache: compile once per environment
_jit = nb.njit(nogil=True, cache=True, error_model="numpy")
_jit_parallel = nb.njit(nogil=True, cache=True, error_model="numpy", parallel=True)
# the small dense solves may reassociate and fuse (no change to NaN or inf handling)
_FAST = {"reassoc", "contract", "arcp"}
_jit_fast = nb.njit(nogil=True, cache=True, error_model="numpy", fastmath=_FAST)
_PIVOT_TOL = 1e-12
_HASH_MUL = 2654435761
_RIDGE = 1e-10


@nb.njit(nogil=True, cache=True, error_model="numpy", inline="always")
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
def _krige_tile(
    pts,
    vals,
    start,
    blo,
    bsize,
    bshape,
    origin,
    axes,
    lo,
    hi,
    k,
    radius,
    min_points,
    vmodel,
    vpar,
    state,
    nbr_i,
    nbr_d2,
    nbr_n,
    cache,
    tb,
):
    """Ordinary kriging of the cells of one tile into ``tb`` (values, then variances).

    ``cache`` carries the neighbour set and its factorisations from cell to cell:
    see :func:`_new_cache`.
    """
    ne = vals.shape[1]
    sidx, dist, dmat, chol, u, okf, sets, hashes, nxt = cache
    nslots = hashes.shape[0]
    knn_tile(
        pts, start, blo, bsize, bshape, origin, axes, lo, hi, k, radius, state, nbr_i, nbr_d2, nbr_n
    )
    ncells = (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2])
    b = np.empty(k)
    cvec = np.empty(k)
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
                tb[e, c] = vals[nbr_i[c, 0], e]
                tb[ne + e, c] = g0
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
            tb[e, c] = est
            tb[ne + e, c] = var if var > 0.0 else 0.0


@_jit
def _new_cache(k, ne, nslots):
    """Scratch for :func:`_krige_tile`, one per task.

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


def _ok_grid(
    pts,
    vals,
    start,
    blo,
    bsize,
    bshape,
    origin,
    axes,
    qshape,
    tile,
    nseg,
    k,
    radius,
    min_points,
    vmodel,
    vpar,
    eidx,
    out,
):
    """Ordinary kriging at every node of a regular (possibly rotated) query lattice.

    pts : (n, 3) bucket-sorted sample coordinates; vals : (n, ne) values, same order.
    start, blo, bsize, bshape : the bucket grid. origin : (3,) node (0, 0, 0); axes : (3, 3)
    step vectors; qshape, tile : (3,) lattice and tile sizes; nseg : tasks per row of tiles.
    k : neighbours; radius : search radius (inf: none); min_points : fewer neighbours give
    NaN. vmodel : (ne,) model codes; vpar : (ne, 3) psill, range, nugget. eidx : (ne,)
    output slot of each element's value (its variance goes to ``eidx + nout // 2``).
    out : (nout, *qshape).
    """
    ne = vals.shape[1]
    half = out.shape[0] // 2
    nz, ny, nx = qshape[0], qshape[1], qshape[2]
    tz, ty, tx = tile[0], tile[1], tile[2]
    ntz = (nz + tz - 1) // tz
    nty = (ny + ty - 1) // ty
    ntx = (nx + tx - 1) // tx
    ntile_cells = tz * ty * tx
    for item in nb.prange(ntz * nty * nseg):
        row = item // nseg
        seg = item % nseg
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
        cache = _new_cache(k, ne, min(2 * tx + 2, 64))
        for tcol in range(seg * ntx // nseg, (seg + 1) * ntx // nseg):
            lo[2] = tcol * tx
            hi[2] = min(lo[2] + tx, nx)
            _krige_tile(
                pts,
                vals,
                start,
                blo,
                bsize,
                bshape,
                origin,
                axes,
                lo,
                hi,
                k,
                radius,
                min_points,
                vmodel,
                vpar,
                state,
                nbr_i,
                nbr_d2,
                nbr_n,
                cache,
                tb,
            )
            wy = hi[1] - lo[1]
            wx = hi[2] - lo[2]
            for e2 in range(2 * ne):
                oe = eidx[e2] if e2 < ne else eidx[e2 - ne] + half
                for iz in range(lo[0], hi[0]):
                    for iy in range(lo[1], hi[1]):
                        base_c = ((iz - lo[0]) * wy + (iy - lo[1])) * wx - lo[2]
                        for ix in range(lo[2], hi[2]):
                            out[oe, iz, iy, ix] = tb[e2, base_c + ix]


def _ok_points(
    pts, vals, start, blo, bsize, bshape, queries, k, radius, min_points, vmodel, vpar, eidx, out
):
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
        _krige_tile(
            pts,
            vals,
            start,
            blo,
            bsize,
            bshape,
            origin,
            axes,
            lo,
            hi,
            k,
            radius,
            min_points,
            vmodel,
            vpar,
            new_state(bsize),
            nbr_i,
            nbr_d2,
            nbr_n,
            _new_cache(k, ne, 1),
            tb,
        )
        for e in range(ne):
            out[eidx[e], q] = tb[e, 0]
            out[eidx[e] + half, q] = tb[ne + e, 0]


ok_grid_serial = _jit(_ok_grid)
ok_grid_parallel = _jit_parallel(_ok_grid)
ok_points_serial = _jit(_ok_points)
ok_points_parallel = _jit_parallel(_ok_points)
