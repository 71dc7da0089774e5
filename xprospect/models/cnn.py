"""A small fully convolutional classifier for small data, scored densely over whole rasters.

:class:`SmallCNN` stacks stride-1 "valid" 3x3 convolutions (batch norm, ReLU), then a 1x1
convolution to class logits, then the mean of those logits over what is left of the window.
Because every layer is stride 1 and unpadded, and the head is linear, the same network run once
over a whole raster gives a logit map whose ``w - 2 * n_layers`` box average at each cell equals
the logits of the window of ``w`` cells attributed to that cell. Applying the head before the
spatial average keeps that pass cheap (two channels are averaged instead of 64; see
PERFORMANCE.md). In eval mode the dense pass runs channels-last with the batch norms folded
into the convolutions and the window average as running sums (:mod:`xprospect.models._dense`),
about twice as fast on CPU as the plain module calls and equal to them within float32
rounding. The 3-D variant (``ndim=3``) convolves voxel patches ``(z, y, x)`` the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError
from xprospect.models._dense import box_mean, conv_bn_relu, dense_layout
from xprospect.models.base import ProspectModel
from xprospect.models.registry import register

torch = import_torch()
nn = torch.nn
F = torch.nn.functional

__all__ = ["SmallCNN", "cnn3d", "small_cnn"]


def _positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise naming ``name`` when it is not an int >= minimum."""
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ModelCardError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if int(value) < minimum:
        raise ModelCardError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def window_context(window: int | None) -> tuple[int, int]:
    """Cells of context ``(before, after)`` a window of ``window`` cells needs around its cell.

    Parameters
    ----------
    window : int or None
        Window edge in cells; ``None`` gives ``(0, 0)``.

    Returns
    -------
    tuple of int
        ``(window // 2, window - 1 - window // 2)``.
    """
    if window is None:
        return (0, 0)
    return (window // 2, window - 1 - window // 2)


def _init_weights(module: Any, seed: int | None) -> None:
    """He-initialise convolutions (fan out, ReLU) and set batch norms to identity.

    With ``seed`` the draws come from a forked RNG seeded with it, so construction is
    reproducible without touching the caller's global torch RNG.
    """
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(int(seed))
        for m in module.modules():
            if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                m.reset_parameters()


class SmallCNN(ProspectModel):
    """Fully convolutional window classifier for small data (2-D maps or 3-D voxels).

    Layers: ``len(widths)`` blocks of (3x3 "valid" convolution, batch norm, ReLU), optional
    dropout, then a 1x1 convolution to ``num_classes`` logits averaged over the remaining
    ``window - 2 * len(widths)`` cells along each axis.

    Parameters
    ----------
    in_channels : int
        Number of input elements.
    num_classes : int, default 2
        Number of classes; class 1 is "prospective". With 1 the output is a single logit
        scored through a sigmoid.
    window : int, default 32
        Window edge (cells) the model classifies; must exceed ``2 * len(widths)``.
    widths : sequence of int, default (32, 32, 64, 64)
        Output channels of the convolution blocks.
    ndim : {2, 3}, default 2
        2 for ``(y, x)`` maps, 3 for ``(z, y, x)`` voxel patches.
    dropout : float, default 0.0
        Dropout probability applied to the features before the head. Dropout is the identity
        in eval mode, so it keeps :meth:`score_dense` equal to :meth:`score_windows` there.
    linear : bool, default False
        Add a linear reading of the window's centre cell to the logits: a 1x1 convolution of
        the (normalised) input at the cell the window is attributed to, initialised to zero.
        The network then holds a per-cell logistic regression as one path beside the
        convolutional one, so it can read a signal that is linear cell by cell as sharply as
        a logistic regression does (the convolutional path alone reads it blurred over the
        window: its logits are averaged over ``window - 2 * len(widths)`` cells). Measured
        on the synthetic default world (seed 2, 9-cell window, ensembles of 3 on the elements
        kept per fold): pooled out-of-fold AUC 0.944 with the path against 0.946 without
        (paired DeLong p = 0.38): no gain there, so it is off by default. Nor on the
        synthetic province (world seed 1, 9-cell ensembles of 3, ``DeepMethod`` defaults
        with the epochs chosen on the inner validation side, as until 3 Dec 2026), where
        the CNN trails logistic regression (0.917): 0.887 with the path against 0.883
        without, and 0.896 with and without it at a fixed 40 epochs (one
        :func:`~xprospect.benchmark` run on the folds of ``examples/province_benchmark.py``).
    seed : int, optional
        Seed for weight initialisation; ``None`` uses torch's global RNG.

    Attributes
    ----------
    stages : list of tuple of str
        Top-level children in input-to-output order, one tuple per stage, used by
        :func:`xprospect.models.weights.freeze`.

    Notes
    -----
    ``dense`` is True: :meth:`score_dense` gives, at every cell, what :meth:`score_windows`
    gives for the window attributed to that cell, in eval mode (in train mode batch norm uses
    batch statistics, which differ between a whole raster and a batch of windows).

    Examples
    --------
    >>> import torch
    >>> from xprospect.models import SmallCNN
    >>> net = SmallCNN(8, window=16, widths=(8, 8), seed=0).eval()
    >>> net(torch.zeros(3, 8, 16, 16)).shape
    torch.Size([3, 2])
    >>> net.score_dense(torch.zeros(1, 8, 40, 50)).shape
    torch.Size([1, 25, 35])
    """

    dense = True

    def __init__(
        self,
        in_channels: int,
        num_classes: int = 2,
        *,
        window: int = 32,
        widths: Sequence[int] = (32, 32, 64, 64),
        ndim: int = 2,
        dropout: float = 0.0,
        linear: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        in_channels = _positive_int(in_channels, "in_channels")
        num_classes = _positive_int(num_classes, "num_classes")
        if ndim not in (2, 3):
            raise ModelCardError(f"SmallCNN ndim must be 2 or 3; got {ndim!r}")
        if isinstance(widths, int | str) or len(widths) == 0:
            raise ModelCardError(f"widths must be a non-empty sequence of ints; got {widths!r}")
        widths = [_positive_int(w, "widths[]") for w in widths]
        window = _positive_int(window, "window")
        if window <= 2 * len(widths):
            msg = (
                f"window={window} is too small for {len(widths)} valid 3x3 convolutions: "
                f"it must exceed {2 * len(widths)} cells"
            )
            raise ModelCardError(msg)
        dropout = float(dropout)
        if not 0.0 <= dropout < 1.0:
            raise ModelCardError(f"dropout must be in [0, 1); got {dropout!r}")

        self.ndim: int = ndim
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.window: int = window
        self.context = window_context(window)
        self.widths = tuple(widths)
        self.pool = window - 2 * len(widths)

        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if ndim == 2 else nn.BatchNorm3d
        c_in = in_channels
        self.stages: list[tuple[str, ...]] = []
        for i, c_out in enumerate(widths, start=1):
            block = nn.Sequential(
                conv(c_in, c_out, kernel_size=3, padding=0, bias=False),
                norm(c_out),
                nn.ReLU(inplace=True),
            )
            self.add_module(f"block{i}", block)
            self.stages.append((f"block{i}",))
            c_in = c_out
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = conv(c_in, num_classes, kernel_size=1)
        self.linear = conv(in_channels, num_classes, kernel_size=1) if linear else None
        _init_weights(self, seed)
        if self.linear is not None:  # starts as the convolutional path alone
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)
        self.config = {
            "name": "small_cnn",
            "kwargs": {
                "in_channels": in_channels,
                "num_classes": num_classes,
                "window": window,
                "widths": list(widths),
                "ndim": ndim,
                "dropout": dropout,
                "seed": seed,
            },
        }
        if linear:  # only when set: cards written before the option read the same
            self.config["kwargs"]["linear"] = True

    def _centre_cells(self, x: torch.Tensor) -> torch.Tensor:
        """Return the linear path's logits at the cells the windows of ``x`` are attributed to.

        ``x`` trimmed by :attr:`context` along every spatial axis (the centre cell of a
        window-sized input), through the 1x1 linear path.
        """
        assert self.linear is not None
        before, after = self.context
        idx = (slice(None), slice(None), *(slice(before, s - after) for s in x.shape[2:]))
        return self.linear(x[idx])

    def _check_input(self, x: torch.Tensor, *, at_least: int) -> None:
        if x.dim() != self.ndim + 2 or x.shape[1] != self.in_channels:
            axes = "(B, C, y, x)" if self.ndim == 2 else "(B, C, z, y, x)"
            msg = (
                f"SmallCNN(ndim={self.ndim}, in_channels={self.in_channels}) needs input "
                f"{axes} with C={self.in_channels}; got shape {tuple(x.shape)}"
            )
            raise ModelCardError(msg)
        if min(x.shape[2:]) < at_least:
            msg = (
                f"input of spatial shape {tuple(x.shape[2:])} is smaller than the "
                f"{at_least} cells SmallCNN(window={self.window}) needs along every axis"
            )
            raise ModelCardError(msg)

    def logit_map(self, x: torch.Tensor) -> torch.Tensor:
        """Per-cell class logits before the window average.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, C, *spatial)``.

        Returns
        -------
        torch.Tensor
            ``(B, num_classes, *(spatial - 2 * len(widths)))``.
        """
        for (name,) in self.stages:
            x = getattr(self, name)(x)
        return self.head(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` of windows ``(B, C, *window)``.

        Inputs larger than ``window`` are classified as a whole (the logits are averaged over
        all of them), which is what global-average classifiers do.
        """
        self._check_input(x, at_least=2 * len(self.widths) + 1)
        logits = self.logit_map(x).flatten(2).mean(dim=2)
        if self.linear is not None:
            if min(x.shape[2:]) < self.window:
                raise ModelCardError(
                    f"SmallCNN(linear=True) reads the centre cell of a {self.window}-cell "
                    f"window; got spatial shape {tuple(x.shape[2:])}"
                )
            logits = logits + self._centre_cells(x).flatten(2).mean(dim=2)
        return logits

    def score_dense(self, x: torch.Tensor) -> torch.Tensor:
        """Probability of class 1 of the window attributed to every cell, in one pass.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, C, *spatial)`` with every spatial size at least ``window``.

        Returns
        -------
        torch.Tensor
            ``(B, *(spatial - window + 1))``; output index ``j`` belongs to input cell
            ``j + window // 2`` (see ``context``).
        """
        self._check_input(x, at_least=self.window)
        centre = self._centre_cells(x) if self.linear is not None else None
        if self.training:  # batch statistics: the plain modules, as in training
            logits = self.logit_map(x)
            pool = F.avg_pool2d if self.ndim == 2 else F.avg_pool3d
            logits = pool(logits, kernel_size=self.pool, stride=1)
        else:
            # eval: channels-last, batch norms folded into the convolutions and the window
            # average as running sums (xprospect.models._dense); equal to the plain pass
            # within float32 rounding, about twice as fast on CPU
            x = dense_layout(x, self.ndim)
            for (name,) in self.stages:
                x = conv_bn_relu(getattr(self, name), x)
            logits = box_mean(self.head(self.dropout(x)), self.pool, self.ndim)
        if centre is not None:
            logits = logits + centre
        if self.num_classes == 1:
            return torch.sigmoid(logits[:, 0])
        return torch.softmax(logits, dim=1)[:, 1]


@register("small_cnn")
def small_cnn(
    in_channels: int,
    num_classes: int = 2,
    *,
    window: int = 32,
    widths: Sequence[int] = (32, 32, 64, 64),
    ndim: int = 2,
    dropout: float = 0.0,
    linear: bool = False,
    seed: int | None = None,
) -> SmallCNN:
    """Build a :class:`SmallCNN` (registered as ``"small_cnn"``); see the class for parameters."""
    return SmallCNN(
        in_channels,
        num_classes,
        window=window,
        widths=widths,
        ndim=ndim,
        dropout=dropout,
        linear=linear,
        seed=seed,
    )


@register("cnn3d")
def cnn3d(
    in_channels: int,
    num_classes: int = 2,
    *,
    window: int = 16,
    widths: Sequence[int] = (16, 32, 32, 64),
    dropout: float = 0.0,
    seed: int | None = None,
) -> SmallCNN:
    """Build a 3-D :class:`SmallCNN` over ``(z, y, x)`` voxel patches (registered as ``"cnn3d"``).

    Parameters
    ----------
    in_channels : int
        Number of input elements.
    num_classes : int, default 2
        Number of classes.
    window : int, default 16
        Cube edge (voxels) of the patches it classifies.
    widths : sequence of int, default (16, 32, 32, 64)
        Output channels of the convolution blocks.
    dropout : float, default 0.0
        Dropout before the head (identity in eval mode).
    seed : int, optional
        Seed for weight initialisation.

    Returns
    -------
    SmallCNN
        With ``ndim=3`` and ``config["name"] == "cnn3d"``.
    """
    model = SmallCNN(
        in_channels,
        num_classes,
        window=window,
        widths=widths,
        ndim=3,
        dropout=dropout,
        seed=seed,
    )
    kwargs = dict(model.config["kwargs"])
    del kwargs["ndim"]
    model.config = {"name": "cnn3d", "kwargs": kwargs}
    return model
