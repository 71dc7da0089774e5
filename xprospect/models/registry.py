"""Models by name, so that checkpoints can rebuild an architecture from its config."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from xprospect.exceptions import ModelCardError

__all__ = ["available", "create", "from_config", "register"]

_REGISTRY: dict[str, Callable[..., Any]] = {}


def register(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a model class or factory under ``name``.

    Parameters
    ----------
    name : str
        Registry name, stored in every model's ``config["name"]``.

    Returns
    -------
    callable
        A decorator returning the factory unchanged.
    """

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ModelCardError(f"a model named {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def _ensure_builtins() -> None:
    # Importing the package registers its models; the model modules import this registry to
    # register themselves, so the package cannot be imported at the top of this module.
    import xprospect.models  # noqa: F401


def available() -> list[str]:
    """Names of the registered models, sorted."""
    _ensure_builtins()
    return sorted(_REGISTRY)


def create(name: str, **kwargs: Any) -> Any:
    """Build the model registered as ``name`` with ``kwargs``.

    Parameters
    ----------
    name : str
        A name from :func:`available`.
    **kwargs
        Constructor arguments.

    Returns
    -------
    ProspectModel
        The model, with ``config`` set to ``{"name": name, "kwargs": kwargs}`` unless the model set
        a fuller one itself.
    """
    _ensure_builtins()
    if name not in _REGISTRY:
        msg = f"no model named {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        raise ModelCardError(msg)
    model = _REGISTRY[name](**kwargs)
    if not getattr(model, "config", None):
        model.config = {"name": name, "kwargs": dict(kwargs)}
    return model


def from_config(config: Mapping[str, Any]) -> Any:
    """Rebuild an (untrained) model from its ``config`` mapping."""
    if not isinstance(config, Mapping) or "name" not in config:
        raise ModelCardError(f"a model config needs a 'name' and 'kwargs'; got {config!r}")
    return create(str(config["name"]), **dict(config.get("kwargs", {})))
