"""Torch modules behind the uncertainty and attribution maps (loaded only when a network is used).

Both are scored by :func:`xprospect.score.score` like any model, so they are stitched back on
the grid, chunk by chunk, exactly as the model's own map:

* :func:`dropout_pass` copies a network and replaces each of its dropout layers by a
  :class:`FixedMaskDropout`: one Monte Carlo dropout pass draws one thinned network (a mask
  over the features of each dropout layer, from the pass's seed), the same at every cell;
* :class:`IntegratedGradients` wraps a window or dense network so that scoring a window
  returns the integrated gradient of the network's score with respect to one element of it.

Each pass or element is a distinct model for ``score`` (its weights or config differ), so dask
never merges their graphs. Both live in the submitting process: a process-based
``dask.distributed`` cluster rebuilds scored models from their registry config, which does not
know these wrappers, and refuses them loudly (threads and the default scheduler are fine).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError

torch = import_torch()
nn = torch.nn
# the base class through a variable: torch is imported at run time (see xprospect._torch)
_Module: Any = nn.Module

__all__ = ["DROPOUT_TYPES", "FixedMaskDropout", "IntegratedGradients", "dropout_pass"]

#: Dropout layers replaced in Monte Carlo dropout passes.
DROPOUT_TYPES: tuple[type, ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


class FixedMaskDropout(_Module):
    """Dropout with one mask over the features (axis 1), fixed by a seed, active in eval mode.

    The mask is drawn from ``(seed, pass, layer)`` alone and broadcast over the batch and the
    spatial axes: every window and every chunk of a pass sees the same thinned network, so a
    pass's map is the map of one network drawn from the dropout posterior (Gal & Ghahramani,
    2016: dropping a feature drops the matching weights of the next layer) and does not depend
    on chunking, batching or thread order.

    Parameters
    ----------
    p : float
        Drop probability, in [0, 1).
    seed, index, layer : int
        The draw: the user's seed, the pass number and the layer's position in the network.
    """

    def __init__(self, p: float, seed: int, index: int, layer: int) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ModelCardError(f"dropout probability must be in [0, 1); got {p!r}")
        self.p = float(p)
        # a persistent buffer: the pass is part of the state dict, so every pass has its
        # own digest (and dask key) in score
        self.register_buffer("mc_key", torch.tensor([seed, index, layer], dtype=torch.int64))
        self._masks: dict[int, Any] = {}

    def _mask(self, n: int) -> Any:
        mask = self._masks.get(n)
        if mask is None:
            key = [int(v) for v in self.mc_key.tolist()]
            state = np.random.SeedSequence(key).generate_state(2)
            gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
            keep = torch.rand(n, generator=gen) >= self.p
            mask = keep.to(torch.float32) / (1.0 - self.p)
            self._masks[n] = mask
        return mask

    def forward(self, x: Any) -> Any:
        """Multiply the features of ``x`` (``(B, C, ...)``) by the pass's mask."""
        if self.p == 0.0:
            return x
        m = self._mask(int(x.shape[1])).to(device=x.device, dtype=x.dtype)
        return x * m.reshape((1, -1) + (1,) * (x.dim() - 2))


