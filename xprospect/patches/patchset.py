"""PatchSet: a plan, the stack it reads from and the labels; built from deposits and negatives."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xprospect._dims import ELEMENT_DIM, get_crs, grid_geometry, length_to_cells, write_crs
from xprospect.exceptions import DataError
from xprospect.patches.extract import (
    MAX_BATCH_BYTES,
    extract_patches,
    iter_patches,
    window_has_nan,
)
from xprospect.patches.plan import PatchPlan, plan_around_points
from xprospect.points import as_points, default_buffer, points_to_index, sample_negatives

__all__ = ["NAN_POLICIES", "PatchSet", "make_patches"]

log = logging.getLogger("xprospect.patches")

#: ``"drop"``: windows holding a NaN cell (any element) are removed; ``"fill"``: NaN cells are
#: replaced by ``fill_value`` when read; ``"keep"``: NaN is passed on (no scan is made).
NAN_POLICIES = ("drop", "fill", "keep")


def _as_stack(stack: xr.DataArray) -> xr.DataArray:
    if not isinstance(stack, xr.DataArray) or ELEMENT_DIM not in stack.dims:
        what = type(stack).__name__ if not isinstance(stack, xr.DataArray) else stack.dims
        raise DataError(
            f"patches need a stack DataArray (element, y, x) or (element, z, y, x); got {what}"
        )
    geom = grid_geometry(stack)
    if len(stack.dims) != geom.ndim + 1:
        raise DataError(f"the stack has dims {stack.dims}; expected {(ELEMENT_DIM, *geom.dims)}")
    return stack.transpose(ELEMENT_DIM, *geom.dims)


class PatchSet:
    """Labelled windows of a stack: a :class:`PatchPlan`, the stack and what the policies did.

    Nothing is read until :meth:`load`, :meth:`iter_batches` or the torch dataset asks; then
    only the chunks the windows touch are read.

    Parameters
    ----------
    plan : PatchPlan
        The windows (labels and groups included).
    stack : xarray.DataArray
        ``(element, *grid)`` on the plan's grid, numpy or dask backed.
    pad_value : float
        Value of cells outside the grid (edge policy ``"pad"``).
    fill_value : float, optional
        Value replacing NaN cells when read (NaN policy ``"fill"``); None leaves NaN.
    crop : sequence of int, optional
        Default crop of :meth:`torch_dataset`.
    report : dict, optional
        What the edge and NaN policies did; see :func:`make_patches`.
    """

    def __init__(
        self,
        plan: PatchPlan,
        stack: xr.DataArray,
        *,
        pad_value: float = 0.0,
        fill_value: float | None = None,
        crop: Sequence[int] | None = None,
        report: dict[str, Any] | None = None,
    ) -> None:
        stack = _as_stack(stack)
        geom = grid_geometry(stack)
        if geom.shape != plan.shape or geom.dims != plan.dims:
            want = dict(zip(plan.dims, plan.shape, strict=True))
            have = dict(zip(geom.dims, geom.shape, strict=True))
            raise DataError(f"the plan is for a grid {want}; the stack is {have}")
        self.plan = plan
        self.stack = stack
        self.pad_value = float(pad_value)
        self.fill_value = None if fill_value is None else float(fill_value)
        self.crop = (
            None
            if crop is None
            else tuple(int(c) for c in np.broadcast_to(np.asarray(crop), (plan.ndim,)))
        )
        self.report: dict[str, Any] = dict(report or {})

    # ---- description -----------------------------------------------------------------------
    def __len__(self) -> int:
        return self.plan.n

    def __repr__(self) -> str:
        n1 = int((self.labels == 1).sum())
        return (
            f"PatchSet(n={len(self)}, positives={n1}, negatives={int((self.labels == 0).sum())}"
            f", size={self.plan.size}, elements={list(map(str, self.elements))})"
        )

    @property
    def labels(self) -> np.ndarray:
        """``(n,)`` class of each window (1 deposit, 0 barren)."""
        return self.plan.labels

    @property
    def groups(self) -> np.ndarray:
        """``(n,)`` position of the deposit a window was cut around in the points given, or -1."""
        return self.plan.groups

    @property
    def elements(self) -> list[str]:
        """Element (channel) order of the patches."""
        return [str(e) for e in self.stack[ELEMENT_DIM].values]

    @property
    def xy(self) -> np.ndarray:
        """Window-centre coordinates ``(n, 2)`` as (x, y), or ``(n, 3)`` as (x, y, z) in 3-D."""
        c = self.plan.coords()
        order = [self.plan.dims.index(d) for d in ("x", "y", "z") if d in self.plan.dims]
        return c[:, order]

    def to_points(self) -> xr.Dataset:
        """Window centres as a ``point`` Dataset (``x``, ``y`` (``z``), ``point_id``, label)."""
        xy = self.xy
        coords: dict[str, Any] = {
            d: ("point", xy[:, i]) for i, d in enumerate(["x", "y", "z"][: xy.shape[1]])
        }
        coords["point_id"] = ("point", np.array([f"W{i}" for i in range(len(self))]))
        ds = xr.Dataset(
            {"label": ("point", self.labels), "group": ("point", self.groups)}, coords=coords
        )
        crs = get_crs(self.stack)
        return write_crs(ds, crs) if crs is not None else ds

    # ---- reading ---------------------------------------------------------------------------
    def load(
        self, idx: Sequence[int] | np.ndarray | None = None, *, max_bytes: int = MAX_BATCH_BYTES
    ) -> np.ndarray:
        """Read windows ``(n, C, *size)`` (all, or ``idx``), in plan order.

        Only the chunks the windows touch are read, a batch at a time; windows crossing the
        edge are padded with ``pad_value`` and NaN replaced by ``fill_value`` when set.
        """
        return extract_patches(
            self.stack,
            self.plan,
            idx=idx,
            pad_value=self.pad_value,
            fill_value=self.fill_value,
            max_bytes=max_bytes,
        )

    def iter_batches(
        self,
        batch_size: int = 64,
        *,
        idx: Sequence[int] | np.ndarray | None = None,
        max_bytes: int = MAX_BATCH_BYTES,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(indices, windows)`` of at most ``batch_size`` windows, in chunk order.

        Memory stays at one batch of windows plus the chunks it touches.
        """
        for ids, win in iter_patches(
            self.stack,
            self.plan,
            idx=idx,
            pad_value=self.pad_value,
            batch_size=batch_size,
            max_bytes=max_bytes,
        ):
            if self.fill_value is not None:
                np.nan_to_num(win, copy=False, nan=self.fill_value)
            yield ids, win

    def subset(self, idx: Sequence[int] | np.ndarray) -> PatchSet:
        """Return the PatchSet of windows ``idx`` (indices or boolean mask), e.g. a CV fold."""
        plan = self.plan.subset(idx)
        rep = dict(self.report)
        rep["subset_of"] = len(self)
        return PatchSet(
            plan,
            self.stack,
            pad_value=self.pad_value,
            fill_value=self.fill_value,
            crop=self.crop,
            report=rep,
        )

    @classmethod
    def from_windows(
        cls,
        windows: np.ndarray,
        labels: np.ndarray,
        *,
        like: xr.DataArray,
        groups: np.ndarray | None = None,
        report: dict[str, Any] | None = None,
    ) -> PatchSet:
        """Build a PatchSet of windows already read, e.g. cut from several stacks.

        The windows are laid side by side along the last grid axis of an in-memory stack
        with ``like``'s elements, cell size and CRS, so training (augmentation included)
        reads them as any other PatchSet. Their positions (:attr:`xy`) are those of that
        strip, not of the ground: train without a fractional (spatial) validation split.

        Parameters
        ----------
        windows : ndarray, shape (n, C, *size)
            The windows, channels in ``like``'s element order.
        labels : ndarray, shape (n,)
            Class of each window (1 deposit, 0 barren).
        like : xarray.DataArray
            A stack (``element``, y, x) or (``element``, z, y, x) giving element names,
            dims, cell size and CRS.
        groups : ndarray, shape (n,), optional
            Deposit number of each window, -1 for none (default -1).
        report : dict, optional
            Kept as :attr:`report`.

        Returns
        -------
        PatchSet
        """
        like = _as_stack(like)
        geom = grid_geometry(like)
        w = np.asarray(windows, dtype="float32")
        n = len(w)
        if w.ndim != geom.ndim + 2 or w.shape[1] != like.sizes[ELEMENT_DIM] or n == 0:
            raise DataError(
                f"windows must be (n >= 1, {like.sizes[ELEMENT_DIM]}, *size) with "
                f"{geom.ndim} spatial axes; got {w.shape}"
            )
        lab = np.asarray(labels, dtype="int64")
        if lab.shape != (n,):
            raise DataError(f"labels need one class per window ({n}); got shape {lab.shape}")
        size = tuple(int(s) for s in w.shape[2:])
        # the strip: windows side by side along the last axis
        data = np.concatenate(list(w), axis=-1)
        coords: dict[str, Any] = {ELEMENT_DIM: like[ELEMENT_DIM].values}
        for d, cells in zip(geom.dims, data.shape[1:], strict=True):
            c = np.asarray(like[d].values, dtype="float64")
            coords[d] = c[0] + (c[1] - c[0] if c.size > 1 else 1.0) * np.arange(cells)
        strip = xr.DataArray(data, dims=(ELEMENT_DIM, *geom.dims), coords=coords)
        crs = get_crs(like)
        if crs is not None:
            strip = write_crs(strip, crs)
        origins = np.zeros((n, geom.ndim), dtype="int64")
        origins[:, -1] = np.arange(n) * size[-1]
        plan = PatchPlan(
            grid_geometry(strip),
            size,
            origins,
            lab,
            np.full(n, -1) if groups is None else np.asarray(groups),
            kind="points",
            edge="shift",
        )
        rep = dict(report or {})
        rep.update(n_positive=int((lab == 1).sum()), n_negative=int((lab == 0).sum()))
        return cls(plan, strip, report=rep)

    def torch_dataset(
        self,
        *,
        augment: bool = True,
        crop: Sequence[int] | int | None = None,
        seed: int = 0,
        preload: bool = True,
    ) -> Any:
        """Return a ``torch.utils.data.Dataset`` of ``(float32 tensor (C, *crop), int label)``.

        Augmentation (random flips, 90-degree rotations in y-x, random crop position) is fixed
        by ``(seed, epoch, index)``; call ``dataset.set_epoch(e)`` each epoch. Without
        ``augment`` the crop is centred. ``crop`` defaults to the PatchSet's ``crop``.
        """
        from xprospect.patches._torchdata import PatchDataset  # imports torch (heavy)

        c = (
            self.crop
            if crop is None
            else tuple(int(v) for v in np.broadcast_to(np.asarray(crop), (self.plan.ndim,)))
        )
        return PatchDataset(self, augment=augment, crop=c, seed=seed, preload=preload)


