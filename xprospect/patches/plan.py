"""Patch plans: where the windows are, as pure index maths with no data attached.

One :class:`PatchPlan` feeds extraction (:func:`~xprospect.patches.extract_patches`), the torch
dataset and stitching (:func:`~xprospect.patches.stitch_patches`), so that stitching is exactly
the inverse of extraction.

Conventions (those of :mod:`xprospect.models.base`): a window of ``w`` cells *attributed to* cell
``i`` covers ``[i - w // 2, i - w // 2 + w - 1]``, so its origin (first cell) is ``i - w // 2`` and
its centre cell is ``origin + w // 2``. Origins are integer grid indices in the grid's dim order
((y, x) or (z, y, x)) and may lie outside the grid when the edge policy pads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from xprospect._dims import GridGeometry, grid_geometry
from xprospect.exceptions import DataError, GridError

__all__ = [
    "EDGE_POLICIES",
    "PatchPlan",
    "as_geometry",
    "plan_around_points",
    "plan_grid",
    "plan_random",
]

log = logging.getLogger("xprospect.patches")

#: ``"drop"``: windows crossing the grid edge are removed; ``"pad"``: they are kept and the cells
#: outside the grid are filled with ``pad_value`` at extraction; ``"shift"`` (point plans only):
#: each window is moved inwards just enough to lie inside the grid, which keeps its point inside.
EDGE_POLICIES = ("drop", "pad", "shift")


def as_geometry(like: GridGeometry | xr.Dataset | xr.DataArray) -> GridGeometry:
    """Return the :class:`~xprospect._dims.GridGeometry` of a grid, stack or geometry."""
    if isinstance(like, GridGeometry):
        return like
    if isinstance(like, (xr.Dataset, xr.DataArray)):
        return grid_geometry(like)
    raise GridError(f"expected a grid (Dataset/DataArray) or GridGeometry; got {type(like)}")


def _size_tuple(size: int | Sequence[int], ndim: int, what: str = "size") -> tuple[int, ...]:
    arr = np.broadcast_to(np.asarray(size), (ndim,)) if np.ndim(size) == 0 else np.asarray(size)
    if arr.shape != (ndim,):
        raise DataError(f"{what}={size!r} must be an int or {ndim} ints (one per spatial axis)")
    out = tuple(int(v) for v in arr)
    if any(v < 1 for v in out) or not np.all(np.asarray(arr) == np.asarray(out)):
        raise DataError(f"{what}={size!r} must hold positive integers")
    return out


@dataclass(frozen=True, eq=False)
class PatchPlan:
    """Data-free description of a set of windows on a grid.

    Parameters
    ----------
    geometry : GridGeometry
        The grid (dims, shape, cell-centre origin and step).
    size : tuple of int
        Window edge per spatial axis.
    origins : numpy.ndarray
        ``(n, ndim)`` int64 index of each window's first cell.
    labels : numpy.ndarray
        ``(n,)`` int64 class of each window (1 positive, 0 negative, -1 unlabelled).
    groups : numpy.ndarray
        ``(n,)`` int64 deposit (point) number each window was cut around, -1 for none.
    kind : str
        ``"points"``, ``"random"``, ``"grid"`` or ``"mixed"``.
    edge : str
        Edge policy the plan was built with (see :data:`EDGE_POLICIES`).
    stride : tuple of int or None
        Lattice stride for grid plans.
    report : dict
        What the plan's policies did (windows dropped, shifted or crossing the edge).
    """

    geometry: GridGeometry
    size: tuple[int, ...]
    origins: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    kind: str = "mixed"
    edge: str = "pad"
    stride: tuple[int, ...] | None = None
    report: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nd = self.geometry.ndim
        origins = np.asarray(self.origins, dtype="int64").reshape(-1, nd)
        n = len(origins)
        labels = np.broadcast_to(np.asarray(self.labels, dtype="int64"), (n,)).copy()
        groups = np.broadcast_to(np.asarray(self.groups, dtype="int64"), (n,)).copy()
        if len(self.size) != nd:
            raise DataError(f"size {self.size} does not match the {nd}-D grid {self.geometry.dims}")
        if self.edge not in EDGE_POLICIES:
            raise DataError(f"edge={self.edge!r}; expected one of {EDGE_POLICIES}")
        for a in (origins, labels, groups):
            a.flags.writeable = False
        object.__setattr__(self, "origins", origins)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))

    # ---- geometry --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.origins)

    @property
    def n(self) -> int:
        """Number of windows."""
        return len(self.origins)

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return self.geometry.ndim

    @property
    def dims(self) -> tuple[str, ...]:
        """Spatial dims of the grid."""
        return self.geometry.dims

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the grid."""
        return self.geometry.shape

    @property
    def centres(self) -> np.ndarray:
        """``(n, ndim)`` index of the cell each window is attributed to (``origin + size // 2``)."""
        return self.origins + np.asarray(self.size, dtype="int64") // 2

    @property
    def ends(self) -> np.ndarray:
        """``(n, ndim)`` one past each window's last cell."""
        return self.origins + np.asarray(self.size, dtype="int64")

    def inside(self) -> np.ndarray:
        """Boolean ``(n,)``: the window lies wholly inside the grid."""
        return np.all((self.origins >= 0) & (self.ends <= np.asarray(self.shape)), axis=1)

    def coords(self) -> np.ndarray:
        """Grid coordinates ``(n, ndim)`` of the window centres, in dim order."""
        g = self.geometry
        return np.asarray(g.origin) + self.centres * np.asarray(g.step)

    def slices(self, i: int) -> tuple[slice, ...]:
        """Slices of window ``i`` (may reach outside the grid)."""
        return tuple(
            slice(int(o), int(o) + s) for o, s in zip(self.origins[i], self.size, strict=True)
        )

    # ---- selection -------------------------------------------------------------------------
    def subset(self, idx: Any) -> PatchPlan:
        """Return the plan of the windows ``idx`` (integer indices or boolean mask)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (self.n,):
                raise DataError(f"boolean subset has shape {idx.shape}; the plan has {self.n}")
            idx = np.flatnonzero(idx)
        idx = idx.astype("int64").ravel()
        if idx.size and (idx.min() < -self.n or idx.max() >= self.n):
            raise DataError(f"subset indices out of range for a plan of {self.n} windows")
        return PatchPlan(
            self.geometry,
            self.size,
            self.origins[idx],
            self.labels[idx],
            self.groups[idx],
            kind=self.kind,
            edge=self.edge,
            stride=self.stride,
            report=dict(self.report),
        )

    @staticmethod
    def concat(plans: Sequence[PatchPlan]) -> PatchPlan:
        """Join plans on the same grid with the same window size."""
        if not plans:
            raise DataError("concat needs at least one plan")
        first = plans[0]
        for p in plans[1:]:
            if p.geometry != first.geometry or p.size != first.size:
                raise DataError("plans to concatenate must share the grid and window size")
        kinds = {p.kind for p in plans}
        edges = {p.edge for p in plans}
        report: dict[str, Any] = {}
        for p in plans:
            for k, v in p.report.items():
                if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                    report[k] = int(report.get(k, 0)) + int(v)
        return PatchPlan(
            first.geometry,
            first.size,
            np.concatenate([p.origins for p in plans]),
            np.concatenate([p.labels for p in plans]),
            np.concatenate([p.groups for p in plans]),
            kind=kinds.pop() if len(kinds) == 1 else "mixed",
            edge=edges.pop() if len(edges) == 1 else "pad",
            stride=first.stride if len(plans) == 1 else None,
            report=report,
        )

    def __repr__(self) -> str:
        return (
            f"PatchPlan(kind={self.kind!r}, n={self.n}, size={self.size}, "
            f"grid={dict(zip(self.dims, self.shape, strict=True))}, edge={self.edge!r})"
        )


def _apply_edge(
    origins: np.ndarray, size: tuple[int, ...], shape: tuple[int, ...], edge: str, what: str
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Apply an edge policy; returns (origins, kept mask, counts)."""
    sz, sh = np.asarray(size), np.asarray(shape)
    crossing = ~np.all((origins >= 0) & (origins + sz <= sh), axis=1)
    n_cross = int(crossing.sum())
    keep = np.ones(len(origins), dtype=bool)
    counts = {"edge_crossing": n_cross, "edge_dropped": 0, "edge_padded": 0, "edge_shifted": 0}
    if edge == "drop":
        keep = ~crossing
        counts["edge_dropped"] = n_cross
    elif edge == "pad":
        counts["edge_padded"] = n_cross
    elif edge == "shift":
        if np.any(sz > sh):
            raise GridError(f"windows of {size} cells cannot be shifted inside a grid of {shape}")
        origins = np.clip(origins, 0, sh - sz)
        counts["edge_shifted"] = n_cross
    else:
        raise DataError(f"edge={edge!r}; expected one of {EDGE_POLICIES}")
    if n_cross:
        log.info(
            "%s: %d of %d windows cross the grid edge (edge=%r)", what, n_cross, len(origins), edge
        )
    return origins, keep, counts


