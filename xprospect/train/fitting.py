"""Supervised training of window classifiers: :func:`fit`.

The loop implements the ResNet-50 stream-sediment study's recipe (SGD, step schedule, class
balance, flips and random crops) and the 3-D study's Adam recipe, with what makes a prospectivity
model honest: validation windows split off by space (whole blocks, deposit groups kept together,
overlapping training windows dropped), early stopping on the validation AUC, normalisation
statistics computed once on the training windows and stored in the model card with a hash of
the training data, and, on the CPU, bit-identical results for the same seed and the same torch
thread count (across thread counts results differ by float rounding that grows with training;
see docs/conventions.md, "Randomness and determinism").
"""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xprospect._dims import grid_geometry
from xprospect._sanity import warn_if_diverged
from xprospect._torch import import_torch, resolve_device
from xprospect.evaluate.metrics import metric_registry
from xprospect.evaluate.splits import overlapping, spatial_split
from xprospect.exceptions import (
    DataError,
    ModelCardError,
    XProspectDeprecationWarning,
    XProspectError,
)
from xprospect.models.card import make_card
from xprospect.models.weights import freeze as freeze_layers
from xprospect.models.wrap import require_contract
from xprospect.score.engine import score
from xprospect.score.windows import is_patchset
from xprospect.train import _batches, _loop
from xprospect.train.checkpoint import save_checkpoint, write_checkpoint
from xprospect.train.recipes import Recipe, get_recipe

torch = import_torch()

