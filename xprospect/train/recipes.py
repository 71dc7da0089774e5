"""Training recipes: optimiser, learning-rate schedule, batch size and epochs, by name.

Two recipes come from the studies xprospect implements:

``"resnet-sgd"``
    The ResNet-50 stream-sediment study (Pangxidong, Minerals 2022, section 4.3): SGD, initial
    learning rate 0.01 halved every 30 epochs, weight decay 1e-4, batch 32, 120 epochs. The
    paper prints "momentum is 0.1"; we use the usual 0.9 (0.1 is almost certainly a typo for the
    torchvision ImageNet recipe the rest of the settings copy) and record it in the card.
``"adam"``
    The 3D Zaozigou study (Yu et al. 2022, section 3): Adam, learning rate 1e-3 decayed by 10 %
    every 5 epochs, batch 16, 500 epochs. The anomaly detectors (VAE, autoencoders, STOAD)
    train with it.

and one of xprospect's own:

``"reconstruction"``
    Self-supervised pre-training (:func:`xprospect.train.pretrain_reconstruction`): Adam at a
    constant learning rate 1e-3 (``gamma=1``), batch 32, 20 epochs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from xprospect._torch import import_torch
from xprospect.exceptions import XProspectError
from xprospect.train._flat_adam import FlatAdam, StepSchedule, flat_usable

__all__ = ["RECIPES", "Recipe", "get_recipe"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """An optimiser and step learning-rate schedule.

    Parameters
    ----------
    name : str
        Name recorded in model cards.
    optimizer : {"sgd", "adam", "adamw"}
        Optimiser family.
    lr : float
        Initial learning rate.
    momentum : float
        SGD momentum (ignored by Adam).
    weight_decay : float
        L2 penalty passed to the optimiser.
    batch_size : int
        Mini-batch size.
    epochs : int
        Number of epochs.
    step_size : int
        Epochs between learning-rate decays (``torch.optim.lr_scheduler.StepLR``).
    gamma : float
        Multiplicative decay applied every ``step_size`` epochs.
    """

    name: str
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 32
    epochs: int = 120
    step_size: int = 30
    gamma: float = 0.5

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise XProspectError(
                f"recipe {self.name!r}: optimizer={self.optimizer!r}; use 'sgd', 'adam' or 'adamw'"
            )
        for field in ("lr", "gamma"):
            if not getattr(self, field) > 0:
                raise XProspectError(f"recipe {self.name!r}: {field} must be > 0")
        for field in ("batch_size", "epochs", "step_size"):
            if int(getattr(self, field)) < 1:
                raise XProspectError(f"recipe {self.name!r}: {field} must be >= 1")
        if self.weight_decay < 0 or self.momentum < 0:
            raise XProspectError(f"recipe {self.name!r}: weight_decay and momentum must be >= 0")

    def replace(self, **changes: Any) -> Recipe:
        """Return a copy with the fields in ``changes`` replaced (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, stored in model cards."""
        return dataclasses.asdict(self)

    def make_optimizer(self, params: Iterable[Any], *, flat: bool = False) -> Any:
        """Build the torch optimiser over ``params``.

        With ``flat`` (Adam or AdamW over float32 CPU parameters that all receive a gradient
        at every step: see :mod:`xprospect.train._flat_adam`), a
        :class:`~xprospect.train._flat_adam.FlatAdam` over one parameter buffer instead, the
        same update with less per-step overhead.

        Adam and AdamW run torch's fused kernel when every parameter is a float32 tensor on
        the CPU or a CUDA device: one kernel per step instead of about eight tensor
        operations per parameter, which is most of a step's cost for the small anomaly
        networks (a VAE epoch measured 1.5 x faster on one CPU thread,
        ``asv_bench/benchmarks/training.py``). The update is the same formula; it differs
        from the per-tensor loop by float32 rounding only.
        """
        torch = import_torch()
        params = list(params)
        if self.optimizer == "sgd":
            return torch.optim.SGD(
                params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
            )
        if flat and flat_usable(params):
            return FlatAdam(
                params,
                lr=self.lr,
                weight_decay=self.weight_decay,
                decoupled=self.optimizer == "adamw",
            )
        cls = torch.optim.Adam if self.optimizer == "adam" else torch.optim.AdamW
        fused = bool(params) and all(_fusable(p) for p in params)
        return cls(params, lr=self.lr, weight_decay=self.weight_decay, fused=fused or None)

    def make_scheduler(self, optimizer: Any) -> Any:
        """Build the step learning-rate schedule, stepped once per epoch."""
        if isinstance(optimizer, FlatAdam):
            return StepSchedule(optimizer, step_size=self.step_size, gamma=self.gamma)
        torch = import_torch()
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=self.step_size, gamma=self.gamma
        )


def _fusable(p: Any) -> bool:
    """Tell whether a parameter (or a parameter group) can take the fused Adam kernel."""
    if isinstance(p, dict):
        return all(_fusable(q) for q in p.get("params", []))
    return str(p.dtype) == "torch.float32" and p.device.type in ("cpu", "cuda")


RECIPES: dict[str, Recipe] = {
    "resnet-sgd": Recipe(
        name="resnet-sgd",
        optimizer="sgd",
        lr=0.01,
        momentum=0.9,
        weight_decay=1e-4,
        batch_size=32,
        epochs=120,
        step_size=30,
        gamma=0.5,
    ),
    "adam": Recipe(
        name="adam",
        optimizer="adam",
        lr=1e-3,
        momentum=0.0,
        weight_decay=0.0,
        batch_size=16,
        epochs=500,
        step_size=5,
        gamma=0.9,
    ),
    "reconstruction": Recipe(
        name="reconstruction",
        optimizer="adam",
        lr=1e-3,
        momentum=0.0,
        weight_decay=0.0,
        batch_size=32,
        epochs=20,
        step_size=1,
        gamma=1.0,
    ),
}


def get_recipe(recipe: str | Recipe | Mapping[str, Any]) -> Recipe:
    """Resolve a recipe given by name, as a :class:`Recipe` or as a mapping of its fields.

    Parameters
    ----------
    recipe : str, Recipe or mapping
        ``"resnet-sgd"``, ``"adam"``, ``"reconstruction"``, a :class:`Recipe`, or a dict such
        as ``Recipe.to_dict()``.

    Returns
    -------
    Recipe

    Examples
    --------
    >>> get_recipe("resnet-sgd").lr
    0.01
    """
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise XProspectError(f"recipe={recipe!r} is unknown; available: {', '.join(RECIPES)}")
        return RECIPES[recipe]
    if isinstance(recipe, Mapping):
        try:
            return Recipe(**dict(recipe))
        except TypeError as err:
            raise XProspectError(f"recipe mapping {dict(recipe)!r} is not a Recipe: {err}") from err
    msg = f"recipe must be a name, a Recipe or a mapping; got {type(recipe).__name__}"
    raise XProspectError(msg)