def plan_around_points(
    geometry: GridGeometry | xr.Dataset | xr.DataArray,
    index: np.ndarray,
    *,
    size: int | Sequence[int] = 256,
    jitter: int | Sequence[int] = 0,
    n_per_point: int = 1,
    label: int = 1,
    groups: np.ndarray | None = None,
    edge: str = "shift",
    seed: int = 0,
) -> PatchPlan:
    """Windows slid around points so that each point stays inside its window.

    For every point and each of its ``n_per_point`` windows, the window's attributed centre is
    moved from the point by a random offset drawn uniformly in ``[-jitter, jitter]`` per axis,
    clipped so that the point stays inside the window (the sliding of windows around ore points
    in the Pangxidong study). ``jitter=0`` centres every window on its point.

    Parameters
    ----------
    geometry : GridGeometry, Dataset or DataArray
        The grid.
    index : numpy.ndarray
        ``(n_points, ndim)`` integer cell indices (from :func:`xprospect.evidence.points_to_index`).
    size : int or sequence of int
        Window edge in cells (per axis).
    jitter : int or sequence of int
        Largest offset (cells) of a window centre from its point, per axis.
    n_per_point : int
        Windows per point.
    label : int
        Label of the windows (1 for deposits).
    groups : numpy.ndarray, optional
        Group id per point (default: the point's position ``0..n_points-1``).
    edge : {"shift", "drop", "pad"}
        Windows crossing the grid edge are moved inside (keeping the point inside), dropped, or
        kept and padded at extraction.
    seed : int
        Random seed for the offsets.

    Returns
    -------
    PatchPlan
        ``n_points * n_per_point`` windows (fewer when dropped), point-major order.

    Examples
    --------
    >>> from xprospect._dims import GridGeometry
    >>> g = GridGeometry(("y", "x"), (100, 100), (99.5, 0.5), (-1.0, 1.0))
    >>> p = plan_around_points(g, [[50, 50]], size=16, jitter=4, n_per_point=3, seed=0)
    >>> p.n, bool(((p.origins <= 50) & (p.origins + 16 > 50)).all())
    (3, True)
    """
    geom = as_geometry(geometry)
    nd = geom.ndim
    sz = _size_tuple(size, nd)
    jit_plus = np.asarray(jitter) + 1
    jit = np.asarray(_size_tuple(jit_plus.tolist(), nd, "jitter + 1"), dtype="int64") - 1
    idx = np.asarray(index, dtype="int64").reshape(-1, nd)
    if n_per_point < 1:
        raise DataError(f"n_per_point must be >= 1; got {n_per_point}")
    if len(idx) and (np.any(idx < 0) or np.any(idx >= np.asarray(geom.shape))):
        raise GridError(
            "point indices lie outside the grid; drop them first "
            "(index[inside] of xprospect.points.points_to_index)"
        )
    grp = np.arange(len(idx)) if groups is None else np.asarray(groups, dtype="int64")
    if grp.shape != (len(idx),):
        raise DataError(f"groups has shape {grp.shape}; expected ({len(idx)},)")
    rng = np.random.default_rng(seed)
    pts = np.repeat(idx, n_per_point, axis=0)
    half = np.asarray(sz) // 2
    offs = (
        rng.integers(-jit, jit + 1, size=(len(pts), nd))
        if len(pts)
        else np.zeros((0, nd), dtype="int64")
    )
    # the point sits at position half - off inside the window: keep it in [0, size - 1]
    offs = np.clip(offs, half - (np.asarray(sz) - 1), half)
    origins = pts + offs.astype("int64") - half
    origins, keep, counts = _apply_edge(origins, sz, geom.shape, edge, "points")
    report = {"requested": len(pts), **counts}
    return PatchPlan(
        geom,
        sz,
        origins[keep],
        np.full(int(keep.sum()), label),
        np.repeat(grp, n_per_point)[keep],
        kind="points",
        edge=edge,
        report=report,
    )


