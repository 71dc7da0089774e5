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

__all__ = ["check_card", "has_card", "make_card", "normalise", "validate_card"]

_RES_RTOL = 1e-6
# keys whose presence makes a card describe data (and so be checked)
_CORE_KEYS = ("elements", "ndim", "dims", "resolution", "crs", "window", "mean", "std")


def _finite_floats(
    card: Mapping[str, Any], key: str, n: int, where: str, *, positive: bool = False
) -> None:
    v = card[key]
    if not isinstance(v, (list, tuple)) or len(v) != n:
        got = f"{len(v)} values" if isinstance(v, (list, tuple)) else type(v).__name__
        raise ModelCardError(
            f"{where}: card key {key!r} must be a list of {n} numbers (one per element); got {got}"
        )
    for i, x in enumerate(v):
        if (
            isinstance(x, bool)
            or not isinstance(x, (int, float, np.integer, np.floating))
            or not np.isfinite(x)
        ):
            raise ModelCardError(
                f"{where}: card key {key!r} holds {x!r} at position {i}; expected a finite number"
            )
        if positive and not x > 0:
            raise ModelCardError(
                f"{where}: card key {key!r} holds {x!r} at position {i} "
                f"(element {card['elements'][i]!r}); a standard deviation "
                "must be > 0, else normalising divides by zero"
            )


def _check_stack_free(card: Mapping[str, Any], where: str) -> None:
    n = None
    for key in ("mean", "std"):
        v = card.get(key)
        if v is None:
            continue
        if not isinstance(v, (list, tuple)) or not v:
            raise ModelCardError(
                f"{where}: card key {key!r} must be a non-empty list of numbers; got {v!r}"
            )
        n = len(v) if n is None else n
        _finite_floats(
            {**card, "elements": [f"channel {i}" for i in range(n)]},
            key,
            n,
            where,
            positive=key == "std",
        )
    win = card.get("window")
    if win is not None:
        wins = win if isinstance(win, (list, tuple)) else [win]
        if not wins or not all(
            isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w > 0 for w in wins
        ):
            raise ModelCardError(
                f"{where}: card key 'window' must be an int > 0 (or one per axis); got {win!r}"
            )


def has_card(card: Mapping[str, Any] | None) -> bool:
    """Tell whether ``card`` describes training data (any data key holds a value).

    An empty card, or one holding only notes (such as a pretraining record), describes
    nothing to check a stack against or to normalise it with.
    """
    return isinstance(card, Mapping) and any(card.get(k) is not None for k in _CORE_KEYS)


def _stack_free(card: Mapping[str, Any]) -> bool:
    """Tell whether the card is of a model trained on bare windows (no stack, no geometry)."""
    return all(card.get(k) is None for k in ("elements", "ndim", "dims", "resolution", "crs"))


