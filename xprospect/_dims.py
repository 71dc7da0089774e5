"""The one place that resolves spatial dims, grid geometry and the CRS of xarray objects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from pyproj import CRS, Transformer

from xprospect.exceptions import CRSError, DataError, GridError

SAMPLE_DIM = "sample"
ELEMENT_DIM = "element"
GRID_DIMS_2D = ("y", "x")
GRID_DIMS_3D = ("z", "y", "x")

# Relative tolerance for "uniform" coordinate spacing.
_SPACING_RTOL = 1e-6


#: Dataset variables that rioxarray reads as attributes of a DataArray: ``ds.name`` on a
#: Dataset resolves to a variable called ``name``, and rioxarray's messages (reached by
#: ``.rio.crs`` and ``.rio.write_crs`` on point datasets) then fail with "The truth value of
#: an array ... is ambiguous". CRS access goes through a view with them renamed.
RIO_SHADOWED = ("name",)


def _rio_view(obj: Any) -> tuple[Any, dict[str, str]]:
    """``obj`` with the variables in :data:`RIO_SHADOWED` renamed, and the renaming."""
    if not isinstance(obj, xr.Dataset):
        return obj, {}
    names = {n: f"__xprospect_{n}__" for n in RIO_SHADOWED if n in obj.variables}
    return (obj.rename(names) if names else obj), names


def get_crs(obj: xr.Dataset | xr.DataArray) -> CRS | None:
    """Return the CRS written on ``obj`` through rioxarray, or None."""
    view, _ = _rio_view(obj)
    crs = view.rio.crs
    if crs is None:
        return None
    return CRS.from_user_input(crs)


def write_crs(obj, crs: Any):
    """Return a shallow copy of ``obj`` with ``crs`` written the rioxarray way.

    ``obj.rio.write_crs(crs)`` deep-copies every data variable (seconds on a large
    grid); writing in place on a shallow copy shares the data instead. A Dataset variable
    that rioxarray would mistake for an attribute (:data:`RIO_SHADOWED`) is renamed for the
    call and back.
    """
    out, names = _rio_view(obj.copy(deep=False))
    out.rio.write_crs(crs, inplace=True)
    return out.rename({v: k for k, v in names.items()}) if names else out


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
            f"{what_a}: CRS {a.to_string()}, but {what_b}: CRS {b.to_string()}; "
            "reproject one of them first (e.g. read_samples(..., to_crs=...))"
        )
        raise CRSError(msg)


def _area_box(crs: CRS) -> tuple[float, float, float, float] | None:
    """Return the CRS's area of use in degrees, widened by a margin; None when it has none.

    The margin is half the area's width and height, at least 2 degrees: a UTM zone is
    6 degrees wide and is routinely used a degree or two beyond it.
    """
    aou = crs.area_of_use
    if aou is None or aou.west > aou.east:  # none, or across the antimeridian
        return None
    mx = max(2.0, (aou.east - aou.west) / 2)
    my = max(2.0, (aou.north - aou.south) / 2)
    return (aou.west - mx, max(aou.south - my, -90.0), aou.east + mx, min(aou.north + my, 90.0))


def _lonlat(crs: CRS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if crs.is_geographic:
        return x, y
    tr = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    with np.errstate(all="ignore"):
        lon, lat = tr.transform(x, y, errcheck=False)
    return np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")


def outside_area_of_use(
    crs: CRS, x: np.ndarray, y: np.ndarray, *, src: CRS | None = None
) -> np.ndarray:
    """Where points ``x``, ``y`` (in ``src``, default ``crs``) lie outside ``crs``'s area of use.

    Parameters
    ----------
    crs : pyproj.CRS
        The CRS whose area of use (widened by a margin, see ``_area_box``) is checked.
    x, y : numpy.ndarray
        Coordinates (x east or longitude first).
    src : pyproj.CRS, optional
        The CRS of ``x``/``y`` when it is not ``crs`` (e.g. data about to be reprojected).

    Returns
    -------
    numpy.ndarray
        Boolean mask, True outside (also where the coordinates cannot be transformed).
    """
    src = crs if src is None else src
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y, dtype="float64")
    bad = np.zeros(x.shape, dtype=bool)
    if src.is_geographic:
        bad |= (x < -180) | (x > 360) | (y < -90) | (y > 90)
    box = _area_box(crs)
    if box is None or not x.size:
        return bad
    lon, lat = _lonlat(src, x, y)
    w, s, e, n = box
    in_lon = np.zeros(x.shape, dtype=bool)
    for shift in (0.0, 360.0, -360.0):
        in_lon |= (lon + shift >= w) & (lon + shift <= e)
    ok = np.isfinite(lon) & np.isfinite(lat) & in_lon & (lat >= s) & (lat <= n)
    return bad | ~ok


def check_area_of_use(
    crs: CRS,
    x: np.ndarray,
    y: np.ndarray,
    *,
    label: str,
    what: str,
    x_name: str,
    y_name: str,
    rows: np.ndarray | None = None,
    src: CRS | None = None,
) -> None:
    """Raise :class:`CRSError` when a point lies outside ``crs``'s area of use.

    The message names the first offending row and its coordinates, and says so when swapping
    x and y (or declaring longitude/latitude) would put every point inside.

    Parameters
    ----------
    crs : pyproj.CRS
        The declared CRS (or the CRS the points will be reprojected to, with ``src``).
    x, y : numpy.ndarray
        Coordinates.
    label : str
        The table, for messages.
    what : str
        What the points are (``"samples"``, ``"points"``).
    x_name, y_name : str
        The coordinate columns, for the swap hint.
    rows : numpy.ndarray, optional
        1-based source rows of the points (positions + 1 by default).
    src : pyproj.CRS, optional
        The CRS of ``x``/``y`` when it is not ``crs``.
    """
    bad = outside_area_of_use(crs, x, y, src=src)
    if not bad.any():
        return
    src_crs = crs if src is None else src
    i = int(np.flatnonzero(bad)[0])
    row = int(rows[i]) if rows is not None else i + 1
    aou = crs.area_of_use
    area = (
        f"{aou.name.rstrip('.')} (longitude {aou.west} to {aou.east}, latitude {aou.south} "
        f"to {aou.north}, widened by a margin)"
        if aou is not None
        else "longitude/latitude"
    )
    role = "the declared crs " if src is None else "to_crs="
    where = "the area of use"
    if src_crs.is_geographic and not (-180 <= x[i] <= 360 and -90 <= y[i] <= 90):
        where = "longitude/latitude range and the area of use"
    msg = (
        f"{int(bad.sum())} {what} in {label} lie outside {where} of {role}"
        f"{crs.to_string()}: {area}; first at row {row}: "
        f"{x_name}={float(x[i])!r}, {y_name}={float(y[i])!r}"
    )
    if not outside_area_of_use(crs, y, x, src=src).any():
        msg += (
            f"; swapping x and y puts every one inside: the columns look swapped, pass "
            f"x={y_name!r}, y={x_name!r}"
        )
    elif not src_crs.is_geographic and np.all(np.abs(x) <= 360) and np.all(np.abs(y) <= 90):
        msg += (
            "; the values look like longitude/latitude: pass crs='EPSG:4326' "
            f"(and to_crs={src_crs.to_string()!r} to reproject)"
        )
    else:
        msg += "; is crs= the CRS of the file, and are x= and y= the right way round?"
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


# ---- lengths in metres -> cells --------------------------------------------------------------

_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(km|m|cells?)\s*$")
_UNIT_M = {"km": 1000.0, "m": 1.0}


def length_to_cells(
    length: Any, like: xr.Dataset | xr.DataArray, what: str = "size"
) -> int | tuple[int, ...]:
    """Convert a window or patch size given in metres (``"5 km"``) to cells of a grid.

    Parameters
    ----------
    length : int, str or sequence
        An int (or sequence of ints) is already in cells and is returned as is; a string
        ``"<number> km"``, ``"<number> m"`` or ``"<number> cells"`` is converted along each
        spatial axis of ``like`` by its cell size (rounded to the nearest cell, at least 1).
    like : Dataset or DataArray
        The grid (projected CRS in metres, or no CRS: the coordinates are taken as metres).
    what : str
        The option's name, for messages.

    Returns
    -------
    int or tuple of int
        One int when every axis gives the same count, else one per axis (grid dim order).

    Raises
    ------
    DataError
        For a string that is not a length, or a length shorter than one cell.
    CRSError
        For a length in metres on a grid in a geographic (degree) CRS.

    Examples
    --------
    >>> import xprospect as xp
    >>> g = xp.make_grid((0, 0, 20000, 20000), resolution=250.0, crs="EPSG:32750")
    >>> length_to_cells("5 km", g), length_to_cells(12, g)
    (20, 12)
    """
    if not isinstance(length, str):
        return length
    m = _LENGTH.match(length)
    if m is None:
        raise DataError(
            f"{what}={length!r} is not a length: give cells as an int, or a string such as "
            "'5 km', '250 m' or '16 cells'"
        )
    value, unit = float(m.group(1)), m.group(2)
    if unit.startswith("cell"):
        if value != int(value) or value < 1:
            raise DataError(f"{what}={length!r}: a count of cells must be a whole number >= 1")
        return int(value)
    crs = get_crs(like)
    if crs is not None and not crs.is_projected:
        raise CRSError(
            f"{what}={length!r} is in metres but the grid's CRS ({crs.name}) is in degrees; "
            "reproject the grid to a projected CRS or give the size in cells"
        )
    metres = value * _UNIT_M[unit]
    geom = grid_geometry(like)
    out = []
    for d, s in zip(geom.dims, geom.step, strict=True):
        step = abs(float(s))
        if step == 0:
            raise DataError(f"{what}={length!r}: the grid has one cell along {d!r} (no cell size)")
        n = round(metres / step)
        if n < 1:
            raise DataError(
                f"{what}={length!r} is shorter than one {step:g} m cell along {d!r}; give a "
                "larger size"
            )
        out.append(n)
    return out[0] if len(set(out)) == 1 else tuple(out)
