"""The completion ledger of a zarr store: the chunks it must hold, those written, the job.

:func:`xprospect.to_zarr` writes a store in three steps: the metadata, coordinates and
in-memory variables first, with a ledger in the root group's attrs (``xprospect_ledger``)
that lists the chunk grid and marks no chunk complete; then the chunks, each marked
complete in the ledger only after its data are on disk; then the ledger's state
``"complete"``. Zarr rewrites the root ``zarr.json`` atomically (a temporary file moved
into place), so a run killed at any moment leaves a ledger that never claims a chunk
that was not written. A chunk here is one block of the Dataset's chunk grid over all
the dims of its lazily written variables: every such variable's part of it (a variable
lacking one of those dims is written with the blocks at index 0 along it).

The ledger also holds the job's identity, a SHA-256 digest of the variables' names,
dims, shapes, dtypes, chunks and attrs, the coordinates' values, the dask graph's
token of each lazy variable (dask names are tokens of the functions and inputs that
produce them) and an optional caller-supplied ``job`` dict (parameters, a model
checkpoint's hash). ``resume=True`` refuses a store whose identity differs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
import zarr
from dask.array.optimization import optimize as optimize_array
from dask.base import collections_to_expr
from dask.core import flatten
from dask.highlevelgraph import HighLevelGraph
from xarray.backends.zarr import encode_zarr_variable
from zarr.core.sync import sync

from xprospect.io._chunks import ChunkWriter

__all__ = [
    "LEDGER_ATTR",
    "Ledger",
    "grid_dims",
    "job_identity",
    "read_ledger",
    "write_ledger",
]

LEDGER_ATTR = "xprospect_ledger"
_VERSION = 1


@dataclass
class Ledger:
    """The chunk grid a store must hold and which of its chunks are complete.

    Attributes
    ----------
    job : str
        Hex digest of the job's identity (:func:`job_identity`).
    dims : tuple of str
        Dims of the chunk grid, leading dim first (:func:`grid_dims`; stores written
        before it list them in the Dataset's order, which the ledger keeps).
    chunks : dict of str -> tuple of int
        Chunk sizes along each dim.
    done : set of int
        Flat (C-order) indices of the chunks written.
    state : {"init", "writing", "complete"}
        ``"init"`` until the metadata and in-memory variables are written.
    """

    job: str
    dims: tuple[str, ...]
    chunks: dict[str, tuple[int, ...]]
    done: set[int] = field(default_factory=set)
    state: str = "init"

    @property
    def grid(self) -> tuple[int, ...]:
        """Number of chunks along each dim."""
        return tuple(len(self.chunks[d]) for d in self.dims)

    @property
    def total(self) -> int:
        """Number of chunks the store must hold."""
        return int(np.prod(self.grid, dtype=np.int64))

    @property
    def missing(self) -> list[int]:
        """Flat indices of the chunks not yet written, in order."""
        return [i for i in range(self.total) if i not in self.done]

    @property
    def complete(self) -> bool:
        """Whether every chunk is written and the write finished."""
        return self.state == "complete" or (
            self.state == "writing" and len(self.done) == self.total
        )

    def region(self, flat: int) -> dict[str, slice]:
        """Return the index slices of one chunk, by dim."""
        index = np.unravel_index(flat, self.grid) if self.dims else ()
        out = {}
        for d, i in zip(self.dims, index, strict=True):
            start = sum(self.chunks[d][: int(i)])
            out[d] = slice(start, start + self.chunks[d][int(i)])
        return out

    def block_index(self, flat: int) -> dict[str, int]:
        """Return the chunk's index along each dim."""
        index = np.unravel_index(flat, self.grid) if self.dims else ()
        return {d: int(i) for d, i in zip(self.dims, index, strict=True)}

    def to_attr(self) -> dict[str, Any]:
        """JSON form stored in the root group's attrs (``done`` as a hex bitmap)."""
        bits = np.zeros(self.total, dtype=bool)
        bits[sorted(self.done)] = True
        return {
            "version": _VERSION,
            "job": self.job,
            "state": self.state,
            "dims": list(self.dims),
            "chunks": {d: list(self.chunks[d]) for d in self.dims},
            "total": self.total,
            "n_done": len(self.done),
            "done": np.packbits(bits).tobytes().hex(),
        }

    @classmethod
    def from_attr(cls, attr: Mapping[str, Any]) -> Ledger:
        """Read the JSON form back."""
        dims = tuple(attr["dims"])
        chunks = {d: tuple(int(c) for c in attr["chunks"][d]) for d in dims}
        ledger = cls(job=str(attr["job"]), dims=dims, chunks=chunks, state=str(attr["state"]))
        bits = np.unpackbits(np.frombuffer(bytes.fromhex(attr["done"]), dtype=np.uint8))
        ledger.done = {int(i) for i in np.flatnonzero(bits[: ledger.total])}
        return ledger

    def complete_mask(self, sizes: Mapping[str, int]) -> xr.DataArray:
        """Boolean DataArray over the ledger's dims, True in the chunks written."""
        grid = np.zeros(self.grid, dtype=bool)
        for i in self.done:
            grid[np.unravel_index(i, self.grid)] = True
        if self.state == "complete":
            grid[...] = True
        data = grid
        for axis, d in enumerate(self.dims):
            data = np.repeat(data, self.chunks[d], axis=axis)
        if data.shape != tuple(sizes[d] for d in self.dims):
            raise ValueError("ledger chunks do not cover the store's dims")
        return xr.DataArray(data, dims=self.dims)


def read_ledger(path: str) -> Ledger | None:
    """Read the ledger of the store at ``path``; None when it has none (or no root group)."""
    try:
        group = zarr.open_group(path, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError):
        return None
    attr = group.attrs.get(LEDGER_ATTR)
    return None if not isinstance(attr, Mapping) else Ledger.from_attr(attr)


def write_ledger(path: str, ledger: Ledger | Mapping[str, Any], group: Any = None) -> Any:
    """Store the ledger in the root group's attrs (zarr writes ``zarr.json`` atomically).

    ``ledger``: a :class:`Ledger` or its :meth:`Ledger.to_attr` (a snapshot taken earlier).

    ``group``: the root group opened by an earlier call (its return value), reused: opening
    it reads and parses ``zarr.json`` with the consolidated metadata of every array, about
    two thirds of a rewrite's CPU (16 maps: 10 ms a rewrite reopening, 3.6 ms reusing).
    The file written is the same: only this writer changes the store's metadata meanwhile.
    """
    if group is None:
        group = zarr.open_group(path, mode="r+")
    attr = ledger.to_attr() if isinstance(ledger, Ledger) else dict(ledger)
    group.attrs.update({LEDGER_ATTR: attr})
    return group


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {
            "ndarray": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(),
            "dtype": str(value.dtype),
            "shape": list(value.shape),
        }
    if isinstance(value, (np.generic,)):
        return value.item()
    return repr(value)


def job_identity(
    ds: xr.Dataset, job: Mapping[str, Any] | None = None, skip_attrs: Sequence[str] = ()
) -> str:
    """SHA-256 hex digest identifying what a store is being filled with.

    Parameters
    ----------
    ds : xarray.Dataset
        The data about to be written (lazy or not).
    job : dict, optional
        Caller-supplied parameters (e.g. a model checkpoint's hash); must be JSON-able
        (other values are compared by ``repr``).
    skip_attrs : sequence of str
        Dataset attrs that do not belong to the identity (the ledger itself).

    Returns
    -------
    str
    """
    parts: dict[str, Any] = {
        "attrs": {k: v for k, v in ds.attrs.items() if k not in skip_attrs},
        "job": dict(job) if job is not None else None,
        "variables": {},
    }
    for name, var in ds.variables.items():
        entry: dict[str, Any] = {
            "dims": list(var.dims),
            "shape": list(var.shape),
            "dtype": str(var.dtype),
            "attrs": dict(var.attrs),
            "chunks": [list(c) for c in var.chunks] if var.chunks else None,
        }
        if isinstance(var.data, da.Array):
            entry["data"] = var.data.name  # dask's token of the graph producing it
        else:
            entry["data"] = dask.base.tokenize(np.asarray(var.values))
        parts["variables"][str(name)] = entry
    text = json.dumps(parts, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()


def lazy_variables(ds: xr.Dataset) -> list[str]:
    """Names of the variables whose data are dask arrays (written chunk by chunk)."""
    return [
        str(n)
        for n, v in ds.variables.items()
        if isinstance(v.data, da.Array) and n not in ds.indexes
    ]


def grid_dims(ds: xr.Dataset) -> tuple[str, ...]:
    """Dims of the lazy variables' chunk grid, in their arrays' order (leading dim first).

    The variables with the most dims come first, and each dim takes its place in the first
    variable that has it: for ``(y, x)`` maps that is ``("y", "x")`` whatever the order of
    ``ds.dims`` (which follows the coordinates: a score's map lists ``x`` first), so that a
    chunk's flat index runs in the arrays' C order and the bands of
    :mod:`xprospect.io._bands` are rows of the map, not columns.
    """
    names = sorted(lazy_variables(ds), key=lambda n: -ds[n].ndim)
    dims: dict[str, None] = {}
    for n in names:
        dims.update(dict.fromkeys(str(d) for d in ds[n].dims))
    return tuple(dims)


def plan(ds: xr.Dataset, job: str) -> Ledger:
    """Make the ledger of a Dataset whose lazy variables share one chunk grid."""
    names = lazy_variables(ds)
    dims = grid_dims(ds)
    chunks: dict[str, tuple[int, ...]] = {}
    for n in names:
        for d, c in zip(ds[n].dims, ds[n].chunks or (), strict=True):
            chunks.setdefault(str(d), tuple(int(x) for x in c))
    return Ledger(job=job, dims=dims, chunks=chunks)


@dataclass(frozen=True)
class _Target:
    """One variable's part of one chunk: where it goes and how it is written.

    A block whose first cell differs from the fill value cannot be an empty chunk: it is
    written without zarr's check of every cell against the fill value (``np.array_equal``
    with ``equal_nan``, about 0.5 s of CPU per GB of float32), by ``writer`` when the
    region is one whole chunk of a local store (:mod:`xprospect.io._chunks`), else through
    ``dense`` (the array configured with ``write_empty_chunks``). Any other block goes
    through ``array``, which skips (does not store) a chunk holding only the fill value,
    unless ``writer`` takes it: then :meth:`empty` decides as zarr does (a few cells
    first, every cell only when those are the fill value), an empty chunk is not stored
    (:meth:`~xprospect.io._chunks.ChunkWriter.drop`) and any other is written directly: the
    border chunks of a masked map (NaN in their first cell) no longer go through zarr's
    event loop and pipeline.
    """

    array: Any
    dense: Any
    fill: Any
    writer: ChunkWriter | None
    region: tuple[slice, ...]
    coords: tuple[int, ...] | None

    def empty(self, block: np.ndarray) -> bool:
        """Whether every cell of ``block`` is the fill value (zarr's ``all_equal``, NaN equal).

        A few cells (the last, the middle) are looked at first: a border chunk of a masked
        map starts with the fill value but seldom ends with it.
        """
        if block.size == 0:
            return True
        flat = block.reshape(-1) if block.flags.c_contiguous else block.ravel(order="K")
        nan = block.dtype.kind in "fc" and bool(np.isnan(self.fill))
        for i in (flat.size - 1, flat.size // 2):
            cell = flat[i]
            if not (np.isnan(cell) if nan else cell == self.fill):
                return False
        if nan:
            return bool(np.isnan(block).all())
        return bool((block == self.fill).all())

    def maybe_empty(self, block: np.ndarray) -> bool:
        """Whether ``block`` may hold only the fill value (its first cell does)."""
        if block.size == 0 or self.fill is None:
            return True
        first = block.flat[0]
        return bool(
            first == self.fill
            or (block.dtype.kind in "fc" and np.isnan(first) and np.isnan(self.fill))
        )


def direct_writes() -> bool:
    """Whether whole chunks of a local store skip zarr's write path (:mod:`._chunks`).

    Returns
    -------
    bool
        Dask config ``xprospect.store.direct_writes`` (default True). With False every
        chunk goes through ``zarr.Array.__setitem__`` and zarr's check of every cell
        against the fill value (to compare the two, or with a zarr that changed).
    """
    return bool(dask.config.get("xprospect.store.direct_writes", True))


def _sink(array: Any) -> tuple[Any, Any, Any, ChunkWriter | None]:
    """Return ``array``, its dense twin, its fill value and its chunk writer (:class:`_Target`)."""
    if not direct_writes():  # zarr's own path for every chunk, its empty-chunk check included
        return array, array, None, None
    fill = array.metadata.fill_value
    try:
        fill = None if fill is None else np.asarray(fill, dtype=array.dtype)[()]
    except (TypeError, ValueError):
        fill = None
    return array, array.with_config({"write_empty_chunks": True}), fill, ChunkWriter.of(array)


def _target(sink: tuple[Any, Any, Any, ChunkWriter | None], region: tuple[slice, ...]) -> _Target:
    writer = sink[3]
    coords = writer.coords(region) if writer is not None else None
    return _Target(*sink, region, coords)


async def _write_all(targets: Sequence[_Target], blocks: Sequence[np.ndarray]) -> None:
    await asyncio.gather(
        *(
            (t.array if t.maybe_empty(b) else t.dense).async_array.setitem(t.region, b)
            for t, b in zip(targets, blocks, strict=True)
        )
    )


def _write_block(flat: int, targets: Sequence[_Target], *blocks: Any) -> int:
    # whole chunks of a local store are encoded and written here, in the dask thread that
    # computed them (xprospect.io._chunks); the rest go in one trip through zarr's event loop,
    # encoded and written concurrently (one ``array[region] = block`` per variable would wait
    # for the loop once each: 16 round trips per chunk for IDW of 16 elements)
    rest: list[tuple[_Target, np.ndarray]] = []
    for t, b in zip(targets, blocks, strict=True):
        block = np.asarray(b)
        if t.writer is not None and t.coords is not None and t.fill is not None:
            if not t.maybe_empty(block) or not t.empty(block):
                t.writer.write(t.coords, block)
            else:  # zarr does not store an empty chunk (and deletes one stored before)
                t.writer.drop(t.coords)
        else:
            rest.append((t, block))
    if rest:
        sync(_write_all([t for t, _ in rest], [b for _, b in rest]))
    return flat


def write_tasks(
    ds: xr.Dataset, path: str, ledger: Ledger, todo: Sequence[int], group: Any = None
) -> tuple[dict[Any, int], HighLevelGraph]:
    """Graph of one write task per chunk in ``todo``; returns ``{key: chunk}`` and the graph.

    Each task takes the chunk's block of every lazy variable (encoded the way xarray
    encodes it for zarr) and writes it into the store's zarr arrays. ``group``: the store's
    root group when it is already open (else it is opened here).
    """
    names = lazy_variables(ds)
    if group is None:
        group = zarr.open_group(path, mode="r+")
    encoded = [encode_zarr_variable(ds.variables[n], name=n, zarr_format=3) for n in names]
    arrays = [e.data for e in encoded]
    layer_name = f"xprospect-write-{ledger.job[:16]}-{dask.base.tokenize(path, list(todo))}"
    layers, deps = _input_layers(arrays, f"{layer_name}-inputs")
    layer: dict[Any, Any] = {}
    keys: dict[Any, int] = {}
    sinks = {n: _sink(group[n]) for n in names}  # opened once: each opening reads metadata
    for flat in todo:
        region = ledger.region(flat)
        index = ledger.block_index(flat)
        targets, blocks = [], []
        for n, var, arr in zip(names, encoded, arrays, strict=True):
            if any(index[d] != 0 for d in ledger.dims if d not in var.dims):
                continue  # written once, with the chunks at index 0 along the dims it lacks
            key = (arr.name, *(index[str(d)] for d in var.dims))
            targets.append(_target(sinks[n], tuple(region[str(d)] for d in var.dims)))
            blocks.append(key)
        key = (layer_name, flat)
        layer[key] = (_write_block, flat, targets, *blocks)
        keys[key] = flat
    graph = HighLevelGraph({**layers, layer_name: layer}, {**deps, layer_name: set(layers)})
    return keys, graph


def _input_layers(
    arrays: Sequence[da.Array], name: str
) -> tuple[dict[str, Any], dict[str, set[str]]]:
    """Return the graph of the variables to write, optimised once for all (layers, deps).

    All the variables are optimised together: ``dask.optimize(*arrays)`` fuses each one's
    graph on its own, renaming the keys they share, so that a block feeding several
    variables (IDW's elements, a model's outputs) was computed once per variable. When a
    layer carries dask annotations (``score(resources={"GPU": 1})``), low-level task fusion
    is left out: it merges the graph into one layer and drops every annotation, so the
    scheduler would place the model's tasks on any worker. Blockwise fusion and culling
    still run and keep the annotations.
    """
    graph = HighLevelGraph.merge(*(a.__dask_graph__() for a in arrays))
    if not any(layer.annotations for layer in graph.layers.values()):
        expr = collections_to_expr(list(arrays), optimize_graph=True).optimize()
        return {name: dict(expr.__dask_graph__())}, {name: set()}
    keys = [k for a in arrays for k in flatten(a.__dask_keys__())]
    with dask.config.set({"optimization.fuse.active": False}):
        kept = optimize_array(graph, keys)
    return dict(kept.layers), {k: set(v) for k, v in kept.dependencies.items()}


def ledger_interval() -> float:
    """Seconds between two writes of the ledger while chunks complete.

    Returns
    -------
    float
        Dask config ``xprospect.store.ledger_interval`` (default 1.0; 0 writes it as soon
        as a chunk is done). Rewriting the root ``zarr.json`` costs tens of milliseconds of
        wall time (a few of CPU: :func:`write_ledger` reuses the open group), so it
        is done at most this often: a run killed in between recomputes, on resuming, the
        chunks written since the last write (never the other way round: a chunk is
        only marked after its data are on disk).
    """
    return max(0.0, float(dask.config.get("xprospect.store.ledger_interval", 1.0)))


def ledger_thread() -> bool:
    """Whether :class:`LedgerUpdater` rewrites the ledger from a thread of its own.

    Returns
    -------
    bool
        Dask config ``xprospect.store.ledger_thread`` (default True). With False the
        rewrites run in the thread that reports the chunks done: with dask's local
        schedulers that is the scheduler's own thread, which dispatches no task while it
        waits on the file (6 ms a rewrite on a quiet machine, 30-45 ms under load: a
        rename over ``zarr.json`` makes ext4 start writing it back).
    """
    return bool(dask.config.get("xprospect.store.ledger_thread", True))


class LedgerUpdater:
    """Marks chunks complete in the store's ledger as their write tasks finish (thread-safe).

    The ledger is rewritten at most every :func:`ledger_interval` seconds, by a writer
    thread (:func:`ledger_thread`) so that the caller (dask's scheduler thread) never waits
    on the file; each rewrite holds the chunks recorded when it starts, all of them written
    to disk before they were recorded. :meth:`close` stops the writer and writes the chunks
    recorded since its last rewrite (and the state ``"complete"`` after a whole run).

    Parameters
    ----------
    path : str
        Folder of the store.
    ledger : Ledger
        The ledger to keep up to date (``done`` grows as chunks are recorded).
    bar : progress bar
        Advanced by one for every chunk recorded.
    group : zarr.Group, optional
        The store's root group, already open (saves reading ``zarr.json`` again).
    """

    def __init__(self, path: str, ledger: Ledger, bar: Any, group: Any = None) -> None:
        self.path = path
        self.ledger = ledger
        self.bar = bar
        self.interval = ledger_interval()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending = 0
        self._last = time.monotonic()
        self._group: Any = group  # the root group (opened by the first write when None)
        self._due = False  # a rewrite was asked of the writer thread
        self._stop = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if ledger_thread():
            self._thread = threading.Thread(
                target=self._run, name=f"xprospect-ledger {path}", daemon=True
            )
            self._thread.start()

    def done(self, flat: int) -> None:
        """Record one chunk written (its data already on disk)."""
        with self._lock:
            self.ledger.done.add(int(flat))
            self._pending += 1
            if time.monotonic() - self._last >= self.interval:
                if self._thread is None:
                    self._write(self.ledger.to_attr())
                else:
                    self._last = time.monotonic()
                    self._due = True
                    self._wake.notify()
            self.bar.update(1)

    def close(self, complete: bool = False) -> None:
        """Stop the writer thread and write what it has not; ``complete``: the run finished.

        Raises
        ------
        Exception
            What a rewrite in the writer thread raised (a full disk, a removed store).
        """
        thread, self._thread = self._thread, None
        if thread is not None:
            with self._lock:
                self._stop = True
                self._wake.notify()
            thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        with self._lock:
            if complete:
                self.ledger.state = "complete"
            if complete or self._pending:
                self._write(self.ledger.to_attr())

    def _run(self) -> None:
        while True:
            with self._lock:
                while not (self._due or self._stop):
                    self._wake.wait()
                if not self._due:
                    return
                self._due = False
                attr = self.ledger.to_attr()  # the chunks recorded so far, all on disk
                self._pending = 0
            try:
                self._group = write_ledger(self.path, attr, self._group)
            except BaseException as err:  # handed to close(), in the caller's thread
                with self._lock:
                    self._error = err
                return

    def _write(self, attr: dict[str, Any]) -> None:
        self._group = write_ledger(self.path, attr, self._group)
        self._pending = 0
        self._last = time.monotonic()
