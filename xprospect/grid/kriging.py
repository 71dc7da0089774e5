"""Ordinary kriging in a local neighbourhood onto 2-D grids, 3-D voxels and points."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xprospect.exceptions import DataError, GridError
from xprospect.grid import _kriging_kernels
from xprospect.grid.base import Gridder, SampleGroup, SearchGroup, anisotropy_matrix
from xprospect.grid.variogram import MODELS, check_model, experimental_variogram, fit_variogram

__all__ = ["COLOCATED_POLICY", "OrdinaryKriging", "grid_kriging"]

#: What happens to samples at the same location: their values are averaged into one.
COLOCATED_POLICY = "mean"
_PARAM_KEYS = {"psill", "range", "nugget"}


def _check_parameters(p: Any, what: str) -> dict[str, float]:
    if not isinstance(p, Mapping) or set(p) != _PARAM_KEYS:
        raise DataError(
            f"variogram parameters for {what} must be a dict with keys "
            f"{sorted(_PARAM_KEYS)}; got {p!r}"
        )
    out = {key: float(p[key]) for key in _PARAM_KEYS}
    if (
        not all(np.isfinite(v) for v in out.values())
        or out["psill"] < 0
        or out["nugget"] < 0
        or out["range"] <= 0
        or out["psill"] + out["nugget"] <= 0
    ):
        raise DataError(
            f"variogram parameters for {what} need psill >= 0, nugget >= 0, a sill "
            f"psill + nugget > 0 and range > 0; got {p!r}"
        )
    return out


def _merge_colocated(xyz: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Average the values of samples at exactly the same place (one row per place)."""
    uniq, inverse = np.unique(xyz, axis=0, return_inverse=True)
    if uniq.shape[0] == xyz.shape[0]:
        return xyz, values, 0
    inverse = inverse.ravel()
    counts = np.bincount(inverse, minlength=uniq.shape[0]).astype("float64")
    merged = (
        np.column_stack(
            [
                np.bincount(inverse, weights=values[:, j], minlength=uniq.shape[0])
                for j in range(values.shape[1])
            ]
        )
        / counts[:, None]
    )
    return uniq, merged, int(xyz.shape[0] - uniq.shape[0])


