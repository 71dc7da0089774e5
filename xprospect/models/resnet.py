"""ResNet-18/34/50/101/152 in plain torch, layer for layer as torchvision builds them.

The module and parameter names (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``,
``fc``, ...) are torchvision's, so a torchvision state dict loads directly (through
:func:`xprospect.models.weights.load_compatible_state_dict` when the number of input channels
or classes differs). Bottleneck blocks are "v1.5": the stride sits on the 3x3 convolution.
``resnet50(in_channels=3, num_classes=1000)`` has torchvision's 25,557,032 parameters.

Reference: He, Zhang, Ren & Sun (2016), Deep residual learning for image recognition, CVPR.
"""

from __future__ import annotations

from typing import Any, ClassVar

from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError
from xprospect.models.base import ProspectModel
from xprospect.models.cnn import _init_weights, _positive_int, window_context
from xprospect.models.registry import register

torch = import_torch()
nn = torch.nn

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
]


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> Any:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> Any:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34).

    Parameters
    ----------
    inplanes, planes : int
        Input and output channels.
    stride : int, default 1
        Stride of the first convolution.
    downsample : torch.nn.Module, optional
        Projection of the identity path when shape changes.
    """

    expansion: ClassVar[int] = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: Any | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block forward pass."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)

    def last_bn(self) -> Any:
        """Return the batch norm closing the residual branch (zeroed by ``zero_init_residual``)."""
        return self.bn2


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, "v1.5") -> 1x1 convolutions with a residual (ResNet-50 and up).

    Parameters
    ----------
    inplanes : int
        Input channels.
    planes : int
        Bottleneck width; the block outputs ``planes * 4`` channels.
    stride : int, default 1
        Stride of the 3x3 convolution.
    downsample : torch.nn.Module, optional
        Projection of the identity path when shape changes.
    """

    expansion: ClassVar[int] = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: Any | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block forward pass."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)

    def last_bn(self) -> Any:
        """Return the batch norm closing the residual branch (zeroed by ``zero_init_residual``)."""
        return self.bn3


_BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}
_DEPTHS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}


class ResNet(ProspectModel):
    """Residual network classifier of windows ``(B, C, y, x)`` -> logits ``(B, num_classes)``.

    Stem: 7x7 stride-2 convolution, batch norm, ReLU, 3x3 stride-2 max pool; four stages of
    residual blocks (64, 128, 256, 512 planes; stages 2-4 halve the resolution); adaptive
    average pool to 1x1; a fully connected layer. Any window size works (the pool adapts), but
    the network is not dense: it is scored window by window.

    Parameters
    ----------
    block : {"basic", "bottleneck"}
        Residual block type.
    layers : sequence of 4 int
        Blocks per stage.
    in_channels : int, default 3
        Number of input elements.
    num_classes : int, default 2
        Number of classes; class 1 is "prospective".
    window : int, optional
        Window edge (cells) it is trained and scored on, recorded for scoring.
    zero_init_residual : bool, default False
        Zero the last batch norm of every residual branch, so each block starts as the identity.
    seed : int, optional
        Seed for weight initialisation; ``None`` uses torch's global RNG.
    name : str, default "resnet"
        Registry name written to ``config``; the factories pass theirs.

    Attributes
    ----------
    stages : list of tuple of str
        ``[("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",), ("layer4",)]``, used by
        :func:`xprospect.models.weights.freeze`.
    """

    dense = False

    def __init__(
        self,
        block: str,
        layers: tuple[int, int, int, int] | list[int],
        *,
        in_channels: int = 3,
        num_classes: int = 2,
        window: int | None = None,
        zero_init_residual: bool = False,
        seed: int | None = None,
        name: str = "resnet",
    ) -> None:
        super().__init__()
        if block not in _BLOCKS:
            raise ModelCardError(f"ResNet block must be one of {sorted(_BLOCKS)}; got {block!r}")
        if len(layers) != 4:
            raise ModelCardError(f"ResNet needs blocks for 4 stages; got layers={layers!r}")
        layers = [_positive_int(n, "layers[]") for n in layers]
        in_channels = _positive_int(in_channels, "in_channels")
        num_classes = _positive_int(num_classes, "num_classes")
        if window is not None:
            window = _positive_int(window, "window")
        block_cls = _BLOCKS[block]

        self.ndim = 2
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.window = window
        self.context = window_context(window)

        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block_cls, 64, layers[0])
        self.layer2 = self._make_layer(block_cls, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block_cls, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block_cls, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block_cls.expansion, num_classes)
        self.stages: list[tuple[str, ...]] = [
            ("conv1", "bn1"),
            ("layer1",),
            ("layer2",),
            ("layer3",),
            ("layer4",),
        ]

        _init_weights(self, seed)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock | Bottleneck):
                    nn.init.zeros_(m.last_bn().weight)

        kwargs: dict[str, Any] = {
            "in_channels": in_channels,
            "num_classes": num_classes,
            "window": window,
            "zero_init_residual": bool(zero_init_residual),
            "seed": seed,
        }
        if name == "resnet":
            kwargs = {"block": block, "layers": list(layers), **kwargs}
        self.config = {"name": name, "kwargs": kwargs}

    def _make_layer(self, block: Any, planes: int, blocks: int, stride: int = 1) -> Any:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        mods = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        mods += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(B, 512 * expansion)`` of windows ``(B, C, y, x)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            msg = (
                f"{self.config.get('name', 'ResNet')}(in_channels={self.in_channels}) needs "
                f"input (B, C, y, x) with C={self.in_channels}; got shape {tuple(x.shape)}"
            )
            raise ModelCardError(msg)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` of windows ``(B, C, y, x)``."""
        return self.fc(self.features(x))


@register("resnet")
def resnet(
    block: str,
    layers: tuple[int, int, int, int] | list[int],
    *,
    in_channels: int = 3,
    num_classes: int = 2,
    window: int | None = None,
    zero_init_residual: bool = False,
    seed: int | None = None,
) -> ResNet:
    """Build a :class:`ResNet` of any depth (registered as ``"resnet"``)."""
    return ResNet(
        block,
        layers,
        in_channels=in_channels,
        num_classes=num_classes,
        window=window,
        zero_init_residual=zero_init_residual,
        seed=seed,
    )


def _factory(name: str) -> Any:
    block, layers = _DEPTHS[name]
    depth = name.removeprefix("resnet")
    kind = "BasicBlock" if block == "basic" else "Bottleneck (v1.5)"

    def build(
        in_channels: int = 3,
        num_classes: int = 2,
        *,
        window: int | None = None,
        zero_init_residual: bool = False,
        seed: int | None = None,
    ) -> ResNet:
        return ResNet(
            block,
            layers,
            in_channels=in_channels,
            num_classes=num_classes,
            window=window,
            zero_init_residual=zero_init_residual,
            seed=seed,
            name=name,
        )

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"""ResNet-{depth} ({kind} blocks {list(layers)}), registered as ``"{name}"``.

    Parameters
    ----------
    in_channels : int, default 3
        Number of input elements.
    num_classes : int, default 2
        Number of classes; class 1 is "prospective".
    window : int, optional
        Window edge (cells) the model is trained and scored on.
    zero_init_residual : bool, default False
        Start every residual block as the identity.
    seed : int, optional
        Seed for weight initialisation.

    Returns
    -------
    ResNet
    """
    return register(name)(build)


resnet18 = _factory("resnet18")
resnet34 = _factory("resnet34")
resnet50 = _factory("resnet50")
resnet101 = _factory("resnet101")
resnet152 = _factory("resnet152")
