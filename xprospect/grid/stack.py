"""Stack gridded element maps into one (element, y, x) DataArray, a model's input."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from xprospect._dims import ELEMENT_DIM, GRID_DIMS_2D, GRID_DIMS_3D, element_vars, get_crs
from xprospect._dims import write_crs as _write_crs
from xprospect._json import dumps
from xprospect.exceptions import DataError

__all__ = ["stack_elements"]


def _one_hot(
    da: xr.DataArray, name: str, labels: Mapping[Any, Any] | None
) -> tuple[list[xr.DataArray], list[dict[str, Any]]]:
    """One indicator band per class code of ``da`` (NaN where ``da`` is NaN), and its legend."""
    # the class codes are a global property of the map: read them (computes lazy input)
    values = np.asarray(da.values, dtype="float64")
    codes = np.unique(values[np.isfinite(values)])
    if codes.size == 0:
        raise DataError(f"categorical variable {name!r} holds no finite class codes")
    if codes.size > 256:
        raise DataError(
            f"categorical variable {name!r} holds {codes.size} distinct codes "
            f"(such as {codes[:5].tolist()}); is it really categorical?"
        )
    bands, legend = [], []
    for c in codes:
        code: Any = int(c) if float(c).is_integer() else float(c)
        label = None if labels is None else labels.get(code, labels.get(str(code)))
        band = f"{name}={code}" if label is None else f"{name}={label}"
        bands.append(xr.where(da.isnull(), np.nan, (da == c).astype("float64")).rename(band))
        legend.append(
            {"element": band, "code": code, "label": str(label) if label is not None else None}
        )
    return bands, legend


def _stack_blocks(*blocks: np.ndarray) -> np.ndarray:
    return np.stack(blocks)


def _stacked_blocks(arrays: Sequence[Any], stacked: Any) -> Any:
    """Return the stack of lazy ``arrays`` as one block per spatial chunk, else ``stacked``.

    ``to_array`` stacks dask arrays with one chunk per element, so that each consumer
    (``score``) rechunks the elements together: a task per block gathering the elements'
    blocks, which on a cluster read on several workers travel to it. A blockwise stack
    holds every element in its chunk, and dask fuses it with the reads of the elements'
    blocks (blockwise fusion): one task reads a chunk's elements and stacks them, on the
    worker that then uses them. Same values, dtype and spatial chunks as ``stacked``.
    """
    if len(arrays) < 2 or not all(isinstance(a, da.Array) for a in arrays):
        return stacked
    idx = tuple(range(1, arrays[0].ndim + 1))
    args: list[Any] = []
    for a in arrays:
        args += [a.astype(stacked.dtype, copy=False), idx]
    return da.blockwise(
        _stack_blocks,
        (0, *idx),
        *args,
        new_axes={0: len(arrays)},
        dtype=stacked.dtype,
        meta=np.empty((0,) * stacked.ndim, dtype=stacked.dtype),
    ).rechunk({i: c for i, c in zip(idx, stacked.chunks[1:], strict=True)})


def stack_elements(
    ds: xr.Dataset,
    elements: Sequence[str] | None = None,
    *,
    categorical: Sequence[str] = (),
    legend: Mapping[str, Mapping[Any, Any]] | None = None,
) -> xr.DataArray:
    """Stack element maps into a DataArray (``element``, y, x) or (``element``, z, y, x).

    Lazy on dask (except the class codes of ``categorical`` variables, which are read);
    the element order is the order given, and it is part of any model trained on the stack.

    Parameters
    ----------
    ds : xarray.Dataset
        Grid or voxel Dataset with one variable per element.
    elements : list of str, optional
        Variables to stack, in order (default: every numeric, non-boolean grid variable
        in the Dataset's order).
    categorical : sequence of str
        Variables (among those stacked) holding class codes, such as geology units: each is
        one-hot encoded, one band ``"<name>=<code>"`` (or ``"<name>=<label>"``) per code,
        1.0 inside the class, 0.0 outside, NaN where the variable is NaN.
    legend : mapping, optional
        ``legend[name][code]`` -> a label (unit name) of a categorical variable's code.

    Returns
    -------
    xarray.DataArray
        Named ``stack``, with an ``element`` coordinate, the grid's coordinates and CRS,
        and ``attrs["units"]`` listing each element's unit. With ``categorical``,
        ``attrs["categorical_legend"]`` is JSON text mapping each categorical variable to
        its bands (``element``, ``code``, ``label``).

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
                raise DataError(
                    f"element {n!r} is not in the Dataset; it holds "
                    f"{sorted(map(str, ds.data_vars))}"
                )
            if tuple(ds[n].dims) != dims:
                raise DataError(f"variable {n!r} has dims {ds[n].dims}, expected {dims}")
            if not np.issubdtype(ds[n].dtype, np.number) or ds[n].dtype == bool:
                raise DataError(f"variable {n!r} is not numeric (dtype {ds[n].dtype})")
    cat = [categorical] if isinstance(categorical, str) else list(categorical)
    missing = [c for c in cat if c not in names]
    if missing:
        raise DataError(
            f"categorical variables {missing} are not among the stacked elements {names}"
        )
    if not cat:
        out = ds[names].to_array(dim=ELEMENT_DIM, name="stack")
        out = out.copy(data=_stacked_blocks([ds[n].data for n in names], out.data))
        out.attrs = {"units": [str(ds[n].attrs.get("units", "")) for n in names]}
    else:
        bands, units, legends = [], [], {}
        for n in names:
            if n in cat:
                hot, leg = _one_hot(ds[n], n, (legend or {}).get(n))
                bands += hot
                units += [""] * len(hot)
                legends[n] = leg
            else:
                bands.append(ds[n].rename(n))
                units.append(str(ds[n].attrs.get("units", "")))
        band_names = [b.name for b in bands]
        out = xr.concat(
            [b.drop_attrs() if hasattr(b, "drop_attrs") else b for b in bands],
            dim=ELEMENT_DIM,
            coords="minimal",
            compat="override",
        )
        out = out.assign_coords({ELEMENT_DIM: band_names}).rename("stack")
        out.attrs = {"units": units, "categorical_legend": dumps(legends)}
    crs = get_crs(ds)
    return _write_crs(out, crs) if crs is not None else out
