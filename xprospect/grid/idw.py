"""Inverse-distance-weighted gridding of sample tables onto 2-D grids, 3-D voxels and points."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xprospect.exceptions import GridError
from xprospect.grid import _kernels
from xprospect.grid.base import Gridder, SearchGroup, anisotropy_matrix

__all__ = ["IDW", "anisotropy_matrix", "grid_idw"]


def _validate_params(k, power, radius, min_points) -> tuple[int, float, float, int]:
    if k is None:
        if radius is None:
            raise GridError("k=None (every sample within the radius) needs a radius")
        k_int = 0
    else:
        if isinstance(k, bool) or not float(k).is_integer() or k < 1:
            raise GridError(f"k must be an integer >= 1 (or None with a radius); got {k!r}")
        k_int = int(k)
    if isinstance(power, bool) or not np.isfinite(power) or power <= 0:
        raise GridError(f"power must be a finite number > 0; got {power!r}")
    if radius is None:
        r = math.inf
    else:
        r = float(radius)
        if not np.isfinite(r) or r <= 0:
            raise GridError(f"radius must be a finite number > 0 (or None); got {radius!r}")
    if isinstance(min_points, bool) or not float(min_points).is_integer() or min_points < 1:
        raise GridError(f"min_points must be an integer >= 1; got {min_points!r}")
    if k_int and min_points > k_int:
        raise GridError(f"min_points={min_points} can never be reached with k={k_int}")
    return k_int, float(power), r, int(min_points)


class IDW(Gridder):
    """Inverse distance weighting as a gridder: ``IDW(k=12).fit(samples).grid(like)``.

    Each cell gets ``sum(w_i v_i) / sum(w_i)`` over its ``k`` nearest samples
    (optionally only those within ``radius``), with ``w_i = 1 / d_i ** power``. A cell
    that coincides with samples takes their value (their mean if several), so the map
    is exact at sample locations. Per element, only samples that have a value for it
    are used; elements that share the same valid samples share one neighbour search.

    Parameters
    ----------
    k : int or None
        Number of nearest samples. None uses every sample within ``radius``.
    power : float
        Distance exponent (> 0).
    radius : float, optional
        Search radius in CRS units (along the major axis with ``anisotropy``). Cells
        with fewer than ``min_points`` samples within it are NaN.
    min_points : int
        Minimum neighbours for a value.
    anisotropy : dict, optional
        Search ellipsoid; see :func:`anisotropy_matrix`.
    elements : list of str, optional
        Variables to grid (default: every numeric variable along ``sample``).

    Examples
    --------
    >>> import xprospect as xp
    >>> from xprospect.grid.idw import IDW
    >>> world = xp.synthetic.survey(seed=0, n_samples=300, elements=["Au", "Cu"])
    >>> grid = xp.make_grid(like=world.samples, resolution=1000)
    >>> sorted(IDW(k=8).fit(world.samples).grid(grid).data_vars)
    ['Au', 'Cu']
    """

    name = "idw"

    def __init__(
        self,
        *,
        k: int | None = 12,
        power: float = 2.0,
        radius: float | None = None,
        min_points: int = 1,
        anisotropy: Mapping[str, Any] | None = None,
        elements: Sequence[str] | None = None,
    ) -> None:
        self.k = k
        self.power = power
        self.radius = radius
        self.min_points = min_points
        self.anisotropy = anisotropy
        self.elements = elements

    def _validate(self) -> None:
        self.params_ = _validate_params(self.k, self.power, self.radius, self.min_points)

    def _reach(self) -> float:
        return self.params_[2]

    def _outputs(self) -> list[tuple[str, dict[str, Any]]]:
        return [(n, {**self.attrs_[n], "gridding": "idw"}) for n in self.elements_]

    def _kernel(self, group: SearchGroup, nout: int) -> tuple[Callable[..., Any], int, Any, Any]:
        k = self.params_[0]
        task = _kernels.idw_task if k > 0 else _kernels.idw_radius_task
        return task, k, group.slots, self.params_

    def _ranked_kernel(self, task: Callable[..., Any]) -> Callable[..., Any]:
        return _kernels.idw_ranked_task if task is _kernels.idw_task else task

    def _attrs(self) -> dict[str, Any]:
        k, power, radius, min_points = self.params_
        attrs: dict[str, Any] = {"idw_k": int(k) if k else "all within radius", "idw_power": power}
        return {**attrs, "idw_min_points": min_points, **self._search_attrs("idw", radius)}


def grid_idw(
    samples: xr.Dataset,
    *,
    like: xr.Dataset | xr.DataArray,
    k: int | None = 12,
    power: float = 2.0,
    radius: float | None = None,
    min_points: int = 1,
    anisotropy: Mapping[str, Any] | None = None,
    elements: Sequence[str] | None = None,
    dtype: str | np.dtype = "float32",
    chunks: int | Sequence[int] | Mapping[str, int] | None = None,
    progress: bool | None = None,
) -> xr.Dataset:
    """Grid every element of a sample table onto a template by inverse distance weighting.

    Each cell gets ``sum(w_i v_i) / sum(w_i)`` over its ``k`` nearest samples
    (optionally only those within ``radius``), with ``w_i = 1 / d_i ** power``. A cell
    that coincides with samples takes their value (their mean if several), so the
    map is exact at sample locations. Per element, only samples that have a value
    for it are used: a sample missing one element still counts for the others.
    Elements that share the same valid samples share one neighbour search.

    Parameters
    ----------
    samples : xarray.Dataset
        Point table with dim ``sample``, coordinates ``x``, ``y`` (and ``z``) and a CRS.
    like : xarray.Dataset or DataArray
        The template (``make_grid`` / ``make_voxels``) or any grid on the same
        lattice; its CRS must equal the samples'. Its dask chunks, if any, are the
        output's chunks.
    k : int or None
        Number of nearest samples. None uses every sample within ``radius``.
    power : float
        Distance exponent (> 0).
    radius : float, optional
        Search radius in CRS units (along the major axis with ``anisotropy``).
        Cells with fewer than ``min_points`` samples within it are NaN.
    min_points : int
        Minimum neighbours for a value.
    anisotropy : dict, optional
        Search ellipsoid; see :func:`anisotropy_matrix`.
    elements : list of str, optional
        Variables to grid (default: every numeric variable along ``sample``).
    dtype : dtype
        Output dtype (computation is float64).
    chunks : int, tuple or dict, optional
        Override the output chunks (dask).
    progress : bool or None
        A bar of chunks gridded / total with an ETA while a chunked result is computed
        by dask's local scheduler; None: only on a terminal or in a notebook; False: never.

    Returns
    -------
    xarray.Dataset
        One variable per element on the template's dims and coordinates, with the
        template's CRS; lazy (dask) when the template is chunked.

    Examples
    --------
    >>> import xprospect as xp
    >>> world = xp.synthetic.survey(seed=0, n_samples=300, elements=["Au", "Cu"])
    >>> grid = xp.make_grid(like=world.samples, resolution=1000)
    >>> maps = xp.grid_idw(world.samples, like=grid, k=8)
    >>> sorted(maps.data_vars)
    ['Au', 'Cu']
    """
    gridder = IDW(
        k=k,
        power=power,
        radius=radius,
        min_points=min_points,
        anisotropy=anisotropy,
        elements=elements,
    )
    return gridder.fit(samples).grid(like, dtype=dtype, chunks=chunks, progress=progress)