def dropout_layers(model: Any) -> list[tuple[str, Any]]:
    """Dropout layers of ``model`` (name, module) with a drop probability above 0."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, DROPOUT_TYPES) and float(getattr(m, "p", 0.0)) > 0.0
    ]


def dropout_pass(model: Any, *, seed: int, index: int, rate: float | None = None) -> Any:
    """Copy of ``model`` whose dropout layers draw the fixed masks of pass ``index``.

    Parameters
    ----------
    model : torch.nn.Module
        A network holding dropout layers (:data:`DROPOUT_TYPES`).
    seed : int
        Seed of the Monte Carlo run.
    index : int
        Pass number.
    rate : float, optional
        Drop probability of every layer (default: each layer's own ``p``).

    Returns
    -------
    torch.nn.Module
        A deep copy (the caller's model is untouched) in eval mode.
    """
    layers = dropout_layers(model)
    if rate is None and not layers:
        raise ModelCardError(
            f"the {type(model).__name__} holds no dropout layer with p > 0, so Monte Carlo "
            "dropout would repeat one map: train it with dropout (e.g. SmallCNN(dropout=0.2)) "
            "or pass rate= to use its dropout layers at another probability"
        )
    if rate is not None and not any(isinstance(m, DROPOUT_TYPES) for m in model.modules()):
        raise ModelCardError(f"the {type(model).__name__} holds no dropout layer")
    out = copy.deepcopy(model).eval()
    k = 0
    for _, m in list(out.named_modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, DROPOUT_TYPES):
                p = float(getattr(child, "p", 0.0)) if rate is None else float(rate)
                setattr(m, child_name, FixedMaskDropout(p, seed, index, k))
                k += 1
    return out


class IntegratedGradients(_Module):
    """A network whose window score is the integrated gradient of one input element.

    For a window ``x`` (normalised as the network sees it) and a baseline window ``x0``
    (each element constant at its baseline value), the attribution of element ``e`` is
    ``sum over the window of (x_e - x0_e) * mean_k dF/dx_e (x0 + a_k (x - x0))`` with
    ``a_k`` the midpoints of ``steps`` equal intervals of [0, 1] (Sundararajan et al., 2017).
    Summed over elements it approaches ``F(x) - F(x0)`` (completeness).

    Parameters
    ----------
    model : ProspectModel
        A window network (``score_windows``) or a dense one (scored through windows of its
        context).
    element : int
        Index of the attributed element.
    steps : int
        Riemann steps of the path integral.
    baseline : sequence of float
        Baseline value of every element, in the network's (normalised) units.
    """

    dense = False

    def __init__(self, model: Any, element: int, steps: int, baseline: Any) -> None:
        super().__init__()
        self.inner = model
        self.element = int(element)
        self.steps = int(steps)
        base = np.asarray(baseline, dtype="float32").reshape(-1)
        self.register_buffer("baseline", torch.as_tensor(base))
        self.ndim = getattr(model, "ndim", None)
        self.in_channels = int(getattr(model, "in_channels", base.size))
        window = getattr(model, "window", None)
        if window is None and getattr(model, "dense", False):
            before, after = (int(c) for c in model.context)
            window = before + after + 1
        self.window = window
        self.context = tuple(getattr(model, "context", (0, 0)))
        self.task = getattr(model, "task", "classifier")
        self.card = dict(getattr(model, "card", None) or {})
        inner_cfg = getattr(model, "config", None) or {"name": type(model).__name__}
        self.config = {
            "name": "integrated_gradients",
            "kwargs": {"model": inner_cfg, "element": self.element, "steps": self.steps},
        }

    def score_windows(self, x: Any) -> Any:
        """Integrated gradient of element ``element`` for each window ``(B, C, *window)``."""
        # scoring runs under inference mode; the path integral needs autograd on the input,
        # in float32 (mixed precision on CUDA would round the small gradient steps)
        with (
            torch.inference_mode(False),
            torch.enable_grad(),
            torch.autocast(device_type=x.device.type, enabled=False),
        ):
            x = x.clone().float()
            shape = (1, -1) + (1,) * (x.dim() - 2)
            x0 = self.baseline.to(device=x.device, dtype=x.dtype).reshape(shape).expand_as(x)
            delta = x - x0
            total = torch.zeros_like(x[:, self.element])
            for k in range(self.steps):
                a = (k + 0.5) / self.steps
                xi = (x0 + a * delta).detach().requires_grad_(True)
                y = self.inner.score_windows(xi)
                (g,) = torch.autograd.grad(y.sum(), xi)
                total = total + g[:, self.element]
            attr = (delta[:, self.element] * total / self.steps).flatten(1).sum(dim=1)
        return attr.detach()

    def forward(self, x: Any) -> Any:
        """Return :meth:`score_windows` of ``x``."""
        return self.score_windows(x)
