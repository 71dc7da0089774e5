"""Numba neighbour search over bucketed samples, shared by every gridder.

numpy arrays in, preallocated arrays written in place; no xarray, no dask.

Samples are sorted into a uniform bucket grid (:func:`bucket_points`). Queries come in
small tiles of a regular (possibly rotated and scaled) lattice: one candidate list, the
samples in the buckets around the tile, serves every cell of the tile, so a cell's
search costs a pass over a short list instead of a tree descent. Each cell's k nearest
candidates are proven to be its k nearest samples overall by a margin test (no sample
outside the gathered box can be closer than the box's edge); cells that fail the test
are redone with a wider box. The k-th distance of the cell beside it (else of the last
cell searched) bounds a cell's (``d_k(q) <= d_k(p) + |q - p|``), which cuts the
candidates scanned per cell. On large 2-D lattices where cells lie dense against the k-th
neighbour distance, a cell far from its sub-tile's centre, whose candidates come in no
useful order, ranks a short list of them instead of inserting them one by one
(:func:`knn_tile_ranked`, a kernel of its own: see :func:`plan_tiles`).

Everything is in float64, in coordinates already translated, rotated and scaled for
anisotropy, so the search itself is isotropic. Coordinate columns are ordered (z, y, x)
like the grid dims; a 2-D problem has a constant first column, so the contiguous bucket
runs lie along x.

A gridder supplies one *task* kernel: it walks a range of tiles (:func:`tile_at`),
calls :func:`knn_tile` (or :func:`gather` for "every sample within a radius") per tile,
combines the neighbours of each cell in its own way into a tile buffer and writes it out
(:func:`put_tile`). Arbitrary query points are a lattice of one-node tiles. The same
task serves one thread (a dask chunk) and many: :func:`run_tasks` splits the tiles into
contiguous ranges and runs them on a thread pool (the kernels release the GIL), so one
compiled kernel serves both and no numba ``parallel`` compilation is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import numba as nb
import numpy as np

from xprospect.grid._jit import jit

__all__ = [
    "bounds",
    "bucket_points",
    "gather",
    "knn_tile",
    "knn_tile_ranked",
    "new_task",
    "plan_tiles",
    "put_tile",
    "run_tasks",
    "search_points",
    "task_count",
    "tile_at",
    "tile_box",
]

_INF = np.inf
_jit = jit()
# small helpers are inlined where numba types their caller: no compilation of their own
_inline = jit(inline="always")


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
def _bucket_ids(points, lo, size, shape, shift, i0, i1, lin, pcount):
    """Bucket of points ``i0 <= i < i1`` into ``lin``; counted per part (bucket >> shift)."""
    for i in range(i0, i1):
        b = 0
        for a in range(3):
            ia = int((points[i, a] - lo[a]) / size)
            if ia > shape[a] - 1:
                ia = shape[a] - 1
            b = b * shape[a] + ia
        lin[i] = b
        pcount[b >> shift] += 1


@_inline
def _copy_point(ps, vs, j, points, values, i):
    """Copy point ``i`` (coordinates and values) to row ``j`` of ``ps``, ``vs``."""
    for a in range(3):
        ps[j, a] = points[i, a]
    for e in range(values.shape[1]):
        vs[j, e] = values[i, e]


@_jit
def _partition(points, values, lin, shift, pfill, i0, i1, rps, rvs, rlin):
    """Stable scatter of points ``i0 <= i < i1`` to their parts' runs (``pfill``, advanced)."""
    for i in range(i0, i1):
        b = lin[i]
        q = b >> shift
        j = pfill[q]
        pfill[q] = j + 1
        _copy_point(rps, rvs, j, points, values, i)
        rlin[j] = b


@_jit
def _sort_parts(rps, rvs, rlin, pstart, shift, p0, p1, start):
    """Sort the points of parts ``p0 <= p < p1`` by bucket, in place within each run.

    Each run is copied to a scratch buffer (reused from part to part, so it stays in
    cache) and scattered back by bucket. Writes ``start`` for the buckets of those parts.
    """
    nbk = start.shape[0] - 1
    ne = rvs.shape[1]
    big = 0
    for p in range(p0, p1):
        big = max(big, pstart[p + 1] - pstart[p])
    tp = np.empty((big, 3))
    tv = np.empty((big, ne))
    tl = np.empty(big, dtype=np.int64)
    for p in range(p0, p1):
        j0 = pstart[p]
        j1 = pstart[p + 1]
        b0 = p << shift
        b1 = min((p + 1) << shift, nbk)
        for b in range(b0, b1):
            start[b] = 0
        for i in range(j0, j1):
            t = i - j0
            _copy_point(tp, tv, t, rps, rvs, i)
            tl[t] = rlin[i]
            start[rlin[i]] += 1
        s = j0
        for b in range(b0, b1):
            c = start[b]
            start[b] = s
            s += c
        fill = start[b0:b1].copy()
        for t in range(j1 - j0):
            b = tl[t] - b0
            j = fill[b]
            fill[b] = j + 1
            _copy_point(rps, rvs, j, tp, tv, t)