class OrdinaryKriging(Gridder):
    """Ordinary kriging as a gridder: ``OrdinaryKriging(k=16).fit(samples).grid(like)``.

    Per element, an experimental variogram is computed from the samples and a
    spherical, exponential or Gaussian model with nugget is fitted to it (or the model
    parameters are given). Each cell is then kriged from its ``k`` nearest samples
    (optionally only those within ``radius``, in an anisotropic search ellipsoid):
    the estimate and the kriging variance (a second variable, ``<element>_variance``).
    Cells with fewer than ``min_points`` samples in reach are NaN. The map is exact at
    the samples, with variance 0 there (the nugget is a jump at the origin, as in
    PyKrige). Samples at exactly the same place are merged into one with the mean of
    their values (``COLOCATED_POLICY``; the count is reported), so no system is
    singular for that reason; see :mod:`xprospect.grid._kriging_kernels` for how
    numerically singular systems are handled.

    Parameters
    ----------
    variogram_model : {"spherical", "exponential", "gaussian"}
        The model (PyKrige's parametrisation; see :mod:`xprospect.grid.variogram`).
    variogram_parameters : dict, optional
        ``{"psill": ..., "range": ..., "nugget": ...}`` for every element, or a dict of
        such dicts by element name; None fits them. Ranges are in CRS units along the
        major axis under ``anisotropy``.
    k : int
        Number of nearest samples per cell.
    radius : float, optional
        Search radius in CRS units (along the major axis with ``anisotropy``).
    min_points : int
        Minimum neighbours for a value.
    anisotropy : dict, optional
        Search ellipsoid and variogram anisotropy; see :func:`anisotropy_matrix`.
    elements : list of str, optional
        Variables to grid (default: every numeric variable along ``sample``).
    n_lags : int
        Lag bins of the experimental variogram.
    max_lag : float, optional
        Largest lag (default: half the diagonal of the samples' bounding box).
    max_variogram_samples : int
        Above this many samples, the experimental variogram uses a random subset.
    seed : int
        Seed of that subset.

    Attributes
    ----------
    variograms_ : dict
        Per element, the model used (JSON-safe: model, psill, range, nugget, sill and,
        when fitted, rmse and the experimental lags, semivariance and pair counts).
    colocated_merged_ : dict
        Per element, how many samples were merged into co-located ones.

    Examples
    --------
    >>> import xprospect as xp
    >>> from xprospect.grid.kriging import OrdinaryKriging
    >>> world = xp.synthetic.survey(seed=0, n_samples=300, elements=["Au"])
    >>> grid = xp.make_grid(like=world.samples, resolution=2000)
    >>> ok = OrdinaryKriging(variogram_model="exponential", k=12).fit(world.samples)
    >>> sorted(ok.grid(grid).data_vars)
    ['Au', 'Au_variance']
    >>> ok.variograms_["Au"]["model"]
    'exponential'
    """

    name = "ordinary kriging"

    def __init__(
        self,
        *,
        variogram_model: str = "spherical",
        variogram_parameters: Mapping[str, Any] | None = None,
        k: int = 16,
        radius: float | None = None,
        min_points: int = 1,
        anisotropy: Mapping[str, Any] | None = None,
        elements: Sequence[str] | None = None,
        n_lags: int = 12,
        max_lag: float | None = None,
        max_variogram_samples: int = 2000,
        seed: int = 0,
    ) -> None:
        self.variogram_model = variogram_model
        self.variogram_parameters = variogram_parameters
        self.k = k
        self.radius = radius
        self.min_points = min_points
        self.anisotropy = anisotropy
        self.elements = elements
        self.n_lags = n_lags
        self.max_lag = max_lag
        self.max_variogram_samples = max_variogram_samples
        self.seed = seed

    # -- hooks ---------------------------------------------------------------------------

    def _validate(self) -> None:
        check_model(self.variogram_model)
        k = self.k
        if (
            isinstance(k, bool)
            or not isinstance(k, (int, np.integer, float))
            or not float(k).is_integer()
            or k < 1
        ):
            raise GridError(f"k must be an integer >= 1; got {k!r}")
        if self.radius is None:
            r = math.inf
        else:
            r = float(self.radius)
            if not np.isfinite(r) or r <= 0:
                raise GridError(
                    f"radius must be a finite number > 0 (or None); got {self.radius!r}"
                )
        mp = self.min_points
        if isinstance(mp, bool) or not float(mp).is_integer() or not 1 <= mp <= k:
            raise GridError(f"min_points must be an integer in [1, k={k}]; got {mp!r}")
        if isinstance(self.n_lags, bool) or not float(self.n_lags).is_integer() or self.n_lags < 3:
            raise GridError(f"n_lags must be an integer >= 3; got {self.n_lags!r}")
        if self.max_lag is not None and not (np.isfinite(self.max_lag) and self.max_lag > 0):
            raise GridError(f"max_lag must be a finite number > 0 (or None); got {self.max_lag!r}")
        self.params_ = (int(k), r, int(mp))

    def _parameters_for(self, name: str) -> dict[str, float] | None:
        p = self.variogram_parameters
        if p is None:
            return None
        if isinstance(p, Mapping) and set(p) == _PARAM_KEYS:
            return _check_parameters(p, "every element")
        if isinstance(p, Mapping) and name in p:
            return _check_parameters(p[name], f"element {name!r}")
        raise DataError(
            f"variogram_parameters gives no parameters for element {name!r}: pass "
            f"one dict with keys {sorted(_PARAM_KEYS)} or one per element"
        )

    def _fit_groups(self, groups: list[SampleGroup]) -> list[SampleGroup]:
        self.ndim_ = 3 if self.has_z_ else 2
        amat = anisotropy_matrix(self.anisotropy, self.ndim_)
        code = MODELS.index(self.variogram_model)
        self.variograms_: dict[str, dict[str, Any]] = {}
        self.colocated_merged_: dict[str, int] = {}
        out = []
        for g in groups:
            xyz, values, merged = _merge_colocated(g.xyz, g.values)
            pts = (xyz - xyz.min(axis=0)) @ amat.T
            vpar = np.empty((len(g.slots), 3))
            for j, slot in enumerate(g.slots):
                name = self.elements_[slot]
                given = self._parameters_for(name)
                if given is None:
                    exp = experimental_variogram(
                        pts,
                        values[:, j],
                        n_lags=int(self.n_lags),
                        max_lag=self.max_lag,
                        max_samples=self.max_variogram_samples,
                        seed=self.seed,
                    )
                    fit = fit_variogram(exp, self.variogram_model, what=f"element {name!r}")
                    fit["source"] = "fitted"
                else:
                    fit = {
                        "model": self.variogram_model,
                        **given,
                        "sill": given["psill"] + given["nugget"],
                        "source": "given",
                    }
                self.variograms_[name] = fit
                self.colocated_merged_[name] = merged
                vpar[j] = (fit["psill"], fit["range"], fit["nugget"])
            extra = {"vmodel": np.full(len(g.slots), code, dtype=np.int64), "vpar": vpar}
            out.append(SampleGroup(xyz, values, g.slots, extra))
        return out

    def _search_ndim(self, ndim: int) -> int:
        if ndim != self.ndim_:
            raise GridError(
                f"this kriging was fitted on {self.ndim_}-D samples; it cannot "
                f"evaluate on a {ndim}-D grid or points"
            )
        return ndim

    def _reach(self) -> float:
        return self.params_[1]

    def _outputs(self) -> list[tuple[str, dict[str, Any]]]:
        vals, variances = [], []
        for n in self.elements_:
            fit = self.variograms_[n]
            vattrs = {f"variogram_{key}": v for key, v in fit.items()}
            vattrs["colocated_merged"] = self.colocated_merged_[n]
            vals.append((n, {**self.attrs_[n], "gridding": "ordinary kriging", **vattrs}))
            units = self.attrs_[n].get("units")
            var_attrs: dict[str, Any] = {
                "gridding": "ordinary kriging",
                "long_name": f"kriging variance of {n}",
                **vattrs,
            }
            if units is not None:
                var_attrs["units"] = f"({units})^2"
            variances.append((f"{n}_variance", var_attrs))
        return vals + variances

    def _kernel(self, group: SearchGroup, nout: int) -> tuple[Callable[..., Any], int, Any, Any]:
        k, radius, min_points = self.params_
        rows = np.concatenate([group.slots, group.slots + nout // 2])
        params = (k, radius, min_points, group.extra["vmodel"], group.extra["vpar"])
        return _kriging_kernels.ok_task, k, rows, params

    def _attrs(self) -> dict[str, Any]:
        k, radius, min_points = self.params_
        attrs: dict[str, Any] = {
            "kriging": "ordinary",
            "kriging_k": k,
            "kriging_min_points": min_points,
            "kriging_variogram_model": self.variogram_model,
            "kriging_colocated": COLOCATED_POLICY,
        }
        return {**attrs, **self._search_attrs("kriging", radius)}


def grid_kriging(
    samples: xr.Dataset,
    *,
    like: xr.Dataset | xr.DataArray,
    variogram_model: str = "spherical",
    variogram_parameters: Mapping[str, Any] | None = None,
    k: int = 16,
    radius: float | None = None,
    min_points: int = 1,
    anisotropy: Mapping[str, Any] | None = None,
    elements: Sequence[str] | None = None,
    n_lags: int = 12,
    max_lag: float | None = None,
    dtype: str | np.dtype = "float32",
    chunks: int | Sequence[int] | Mapping[str, int] | None = None,
    progress: bool | None = None,
) -> xr.Dataset:
    """Grid every element of a sample table onto a template by ordinary kriging.

    A one-line front door to :class:`OrdinaryKriging` (which also offers ``predict``
    at arbitrary points); see it for the method, co-located samples and singular
    systems.

    Parameters
    ----------
    samples : xarray.Dataset
        Point table with dim ``sample``, coordinates ``x``, ``y`` (and ``z``) and a CRS.
    like : xarray.Dataset or DataArray
        The template (``make_grid`` / ``make_voxels``) in the samples' CRS; its dask
        chunks, if any, are the output's, and its ``mask``, if any, leaves NaN outside.
    variogram_model : {"spherical", "exponential", "gaussian"}
        The variogram model.
    variogram_parameters : dict, optional
        ``{"psill", "range", "nugget"}`` for all elements or per element; None fits them.
    k : int
        Number of nearest samples per cell.
    radius : float, optional
        Search radius (CRS units, along the major axis with ``anisotropy``); cells
        with fewer than ``min_points`` samples within it are NaN.
    min_points : int
        Minimum neighbours for a value.
    anisotropy : dict, optional
        Search ellipsoid and variogram anisotropy (see :func:`anisotropy_matrix`).
    elements : list of str, optional
        Variables to grid (default: every numeric variable along ``sample``).
    n_lags : int
        Lag bins of the experimental variograms.
    max_lag : float, optional
        Largest lag of the experimental variograms.
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
        Per element, the estimate ``<element>`` and the kriging variance
        ``<element>_variance``, with the variogram in their attrs; the template's dims,
        coordinates and CRS; lazy when the template is chunked.

    Examples
    --------
    >>> import xprospect as xp
    >>> world = xp.synthetic.survey(seed=0, n_samples=300, elements=["Au", "Cu"])
    >>> grid = xp.make_grid(like=world.samples, resolution=2000)
    >>> maps = xp.grid_kriging(world.samples, like=grid, k=12)
    >>> sorted(maps.data_vars)
    ['Au', 'Au_variance', 'Cu', 'Cu_variance']
    """
    gridder = OrdinaryKriging(
        variogram_model=variogram_model,
        variogram_parameters=variogram_parameters,
        k=k,
        radius=radius,
        min_points=min_points,
        anisotropy=anisotropy,
        elements=elements,
        n_lags=n_lags,
        max_lag=max_lag,
    )
    return gridder.fit(samples).grid(like, dtype=dtype, chunks=chunks, progress=progress)
