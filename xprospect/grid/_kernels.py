"""Numba kernels for inverse-distance weighting on regular grids, voxels and points.

numpy arrays in, a preallocated ``out`` written in place; no xarray, no dask. The
neighbour search is :mod:`xprospect.grid._neighbours` (tiles of the query lattice share
one candidate list); these kernels only turn each cell's neighbours into a weighted mean.
One task kernel serves lattices and points, one thread or many (see
:func:`xprospect.grid._neighbours.run_tasks`), float32 and float64 outputs alike; its twin
:func:`idw_ranked_task` searches large dense 2-D lattices with the ranked search.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xprospect.grid._jit import jit
from xprospect.grid._neighbours import (
    gather,
    knn_tile,
    knn_tile_ranked,
    new_task,
    node,
    put_tile,
    tile_at,
    tile_box,
)

__all__ = ["idw_radius_task", "idw_ranked_task", "idw_task"]

_jit = jit()


@_jit
def _idw_radius_tile(t, bk, vals, lattice, params, lo, hi, work, tb):
    """IDW over every sample within the radius for the cells of tile ``t`` (into ``tb``)."""
    _, power, radius, min_points = params
    origin = tile_at(t, lattice, lo, hi)
    axes = lattice[1]
    fb, ib, boxes, done, kd, ki = work
    ne = vals.shape[1]
    ty = hi[1] - lo[1]
    tx = hi[2] - lo[2]
    r2 = radius * radius
    half_p = 0.5 * power
    p_is_2 = power == 2.0
    tile_box(origin, axes, lo, hi, boxes[0], boxes[1])
    nc, _, fb, ib = gather(bk, boxes[0], boxes[1], radius, boxes[2], boxes[3], fb, ib)
    acc = np.empty(ne)
    zacc = np.empty(ne)
    for iz in range(lo[0], hi[0]):
        for iy in range(lo[1], hi[1]):
            for ix in range(lo[2], hi[2]):
                c = ((iz - lo[0]) * ty + (iy - lo[1])) * tx + (ix - lo[2])
                qx, qy, qz = node(origin, axes, iz, iy, ix)
                for e2 in range(ne):
                    acc[e2] = 0.0
                    zacc[e2] = 0.0
                wsum = 0.0
                cnt_n = 0
                nzero = 0
                for j in range(nc):
                    dx = fb[0, j] - qx
                    dy = fb[1, j] - qy
                    dz = fb[2, j] - qz
                    d2 = dx * dx + dy * dy + dz * dz
                    if d2 > r2:
                        continue
                    cnt_n += 1
                    row_j = ib[0, j]
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
                        tb[c, e2] = np.nan
                elif nzero > 0:
                    for e2 in range(ne):
                        tb[c, e2] = zacc[e2] / nzero
                else:
                    for e2 in range(ne):
                        tb[c, e2] = acc[e2] / wsum
    return fb, ib, boxes, done, kd, ki


def _idw_task(ranked: bool, name: str) -> Any:
    """Compile the IDW task over tile ranges, searching with ``knn_tile`` or ``knn_tile_ranked``.

    ``ranked`` is a constant of the closure, so numba prunes the search not taken before
    typing: :func:`idw_task` never compiles the ranked search, and :func:`idw_ranked_task`
    (for the 2-D lattices where ranking pays: ``plan_tiles`` says which, 512^2 cells or
    more in tiles that span a good part of the samples' k-th neighbour distance, e.g. 1e6
    samples onto 2048^2) is a kernel of its own, the same map bit for bit, compiled (about
    as long as :func:`idw_task`) and cached under ``name`` when a lattice first needs it.
    """

    def task(t0, t1, bk, vals, rows, lattice, params, outs):
        """IDW of ``vals`` over tiles ``t0 <= t < t1`` of a lattice (or query points).

        bk : ``(pts, start, blo, bsize, bshape)``, the bucket-sorted samples (see
        ``bucket_points``); vals : (n, ne) their values, same order; rows : (ne,) the
        slot of each value column in ``out``; lattice : ``(origin, axes, queries, qshape,
        tile)`` (see ``tile_at``); params : ``(k, power, radius, min_points)``: k nearest
        neighbours, the IDW power, the search radius (inf: none) and the fewest neighbours
        for a value (fewer give NaN). outs : ``(out32, out64)``, one of them empty (see
        ``put_tile``); the other, (nout, *qshape), is written.
        """
        k, _, radius, _ = params
        lo, hi, state, work, nbr, tb = new_task(bk[3], lattice[4], k, vals.shape[1])
        wk = np.empty(max(k, 1))  # the weights of one cell's neighbours
        for t in range(t0, t1):
            origin = tile_at(t, lattice, lo, hi)
            if ranked:  # a constant: pruned before typing where False
                work = knn_tile_ranked(bk, origin, lattice[1], lo, hi, k, radius, state, work, nbr)
            else:
                work = knn_tile(bk, origin, lattice[1], lo, hi, k, radius, state, work, nbr)
            _idw_cells(vals, params, lo, hi, nbr, wk, tb)
            put_tile(tb, lo, hi, rows, outs)

    task.__name__ = task.__qualname__ = name
    return _jit(task)


@_jit  # called once per tile, and compiled once for both tasks
def _idw_cells(vals, params, lo, hi, nbr, wk, tb):
    """IDW of each cell of the tile ``lo <= index < hi`` from its neighbours, into ``tb``.

    ``tb[c]`` (contiguous) accumulates all elements of cell ``c`` at once, one
    neighbour's row of ``vals`` after another, so the element loop vectorises; each
    element's sum still runs over the neighbours nearest first. With few elements (at
    most ``SMALL_NE``: too few for that loop to vectorise) each element's sum is
    instead kept in a register over the neighbours, the same operations in the same
    order (the same bits); 1e6 samples x 4 elements onto 2048^2, the kernel alone, 1
    thread: 0.98x of the CPU time (1 Dec, best of 16 in 4 interleaved processes). ``wk``
    is scratch for the weights of one cell's neighbours.
    """
    _, power, _, min_points = params
    nbr_i, nbr_d2, nbr_n = nbr
    ne = vals.shape[1]
    half_p = 0.5 * power
    p_is_2 = power == 2.0
    ncells = (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2])
    for c in range(ncells):
        acc = tb[c]
        nfound = nbr_n[c]
        if nfound < min_points or nfound == 0:
            for e2 in range(ne):
                acc[e2] = np.nan
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
                v = vals[nbr_i[c, j]]
                for e2 in range(ne):
                    acc[e2] += v[e2]
            for e2 in range(ne):
                acc[e2] = acc[e2] / nzero
            continue
        # the weights first (a loop of its own, so the divisions vectorise), then
        # the sums (indexing ``vals`` by row, no per-neighbour array view): the same
        # operations in the same order as weighting inside the neighbour loop, so
        # the same bits, and the loop numba compiles stays quick whatever the search
        # beside it inlines
        d2s = nbr_d2[c]
        if p_is_2:
            for j in range(nfound):
                wk[j] = 1.0 / d2s[j]
        else:
            for j in range(nfound):
                wk[j] = d2s[j] ** (-half_p)
        wsum = 0.0
        for j in range(nfound):
            wsum += wk[j]
        inv = 1.0 / wsum
        if ne <= SMALL_NE:  # each element's sum in a register
            for e2 in range(ne):
                s = 0.0
                for j in range(nfound):
                    s += wk[j] * vals[nbr_i[c, j], e2]
                acc[e2] = s * inv
        else:
            for j in range(nfound):
                w = wk[j]
                row = nbr_i[c, j]
                for e2 in range(ne):
                    acc[e2] += w * vals[row, e2]
            for e2 in range(ne):
                acc[e2] = acc[e2] * inv


SMALL_NE = 8  # elements up to which each one's sum is kept in a register (_idw_cells)

idw_task = _idw_task(False, "idw_task")
idw_ranked_task = _idw_task(True, "idw_ranked_task")


@_jit
def idw_radius_task(t0, t1, bk, vals, rows, lattice, params, outs):
    """IDW over every sample within the radius: :func:`idw_task` with ``k <= 0``."""
    lo, hi, _, work, _, tb = new_task(bk[3], lattice[4], 0, vals.shape[1])
    for t in range(t0, t1):
        work = _idw_radius_tile(t, bk, vals, lattice, params, lo, hi, work, tb)
        put_tile(tb, lo, hi, rows, outs)
