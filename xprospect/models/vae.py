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
        """Training loss of vectors ``x`` ``(N, C)``: ``(total, {"recon": ..., "kl": ...})``."""
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
