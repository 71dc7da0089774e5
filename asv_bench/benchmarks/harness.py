"""The benchmark harness's baselines on a province-sized stack: time and peak memory.

The issue measured an SVM or MaxEnt over the 3 M cells of a province (seven rasters at
100 m) taking half an hour and 12.7 GB. The case here has that size: 7 smooth random layers
of 1732 x 1732 cells (100 m, 173 km a side), 258 deposits where a nonlinear mix of three
layers is high, ``xp.benchmark`` with 5 folds of 20 km blocks and a 4.8 km buffer (the
issue's protocol). Each method is fitted on its folds' training cells and scores every
held-out cell in row batches over threads (``SupervisedModel.score_cells``).

A standalone run (wall time of the whole call, each method's ``seconds`` column and the
peak resident memory of the process)::

    PYTHONPATH=. python asv_bench/benchmarks/harness.py svm,maxent

Measured 1 Dec on the 2-core machine with another job on it (load 1.6-3.4),
``svm,maxent,rf,gbm``: SVM 73.9 s, GBM 45.3 s, RF 28.2 s, MaxEnt 33.0 s, each over its 5
folds with every held-out cell scored; the whole call 213.9 s with the stack's
construction; peak RSS 2.00 GB. Against the issue's half an hour and 12.7 GB for one SVM or
MaxEnt, both bounds hold with a wide margin.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import ClassVar

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter

import xprospect as xp
from xprospect.points import make_points

SIZE = 1732
RESOLUTION = 100.0
N_LAYERS = 7
N_DEPOSITS = 258
CRS = "EPSG:28354"


def province(size: int = SIZE, seed: int = 0) -> tuple[xr.DataArray, object]:
    """A (element, y, x) stack of smooth random layers and deposits on a nonlinear signal."""
    rng = np.random.default_rng(seed)
    layers = np.stack(
        [gaussian_filter(rng.normal(size=(size, size)), 8 + 4 * i) for i in range(N_LAYERS)]
    )
    layers /= layers.std(axis=(1, 2), keepdims=True)
    x = 500_000 + RESOLUTION * (np.arange(size) + 0.5)
    y = 7_000_000 - RESOLUTION * (np.arange(size) + 0.5)
    stack = xr.DataArray(
        layers.astype("float32"),
        dims=("element", "y", "x"),
        coords={"element": [f"L{i}" for i in range(N_LAYERS)], "y": y, "x": x},
    ).rio.write_crs(CRS)
    signal = (layers[0] * layers[1] + layers[2]).ravel()
    top = np.argsort(signal)[-size * size // 15 :]
    iy, ix = np.unravel_index(rng.choice(top, N_DEPOSITS, replace=False), (size, size))
    return stack, make_points(x=x[ix], y=y[iy], crs=CRS)


def run(methods: list[str], size: int = SIZE) -> xp.Benchmark:
    """``xp.benchmark`` of ``methods`` on :func:`province` (5 folds, 20 km, 4.8 km buffer)."""
    stack, deposits = province(size)
    return xp.benchmark(
        stack, deposits, methods=methods, folds=5, block_size=20_000, buffer=4_800, seed=0
    )


class ProvinceBaselines:
    """Each baseline through the harness on the 3 M-cell stack."""

    params: ClassVar[list[str]] = ["svm", "maxent", "rf", "gbm"]
    param_names: ClassVar[list[str]] = ["method"]
    number = 1
    repeat = 1
    timeout = 1800
    size = SIZE

    def time_benchmark(self, method):
        run([method], self.size)

    def peakmem_benchmark(self, method):
        run([method], self.size)


def main(argv: list[str]) -> None:
    methods = (argv[0] if argv else "svm,maxent").split(",")
    size = int(argv[1]) if len(argv) > 1 else SIZE
    t0 = time.perf_counter()
    b = run(methods, size)
    print(b.table[["auc", "seconds"]].to_string())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    load = open("/proc/loadavg").read().split()[0]
    wall = time.perf_counter() - t0
    print(f"{size}^2 cells: wall {wall:.1f} s, peak RSS {rss:.2f} GB, load {load}")


if __name__ == "__main__":
    main(sys.argv[1:])