def validate_card(card: Any, where: str = "the model card") -> None:
    """Check a card against the schema; raise :class:`ModelCardError` naming the first bad key.

    Parameters
    ----------
    card : mapping
        A model card. A card holding any of the data keys (``elements``, ``ndim``, ``dims``,
        ``resolution``, ``crs``, ``window``, ``mean``, ``std``) must hold ``elements``,
        except the card of a model trained on bare windows (no stack: ``elements``,
        ``ndim``, ``dims``, ``resolution`` and ``crs`` all None), whose ``mean`` and ``std``
        must then have the same length. A card that records a geometry but no elements (a
        hand-edited ``elements: None``) is refused. An empty card, or one of notes only
        (no data keys), is valid here (see :func:`has_card`;
        :func:`~xprospect.train.load_checkpoint` refuses it unless told).
    where : str
        What the card belongs to, for the message (a file name).

    Raises
    ------
    ModelCardError
        The card is not a mapping, or a key is missing or malformed: ``elements`` not a
        non-empty list of distinct strings; ``ndim`` not 2 or 3; ``dims`` or ``resolution``
        not one entry per spatial axis (resolutions finite and > 0); ``window`` not an int
        > 0 or a list of them; ``mean``/``std`` not one finite number per element (std > 0);
        ``crs`` not parseable; ``data_hash`` not a string.

    Examples
    --------
    >>> try:
    ...     validate_card({"elements": ["Au"], "std": [0.0]})
    ... except ModelCardError as err:
    ...     print(str(err)[:50])
    the model card: card key 'std' holds 0.0 at positi
    """
    if not isinstance(card, Mapping):
        raise ModelCardError(f"{where}: a model card must be a dict; got {type(card).__name__}")
    if not any(k in card for k in _CORE_KEYS):
        return
    el = card.get("elements")
    if el is None and _stack_free(card):
        _check_stack_free(card, where)
        return
    if not isinstance(el, (list, tuple)) or not el or not all(isinstance(e, str) and e for e in el):
        raise ModelCardError(
            f"{where}: card key 'elements' must be a non-empty list of element "
            f"names (strings); got {el!r}"
        )
    if len(set(el)) != len(el):
        raise ModelCardError(f"{where}: card key 'elements' repeats names: {list(el)}")
    ndim = card.get("ndim")
    if ndim is not None and (isinstance(ndim, bool) or ndim not in (2, 3)):
        raise ModelCardError(f"{where}: card key 'ndim' must be 2, 3 or None; got {ndim!r}")
    dims = card.get("dims")
    if dims is not None and (
        not isinstance(dims, (list, tuple))
        or not all(isinstance(d, str) for d in dims)
        or (ndim is not None and len(dims) != ndim)
    ):
        raise ModelCardError(
            f"{where}: card key 'dims' must be a list of {ndim or 'the'} "
            f"spatial dim names; got {dims!r}"
        )
    res = card.get("resolution")
    if res is not None:
        if (
            not isinstance(res, (list, tuple))
            or (ndim is not None and len(res) != ndim)
            or not all(
                isinstance(r, (int, float)) and not isinstance(r, bool) and np.isfinite(r) and r > 0
                for r in res
            )
        ):
            raise ModelCardError(
                f"{where}: card key 'resolution' must be a list of "
                f"{ndim or 'the'} finite cell sizes > 0; got {res!r}"
            )
    win = card.get("window")
    if win is not None:
        wins = win if isinstance(win, (list, tuple)) else [win]
        if not wins or not all(
            isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w > 0 for w in wins
        ):
            raise ModelCardError(
                f"{where}: card key 'window' must be an int > 0 (or one per axis); got {win!r}"
            )
    for key in ("mean", "std"):
        if card.get(key) is not None:
            _finite_floats(card, key, len(el), where, positive=key == "std")
    crs = card.get("crs")
    if crs is not None:
        if not isinstance(crs, str) or not crs:
            raise ModelCardError(
                f"{where}: card key 'crs' must be WKT text or None; got {type(crs).__name__}"
            )
        try:
            CRS.from_user_input(crs)
        except Exception as err:  # pyproj raises CRSError, a bare ValueError subclass
            raise ModelCardError(
                f"{where}: card key 'crs' is not a CRS pyproj can parse: {crs[:80]!r} ({err})"
            ) from err
    h = card.get("data_hash")
    if h is not None and not isinstance(h, str):
        raise ModelCardError(f"{where}: card key 'data_hash' must be a string; got {h!r}")


def _elements(stack: xr.DataArray) -> list[str]:
    if ELEMENT_DIM not in stack.dims:
        msg = f"a model input needs an {ELEMENT_DIM!r} dimension; got dims {tuple(stack.dims)}"
        raise ModelCardError(msg)
    return [str(e) for e in stack[ELEMENT_DIM].values]


