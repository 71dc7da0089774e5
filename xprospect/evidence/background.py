"""Background ground: which cells an unsupervised detector may treat as "normal".

Anomaly detectors learn what normal ground looks like. Which ground counts as normal is a
choice the user states explicitly with :func:`normal_mask`: every cell, every cell farther than
a buffer from known deposits, or a mask of their own. The package's spatial splitter,
:func:`xprospect.evaluate.splits.block_split`, then splits the normal cells 70/30 into
training and held-out ground by whole spatial blocks, as in Yu et al. (2022), so that
held-out losses are not measured on the neighbours of training cells.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from xprospect._dims import get_crs, grid_geometry, write_crs
from xprospect.exceptions import DataError, GridError
from xprospect.points import distance_to_points

__all__ = ["normal_mask"]

_MODES = ("all", "outside_buffer", "mask")


def _template(like: xr.Dataset | xr.DataArray) -> xr.DataArray:
    geom = grid_geometry(like)
    coords = {d: like[d] for d in geom.dims}
    out = xr.DataArray(
        np.ones(geom.shape, dtype=bool), dims=geom.dims, coords=coords, name="normal"
    )
    crs = get_crs(like)
    return write_crs(out, crs) if crs is not None else out


def normal_mask(
    like: xr.Dataset | xr.DataArray,
    *,
    mode: str = "all",
    deposits: xr.Dataset | None = None,
    buffer: float | None = None,
    mask: xr.DataArray | None = None,
) -> xr.DataArray:
    """Boolean map of the cells a detector may treat as normal (background).

    Parameters
    ----------
    like : xarray.Dataset or DataArray
        The grid (2-D or 3-D, or a stack with an ``element`` dim) the mask is laid on.
    mode : {"all", "outside_buffer", "mask"}
        ``"all"``: every cell. ``"outside_buffer"``: cells whose centre lies farther than
        ``buffer`` (CRS units) from every point of ``deposits``. ``"mask"``: the user's
        boolean ``mask`` (True = normal), which must be on the same grid.
    deposits : xarray.Dataset, optional
        Deposit points (anything :func:`xprospect.points.as_points` takes), for
        ``"outside_buffer"``.
    buffer : float, optional
        Buffer radius for ``"outside_buffer"``, in CRS units, > 0.
    mask : xarray.DataArray, optional
        Boolean mask for ``"mask"``.

    Returns
    -------
    xarray.DataArray
        Boolean, named ``normal``, on ``like``'s grid dims and coordinates, with its CRS and
        ``attrs["normal_mode"]`` (and ``normal_buffer``) recording the choice. Lazy when the
        distances are (dask chunks of ``like``).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> g = xr.DataArray(np.zeros((3, 4)), dims=("y", "x"),
    ...                  coords={"y": [2.0, 1.0, 0.0], "x": [0.0, 1.0, 2.0, 3.0]})
    >>> int(normal_mask(g).sum())
    12
    """
    if mode not in _MODES:
        raise DataError(f"mode={mode!r} is not one of {_MODES}")
    out = _template(like)
    if mode == "all":
        out.attrs["normal_mode"] = "all"
        return out
    if mode == "outside_buffer":
        if deposits is None or buffer is None:
            raise DataError("mode='outside_buffer' needs deposits= and buffer=")
        if not np.isfinite(buffer) or float(buffer) <= 0:
            raise DataError(f"buffer must be a positive distance in CRS units; got {buffer!r}")
        dist = distance_to_points(deposits, like)
        res = (dist > float(buffer)).rename("normal")
        res.attrs = {"normal_mode": "outside_buffer", "normal_buffer": float(buffer)}
        crs = get_crs(like)
        return write_crs(res, crs) if crs is not None else res
    if mask is None:
        raise DataError("mode='mask' needs mask=, a boolean DataArray on the grid")
    if not isinstance(mask, xr.DataArray) or mask.dtype != bool:
        raise DataError(
            f"mask must be a boolean xarray.DataArray; got {type(mask).__name__} "
            f"of dtype {getattr(mask, 'dtype', None)}"
        )
    dims = out.dims
    if set(mask.dims) != set(dims):
        raise GridError(f"mask has dims {mask.dims}; the grid has {dims}")
    for d in dims:
        if mask.sizes[d] != out.sizes[d] or not np.allclose(mask[d].values, out[d].values):
            raise GridError(f"mask coordinate {d!r} does not match the grid's; regrid the mask")
    res = mask.transpose(*dims).rename("normal")
    res = res.assign_coords({d: out[d] for d in dims})
    res.attrs = {"normal_mode": "mask"}
    crs = get_crs(like)
    return write_crs(res, crs) if crs is not None else res
