"""What "normal" (background) ground means for unsupervised detectors, and block splits of it.

Anomaly detectors learn what normal ground looks like. Which ground counts as normal is a
choice the user states explicitly with :func:`normal_mask`: every cell, every cell farther than
a buffer from known deposits, or a mask of their own. :func:`block_split` then splits the
normal cells 70/30 into training and held-out ground by whole spatial blocks, as in Yu et al.
(2022), so that held-out losses are not measured on the neighbours of training cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from xprospect._dims import ELEMENT_DIM, get_crs, grid_geometry, write_crs
from xprospect.exceptions import DataError, GridError

__all__ = ["block_split", "choose_blocks", "normal_mask"]

_MODES = ("all", "outside_buffer", "mask")


def _template(like: xr.Dataset | xr.DataArray) -> xr.DataArray:
    geom = grid_geometry(like)
    coords = {d: like[d] for d in geom.dims}
    out = xr.DataArray(np.ones(geom.shape, dtype=bool), dims=geom.dims, coords=coords,
                       name="normal")
    crs = get_crs(like)
    return write_crs(out, crs) if crs is not None else out


def normal_mask(like: xr.Dataset | xr.DataArray, *, mode: str = "all",
                deposits: xr.Dataset | None = None, buffer: float | None = None,
                mask: xr.DataArray | None = None) -> xr.DataArray:
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
        Deposit points (dim ``point``; see :mod:`xprospect.evidence.labels`), for
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
        from xprospect.evidence.labels import distance_to_points

        dist = distance_to_points(deposits, like)
        res = (dist > float(buffer)).rename("normal")
        res.attrs = {"normal_mode": "outside_buffer", "normal_buffer": float(buffer)}
        crs = get_crs(like)
        return write_crs(res, crs) if crs is not None else res
    if mask is None:
        raise DataError("mode='mask' needs mask=, a boolean DataArray on the grid")
    if not isinstance(mask, xr.DataArray) or mask.dtype != bool:
        raise DataError(f"mask must be a boolean xarray.DataArray; got {type(mask).__name__} "
                        f"of dtype {getattr(mask, 'dtype', None)}")
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


def _block_ids(shape: tuple[int, ...], blocks: Sequence[int]) -> np.ndarray:
    # Each axis cut into nearly equal runs; the block id is the row-major index of the runs.
    ids = np.zeros(shape, dtype=np.int64)
    for ax, (n, b) in enumerate(zip(shape, blocks, strict=True)):
        run = (np.arange(n) * b) // n
        ids = ids * b + np.expand_dims(run, tuple(i for i in range(len(shape)) if i != ax))
    return ids


def choose_blocks(ids: np.ndarray, n_blocks: int, *, train_fraction: float = 0.7,
                  seed: int = 0) -> np.ndarray:
    """Training flags of items labelled by block ``ids``: whole blocks go to one side.

    Blocks holding items are shuffled (``seed``) and taken into the training side until it
    holds at least ``train_fraction`` of the items; at least one block stays on each side.
    Shared by :func:`block_split` (grid cells) and point (sample) splits.
    """
    ids = np.asarray(ids, dtype=np.int64)
    counts = np.bincount(ids, minlength=int(n_blocks))
    occupied = np.flatnonzero(counts)
    if occupied.size < 2:
        msg = (f"all {ids.size} usable items lie in one of the {n_blocks} blocks; use more "
               "blocks to split them")
        raise DataError(msg)
    order = np.random.default_rng(seed).permutation(occupied)
    cum = np.cumsum(counts[order])
    k = int(np.searchsorted(cum, float(train_fraction) * ids.size))
    k = min(max(k + 1, 1), occupied.size - 1)
    return np.isin(ids, order[:k])


def block_split(mask: xr.DataArray, *, blocks: int | Sequence[int] = 5,
                train_fraction: float = 0.7, seed: int = 0
                ) -> tuple[xr.DataArray, xr.DataArray]:
    """Split the True cells of ``mask`` into training and test ground by spatial blocks.

    The grid is cut into ``blocks`` nearly equal runs along each spatial axis; blocks are
    taken in a random order (from ``seed``) into the training side until it holds at least
    ``train_fraction`` of the mask's cells, and the rest go to the test side. Reads the mask
    into memory (the split is inherently global).

    Parameters
    ----------
    mask : xarray.DataArray
        Boolean grid (2-D or 3-D) of usable cells (e.g. from :func:`normal_mask`, combined
        with the finite cells of a stack).
    blocks : int or sequence of int
        Blocks per spatial axis (one int for all axes, or one per axis in dim order).
    train_fraction : float
        Share of the mask's cells wanted on the training side, in (0, 1); 0.7 as in the study.
    seed : int
        Seed of the block order.

    Returns
    -------
    (train, test) : tuple of xarray.DataArray
        Disjoint boolean masks on ``mask``'s grid whose union is ``mask``, with attrs
        ``block_split_fraction`` (the achieved training share) and ``blocks``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> m = xr.DataArray(np.ones((10, 10), bool), dims=("y", "x"),
    ...                  coords={"y": np.arange(10.0)[::-1], "x": np.arange(10.0)})
    >>> tr, te = block_split(m, blocks=5, seed=0)
    >>> int(tr.sum()), int(te.sum())
    (72, 28)
    """
    if not isinstance(mask, xr.DataArray) or mask.dtype != bool:
        raise DataError("block_split needs a boolean xarray.DataArray mask")
    if ELEMENT_DIM in mask.dims:
        raise DataError("block_split needs a grid mask without an 'element' dim")
    geom = grid_geometry(mask)
    mask = mask.transpose(*geom.dims)
    if not 0 < float(train_fraction) < 1:
        raise DataError(f"train_fraction must lie in (0, 1); got {train_fraction!r}")
    nb = [int(blocks)] * geom.ndim if np.ndim(blocks) == 0 else [int(b) for b in blocks]
    if len(nb) != geom.ndim or any(b < 1 for b in nb):
        raise DataError(f"blocks={blocks!r} must give a positive count per axis {geom.dims}")
    nb = [min(b, n) for b, n in zip(nb, geom.shape, strict=True)]
    m = np.asarray(mask.values, dtype=bool)
    total = int(m.sum())
    if total < 2:
        raise DataError(f"the mask holds {total} True cells; a split needs at least 2")
    ids = _block_ids(geom.shape, nb)
    is_train = np.zeros(geom.shape, dtype=bool)
    is_train[m] = choose_blocks(ids[m], int(np.prod(nb)), train_fraction=train_fraction,
                                seed=seed)
    attrs = {"block_split_fraction": float(is_train.sum() / total), "blocks": list(nb)}
    train = mask.copy(data=is_train).rename("train")
    test = mask.copy(data=m & ~is_train).rename("test")
    train.attrs = dict(attrs)
    test.attrs = dict(attrs)
    return train, test
