"""Per-element attribution maps: which element drives the score of each cell.

Both methods run through :func:`xprospect.score.score`, so the attribution maps are stitched,
chunked, lazy and georeferenced exactly like the score they explain, one variable per element:

* :func:`occlusion_maps` (any model ``score`` applies, baselines included): the score minus
  the score with one element replaced by its training mean;
* :func:`integrated_gradients_maps` (torch window and dense networks): the integrated gradient
  of the score with respect to each element over the window that scores the cell
  (Sundararajan et al., 2017), from the training mean as baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xprospect._dims import ELEMENT_DIM, get_crs, write_crs
from xprospect.exceptions import DataError, ModelCardError
from xprospect.score import score

__all__ = ["integrated_gradients_maps", "occlusion_maps"]


def _element_names(stack: Any) -> list[str]:
    if not isinstance(stack, xr.DataArray) or ELEMENT_DIM not in stack.dims:
        raise DataError("attribution needs an (element, y, x) stack DataArray")
    return [str(e) for e in stack[ELEMENT_DIM].values]


def _is_network(model: Any) -> bool:
    return hasattr(model, "score_windows")


def _baseline_values(stack: xr.DataArray, model: Any, baseline: Any) -> list[Any]:
    """Raw baseline value per element: given, the card's training mean, or the stack's mean."""
    names = _element_names(stack)
    if baseline is not None:
        if isinstance(baseline, Mapping):
            missing = [n for n in names if n not in baseline]
            if missing:
                raise DataError(f"baseline gives no value for elements {missing}")
            vals = [float(baseline[n]) for n in names]
        else:
            vals = [float(v) for v in np.asarray(baseline, dtype="float64").ravel()]
            if len(vals) != len(names):
                raise DataError(f"{len(vals)} baseline values for {len(names)} elements {names}")
        if not np.isfinite(vals).all():
            raise DataError(f"baseline values must be finite; got {vals}")
        return vals
    card = getattr(model, "card", None) or {}
    mean = card.get("mean") if isinstance(card, Mapping) else None
    if mean is not None and len(mean) == len(names):
        return [float(v) for v in mean]
    # no record of the training data: the map's own mean per element (lazy on dask)
    spatial = [d for d in stack.dims if d != ELEMENT_DIM]
    return [stack.isel({ELEMENT_DIM: i}).mean(spatial) for i in range(len(names))]


def _finish(maps: dict[str, xr.DataArray], like: xr.DataArray, attrs: dict[str, Any]) -> xr.Dataset:
    out = xr.Dataset(
        {k: v.drop_vars([c for c in v.coords if c not in v.dims]) for k, v in maps.items()}
    )
    coords = {k: v for k, v in like.coords.items() if k not in like.dims}
    out = out.assign_coords(coords)
    out.attrs = attrs
    crs = get_crs(like)
    return write_crs(out, crs) if crs is not None else out


def occlusion_maps(
    stack: xr.DataArray,
    model: Any,
    *,
    baseline: Sequence[float] | Mapping[str, float] | None = None,
    **score_kwargs: Any,
) -> xr.Dataset:
    """Occlusion attribution: the score minus the score with one element at its training mean.

    For each element ``e``, the stack is scored again with ``e`` replaced by its baseline
    value everywhere it is finite; the attribution is ``score(stack) - score(occluded)``
    (positive: the element raises the cell's score). Works for any model
    :func:`xprospect.score.score` applies, so the maps are stitched and lazy like the score.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(element, y, x)`` or ``(element, z, y, x)`` evidence stack.
    model : fitted model
        A network or a fitted :mod:`xprospect.baselines` model.
    baseline : sequence or mapping of float, optional
        Value of each element in the stack's units. Default: the training mean from the
        network's card; for a model without one (baselines), the stack's own mean.
    **score_kwargs
        Passed to :func:`~xprospect.score.score` (networks only).

    Returns
    -------
    xarray.Dataset
        One variable per element (its attribution) and ``score`` (the model's map), on the
        stack's grid and CRS, lazy when the stack is dask backed.

    Examples
    --------
    >>> import xprospect as xp
    >>> world = xp.synthetic.survey(seed=0, n_samples=300)
    >>> grid = xp.make_grid(like=world.samples, resolution=2000.0)
    >>> stack = world.samples.prospect.idw(like=grid, k=8).prospect.stack(["Au", "Cu"])
    >>> lr = xp.baselines.LogisticModel(seed=0).fit(stack, world.deposits)
    >>> sorted(occlusion_maps(stack, lr).data_vars)
    ['Au', 'Cu', 'score']
    """
    names = _element_names(stack)
    kw = score_kwargs if _is_network(model) else {}
    values = _baseline_values(stack, model, baseline)
    full = score(stack, model, **kw)
    el = stack[ELEMENT_DIM]
    maps: dict[str, xr.DataArray] = {}
    for i, name in enumerate(names):
        hit = (el == el[i]) & stack.notnull()
        occluded = stack.where(~hit, values[i]).transpose(*stack.dims)
        diff = full - score(occluded, model, **kw)
        diff.attrs = {"long_name": f"occlusion attribution of {name}", "baseline": str(values[i])}
        maps[name] = diff
    maps["score"] = full
    attrs = {"method": "occlusion", "elements": names}
    return _finish(maps, full, attrs)


def integrated_gradients_maps(
    stack: xr.DataArray,
    model: Any,
    *,
    steps: int = 32,
    baseline: Sequence[float] | Mapping[str, float] | None = None,
    **score_kwargs: Any,
) -> xr.Dataset:
    """Integrated-gradient attribution of each element, per cell, for a torch network.

    Each cell is explained through the window that scores it (a dense network's context
    window): the attribution of element ``e`` is the path integral, from the baseline window
    to the cell's window, of the gradient of the network's score with respect to ``e``,
    times the change of ``e`` (Sundararajan et al., 2017; ``steps`` midpoint steps). Summed
    over the elements it approaches ``score(window) - score(baseline window)``. Scored
    through :func:`xprospect.score.score` (as a window model, with ``stride`` and
    ``upsample`` as given), so the maps are stitched and lazy like a score.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(element, y, x)`` or ``(element, z, y, x)`` evidence stack.
    model : ProspectModel
        A trained window or dense torch network.
    steps : int
        Steps of the path integral (the cost is ``steps`` gradient passes per element).
    baseline : sequence or mapping of float, optional
        Baseline value of each element in the stack's units; default the training mean of
        the network's card (the normalised origin; also the value ``score`` pads edges with).
    **score_kwargs
        Passed to :func:`~xprospect.score.score` (``stride``, ``upsample``, ``device``...).

    Returns
    -------
    xarray.Dataset
        One variable per element, on the stack's grid and CRS, lazy when the stack is dask
        backed.

    Raises
    ------
    ModelCardError
        For a model that is not a torch network.
    """
    if not _is_network(model) or not hasattr(model, "named_modules"):
        raise ModelCardError(
            f"integrated gradients need a torch network; got {type(model).__name__} "
            "(use occlusion_maps for other models)"
        )
    if int(steps) != steps or steps < 1:
        raise DataError(f"steps must be a positive integer; got {steps!r}")
    names = _element_names(stack)
    card = getattr(model, "card", None) or {}
    mean = card.get("mean") if isinstance(card, Mapping) else None
    std = card.get("std") if isinstance(card, Mapping) else None
    if baseline is None:
        raw = np.asarray(mean, dtype="float64") if mean is not None else np.zeros(len(names))
    else:
        raw = np.asarray(_baseline_values(stack, model, baseline), dtype="float64")
    m = np.asarray(mean, dtype="float64") if mean is not None else np.zeros(len(names))
    s = np.asarray(std, dtype="float64") if std is not None else np.ones(len(names))
    base = (raw - m) / s  # in the units the network sees (score normalises by the card)
    # lazy: torch (the wrapper is a torch module), loaded when a network is explained
    from xprospect.evaluate._torchwrap import IntegratedGradients

    kw = dict(score_kwargs)
    kw.setdefault("method", "windows")
    maps: dict[str, xr.DataArray] = {}
    for i, name in enumerate(names):
        wrapper = IntegratedGradients(model, i, int(steps), base)
        a = score(stack, wrapper, **kw).rename(name)
        a.attrs = {
            "long_name": f"integrated gradient of {name}",
            "steps": int(steps),
            "baseline": float(raw[i]),
        }
        maps[name] = a
    first = next(iter(maps.values()))
    return _finish(maps, first, {"method": "integrated_gradients", "elements": names})
