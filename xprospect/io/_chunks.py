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

Only what this covers exactly takes the direct path (:meth:`ChunkWriter.of`): zarr format
3 arrays in a ``LocalStore``, without sharding, whose codecs all encode synchronously;
a region that is exactly one chunk (an edge chunk is padded with the fill value, as zarr
does). Everything else goes through zarr.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from zarr.codecs import BytesCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import LocalStore

__all__ = ["ChunkWriter"]


def _codecs(pipe: Any) -> tuple[Any, ...]:
    """Return the codecs of a zarr codec pipeline, in the order they encode."""
    return (*pipe.array_array_codecs, pipe.array_bytes_codec, *pipe.bytes_bytes_codecs)


@dataclass(frozen=True)
class ChunkWriter:
    """Encodes and writes whole chunks of one zarr array (see the module notes)."""

    array: Any
    folder: str
    chunks: tuple[int, ...]

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
        return cls(array, folder, tuple(int(c) for c in meta.chunks))

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
        pipe = aa.codec_pipeline
        proto = default_buffer_prototype()
        spec = meta.get_chunk_spec(coords, aa.config, proto)
        data = np.asarray(block, dtype=spec.dtype.to_native_dtype())
        if data.shape != spec.shape:  # an edge chunk: stored whole, padded with the fill value
            full = np.full(spec.shape, spec.fill_value, dtype=data.dtype)
            full[tuple(slice(0, n) for n in data.shape)] = data
            data = full
        chunk: Any = proto.nd_buffer.from_numpy_array(data)
        for codec in _codecs(pipe):  # array -> array, array -> bytes, bytes -> bytes
            chunk = codec._encode_sync(chunk, spec)
            spec = codec.resolve_metadata(spec)
        path = os.path.join(self.folder, meta.encode_chunk_key(coords))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.partial"
        try:
            with open(tmp, "wb") as f:
                f.write(chunk.as_buffer_like())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
