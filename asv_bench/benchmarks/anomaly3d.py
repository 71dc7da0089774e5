"""3-D convolutional autoencoder scoring throughput on CPU (voxels/s) against its FLOP floor.

The voxel stack is 8 elements over ``n x n x n`` voxels (128 in the issue). The model is the
default 3-D DAE for 8 elements (``ConvAutoencoder(8, ndim=3)``: widths 32-16-4, mirrored,
3x3x3 kernels, receptive radius 6). It is scored through the package's real path,
:func:`xprospect.score.score` on a chunked (dask) stack, chunks of 64 voxels a side with the
6-voxel halo the receptive field needs.

The peer named by the issue is the FLOP floor: the network's multiply-adds per voxel (2 FLOP
each, every convolution of encoder and decoder) divided by this machine's float32 matmul
rate, measured with torch in the same run (:func:`benchmarks.anomaly.matmul_rate`).
``track_fraction_of_flop_floor`` is the floor's time over ours (1 = at peak).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import xarray as xr

from benchmarks.anomaly import matmul_rate
from xprospect.models import ConvAutoencoder
from xprospect.models.card import make_card

N_ELEMENTS = 8
CHUNK = 64


def dae_flops_per_voxel(model: ConvAutoencoder) -> float:
    """Multiply-add FLOPs of every encoder and decoder convolution per output voxel."""
    convs = [*model.encoder.enc.layers, *model.decoder.layers]
    return float(sum(2.0 * c.weight.numel() for c in convs))


def voxel_stack(n: int, chunks: int = CHUNK) -> xr.DataArray:
    """An (element, z, y, x) stack of ``n`` voxels a side, standard normal values, dask chunks."""
    rng = np.random.default_rng(0)
    data = rng.normal(size=(N_ELEMENTS, n, n, n)).astype("float32")
    coords = {
        "element": [f"E{i}" for i in range(N_ELEMENTS)],
        "z": np.arange(n) * 10.0,
        "y": np.arange(n)[::-1] * 10.0,
        "x": np.arange(n) * 10.0,
    }
    stack = xr.DataArray(data, dims=("element", "z", "y", "x"), coords=coords, name="stack")
    return stack.chunk({"element": -1, "z": chunks, "y": chunks, "x": chunks})


class DAE3DScoring:
    """Default 3-D DAE for 8 elements scored over ``n ** 3`` voxels with ``score``."""

    params = (32, 64, 128)
    param_names = ("n",)
    timeout = 600

    def setup(self, n):
        from xprospect.score import score

        torch.manual_seed(0)
        self.stack = voxel_stack(n, chunks=min(CHUNK, n))
        self.model = ConvAutoencoder(N_ELEMENTS, ndim=3).eval()
        self.model.card = make_card(self.stack, mean=[0.0] * N_ELEMENTS, std=[1.0] * N_ELEMENTS)
        self._score = score
        self.rate = matmul_rate()
        self.run()  # warm up (thread pools, allocator)
        t = time.perf_counter()
        self.run()
        self.seconds = time.perf_counter() - t
        self.voxels = float(n) ** 3

    def run(self):
        return self._score(self.stack, self.model, device="cpu").compute()

    def time_score(self, n):
        self.run()

    def peakmem_score(self, n):
        self.run()

    def track_voxels_per_second(self, n):
        return self.voxels / self.seconds

    def track_fraction_of_flop_floor(self, n):
        floor = dae_flops_per_voxel(self.model) * self.voxels / self.rate
        return floor / self.seconds

    def track_matmul_gflops(self, n):
        return self.rate / 1e9


DAE3DScoring.track_voxels_per_second.unit = "voxels/s"
DAE3DScoring.track_matmul_gflops.unit = "GFLOP/s"
