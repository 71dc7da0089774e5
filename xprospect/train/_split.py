"""Spatial train/validation split of training windows (pure numpy, no torch).

Random splits of windows leak: a window jittered around a deposit and its neighbour share most
of their cells, so a "validation" window is a near copy of a training one. Here whole spatial
blocks go to validation, the windows of one deposit group stay together, and training windows
that overlap any validation window are dropped (the buffer), so validation measures what the
model does on ground it has not seen.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from xprospect.exceptions import DataError

__all__ = ["overlapping", "spatial_split"]

log = logging.getLogger(__name__)

def overlapping(
    xy_a: np.ndarray, xy_b: np.ndarray, extent: tuple[float, float], *, chunk: int = 2048
) -> np.ndarray:
    """Mask of the windows centred at ``xy_a`` that overlap any window centred at ``xy_b``.

    Two axis-aligned windows of full size ``extent = (width, height)`` overlap when their
    centres are closer than ``width`` along x and than ``height`` along y.
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
    from xprospect.evaluate.cv import spatial_block_folds

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
    if auto:
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
            folds = spatial_block_folds(xy, n_folds=k, block_size=size, buffer=buffer,
                                        groups=codes, metric="chebyshev", seed=seed)
        except DataError as err:
            last_err = err
            continue
        rng = np.random.default_rng(seed)
        for f in rng.permutation(k):
            train_idx, val_idx = folds[f]
            if (np.isin(classes, labels[val_idx]).all()
                    and np.isin(classes, labels[train_idx]).all()):
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
