"""The global stride lattice of window scoring and its upsampling back to every cell.

Pure index maths on numpy, one spatial axis at a time (every mode is separable).

Along an axis of ``N`` cells with stride ``s``, window models are evaluated at the lattice cells
``k * s`` for ``k = 0 .. ceil((N - 1) / s)``: anchored at the grid's first cell (so nothing depends
on chunking) and reaching, by less than one stride, past the last cell so that every cell lies
between two lattice points. A window attributed to cell ``c`` covers ``[c - before, c + after]``
(``before = w // 2``, ``after = w - 1 - before``); parts outside the grid are padded.

Upsampling modes (the value each cell ``i`` receives):

``"nearest"``
    the score of the nearest lattice point, ``k = floor(i / s + 1/2)`` (ties go to the later
    point);
``"bilinear"``
    linear interpolation between the lattice points ``floor(i / s)`` and the next one, along each
    axis in turn (bilinear in 2-D, trilinear in 3-D);
``"mean"``
    the mean score of every lattice window whose footprint covers the cell (overlap averaging;
    needs ``w >= s`` so that windows leave no gaps), averaged along each axis in turn.
"""

from __future__ import annotations

import numpy as np

from xprospect.exceptions import DataError

__all__ = [
    "UPSAMPLE_MODES",
    "halo",
    "lattice_deps",
    "lattice_range",
    "lattice_size",
    "upsample_axis",
]

UPSAMPLE_MODES = ("nearest", "bilinear", "mean")


def lattice_size(n: int, stride: int) -> int:
    """Return the lattice size along an axis of ``n`` cells, ``ceil((n - 1) / s) + 1``."""
    return -(-(n - 1) // stride) + 1


def _check(mode: str, window: int, stride: int) -> None:
    if mode not in UPSAMPLE_MODES:
        raise DataError(f"upsample={mode!r}; expected one of {UPSAMPLE_MODES}")
    if stride < 1:
        raise DataError(f"stride must be >= 1; got {stride}")
    if mode == "mean" and window < stride:
        raise DataError(
            f"upsample='mean' needs window >= stride (got window {window}, "
            f"stride {stride}): windows would leave cells uncovered"
        )


def halo(window: int, stride: int, mode: str) -> int:
    """Cells of input context a block needs on each side to score its own cells."""
    _check(mode, window, stride)
    before, after = window // 2, window - 1 - window // 2
    if mode == "mean":
        return window + stride
    return max(before, after) + stride


def lattice_range(a: int, b: int, n: int, window: int, stride: int, mode: str) -> tuple[int, int]:
    """Lattice points ``[k_lo, k_hi]`` (inclusive) that cells ``[a, b)`` depend on."""
    _check(mode, window, stride)
    s = stride
    kmax = lattice_size(n, s) - 1
    before, after = window // 2, window - 1 - window // 2
    if mode == "nearest":
        lo, hi = (2 * a + s) // (2 * s), (2 * (b - 1) + s) // (2 * s)
    elif mode == "bilinear":
        lo, hi = a // s, -(-(b - 1) // s)
    else:
        lo, hi = -(-(a - after) // s), (b - 1 + before) // s
    return max(0, lo), min(kmax, hi)


def upsample_axis(
    lat: np.ndarray,
    axis: int,
    a: int,
    b: int,
    k_lo: int,
    n: int,
    window: int,
    stride: int,
    mode: str,
) -> np.ndarray:
    """Map lattice scores along ``axis`` (points ``k_lo ..``) to cells ``[a, b)``.

    Each cell's value is computed from global indices only, with a fixed order of operations,
    so it is bitwise the same whatever block it is computed in.
    """
    s = stride
    i = np.arange(a, b)
    kmax = lattice_size(n, s) - 1
    lat = np.moveaxis(lat, axis, 0)
    if mode == "nearest":
        out = lat[(2 * i + s) // (2 * s) - k_lo]
    elif mode == "bilinear":
        k0 = i // s
        t = ((i - k0 * s) / s).astype(lat.dtype)
        k1 = np.where(i > k0 * s, np.minimum(k0 + 1, kmax), k0)
        shape = (-1,) + (1,) * (lat.ndim - 1)
        t = t.reshape(shape)
        out = (1 - t) * lat[k0 - k_lo] + t * lat[k1 - k_lo]
    else:
        before, after = window // 2, window - 1 - window // 2
        lo = np.maximum(0, -(-(i - after) // s))
        hi = np.minimum(kmax, (i + before) // s)
        count = hi - lo + 1
        acc = np.zeros((len(i), *lat.shape[1:]), dtype="float64")
        for m in range(int(count.max()) if len(i) else 0):
            use = m < count
            k = np.where(use, lo + m, lo) - k_lo
            term = lat[k].astype("float64")
            acc += np.where(use.reshape((-1,) + (1,) * (lat.ndim - 1)), term, 0.0)
        out = (acc / count.reshape((-1,) + (1,) * (lat.ndim - 1))).astype(lat.dtype)
    return np.moveaxis(out, 0, axis)


def lattice_deps(
    a: int, b: int, k_lo: int, k_hi: int, n: int, window: int, stride: int, mode: str
) -> np.ndarray:
    """Which lattice points ``[k_lo, k_hi]`` each cell of ``[a, b)`` reads when upsampled.

    The same index rules as :func:`upsample_axis`, as a boolean ``(b - a, k_hi - k_lo + 1)``
    matrix: a cell's value depends on exactly the lattice points marked in its row, so the
    points no wanted cell marks need not be scored.
    """
    s = stride
    i = np.arange(a, b)
    kmax = lattice_size(n, s) - 1
    ks = np.arange(k_lo, k_hi + 1)
    if mode == "nearest":
        return ks[None, :] == ((2 * i + s) // (2 * s))[:, None]
    if mode == "bilinear":
        k0 = i // s
        k1 = np.where(i > k0 * s, np.minimum(k0 + 1, kmax), k0)
        return (ks[None, :] == k0[:, None]) | (ks[None, :] == k1[:, None])
    before, after = window // 2, window - 1 - window // 2
    lo = np.maximum(0, -(-(i - after) // s))
    hi = np.minimum(kmax, (i + before) // s)
    return (ks[None, :] >= lo[:, None]) & (ks[None, :] <= hi[:, None])
