"""Running a store's write tasks band by band, so that the inputs in flight are one band's.

Dask's local schedulers run a graph in the order :func:`dask.order.order` gives it, which
for overlapping windows (``map_overlap``, a score's halos) starts many chunks' inputs long
before their outputs are written: scoring an 8-element stack in a 16 x 40 grid of chunks
held 546 halo pieces (3.5 rows of input chunks) at once, and the count grew with the rows
as well as the width, so an 8 x 20,000^2 job would hold several GB. :func:`run_in_bands`
instead computes the write tasks in bands of consecutive chunks along the leading dim (row
major), one local-scheduler call per band, so that at most one band's inputs are in flight.

Every task still runs exactly once: a task needed by the writes of several bands is
computed with the first of them and kept (handed to the next calls as data) until the last
one has run; for halos that is one row of input chunks, bounded by the width alone.

Measured (``asv_bench/peakmem_score.py``): the results dask holds in one call no longer
grow with the rows (16 x 40 chunks of 64: 18.2 MB held before, 6.8 MB in bands of one
row). The bands follow the arrays' leading dim (``y``), named by
:func:`~xprospect.io._resume.grid_dims`: they once followed the first of ``Dataset.dims``,
which for a score's map is ``x``, so the "rows" were columns as tall as the raster and the
peak RSS grew with the height (8 x 4096 columns, chunks 512: 0.82 GB at 2048 rows, 1.08 GB
at 8192; after, band-end RSS flat over 16 bands of one row). What one band hands to the
next is copied out of its block when it is a thin slice (:func:`_compact`).

What a band hands on: the halos of its row need the next row's blocks, which the next band
needs whole again (their centres), so one row of input blocks is held from one band into
the next whatever the order; that part grows with the width (20 blocks of 8 x 1000^2
float32, 0.67 GB, across 20,000 columns in chunks of 1024), and only recomputing the blocks
would avoid it. Until the halo slices were planned with their blocks, this row's blocks
were held as well, whole, for the strips the next band cuts from them (two rows): now a
block wanted by later bands only through slices (``operator.getitem`` tasks, as
``dask.array.overlap`` makes them) has those slices computed in the band where it is at
hand, and only the strips are handed on (:func:`_plan`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dask
import numpy as np
from dask._task_spec import DataNode
from dask.core import get_deps

__all__ = ["band_chunks", "run_in_bands", "trim_memory"]

log = logging.getLogger(__name__)
_SLICERS = (operator.getitem,)  # what dask's overlap and rechunk slice blocks with


def _malloc_trim() -> Callable[[int], int] | None:
    """Return glibc's ``malloc_trim``, or None for another C library (macOS, Windows, musl)."""
    name = ctypes.util.find_library("c")
    try:
        fn = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if fn is not None:
        fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


_TRIM = _malloc_trim()


