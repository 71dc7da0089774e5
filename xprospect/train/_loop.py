"""The one training loop, and the batching helpers every trainer shares.

:func:`train_epochs` is the loop of every trainer in :mod:`xprospect.train`: supervised
fitting (:func:`~xprospect.train.fit`), the anomaly detectors (VAE, convolutional
autoencoders, STOAD's teacher and student) and self-supervised pre-training
(:func:`~xprospect.train.pretrain_reconstruction`). It takes the optimiser and learning-rate
schedule from a :class:`~xprospect.train.recipes.Recipe` only; what differs between trainers
(how batches are drawn, the loss of a batch, what is evaluated after an epoch) comes in as
plain callables. The rest is kept free of any policy (splits, recipes, cards): plain functions
over torch datasets and modules.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from xprospect._progress import wants_progress
from xprospect._torch import as_tensor_list, batch_xy, import_torch, make_loader, normalise_batch
from xprospect.evaluate.metrics import metric_registry, roc_auc, score_metrics
from xprospect.exceptions import DataError, XProspectError
from xprospect.train._flat_adam import FlatAdam
from xprospect.train.recipes import Recipe

torch = import_torch()

__all__ = [
    "ChannelStats",
    "EpochLog",
    "as_tensor_list",
    "batch_xy",
    "binary_auc",
    "class_weights",
    "dataset_labels",
    "make_loader",
    "normalise_batch",
    "scan_dataset",
    "train_epochs",
    "validation_metrics",
]


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
        n_ch = x.shape[1]
        if self._sum is None:
            self._sum = np.zeros(n_ch)
            self._sq = np.zeros(n_ch)
            self._n = np.zeros(n_ch)
        elif n_ch != self._sum.size:
            raise DataError(f"items have {n_ch} and {self._sum.size} channels")
        # reductions over every axis but the channel's, accumulated in float64 without a
        # channel-first float64 copy of the batch (a fit's whole PatchSet comes at once)
        axes = (0, *range(2, x.ndim))
        ok = np.isfinite(x)
        v = x if bool(ok.all()) else np.where(ok, x, np.float32(0))
        self._sum += np.add.reduce(v, axis=axes, dtype=np.float64)
        self._sq += np.add.reduce(np.square(v, dtype=np.float64), axis=axes)
        self._n += ok.sum(axis=axes)

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


def scan_dataset(dataset: Any, *, batch_size: int = 64) -> tuple[list[float], list[float], str]:
    """One pass over ``dataset`` (unaugmented): per-channel mean/std and the data hash."""
    stats = ChannelStats()
    loader = make_loader(dataset, batch_size=batch_size, shuffle=False, seed=0, device=None)
    for batch in loader:
        x, y = batch_xy(batch)
        stats.update(_numpy(x), None if y is None else _numpy(y))
    return stats.result()


def binary_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC of scores ``p`` for labels ``y``; NaN when only one class is present.

    The AUC itself is :func:`xprospect.evaluate.metrics.roc_auc`, the package's one
    implementation.
    """
    y = np.asarray(y)
    if np.unique(y).size < 2:
        return float("nan")
    return roc_auc(y, p)


