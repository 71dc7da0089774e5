"""Training against scoring throughput of every model, measured side by side in one run.

The issue's target: training reaches at least a third of the same network's scoring rate.
Rates are counted the same way on both sides:

- **CNN** (windows/s): one epoch of ``fit`` (forward, backward, optimiser step,
  augmentation) over a :class:`~xprospect.patches.PatchSet` against ``score(windows, model)``
  over the same windows. ``legacy`` trains through the per-item path (one ``__getitem__``
  augmentation per window and a ``DataLoader`` collate).
- **VAE** (cells/s): ``fit_anomaly`` on a 2-D stack (cells trained = epochs x training cells)
  against ``score(stack, vae)``.
- **DAE** (cells/s, 2-D and 3-D): ``fit_anomaly`` on tiles; cells trained are the cells of
  the tile cores the loss is averaged over (``report["cells_per_epoch"]`` x epochs), against
  ``score(stack, dae)`` (cells of the map).
- **STOAD** (cells/s, 2-D and 3-D): the student stage of ``fit_stoad`` (a trained teacher
  given, ``teacher_epochs=0``; the teacher's own training is the DAE row) against
  ``score(stack, stoad)``.
- ``dae3d_torch`` / ``stoad3d_torch`` leave every 3-D convolution to torch's own CPU
  backend choice (``autoencoder.MKLDNN_ON_CPU = False``), the code before the oneDNN
  change.
- ``vae_optim`` trains with ``torch.optim.Adam(fused=True)`` instead of the anomaly
  trainers' :class:`~xprospect.train._flat_adam.FlatAdam` (``_flat_adam.ENABLED = False``),
  the code before it.

Each rate is also given per CPU second of this process (``time.process_time``; scoring's
dask threads included), beside the wall rate.

Measured on a quiet 2-core machine (one torch thread; wall time; best of 3, interleaved;
load 1.5-2.2): ``cnn`` 5 886 train / 14 603 score windows/s = 0.40; ``vae`` 220 841 /
3 240 276 cells/s = 0.07; ``dae`` 204 117 / 975 620 = 0.21; ``stoad`` 221 468 / 897 826 =
0.25; ``dae3d`` 119 732 / 487 329 = 0.25 against ``dae3d_torch`` 57 946 / 336 218 = 0.17;
``stoad3d`` 259 215 / 606 111 = 0.43 against ``stoad3d_torch`` 64 902 / 386 481 = 0.17:
batch-of-one 3-D tiles on oneDNN (:func:`xprospect.models.autoencoder.conv_nd`) train the
3-D DAE 2.1x and STOAD's student 4.0x faster. Under load (the machine shared with four
other jobs) the ratios read higher (``dae`` 0.51, ``dae3d`` 0.52): loaded scoring slows
more than training, so read the quiet figures.

Loaded run (the machine shared with four other jobs, load average 9-13 throughout; one
torch thread; best of 3, of 5 for the VAE pair), train / score per wall second and per CPU
second: ``cnn`` 930 / 3 130 windows/s wall; ``vae`` 82 000 / 91 107 wall, 188 099 / 227 721
per CPU s, against ``vae_optim`` 71 506 / 236 390 wall, 173 168 / 613 703 per CPU s (FlatAdam
trains the VAE 1.15x faster in wall time, 1.09x in CPU time, in the same run); ``dae``
151 167 / 168 707 per CPU s; ``stoad`` 179 682 / 173 562; ``dae3d`` 106 524 / 113 102 against
``dae3d_torch`` 53 066 / 91 833; ``stoad3d`` 222 278 / 120 164 against ``stoad3d_torch``
63 774 / 100 074. Under such load the training rates per CPU second stay near the quiet wall
rates above (VAE 188 k vs 221 k, DAE 151 k vs 204 k, 3-D DAE 107 k vs 120 k), but scoring's
do not (VAE 228-614 k vs 3.2 M, DAE 169 k vs 976 k: its dask and torch threads wait on a
machine they share), so the train / score ratios of a loaded run are not the issue's figure:
read the quiet table.

Quiet run after FlatAdam and the 2-D sub-tiles (load 1.5-2.3; one torch thread; wall, best
of 3, interleaved; ``--models cnn,vae,vae_optim,dae,stoad,dae3d,stoad3d``): ``cnn`` 7 760 /
20 472 windows/s = 0.38; ``vae`` 236 547 / 2 841 385 cells/s = 0.08 against ``vae_optim``
240 353 / 3 321 005 = 0.07; ``dae`` 254 491 / 972 280 = 0.26; ``stoad`` 308 918 / 918 174 =
0.34; ``dae3d`` 125 464 / 485 639 = 0.26; ``stoad3d`` 271 823 / 617 935 = 0.44. On the quiet
machine FlatAdam trains the VAE no faster in a whole fit (0.98x wall, 1.00x per CPU second
against ``vae_optim``): the loaded 1.15x above does not hold. What it does save is the first
step of ``torch.optim`` in a fresh process, which imports ``torch._dynamo`` (2.2-2.5 s on the
quiet machine, a one-line ``Adam(fused=True)`` step timed in a new interpreter).

The VAE cannot reach a third of its scoring rate at its batch of 512 vectors, whatever the
code: scoring a cell costs 888 multiply-adds (5-24-12-3-12-24-5, mean code), a training step
2 652 a cell (forward with the log-variance head 924, weight gradients 924, input gradients
804: 2.99x), so a third is the arithmetic ceiling at zero per-step cost; and one step on 512
vectors is 1.4 M multiply-adds (about 0.35 ms at scoring's arithmetic rate) against ~3 ms of
dispatch for its ~70 eager operations and the optimiser (torch.profiler, quiet machine). A
hand-fused forward/backward (channel-first, cache-sized blocks) measured no faster in whole
fits (22.1k vs 21.5k cells/s at batch 512, 66.7k vs 75.2k at 4 096, interleaved, best of 3,
load 9-12) and was not kept.

The convolutional autoencoders cannot reach a third either, at their default tiles, whatever
the code: a training step runs the forward pass on the whole tile (the core the loss counts
and a margin of ``r = 6`` cells a side), then the weight gradient of every layer and the
input gradient of every layer but the first, each as many multiply-adds as that layer's
forward pass. For the default widths (5-20-10-2-10-20-5, 640 multiply-adds per cell and tap)
a 60-cell 2-D tile (48-cell core) costs 45.8 M multiply-adds for 2 304 trained cells, 3.45x
a scored cell's 5 760; a 36-cell 3-D tile (24-cell core) 1.22 G for 13 824 trained cells,
5.1x a scored cell's 17 280. Only larger cores (more trained cells a step, so fewer optimiser
steps an epoch: a change of results, not made here) would move that ceiling, and even an
unbounded core leaves 2.8x (the first layer needs no input gradient).

Where the 3-D DAE's time goes on a 1 M-voxel block model (100^3, 5 elements, defaults:
36-cell tiles, one a step, 73 steps an epoch): 9.3 CPU seconds an epoch on one thread
(loaded machine; ``fit_anomaly`` of 1 and 3 epochs, 9.5 and 28.1 CPU s), 87 % of a step in
oneDNN convolutions (``torch.profiler``), so the default 100 epochs take about 15 CPU
minutes (the issue's 89 s an epoch predates the oneDNN path and the large cores).

The README's anomaly recipes timed end to end (1 Dec, one torch thread, the trainers'
default since that day; a machine shared with other jobs, load 2-4, so read the CPU time;
``smooth_stack`` data): VAE 300 epochs on 5 x 244^2, 55 s CPU (56 s wall); STOAD 2-D 200 +
200 epochs on 5 x 244^2, 97 s CPU (190 s wall); 3-D STOAD (teacher widths 12-6-3) 50 + 50
epochs on 5 x 100^3, 367 s CPU (645 s wall); 3-D DAE with its default 100 epochs on 5 x
100^3, 777 s CPU (1 017 s wall). On torch's own 2 threads, as before, the STOAD 2-D recipe
had taken 1 278 s CPU (1 836 s wall) on the same shared machine.

Quiet run on another machine (an AVX-512/AMX Xeon, 2 cores; 1 Dec, load 0.15-0.9; one
torch thread, the trainers' default; wall, best of 3, interleaved; ``--models
cnn,vae,dae,stoad,dae3d,stoad3d``), train / score per wall second (and the ratio per CPU
second): ``cnn`` 15 745 / 44 097 windows/s = 0.36; ``vae`` 864 082 / 6 297 010 cells/s = 0.14
(0.18); ``dae`` 508 093 / 1 620 719 = 0.31 (0.55); ``stoad`` 633 376 / 1 828 656 = 0.35
(0.62); ``dae3d`` 235 120 / 933 533 = 0.25 (0.46); ``stoad3d`` 594 824 / 1 259 538 = 0.47
(0.87). With ``--threads 2`` (two runs, interleaved with a one-thread run): ``dae3d`` trains
1.40x faster (327 132 and 323 964 against 233 646 cells/s; ratio 0.35), the 2-D ``dae`` no
faster (505 384 and 492 596 against 517 382; ratio 0.33-0.34, scoring slower) and the
``vae`` 1.7x slower (495 504 and 500 709 against 869 807). The trainers stay on one thread
by default (``threads=``): two threads gain only for 3-D convolutions on an idle machine,
and on a shared one they spun (the STOAD README recipe above).

Every training time is the whole ``fit`` call (setup, statistics, tile positions, epochs);
scoring is ``score(...).compute()`` on the same stack. Wall (and process CPU) time, best of
``repeat``, interleaved (train, score, train, score, ...). Run as a script for the table:
``python asv_bench/benchmarks/training.py [--threads N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
import xarray as xr

import xprospect.models.autoencoder as _autoencoder
import xprospect.train._flat_adam as _flat_adam
from xprospect.models import VAE, ConvAutoencoder, SmallCNN
from xprospect.patches import make_patches
from xprospect.points import cells_to_points
from xprospect.score import score
from xprospect.train import fit, fit_anomaly, fit_stoad

N_ELEMENTS = 16
GRID = 160
N_WINDOWS = 4096
BATCH = 256

#: The demo's stack size (elements x cells a side) and a synthetic 3-D block model.
DEMO = (5, 244)
BLOCK = (5, 48)
EPOCHS = 3


def make_windows(size: int, n: int = N_WINDOWS, seed: int = 0):
    """A PatchSet of ``n`` windows (1 in 4 positive) of a random 16-element stack."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((N_ELEMENTS, GRID, GRID)).astype("float32")
    stack = xr.DataArray(
        data,
        dims=("element", "y", "x"),
        coords={
            "element": [f"E{i}" for i in range(N_ELEMENTS)],
            "y": np.arange(GRID, 0, -1) - 0.5,
            "x": np.arange(GRID) + 0.5,
        },
    )
    cells = rng.choice(GRID * GRID, n, replace=True)
    n_pos = n // 4
    return make_patches(
        stack,
        positives=cells_to_points(np.unique(cells[:n_pos]), stack, "P"),
        negatives=cells_to_points(cells[n_pos:], stack, "N"),
        size=size,
        jitter=0,
        n_per_positive=1,
        seed=seed,
    )


