"""The gridder protocol: ``fit(samples)`` then ``grid(like)`` or ``predict(points)``.

Gridders follow scikit-learn's and verde's rules: ``__init__`` only stores its
parameters, ``fit`` validates the samples and returns ``self`` with learned attributes
ending in ``_``, and the fitted gridder evaluates anywhere: on a 2-D grid or 3-D voxel
template (numpy or dask, through :func:`xprospect._dask.map_cells`) or at arbitrary
points. A subclass supplies the maths (its kernels) through a few hooks; the base class
owns the sample checks, the anisotropic search space, the neighbour buckets, the
chunking and the georeferencing, so every gridder treats its input alike.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from xprospect._dask import Block, is_main_thread, map_cells, study_mask
from xprospect._dims import (
    SAMPLE_DIM,
    check_same_crs,
    element_vars,
    grid_geometry,
    require_crs,
    sample_coords,
    write_crs,
)
from xprospect._json import dumps
from xprospect.exceptions import DataError, GridError
from xprospect.grid import _neighbours

__all__ = ["Gridder", "SampleGroup", "SearchGroup", "anisotropy_matrix"]


def anisotropy_matrix(anisotropy: Mapping[str, Any] | None, ndim: int) -> np.ndarray:
    """Linear map from (x, y, z) offsets to isotropic search space.

    Distances in the mapped space are in units of the major range: a point on the
    search ellipsoid's surface at ``ranges[i]`` along axis ``i`` maps to distance
    ``ranges[0]``. So ``radius`` keeps its meaning along the major axis.

    Parameters
    ----------
    anisotropy : dict or None
        ``ranges`` (major, minor) in 2-D or (major, semi-major, minor) in 3-D;
        ``azimuth`` of the major axis in degrees clockwise from north; in 3-D also
        ``dip`` of the major axis in degrees (negative points down) and ``rake``,
        the rotation of the semi-major axis about the major axis, in degrees.
    ndim : int
        2 or 3.

    Returns
    -------
    numpy.ndarray
        (3, 3) matrix acting on column vectors (x, y, z).
    """
    if anisotropy is None:
        return np.eye(3)
    if not isinstance(anisotropy, Mapping):
        msg = f"anisotropy must be a dict with 'ranges' (and angles); got {anisotropy!r}"
        raise GridError(msg)
    allowed = {"ranges", "azimuth", "dip", "rake"} if ndim == 3 else {"ranges", "azimuth"}
    unknown = set(anisotropy) - allowed
    if unknown:
        raise GridError(
            f"anisotropy has unknown keys {sorted(unknown)} for a {ndim}-D grid; "
            f"allowed: {sorted(allowed)}"
        )
    if "ranges" not in anisotropy:
        raise GridError("anisotropy needs 'ranges'")
    ranges = np.asarray(anisotropy["ranges"], dtype="float64").ravel()
    if ranges.size != ndim or not np.all(np.isfinite(ranges)) or np.any(ranges <= 0):
        raise GridError(
            f"anisotropy ranges must be {ndim} positive numbers; got {anisotropy['ranges']!r}"
        )
    az = math.radians(float(anisotropy.get("azimuth", 0.0)))
    dip = math.radians(float(anisotropy.get("dip", 0.0)))
    rake = math.radians(float(anisotropy.get("rake", 0.0)))
    u1 = np.array([math.sin(az) * math.cos(dip), math.cos(az) * math.cos(dip), math.sin(dip)])
    u2 = np.array([math.cos(az), -math.sin(az), 0.0])
    u3 = np.cross(u1, u2)
    if ndim == 3:
        cr, sr = math.cos(rake), math.sin(rake)
        u2, u3 = cr * u2 + sr * u3, -sr * u2 + cr * u3
        rows = [u1, u2, u3]
        full = ranges
    else:
        rows = [u1, u2, np.array([0.0, 0.0, 1.0])]
        full = np.array([ranges[0], ranges[1], ranges[0]])
    scale = full[0] / full
    return np.vstack([r * s for r, s in zip(rows, scale, strict=True)])


@dataclass
class SampleGroup:
    """Elements sharing one pattern of valid samples: one neighbour search serves them all.

    ``xyz`` (n, 3) world coordinates (z = 0 without a z coordinate), ``values`` (n, ne)
    float64 and ``slots`` the index of each value column among the fitted elements.
    ``extra`` holds what a gridder learns per group (e.g. variogram parameters).
    """

    xyz: np.ndarray
    values: np.ndarray
    slots: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchGroup:
    """A :class:`SampleGroup` in search space, bucket-sorted for the neighbour kernels.

    ``points`` (n, 3) in (z, y, x) columns, translated, rotated and scaled for
    anisotropy; ``values`` in the same order; ``start``, ``blo``, ``bsize``,
    ``bshape`` the bucket grid (see :func:`xprospect.grid._neighbours.bucket_points`);
    ``span`` the extent of the points' bounding box.
    """

    points: np.ndarray
    values: np.ndarray
    start: np.ndarray
    blo: np.ndarray
    bsize: float
    bshape: np.ndarray
    slots: np.ndarray
    extra: dict[str, Any]
    span: np.ndarray

    @property
    def bk(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
        """The bucket-sorted samples as the kernels take them."""
        return (self.points, self.start, self.blo, self.bsize, self.bshape)


def select_elements(samples: xr.Dataset, elements: Sequence[str] | str | None) -> list[str]:
    """Resolve the element variables to grid (every numeric one along ``sample`` by default)."""
    if elements is None:
        names = element_vars(samples, (SAMPLE_DIM,))
        if not names:
            raise DataError("samples hold no numeric variables along 'sample' to grid")
        return names
    if isinstance(elements, str):
        elements = [elements]
    names = list(elements)
    for n in names:
        if n not in samples.data_vars:
            raise DataError(
                f"element {n!r} is not in the samples; they hold "
                f"{sorted(map(str, samples.data_vars))}"
            )
        var = samples[n]
        if var.dims != (SAMPLE_DIM,):
            raise DataError(f"element {n!r} has dims {var.dims}, expected ('sample',)")
        if not np.issubdtype(var.dtype, np.number) or np.issubdtype(var.dtype, np.complexfloating):
            raise DataError(f"element {n!r} is not numeric (dtype {var.dtype})")
    return names


def _xyz(coords: Mapping[str, np.ndarray], what: str) -> np.ndarray:
    n = coords["x"].size
    # filled column by column: one copy of a million coordinates, not three
    xyz = np.zeros((n, 3))
    for a, c in enumerate(("x", "y", "z")):
        if c in coords:
            xyz[:, a] = coords[c]
    if np.isfinite(xyz.sum()):  # one reduction in the usual case, no (n, 3) mask
        return xyz
    bad = ~np.all(np.isfinite(xyz), axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = (
            f"{int(bad.sum())} {what} have missing or non-finite coordinates, e.g. {what[:-1]} "
            f"{i} at (x={xyz[i, 0]!r}, y={xyz[i, 1]!r}, z={xyz[i, 2]!r})"
        )
        raise DataError(msg)
    return xyz


def _lattice_axes(geom_dims: Sequence[str], step: Sequence[float], amat: np.ndarray) -> np.ndarray:
    """Step vectors of the lattice axes (z, y, x) in search space, (z, y, x) columns."""
    steps = dict(zip(geom_dims, step, strict=True))
    unit = {"x": np.array([1.0, 0, 0]), "y": np.array([0, 1.0, 0]), "z": np.array([0, 0, 1.0])}
    axes = np.zeros((3, 3))
    for a, d in enumerate(("z", "y", "x")):
        if d in steps:
            axes[a] = amat @ (unit[d] * steps[d])
    return np.ascontiguousarray(axes[:, [2, 1, 0]])


class Gridder(ABC):
    """Base class of the gridders: ``fit(samples)``, then ``grid(like)`` / ``predict(points)``.

    Subclasses store their parameters in ``__init__`` (with ``elements`` and
    ``anisotropy``) and implement the hooks ``_validate``, ``_outputs`` and ``_kernel``
    (and optionally ``_fit_groups``, ``_reach``, ``_attrs`` and ``_search_ndim``). The
    kernel is a numba task over tiles of query nodes (see
    :mod:`xprospect.grid._neighbours`); the base class plans the tiles, runs them on one
    thread or many and assembles the result. Learned attributes end in ``_``:

    - ``crs_``: the samples' CRS;
    - ``elements_``: the element names fitted;
    - ``has_z_``: whether the samples carry a z coordinate;
    - ``groups_``: the :class:`SampleGroup` list;
    - ``attrs_``: the samples' variable attrs per element.
    """

    name = "gridder"
    elements: Sequence[str] | str | None = None
    anisotropy: Mapping[str, Any] | None = None

    # -- hooks ---------------------------------------------------------------------------

    @abstractmethod
    def _validate(self) -> None:
        """Check the parameters stored by ``__init__`` (raise an XProspectError)."""

    def _fit_groups(self, groups: list[SampleGroup]) -> list[SampleGroup]:
        """Learn per group (e.g. a variogram); return the groups to keep."""
        return groups

    def _search_ndim(self, ndim: int) -> int:
        """Return the dims whose anisotropy applies when evaluating on ``ndim`` dims."""
        return ndim

    @abstractmethod
    def _outputs(self) -> list[tuple[str, dict[str, Any]]]:
        """Output variables (name, attrs) in output-slot order."""

    @abstractmethod
    def _kernel(self, group: SearchGroup, nout: int) -> tuple[Callable[..., Any], int, Any, Any]:
        """Return the task kernel for one group: ``(task, k, rows, params)``.

        ``task(t0, t1, bk, values, rows, lattice, params, outs)`` evaluates tiles
        ``t0 <= t < t1`` into ``outs``, a float32 and a float64 array of which one is
        empty (see :func:`xprospect.grid._neighbours.put_tile`); ``k`` is its neighbour
        count (<= 0: every sample within a radius), used to size the tiles; ``rows`` the
        output slot of each column of its tile buffer among the ``nout`` outputs;
        ``params`` its own parameters.
        """

    def _ranked_kernel(self, task: Callable[..., Any]) -> Callable[..., Any]:
        """Return ``task``'s twin searching with ``knn_tile_ranked`` (the same map).

        Used where :func:`xprospect.grid._neighbours.plan_tiles` says ranking pays; a
        gridder without such a twin keeps ``task``.
        """
        return task

    def _reach(self) -> float:
        """How far (search-space units) a value reaches from the samples (inf: anywhere)."""
        return math.inf

    def _attrs(self) -> dict[str, Any]:
        """Dataset attrs describing the gridding (JSON-safe values)."""
        return {}

    def _search_attrs(self, prefix: str, radius: float) -> dict[str, Any]:
        """Attrs of the search: ``<prefix>_radius`` (when finite) and ``_anisotropy``."""
        attrs: dict[str, Any] = {}
        if np.isfinite(radius):
            attrs[f"{prefix}_radius"] = radius
        if self.anisotropy is not None:
            # JSON text, not a dict: NetCDF, zarr and GeoTIFF all accept a string attribute
            attrs[f"{prefix}_anisotropy"] = dumps(dict(self.anisotropy))
        return attrs

    # -- protocol ------------------------------------------------------------------------

    def fit(self, samples: xr.Dataset) -> Gridder:
        """Validate the samples and learn what the gridder needs from them.

        Parameters
        ----------
        samples : xarray.Dataset
            Point table with dim ``sample``, coordinates ``x``, ``y`` (and ``z``) and a CRS.

        Returns
        -------
        Gridder
            ``self``, fitted.
        """
        if not isinstance(samples, xr.Dataset):
            raise DataError(
                f"samples must be an xarray.Dataset with dim 'sample'; got {type(samples)}"
            )
        if SAMPLE_DIM not in samples.dims:
            raise DataError(
                f"samples must have a 'sample' dimension; got dims {tuple(samples.dims)}"
            )
        self._validate()
        crs = require_crs(samples, "the samples")
        names = select_elements(samples, self.elements)
        coords = sample_coords(samples)
        xyz = _xyz(coords, "samples")
        values = []
        patterns: dict[bytes, list[int]] = {}
        for i, n in enumerate(names):
            v = np.asarray(samples[n].values, dtype="float64")
            ok = np.isfinite(v)
            if not ok.any():
                raise DataError(f"element {n!r} has no valid values: every sample is missing")
            values.append(v)
            patterns.setdefault(np.packbits(ok).tobytes() + bytes([ok.size % 8]), []).append(i)
        groups = []
        for slots in patterns.values():
            ok = np.isfinite(values[slots[0]])
            vals = np.empty((ok.size, len(slots)))
            for j, i in enumerate(slots):
                vals[:, j] = values[i]
            if not ok.all():  # no copies where every sample counts (the usual case)
                vals = vals[ok]
            groups.append(
                SampleGroup(xyz if ok.all() else xyz[ok], vals, np.asarray(slots, dtype=np.int64))
            )
        self.crs_ = crs
        self.elements_ = names
        self.has_z_ = "z" in coords
        self.attrs_ = {n: dict(samples[n].attrs) for n in names}
        self.source_attrs_ = {k: v for k, v in samples.attrs.items() if k in ("title", "source")}
        self.groups_ = self._fit_groups(groups)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "groups_"):
            raise GridError(f"this {type(self).__name__} is not fitted yet: call fit(samples)")

    def _search_groups(
        self, ref: np.ndarray, amat: np.ndarray, ndim: int, nquery: int, parallel: bool
    ) -> list[SearchGroup]:
        out = []
        for g in self.groups_:
            p = _neighbours.search_points(g.xyz, np.asarray(ref, dtype="float64"), amat, ndim == 2)
            # about two samples per bucket, but no more than four buckets per query node:
            # sorting a million samples into fine buckets costs more than a coarse lattice's
            # whole search (the bucket grid depends on the whole template, not on its chunks)
            per_bucket = max(2.0, p.shape[0] / (4.0 * max(nquery, 1)))
            ps, vs, start, blo, bsize, bshape, span = _neighbours.bucket_points(
                p, g.values, per_bucket, parallel
            )
            out.append(SearchGroup(ps, vs, start, blo, bsize, bshape, g.slots, g.extra, span))
        return out

    def _check_overlap(self, bounds: Mapping[str, tuple[float, float]], amat: np.ndarray) -> None:
        reach = self._reach()
        # a reach along the major axis is at most reach * max stretch in world units
        world = 0.0 if not np.isfinite(reach) else reach / float(np.linalg.svd(amat)[1].min())
        ends = [_neighbours.bounds(g.xyz) for g in self.groups_]
        smin = np.min([e[0] for e in ends], axis=0)
        smax = np.max([e[1] for e in ends], axis=0)
        for a, d in enumerate(("x", "y", "z")):
            if d not in bounds:
                continue
            lo, hi = float(smin[a]), float(smax[a])
            if hi + world < bounds[d][0] or lo - world > bounds[d][1]:
                msg = (
                    f"the template does not overlap the samples: along {d} the grid spans "
                    f"[{bounds[d][0]:.6g}, {bounds[d][1]:.6g}] but the samples span "
                    f"[{lo:.6g}, {hi:.6g}]; check that both are in the same CRS"
                )
                raise GridError(msg)

    def _lattice_block(
        self,
        block: Block,
        *,
        groups: list[SearchGroup],
        origin: np.ndarray,
        axes: np.ndarray,
        out_dtype: np.dtype,
    ) -> np.ndarray:
        """One block of cells: the lattice origin moves to the block's first node."""
        starts, shape = list(block.start), list(block.shape)
        if block.ndim == 2:
            starts, shape = [0, *starts], [1, *shape]
        o = origin + np.asarray(starts, dtype="float64") @ axes
        qshape = (shape[0], shape[1], shape[2])
        out = self._evaluate(groups, o, axes, None, qshape, block.ndim, out_dtype, block.parallel)
        return out if block.ndim == 3 else out[:, 0]

    def _evaluate(
        self,
        groups: list[SearchGroup],
        origin: np.ndarray,
        axes: np.ndarray,
        queries: np.ndarray | None,
        qshape: tuple[int, int, int],
        ndim: int,
        dtype: Any,
        parallel: bool,
    ) -> np.ndarray:
        """Run the kernels on a (z, y, x) lattice, or at (m, 3) search-space ``queries``.

        Returns an array (nout, *qshape), NaN where undefined (``qshape`` is (1, 1, m)
        for queries, each a one-node tile). ``ndim`` is the template's (a 2-D grid is a
        lattice with one z level); ``parallel``: whether tiles may run on several threads.
        """
        nout = len(self._outputs())
        kernels = [self._kernel(g, nout) for g in groups]
        covered = np.zeros(nout, dtype=bool)
        for _, _, rows, _ in kernels:
            covered[np.asarray(rows, dtype=np.int64)] = True
        # a task writes every node of every tile for its rows (NaN where undefined), so
        # when the groups cover every output the array is left unfilled: no fill pass,
        # and the kernel's threads take the page faults of its first touch side by side
        # (a 16 x 3072^2 float32 fill cost a fifth of the whole gridding)
        # the kernels write float32 or float64 (another dtype is cast from float64), as
        # a pair of which one is empty: one compiled kernel serves both dtypes
        dtype = np.dtype(dtype)
        kdtype = dtype if dtype in (np.float32, np.float64) else np.dtype("float64")
        if covered.all():
            out = np.empty((nout, *qshape), dtype=kdtype)
        else:
            out = np.full((nout, *qshape), np.nan, dtype=kdtype)
        empty = np.empty((0, 0, 0, 0), dtype="float64" if kdtype == np.float32 else "float32")
        outs = (out, empty) if kdtype == np.float32 else (empty, out)
        for g, (task, k, rows, params) in zip(groups, kernels, strict=True):
            if queries is None:
                tile, ntiles, ntasks, ranked = _neighbours.plan_tiles(
                    g.points, k, axes, qshape, ndim, parallel, g.span
                )
                if ranked:
                    task = self._ranked_kernel(task)
                lattice = (origin, axes, np.empty((0, 3)), np.asarray(qshape, dtype=np.int64), tile)
            else:
                ntiles = queries.shape[0]
                ntasks = _neighbours.task_count(ntiles, parallel)
                one = np.ones(3, dtype=np.int64)
                lattice = (origin, axes, queries, np.asarray(qshape, dtype=np.int64), one)
            rows = np.asarray(rows, dtype=np.int64)
            _neighbours.run_tasks(task, ntiles, ntasks, g.bk, g.values, rows, lattice, params, outs)
        return out if out.dtype == dtype else out.astype(dtype)

    def grid(
        self,
        like: xr.Dataset | xr.DataArray,
        *,
        dtype: Any = "float32",
        chunks: int | Sequence[int] | Mapping[str, int] | None = None,
        progress: bool | None = None,
    ) -> xr.Dataset:
        """Evaluate the fitted gridder at the cell centres of a template.

        Parameters
        ----------
        like : xarray.Dataset or DataArray
            A 2-D grid (``make_grid``) or 3-D voxel template (``make_voxels``) in the
            samples' CRS. Its dask chunks, if any, are the output's; its boolean
            ``mask`` variable, if any, leaves NaN outside the study area.
        dtype : dtype
            Output dtype (the computation is float64).
        chunks : int, tuple or dict, optional
            Override the output chunks (gives a dask result).
        progress : bool or None
            A bar of chunks gridded / total with an ETA while the result is computed (see
            :func:`xprospect._dask.map_cells`); None: only on a terminal or in a notebook.

        Returns
        -------
        xarray.Dataset
            The output variables on the template's dims and coordinates, with its CRS.
        """
        self._check_fitted()
        geom = grid_geometry(like)
        g_crs = require_crs(like, "the template (like=)")
        check_same_crs(self.crs_, g_crs, "the samples", "the template (like=)")
        amat = anisotropy_matrix(self.anisotropy, self._search_ndim(geom.ndim))
        if geom.ndim == 3 and not self.has_z_:
            raise GridError("a voxel grid (z, y, x) needs samples with a 'z' coordinate")
        self._check_overlap(geom.bounds(), amat)
        o = dict(zip(geom.dims, geom.origin, strict=True))
        ref = np.array([o["x"], o["y"], o.get("z", 0.0)])
        groups = self._search_groups(
            ref, amat, geom.ndim, int(np.prod(geom.shape)), is_main_thread()
        )
        axes = _lattice_axes(geom.dims, geom.step, amat)
        outputs = self._outputs()
        dtype = np.dtype(dtype)
        data, dims = map_cells(
            like,
            self._lattice_block,
            dtype=dtype,
            nout=len(outputs),
            chunks=chunks,
            mask=study_mask(like),
            progress=progress,
            desc=f"grid {type(self).__name__}",
            groups=groups,
            origin=np.zeros(3),
            axes=axes,
            out_dtype=dtype,
        )
        out = xr.Dataset(coords={d: like[d] for d in dims})
        for i, (n, attrs) in enumerate(outputs):
            out[n] = (dims, data[i], attrs)
        out.attrs.update(self.source_attrs_)
        out.attrs.update(self._attrs())
        return write_crs(out, like.rio.crs)

    def predict(self, points: xr.Dataset) -> xr.Dataset:
        """Evaluate the fitted gridder at arbitrary points.

        Parameters
        ----------
        points : xarray.Dataset
            Coordinates ``x``, ``y`` (and ``z`` when the samples have one) along one
            dimension, in the samples' CRS (checked when ``points`` carries a CRS).

        Returns
        -------
        xarray.Dataset
            The output variables along the points' dimension, with their coordinates.
        """
        self._check_fitted()
        if (
            not isinstance(points, xr.Dataset)
            or "x" not in points.coords
            or "y" not in points.coords
            or points["x"].ndim != 1
        ):
            raise DataError("points must be an xarray.Dataset with 1-D coordinates 'x' and 'y'")
        dim = points["x"].dims[0]
        p_crs = points.rio.crs
        if p_crs is not None:
            check_same_crs(self.crs_, p_crs, "the samples", "the points")
        coords = {
            c: np.asarray(points[c].values, dtype="float64")
            for c in ("x", "y", "z")
            if c in points.coords
        }
        ndim = 3 if (self.has_z_ and "z" in coords) else 2
        if ndim == 2:
            coords.pop("z", None)
        xyz = _xyz(coords, "points")
        amat = anisotropy_matrix(self.anisotropy, self._search_ndim(ndim))
        ref = np.vstack([g.xyz for g in self.groups_]).min(axis=0)
        if ndim == 2:
            ref[2] = 0.0
        groups = self._search_groups(ref, amat, ndim, xyz.shape[0], is_main_thread())
        queries = _neighbours.search_points(xyz, ref, amat, ndim == 2)
        m = queries.shape[0]
        data = self._evaluate(
            groups,
            np.zeros(3),
            np.zeros((3, 3)),
            queries,
            (1, 1, m),
            ndim,
            "float64",
            is_main_thread(),
        )[:, 0, 0]
        out = xr.Dataset(coords={c: points[c] for c in points.coords if points[c].dims == (dim,)})
        for i, (n, attrs) in enumerate(self._outputs()):
            out[n] = ((dim,), data[i], attrs)
        out.attrs.update(self._attrs())
        return write_crs(out, self.crs_)
