"""Lazy torch import and device resolution, shared by models/, train/ and score/."""

from __future__ import annotations

from typing import Any

__all__ = ["import_torch", "resolve_device"]


def import_torch() -> Any:
    """Import torch, or raise an error that says how to install it."""
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a declared dependency
        msg = (
            "xprospect's deep-learning parts need torch: install it first with "
            "`pip install torch==2.13.0` (CPU) or the CUDA build for your machine"
        )
        raise ImportError(msg) from err
    return torch


def resolve_device(device: Any = "auto") -> Any:
    """Return a ``torch.device``: ``"auto"`` picks CUDA when present, else CPU.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``.

    Returns
    -------
    torch.device
    """
    torch = import_torch()
    if isinstance(device, torch.device):
        dev = device
    elif device is None or device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as err:
            from xprospect.exceptions import XProspectError

            raise XProspectError(f"device={device!r} is not a torch device name") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        from xprospect.exceptions import XProspectError

        raise XProspectError(f"device={device!r} was asked for but CUDA is not available here")
    return dev
