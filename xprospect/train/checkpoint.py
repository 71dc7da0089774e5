"""Checkpoints: weights, architecture config and model card in one torch file, loaded safely.

A checkpoint is ``{"format": 1, "config": model.config, "state_dict": ..., "card": ...}`` where
``config`` and ``card`` hold only JSON types, so that :func:`load_checkpoint` can read it with
``torch.load(..., weights_only=True)`` (no pickled code is ever executed) and rebuild the network
through :func:`xprospect.models.registry.from_config`.

The card is validated against its schema (:func:`xprospect.models.card.validate_card`) when a
checkpoint is written and when it is read. A checkpoint whose card describes no data (empty,
missing, or notes only) would let scoring skip every check and the normalisation, so
:func:`load_checkpoint` refuses it unless asked explicitly with ``allow_no_card=True`` (for a
user's own or untrained module).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError, XProspectWarning
from xprospect.io._atomic import atomic_path, write_error
from xprospect.models.card import has_card, validate_card
from xprospect.models.registry import from_config
from xprospect.models.wrap import WRAPPED, rebuild

torch = import_torch()

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "read_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = 1


def _jsonable(obj: Any, what: str, path: Path) -> Any:
    """Copy ``obj`` deeply into JSON types only (numpy scalars become numbers)."""

    def default(o: Any) -> Any:
        if hasattr(o, "tolist"):
            return o.tolist()
        if isinstance(o, os.PathLike):
            return os.fspath(o)
        raise TypeError(f"{type(o).__name__} is not JSON-able")

    try:
        return json.loads(json.dumps(obj, default=default))
    except (TypeError, ValueError) as err:
        raise ModelCardError(
            f"cannot write {path}: the model's {what} is not JSON-able ({err})"
        ) from err


def write_checkpoint(
    path: str | Path,
    *,
    config: Mapping[str, Any],
    state_dict: Mapping[str, Any],
    card: Mapping[str, Any],
) -> Path:
    """Write a checkpoint file from its parts (atomically: a temporary file, then a rename).

    Parameters
    ----------
    path : str or Path
        Destination file; parent folders are created.
    config : mapping
        ``{"name": ..., "kwargs": {...}}`` of the model.
    state_dict : mapping
        Tensors of the model (moved to the CPU).
    card : mapping
        The model card.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ModelCardError
        The card is malformed, the config names no architecture, or either is not JSON-able.
    DataError
        The file cannot be written (disk full, read-only target, permission denied); the
        message names the path and the reason, and no file (partial or temporary) is left.
    """
    path = Path(path)
    validate_card(card, f"cannot write {path}")
    if not config or "name" not in config:
        raise ModelCardError(
            f"cannot write {path}: the model has no registry config ({{'name', 'kwargs'}}), so "
            "it could not be rebuilt; build it with xprospect.models.create or set .config"
        )
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": _jsonable(dict(config), "config", path),
        "state_dict": {str(k): v.detach().cpu() for k, v in state_dict.items()},
        "card": _jsonable(dict(card), "card", path),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(path, err) from err
    with atomic_path(path) as tmp:  # disk full / read-only: a DataError, nothing left behind
        torch.save(payload, tmp)
    return path


def save_checkpoint(model_or_fit: Any, path: str | Path) -> Path:
    """Save a trained model (or a :class:`~xprospect.train.FitResult`) to ``path``.

    Parameters
    ----------
    model_or_fit : ProspectModel or FitResult
        The model; its ``config`` must name a registered architecture, or the model is a
        user's module wrapped by :func:`xprospect.models.wrap` (its weights, card and the
        import path of its class are stored; reload it with ``allow=[TheClass]``).
    path : str or Path
        Destination file (conventionally ``*.pt``).

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from xprospect.models import SmallCNN
    >>> net = SmallCNN(4, window=8, widths=(4,), seed=0)
    >>> p = save_checkpoint(net, pathlib.Path(tempfile.mkdtemp()) / "net.pt")
    >>> import warnings
    >>> with warnings.catch_warnings():  # an untrained net has no card: an explicit opt-in
    ...     warnings.simplefilter("ignore")
    ...     type(load_checkpoint(p, allow_no_card=True)).__name__
    'SmallCNN'
    """
    model = getattr(model_or_fit, "model", model_or_fit)
    if not isinstance(model, torch.nn.Module):
        raise ModelCardError(
            f"save_checkpoint needs a model or a FitResult; got {type(model_or_fit).__name__}"
        )
    if not getattr(model, "config", None) and not hasattr(model, "score_windows"):
        raise ModelCardError(
            f"save_checkpoint: {type(model).__name__} is a plain torch module; wrap it first "
            "(xprospect.models.wrap(module, kind='window' or 'dense', ...)) so that the "
            "checkpoint records how to rebuild and score it"
        )
    return write_checkpoint(
        path,
        config=getattr(model, "config", {}) or {},
        state_dict=model.state_dict(),
        card=getattr(model, "card", {}) or {},
    )


def read_checkpoint(path: str | Path, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Read and validate a checkpoint's parts with ``weights_only=True``.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`save_checkpoint`.
    map_location : str or torch.device
        Where tensors are loaded.

    Returns
    -------
    dict
        ``format``, ``config``, ``state_dict`` and ``card``.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelCardError(f"no checkpoint file at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        msg = (
            f"{path} is not a readable xprospect checkpoint (corrupt, truncated, or holding "
            f"objects that weights_only=True refuses): {type(err).__name__}: {err}"
        )
        raise ModelCardError(msg) from err
    if not isinstance(payload, dict) or not {"format", "config", "state_dict"} <= set(payload):
        keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise ModelCardError(
            f"{path} is not an xprospect checkpoint: expected keys format, config, state_dict, "
            f"card; found {keys}"
        )
    if payload["format"] != CHECKPOINT_FORMAT:
        raise ModelCardError(
            f"{path} has checkpoint format {payload['format']!r}; this "
            f"xprospect reads format {CHECKPOINT_FORMAT}"
        )
    payload.setdefault("card", {})
    validate_card(payload["card"], str(path))
    return payload


def load_checkpoint(
    path: str | Path,
    *,
    map_location: Any = "cpu",
    allow_no_card: bool = False,
    allow: Sequence[type] = (),
) -> Any:
    """Rebuild a model from a checkpoint, with its weights and card, in eval mode.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`save_checkpoint` (or by :func:`~xprospect.train.fit`).
    map_location : str or torch.device
        Where tensors are loaded (default the CPU).
    allow_no_card : bool
        Load a checkpoint whose card describes no training data (empty, missing, or notes
        only, as for an untrained or hand-built module). Scoring such a model checks
        nothing (elements, resolution, CRS) and normalises nothing, so this is an explicit
        opt-in: by default it is refused. An :class:`XProspectWarning` says so when used.
    allow : sequence of classes
        The module classes trusted to rebuild a wrapped model
        (:func:`xprospect.models.wrap`): the checkpoint names its module's class by import
        path, and only a class given here with that path is built (nothing is imported or
        unpickled from the file).

    Returns
    -------
    ProspectModel
        The network, ``card`` restored; scoring it checks the card against the stack.

    Raises
    ------
    ModelCardError
        The file is missing, corrupt, foreign, its weights do not fit its architecture,
        its card is malformed (naming the key), or it has no card and ``allow_no_card``
        is False.
    """
    path = Path(path)
    payload = read_checkpoint(path, map_location=map_location)
    if not has_card(payload["card"]):
        if not allow_no_card:
            msg = (
                f"{path} has no model card describing its training data (elements, "
                "resolution, CRS, normalisation), so scoring could check nothing; pass "
                "allow_no_card=True to load it anyway (for your own or an untrained module)"
            )
            raise ModelCardError(msg)
        warnings.warn(
            f"{path} has no model card: scoring it checks no elements, resolution "
            "or CRS and applies no normalisation",
            XProspectWarning,
            stacklevel=2,
        )
    try:
        if payload["config"].get("name") == WRAPPED:
            model = rebuild(payload["config"], allow)
        else:
            model = from_config(payload["config"])
    except ModelCardError as err:
        raise ModelCardError(f"{path}: cannot rebuild the model: {err}") from err
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as err:
        raise ModelCardError(
            f"{path}: the weights do not fit {payload['config']['name']!r}: {err}"
        ) from err
    model.card = dict(payload["card"])
    if isinstance(map_location, str | torch.device):
        model.to(map_location)
    model.eval()
    return model