__all__ = ["HISTORY_COLUMNS", "FitResult", "fit", "nnpu_loss", "predict"]

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("epoch", "lr", "loss", "acc", "val_loss", "val_acc", "val_auc")


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    model : ProspectModel
        The model with the best weights (by ``monitor``; the last epoch's without validation),
        in eval mode, on the CPU, with its ``card`` set.
    history : pandas.DataFrame
        One row per epoch: ``epoch, lr, loss, acc, val_loss, val_acc, val_auc`` (NaN for the
        validation columns when there is no validation set).
    best_epoch : int
        Epoch (1-based) whose weights ``model`` holds.
    checkpoint : pathlib.Path or None
        Where the best model was saved, when ``checkpoint=`` was given.
    split : dict
        How validation was chosen: method, sizes, windows dropped by the overlap buffer.
    train_index, val_index : ndarray of int or None
        Positions (in the training set given to :func:`fit`) of the windows used for
        training and for validation.
    stopped_early : bool
        True when early stopping ended training before the last epoch.
    """

    model: Any
    history: pd.DataFrame
    best_epoch: int
    checkpoint: Path | None = None
    split: dict[str, Any] = dataclasses.field(default_factory=dict)
    train_index: np.ndarray | None = None
    val_index: np.ndarray | None = None
    stopped_early: bool = False

    @property
    def card(self) -> dict[str, Any]:
        """The trained model's card."""
        return self.model.card

    def __repr__(self) -> str:
        best = self.history.loc[self.history["epoch"] == self.best_epoch]
        auc = float(best["val_auc"].iloc[0]) if len(best) else float("nan")
        return (
            f"FitResult({type(self.model).__name__}, epochs={len(self.history)}, "
            f"best_epoch={self.best_epoch}, val_auc={auc:.3f})"
        )


# --------------------------------------------------------------------------------------------
# training data: a PatchSet or a plain torch dataset behind one small interface


class _Data:
    """Training windows: labels, positions, and datasets for index subsets."""

    def __init__(self, train: Any, *, crop: Any, seed: int) -> None:
        self.train = train
        self.crop = crop
        self.seed = seed
        self.is_patchset = is_patchset(train)
        if self.is_patchset:
            self.labels = _loop.dataset_labels(train)
            self.n = int(self.labels.size)
        else:
            if not hasattr(train, "__len__") or not hasattr(train, "__getitem__"):
                raise DataError(
                    f"train must be a PatchSet or a map-style torch Dataset; got "
                    f"{type(train).__name__}"
                )
            self.n = len(train)
            self.labels = _loop.dataset_labels(train)
        if self.n == 0:
            raise DataError("the training set holds no windows")

    # positions for the spatial split -----------------------------------------------------
    def xy(self) -> np.ndarray | None:
        xy = getattr(self.train, "xy", None)
        if xy is None:
            return None
        if hasattr(xy, "values") and not isinstance(xy, np.ndarray):
            xy = xy.values
        return np.asarray(xy, dtype="float64").reshape(self.n, -1)[:, :2]

    def groups(self) -> Any:
        g = getattr(self.train, "groups", None)
        if g is not None and hasattr(g, "values") and not isinstance(g, np.ndarray):
            g = g.values
        return g

    def extent(self) -> tuple[float, float]:
        """Full window size (width, height) in CRS units."""
        size = self.window_size()
        stack = getattr(self.train, "stack", None)
        if stack is None or size is None:
            raise DataError("a spatial split needs the window size and the stack's resolution")
        step = [abs(float(s)) for s in grid_geometry(stack).step]
        sy, sx = size[-2], size[-1]
        return (sx * step[-1], sy * step[-2])

    def window_size(self) -> tuple[int, ...] | None:
        plan = getattr(self.train, "plan", None)
        for obj, attr in ((plan, "size"), (plan, "window"), (self.train, "size")):
            v = getattr(obj, attr, None) if obj is not None else None
            if v is not None:
                return tuple(int(s) for s in np.atleast_1d(v))
        return None

    # datasets ------------------------------------------------------------------------------
    def dataset(self, idx: np.ndarray | None, *, augment: bool) -> Any:
        if self.is_patchset:
            sub = self.train if idx is None else self.train.subset(np.asarray(idx))
            return sub.torch_dataset(augment=augment, crop=self.crop, seed=self.seed)
        if idx is None:
            return self.train
        return torch.utils.data.Subset(self.train, [int(i) for i in idx])


def _explain_no_split(data: _Data, err: DataError) -> None:
    """Say so when no spatial split was found because the windows are large for the area."""
    stack = getattr(data.train, "stack", None)
    if stack is None or data.window_size() is None:
        return
    bounds = grid_geometry(stack).bounds()
    area = (bounds["x"][1] - bounds["x"][0], bounds["y"][1] - bounds["y"][0])
    win = data.extent()
    # a spatial split needs validation blocks (several windows wide) apart from training ones
    if any(w * 4 > a for w, a in zip(win, area, strict=True)):
        raise DataError(
            f"the windows are {win[0]:g} x {win[1]:g} (CRS units) on an area of "
            f"{area[0]:g} x {area[1]:g}: the area is too small for a spatial validation "
            "split with windows this large (it needs about four windows across each axis); "
            "cut smaller windows (e.g. make_patches(size='5 km')) or pass validation "
            f"windows explicitly ({err})"
        ) from err


def _split(
    data: _Data, validation: Any, split: str, seed: int
) -> tuple[np.ndarray, np.ndarray | None, Any, dict[str, Any]]:
    """Return (train_idx, val_idx or None, external validation dataset or None, info)."""
    every = np.arange(data.n)
    if validation is None:
        return every, None, None, {"method": "none"}
    if isinstance(validation, float | np.floating) and not isinstance(validation, bool):
        if split != "space":
            raise XProspectError(
                f"split={split!r}; only 'space' is offered, since random splits of overlapping "
                "windows leak training data into validation"
            )
        xy = data.xy()
        if xy is None:
            raise DataError(
                "validation as a fraction needs window positions for a spatial split: pass a "
                "PatchSet (or a dataset with .xy), or give validation windows or indices"
            )
        try:
            tr, va, info = spatial_split(
                xy,
                data.labels,
                extent=data.extent(),
                fraction=float(validation),
                groups=data.groups(),
                seed=seed,
            )
        except DataError as err:
            _explain_no_split(data, err)
            raise
        return tr, va, None, info
    if is_patchset(validation) or isinstance(validation, torch.utils.data.Dataset):
        return (
            every,
            None,
            validation,
            {"method": "given", "n_train": data.n, "n_val": len(validation)},
        )
    idx = np.asarray(validation)
    if idx.dtype == bool:
        if idx.shape != (data.n,):
            raise DataError(f"a validation mask needs {data.n} entries; got {idx.shape}")
        idx = np.flatnonzero(idx)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise DataError(
            f"validation must be None, a fraction, a PatchSet/Dataset, or window indices; got "
            f"{type(validation).__name__}"
        )
    if idx.size == 0 or idx.min() < 0 or idx.max() >= data.n:
        raise DataError(f"validation indices must lie in [0, {data.n}); got {idx[:5]!r}...")
    tr = np.setdiff1d(every, idx)
    info = {"method": "given indices", "n_train": int(tr.size), "n_val": int(idx.size)}
    xy = data.xy()
    if (
        xy is not None
        and data.window_size() is not None
        and getattr(data.train, "stack", None) is not None
    ):
        clash = overlapping(xy[tr], xy[idx], data.extent())
        if clash.any():
            log.info(
                "dropping %d training windows that overlap validation windows", int(clash.sum())
            )
        info["n_dropped"] = int(clash.sum())
        tr = tr[~clash]
        info["n_train"] = int(tr.size)
    return tr, np.sort(idx), None, info


def _validation_dataset(data: _Data, val_idx: np.ndarray | None, external: Any) -> Any:
    if external is None:
        return None if val_idx is None else data.dataset(val_idx, augment=False)
    if is_patchset(external):
        return external.torch_dataset(augment=False, crop=data.crop, seed=data.seed)
    return external


# --------------------------------------------------------------------------------------------
# one epoch


def _loss_fn(n_classes: int, weights: np.ndarray | None, device: Any) -> Any:
    if n_classes == 1:
        pos = None
        if weights is not None:
            pos = torch.as_tensor([weights[1] / weights[0]], dtype=torch.float32, device=device)
        bce = torch.nn.BCEWithLogitsLoss(pos_weight=pos)
        return lambda logits, y: bce(logits[:, 0], y.float())
    w = None if weights is None else torch.as_tensor(weights, dtype=torch.float32, device=device)
    return torch.nn.CrossEntropyLoss(weight=w)


def nnpu_loss(prior: float) -> Any:
    """Return the non-negative PU risk (Kiryo et al. 2017), sigmoid loss, as a loss function.

    With ``g`` the margin (class-1 logit minus class-0 logit, or the single logit),
    ``l(z) = sigmoid(-z)``, labelled positives P and unlabelled windows U::

        risk = prior * mean_P l(g) + max(0, mean_U l(-g) - prior * mean_P l(-g))

    Parameters
    ----------
    prior : float
        Share of positives among the unlabelled windows.

    Returns
    -------
    callable
        ``loss(logits, y)`` with ``y`` 1 for positives, 0 for unlabelled windows.
    """
    pi = float(prior)

    def loss(logits: Any, y: Any) -> Any:
        g = logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]
        p = (y == 1).to(g.dtype)
        u = 1.0 - p
        n_p = p.sum().clamp(min=1.0)
        n_u = u.sum().clamp(min=1.0)
        risk_p = (torch.sigmoid(-g) * p).sum() / n_p
        risk_p_neg = (torch.sigmoid(g) * p).sum() / n_p
        risk_u_neg = (torch.sigmoid(g) * u).sum() / n_u
        return pi * risk_p + torch.clamp(risk_u_neg - pi * risk_p_neg, min=0.0)

    return loss


