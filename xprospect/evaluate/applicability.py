"""Area of applicability (Meyer & Pebesma, 2021): where the evidence resembles the training data.

A model only knows the evidence it was trained on. The dissimilarity index (DI) of a cell is
the distance, in the space of standardised and importance-weighted evidence, from the cell to
its nearest training point, divided by the mean distance between training points. The
threshold is the upper whisker of the training points' own cross-validated DI (each point's
distance to the nearest training point of *another* fold): the largest training DI not above
``Q75 + 1.5 IQR``, as the CAST R package (``aoa``) computes it. Cells above it lie outside
the area of applicability: their score is an extrapolation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist

from xprospect._dims import ELEMENT_DIM, get_crs, grid_geometry, write_crs
from xprospect.evaluate.splits import spatial_fold_ids
from xprospect.exceptions import DataError
from xprospect.points import point_cells

__all__ = ["area_of_applicability", "dissimilarity_index", "training_evidence"]

#: Training points beyond which the mean pairwise distance is estimated on a random subset.
_PAIRWISE_MAX = 4000


def training_evidence(stack: xr.DataArray, points: Any) -> tuple[np.ndarray, np.ndarray]:
    """Evidence vectors and coordinates of the cells holding ``points`` (computed, small).

    Parameters
    ----------
    stack : xarray.DataArray
        ``(element, y, x)`` or ``(element, z, y, x)`` stack.
    points : points
        Training locations (deposits and negatives); points off the grid or on cells with a
        non-finite element are dropped.

    Returns
    -------
    values : ndarray, shape (n, n_elements)
        Evidence at the points' cells.
    xy : ndarray, shape (n, ndim)
        Cell-centre coordinates in the grid's dim order reversed (x, y[, z]).
    """
    geom = grid_geometry(stack)
    pc = point_cells(points, stack.isel({ELEMENT_DIM: 0}), None, "training points")
    idx = np.unravel_index(pc.flat, geom.shape)
    sel = {d: xr.DataArray(i, dims="p") for d, i in zip(geom.dims, idx, strict=True)}
    vals = stack.transpose(ELEMENT_DIM, *geom.dims).isel(sel).transpose("p", ELEMENT_DIM)
    values = np.asarray(vals.values, dtype="float64")
    coords = [
        np.asarray(stack[d].values, dtype="float64")[i] for d, i in zip(geom.dims, idx, strict=True)
    ]
    xy = np.column_stack(coords[::-1])
    ok = np.isfinite(values).all(axis=1)
    return values[ok], xy[ok]


def _weights(weights: Any, names: Sequence[str]) -> np.ndarray:
    if weights is None:
        return np.ones(len(names))
    if isinstance(weights, Mapping):
        missing = [n for n in names if n not in weights]
        if missing:
            raise DataError(f"weights gives no importance for elements {missing}")
        w = np.asarray([float(weights[n]) for n in names])
    else:
        w = np.asarray(weights, dtype="float64").ravel()
        if w.size != len(names):
            raise DataError(f"{w.size} weights for {len(names)} elements {list(names)}")
    if not np.isfinite(w).all() or (w < 0).any() or not (w > 0).any():
        raise DataError(f"weights must be finite, >= 0 and not all 0; got {w.tolist()}")
    return w


def _mean_pairwise(z: np.ndarray, seed: int) -> float:
    if len(z) > _PAIRWISE_MAX:
        z = z[np.random.default_rng(seed).choice(len(z), _PAIRWISE_MAX, replace=False)]
    d = pdist(z)
    return float(d.mean()) if d.size else 0.0


def _di_block(block: np.ndarray, tree: Any, centre: Any, scale: Any, dbar: float) -> np.ndarray:
    """DI of the cells of one chunk ``(element, *spatial)``: nearest training point / dbar."""
    x = np.moveaxis(np.asarray(block, dtype="float64"), 0, -1)
    shape = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    out = np.full(flat.shape[0], np.nan)
    ok = np.isfinite(flat).all(axis=1)
    if ok.any():
        # scipy's KD tree: a nearest-neighbour query per chunk in compiled code (workers=1:
        # dask already runs the chunks side by side)
        d, _ = tree.query((flat[ok] - centre) * scale, k=1, workers=1)
        out[ok] = d / dbar
    return out.reshape(shape)


def dissimilarity_index(
    stack: xr.DataArray,
    train: Any,
    *,
    weights: Any = None,
    folds: Any = None,
    n_folds: int = 5,
    block_size: Any = None,
    seed: int = 0,
) -> tuple[xr.DataArray, dict[str, Any]]:
    """Dissimilarity index of every cell to the training data, lazily over dask chunks.

    See :func:`area_of_applicability` for the parameters.

    Returns
    -------
    di : xarray.DataArray
        ``DI`` on the stack's grid and CRS (float64; NaN where an element is NaN).
    info : dict
        ``mean_distance`` (mean pairwise distance of the training data), ``train_di``
        (cross-validated DI of the training points), ``folds``, ``centre``, ``scale``,
        ``weights``, ``n_train``.
    """
    if not isinstance(stack, xr.DataArray) or ELEMENT_DIM not in stack.dims:
        raise DataError("the area of applicability needs an (element, y, x) stack DataArray")
    geom = grid_geometry(stack)
    names = [str(e) for e in stack[ELEMENT_DIM].values]
    if isinstance(train, np.ndarray | list | tuple):
        values = np.asarray(train, dtype="float64")
        if values.ndim != 2 or values.shape[1] != len(names):
            raise DataError(
                f"train must be an (n, {len(names)}) table of {names}; got {values.shape}"
            )
        if not np.isfinite(values).all():
            bad = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
            raise DataError(f"train holds non-finite evidence, first in row {bad}")
        xy = None
    else:
        values, xy = training_evidence(stack, train)
    n = len(values)
    if n < 3:
        raise DataError(f"the area of applicability needs at least 3 training points; got {n}")
    w = _weights(weights, names)
    centre = values.mean(axis=0)
    sd = values.std(axis=0, ddof=1)
    if (sd == 0).any():
        flat = [names[i] for i in np.flatnonzero(sd == 0)]
        raise DataError(f"elements {flat} are constant over the training points; drop them")
    scale = w / sd
    z = (values - centre) * scale
    dbar = _mean_pairwise(z, seed)
    if dbar <= 0:
        raise DataError("every training point has the same evidence; the DI is undefined")
    if folds is not None:
        fold = np.asarray(folds)
        if fold.shape != (n,):
            raise DataError(f"folds needs one fold per training point ({n}); got {fold.shape}")
    elif xy is not None:
        fold = spatial_fold_ids(xy, n_folds=n_folds, block_size=block_size, seed=seed)
    else:
        raise DataError("pass folds= (one fold id per row of train) for a table of evidence")
    train_di = np.full(n, np.nan)
    for f in np.unique(fold):
        inside = fold == f
        if inside.all():
            raise DataError("all training points lie in one fold; the CV DI needs two or more")
        d, _ = cKDTree(z[~inside]).query(z[inside], k=1)
        train_di[inside] = d / dbar

    tree = cKDTree(z)
    data = stack.transpose(ELEMENT_DIM, *geom.dims).data
    if isinstance(data, da.Array):
        data = data.rechunk({0: -1})
        # the tree is one graph key shared by every chunk, not copied per task
        shared = dask.delayed(tree, pure=True, traverse=False)
        out = da.map_blocks(
            _di_block,
            data,
            shared,
            centre,
            scale,
            dbar,
            drop_axis=0,
            dtype="float64",
            meta=np.empty((0,) * geom.ndim, "float64"),
        )
    else:
        out = _di_block(np.asarray(data), tree, centre, scale, dbar)
    tmpl = stack.isel({ELEMENT_DIM: 0}, drop=True)
    coords = {k: v for k, v in tmpl.coords.items() if ELEMENT_DIM not in v.dims}
    di = xr.DataArray(out, dims=geom.dims, coords=coords, name="DI")
    di.attrs = {
        "long_name": "dissimilarity index to the training data (Meyer & Pebesma 2021)",
        "mean_distance": dbar,
    }
    crs = get_crs(stack)
    if crs is not None:
        di = write_crs(di, crs)
    info = {
        "mean_distance": dbar,
        "train_di": train_di,
        "folds": fold,
        "centre": centre,
        "scale": scale,
        "weights": w,
        "n_train": n,
    }
    return di, info


def area_of_applicability(
    stack: xr.DataArray,
    train: Any,
    *,
    weights: Any = None,
    folds: Any = None,
    n_folds: int = 5,
    block_size: Any = None,
    seed: int = 0,
) -> xr.Dataset:
    """Dissimilarity index map and area-of-applicability mask (Meyer & Pebesma, 2021).

    Each element is standardised by the training points' mean and standard deviation and
    multiplied by its importance; the DI of a cell is its distance to the nearest training
    point divided by the mean pairwise distance of the training points. The threshold is the
    upper whisker of the training points' cross-validated DI (distance to the nearest
    training point of another fold): the largest such DI not above ``Q75 + 1.5 IQR``, as in
    CAST. Lazy: one KD-tree query per dask chunk.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(element, y, x)`` or ``(element, z, y, x)`` evidence, numpy or dask backed.
    train : points or ndarray
        The model's training locations (deposits and negatives; their evidence is read from
        the stack), or an ``(n, n_elements)`` table of training evidence (then ``folds=`` is
        required).
    weights : sequence or mapping of float, optional
        Importance of each element (e.g. a random forest's feature importances), by position
        or by element name; equal by default.
    folds : array-like of int, optional
        Cross-validation fold of each training point (use the model's own folds). Default:
        :func:`xprospect.evaluate.splits.spatial_fold_ids` of the points.
    n_folds : int
        Folds of that default.
    block_size : float or (bx, by), optional
        Block edge of that default, CRS units.
    seed : int
        Seed of the default folds (and of the subset used for the mean pairwise distance
        beyond 4000 training points).

    Returns
    -------
    xarray.Dataset
        ``DI`` (float64) and ``AOA`` (bool: True inside the area of applicability, False
        outside or where the evidence is NaN) on the stack's grid and CRS, lazy when the
        stack is dask backed; ``attrs``: ``threshold``, ``mean_distance``, ``n_train``, and
        ``train_di`` quantiles.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> v = np.stack([np.tile(np.arange(10.0), (10, 1)), np.tile(np.arange(10.0), (10, 1)).T])
    >>> stack = xr.DataArray(v, dims=("element", "y", "x"), coords={
    ...     "element": ["a", "b"], "y": np.arange(10.0)[::-1], "x": np.arange(10.0)})
    >>> train = v[:, :5, :5].reshape(2, -1).T
    >>> out = area_of_applicability(stack, train, folds=np.arange(25) % 5)
    >>> bool(out["AOA"][2, 2]), bool(out["AOA"][9, 9])
    (True, False)
    """
    di, info = dissimilarity_index(
        stack,
        train,
        weights=weights,
        folds=folds,
        n_folds=n_folds,
        block_size=block_size,
        seed=seed,
    )
    tdi = info["train_di"]
    q25, q75 = np.quantile(tdi, [0.25, 0.75])
    fence = q75 + 1.5 * (q75 - q25)
    threshold = float(tdi[tdi <= fence].max())
    aoa = (di <= threshold).rename("AOA")
    aoa.attrs = {"long_name": "inside the area of applicability", "threshold": threshold}
    out = xr.Dataset({"DI": di, "AOA": aoa})
    out.attrs = {
        "threshold": threshold,
        "mean_distance": float(info["mean_distance"]),
        "n_train": int(info["n_train"]),
        "train_di_quantiles": [float(v) for v in np.quantile(tdi, [0.0, 0.25, 0.5, 0.75, 1.0])],
        "weights": [float(v) for v in info["weights"]],
        "method": "Meyer & Pebesma (2021), CAST threshold",
    }
    crs = get_crs(stack)
    return write_crs(out, crs) if crs is not None else out
