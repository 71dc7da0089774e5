"""Deep variational autoencoder on per-cell (or per-sample) element vectors.

After Luo, Xiong & Zuo (2020), "Recognition of geochemical anomalies using a deep variational
autoencoder network", Applied Geochemistry 122, 104710: an encoder ``n -> 24 -> 12 -> (mu,
log-variance of 3)`` and a mirrored decoder ``3 -> 12 -> 24 -> n`` (hidden layers 24-12-3-12-24),
trained on standardised multi-element vectors; the anomaly score of a vector is its
reconstruction error.

The network knows nothing about space (``ndim = None``): it scores every cell of a 2-D or 3-D
stack independently, so whole-chunk scoring needs no halo (``context = (0, 0)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError
from xprospect.models.base import ProspectModel
from xprospect.models.registry import register

torch = import_torch()
nn = torch.nn
F = torch.nn.functional

__all__ = ["VAE", "activation_fn"]

_ACTIVATIONS = {
    "relu": F.relu,
    "elu": F.elu,
    "leaky_relu": F.leaky_relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}

# Cells per block in ``score_dense``: the widest intermediate (24 floats per cell) of a block
# stays in cache (~1.5 MB), so the pass reads each input cell once and writes one float.
_CELL_BLOCK = 16384
# Cells per block of the fused training step (:func:`_fused_loss_and_grads`): a block's
# forward activations (every layer's, kept for its backward) stay in a core's L2 cache.
_TRAIN_BLOCK = 2048

# Backward of each activation from its *output* ``y`` (all five are monotone, so the output
# tells the input's sign): ``g`` (the gradient at the output) -> the gradient at the input.
_DERIVATIVES = {
    "relu": lambda g, y: torch.ops.aten.threshold_backward(g, y, 0.0),
    "elu": lambda g, y: torch.where(y > 0, g, g * (y + 1)),
    "leaky_relu": lambda g, y: torch.where(y > 0, g, g * 0.01),
    "tanh": lambda g, y: g * (1 - y * y),
    "sigmoid": lambda g, y: g * (y * (1 - y)),
}


def activation_fn(name: str) -> Any:
    """Return the activation function called ``name`` (relu, elu, leaky_relu, tanh, sigmoid)."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        msg = f"activation={name!r} is not one of {sorted(_ACTIVATIONS)}"
        raise ModelCardError(msg) from None


