"""Numba kernels for inverse-distance weighting on regular grids, voxels and points.

numpy arrays in, a preallocated ``out`` written in place; no xarray, no dask. The
neighbour search is :mod:`xprospect.grid._neighbours` (tiles of the query lattice share
one candidate list); these kernels only turn each cell's neighbours into a weighted mean.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from xprospect.grid._neighbours import gather, knn_tile, new_state, tile_box

__all__ = ["idw_grid_parallel", "idw_grid_serial", "idw_points_parallel", "idw_points_serial"]

# nogil: dask threads run chunks side by side; cache: compile once per environment
_jit = nb.njit(nogil=True, cache=True, error_model="numpy")
_jit_parallel = nb.njit(nogil=True, cache=True, error_model="numpy", parallel=True)


@_jit
def _idw_radius_tile(
    pts, vals, start, blo, bsize, bshape, origin, axes, lo, hi, power, radius, min_points, tb
):
    """IDW over every sample within ``radius`` for the cells of one tile (into ``tb``)."""
    ne = vals.shape[1]
    ty = hi[1] - lo[1]
    tx = hi[2] - lo[2]
    r2 = radius * radius
    half_p = 0.5 * power
    p_is_2 = power == 2.0
    qlo = np.empty(3)
    qhi = np.empty(3)
    rlo = np.empty(3)
    rhi = np.empty(3)
    tile_box(origin, axes, lo, hi, qlo, qhi)
    cap = 256
    nc, _, cx, cy, cz, ci = gather(
        pts,
        start,
        blo,
        bsize,
        bshape,
        qlo,
        qhi,
        radius,
        rlo,
        rhi,
        np.empty(cap),
        np.empty(cap),
        np.empty(cap),
        np.empty(cap, dtype=np.int64),
    )
    acc = np.empty(ne)
    zacc = np.empty(ne)
    for iz in range(lo[0], hi[0]):
        for iy in range(lo[1], hi[1]):
            for ix in range(lo[2], hi[2]):
                c = ((iz - lo[0]) * ty + (iy - lo[1])) * tx + (ix - lo[2])
                qx = origin[0] + iz * axes[0, 0] + iy * axes[1, 0] + ix * axes[2, 0]
                qy = origin[1] + iz * axes[0, 1] + iy * axes[1, 1] + ix * axes[2, 1]
                qz = origin[2] + iz * axes[0, 2] + iy * axes[1, 2] + ix * axes[2, 2]
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


@_jit
def _idw_knn_tile(
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
    power,
    radius,
    min_points,
    state,
    nbr_i,
    nbr_d2,
    nbr_n,
    tb,
):
    """IDW over the ``k`` nearest samples for the cells of one tile (into ``tb``)."""
    ne = vals.shape[1]
    half_p = 0.5 * power
    p_is_2 = power == 2.0
    knn_tile(
        pts, start, blo, bsize, bshape, origin, axes, lo, hi, k, radius, state, nbr_i, nbr_d2, nbr_n
    )
    ncells = (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2])
    acc = np.empty(ne)
    for c in range(ncells):
        nfound = nbr_n[c]
        if nfound < min_points or nfound == 0:
            for e2 in range(ne):
                tb[e2, c] = np.nan
            continue
        for e2 in range(ne):
            acc[e2] = 0.0
        if nbr_d2[c, 0] == 0.0:
            # the cell coincides with samples: their mean, so the map is exact there
            nzero = 0
            for j in range(nfound):
                if nbr_d2[c, j] != 0.0:
                    break
                nzero += 1
                for e2 in range(ne):
                    acc[e2] += vals[nbr_i[c, j], e2]
            for e2 in range(ne):
                tb[e2, c] = acc[e2] / nzero
            continue
        wsum = 0.0
        for j in range(nfound):
            d2 = nbr_d2[c, j]
            w = 1.0 / d2 if p_is_2 else d2 ** (-half_p)
            wsum += w
            row_j = nbr_i[c, j]
            for e2 in range(ne):
                acc[e2] += w * vals[row_j, e2]
        inv = 1.0 / wsum
        for e2 in range(ne):
            tb[e2, c] = acc[e2] * inv


def _idw_grid(
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
    power,
    radius,
    min_points,
    eidx,
    out,
):
    """IDW of ``vals`` at every node of a regular (possibly rotated) query lattice.

    pts : (n, 3) sample coordinates, sorted by bucket; vals : (n, ne) values, same order.
    start, blo, bsize, bshape : the bucket grid (see ``bucket_points``).
    origin : (3,) coordinates of query node (0, 0, 0); axes : (3, 3), ``axes[a]`` is the
    step vector of lattice axis ``a``; qshape : (3,) lattice size; tile : (3,) tile size;
    nseg : tasks per row of tiles (the threads share rows cut into this many segments).
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
    unlimited = k <= 0
    kk = 1 if unlimited else k
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
        tb = np.empty((ne, ntile_cells))
        nbr_i = np.empty((ntile_cells, kk), dtype=np.int64)
        nbr_d2 = np.empty((ntile_cells, kk))
        nbr_n = np.empty(ntile_cells, dtype=np.int64)
        state = new_state(bsize)
        for tcol in range(seg * ntx // nseg, (seg + 1) * ntx // nseg):
            lo[2] = tcol * tx
            hi[2] = min(lo[2] + tx, nx)
            if unlimited:
                _idw_radius_tile(
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
                    power,
                    radius,
                    min_points,
                    tb,
                )
            else:
                _idw_knn_tile(
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
                    power,
                    radius,
                    min_points,
                    state,
                    nbr_i,
                    nbr_d2,
                    nbr_n,
                    tb,
                )
            wy = hi[1] - lo[1]
            wx = hi[2] - lo[2]
            for e2 in range(ne):
                oe = eidx[e2]
                for iz in range(lo[0], hi[0]):
                    for iy in range(lo[1], hi[1]):
                        base_c = ((iz - lo[0]) * wy + (iy - lo[1])) * wx - lo[2]
                        for ix in range(lo[2], hi[2]):
                            out[oe, iz, iy, ix] = tb[e2, base_c + ix]


def _idw_points(
    pts, vals, start, blo, bsize, bshape, queries, k, power, radius, min_points, eidx, out
):
    """IDW at arbitrary points: each query is a one-node lattice.

    queries : (m, 3) query coordinates; out : (nout, m) written in place.
    """
    ne = vals.shape[1]
    unlimited = k <= 0
    kk = 1 if unlimited else k
    axes = np.zeros((3, 3))
    for q in nb.prange(queries.shape[0]):
        lo = np.zeros(3, dtype=np.int64)
        hi = np.ones(3, dtype=np.int64)
        tb = np.empty((ne, 1))
        nbr_i = np.empty((1, kk), dtype=np.int64)
        nbr_d2 = np.empty((1, kk))
        nbr_n = np.empty(1, dtype=np.int64)
        origin = queries[q].copy()
        if unlimited:
            _idw_radius_tile(
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
                power,
                radius,
                min_points,
                tb,
            )
        else:
            _idw_knn_tile(
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
                power,
                radius,
                min_points,
                new_state(bsize),
                nbr_i,
                nbr_d2,
                nbr_n,
                tb,
            )
        for e2 in range(ne):
            out[eidx[e2], q] = tb[e2, 0]


idw_grid_serial = _jit(_idw_grid)
idw_grid_parallel = _jit_parallel(_idw_grid)
idw_points_serial = _jit(_idw_points)
idw_points_parallel = _jit_parallel(_idw_points)
