"""Training batches gathered from memory, augmented a whole batch at a time.

A :class:`~xprospect.patches.PatchSet`'s torch dataset augments one window per ``__getitem__``
(a numpy generator, a crop, flips and a rotation per item) and the ``DataLoader`` then collates
the items one by one: for small windows that per-item Python costs far more than the network's
forward and backward pass (profiled: about 90 % of a small CNN's training step on 9-cell
windows). Here the windows are read once into one tensor and every batch is gathered with one
fancy index, cropped with one gather, and flipped and rotated by masks over the batch, so the
cost per window is a few array operations shared by the whole batch. Windows that overlap so
much that the box they lie in is smaller than they are (a window on every cell of a training
ground) are instead cut batch by batch from that box (:class:`RegionWindows`): the same
windows, cell for cell, in the memory of the ground rather than window-cells times it. The
augmentation has the
same distribution as :func:`xprospect.patches.augment.augment_patch` (each spatial axis flipped
with probability 1/2, a uniform multiple of 90 degrees in the y-x plane, a uniform crop
position); its draws come from a generator seeded by ``(seed, epoch)``, so the same seed gives
the same batches.

With ``epoch_negatives`` every epoch trains on all label-1 windows and a fresh draw (without
replacement, from the same ``(seed, epoch)`` generator) of that many label-0 windows: a large
pool of barren windows (every cell of the training ground) is met across the epochs at the
cost per epoch of a small random sample.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from xprospect._torch import import_torch
from xprospect.exceptions import DataError
from xprospect.patches.extract import read_region, region_bounds
from xprospect.train._loop import ChannelStats

torch = import_torch()

__all__ = ["RegionWindows", "TensorBatches", "tensor_batches"]


class RegionWindows:
    """Windows cut on demand from one in-memory region of the stack.

    When the windows overlap (every cell of a training ground as a window centre,
    ``negatives="all"`` or ``"resample"`` of :class:`xprospect.DeepMethod`), holding them
    whole costs window-cells times more memory than the ground they cover: 81x for 9 x 9
    windows, so a regional ground that fits in memory many times over would not fit as
    windows. Here the box the windows lie in is read once
    (:func:`xprospect.patches.extract.read_region`) and each batch is gathered from it with
    one ``index_select``. The windows are cell for cell those :meth:`PatchSet.load
    <xprospect.patches.PatchSet.load>` gives, so training is the same either way.

    Indexing with a slice or with integer positions gives ``(B, C, *size)`` float32 tensors,
    as indexing the tensor of whole windows would.

    Parameters
    ----------
    region : numpy.ndarray
        ``(C, *box)`` float32.
    origins : numpy.ndarray
        ``(N, ndim)`` first cell of each window, in the box's indices.
    size : sequence of int
        Window size.
    """

    def __init__(self, region: np.ndarray, origins: np.ndarray, size: Sequence[int]) -> None:
        box = tuple(int(b) for b in region.shape[1:])
        # (C, cells of the box): a window is one index_select of its cells' flat positions
        # (an advanced index over the box's axes measured about 5x slower); a batch costs
        # under 0.1 ms more than one indexed from whole windows (asv: patches.GroundWindows)
        self.region = torch.from_numpy(
            np.ascontiguousarray(region, dtype="float32").reshape(region.shape[0], -1)
        )
        self.size = tuple(int(s) for s in size)
        # flat position in the box of each window's first cell, and of a window's cells
        # relative to it
        o = np.asarray(origins, dtype="int64").reshape(-1, len(box))
        self.start = torch.from_numpy(np.ravel_multi_index(tuple(o.T), box).astype("int64"))
        offsets = np.indices(self.size).reshape(len(box), -1)
        self.cells = torch.from_numpy(np.ravel_multi_index(tuple(offsets), box).astype("int64"))
        self.shape = (int(self.start.shape[0]), int(self.region.shape[0]), *self.size)

    def dim(self) -> int:
        """Dimensions of a batch (``2 + ndim``), as ``Tensor.dim``."""
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: Any) -> Any:
        start = self.start[idx]
        if start.dim() != 1:
            raise TypeError("index RegionWindows with a slice or an array of positions")
        flat = (start[:, None] + self.cells[None, :]).reshape(-1)
        out = self.region.index_select(1, flat).reshape(self.shape[1], -1, *self.size)
        return out.movedim(0, 1).contiguous()  # (C, B, *size) -> (B, C, *size)


class TensorBatches:
    """Shuffled, augmented batches of in-memory windows.

    Parameters
    ----------
    x : numpy.ndarray or RegionWindows
        ``(N, C, *size)`` windows (cast to float32), or windows cut on demand.
    labels : numpy.ndarray
        ``(N,)`` integer labels.
    batch_size : int
        Windows per batch.
    crop : sequence of int, optional
        Output spatial size: random crops when augmenting, the centre crop otherwise.
    augment : bool
        Random crops, flips and 90-degree rotations.
    shuffle : bool
        Draw windows in a random order every epoch.
    seed : int
        Seed of the order and the augmentation.
    epoch_negatives : int, optional
        Label-0 windows drawn anew each epoch (all of them when the pool is smaller); every
        other window is used every epoch. ``None``: every window every epoch.
    """

    def __init__(
        self,
        x: np.ndarray,
        labels: np.ndarray,
        *,
        batch_size: int,
        crop: Sequence[int] | None,
        augment: bool,
        shuffle: bool,
        seed: int,
        epoch_negatives: int | None = None,
    ) -> None:
        self.x: Any = (
            x
            if isinstance(x, RegionWindows)
            else torch.from_numpy(np.ascontiguousarray(x, dtype="float32"))
        )
        self.labels = torch.from_numpy(np.array(labels, dtype="int64"))
        self.batch_size = int(batch_size)
        size = tuple(int(s) for s in self.x.shape[2:])
        self.crop = size if crop is None else tuple(int(c) for c in crop)
        self.size = size
        self.augment = bool(augment)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = 0
        lab = self.labels.numpy()
        self._neg = np.flatnonzero(lab == 0)
        self._rest = np.flatnonzero(lab != 0)
        self.epoch_negatives = (
            None
            if epoch_negatives is None or int(epoch_negatives) >= self._neg.size
            else int(epoch_negatives)
        )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def epoch_labels(self) -> np.ndarray:
        """Labels of the windows one epoch trains on (for class weights)."""
        lab = self.labels.numpy()
        if self.epoch_negatives is None:
            return lab
        return np.concatenate([lab[self._rest], np.zeros(self.epoch_negatives, dtype=lab.dtype)])

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that, with the seed, fixes the order and the augmentation."""
        self.epoch = int(epoch)

    def _crop(self, xb: Any, offsets: np.ndarray) -> Any:
        """Crop ``xb`` (B, C, *size) at per-window ``offsets`` (B, nd) to ``self.crop``."""
        if self.crop == self.size:
            return xb
        nd = len(self.size)
        if not self.augment:
            sl = [slice(None), slice(None)]
            for n, c in zip(self.size, self.crop, strict=True):
                a = (n - c) // 2
                sl.append(slice(a, a + c))
            return xb[tuple(sl)]
        out = xb
        for a in range(nd):
            c = self.crop[a]
            idx = torch.as_tensor(offsets[:, a, None] + np.arange(c)[None, :])  # (B, c)
            shape = [idx.shape[0]] + [1] * (1 + nd)
            shape[2 + a] = c
            idx = idx.reshape(shape)
            expand = list(out.shape)
            expand[2 + a] = c
            out = torch.gather(out, 2 + a, idx.expand(expand))
        return out

    def stats(self, chunk: int = 4096) -> tuple[list[float], list[float], str]:
        """Per-channel NaN-aware mean and std, and the data hash, of the centre-cropped windows.

        The same numbers (and hash) as :func:`xprospect.train._loop.scan_dataset` over the
        unaugmented dataset read in batches of ``chunk`` windows, without the per-item reads.
        """
        st = ChannelStats()
        nd = len(self.size)
        was, self.augment = self.augment, False
        try:
            for i0 in range(0, len(self), chunk):
                xb = self._crop(self.x[i0 : i0 + chunk], np.zeros((0, nd), dtype="int64"))
                st.update(xb.numpy(), self.labels[i0 : i0 + chunk].numpy())
        finally:
            self.augment = was
        return st.result()

    def batches(self) -> Iterator[tuple[Any, Any]]:
        """Yield ``(x, y)`` tensors for one epoch."""
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.epoch_negatives is None:
            pool = np.arange(len(self))
        else:
            drawn = rng.choice(self._neg, self.epoch_negatives, replace=False)
            pool = np.sort(np.concatenate([self._rest, drawn]))
        n = pool.size
        order = pool[rng.permutation(n)] if self.shuffle else pool
        nd = len(self.size)
        for i0 in range(0, n, self.batch_size):
            idx = order[i0 : i0 + self.batch_size]
            b = idx.size
            xb = self.x[torch.as_tensor(idx)]
            if self.augment:
                draws = rng.random((b, nd + 1 + nd))
                span = np.asarray(self.size) - np.asarray(self.crop) + 1
                offsets = (draws[:, nd + 1 :] * span).astype("int64")
                xb = self._crop(xb, offsets)
                for a in range(nd):
                    flip = torch.as_tensor(draws[:, a] < 0.5)
                    if bool(flip.any()):
                        f = flip.reshape([b] + [1] * (1 + nd))
                        xb = torch.where(f, xb.flip(2 + a), xb)
                k = (draws[:, nd] * 4).astype("int64") % 4
                if xb.shape[-1] != xb.shape[-2]:
                    k = 2 * (k // 2)
                if (k > 0).any():
                    xb = xb.clone()
                    for r in (1, 2, 3):
                        sel = np.flatnonzero(k == r)
                        if sel.size:
                            s = torch.as_tensor(sel)
                            xb[s] = torch.rot90(xb[s], r, dims=(-2, -1))
            else:
                xb = self._crop(xb, np.zeros((b, nd), dtype="int64"))
            yield xb.contiguous(), self.labels[torch.as_tensor(idx)]


def _cgroup_free(root: str = "/sys/fs/cgroup") -> int | None:
    """Bytes a cgroup memory limit still allows this process's group, or None without one.

    A container's limit (Docker, Kubernetes, a CI runner) is often far below the machine's
    free memory that psutil reports; past it the kernel kills the process. ``root`` is the
    cgroup filesystem's mount point (v2 files at its top, v1 under ``memory/``).
    """
    for limit_file, usage_file in (
        ("memory.max", "memory.current"),  # cgroup v2
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),  # cgroup v1
    ):
        try:
            with open(os.path.join(root, limit_file)) as f:
                limit = f.read().strip()
            with open(os.path.join(root, usage_file)) as f:
                usage = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if not limit.isdigit() or int(limit) >= 2**60:  # "max", or v1's "no limit"
            return None
        return max(int(limit) - usage, 0)
    return None


