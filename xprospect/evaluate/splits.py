"""Spatial splits: whole blocks of ground go to one side, so tests never see their neighbours.

One home for every spatial splitter of the package:

* points (window centres, samples): :func:`spatial_fold_ids` and :func:`spatial_block_folds`
  deal whole blocks (and whole groups, such as every window cut around one deposit) to
  cross-validation folds and drop training points within a buffer of any test point;
  :func:`spatial_split` draws one such fold as the validation set of a fit (shrinking the
  default block until both sides hold every class), and :func:`overlapping` finds training
  windows that overlap validation windows;
* drillholes: :func:`hole_folds` keeps every composite of a hole in one fold (holes dealt by
  plan-view blocks) and clears a 3-D buffer of training composites around the test holes;
* grid cells: :func:`block_split` cuts a boolean grid into nearly equal blocks and splits its
  True cells into training and held-out ground (the 70/30 split of background ground used by
  anomaly detectors), with :func:`choose_blocks` dealing blocks of any labelled items.

Random splits of neighbouring windows or cells leak: a test window overlaps the training
windows around it and the score measures memory, not prediction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.spatial import cKDTree

from xprospect._dims import ELEMENT_DIM, grid_geometry
from xprospect.exceptions import DataError

__all__ = [
    "block_split",
    "blocks_per_axis",
    "choose_blocks",
    "deal_blocks",
    "folds_from_ids",
    "grid_block_ids",
    "grid_fold_ids",
    "hole_folds",
    "overlapping",
    "spatial_block_folds",
    "spatial_fold_ids",
    "spatial_split",
]

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


def _point_block_ids(xy: np.ndarray, block_size: Any, blocks: Any, n_folds: int) -> np.ndarray:
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
    cen = np.column_stack([np.bincount(g, weights=xy[:, j]) / counts for j in range(xy.shape[1])])
    return cen[g]


def spatial_fold_ids(
    xy: Any,
    *,
    n_folds: int = 5,
    block_size: Any = None,
    blocks: Any = None,
    groups: Any = None,
    seed: int = 0,
) -> np.ndarray:
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
    _, unit = np.unique(_point_block_ids(where, block_size, blocks, n_folds), return_inverse=True)
    sizes = np.bincount(unit)
    if len(sizes) < n_folds:
        msg = (
            f"only {len(sizes)} spatial blocks hold points (groups at their centroids); "
            f"need at least n_folds={n_folds}: use smaller blocks or fewer folds"
        )
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


def spatial_block_folds(
    xy: Any,
    *,
    n_folds: int = 5,
    block_size: Any = None,
    blocks: Any = None,
    buffer: float = 0.0,
    groups: Any = None,
    metric: str = "chebyshev",
    seed: int = 0,
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
    fold = spatial_fold_ids(
        arr, n_folds=n_folds, block_size=block_size, blocks=blocks, groups=groups, seed=seed
    )
    return folds_from_ids(arr, fold, n_folds=n_folds, buffer=buffer, metric=metric)


def folds_from_ids(
    xy: Any,
    fold: Any,
    *,
    n_folds: int | None = None,
    buffer: float = 0.0,
    metric: str = "chebyshev",
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Training and test indices per fold from a fold number per point, with a buffer.

    Parameters
    ----------
    xy : (n, 2) or (n, 3) array, or points Dataset
        Point coordinates, CRS units.
    fold : (n,) array of int
        Fold of every point (``0 .. n_folds - 1``; a negative number: in no fold, never
        trained on nor tested).
    n_folds : int, optional
        Number of folds (default ``fold.max() + 1``).
    buffer : float
        Training points within this distance of any test point of the fold are removed
        from its training set.
    metric : {"chebyshev", "euclidean"}
        Distance used by the buffer.

    Returns
    -------
    list of (train_idx, test_idx)
        Sorted int64 index arrays per fold.

    Examples
    --------
    >>> import numpy as np
    >>> xy = np.array([[0.0, 0.0], [5.0, 0.0], [10.0, 0.0], [11.0, 0.0]])
    >>> [(tr.tolist(), te.tolist()) for tr, te in folds_from_ids(xy, [0, 1, 1, 0], buffer=1.5)]
    [([1], [0, 3]), ([0], [1, 2])]
    """
    if metric not in _METRICS:
        raise DataError(f"metric must be one of {tuple(_METRICS)}; got {metric!r}")
    if buffer < 0:
        raise DataError(f"buffer must be >= 0; got {buffer}")
    arr = _as_xy(xy)
    fold = np.asarray(fold, dtype="int64")
    if fold.shape != (len(arr),):
        raise DataError(f"fold must hold one entry per point ({len(arr)}); got {fold.shape}")
    if n_folds is None:
        if not (fold >= 0).any():
            raise DataError("no point has a fold (every entry of fold is negative)")
        n_folds = int(fold.max()) + 1
    tree = cKDTree(arr)
    out = []
    for f in range(n_folds):
        test = np.flatnonzero(fold == f)
        train_mask = (fold != f) & (fold >= 0)
        if buffer > 0 and len(test):
            near = tree.query_ball_point(arr[test], r=buffer, p=_METRICS[metric])
            hit = np.unique(np.concatenate([np.asarray(n, dtype="int64") for n in near]))
            n_before = int(train_mask.sum())
            train_mask[hit] = False
            log.info(
                "fold %d: %d test points, %d training points removed by the %.1f buffer",
                f,
                len(test),
                n_before - int(train_mask.sum()),
                buffer,
            )
        train = np.flatnonzero(train_mask)
        if len(train) == 0:
            msg = (
                f"fold {f}: the buffer ({buffer}) removes every training point; "
                "lower the buffer or use larger blocks"
            )
            raise DataError(msg)
        out.append((train.astype("int64"), test.astype("int64")))
    return out


