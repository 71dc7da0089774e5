"""Writing whole zarr chunks of a local store from the calling thread, with zarr's own codecs.

:func:`xprospect.to_zarr` writes each chunk of a lazy Dataset from the dask thread that
computed it. Through ``zarr.Array.__setitem__`` every write crosses to zarr's event-loop
thread, which hands the encoding and the file write to further threads and compares the
chunk with the fill value first: on IDW of 16 elements (4 MB float32 chunks) that path
costs about 2 s of CPU per GB written, of which the codec (Blosc LZ4) is 0.7 s. A chunk
that is written whole to a local folder needs none of it, so :class:`ChunkWriter` encodes
it with the array's own codec objects (their synchronous ``_encode_sync``, the calls
zarr's pipeline makes) in the calling thread and writes the bytes the way zarr's
``LocalStore`` does (a temporary file moved into place: a killed run never leaves a
partial chunk): about 1.5 s of CPU per GB, in the thread that already holds the block.

The default codec (bytes, then Blosc) is run without allocating: numcodecs'
``Blosc.encode`` returns a new ``bytes`` of the chunk's size for every chunk, fresh pages
that the kernel maps and zeroes (about 700 page faults per 4 MB chunk: 0.5-0.9 s of
system time per GB encoded, more than the compression's own 0.5-0.8 s of user time).
:class:`BloscInto` makes the same c-blosc call (``blosc_compress_ctx``, c-blosc's public
API, from the library numcodecs' extension links in) into a buffer kept per thread: the
bytes are the ones numcodecs writes from a dask thread (one internal blosc thread), with
no page faults and the GIL released while it compresses.

Only what this covers exactly takes the direct path (:meth:`ChunkWriter.of`): zarr format
3 arrays in a ``LocalStore``, without sharding, whose codecs all encode synchronously;
a region that is exactly one chunk (an edge chunk is padded with the fill value, as zarr
does). Everything else goes through zarr.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numcodecs.blosc
import numpy as np
from zarr.codecs import BloscCodec, BytesCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import LocalStore

__all__ = ["BloscInto", "ChunkWriter", "drop_partials", "write_piece"]

_BLOSC_MAX_OVERHEAD = 16  # bytes c-blosc may add to a chunk it cannot compress
_BLOSC_MAX_SIZE = 2**31 - 1 - _BLOSC_MAX_OVERHEAD  # c-blosc 1 takes chunks below 2 GB
_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_WRITE_PIECE = 1 << 16  # bytes per ``write`` call of a chunk file (see write_piece)


def write_piece() -> int:
    """Bytes handed to the kernel per ``write`` call of a chunk file (0: the whole chunk at once).

    Returns
    -------
    int
        Dask config ``xprospect.store.write_piece`` (default 65536). The kernel sizes the
        page cache's folios after each ``write``: a chunk of a few MB in one call is cached
        in large folios (up to 2 MB), which take whole free blocks of memory, likely the
        blocks the compute's new arrays (transparent huge pages) would otherwise reuse while
        they are still hot. Measured on IDW of 16 elements written to ext4 (Linux 6.18, a virtual
        machine whose balloon hands free blocks back to the host, where they fault in
        slowly; ``asv_bench/benchmarks/store.py``): in pieces of 16-64 KB the write costs
        0.3-0.6 s less system time per 0.7 GB written than with the whole chunk in one call
        (``perf``: the compute's zeroing of new huge pages and the copy into the page
        cache; the whole write's CPU time moved 0-0.15x, within the load's noise); the
        pieces add ~15 system calls per MB. The bytes stored are the same.
    """
    return max(0, int(dask.config.get("xprospect.store.write_piece", _WRITE_PIECE)))


def _compress_ctx() -> Any:
    """c-blosc's ``blosc_compress_ctx`` from numcodecs' extension, or None when not exported."""
    try:
        fn = ctypes.CDLL(numcodecs.blosc.__file__).blosc_compress_ctx
    except (OSError, AttributeError):  # another build of numcodecs: its own encode is used
        return None
    fn.argtypes = [
        ctypes.c_int,  # clevel
        ctypes.c_int,  # doshuffle
        ctypes.c_size_t,  # typesize
        ctypes.c_size_t,  # nbytes
        ctypes.c_void_p,  # src
        ctypes.c_void_p,  # dest
        ctypes.c_size_t,  # destsize
        ctypes.c_char_p,  # compressor
        ctypes.c_size_t,  # blocksize
        ctypes.c_int,  # numinternalthreads
    ]
    fn.restype = ctypes.c_int
    return fn


_COMPRESS = _compress_ctx()
# per thread: the encoded chunk ("buf") and a padded edge chunk ("pad"), each grown to the
# largest chunk seen
_BUFFERS = threading.local()


@dataclass(frozen=True)
class BloscInto:
    """Encodes with a zarr ``BytesCodec`` then ``BloscCodec`` into a buffer kept per thread.

    The result is the bytes zarr's pipeline gives (numcodecs' ``Blosc.encode`` from a
    thread other than the main one: ``blosc_compress_ctx`` with one internal thread); what
    differs is where they land: a buffer each thread reuses, not a new ``bytes`` per chunk
    (see the module notes). ctypes releases the GIL during the call. Picklable (a graph
    sent to a cluster carries it): the buffers live in the module, one per thread.
    """

    clevel: int
    shuffle: int
    typesize: int
    cname: bytes
    blocksize: int

    @classmethod
    def of(cls, codecs: Sequence[Any]) -> BloscInto | None:
        """Return an encoder for exactly ``(BytesCodec, BloscCodec)`` of a native byte order.

        None for any other pipeline (a byte swap, other codecs), or when numcodecs does not
        export c-blosc's call: zarr's codecs encode those.
        """
        if _COMPRESS is None or len(codecs) != 2:
            return None
        raw, blosc = codecs
        if not isinstance(raw, BytesCodec) or not isinstance(blosc, BloscCodec):
            return None
        if raw.endian is not None and raw.endian.value != sys.byteorder:
            return None  # a byte swap first (the chunks given are in native order)
        return cls(
            int(blosc.clevel),
            _SHUFFLE[blosc.shuffle.value],
            int(blosc.typesize),
            blosc.cname.value.encode(),
            int(blosc.blocksize),
        )

    def encode(self, data: np.ndarray) -> memoryview | None:
        """Compress ``data`` (C order); a view of this thread's buffer, valid until its next call.

        None when c-blosc refuses it (a chunk over 2 GB, an error): zarr's codecs encode it.
        """
        data = np.ascontiguousarray(data)
        if data.nbytes > _BLOSC_MAX_SIZE:
            return None
        need = data.nbytes + _BLOSC_MAX_OVERHEAD
        buf = getattr(_BUFFERS, "buf", None)
        if buf is None or buf.nbytes < need:
            buf = _BUFFERS.buf = np.empty(need, dtype=np.uint8)
        n = _COMPRESS(
            self.clevel,
            self.shuffle,
            self.typesize,
            data.nbytes,
            data.ctypes.data,
            buf.ctypes.data,
            need,  # not the buffer's size: c-blosc stores a chunk raw when it overflows this
            self.cname,
            self.blocksize,
            1,
        )
        return buf.data[:n] if n > 0 else None


def _codecs(pipe: Any) -> tuple[Any, ...]:
    """Return the codecs of a zarr codec pipeline, in the order they encode."""
    return (*pipe.array_array_codecs, pipe.array_bytes_codec, *pipe.bytes_bytes_codecs)


@dataclass(frozen=True)
class ChunkWriter:
    """Encodes and writes whole chunks of one zarr array (see the module notes)."""

    array: Any
    folder: str
    chunks: tuple[int, ...]
    blosc: BloscInto | None = None
    spec: Any = None  # every chunk's zarr ``ArraySpec`` (a regular grid: one for all)
    piece: int = 0  # bytes per ``write`` call (:func:`write_piece`; 0: a chunk in one call)

    @classmethod
    def of(cls, array: Any) -> ChunkWriter | None:
        """Return a writer for ``array`` (a ``zarr.Array``), or None when zarr must write it."""
        try:
            aa = array.async_array
            meta = aa.metadata
            pipe = aa.codec_pipeline
            codecs = _codecs(pipe)
            store = aa.store_path.store
        except AttributeError:  # another zarr version or pipeline: zarr writes it
            return None
        if (
            meta.zarr_format != 3
            or not isinstance(store, LocalStore)
            or not isinstance(pipe.array_bytes_codec, BytesCodec)  # sharding would be here
            or not all(callable(getattr(c, "_encode_sync", None)) for c in codecs)
        ):
            return None
        folder = os.path.join(str(store.root), aa.store_path.path)
        blosc = BloscInto.of(codecs)
        chunks = tuple(int(c) for c in meta.chunks)
        # the same for every chunk of a regular grid (edge chunks are stored whole): made
        # once, not per chunk (zarr's pipeline makes it per chunk)
        spec = meta.get_chunk_spec((0,) * len(chunks), aa.config, default_buffer_prototype())
        return cls(array, folder, chunks, blosc, spec, write_piece())

    def coords(self, region: Sequence[slice]) -> tuple[int, ...] | None:
        """Chunk coordinates of ``region`` when it is exactly one chunk, else None."""
        out = []
        for s, c, n in zip(region, self.chunks, self.array.shape, strict=True):
            start, stop = int(s.start or 0), int(n if s.stop is None else s.stop)
            if start % c or not (stop - start == c or (stop == n and stop - start < c)):
                return None
            out.append(start // c)
        return tuple(out)

    def write(self, coords: tuple[int, ...], block: np.ndarray) -> None:
        """Encode ``block`` (the chunk at ``coords``, edge chunks unpadded) and store it."""
        aa = self.array.async_array
        meta = aa.metadata
        spec = self.spec
        data = np.asarray(block, dtype=spec.dtype.to_native_dtype())
        if data.shape != spec.shape:  # an edge chunk: stored whole, padded with the fill value
            data = _padded(data, spec.shape, spec.fill_value)
        payload = None if self.blosc is None else self.blosc.encode(data)
        if payload is None:
            chunk: Any = spec.prototype.nd_buffer.from_numpy_array(data)
            for codec in _codecs(
                aa.codec_pipeline
            ):  # array -> array, array -> bytes, bytes -> bytes
                chunk = codec._encode_sync(chunk, spec)
                spec = codec.resolve_metadata(spec)
            payload = memoryview(chunk.as_buffer_like()).cast("B")
        _store(os.path.join(self.folder, meta.encode_chunk_key(coords)), payload, self.piece)

    def drop(self, coords: tuple[int, ...]) -> None:
        """Remove the chunk at ``coords`` if it is stored (an empty chunk).

        Zarr with ``write_empty_chunks`` False deletes the key of a chunk that holds only
        the fill value; it reads back as the fill value.
        """
        path = os.path.join(self.folder, self.array.async_array.metadata.encode_chunk_key(coords))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _padded(data: np.ndarray, shape: tuple[int, ...], fill: Any) -> np.ndarray:
    """Return ``data`` in the corner of a ``shape`` array of ``fill``, in a buffer of this thread.

    Edge chunks are stored whole; a new array per edge chunk (``np.full``) is fresh memory the
    kernel maps and zeroes (7 of 16 chunks at 4097^2 in chunks of 1025). The buffer is reused
    by the thread's next edge chunk: the caller encodes it before that.
    """
    nbytes = int(np.prod(shape)) * data.dtype.itemsize
    buf = getattr(_BUFFERS, "pad", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _BUFFERS.pad = np.empty(nbytes, dtype=np.uint8)
    full = buf[:nbytes].view(data.dtype).reshape(shape)
    for axis, n in enumerate(data.shape):  # the margins only, then the data
        full[(slice(None),) * axis + (slice(n, None),)] = fill
    full[tuple(slice(0, n) for n in data.shape)] = data
    return full


def drop_partials(folder: str) -> int:
    """Remove the ``.partial`` files a killed run left in a store (see :func:`_store`).

    A chunk's temporary file is never valid data: on resuming, its chunk is rewritten
    (the ledger does not mark it) and the leftover would otherwise stay in the store.

    Returns
    -------
    int
        Files removed.
    """
    n = 0
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith(".partial"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(root, name))
                    n += 1
    return n


def _store(path: str, payload: memoryview, piece: int = 0) -> None:
    """Write ``payload`` to ``path`` as zarr's ``LocalStore`` does: a temporary file moved in.

    A run killed mid-write leaves a ``.partial`` file, never a torn chunk under the chunk's
    key (a chunk the ledger does not mark is rewritten on resuming either way; this keeps
    ``open_zarr(allow_incomplete=True)`` able to read every chunk file it finds). Unbuffered
    ``os.write`` calls: the bytes are already in one buffer, handed over ``piece`` bytes a
    call (:func:`write_piece`; 0: all at once). No ``fsync``: as zarr's
    ``LocalStore``, the chunk is durable when the kernel writes it back (a killed process
    loses nothing it wrote; a crash of the machine may, as for any write through the page
    cache). The chunk's folder is made only when the file cannot be created: four system
    calls per chunk (open, write, close, rename) rather than a ``mkdir`` attempt each time.
    """
    tmp = f"{path}.{uuid.uuid4().hex}.partial"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileNotFoundError:  # the chunk's folder is not there yet (once per folder)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(tmp, flags, 0o666)
        step = piece if piece > 0 else max(1, len(payload))
        try:
            while payload:
                payload = payload[os.write(fd, payload[:step]) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
