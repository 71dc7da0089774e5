"""Networks in plain torch: ResNets, small CNNs, VAE, convolutional autoencoders, STOAD."""

from __future__ import annotations

from xprospect.models.base import ProspectModel

__all__ = ["ProspectModel"]