def plan_random(
    geometry: GridGeometry | xr.Dataset | xr.DataArray,
    n: int,
    *,
    size: int | Sequence[int] = 256,
    exclude: np.ndarray | None = None,
    label: int = 0,
    seed: int = 0,
) -> PatchPlan:
    """``n`` windows placed uniformly at random wholly inside the grid.

    Parameters
    ----------
    geometry : GridGeometry, Dataset or DataArray
        The grid.
    n : int
        Number of windows.
    size : int or sequence of int
        Window edge in cells.
    exclude : bool array, optional
        Grid-shaped mask of cells where a window *centre* may not fall (e.g. within a buffer of
        known deposits or outside the study area).
    label : int
        Label of the windows (0 for barren).
    seed : int
        Random seed.

    Returns
    -------
    PatchPlan
        Centres drawn without replacement among the allowed cells.
    """
    geom = as_geometry(geometry)
    sz = _size_tuple(size, geom.ndim)
    sh, szs = np.asarray(geom.shape), np.asarray(sz)
    if np.any(szs > sh):
        raise GridError(f"windows of {sz} cells do not fit in a grid of {geom.shape}")
    half = szs // 2
    allowed = np.zeros(geom.shape, dtype=bool)
    allowed[
        tuple(slice(int(h), int(h + s - z + 1)) for h, s, z in zip(half, sh, szs, strict=True))
    ] = True
    if exclude is not None:
        ex = np.asarray(exclude, dtype=bool)
        if ex.shape != geom.shape:
            raise DataError(f"exclude has shape {ex.shape}; the grid is {geom.shape}")
        allowed &= ~ex
    cand = np.flatnonzero(allowed.ravel())
    if len(cand) < n:
        raise DataError(f"only {len(cand)} allowed window centres for {n} random windows")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(cand, size=n, replace=False))
    centres = np.stack(np.unravel_index(pick, geom.shape), axis=1).astype("int64")
    return PatchPlan(
        geom,
        sz,
        centres - half,
        np.full(n, label),
        np.full(n, -1),
        kind="random",
        edge="drop",
        report={"requested": n, "edge_crossing": 0},
    )


