"""Training against scoring throughput of supervised window classifiers (windows per second).

The issue's target: training reaches at least a third of the same network's scoring rate.
Both are measured in one run on the same windows: ``fit`` for one epoch (forward, backward,
optimiser step, augmentation) against ``score(windows, model)`` (forward only) over a
:class:`~xprospect.patches.PatchSet`. ``legacy`` trains through the per-item path (one
``__getitem__`` augmentation per window and a ``DataLoader`` collate), which ``fit`` used for
every PatchSet before batches were cut and augmented a whole batch at a time.

Run as a script for the table: ``python asv_bench/benchmarks/training.py``.
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
import torch
import xarray as xr

from xprospect.models import SmallCNN
from xprospect.patches import make_patches
from xprospect.points import cells_to_points
from xprospect.score import score
from xprospect.train import fit

N_ELEMENTS = 16
GRID = 160
N_WINDOWS = 4096
BATCH = 256


def make_windows(size: int, n: int = N_WINDOWS, seed: int = 0):
    """A PatchSet of ``n`` windows (1 in 4 positive) of a random 16-element stack."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((N_ELEMENTS, GRID, GRID)).astype("float32")
    stack = xr.DataArray(
        data,
        dims=("element", "y", "x"),
        coords={"element": [f"E{i}" for i in range(N_ELEMENTS)],
                "y": np.arange(GRID, 0, -1) - 0.5, "x": np.arange(GRID) + 0.5},
    )
    cells = rng.choice(GRID * GRID, n, replace=True)
    n_pos = n // 4
    return make_patches(stack, positives=cells_to_points(np.unique(cells[:n_pos]), stack, "P"),
                        negatives=cells_to_points(cells[n_pos:], stack, "N"), size=size,
                        jitter=0, n_per_positive=1, seed=seed)


def make_model(window: int, widths=(32, 32, 64)):
    return SmallCNN(N_ELEMENTS, window=window, widths=widths, seed=0)


class TrainVsScore:
    """One epoch of ``fit`` against ``score`` over the same windows (CPU)."""

    params: ClassVar[list[int]] = [9]
    param_names: ClassVar[list[str]] = ["window"]
    timeout = 600

    def setup(self, window):
        torch.manual_seed(0)
        self.windows = make_windows(window)
        self.model = fit(make_model(window), self.windows, recipe="adam", epochs=1,
                         batch_size=BATCH, progress=False, device="cpu").model

    def time_train_epoch(self, window):
        fit(make_model(window), self.windows, recipe="adam", epochs=1, batch_size=BATCH,
            progress=False, device="cpu")

    def time_train_epoch_legacy(self, window):
        ds = torch.utils.data.Subset(self.windows.torch_dataset(augment=True, seed=0),
                                     list(range(len(self.windows))))
        fit(make_model(window), ds, recipe="adam", epochs=1, batch_size=BATCH,
            progress=False, device="cpu")

    def time_train_3_epochs(self, window):
        fit(make_model(window), self.windows, recipe="adam", epochs=3, batch_size=BATCH,
            progress=False, device="cpu")

    def time_score(self, window):
        score(self.windows, self.model, batch_size=BATCH, device="cpu")


def rates(window: int = 9, repeat: int = 3, n: int = N_WINDOWS) -> dict[str, float]:
    """Median windows/s of training (one epoch with its setup, three epochs, the legacy
    per-item path) and of scoring, measured side by side."""
    b = TrainVsScore()
    b.setup(window)
    out: dict[str, list[float]] = {"train": [], "train_3_epochs": [], "train_legacy": [],
                                   "score": []}
    for _ in range(repeat):
        for key, fn, ep in (("train", b.time_train_epoch, 1),
                            ("train_3_epochs", b.time_train_3_epochs, 3),
                            ("train_legacy", b.time_train_epoch_legacy, 1),
                            ("score", b.time_score, 1)):
            t0 = time.perf_counter()
            fn(window)
            out[key].append(ep * len(b.windows) / (time.perf_counter() - t0))
    return {k: float(np.median(v)) for k, v in out.items()}


if __name__ == "__main__":
    torch.set_num_threads(1)
    r = rates()
    print({k: round(v) for k, v in r.items()})
    print(f"training / scoring: {r['train'] / r['score']:.2f} one epoch, "
          f"{r['train_3_epochs'] / r['score']:.2f} over 3 epochs "
          f"(legacy per-item path {r['train_legacy'] / r['score']:.2f})")
