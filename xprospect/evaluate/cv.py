"""Spatial block cross-validation: folds of whole blocks, with a buffer around test points.

Random splits of neighbouring windows leak: a test window overlaps the training windows
around it and the score measures memory, not prediction. Here points (window centres) are
grouped into spatial blocks, whole blocks (and whole groups such as every window cut around
one deposit) go to one fold, and training points closer than ``buffer`` to any test point
are removed.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import xarray as xr
from scipy.spatial import cKDTree

from xprospect.exceptions import DataError

__all__ = ["spatial_block_folds", "spatial_fold_ids"]

log = logging.getLogger(__name__)

_METRICS = {"chebyshev": np.inf, "euclidean": 2.0}


def _as_xy(xy: Any) -> np.ndarray:
    if isinstance(xy, xr.Dataset):
        cols = [c for c in ("x", "y", "z") if c in xy.coords or c in xy.data_vars]
        if "x" not in cols or "y" not in cols:
            raise DataError(f"points need x and y coordinates; got {list(xy.coords)}")
        arr = np.column_stack([np.asarray(xy[c].values, dtype="float64") for c in cols])
    else:
        arr = np.asarray(xy, dtype="float64")
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise DataError(f"xy must be an (n, 2) or (n, 3) array of coordinates; got {arr.shape}")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise DataError(f"xy holds non-finite coordinates, first at row {bad}: {arr[bad]}")
    return arr


def _block_ids(xy: np.ndarray, block_size: Any, blocks: Any, n_folds: int) -> np.ndarray:
    lo = xy[:, :2].min(axis=0)
    hi = xy[:, :2].max(axis=0)
    if block_size is not None and blocks is not None:
        raise DataError("give block_size= or blocks=, not both")
    if block_size is not None:
        size = np.broadcast_to(np.asarray(block_size, dtype="float64"), (2,))
        if (size <= 0).any():
            raise DataError(f"block_size must be > 0; got {block_size!r}")
        ij = np.floor((xy[:, :2] - lo) / size).astype("int64")
    else:
        if blocks is None:
            side = int(np.ceil(np.sqrt(4 * n_folds)))
            blocks = (side, side)
        nb = np.broadcast_to(np.asarray(blocks, dtype="int64"), (2,))
        if (nb < 1).any():
            raise DataError(f"blocks must be >= 1 along x and y; got {blocks!r}")
        span = np.where(hi > lo, hi - lo, 1.0)
        ij = np.minimum(np.floor((xy[:, :2] - lo) / span * nb).astype("int64"), nb - 1)
    return ij[:, 1] * (ij[:, 0].max() + 1) + ij[:, 0]


def _group_centres(xy: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Every point moved to the centroid of its group, so a group falls in one block."""
    _, g = np.unique(groups, return_inverse=True)
    counts = np.bincount(g).astype("float64")
    cen = np.column_stack([np.bincount(g, weights=xy[:, j]) / counts
                           for j in range(xy.shape[1])])
    return cen[g]


def spatial_fold_ids(xy: Any, *, n_folds: int = 5, block_size: Any = None, blocks: Any = None,
                     groups: Any = None, seed: int = 0) -> np.ndarray:
    """Fold number (0 to ``n_folds - 1``) of every point, whole blocks and groups per fold.

    See :func:`spatial_block_folds` for the parameters. A grouped point counts in the block
    of its group's centroid, so a group never straddles folds and groups never chain blocks
    together. Blocks are dealt to folds largest first, each to the fold holding the fewest
    points so far; ``seed`` breaks ties between units of equal size.
    """
    arr = _as_xy(xy)
    if n_folds < 2:
        raise DataError(f"n_folds must be >= 2; got {n_folds}")
    g = None
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != (len(arr),):
            raise DataError(f"groups must have one entry per point ({len(arr)}); got {g.shape}")
    where = arr if g is None else _group_centres(arr, g)
    _, unit = np.unique(_block_ids(where, block_size, blocks, n_folds), return_inverse=True)
    sizes = np.bincount(unit)
    if len(sizes) < n_folds:
        msg = (f"only {len(sizes)} spatial blocks hold points (groups at their centroids); "
               f"need at least n_folds={n_folds}: use smaller blocks or fewer folds")
        raise DataError(msg)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.permutation(len(sizes)), -sizes))
    load = np.zeros(n_folds, dtype="int64")
    fold_of_unit = np.empty(len(sizes), dtype="int64")
    for u in order:
        f = int(np.argmin(load))
        fold_of_unit[u] = f
        load[f] += sizes[u]
    return fold_of_unit[unit]


def spatial_block_folds(xy: Any, *, n_folds: int = 5, block_size: Any = None,
                        blocks: Any = None, buffer: float = 0.0, groups: Any = None,
                        metric: str = "chebyshev", seed: int = 0
                        ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Spatial block cross-validation folds with a buffer between training and test points.

    Parameters
    ----------
    xy : (n, 2) or (n, 3) array, or points Dataset
        Point coordinates (e.g. window centres) x, y (and z), CRS units.
    n_folds : int
        Number of folds.
    block_size : float or (bx, by), optional
        Block edge length along x and y, CRS units (blocks start at the points' minimum).
    blocks : int or (nx, ny), optional
        Instead: number of blocks along x and y over the points' bounding box. Without
        either, ``ceil(sqrt(4 n_folds))`` blocks a side (5 x 5 for 5 folds).
    buffer : float
        Training points within this distance of any test point are removed from that
        fold's training set. With ``metric="chebyshev"`` (the default, right for square
        windows) and ``buffer >=`` the window's extent in CRS units (size x resolution),
        no training window overlaps a test window.
    groups : array-like, optional
        A label per point (e.g. the deposit a jittered window was cut around); points of
        one group always fall in the same fold, that of the block holding their centroid.
    metric : {"chebyshev", "euclidean"}
        Distance used by the buffer (over x, y and z when given).
    seed : int
        Breaks ties when dealing blocks to folds.

    Returns
    -------
    list of (train_idx, test_idx)
        Sorted int64 index arrays per fold; every point is a test point exactly once.

    Examples
    --------
    >>> import numpy as np
    >>> xy = np.random.default_rng(0).uniform(0, 1000, (200, 2))
    >>> folds = spatial_block_folds(xy, n_folds=4, buffer=50.0)
    >>> sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(200))
    True
    """
    if metric not in _METRICS:
        raise DataError(f"metric must be one of {tuple(_METRICS)}; got {metric!r}")
    if buffer < 0:
        raise DataError(f"buffer must be >= 0; got {buffer}")
    arr = _as_xy(xy)
    fold = spatial_fold_ids(arr, n_folds=n_folds, block_size=block_size, blocks=blocks,
                            groups=groups, seed=seed)
    tree = cKDTree(arr)
    out = []
    for f in range(n_folds):
        test = np.flatnonzero(fold == f)
        train_mask = fold != f
        if buffer > 0 and len(test):
            near = tree.query_ball_point(arr[test], r=buffer, p=_METRICS[metric])
            hit = np.unique(np.concatenate([np.asarray(n, dtype="int64") for n in near]))
            n_before = int(train_mask.sum())
            train_mask[hit] = False
            log.info("fold %d: %d test points, %d training points removed by the %.1f buffer",
                     f, len(test), n_before - int(train_mask.sum()), buffer)
        train = np.flatnonzero(train_mask)
        if len(train) == 0:
            msg = (f"fold {f}: the buffer ({buffer}) removes every training point; "
                   "lower the buffer or use larger blocks")
            raise DataError(msg)
        out.append((train.astype("int64"), test.astype("int64")))
    return out
