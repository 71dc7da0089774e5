"""Kernels of the dense (fully convolutional, eval-mode) passes of the convolutional models.

A dense pass runs a window classifier once over a whole tile instead of window by window, so it
is bounded by the convolutions' arithmetic rate; these helpers keep it there on CPU:

- :func:`dense_layout` lays a 2-D input out channels-last (NHWC), oneDNN's fast path: the
  convolutions then run without reordering every activation to a blocked layout and back
  (a 512^2 tile of the small CNN: about 1.4x faster).
- :func:`fold_batch_norm` folds an eval-mode batch norm into the convolution before it
  (:func:`torch.nn.utils.fusion.fuse_conv_bn_weights`), saving one pass over every
  activation.
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

__all__ = ["box_mean", "conv_bn_relu", "dense_layout", "fold_batch_norm"]


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
    conv, bn = block[0], block[1]
    plain = (
        len(block) != 3
        or not isinstance(conv, torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Conv3d)
        or not isinstance(bn, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d | torch.nn.BatchNorm3d)
        or not isinstance(block[2], torch.nn.ReLU)
        or bn.running_mean is None
        or conv.padding_mode != "zeros"
    )
    if plain:
        return block(x)
    w, b = fold_batch_norm(conv, bn)
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[w.dim() - 2]
    y = fn(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)
    return y.relu_()


def box_mean(x: Any, k: int, ndim: int) -> Any:
    """Mean over every ``k``-cell box of the last ``ndim`` axes (stride 1, no padding).

    Equal to ``avg_pool{ndim}d(x, k, stride=1)`` within float32 rounding: running sums along
    each axis in turn, in float64, differenced ``k`` cells apart.

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
    # one copy: to float64 and to the plain (NC...) layout at once, channels-last input or not
    y = x.to(dtype=torch.float64, memory_format=torch.contiguous_format)
    for d in range(x.dim() - ndim, x.dim()):
        n = y.shape[d] - k + 1
        c = y.cumsum(d)
        z = c.narrow(d, k - 1, n).clone()
        if n > 1:
            z.narrow(d, 1, n - 1).sub_(c.narrow(d, 0, n - 1))
        y = z
    return (y / float(k**ndim)).to(x.dtype)
