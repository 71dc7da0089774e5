"""``xprospect.score`` against the naive loop the issue names, and the dense path's FLOP rate.

The peer, ``naive_loop``: pad the raster, slice every window of the stride lattice with numpy,
run them through ``model.score_windows`` in batches of 64, and give every cell the score of its
nearest lattice point (the same lattice and rule as ``score(..., upsample="nearest")``, so the
maps agree to float32 rounding).

- ``ScoreVsLoop``: a window model (``small_cnn`` scored window by window) at strides 1, 2, 4
  and 8, each over a raster holding the same 2,304 lattice windows (48^2 at stride 1 ... 384^2
  at stride 8): ``score`` must be at least as fast as the loop at every stride.
- ``DenseVsLoop``: the same network scored fully convolutionally on whole chunks against the
  window loop at stride 1 (issue target >= 100x): on the same 48^2 raster, and per cell with
  the dense path on a 512^2 chunk.
- ``DenseRate``: the dense path's arithmetic rate on one 512^2 chunk (FLOPs of its
  ``score_dense`` call counted with :mod:`torch.utils.flop_counter`) against the machine's
  float32 matrix-product rate (torch, 2048^2, same threads) measured in the same run
  (issue target >= 30 %).
- ``MultiScaleVsLoop`` and ``MultiScaleRate``: the same two for ``multiscale_cnn`` (its
  defaults: a fine 7-cell and a dilated 21-cell context branch), dense over whole chunks
  against its own window loop (target >= 100x) and its rate against the matmul rate.
  Measured (best of 3 interleaved, load 8-12, 2 shared cores): per cell on a 512^2 chunk
  147x / 130x its window loop (at 48^2, end to end, 9-11x: the 2,304 windows of this
  small model take 0.65-0.72 s and the dense call's fixed cost is ~0.06 s); dense / matmul
  54 % / 47 % (two threads, wall) and 40 % (one thread, CPU time), 8.6 GFLOP per chunk.
  On a quiet machine (load 1.4-1.6): 95x its loop per cell on a 512^2 chunk, dense /
  matmul 36 % (two threads, wall) and 51 % (one thread, CPU time); the small CNN 628x and
  74 % in the same run.
  Each branch's last block and head now run in 16-channel groups with one logit-difference
  head channel (:func:`xprospect.models._dense.conv_bn_relu_linear`; oneDNN's AVX2 kernels
  ran 32-channel outputs at about half the rate of 16-channel ones here): the model's
  dense call on a 532^2 tile 199 -> 150 ms (one thread, CPU time), ``score`` on the 512^2
  chunk 355-390 -> 233-244 ms; per cell against the stride-1 loop, both one thread, CPU
  time, old and new code run alternately: 86x / 80x -> 138x / 110x (load 8.8-9.6). Through
  this script (load 7.3-7.9): 87x its loop (two threads, wall: the loop's 0.38 s is as
  noisy as the load), dense / matmul 55 % (two threads, wall) and 62 % (one thread, CPU
  time). Quieter (load 1.8-2.5, two runs): 122x and 141x its loop per cell on a 512^2
  chunk (target >= 100x), dense / matmul 52 % / 48 % (two threads, wall) and 69 % / 73 %
  (one thread, CPU time).
- ``MaskedScore``: a study mask covering 1/16 of a 1024^2 raster (one corner chunk of 256^2)
  against the unmasked score: masked chunks and lattice windows cost nothing.

Run as a script (``PYTHONPATH=. python asv_bench/benchmarks/score.py [repeats]
[--only=windows,dense,multiscale,masked]``) it times
each pair side by side in one process, interleaved (peer, ours, peer, ours...), takes the
best wall time of each, and prints the ratios with the load average.
"""

from __future__ import annotations

import os
import sys
import time
from typing import ClassVar

import dask
import numpy as np
import xarray as xr

from xprospect._torch import import_torch
from xprospect.models.registry import create
from xprospect.score import score
from xprospect.score.lattice import lattice_size

N_ELEMENTS = 8
WINDOW = 32
BATCH = 64


