"""Stacks as cell tables: validation, the cell x element matrix and masks.

Fitting reads a table of cells, which is a global operation: these helpers compute lazy
input. Prediction never goes through here (it runs per chunk). The cells of labelled points
and their buffers are :mod:`xprospect.points`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from xprospect._dims import ELEMENT_DIM, GRID_DIMS_2D, GRID_DIMS_3D, grid_geometry
from xprospect.exceptions import DataError


def check_stack(stack: Any, what: str) -> tuple[str, ...]:
    """Validate an (element, y, x) or (element, z, y, x) stack; return its spatial dims."""
    if not isinstance(stack, xr.DataArray):
        msg = (
            f"{what} needs a stack DataArray (element, y, x) or (element, z, y, x), e.g. "
            f"from ds.prospect.stack(); got {type(stack).__name__}"
        )
        raise DataError(msg)
    spatial = GRID_DIMS_3D if "z" in stack.dims else GRID_DIMS_2D
    if ELEMENT_DIM not in stack.dims or set(stack.dims) != {ELEMENT_DIM, *spatial}:
        msg = (
            f"{what} needs a stack with dims ('element', *{spatial}); got {stack.dims} "
            f"(variable {stack.name!r})"
        )
        raise DataError(msg)
    if not np.issubdtype(stack.dtype, np.number) or stack.dtype == bool:
        raise DataError(f"{what}: stack {stack.name!r} is not numeric (dtype {stack.dtype})")
    if stack.sizes[ELEMENT_DIM] == 0:
        raise DataError(f"{what}: the stack has no elements")
    grid_geometry(stack)  # raises GridError naming a malformed axis
    return spatial


def element_names(stack: xr.DataArray) -> list[str]:
    """Element names in stack order (positions when there is no coordinate)."""
    if ELEMENT_DIM in stack.coords:
        return [str(e) for e in stack[ELEMENT_DIM].values]
    return [str(i) for i in range(stack.sizes[ELEMENT_DIM])]


def cell_table(stack: xr.DataArray, spatial: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(n_cells, n_elements)`` float64 matrix in C order over ``spatial``, and validity.

    A cell is valid when every element is finite. Computes lazy input (fitting is global).
    """
    arr = stack.transpose(*spatial, ELEMENT_DIM)
    x = np.asarray(arr.values, dtype="float64").reshape(-1, stack.sizes[ELEMENT_DIM])
    return x, np.isfinite(x).all(axis=1)


def grid_mask(mask: Any, stack: xr.DataArray, spatial: tuple[str, ...], what: str) -> np.ndarray:
    """Return a boolean cell mask on the stack's grid, flattened (C order)."""
    shape = tuple(stack.sizes[d] for d in spatial)
    if isinstance(mask, xr.DataArray):
        if set(mask.dims) != set(spatial):
            raise DataError(f"{what} has dims {mask.dims}; the stack's grid is {spatial}")
        mask = mask.transpose(*spatial)
        for d in spatial:
            if d in mask.coords and not np.allclose(mask[d].values, stack[d].values):
                raise DataError(f"{what} is not on the stack's grid: coordinate {d!r} differs")
        m = np.asarray(mask.values)
    else:
        m = np.asarray(mask)
    if m.shape != shape:
        raise DataError(f"{what} has shape {m.shape}; the stack's grid is {shape}")
    if m.dtype != bool:
        if not np.isin(m[~np.isnan(m.astype(float))], (0, 1)).all():
            raise DataError(f"{what} must be boolean (or 0/1); got dtype {m.dtype}")
        m = np.nan_to_num(m.astype(float)) > 0
    return m.ravel()
