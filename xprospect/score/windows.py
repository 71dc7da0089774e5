"""Scoring of a set of windows (a PatchSet or a torch dataset), one score per window.

The stack engine (:mod:`xprospect.score.engine`) scores every cell of a grid; this scores
windows already cut (training, validation or test patches), normalised with the model card's
statistics exactly as training normalised them. :func:`xprospect.score.score` dispatches here
when given windows instead of a stack (this was ``xprospect.train.predict``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xprospect._torch import (
    as_tensor_list,
    batch_xy,
    import_torch,
    make_loader,
    normalise_batch,
    resolve_device,
)
from xprospect.exceptions import ModelCardError

__all__ = ["is_patchset", "is_window_set", "score_window_set"]


def is_patchset(obj: Any) -> bool:
    """Tell whether ``obj`` is a :class:`~xprospect.patches.PatchSet` (by its interface)."""
    return hasattr(obj, "torch_dataset") and hasattr(obj, "subset") and hasattr(obj, "labels")


def is_window_set(obj: Any) -> bool:
    """Tell whether ``obj`` holds windows: a PatchSet or a map-style dataset (not xarray)."""
    if is_patchset(obj):
        return True
    is_xarray = hasattr(obj, "dims") and hasattr(obj, "coords")
    return not is_xarray and hasattr(obj, "__len__") and hasattr(obj, "__getitem__")


def score_window_set(
    data: Any, model: Any, *, batch_size: int = 256, device: Any = "auto"
) -> np.ndarray:
    """Score every window of ``data`` with ``model``, normalised as in training.

    Parameters
    ----------
    data : PatchSet or torch Dataset
        Windows to score (a PatchSet is read unaugmented, centre-cropped to the card's crop).
    model : ProspectModel
        A trained model; its card's ``mean``/``std`` are applied as training did (NaN cells
        then set to 0, the mean). When the card lists elements, a PatchSet's elements must
        match them.
    batch_size : int
        Windows per batch.
    device : str or torch.device
        ``"auto"`` uses CUDA when present.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float32 scores (:meth:`score_windows`: the probability of class 1 for
        classifiers) in the order of ``data``.
    """
    torch = import_torch()
    card = getattr(model, "card", {}) or {}
    if is_patchset(data):
        want = card.get("elements")
        if want is not None and list(want) != list(data.elements):
            raise ModelCardError(
                f"the model was trained on elements {list(want)}; the windows "
                f"have {list(data.elements)}"
            )
        data = data.torch_dataset(augment=False, crop=card.get("crop"), seed=0)
    dev = resolve_device(device)
    first, _ = batch_xy(data[0])
    n_ch = int(torch.as_tensor(first).shape[0])
    mean = as_tensor_list(card.get("mean") or [0.0] * n_ch, dev)
    std = as_tensor_list(card.get("std") or [1.0] * n_ch, dev)
    loader = make_loader(data, batch_size=batch_size, shuffle=False, seed=0, device=dev)
    was = model.training
    model.eval()
    model.to(dev)
    out = []
    try:
        with torch.inference_mode():
            for batch in loader:
                x, _ = batch_xy(batch)
                x = normalise_batch(x.to(dev, dtype=torch.float32), mean, std)
                out.append(model.score_windows(x).float().cpu().numpy())
    finally:
        model.train(was)
    return np.concatenate(out) if out else np.zeros(0, dtype="float32")
