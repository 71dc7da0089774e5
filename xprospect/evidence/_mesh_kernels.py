"""Numba kernels for triangulated surfaces: BVH, point-triangle distance, ray parity.

A bounding-volume hierarchy, exact unsigned point-triangle distances and vertical-ray
parity for inside/outside tests.

Plain loops over preallocated outputs, numpy arrays in and out; no xarray here. The
parallel variants are compiled from the same Python functions as the serial ones and
must only be entered from the main thread (numba's workqueue layer aborts otherwise).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "build_bvh",
    "column_inside",
    "query_distance",
    "tri_dist2",
]

_STACK = 256  # traversal stack depth; a median-split tree over 2**60 triangles needs < 128


@njit(cache=True, nogil=True)
def _seg_dist2(px, py, pz, ax, ay, az, bx, by, bz):
    abx, aby, abz = bx - ax, by - ay, bz - az
    apx, apy, apz = px - ax, py - ay, pz - az
    den = abx * abx + aby * aby + abz * abz
    t = 0.0
    if den > 0.0:
        t = (apx * abx + apy * aby + apz * abz) / den
        t = min(max(t, 0.0), 1.0)
    dx, dy, dz = apx - t * abx, apy - t * aby, apz - t * abz
    return dx * dx + dy * dy + dz * dz


@njit(cache=True, nogil=True)
def tri_dist2(px, py, pz, ax, ay, az, bx, by, bz, cx, cy, cz):
    """Squared distance from point p to triangle abc.

    Ericson, Real-Time Collision Detection, 5.1.5; zero-area triangles (segments,
    points) fall back to their edges.
    """
    abx, aby, abz = bx - ax, by - ay, bz - az
    acx, acy, acz = cx - ax, cy - ay, cz - az
    nx = aby * acz - abz * acy
    ny = abz * acx - abx * acz
    nz = abx * acy - aby * acx
    nn = nx * nx + ny * ny + nz * nz
    lab = abx * abx + aby * aby + abz * abz
    lac = acx * acx + acy * acy + acz * acz
    if not nn > 1e-24 * lab * lac or nn == 0.0:
        d = _seg_dist2(px, py, pz, ax, ay, az, bx, by, bz)
        d = min(d, _seg_dist2(px, py, pz, bx, by, bz, cx, cy, cz))
        return min(d, _seg_dist2(px, py, pz, cx, cy, cz, ax, ay, az))
    apx, apy, apz = px - ax, py - ay, pz - az
    d1 = abx * apx + aby * apy + abz * apz
    d2 = acx * apx + acy * apy + acz * apz
    if d1 <= 0.0 and d2 <= 0.0:
        return apx * apx + apy * apy + apz * apz
    bpx, bpy, bpz = px - bx, py - by, pz - bz
    d3 = abx * bpx + aby * bpy + abz * bpz
    d4 = acx * bpx + acy * bpy + acz * bpz
    if d3 >= 0.0 and d4 <= d3:
        return bpx * bpx + bpy * bpy + bpz * bpz
    vc = d1 * d4 - d3 * d2
    if vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
        return _seg_dist2(px, py, pz, ax, ay, az, bx, by, bz)
    cpx, cpy, cpz = px - cx, py - cy, pz - cz
    d5 = abx * cpx + aby * cpy + abz * cpz
    d6 = acx * cpx + acy * cpy + acz * cpz
    if d6 >= 0.0 and d5 <= d6:
        return cpx * cpx + cpy * cpy + cpz * cpz
    vb = d5 * d2 - d1 * d6
    if vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
        return _seg_dist2(px, py, pz, ax, ay, az, cx, cy, cz)
    va = d3 * d6 - d5 * d4
    if va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:
        return _seg_dist2(px, py, pz, bx, by, bz, cx, cy, cz)
    # inside the face region: distance to the plane
    dot = apx * nx + apy * ny + apz * nz
    return dot * dot / nn


@njit(cache=True, nogil=True)
def _box_dist2(px, py, pz, lo, hi):
    d = 0.0
    if px < lo[0]:
        d += (lo[0] - px) ** 2
    elif px > hi[0]:
        d += (px - hi[0]) ** 2
    if py < lo[1]:
        d += (lo[1] - py) ** 2
    elif py > hi[1]:
        d += (py - hi[1]) ** 2
    if pz < lo[2]:
        d += (lo[2] - pz) ** 2
    elif pz > hi[2]:
        d += (pz - hi[2]) ** 2
    return d


@njit(cache=True)
def build_bvh(tris, leaf_size):
    """Median-split AABB tree over triangles ``tris`` (n, 3, 3).

    Returns ``order`` (the triangles' order in the leaves), node boxes ``lo``/``hi``
    (m, 3), children ``left``/``right`` (-1 in leaves) and the leaves' ``start``/``count``
    into ``order``.
    """
    n = tris.shape[0]
    tmin = np.empty((n, 3))
    tmax = np.empty((n, 3))
    cen = np.empty((n, 3))
    for i in range(n):
        for k in range(3):
            a, b, c = tris[i, 0, k], tris[i, 1, k], tris[i, 2, k]
            tmin[i, k] = min(a, min(b, c))
            tmax[i, k] = max(a, max(b, c))
            cen[i, k] = (a + b + c) / 3.0
    order = np.arange(n)
    m = max(2 * n, 1)
    lo = np.empty((m, 3))
    hi = np.empty((m, 3))
    left = np.full(m, -1, np.int64)
    right = np.full(m, -1, np.int64)
    start = np.zeros(m, np.int64)
    count = np.zeros(m, np.int64)
    st_node = np.empty(_STACK, np.int64)
    st_s = np.empty(_STACK, np.int64)
    st_e = np.empty(_STACK, np.int64)
    top = 0
    st_node[0], st_s[0], st_e[0] = 0, 0, n
    top = 1
    nn = 1
    while top > 0:
        top -= 1
        node, s, e = st_node[top], st_s[top], st_e[top]
        cmin = np.full(3, np.inf)
        cmax = np.full(3, -np.inf)
        for k in range(3):
            lo[node, k] = np.inf
            hi[node, k] = -np.inf
        for j in range(s, e):
            t = order[j]
            for k in range(3):
                lo[node, k] = min(lo[node, k], tmin[t, k])
                hi[node, k] = max(hi[node, k], tmax[t, k])
                cmin[k] = min(cmin[k], cen[t, k])
                cmax[k] = max(cmax[k], cen[t, k])
        ext = cmax - cmin
        axis = int(np.argmax(ext))
        if e - s <= leaf_size or ext[axis] <= 0.0 or top + 2 > _STACK:
            start[node] = s
            count[node] = e - s
            continue
        idx = order[s:e].copy()
        perm = np.argsort(cen[idx, axis])
        for j in range(e - s):
            order[s + j] = idx[perm[j]]
        mid = (s + e) // 2
        left[node], right[node] = nn, nn + 1
        st_node[top], st_s[top], st_e[top] = nn, s, mid
        st_node[top + 1], st_s[top + 1], st_e[top + 1] = nn + 1, mid, e
        top += 2
        nn += 2
    return (
        order,
        lo[:nn].copy(),
        hi[:nn].copy(),
        left[:nn].copy(),
        right[:nn].copy(),
        start[:nn].copy(),
        count[:nn].copy(),
    )


def _query_distance(points, tris, lo, hi, left, right, start, count, max_d2, block, out):
    n = points.shape[0]
    nblocks = (n + block - 1) // block
    for bi in prange(nblocks):
        stack = np.empty(_STACK, np.int64)
        last = -1
        for i in range(bi * block, min(n, (bi + 1) * block)):
            px, py, pz = points[i, 0], points[i, 1], points[i, 2]
            best = max_d2
            found = -1
            if last >= 0:
                # neighbouring voxels share their nearest triangle: a tight first bound
                t = tris[last]
                d = tri_dist2(
                    px,
                    py,
                    pz,
                    t[0, 0],
                    t[0, 1],
                    t[0, 2],
                    t[1, 0],
                    t[1, 1],
                    t[1, 2],
                    t[2, 0],
                    t[2, 1],
                    t[2, 2],
                )
                if d <= best:
                    best, found = d, last
            stack[0] = 0
            top = 1
            while top > 0:
                top -= 1
                node = stack[top]
                if _box_dist2(px, py, pz, lo[node], hi[node]) > best:
                    continue
                if left[node] < 0:
                    for j in range(start[node], start[node] + count[node]):
                        t = tris[j]
                        d = tri_dist2(
                            px,
                            py,
                            pz,
                            t[0, 0],
                            t[0, 1],
                            t[0, 2],
                            t[1, 0],
                            t[1, 1],
                            t[1, 2],
                            t[2, 0],
                            t[2, 1],
                            t[2, 2],
                        )
                        if d < best or (d <= best and found < 0):
                            best, found = d, j
                    continue
                a, b = left[node], right[node]
                da_ = _box_dist2(px, py, pz, lo[a], hi[a])
                db_ = _box_dist2(px, py, pz, lo[b], hi[b])
                # push the farther child first so the nearer one is visited first
                if da_ < db_:
                    a, b = b, a
                    da_, db_ = db_, da_
                if da_ <= best and top < _STACK:
                    stack[top] = a
                    top += 1
                if db_ <= best and top < _STACK:
                    stack[top] = b
                    top += 1
            last = found
            out[i] = np.sqrt(best) if found >= 0 else np.inf


_query_serial = njit(cache=True, nogil=True)(_query_distance)
_query_parallel = njit(cache=True, nogil=True, parallel=True)(_query_distance)


def query_distance(points, tris_ordered, bvh, max_distance, *, parallel):
    """Unsigned distance from ``points`` (m, 3) to the nearest triangle.

    ``tris_ordered`` are the triangles in the BVH's leaf order; points farther than
    ``max_distance`` get ``inf``.
    """
    _, lo, hi, left, right, start, count = bvh
    out = np.empty(points.shape[0])
    if points.shape[0] == 0:
        return out
    max_d2 = np.inf if not np.isfinite(max_distance) else float(max_distance) ** 2
    fn = _query_parallel if parallel else _query_serial
    fn(
        np.ascontiguousarray(points, dtype=np.float64),
        tris_ordered,
        lo,
        hi,
        left,
        right,
        start,
        count,
        max_d2,
        256,
        out,
    )
    return out


@njit(cache=True, nogil=True)
def _edge_sign(ax, ay, bx, by, px, py):
    """Side of p relative to the directed edge a->b (+1 left, -1 right).

    Ties are broken by simulation of simplicity (p moved by (+eps, +eps**2)). The edge
    is evaluated in a canonical direction so two triangles sharing it get exactly
    opposite answers.
    """
    flip = 1
    if ax > bx or (ax == bx and ay > by):
        ax, bx = bx, ax
        ay, by = by, ay
        flip = -1
    e = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    if e == 0.0:
        e = -(by - ay)
        if e == 0.0:
            e = bx - ax
    if e > 0.0:
        return flip
    if e < 0.0:
        return -flip
    return 0


@njit(cache=True, nogil=True)
def _crossing(tri, px, py):
    """Elevation where the vertical line through (px, py) crosses the triangle, or NaN."""
    ax, ay, az = tri[0, 0], tri[0, 1], tri[0, 2]
    bx, by, bz = tri[1, 0], tri[1, 1], tri[1, 2]
    cx, cy, cz = tri[2, 0], tri[2, 1], tri[2, 2]
    s1 = _edge_sign(ax, ay, bx, by, px, py)
    if s1 == 0:
        return np.nan
    if _edge_sign(bx, by, cx, cy, px, py) != s1 or _edge_sign(cx, cy, ax, ay, px, py) != s1:
        return np.nan
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    zmin = min(az, min(bz, cz))
    zmax = max(az, max(bz, cz))
    if area == 0.0:
        return 0.5 * (zmin + zmax)
    wb = ((cx - ax) * (py - ay) - (cy - ay) * (px - ax)) / -area
    wc = ((bx - ax) * (py - ay) - (by - ay) * (px - ax)) / area
    # written from a so that a horizontal triangle gives exactly its elevation
    z = az + wb * (bz - az) + wc * (cz - az)
    return min(max(z, zmin), zmax)


@njit(cache=True, nogil=True)
def column_inside(tris, xs, ys, zs, out):
    """Ray-parity inside test for every voxel centre of a block.

    ``xs``, ``ys`` and ``zs`` are ascending centre coordinates; ``out`` is a
    preallocated bool array (len(zs), len(ys), len(xs)). A centre is inside when the
    vertical ray upwards from it crosses the surface an odd number of times (crossings
    exactly at the centre's elevation are not counted). Returns the number of columns
    whose total crossing count is odd (0 for a closed surface).
    """
    nx, ny, nz = xs.size, ys.size, zs.size
    ncol = nx * ny
    counts = np.zeros(ncol + 1, np.int64)
    ntri = tris.shape[0]
    for pass_ in range(2):
        if pass_ == 1:
            for c in range(ncol):
                counts[c + 1] += counts[c]
            zc = np.empty(counts[ncol])
            fill = counts[:ncol].copy()
        for t in range(ntri):
            tri = tris[t]
            x0 = min(tri[0, 0], min(tri[1, 0], tri[2, 0]))
            x1 = max(tri[0, 0], max(tri[1, 0], tri[2, 0]))
            y0 = min(tri[0, 1], min(tri[1, 1], tri[2, 1]))
            y1 = max(tri[0, 1], max(tri[1, 1], tri[2, 1]))
            i0 = np.searchsorted(xs, x0, side="left")
            i1 = np.searchsorted(xs, x1, side="right")
            j0 = np.searchsorted(ys, y0, side="left")
            j1 = np.searchsorted(ys, y1, side="right")
            for j in range(j0, j1):
                for i in range(i0, i1):
                    z = _crossing(tri, xs[i], ys[j])
                    if np.isnan(z):
                        continue
                    c = j * nx + i
                    if pass_ == 0:
                        counts[c + 1] += 1
                    else:
                        zc[fill[c]] = z
                        fill[c] += 1
    odd = 0
    for j in range(ny):
        for i in range(nx):
            c = j * nx + i
            s, e = counts[c], counts[c + 1]
            tot = e - s
            if tot % 2 == 1:
                odd += 1
            if tot == 0:
                for k in range(nz):
                    out[k, j, i] = False
                continue
            col = np.sort(zc[s:e])
            for k in range(nz):
                below = np.searchsorted(col, zs[k], side="right")
                out[k, j, i] = (tot - below) % 2 == 1
    return odd
