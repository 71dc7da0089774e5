"""Model cards: what a trained model expects of the stack it scores.

A card is a JSON-able dict stored with the weights. :func:`check_card` refuses a stack whose
elements, element order, resolution, dimensionality or CRS differ from the training data, and
:func:`normalise` applies the training normalisation, so that a model is never silently fed data
on another scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from pyproj import CRS

from xprospect._dims import ELEMENT_DIM, get_crs, grid_geometry
from xprospect._version import __version__
from xprospect.exceptions import ModelCardError

__all__ = ["check_card", "make_card", "normalise"]

_RES_RTOL = 1e-6


def _elements(stack: xr.DataArray) -> list[str]:
    if ELEMENT_DIM not in stack.dims:
        msg = f"a model input needs an {ELEMENT_DIM!r} dimension; got dims {tuple(stack.dims)}"
        raise ModelCardError(msg)
    return [str(e) for e in stack[ELEMENT_DIM].values]


def make_card(stack: xr.DataArray, *, window: int | Sequence[int] | None = None,
              mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
              data_hash: str | None = None, **extra: Any) -> dict[str, Any]:
    """Describe the data a model is trained on.

    Parameters
    ----------
    stack : xarray.DataArray
        The training stack (``element``, y, x) or (``element``, z, y, x).
    window : int or sequence of int, optional
        Window (patch) edge in cells the model sees.
    mean, std : sequence of float, optional
        Per-element normalisation applied before the model (same order as the elements).
    data_hash : str, optional
        A hash of the training data (windows and labels).
    **extra
        Further JSON-able entries (recipe, epochs, ...).

    Returns
    -------
    dict
        Keys ``elements``, ``ndim``, ``dims``, ``resolution``, ``crs`` (WKT or None), ``window``,
        ``mean``, ``std``, ``data_hash``, ``xprospect_version`` and ``extra``'s keys.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> s = xr.DataArray(np.zeros((2, 3, 4)), dims=("element", "y", "x"),
    ...                  coords={"element": ["Au", "Ag"], "y": [2.0, 1.0, 0.0],
    ...                          "x": [0.0, 1.0, 2.0, 3.0]})
    >>> make_card(s, window=3)["elements"]
    ['Au', 'Ag']
    """
    elements = _elements(stack)
    geom = grid_geometry(stack)
    crs = get_crs(stack)
    n = len(elements)
    for name, v in (("mean", mean), ("std", std)):
        if v is not None and len(v) != n:
            raise ModelCardError(f"{name} has {len(v)} values for {n} elements {elements}")
    if std is not None and not np.all(np.asarray(std, dtype=float) > 0):
        raise ModelCardError(f"std must be positive for every element; got {list(std)}")
    if window is not None:
        window = [int(w) for w in np.broadcast_to(np.asarray(window), (geom.ndim,))]
    card: dict[str, Any] = {
        "elements": elements,
        "ndim": geom.ndim,
        "dims": list(geom.dims),
        "resolution": [abs(float(s)) for s in geom.step],
        "crs": crs.to_wkt() if crs is not None else None,
        "window": window,
        "mean": None if mean is None else [float(v) for v in mean],
        "std": None if std is None else [float(v) for v in std],
        "data_hash": data_hash,
        "xprospect_version": __version__,
    }
    card.update(extra)
    return card


def check_card(card: Mapping[str, Any], stack: xr.DataArray) -> None:
    """Raise :class:`ModelCardError` when ``stack`` is not what the card's model was trained on.

    Checks element names and order, number of spatial dims, resolution (relative 1e-6) and CRS.
    An empty card (an untrained or hand-built model) passes.
    """
    if not card:
        return
    elements = _elements(stack)
    want = card.get("elements")
    if want is not None and list(want) != elements:
        missing = [e for e in want if e not in elements]
        extra = [e for e in elements if e not in want]
        if missing or extra:
            msg = (f"the model was trained on elements {list(want)}; the stack has {elements} "
                   f"(missing {missing}, unexpected {extra})")
        else:
            msg = (f"the model was trained on elements in the order {list(want)}; the stack has "
                   f"them in the order {elements}; reorder with stack.sel(element={list(want)})")
        raise ModelCardError(msg)
    geom = grid_geometry(stack)
    if card.get("ndim") is not None and int(card["ndim"]) != geom.ndim:
        msg = f"the model was trained on {card['ndim']}-D grids; the stack is {geom.ndim}-D"
        raise ModelCardError(msg)
    res = card.get("resolution")
    if res is not None:
        have = [abs(float(s)) for s in geom.step]
        if len(res) != len(have) or not np.allclose(have, res, rtol=_RES_RTOL):
            msg = (f"the model was trained at resolution {list(res)} ({', '.join(geom.dims)}); "
                   f"the stack has {have}; regrid it to the model's resolution first")
            raise ModelCardError(msg)
    if card.get("crs"):
        want_crs = CRS.from_user_input(card["crs"])
        crs = get_crs(stack)
        if crs is None or not crs.equals(want_crs, ignore_axis_order=True):
            have_crs = "none" if crs is None else crs.to_string()
            msg = (f"the model was trained in CRS {want_crs.to_string()}; the stack's CRS is "
                   f"{have_crs}")
            raise ModelCardError(msg)


def normalise(stack: xr.DataArray, card: Mapping[str, Any]) -> xr.DataArray:
    """Apply the card's per-element ``(x - mean) / std`` lazily (unchanged if the card has none)."""
    mean, std = card.get("mean"), card.get("std")
    if mean is None and std is None:
        return stack
    n = stack.sizes[ELEMENT_DIM]
    m = xr.DataArray(np.asarray(mean if mean is not None else [0.0] * n, dtype=stack.dtype),
                     dims=ELEMENT_DIM)
    s = xr.DataArray(np.asarray(std if std is not None else [1.0] * n, dtype=stack.dtype),
                     dims=ELEMENT_DIM)
    out = (stack - m) / s
    out.attrs = dict(stack.attrs)
    out.name = stack.name
    return out.transpose(*stack.dims)
