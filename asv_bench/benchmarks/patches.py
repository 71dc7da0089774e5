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


class GroundWindows:
    """A window on every cell of a ground: batches cut from the ground against whole windows.

    ``negatives="all"`` / ``"resample"`` of :class:`xprospect.DeepMethod` train on a window
    centred on every cell of the training ground. Held whole, 9 x 9 windows take 81x the
    ground's memory; :class:`xprospect.train._batches.RegionWindows` keeps the ground and cuts
    each training batch from it. The peer is indexing the tensor of whole windows (what
    training did before). Here a 12-element, 300 x 300-cell ground: 85 264 windows, 331 MB
    whole against 4.3 MB as the ground. ``time_*`` gathers 100 batches of 64 windows.

    Measured (``python asv_bench/benchmarks/patches.py``, 2 cores, 3 Dec 2026): whole windows
    77x the ground's memory; 100 batches 4.8-5.6 ms from whole windows, 8.6-10.1 ms cut
    (1.7-2.1x over three quiet runs, under 0.1 ms more per batch, against a few ms for a small
    CNN's training step on it; 15.8 ms against 5.7 ms beside another 2-core job). Whole
    fits (``fit``, one epoch of 40 000 windows drawn from a window on every cell of a
    700 x 700-cell, 12-layer float64 province) peaked 5.4 GB higher reading the windows whole
    (6.25 GB against 0.83 GB) and took 33.6 s against 11.0 s cut.
    """

    grid, size, n_el, batch = 300, 9, 12, 64
    timeout = 300

    def setup(self):
        import torch

        from xprospect.train._batches import RegionWindows

        rng = np.random.default_rng(0)
        self.ground = rng.standard_normal((self.n_el, self.grid, self.grid), dtype="float32")
        side = self.grid - self.size + 1
        yy, xx = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        self.origins = np.stack([yy.ravel(), xx.ravel()], axis=1)
        self.cut = RegionWindows(self.ground, self.origins, (self.size, self.size))
        self.whole = self.cut[torch.arange(len(self.cut))]
        self.idx = [torch.as_tensor(rng.integers(0, len(self.cut), self.batch)) for _ in range(100)]

    def time_batches_from_whole_windows(self):
        for i in self.idx:
            self.whole[i].contiguous()

    def time_batches_cut_from_the_ground(self):
        for i in self.idx:
            self.cut[i]

    def track_memory_whole_over_ground(self):
        """Bytes of the whole windows over the bytes of the ground they are cut from."""
        return self.whole.numel() / self.ground.size

    track_memory_whole_over_ground.unit = "ratio"  # type: ignore[attr-defined]

    def track_cut_over_whole_time(self):
        """Time of 100 cut batches over 100 batches indexed from whole windows (best of 3)."""
        a = min(_timed(self.time_batches_from_whole_windows) for _ in range(3))
        b = min(_timed(self.time_batches_cut_from_the_ground) for _ in range(3))
        return b / a

    track_cut_over_whole_time.unit = "ratio"  # type: ignore[attr-defined]


def _timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


if __name__ == "__main__":
    # python asv_bench/benchmarks/patches.py: the GroundWindows figures in one run
    b = GroundWindows()
    b.setup()
    print(f"memory, whole windows / ground: {b.track_memory_whole_over_ground():.0f}x")
    w = min(_timed(b.time_batches_from_whole_windows) for _ in range(5))
    c = min(_timed(b.time_batches_cut_from_the_ground) for _ in range(5))
    print(f"100 batches of 64: whole {w * 1e3:.1f} ms, cut {c * 1e3:.1f} ms ({c / w:.2f}x)")
