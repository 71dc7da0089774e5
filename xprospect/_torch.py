"""Lazy torch import, device resolution and batch plumbing shared by models/, train/ and score/.

Everything here is policy-free torch glue (no recipes, splits or cards), low enough for both
the training loop (:mod:`xprospect.train._loop`) and the scoring engines (:mod:`xprospect.score`)
to use without importing each other.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from xprospect.exceptions import DataError, XProspectError

__all__ = [
    "as_tensor_list",
    "batch_xy",
    "import_torch",
    "keep_torch_threads",
    "make_loader",
    "normalise_batch",
    "resolve_device",
    "torch_threads",
]

_X_KEYS = ("x", "image", "patch", "patches", "input")
_Y_KEYS = ("y", "label", "labels", "target")


def import_torch() -> Any:
    """Import torch, or raise an error that says how to install it."""
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a declared dependency
        msg = (
            "xprospect's deep-learning parts need torch: install it first with "
            "`pip install torch==2.13.0` (CPU) or the CUDA build for your machine"
        )
        raise ImportError(msg) from err
    return torch


@contextmanager
def keep_torch_threads() -> Iterator[None]:
    """Restore the calling thread's torch (intra-op) thread count on leaving.

    Scoring sets the count of the thread that calls the model (see
    :mod:`xprospect.score._device`); a caller that scores and then trains in the same thread
    gets its own count back, so that its training stays bitwise reproducible. Nothing is
    done when torch is not imported, and the count is only set when it changed (one call,
    a few microseconds; resizing the OpenMP team happens on the next torch call).

    Yields
    ------
    None
    """
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        torch = sys.modules.get("torch")
        if torch is not None and before is not None and torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def torch_threads(threads: int | None, device: Any) -> Iterator[None]:
    """Run CPU torch work on ``threads`` intra-op threads, the caller's count back on leaving.

    The anomaly trainers run on one thread by default: a busy 2-core machine made torch's
    default team spin (the STOAD README recipe 1 278 CPU s on two threads against 97 on one,
    ``asv_bench/benchmarks/training.py``). Nothing is set for a device other than the CPU
    or for ``threads=None``.

    Parameters
    ----------
    threads : int or None
        Intra-op threads (>= 1), or None to keep the current count.
    device : torch.device or str
        The device the work runs on.

    Yields
    ------
    None
    """
    on_cpu = getattr(device, "type", str(device)) == "cpu"
    if threads is not None and on_cpu and int(threads) < 1:
        raise DataError(f"threads must be >= 1 or None; got {threads!r}")
    with keep_torch_threads():
        if threads is not None and on_cpu:
            import_torch().set_num_threads(int(threads))
        yield


def resolve_device(device: Any = "auto") -> Any:
    """Return a ``torch.device``: ``"auto"`` picks CUDA when present, else CPU.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``.

    Returns
    -------
    torch.device
    """
    torch = import_torch()
    if isinstance(device, torch.device):
        dev = device
    elif device is None or device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise XProspectError(f"device={device!r} is not a torch device name") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise XProspectError(f"device={device!r} was asked for but CUDA is not available here")
    return dev


def batch_xy(batch: Any) -> tuple[Any, Any]:
    """Split one dataset item or collated batch into ``(x, y)``.

    Accepts ``(x, y, ...)`` tuples/lists and mappings with an input key (``x``, ``image``,
    ``patch``) and a label key (``y``, ``label``, ``target``); ``y`` is ``None`` when absent.

    Parameters
    ----------
    batch : tuple, list, mapping or tensor
        One item of a torch dataset, or a batch collated by a ``DataLoader``.

    Returns
    -------
    tuple
        ``(x, y)``, ``y`` being ``None`` for unlabelled items.
    """
    if isinstance(batch, Mapping):
        x = next((batch[k] for k in _X_KEYS if k in batch), None)
        y = next((batch[k] for k in _Y_KEYS if k in batch), None)
        if x is None:
            msg = f"a dataset item has keys {sorted(batch)}; none of {_X_KEYS} is an input"
            raise DataError(msg)
        return x, y
    if isinstance(batch, list | tuple):
        if len(batch) == 0:
            raise DataError("a dataset item is an empty tuple")
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def make_loader(dataset: Any, *, batch_size: int, shuffle: bool, seed: int, device: Any) -> Any:
    """Build a single-process ``DataLoader`` shuffled by a local seeded generator.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Map-style dataset.
    batch_size : int
        Items per batch.
    shuffle : bool
        Draw items in a random order (from ``seed``, never from the global generator).
    seed : int
        Seed of the shuffling generator.
    device : torch.device or None
        Target device: memory is pinned for CUDA.

    Returns
    -------
    torch.utils.data.DataLoader
    """
    torch = import_torch()
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=int(batch_size),
        shuffle=shuffle,
        generator=gen,
        num_workers=0,
        pin_memory=getattr(device, "type", "cpu") == "cuda",
        drop_last=False,
    )


def normalise_batch(x: Any, mean: Any, std: Any) -> Any:
    """Return ``(x - mean) / std`` per channel; NaN cells (outside the data) become 0, the mean.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    mean, std : torch.Tensor
        ``(C,)`` per-channel statistics.

    Returns
    -------
    torch.Tensor
    """
    torch = import_torch()
    shape = (1, -1) + (1,) * (x.ndim - 2)
    out = (x - mean.view(shape)) / std.view(shape)
    return torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def as_tensor_list(values: Sequence[float] | Iterable[float], device: Any) -> Any:
    """Return ``values`` as a float32 tensor on ``device``.

    Parameters
    ----------
    values : sequence of float
        E.g. a card's per-channel ``mean``.
    device : torch.device
        Where the tensor lives.

    Returns
    -------
    torch.Tensor
    """
    torch = import_torch()
    return torch.as_tensor(np.asarray(list(values), dtype="float32"), device=device)
