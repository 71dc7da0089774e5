"""The study-style block grid: a map cut into n x m blocks, each scored, numbered and judged.

The Pangxidong study cuts its 3072 x 3072 grid into 12 x 12 blocks of 256 x 256 cells,
numbers them 1 to 144, calls a block "ore" when it holds a known deposit, scores each block
and reports accuracy, AUC, F1 and the confusion matrix over the 144 blocks.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect._dims import get_crs, grid_geometry, write_crs
from xprospect.evaluate._common import ResolvedMap, as_score_map, resolve_map
from xprospect.evaluate.metrics import classification_metrics
from xprospect.exceptions import DataError, GridError

__all__ = ["block_edges", "block_grid", "block_labels"]

log = logging.getLogger(__name__)

_REDUCE = ("mean", "max", "median")


def block_edges(n: int, n_blocks: int) -> np.ndarray:
    """Cell index edges splitting ``n`` cells into ``n_blocks`` near-equal runs.

    Block ``k`` holds cells ``edges[k]:edges[k + 1]``; sizes differ by at most one cell
    (the larger blocks come last).

    Examples
    --------
    >>> block_edges(10, 3).tolist()
    [0, 3, 6, 10]
    """
    if n_blocks < 1 or n_blocks > n:
        raise GridError(f"cannot cut {n} cells into {n_blocks} blocks")
    return (np.arange(n_blocks + 1) * n) // n_blocks


def _parse_blocks(blocks: Any) -> tuple[int, int]:
    if isinstance(blocks, (int, np.integer)):
        return int(blocks), int(blocks)
    try:
        nx, ny = (int(b) for b in blocks)
    except (TypeError, ValueError) as err:
        raise GridError(f"blocks must be an int or (nx, ny); got {blocks!r}") from err
    return nx, ny


def _geometry_2d(like: xr.Dataset | xr.DataArray):
    geom = grid_geometry(like)
    if geom.ndim != 2:
        msg = "block grids are 2-D; got a 3-D (z, y, x) grid (take a slice or a max over z)"
        raise GridError(msg)
    return geom


def block_labels(
    like: xr.Dataset | xr.DataArray, blocks: Any = (12, 12), *, name: str = "block"
) -> xr.DataArray:
    """Label every cell of a 2-D grid with its block number.

    Parameters
    ----------
    like : Dataset or DataArray
        A (y, x) grid.
    blocks : int or (nx, ny)
        Blocks along x (columns) and along y (rows), as in :func:`spatial_block_folds`.
    name : str
        Name of the result.

    Returns
    -------
    xarray.DataArray
        int32 on ``like``'s grid and CRS: blocks numbered 1 to ``nx * ny`` row by row from
        the north-west corner (block 1 is the top-left, block ``nx`` the top-right).

    Examples
    --------
    >>> import xprospect as xp
    >>> g = xp.make_grid((0, 0, 40, 40), resolution=10, crs="EPSG:32750")
    >>> block_labels(g, (2, 2)).values.tolist()[0]
    [1, 1, 2, 2]
    """
    geom = _geometry_2d(like)
    nx, ny = _parse_blocks(blocks)
    ey, ex = block_edges(geom.shape[0], ny), block_edges(geom.shape[1], nx)
    row = np.repeat(np.arange(ny), np.diff(ey))
    col = np.repeat(np.arange(nx), np.diff(ex))
    lab = (row[:, None] * nx + col[None, :] + 1).astype("int32")
    out = xr.DataArray(
        lab,
        dims=geom.dims,
        coords={d: like[d] for d in geom.dims},
        name=name,
        attrs={"blocks": [nx, ny], "numbering": "row-major from north-west, 1-based"},
    )
    crs = get_crs(like)
    return write_crs(out, crs) if crs is not None else out


def block_grid(
    score_map: xr.DataArray,
    blocks: Any = (12, 12),
    *,
    deposits: Any = None,
    threshold: float = 0.5,
    reduce: str = "mean",
) -> pd.DataFrame:
    """Cut a score map into blocks, score, number and (with deposits) judge each block.

    Parameters
    ----------
    score_map : xarray.DataArray
        A (y, x) score map; NaN cells are outside the study area.
    blocks : int or (nx, ny)
        Blocks along x and along y; (12, 12) as in the Pangxidong study.
    deposits : points, optional
        Known deposits. A block is "ore" (``truth``) when it holds at least one; deposits
        outside the grid or on NaN cells are dropped and counted in ``attrs``.
    threshold : float
        A block is predicted prospective when its ``score >= threshold``.
    reduce : {"mean", "max", "median"}
        How a block's cells make its ``score`` (NaN cells ignored).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``block`` (1 to ``nx * ny``, row-major from the north-west), columns
        ``row``, ``col``, ``i0``, ``i1``, ``j0``, ``j1`` (cell rows ``i0:i1`` and columns
        ``j0:j1``), ``xmin``, ``xmax``, ``ymin``, ``ymax`` (outer cell edges, CRS units),
        ``n_cells``, ``n_valid``, ``mean_score``, ``max_score``, ``score``, ``predicted``,
        and with deposits ``n_deposits`` and ``truth``. Blocks without a finite cell have NaN
        scores, are not predicted and are left out of the metrics.
        ``attrs["metrics"]``: :func:`classification_metrics` over the scored blocks (when
        deposits are given and both classes occur; otherwise ``attrs["metrics_note"]`` says
        why not), plus ``attrs`` ``blocks``, ``threshold``, ``reduce`` and deposit counts.

    Notes
    -----
    The map is computed (block statistics need every cell).
    """
    if reduce not in _REDUCE:
        raise DataError(f"reduce must be one of {_REDUCE}; got {reduce!r}")
    _geometry_2d(as_score_map(score_map))
    _parse_blocks(blocks)
    return _block_grid(resolve_map(score_map, deposits), blocks, threshold=threshold, reduce=reduce)


def _block_grid(
    resolved: ResolvedMap, blocks: Any, *, threshold: float, reduce: str
) -> pd.DataFrame:
    """Return the block grid of a map read once (see :func:`block_grid`)."""
    score_map, vals, valid = resolved.score_map, resolved.values, resolved.valid
    geom = _geometry_2d(score_map)
    nx, ny = _parse_blocks(blocks)
    ey, ex = block_edges(geom.shape[0], ny), block_edges(geom.shape[1], nx)
    sums = np.add.reduceat(
        np.add.reduceat(np.where(valid, vals, 0.0), ey[:-1], axis=0), ex[:-1], axis=1
    )
    nval = np.add.reduceat(np.add.reduceat(valid.astype("int64"), ey[:-1], axis=0), ex[:-1], axis=1)
    maxs = np.maximum.reduceat(
        np.maximum.reduceat(np.where(valid, vals, -np.inf), ey[:-1], axis=0), ex[:-1], axis=1
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(nval > 0, sums / np.maximum(nval, 1), np.nan)
    maxs = np.where(nval > 0, maxs, np.nan)
    rows, cols = np.divmod(np.arange(nx * ny), nx)
    if reduce == "median":
        med = np.full(nx * ny, np.nan)
        for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
            blk = vals[ey[r] : ey[r + 1], ex[c] : ex[c + 1]]
            blk = blk[np.isfinite(blk)]
            if blk.size:
                med[k] = np.median(blk)
    ycoord, xcoord = score_map["y"].values, score_map["x"].values
    dy, dx = abs(geom.step[0]), abs(geom.step[1])
    i0, i1 = ey[rows], ey[rows + 1]
    j0, j1 = ex[cols], ex[cols + 1]
    ya, yb = ycoord[i0], ycoord[i1 - 1]
    xa, xb = xcoord[j0], xcoord[j1 - 1]
    table = pd.DataFrame(
        {
            "row": rows,
            "col": cols,
            "i0": i0,
            "i1": i1,
            "j0": j0,
            "j1": j1,
            "xmin": np.minimum(xa, xb) - dx / 2,
            "xmax": np.maximum(xa, xb) + dx / 2,
            "ymin": np.minimum(ya, yb) - dy / 2,
            "ymax": np.maximum(ya, yb) + dy / 2,
            "n_cells": (i1 - i0) * (j1 - j0),
            "n_valid": nval.ravel(),
            "mean_score": means.ravel(),
            "max_score": maxs.ravel(),
        },
        index=pd.RangeIndex(1, nx * ny + 1, name="block"),
    )
    table["score"] = {
        "mean": table["mean_score"],
        "max": table["max_score"],
        "median": med if reduce == "median" else None,
    }[reduce]
    table["predicted"] = (table["score"] >= threshold).to_numpy()  # NaN compares False
    table.attrs.update(blocks=[nx, ny], threshold=float(threshold), reduce=reduce)
    cells = resolved.deposits
    if cells is None:
        return table
    r_dep, c_dep = np.unravel_index(cells.flat, geom.shape)
    b_dep = (np.searchsorted(ey, r_dep, side="right") - 1) * nx + (
        np.searchsorted(ex, c_dep, side="right") - 1
    )
    table["n_deposits"] = np.bincount(b_dep, minlength=nx * ny)
    table["truth"] = table["n_deposits"] > 0
    table.attrs.update(cells.info("deposits"))
    scored = table[table["n_valid"] > 0]
    n_ore = int(scored["truth"].sum())
    if 0 < n_ore < len(scored):
        table.attrs["metrics"] = classification_metrics(
            scored["truth"].to_numpy(), scored["score"].to_numpy(), threshold=threshold
        )
    else:
        table.attrs["metrics_note"] = (
            f"{n_ore} of {len(scored)} scored blocks hold a deposit;"
            " block metrics need both classes"
        )
        log.info("block grid: %s", table.attrs["metrics_note"])
    return table
