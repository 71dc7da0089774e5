"""What the bands of a store's write hold between scheduler calls (xprospect.io._bands)."""

from __future__ import annotations

import operator
import weakref

import dask
import dask.threaded
import numpy as np
from dask._task_spec import Task, TaskRef

from xprospect.io import _bands


def test_default_band_is_eight_chunks_a_thread_and_configurable():
    assert _bands.band_chunks(2) == 16
    assert _bands.band_chunks(16) == 128
    with dask.config.set({"xprospect.store.band_chunks": 5}):
        assert _bands.band_chunks(2) == 5


def test_a_block_handed_on_as_a_strip_is_freed_before_the_next_band():
    """Band 1 gets a strip of band 0's block: the block itself must be gone by then."""
    refs: dict[str, weakref.ref] = {}

    def block() -> np.ndarray:
        out = np.ones(100_000)
        refs["block"] = weakref.ref(out)
        return out

    def block_freed(strip: np.ndarray) -> bool:
        return refs["block"]() is None and strip.base is None

    graph = {
        "block": Task("block", block),
        "strip": Task("strip", operator.getitem, TaskRef("block"), slice(0, 10)),
        "w0": Task("w0", np.sum, TaskRef("block")),
        "w1": Task("w1", block_freed, TaskRef("strip")),
    }
    seen = []

    def get(dsk, keys):
        out = dask.threaded.get(dsk, keys, num_workers=1)
        seen.append(list(out[:1]))
        return out

    _bands.run_in_bands(graph, [["w0"], ["w1"]], get)
    assert seen[0] == [100_000.0]
    assert seen[1] == [True]


def test_trim_memory_follows_the_config():
    with dask.config.set({"xprospect.store.trim_memory": False}):
        assert _bands.trim_memory() is False
    assert isinstance(_bands.trim_memory(), bool)
