"""Transfer learning for areas with few deposits: pre-train, then fine-tune.

Three sources of prior knowledge, as in Li et al. (2020), who pre-trained a CNN before training
on an area with a handful of Au deposits:

* :func:`pretrain` — supervised training on labelled windows of another area or of a synthetic
  world (many deposits);
* :func:`pretrain_reconstruction` — self-supervised: the classifier's trunk, with a light
  decoder, learns to reconstruct masked and noised unlabelled windows of the target area itself;
  the trunk keeps the weights, the decoder is thrown away;
* :func:`fine_tune` — loads every compatible tensor of a pre-trained model (the first
  convolution adapted when the number of elements differs,
  :func:`xprospect.models.weights.load_compatible_state_dict`), freezes the chosen layers
  (:func:`xprospect.models.weights.freeze`) and trains on the target with :func:`fit`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect._torch import import_torch, resolve_device
from xprospect.exceptions import DataError, ModelCardError, XProspectError
from xprospect.models.weights import freeze as freeze_layers
from xprospect.models.weights import load_compatible_state_dict, unfreeze
from xprospect.patches.extract import extract_patches
from xprospect.patches.plan import plan_random
from xprospect.train import _loop
from xprospect.train.checkpoint import read_checkpoint
from xprospect.train.fitting import FitResult, fit
from xprospect.train.recipes import get_recipe

torch = import_torch()
nn = torch.nn
F = torch.nn.functional

__all__ = ["ReconstructionResult", "fine_tune", "pretrain", "pretrain_reconstruction"]

log = logging.getLogger(__name__)


def pretrain(model: Any, source: Any, **fit_kwargs: Any) -> FitResult:
    """Supervised pre-training on a source area or synthetic world.

    This is :func:`fit` on the source windows; the result's card records the source (its
    elements, data hash, recipe) under ``"pretraining"``, and :func:`fine_tune` copies that
    lineage into the fine-tuned model's card.

    Parameters
    ----------
    model : ProspectModel
        Classifier whose input channels match the source's elements.
    source : PatchSet or torch Dataset
        Labelled windows of the source area (e.g. ``world.stack.prospect.patches(...)`` for a
        synthetic world with many deposits).
    **fit_kwargs
        Passed to :func:`fit` (recipe, epochs, validation, seed, ...).

    Returns
    -------
    FitResult
    """
    result = fit(model, source, **fit_kwargs)
    card = result.model.card
    card["pretraining"] = {
        "kind": "supervised",
        "elements": card.get("elements"),
        "data_hash": card.get("data_hash"),
        "best_epoch": result.best_epoch,
    }
    return result


# --------------------------------------------------------------------------------------------
# self-supervised reconstruction


@dataclasses.dataclass
class ReconstructionResult:
    """What :func:`pretrain_reconstruction` returns.

    Attributes
    ----------
    model : ProspectModel
        The classifier, trunk weights pre-trained (its head untouched), eval mode, on the CPU.
    decoder : torch.nn.Module
        The light decoder used for the reconstruction task (not needed afterwards).
    history : pandas.DataFrame
        ``epoch, lr, loss`` (mean masked-cell MSE of each epoch's training windows) and
        ``baseline`` (MSE of predicting the mean, i.e. 0 after normalisation, on the same cells).
    trunk : str
        Name of the module whose output the decoder reads.
    mean, std : list of float
        Per-element normalisation of the unlabelled windows.
    """

    model: Any
    decoder: Any
    history: pd.DataFrame
    trunk: str
    mean: list[float]
    std: list[float]


def _trunk_name(model: Any) -> str:
    """Name the last feature stage: ``stages[-1][-1]``, else the last child before the head."""
    stages = getattr(model, "stages", None)
    if stages:
        return str(stages[-1][-1])
    with_params = [n for n, m in model.named_children() if any(True for _ in m.parameters())]
    if len(with_params) < 2:
        raise ModelCardError(
            f"{type(model).__name__} has no `stages` and too few layers to tell trunk from head"
        )
    return with_params[-2]


class _Decoder(nn.Module):
    """3x3 conv, ReLU, (bi/tri)linear upsampling to the input window, 3x3 conv to the elements."""

    def __init__(self, in_features: int, out_channels: int, ndim: int, width: int = 32) -> None:
        super().__init__()
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        self.ndim = ndim
        self.reduce = conv(in_features, width, kernel_size=3, padding=1)
        self.out = conv(width, out_channels, kernel_size=3, padding=1)

    def forward(self, feats: Any, size: Sequence[int]) -> Any:
        h = F.relu(self.reduce(feats))
        mode = "bilinear" if self.ndim == 2 else "trilinear"
        h = F.interpolate(h, size=tuple(size), mode=mode, align_corners=False)
        return self.out(h)


def _unlabelled_windows(stack: xr.DataArray, *, size: int, n_patches: int, seed: int) -> np.ndarray:
    geom_shape = tuple(int(stack.sizes[d]) for d in stack.dims[1:])
    if any(s < size for s in geom_shape):
        raise DataError(f"windows of {size} cells do not fit in the stack's grid {geom_shape}")
    plan = plan_random(stack, int(n_patches), size=size, seed=seed)
    return extract_patches(stack, plan, dtype="float32")


def pretrain_reconstruction(
    model: Any,
    stack: xr.DataArray,
    *,
    size: int | None = None,
    n_patches: int = 512,
    mask_ratio: float = 0.5,
    noise: float = 0.1,
    epochs: int = 20,
    batch_size: int = 32,
    lr: float = 1e-3,
    device: Any = "auto",
    seed: int = 0,
    progress: bool = True,
) -> ReconstructionResult:
    """Self-supervised pre-training of a classifier's trunk on unlabelled target windows.

    Random windows of the target stack are normalised per element; a random share
    ``mask_ratio`` of their cells is blanked (set to the mean) and Gaussian noise of sd
    ``noise`` is added to the rest. The classifier's trunk (its feature stages) followed by a
    light decoder is trained with Adam to restore the blanked cells (MSE over blanked cells that
    hold data), which makes the trunk learn how elements co-vary in space in this area. The
    trunk keeps the learned weights; the classification head is untouched.

    Parameters
    ----------
    model : ProspectModel
        The classifier (modified in place), with ``in_channels`` equal to the stack's elements.
    stack : xarray.DataArray
        Target stack (``element``, y, x) (or (``element``, z, y, x)); windows are read lazily.
    size : int, optional
        Window edge (default ``model.window``).
    n_patches : int
        Number of random windows.
    mask_ratio : float
        Share of cells blanked per window (0 < mask_ratio < 1).
    noise : float
        Sd of the Gaussian noise added to the visible cells (normalised units).
    epochs, batch_size, lr : optional
        Adam training settings.
    device : str or torch.device
        ``"auto"`` uses CUDA when present.
    seed : int
        Seeds window placement, masks, noise, shuffling and the decoder's initial weights.
    progress : bool
        Show a tqdm bar over epochs.

    Returns
    -------
    ReconstructionResult
    """
    if not 0 < mask_ratio < 1:
        raise XProspectError(f"mask_ratio must be in (0, 1); got {mask_ratio!r}")
    if "element" not in stack.dims:
        raise DataError(f"the stack needs an 'element' dimension; it has {tuple(stack.dims)}")
    n_el = int(stack.sizes["element"])
    if getattr(model, "in_channels", n_el) != n_el:
        raise ModelCardError(
            f"the model takes {model.in_channels} elements; the stack has {n_el} "
            f"({[str(e) for e in stack['element'].values]})"
        )
    size = int(size if size is not None else (getattr(model, "window", None) or 0))
    if size < 1:
        raise XProspectError("give size= (the model has no window)")
    windows = _unlabelled_windows(stack, size=size, n_patches=n_patches, seed=seed)
    stats = _loop.ChannelStats()
    stats.update(windows, None)
    mean, std, _ = stats.result()
    dev = resolve_device(device)
    ndim = windows.ndim - 2
    trunk = _trunk_name(model)
    module = model.get_submodule(trunk)
    captured: dict[str, Any] = {}
    hook = module.register_forward_hook(lambda _m, _i, out: captured.__setitem__("f", out))
    try:
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(int(seed))
            model.to(dev)
            model.eval()  # probe the trunk's width without touching batch-norm statistics
            with torch.no_grad():
                model(torch.zeros((2, n_el, *windows.shape[2:]), device=dev))
            model.train()
            decoder = _Decoder(int(captured["f"].shape[1]), n_el, ndim).to(dev)
            trunk_params = [
                p
                for n, p in model.named_parameters()
                if n == trunk or n.startswith(trunk + ".") or _before(model, n, trunk)
            ]
            params = trunk_params + list(decoder.parameters())
            data = torch.utils.data.TensorDataset(torch.from_numpy(windows))
            loader = _loop.make_loader(
                data, batch_size=batch_size, shuffle=True, seed=seed, device=dev
            )
            mean_t = _loop.as_tensor_list(mean, dev)
            std_t = _loop.as_tensor_list(std, dev)
            gen = torch.Generator(device=dev)
            gen.manual_seed(int(seed) + 1)
            base = {"sum": 0.0, "n": 0}  # MSE of predicting the mean, this epoch

            def batch_loss(batch: Any) -> _loop.BatchLoss:
                (xb,) = batch
                if xb.shape[0] < 2:
                    return None
                xb = xb.to(dev, non_blocking=True)
                valid = torch.isfinite(xb)
                x = _loop.normalise_batch(xb, mean_t, std_t)
                keep = torch.rand(x.shape[0], 1, *x.shape[2:], generator=gen, device=dev)
                blank = (keep < mask_ratio).expand_as(x)
                jitter = noise * torch.randn(x.shape, generator=gen, device=dev)
                x_in = torch.where(blank, torch.zeros_like(x), x + jitter)
                model(x_in)
                recon = decoder(captured["f"], x.shape[2:])
                sel = blank & valid
                n_sel = sel.sum().clamp_min(1)
                base["sum"] += float(((x**2) * sel).sum() / n_sel) * xb.shape[0]
                base["n"] += int(xb.shape[0])
                return ((recon - x) ** 2 * sel).sum() / n_sel, int(xb.shape[0])

            def evaluate(_epoch: int) -> dict[str, float]:
                out = {"baseline": base["sum"] / max(base["n"], 1)}
                base.update(sum=0.0, n=0)
                return out

            rec = get_recipe("reconstruction").replace(
                lr=lr, batch_size=batch_size, epochs=epochs or None
            )
            run = _loop.train_epochs(
                model,
                params,
                rec,
                epochs=epochs,
                batches=lambda _epoch: loader,
                batch_loss=batch_loss,
                evaluate=evaluate,
                desc="reconstruct",
                progress=progress,
            )
            rows = run.rows
    finally:
        hook.remove()
    model.to("cpu")
    model.eval()
    decoder.to("cpu").eval()
    model.card = {
        "pretraining": {
            "kind": "reconstruction",
            "elements": [str(e) for e in stack["element"].values],
            "n_patches": len(windows),
            "size": size,
            "mask_ratio": float(mask_ratio),
            "noise": float(noise),
            "epochs": int(epochs),
            "trunk": trunk,
            "seed": int(seed),
            "final_loss": rows[-1]["loss"] if rows else math.nan,
        }
    }
    return ReconstructionResult(
        model=model, decoder=decoder, history=pd.DataFrame(rows), trunk=trunk, mean=mean, std=std
    )


def _before(model: Any, param_name: str, trunk: str) -> bool:
    """Tell whether the parameter's top-level module is registered before the trunk's."""
    children = [n for n, _ in model.named_children()]
    top, top_trunk = param_name.split(".")[0], trunk.split(".")[0]
    if top not in children or top_trunk not in children:
        return False
    return children.index(top) < children.index(top_trunk)


# --------------------------------------------------------------------------------------------


def _source_state(source: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state dict, card) of a model, FitResult, ReconstructionResult, checkpoint or mapping."""
    if isinstance(source, str | Path):
        payload = read_checkpoint(source)
        return dict(payload["state_dict"]), dict(payload.get("card") or {})
    src = getattr(source, "model", source)
    if isinstance(src, nn.Module):
        return dict(src.state_dict()), dict(getattr(src, "card", {}) or {})
    if isinstance(src, Mapping):
        return dict(src), {}
    raise XProspectError(
        f"source must be a model, a fit result, a checkpoint path or a state dict; got "
        f"{type(source).__name__}"
    )


def fine_tune(
    model: Any,
    train: Any,
    *,
    source: Any = None,
    freeze: int | str | Sequence[str] | None = None,
    adapt_mode: str = "mean",
    **fit_kwargs: Any,
) -> FitResult:
    """Fine-tune a (pre-trained) classifier on a target area's windows.

    Parameters
    ----------
    model : ProspectModel
        The network to train on the target. Either it already holds pre-trained weights
        (e.g. ``pretrain(...).model`` when the elements are the same), or give ``source``.
    train : PatchSet or torch Dataset
        Target windows (few deposits).
    source : model, FitResult, ReconstructionResult, checkpoint path or state dict, optional
        Pre-trained weights loaded into ``model`` first with
        :func:`~xprospect.models.weights.load_compatible_state_dict`: matching tensors are
        copied, the first convolution is adapted when the number of elements differs, and
        tensors that do not fit (e.g. a head with another number of classes) are skipped.
    freeze : int, str or list of str, optional
        Layers kept fixed during fine-tuning (names, or the number of leading stages; see
        :func:`~xprospect.models.weights.freeze`). Unfrozen again after training.
    adapt_mode : {"mean", "cycle"}
        How the first convolution is adapted to another number of elements.
    **fit_kwargs
        Passed to :func:`fit` (recipe, epochs, lr, validation, seed, ...). Fine-tuning usually
        wants a smaller ``lr`` than training from scratch.

    Returns
    -------
    FitResult
        Its card holds ``"transfer"``: the source's lineage, the load report and what was frozen.
    """
    report: dict[str, Any] | None = None
    source_card: dict[str, Any] = dict(getattr(model, "card", {}) or {})
    if source is not None:
        state, source_card = _source_state(source)
        report = load_compatible_state_dict(model, copy.copy(state), adapt_mode=adapt_mode)
    lineage = source_card.get("pretraining") or {
        k: source_card.get(k) for k in ("elements", "data_hash") if k in source_card
    }
    frozen: list[str] = []
    if freeze is not None:
        frozen = freeze_layers(model, freeze)
    try:
        result = fit(model, train, **fit_kwargs)
    finally:
        if frozen:
            unfreeze(model)
            model.eval()
    result.model.card["transfer"] = {
        "source": lineage or None,
        "load_report": None
        if report is None
        else {
            "loaded": len(report["loaded"]),
            "adapted": report["adapted"],
            "skipped": sorted(report["skipped"]),
            "missing": len(report["missing"]),
        },
        "frozen": frozen,
    }
    return result
