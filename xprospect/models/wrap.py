"""Bring your own torch model: :func:`wrap` states the contract a plain ``nn.Module`` meets.

xprospect trains (:func:`xprospect.train.fit`), scores (:func:`xprospect.score.score`) and
checkpoints (:func:`xprospect.train.save_checkpoint`) networks that follow the contract of
:mod:`xprospect.models.base`. A user's own ``torch.nn.Module`` follows it once wrapped:

``kind="window"``
    The module is a window classifier: it takes ``(B, C, *window)`` windows (``C``
    elements, ``window`` cells along each spatial axis) and returns ``(B, K)`` class logits
    (``output="logits"``, the default) or class probabilities (``output="probabilities"``);
    ``K == 1`` is one logit (probability) of the positive class. The score of a window is
    the probability of ``positive_class``, attributed to the window's centre cell.
``kind="dense"``
    The module maps a tile to a map: ``(B, C, *spatial)`` in, ``(B, K, *spatial_out)`` out,
    where ``spatial_out`` equals ``spatial`` (a "same"-padded network) or ``spatial - 2 *
    context`` (a "valid" network). ``context`` is the number of cells on each side the value
    at one cell depends on (its receptive field's half-width). Scoring runs the module on
    whole chunks with that halo, so every cell gets the score of its full neighbourhood;
    training takes the centre cell of each window.

The wrapped model records the import path of the module's class and ``module_kwargs`` (its
constructor arguments, JSON types only), so that a checkpoint stores only weights and JSON:
:func:`xprospect.train.load_checkpoint` rebuilds it with ``weights_only=True`` from a class
the caller allows explicitly (``allow=[MyModule]``), never by unpickling code.

See ``docs/models.md`` for a complete example.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError, XProspectError
from xprospect.models.base import ProspectModel
from xprospect.models.registry import register

torch = import_torch()
nn = torch.nn

__all__ = ["WRAPPED", "WrappedModel", "class_path", "rebuild", "require_contract", "wrap"]

#: The registry name of wrapped models (``config["name"]``).
WRAPPED = "wrapped"
_KINDS = ("window", "dense")
_OUTPUTS = ("logits", "probabilities")


def class_path(cls: type) -> str:
    """Return the import path ``"package.module:QualName"`` of a class.

    Parameters
    ----------
    cls : type
        A class.

    Returns
    -------
    str

    Examples
    --------
    >>> class_path(dict)
    'builtins:dict'
    """
    return f"{cls.__module__}:{cls.__qualname__}"


class WrappedModel(ProspectModel):
    """A user's ``torch.nn.Module`` behind xprospect's model contract (made by :func:`wrap`).

    Attributes
    ----------
    module : torch.nn.Module
        The wrapped module (its weights are this model's, under the prefix ``module.``).
    kind : {"window", "dense"}
        What the module computes (see :mod:`xprospect.models.wrap`).
    output : {"logits", "probabilities"}
        What the module returns.
    positive_class : int
        The class whose probability is the score.
    """

    def __init__(
        self,
        module: Any,
        *,
        kind: str,
        window: int | None,
        context: tuple[int, int],
        positive_class: int,
        output: str,
        ndim: int,
        in_channels: int,
        module_kwargs: Mapping[str, Any],
    ) -> None:
        super().__init__()
        self.module = module
        self.kind = kind
        self.output = output
        self.positive_class = int(positive_class)
        self.dense = kind == "dense"
        self.ndim = int(ndim)
        self.in_channels = int(in_channels)
        self.window = window
        self.context = (int(context[0]), int(context[1]))
        self.config = {
            "name": WRAPPED,
            "kwargs": {
                "module_class": class_path(type(module)),
                "module_kwargs": dict(module_kwargs),
                "kind": kind,
                "window": window,
                "context": list(self.context),
                "positive_class": self.positive_class,
                "output": output,
                "ndim": self.ndim,
                "in_channels": self.in_channels,
            },
        }

    def extra_repr(self) -> str:
        """Name the kind, window and context in ``repr``."""
        return f"kind={self.kind!r}, window={self.window}, context={self.context}"

    # -- the module's output as logits (training) and probabilities (scoring) ---------------

    def _logits(self, out: Any) -> Any:
        """Class logits from the module's output along dim 1 (log-probabilities work too)."""
        if self.output == "logits":
            return out
        p = out.clamp(1e-7, 1 - 1e-7)
        return torch.logit(p) if out.shape[1] == 1 else torch.log(p)

    def _probability(self, out: Any) -> Any:
        """Probability of the positive class from the module's output along dim 1."""
        k = out.shape[1]
        if self.output == "probabilities":
            return out[:, 0] if k == 1 else out[:, self.positive_class]
        if k == 1:
            p = torch.sigmoid(out[:, 0])
            return p if self.positive_class == 1 else 1 - p
        return torch.softmax(out, dim=1)[:, self.positive_class]

    def _run(self, x: Any) -> Any:
        out = self.module(x)
        if not isinstance(out, torch.Tensor):
            raise ModelCardError(
                f"{type(self.module).__name__} returned {type(out).__name__}; the wrapped "
                "module must return one tensor"
            )
        if out.dim() == 1 and self.kind == "window":
            out = out[:, None]
        want = 2 if self.kind == "window" else 2 + int(self.ndim or 2)
        if out.dim() != want or out.shape[0] != x.shape[0]:
            shape = "(B, K)" if self.kind == "window" else "(B, K, " + ", ".join("HW") + ")"
            raise ModelCardError(
                f"{type(self.module).__name__} (kind={self.kind!r}) returned shape "
                f"{tuple(out.shape)} for input {tuple(x.shape)}; expected {shape}"
            )
        if out.shape[1] <= self.positive_class and out.shape[1] > 1:
            raise ModelCardError(
                f"{type(self.module).__name__} returns {out.shape[1]} classes; "
                f"positive_class={self.positive_class} is not one of them"
            )
        return out

    def _valid(self, out: Any, spatial: Sequence[int]) -> Any:
        """Crop a dense output to the cells whose whole context lies inside the input."""
        before, after = self.context
        got = tuple(out.shape[2:])
        if got == tuple(spatial):
            sl = tuple(slice(before, n - after) for n in spatial)
            return out[(slice(None), slice(None), *sl)]
        if got == tuple(n - before - after for n in spatial):
            return out
        raise ModelCardError(
            f"{type(self.module).__name__} maps spatial size {tuple(spatial)} to {got}; a dense "
            f"module must keep it ('same' padding) or shrink it by the context {self.context} "
            "('valid' convolutions)"
        )

    def forward(self, x: Any) -> Any:
        """Class logits ``(B, K)`` of windows ``(B, C, *window)`` (what training uses)."""
        out = self._run(x)
        if self.kind == "window":
            return self._logits(out)
        valid = self._valid(out, x.shape[2:])
        centre = tuple(n // 2 for n in valid.shape[2:])
        return self._logits(valid[(slice(None), slice(None), *centre)])

    def score_windows(self, x: Any) -> Any:
        """Probability of the positive class for windows ``(B, C, *window)`` -> ``(B,)``."""
        out = self._run(x)
        if self.kind == "dense":
            valid = self._valid(out, x.shape[2:])
            centre = tuple(n // 2 for n in valid.shape[2:])
            out = valid[(slice(None), slice(None), *centre)]
        return self._probability(out)

    def score_dense(self, x: Any) -> Any:
        """Probability of the positive class at every cell of a valid pass -> ``(B, *out)``."""
        if self.kind != "dense":
            return super().score_dense(x)
        valid = self._valid(self._run(x), x.shape[2:])
        return self._probability(valid)


def wrap(
    module: Any,
    *,
    kind: str,
    window: int | None = None,
    context: int | tuple[int, int] | None = None,
    positive_class: int = 1,
    output: str = "logits",
    in_channels: int = 0,
    ndim: int = 2,
    module_kwargs: Mapping[str, Any] | None = None,
) -> WrappedModel:
    """Wrap a plain ``torch.nn.Module`` so that ``fit``, ``score`` and checkpoints accept it.

    Parameters
    ----------
    module : torch.nn.Module
        The network (not already an xprospect model).
    kind : {"window", "dense"}
        ``"window"``: ``(B, C, *window)`` -> ``(B, K)``; ``"dense"``: ``(B, C, *spatial)`` ->
        ``(B, K, *spatial_out)`` (see :mod:`xprospect.models.wrap`).
    window : int, optional
        Window edge in cells: required for ``"window"``; for ``"dense"`` the training window
        (default ``2 * context + 1``).
    context : int or (before, after), optional
        Cells of context on each side the value at one cell needs: required for
        ``"dense"`` (the receptive field's half-width); for ``"window"`` it follows from the
        window (``window // 2``, ``window - 1 - window // 2``).
    positive_class : int
        The class whose probability is the score (1 = prospective, as the labels of
        :func:`xprospect.train.fit`).
    output : {"logits", "probabilities"}
        What the module returns along its class axis.
    in_channels : int
        Input elements the module takes (0: not checked).
    ndim : {2, 3}
        Spatial axes: 2 for (y, x) maps, 3 for (z, y, x) voxels.
    module_kwargs : mapping, optional
        The module's constructor arguments (JSON types), stored in checkpoints so that
        :func:`xprospect.train.load_checkpoint` can rebuild it (``type(module)(**kwargs)``).

    Returns
    -------
    WrappedModel

    Raises
    ------
    XProspectError
        For a module that is not a ``torch.nn.Module`` or already an xprospect model, an
        unknown ``kind`` or ``output``, a missing ``window`` or ``context``, or
        ``module_kwargs`` that are not JSON-able.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 5 * 5, 2))
    >>> m = wrap(net, kind="window", window=5)
    >>> tuple(m.score_windows(torch.zeros(4, 3, 5, 5)).shape), m.context
    ((4,), (2, 2))
    """
    if not isinstance(module, nn.Module):
        raise XProspectError(f"wrap() takes a torch.nn.Module; got {type(module).__name__}")
    if isinstance(module, ProspectModel):
        raise XProspectError(
            f"{type(module).__name__} is already an xprospect model; use it without wrap()"
        )
    if kind not in _KINDS:
        raise XProspectError(f"kind={kind!r}; expected one of {_KINDS}")
    if output not in _OUTPUTS:
        raise XProspectError(f"output={output!r}; expected one of {_OUTPUTS}")
    if ndim not in (2, 3):
        raise XProspectError(f"ndim={ndim!r}; expected 2 (y, x) or 3 (z, y, x)")
    if kind == "window":
        if window is None or int(window) < 1:
            raise XProspectError("wrap(kind='window') needs window= (the window edge in cells)")
        w = int(window)
        ctx = (w // 2, w - 1 - w // 2)
        if context is not None and tuple(_pair(context)) != ctx:
            raise XProspectError(
                f"context={context!r} does not match window={w}: a window's context is {ctx}"
            )
    else:
        if context is None:
            raise XProspectError(
                "wrap(kind='dense') needs context= (cells each side the value at one cell "
                "depends on: the half-width of the module's receptive field)"
            )
        ctx = _pair(context)
        if ctx[0] != ctx[1] or ctx[0] < 0:
            raise XProspectError(
                f"a dense module's context must be one non-negative int; got {context!r}"
            )
        w = int(window) if window is not None else 2 * ctx[0] + 1
        if w < 2 * ctx[0] + 1:
            raise XProspectError(
                f"window={w} is smaller than the module's context {ctx} needs ({2 * ctx[0] + 1})"
            )
    kwargs = dict(module_kwargs or {})
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError) as err:
        raise XProspectError(f"module_kwargs must hold JSON types only: {err}") from err
    return WrappedModel(
        module,
        kind=kind,
        window=w,
        context=ctx,
        positive_class=positive_class,
        output=output,
        ndim=ndim,
        in_channels=in_channels,
        module_kwargs=kwargs,
    )


def require_contract(model: Any, verb: str) -> None:
    """Refuse a plain ``torch.nn.Module`` (or anything else) that does not follow the contract.

    Parameters
    ----------
    model : object
        What was passed to ``verb``.
    verb : str
        The function asking (``"score"``, ``"fit"``), for the message.

    Raises
    ------
    ModelCardError
        For a module without ``score_windows`` (telling to wrap it) or any other object.
    """
    if hasattr(model, "score_windows"):
        return
    name = type(model).__name__
    if isinstance(model, nn.Module):
        raise ModelCardError(
            f"{verb}: {name} is a plain torch.nn.Module; wrap it first: "
            "xp.models.wrap(module, kind='window', window=...) for a module returning "
            "(B, K) logits of windows, or xp.models.wrap(module, kind='dense', context=...) "
            "for one returning (B, K, H, W) maps (see docs/models.md)"
        )
    raise ModelCardError(
        f"{verb}: a {name} is not a model: pass an xprospect model, a module wrapped by "
        "xp.models.wrap, or a fitted baseline"
    )


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (int(v), int(v))
    a, b = v
    return (int(a), int(b))


def rebuild(config: Mapping[str, Any], allow: Sequence[type]) -> WrappedModel:
    """Rebuild an (untrained) wrapped model from its config, from an allowed class only.

    Parameters
    ----------
    config : mapping
        A wrapped model's ``config`` (``{"name": "wrapped", "kwargs": {...}}``).
    allow : sequence of classes
        The module classes the caller trusts; the class named in the config must be one
        of them (compared by import path). Nothing is imported or unpickled.

    Returns
    -------
    WrappedModel

    Raises
    ------
    ModelCardError
        When the class is not allowed (naming it and how to allow it) or cannot be built
        from its ``module_kwargs``.
    """
    kw = dict(config.get("kwargs", {}))
    want = str(kw.get("module_class", "?"))
    by_path = {class_path(c): c for c in allow}
    if want not in by_path:
        raise ModelCardError(
            f"the checkpoint holds a wrapped {want}; pass its class in allow= "
            f"(load_checkpoint(path, allow=[{want.rsplit(':', 1)[-1]}])) to rebuild it: "
            "classes are never imported from a checkpoint"
        )
    cls = by_path[want]
    try:
        module = cls(**dict(kw.get("module_kwargs") or {}))
    except TypeError as err:
        raise ModelCardError(
            f"cannot build {want} from module_kwargs={kw.get('module_kwargs')!r}: {err}; "
            "pass module_kwargs= to wrap() when saving"
        ) from err
    return wrap(
        module,
        kind=str(kw["kind"]),
        window=kw.get("window"),
        context=tuple(kw.get("context", (0, 0))),  # type: ignore[arg-type]
        positive_class=int(kw.get("positive_class", 1)),
        output=str(kw.get("output", "logits")),
        in_channels=int(kw.get("in_channels", 0)),
        ndim=int(kw.get("ndim", 2)),
        module_kwargs=kw.get("module_kwargs") or {},
    )


@register(WRAPPED)
def _wrapped_from_registry(**kwargs: Any) -> WrappedModel:
    """Refuse to rebuild a wrapped module without an allow-list (see :func:`rebuild`)."""
    raise ModelCardError(
        f"a wrapped {kwargs.get('module_class', 'module')} cannot be rebuilt from the "
        "registry: load it with xprospect.train.load_checkpoint(path, allow=[YourModule]) "
        "(and score wrapped modules with the threaded scheduler, not worker processes)"
    )
