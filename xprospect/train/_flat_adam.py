"""Adam over one contiguous parameter buffer, for the small anomaly networks on the CPU.

Why not ``torch.optim.Adam(fused=True)``: for a network as small as the VAE (16 parameter
tensors, 1 500 weights) a training step is a few dozen small tensor operations whose dispatch
costs more than their arithmetic, and torch's optimiser adds its own per-step Python (step
hooks, profiling records, grad-mode wrappers, per-parameter state look-ups, ``zero_grad`` over
every tensor) around its one fused kernel. Here the parameters are made views of one flat
buffer, the gradients autograd leaves are gathered into another with one
``torch._foreach_copy_``, and a step is one call of torch's own fused Adam kernel
(``torch._fused_adam_`` / ``torch._fused_adamw_``) on a single tensor: the same update formula
as ``torch.optim.Adam(fused=True)``, element by element, so the weights match it up to float32
rounding. A whole VAE step (batch 512, one thread, CPU time, best of 5 on a loaded machine)
measured 3.06 ms with ``torch.optim``, 2.11 ms here, and 2.40 ms with the gradients kept as
views of the buffer (backward then adds into them in place, one more operation per parameter,
instead of handing its tensors over). In a whole VAE fit on a quiet machine that step saving
did not show (236.5k against 240.4k cells/s, ``asv_bench/benchmarks/training.py``), so the
gain that holds is the one below. Building a ``torch.optim`` optimiser also imports
``torch._dynamo`` the first time in a process, which a fit through this class never does: a
first one-epoch VAE fit on 3 600 cells in a fresh process took 0.09-0.12 s wall (0.04-0.05 s
CPU) here against 6.6-7.5 s wall (2.6-2.7 s CPU) through ``torch.optim`` (load average 9).

Contract (what :func:`flat_usable` checks, and what callers promise): every parameter is a
float32 CPU tensor that requires a gradient, and every one of them receives a gradient at
every step (a parameter left out of a step's graph counts as a zero gradient, where
``torch.optim`` would skip it). The anomaly trainers of :mod:`xprospect.train.anomaly` meet
it: their losses use every weight.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xprospect._torch import import_torch

torch = import_torch()

__all__ = ["ENABLED", "FlatAdam", "StepSchedule", "flat_usable"]

#: Trainers that ask for a flat optimiser get one (False: ``torch.optim``'s fused Adam, the
#: optimiser before this module; ``asv_bench/benchmarks/training.py`` compares the two).
ENABLED = True


def flat_usable(params: Iterable[Any]) -> bool:
    """Tell whether ``params`` can be trained by :class:`FlatAdam`.

    Parameters
    ----------
    params : iterable
        Parameters (parameter groups, as dicts, are not supported).

    Returns
    -------
    bool
        True when there is at least one and every one is a float32 CPU tensor requiring a
        gradient (always False while :data:`ENABLED` is False).
    """
    params = list(params)
    return (
        ENABLED
        and bool(params)
        and all(
            isinstance(p, torch.Tensor)
            and p.dtype == torch.float32
            and p.device.type == "cpu"
            and p.requires_grad
            for p in params
        )
    )


class FlatAdam:
    """Adam (or AdamW) over parameters living in one buffer, gradients gathered into another.

    Parameters
    ----------
    params : iterable of torch.nn.Parameter
        Float32 CPU parameters (see :func:`flat_usable`); repeated ones are taken once. Their
        values are copied into the buffer and each parameter becomes a view of it until
        :meth:`release`.
    lr : float
        Learning rate (``param_groups[0]["lr"]``, which a schedule may change).
    weight_decay : float
        L2 penalty added to the gradient (Adam) or decoupled decay (AdamW).
    decoupled : bool
        AdamW's decoupled weight decay.
    betas, eps : tuple of float, float
        Adam's moment decays and denominator floor (torch's defaults).
    """

    def __init__(
        self,
        params: Iterable[Any],
        *,
        lr: float,
        weight_decay: float = 0.0,
        decoupled: bool = False,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        unique: dict[int, Any] = {}
        for p in params:
            unique.setdefault(id(p), p)
        self.params = list(unique.values())
        n = sum(p.numel() for p in self.params)
        self.flat = torch.empty(n, dtype=torch.float32)
        self.grad = torch.zeros(n, dtype=torch.float32)
        self.exp_avg = torch.zeros(n, dtype=torch.float32)
        self.exp_avg_sq = torch.zeros(n, dtype=torch.float32)
        self.steps = torch.zeros((), dtype=torch.float32)
        self.param_groups: list[dict[str, Any]] = [
            {"lr": float(lr), "betas": betas, "eps": float(eps), "weight_decay": weight_decay}
        ]
        self.decoupled = bool(decoupled)
        self._views: list[Any] = []
        self._gviews: list[Any] = []
        start = 0
        with torch.no_grad():
            for p in self.params:
                k = p.numel()
                view = self.flat[start : start + k].view_as(p)
                view.copy_(p)
                self._views.append(view)
                self._gviews.append(self.grad[start : start + k].view_as(p))
                start += k
        self._adopt()

    def _adopt(self) -> None:
        """Point every parameter at its view of the buffer."""
        for p, view in zip(self.params, self._views, strict=True):
            p.data = view
            p.grad = None
        self._ptrs = [p.data_ptr() for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every gradient.

        ``set_to_none`` is accepted; gradients are always dropped, so that backward hands its
        tensors over rather than adding into old ones.
        """
        for p in self.params:
            p.grad = None

    def _gather(self) -> None:
        """Copy the gradients into the gradient buffer (a missing one as zeros).

        A parameter replaced since the last step (``p.data = ...``,
        ``load_state_dict(assign=True)``) is brought back into the parameter buffer first.
        """
        for i, p in enumerate(self.params):
            if p.data_ptr() != self._ptrs[i]:
                with torch.no_grad():
                    self._views[i].copy_(p.data)
                p.data = self._views[i]
                self._ptrs[i] = p.data_ptr()
        grads = [p.grad for p in self.params]
        if all(g is not None for g in grads):
            torch._foreach_copy_(self._gviews, grads)
            return
        for gview, g in zip(self._gviews, grads, strict=True):
            if g is None:
                gview.zero_()
            else:
                gview.copy_(g)

    def step(self) -> None:
        """One Adam step over the whole buffer (torch's fused kernel)."""
        self._gather()
        group = self.param_groups[0]
        b1, b2 = group["betas"]
        self.steps += 1
        fn = torch._fused_adamw_ if self.decoupled else torch._fused_adam_
        fn(
            [self.flat],
            [self.grad],
            [self.exp_avg],
            [self.exp_avg_sq],
            [],
            [self.steps],
            lr=float(group["lr"]),
            beta1=float(b1),
            beta2=float(b2),
            weight_decay=float(group["weight_decay"]),
            eps=float(group["eps"]),
            amsgrad=False,
            maximize=False,
        )

    def release(self) -> None:
        """Give every parameter its own storage again, with its current value."""
        with torch.no_grad():
            for i, p in enumerate(self.params):
                if p.data_ptr() == self._ptrs[i]:
                    p.data = self._views[i].clone()


class StepSchedule:
    """Learning rate times ``gamma`` every ``step_size`` epochs, as ``torch.optim``'s ``StepLR``.

    The rate is multiplied in place at each boundary, as ``StepLR`` does, so the floats match
    it exactly.

    Parameters
    ----------
    optimizer : FlatAdam
        The optimiser whose ``param_groups[0]["lr"]`` is scheduled.
    step_size : int
        Epochs between decays.
    gamma : float
        Factor of each decay.
    """

    def __init__(self, optimizer: FlatAdam, *, step_size: int, gamma: float) -> None:
        self.optimizer = optimizer
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        self.last_epoch = 0

    def step(self) -> None:
        """Advance one epoch."""
        self.last_epoch += 1
        if self.last_epoch % self.step_size == 0:
            for group in self.optimizer.param_groups:
                group["lr"] = group["lr"] * self.gamma
