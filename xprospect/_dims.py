"""The one place that resolves spatial dims, grid geometry and the CRS of xarray objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from pyproj import CRS

from xprospect.exceptions import CRSError, GridError

SAMPLE_DIM = "sample"
ELEMENT_DIM = "element"
GRID_DIMS_2D = ("y", "x")
GRID_DIMS_3D = ("z", "y", "x")

# Relative tolerance for "uniform" coordinate spacing.
_SPACING_RTOL = 1e-6


def get_crs(obj: xr.Dataset | xr.DataArray) -> CRS | None:
    """Return the CRS written on ``obj`` through rioxarray, or None."""
    crs = obj.rio.crs
    if crs is None:
        return None
    return CRS.from_user_input(crs)


def write_crs(obj, crs: Any):
    """Return a shallow copy of ``obj`` with ``crs`` written the rioxarray way.

    ``obj.rio.write_crs(crs)`` deep-copies every data variable (seconds on a large
    grid); writing in place on a shallow copy shares the data instead.
    """
    out = obj.copy(deep=False)
    out.rio.write_crs(crs, inplace=True)
    return out


def require_crs(obj: xr.Dataset | xr.DataArray, what: str) -> CRS:
    """Return the CRS of ``obj`` or raise naming ``what`` lacks one."""
    crs = get_crs(obj)
    if crs is None:
        msg = (
            f"{what} has no CRS; write one with obj.rio.write_crs('EPSG:....') "
            "or pass crs= when reading or making it"
        )
        raise CRSError(msg)
    return crs


def parse_crs(crs: Any, what: str = "crs") -> CRS:
    """Parse any pyproj-accepted CRS spec, with an error naming the bad value."""
    try:
        return CRS.from_user_input(crs)
    except Exception as err:  # pyproj raises CRSError of its own
        msg = f"{what}={crs!r} is not a valid coordinate reference system: {err}"
        raise CRSError(msg) from err


def check_same_crs(a: CRS, b: CRS, what_a: str, what_b: str) -> None:
    """Raise when two CRSs differ."""
    if not a.equals(b, ignore_axis_order=True):
        msg = (
            f"{what_a} is in {a.to_string()} but {what_b} is in {b.to_string()}; "
            "reproject one of them first (e.g. read_samples(..., to_crs=...))"
        )
        raise CRSError(msg)


@dataclass(frozen=True)
class GridGeometry:
    """Regular, axis-aligned grid geometry read off coordinates at cell centres.

    ``origin`` holds the centre coordinate of the first cell along each axis (in
    ``dims`` order) and ``step`` the signed spacing, so that the centre of cell
    ``idx`` along axis ``a`` is ``origin[a] + idx * step[a]``.
    """

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    origin: tuple[float, ...]
    step: tuple[float, ...]

    @property
    def ndim(self) -> int:
        """Number of spatial axes (2 or 3)."""
        return len(self.dims)

    def bounds(self) -> dict[str, tuple[float, float]]:
        """Outer edges (min, max) of the grid along each axis."""
        out = {}
        for d, n, o, s in zip(self.dims, self.shape, self.origin, self.step, strict=True):
            a, b = o - s / 2, o + (n - 1) * s + s / 2
            out[d] = (min(a, b), max(a, b))
        return out


def _axis_geometry(coord: np.ndarray, name: str) -> tuple[float, float]:
    coord = np.asarray(coord, dtype="float64")
    if coord.ndim != 1 or coord.size == 0:
        raise GridError(f"grid coordinate {name!r} must be 1-D and non-empty")
    if not np.all(np.isfinite(coord)):
        raise GridError(f"grid coordinate {name!r} holds non-finite values")
    if coord.size == 1:
        return float(coord[0]), 0.0
    diffs = np.diff(coord)
    step = float((coord[-1] - coord[0]) / (coord.size - 1))
    tol = abs(step) * _SPACING_RTOL
    if step == 0 or not np.allclose(diffs, step, rtol=_SPACING_RTOL, atol=tol):
        i = int(np.argmax(np.abs(diffs - step)))
        msg = (
            f"grid coordinate {name!r} is not uniformly spaced: step {diffs[i]!r} between "
            f"{name}={coord[i]!r} and {name}={coord[i + 1]!r}, expected {step!r}"
        )
        raise GridError(msg)
    return float(coord[0]), step


def grid_geometry(obj: xr.Dataset | xr.DataArray) -> GridGeometry:
    """Read the regular grid geometry of a 2-D (y, x) or 3-D (z, y, x) grid."""
    dims = GRID_DIMS_3D if "z" in obj.dims else GRID_DIMS_2D
    missing = [d for d in dims if d not in obj.dims or d not in obj.coords]
    if missing:
        msg = f"a grid needs dims and coordinates {dims}; missing {missing}"
        raise GridError(msg)
    origins, steps = [], []
    for d in dims:
        o, s = _axis_geometry(obj[d].values, d)
        origins.append(o)
        steps.append(s)
    shape = tuple(int(obj.sizes[d]) for d in dims)
    return GridGeometry(dims=dims, shape=shape, origin=tuple(origins), step=tuple(steps))


def sample_coords(samples: xr.Dataset) -> dict[str, np.ndarray]:
    """Return x, y (and z) coordinate arrays of a sample Dataset."""
    if SAMPLE_DIM not in samples.dims:
        msg = f"samples must have a {SAMPLE_DIM!r} dimension; got dims {tuple(samples.dims)}"
        raise GridError(msg)
    out = {}
    for c in ("x", "y", "z"):
        if c in samples.coords:
            out[c] = np.asarray(samples[c].values, dtype="float64")
    if "x" not in out or "y" not in out:
        raise GridError("samples need coordinates 'x' and 'y' along the 'sample' dimension")
    return out


def element_vars(ds: xr.Dataset, dims: tuple[str, ...]) -> list[str]:
    """Names of the numeric data variables of ``ds`` laid out exactly on ``dims``."""
    out = []
    for name, var in ds.data_vars.items():
        if tuple(var.dims) == tuple(dims) and np.issubdtype(var.dtype, np.number):
            out.append(str(name))
    return out