def make_model(window: int, widths=(32, 32, 64)):
    return SmallCNN(N_ELEMENTS, window=window, widths=widths, seed=0)


def smooth_stack(n_elements: int, n: int, ndim: int, seed: int = 0) -> xr.DataArray:
    """A spatially correlated random stack (``element`` + ``ndim`` axes of ``n`` cells)."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n_elements,) + (n,) * ndim).astype("float32")
    for ax in range(1, ndim + 1):  # a 3-cell running mean per axis: some spatial structure
        data = (data + np.roll(data, 1, ax) + np.roll(data, -1, ax)) / 3
    dims = ("element", "z", "y", "x")[-(ndim + 1) :] if ndim == 3 else ("element", "y", "x")
    coords: dict[str, Any] = {"element": [f"E{i}" for i in range(n_elements)]}
    for d in dims[1:]:
        coords[d] = (np.arange(n)[::-1] if d == "y" else np.arange(n)) * 10.0 + 5.0
    return xr.DataArray(data.astype("float32"), dims=dims, coords=coords, name="stack")


class TrainVsScore:
    """One epoch of ``fit`` against ``score`` over the same windows (CPU)."""

    params: ClassVar[list[int]] = [9]
    param_names: ClassVar[list[str]] = ["window"]
    timeout = 600

    def setup(self, window):
        torch.manual_seed(0)
        self.windows = make_windows(window)
        self.model = fit(
            make_model(window),
            self.windows,
            recipe="adam",
            epochs=1,
            batch_size=BATCH,
            progress=False,
            device="cpu",
        ).model

    def time_train_epoch(self, window):
        fit(
            make_model(window),
            self.windows,
            recipe="adam",
            epochs=1,
            batch_size=BATCH,
            progress=False,
            device="cpu",
        )

    def time_train_epoch_legacy(self, window):
        ds = torch.utils.data.Subset(
            self.windows.torch_dataset(augment=True, seed=0), list(range(len(self.windows)))
        )
        fit(
            make_model(window),
            ds,
            recipe="adam",
            epochs=1,
            batch_size=BATCH,
            progress=False,
            device="cpu",
        )

    def time_train_3_epochs(self, window):
        fit(
            make_model(window),
            self.windows,
            recipe="adam",
            epochs=3,
            batch_size=BATCH,
            progress=False,
            device="cpu",
        )

    def time_score(self, window):
        score(self.windows, self.model, batch_size=BATCH, device="cpu")


def rates(window: int = 9, repeat: int = 3, n: int = N_WINDOWS) -> dict[str, float]:
    """Best windows/s of CNN training (one epoch with its setup, three epochs, the legacy
    per-item path) and of scoring, measured side by side."""
    b = TrainVsScore()
    b.setup(window)
    out: dict[str, list[float]] = {
        "train": [],
        "train_3_epochs": [],
        "train_legacy": [],
        "score": [],
    }
    for _ in range(repeat):
        for key, fn, ep in (
            ("train", b.time_train_epoch, 1),
            ("train_3_epochs", b.time_train_3_epochs, 3),
            ("train_legacy", b.time_train_epoch_legacy, 1),
            ("score", b.time_score, 1),
        ):
            t0 = time.perf_counter()
            fn(window)
            out[key].append(ep * len(b.windows) / (time.perf_counter() - t0))
    return {k: float(np.max(v)) for k, v in out.items()}


# ----------------------------------------------------------------------------- anomaly models


def _anomaly_case(name: str) -> tuple[xr.DataArray, Callable[[], tuple[Any, float]]]:
    """The stack and a ``train()`` returning ``(model, cells trained)`` of one anomaly case."""
    base = name.partition("_")[0]
    c, n = BLOCK if base.endswith("3d") else DEMO
    ndim = 3 if base.endswith("3d") else 2
    stack = smooth_stack(c, n, ndim)
    # training on the script's torch thread count (``--threads``), as scoring is
    kw: dict[str, Any] = {
        "epochs": EPOCHS,
        "seed": 0,
        "device": "cpu",
        "threads": torch.get_num_threads(),
    }
    if base == "vae":

        def train() -> tuple[Any, float]:
            f = fit_anomaly(VAE(c), stack, **kw)
            return f.model, EPOCHS * f.report["n_train"]
    elif base.startswith("dae"):

        def train() -> tuple[Any, float]:
            f = fit_anomaly(ConvAutoencoder(c, ndim=ndim), stack, **kw)
            return f.model, EPOCHS * f.report["cells_per_epoch"]
    else:
        torch.manual_seed(0)
        teacher = fit_anomaly(ConvAutoencoder(c, ndim=ndim), stack, **{**kw, "epochs": 1}).model

        def train() -> tuple[Any, float]:
            f = fit_stoad(teacher, stack, teacher_epochs=0, **kw)
            return f.model, EPOCHS * f.report["cells_per_epoch"]

    return stack, train


class _TorchConvChoice:
    """Within the block, 3-D convolutions take torch's own CPU backend choice (``_torch``),
    and the anomaly trainers ``torch.optim``'s fused Adam instead of
    :class:`~xprospect.train._flat_adam.FlatAdam` (``_optim``)."""

    def __init__(self, name: str) -> None:
        self.on = name.endswith("_torch")
        self.optim = name.endswith("_optim")

    def __enter__(self) -> None:
        self.was = _autoencoder.MKLDNN_ON_CPU, _flat_adam.ENABLED
        if self.on:
            _autoencoder.MKLDNN_ON_CPU = False
        if self.optim:
            _flat_adam.ENABLED = False

    def __exit__(self, *exc: Any) -> None:
        _autoencoder.MKLDNN_ON_CPU, _flat_adam.ENABLED = self.was


def tiled(stack: xr.DataArray, k: int) -> xr.DataArray:
    """``stack`` repeated ``k`` times along every spatial axis (a map large enough that
    scoring runs at its sustained rate, not at the cost of one call's setup)."""
    reps = (1,) + (k,) * (stack.ndim - 1)
    data = np.tile(stack.values, reps)
    coords: dict[str, Any] = {"element": stack["element"].values}
    for d in stack.dims[1:]:
        step = 10.0
        n = data.shape[stack.dims.index(d)]
        coords[d] = (np.arange(n)[::-1] if d == "y" else np.arange(n)) * step + step / 2
    return xr.DataArray(data, dims=stack.dims, coords=coords, name="stack")


def anomaly_rates(name: str, repeat: int = 3) -> dict[str, float]:
    """Best cells/s of training and of scoring one anomaly model, interleaved.

    Scoring runs on the training stack repeated 4 x 4 (2-D) or 2 x 2 x 2 (3-D) times."""
    return interleaved_rates([name], repeat)[name]


def interleaved_rates(names: list[str], repeat: int = 3) -> dict[str, dict[str, float]]:
    """Best cells/s of training and scoring several anomaly cases, every repeat running
    each case once (train, score) in turn, so that variants share the machine's load."""
    cases = {}
    for name in names:
        with _TorchConvChoice(name):
            small, train = _anomaly_case(name)
        stack = tiled(small, 2 if small.ndim == 4 else 4)
        n_cells = int(np.prod([stack.sizes[d] for d in stack.dims if d != "element"]))
        cases[name] = (stack, train, n_cells)
    keys = ("train", "score", "train_cpu", "score_cpu")
    out: dict[str, dict[str, list[float]]] = {n: {k: [] for k in keys} for n in names}
    for _ in range(repeat):
        for name, (stack, train, n_cells) in cases.items():
            with _TorchConvChoice(name):
                t0, c0 = time.perf_counter(), time.process_time()
                model, cells = train()
                out[name]["train"].append(cells / (time.perf_counter() - t0))
                out[name]["train_cpu"].append(cells / max(time.process_time() - c0, 1e-9))
                t0, c0 = time.perf_counter(), time.process_time()
                score(stack, model, device="cpu").compute()
                out[name]["score"].append(n_cells / (time.perf_counter() - t0))
                out[name]["score_cpu"].append(n_cells / max(time.process_time() - c0, 1e-9))
    return {n: {k: float(np.max(v)) for k, v in out[n].items()} for n in names}


class AnomalyTrainVsScore:
    """Training against scoring throughput of the anomaly detectors (cells/s, CPU)."""

    params: ClassVar[list[str]] = [
        "vae",
        "vae_optim",
        "dae",
        "stoad",
        "dae3d",
        "dae3d_torch",
        "stoad3d",
        "stoad3d_torch",
    ]
    param_names: ClassVar[list[str]] = ["model"]
    timeout = 900

    def track_train_over_score(self, name):
        r = anomaly_rates(name, repeat=1)
        return r["train"] / r["score"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--models",
        default="cnn,vae,vae_optim,dae,stoad,dae3d,dae3d_torch,stoad3d,stoad3d_torch",
    )
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f"torch threads {a.threads}; load average {os.getloadavg()}")
    print(
        f"{'model':14s} {'unit':9s} {'train/s':>10s} {'score/s':>10s} {'ratio':>6s}"
        f" {'train/cpu-s':>11s} {'score/cpu-s':>11s} {'ratio':>6s}"
    )
    names = a.models.split(",")

    def show(name: str, unit: str, r: dict[str, float]) -> None:
        line = (
            f"{name:14s} {unit:9s} {r['train']:10.0f} {r['score']:10.0f} "
            f"{r['train'] / r['score']:6.2f}"
        )
        if "train_cpu" in r:  # the same per CPU second of this process (steadier under load)
            line += (
                f" {r['train_cpu']:11.0f} {r['score_cpu']:11.0f} "
                f"{r['train_cpu'] / r['score_cpu']:6.2f}"
            )
        print(line, flush=True)

    if "cnn" in names:
        show("cnn", "windows", rates(repeat=a.repeat))
    # variants of one model (``dae3d`` / ``dae3d_torch``) interleave with each other
    groups: dict[str, list[str]] = {}
    for name in names:
        if name != "cnn":
            groups.setdefault(name.partition("_")[0], []).append(name)
    for group in groups.values():
        for name, r in interleaved_rates(group, repeat=a.repeat).items():
            show(name, "cells", r)
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
