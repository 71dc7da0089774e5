"""``xprospect.score`` against the naive loop the issue names.

The peer, ``naive_loop``: pad the raster, slice every window of the stride lattice with numpy,
run them through ``model.score_windows`` in batches of 64, and give every cell the score of its
nearest lattice point (the same lattice and rule as ``score(..., upsample="nearest")``, so the
maps agree to float32 rounding).

- ``ScoreVsLoop``: a window model (``small_cnn`` scored window by window) at strides 1 (small
  raster), 4 and 16: ``score`` must be at least as fast as the loop.
- ``DenseVsLoop``: the same network scored fully convolutionally on whole chunks against the
  window loop at stride 1 (issue target >= 100x; ``PERFORMANCE.md`` measured 300x for a 4-layer
  CNN on 8 x 512^2).
- ``MaskedScore``: a study mask covering 1/16 of a 1024^2 raster (one corner chunk of 256^2)
  against the unmasked score: masked chunks and lattice windows cost nothing.

Run as a script (``python asv_bench/benchmarks/score.py``) it times each pair side by side
in one process and prints the ratios.
"""

from __future__ import annotations

import time
from typing import ClassVar

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
    s = xr.DataArray(data, dims=("element", "y", "x"),
                     coords={"element": [f"E{i}" for i in range(N_ELEMENTS)],
                             "y": np.arange(size, 0, -1) - 0.5, "x": np.arange(size) + 0.5})
    return s.chunk({"y": chunks, "x": chunks}) if chunks else s


def make_model(window: int = WINDOW, widths=(32, 32, 64, 64)):
    return create("small_cnn", in_channels=N_ELEMENTS, window=window, widths=list(widths), seed=0)


def naive_loop(arr: np.ndarray, model, window: int, stride: int,
               batch_size: int = BATCH) -> np.ndarray:
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
            batch = np.stack([p[:, y:y + window, x:x + window] for y, x in cells[s:s + batch_size]])
            out[s:s + len(batch)] = model.score_windows(torch.from_numpy(batch)).numpy()
    lat = out.reshape(ky, kx)
    iy = (2 * np.arange(ny) + stride) // (2 * stride)
    ix = (2 * np.arange(nx) + stride) // (2 * stride)
    return lat[np.ix_(iy, ix)]


class ScoreVsLoop:
    """Window scoring at strides 1, 4, 16 (raster 64^2 at stride 1, 256^2 at 4, 512^2 at 16).

    Each block's last batch is zero-padded to ``batch_size`` (so maps are bitwise identical
    whatever the chunking), which costs up to one batch per chunk. At stride 16 a 256^2
    raster holds only 289 windows (4.5 batches), where that padding alone is 11 % of the
    work; 512^2 (1,089 windows, one 512 chunk as real grids use) is the representative case.
    """

    params: ClassVar[list[int]] = [1, 4, 16]
    param_names: ClassVar[list[str]] = ["stride"]
    sizes: ClassVar[dict[int, int]] = {1: 64, 4: 256, 16: 512}
    chunks = 512
    window, widths = WINDOW, (32, 32, 64, 64)
    timeout = 600

    def setup(self, stride):
        self.size = self.sizes[stride]
        self.stack = make_stack(self.size, self.chunks)
        self.arr = self.stack.values
        self.model = make_model(self.window, self.widths)

    def time_score(self, stride):
        return score(self.stack, self.model, stride=stride, method="windows",
                     batch_size=BATCH, device="cpu", allow_no_card=True).values

    def time_naive_loop(self, stride):
        return naive_loop(self.arr, self.model, self.window, stride)


class DenseVsLoop:
    """A fully convolutional CNN on whole chunks against the window loop at stride 1."""

    params: ClassVar[list[int]] = [128]
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
        return score(self.stack, self.model, stride=self.stride, device="cpu", mask=self.mask,
                     allow_no_card=True).values

    def time_unmasked(self):
        return score(self.stack, self.model, stride=self.stride, device="cpu",
                     allow_no_card=True).values


def _best(f, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(repeat: int = 3) -> None:
    """Time each benchmark pair side by side and print the ratios."""
    for stride in ScoreVsLoop.params:
        b = ScoreVsLoop()
        b.setup(stride)
        ours = _best(lambda b=b, s=stride: b.time_score(s), repeat)
        peer = _best(lambda b=b, s=stride: b.time_naive_loop(s), 1)
        print(f"stride {stride:2d} ({b.size}^2): score {ours:.2f} s, naive loop {peer:.2f} s, "
              f"loop / score = {peer / ours:.2f}")
    d = DenseVsLoop()
    d.setup(128)
    ours = _best(lambda: d.time_dense(128), repeat)
    peer = _best(lambda: d.time_window_loop(128), 1)
    print(f"dense 128^2: {ours:.3f} s, window loop {peer:.2f} s, loop / dense = {peer / ours:.0f}")
    m = MaskedScore()
    m.setup()
    ours = _best(m.time_masked, repeat)
    full = _best(m.time_unmasked, 1)
    print(f"masked 1/16: {ours:.2f} s, unmasked {full:.2f} s, unmasked / masked = "
          f"{full / ours:.1f}")


if __name__ == "__main__":
    main()
