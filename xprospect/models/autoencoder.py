"""Convolutional deep autoencoder (DAE), 2-D or 3-D, shift-equivariant for exact dense scoring.

After the DAE of Yu et al. (2022), "3D Mineral Prospectivity Mapping of Zaozigou Gold Deposit,
West Qinling, China: Deep Learning-Based Mineral Prediction", Minerals 12, 1382: a symmetric
convolutional encoder/decoder with ReLU activations (their Eq. 1), trained on normal data to
minimise the reconstruction error (Eq. 2 / 10); the anomaly score of a cell is its squared
reconstruction error summed over elements (Eq. 8), min-max scaled on the whole map later.

Deviation from the study, on purpose: every convolution is stride 1 with no pooling and no
upsampling, and the bottleneck is made in *channels* (the widths shrink towards the middle)
rather than in space. That keeps the network shift-equivariant, so scoring a whole chunk in one
pass gives at every cell exactly what scoring the window centred on it gives
(:attr:`ProspectModel.dense`), and maps carry no pooling-grid artefacts. The price is that a
cell's reconstruction may draw on its neighbours' codes; the channel bottleneck (narrower than
the input) and the limited receptive field keep that leak small, but it is not zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError
from xprospect.models._context_norm import (
    CONTEXT_BINS,
    CONTEXT_LEVELS,
    ContextNorm,
    context_share,
)
from xprospect.models.base import ProspectModel
from xprospect.models.registry import register
from xprospect.models.vae import activation_fn

torch = import_torch()
nn = torch.nn
F = torch.nn.functional

__all__ = [
    "CONTEXT_BINS",
    "CONTEXT_LEVELS",
    "ConvAutoencoder",
    "ConvEncoder",
    "crop_valid",
    "default_widths",
    "feature_layers",
    "masked_mean",
    "valid_mask",
]


def default_widths(in_channels: int) -> tuple[int, int, int]:
    """Return the encoder widths used when none are given: ``(4C, 2C, max(1, C // 2))``."""
    c = int(in_channels)
    return (4 * c, 2 * c, max(1, c // 2))


def feature_layers(n_layers: int) -> list[int]:
    """Return the encoder layers (1-based) whose outputs are the three depths STOAD compares.

    For three encoder layers, each layer's output; for more, three evenly spaced ones ending
    at the bottleneck.
    """
    if n_layers < 3:
        raise ModelCardError(f"the encoder needs at least 3 layers for 3 depths; got {n_layers}")
    return sorted({round(n_layers * k / 3) for k in (1, 2, 3)})


def crop_valid(t: Any, cut: int) -> Any:
    """Drop ``cut`` cells at each end of every spatial axis of ``(B, C, *spatial)``."""
    if cut == 0:
        return t
    return t[(slice(None), slice(None), *(slice(cut, -cut),) * (t.ndim - 2))]


def masked_mean(values: Any, mask: Any = None) -> Any:
    """Mean of ``values`` over the True cells of ``mask`` (all cells when None)."""
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def _check(in_channels: int, ndim: int, widths: Sequence[int], kernel_size: int) -> None:
    if int(ndim) not in (2, 3):
        raise ModelCardError(f"ndim must be 2 or 3; got {ndim}")
    if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
        raise ModelCardError(f"kernel_size must be odd and positive; got {kernel_size}")
    if int(in_channels) < 1 or any(int(w) < 1 for w in widths) or len(widths) < 3:
        msg = (
            f"need in_channels >= 1 and at least 3 positive encoder widths; got "
            f"in_channels={in_channels}, widths={list(widths)}"
        )
        raise ModelCardError(msg)


#: Run CPU float32 3-D convolutions through oneDNN (MKL-DNN) whatever their size (see
#: :func:`conv_nd`); False leaves the choice to torch.
MKLDNN_ON_CPU = True


def conv_nd(x: Any, weight: Any, bias: Any, padding: int) -> Any:
    """Stride-1 2-D or 3-D convolution of ``x`` with ``weight`` (``padding`` cells a side).

    On CPU, torch sends a convolution of a single small input (batch 1 and under ~20 000
    cells in its leading planes: a training tile) to its native im2col path rather than to
    oneDNN, forward and backward, a heuristic made for 1 x 1 kernels: for these 3 x 3 (x 3)
    kernels on a few channels the native path measured 2-4x slower per tile (3-D DAE layers
    on a 36^3 tile, one thread) than oneDNN, which torch already picks for the larger
    inputs of scoring. So float32 3-D CPU inputs go to oneDNN directly, a batch of one
    through :class:`_OneDNNConv` so that its backward does too (same arithmetic up to
    rounding); 2-D (where the two paths measured within noise of each other), any other
    device or dtype takes ``F.conv2d`` / ``F.conv3d``.
    """
    nd = x.ndim - 2
    if (
        MKLDNN_ON_CPU
        and nd == 3
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
    ):
        if x.shape[0] == 1 and torch.is_grad_enabled():
            return _OneDNNConv.apply(x, weight, bias, int(padding))
        return _mkldnn_conv(x, weight, bias, int(padding))
    fn = F.conv2d if nd == 2 else F.conv3d
    return fn(x, weight, bias, padding=padding)


def _mkldnn_conv(x: Any, weight: Any, bias: Any, padding: int) -> Any:
    nd = x.ndim - 2
    return torch.ops.aten.mkldnn_convolution(x, weight, bias, [padding] * nd, [1] * nd, [1] * nd, 1)


class _OneDNNConv(torch.autograd.Function):
    """Stride-1 convolution whose backward is two oneDNN forward convolutions.

    The input gradient is the output gradient correlated with the flipped, transposed
    kernel (padding ``k - 1 - p``); the kernel gradient is the input correlated with the
    output gradient, run as a convolution with batch and channel axes swapped (the input's
    channels as the batch, the output gradient's channels as the kernels). Torch's own
    backward of a batch-of-one convolution takes its slow native path (see
    :func:`conv_nd`).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, bias: Any, padding: int) -> Any:
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        ctx.has_bias = bias is not None
        return _mkldnn_conv(x, weight, bias, padding)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        x, weight = ctx.saved_tensors
        p = ctx.padding
        nd = x.ndim - 2
        k = weight.shape[2]
        g = g.contiguous()
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            flipped = weight.transpose(0, 1).flip(list(range(2, 2 + nd))).contiguous()
            gx = _mkldnn_conv(g, flipped, None, k - 1 - p)
        if ctx.needs_input_grad[1]:
            gw = _mkldnn_conv(x.transpose(0, 1), g.transpose(0, 1), None, p).transpose(0, 1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g.sum(dim=(0, *range(2, 2 + nd)))
        return gx, gw, gb, None


class _ConvStack(nn.Module):
    """Convolutions run either "same" (zero-padded, shape kept) or "valid" (no padding).

    :meth:`partial` is the NaN-aware form of :meth:`layer` (a partial convolution, Liu et al.
    2018, "Image inpainting for irregular holes using partial convolutions"): only the cells
    of ``mask`` enter the sum, which is rescaled by ``k ** d / (valid cells under the
    kernel)``; a cell with no valid cell under the kernel is 0 and leaves the mask. With a
    mask of ones it is :meth:`layer` (the same weights serve both).
    """

    def __init__(self, channels: Sequence[int], ndim: int, kernel_size: int) -> None:
        super().__init__()
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        self.layers = nn.ModuleList(conv(a, b, kernel_size) for a, b in pairwise(channels))
        self.fn = F.conv2d if ndim == 2 else F.conv3d
        self.half = kernel_size // 2
        self.ndim = int(ndim)
        self.kernel_size = int(kernel_size)

    def layer(self, i: int, x: Any, padding: str) -> Any:
        conv = self.layers[i]
        pad = self.half if padding == "same" else 0
        return conv_nd(x, conv.weight, conv.bias, pad)

    def partial(self, i: int, x: Any, mask: Any, padding: str) -> tuple[Any, Any]:
        """Partial convolution of ``x`` (0 outside ``mask``); return the output and its mask.

        ``mask`` is ``(B, 1, *spatial)`` float (1 valid, 0 missing); the output is 0 where
        the new mask is 0.
        """
        conv = self.layers[i]
        pad = self.half if padding == "same" else 0
        ones = torch.ones((1, 1) + (self.kernel_size,) * self.ndim, dtype=x.dtype, device=x.device)
        count = conv_nd(mask, ones, None, pad)
        new = (count > 0).to(x.dtype)
        scale = new * (float(self.kernel_size**self.ndim) / count.clamp_min(1.0))
        out = conv_nd(x, conv.weight, None, pad) * scale
        out = out + conv.bias.reshape((1, -1) + (1,) * self.ndim) * new
        return out, new


def valid_mask(x: Any) -> tuple[Any, Any]:
    """Split NaN-holding input into zero-filled values and a validity mask.

    Returns ``(x, None)`` when every cell is finite (the plain convolutions run), else
    ``(x with every element of an invalid cell set to 0, (B, 1, *spatial) float mask)``: a
    cell is valid when all its elements are finite.
    """
    ok = torch.isfinite(x).all(dim=1, keepdim=True)
    if bool(ok.all()):
        return x, None
    return torch.where(ok, x, torch.zeros((), dtype=x.dtype, device=x.device)), ok.to(x.dtype)


class ConvEncoder(ProspectModel):
    """Stride-1 convolutional encoder returning its outputs at three depths (STOAD's student).

    Parameters
    ----------
    in_channels : int
        Number of input elements.
    ndim : {2, 3}
        Spatial dimensions.
    widths : sequence of int, optional
        Output channels of each encoder layer (default :func:`default_widths`).
    kernel_size : int
        Odd kernel edge of every convolution.
    activation : str
        Activation after every layer (ReLU in the study).
    """

    task = "anomaly"
    dense = False
    #: NaN cells are missing data (partial convolutions), not values: see :func:`valid_mask`
    nan_aware = True
    registry_name = "conv_encoder"

    def __init__(
        self,
        in_channels: int,
        ndim: int = 2,
        widths: Sequence[int] | None = None,
        kernel_size: int = 3,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        widths = [int(w) for w in (widths or default_widths(in_channels))]
        _check(in_channels, ndim, widths, kernel_size)
        self.ndim: int = int(ndim)
        self.in_channels = int(in_channels)
        self.widths = widths
        self.kernel_size = int(kernel_size)
        self.act = activation_fn(activation)
        self.enc = _ConvStack([self.in_channels, *widths], self.ndim, self.kernel_size)
        self.taps = feature_layers(len(widths))
        r = len(widths) * (self.kernel_size // 2)
        self.context = (r, r)
        self.config = {
            "name": self.registry_name,
            "kwargs": {
                "in_channels": self.in_channels,
                "ndim": self.ndim,
                "widths": widths,
                "kernel_size": self.kernel_size,
                "activation": activation,
            },
        }

    def encode_features(self, x: Any, *, padding: str = "same") -> list[Any]:
        """Return the encoder outputs at the three depths :attr:`taps` (after the activation).

        With ``padding="valid"`` each output is cropped to the cells whose values need no
        padding at the deepest tap, so the three maps share one shape: ``spatial - 2 r``.
        """
        if padding not in ("same", "valid"):
            raise ModelCardError(f"padding must be 'same' or 'valid'; got {padding!r}")
        if x.ndim != self.ndim + 2 or x.shape[1] != self.in_channels:
            msg = (
                f"{type(self).__name__} expects (B, {self.in_channels}, "
                f"{', '.join('*' * self.ndim)}); got {tuple(x.shape)}"
            )
            raise ModelCardError(msg)
        return self.features_masked(*valid_mask(x), padding=padding)[0]

    def features_masked(self, x: Any, mask: Any, *, padding: str = "same") -> tuple[list[Any], Any]:
        """Features of zero-filled ``x`` with validity ``mask`` (None: all valid).

        Returns the three tap outputs (as :meth:`encode_features`) and the mask of the
        deepest tap, cropped like the outputs (None without a mask).
        """
        half = self.kernel_size // 2
        last = self.taps[-1]
        out = []
        h, m = x, mask
        for i in range(len(self.widths)):
            if m is None:
                h = self.act(self.enc.layer(i, h, padding))
            else:
                h, m = self.enc.partial(i, h, m, padding)
                h = self.act(h)
            if i + 1 in self.taps:
                cut = (last - (i + 1)) * half if padding == "valid" else 0
                out.append(crop_valid(h, cut))
            if i + 1 == last:
                break
        return out, m

    def forward(self, x: Any) -> list[Any]:
        """Same-padded features at the three depths (see :meth:`encode_features`)."""
        return self.encode_features(x)


@register("conv_autoencoder")
class ConvAutoencoder(ContextNorm, ProspectModel):
    """Symmetric, stride-1 convolutional autoencoder (2-D or 3-D); anomaly = reconstruction error.

    Parameters
    ----------
    in_channels : int
        Number of input elements.
    ndim : {2, 3}
        2 for (y, x) stacks (``Conv2d``), 3 for (z, y, x) voxels (``Conv3d``).
    widths : sequence of int, optional
        Encoder output channels, at least three, outermost first; the decoder mirrors them
        and ends in a linear convolution back to ``in_channels``. Default
        :func:`default_widths` ``(4C, 2C, max(1, C // 2))``: the channel bottleneck.
    kernel_size : int
        Odd kernel edge of every convolution.
    activation : str
        Hidden activation (ReLU in the study). The output layer is linear because inputs are
        standardised (the study's Eq. 2 puts sigma on the output too).

    Notes
    -----
    The receptive radius is ``r = 2 * len(widths) * (kernel_size // 2)`` (6 with the defaults),
    and ``context = (r, r)``. :meth:`score_dense` runs the same convolutions unpadded: its
    output equals the zero-padded pass cropped by ``r`` on each side, which is exactly the
    window-by-window score at the centres. :meth:`loss` also uses that valid pass, so training
    never learns from the zero padding. See the module docstring for the deviation from the
    study (no pooling).

    Examples
    --------
    >>> import torch
    >>> ae = ConvAutoencoder(5)
    >>> ae.context
    (6, 6)
    >>> ae(torch.zeros(1, 5, 16, 16)).shape, ae.score_dense(torch.zeros(1, 5, 16, 16)).shape
    (torch.Size([1, 5, 16, 16]), torch.Size([1, 4, 4]))
    """

    task = "anomaly"
    dense = True
    anomaly_samples = "tiles"
    #: NaN cells are missing data (partial convolutions), not values: see :func:`valid_mask`
    nan_aware = True

    def __init__(
        self,
        in_channels: int,
        ndim: int = 2,
        widths: Sequence[int] | None = None,
        kernel_size: int = 3,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        widths = [int(w) for w in (widths or default_widths(in_channels))]
        _check(in_channels, ndim, widths, kernel_size)
        self.ndim: int = int(ndim)
        self.in_channels = int(in_channels)
        self.window = None
        self.widths = widths
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.act = activation_fn(activation)
        self.encoder = ConvEncoder(in_channels, ndim, widths, kernel_size, activation)
        back = [*reversed(widths), self.in_channels]
        self.decoder = _ConvStack(back, self.ndim, self.kernel_size)
        r = 2 * len(widths) * (self.kernel_size // 2)
        self.context = (r, r)
        self.init_context_norm()
        self.config = {
            "name": "conv_autoencoder",
            "kwargs": {
                "in_channels": self.in_channels,
                "ndim": self.ndim,
                "widths": widths,
                "kernel_size": self.kernel_size,
                "activation": activation,
            },
        }

    def encode_features(self, x: Any, *, padding: str = "same") -> list[Any]:
        """Return the encoder's outputs at three depths; see :meth:`ConvEncoder.encode_features`."""
        return self.encoder.encode_features(x, padding=padding)

    def reconstruct(self, x: Any, *, padding: str = "same") -> Any:
        """Reconstruction of ``x``; ``padding="valid"`` returns ``spatial - 2 r`` cells.

        Cells holding NaN (any element) are missing data: partial convolutions skip them
        (:func:`valid_mask`); cells with no valid cell in reach are NaN.
        """
        h, m = self.reconstruct_masked(*valid_mask(x), padding=padding)
        if m is not None:
            h = torch.where(m > 0, h, torch.full((), float("nan"), dtype=h.dtype, device=h.device))
        return h

    def reconstruct_masked(self, x: Any, mask: Any, *, padding: str = "same") -> tuple[Any, Any]:
        """Reconstruction of zero-filled ``x`` with validity ``mask`` (None: all valid).

        Returns the reconstruction (0 where the output mask is 0) and the output mask
        (``(B, 1, *spatial')``, None without a mask). The output mask may be wider than the
        input's (a missing cell next to valid ones is reconstructed), never narrower.
        """
        h, m = x, mask
        stacks = [(self.encoder.enc, i) for i in range(len(self.widths))]
        stacks += [(self.decoder, i) for i in range(len(self.decoder.layers))]
        for j, (stack, i) in enumerate(stacks):
            if m is None:
                h = stack.layer(i, h, padding)
            else:
                h, m = stack.partial(i, h, m, padding)
            if j < len(stacks) - 1:
                h = self.act(h)
        return h, m

    def _valid_error(self, x: Any) -> tuple[Any, Any]:
        """Return the per-cell squared error summed over elements, and the cells' validity.

        Valid pass: both are ``(B, *(spatial - 2 r))``; the validity (bool) is None when
        every cell is finite.
        """
        self._check_input(x)
        r = self.context[0]
        x0, mask = valid_mask(x)
        rec, _ = self.reconstruct_masked(x0, mask, padding="valid")
        err = rec - crop_valid(x0, r)
        own = None if mask is None else crop_valid(mask, r)[:, 0] > 0
        return (err * err).sum(dim=1), own

    def forward(self, x: Any) -> Any:
        """Zero-padded ("same") reconstruction, the shape of ``x``."""
        self._check_input(x)
        return self.reconstruct(x, padding="same")

    def error_and_context(self, x: Any) -> tuple[Any, Any]:
        """Per-cell squared error summed over elements and the valid-context share, valid pass.

        Both ``(B, *(spatial - 2 r))``; the error is NaN at cells whose own input holds NaN
        and is not normalised by :attr:`context_norm`; the share is that of
        :func:`context_share` (1 everywhere when the input holds no NaN).
        """
        self._check_input(x)
        r = self.context[0]
        x0, mask = valid_mask(x)
        rec, _ = self.reconstruct_masked(x0, mask, padding="valid")
        err = rec - crop_valid(x0, r)
        per_cell = (err * err).sum(dim=1)
        if mask is None:
            return per_cell, torch.ones_like(per_cell)
        own = crop_valid(mask, r)[:, 0] > 0
        nan = torch.full((), float("nan"), dtype=per_cell.dtype, device=per_cell.device)
        return torch.where(own, per_cell, nan), context_share(mask, r)

    def _check_input(self, x: Any) -> None:
        if x.ndim != self.ndim + 2 or x.shape[1] != self.in_channels:
            msg = (
                f"ConvAutoencoder(in_channels={self.in_channels}, ndim={self.ndim}) expects "
                f"(B, {self.in_channels}, {', '.join('*' * self.ndim)}); got {tuple(x.shape)}"
            )
            raise ModelCardError(msg)
        r = self.context[0]
        if min(x.shape[2:]) < 2 * r + 1:
            msg = (
                f"inputs need at least {2 * r + 1} cells per spatial axis (receptive radius "
                f"{r}); got {tuple(x.shape[2:])}"
            )
            raise ModelCardError(msg)

    def loss(self, x: Any, target: Any = None) -> tuple[Any, dict[str, Any]]:
        """Mean squared reconstruction error over the valid cells of tiles ``x``.

        ``target`` (optional, bool ``(B, *(spatial - 2 r))``) restricts the mean to those
        valid cells; cells holding NaN never count. Returns ``(loss, {"recon": loss})``: the
        mean over cells and elements of ``(x - x') ** 2``, the study's Eq. 10 up to a
        constant factor.
        """
        per_cell, own = self._valid_error(x)
        if own is not None:
            target = own if target is None else own & target.to(torch.bool)
        mse = masked_mean(per_cell, target) / self.in_channels
        return mse, {"recon": mse}

    @property
    def loss_scale(self) -> float:
        """``1 / in_channels``: :meth:`loss` averages over elements what the score sums."""
        return 1.0 / self.in_channels

    def score_dense(self, x: Any) -> Any:
        """Per-cell squared error summed over elements, valid pass: ``(B, *(spatial - 2 r))``.

        NaN at cells whose own input holds NaN; their neighbours are scored from the valid
        cells around them only (partial convolutions), not from zeros, and their error is
        read against the errors of training cells with as much valid context (set by
        :func:`~xprospect.train.fit_anomaly`, see :meth:`set_context_norm`; whole contexts
        keep their error, so an input without NaN is scored by the plain error).
        """
        return self.normalise_context(*self.error_and_context(x))

    def score_windows(self, x: Any) -> Any:
        """Score at the centre of windows ``(B, C, *window)`` (each at least ``2 r + 1`` wide)."""
        self._check_input(x)
        r = self.context[0]
        centre = tuple(s // 2 - r for s in x.shape[2:])
        return self.score_dense(x)[(slice(None), *centre)]


register("conv_encoder")(ConvEncoder)