def _available_memory() -> int:
    """Bytes of memory the system (and a cgroup limit, if any) can give without swapping."""
    import psutil  # lazy: only when a pool of windows is about to be read

    free = int(psutil.virtual_memory().available)
    group = _cgroup_free()
    return free if group is None else min(free, group)


def _check_memory(patches: Any, need: int, *, box: tuple[int, ...] | None = None) -> None:
    """Refuse, naming the sizes, windows whose read needs more than the free memory.

    Without this a pool beyond the free memory would end in an out-of-memory kill minutes
    later, or in swap, with nothing saying why.
    """
    free = _available_memory()
    if need > 0.8 * free:
        n = len(patches)
        channels = int(patches.stack.shape[0])  # a PatchSet's stack is (element, *grid)
        size = " x ".join(str(int(s)) for s in patches.plan.size)
        how = "" if box is None else f", cut from the {' x '.join(map(str, box))}-cell box"
        raise DataError(
            f"training would read {n} windows of {channels} element(s) x {size} cells into "
            f"memory{how} ({need / 1e9:.1f} GB) but only {free / 1e9:.1f} GB "
            "are free: train on fewer windows or a smaller part of the grid (fewer barren "
            'windows per deposit, or negatives="random" instead of "all" or "resample" in '
            "DeepMethod), smaller windows or a coarser grid"
        )