def _counting_sort(
    points: np.ndarray,
    values: np.ndarray,
    lo: np.ndarray,
    size: float,
    shape: np.ndarray,
    parallel: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable sort of points (and their values) by bucket, in O(n), in two scatters.

    One scatter of a million points to buckets spread over the whole array costs a cache
    miss or two per point. Instead the buckets are cut into parts of about
    ``PART_BYTES`` of points each (runs of whole buckets in bucket order): the points go
    first to their part's run, then are sorted by bucket within each run, in place
    through a scratch copy of the run, in cache (no second array of every point). Both
    steps keep the points' order, so the result is the plain stable counting sort's.
    With ``parallel`` (and at least ``PARALLEL_SORT`` points) both steps run on numba's
    threads like the tile ranges of :func:`run_tasks`, about ``TASKS_PER_THREAD`` ranges
    per thread: ranges of points for the first (each counts and writes its own slots in
    every part, after those of the ranges before it), ranges of parts for the second.
    """
    n = points.shape[0]
    nbk = int(shape[0] * shape[1] * shape[2])
    parts = max(1, n * 8 * (3 + values.shape[1]) // PART_BYTES)
    shift = max(0, math.ceil(math.log2(max(nbk / parts, 1.0))))
    nparts = ((nbk - 1) >> shift) + 1
    nchunks = task_count(n, parallel and n >= PARALLEL_SORT)
    cuts = _cuts(n, nchunks)
    lin = np.empty(n, dtype=np.int64)
    pcount = np.zeros((nchunks, nparts), dtype=np.int64)
    _run_calls(
        _bucket_ids,
        [
            (points, lo, size, shape, shift, cuts[t], cuts[t + 1], lin, pcount[t])
            for t in range(nchunks)
        ],
    )
    # part p's run starts at pstart[p]; range t writes its points of p after those of
    # the ranges before it
    pstart = np.zeros(nparts + 1, dtype=np.int64)
    np.cumsum(pcount.sum(axis=0), out=pstart[1:])
    pfill = pstart[:-1] + np.cumsum(pcount, axis=0) - pcount
    rps = np.empty_like(points)
    rvs = np.empty_like(values)
    rlin = np.empty(n, dtype=np.int64)
    _run_calls(
        _partition,
        [
            (points, values, lin, shift, pfill[t], cuts[t], cuts[t + 1], rps, rvs, rlin)
            for t in range(nchunks)
        ],
    )
    del lin
    start = np.empty(nbk + 1, dtype=np.int64)
    start[nbk] = n
    pcuts = _cuts(nparts, min(nparts, nchunks))
    _run_calls(
        _sort_parts,
        [(rps, rvs, rlin, pstart, shift, p0, p1, start) for p0, p1 in pairwise(pcuts)],
    )
    return rps, rvs, start


PART_BYTES = 1 << 20
PARALLEL_SORT = 1 << 16


def bucket_points(
    points: np.ndarray, values: np.ndarray, per_bucket: float = 2.0, parallel: bool = False
):
    """Sort points and their values into a uniform bucket grid (compressed-row layout).

    Parameters
    ----------
    points : (n, 3) float64
        Point coordinates (a 2-D problem has a constant column).
    values : (n, ne) float64
        Values carried along.
    per_bucket : float
        Target mean number of points per bucket over the points' bounding box.
    parallel : bool
        Whether the sort may run on several threads.

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
    span : (3,) float64
        Extent of the points' bounding box (the upper corner less ``lo``).
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
    ps, vs, start = _counting_sort(points, values, lo, float(size), shape, parallel)
    return ps, vs, start, lo.astype(np.float64), float(size), shape, ext


def plan_tiles(
    points: np.ndarray,
    k: int,
    axes: np.ndarray,
    qshape: Sequence[int],
    ndim: int,
    parallel: bool,
    span: np.ndarray | None = None,
) -> tuple[np.ndarray, int, int, bool]:
    """Choose the query tile, the work split and the search kernel for one lattice.

    A tile should be about as wide as the distance to a cell's k-th neighbour: much
    wider, and each cell scans candidates that cannot be its neighbours; much narrower,
    and the gathering and sorting of candidates is repeated for cells that share them.
    That distance is estimated from the mean sample density over the samples' bounding
    box (``d_k = (k / (density * unit ball))^(1 / d)``); a tile is about ``TILE_2D d_k``
    across in 2-D (4 to 16 cells) and a cube ``TILE_3D d_k`` across in 3-D (1 to ``MAX_3D``
    voxels). Measured at 1e6 samples onto 2048^2 (d_k of 4 cells: 6 x 6 tiles searched
    9 % faster than 4 x 4; with the ranked search, 7 x 7 (``TILE_2D`` 1.75) 3 % faster
    than 6 x 6, 8 x 8 alike, 5 x 5 slower) and on 5,000 clustered samples onto 64^3 and
    128^3 voxels (d_k of 5 and 11 voxels: cubes of 6 and 12 searched 1.7x and 1.1x
    faster than the 3 x 3 x 6 and 6 x 6 x 12 tiles of 0.6 d_k): a wider tile gathers and
    sorts its candidates once for more cells, which outweighs the longer scans of its
    corner cells. A 3-D tile stops at ``MAX_3D`` voxels: clustered samples lie far denser in
    their clusters, where most of the search is, than the mean density says (5,000
    clustered samples onto 128^3, 1 thread, best of 8 interleaved: cubes of 8 and 9
    searched 3.5 % faster than cubes of 12, 10 no faster; onto 64^3, 5 and 6 alike, 8
    slower). A 2-D tile is ``WIDE_2D`` times as wide (x) as it is tall and searched in
    square sub-tiles (see :func:`knn_tile`): one gathering serves both, and each output
    row is written in runs twice as long (at 3072^2 x 16 elements, writing 16 x 32
    tiles out took 0.32 s against 0.71 s for 16 x 16; the whole IDW kernel 1.26x).
    Where cells lie further apart than the sample spacing, tiles shrink to one
    cell: a wider tile would gather the samples of the whole span between its cells.
    The tiles (all of them, in C order) are split into contiguous ranges, about eight per
    thread (:func:`task_count`), so even an 8 x 8 grid keeps every thread busy.

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
        Whether the tiles may run on several threads.
    span : (3,) float64, optional
        Extent of the samples' bounding box, when known (:func:`bucket_points` returns
        it); measured from ``points`` otherwise.

    Returns
    -------
    tile : (3,) int64
        Tile size per lattice axis.
    ntiles : int
        Number of tiles.
    ntasks : int
        Number of tile ranges (1 unless ``parallel``).
    ranked : bool
        Whether to search with :func:`knn_tile_ranked` (same neighbours): 2-D tiles
        whose sub-tile corners lie further than ``sqrt(RANK_FROM) d_k`` from their
        centre, on lattices of at least ``RANK_CELLS`` cells. The kernel alone, 1 thread
        (1 Dec, load 3.5-5.4): 1e6 samples onto 2048^2 0.76x-0.84x of the plain search's
        CPU time, onto 512^2 0.89x; where sub-tiles are small against ``d_k`` (7,000
        samples onto 3072^2) 1.11x, and in 3-D 1.09x, so those keep the plain search. Its
        first call in a fresh environment compiles it (as long as :func:`knn_tile`, about
        6 s CPU), so small lattices (the demo's, the tests') keep the plain search too.
    """
    if span is not None:
        ext = span
    elif points.shape[0]:
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
        # one-cell tiles only where cells lie three k-th distances apart or more; closer,
        # cells still share enough candidates that a 4 x 4 tile pays (measured at 512^2)
        e = int(min(max(round(TILE_2D * edge), min(4, 1 + int(3 * edge))), 16))
        tile = np.array([1, e, (WIDE_2D if e > 1 else 1) * e], dtype=np.int64)
    else:
        e = int(min(max(round(TILE_3D * edge), 1), MAX_3D))
        tile = np.array([e, e, e], dtype=np.int64)
    qs = np.maximum(np.asarray(qshape, dtype=np.int64), 1)
    tile = np.minimum(tile, qs)
    ntiles = int(np.prod(-(-qs // tile)))
    # the ranked search (knn_tile_ranked) where its sub-tiles' corners lie far from their
    # centre against d_k, and the lattice is big enough for its saving to repay compiling it
    corner = 0.5 * (tile[1] - 1) * math.hypot(steps[1], steps[2]) if ndim == 2 else 0.0
    ranked = bool(
        ndim == 2
        and tile[1] > 1
        and corner > math.sqrt(RANK_FROM) * edge * step
        and int(np.prod(qs)) >= RANK_CELLS
    )
    return tile, ntiles, task_count(ntiles, parallel), ranked


def task_count(ntiles: int, parallel: bool) -> int:
    """How many tile ranges to cut ``ntiles`` tiles into: about ``TASKS_PER_THREAD`` per thread.

    Ranges cost alike only where samples are spread evenly; with more of them, the
    thread that drew the dense ones finishes sooner after the other. Timed range by
    range on one thread and scheduled as a pool of 2 takes them (30 Nov, under load,
    mean of 2-3 runs): 8 ranges ended 1.6 %, 2.5 % and 2.0 % after an even split of
    the work (7,000 samples onto 3072^2, 1e6 onto 2048^2, 5,000 clustered onto
    128^3), 16 ranges 1.1 %, 1.3 % and 0.5 %.
    """
    return int(min(ntiles, TASKS_PER_THREAD * nb.get_num_threads())) if parallel else 1


TASKS_PER_THREAD = 8


TILE_2D = 1.75
TILE_3D = 1.2
MAX_3D = 8
WIDE_2D = 2
RANK_CELLS = 1 << 18


def run_tasks(task: Callable[..., Any], ntiles: int, ntasks: int, *args: Any) -> None:
    """Run ``task(t0, t1, *args)`` over ``ntiles`` tiles cut into ``ntasks`` ranges.

    One range runs in the calling thread; several run on a pool of numba's thread count
    (``NUMBA_NUM_THREADS``), taking the next range as each finishes. Tasks write
    disjoint cells, so the result does not depend on the split.
    """
    cuts = _cuts(ntiles, ntasks)
    _run_calls(task, [(t0, t1, *args) for t0, t1 in pairwise(cuts)])


def _cuts(n: int, parts: int) -> list[int]:
    """Bounds of ``parts`` contiguous, near-equal ranges of ``range(n)``."""
    return [i * n // parts for i in range(parts + 1)]


def _run_calls(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> None:
    """Call ``fn(*c)`` for each ``c`` of ``calls``: in this thread if one, else on a pool."""
    if len(calls) <= 1:
        for c in calls:
            fn(*c)
        return
    with ThreadPoolExecutor(max_workers=min(len(calls), nb.get_num_threads())) as pool:
        futures = [pool.submit(fn, *c) for c in calls]
        for f in futures:
            f.result()


@_jit  # compiled once, shared by every task kernel and output dtype
def new_task(bsize, tile, k, nrows):
    """Scratch of one task, reused from tile to tile.

    Returns ``(lo, hi, state, work, nbr, tb)``: the current tile's node range, the
    search state (see :func:`knn_tile`), the candidate buffers (see :func:`gather`),
    the neighbour arrays ``(nbr_i, nbr_d2, nbr_n)`` per tile cell and a tile buffer of
    ``nrows`` values per cell, ``tb[c]`` contiguous (a cell's values are accumulated
    together; :func:`put_tile` scatters them to the output's planes). ``k <= 0`` (every
    sample within a radius) keeps room for one neighbour.
    """
    ncells = tile[0] * tile[1] * tile[2]
    kk = max(k, 1)
    cap = 256
    # [m_guess, have_prev, px, py, pz, prev_dk]: the box widening that sufficed last
    # time, and the last verified cell with its k-th neighbour distance
    # np.empty and loops only: each distinct np.zeros / np.ones signature is one more
    # compilation on a cold start
    state = np.empty(6)
    for i in range(6):
        state[i] = 0.0
    state[0] = bsize
    work = (
        np.empty((8, cap)),
        np.empty((4, cap), dtype=np.int64),
        np.empty((4, 3)),
        np.empty(ncells, dtype=np.bool_),
        np.empty(kk + 1),
        np.empty(kk + 1, dtype=np.int64),
    )
    nbr = (
        np.empty((ncells, kk), dtype=np.int64),
        np.empty((ncells, kk)),
        np.empty(ncells, dtype=np.int64),
    )
    lo = np.empty(3, dtype=np.int64)
    hi = np.empty(3, dtype=np.int64)
    for a in range(3):
        lo[a] = 0
        hi[a] = 1
    return lo, hi, state, work, nbr, np.empty((ncells, nrows))


@_inline
def tile_at(t, lattice, lo, hi):
    """Set ``lo``, ``hi`` to the node range of tile ``t``; return the lattice origin.

    ``lattice = (origin, axes, queries, qshape, tile)``. Tiles are numbered in C order.
    With query points (``queries`` not empty; then ``axes`` is zero, ``qshape`` is
    ``(1, 1, m)`` and ``tile`` ones), tile ``t`` is the node ``(0, 0, t)`` placed at
    ``queries[t]``: the returned origin puts it there.
    """
    origin, _, queries, qshape, tile = lattice
    if queries.shape[0] > 0:
        lo[0] = 0
        lo[1] = 0
        lo[2] = t
        hi[0] = 1
        hi[1] = 1
        hi[2] = t + 1
        return queries[t]
    nty = (qshape[1] + tile[1] - 1) // tile[1]
    ntx = (qshape[2] + tile[2] - 1) // tile[2]
    idx = (t // (nty * ntx), (t // ntx) % nty, t % ntx)
    for a in range(3):
        lo[a] = idx[a] * tile[a]
        hi[a] = min(lo[a] + tile[a], qshape[a])
    return origin


@_inline
def put_tile(tb, lo, hi, rows, outs):
    """Write column ``r`` of the tile buffer (cells in C order) to output plane ``rows[r]``.

    ``outs = (out32, out64)``, (nout, *qshape) float32 and float64 arrays of which one is
    empty: the output. Both dtypes in one signature, so a task compiles once for either.
    """
    out32, out64 = outs
    if out32.size > 0:
        _put(tb, lo, hi, rows, out32)
    else:
        _put(tb, lo, hi, rows, out64)


@_inline
def _put(tb, lo, hi, rows, out):
    wy = hi[1] - lo[1]
    wx = hi[2] - lo[2]
    for r in range(rows.shape[0]):
        o = out[rows[r]]
        for iz in range(lo[0], hi[0]):
            for iy in range(lo[1], hi[1]):
                base_c = ((iz - lo[0]) * wy + (iy - lo[1])) * wx - lo[2]
                for ix in range(lo[2], hi[2]):
                    o[iz, iy, ix] = tb[base_c + ix, r]


@_inline
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


@_inline
def node(origin, axes, iz, iy, ix):
    """Coordinates of lattice node ``(iz, iy, ix)``."""
    qx = origin[0] + iz * axes[0, 0] + iy * axes[1, 0] + ix * axes[2, 0]
    qy = origin[1] + iz * axes[0, 1] + iy * axes[1, 1] + ix * axes[2, 1]
    qz = origin[2] + iz * axes[0, 2] + iy * axes[1, 2] + ix * axes[2, 2]
    return qx, qy, qz


@_jit
def gather(bk, qlo, qhi, m, rlo, rhi, fb, ib):
    """Collect the samples of every bucket meeting the box ``[qlo - m, qhi + m]``.

    Parameters
    ----------
    bk : tuple
        ``(pts, start, blo, bsize, bshape)``: bucket-sorted sample coordinates and the
        bucket grid (see :func:`bucket_points`).
    qlo, qhi : (3,) float64
        The query box.
    m : float
        How far to widen it.
    rlo, rhi : (3,) float64
        Written: the box actually covered (infinite on a side where the bucket grid
        ends, since no sample lies beyond it).
    fb, ib : (rows, cap) float64 and int64
        Candidate buffers: coordinates go to ``fb[0:3]``, rows in ``pts`` to ``ib[0]``;
        replaced by larger ones when too small. (``fb[3:8]`` and ``ib[1:4]`` are the
        scratch of :func:`knn_tile`.)

    Returns
    -------
    nc : int
        Number of candidates.
    complete : bool
        Whether the covered box holds every sample.
    fb, ib : arrays
        The (possibly grown) buffers holding the candidates in their first ``nc`` columns.
    """
    pts, start, blo, bsize, bshape = bk
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
    # count first: buffers too small are replaced before any candidate is written, so
    # nothing has to be copied over
    total = 0
    for bz in range(blim[0, 0], blim[0, 1] + 1):
        for by in range(blim[1, 0], blim[1, 1] + 1):
            base = (bz * bshape[1] + by) * bshape[2]
            total += start[base + blim[2, 1] + 1] - start[base + blim[2, 0]]
    if total > fb.shape[1]:
        cap = max(2 * fb.shape[1], total)
        fb = np.empty((fb.shape[0], cap))
        ib = np.empty((ib.shape[0], cap), dtype=np.int64)
    nc = 0
    for bz in range(blim[0, 0], blim[0, 1] + 1):
        for by in range(blim[1, 0], blim[1, 1] + 1):
            base = (bz * bshape[1] + by) * bshape[2]
            s = start[base + blim[2, 0]]
            e = start[base + blim[2, 1] + 1]
            for j in range(s, e):
                fb[0, nc] = pts[j, 0]
                fb[1, nc] = pts[j, 1]
                fb[2, nc] = pts[j, 2]
                ib[0, nc] = j
                nc += 1
    return nc, complete, fb, ib


@_inline
def _by_distance(fb, ib, nc, c0x, c0y, c0z, order):
    """Candidates near-first from ``c0`` into rows 4-6 of ``fb``, 1 of ``ib``.

    With ``order`` (a tile of several cells: each cell stops scanning once the triangle
    inequality rules out every later candidate), they are bucketed into ``SHELLS``
    shells of equal width in squared distance from ``c0`` by a counting sort, and
    ``ib[3, b]`` is then the end of shell ``b``; without (a one-cell tile scans them all
    once), they are copied as they are. Returns the factor from a squared distance to
    its shell (0 without ``order``).

    Shells, not a full sort: a cell only needs where its last possible candidate ends,
    and the order within a shell does not change its neighbours (ties go by sample
    row). The counting sort is O(nc) and nearly free of mispredicted branches; with a
    full (shell) sort, gathering and ordering took a quarter of the search of 1e6
    samples onto 2048^2, and the search 1.29x the time it takes now.
    """
    if not order:
        for j in range(nc):
            fb[4, j] = fb[0, j]
            fb[5, j] = fb[1, j]
            fb[6, j] = fb[2, j]
            ib[1, j] = ib[0, j]
        return 0.0
    top = 0.0
    for j in range(nc):
        dx = fb[0, j] - c0x
        dy = fb[1, j] - c0y
        dz = fb[2, j] - c0z
        d2 = dx * dx + dy * dy + dz * dz
        fb[3, j] = d2
        top = max(top, d2)
    scale = SHELLS / top if top > 0.0 else 0.0
    shell = ib[2]
    end = ib[3]
    for b in range(SHELLS + 1):
        end[b] = 0
    for j in range(nc):
        b = min(int(fb[3, j] * scale), SHELLS - 1)
        shell[j] = b
        end[b + 1] += 1
    for b in range(SHELLS):
        end[b + 1] += end[b]
    # end[b] is the start of shell b; filling it moves it to the shell's end
    for j in range(nc):
        b = shell[j]
        p = end[b]
        end[b] = p + 1
        fb[4, p] = fb[0, j]
        fb[5, p] = fb[1, j]
        fb[6, p] = fb[2, j]
        ib[1, p] = ib[0, j]
    return scale


SHELLS = 64


@_inline
def _reach(ib, nc, ordered, scale, dq0, bound):
    """Count the near-first candidates that can lie within ``bound`` of a node.

    The node lies ``dq0`` from the centre of the shells (see :func:`_by_distance`):
    only candidates with ``|s - c0| <= dq0 + bound`` can be in range, those up to the
    end of that distance's shell (a hair wider, so rounding cannot drop one on the edge).
    """
    if ordered and bound < _INF:
        thr = dq0 + bound
        shell = thr * thr * (1.0 + 1e-9) * scale
        if shell < SHELLS:
            return ib[3, int(shell)]
    return nc


@_inline
def _distances(fb, j0, j1, qx, qy, qz):
    """Squared distances from ``q`` of candidates ``j0 <= j < j1`` (near-first), to ``fb[7]``."""
    sx = fb[4]
    sy = fb[5]
    sz = fb[6]
    dd = fb[7]
    for j in range(j0, j1):  # a tight, vectorisable distance pass
        dx = sx[j] - qx
        dy = sy[j] - qy
        dz = sz[j] - qz
        dd[j] = dx * dx + dy * dy + dz * dz


@_inline  # once per cell: a call and its array views cost a tenth of the search
def _nearest(fb, ib, lim, qx, qy, qz, k, bound2, kd, ki):
    """Find the ``k`` nearest of the first ``lim`` (near-first) candidates within ``bound2``.

    Writes their squared distances and rows, nearest first, to ``kd``, ``ki``; returns
    how many were found. Equal distances are ordered by sample row, so the neighbours
    of a cell do not depend on the tile it falls in (nor on the order of candidates).
    The candidates are inserted in turn: cheap where they come nearly in order of
    distance from ``q`` (few insertions, a predictable branch for the rest).
    """
    _distances(fb, 0, lim, qx, qy, qz)
    dd = fb[7]
    nfound = 0
    worst = bound2
    for j in range(lim):
        d2 = dd[j]
        row = ib[1, j]
        if d2 > worst or (d2 == worst and nfound == k and row > ki[k - 1]):
            continue
        pos = nfound if nfound < k else k - 1
        while pos > 0 and (kd[pos - 1] > d2 or (kd[pos - 1] == d2 and ki[pos - 1] > row)):
            kd[pos] = kd[pos - 1]
            ki[pos] = ki[pos - 1]
            pos -= 1
        kd[pos] = d2
        ki[pos] = row
        if nfound < k:
            nfound += 1
        if nfound == k:
            worst = kd[k - 1]
    return nfound


@_inline
def _compact(fb, ib, j1, bound2):
    """Copy the first ``j1`` candidates within ``bound2``, in order, to a short list.

    Their squared distances (``fb[7]``) go to ``fb[3]``, their rows to ``ib[2]`` (both
    free once the candidates are in shells); returns how many. Branch-free: where
    candidates come in no useful order, a branch per candidate mispredicts often.
    """
    n = 0
    for j in range(j1):
        fb[3, n] = fb[7, j]
        ib[2, n] = ib[1, j]
        n += fb[7, j] <= bound2
    return n


@_inline
def _nearest_ranked(fb, ib, lims, q, k, bounds2, kd, ki):
    """:func:`_nearest` for a node whose candidates come in no useful order.

    That is a node far from the centre of the shells relative to its neighbours'
    distance: near-first from the centre is then far from near-first from the node, and
    inserting in turn mispredicts a branch for about every other candidate. The tighter
    ``bounds2[0]`` is tried first over the first ``lims[0]`` candidates (those that can
    lie within it): when ``k`` of them do, the ``k`` nearest are among them; else all
    within ``bounds2[1]`` of the first ``lims[1]`` are taken. Those are copied to a short
    list (:func:`_compact`) and each placed by its rank, counted against all the others:
    branch-free and vectorised, but ``n^2`` comparisons for a list of ``n``, so the
    tighter bound pays. Returns how many were found, or -1 for a list longer than
    ``RANKED`` (nothing written: the caller inserts them with :func:`_nearest`).

    A rank counts the shorter distances only (one comparison per pair, not three), and
    every candidate is written to slot ``min(rank, k)`` (``kd`` and ``ki`` hold ``k +
    1``: the last slot takes those beyond the ``k`` nearest), so no branch decides
    whether it is written: that branch mispredicted for most of the ``n - k`` left out.
    Equal distances share a rank and so leave one unused: then (rarely) the list is
    ranked again with ties broken by row. The kernel alone, 1 thread, 1e6 samples onto
    2048^2 (1 Dec): 0.96x (one comparison) and then 0.90x (no branch) of the CPU time.
    """
    qx, qy, qz = q
    guess2, bound2 = bounds2
    lim, lim2 = lims
    _distances(fb, 0, lim, qx, qy, qz)
    n = _compact(fb, ib, lim, guess2)
    if n < k and guess2 < bound2:
        _distances(fb, lim, lim2, qx, qy, qz)
        n = _compact(fb, ib, lim2, bound2)
    if n > RANKED:
        return -1
    dd = fb[3]
    seen = 0  # bit r set: some candidate has rank r
    for i in range(n):
        d = dd[i]
        rank = 0
        for j in range(n):
            rank += dd[j] < d
        seen |= 1 << rank
        r = min(rank, k)
        kd[r] = d
        ki[r] = ib[2, i]
    if seen != (1 << n) - 1:  # equal distances: rank them by row too
        for i in range(n):
            d = fb[3, i]
            r = ib[2, i]
            rank = 0
            for j in range(n):
                rank += (fb[3, j] < d) | ((fb[3, j] == d) & (ib[2, j] < r))
            if rank < k:
                kd[rank] = d
                ki[rank] = r
    return min(n, k)


GUESS = 0.35
RANK_FROM = 0.04
# at most 62: _nearest_ranked marks the ranks it saw in the bits of one int64
RANKED = 32
assert RANKED <= 62


def _tile_search(ranked: bool, name: str) -> Any:
    """Compile the tile search (:func:`knn_tile`), with the ranked selection or without.

    With ``ranked``, each cell of a 2-D tile whose distance to the centre of the shells
    exceeds ``sqrt(RANK_FROM)`` times its bound takes a tighter first bound
    (``d_k(p) + GUESS step``) and ranks the candidates within it
    (:func:`_nearest_ranked`) instead of inserting them one by one: the same neighbours
    in the same order. ``ranked`` is a constant of the closure, so numba prunes the
    branch it guards before inlining and typing: the search without it compiles no
    ranked code (passed as an argument, the ranked code inlined but never run doubled the
    cold compile of :func:`knn_tile`, 6-7 s to 11-13 s CPU; one function holding both
    searches, each inlining :func:`_nearest`, took 21-25 s), and the search with it is
    a kernel of its own, compiled (and cached, under ``name``) only when a lattice first
    needs it (see :func:`plan_tiles`).
    """

    def search(bk, origin, axes, lo, hi, k, radius, state, work, nbr):
        """Find the ``k`` nearest samples within ``radius`` of every lattice node of one tile.

        Parameters
        ----------
        bk : tuple
            ``(pts, start, blo, bsize, bshape)``: bucket-sorted sample coordinates and the
            bucket grid (see :func:`bucket_points`).
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
            Carried from tile to tile (see :func:`new_task`); updated.
        work : tuple
            Scratch from :func:`new_task`.
        nbr : tuple
            ``(nbr_i, nbr_d2, nbr_n)``, written: for tile cell ``c`` (C order over the
            tile), the rows in ``pts`` of its neighbours and their squared distances,
            nearest first, in the first ``nbr_n[c]`` slots (< k only where the radius cuts).

        Returns
        -------
        tuple
            ``work``, with candidate buffers grown where needed.
        """
        fb, ib, boxes, done, kd, ki = work
        nbr_i, nbr_d2, nbr_n = nbr
        bsize = bk[3]
        ty = hi[1] - lo[1]
        tx = hi[2] - lo[2]
        ncells = (hi[0] - lo[0]) * ty * tx
        r2 = radius * radius
        qlo = boxes[0]
        qhi = boxes[1]
        rlo = boxes[2]
        rhi = boxes[3]
        tile_box(origin, axes, lo, hi, qlo, qhi)
        for c in range(ncells):
            done[c] = False
        m = min(state[0], radius)
        remaining = ncells
        max_need = 0.0
        # lattice step lengths: the distance from a cell to its neighbour along x, y, z
        step_x = math.sqrt(axes[2, 0] ** 2 + axes[2, 1] ** 2 + axes[2, 2] ** 2)
        step_y = math.sqrt(axes[1, 0] ** 2 + axes[1, 1] ** 2 + axes[1, 2] ** 2)
        step_z = math.sqrt(axes[0, 0] ** 2 + axes[0, 1] ** 2 + axes[0, 2] ** 2)
        # a tile wider (x) than tall (y) is searched in sub-tiles as wide as it is tall: the
        # candidates gathered once for the tile are put in shells around each sub-tile's
        # centre in turn, so a cell scans out to its distance from the nearer centre
        nsx = (tx + ty - 1) // ty
        wx = (tx + nsx - 1) // nsx
        last_c = -1  # the last cell verified with k neighbours, and its k-th distance
        last_dk = 0.0
        while remaining > 0:
            nc, complete, fb, ib = gather(bk, qlo, qhi, m, rlo, rhi, fb, ib)
            for jx in range(lo[2], hi[2], wx):
                ex = min(jx + wx, hi[2])
                ordered = (hi[0] - lo[0]) * ty * (ex - jx) > 1
                # candidates in shells of distance from the sub-tile's centre: a
                # cell stops scanning once the triangle inequality rules out every
                # later candidate
                c0x, c0y, c0z = node(
                    origin,
                    axes,
                    0.5 * (lo[0] + hi[0] - 1),
                    0.5 * (lo[1] + hi[1] - 1),
                    0.5 * (jx + ex - 1),
                )
                scale = _by_distance(fb, ib, nc, c0x, c0y, c0z, ordered)
                for iz in range(lo[0], hi[0]):
                    for iy in range(lo[1], hi[1]):
                        for ix in range(jx, ex):
                            c = ((iz - lo[0]) * ty + (iy - lo[1])) * tx + (ix - lo[2])
                            if done[c]:
                                continue
                            qx, qy, qz = node(origin, axes, iz, iy, ix)
                            # distance from the node to the edge of the gathered region
                            margin = min(
                                qx - rlo[0],
                                rhi[0] - qx,
                                qy - rlo[1],
                                rhi[1] - qy,
                                qz - rlo[2],
                                rhi[2] - qz,
                            )
                            dx = qx - c0x
                            dy = qy - c0y
                            dz = qz - c0z
                            dq0 = math.sqrt(dx * dx + dy * dy + dz * dz)
                            # d_k(q) <= d_k(p) + |q - p| for any verified cell p: the cell one
                            # step back along x, else y, else z, where the tile has it (at a row
                            # or sub-tile start the last cell searched lies a row away), else
                            # the last cell searched
                            cref = c - 1
                            step = step_x
                            if ix == lo[2]:
                                cref = c - tx if iy > lo[1] else c - ty * tx
                                step = step_y if iy > lo[1] else step_z
                            if cref >= 0 and done[cref] and nbr_n[cref] == k:
                                # the cell just searched (most often) needs no square root
                                dkp = last_dk if cref == last_c else math.sqrt(nbr_d2[cref, k - 1])
                                ub = dkp + step
                                guess = dkp + GUESS * step
                            elif state[1] > 0.0:
                                dx = qx - state[2]
                                dy = qy - state[3]
                                dz = qz - state[4]
                                ub = state[5] + math.sqrt(dx * dx + dy * dy + dz * dz)
                                guess = ub
                            else:
                                ub = _INF
                                guess = _INF
                            ub *= 1.0 + 1e-9
                            bound2 = min(ub * ub, r2)
                            lim = _reach(ib, nc, ordered, scale, dq0, min(ub, radius))
                            nfound = -1
                            if ranked:  # a constant: pruned before typing where False
                                if ordered and dq0 * dq0 > RANK_FROM * bound2:
                                    guess *= 1.0 + 1e-9
                                    guess2 = min(guess * guess, r2)
                                    glim = _reach(ib, nc, ordered, scale, dq0, min(guess, radius))
                                    lims = (glim, lim)
                                    nfound = _nearest_ranked(
                                        fb, ib, lims, (qx, qy, qz), k, (guess2, bound2), kd, ki
                                    )
                            if nfound < 0:
                                nfound = _nearest(fb, ib, lim, qx, qy, qz, k, bound2, kd, ki)
                            dk = math.sqrt(kd[k - 1]) if nfound == k else _INF
                            need = min(dk, radius)
                            if margin < need and not complete:
                                continue  # a closer sample may lie outside: widen and retry
                            if need > max_need and need < _INF:
                                max_need = need
                            if nfound == k:
                                state[1] = 1.0
                                state[2] = qx
                                state[3] = qy
                                state[4] = qz
                                state[5] = dk
                                last_c = c
                                last_dk = dk
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
        return fb, ib, boxes, done, kd, ki

    search.__name__ = search.__qualname__ = name
    return _jit(search)


knn_tile = _tile_search(False, "knn_tile")
knn_tile_ranked = _tile_search(True, "knn_tile_ranked")