def _predict(logits: Any) -> tuple[Any, Any]:
    """(class prediction, probability of class 1)."""
    if logits.shape[-1] == 1:
        p = torch.sigmoid(logits[:, 0])
        return (p > 0.5).long(), p
    return logits.argmax(dim=-1), torch.softmax(logits, dim=-1)[:, 1]


def _eval_pass(
    model: Any, loader: Any, *, loss_fn: Any, device: Any, mean: Any, std: Any
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Mean loss, accuracy, labels and class-1 probabilities over one eval pass of ``loader``."""
    model.train(False)
    total, correct, seen = 0.0, 0, 0
    ys, ps = [], []
    with torch.inference_mode():
        for batch in loader:
            x, y = _to_device(batch, device, mean, std)
            logits = model(x)
            loss = loss_fn(logits, y)
            pred, prob = _predict(logits)
            n = int(y.shape[0])
            total += float(loss) * n
            correct += int((pred == y).sum())
            seen += n
            ys.append(y.cpu().numpy())
            ps.append(prob.float().cpu().numpy())
    if seen == 0:
        return float("nan"), float("nan"), np.zeros(0, "int64"), np.zeros(0)
    return total / seen, correct / seen, np.concatenate(ys), np.concatenate(ps)


def _to_device(batch: Any, device: Any, mean: Any, std: Any) -> tuple[Any, Any]:
    """Normalised inputs and integer labels of a batch, on ``device``."""
    x, y = _loop.batch_xy(batch)
    if y is None:
        raise DataError("a training batch has no labels")
    x = x.to(device, dtype=torch.float32, non_blocking=True)
    y = torch.as_tensor(y).to(device, dtype=torch.long, non_blocking=True)
    return _loop.normalise_batch(x, mean, std), y


def _has_batchnorm(model: Any) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _n_classes(model: Any, sample: Any, device: Any) -> int:
    n = getattr(model, "num_classes", None)
    if n is not None:
        return int(n)
    was = model.training
    model.eval()
    with torch.inference_mode():
        out = model(sample.to(device, dtype=torch.float32))
    model.train(was)
    if out.dim() != 2:
        msg = f"a classifier must return logits (B, classes); got {tuple(out.shape)}"
        raise ModelCardError(msg)
    return int(out.shape[1])


# --------------------------------------------------------------------------------------------


def fit(
    model: Any,
    train: Any,
    *,
    recipe: str | Recipe | Mapping[str, Any] = "resnet-sgd",
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
    class_weight: str | Mapping[int, float] | None = "balanced",
    validation: float | Any | None = None,
    split: str = "space",
    early_stopping: int | None = None,
    monitor: str = "val_auc",
    augment: bool = True,
    crop: int | Sequence[int] | None = None,
    device: Any = "auto",
    seed: int = 0,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    freeze: int | str | Sequence[str] | None = None,
    loss: str = "cross_entropy",
    pu_prior: float | None = None,
    epoch_negatives: int | None = None,
) -> FitResult:
    """Train a window classifier on labelled patches.

    Parameters
    ----------
    model : ProspectModel
        A classifier (``task == "classifier"``) returning logits ``(B, classes)``; trained in
        place, then returned (best weights, eval mode, CPU) in the result.
    train : PatchSet or torch Dataset
        Labelled windows. A :class:`~xprospect.patches.PatchSet` gives positions for the
        spatial split, augmentation (flips, 90-degree rotations, random crops) and the stack
        for the card. Its windows are held in memory: whole, or, when they overlap enough
        for it to be smaller (a window on every cell of a ground), as the box of the stack
        they lie in, cut batch by batch into the same windows; either way a read larger
        than the free memory (a cgroup limit included) is refused with a
        :class:`~xprospect.exceptions.DataError` naming its size. A map-style torch
        dataset of ``(x, y)`` items works too (no spatial split by fraction, no element
        list in the card).
    recipe : {"resnet-sgd", "adam"}, Recipe or mapping
        Optimiser and schedule; see :mod:`xprospect.train.recipes`.
    epochs, batch_size, lr, weight_decay : optional
        Override the recipe's values.
    class_weight : "balanced", mapping or None
        Loss weights per class; ``"balanced"`` weighs classes by inverse frequency of the
        training labels.
    validation : None, float, PatchSet/Dataset, or indices
        ``float``: that share of windows split off **by space** (whole blocks, deposit groups
        kept together, overlapping training windows dropped); a PatchSet or dataset: separate
        validation windows; integer indices or a boolean mask into ``train``: those windows
        (training windows overlapping them are dropped). ``None``: no validation.
    split : {"space"}
        How a fractional validation set is drawn; random pixel splits are not offered.
    early_stopping : int, optional
        Stop after this many epochs without improvement of ``monitor`` (needs validation).
    monitor : {"val_auc", "val_loss"}
        Metric that picks the best epoch (and drives early stopping).
    augment : bool
        Random flips/rotations/crops of training windows (PatchSet only).
    crop : int, optional
        Crop edge (cells) for training (random) and validation (centre) windows, e.g. 224 of
        256 as in the ResNet study; default the model's ``window`` when smaller than the patch.
    device : str or torch.device
        ``"auto"`` uses CUDA when present.
    seed : int
        Seeds weight updates, shuffling, augmentation, dropout and the split: the same seed
        and the same torch thread count give the same history and weights, bit for bit, on
        the CPU; another thread count rounds differently (maps agree to about 1e-5 of their
        range after a few epochs, further apart after hundreds of epochs), so record the
        thread count with the seed.
    progress : bool
        Show a tqdm progress bar over epochs.
    checkpoint : path, optional
        Save the best model there (see :func:`~xprospect.train.save_checkpoint`) whenever it
        improves, and at the end.
    freeze : int, str or list of str, optional
        Submodules to keep fixed, by name, or the number of leading stages
        (:func:`xprospect.models.weights.freeze`); frozen batch norms stay in eval mode.
    loss : {"cross_entropy", "nnpu"}
        ``"cross_entropy"`` (weighted by ``class_weight``), or the non-negative
        positive-unlabelled risk of Kiryo et al. (2017) with the sigmoid loss: label 1 marks
        known positives and label 0 *unlabelled* windows (not barren ones); ``class_weight``
        is not used.
    pu_prior : float, optional
        Class prior of the positive class among the unlabelled windows (needed by
        ``loss="nnpu"``), in (0, 1).
    epoch_negatives : int, optional
        Train each epoch on every positive window and a fresh random draw of this many
        label-0 windows of the training side (a :class:`~xprospect.patches.PatchSet` only);
        ``"balanced"`` class weights follow that per-epoch mix. A large pool of barren
        windows (every cell of the training ground) is then met across the epochs at the cost
        per epoch of a small sample. ``None``: every window every epoch.

    Returns
    -------
    FitResult

    Notes
    -----
    Normalisation: per-element mean and standard deviation over the (unaugmented) training
    windows, ignoring NaN, computed once; batches are normalised as ``(x - mean) / std`` with
    NaN then set to 0 (the mean), and the statistics go to the card, where
    :func:`xprospect.score.score` reads them. The data hash is the SHA-256 of the training
    windows' float32 bytes followed by their labels.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> from xprospect.models import SmallCNN
    >>> x = torch.randn(40, 3, 12, 12); y = torch.arange(40) % 2
    >>> x[y == 1, 0] += 1.0
    >>> res = fit(SmallCNN(3, window=12, widths=(8,), seed=0), TensorDataset(x, y),
    ...           recipe="adam", epochs=3, progress=False, device="cpu")
    >>> list(res.history.columns)[:7]
    ['epoch', 'lr', 'loss', 'acc', 'val_loss', 'val_acc', 'val_auc']
    """
    require_contract(model, "fit")
    if getattr(model, "task", "classifier") != "classifier":
        raise ModelCardError(
            f"fit trains classifiers; {type(model).__name__} is a {model.task!r} model "
            "(use xprospect.train.fit_anomaly)"
        )
    if monitor not in ("val_auc", "val_loss"):
        raise XProspectError(f"monitor={monitor!r}; use 'val_auc' or 'val_loss'")
    rec = get_recipe(recipe).replace(
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay
    )
    if early_stopping is not None and (int(early_stopping) < 1 or validation is None):
        raise XProspectError(
            f"early_stopping={early_stopping!r} needs a patience >= 1 and a validation set"
        )
    if loss not in ("cross_entropy", "nnpu"):
        raise XProspectError(f"loss={loss!r}; use 'cross_entropy' or 'nnpu'")
    if loss == "nnpu" and (pu_prior is None or not 0.0 < float(pu_prior) < 1.0):
        raise XProspectError(f"loss='nnpu' needs pu_prior in (0, 1); got {pu_prior!r}")
    if epoch_negatives is not None and (
        isinstance(epoch_negatives, bool)
        or not isinstance(epoch_negatives, (int, np.integer))
        or epoch_negatives < 1
    ):
        raise XProspectError(f"epoch_negatives={epoch_negatives!r}; use None or an int >= 1")
    dev = resolve_device(device)
    if crop is None:
        crop = _default_crop(model, train)
    data = _Data(train, crop=crop, seed=seed)
    train_idx, val_idx, external_val, split_info = _split(data, validation, split, seed)
    train_ds = data.dataset(None if train_idx.size == data.n else train_idx, augment=augment)
    val_ds = _validation_dataset(data, val_idx, external_val)
    labels = data.labels[train_idx]

    # statistics and hash over the unaugmented (centre-cropped) training windows, read through
    # the same dataset (and its in-memory copy) that training uses
    # windows of a PatchSet are cut and augmented a whole batch at a time (_batches); other
    # datasets go through a DataLoader
    fast = _batches.tensor_batches(
        train_ds,
        batch_size=rec.batch_size,
        shuffle=True,
        seed=seed,
        epoch_negatives=epoch_negatives,
    )
    if epoch_negatives is not None:
        if fast is None:
            raise XProspectError(
                "epoch_negatives draws label-0 windows of a PatchSet each epoch; "
                f"got a {type(train).__name__}"
            )
        labels = fast.epoch_labels()
    if fast is not None:
        mean, std, data_hash = fast.stats()
    else:
        was = getattr(train_ds, "augment", None)
        if was is not None:
            train_ds.augment = False
        try:
            mean, std, data_hash = _loop.scan_dataset(train_ds, batch_size=max(rec.batch_size, 64))
        finally:
            if was is not None:
                train_ds.augment = was
    log.info("normalisation over %d training windows: mean %s std %s", len(train_ds), mean, std)

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(int(seed))
        result = _train(
            model,
            train_ds,
            val_ds,
            rec=rec,
            labels=labels,
            class_weight=class_weight,
            early_stopping=early_stopping,
            monitor=monitor,
            dev=dev,
            seed=seed,
            progress=progress,
            mean=mean,
            std=std,
            checkpoint=checkpoint,
            freeze=freeze,
            pu_prior=None if loss != "nnpu" else float(pu_prior),  # type: ignore[arg-type]
            fast=fast,
            stack=getattr(train, "stack", None) if data.is_patchset else None,
            card_extra={
                "data_hash": data_hash,
                "augment": augment,
                "crop": None if crop is None else np.atleast_1d(crop).tolist(),
                "card_window": _card_window(crop, data, model),
                "split": split_info,
                "class_weight": _jsonable_cw(class_weight),
                "loss": loss if loss == "cross_entropy" else {"nnpu": float(pu_prior)},  # type: ignore[arg-type]
                "n_train": len(train_ds),
                **(
                    {"epoch_negatives": fast.epoch_negatives}
                    if fast is not None and fast.epoch_negatives is not None
                    else {}
                ),
                "seed": int(seed),
            },
        )
    warn_if_diverged(result.history["loss"].tolist(), int(getattr(model, "num_classes", 2)))
    result.split = split_info
    result.train_index = train_idx
    result.val_index = val_idx
    return result


def _default_crop(model: Any, train: Any) -> int | tuple[int, ...] | None:
    """Return the PatchSet's own crop, else the model's window when smaller than the patches."""
    if not is_patchset(train):
        return None
    own = getattr(train, "crop", None)
    if own is not None:
        return tuple(int(c) for c in np.atleast_1d(own))
    window = getattr(model, "window", None)
    patch = getattr(getattr(train, "plan", None), "size", None)
    if window is None or patch is None:
        return None
    return int(window) if int(window) < int(np.min(np.atleast_1d(patch))) else None


def _card_window(crop: Any, data: _Data, model: Any) -> list[int] | None:
    """Window the model sees: the crop, else the patch size, else the model's window."""
    if crop is not None:
        return np.atleast_1d(crop).astype(int).tolist()
    size = data.window_size() if data.is_patchset else None
    if size is not None:
        return list(size)
    window = getattr(model, "window", None)
    if window is None:
        return None
    ndim = int(getattr(model, "ndim", None) or 2)
    return np.broadcast_to(np.atleast_1d(window), (ndim,)).astype(int).tolist()


def _jsonable_cw(cw: Any) -> Any:
    if isinstance(cw, Mapping):
        return {str(k): float(v) for k, v in cw.items()}
    return cw


def _train(
    model,
    train_ds,
    val_ds,
    *,
    rec,
    labels,
    class_weight,
    early_stopping,
    monitor,
    dev,
    seed,
    progress,
    mean,
    std,
    checkpoint,
    freeze,
    stack,
    card_extra,
    pu_prior=None,
    fast=None,
) -> FitResult:
    if freeze is not None:
        freeze_layers(model, freeze)
    model.to(dev)
    # 2-D convolutions train about 20 % faster channels-last on the CPU (oneDNN); the layout
    # is undone after training so checkpoints and scoring see the usual one
    channels_last = fast is not None and fast.x.dim() == 4 and dev.type == "cpu"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    loader = (
        _loop.make_loader(train_ds, batch_size=rec.batch_size, shuffle=True, seed=seed, device=dev)
        if fast is None
        else None
    )
    val_loader: Any = None
    if val_ds is not None:
        val_fast = _batches.tensor_batches(
            val_ds, batch_size=max(rec.batch_size, 256), shuffle=False, seed=seed
        )
        val_loader = (
            _loop.make_loader(
                val_ds, batch_size=max(rec.batch_size, 64), shuffle=False, seed=seed, device=dev
            )
            if val_fast is None
            else _Replay(val_fast)
        )
    first_x = fast.x[:1][0] if fast is not None else _loop.batch_xy(train_ds[0])[0]
    n_classes = _n_classes(model, torch.as_tensor(first_x)[None], dev)
    weights = _loop.class_weights(labels, class_weight, max(n_classes, 2))
    loss_fn = _loss_fn(n_classes, weights, dev) if pu_prior is None else nnpu_loss(pu_prior)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise XProspectError("every parameter of the model is frozen; nothing to train")
    mean_t = _loop.as_tensor_list(mean, dev)
    std_t = _loop.as_tensor_list(std, dev)
    card = _make_card(stack, rec, mean, std, card_extra)
    batchnorm = _has_batchnorm(model)
    ckpt_path = None if checkpoint is None else Path(checkpoint)
    hits = {"correct": 0, "seen": 0}  # training accuracy of the running epoch

    def before_epoch(epoch: int) -> None:
        hits.update(correct=0, seen=0)
        if fast is not None:
            fast.set_epoch(epoch)
        for ds in (train_ds, val_ds):
            if ds is not None and hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)

    def batch_loss(batch: Any) -> _loop.BatchLoss:
        x, y = _to_device(batch, dev, mean_t, std_t)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if x.shape[0] == 1 and batchnorm:
            return None  # batch norm cannot train on one window; skip the odd leftover
        logits = model(x)
        pred, _ = _predict(logits.detach())
        hits["correct"] += int((pred == y).sum())
        hits["seen"] += int(y.shape[0])
        return loss_fn(logits, y), int(y.shape[0])

    def evaluate(_epoch: int) -> dict[str, float]:
        acc = hits["correct"] / hits["seen"] if hits["seen"] else math.nan
        row = {
            "acc": acc,
            "val_loss": math.nan,
            "val_acc": math.nan,
            **{c: math.nan for c in _metric_columns()},
        }
        if val_loader is not None:
            vloss, vacc, vy, vp = _eval_pass(
                model, val_loader, loss_fn=loss_fn, device=dev, mean=mean_t, std=std_t
            )
            row.update(val_loss=vloss, val_acc=vacc, **_loop.validation_metrics(vy, vp))
        return row

    def _epoch_batches(_epoch: int) -> Any:
        return loader if fast is None else fast.batches()

    def on_best(epoch: int, state: dict[str, Any]) -> None:
        if ckpt_path is not None:
            _save_best(model, state, card, ckpt_path, epoch)

    run = _loop.train_epochs(
        model,
        params,
        rec,
        epochs=rec.epochs,
        batches=_epoch_batches,
        batch_loss=batch_loss,
        evaluate=evaluate,
        before_epoch=before_epoch,
        rank=None if val_loader is None else (lambda row: _monitor_key(row, monitor)),
        patience=early_stopping,
        on_best=on_best,
        desc="fit",
        progress=progress,
    )
    if run.stopped_early:
        log.info("early stopping at epoch %d (best %d)", len(run.rows), run.best_epoch)
    model.to("cpu")
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    model.eval()
    card["best_epoch"] = int(run.best_epoch)
    card["epochs_run"] = len(run.rows)
    model.card = card
    _record_window(model, card.get("window"))
    if ckpt_path is not None:
        save_checkpoint(model, ckpt_path)
    extra = [c for c in _metric_columns() if c not in HISTORY_COLUMNS]
    history = pd.DataFrame(run.rows, columns=[*HISTORY_COLUMNS, *extra])
    history["epoch"] = history["epoch"].astype("int64")
    return FitResult(
        model=model,
        history=history,
        best_epoch=int(run.best_epoch),
        checkpoint=ckpt_path,
        stopped_early=run.stopped_early,
    )


