"""The one runner for "a function of cell centres", chunk by chunk, on numpy or dask grids.

Gridding (IDW, kriging), distances to points, samples or meshes and inside/outside tests
all evaluate some function at the cell centres of a 2-D (y, x) or 3-D (z, y, x) template.
:func:`map_cells` is the single place that turns such a function into a numpy array (one
call on the whole grid) or a lazy dask array (one call per chunk), so that every caller
gets the same chunk rules, the same study-mask handling and the same threading rule:

- the output chunks are the template's dask chunks along the grid dims (or ``chunks=``);
- a boolean study mask sets the cells outside it to ``fill``, and a chunk with no cell
  inside the mask is never computed;
- numba ``parallel=True`` kernels may only be entered from the main thread (numba's
  default workqueue threading layer aborts the process when two threads enter a
  parallel region at once), so :attr:`Block.parallel` is True only for a numpy template
  evaluated on the main thread; dask chunks run serial kernels side by side instead.

Thread policy (no oversubscription). A dask pool already runs one task per core, so a
chunk computed on a dask thread must not start a thread team of its own:

- inside every chunk run by :func:`map_cells` or :func:`xprospect.score.score` on a dask
  thread, BLAS (OpenBLAS, MKL) and OpenMP are limited to :func:`block_threads` threads
  (default 1; dask config ``xprospect.threads.block``) through threadpoolctl; numba kernels
  there are serial by the rule above, so they use one thread too;
- a network is called one call at a time per process and device (see
  :mod:`xprospect.score._device`), so that call gets :func:`model_threads` torch threads:
  the cores dask gave the process (a ``dask.distributed`` worker's ``nthreads``, else the
  threaded scheduler's ``num_workers`` or the cores available); dask config
  ``xprospect.threads.model`` overrides it.

OpenMP's thread count is per calling thread, so the limits of one dask thread do not leak
into another or into the main thread; the BLAS limit is process-wide, so it is set when the
first chunk starts and restored when the last running chunk ends.

The function sees a :class:`Block` describing the cells it must fill and returns a numpy
array of shape ``block.shape`` (or ``(nout, *block.shape)``). Because each block is
computed from its own coordinates only, a numpy run and a dask run of the same function
give identical values.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.system import CPU_COUNT
from threadpoolctl import ThreadpoolController

from xprospect._dims import ELEMENT_DIM, grid_geometry
from xprospect._progress import ChunkProgress, distributed_client
from xprospect.exceptions import GridError

__all__ = [
    "Block",
    "block_threads",
    "chunk_threads",
    "compute_once",
    "even_chunks",
    "grid_chunks",
    "is_main_thread",
    "map_cells",
    "model_threads",
    "study_mask",
]


@dataclass(frozen=True)
class Block:
    """One block of cells handed to a :func:`map_cells` function.

    Attributes
    ----------
    dims : tuple of str
        Grid dims, ``("y", "x")`` or ``("z", "y", "x")``.
    start : tuple of int
        Index of the block's first cell along each grid dim.
    shape : tuple of int
        Number of cells along each grid dim.
    coords : tuple of numpy.ndarray
        1-D float64 cell-centre coordinates of the block along each grid dim (in the
        template's order: a descending ``y`` stays descending).
    mask : numpy.ndarray or None
        The study-mask block (boolean, ``shape``; True = compute), or None without one.
        The runner already sets the cells outside it to the fill value after the call;
        a function may use it to skip work.
    parallel : bool
        Whether numba ``parallel=True`` kernels may be used: True only when the whole
        numpy grid is evaluated in one call on the main thread.
    """

    dims: tuple[str, ...]
    start: tuple[int, ...]
    shape: tuple[int, ...]
    coords: tuple[np.ndarray, ...]
    mask: np.ndarray | None
    parallel: bool

    @property
    def ndim(self) -> int:
        """Number of grid dims (2 or 3)."""
        return len(self.dims)

    @property
    def slices(self) -> tuple[slice, ...]:
        """Index of this block in the full grid, one slice per grid dim."""
        return tuple(slice(s, s + n) for s, n in zip(self.start, self.shape, strict=True))

    def centres(self) -> np.ndarray:
        """Cell centres of the block as an ``(ncells, ndim)`` array in dims order (C order)."""
        grids = np.meshgrid(*self.coords, indexing="ij")
        return np.column_stack([g.ravel() for g in grids])


def is_main_thread() -> bool:
    """Whether the caller runs on the main thread (where numba parallel kernels are safe)."""
    return threading.current_thread() is threading.main_thread()


def _distributed_worker() -> Any | None:
    """Return the ``dask.distributed`` worker running the caller, or None."""
    if "distributed" not in sys.modules:
        return None
    from distributed import get_worker  # lazy: optional, only on a cluster

    try:
        return get_worker()
    except ValueError:
        return None


def model_threads() -> int:
    """Torch threads for one model call (calls are serialised per process and device).

    Returns
    -------
    int
        Dask config ``xprospect.threads.model`` when set; else the ``nthreads`` of the
        ``dask.distributed`` worker running the caller; else the threaded scheduler's
        ``num_workers`` or the cores available to the process.
    """
    n = dask.config.get("xprospect.threads.model", None)
    if n is None:
        worker = _distributed_worker()
        if worker is not None:
            n = worker.state.nthreads
        else:
            n = dask.config.get("num_workers", None) or CPU_COUNT
    return max(1, int(n))


def block_threads() -> int:
    """BLAS/OpenMP threads for the other numerical work of one chunk on a dask thread.

    Returns
    -------
    int
        Dask config ``xprospect.threads.block`` (default 1: the dask pool already runs
        one chunk per core).
    """
    return max(1, int(dask.config.get("xprospect.threads.block", 1)))


_LIMITS_LOCK = threading.Lock()
_LIMITS: dict[str, Any] = {"depth": 0, "blas": None, "controller": None}
# threadpoolctl scans the loaded libraries when a controller is made (a few ms): once per
# wave of chunks (when the first of them starts), so that a BLAS loaded later (scipy's after
# numpy's) is limited too


@contextmanager
def chunk_threads() -> Iterator[None]:
    """Apply the thread policy of the module's notes while one chunk runs on a dask thread.

    On the main thread (a numpy grid computed in one call) nothing is limited: that call
    may use every core. Nested uses are harmless.

    Yields
    ------
    None
    """
    if is_main_thread():
        yield
        return
    n = block_threads()
    with _LIMITS_LOCK:
        if _LIMITS["depth"] == 0:
            _LIMITS["controller"] = ThreadpoolController()
        ctl = _LIMITS["controller"]
        if _LIMITS["depth"] == 0:
            # select() first: a limiter restores every library of its controller
            _LIMITS["blas"] = ctl.select(user_api="blas").limit(limits=n)
        _LIMITS["depth"] += 1
    omp = ctl.select(user_api="openmp").limit(limits=n)  # per calling thread
    try:
        yield
    finally:
        omp.restore_original_limits()
        with _LIMITS_LOCK:
            _LIMITS["depth"] -= 1
            if _LIMITS["depth"] == 0 and _LIMITS["blas"] is not None:
                _LIMITS["blas"].restore_original_limits()
                _LIMITS["blas"] = None


def compute_once(obj: xr.DataArray) -> xr.DataArray:
    """Return ``obj`` with its values in memory, its dask graph run exactly once.

    Global steps (ranking every cell of a map, labelling regions) need a whole map in the
    local process. When a ``dask.distributed`` client is the active scheduler, the map is
    first persisted on the cluster (``client.persist``: the model behind it runs there,
    once) and its chunks are then gathered; otherwise it is computed by the local
    scheduler. Either way the result holds numpy data, so whatever reads it afterwards
    (curves, capture, blocks, targets) never runs the graph again.

    Parameters
    ----------
    obj : xarray.DataArray
        A numpy- or dask-backed array (numpy data is returned as is).

    Returns
    -------
    xarray.DataArray
        ``obj`` with numpy data, same dims, coords, attrs and name.
    """
    if obj.chunks is None:
        return obj
    # a client can only be active once distributed is imported: never import it here
    client = distributed_client() if "distributed" in sys.modules else None
    if client is not None and dask.base.get_scheduler() == client.get:
        from distributed import wait  # lazy: optional, only on a cluster

        obj = client.persist(obj)
        wait(obj)
    return obj.load()


def study_mask(like: xr.Dataset | xr.DataArray) -> Any:
    """Return the template's boolean ``mask`` variable (numpy or dask data), or None.

    Parameters
    ----------
    like : xarray.Dataset or DataArray
        A template from ``make_grid`` / ``make_voxels`` (which may carry a ``mask``
        variable marking the study area) or any grid.

    Returns
    -------
    numpy.ndarray, dask.array.Array or None
        The mask's data on the grid dims; None when ``like`` is a DataArray or has no
        ``mask`` variable.

    Raises
    ------
    GridError
        If ``mask`` is not boolean or not laid out on the grid dims.
    """
    if not isinstance(like, xr.Dataset) or "mask" not in like.data_vars:
        return None
    dims = grid_geometry(like).dims
    m = like["mask"]
    if m.dtype != bool:
        raise GridError(f"the template's 'mask' variable must be boolean; got dtype {m.dtype}")
    if tuple(m.dims) != dims:
        raise GridError(f"the template's 'mask' has dims {m.dims}, expected {dims}")
    return m.data


# a last chunk under 1/8 of the others (a template of 8192 + 1 cells in chunks of 1024) is
# spread over the others rather than kept as a sliver: each sliver is one more task, one more
# zarr chunk stored at full size, and a store written in even chunks needs no rechunk
SLIVER = 8


def even_chunks(n: int, size: int) -> tuple[int, ...]:
    """Chunks of about ``size`` cells along a dim of ``n``, the last one never a sliver.

    Parameters
    ----------
    n : int
        Cells along the dim.
    size : int
        Wanted chunk size; 0, negative or at least ``n``: one chunk.

    Returns
    -------
    tuple of int
        Equal chunks but a smaller last one (zarr's rule). When ``size`` leaves a last
        chunk under ``size / 8``, the chunks grow to ``ceil(n / (n // size))`` so that
        it is spread over the others (8193 cells in chunks of 1024: 7 of 1025 and one
        of 1018).

    Examples
    --------
    >>> from xprospect._dask import even_chunks
    >>> even_chunks(2049, 512)
    (513, 513, 513, 510)
    >>> even_chunks(2000, 512)
    (512, 512, 512, 464)
    """
    n, size = int(n), int(size)
    if size <= 0 or size >= n:
        return (n,)
    full, rest = divmod(n, size)
    if rest and rest * SLIVER < size:
        size = -(-n // full)
        full, rest = divmod(n, size)
    return (size,) * full + ((rest,) if rest else ())


def grid_chunks(
    like: xr.Dataset | xr.DataArray,
    dims: Sequence[str],
    chunks: int | Sequence[Any] | Mapping[str, Any] | None = None,
) -> tuple[tuple[int, ...], ...] | None:
    """Resolve the output chunks along the grid dims, or None for a numpy result.

    Parameters
    ----------
    like : xarray.Dataset or DataArray
        The template. Without ``chunks``, the chunks of the DataArray (or of the first
        data variable laid out over every grid dim, e.g. a stack with an ``element``
        dim) are used; None when it holds numpy data.
    dims : sequence of str
        The grid dims.
    chunks : int, sequence or dict, optional
        Explicit chunks (dask's notation per dim; a dict may leave dims out, meaning
        one chunk along them). Forces a dask result even on a numpy template.

    Returns
    -------
    tuple of tuple of int or None
        Normalised chunks per grid dim.
    """
    dims = tuple(dims)
    shape = tuple(int(like.sizes[d]) for d in dims)
    if chunks is not None:
        if isinstance(chunks, Mapping):
            spec: tuple[Any, ...] = tuple(chunks.get(d, -1) for d in dims)
        elif np.isscalar(chunks):
            spec = (int(chunks),) * len(dims)  # type: ignore[arg-type]
        else:
            spec = tuple(chunks)  # type: ignore[arg-type]
            if len(spec) != len(dims):
                raise GridError(f"chunks {chunks!r} must give one entry per grid dim {dims}")
        return da.core.normalize_chunks(spec, shape, dtype="float64")
    refs = [like] if isinstance(like, xr.DataArray) else list(like.data_vars.values())
    for ref in refs:
        if ref.chunks is None or not set(dims) <= set(ref.dims):
            continue
        if ELEMENT_DIM in ref.dims and ELEMENT_DIM not in dims:
            ref = ref.isel({ELEMENT_DIM: 0}, drop=True)
        chunked = ref.chunks
        if chunked is None:  # re-checked after isel, for the type checker
            continue
        ch = dict(zip(ref.dims, chunked, strict=True))
        return tuple(tuple(ch[d]) for d in dims)
    return None


def _fill_outside(
    out: np.ndarray, mask: np.ndarray | None, fill: Any, nout: int | None
) -> np.ndarray:
    """Set cells outside ``mask`` to ``fill`` in place (no copy of the output)."""
    if mask is not None and not mask.all():
        if nout is None:
            out[~mask] = fill
        else:
            out[:, ~mask] = fill
    return out


def _evaluate(
    func: Callable[..., np.ndarray],
    block: Block,
    nout: int | None,
    dtype: np.dtype,
    fill: Any,
    kwargs: Mapping[str, Any],
) -> np.ndarray:
    """Call ``func`` on one block, or skip it when the mask leaves no cell to compute."""
    full = block.shape if nout is None else (nout, *block.shape)
    if block.mask is not None and not block.mask.any():
        return np.full(full, fill, dtype=dtype)
    out = np.asarray(func(block, **kwargs))
    if out.shape != full:
        msg = (
            f"{getattr(func, '__name__', func)!r} returned shape {out.shape} for a block of "
            f"shape {full}"
        )
        raise GridError(msg)
    if out.dtype != dtype:
        out = out.astype(dtype)
    return _fill_outside(out, block.mask, fill, nout)


def _dask_block(
    mask: np.ndarray | None,
    shared: tuple[Any, ...],
    nout: int | None,
    dtype: np.dtype,
    fill: Any,
    bar: ChunkProgress | None = None,
    block_info: dict | None = None,
) -> np.ndarray:
    """Build one chunk's :class:`Block` from dask's ``block_info`` and evaluate it."""
    func, dims, coords, kwargs = shared
    assert block_info is not None
    loc = block_info[None]["array-location"]
    if nout is not None:
        loc = loc[1:]  # the output axis comes first
    start = tuple(int(lo) for lo, _ in loc)
    shape = tuple(int(hi - lo) for lo, hi in loc)
    block = Block(
        dims=dims,
        start=start,
        shape=shape,
        coords=tuple(c[lo:hi] for c, (lo, hi) in zip(coords, loc, strict=True)),
        mask=None if mask is None else np.asarray(mask, dtype=bool),
        parallel=False,
    )
    with chunk_threads():
        out = _evaluate(func, block, nout, dtype, fill, kwargs)
    if bar is not None:
        bar.done()
    return out


def map_cells(
    like: xr.Dataset | xr.DataArray,
    func: Callable[..., np.ndarray],
    *,
    dtype: Any,
    nout: int | None = None,
    chunks: int | Sequence[Any] | Mapping[str, Any] | None = None,
    mask: Any = None,
    fill: Any = np.nan,
    progress: bool | None = False,
    desc: str = "cells",
    **kwargs: Any,
) -> tuple[np.ndarray | da.Array, tuple[str, ...]]:
    """Evaluate ``func(block, **kwargs)`` over the cells of a grid, chunk by chunk.

    Parameters
    ----------
    like : xarray.Dataset or DataArray
        The template: a 2-D (y, x) or 3-D (z, y, x) regular grid. Its dask chunks along
        the grid dims (see :func:`grid_chunks`) are the output's; a numpy template gives a
        numpy result computed in one call.
    func : callable
        ``func(block: Block, **kwargs) -> numpy.ndarray`` returning the block's values,
        shape ``block.shape`` (or ``(nout, *block.shape)``). It must depend on the block's
        coordinates only (not on how the grid is chunked).
    dtype : dtype
        The output dtype (results are cast to it).
    nout : int, optional
        Number of outputs per cell (e.g. elements): the result gets a leading axis of
        this length, in one chunk. None returns the grid's shape.
    chunks : int, sequence or dict, optional
        Override the output chunks along the grid dims (gives a dask result).
    mask : array-like, optional
        Boolean study mask on the grid (numpy or dask, e.g. :func:`study_mask`); cells
        where it is False get ``fill`` and chunks without a True cell skip ``func``.
    fill : scalar
        The value outside the mask (NaN by default).
    progress : bool or None
        A bar of chunks done / total with an ETA while the result is computed by dask's
        local scheduler (:class:`xprospect._progress.ChunkProgress`); None: only on a
        terminal or in a notebook; False (the default here): never.
    desc : str
        Label of the bar.
    **kwargs
        Passed to ``func``. With dask they are stored once in the graph and shared by
        every chunk (a neighbour index or a sample table is not copied per task).

    Returns
    -------
    data : numpy.ndarray or dask.array.Array
        The values, shape ``grid`` or ``(nout, *grid)``; lazy when the template is chunked
        or ``chunks`` is given.
    dims : tuple of str
        The grid dims the data is laid out on (after the output axis, if any).

    Examples
    --------
    >>> import numpy as np
    >>> import xprospect as xp
    >>> from xprospect._dask import map_cells
    >>> grid = xp.make_grid((0, 0, 400, 300), resolution=100, crs="EPSG:28350")
    >>> def east(block):
    ...     return np.broadcast_to(block.coords[1], block.shape).copy()
    >>> data, dims = map_cells(grid.chunk({"x": 2}), east, dtype="float64")
    >>> dims, data.chunks
    (('y', 'x'), ((3,), (2, 2)))
    >>> float(data.compute()[0, 3])
    350.0
    """
    geom = grid_geometry(like)
    dims = geom.dims
    dtype = np.dtype(dtype)
    if nout is not None and (isinstance(nout, bool) or int(nout) != nout or nout < 1):
        raise GridError(f"nout must be a positive integer or None; got {nout!r}")
    coords = tuple(np.asarray(like[d].values, dtype="float64") for d in dims)
    if mask is not None and tuple(np.shape(mask)) != geom.shape:
        raise GridError(f"mask has shape {np.shape(mask)}, expected the grid's {geom.shape}")
    gchunks = grid_chunks(like, dims, chunks)
    if gchunks is None:
        block = Block(
            dims=dims,
            start=(0,) * geom.ndim,
            shape=geom.shape,
            coords=coords,
            mask=None if mask is None else np.asarray(mask, dtype=bool),
            parallel=is_main_thread(),
        )
        one = ChunkProgress(1, desc, progress, desc)
        out = _evaluate(func, block, nout, dtype, fill, kwargs)
        one.done()
        return out, dims
    # one graph key holds the function, its coordinates and its (possibly large) kwargs
    shared = dask.delayed((func, dims, coords, dict(kwargs)), pure=True, traverse=False)
    out_chunks = gchunks if nout is None else ((int(nout),), *gchunks)
    nblocks = int(np.prod([len(c) for c in gchunks]))
    bar = None if progress is False else ChunkProgress(nblocks, desc, progress, shared.key)
    meta = np.empty((0,) * len(out_chunks), dtype=dtype)
    # without a mask the block function gets None; with one, the mask's block (a new leading
    # axis of outputs when there are several)
    mask_d = None if mask is None else da.asarray(mask).astype(bool).rechunk(gchunks)
    extra = {"new_axis": 0} if mask_d is not None and nout is not None else {}
    data = da.map_blocks(
        _dask_block,
        mask_d,
        shared,
        nout,
        dtype,
        fill,
        bar,
        chunks=out_chunks,
        dtype=dtype,
        meta=meta,
        **extra,
    )
    return data, dims
