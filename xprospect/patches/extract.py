"""Lazy window extraction: read only the chunks the windows touch, batch by batch.

Stacking thousands of randomly placed dask slices (``dask.array.stack``) builds a graph of
~10^5 tasks and runs at a few patches per second. Here windows are instead sorted by the chunk
they start in and gathered in batches: each batch asks dask once for the (few) chunks its
windows touch (``dask.compute`` on ``Array.blocks``), then copies every window's pieces straight
out of those chunks with numpy. Peak memory is the chunks of one batch (``max_bytes``) plus the
windows asked for; a numpy-backed stack is sliced directly.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import dask
import numpy as np
import xarray as xr

from xprospect._dims import ELEMENT_DIM
from xprospect.exceptions import DataError
from xprospect.patches.plan import PatchPlan

__all__ = ["extract_patches", "iter_patches", "read_region", "window_has_nan"]

log = logging.getLogger("xprospect.patches")

#: Default bound on the chunk bytes one batch holds in memory.
MAX_BATCH_BYTES = 256 * 2**20


def _stack_data(stack: xr.DataArray | np.ndarray | Any, plan: PatchPlan) -> Any:
    """Return the (C, *grid) array behind ``stack``, in the plan's dim order."""
    if isinstance(stack, xr.DataArray):
        if ELEMENT_DIM in stack.dims:
            order = (ELEMENT_DIM, *plan.dims)
        else:
            order = plan.dims
        missing = [d for d in order if d not in stack.dims]
        if missing or len(stack.dims) != len(order):
            want = (ELEMENT_DIM, *plan.dims)
            raise DataError(f"the stack has dims {stack.dims}; expected {want}")
        data = stack.transpose(*order).data
    else:
        data = stack
    if data.ndim == plan.ndim:
        data = data[None]
    if tuple(data.shape[1:]) != tuple(plan.shape):
        raise DataError(f"the stack's grid is {tuple(data.shape[1:])}; the plan's is {plan.shape}")
    return data


def _is_dask(data: Any) -> bool:
    return hasattr(data, "dask") and hasattr(data, "chunks") and hasattr(data, "blocks")


def _copy_window(
    dst: np.ndarray, src: np.ndarray, src_lo: Sequence[int], o: np.ndarray, size: Sequence[int]
) -> None:
    """Copy the overlap of window ``o`` with ``src`` (first cell ``src_lo``) into ``dst``."""
    d_sl, s_sl = [slice(None)], [slice(None)]
    for a, (lo, n, oo, w) in enumerate(zip(src_lo, src.shape[1:], o, size, strict=True)):
        a0, a1 = max(int(oo), lo), min(int(oo) + w, lo + n)
        if a1 <= a0:
            return
        del a
        d_sl.append(slice(a0 - int(oo), a1 - int(oo)))
        s_sl.append(slice(a0 - lo, a1 - lo))
    dst[tuple(d_sl)] = src[tuple(s_sl)]