@register("vae")
class VAE(ProspectModel):
    """Fully connected variational autoencoder scoring each cell by its reconstruction error.

    Parameters
    ----------
    n_features : int
        Number of input elements (channels).
    hidden : sequence of int
        Encoder hidden widths; the decoder mirrors them. ``(24, 12)`` with ``latent=3`` gives
        the study's hidden layers 24-12-3-12-24.
    latent : int
        Size of the latent code.
    kl_weight : float
        Weight of the Kullback-Leibler term in the training loss (1 = the standard ELBO).
    activation : str
        Hidden activation: ``"relu"`` (default; the study's abstract does not name one),
        ``"elu"``, ``"leaky_relu"``, ``"tanh"`` or ``"sigmoid"``. The output layer is linear,
        since inputs are standardised (any sign).
    score_kl : bool
        When True the anomaly score adds the KL divergence of the cell's code to the
        reconstruction error.

    Notes
    -----
    Losses per vector: ``recon = sum_c (x_c - x'_c) ** 2`` and
    ``kl = -1/2 sum_j (1 + logvar_j - mu_j ** 2 - exp(logvar_j))``; the training loss is the
    batch mean of ``recon + kl_weight * kl``. Scoring is deterministic: the decoder reads the
    mean code ``mu``, not a sample.

    Examples
    --------
    >>> import torch
    >>> vae = VAE(5, hidden=(24, 12), latent=3)
    >>> vae.layer_sizes
    [24, 12, 3, 12, 24]
    >>> vae.score_dense(torch.zeros(2, 5, 4, 6)).shape
    torch.Size([2, 4, 6])
    """

    task = "anomaly"
    dense = True
    anomaly_samples = "vectors"
    #: Training steps take the fused loss-and-gradient pass (:class:`_FusedVAELoss`); False
    #: runs the autograd graph instead (same draws, same loss, gradients equal up to rounding).
    fused_step: bool = True

    def __init__(
        self,
        n_features: int,
        hidden: Sequence[int] = (24, 12),
        latent: int = 3,
        kl_weight: float = 1.0,
        activation: str = "relu",
        score_kl: bool = False,
    ) -> None:
        super().__init__()
        hidden = [int(h) for h in hidden]
        if int(n_features) < 1 or int(latent) < 1 or any(h < 1 for h in hidden):
            msg = (
                f"VAE sizes must be positive: n_features={n_features}, hidden={hidden}, "
                f"latent={latent}"
            )
            raise ModelCardError(msg)
        if float(kl_weight) < 0:
            raise ModelCardError(f"kl_weight must be >= 0; got {kl_weight}")
        self.act = activation_fn(activation)
        self.activation = activation
        self.ndim = None
        self.in_channels = int(n_features)
        self.window = None
        self.context = (0, 0)
        self.kl_weight = float(kl_weight)
        self.score_kl = bool(score_kl)
        widths = [self.in_channels, *hidden]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(widths))
        self.mu = nn.Linear(widths[-1], int(latent))
        self.logvar = nn.Linear(widths[-1], int(latent))
        back = [int(latent), *reversed(hidden)]
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(back))
        self.out = nn.Linear(back[-1], self.in_channels)
        self.config = {
            "name": "vae",
            "kwargs": {
                "n_features": self.in_channels,
                "hidden": hidden,
                "latent": int(latent),
                "kl_weight": self.kl_weight,
                "activation": activation,
                "score_kl": self.score_kl,
            },
        }

    @property
    def layer_sizes(self) -> list[int]:
        """Widths of the hidden layers, encoder to decoder (the latent in the middle)."""
        return (
            [m.out_features for m in self.encoder]
            + [self.mu.out_features]
            + [m.out_features for m in self.decoder]
        )

    def encode(self, x: Any) -> tuple[Any, Any]:
        """Return ``(mu, logvar)`` of vectors ``x`` ``(N, C)``."""
        h = x
        for lin in self.encoder:
            h = self.act(lin(h))
        return self.mu(h), self.logvar(h)

    def decode(self, z: Any) -> Any:
        """Reconstruct vectors ``(N, C)`` from codes ``z`` ``(N, latent)``."""
        h = z
        for lin in self.decoder:
            h = self.act(lin(h))
        return self.out(h)

    def forward(self, x: Any, *, sample: bool | None = None) -> tuple[Any, Any, Any]:
        """Return ``(recon, mu, logvar)`` for vectors ``x`` ``(N, C)``.

        ``sample`` (default: ``self.training``) decodes a reparameterised draw
        ``mu + exp(logvar / 2) * eps`` instead of ``mu``.
        """
        mu, logvar = self.encode(x)
        if self.training if sample is None else sample:
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        else:
            z = mu
        return self.decode(z), mu, logvar

    @staticmethod
    def kl_divergence(mu: Any, logvar: Any) -> Any:
        """KL divergence of ``N(mu, exp(logvar))`` from ``N(0, I)`` per vector."""
        return -0.5 * torch.sum(1 + logvar - mu * mu - torch.exp(logvar), dim=-1)

    def loss(self, x: Any) -> tuple[Any, dict[str, Any]]:
        """Training loss of vectors ``x`` ``(N, C)``: ``(total, {"recon": ..., "kl": ...})``.

        In training mode with gradients on (a training step), the loss and its parameter
        gradients come from one fused pass (:class:`_FusedVAELoss`): the same draws of the
        code, the same loss, gradients equal to autograd's up to rounding, at a fraction of
        the per-step cost. Otherwise (evaluation, or an input that itself needs a gradient)
        the plain autograd graph below runs.
        """
        if (
            self.fused_step
            and self.training
            and torch.is_grad_enabled()
            and not x.requires_grad
            and x.ndim == 2
        ):
            eps = torch.randn((x.shape[0], self.mu.out_features), dtype=x.dtype, device=x.device)
            total, rec, kl = _FusedVAELoss.apply(self, x, eps, *self.parameters())
            return total, {"recon": rec, "kl": kl}
        recon, mu, logvar = self(x)
        rec = ((recon - x) ** 2).sum(dim=-1).mean()
        kl = self.kl_divergence(mu, logvar).mean()
        return rec + self.kl_weight * kl, {"recon": rec, "kl": kl}

    def score_vectors(self, x: Any) -> Any:
        """Anomaly score of vectors ``x`` ``(N, C)`` -> ``(N,)`` (deterministic, mean code)."""
        recon, mu, logvar = self(x, sample=False)
        s = ((recon - x) ** 2).sum(dim=-1)
        if self.score_kl:
            s = s + self.kl_divergence(mu, logvar)
        return s

    def _score_cells(self, x: Any) -> Any:
        # x: (C, n) channel-first cells. Left-multiplying by the weights keeps the input in its
        # memory layout (no transpose copy); the error is reduced per block of cells so only
        # (block, width) intermediates are ever alive.
        n = x.shape[1]
        out = x.new_empty(n)
        for s in range(0, n, _CELL_BLOCK):
            # a contiguous copy of the block: strided (C, block) operands make the small
            # matmuls several times slower than the copy costs
            xb = x[:, s : s + _CELL_BLOCK].contiguous()
            h = xb
            for lin in self.encoder:
                h = self.act(torch.addmm(lin.bias[:, None], lin.weight, h))
            henc = h
            mu = torch.addmm(self.mu.bias[:, None], self.mu.weight, henc)
            h = mu
            for lin in self.decoder:
                h = self.act(torch.addmm(lin.bias[:, None], lin.weight, h))
            # recon - x in one addmm: bias + W h - x
            err = torch.addmm(self.out.bias[:, None] - xb, self.out.weight, h)
            sc = (err * err).sum(dim=0)
            if self.score_kl:
                lv = torch.addmm(self.logvar.bias[:, None], self.logvar.weight, henc)
                sc = sc - 0.5 * (1 + lv - mu * mu - torch.exp(lv)).sum(dim=0)
            out[s : s + _CELL_BLOCK] = sc
        return out

    def score_dense(self, x: Any) -> Any:
        """Per-cell anomaly of ``(B, C, *spatial)`` -> ``(B, *spatial)``; no halo needed."""
        if x.ndim < 3 or x.shape[1] != self.in_channels:
            msg = (
                f"VAE with {self.in_channels} features expects (B, {self.in_channels}, "
                f"*spatial); got {tuple(x.shape)}"
            )
            raise ModelCardError(msg)
        b, c = x.shape[:2]
        spatial = tuple(x.shape[2:])
        flat = x.reshape(b, c, -1)
        out = torch.stack([self._score_cells(flat[i]) for i in range(b)])
        return out.reshape(b, *spatial)

    def score_windows(self, x: Any) -> Any:
        """Score at the centre cell of windows ``(B, C, *window)`` -> ``(B,)``."""
        centre = tuple(s // 2 for s in x.shape[2:])
        return self.score_vectors(x[(slice(None), slice(None), *centre)])


def _fused_loss_and_grads(model: VAE, x: Any, eps: Any) -> tuple[Any, Any, Any, list[Any]]:
    """Loss of a training batch and its gradient for every parameter, in one pass.

    ``x`` ``(N, C)`` vectors, ``eps`` ``(N, latent)`` the standard normal draws of the
    reparameterised code. Returns ``(total, recon, kl, grads)`` with ``grads`` in the order
    of ``model.parameters()``: the gradients of ``total`` (the batch mean of ``recon +
    kl_weight * kl``, as :meth:`VAE.loss`).

    Why by hand: the network is tiny (about 900 multiply-adds a cell), so an autograd step
    on a batch of a few hundred vectors is all per-operation cost (about 60 graph nodes and
    their bookkeeping), and on large batches the row-major activations of every layer, all
    kept alive until the backward pass, spill out of cache. Here the batch runs channel-first
    (the weights left-multiply, as in :meth:`VAE._score_cells`) in blocks of
    :data:`_TRAIN_BLOCK` cells, each block's backward right after its forward, with the
    gradients accumulated in place: about half the operations of the autograd graph, each
    on cache-resident data.
    """
    n = x.shape[0]
    k = model.kl_weight
    deriv = _DERIVATIVES[model.activation]
    enc = [(m.weight, m.bias[:, None]) for m in model.encoder]
    dec = [(m.weight, m.bias[:, None]) for m in model.decoder]
    (wm, bm), (wl, bl) = ((m.weight, m.bias[:, None]) for m in (model.mu, model.logvar))
    wo, bo = model.out.weight, model.out.bias[:, None]
    ne, nd = len(enc), len(dec)
    n_layers = ne + nd + 3
    gw: list[Any] = [None] * n_layers  # in the order of model.parameters()
    gb: list[Any] = [None] * n_layers
    inv = 1.0 / n
    sums: Any = None

    def acc(j: int, g: Any, h: Any) -> None:
        # the gradient of layer j's weight and bias from its output gradient g and input h
        if gw[j] is None:
            gw[j], gb[j] = g @ h.t(), g.sum(dim=1)
        else:
            gw[j].addmm_(g, h.t())
            gb[j].add_(g.sum(dim=1))

    for s in range(0, n, _TRAIN_BLOCK):
        xb = x[s : s + _TRAIN_BLOCK].t().contiguous()  # (C, b)
        eb = eps[s : s + _TRAIN_BLOCK].t()
        hs = [xb]
        for w, b in enc:
            hs.append(model.act(torch.addmm(b, w, hs[-1])))
        he = hs[-1]
        mu = torch.addmm(bm, wm, he)
        lv = torch.addmm(bl, wl, he)
        std = torch.exp(0.5 * lv)
        var = std * std
        gs = [torch.addcmul(mu, std, eb)]
        for w, b in dec:
            gs.append(model.act(torch.addmm(b, w, gs[-1])))
        err = torch.addmm(bo - xb, wo, gs[-1])  # recon - x
        # sum err^2 and sum (1 + lv - mu^2 - var) of the block, in one small tensor
        part = torch.stack([(err * err).sum(), (lv - mu * mu - var).sum()])
        sums = part if sums is None else sums + part
        # backward of total = (sum err^2 + k * sum kl) / n
        d = err * (2.0 * inv)
        acc(n_layers - 1, d, gs[-1])
        g = wo.t() @ d
        for i in range(nd - 1, -1, -1):
            g = deriv(g, gs[i + 1])
            acc(ne + 2 + i, g, gs[i])
            g = dec[i][0].t() @ g
        dmu = torch.add(g, mu, alpha=k * inv)
        dlv = torch.add(g * std * eb, var - 1, alpha=k * inv) * 0.5
        acc(ne, dmu, he)
        acc(ne + 1, dlv, he)
        g = torch.addmm(wl.t() @ dlv, wm.t(), dmu)
        for i in range(ne - 1, -1, -1):
            g = deriv(g, hs[i + 1])
            acc(i, g, hs[i])
            if i:
                g = enc[i][0].t() @ g
    rec_sum, kl_sum = sums[0], -0.5 * (sums[1] + n * wm.shape[0])
    rec, kl = rec_sum * inv, kl_sum * inv
    grads = [t for pair in zip(gw, gb, strict=True) for t in pair]
    return rec + k * kl, rec, kl, grads


class _FusedVAELoss(torch.autograd.Function):
    """Autograd wrapper of :func:`_fused_loss_and_grads`.

    The gradients are computed with the loss (the batch's forward and backward in one
    cache-friendly pass); the backward only scales them by the upstream gradient (the
    chain rule for a scalar loss).
    """

    @staticmethod
    def forward(ctx: Any, model: VAE, x: Any, eps: Any, *params: Any) -> Any:
        with torch.no_grad():
            total, rec, kl, grads = _fused_loss_and_grads(model, x, eps)
        ctx.save_for_backward(*grads)
        ctx.mark_non_differentiable(rec, kl)
        return total, rec, kl

    @staticmethod
    def backward(ctx: Any, g_total: Any, *_: Any) -> Any:
        return (None, None, None, *(g_total * g for g in ctx.saved_tensors))
