"""Stack gridded element maps into one (element, y, x) DataArray, a model's input."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from xprospect._dims import ELEMENT_DIM, GRID_DIMS_2D, GRID_DIMS_3D, element_vars, get_crs
from xprospect._dims import write_crs as _write_crs
from xprospect.exceptions import DataError

__all__ = ["stack_elements"]


def stack_elements(ds: xr.Dataset, elements: Sequence[str] | None = None) -> xr.DataArray:
    """Stack element maps into a DataArray (``element``, y, x) or (``element``, z, y, x).

    Lazy on dask; the element order is the order given, and it is part of any model
    trained on the stack.

    Parameters
    ----------
    ds : xarray.Dataset
        Grid or voxel Dataset with one variable per element.
    elements : list of str, optional
        Variables to stack, in order (default: every numeric, non-boolean grid variable
        in the Dataset's order).

    Returns
    -------
    xarray.DataArray
        Named ``stack``, with an ``element`` coordinate, the grid's coordinates and CRS,
        and ``attrs["units"]`` listing each element's unit.

    Examples
    --------
    >>> import xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=200, elements=["Au", "As", "Cu"])
    >>> maps = xp.grid_idw(w.samples, like=xp.make_grid(like=w.samples, resolution=2000))
    >>> stack = xp.stack_elements(maps, ["Au", "Cu"])
    >>> stack.dims, list(stack.element.values)
    (('element', 'y', 'x'), ['Au', 'Cu'])
    """
    if not isinstance(ds, xr.Dataset):
        raise DataError(f"stack_elements needs an xarray.Dataset of element maps; got {type(ds)}")
    dims = GRID_DIMS_3D if "z" in ds.dims else GRID_DIMS_2D
    if elements is None:
        names = [n for n in element_vars(ds, dims) if ds[n].dtype != bool]
        if not names:
            raise DataError(f"the Dataset holds no numeric variables on {dims} to stack")
    else:
        names = [elements] if isinstance(elements, str) else list(elements)
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise DataError(f"elements to stack are repeated: {dup}")
        for n in names:
            if n not in ds.data_vars:
                raise DataError(f"element {n!r} is not in the Dataset; it holds "
                                f"{sorted(map(str, ds.data_vars))}")
            if tuple(ds[n].dims) != dims:
                raise DataError(f"variable {n!r} has dims {ds[n].dims}, expected {dims}")
            if not np.issubdtype(ds[n].dtype, np.number) or ds[n].dtype == bool:
                raise DataError(f"variable {n!r} is not numeric (dtype {ds[n].dtype})")
    out = ds[names].to_array(dim=ELEMENT_DIM, name="stack")
    out.attrs = {"units": [str(ds[n].attrs.get("units", "")) for n in names]}
    crs = get_crs(ds)
    return _write_crs(out, crs) if crs is not None else out
