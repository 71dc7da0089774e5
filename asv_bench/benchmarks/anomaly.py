"""Per-cell VAE and STOAD scoring throughput on CPU (``xprospect.models``).

The stack is 8 elements over ``n x n`` cells (3072 in the issue; smaller params for quick
runs). Two peers are measured in the same run:

- a per-cell Python/numpy loop (one matrix-vector product per layer per cell), timed on a
  subsample of cells and extrapolated per cell;
- the FLOP floor: the model's multiply-adds per cell (2 FLOP each) divided by this machine's
  float32 matmul rate, measured with a torch matmul of 1024 x 1024 matrices.

``track_*`` report cells/s and the ratios: ``track_speedup_vs_loop`` (our cells/s over the
loop's) and ``track_fraction_of_flop_floor`` (the floor's time over ours, 1 = at peak).
STOAD is scored the way ``score`` runs a dense model: tiles of 512 cells with the 3-cell halo
its receptive field needs.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from xprospect.models import STOAD, VAE, ConvAutoencoder

N_ELEMENTS = 8
TILE = 512
LOOP_CELLS = 400  # cells timed in the per-cell loop peer


def matmul_rate(n: int = 1024, repeat: int = 5) -> float:
    """Float32 matmul FLOP/s of torch on this machine (best of ``repeat``)."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best


def vae_flops_per_cell(model: VAE) -> float:
    """Multiply-add FLOPs of one deterministic VAE pass (encoder, mu, decoder) per cell."""
    lins = [*model.encoder, model.mu, *model.decoder, model.out]
    return float(sum(2 * m.in_features * m.out_features for m in lins))


def stoad_flops_per_cell(model: STOAD) -> float:
    """Convolution FLOPs of the teacher encoder plus the student per output cell."""
    total = 0.0
    for enc in (model.teacher.encoder, model.student):
        for conv in enc.enc.layers:
            total += 2.0 * conv.weight.numel()
    return total


def _act(h: np.ndarray) -> np.ndarray:
    return np.maximum(h, 0.0)


def vae_loop(model: VAE, cells: np.ndarray) -> np.ndarray:
    """The peer: score cells ``(n, C)`` one at a time with numpy matrix-vector products."""
    enc = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in model.encoder]
    mu = (model.mu.weight.detach().numpy(), model.mu.bias.detach().numpy())
    dec = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in model.decoder]
    out_w, out_b = model.out.weight.detach().numpy(), model.out.bias.detach().numpy()
    res = np.empty(len(cells), dtype="float32")
    for i, x in enumerate(cells):
        h = x
        for w, b in enc:
            h = _act(w @ h + b)
        h = mu[0] @ h + mu[1]
        for w, b in dec:
            h = _act(w @ h + b)
        e = out_w @ h + out_b - x
        res[i] = e @ e
    return res


def stoad_loop(model: STOAD, x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """The peer: each cell's 7 x 7 window through both encoders with numpy (im2col per layer)."""
    r = model.context[0]
    k = model.teacher.kernel_size

    def encode(layers, win):
        feats = []
        h = win
        for w, b in layers:
            c, n = h.shape[0], h.shape[1] - k + 1
            cols = np.stack(
                [h[:, i : i + k, j : j + k].reshape(c * k * k) for i in range(n) for j in range(n)],
                axis=1,
            )
            h = _act(w.reshape(w.shape[0], -1) @ cols + b[:, None]).reshape(-1, n, n)
            feats.append(h)
        return feats

    tl = [
        (c.weight.detach().numpy(), c.bias.detach().numpy())
        for c in model.teacher.encoder.enc.layers
    ]
    sl = [(c.weight.detach().numpy(), c.bias.detach().numpy()) for c in model.student.enc.layers]
    res = np.empty(len(centres), dtype="float32")
    for n, (i, j) in enumerate(centres):
        win = x[:, i - r : i + r + 1, j - r : j + r + 1]
        ft, fs = encode(tl, win), encode(sl, win)
        s = 0.0
        for h, a, b in zip(model.weights, ft, fs, strict=True):
            c = a.shape[1] // 2
            d = a[:, c, c] - b[:, c, c]
            s += h * float((d * d).mean())
        res[n] = s
    return res


def _stack(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N_ELEMENTS, n, n)).astype("float32")


def score_tiled(model, x: np.ndarray, tile: int = TILE) -> np.ndarray:
    """Dense scoring over tiles with the model's halo (what ``score`` does per dask chunk)."""
    r = model.context[0]
    n = x.shape[1]
    xp = np.pad(x, ((0, 0), (r, r), (r, r)), mode="edge")
    out = np.empty((n, n), dtype="float32")
    with torch.no_grad():
        for i in range(0, n, tile):
            for j in range(0, n, tile):
                a, b = min(i + tile, n), min(j + tile, n)
                xb = torch.from_numpy(np.ascontiguousarray(xp[:, i : a + 2 * r, j : b + 2 * r]))[
                    None
                ]
                out[i:a, j:b] = model.score_dense(xb)[0].numpy()
    return out


