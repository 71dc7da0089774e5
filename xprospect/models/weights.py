"""Weight surgery: load compatible weights, adapt the first convolution, freeze and unfreeze.

:func:`load_compatible_state_dict` loads into a model every tensor of another model's state dict
whose name and shape match (a torchvision or xprospect ResNet, a network pre-trained on another
area or on a synthetic world), adapts the first convolution when the number of input elements
differs (:func:`adapt_first_conv`), and skips, and reports, tensors that cannot fit, typically
a 1000-class head loaded into a 2-class model. :func:`freeze` and :func:`unfreeze` choose what a
fine-tuning run trains; frozen batch norms stay in eval mode (their running statistics are part of
what was transferred). The fine-tuning loop lives in :mod:`xprospect.train.transfer`; this
module was ``xprospect.models.transfer`` before (that name still works, with a deprecation
warning).
"""

from __future__ import annotations

import logging
import types
from collections.abc import Mapping, Sequence
from typing import Any

from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError

torch = import_torch()
nn = torch.nn

__all__ = [
    "adapt_first_conv",
    "first_conv_name",
    "freeze",
    "load_compatible_state_dict",
    "unfreeze",
]

logger = logging.getLogger(__name__)

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def adapt_first_conv(weight: torch.Tensor, in_channels: int, *, mode: str = "mean") -> torch.Tensor:
    """Adapt a first-convolution weight ``(out, in, *kernel)`` to ``in_channels`` inputs.

    Parameters
    ----------
    weight : torch.Tensor
        Convolution weight with the source's number of input channels on axis 1.
    in_channels : int
        Number of input channels wanted.
    mode : {"mean", "cycle"}, default "mean"
        ``"mean"``: every new channel gets the mean filter over the old channels.
        ``"cycle"``: as timm's ``adapt_input_conv``: the old channels summed when
        ``in_channels`` is 1, else repeated in turn and cut to ``in_channels``. The result is
        scaled by ``old / in_channels``; with ``"mean"`` (and with ``"cycle"`` when
        ``in_channels`` is 1 or a multiple of the old count) a constant input then gives the
        same response as before.

    Returns
    -------
    torch.Tensor
        A new tensor ``(out, in_channels, *kernel)`` of the same dtype and device; a copy of
        ``weight`` when the channel count already matches.

    Examples
    --------
    >>> import torch
    >>> w = torch.randn(64, 3, 7, 7)
    >>> adapt_first_conv(w, 8).shape
    torch.Size([64, 8, 7, 7])
    >>> torch.allclose(adapt_first_conv(w, 8).sum(1), w.sum(1), atol=1e-5)
    True
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() < 3:
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight)
        raise ModelCardError(f"a convolution weight (out, in, *kernel) is needed; got {shape}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ModelCardError(f"in_channels must be a positive integer; got {in_channels!r}")
    old = weight.shape[1]
    if in_channels == old:
        return weight.detach().clone()
    w = weight.detach()
    if mode == "mean":
        reps = [1] * w.dim()
        reps[1] = in_channels
        new = w.mean(dim=1, keepdim=True).repeat(*reps)
    elif mode == "cycle" and in_channels == 1:
        new = w.sum(dim=1, keepdim=True) / old
    elif mode == "cycle":
        reps = [1] * w.dim()
        reps[1] = -(-in_channels // old)
        new = w.repeat(*reps)[:, :in_channels].clone()
    else:
        raise ModelCardError(f"adapt_first_conv mode must be 'mean' or 'cycle'; got {mode!r}")
    return new * (old / in_channels)


def first_conv_name(model: Any) -> str | None:
    """Name of the first convolution's weight in ``model.state_dict()`` (``None`` if none).

    "First" is the order in which modules are registered, which is input order for every
    xprospect network (and torchvision's).
    """
    for name, module in model.named_modules():
        if isinstance(module, _CONVS):
            return f"{name}.weight" if name else "weight"
    return None


def _strip_wrappers(state: dict[str, Any]) -> dict[str, Any]:
    # DataParallel and torch.compile prefix every key; drop a prefix shared by all keys.
    for prefix in _WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _as_state(source: Any) -> dict[str, Any]:
    if isinstance(source, nn.Module):
        return dict(source.state_dict())
    if not isinstance(source, Mapping):
        raise ModelCardError(f"expected a state dict (mapping of tensors); got {type(source)}")
    bad = [k for k, v in source.items() if not isinstance(v, torch.Tensor)]
    if bad:
        msg = (
            f"the state dict holds non-tensor entries such as {bad[0]!r} "
            f"({type(source[bad[0]]).__name__}); pass the model's weights, e.g. "
            f"checkpoint['model'], not the whole checkpoint"
        )
        raise ModelCardError(msg)
    return _strip_wrappers({str(k): v for k, v in source.items()})


def load_compatible_state_dict(
    model: Any,
    state_dict: Mapping[str, Any] | Any,
    *,
    adapt_input: bool = True,
    strict_shapes: bool = False,
    adapt_mode: str = "mean",
) -> dict[str, Any]:
    """Load every tensor of ``state_dict`` that fits ``model``, and report what happened.

    Parameters
    ----------
    model : torch.nn.Module
        The model to load into (modified in place).
    state_dict : mapping of str to torch.Tensor, or torch.nn.Module
        Source weights, e.g. ``other.state_dict()``. Key prefixes added by ``DataParallel``
        (``module.``) or ``torch.compile`` (``_orig_mod.``) are dropped.
    adapt_input : bool, default True
        When the first convolution's input channels differ (e.g. 3 RGB channels into 8
        elements), adapt it with :func:`adapt_first_conv` instead of skipping it.
    strict_shapes : bool, default False
        Raise instead of skipping when a tensor present in both has a shape that cannot be
        loaded or adapted.
    adapt_mode : {"mean", "cycle"}, default "mean"
        How the first convolution is adapted; see :func:`adapt_first_conv`.

    Returns
    -------
    dict
        JSON-able report: ``loaded`` (keys copied as they are), ``adapted`` (key ->
        ``[old_in, new_in]``), ``skipped`` (key -> ``{"source": shape, "model": shape}``),
        ``missing`` (model keys the source lacks, left as they were) and ``unexpected``
        (source keys the model lacks).

    Raises
    ------
    ModelCardError
        When no parameter or buffer matches (wrong architecture), or, with ``strict_shapes``,
        when a shape does not fit.

    Examples
    --------
    >>> from xprospect.models import resnet18
    >>> src = resnet18(in_channels=3, num_classes=1000, seed=0)
    >>> dst = resnet18(in_channels=8, num_classes=2, seed=1)
    >>> report = load_compatible_state_dict(dst, src.state_dict())
    >>> report["adapted"], sorted(report["skipped"])
    ({'conv1.weight': [3, 8]}, ['fc.bias', 'fc.weight'])
    """
    source = _as_state(state_dict)
    target = model.state_dict()
    first = first_conv_name(model)
    merged = dict(target)
    report: dict[str, Any] = {
        "loaded": [],
        "adapted": {},
        "skipped": {},
        "missing": [],
        "unexpected": sorted(set(source) - set(target)),
    }
    for key, dst in target.items():
        if key not in source:
            report["missing"].append(key)
            continue
        src = source[key]
        if tuple(src.shape) == tuple(dst.shape):
            merged[key] = src.detach().to(dtype=dst.dtype, device=dst.device)
            report["loaded"].append(key)
            continue
        adaptable = (
            adapt_input
            and key == first
            and src.dim() == dst.dim()
            and src.dim() >= 3
            and src.shape[0] == dst.shape[0]
            and src.shape[2:] == dst.shape[2:]
        )
        if adaptable:
            new = adapt_first_conv(src, int(dst.shape[1]), mode=adapt_mode)
            merged[key] = new.to(dtype=dst.dtype, device=dst.device)
            report["adapted"][key] = [int(src.shape[1]), int(dst.shape[1])]
            continue
        if strict_shapes:
            msg = (
                f"{key!r} has shape {tuple(src.shape)} in the state dict but "
                f"{tuple(dst.shape)} in {type(model).__name__}"
            )
            raise ModelCardError(msg)
        report["skipped"][key] = {"source": list(src.shape), "model": list(dst.shape)}

    useful = [
        k for k in [*report["loaded"], *report["adapted"]] if not k.endswith("num_batches_tracked")
    ]
    if not useful:
        src_keys = ", ".join(list(source)[:4]) or "none"
        dst_keys = ", ".join(list(target)[:4]) or "none"
        msg = (
            f"no tensor of the state dict fits {type(model).__name__}: it holds keys such as "
            f"{src_keys} while the model expects {dst_keys}; is it the same architecture?"
        )
        raise ModelCardError(msg)
    model.load_state_dict(merged, strict=True)
    logger.info(
        "loaded %d tensors into %s, adapted %s, skipped %s, %d missing, %d unexpected",
        len(report["loaded"]),
        type(model).__name__,
        report["adapted"] or "none",
        sorted(report["skipped"]) or "none",
        len(report["missing"]),
        len(report["unexpected"]),
    )
    return report


def _stage_names(model: Any) -> list[tuple[str, ...]]:
    stages = getattr(model, "stages", None)
    if stages:
        return [tuple(s) for s in stages]
    # Generic networks: top-level children holding parameters, in order, except the last
    # (taken to be the head).
    with_params = [n for n, m in model.named_children() if any(True for _ in m.parameters())]
    return [(n,) for n in with_params[:-1]]


def _eval_only_train(self: Any, mode: bool = True) -> Any:
    # Bound onto frozen batch norms so that model.train() leaves them in eval mode.
    nn.Module.train(self, False)
    return self


def freeze(model: Any, layers: Sequence[str] | str | int) -> list[str]:
    """Stop training part of ``model``: no gradients, and batch norms fixed in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        The model (modified in place).
    layers : int, str or sequence of str
        Names of submodules to freeze (top-level children such as ``"conv1"``, ``"layer1"``,
        or dotted paths such as ``"layer3.0"``), or the number of leading stages to freeze
        from ``model.stages``. For a :class:`~xprospect.models.resnet.ResNet` the stages are
        the stem (``conv1``, ``bn1``), ``layer1`` ... ``layer4``: ``freeze(model, 2)`` freezes
        the stem and ``layer1``, ``freeze(model, 5)`` everything but ``fc``. For a
        :class:`~xprospect.models.cnn.SmallCNN` they are its convolution blocks. Models without
        ``stages`` use their top-level children holding parameters, except the last.

    Returns
    -------
    list of str
        The names of the submodules frozen.

    Notes
    -----
    Frozen batch norms stay in eval mode through later ``model.train()`` calls, so their
    running statistics are not updated by fine-tuning; :func:`unfreeze` undoes both.

    Examples
    --------
    >>> from xprospect.models import resnet18
    >>> net = resnet18(in_channels=4, seed=0)
    >>> freeze(net, ["conv1", "bn1", "layer1"])
    ['conv1', 'bn1', 'layer1']
    >>> net.layer1[0].bn1.train().training
    False
    """
    if isinstance(layers, bool):
        raise ModelCardError(f"layers must be names or a number of stages; got {layers!r}")
    if isinstance(layers, int):
        stages = _stage_names(model)
        if not 0 <= layers <= len(stages):
            msg = (
                f"cannot freeze {layers} stages of {type(model).__name__}: it has "
                f"{len(stages)} ({', '.join('+'.join(s) for s in stages)})"
            )
            raise ModelCardError(msg)
        names = [n for stage in stages[:layers] for n in stage]
    else:
        names = [layers] if isinstance(layers, str) else [str(n) for n in layers]
    modules = []
    for name in names:
        try:
            modules.append(model.get_submodule(name))
        except AttributeError as err:
            children = ", ".join(n for n, _ in model.named_children())
            msg = f"{type(model).__name__} has no submodule {name!r}; its children are {children}"
            raise ModelCardError(msg) from err
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(False)
        for m in module.modules():
            if isinstance(m, _NORMS):
                m.train = types.MethodType(_eval_only_train, m)
                nn.Module.train(m, False)
    logger.info("froze %s of %s", names, type(model).__name__)
    return names


def unfreeze(model: Any) -> Any:
    """Undo :func:`freeze`: every parameter trainable, batch norms follow ``model.training``.

    Parameters
    ----------
    model : torch.nn.Module
        The model (modified in place).

    Returns
    -------
    torch.nn.Module
        ``model``.
    """
    for p in model.parameters():
        p.requires_grad_(True)
    for m in model.modules():
        if isinstance(m, _NORMS) and "train" in m.__dict__:
            del m.train
            nn.Module.train(m, model.training)
    return model
