"""Shared plumbing of the evaluation functions: score maps, deposit cells, negatives.

Evaluation is inherently global (ranking every cell of a map), so these helpers read the
score map's values once; nothing here is lazy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from xprospect._dims import GRID_DIMS_2D, GRID_DIMS_3D, GridGeometry, grid_geometry
from xprospect.exceptions import DataError, GridError

log = logging.getLogger("xprospect.evaluate")


def as_score_map(score_map: xr.DataArray | xr.Dataset, what: str = "score_map") -> xr.DataArray:
    """Return ``score_map`` as a (y, x) or (z, y, x) DataArray, or raise naming the problem.

    A Dataset with a single data variable is accepted (that variable is used); extra
    dimensions of size 1 (e.g. a GeoTIFF ``band``) are squeezed away.
    """
    if isinstance(score_map, xr.Dataset):
        names = [n for n in score_map.data_vars if n != "mask"]
        if len(names) != 1:
            msg = (f"{what} is a Dataset with variables {list(score_map.data_vars)}; "
                   "pass the one DataArray to evaluate")
            raise DataError(msg)
        score_map = score_map[names[0]]
    if not isinstance(score_map, xr.DataArray):
        raise DataError(f"{what} must be an xarray DataArray; got {type(score_map).__name__}")
    extra = [d for d in score_map.dims if d not in GRID_DIMS_3D]
    if extra:
        if any(score_map.sizes[d] != 1 for d in extra):
            msg = (f"{what} has dims {tuple(score_map.dims)}; a score map is (y, x) or "
                   "(z, y, x) (select one element or band first)")
            raise GridError(msg)
        score_map = score_map.squeeze(extra, drop=True)
    dims = GRID_DIMS_3D if "z" in score_map.dims else GRID_DIMS_2D
    if set(score_map.dims) != set(dims):
        msg = f"{what} has dims {tuple(score_map.dims)}; expected {dims}"
        raise GridError(msg)
    return score_map.transpose(*dims)


def grid_values(score_map: xr.DataArray, what: str = "score_map") -> np.ndarray:
    """Float64 values of a score map (computes dask data), refusing an all-NaN map."""
    vals = np.asarray(score_map.values, dtype="float64")
    if not np.isfinite(vals).any():
        raise DataError(f"{what} {score_map.name!r} holds no finite value")
    return vals


def default_buffer(geom: GridGeometry) -> float:
    """One cell diagonal: the smallest buffer that keeps every deposit's own cell out."""
    return float(np.sqrt(np.sum(np.square(geom.step))))


@dataclass
class CellPoints:
    """Flat cell indices of points on a map, with what was dropped and why."""

    flat: np.ndarray
    n_points: int
    n_outside: int = 0
    n_nan: int = 0
    ids: list[str] = field(default_factory=list)

    def info(self, prefix: str) -> dict[str, int]:
        """JSON-able counts, keys prefixed (e.g. ``deposits_used``)."""
        return {f"{prefix}_given": self.n_points, f"{prefix}_used": len(self.flat),
                f"{prefix}_outside_grid": self.n_outside, f"{prefix}_on_nan": self.n_nan}