class _Scoring:
    params = (512, 1024, 3072)
    param_names = ("n",)
    timeout = 600
    model = None

    def setup(self, n):
        torch.manual_seed(0)
        self.x = _stack(n)
        self.model = self.build().eval()
        self.rate = matmul_rate()
        t = time.perf_counter()
        self.score(self.x)
        self.seconds = time.perf_counter() - t
        self.cells = float(n * n)
        rng = np.random.default_rng(1)
        m = min(LOOP_CELLS, n * n)
        t = time.perf_counter()
        self.loop(rng, m)
        self.loop_seconds_per_cell = (time.perf_counter() - t) / m

    def score(self, x):
        return score_tiled(self.model, x)

    def time_score(self, n):
        self.score(self.x)

    def peakmem_score(self, n):
        self.score(self.x)

    def track_cells_per_second(self, n):
        return self.cells / self.seconds

    def track_speedup_vs_loop(self, n):
        return (self.loop_seconds_per_cell * self.cells) / self.seconds

    def track_fraction_of_flop_floor(self, n):
        floor = self.flops_per_cell() * self.cells / self.rate
        return floor / self.seconds

    def track_matmul_gflops(self, n):
        return self.rate / 1e9


class VAEScoring(_Scoring):
    """8-24-12-3-12-24-8 VAE, reconstruction error of every cell."""

    def build(self):
        return VAE(N_ELEMENTS, hidden=(24, 12), latent=3)

    def score(self, x):
        with torch.no_grad():
            return self.model.score_dense(torch.from_numpy(x)[None])[0].numpy()

    def loop(self, rng, m):
        flat = self.x.reshape(N_ELEMENTS, -1)
        idx = rng.integers(0, flat.shape[1], m)
        vae_loop(self.model, flat[:, idx].T.astype("float64"))

    def flops_per_cell(self):
        return vae_flops_per_cell(self.model)


VAEScoring.track_cells_per_second.unit = "cells/s"
VAEScoring.track_matmul_gflops.unit = "GFLOP/s"


class STOADScoring(_Scoring):
    """STOAD with the default teacher widths (32, 16, 4) for 8 elements, 3x3 kernels."""

    def build(self):
        return STOAD(ConvAutoencoder(N_ELEMENTS))

    def loop(self, rng, m):
        r = self.model.context[0]
        n = self.x.shape[1]
        centres = rng.integers(r, n - r, size=(m, 2))
        stoad_loop(self.model, self.x, centres)

    def flops_per_cell(self):
        return stoad_flops_per_cell(self.model)


class ScoreAPI:
    """The same two models through ``xprospect.score`` over a dask-chunked georeferenced stack.

    What a user runs (``stack.prospect.score(model)``): per-chunk tasks with the model's halo,
    NaN masking and stitching included; compare with ``VAEScoring`` / ``STOADScoring`` (the
    bare model on the same cells) for the cost of the plumbing.
    """

    params = ((1024, 3072), ("vae", "stoad"))
    param_names = ("n", "model")
    timeout = 600
    chunks = 1024

    def setup(self, n, model):
        import xarray as xr

        torch.manual_seed(0)
        x = _stack(n)
        self.stack = xr.DataArray(
            x,
            dims=("element", "y", "x"),
            coords={
                "element": [f"E{i}" for i in range(N_ELEMENTS)],
                "y": np.arange(n, 0, -1) - 0.5,
                "x": np.arange(n) + 0.5,
            },
        ).chunk({"y": self.chunks, "x": self.chunks})
        self.model = (
            VAE(N_ELEMENTS, hidden=(24, 12), latent=3)
            if model == "vae"
            else STOAD(ConvAutoencoder(N_ELEMENTS))
        ).eval()
        t = time.perf_counter()
        self.time_score(n, model)
        self.seconds = time.perf_counter() - t

    def time_score(self, n, model):
        from xprospect.score import score

        # an untrained model: scoring it without a card is an explicit opt-in
        return score(self.stack, self.model, device="cpu", allow_no_card=True).values

    def track_cells_per_second(self, n, model):
        return n * n / self.seconds


ScoreAPI.track_cells_per_second.unit = "cells/s"


# ---- training against scoring (issue 13, part 6) ---------------------------------------------


TRAIN_EPOCHS = {"vae": 3, "dae": 3, "stoad": 2}
LEGACY = False  # script flag --legacy: train with the settings of before issue 13


