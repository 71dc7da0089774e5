"""Numba kernels for inverse-distance weighting on regular grids and voxels.

numpy arrays in, a preallocated ``out`` written in place; no xarray, no dask.

The neighbour search exploits the grid: cells are processed in small tiles, and
one candidate list (the samples in the bucket cells around the tile) serves every
cell of the tile. Each cell's k nearest candidates are proven to be its k nearest
samples overall by a margin test (no sample outside the gathered box can be closer
than the box's edge); cells that fail the test are redone with a wider box.
Everything is in float64, in coordinates already translated, rotated and scaled
for anisotropy, so the kernel itself is isotropic. Coordinate columns are ordered
(z, y, x) like the grid dims; a 2-D problem has a constant first column, so the
contiguous bucket runs lie along x. (Inside the kernel ``qx, qy, qz`` and ``cx, cy, cz``
simply name coordinate columns 0, 1, 2.)
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["bucket_points", "idw_grid_parallel", "idw_grid_serial"]

_INF = np.inf


def bucket_points(points: np.ndarray, per_bucket: float = 2.0):
    """Sort points into a uniform bucket grid (compressed-row layout).

    Parameters
    ----------
    points : (n, 3) float64
        Point coordinates (a 2-D problem has a constant third column).
    per_bucket : float
        Target mean number of points per bucket over the points' bounding box.

    Returns
    -------
    order : (n,) int64
        Permutation that sorts points by bucket.
    start : (nbuckets + 1,) int64
        ``order[start[b]:start[b + 1]]`` are the points in bucket ``b``.
    lo : (3,) float64
        Lower corner of bucket (0, 0, 0).
    size : float
        Bucket edge length (the same along every axis).
    shape : (3,) int64
        Number of buckets along each axis.
    """
    n = points.shape[0]
    lo = points.min(axis=0)
    hi = points.max(axis=0)
    ext = hi - lo
    active = ext > 0
    nact = int(active.sum())
    if nact == 0:
        size = 1.0
    else:
        vol = float(np.prod(ext[active]))
        nb_target = max(n / per_bucket, 1.0)
        size = (vol / nb_target) ** (1.0 / nact)
        # a very flat point cloud must not get absurd bucket counts along its long axes
        size = max(size, float(ext[active].max()) / 4096.0)
    shape = np.where(active, np.floor(ext / size).astype(np.int64) + 1, 1).astype(np.int64)
    idx = np.minimum(((points - lo) / size).astype(np.int64), shape - 1)
    lin = (idx[:, 0] * shape[1] + idx[:, 1]) * shape[2] + idx[:, 2]
    order = np.argsort(lin, kind="stable").astype(np.int64)
    counts = np.bincount(lin, minlength=int(np.prod(shape)))
    start = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    return order, start, lo.astype(np.float64), float(size), shape


def _idw_grid(pts, vals, start, blo, bsize, bshape, origin, axes, qshape, tile,
              k, power, radius, min_points, eidx, out):
    """IDW of ``vals`` at every node of a regular (possibly rotated) query lattice.

    pts : (n, 3) sample coordinates, sorted by bucket; vals : (n, ne) values, same order.
    start, blo, bsize, bshape : the bucket grid (see ``bucket_points``).
    origin : (3,) coordinates of query node (0, 0, 0); axes : (3, 3), ``axes[a]`` is the
    step vector of lattice axis ``a``; qshape : (3,) lattice size; tile : (3,) tile size.
    k : neighbours (k <= 0: every sample within ``radius``); power : IDW power;
    radius : search radius (inf: none); min_points : fewer neighbours give NaN.
    eidx : (ne,) index of each value column in ``out``'s first axis.
    out : (nout, qshape[0], qshape[1], qshape[2]) written in place.
    """
    ne = vals.shape[1]
    nz, ny, nx = qshape[0], qshape[1], qshape[2]
    tz, ty, tx = tile[0], tile[1], tile[2]
    ntz = (nz + tz - 1) // tz
    nty = (ny + ty - 1) // ty
    ntx = (nx + tx - 1) // tx
    r2 = radius * radius
    half_p = 0.5 * power
    p_is_2 = power == 2.0
    unlimited = k <= 0
    kk = 1 if unlimited else k
    ntile_cells = tz * ty * tx
    for row in nb.prange(ntz * nty):
        iz0 = (row // nty) * tz
        iy0 = (row % nty) * ty
        iz1 = min(iz0 + tz, nz)
        iy1 = min(iy0 + ty, ny)
        cap = 256
        cx = np.empty(cap)
        cy = np.empty(cap)
        cz = np.empty(cap)
        ci = np.empty(cap, dtype=np.int64)
        cd = np.empty(cap)
        sx = np.empty(cap)
        sy = np.empty(cap)
        sz = np.empty(cap)
        sd = np.empty(cap)
        si = np.empty(cap, dtype=np.int64)
        dd = np.empty(cap)
        tb = np.empty((ne, ntile_cells))
        # the last cell whose k nearest were verified: its k-th distance bounds the next
        # cell's (d_k(q) <= d_k(p) + |q - p|)
        have_prev = False
        px = 0.0
        py = 0.0
        pz = 0.0
        prev_dk = 0.0
        kd = np.empty(kk)
        ki = np.empty(kk, dtype=np.int64)
        acc = np.empty(ne)
        zacc = np.empty(ne)
        done = np.empty(ntile_cells, dtype=np.bool_)
        qlo = np.empty(3)
        qhi = np.empty(3)
        rlo = np.empty(3)
        rhi = np.empty(3)
        blim = np.empty((3, 2), dtype=np.int64)
        m_guess = bsize
        for tcol in range(ntx):
            ix0 = tcol * tx
            ix1 = min(ix0 + tx, nx)
            # bounding box of the tile's query nodes (a linear image of an index box)
            for a in range(3):
                lo_a = origin[a]
                hi_a = origin[a]
                for c_ax, i0, i1 in ((0, iz0, iz1 - 1), (1, iy0, iy1 - 1), (2, ix0, ix1 - 1)):
                    s0 = axes[c_ax, a] * i0
                    s1 = axes[c_ax, a] * i1
                    lo_a += min(s0, s1)
                    hi_a += max(s0, s1)
                qlo[a] = lo_a
                qhi[a] = hi_a
            for c in range(ntile_cells):
                done[c] = False
            m = radius if unlimited else min(m_guess, radius)
            remaining = (iz1 - iz0) * (iy1 - iy0) * (ix1 - ix0)
            max_need = 0.0
            while remaining > 0:
                # gather the candidates in the bucket cells covering the box widened by m
                complete = True
                for a in range(3):
                    # clamp both ends into the bucket grid (a tile may lie wholly beyond
                    # one side of it); done in float first so a huge m cannot overflow
                    f0 = math.floor((qlo[a] - m - blo[a]) / bsize)
                    f1 = math.floor((qhi[a] + m - blo[a]) / bsize)
                    top = bshape[a] - 1
                    b0 = int(min(max(f0, 0.0), float(top)))
                    b1 = int(min(max(f1, 0.0), float(top)))
                    if b0 <= 0:
                        b0 = 0
                        rlo[a] = -_INF
                    else:
                        rlo[a] = blo[a] + b0 * bsize
                        complete = False
                    if b1 >= top:
                        rhi[a] = _INF
                    else:
                        rhi[a] = blo[a] + (b1 + 1) * bsize
                        complete = False
                    blim[a, 0] = b0
                    blim[a, 1] = b1
                nc = 0
                for bz in range(blim[0, 0], blim[0, 1] + 1):
                    for by in range(blim[1, 0], blim[1, 1] + 1):
                        base = (bz * bshape[1] + by) * bshape[2]
                        s = start[base + blim[2, 0]]
                        e = start[base + blim[2, 1] + 1]
                        cnt = e - s
                        if nc + cnt > cap:
                            newcap = max(2 * cap, nc + cnt)
                            ncx = np.empty(newcap)
                            ncy = np.empty(newcap)
                            ncz = np.empty(newcap)
                            nci = np.empty(newcap, dtype=np.int64)
                            # element-wise copies: slice assignment between arrays of
                            # different lengths trips parfor array analysis
                            for jj in range(nc):
                                ncx[jj] = cx[jj]
                                ncy[jj] = cy[jj]
                                ncz[jj] = cz[jj]
                                nci[jj] = ci[jj]
                            cx, cy, cz, ci, cap = ncx, ncy, ncz, nci, newcap
                            cd = np.empty(cap)
                            sx = np.empty(cap)
                            sy = np.empty(cap)
                            sz = np.empty(cap)
                            sd = np.empty(cap)
                            si = np.empty(cap, dtype=np.int64)
                            dd = np.empty(cap)
                        for j in range(s, e):
                            cx[nc] = pts[j, 0]
                            cy[nc] = pts[j, 1]
                            cz[nc] = pts[j, 2]
                            ci[nc] = j
                            nc += 1
                # candidates in order of distance from the tile's centre: a cell stops
                # scanning once the triangle inequality rules out every later candidate
                c0x = 0.5 * (qlo[0] + qhi[0])
                c0y = 0.5 * (qlo[1] + qhi[1])
                c0z = 0.5 * (qlo[2] + qhi[2])
                for j in range(nc):
                    dx = cx[j] - c0x
                    dy = cy[j] - c0y
                    dz = cz[j] - c0z
                    cd[j] = math.sqrt(dx * dx + dy * dy + dz * dz)
                srt = np.argsort(cd[:nc])
                for j in range(nc):
                    sj = srt[j]
                    sx[j] = cx[sj]
                    sy[j] = cy[sj]
                    sz[j] = cz[sj]
                    si[j] = ci[sj]
                    sd[j] = cd[sj]
                for iz in range(iz0, iz1):
                    for iy in range(iy0, iy1):
                        for ix in range(ix0, ix1):
                            c = ((iz - iz0) * ty + (iy - iy0)) * tx + (ix - ix0)
                            if done[c]:
                                continue
                            qx = origin[0] + iz * axes[0, 0] + iy * axes[1, 0] + ix * axes[2, 0]
                            qy = origin[1] + iz * axes[0, 1] + iy * axes[1, 1] + ix * axes[2, 1]
                            qz = origin[2] + iz * axes[0, 2] + iy * axes[1, 2] + ix * axes[2, 2]
                            # distance from the node to the edge of the gathered region
                            margin = min(qx - rlo[0], rhi[0] - qx, qy - rlo[1], rhi[1] - qy,
                                         qz - rlo[2], rhi[2] - qz)
                            if unlimited:
                                for e2 in range(ne):
                                    acc[e2] = 0.0
                                    zacc[e2] = 0.0
                                wsum = 0.0
                                cnt_n = 0
                                nzero = 0
                                for j in range(nc):
                                    dx = cx[j] - qx
                                    dy = cy[j] - qy
                                    dz = cz[j] - qz
                                    d2 = dx * dx + dy * dy + dz * dz
                                    if d2 > r2:
                                        continue
                                    cnt_n += 1
                                    row_j = ci[j]
                                    if d2 == 0.0:
                                        nzero += 1
                                        for e2 in range(ne):
                                            zacc[e2] += vals[row_j, e2]
                                    elif nzero == 0:
                                        w = 1.0 / d2 if p_is_2 else d2 ** (-half_p)
                                        wsum += w
                                        for e2 in range(ne):
                                            acc[e2] += w * vals[row_j, e2]
                                if cnt_n < min_points:
                                    for e2 in range(ne):
                                        tb[e2, c] = np.nan
                                elif nzero > 0:
                                    for e2 in range(ne):
                                        tb[e2, c] = zacc[e2] / nzero
                                else:
                                    for e2 in range(ne):
                                        tb[e2, c] = acc[e2] / wsum
                                done[c] = True
                                remaining -= 1
                                continue
                            # k nearest candidates within the radius, by insertion
                            dx = qx - c0x
                            dy = qy - c0y
                            dz = qz - c0z
                            dq0 = math.sqrt(dx * dx + dy * dy + dz * dz)
                            bound2 = r2
                            if have_prev:
                                dx = qx - px
                                dy = qy - py
                                dz = qz - pz
                                ub = (prev_dk + math.sqrt(dx * dx + dy * dy + dz * dz)) * (
                                    1.0 + 1e-9)
                                if ub * ub < bound2:
                                    bound2 = ub * ub
                            # only candidates with |s - c0| <= |q - c0| + bound can be in range
                            lim = nc
                            if bound2 < _INF:
                                lim = np.searchsorted(sd[:nc], dq0 + math.sqrt(bound2),
                                                      side="right")
                            for j in range(lim):  # a tight, vectorisable distance pass
                                dx = sx[j] - qx
                                dy = sy[j] - qy
                                dz = sz[j] - qz
                                dd[j] = dx * dx + dy * dy + dz * dz
                            nfound = 0
                            worst = bound2
                            for j in range(lim):
                                d2 = dd[j]
                                if d2 > worst or (d2 == worst and nfound == k):
                                    continue
                                pos = nfound if nfound < k else k - 1
                                while pos > 0 and kd[pos - 1] > d2:
                                    kd[pos] = kd[pos - 1]
                                    ki[pos] = ki[pos - 1]
                                    pos -= 1
                                kd[pos] = d2
                                ki[pos] = si[j]
                                if nfound < k:
                                    nfound += 1
                                if nfound == k:
                                    worst = kd[k - 1]
                            need = math.sqrt(kd[k - 1]) if nfound == k else radius
                            if need > radius:
                                need = radius
                            if margin < need and not complete:
                                continue  # a closer sample may lie outside: widen and retry
                            if need > max_need and need < _INF:
                                max_need = need
                            if nfound == k:
                                have_prev = True
                                px = qx
                                py = qy
                                pz = qz
                                prev_dk = math.sqrt(kd[k - 1])
                            done[c] = True
                            remaining -= 1
                            if nfound < min_points or nfound == 0:
                                for e2 in range(ne):
                                    tb[e2, c] = np.nan
                                continue
                            if kd[0] == 0.0:
                                nzero = 0
                                for e2 in range(ne):
                                    acc[e2] = 0.0
                                for j in range(nfound):
                                    if kd[j] != 0.0:
                                        break
                                    nzero += 1
                                    for e2 in range(ne):
                                        acc[e2] += vals[ki[j], e2]
                                for e2 in range(ne):
                                    tb[e2, c] = acc[e2] / nzero
                                continue
                            for e2 in range(ne):
                                acc[e2] = 0.0
                            wsum = 0.0
                            for j in range(nfound):
                                w = 1.0 / kd[j] if p_is_2 else kd[j] ** (-half_p)
                                wsum += w
                                row_j = ki[j]
                                for e2 in range(ne):
                                    acc[e2] += w * vals[row_j, e2]
                            inv = 1.0 / wsum
                            for e2 in range(ne):
                                tb[e2, c] = acc[e2] * inv
                if remaining > 0:
                    m = 2.0 * m if m > 0 else bsize
                    if m > radius:
                        m = radius
                        if unlimited:
                            break
            for e2 in range(ne):
                oe = eidx[e2]
                for iz in range(iz0, iz1):
                    for iy in range(iy0, iy1):
                        base_c = ((iz - iz0) * ty + (iy - iy0)) * tx - ix0
                        for ix in range(ix0, ix1):
                            out[oe, iz, iy, ix] = tb[e2, base_c + ix]
            if not unlimited and max_need > 0:
                m_guess = 1.25 * max_need


idw_grid_serial = nb.njit(nogil=True, cache=True, error_model="numpy")(_idw_grid)
idw_grid_parallel = nb.njit(nogil=True, cache=True, parallel=True, error_model="numpy")(_idw_grid)
