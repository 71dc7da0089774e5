"""A small grid-and-transform job for tests/test_store_resume.py, run in subprocesses.

``python tests/_resume_job.py STORE MODE SEED`` writes IDW maps of two elements
(128 x 128 cells in 4 x 4 chunks of 32) passed through a per-chunk transform to STORE.
MODE is "full" (``to_zarr``) or "resume" (``to_zarr(resume=True)``). The transform
appends one line per call to the file named by ``$XP_COUNTER`` and, when
``$XP_KILL_AT`` is set, SIGKILLs its own process at that call.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import dask
import numpy as np

_LOCK = threading.Lock()


def transform(block: np.ndarray) -> np.ndarray:
    """log1p of the block, counting calls and dying on request."""
    if block.size == 0:  # dask's meta inference, not a chunk
        return np.log1p(np.abs(block)).astype(block.dtype)
    with _LOCK:
        with open(os.environ["XP_COUNTER"], "a") as f:
            f.write("1\n")
        with open(os.environ["XP_COUNTER"]) as f:
            n = sum(1 for _ in f)
    kill_at = os.environ.get("XP_KILL_AT")
    if kill_at is not None and n >= int(kill_at):
        os.kill(os.getpid(), signal.SIGKILL)
    return np.log1p(np.abs(block)).astype(block.dtype)


def job(seed: int):
    """The lazy Dataset to write."""
    import xprospect as xp

    w = xp.synthetic.survey(seed=seed, n_samples=120, elements=["Au", "Cu"])
    x0, y0 = float(w.samples.x.min()), float(w.samples.y.min())
    grid = xp.make_grid(
        (x0, y0, x0 + 127 * 500.0, y0 + 127 * 500.0),
        resolution=500.0,
        crs=w.samples.rio.crs,
        chunks=32,
    )
    maps = xp.grid_idw(w.samples, like=grid)
    for name in maps.data_vars:
        maps[name] = maps[name].copy(
            data=maps[name].data.map_blocks(transform, dtype=maps[name].dtype)
        )
    return maps


if __name__ == "__main__":
    import xprospect as xp

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    store, mode, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    from _resume_job import job as _job  # the same module name in every run: same dask token

    with dask.config.set(scheduler="threads", num_workers=2):
        xp.to_zarr(
            _job(seed),
            store,
            resume=(mode == "resume"),
            progress=False,
            job={"transform": "log1p", "seed": seed},
        )