def _demo_stack(n: int = 244, n_el: int = 5):
    """A georeferenced (element, y, x) stack like the README demo's (5 x 244^2 cells)."""
    import xarray as xr

    x = np.random.default_rng(0).normal(size=(n_el, n, n)).astype("float32")
    return xr.DataArray(
        x,
        dims=("element", "y", "x"),
        coords={
            "element": [f"E{i}" for i in range(n_el)],
            "y": (np.arange(n, 0, -1) - 0.5) * 100.0,
            "x": (np.arange(n) + 0.5) * 100.0,
        },
    )


def _trained_cells(fit, model_kind: str) -> float:
    """Cells whose loss was computed during training (what a cell of training costs)."""
    if model_kind == "vae":
        return float(fit.report["n_train"] * len(fit.history))
    hist = fit.history
    r_by_stage = {"autoencoder": fit.model.context[0]}
    if model_kind == "stoad":
        r_by_stage = {"student": fit.model.context[0], "teacher": fit.model.teacher.context[0]}
    tile = int(fit.model.card["tile"])
    total = 0.0
    for stage, r in r_by_stage.items():
        rows = hist[hist["stage"] == stage] if "stage" in hist else hist
        edge = tile if stage != "teacher" else int(fit.report.get("teacher_tile", tile))
        total += float(rows["tiles"].sum()) * max(edge - 2 * r, 1) ** 2
    return total


class TrainingThroughput:
    """Training vs scoring cells/s of each anomaly model on the demo's 5 x 244^2 stack.

    Training through ``fit_anomaly`` / ``fit_stoad`` (default settings: all the ground, one
    torch thread), counted in cells whose loss is computed per second; scoring through
    ``score`` on the same stack. ``track_training_over_scoring`` is the ratio (issue 13's
    target: at least 1/3).
    """

    params = (("vae", "dae", "stoad"),)
    param_names = ("model",)
    timeout = 900

    def setup(self, model):
        from xprospect.models import VAE, ConvAutoencoder
        from xprospect.score import score
        from xprospect.train.anomaly import fit_anomaly, fit_stoad

        # LEGACY: the settings before issue 13 (torch's own thread count, VAE batch 16)
        kw = {"threads": torch.get_num_threads()} if LEGACY else {}
        vae_kw = {"batch_size": 16} if LEGACY else {}

        def train(stack, ep):
            n_el = stack.sizes["element"]
            if model == "vae":
                return fit_anomaly(
                    VAE(n_el, hidden=(24, 12), latent=3),
                    stack,
                    epochs=ep,
                    seed=0,
                    device="cpu",
                    **kw,
                    **vae_kw,
                )
            if model == "dae":
                return fit_anomaly(
                    ConvAutoencoder(n_el), stack, epochs=ep, seed=0, device="cpu", **kw
                )
            return fit_stoad(ConvAutoencoder(n_el), stack, epochs=ep, seed=0, device="cpu", **kw)

        # warm-up on a small stack: one-time imports (torch's optimiser pulls in dynamo,
        # seconds) are not training throughput
        small = _demo_stack(40)
        _ = score(small, train(small, 1).model, device="cpu").values
        stack = _demo_stack()
        t = time.perf_counter()
        fit = train(stack, TRAIN_EPOCHS[model])
        self.train_seconds = time.perf_counter() - t
        self.train_cells = _trained_cells(fit, model)
        t = time.perf_counter()
        _ = score(stack, fit.model, device="cpu").values
        self.score_seconds = time.perf_counter() - t
        self.score_cells = float(stack.isel(element=0).size)

    def track_training_cells_per_second(self, model):
        return self.train_cells / self.train_seconds

    def track_scoring_cells_per_second(self, model):
        return self.score_cells / self.score_seconds

    def track_training_over_scoring(self, model):
        return (self.train_cells / self.train_seconds) / (self.score_cells / self.score_seconds)


TrainingThroughput.track_training_cells_per_second.unit = "cells/s"
TrainingThroughput.track_scoring_cells_per_second.unit = "cells/s"


if __name__ == "__main__":
    import sys

    # --legacy: only the settings of before issue 13; --both: each model with the old then
    # the new settings, side by side in this one run (the fair comparison on a shared machine)
    modes = [True, False] if "--both" in sys.argv[1:] else ["--legacy" in sys.argv[1:]]
    print(
        f"{'model':6s} {'settings':8s} {'train cells/s':>14s} {'score cells/s':>14s} "
        f"{'ratio':>7s} {'train s':>8s}"
    )
    for kind in TrainingThroughput.params[0]:
        for legacy in modes:
            LEGACY = legacy
            b = TrainingThroughput()
            b.setup(kind)
            print(
                f"{kind:6s} {'before' if legacy else 'now':8s} "
                f"{b.track_training_cells_per_second(kind):14.0f} "
                f"{b.track_scoring_cells_per_second(kind):14.0f} "
                f"{b.track_training_over_scoring(kind):7.3f} {b.train_seconds:8.1f}",
                flush=True,
            )
