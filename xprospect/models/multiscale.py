"""Multi-scale context: a small and a large window of the same point, in one classifier.

:class:`MultiScaleCNN` adds the logits of two fully convolutional branches: a *fine* branch of
stride-1 valid 3x3 convolutions over the centre ``window`` cells (the point's immediate
surroundings, as :class:`~xprospect.models.SmallCNN` sees them) and a *coarse* branch whose
3x3 convolutions are dilated so that the same number of layers spans the whole ``context``
window (the regional setting of the point: a halo's extent, a district's background). Both
branches end in a 1x1 head averaged over what is left of their window, so the network stays
dense: run once over a raster it gives at every cell what it gives for that cell's window.
In eval mode that dense pass runs as the small CNN's does (:mod:`xprospect.models._dense`):
channels-last, batch norms folded into the convolutions, each branch's last block and head
in 16-channel groups, window averages as running sums, and with two classes one head
channel (the logit difference) instead of two; equal to the plain module calls within
float32 rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError
from xprospect.models._dense import box_mean, conv_bn_relu, conv_bn_relu_linear, dense_layout
from xprospect.models.base import ProspectModel
from xprospect.models.cnn import _init_weights, _positive_int, window_context
from xprospect.models.registry import register

torch = import_torch()
nn = torch.nn
F = torch.nn.functional

__all__ = ["MultiScaleCNN", "multiscale_cnn"]


class _Branch(nn.Module):
    """Valid (optionally dilated) 3x3 convolutions, a 1x1 head and a window average."""

    def __init__(
        self, c_in: int, widths: Sequence[int], window: int, dilation: int, n_out: int, p: float
    ) -> None:
        super().__init__()
        layers: list[Any] = []
        for c_out in widths:
            layers += [
                nn.Conv2d(c_in, c_out, 3, dilation=dilation, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c_in = c_out
        self.trunk = nn.Sequential(*layers)
        self.dropout = nn.Dropout(p) if p > 0 else nn.Identity()
        self.head = nn.Conv2d(c_in, n_out, 1)
        self.pool = window - 2 * dilation * len(widths)

    def forward(self, x: Any) -> Any:
        """Logit map ``(B, n_out, *(spatial - window + 1))``."""
        z = self.head(self.dropout(self.trunk(x)))
        return F.avg_pool2d(z, kernel_size=self.pool, stride=1)

    def dense(self, x: Any, head: tuple[Any, Any] | None = None) -> Any:
        """Run :meth:`forward` as the eval-mode dense pass, ``x`` channels-last.

        Each (conv, batch norm, ReLU) runs as one folded convolution, the last one together
        with the head (:func:`~xprospect.models._dense.conv_bn_relu_linear`), and the window
        average as running sums (:mod:`xprospect.models._dense`). ``head``: the
        ``(weight (K, C), bias (K,))`` of a linear map of the logits to use instead of the
        head's own (e.g. a two-class head's logit difference); the window average being
        linear, it may come before or after.
        """
        n = len(self.trunk)
        for i in range(0, n - 3, 3):
            x = conv_bn_relu(self.trunk[i : i + 3], x)
        w, b = head if head is not None else self.head_weights()
        z = conv_bn_relu_linear(self.trunk[n - 3 :], x, w, b)
        return box_mean(z, self.pool, 2)

    def head_weights(self) -> tuple[Any, Any]:
        """Return the 1x1 head as ``(weight (K, C), bias (K,))``."""
        w = self.head.weight
        b = self.head.bias if self.head.bias is not None else w.new_zeros(w.shape[0])
        return w.reshape(w.shape[0], -1), b


class MultiScaleCNN(ProspectModel):
    """Two-branch (fine + coarse context) dense window classifier for 2-D maps.

    Parameters
    ----------
    in_channels : int
        Number of input elements.
    num_classes : int, default 2
        Number of classes (class 1 prospective).
    window : int, default 7
        Fine window (cells), centred in the context window.
    context : int, default 21
        Context window (cells): the model's ``window`` for training and scoring; at least
        ``window``, with ``context - window`` even.
    widths : sequence of int, default (16, 16, 32)
        Channels of the fine branch's convolutions (``window > 2 * len(widths)``).
    context_widths : sequence of int, optional
        Channels of the coarse branch (default ``widths``); its dilation is the largest
        that leaves at least one cell: ``(context - 1) // (2 * len(context_widths))``.
    dropout : float, default 0.0
        Dropout before each head (identity in eval mode).
    seed : int, optional
        Seed of the weight initialisation.

    Examples
    --------
    >>> import torch
    >>> net = MultiScaleCNN(4, window=5, context=13, widths=(8, 8), seed=0).eval()
    >>> net(torch.zeros(2, 4, 13, 13)).shape
    torch.Size([2, 2])
    >>> net.score_dense(torch.zeros(1, 4, 20, 20)).shape
    torch.Size([1, 8, 8])
    """

    dense = True

    def __init__(
        self,
        in_channels: int,
        num_classes: int = 2,
        *,
        window: int = 7,
        context: int = 21,
        widths: Sequence[int] = (16, 16, 32),
        context_widths: Sequence[int] | None = None,
        dropout: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        in_channels = _positive_int(in_channels, "in_channels")
        num_classes = _positive_int(num_classes, "num_classes")
        window = _positive_int(window, "window")
        context = _positive_int(context, "context")
        widths = [_positive_int(w, "widths[]") for w in widths]
        cw = [_positive_int(w, "context_widths[]") for w in (context_widths or widths)]
        if not widths or window <= 2 * len(widths):
            raise ModelCardError(
                f"window={window} must exceed 2 * len(widths) = {2 * len(widths)} cells"
            )
        if context < window or (context - window) % 2:
            raise ModelCardError(
                f"context={context} must be >= window={window} with an even difference"
            )
        dilation = max(1, (context - 1) // (2 * len(cw)))
        if context - 2 * dilation * len(cw) < 1:
            raise ModelCardError(f"context={context} is too small for {len(cw)} layers")
        if not 0.0 <= float(dropout) < 1.0:
            raise ModelCardError(f"dropout must be in [0, 1); got {dropout!r}")
        self.ndim = 2
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.window = context
        self.fine_window = window
        self.context = window_context(context)
        self.offset = (context - window) // 2
        self.fine = _Branch(in_channels, widths, window, 1, num_classes, float(dropout))
        self.coarse = _Branch(in_channels, cw, context, dilation, num_classes, float(dropout))
        self.stages = [("fine", "coarse")]
        _init_weights(self, seed)
        self.config = {
            "name": "multiscale_cnn",
            "kwargs": {
                "in_channels": in_channels,
                "num_classes": num_classes,
                "window": window,
                "context": context,
                "widths": list(widths),
                "context_widths": list(cw),
                "dropout": float(dropout),
                "seed": seed,
            },
        }

    def _check_input(self, x: Any) -> None:
        """Refuse an input that is not ``(B, in_channels, >= context, >= context)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels or min(x.shape[2:]) < self.window:
            raise ModelCardError(
                f"MultiScaleCNN(in_channels={self.in_channels}, context={self.window}) needs "
                f"input (B, {self.in_channels}, >= {self.window}, >= {self.window}); got "
                f"{tuple(x.shape)}"
            )

    def _logits(self, x: Any, *, dense: bool = False) -> Any:
        """Logits of both branches added, ``(B, num_classes, *(spatial - context + 1))``.

        With ``dense`` in eval mode (dropout off), through the branches' fast dense pass
        (:meth:`_Branch.dense`) on a channels-last copy of ``x``.
        """
        self._check_input(x)
        o = self.offset
        h, w = x.shape[-2:]
        if not dense or not self._fast():  # the plain modules, as in training
            return self.fine(x[..., o : h - o, o : w - o]) + self.coarse(x)
        x = dense_layout(x, 2)
        return self._dense_sum(x, False)

    def _fast(self) -> bool:
        """Whether the fast dense pass applies: eval mode, every dropout off.

        Batch statistics (training) and active dropout (Monte Carlo dropout switches it on
        in eval mode, :class:`~xprospect.models.DeepEnsemble`) need the plain modules.
        """
        return not self.training and not any(
            m.training for m in (self.fine.dropout, self.coarse.dropout)
        )

    def _dense_sum(self, x: Any, difference: bool) -> Any:
        """Add both branches' dense logits, ``x`` channels-last.

        With ``difference``, the two-class logit difference ``logit_1 - logit_0`` (one
        channel: what the class-1 probability needs) in place of the logits.
        """
        o = self.offset
        h, w = x.shape[-2:]
        heads = []
        for branch in (self.fine, self.coarse):
            wb, bb = branch.head_weights()
            heads.append((wb[1:] - wb[:1], bb[1:] - bb[:1]) if difference else (wb, bb))
        fine = self.fine.dense(x[..., o : h - o, o : w - o], heads[0])
        return fine + self.coarse.dense(x, heads[1])

    def forward(self, x: Any) -> Any:
        """Class logits ``(B, num_classes)`` of ``context``-cell windows."""
        return self._logits(x).flatten(2).mean(dim=2)

    def score_dense(self, x: Any) -> Any:
        """Probability of class 1 of every cell's window: ``(B, *(spatial - context + 1))``.

        In eval mode (dropout off: Monte Carlo dropout runs the plain modules) the branches
        run their fast dense pass (channels-last, folded batch norms, the last block and the
        head in 16-channel groups, running-sum window means; :mod:`xprospect.models._dense`),
        equal to the window-by-window scores within float32 rounding. With two classes the
        heads give only the logit difference, whose sigmoid is the softmax's class-1
        probability.
        """
        if self.num_classes == 2 and self._fast():
            # softmax(l)[1] == sigmoid(l_1 - l_0): one head channel instead of two
            self._check_input(x)
            return torch.sigmoid(self._dense_sum(dense_layout(x, 2), True)[:, 0])
        logits = self._logits(x, dense=True)
        if self.num_classes == 1:
            return torch.sigmoid(logits[:, 0])
        return torch.softmax(logits, dim=1)[:, 1]


@register("multiscale_cnn")
def multiscale_cnn(
    in_channels: int,
    num_classes: int = 2,
    *,
    window: int = 7,
    context: int = 21,
    widths: Sequence[int] = (16, 16, 32),
    context_widths: Sequence[int] | None = None,
    dropout: float = 0.0,
    seed: int | None = None,
) -> MultiScaleCNN:
    """Build a :class:`MultiScaleCNN` (registered as ``"multiscale_cnn"``); see the class."""
    return MultiScaleCNN(
        in_channels,
        num_classes,
        window=window,
        context=context,
        widths=widths,
        context_widths=context_widths,
        dropout=dropout,
        seed=seed,
    )