def plan_grid(
    geometry: GridGeometry | xr.Dataset | xr.DataArray,
    *,
    size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    edge: str = "pad",
) -> PatchPlan:
    """Plan a regular lattice of windows anchored at the grid origin (chunk-independent).

    Window ``k`` along an axis starts at cell ``k * stride``.

    Parameters
    ----------
    geometry : GridGeometry, Dataset or DataArray
        The grid.
    size : int or sequence of int
        Window edge in cells.
    stride : int or sequence of int, optional
        Step between window origins (default: ``size``, i.e. tiles that touch).
    edge : {"pad", "drop"}
        ``"pad"``: add windows until every cell is covered (the last ones cross the far edge and
        are padded at extraction); ``"drop"``: only windows wholly inside the grid.

    Returns
    -------
    PatchPlan
        Labels -1, groups -1, row-major lattice order.
    """
    geom = as_geometry(geometry)
    sz = _size_tuple(size, geom.ndim)
    st = _size_tuple(size if stride is None else stride, geom.ndim, "stride")
    if edge not in ("pad", "drop"):
        raise DataError(f"grid plans take edge='pad' or 'drop'; got {edge!r}")
    axes = []
    for n_, s, w in zip(geom.shape, st, sz, strict=True):
        if edge == "drop":
            k = max(0, (n_ - w) // s + 1) if n_ >= w else 0
        else:
            k = max(1, -(-(n_ - w) // s) + 1) if n_ > w else 1
        axes.append(np.arange(k, dtype="int64") * s)
    mesh = np.meshgrid(*axes, indexing="ij")
    origins = np.stack([m.ravel() for m in mesh], axis=1)
    n = len(origins)
    crossing = int((~np.all(origins + np.asarray(sz) <= np.asarray(geom.shape), axis=1)).sum())
    report = {"edge_crossing": crossing, "edge_padded": crossing if edge == "pad" else 0}
    return PatchPlan(
        geom,
        sz,
        origins,
        np.full(n, -1),
        np.full(n, -1),
        kind="grid",
        edge=edge,
        stride=st,
        report=report,
    )
