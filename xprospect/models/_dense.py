"""Kernels of the dense (fully convolutional, eval-mode) passes of the convolutional models.

A dense pass runs a window classifier once over a whole tile instead of window by window, so it
is bounded by the convolutions' arithmetic rate; these helpers keep it there on CPU:

- :func:`dense_layout` lays a 2-D input out channels-last (NHWC), oneDNN's fast path: the
  convolutions then run without reordering every activation to a blocked layout and back
  (a 512^2 tile of the small CNN: about 1.4x faster).
- :func:`fold_batch_norm` folds an eval-mode batch norm into the convolution before it
  (:func:`torch.nn.utils.fusion.fuse_conv_bn_weights`), saving one pass over every
  activation.
- :func:`conv_bn_relu_linear` runs a trunk's last (conv, batch norm, ReLU) block and the 1x1
  head after it in groups of 16 output channels, each group's activation summed into the
  head's output at once: the block's full output is never held, and oneDNN's AVX2 kernels
  run 16-channel outputs at 65-75 GFLOP/s where 32 channels ran at 34-47 (one thread, a
  512^2 tile; the multiscale CNN's dense pass 1.3x faster).
- :func:`box_mean` is the mean over every ``k``-cell box (what ``avg_pool`` with stride 1
  computes) as separable running sums in float64: O(1) per cell instead of ``k ** ndim``
  (``avg_pool2d`` with a 24-cell kernel took 16 % of a 512^2 tile's time); the float64 sums
  keep it within float32 rounding of the direct mean.

The values differ from the plain module calls only by float32 rounding (the small CNN's scores
by at most a few 1e-7, see ``tests/test_models_cnn.py``).
"""

from __future__ import annotations

from typing import Any

from xprospect._torch import import_torch

torch = import_torch()
F = torch.nn.functional

__all__ = ["box_mean", "conv_bn_relu", "conv_bn_relu_linear", "dense_layout", "fold_batch_norm"]

#: Output channels of the last block computed at once by :func:`conv_bn_relu_linear`.
GROUP = 16


def dense_layout(x: Any, ndim: int) -> Any:
    """Return ``x`` (``(B, C, *spatial)``) in the memory layout the dense pass runs in.

    Parameters
    ----------
    x : torch.Tensor
        Input batch.
    ndim : int
        Spatial dimensions (2: channels-last; 3: unchanged, contiguous).

    Returns
    -------
    torch.Tensor
        The same values, channels-last for 2-D inputs.
    """
    if ndim == 2 and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x.contiguous()


def fold_batch_norm(conv: Any, bn: Any) -> tuple[Any, Any]:
    """Weights and bias of ``conv`` followed by the eval-mode batch norm ``bn``, as one conv.

    Parameters
    ----------
    conv : torch.nn.Conv1d, Conv2d or Conv3d
    bn : torch.nn.BatchNorm1d, BatchNorm2d or BatchNorm3d
        Tracking running statistics (used as in eval mode).

    Returns
    -------
    tuple of torch.Tensor
        ``(weight, bias)``, detached.
    """
    with torch.no_grad():
        w, b = torch.nn.utils.fusion.fuse_conv_bn_weights(
            conv.weight,
            conv.bias,
            bn.running_mean,
            bn.running_var,
            bn.eps,
            bn.weight,
            bn.bias,
        )
    return w.detach(), b.detach()


def _foldable(block: Any) -> bool:
    """Whether ``block`` is a ``Sequential(conv, batch norm, ReLU)`` whose norm can be folded."""
    if len(block) != 3:
        return False
    conv, bn = block[0], block[1]
    return (
        isinstance(conv, torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Conv3d)
        and isinstance(bn, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d | torch.nn.BatchNorm3d)
        and isinstance(block[2], torch.nn.ReLU)
        and bn.running_mean is not None
        and conv.padding_mode == "zeros"
    )


def conv_bn_relu(block: Any, x: Any) -> Any:
    """Run a ``Sequential(conv, batch norm, ReLU)`` block in eval mode, the norm folded.

    Parameters
    ----------
    block : torch.nn.Sequential
        ``(ConvNd, BatchNormNd, ReLU)``; any other shape of block is called as it is.
    x : torch.Tensor
        Input ``(B, C, *spatial)``.

    Returns
    -------
    torch.Tensor
    """
    if not _foldable(block):
        return block(x)
    conv = block[0]
    w, b = fold_batch_norm(conv, block[1])
    return _conv(conv, x, w, b).relu_()