def trim_memory() -> bool:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim(0)``).

    Returns
    -------
    bool
        Whether anything was released (False where the C library has no ``malloc_trim``,
        or dask config ``xprospect.store.trim_memory`` is False).

    Notes
    -----
    Blocks freed by numpy and torch in dask's threads go back to glibc's per-thread arenas,
    which keep the pages: arrays under glibc's dynamic mmap threshold (which rises to 32 MB
    once such an array is freed) come from those arenas, and their free pages stay in the
    process's RSS, fragmented, band after band. ``dask.distributed`` meets the same with
    ``MALLOC_TRIM_THRESHOLD_`` in its workers' environment and documents calling
    ``malloc_trim`` on them ("automatically trim memory" in its worker-memory notes); here it
    runs once per band, a few milliseconds.
    """
    if _TRIM is None or not dask.config.get("xprospect.store.trim_memory", True):
        return False
    return bool(_TRIM(0))


def band_chunks(workers: int) -> int:
    """Least number of chunks in a band (dask config ``xprospect.store.band_chunks``).

    Parameters
    ----------
    workers : int
        Threads of the local scheduler.

    Returns
    -------
    int
        The config value when set, else ``8 * workers``: a band ends with a barrier (the
        last chunks of a band leave threads idle until the next call), so a band gives each
        thread several chunks; beyond that, a larger band only holds more inputs at once
        (dask's order reads a band's inputs ahead of its scores). It was ``max(64, 8 *
        workers)``: four rows of 20 chunks a band at 20,000 columns in chunks of 1000 on two
        threads, and the peak RSS of scoring 8 x 6144 x 8192 (chunks 1024, two threads)
        went from 1.71 GB in bands of four rows to 1.45 GB in bands of one, at the same wall
        time (``asv_bench/peakmem_score.py``).
    """
    n = dask.config.get("xprospect.store.band_chunks", None)
    return max(1, int(n)) if n is not None else max(1, 8 * int(workers))


def _is_slice(task: Any) -> bool:
    """Whether ``task`` only slices its input (``operator.getitem``: a halo's strip of a block)."""
    return any(getattr(task, "func", None) is f for f in _SLICERS)


def _plan(
    bands: Sequence[Sequence[Any]],
    dependencies: Mapping[Any, Any],
    dependents: Mapping[Any, Any] | None = None,
    slices: set[Any] | frozenset[Any] = frozenset(),
) -> tuple[list[dict[Any, Any]], list[list[Any]], dict[Any, int]]:
    """Walk the bands in order as they will run: each band's graph and what it must keep.

    Band ``b`` computes the ancestors of its keys that no earlier band computed; an
    earlier task it reaches is handed to it as data (and the walk stops there).
    ``slices`` are the keys of tasks that only slice their input (:func:`_is_slice`):
    when a block at hand in band ``b`` (computed or handed there) is wanted by later bands
    only through such slices (a halo's strips; needs ``dependents``), they are computed in
    band ``b`` too, so that the strips are handed on, not the whole block. Returns, per
    band, the tasks it computes (``{key: None}``, ordered) and the keys it must keep for
    later bands, and the last band that uses each kept key.
    """
    computed: dict[Any, int] = {}
    own: list[dict[Any, Any]] = []
    keep: list[list[Any]] = [[] for _ in bands]
    last: dict[Any, int] = {}
    for b, keys in enumerate(bands):
        mine: dict[Any, Any] = {}
        handed: set[Any] = set()
        seen: set[Any] = set()
        stack = list(keys)
        while stack:
            k = stack.pop()
            if k in seen:
                continue
            seen.add(k)
            done = computed.get(k)
            if done is not None and done < b:
                if k not in last:
                    keep[done].append(k)
                last[k] = b
                handed.add(k)
                continue
            computed[k] = b
            mine[k] = None
            stack.extend(dependencies.get(k, ()))
        for k in [*mine, *handed] if dependents is not None else ():
            later = [t for t in dependents[k] if t not in computed]  # type: ignore[index]
            # a block a later band also wants whole (a centre) is handed on whole anyway
            if later and all(t in slices for t in later):
                for t in later:
                    if all(d in mine or d in handed for d in dependencies[t]):
                        computed[t] = b
                        mine[t] = None
        own.append(mine)
    return own, keep, last


def _compact(value: Any) -> Any:
    """Return a numpy view as a copy when its base is at least twice its size.

    What one band hands to the next is mostly halo slices (``map_overlap``'s and a score's
    neighbour pieces): views of whole blocks, which would keep every block of a row alive
    (a row of 8-element blocks of 1024^2 across 20,000 columns is 670 MB) for strips a
    few cells thick. Anything else is kept as it is.
    """
    if not isinstance(value, np.ndarray) or value.base is None:
        return value
    base = value
    while isinstance(base.base, np.ndarray):
        base = base.base
    return value.copy() if 2 * value.nbytes <= base.nbytes else value


def _hold(held: dict[Any, Any], keys: Sequence[Any], values: Sequence[Any]) -> None:
    """Keep ``values`` (compacted) for later bands; what refers to the originals dies on return.

    The scheduler's results hold the uncompacted views and, through them, their whole
    blocks: bound to a name in :func:`run_in_bands`'s loop (the results, the loop's last
    value), they stayed alive through the next band's call, one more row of input blocks in
    memory.
    """
    for k, value in zip(keys, values, strict=True):
        held[k] = _compact(value)


def run_in_bands(
    graph: Mapping[Any, Any], bands: Sequence[Sequence[Any]], get: Callable[..., Any]
) -> None:
    """Compute the keys of each band in turn with ``get``, each task of the graph once.

    Parameters
    ----------
    graph : mapping
        The whole graph (keys to tasks).
    bands : sequence of sequences of keys
        The keys to compute (write tasks), in the order of their bands.
    get : callable
        A dask local scheduler's ``get(dsk, keys)``.
    """
    dsk = dict(graph)
    dependencies, dependents = get_deps(dsk)
    slices = {k for k, task in dsk.items() if _is_slice(task)}
    own, keep, last = _plan(bands, dependencies, dependents, slices)
    held: dict[Any, Any] = {}
    for b, keys in enumerate(bands):
        sub: dict[Any, Any] = {k: dsk[k] for k in own[b]}
        for k in own[b]:
            for d in dependencies.get(k, ()):
                if d not in sub:
                    sub[d] = DataNode(d, held[d])
        wanted = [*keys, *keep[b]]
        _hold(held, keep[b], get(sub, wanted)[len(keys) :])
        for k in [k for k in held if last[k] <= b]:
            del held[k]
        trim_memory()
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "band %d of %d written: %d values (%d bytes) held for later bands",
                b + 1,
                len(bands),
                len(held),
                sum(getattr(v, "nbytes", 0) for v in held.values()),
            )