def _windows(patches: Any) -> np.ndarray | RegionWindows:
    """Return the windows of a PatchSet in memory: whole, or cut on demand from their box.

    Whichever takes less memory: the box the windows lie in when they overlap enough that it
    is the smaller (a ground of windows, one centred on every cell), else the windows.
    """
    channels = int(patches.stack.shape[0])
    itemsize = np.dtype(patches.stack.dtype).itemsize
    copy = 0 if itemsize == 4 else 4  # the float32 copy of a stack of another dtype
    whole = len(patches) * channels * int(np.prod(patches.plan.size)) * (itemsize + copy)
    if len(patches) == 0:
        return patches.load()
    lo, hi = region_bounds(patches.plan)
    box = tuple(int(b) for b in hi - lo)
    # the float32 box, and the box's slice of a lazy (dask) stack computed in its own dtype
    lazy = not isinstance(patches.stack.data, np.ndarray)
    region = channels * int(np.prod(box)) * (4 + (itemsize if lazy else 0))
    if region < whole:
        _check_memory(patches, region, box=box)
        data, lo = read_region(
            patches.stack,
            patches.plan,
            pad_value=patches.pad_value,
            fill_value=patches.fill_value,
        )
        return RegionWindows(data, patches.plan.origins - lo, patches.plan.size)
    _check_memory(patches, whole)
    return patches.load()


def tensor_batches(
    dataset: Any,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    epoch_negatives: int | None = None,
) -> TensorBatches | None:
    """Return a :class:`TensorBatches` over a PatchSet's torch dataset, else ``None``.

    Parameters
    ----------
    dataset : Any
        A :class:`~xprospect.patches.PatchSet` torch dataset (it has ``patches``, ``crop``,
        ``augment`` and ``labels``); any other dataset gives ``None`` (use a ``DataLoader``).
    batch_size : int
        Windows per batch.
    shuffle : bool
        Random order every epoch.
    seed : int
        Seed of the order and augmentation.
    epoch_negatives : int, optional
        Label-0 windows drawn anew each epoch (:class:`TensorBatches`).

    Returns
    -------
    TensorBatches or None
    """
    patches = getattr(dataset, "patches", None)
    if patches is None or not hasattr(patches, "load") or not hasattr(dataset, "augment"):
        return None
    if getattr(dataset, "_data", None) is not None:
        x = dataset._data
    else:
        x = _windows(patches)
    return TensorBatches(
        x,
        dataset.labels,
        batch_size=batch_size,
        crop=dataset.crop,
        augment=dataset.augment,
        shuffle=shuffle,
        seed=seed,
        epoch_negatives=epoch_negatives,
    )
