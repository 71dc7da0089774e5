"""The torch ``Dataset`` over a :class:`~xprospect.patches.PatchSet` (torch imported here only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xprospect._torch import import_torch
from xprospect.exceptions import DataError
from xprospect.patches.augment import augment_patch, augment_rng, centre_crop

torch = import_torch()
# torch is imported through a function (with an error naming the extra), so the base class
# is bound to a name here for type checkers
_TorchDataset: Any = torch.utils.data.Dataset

__all__ = ["PatchDataset"]


class PatchDataset(_TorchDataset):
    """Patches of a :class:`~xprospect.patches.PatchSet` as ``(tensor (C, *crop), label)`` pairs.

    Item ``i`` of epoch ``e`` is augmented with the generator
    ``numpy.random.default_rng([seed, e, i])``, so the same (seed, epoch, index) gives the same
    tensor in any process or worker. Call :meth:`set_epoch` at the start of each epoch (with
    persistent DataLoader workers, recreate the loader, since workers hold a copy).

    Parameters
    ----------
    patches : PatchSet
        The patches (read on first access, once, when ``preload``).
    augment : bool
        Random flips, 90-degree rotations and crop positions; otherwise a centre crop.
    crop : sequence of int, optional
        Output spatial size (default: the patch size).
    seed : int
        Seed of the augmentation.
    preload : bool
        Read every patch into memory on first access (one batched read); otherwise each item is
        read from the stack on demand.
    """

    def __init__(
        self,
        patches: Any,
        *,
        augment: bool = True,
        crop: Sequence[int] | None = None,
        seed: int = 0,
        preload: bool = True,
    ) -> None:
        self.patches = patches
        self.augment = bool(augment)
        self.crop = None if crop is None else tuple(int(c) for c in crop)
        if self.crop is not None:
            if len(self.crop) != patches.plan.ndim or any(
                c > s for c, s in zip(self.crop, patches.plan.size, strict=True)
            ):
                raise DataError(
                    f"crop {self.crop} must have one size per axis, each no larger "
                    f"than the patch size {patches.plan.size}"
                )
        self.seed = int(seed)
        self.epoch = 0
        self.preload = bool(preload)
        self._data: np.ndarray | None = None
        self.labels = np.asarray(patches.labels, dtype="int64")

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that, with the seed and index, fixes each item's augmentation."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def _raw(self, i: int) -> np.ndarray:
        if self.preload:
            if self._data is None:
                self._data = self.patches.load()
            return self._data[i]
        return self.patches.load([i])[0]

    def __getitem__(self, i: int) -> tuple[Any, int]:
        i = int(i)
        if i < 0:
            i += len(self)
        x = self._raw(i)
        if self.augment:
            x = augment_patch(x, augment_rng(self.seed, self.epoch, i), crop=self.crop)
        elif self.crop is not None:
            x = np.ascontiguousarray(centre_crop(x, self.crop))
        return torch.from_numpy(np.array(x, dtype="float32", copy=True)), int(self.labels[i])
