"""Augmentation of patches: flips, 90-degree rotations and crops, deterministic by seed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["augment_patch", "augment_rng", "centre_crop"]


def augment_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """Return the generator of one (seed, epoch, index) draw, the same in any worker process."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def centre_crop(x: np.ndarray, crop: Sequence[int]) -> np.ndarray:
    """Crop the centre ``crop`` cells of the trailing spatial axes of ``x`` ``(C, *size)``."""
    sl = [slice(None)]
    for n, c in zip(x.shape[1:], crop, strict=True):
        a = (n - c) // 2
        sl.append(slice(a, a + c))
    return x[tuple(sl)]


def augment_patch(
    x: np.ndarray,
    rng: np.random.Generator,
    *,
    crop: Sequence[int] | None = None,
    flips: bool = True,
    rotate: bool = True,
) -> np.ndarray:
    """Randomly flip, rotate (in the y-x plane) and crop one patch.

    Parameters
    ----------
    x : numpy.ndarray
        ``(C, y, x)`` or ``(C, z, y, x)``.
    rng : numpy.random.Generator
        Source of the random choices (see :func:`augment_rng`).
    crop : sequence of int, optional
        Output spatial size; the crop's position is drawn uniformly.
    flips : bool
        Flip each spatial axis with probability 1/2 (z included in 3-D).
    rotate : bool
        Rotate by a random multiple of 90 degrees in the (y, x) plane; odd multiples only when the
        (cropped) patch is square in y and x.

    Returns
    -------
    numpy.ndarray
        A contiguous array ``(C, *crop)``.
    """
    nd = x.ndim - 1
    draws = rng.random(nd + 1 + nd)  # fixed number of draws: flips, rotation, crop offsets
    if crop is not None:
        sl = [slice(None)]
        for a, (n, c) in enumerate(zip(x.shape[1:], crop, strict=True)):
            o = int(draws[nd + 1 + a] * (n - c + 1))
            sl.append(slice(o, o + c))
        x = x[tuple(sl)]
    if flips:
        axes = tuple(1 + a for a in range(nd) if draws[a] < 0.5)
        if axes:
            x = np.flip(x, axis=axes)
    if rotate:
        k = int(draws[nd] * 4) % 4
        if x.shape[-1] != x.shape[-2]:
            k = 2 * (k // 2)
        if k:
            x = np.rot90(x, k=k, axes=(x.ndim - 2, x.ndim - 1))
    return np.ascontiguousarray(x)