def _conv(conv: Any, x: Any, w: Any, b: Any) -> Any:
    """``conv``'s convolution of ``x`` with the weights ``w`` and bias ``b``."""
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[w.dim() - 2]
    return fn(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)


def conv_bn_relu_linear(block: Any, x: Any, weight: Any, bias: Any) -> Any:
    """``linear(relu(bn(conv(x))))``: a (conv, batch norm, ReLU) block and a 1x1 head after it.

    The block's output channels are computed :data:`GROUP` at a time (the norm folded), and
    each group goes through its slice of the head at once, so the block's whole output is
    never held (see the module's notes for the speed).

    Parameters
    ----------
    block : torch.nn.Sequential
        ``(ConvNd, BatchNormNd, ReLU)`` in eval mode; any other block is called as it is.
    x : torch.Tensor
        Input ``(B, C, *spatial)``.
    weight : torch.Tensor
        ``(K, C_out)``: the head's weights (a 1x1 convolution's, flattened).
    bias : torch.Tensor
        ``(K,)``.

    Returns
    -------
    torch.Tensor
        ``(B, K, *spatial_out)``, the head's output (channels-last in memory for 2-D input).
    """
    conv = block[0] if len(block) else None
    if _foldable(block):
        w, b = fold_batch_norm(conv, block[1])
    else:
        y = block(x)
        w, b = None, None
    cout = weight.shape[1]
    out = None
    for c0 in range(0, cout, GROUP):
        c1 = min(cout, c0 + GROUP)
        if w is None:
            yg = y[:, c0:c1]
        else:
            yg = _conv(conv, x, w[c0:c1], None if b is None else b[c0:c1]).relu_()
        # channels last: (B, *spatial, channels) is the memory order, a view for a 2-D tile
        rows = yg.movedim(1, -1)
        part = rows.reshape(-1, c1 - c0) @ weight[:, c0:c1].t()
        out = part if out is None else out.add_(part)
    assert out is not None  # at least one output channel
    shape = rows.shape[:-1]
    return out.add_(bias).reshape(*shape, -1).movedim(-1, 1)


def box_mean(x: Any, k: int, ndim: int) -> Any:
    """Mean over every ``k``-cell box of the last ``ndim`` axes (stride 1, no padding).

    Equal to ``avg_pool{ndim}d(x, k, stride=1)`` within float32 rounding: running sums along
    each axis in turn, in float64, differenced ``k`` cells apart. A box holding a NaN or
    infinite cell is NaN, and only such a box: the running sums are of the finite values
    (a NaN or infinity in them would spoil every later box along each axis) and, where
    the input holds any (always off the CPU, so that no device synchronisation is
    needed), a second pass counts the non-finite cells of each box.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., *spatial)`` with every spatial size at least ``k``.
    k : int
        Box edge in cells.
    ndim : int
        Number of trailing spatial axes.

    Returns
    -------
    torch.Tensor
        ``(..., *(spatial - k + 1))`` in ``x``'s dtype (``x`` itself when ``k`` is 1).

    Examples
    --------
    >>> import torch
    >>> box_mean(torch.arange(5.0).reshape(1, 5), 2, 1)
    tensor([[0.5000, 1.5000, 2.5000, 3.5000]])
    """
    if k == 1:
        return x  # each box is its one cell
    # on the host the test costs no device synchronisation (elsewhere: always count); a
    # finite sum has finite terms (an overflowing one only sends finite input the long way)
    clean = x.device.type == "cpu" and bool(torch.isfinite(x.sum()))
    finite = None if clean else torch.isfinite(x)
    y = x if finite is None else torch.where(finite, x, 0.0)
    # one copy: to float64 and to the plain (NC...) layout at once, channels-last input or not
    y = y.to(dtype=torch.float64, memory_format=torch.contiguous_format)
    mean = (_box_sums(y, k, ndim) / float(k**ndim)).to(x.dtype)
    if finite is None:
        return mean
    bad = (~finite).to(dtype=torch.float64, memory_format=torch.contiguous_format)
    return mean.masked_fill_(_box_sums(bad, k, ndim) > 0.5, float("nan"))


def _box_sums(y: Any, k: int, ndim: int) -> Any:
    """Return the sums over every ``k``-cell box of the last ``ndim`` axes of ``y``."""
    for d in range(y.dim() - ndim, y.dim()):
        n = y.shape[d] - k + 1
        c = y.cumsum(d)
        z = c.narrow(d, k - 1, n).clone()
        if n > 1:
            z.narrow(d, 1, n - 1).sub_(c.narrow(d, 0, n - 1))
        y = z
    return y