def point_cells(points: Any, score_map: xr.DataArray, valid: np.ndarray, what: str
                ) -> CellPoints:
    """Flat indices of the cells holding ``points``; drop (and count) outside or NaN ones.

    Points outside the grid or on cells where the map is NaN have no score: they are
    dropped, counted in the result and logged, never silently scored.
    """
    from xprospect.evidence.labels import POINT_DIM, as_points, points_to_index

    pts = as_points(points)
    n = int(pts.sizes[POINT_DIM])
    if n == 0:
        raise DataError(f"{what} holds no points")
    geom = grid_geometry(score_map)
    idx_all = points_to_index(pts, score_map, drop_outside=True)
    # points_to_index drops silently with drop_outside; recover which survived
    inside = _inside_mask(pts, geom)
    ids = [str(v) for v in np.asarray(pts["point_id"].values)[inside]]
    flat = np.ravel_multi_index(tuple(idx_all.T), geom.shape) if len(idx_all) else \
        np.zeros(0, "int64")
    ok = valid.ravel()[flat]
    out = CellPoints(flat=flat[ok].astype("int64"), n_points=n, n_outside=n - len(idx_all),
                     n_nan=int((~ok).sum()), ids=[i for i, k in zip(ids, ok, strict=True) if k])
    if out.n_outside or out.n_nan:
        log.info("%s: %d of %d points dropped (%d outside the grid, %d on NaN cells)",
                 what, out.n_outside + out.n_nan, n, out.n_outside, out.n_nan)
    if len(out.flat) == 0:
        msg = (f"none of the {n} {what} points falls on a finite cell of the map "
               f"({out.n_outside} outside the grid, {out.n_nan} on NaN cells)")
        raise DataError(msg)
    return out


def _inside_mask(pts: xr.Dataset, geom: GridGeometry) -> np.ndarray:
    inside = np.ones(pts.sizes["point"], dtype=bool)
    for d, o, s, n in zip(geom.dims, geom.origin, geom.step, geom.shape, strict=True):
        v = np.asarray(pts[d].values, dtype="float64")
        i = np.floor((v - o) / s + 0.5).astype("int64") if s != 0 else np.zeros(v.shape, "int64")
        inside &= (i >= 0) & (i < n)
    return inside


def negative_cells(score_map: xr.DataArray, valid: np.ndarray, deposits: Any,
                   negatives: Any, *, buffer: float | None, seed: int,
                   n_default: int | None = None) -> tuple[CellPoints, dict[str, Any]]:
    """Cells used as negatives, and a JSON-able record of how they were chosen.

    ``negatives`` is None (every valid cell farther than ``buffer`` from every deposit, or
    ``n_default`` of them drawn at random when given), an int (that many drawn with
    :func:`xprospect.evidence.sample_negatives`, outside ``buffer``, on finite cells only)
    or points (used as given, minus those outside the grid or on NaN cells).
    """
    from xprospect.evidence.labels import as_points, distance_to_points, sample_negatives

    geom = grid_geometry(score_map)
    buf = default_buffer(geom) if buffer is None else float(buffer)
    if buf < 0:
        raise DataError(f"buffer must be >= 0; got {buffer}")
    if negatives is None and n_default is not None:
        negatives = int(n_default)
    if negatives is None:
        dist = distance_to_points(as_points(deposits), score_map).values
        ok = valid & (dist > buf)
        flat = np.flatnonzero(ok.ravel())
        if len(flat) == 0:
            msg = (f"no valid cell lies farther than buffer={buf} from the deposits; "
                   "lower the buffer")
            raise DataError(msg)
        rec = {"negatives": "all cells outside buffer", "buffer": buf, "n_negatives": len(flat)}
        return CellPoints(flat=flat, n_points=len(flat)), rec
    if isinstance(negatives, (int, np.integer)) and not isinstance(negatives, bool):
        mask = xr.DataArray(valid, dims=geom.dims)
        pts = sample_negatives(score_map, as_points(deposits), int(negatives), buffer=buf,
                               seed=seed, mask=mask)
        cells = point_cells(pts, score_map, valid, "negatives")
        rec = {"negatives": "sampled", "buffer": buf, "n_negatives": len(cells.flat),
               "seed": int(seed)}
        return cells, rec
    cells = point_cells(negatives, score_map, valid, "negatives")
    rec = {"negatives": "given", "buffer": None, **cells.info("negatives"),
           "n_negatives": len(cells.flat)}
    return cells, rec


def jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, DataFrames and non-finite floats to JSON-able values."""
    import pandas as pd

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return {c: jsonable(obj[c].tolist()) for c in obj.columns}
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if np.isfinite(f) else None
    return obj