def make_stack(size: int, chunks: int | None = None, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((N_ELEMENTS, size, size), dtype="float32")
    s = xr.DataArray(
        data,
        dims=("element", "y", "x"),
        coords={
            "element": [f"E{i}" for i in range(N_ELEMENTS)],
            "y": np.arange(size, 0, -1) - 0.5,
            "x": np.arange(size) + 0.5,
        },
    )
    return s.chunk({"y": chunks, "x": chunks}) if chunks else s


def make_model(window: int = WINDOW, widths=(32, 32, 64, 64)):
    return create("small_cnn", in_channels=N_ELEMENTS, window=window, widths=list(widths), seed=0)


def make_multiscale(**kwargs):
    """``multiscale_cnn`` over the benchmark's elements (its defaults unless ``kwargs``)."""
    return create("multiscale_cnn", in_channels=N_ELEMENTS, seed=0, **kwargs)


def naive_loop(
    arr: np.ndarray, model, window: int, stride: int, batch_size: int = BATCH
) -> np.ndarray:
    """The peer: numpy window extraction, batches, model, nearest lattice point per cell."""
    torch = import_torch()
    _, ny, nx = arr.shape
    before, after = window // 2, window - 1 - window // 2
    p = np.pad(arr, [(0, 0), (before, after + stride), (before, after + stride)])
    ky, kx = lattice_size(ny, stride), lattice_size(nx, stride)
    cells = [(i * stride, j * stride) for i in range(ky) for j in range(kx)]
    out = np.empty(len(cells), dtype="float32")
    model = model.eval()
    with torch.inference_mode():
        for s in range(0, len(cells), batch_size):
            batch = np.stack(
                [p[:, y : y + window, x : x + window] for y, x in cells[s : s + batch_size]]
            )
            out[s : s + len(batch)] = model.score_windows(torch.from_numpy(batch)).numpy()
    lat = out.reshape(ky, kx)
    iy = (2 * np.arange(ny) + stride) // (2 * stride)
    ix = (2 * np.arange(nx) + stride) // (2 * stride)
    return lat[np.ix_(iy, ix)]


class ScoreVsLoop:
    """Window scoring at strides 1, 2, 4, 8, each over 48 x 48 = 2,304 lattice windows.

    Every block's last batch is zero-padded to ``batch_size`` (so maps are bitwise identical
    whatever the chunking); 2,304 windows are 36 full batches, so no padding is timed.
    """

    params: ClassVar[list[int]] = [1, 2, 4, 8]
    param_names: ClassVar[list[str]] = ["stride"]
    lattice = 48
    chunks = 512
    window, widths = WINDOW, (32, 32, 64, 64)
    timeout = 600

    def setup(self, stride):
        self.size = self.lattice * stride
        self.stack = make_stack(self.size, self.chunks)
        self.arr = self.stack.values
        self.model = make_model(self.window, self.widths)

    def time_score(self, stride):
        return score(
            self.stack,
            self.model,
            stride=stride,
            method="windows",
            batch_size=BATCH,
            device="cpu",
            allow_no_card=True,
        ).values

    def time_naive_loop(self, stride):
        return naive_loop(self.arr, self.model, self.window, stride)


class DenseVsLoop:
    """A fully convolutional CNN on whole chunks against the window loop at stride 1."""

    params: ClassVar[list[int]] = [48]
    param_names: ClassVar[list[str]] = ["size"]
    chunks = 512
    window, widths = WINDOW, (32, 32, 64, 64)
    timeout = 1200

    def setup(self, size):
        self.stack = make_stack(size, self.chunks)
        self.arr = self.stack.values
        self.model = make_model(self.window, self.widths)

    def time_dense(self, size):
        return score(self.stack, self.model, device="cpu", allow_no_card=True).values

    def time_window_loop(self, size):
        return naive_loop(self.arr, self.model, self.window, 1)


class MultiScaleVsLoop(DenseVsLoop):
    """``multiscale_cnn`` dense on whole chunks against its window loop at stride 1."""

    kwargs: ClassVar[dict] = {}

    def setup(self, size):
        self.stack = make_stack(size, self.chunks)
        self.arr = self.stack.values
        self.model = make_multiscale(**self.kwargs)
        self.window = self.model.window


def dense_flops(model, size: int) -> int:
    """FLOPs of the dense pass over one ``size``^2 chunk (the tile with its halo)."""
    torch = import_torch()
    from torch.utils.flop_counter import FlopCounterMode  # lazy: torch

    before, after = model.context
    x = torch.zeros(1, N_ELEMENTS, size + before + after, size + before + after)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model.eval().score_dense(x)
    return int(counter.get_total_flops())


class DenseRate:
    """The dense path over one 512^2 chunk, and the float32 matrix product it is held to."""

    size = 512
    timeout = 600

    def make(self):
        return make_model()

    def setup(self):
        self.stack = make_stack(self.size, self.size)
        self.model = self.make()
        self.flops = dense_flops(self.model, self.size)
        torch = import_torch()
        self.a = torch.randn(2048, 2048, generator=torch.Generator().manual_seed(0))

    def time_dense(self):
        return score(self.stack, self.model, device="cpu", allow_no_card=True).values

    def time_matmul(self):
        return self.a @ self.a

    def track_gflops(self):
        return self.flops / _best(self.time_dense, 1) / 1e9

    track_gflops.unit = "GFLOP/s"  # type: ignore[attr-defined]


class MultiScaleRate(DenseRate):
    """``multiscale_cnn``'s dense path over one 512^2 chunk, and the matrix product."""

    def make(self):
        return make_multiscale()


class MaskedScore:
    """Window scoring at stride 8 with a study mask over one 256^2 chunk of 16."""

    size, chunks, stride = 1024, 256, 8
    timeout = 600

    def setup(self):
        self.stack = make_stack(self.size, self.chunks)
        self.model = make_model()
        self.mask = xr.DataArray(np.zeros((self.size, self.size), bool), dims=("y", "x"))
        self.mask[: self.chunks, : self.chunks] = True

    def time_masked(self):
        return score(
            self.stack,
            self.model,
            stride=self.stride,
            device="cpu",
            mask=self.mask,
            allow_no_card=True,
        ).values

    def time_unmasked(self):
        return score(
            self.stack, self.model, stride=self.stride, device="cpu", allow_no_card=True
        ).values


def _best(f, repeat: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeat):
        t0 = clock()
        f()
        times.append(clock() - t0)
    return min(times)


def _pair(peer, ours, repeat: int, clock=time.perf_counter) -> tuple[float, float]:
    """Best times of ``peer`` and ``ours`` (wall by default), run interleaved ``repeat`` times."""
    tp, to = [], []
    for _ in range(repeat):
        tp.append(_best(peer, 1, clock))
        to.append(_best(ours, 1, clock))
    return min(tp), min(to)


def _load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def _dense_section(label: str, vs: DenseVsLoop, r: DenseRate, repeat: int) -> None:
    """Print a dense model against its stride-1 window loop and against the matmul rate."""
    torch = import_torch()
    vs.setup(48)
    peer, ours = _pair(lambda: vs.time_window_loop(48), lambda: vs.time_dense(48), repeat)
    loop_rate = 48**2 / peer  # the window loop's cells/s
    print(
        f"{label} dense 48^2: window loop {peer:.2f} s, dense {ours:.3f} s, loop / dense = "
        f"{peer / ours:.0f}; {_load()}",
        flush=True,
    )
    r.setup()
    mm, dense = _pair(lambda: r.time_matmul(), lambda: r.time_dense(), repeat)
    mm_rate = 2 * 2048**3 / mm
    rate = r.flops / dense
    print(
        f"{label} dense 512^2 chunk: {dense:.2f} s, {r.size**2 / dense / 1e6:.2f} M cells/s "
        f"({r.size**2 / dense / loop_rate:.0f}x the stride-1 loop's cells/s); "
        f"{r.flops / 1e9:.1f} GFLOP (flop_counter) -> {rate / 1e9:.1f} GFLOP/s; torch "
        f"float32 matmul 2048^2 {mm_rate / 1e9:.1f} GFLOP/s; dense / matmul = "
        f"{rate / mm_rate:.0%}; {_load()}",
        flush=True,
    )
    # one thread, CPU time: what a core does, far less sensitive to the machine's load
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with dask.config.set({"xprospect.threads.model": 1}):
        mm, dense = _pair(r.time_matmul, r.time_dense, repeat, time.process_time)
    torch.set_num_threads(threads)
    mm_rate, rate = 2 * 2048**3 / mm, r.flops / dense
    print(
        f"  one thread, CPU time: dense {rate / 1e9:.1f} GFLOP/s, matmul {mm_rate / 1e9:.1f} "
        f"GFLOP/s, dense / matmul = {rate / mm_rate:.0%}; {_load()}",
        flush=True,
    )


SECTIONS = ("windows", "dense", "multiscale", "masked")


def main(repeat: int = 3, sections: tuple[str, ...] = SECTIONS) -> None:
    """Time each benchmark pair side by side, interleaved, and print the ratios."""
    torch = import_torch()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; wall times, best of "
        f"{repeat} interleaved; {_load()}",
        flush=True,
    )
    # warm-up: the first call of each batch shape pays oneDNN's kernel generation
    warm = ScoreVsLoop()
    warm.lattice = 8
    warm.setup(1)
    warm.stack = make_stack(8)  # in memory: a dask chunk must exceed the halo (17 cells)
    warm.time_naive_loop(1)
    warm.time_score(1)
    for stride in ScoreVsLoop.params if "windows" in sections else ():
        b = ScoreVsLoop()
        b.setup(stride)
        peer, ours = _pair(
            lambda b=b, s=stride: b.time_naive_loop(s),
            lambda b=b, s=stride: b.time_score(s),
            repeat,
        )
        print(
            f"windows stride {stride} ({b.size}^2, {ScoreVsLoop.lattice**2} windows): naive "
            f"loop {peer:.2f} s, score {ours:.2f} s, loop / score = {peer / ours:.2f}; "
            f"{_load()}",
            flush=True,
        )
    if "dense" in sections:
        _dense_section("small_cnn", DenseVsLoop(), DenseRate(), repeat)
    if "multiscale" in sections:
        _dense_section("multiscale_cnn", MultiScaleVsLoop(), MultiScaleRate(), repeat)
    if "masked" in sections:
        m = MaskedScore()
        m.setup()
        full, ours = _pair(m.time_unmasked, m.time_masked, 1)
        print(
            f"masked 1/16: {ours:.2f} s, unmasked {full:.2f} s, unmasked / masked = "
            f"{full / ours:.1f}; {_load()}",
            flush=True,
        )


if __name__ == "__main__":
    # PYTHONPATH=. python asv_bench/benchmarks/score.py [repeats] [--no-masked] [--only=a,b]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    chosen = next(
        (a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--only=")), SECTIONS
    )
    main(
        int(args[0]) if args else 3,
        tuple(x for x in chosen if "--no-masked" not in sys.argv or x != "masked"),
    )
