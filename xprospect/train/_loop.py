"""Device, batching and per-epoch helpers shared by the supervised and transfer loops.

Kept free of any policy (splits, recipes, cards): plain functions over torch datasets and
modules, so that :mod:`xprospect.train.fit` and :mod:`xprospect.train.transfer` read as the
recipe they implement.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from xprospect._torch import import_torch
from xprospect.exceptions import DataError, XProspectError

torch = import_torch()

__all__ = [
    "ChannelStats",
    "batch_xy",
    "binary_auc",
    "class_weights",
    "dataset_labels",
    "make_loader",
    "normalise_batch",
    "scan_dataset",
]

_X_KEYS = ("x", "image", "patch", "patches", "input")
_Y_KEYS = ("y", "label", "labels", "target")


def batch_xy(batch: Any) -> tuple[Any, Any]:
    """Split one dataset item or collated batch into ``(x, y)``.

    Accepts ``(x, y, ...)`` tuples/lists and mappings with an input key (``x``, ``image``,
    ``patch``) and a label key (``y``, ``label``, ``target``); ``y`` is ``None`` when absent.
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


def dataset_labels(dataset: Any) -> np.ndarray:
    """Integer class labels of every item of a torch dataset.

    Uses ``dataset.labels`` when present (a PatchSet's dataset, or any dataset exposing them),
    the second tensor of a ``TensorDataset``, and otherwise reads each item once.
    """
    labels = getattr(dataset, "labels", None)
    if labels is None and isinstance(dataset, torch.utils.data.TensorDataset):
        labels = dataset.tensors[1] if len(dataset.tensors) > 1 else None
    if labels is None and isinstance(dataset, torch.utils.data.Subset):
        return dataset_labels(dataset.dataset)[np.asarray(dataset.indices)]
    if labels is None:
        labels = [batch_xy(dataset[i])[1] for i in range(len(dataset))]
        if any(v is None for v in labels):
            msg = "the training dataset yields no labels; supervised fit needs (x, y) items"
            raise DataError(msg)
        labels = [int(v) for v in labels]
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    elif hasattr(labels, "values") and not isinstance(labels, np.ndarray):
        labels = labels.values  # xarray / pandas
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise DataError(f"labels must be one per item; got shape {arr.shape}")
    if arr.size and not np.all(np.isfinite(arr.astype("float64"))):
        raise DataError("labels contain NaN; every training window needs a class")
    out = arr.astype("int64")
    if not np.array_equal(out, arr.astype("float64")):
        raise DataError(f"labels must be whole class numbers; got values such as {arr[:5]!r}")
    if out.size and out.min() < 0:
        raise DataError(f"labels must be >= 0; got {int(out.min())}")
    return out


def class_weights(
    labels: np.ndarray, mode: str | Mapping[int, float] | None, n_classes: int
) -> np.ndarray | None:
    """Per-class loss weights.

    Parameters
    ----------
    labels : ndarray of int
        Training labels.
    mode : "balanced", mapping or None
        ``"balanced"``: ``n / (n_classes * count_c)`` as in scikit-learn; a mapping gives the
        weight of each class (missing classes weigh 1); ``None``: unweighted.
    n_classes : int
        Number of classes of the model's output.

    Returns
    -------
    ndarray of float or None
    """
    if mode is None:
        return None
    if isinstance(mode, Mapping):
        w = np.ones(n_classes)
        for k, v in mode.items():
            if not 0 <= int(k) < n_classes:
                raise XProspectError(f"class_weight names class {k!r}; the model has {n_classes}")
            if not float(v) > 0:
                raise XProspectError(f"class_weight[{k!r}] = {v!r} must be > 0")
            w[int(k)] = float(v)
        return w
    if mode != "balanced":
        raise XProspectError(f"class_weight={mode!r}; use 'balanced', a mapping or None")
    counts = np.bincount(labels, minlength=n_classes).astype("float64")
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise DataError(
            f"class_weight='balanced' but the training windows hold no class {missing.tolist()} "
            f"(counts {counts.astype(int).tolist()})"
        )
    return labels.size / (n_classes * counts)


class ChannelStats:
    """Streaming NaN-aware per-channel mean/std and a SHA-256 of the data and labels."""

    def __init__(self) -> None:
        self._sum: np.ndarray | None = None
        self._sq: np.ndarray | None = None
        self._n: np.ndarray | None = None
        self._hash = hashlib.sha256()

    def update(self, x: np.ndarray, y: np.ndarray | None) -> None:
        """Add a batch ``x`` of shape ``(B, C, *spatial)`` and its labels."""
        x = np.ascontiguousarray(x, dtype="float32")
        self._hash.update(x.tobytes())
        if y is not None:
            self._hash.update(np.ascontiguousarray(y, dtype="int64").tobytes())
        flat = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1).astype("float64")
        ok = np.isfinite(flat)
        v = np.where(ok, flat, 0.0)
        if self._sum is None:
            self._sum = np.zeros(flat.shape[0])
            self._sq = np.zeros(flat.shape[0])
            self._n = np.zeros(flat.shape[0])
        elif flat.shape[0] != self._sum.size:
            raise DataError(f"items have {flat.shape[0]} and {self._sum.size} channels")
        self._sum += v.sum(axis=1)
        self._sq += (v * v).sum(axis=1)
        self._n += ok.sum(axis=1)

    def result(self) -> tuple[list[float], list[float], str]:
        """Return ``(mean, std, sha256 hex)``; std is floored at 1e-6 times the mean's scale."""
        if self._sum is None or self._n is None or self._sq is None:
            raise DataError("no training windows to compute normalisation statistics from")
        empty = np.flatnonzero(self._n == 0)
        if empty.size:
            raise DataError(f"channels {empty.tolist()} are NaN in every training window")
        mean = self._sum / self._n
        var = np.maximum(self._sq / self._n - mean * mean, 0.0)
        std = np.sqrt(var)
        floor = 1e-6 * np.maximum(np.abs(mean), 1.0)
        std = np.where(std > floor, std, 1.0)  # a constant channel is centred, not blown up
        return mean.tolist(), std.tolist(), self._hash.hexdigest()


def make_loader(dataset: Any, *, batch_size: int, shuffle: bool, seed: int, device: Any) -> Any:
    """Build a single-process ``DataLoader`` shuffled by a local seeded generator."""
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


def scan_dataset(dataset: Any, *, batch_size: int = 64) -> tuple[list[float], list[float], str]:
    """One pass over ``dataset`` (unaugmented): per-channel mean/std and the data hash."""
    stats = ChannelStats()
    loader = make_loader(dataset, batch_size=batch_size, shuffle=False, seed=0, device=None)
    for batch in loader:
        x, y = batch_xy(batch)
        stats.update(_numpy(x), None if y is None else _numpy(y))
    return stats.result()


def normalise_batch(x: Any, mean: Any, std: Any) -> Any:
    """``(x - mean) / std`` per channel; NaN cells (outside the data) become 0, the mean."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    out = (x - mean.view(shape)) / std.view(shape)
    return torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def binary_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC of scores ``p`` for labels ``y``; NaN when only one class is present."""
    y = np.asarray(y)
    if np.unique(y).size < 2:
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _numpy(t: Any) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return np.asarray(t)


def as_tensor_list(values: Sequence[float] | Iterable[float], device: Any) -> Any:
    """Return ``values`` as a float32 tensor on ``device``."""
    return torch.as_tensor(np.asarray(list(values), dtype="float32"), device=device)
