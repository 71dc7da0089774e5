"""Zarr round-trips of grids, voxels and sample tables that keep the CRS, attrs and chunks.

The CRS travels as rioxarray's ``spatial_ref`` coordinate (its attrs hold the WKT)
and each variable's ``grid_mapping``; the affine transform is never stored, it is
derived from the coordinates on reading. Dask arrays are written chunk by chunk.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import dask.threaded
import numpy as np
import xarray as xr
from dask.callbacks import Callback
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph
from dask.system import CPU_COUNT
from zarr.codecs import BloscCodec

from xprospect._dask import SLIVER, even_chunks
from xprospect._progress import distributed_client, in_notebook, progress_bar, wants_progress
from xprospect.exceptions import DataError, IncompleteStoreError
from xprospect.io._atomic import write_error
from xprospect.io._bands import band_chunks, run_in_bands
from xprospect.io._chunks import drop_partials
from xprospect.io._meta import direct, write_metadata
from xprospect.io._resume import (
    LEDGER_ATTR,
    Ledger,
    LedgerUpdater,
    grid_dims,
    job_identity,
    lazy_variables,
    plan,
    read_ledger,
    write_ledger,
    write_tasks,
)

__all__ = ["open_zarr", "to_zarr"]

_MODES = ("w-", "w")
# encodings that a previous read leaves behind and that would clash with new
# chunks or another zarr format; zarr picks its defaults instead
_STALE_ENCODING = (
    "chunks",
    "preferred_chunks",
    "shards",
    "compressor",
    "compressors",
    "filters",
    "serializer",
)
# data variables come back from a zarr group in alphabetical or arbitrary order
_ORDER_ATTR = "xprospect_variable_order"
# files that mark the root of a zarr store (format 3, format 2 group or array, consolidated)
_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray", ".zmetadata")
# default zarr chunks for in-memory data, per dim: about 1 MB (2-D) to 8 MB (3-D) of float32
_DEFAULT_CHUNKS_2D = {"y": 512, "x": 512, "sample": 131_072}
_DEFAULT_CHUNKS_3D = {"z": 128, "y": 128, "x": 128}


def default_compressors() -> tuple[Any, ...]:
    """Codecs given to numeric arrays: Blosc LZ4 (level 5) with byte shuffle.

    Measured on IDW maps of 16 elements (``asv_bench/benchmarks/store.py --codecs``,
    2048^2 to 4096^2, one run): it compresses float32 maps 1.37-1.50x where zarr's
    default (zstd level 0, no shuffle) gives 1.15-1.16x, and Blosc zstd level 1 with
    byte shuffle 1.40-1.53x. Encoding 1025^2 float32 chunks on one core (best of 7,
    CPU time per GB): LZ4 level 5 with byte shuffle 0.72 s (ratio 1.37), LZ4 level 1
    0.65 s (1.35), LZ4 level 5 with bit shuffle 0.97 s (1.42), Blosc zstd level 1
    2.06 s (1.39); decoding 0.5, 0.46, 0.74 and 0.72 s. LZ4 with byte shuffle is the
    cheapest at nearly zstd's ratio (fewer bytes also cost the kernel less to write
    than raw chunks); its level hardly changes the cost. Override with
    ``to_zarr(..., compressors=...)`` (e.g. ``BloscCodec(cname="zstd", clevel=1,
    shuffle="shuffle")`` for archives). Blosc runs single-threaded (zarr turns its
    threads off): the dask threads that write the chunks already occupy the cores.
    """
    return (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),)


def _is_path(store: Any) -> bool:
    return isinstance(store, (str, os.PathLike))


def _default_chunks(ds: xr.Dataset) -> dict[str, int]:
    return _DEFAULT_CHUNKS_3D if "z" in ds.dims else _DEFAULT_CHUNKS_2D


def _resolve_chunks(ds: xr.Dataset, chunks: Any) -> dict[str, int] | None:
    if chunks is None:
        return None
    if isinstance(chunks, Mapping):
        unknown = [d for d in chunks if d not in ds.dims]
        if unknown:
            raise DataError(
                f"to_zarr(chunks=...) names dims {unknown} that the Dataset lacks; "
                f"its dims are {tuple(ds.dims)}"
            )
        return {str(d): int(c) for d, c in chunks.items()}
    if isinstance(chunks, int) and not isinstance(chunks, bool):
        return dict.fromkeys(map(str, ds.dims), int(chunks))
    raise DataError(f"to_zarr(chunks=...) must be an int or a dict of dim -> int; got {chunks!r}")


def _regular(chunks: tuple[int, ...]) -> bool:
    """Zarr needs equal chunks along a dim, except a smaller last one."""
    return all(c == chunks[0] for c in chunks[:-1]) and chunks[-1] <= chunks[0]


def _unsliver(chunks: tuple[int, ...]) -> tuple[int, ...] | None:
    """Return even chunks replacing a regular run ending in a sliver, else None."""
    if len(chunks) < 2 or chunks[-1] * SLIVER >= chunks[0]:
        return None
    return even_chunks(sum(chunks), chunks[0])


def _prepare(
    ds: xr.Dataset, chunks: dict[str, int] | None, compressors: Any = None, lazy: bool = False
) -> xr.Dataset:
    """Shallow copy with regular dask chunks and matching, fresh zarr chunk encodings.

    With ``lazy``, numeric in-memory data variables become dask arrays in their zarr
    chunks (so that they are written chunk by chunk too) and every lazy variable shares
    one chunk grid.
    """
    if chunks is not None:
        ds = ds.chunk({d: min(c, ds.sizes[d]) if c > 0 else -1 for d, c in chunks.items()})
    if lazy:
        defaults = _default_chunks(ds)
        for name, dvar in list(ds.data_vars.items()):
            if dvar.chunks is None and dvar.ndim and np.issubdtype(dvar.dtype, np.number):
                ds = ds.assign(
                    {
                        name: dvar.chunk(
                            {
                                d: max(1, min(n, defaults.get(str(d), n)))
                                for d, n in dvar.sizes.items()
                            }
                        )
                    }
                )
    # zarr needs equal chunks along a dim except a smaller last one: make dask
    # chunks regular first, then derive each variable's zarr chunks from them
    for name, var in list(ds.variables.items()):
        if var.chunks is not None and name not in ds.indexes:
            fixed = {
                d: max(c) for d, c in zip(var.dims, var.chunks, strict=True) if not _regular(c)
            }
            if fixed:
                if name in ds.coords:
                    ds = ds.assign_coords({name: var.chunk(fixed)})
                else:
                    ds = ds.assign({name: var.chunk(fixed)})
    if lazy:
        ds = _one_grid(ds)
    out = ds.copy(deep=False)
    defaults = _default_chunks(out)
    for name, var in out.variables.items():
        enc = {k: v for k, v in var.encoding.items() if k not in _STALE_ENCODING}
        if var.ndim and name not in out.indexes:
            if var.chunks is not None:
                enc["chunks"] = tuple(c[0] for c in var.chunks)
            else:
                enc["chunks"] = tuple(
                    max(1, min(n, defaults.get(str(d), n)))
                    for d, n in zip(var.dims, var.shape, strict=True)
                )
            if np.issubdtype(var.dtype, np.number) or np.issubdtype(var.dtype, np.bool_):
                enc["compressors"] = (
                    default_compressors() if compressors is None else tuple(compressors)
                )
        var.encoding = enc
    return out


def _one_grid(ds: xr.Dataset) -> xr.Dataset:
    """Rechunk the lazy variables to one chunk grid (the first one's along each dim), no slivers."""
    grid: dict[str, Any] = {}
    for name in lazy_variables(ds):
        for d, c in zip(ds[name].dims, ds[name].chunks or (), strict=True):
            if str(d) not in grid:
                even = _unsliver(tuple(c))
                grid[str(d)] = even if even is not None else tuple(c)
    for name in lazy_variables(ds):
        var = ds[name]
        want = {d: grid[str(d)] for d in var.dims}
        current = dict(zip(var.dims, var.chunks or (), strict=True))
        if any(current[d] != want[d] for d in var.dims):
            var = var.chunk(want)
            if name in ds.coords:
                ds = ds.assign_coords({name: var})
            else:
                ds = ds.assign({name: var})
    return ds


def _open_ledger(path: Path, identity: str, store: str) -> Ledger | None:
    """Read the ledger of a store to resume, checked against this job; None to start afresh."""
    ledger = read_ledger(store)
    if ledger is None:
        raise DataError(
            f"{path} cannot be resumed: it was not written by to_zarr with a "
            "completion ledger; pass mode='w' to replace it"
        )
    if ledger.job != identity:
        raise DataError(
            f"{path} was started by another job (identity {ledger.job[:12]}, this "
            f"one {identity[:12]}): its inputs, chunks, attrs or job= parameters "
            "differ; resume=True refuses to mix them. Pass mode='w' (without "
            "resume) to replace it, or another path"
        )
    return None if ledger.state == "init" else ledger


def _bands(keys: dict[Any, int], ledger: Ledger, per_band: int, lead: str) -> list[list[Any]]:
    """Group the write keys in bands of whole rows along ``lead`` of at least ``per_band``.

    ``lead`` is the arrays' leading dim (:func:`~xprospect.io._resume.grid_dims`), named
    rather than taken as the ledger's first dim: a store started before the ledger listed
    its dims in that order may list ``x`` first, and bands along it would be columns, whose
    memory grows with the height.
    """
    rows: dict[int, list[Any]] = {}
    for key, flat in sorted(keys.items(), key=lambda kv: kv[1]):
        rows.setdefault(ledger.block_index(flat).get(lead, 0), []).append(key)
    bands: list[list[Any]] = [[]]
    for _, row in sorted(rows.items()):
        if len(bands[-1]) >= per_band:
            bands.append([])
        bands[-1].extend(row)
    return bands


def _run_writes(
    keys: dict[Any, int],
    graph: Any,
    updater: LedgerUpdater,
    client: Any,
    widget: bool,
    ledger: Ledger,
    lead: str,
) -> None:
    """Compute the write tasks, marking each chunk complete as soon as it is written.

    With a ``dask.distributed`` client the tasks run on the cluster and the chunks are
    marked here as their futures complete (``widget``: ``distributed.progress`` draws
    the cluster's progress in the notebook); otherwise dask's local scheduler runs
    them, in bands of rows when there are many (:mod:`xprospect.io._bands`: memory
    bounded by the width, not the area), and a callback marks each chunk as its task
    finishes.
    """
    delayeds = [Delayed(k, graph, layer=k[0]) for k in keys]
    if client is not None:
        from distributed import as_completed  # lazy: optional, only with a client
        from distributed import progress as dask_progress  # lazy: same

        futures = client.compute(delayeds)
        if widget:
            dask_progress(futures, notebook=True)
        # results (chunk numbers) gathered in batches as they land, not one round trip each
        for _, flat in as_completed(futures, with_results=True):
            updater.done(flat)
        return

    class _Mark(Callback):
        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            if key in keys:
                updater.done(keys[key])

    workers = dask.config.get("num_workers", None) or CPU_COUNT
    bands = _bands(keys, ledger, band_chunks(int(workers)), lead)
    with _Mark():
        if len(bands) == 1:
            dask.compute(*delayeds)
        else:
            get = dask.base.get_scheduler() or dask.threaded.get
            run_in_bands(graph, bands, get)


def _finish(path: str, ledger_attr: dict[str, Any], *written: int) -> None:
    ledger = Ledger.from_attr(ledger_attr)
    ledger.done = set(range(ledger.total))
    ledger.state = "complete"
    write_ledger(path, ledger)


def to_zarr(
    ds: xr.Dataset | xr.DataArray,
    store: str | os.PathLike | Any,
    *,
    mode: str = "w-",
    chunks: int | Mapping[str, int] | None = None,
    compute: bool = True,
    resume: bool = False,
    progress: bool | None = None,
    job: Mapping[str, Any] | None = None,
    compressors: Any = None,
) -> Any:
    """Write a grid, voxel model or sample table to a zarr store, keeping its CRS.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        What to write; a DataArray is written as a one-variable Dataset named after
        it (``"data"`` when it has no name).
    store : path or zarr store
        Folder to create (or any store xarray accepts).
    mode : {"w-", "w"}
        ``"w-"`` (default) refuses to touch an existing store; ``"w"`` replaces it.
    chunks : int or dict of dim -> int, optional
        Zarr chunk sizes; dask data are rechunked to match. By default dask data
        keep their chunks (made regular when they are not: zarr needs equal
        chunks except a smaller last one) and numpy data are stored in chunks of
        512 x 512 cells (2-D), 128 voxels a side (3-D) or 131072 samples.
    compute : bool
        With ``False``, return a dask ``Delayed`` that writes the data when
        computed (the metadata is written at once; the store is marked complete
        only when the whole Delayed has run).
    resume : bool
        Finish a store that an earlier, interrupted call started: only the chunks
        its ledger does not mark complete are computed and written, after checking
        that the job is the same (see Notes); a different job is refused. On a path
        that does not exist yet, start as usual.
    progress : bool or None
        A bar of chunks written out of the total, with an ETA: None (default) draws
        it on a terminal or in a notebook only, True always, False never. With an
        active ``dask.distributed`` client in a notebook, ``distributed.progress``
        shows the cluster's tasks instead.
    job : dict, optional
        Parameters that identify the job beyond its data (a model checkpoint's
        hash, scoring options); part of the identity that ``resume`` checks.
    compressors : sequence of zarr codecs, optional
        Codecs of numeric arrays. Default: Blosc LZ4 with byte shuffle
        (:func:`default_compressors`): 1.4-1.5x on float maps, nearly what Blosc zstd-1
        with shuffle gives, at 2.5x its speed, so that writing stays cheap next to the
        compute (zarr's own default, zstd level 0, gives 1.15x); ``()`` stores raw chunks.

    Returns
    -------
    dask.delayed.Delayed or None
        The pending write when ``compute=False``.

    Raises
    ------
    DataError
        When the store exists and ``mode="w-"`` (without ``resume``), for a bad
        ``mode``/``chunks``, when ``resume=True`` meets a store of another job, or when the
        target cannot be written (read-only file system, permission denied, disk full),
        saying which.

    Notes
    -----
    Written as zarr format 3 with consolidated metadata; dask arrays stream to
    disk chunk by chunk, each chunk written by one task, so memory stays bounded
    whatever the raster size (in-memory numeric variables are cut into their zarr
    chunks and written the same way). The zarr chunks are the dask chunks (so no
    write touches another's chunk and none needs a lock); one task writes every
    variable's part of its chunk in one pass through zarr's event loop; the graphs
    of all the variables are optimised together (a block shared by several variables
    is computed once), and layers carrying dask annotations (``score(resources=)``)
    keep them (low-level fusion, which drops them, is left out for those graphs).

    Costs, measured by ``asv_bench/benchmarks/store.py`` (IDW of 16 elements): the
    codec (see ``compressors``) and the write of the bytes dominate; whole chunks of a
    folder store are encoded with the array's zarr codecs and written by the dask thread
    that computed them (:mod:`xprospect.io._chunks`; dask config
    ``xprospect.store.direct_writes=False`` sends every chunk through zarr's own
    ``Array.__setitem__``), the default codec into a buffer each thread reuses (no new
    memory per chunk, the GIL released while it compresses), edge chunks padded in
    another, each chunk file handed to the kernel in pieces of 64 KB (dask config
    ``xprospect.store.write_piece``: small page cache folios, which leave the compute's
    freed memory to its next arrays); a chunk whose first cell is the fill value is
    checked for emptiness (as zarr does: an empty chunk is not stored) and otherwise
    written the same way (a masked map's border chunks). The metadata is written once,
    and the ledger at most every ``xprospect.store.ledger_interval`` seconds (dask
    config, default 1) by a writer thread of its own (``xprospect.store.ledger_thread``,
    default True), so that dask's scheduler thread, which marks the chunks done, never
    waits on the file: each rewrite of the root ``zarr.json`` (the root group opened once
    and reused) costs a few milliseconds of CPU and 6-45 ms of wall time, which per chunk
    would add up on thousands of chunks (0.27-0.37 s of the scheduler thread's time per
    4096^2 write under load before it moved).

    Memory: with dask's local schedulers a job of many chunks is written in bands of
    whole rows of chunks (the leading dim), one scheduler call per band of at least
    ``xprospect.store.band_chunks`` chunks (dask config, default 8 x threads), so that
    the inputs in flight are those of one band (a halo's neighbours, a score's model
    chunks) rather than whatever dask's ordering starts early; every task still runs
    once, and those shared with a later band are kept until it has run
    (:mod:`xprospect.io._bands`): for halos, the strips of this band's blocks and the next
    row's blocks (one row of input blocks, which grows with the width alone). After each
    band the C heap's free pages go back to the system (glibc's ``malloc_trim``; dask
    config ``xprospect.store.trim_memory``, default True).

    A store written to a path is honest about its completeness: its root attrs hold
    a ledger (``xprospect_ledger``) listing the chunk grid, the chunks written (each
    marked only after its data are on disk; zarr replaces ``zarr.json`` atomically)
    and the job's identity, a digest of the variables' names, dims, shapes, dtypes,
    chunks, attrs (the CRS among them), coordinate values, the dask token of every
    lazy variable and ``job``. :func:`open_zarr` refuses a store whose ledger is not
    complete (:class:`~xprospect.exceptions.IncompleteStoreError`). A chunk is
    marked in the first ledger rewrite after its data are written, so a killed run
    may leave up to a second's chunks written but unmarked: resuming rewrites them.
    The last chunk
    along a dim is never a sliver: chunks ending in one under 1/8 of the others are
    evened out (8193 cells in chunks of 1024 become chunks of 1025).

    Dataset and variable attrs, coordinates, the
    ``spatial_ref`` coordinate (CRS) and the order of data variables survive
    :func:`open_zarr`. Encodings left by a previous read that would clash with the
    new chunks (``chunks``, ``preferred_chunks``, codecs) are dropped.

    Examples
    --------
    >>> import tempfile, xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu"])
    >>> grid = xp.make_grid(like=w.samples, resolution=5000)
    >>> path = tempfile.mkdtemp() + "/maps.zarr"
    >>> xp.to_zarr(xp.grid_idw(w.samples, like=grid), path)
    >>> xp.open_zarr(path).rio.crs.to_epsg()
    32750
    """
    if isinstance(ds, xr.DataArray):
        ds = ds.to_dataset(name=ds.name if ds.name is not None else "data")
    if not isinstance(ds, xr.Dataset):
        raise DataError(f"to_zarr() writes an xarray Dataset or DataArray; got {type(ds).__name__}")
    if mode not in _MODES:
        raise DataError(
            f"to_zarr(mode={mode!r}) is not supported; use 'w-' (never overwrite, "
            "the default) or 'w' (replace an existing store)"
        )
    if not _is_path(store):
        if resume:
            raise DataError(
                "to_zarr(resume=True) needs a path: only a folder store keeps "
                "the ledger that resuming reads"
            )
        out = _prepare(ds, _resolve_chunks(ds, chunks), compressors)
        out.attrs[_ORDER_ATTR] = [str(n) for n in ds.data_vars]
        return _xarray_write(out, store, mode, compute)
    path = Path(store)
    store = str(path)
    out = _prepare(ds, _resolve_chunks(ds, chunks), compressors, lazy=True)
    out.attrs[_ORDER_ATTR] = [str(n) for n in ds.data_vars]
    identity = job_identity(out, job)
    ledger = None
    group = None  # the root group once open: each opening reads and parses zarr.json
    if path.exists():
        if resume:
            ledger = _open_ledger(path, identity, store)
            drop_partials(store)  # a chunk file a killed run was writing: never valid data
            mode = "w"  # a store stopped before its metadata was written starts afresh
        elif mode == "w-":
            raise DataError(
                f"{path} already exists; pass mode='w' to replace it, resume=True "
                "to finish an interrupted write of the same job, or choose "
                "another path"
            )
    if ledger is None:
        ledger = plan(out, identity)
        out.attrs[LEDGER_ATTR] = ledger.to_attr()
        # metadata, coordinates and in-memory variables; the lazy ones' chunks next
        if direct(out, store):
            ledger.state = "writing"
            try:
                group = write_metadata(out, store, mode, {LEDGER_ATTR: ledger.to_attr()})
            except OSError as err:  # read-only target, permission denied, disk full
                raise write_error(store, err) from err
        else:
            _xarray_write(_placeholders(out), store, mode, compute=False)
            ledger.state = "writing"
            group = write_ledger(store, ledger)
    todo = ledger.missing
    keys, graph = write_tasks(out, store, ledger, todo, group)
    if not compute:
        final = (f"xprospect-finish-{identity[:16]}", 0)
        layer = {final: (_finish, store, ledger.to_attr(), *keys)}
        # the whole graph (typed Any: dask's stubs want collections, Delayed is one)
        deps: list[Any] = [Delayed(k, graph, layer=k[0]) for k in list(keys)[:1]]
        hlg = HighLevelGraph.from_collections(
            final[0],
            layer,  # type: ignore[arg-type]
            dependencies=deps,
        )
        return Delayed(final, hlg, layer=final[0])
    client = distributed_client()
    widget = client is not None and wants_progress(progress) and in_notebook()
    with progress_bar(
        ledger.total, desc=f"to_zarr {path.name}", progress=False if widget else progress
    ) as bar:
        bar.update(len(ledger.done))
        updater = LedgerUpdater(store, ledger, bar, group)
        finished = False
        try:
            lead = next(iter(grid_dims(out)), "")
            _run_writes(keys, graph, updater, client, widget, ledger, lead)
            finished = True
        finally:  # a failed run keeps the chunks it wrote (the ledger is written in batches)
            updater.close(complete=finished)  # one rewrite: the last chunks and "complete"
    return None


def _placeholders(out: xr.Dataset) -> xr.Dataset:
    """``out`` with each lazy variable replaced by one lazy chunk of its shape and dtype.

    Only the metadata of the lazy variables is written through xarray (``compute=False``);
    their chunks are written by :func:`~xprospect.io._resume.write_tasks`. xarray still
    builds (and this caller drops) a ``dask.array.store`` graph over every dask chunk of
    every variable, which grows with the chunks; a single chunk per variable keeps it to
    one task each (xarray's ~25 ms of CPU a variable to set up that graph remain). The zarr
    chunks come from the encodings, which stay.
    """
    swap = {}
    for name in lazy_variables(out):
        var = out.variables[name]
        # named: dask would tokenize the function (cloudpickle, ~25 ms a variable)
        data = da.empty(
            var.shape, dtype=var.dtype, chunks=var.shape or -1, name=f"xprospect-meta-{name}"
        )
        swap[name] = var.copy(deep=False, data=data)
    return out.assign_coords({n: v for n, v in swap.items() if n in out.coords}).assign(
        {n: v for n, v in swap.items() if n not in out.coords}
    )


def _xarray_write(out: xr.Dataset, store: Any, mode: str, compute: bool) -> Any:
    with warnings.catch_warnings():
        # zarr warns that consolidated metadata is not (yet) in the v3 spec; xarray
        # and zarr-python read it, and it saves one request per array on opening
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        # one call for both values of compute (xarray types them as two overloads)
        options: dict[str, Any] = {
            "mode": mode,
            "compute": compute,
            "consolidated": True,
            "zarr_format": 3,
        }
        try:
            result = out.to_zarr(store, **options)
        except OSError as err:  # read-only target, permission denied, disk full
            raise write_error(store, err) from err
    return None if compute else result


def open_zarr(
    store: str | os.PathLike | Any,
    *,
    chunks: Any = "auto",
    allow_incomplete: bool = False,
    **kwargs: Any,
) -> xr.Dataset:
    """Open a zarr store lazily, with its CRS, attrs and variable order restored.

    Parameters
    ----------
    store : path or zarr store
        A store written by :func:`to_zarr` (or any xarray-readable zarr store).
    chunks : "auto", dict, {} or None
        Dask chunks: ``"auto"`` (default) uses multiples of the stored chunks
        sized by dask, ``{}`` exactly the stored chunks, None numpy arrays
        loaded on access.
    allow_incomplete : bool
        Open a store whose write did not finish (see :func:`to_zarr`): the chunks
        never written read as the fill value, a boolean ``complete`` coordinate over
        the chunk grid's dims marks the cells written, and attr ``missing_chunks``
        counts the chunks missing.
    **kwargs
        Passed to :func:`xarray.open_zarr`.

    Returns
    -------
    xarray.Dataset
        Lazy (dask) unless ``chunks=None``; ``ds.rio.crs`` is the CRS written.

    Raises
    ------
    DataError
        When no store exists at a given path, or the path is a file, an empty folder or
        a folder without zarr metadata.
    IncompleteStoreError
        When the store's ledger says some chunks were never written (a killed or
        failed write) and ``allow_incomplete`` is False.

    Examples
    --------
    >>> import tempfile, xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu"])
    >>> path = tempfile.mkdtemp() + "/samples.zarr"
    >>> xp.to_zarr(w.samples, path)
    >>> list(xp.open_zarr(path).data_vars)
    ['Au', 'Cu']
    """
    if _is_path(store):
        path = Path(store)
        if not path.exists():
            raise DataError(f"no zarr store at {path}")
        if not path.is_dir():
            raise DataError(f"{path} is a file, not a zarr store (a folder)")
        if not any((path / m).exists() for m in _ZARR_MARKERS):
            what = (
                "an empty folder"
                if not any(path.iterdir())
                else f"a folder without zarr metadata (none of {', '.join(_ZARR_MARKERS)})"
            )
            raise DataError(f"{path} is not a zarr store: it is {what}")
        store = str(path)
    kwargs.setdefault("decode_coords", "all")
    auto = isinstance(chunks, str) and chunks == "auto"
    # dask cannot size string (sample id) chunks automatically: open with the
    # stored chunks, then let dask grow the numeric ones
    try:
        ds = xr.open_zarr(store, chunks={} if auto else chunks, **kwargs)
    except FileNotFoundError as err:  # zarr's GroupNotFoundError: no group at the root
        raise DataError(
            f"{store} is not a zarr group written by to_zarr (or any xarray Dataset): {err}"
        ) from err
    if auto:
        grown = {
            n: v.chunk("auto")
            for n, v in ds.variables.items()
            if v.chunks is not None and np.issubdtype(v.dtype, np.number)
        }
        ds = ds.assign_coords({n: v for n, v in grown.items() if n in ds.coords})
        ds = ds.assign({n: v for n, v in grown.items() if n not in ds.coords})
    if "spatial_ref" in ds.data_vars and ds["spatial_ref"].ndim == 0:
        ds = ds.set_coords("spatial_ref")
    order = ds.attrs.pop(_ORDER_ATTR, None)
    if order is not None:
        names = [n for n in order if n in ds.data_vars]
        names += [n for n in ds.data_vars if n not in names]
        if names != list(ds.data_vars):
            coords = ds.coords
            ds = ds[names]
            missing = {c: coords[c] for c in coords if c not in ds.coords}
            if missing:
                ds = ds.assign_coords(missing)
    return _check_complete(ds, store, allow_incomplete)


def _check_complete(ds: xr.Dataset, store: Any, allow_incomplete: bool) -> xr.Dataset:
    """Drop the ledger from the attrs; refuse (or mark) a store whose write did not finish."""
    attr = ds.attrs.pop(LEDGER_ATTR, None)
    if attr is None:
        return ds
    ledger = Ledger.from_attr(attr)
    if ledger.complete:
        return ds
    n_missing = ledger.total - len(ledger.done)
    if not allow_incomplete:
        raise IncompleteStoreError(
            f"{store} is incomplete: {n_missing} of its {ledger.total} chunks were never "
            "written (the write that made it was interrupted or failed). Finish it with "
            "to_zarr(..., resume=True) on the same job, or pass allow_incomplete=True to "
            "open it with the missing chunks marked"
        )
    ds = ds.assign_coords(complete=ledger.complete_mask({str(d): n for d, n in ds.sizes.items()}))
    ds.attrs["missing_chunks"] = n_missing
    return ds