def _points_inside(points: xr.Dataset, stack: xr.DataArray) -> np.ndarray:
    """Boolean: the point falls in a grid cell (:func:`xprospect.points.points_to_index`)."""
    return points_to_index(points, stack)[1]


def make_patches(
    stack: xr.DataArray,
    *,
    positives: Any,
    negatives: int | Any = 225,
    size: int | Sequence[int] = 256,
    jitter: int | Sequence[int] = 64,
    n_per_positive: int = 1,
    buffer: float | None = None,
    crop: int | Sequence[int] | None = None,
    edge: str = "shift",
    nan: str = "drop",
    pad_value: float = 0.0,
    fill_value: float = 0.0,
    mask: xr.DataArray | np.ndarray | None = None,
    seed: int = 0,
) -> PatchSet:
    """Cut labelled training windows: slid around deposits, and barren ones away from them.

    Positive windows: ``n_per_positive`` per deposit, each centre offset from the deposit by up
    to ``jitter`` cells per axis with the deposit kept inside the window (the Pangxidong study's
    256-cell windows slid around ore points). Negative windows: centred on cells drawn by
    :func:`xprospect.evidence.sample_negatives` farther than ``buffer`` from every deposit
    (or on the points given).

    Parameters
    ----------
    stack : xarray.DataArray
        ``(element, y, x)`` or ``(element, z, y, x)``, numpy or dask backed (nothing is read
        here except for the NaN scan and the negatives' validity mask).
    positives : points
        Known deposits (anything :func:`xprospect.evidence.as_points` takes). Points outside
        the grid are dropped and counted in the report.
    negatives : int or points
        Number of barren windows to draw, or their centre points.
    size : int, sequence of int or str
        Window edge in cells, or as a length (``"5 km"``, ``"2500 m"``) converted to cells
        from the grid's resolution (:func:`xprospect._dims.length_to_cells`).
    jitter : int, sequence of int or str
        Largest offset of a positive window's centre from its deposit (cells or a length).
    n_per_positive : int
        Windows per deposit.
    buffer : float, optional
        Exclusion distance (CRS units) of negatives from every deposit; default the window
        edge, ``max(size) * max(resolution)`` (:func:`xprospect.points.default_buffer` with
        ``window=size``), so that no negative window holds a deposit.
    crop : int or sequence of int, optional
        Default crop of :meth:`PatchSet.torch_dataset` (e.g. 224 for 256 patches).
    edge : {"shift", "drop", "pad"}
        Windows crossing the grid edge are moved inside (the deposit stays inside), dropped, or
        padded with ``pad_value``.
    nan : {"drop", "fill", "keep"}
        Windows holding NaN (any element) are dropped, NaN filled with ``fill_value`` at read,
        or kept as is. ``"drop"`` and ``"fill"`` read the windows once to count them.
    pad_value, fill_value : float
        Values for cells outside the grid and for NaN cells (0.0: the mean of z-scored data).
    mask : bool DataArray or array, optional
        Cells where negatives may be drawn (e.g. the study area).
    seed : int
        Seed of the positive offsets and the negative draw.

    Returns
    -------
    PatchSet
        Positives first (deposit-major), then negatives. ``.report`` holds counts per label:
        ``requested``, ``edge_crossing``, ``edge_dropped``, ``edge_padded``, ``edge_shifted``,
        ``nan_windows``, ``nan_dropped``, ``nan_filled``, plus ``points_outside``, ``buffer``
        and the policies; the same summary is logged at INFO on ``xprospect.patches``.
    """
    stack = _as_stack(stack)
    geom = grid_geometry(stack)
    if edge not in ("shift", "drop", "pad"):
        raise DataError(f"edge={edge!r}; expected 'shift', 'drop' or 'pad'")
    if nan not in NAN_POLICIES:
        raise DataError(f"nan={nan!r}; expected one of {NAN_POLICIES}")
    size = length_to_cells(size, stack, "size")  # "5 km" -> cells of this grid
    jitter = length_to_cells(jitter, stack, "jitter")
    sz = tuple(int(s) for s in np.broadcast_to(np.asarray(size), (geom.ndim,)))
    pos = as_points(positives, like=stack)
    pidx, inside = points_to_index(pos, stack)
    if not inside.any():
        raise DataError(f"none of the {pos.sizes['point']} positive points lies on the grid")
    pidx = pidx[inside]
    plan_p = plan_around_points(
        geom,
        pidx,
        size=sz,
        jitter=jitter,
        n_per_point=n_per_positive,
        label=1,
        groups=np.flatnonzero(inside),
        edge=edge,
        seed=seed,
    )
    if buffer is None:
        buffer = default_buffer(stack, window=sz)
    if isinstance(negatives, (int, np.integer)) and not isinstance(negatives, bool):
        neg = sample_negatives(stack, pos, int(negatives), buffer=buffer, seed=seed, mask=mask)
    else:
        neg = as_points(negatives, like=stack)
    nidx, neg_inside = points_to_index(neg, stack)
    nidx = nidx[neg_inside]
    plan_n = plan_around_points(
        geom,
        nidx,
        size=sz,
        jitter=0,
        n_per_point=1,
        label=0,
        groups=np.full(len(nidx), -1),
        edge=edge,
        seed=seed,
    )
    report: dict[str, Any] = {
        "positives": dict(plan_p.report, points_outside=int((~inside).sum())),
        "negatives": dict(plan_n.report, points_outside=int((~neg_inside).sum())),
        "size": list(sz),
        "jitter": int(np.max(jitter)),
        "n_per_positive": int(n_per_positive),
        "buffer": float(buffer),
        "edge": edge,
        "nan": nan,
        "pad_value": float(pad_value),
        "fill_value": float(fill_value) if nan == "fill" else None,
        "seed": int(seed),
    }
    plan = PatchPlan.concat([plan_p, plan_n])
    has_nan = (
        window_has_nan(stack, plan) if nan in ("drop", "fill") else np.zeros(plan.n, dtype=bool)
    )
    for lab, key in ((1, "positives"), (0, "negatives")):
        k = int((has_nan & (plan.labels == lab)).sum())
        report[key]["nan_windows"] = k if nan != "keep" else None
        report[key]["nan_dropped"] = k if nan == "drop" else 0
        report[key]["nan_filled"] = k if nan == "fill" else 0
    if nan == "drop" and has_nan.any():
        plan = plan.subset(~has_nan)
    report["n_positive"] = int((plan.labels == 1).sum())
    report["n_negative"] = int((plan.labels == 0).sum())
    log.info(
        "patches: %d positive, %d negative windows of %s cells; policies: %s",
        report["n_positive"],
        report["n_negative"],
        sz,
        json.dumps({k: report[k] for k in ("positives", "negatives")}),
    )
    crop_t = (
        None
        if crop is None
        else tuple(int(c) for c in np.broadcast_to(np.asarray(crop), (geom.ndim,)))
    )
    return PatchSet(
        plan,
        stack,
        pad_value=pad_value,
        fill_value=fill_value if nan == "fill" else None,
        crop=crop_t,
        report=report,
    )
