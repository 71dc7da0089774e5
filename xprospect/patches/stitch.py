"""Stitching: put per-window values back on the grid, the inverse of extraction."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from xprospect._dims import ELEMENT_DIM, get_crs, write_crs
from xprospect.exceptions import DataError
from xprospect.patches.plan import PatchPlan

__all__ = ["stitch_patches"]


def stitch_patches(
    values: np.ndarray, plan: PatchPlan, like: xr.Dataset | xr.DataArray, *, name: str = "stitched"
) -> xr.DataArray:
    """Place per-window values back on the grid, averaging where windows overlap.

    The exact inverse of :func:`~xprospect.patches.extract_patches` on every cell a window covers:
    each cell is the mean of the values all windows covering it give it (accumulated in float64,
    so identical copies average back to themselves exactly). Cells of windows outside the grid
    (padding) are ignored.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n,)`` one value per window, spread over its whole footprint; ``(n, *size)``; or
        ``(n, C, *size)``.
    plan : PatchPlan
        The windows the values belong to.
    like : Dataset or DataArray
        The grid (coordinates and CRS are copied from it).
    name : str
        Name of the result.

    Returns
    -------
    xarray.DataArray
        ``(*grid)`` or ``(C, *grid)`` (dim ``element`` when ``like`` has an element coordinate of
        length C, else ``channel``), in ``values``' dtype. Cells no window covers are NaN;
        their number is in ``attrs["uncovered_cells"]``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from xprospect.patches import extract_patches, plan_grid
    >>> g = xr.DataArray(np.arange(20.0).reshape(4, 5), dims=("y", "x"),
    ...                  coords={"y": [3.5, 2.5, 1.5, 0.5], "x": np.arange(5) + 0.5})
    >>> plan = plan_grid(g, size=3, stride=1)
    >>> back = stitch_patches(extract_patches(g.values, plan), plan, g)
    >>> bool((back.values == g.values).all())
    True
    """
    v = np.asarray(values)
    n, size, nd = plan.n, plan.size, plan.ndim
    if v.shape[:1] != (n,):
        raise DataError(f"values has shape {v.shape}; the plan has {n} windows")
    if v.ndim == 1:
        per_window = True
        chan: tuple[int, ...] = ()
    elif v.shape[1:] == size:
        per_window, chan = False, ()
    elif v.ndim == nd + 2 and v.shape[2:] == size:
        per_window, chan = False, (v.shape[1],)
    else:
        raise DataError(
            f"values has shape {v.shape}; expected ({n},), ({n}, *{size}) or ({n}, C, *{size})"
        )
    dtype = v.dtype if np.issubdtype(v.dtype, np.floating) else np.dtype("float64")
    acc = np.zeros((*chan, *plan.shape), dtype="float64")
    cnt = np.zeros(plan.shape, dtype="int64")
    lead = (slice(None),) * len(chan)
    for i in range(n):
        o = plan.origins[i]
        g_sl, w_sl = [], []
        for oo, w, s in zip(o, size, plan.shape, strict=True):
            a0, a1 = max(int(oo), 0), min(int(oo) + w, s)
            g_sl.append(slice(a0, a1))
            w_sl.append(slice(a0 - int(oo), a1 - int(oo)))
        if any(sl.stop <= sl.start for sl in g_sl):
            continue
        gs = tuple(g_sl)
        if per_window:
            acc[gs] += v[i]
        else:
            acc[(*lead, *gs)] += v[i][(*lead, *w_sl)]
        cnt[gs] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (acc / cnt).astype(dtype)
    dims: tuple[str, ...] = plan.dims
    coords: dict[str, Any] = {d: like[d] for d in plan.dims}
    if chan:
        has_el = ELEMENT_DIM in like.dims and like.sizes[ELEMENT_DIM] == chan[0]
        lead_dim = ELEMENT_DIM if has_el else "channel"
        dims = (lead_dim, *dims)
        if has_el and ELEMENT_DIM in like.coords:
            coords[ELEMENT_DIM] = like[ELEMENT_DIM]
    res = xr.DataArray(out, dims=dims, coords=coords, name=name)
    res.attrs["uncovered_cells"] = int((cnt == 0).sum())
    crs = get_crs(like)
    return write_crs(res, crs) if crs is not None else res
