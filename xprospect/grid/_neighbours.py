"""Numba neighbour search over bucketed samples, shared by every gridder.

numpy arrays in, preallocated arrays written in place; no xarray, no dask.

Samples are sorted into a uniform bucket grid (:func:`bucket_points`). Queries come in
small tiles of a regular (possibly rotated and scaled) lattice: one candidate list, the
samples in the buckets around the tile, serves every cell of the tile, so a cell's
search costs a pass over a short list instead of a tree descent. Each cell's k nearest
candidates are proven to be its k nearest samples overall by a margin test (no sample
outside the gathered box can be closer than the box's edge); cells that fail the test
are redone with a wider box. The k-th distance of the previous cell bounds the next
one's (``d_k(q) <= d_k(p) + |q - p|``), which cuts the candidates scanned per cell.

Everything is in float64, in coordinates already translated, rotated and scaled for
anisotropy, so the search itself is isotropic. Coordinate columns are ordered (z, y, x)
like the grid dims; a 2-D problem has a constant first column, so the contiguous bucket
runs lie along x.

A gridder's kernel walks the lattice in tiles and calls :func:`knn_tile` (or
:func:`gather` for "every sample within a radius") per tile, then combines the
neighbours of each cell in its own way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba as nb
import numpy as np

__all__ = [
    "bounds",
    "bucket_points",
    "gather",
    "knn_tile",
    "new_state",
    "plan_tiles",
    "search_points",
    "tile_box",
]

_INF = np.inf
# nogil: dask threads run chunks side by side; cache: compile once per environment
_jit = nb.njit(nogil=True, cache=True, error_model="numpy")


@_jit
def search_points(xyz, ref, amat, plan):
    """Map world (x, y, z) rows into search space, as (z, y, x) columns.

    ``(xyz - ref) @ amat.T`` with the columns reversed; ``plan`` drops z first (a 2-D
    grid measures plan distances). Translating to a nearby ``ref`` first keeps the maths
    well conditioned.
    """
    n = xyz.shape[0]
    out = np.empty((n, 3))
    for i in range(n):
        dx = xyz[i, 0] - ref[0]
        dy = xyz[i, 1] - ref[1]
        dz = 0.0 if plan else xyz[i, 2] - ref[2]
        for a in range(3):
            out[i, 2 - a] = amat[a, 0] * dx + amat[a, 1] * dy + amat[a, 2] * dz
    return out


@_jit
def bounds(points):
    """Per-column minimum and maximum of an (n, 3) array in one pass (n >= 1)."""
    lo = points[0].copy()
    hi = points[0].copy()
    for i in range(1, points.shape[0]):
        for a in range(3):
            v = points[i, a]
            if v < lo[a]:
                lo[a] = v
            elif v > hi[a]:
                hi[a] = v
    return lo, hi


@_jit
def _counting_sort(points, values, lo, size, shape):
    """Stable sort of points (and their values) by bucket, in O(n)."""
    n = points.shape[0]
    nbk = shape[0] * shape[1] * shape[2]
    lin = np.empty(n, dtype=np.int64)
    start = np.zeros(nbk + 1, dtype=np.int64)
    for i in range(n):
        b = 0
        for a in range(3):
            ia = int((points[i, a] - lo[a]) / size)
            if ia > shape[a] - 1:
                ia = shape[a] - 1
            b = b * shape[a] + ia
        lin[i] = b
        start[b + 1] += 1
    for b in range(nbk):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    ps = np.empty_like(points)
    vs = np.empty_like(values)
    for i in range(n):
        j = fill[lin[i]]
        fill[lin[i]] += 1
        for a in range(3):
            ps[j, a] = points[i, a]
        for e in range(values.shape[1]):
            vs[j, e] = values[i, e]
    return ps, vs, start


def bucket_points(points: np.ndarray, values: np.ndarray, per_bucket: float = 2.0):
    """Sort points and their values into a uniform bucket grid (compressed-row layout).

    Parameters
    ----------
    points : (n, 3) float64
        Point coordinates (a 2-D problem has a constant column).
    values : (n, ne) float64
        Values carried along.
    per_bucket : float
        Target mean number of points per bucket over the points' bounding box.

    Returns
    -------
    points, values : arrays
        Sorted by bucket (stable).
    start : (nbuckets + 1,) int64
        ``points[start[b]:start[b + 1]]`` are the points in bucket ``b``.
    lo : (3,) float64
        Lower corner of bucket (0, 0, 0).
    size : float
        Bucket edge length (the same along every axis).
    shape : (3,) int64
        Number of buckets along each axis.
    """
    n = points.shape[0]
    lo, hi = bounds(points)
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
    ps, vs, start = _counting_sort(points, values, lo, float(size), shape)
    return ps, vs, start, lo.astype(np.float64), float(size), shape


def plan_tiles(
    points: np.ndarray, k: int, axes: np.ndarray, qshape: Sequence[int], ndim: int, parallel: bool
) -> tuple[np.ndarray, int]:
    """Choose the query tile and the work split for one lattice.

    A tile should be about as wide as the distance to a cell's k-th neighbour: much
    wider, and each cell scans candidates that cannot be its neighbours; much narrower,
    and the gathering and sorting of candidates is repeated for cells that share them.
    That distance is estimated from the mean sample density over the samples' bounding
    box (``d_k = (k / (density * unit ball))^(1 / d)``); a tile is about ``0.7 d_k``
    across in 2-D (4 to 16 cells: below 4 the per-tile overhead dominates) and
    ``0.4 d_k`` in 3-D (1 to 8 voxels, x twice as long, along memory). This keeps the
    tiles measured best on the benchmark cases (16 x 16 cells at 1024^2 and 3072^2,
    4 x 4 x 8 voxels at 128^3) and shrinks them where cells are coarse against the
    sample spacing (1e6 samples onto 512^2 and coarser).
    Threads take segments of tile rows, so a grid with few rows still keeps every
    thread busy (about four tasks per thread).

    Parameters
    ----------
    points : (n, 3) float64
        Samples in search space.
    k : int
        Neighbours per cell (<= 0: every sample within a radius; counted as 12).
    axes : (3, 3) float64
        Step vectors of the lattice axes (z, y, x) in search space.
    qshape : (3,) int
        Lattice size (z, y, x).
    ndim : int
        2 or 3 (a 2-D grid is a lattice with one z level).
    parallel : bool
        Whether the kernel runs on numba's threads.

    Returns
    -------
    tile : (3,) int64
        Tile size per lattice axis.
    nseg : int
        Segments per row of tiles.
    """
    if points.shape[0]:
        plo, phi = bounds(points)
        ext = phi - plo
    else:
        ext = np.zeros(3)
    active = ext[ext > 0]
    d = active.size
    kk = 12 if k <= 0 else k
    steps = np.sqrt((axes**2).sum(axis=1))
    step = float(steps[1:].mean() if ndim == 2 else steps.mean())
    if d == 0 or step <= 0:
        edge = 16.0
    else:
        unit = {1: 2.0, 2: math.pi, 3: 4.0 * math.pi / 3.0}[d]
        density = points.shape[0] / float(np.prod(active))
        dk = (kk / (density * unit)) ** (1.0 / d)
        edge = dk / step
    if ndim == 2:
        e = int(min(max(round(0.7 * edge), 4), 16))
        tile = np.array([1, e, e], dtype=np.int64)
    else:
        e = int(min(max(round(0.4 * edge), 1), 8))
        tile = np.array([e, e, 2 * e], dtype=np.int64)
    tile = np.minimum(tile, np.maximum(np.asarray(qshape, dtype=np.int64), 1))
    rows = -(-qshape[0] // tile[0]) * -(-qshape[1] // tile[1])
    ntx = -(-qshape[2] // tile[2])
    nseg = 1
    if parallel:
        nseg = int(min(ntx, max(1, -(-4 * nb.get_num_threads() // rows))))
    return tile, nseg


@_jit
def new_state(bsize):
    """Search state carried from tile to tile along a row of tiles.

    ``[m_guess, have_prev, px, py, pz, prev_dk]``: the box widening that sufficed last
    time, and the last verified cell with its k-th neighbour distance.
    """
    st = np.zeros(6)
    st[0] = bsize
    return st


@_jit
def tile_box(origin, axes, lo, hi, qlo, qhi):
    """Bounding box ``[qlo, qhi]`` of the lattice nodes ``lo <= index < hi`` (in place)."""
    for a in range(3):
        lo_a = origin[a]
        hi_a = origin[a]
        for c_ax in range(3):
            s0 = axes[c_ax, a] * lo[c_ax]
            s1 = axes[c_ax, a] * (hi[c_ax] - 1)
            lo_a += min(s0, s1)
            hi_a += max(s0, s1)
        qlo[a] = lo_a
        qhi[a] = hi_a


@_jit
def gather(pts, start, blo, bsize, bshape, qlo, qhi, m, rlo, rhi, cx, cy, cz, ci):
    """Collect the samples of every bucket meeting the box ``[qlo - m, qhi + m]``.

    Parameters
    ----------
    pts, start, blo, bsize, bshape
        Bucket-sorted sample coordinates and the bucket grid (see :func:`bucket_points`).
    qlo, qhi : (3,) float64
        The query box.
    m : float
        How far to widen it.
    rlo, rhi : (3,) float64
        Written: the box actually covered (infinite on a side where the bucket grid
        ends, since no sample lies beyond it).
    cx, cy, cz, ci : arrays
        Candidate buffers (coordinates and row in ``pts``); replaced when too small.

    Returns
    -------
    nc : int
        Number of candidates.
    complete : bool
        Whether the covered box holds every sample.
    cx, cy, cz, ci : arrays
        The (possibly grown) buffers holding the candidates in their first ``nc`` slots.
    """
    complete = True
    blim = np.empty((3, 2), dtype=np.int64)
    for a in range(3):
        # clamp both ends into the bucket grid (a tile may lie wholly beyond one side of
        # it); done in float first so a huge m cannot overflow
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
    cap = cx.shape[0]
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
                for jj in range(nc):
                    ncx[jj] = cx[jj]
                    ncy[jj] = cy[jj]
                    ncz[jj] = cz[jj]
                    nci[jj] = ci[jj]
                cx, cy, cz, ci, cap = ncx, ncy, ncz, nci, newcap
            for j in range(s, e):
                cx[nc] = pts[j, 0]
                cy[nc] = pts[j, 1]
                cz[nc] = pts[j, 2]
                ci[nc] = j
                nc += 1
    return nc, complete, cx, cy, cz, ci


@_jit
def knn_tile(
    pts, start, blo, bsize, bshape, origin, axes, lo, hi, k, radius, state, nbr_i, nbr_d2, nbr_n
):
    """Find the ``k`` nearest samples within ``radius`` of every lattice node of one tile.

    Parameters
    ----------
    pts, start, blo, bsize, bshape
        Bucket-sorted sample coordinates and the bucket grid (see :func:`bucket_points`).
    origin : (3,) float64
        Coordinates of lattice node (0, 0, 0).
    axes : (3, 3) float64
        ``axes[a]`` is the step vector of lattice axis ``a``.
    lo, hi : (3,) int64
        The tile: nodes with ``lo <= index < hi`` along each lattice axis.
    k : int
        Number of neighbours (>= 1).
    radius : float
        Search radius (inf: none).
    state : (6,) float64
        Carried between the tiles of one row (see :func:`new_state`); updated.
    nbr_i, nbr_d2 : (ncells, k) arrays
        Written: for tile cell ``c`` (C order over the tile), the rows in ``pts`` of its
        neighbours and their squared distances, nearest first, in the first
        ``nbr_n[c]`` slots.
    nbr_n : (ncells,) int64
        Written: the number of neighbours found (< k only where the radius cuts).
    """
    ty = hi[1] - lo[1]
    tx = hi[2] - lo[2]
    ncells = (hi[0] - lo[0]) * ty * tx
    r2 = radius * radius
    qlo = np.empty(3)
    qhi = np.empty(3)
    rlo = np.empty(3)
    rhi = np.empty(3)
    tile_box(origin, axes, lo, hi, qlo, qhi)
    done = np.zeros(ncells, dtype=np.bool_)
    kd = np.empty(k)
    ki = np.empty(k, dtype=np.int64)
    cap = 256
    cx = np.empty(cap)
    cy = np.empty(cap)
    cz = np.empty(cap)
    ci = np.empty(cap, dtype=np.int64)
    m = min(state[0], radius)
    remaining = ncells
    max_need = 0.0
    c0x = 0.5 * (qlo[0] + qhi[0])
    c0y = 0.5 * (qlo[1] + qhi[1])
    c0z = 0.5 * (qlo[2] + qhi[2])
    while remaining > 0:
        nc, complete, cx, cy, cz, ci = gather(
            pts, start, blo, bsize, bshape, qlo, qhi, m, rlo, rhi, cx, cy, cz, ci
        )
        # candidates in order of distance from the tile's centre: a cell stops scanning
        # once the triangle inequality rules out every later candidate
        cd = np.empty(nc)
        for j in range(nc):
            dx = cx[j] - c0x
            dy = cy[j] - c0y
            dz = cz[j] - c0z
            cd[j] = math.sqrt(dx * dx + dy * dy + dz * dz)
        srt = np.argsort(cd)
        sx = np.empty(nc)
        sy = np.empty(nc)
        sz = np.empty(nc)
        sd = np.empty(nc)
        si = np.empty(nc, dtype=np.int64)
        dd = np.empty(nc)
        for j in range(nc):
            sj = srt[j]
            sx[j] = cx[sj]
            sy[j] = cy[sj]
            sz[j] = cz[sj]
            si[j] = ci[sj]
            sd[j] = cd[sj]
        for iz in range(lo[0], hi[0]):
            for iy in range(lo[1], hi[1]):
                for ix in range(lo[2], hi[2]):
                    c = ((iz - lo[0]) * ty + (iy - lo[1])) * tx + (ix - lo[2])
                    if done[c]:
                        continue
                    qx = origin[0] + iz * axes[0, 0] + iy * axes[1, 0] + ix * axes[2, 0]
                    qy = origin[1] + iz * axes[0, 1] + iy * axes[1, 1] + ix * axes[2, 1]
                    qz = origin[2] + iz * axes[0, 2] + iy * axes[1, 2] + ix * axes[2, 2]
                    # distance from the node to the edge of the gathered region
                    margin = min(
                        qx - rlo[0], rhi[0] - qx, qy - rlo[1], rhi[1] - qy, qz - rlo[2], rhi[2] - qz
                    )
                    dx = qx - c0x
                    dy = qy - c0y
                    dz = qz - c0z
                    dq0 = math.sqrt(dx * dx + dy * dy + dz * dz)
                    bound2 = r2
                    if state[1] > 0.0:
                        dx = qx - state[2]
                        dy = qy - state[3]
                        dz = qz - state[4]
                        ub = (state[5] + math.sqrt(dx * dx + dy * dy + dz * dz)) * (1.0 + 1e-9)
                        if ub * ub < bound2:
                            bound2 = ub * ub
                    # only candidates with |s - c0| <= |q - c0| + bound can be in range
                    lim = nc
                    if bound2 < _INF:
                        lim = np.searchsorted(sd, dq0 + math.sqrt(bound2), side="right")
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
                        state[1] = 1.0
                        state[2] = qx
                        state[3] = qy
                        state[4] = qz
                        state[5] = math.sqrt(kd[k - 1])
                    done[c] = True
                    remaining -= 1
                    nbr_n[c] = nfound
                    for j in range(nfound):
                        nbr_i[c, j] = ki[j]
                        nbr_d2[c, j] = kd[j]
        if remaining > 0:
            m = 2.0 * m if m > 0 else bsize
            if m > radius:
                m = radius
    if max_need > 0:
        state[0] = 1.25 * max_need