# ---- one validation fold for a fit (windows of a patch set) ----


def overlapping(
    xy_a: np.ndarray, xy_b: np.ndarray, extent: tuple[float, float], *, chunk: int = 2048
) -> np.ndarray:
    """Mask of the windows centred at ``xy_a`` that overlap any window centred at ``xy_b``.

    Two axis-aligned windows of full size ``extent = (width, height)`` overlap when their
    centres are closer than ``width`` along x and than ``height`` along y.

    Parameters
    ----------
    xy_a, xy_b : ndarray, shape (n, 2) and (m, 2)
        Window centres (x, y) in CRS units.
    extent : (width, height)
        Full window size in CRS units.
    chunk : int
        Rows of ``xy_a`` compared at once (bounds the memory of the pairwise test).

    Returns
    -------
    ndarray of bool, shape (n,)
        True where a window of ``xy_a`` overlaps at least one window of ``xy_b``.

    Examples
    --------
    >>> import numpy as np
    >>> overlapping(np.array([[0.0, 0.0], [20.0, 0.0]]), np.array([[5.0, 5.0]]), (10.0, 10.0))
    array([ True, False])
    """
    xy_a = np.asarray(xy_a, dtype="float64").reshape(-1, 2)
    xy_b = np.asarray(xy_b, dtype="float64").reshape(-1, 2)
    out = np.zeros(len(xy_a), dtype=bool)
    if len(xy_a) == 0 or len(xy_b) == 0:
        return out
    wx, wy = float(extent[0]), float(extent[1])
    for s in range(0, len(xy_a), chunk):
        a = xy_a[s : s + chunk]
        dx = np.abs(a[:, None, 0] - xy_b[None, :, 0]) < wx
        dy = np.abs(a[:, None, 1] - xy_b[None, :, 1]) < wy
        out[s : s + chunk] = (dx & dy).any(axis=1)
    return out


def _group_codes(groups: Any, n: int) -> np.ndarray:
    """Integer group per window; windows without a group (None, NaN, '', -1) get their own."""
    if groups is None:
        return np.arange(n)
    g = np.asarray(groups, dtype=object).reshape(-1)
    if g.size != n:
        raise DataError(f"groups has {g.size} entries for {n} windows")
    codes = np.empty(n, dtype="int64")
    table: dict[Any, int] = {}
    nxt = n  # codes >= n are shared groups, < n are singletons
    for i, v in enumerate(g):
        lone = v is None or (isinstance(v, float) and np.isnan(v)) or v == "" or v == -1
        if lone:
            codes[i] = i
            continue
        if v not in table:
            table[v] = nxt
            nxt += 1
        codes[i] = table[v]
    return codes