def make_card(
    stack: xr.DataArray,
    *,
    window: int | Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    data_hash: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
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
    for name, v in (("mean", mean), ("std", std)):
        if v is None:
            continue
        a = np.asarray(v, dtype=float)
        bad = [
            (elements[i], float(a[i]))
            for i in np.flatnonzero(~np.isfinite(a) | ((a <= 0) if name == "std" else False))
        ]
        if bad:
            need = "finite and > 0" if name == "std" else "finite"
            msg = (
                f"{name} must be {need} for every element; got {bad[0][1]!r} for element "
                f"{bad[0][0]!r} (all: {list(map(float, a))})"
            )
            if name == "std":
                msg += "; a constant element (std 0) carries no information: drop it from the stack"
            raise ModelCardError(msg)
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
    A card that describes no data (empty, or notes only: see :func:`has_card`) passes, as
    for an untrained or hand-built model; any other card is first validated against the
    schema (:func:`validate_card`), so a malformed card (``elements: None`` beside a
    recorded geometry, a bad CRS) cannot switch its own checks off. The card of a model
    trained on bare windows (no stack) can only check the number of elements.
    """
    if not card or not any(k in card for k in _CORE_KEYS):
        return
    validate_card(card)
    elements = _elements(stack)
    if _stack_free(card):
        # trained on bare windows: names are unknown, but the channel count is not
        n = (
            len(card["mean"])
            if card.get("mean") is not None
            else len(card["std"])
            if card.get("std") is not None
            else None
        )
        if n is not None and n != len(elements):
            raise ModelCardError(
                f"the model was trained on {n} channels (no element names "
                f"recorded); the stack has {len(elements)}: {elements}"
            )
        return
    want = card.get("elements")
    if want is not None and list(want) != elements:
        missing = [e for e in want if e not in elements]
        extra = [e for e in elements if e not in want]
        if missing or extra:
            msg = (
                f"the model was trained on elements {list(want)}; the stack has {elements} "
                f"(missing {missing}, unexpected {extra})"
            )
        else:
            msg = (
                f"the model was trained on elements in the order {list(want)}; the stack has "
                f"them in the order {elements}; reorder with stack.sel(element={list(want)})"
            )
        raise ModelCardError(msg)
    geom = grid_geometry(stack)
    if card.get("ndim") is not None and int(card["ndim"]) != geom.ndim:
        msg = f"the model was trained on {card['ndim']}-D grids; the stack is {geom.ndim}-D"
        raise ModelCardError(msg)
    res = card.get("resolution")
    if res is not None:
        have = [abs(float(s)) for s in geom.step]
        if len(res) != len(have) or not np.allclose(have, res, rtol=_RES_RTOL):
            msg = (
                f"the model was trained at resolution {list(res)} ({', '.join(geom.dims)}); "
                f"the stack has {have}; regrid it to the model's resolution first"
            )
            raise ModelCardError(msg)
    if card.get("crs"):
        want_crs = CRS.from_user_input(card["crs"])
        crs = get_crs(stack)
        if crs is None or not crs.equals(want_crs, ignore_axis_order=True):
            have_crs = "none" if crs is None else crs.to_string()
            msg = (
                f"the model was trained in CRS {want_crs.to_string()}; the stack's CRS is "
                f"{have_crs}"
            )
            raise ModelCardError(msg)


def normalise(stack: xr.DataArray, card: Mapping[str, Any]) -> xr.DataArray:
    """Apply the card's per-element ``(x - mean) / std`` lazily (unchanged if the card has none).

    The arithmetic is done in float32 (float64 for a float64 stack) whatever the stack's
    dtype: an integer or boolean stack (0/1 evidence, ppm counts) is never cast the card's
    mean and std to its own type (a std of 0.47 would become 0).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> s = xr.DataArray(np.array([[0, 1]], dtype="uint8"), dims=("element", "x"))
    >>> normalise(s, {"mean": [0.5], "std": [0.5]}).values.tolist()
    [[-1.0, 1.0]]
    """
    mean, std = card.get("mean"), card.get("std")
    if mean is None and std is None:
        return stack
    n = stack.sizes[ELEMENT_DIM]
    dtype = np.dtype("float64") if stack.dtype == np.float64 else np.dtype("float32")
    m = xr.DataArray(
        np.asarray(mean if mean is not None else [0.0] * n, dtype=dtype), dims=ELEMENT_DIM
    )
    s = xr.DataArray(
        np.asarray(std if std is not None else [1.0] * n, dtype=dtype), dims=ELEMENT_DIM
    )
    if np.any(~np.isfinite(s.values) | (s.values <= 0)):
        raise ModelCardError(
            f"the card's std {list(map(float, s.values))} holds a value that "
            "is not finite and > 0; normalising would give no finite cell"
        )
    out = (stack.astype(dtype) - m) / s
    out.attrs = dict(stack.attrs)
    out.name = stack.name
    return out.transpose(*stack.dims)