def validation_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Every registered metric of validation scores, as ``val_<column>`` history entries.

    The registry (:func:`xprospect.evaluate.metrics.register_metric`) is the one place a
    metric is declared; ``roc_auc`` gives ``val_auc``. All NaN when one class is present.
    """
    registry = metric_registry()
    y = np.asarray(y)
    if np.unique(y).size < 2:
        return {f"val_{m.column}": math.nan for m in registry.values()}
    values = score_metrics(y.astype(bool), np.asarray(p, dtype="float64"))
    return {f"val_{registry[n].column}": v for n, v in values.items()}


def _numpy(t: Any) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return np.asarray(t)


# --------------------------------------------------------------------------------------------
# the loop

#: What one batch contributes: ``(loss tensor, number of items)``, or ``None`` to skip it.
BatchLoss = tuple[Any, int] | None


@dataclasses.dataclass
class EpochLog:
    """What :func:`train_epochs` returns.

    Attributes
    ----------
    rows : list of dict
        One row per epoch run: ``epoch``, ``lr`` (the rate the epoch trained with), the mean
        training loss under ``loss_key``, then what ``evaluate`` returned.
    best_epoch : int
        The epoch whose weights the model holds: the best by ``rank``, else the last one (0
        when no epoch ran or none ranked above ``-inf``).
    stopped_early : bool
        True when ``patience`` ended training before the last epoch.
    optimizer : torch.optim.Optimizer or None
        The optimiser built from the recipe (``None`` when ``epochs`` is 0).
    """

    rows: list[dict[str, Any]]
    best_epoch: int
    stopped_early: bool = False
    optimizer: Any = None


def optimiser_step(optimizer: Any, loss: Any) -> None:
    """Take one optimiser step on ``loss`` (gradients reset to ``None`` first)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def train_epochs(
    model: Any,
    params: Iterable[Any],
    recipe: Recipe,
    *,
    epochs: int,
    batches: Callable[[int], Iterable[Any]],
    batch_loss: Callable[[Any], BatchLoss],
    evaluate: Callable[[int], Mapping[str, Any]] | None = None,
    before_epoch: Callable[[int], None] | None = None,
    rank: Callable[[Mapping[str, Any]], tuple[float, ...]] | None = None,
    patience: int | None = None,
    on_best: Callable[[int, dict[str, Any]], None] | None = None,
    loss_key: str = "loss",
    row_prefix: Mapping[str, Any] | None = None,
    desc: str = "train",
    progress: bool | None = False,
    flat: bool = False,
) -> EpochLog:
    """Train ``model`` for ``epochs`` epochs with the optimiser and schedule of ``recipe``.

    Every epoch: ``before_epoch(epoch)``; ``model.train()``; for each batch of
    ``batches(epoch)``, ``batch_loss(batch)`` gives the loss and the item count (or ``None``
    to skip the batch) and one optimiser step is taken; the schedule steps once; the row
    ``{**row_prefix, "epoch", "lr", loss_key: mean loss, **evaluate(epoch)}`` is recorded.
    With ``rank``, the weights of the best-ranked epoch are kept (and handed to ``on_best``
    when they improve) and loaded back at the end, and ``patience`` epochs without
    improvement stop training.

    Parameters
    ----------
    model : torch.nn.Module
        The network; put in training mode at the start of every epoch (``evaluate`` may
        switch it to eval mode; the next epoch switches it back).
    params : iterable of torch.nn.Parameter
        What the optimiser updates (e.g. the unfrozen ones, a STOAD's student, a trunk and
        its decoder).
    recipe : Recipe
        Optimiser and step schedule (:meth:`Recipe.make_optimizer`,
        :meth:`Recipe.make_scheduler`); its ``epochs`` is not read.
    epochs : int
        Epochs to run (0 runs none).
    batches : callable
        ``batches(epoch)`` yields the epoch's training batches.
    batch_loss : callable
        ``batch_loss(batch)`` returns ``(loss, n_items)`` or ``None`` to skip the batch.
    evaluate : callable, optional
        ``evaluate(epoch)`` returns the rest of the epoch's row (held-out losses, ...).
    before_epoch : callable, optional
        Called with the epoch number before it trains (e.g. to re-seed augmentation).
    rank : callable, optional
        ``rank(row)`` orders epochs (larger is better); without it the last epoch is the best.
    patience : int, optional
        With ``rank``: stop after this many epochs without improvement.
    on_best : callable, optional
        With ``rank``: ``on_best(epoch, state_dict)`` when an epoch improves (e.g. to save a
        checkpoint); the state dict is a CPU copy.
    loss_key : str
        Row key of the mean training loss.
    row_prefix : mapping, optional
        Entries put first in every row (e.g. ``{"stage": "teacher"}``).
    desc : str
        Progress bar label.
    progress : bool or None
        Show a tqdm bar over epochs with an ETA: True always, None only on a terminal or in
        a notebook (:func:`xprospect._progress.wants_progress`), False never.
    flat : bool
        Adam over one parameter buffer (:class:`~xprospect.train._flat_adam.FlatAdam`, the
        same update with less per-step overhead) where the recipe is Adam or AdamW and every
        parameter is float32 on the CPU; the caller promises that every parameter receives a
        gradient at every step. The parameters get their own storage back at the end.

    Returns
    -------
    EpochLog
    """
    epochs = int(epochs)
    if epochs < 0:
        raise XProspectError(f"epochs must be >= 0; got {epochs}")
    if patience is not None and (rank is None or int(patience) < 1):
        raise XProspectError(f"patience={patience!r} needs a rank and must be >= 1")
    if epochs == 0:
        return EpochLog(rows=[], best_epoch=0)
    optimizer = recipe.make_optimizer(params, flat=True) if flat else recipe.make_optimizer(params)
    scheduler = recipe.make_scheduler(optimizer)
    prefix = dict(row_prefix or {})
    rows: list[dict[str, Any]] = []
    best_value: tuple[float, ...] | None = None
    best_epoch, best_state, since_best, stopped = 0, None, 0, False
    bar = tqdm(
        range(1, epochs + 1),
        desc=desc,
        unit="epoch",
        disable=not wants_progress(progress),
        leave=False,
    )
    try:
        for epoch in bar:
            if before_epoch is not None:
                before_epoch(epoch)
            model.train()
            lr_now = float(optimizer.param_groups[0]["lr"])
            total, seen = 0.0, 0
            for batch in batches(epoch):
                out = batch_loss(batch)
                if out is None:
                    continue
                loss, n = out
                optimiser_step(optimizer, loss)
                total += float(loss.detach()) * int(n)
                seen += int(n)
            scheduler.step()
            row = {
                **prefix,
                "epoch": epoch,
                "lr": lr_now,
                loss_key: total / seen if seen else math.nan,
            }
            if evaluate is not None:
                row.update(evaluate(epoch))
            rows.append(row)
            bar.set_postfix(
                {
                    k: f"{v:.3f}"
                    for k, v in row.items()
                    if k in (loss_key, "test_loss", "val_auc") and isinstance(v, float)
                }
            )
            if rank is None:
                best_epoch = epoch
                continue
            value = tuple(rank(row))
            if best_value is None:
                best_value = (-math.inf,) * len(value)  # an epoch ranked -inf is never the best
            if value > best_value:
                best_value, best_epoch, since_best = value, epoch, 0
                best_state = copy.deepcopy(
                    {k: v.detach().cpu() for k, v in model.state_dict().items()}
                )
                if on_best is not None:
                    on_best(epoch, best_state)
            else:
                since_best += 1
            if patience is not None and since_best >= int(patience):
                stopped = epoch < epochs
                break
    finally:
        # an interrupted fit (an exception, KeyboardInterrupt in a notebook) still gives the
        # parameters their own storage back and closes the bar
        bar.close()
        if isinstance(optimizer, FlatAdam):
            optimizer.release()
    if best_state is not None:
        model.load_state_dict(best_state)
    return EpochLog(rows=rows, best_epoch=best_epoch, stopped_early=stopped, optimizer=optimizer)
