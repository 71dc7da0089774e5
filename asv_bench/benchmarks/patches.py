"""Training-patch extraction (``xprospect.patches``) against plain numpy slicing.

The issue's targets: 1,000 windows of 8 x 256 x 256 read from a zarr stack bigger than the
memory budget with peak memory under 2 GB (read batch by batch, as training does: the 1,000
windows together are 2.1 GB of float32 by themselves), and from a dask-backed stack within 2x of
numpy slicing of the same windows from the array in memory (a generic xarray batcher's dask path
measured 18x slower than numpy here, see ``shared/PERFORMANCE.md``).

The peer is ``numpy_slicing``: ``out[i] = stack[:, y0:y0 + 256, x0:x0 + 256]`` per window.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import dask.array as da
import numpy as np
import xarray as xr

from xprospect._dims import GridGeometry
from xprospect.patches import PatchSet, extract_patches, plan_random

N_ELEMENTS = 8
GRID = 3072  # in-memory stack edge (8 x 3072^2 float32 = 302 MB)
ZARR_GRID = 8192  # zarr stack edge (2.1 GB); XPROSPECT_BENCH_ZARR_GRID=16384 for 8.6 GB
N_WINDOWS = 1000
SIZE = 256
CHUNK = 512


def stack_array(grid: int, chunks: int | None = None, seed: int = 0):
    """``(element, y, x)`` float32 noise, numpy or dask (random, built lazily, chunk by chunk)."""
    if chunks is None:
        return np.random.default_rng(seed).standard_normal((N_ELEMENTS, grid, grid), "float32")
    rs = da.random.default_rng(seed)
    return rs.standard_normal(
        (N_ELEMENTS, grid, grid), dtype="float32", chunks=(N_ELEMENTS, chunks, chunks)
    )


def as_stack(data) -> xr.DataArray:
    n = data.shape[-1]
    return xr.DataArray(
        data,
        dims=("element", "y", "x"),
        coords={
            "element": [f"E{i}" for i in range(data.shape[0])],
            "y": np.arange(n, 0, -1) - 0.5,
            "x": np.arange(n) + 0.5,
        },
    )


def random_plan(grid: int, n: int, size: int, seed: int = 1):
    geom = GridGeometry(("y", "x"), (grid, grid), (grid - 0.5, 0.5), (-1.0, 1.0))
    return plan_random(geom, n, size=size, seed=seed)


def numpy_slicing(arr: np.ndarray, plan) -> np.ndarray:
    """The peer: slice every window out of the in-memory array."""
    out = np.empty((plan.n, arr.shape[0], *plan.size), dtype=arr.dtype)
    h, w = plan.size
    for i, (y0, x0) in enumerate(plan.origins):
        out[i] = arr[:, y0 : y0 + h, x0 : x0 + w]
    return out


class ExtractInMemory:
    """1,000 random 256^2 windows of an 8 x 3072^2 stack: numpy peer, numpy and dask stacks."""

    grid, n_windows, size, chunk = GRID, N_WINDOWS, SIZE, CHUNK
    timeout = 600

    def setup(self):
        self.arr = stack_array(self.grid)
        self.dask_stack = as_stack(
            da.from_array(self.arr, chunks=(N_ELEMENTS, self.chunk, self.chunk))
        )
        self.numpy_stack = as_stack(self.arr)
        self.plan = random_plan(self.grid, self.n_windows, self.size)

    def time_numpy_slicing(self):
        numpy_slicing(self.arr, self.plan)

    def time_extract_numpy_stack(self):
        extract_patches(self.numpy_stack, self.plan)

    def time_extract_dask_stack(self):
        extract_patches(self.dask_stack, self.plan)

    def track_dask_over_numpy_slicing(self):
        """Ratio of extraction from the dask stack to numpy slicing (target <= 2)."""
        t0 = time.perf_counter()
        numpy_slicing(self.arr, self.plan)
        t1 = time.perf_counter()
        extract_patches(self.dask_stack, self.plan)
        t2 = time.perf_counter()
        return (t2 - t1) / (t1 - t0)

    track_dask_over_numpy_slicing.unit = "ratio"  # type: ignore[attr-defined]


class ExtractZarr:
    """1,000 windows from an 8 x 8192^2 zarr store, read in training batches of 64."""

    grid, n_windows, size, chunk, batch = ZARR_GRID, N_WINDOWS, SIZE, CHUNK, 64
    timeout = 1200

    def setup_cache(self):
        grid = int(os.environ.get("XPROSPECT_BENCH_ZARR_GRID", self.grid))
        path = os.path.join(tempfile.mkdtemp(prefix="xp-bench-"), "stack.zarr")
        as_stack(stack_array(grid, chunks=self.chunk)).to_dataset(name="stack").to_zarr(
            path, mode="w", consolidated=False
        )
        return path

    def setup(self, path):
        self.stack = xr.open_zarr(path, consolidated=False)["stack"]
        self.patches = PatchSet(
            random_plan(self.stack.sizes["x"], self.n_windows, self.size), self.stack
        )

    def peakmem_iter_batches(self, path):
        total = 0.0
        for _, win in self.patches.iter_batches(self.batch):
            total += float(win[:, 0, 0, 0].sum())
        return total

    def time_iter_batches(self, path):
        for _ in self.patches.iter_batches(self.batch):
            pass

    def teardown_cache(self, path):  # pragma: no cover - asv calls it only in newer versions
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