class _Replay:
    """An iterable giving one epoch of :class:`_batches.TensorBatches` per iteration."""

    def __init__(self, batches: _batches.TensorBatches) -> None:
        self.b = batches

    def __iter__(self) -> Any:
        return self.b.batches()


def _metric_columns() -> list[str]:
    """History columns of the registered metrics (``val_auc`` first)."""
    return [f"val_{m.column}" for m in metric_registry().values()]


def _record_window(model: Any, window: Any) -> None:
    """Give a window-agnostic model (e.g. a ResNet) the window it was trained on.

    Scoring reads ``model.window``; writing it into ``config["kwargs"]`` too keeps it through
    a checkpoint round trip.
    """
    if getattr(model, "window", None) is not None or not window:
        return
    if len(set(window)) != 1:
        return
    w = int(window[0])
    model.window = w
    model.context = (w // 2, w - 1 - w // 2)  # xprospect.models.base's convention
    kwargs = (getattr(model, "config", None) or {}).get("kwargs")
    if isinstance(kwargs, dict) and "window" in kwargs and kwargs["window"] is None:
        kwargs["window"] = int(window[0])


def _monitor_key(row: Mapping[str, float], monitor: str) -> tuple[float, float]:
    """Rank an epoch (larger is better); NaN counts as worst.

    ``(val AUC, -val loss)`` for ``"val_auc"`` (the loss breaks ties, e.g. once the AUC
    saturates at 1), ``(-val loss, val AUC)`` for ``"val_loss"``.
    """
    auc = row["val_auc"] if not math.isnan(row["val_auc"]) else -math.inf
    loss = -row["val_loss"] if not math.isnan(row["val_loss"]) else -math.inf
    return (auc, loss) if monitor == "val_auc" else (loss, auc)


def _save_best(model, state, card, path, epoch) -> None:
    write_checkpoint(
        path, config=model.config, state_dict=state, card={**card, "best_epoch": int(epoch)}
    )


def _make_card(stack, rec: Recipe, mean, std, extra: dict[str, Any]) -> dict[str, Any]:
    """Model card via :func:`xprospect.models.card.make_card` (or a stack-free one)."""
    window = extra.get("card_window")
    info = {k: v for k, v in extra.items() if k not in ("data_hash", "card_window")}
    info.update(recipe=rec.to_dict(), epochs=rec.epochs)
    if stack is not None:
        return make_card(
            stack, window=window, mean=mean, std=std, data_hash=extra["data_hash"], **info
        )
    log.info("the training data carries no stack: the card holds no elements, resolution or CRS")
    return {
        "elements": None,
        "window": window,
        "mean": list(mean),
        "std": list(std),
        "data_hash": extra["data_hash"],
        **info,
    }


def predict(model: Any, data: Any, *, batch_size: int = 256, device: Any = "auto") -> np.ndarray:
    """Score windows; deprecated alias of :func:`xprospect.score.score` given windows.

    ``predict(model, windows)`` is ``score(windows, model)``: the probability of class 1 for
    every window of a PatchSet or torch dataset, normalised as in training.

    Parameters
    ----------
    model : ProspectModel
        A trained classifier.
    data : PatchSet or torch Dataset
        Windows to score.
    batch_size : int
        Windows per batch.
    device : str or torch.device
        ``"auto"`` uses CUDA when present.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float probabilities in the order of ``data``.
    """
    warnings.warn(
        "xprospect.train.predict(model, windows) is deprecated: use "
        "xprospect.score.score(windows, model) (one verb applies a model)",
        XProspectDeprecationWarning,
        stacklevel=2,
    )
    return score(data, model, batch_size=batch_size, device=device)