def spatial_split(
    xy: np.ndarray,
    labels: np.ndarray,
    *,
    extent: tuple[float, float],
    fraction: float = 0.2,
    groups: Any = None,
    block: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Split windows into training and validation by spatial blocks, with an overlap buffer.

    The windows are dealt into ``round(1 / fraction)`` spatial block folds by
    :func:`xprospect.evaluate.spatial_block_folds` (whole blocks, deposit groups kept together,
    training windows within the window extent of a validation window removed, Chebyshev
    distance, so no training window overlaps a validation window); one fold, drawn by ``seed``
    among those leaving every class on both sides, becomes the validation set.

    Parameters
    ----------
    xy : ndarray, shape (n, 2)
        Window centres (x, y) in CRS units.
    labels : ndarray of int, shape (n,)
        Window classes; both sets must hold every class.
    extent : (width, height)
        Full window size in CRS units: the buffer.
    fraction : float
        Target share of windows in validation (0 < fraction <= 0.5).
    groups : array-like, optional
        Group per window (e.g. the deposit a jittered window was cut around); -1, None or NaN
        mark windows of no group.
    block : float, optional
        Block edge in CRS units; default the larger of twice the window extent and the span of
        the windows over ``ceil(sqrt(4 k))`` for ``k`` folds.
    seed : int
        Seed of the fold draw (and of ties when dealing blocks).

    Returns
    -------
    train_idx, val_idx : ndarray of int
        Indices into the windows (training ones with overlaps already removed).
    info : dict
        ``method``, ``block``, ``n_folds``, ``n_train``, ``n_val``, ``n_dropped`` (buffer).
    """
    xy = np.asarray(xy, dtype="float64").reshape(-1, 2)
    labels = np.asarray(labels).astype("int64")
    n = len(xy)
    if labels.shape != (n,):
        raise DataError(f"{labels.shape[0]} labels for {n} windows")
    if not 0 < fraction <= 0.5:
        raise DataError(f"validation fraction must be in (0, 0.5]; got {fraction!r}")
    k = max(2, round(1.0 / fraction))
    span = float(max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1]), 1e-12))
    auto = block is None
    if block is None:
        block = max(2.0 * max(extent), span / np.ceil(np.sqrt(4 * k)))
    block = float(block)
    # windows of no group must not be merged into one "group -1" spanning the whole area
    codes = _group_codes(groups, n)
    buffer = float(max(extent))
    classes = np.unique(labels)
    # the default block shrinks (never below one window extent; the buffer keeps validation
    # windows clear of training windows whatever the block) until a fold holds both classes
    sizes = [block]
    while auto and sizes[-1] / 1.5 >= max(extent):
        sizes.append(sizes[-1] / 1.5)
    found, last_err = None, None
    for size in sizes:
        try:
            folds = spatial_block_folds(
                xy,
                n_folds=k,
                block_size=size,
                buffer=buffer,
                groups=codes,
                metric="chebyshev",
                seed=seed,
            )
        except DataError as err:
            last_err = err
            continue
        rng = np.random.default_rng(seed)
        for f in rng.permutation(k):
            train_idx, val_idx = folds[f]
            if (
                np.isin(classes, labels[val_idx]).all()
                and np.isin(classes, labels[train_idx]).all()
            ):
                found = (int(f), train_idx, val_idx, size)
                break
        if found is not None:
            break
    if found is None:
        counts = {int(c): int((labels == c).sum()) for c in classes}
        why = f" ({last_err})" if last_err is not None else ""
        raise DataError(
            f"no spatial validation split of {n} windows (class counts {counts}; {k} folds of "
            f"{block:g}-unit blocks, shrunk to {sizes[-1]:g}) leaves every class on both "
            f"sides{why}; add windows, pass block=, or pass validation windows explicitly"
        )
    f, train_idx, val_idx, block = found
    info = {
        "method": "spatial block fold with overlap buffer",
        "block": block,
        "buffer": buffer,
        "n_folds": int(k),
        "fold": int(f),
        "n_train": int(train_idx.size),
        "n_val": int(val_idx.size),
        "n_dropped": int(n - train_idx.size - val_idx.size),
    }
    log.info("spatial split: %s", info)
    return np.sort(train_idx), np.sort(val_idx), info


# ---- grid cells: blocks of a boolean grid ----


def grid_block_ids(shape: tuple[int, ...], blocks: Sequence[int]) -> np.ndarray:
    """Block id of every cell of a grid of ``shape`` cut into ``blocks`` runs per axis.

    Each axis of ``n`` cells is cut into ``b`` nearly equal runs (cell ``i`` in run
    ``i * b // n``); the id is the row-major index of the runs, in ``[0, prod(blocks))``.

    Parameters
    ----------
    shape : tuple of int
        Grid shape, in the grid's dim order.
    blocks : sequence of int
        Runs per axis, one per entry of ``shape`` (each at most that axis' size).

    Returns
    -------
    ndarray of int64
        Array of ``shape`` holding block ids.

    Examples
    --------
    >>> grid_block_ids((2, 4), (1, 2)).tolist()
    [[0, 0, 1, 1], [0, 0, 1, 1]]
    """
    ids = np.zeros(shape, dtype=np.int64)
    for ax, (n, b) in enumerate(zip(shape, blocks, strict=True)):
        run = (np.arange(n) * b) // n
        ids = ids * b + np.expand_dims(run, tuple(i for i in range(len(shape)) if i != ax))
    return ids


def blocks_per_axis(
    shape: tuple[int, int],
    step: tuple[float, float],
    n_folds: int,
    *,
    blocks: Any = None,
    block_size: Any = None,
) -> tuple[int, int]:
    """Blocks along y and x of a 2-D grid for spatial folds.

    Parameters
    ----------
    shape : (ny, nx)
        Grid shape.
    step : (dy, dx)
        Cell sizes, CRS units (signs ignored).
    n_folds : int
        Folds; without ``blocks`` or ``block_size``, ``ceil(sqrt(4 n_folds))`` blocks a side.
    blocks : int or (nx, ny), optional
        Blocks along x and y.
    block_size : float or (bx, by), optional
        Instead: block edge along x and y, CRS units.

    Returns
    -------
    (by, bx)
        Blocks along y and x, each at most that axis' cells.
    """
    if blocks is not None and block_size is not None:
        raise DataError("give blocks= or block_size=, not both")
    if block_size is not None:
        size = np.broadcast_to(np.asarray(block_size, dtype="float64"), (2,))  # (x, y)
        if (size <= 0).any():
            raise DataError(f"block_size must be > 0; got {block_size!r}")
        ny = int(np.ceil(shape[0] * abs(step[0]) / size[1]))
        nx = int(np.ceil(shape[1] * abs(step[1]) / size[0]))
    else:
        if blocks is None:
            side = int(np.ceil(np.sqrt(4 * n_folds)))
            blocks = (side, side)
        nb = np.broadcast_to(np.asarray(blocks, dtype="int64"), (2,))  # (x, y)
        nx, ny = int(nb[0]), int(nb[1])
    if nx < 1 or ny < 1:
        raise DataError(f"blocks must be >= 1 along x and y; got {(nx, ny)}")
    return min(ny, shape[0]), min(nx, shape[1])


def deal_blocks(
    block: np.ndarray, valid: np.ndarray, positive_cells: np.ndarray, n_folds: int, seed: int
) -> np.ndarray:
    """Fold of every block: blocks holding positives balance positives, the others area.

    Blocks holding positives (deposits) are dealt first, most positives first, each to the
    fold with the fewest positives so far (ties: the fewest cells); the other blocks then
    go, largest first, to the fold with the fewest cells. ``seed`` breaks ties between
    blocks. So the deal depends on the positives, the valid cells and the seed only.

    Parameters
    ----------
    block : ndarray of int
        Block id of every cell (:func:`grid_block_ids`), any shape.
    valid : ndarray of bool
        Cells that count (same shape as ``block``).
    positive_cells : ndarray of int
        Flat indices of the positive cells (valid ones).
    n_folds : int
        Number of folds.
    seed : int
        Breaks ties between blocks.

    Returns
    -------
    ndarray of int64
        Fold of every block id (-1 for blocks without valid cells).

    Raises
    ------
    DataError
        When fewer blocks hold positives than there are folds.
    """
    n_blocks = int(block.max()) + 1
    cells = np.bincount(block[valid], minlength=n_blocks)
    deps = np.bincount(block.ravel()[positive_cells], minlength=n_blocks)
    rng = np.random.default_rng(seed)
    tie = rng.permutation(n_blocks)
    fold_of = np.full(n_blocks, -1, dtype="int64")
    n_dep = np.zeros(n_folds, dtype="int64")
    n_cell = np.zeros(n_folds, dtype="int64")
    with_dep = np.flatnonzero(deps > 0)
    for b in with_dep[np.lexsort((tie[with_dep], -cells[with_dep], -deps[with_dep]))]:
        f = int(np.lexsort((n_cell, n_dep))[0])
        fold_of[b] = f
        n_dep[f] += deps[b]
        n_cell[f] += cells[b]
    rest = np.flatnonzero((deps == 0) & (cells > 0))
    for b in rest[np.lexsort((tie[rest], -cells[rest]))]:
        f = int(np.argmin(n_cell))
        fold_of[b] = f
        n_cell[f] += cells[b]
    if (n_dep == 0).any():
        msg = (
            f"only {len(with_dep)} blocks hold deposits; every one of the {n_folds} folds "
            "needs at least one: use smaller blocks or fewer folds"
        )
        raise DataError(msg)
    return fold_of


def grid_fold_ids(
    valid: np.ndarray,
    step: tuple[float, float],
    positive_cells: np.ndarray,
    n_folds: int,
    *,
    blocks: Any = None,
    block_size: Any = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Spatial folds of a 2-D grid's cells: blocks dealt with positives balanced.

    The folds of :func:`xprospect.benchmark` and
    :func:`xprospect.train.cross_validate`: the grid is cut into blocks
    (:func:`blocks_per_axis`, :func:`grid_block_ids`) and the blocks are dealt by
    :func:`deal_blocks`, so the same grid, positives, blocks and seed give the same folds
    to every method and to both functions.

    Parameters
    ----------
    valid : (ny, nx) ndarray of bool
        Cells with data.
    step : (dy, dx)
        Cell sizes, CRS units.
    positive_cells : ndarray of int
        Flat indices of the positive (deposit) cells, valid ones.
    n_folds : int
        Number of folds.
    blocks, block_size : optional
        See :func:`blocks_per_axis`.
    seed : int
        Breaks ties when dealing blocks.

    Returns
    -------
    fold : (ny, nx) ndarray of int64
        Fold of every cell, -1 where not valid.
    block : (ny, nx) ndarray of int64
        Block id of every cell.

    Examples
    --------
    >>> import numpy as np
    >>> valid = np.ones((4, 4), dtype=bool)
    >>> fold, _ = grid_fold_ids(valid, (1.0, 1.0), np.array([0, 15]), 2, blocks=2)
    >>> sorted({int(fold.flat[0]), int(fold.flat[15])})
    [0, 1]
    """
    valid = np.asarray(valid, dtype=bool)
    if valid.ndim != 2:
        raise DataError(f"grid_fold_ids takes a 2-D grid; got shape {valid.shape}")
    shape = (int(valid.shape[0]), int(valid.shape[1]))
    by, bx = blocks_per_axis(shape, step, n_folds, blocks=blocks, block_size=block_size)
    block = grid_block_ids(shape, (by, bx))
    fold_of_block = deal_blocks(block.ravel(), valid.ravel(), positive_cells, n_folds, seed)
    return np.where(valid, fold_of_block[block], -1), block


def choose_blocks(
    ids: np.ndarray, n_blocks: int, *, train_fraction: float = 0.7, seed: int = 0
) -> np.ndarray:
    """Training flags of items labelled by block ``ids``: whole blocks go to one side.

    Blocks holding items are shuffled (``seed``) and taken into the training side until it
    holds at least ``train_fraction`` of the items; at least one block stays on each side.
    Shared by :func:`block_split` (grid cells) and point (sample) splits.
    """
    ids = np.asarray(ids, dtype=np.int64)
    counts = np.bincount(ids, minlength=int(n_blocks))
    occupied = np.flatnonzero(counts)
    if occupied.size < 2:
        msg = (
            f"all {ids.size} usable items lie in one of the {n_blocks} blocks; use more "
            "blocks to split them"
        )
        raise DataError(msg)
    order = np.random.default_rng(seed).permutation(occupied)
    cum = np.cumsum(counts[order])
    k = int(np.searchsorted(cum, float(train_fraction) * ids.size))
    k = min(max(k + 1, 1), occupied.size - 1)
    return np.isin(ids, order[:k])


def block_split(
    mask: xr.DataArray,
    *,
    blocks: int | Sequence[int] = 5,
    train_fraction: float = 0.7,
    seed: int = 0,
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
    per_axis = np.asarray(blocks).ravel()
    nb = [int(per_axis[0])] * geom.ndim if np.ndim(blocks) == 0 else [int(b) for b in per_axis]
    if len(nb) != geom.ndim or any(b < 1 for b in nb):
        raise DataError(f"blocks={blocks!r} must give a positive count per axis {geom.dims}")
    nb = [min(b, n) for b, n in zip(nb, geom.shape, strict=True)]
    m = np.asarray(mask.values, dtype=bool)
    total = int(m.sum())
    if total < 2:
        raise DataError(f"the mask holds {total} True cells; a split needs at least 2")
    ids = grid_block_ids(geom.shape, nb)
    is_train = np.zeros(geom.shape, dtype=bool)
    is_train[m] = choose_blocks(ids[m], int(np.prod(nb)), train_fraction=train_fraction, seed=seed)
    attrs = {"block_split_fraction": float(is_train.sum() / total), "blocks": list(nb)}
    train = mask.copy(data=is_train).rename("train")
    test = mask.copy(data=m & ~is_train).rename("test")
    train.attrs = dict(attrs)
    test.attrs = dict(attrs)
    return train, test


# ---- drillholes: whole holes per fold ----


def hole_folds(
    samples: Any,
    holes: Any = None,
    *,
    n_folds: int = 5,
    block_size: Any = None,
    blocks: Any = None,
    buffer: float = 0.0,
    drop: str = "composites",
    hole: str = "hole_id",
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave-holes-out spatial folds: the composites of one drillhole never straddle folds.

    Each hole counts in the plan-view (x, y) block holding the centroid of its composites;
    whole blocks of holes are dealt to folds as in :func:`spatial_fold_ids`. A training
    composite within ``buffer`` (3-D Euclidean distance) of any test composite is dropped
    from that fold's training set, or, with ``drop="holes"``, its whole hole is.

    Parameters
    ----------
    samples : points Dataset or (n, 3) array
        Composites with ``x``, ``y``, ``z`` (and, for a Dataset, the ``hole`` coordinate).
    holes : array-like, optional
        The hole of every composite (default ``samples[hole]``).
    n_folds : int
        Number of folds.
    block_size : float or (bx, by), optional
        Plan-view block edge, CRS units (e.g. 250 m). Or ``blocks`` per axis; without
        either, ``ceil(sqrt(4 n_folds))`` blocks a side over the holes' extent.
    blocks : int or (nx, ny), optional
        Number of blocks along x and y.
    buffer : float
        3-D distance (CRS units) kept free of training composites around every test
        composite: a block model built from the training holes then reads no neighbour
        of a test composite within that distance.
    drop : {"composites", "holes"}
        Drop only the training composites inside the buffer, or their whole holes.
    hole : str
        Name of the hole coordinate of a Dataset.
    seed : int
        Breaks ties when dealing blocks to folds.

    Returns
    -------
    list of (train_idx, test_idx)
        Sorted int64 composite indices per fold; every composite is a test composite
        exactly once, every hole's composites are tested in one fold.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> holes = np.repeat(np.arange(20), 10)
    >>> xyz = np.column_stack([rng.uniform(0, 1000, 20)[holes], rng.uniform(0, 1000, 20)[holes],
    ...                        -np.tile(np.arange(10.0) * 10, 20)])
    >>> folds = hole_folds(xyz, holes, n_folds=4, block_size=250.0, buffer=30.0)
    >>> all(len(set(holes[te]) & set(holes[tr])) == 0 for tr, te in folds)
    True
    """
    if drop not in ("composites", "holes"):
        raise DataError(f"drop must be 'composites' or 'holes'; got {drop!r}")
    arr = _as_xy(samples)
    if arr.shape[1] != 3:
        raise DataError(f"hole_folds needs x, y and z per composite; got {arr.shape[1]} columns")
    if holes is None:
        if not isinstance(samples, xr.Dataset) or hole not in samples.variables:
            raise DataError(f"give holes= or a samples Dataset with a {hole!r} coordinate")
        holes = samples[hole].values
    h = np.asarray(holes)
    if h.shape != (len(arr),):
        raise DataError(f"holes must have one entry per composite ({len(arr)}); got {h.shape}")
    folds = spatial_block_folds(
        arr,
        n_folds=n_folds,
        block_size=block_size,
        blocks=blocks,
        buffer=buffer,
        groups=h,
        metric="euclidean",
        seed=seed,
    )
    if drop == "composites":
        return folds
    out = []
    for f, (train, test) in enumerate(folds):
        keep = np.zeros(len(arr), dtype=bool)
        keep[train] = True
        candidates = np.ones(len(arr), dtype=bool)
        candidates[test] = False
        cut = np.unique(h[candidates & ~keep])  # training holes that lost a composite
        train = np.flatnonzero(keep & ~np.isin(h, cut))
        if len(train) == 0:
            msg = f"fold {f}: the buffer ({buffer}) removes every training hole"
            raise DataError(msg)
        out.append((train.astype("int64"), test))
    return out
