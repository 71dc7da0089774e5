"""Networks in plain torch: ResNets, small CNNs, VAE, convolutional autoencoders, STOAD.

A user's own ``torch.nn.Module`` joins them through :func:`wrap` (see ``docs/models.md``).
"""

from __future__ import annotations

from xprospect.models.anomaly_ensemble import AnomalyEnsemble
from xprospect.models.autoencoder import ConvAutoencoder
from xprospect.models.base import ProspectModel
from xprospect.models.cnn import SmallCNN, cnn3d, small_cnn
from xprospect.models.ensemble import DeepEnsemble, deep_ensemble
from xprospect.models.multiscale import MultiScaleCNN, multiscale_cnn
from xprospect.models.resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
)
from xprospect.models.stoad import STOAD, STOADStudent
from xprospect.models.vae import VAE
from xprospect.models.weights import (
    adapt_first_conv,
    freeze,
    load_compatible_state_dict,
    unfreeze,
)
from xprospect.models.wrap import WrappedModel, wrap

__all__ = [
    "STOAD",
    "VAE",
    "AnomalyEnsemble",
    "BasicBlock",
    "Bottleneck",
    "ConvAutoencoder",
    "DeepEnsemble",
    "MultiScaleCNN",
    "ProspectModel",
    "ResNet",
    "STOADStudent",
    "SmallCNN",
    "WrappedModel",
    "adapt_first_conv",
    "cnn3d",
    "deep_ensemble",
    "freeze",
    "load_compatible_state_dict",
    "multiscale_cnn",
    "resnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "small_cnn",
    "unfreeze",
    "wrap",
]