class _Gatherer:
    """Windows of a plan read chunk by chunk; ``batches()`` loads, ``write()`` copies."""

    def __init__(
        self,
        data: Any,
        plan: PatchPlan,
        sel: np.ndarray,
        *,
        pad_value: float,
        max_bytes: int,
        dtype: Any,
    ) -> None:
        self.plan, self.sel, self.pad_value, self.max_bytes = plan, sel, pad_value, max_bytes
        self.dtype = np.dtype(dtype or data.dtype)
        self.size = plan.size
        self.origins = plan.origins[sel]
        shape = np.asarray(plan.shape)
        self.crossing = ~np.all(
            (self.origins >= 0) & (self.origins + np.asarray(self.size) <= shape), axis=1
        )
        self.dask = _is_dask(data)
        if self.dask and len(data.chunks[0]) > 1:
            data = data.rechunk({0: -1})
        self.data: Any = data if self.dask else np.asarray(data)
        self.nc = int(data.shape[0])
        self.cache: dict[tuple[int, ...], np.ndarray] = {}
        if self.dask:
            self.bounds = [np.concatenate([[0], np.cumsum(c)]) for c in data.chunks[1:]]
            lo = np.clip(self.origins, 0, shape - 1)
            hi = np.clip(self.origins + np.asarray(self.size) - 1, 0, shape - 1)
            self.clo = np.stack(
                [np.searchsorted(b, lo[:, a], side="right") - 1 for a, b in enumerate(self.bounds)],
                axis=1,
            )
            self.chi = np.stack(
                [np.searchsorted(b, hi[:, a], side="right") - 1 for a, b in enumerate(self.bounds)],
                axis=1,
            )

    def window_bytes(self) -> int:
        return self.nc * int(np.prod(self.size)) * self.dtype.itemsize

    def _keys(self, k: int) -> list[tuple[int, ...]]:
        return list(
            itertools.product(
                *[range(int(a), int(b) + 1) for a, b in zip(self.clo[k], self.chi[k], strict=True)]
            )
        )

    def _chunk_bytes(self, key: tuple[int, ...]) -> int:
        n = self.nc * self.dtype.itemsize
        for a, c in enumerate(key):
            n *= int(self.bounds[a][c + 1] - self.bounds[a][c])
        return n

    def batches(self, batch_size: int | None = None) -> Iterator[list[int]]:
        """Yield lists of window positions (in ``sel``) whose chunks are loaded."""
        n = len(self.sel)
        if not self.dask:
            step = batch_size or max(1, self.max_bytes // max(1, self.window_bytes()))
            for s in range(0, n, step):
                yield list(range(s, min(n, s + step)))
            return
        order = np.lexsort(self.clo.T[::-1])
        batch: list[int] = []
        need: dict[tuple[int, ...], None] = {}
        held = 0
        for k in order:
            keys = self._keys(int(k))
            extra = sum(self._chunk_bytes(key) for key in keys if key not in need)
            full = batch_size is not None and len(batch) >= batch_size
            if batch and (held + extra > self.max_bytes or full):
                self._load(need)
                yield batch
                batch, need, held = [], {}, 0
                extra = sum(self._chunk_bytes(key) for key in keys)
            batch.append(int(k))
            for key in keys:
                need[key] = None
            held += extra
        if batch:
            self._load(need)
            yield batch
        self.cache = {}

    def _load(self, need: dict[tuple[int, ...], None]) -> None:
        keys = list(need)
        todo = [key for key in keys if key not in self.cache]
        got = dask.compute(*[self.data.blocks[(0, *key)] for key in todo]) if todo else ()
        cache = {key: self.cache[key] for key in keys if key in self.cache}
        cache.update(zip(todo, got, strict=True))
        self.cache = cache

    def write(self, k: int, dst: np.ndarray) -> None:
        """Copy window ``k`` (position in ``sel``) into ``dst`` ``(C, *size)``."""
        o = self.origins[k]
        if self.crossing[k]:
            dst[...] = self.pad_value
        if not self.dask:
            if self.crossing[k]:
                _copy_window(dst, self.data, (0,) * len(o), o, self.size)
            else:
                sl = tuple(slice(int(a), int(a) + w) for a, w in zip(o, self.size, strict=True))
                dst[...] = self.data[(slice(None), *sl)]
            return
        for key in self._keys(k):
            src_lo = [int(self.bounds[a][c]) for a, c in enumerate(key)]
            _copy_window(dst, self.cache[key], src_lo, o, self.size)


def iter_patches(
    stack: xr.DataArray | np.ndarray | Any,
    plan: PatchPlan,
    *,
    idx: Sequence[int] | np.ndarray | None = None,
    pad_value: float = 0.0,
    batch_size: int | None = None,
    max_bytes: int = MAX_BATCH_BYTES,
    dtype: Any = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(indices, windows)`` batches, reading only the chunks the windows touch.

    Parameters
    ----------
    stack : DataArray, numpy or dask array
        ``(element, *grid)`` (or ``grid``-only) data on the plan's grid.
    plan : PatchPlan
        The windows.
    idx : array of int, optional
        Windows to read (default all), as positions in the plan.
    pad_value : float
        Value of cells outside the grid (windows crossing the edge).
    batch_size : int, optional
        Most windows per batch (default: as many as ``max_bytes`` allows).
    max_bytes : int
        Bound on the chunk bytes a batch holds (dask stacks); a batch holds at least one window.
    dtype : optional
        Output dtype (default the stack's).

    Yields
    ------
    indices : numpy.ndarray
        Positions (in ``plan``) of the windows of the batch; on dask stacks batches come in
        chunk order, not plan order.
    windows : numpy.ndarray
        ``(len(indices), C, *plan.size)``.
    """
    data = _stack_data(stack, plan)
    sel = np.arange(plan.n) if idx is None else np.asarray(idx, dtype="int64").ravel()
    g = _Gatherer(data, plan, sel, pad_value=pad_value, max_bytes=max_bytes, dtype=dtype)
    for batch in g.batches(batch_size):
        out = np.empty((len(batch), g.nc, *plan.size), dtype=g.dtype)
        for j, k in enumerate(batch):
            g.write(k, out[j])
        yield sel[np.asarray(batch, dtype="int64")], out


def extract_patches(
    stack: xr.DataArray | np.ndarray | Any,
    plan: PatchPlan,
    *,
    idx: Sequence[int] | np.ndarray | None = None,
    pad_value: float = 0.0,
    fill_value: float | None = None,
    max_bytes: int = MAX_BATCH_BYTES,
    dtype: Any = None,
) -> np.ndarray:
    """Read the plan's windows into one array ``(n, C, *size)``, in plan order.

    Only the chunks that the windows touch are read (see the module notes); on a numpy stack this
    is plain slicing.

    Parameters
    ----------
    stack : DataArray, numpy or dask array
        ``(element, *grid)`` data on the plan's grid (a grid-only array gives ``C = 1``).
    plan : PatchPlan
        The windows.
    idx : array of int, optional
        Windows to read (default all).
    pad_value : float
        Value of cells outside the grid.
    fill_value : float, optional
        Replace NaN cells by this value (default: leave NaN).
    max_bytes : int
        Bound on the chunk bytes held per batch.
    dtype : optional
        Output dtype (default the stack's).

    Returns
    -------
    numpy.ndarray
        ``(n, C, *plan.size)``.

    Examples
    --------
    >>> import numpy as np
    >>> from xprospect.patches import plan_grid
    >>> from xprospect._dims import GridGeometry
    >>> g = GridGeometry(("y", "x"), (4, 6), (3.5, 0.5), (-1.0, 1.0))
    >>> x = np.arange(24.0).reshape(1, 4, 6)
    >>> extract_patches(x, plan_grid(g, size=2)).shape
    (6, 1, 2, 2)
    """
    data = _stack_data(stack, plan)
    sel = np.arange(plan.n) if idx is None else np.asarray(idx, dtype="int64").ravel()
    g = _Gatherer(data, plan, sel, pad_value=pad_value, max_bytes=max_bytes, dtype=dtype)
    out = np.empty((len(sel), g.nc, *plan.size), dtype=g.dtype)
    for batch in g.batches():
        for k in batch:
            g.write(k, out[k])
        if fill_value is not None:
            for k in batch:
                np.nan_to_num(out[k], copy=False, nan=fill_value)
    return out


def read_region(
    stack: xr.DataArray | np.ndarray | Any,
    plan: PatchPlan,
    *,
    pad_value: float = 0.0,
    fill_value: float | None = None,
    dtype: Any = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """Read the box every window of the plan lies in, padded where it leaves the grid.

    Window ``k`` is then ``region[(slice(None), *(slice(o, o + s) for o, s in
    zip(plan.origins[k] - lo, plan.size)))]``, cell for cell what :func:`extract_patches`
    reads (the same padding, then the same NaN fill, then the cast). When windows overlap
    (every cell of a ground as a window centre) the box is far smaller than the windows.

    Parameters
    ----------
    stack : DataArray, numpy or dask array
        ``(element, *grid)`` data on the plan's grid.
    plan : PatchPlan
        The windows (at least one).
    pad_value : float
        Value of cells outside the grid.
    fill_value : float, optional
        Replace NaN cells by this value (default: leave NaN).
    dtype : optional
        Dtype of the region.

    Returns
    -------
    region : numpy.ndarray
        ``(C, *box)``.
    lo : numpy.ndarray
        ``(ndim,)`` grid index of the box's first cell (negative where it starts off the grid).
    """
    data = _stack_data(stack, plan)
    lo, hi = region_bounds(plan)
    shape = np.asarray(plan.shape)
    a0, a1 = np.clip(lo, 0, shape), np.clip(hi, 0, shape)
    region = np.full((int(data.shape[0]), *(hi - lo)), pad_value, dtype=dtype)
    if np.all(a1 > a0):
        src = data[(slice(None), *(slice(int(a), int(b)) for a, b in zip(a0, a1, strict=True)))]
        if _is_dask(src):
            src = src.compute()
        # the box as one large window: the grid's part of it copied as a window's is
        _copy_window(region, np.asarray(src), a0, lo, hi - lo)
    if fill_value is not None:
        np.nan_to_num(region, copy=False, nan=fill_value)
    return region, lo


def region_bounds(plan: PatchPlan) -> tuple[np.ndarray, np.ndarray]:
    """First cell and end (exclusive) of the box holding every window of ``plan``."""
    if plan.n == 0:
        raise DataError("the plan holds no window")
    return plan.origins.min(axis=0), plan.ends.max(axis=0)


def window_has_nan(
    stack: xr.DataArray | np.ndarray | Any, plan: PatchPlan, *, max_bytes: int = MAX_BATCH_BYTES
) -> np.ndarray:
    """Boolean ``(n,)``: window holds a NaN in any element (padding excluded).

    Reads the windows once, batch by batch, keeping only the flags.
    """
    data = _stack_data(stack, plan)
    if not np.issubdtype(np.dtype(data.dtype), np.floating):
        return np.zeros(plan.n, dtype=bool)
    out = np.zeros(plan.n, dtype=bool)
    for ids, win in iter_patches(data, plan, pad_value=0.0, max_bytes=max_bytes):
        out[ids] = np.isnan(win).reshape(len(win), -1).any(axis=1)
    return out
