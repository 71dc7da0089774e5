"""Networks in plain torch: ResNets, small CNNs, VAE, convolutional autoencoders, STOAD."""

from __future__ import annotations

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

__all__ = [
    "STOAD",
    "VAE",
    "BasicBlock",
    "Bottleneck",
    "ConvAutoencoder",
    "DeepEnsemble",
    "MultiScaleCNN",
    "ProspectModel",
    "ResNet",
    "STOADStudent",
    "SmallCNN",
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
]
