"""Synthetic mineral-system provinces (2-D rasters) with known truth: :func:`province`.

A province is what a regional prospectivity study starts from: a handful of geology,
structure and geophysics rasters and a few hundred known deposits, not geochemical samples.
Deposits form where a mineral system's parts meet (in the manner of IOCG and orogenic gold
systems): a receptive host unit, within a few hundred metres of a fault (more so where faults
cross) and a few kilometres outside a granite contact. Each deposit also leaves its own small
footprint: a magnetite (magnetic) and a hematite (gravity) anomaly, and a potassic alteration
halo that radiometrics see only where the ground is not under cover. Barren mafic plugs leave
the same magnetic and gravity footprint without a deposit or an alteration halo.

So the evidence is nonlinear (the parts multiply), multi-scale (a deposit's 250 m anomaly on
a regional field, granite contacts kilometres away) and partly hidden: under cover the
surface geology map says "cover" and the mapped granite contact is missing, while magnetics
and gravity still see the ground beneath. The rasters are those a survey hands over:

``geology`` (unit codes of the surface map, categorical; legend in ``world.legend``),
``fault_distance`` (m to the nearest mapped fault), ``fault_count`` (mapped faults within
2 km), ``granite_distance`` (m to the nearest mapped granite contact), ``magnetics`` (nT),
``gravity`` (mGal) and ``potassium`` (%).

The favourability that placed the deposits (``world.favourability``) is the noise-free truth:
judged as a map, it is the best any method could rank the deposits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import xarray as xr

from xprospect._dims import write_crs
from xprospect.exceptions import DataError
from xprospect.synthetic.surveys import _halos, _smooth_field

__all__ = ["UNITS", "ProvinceWorld", "province"]

#: Geology units of the surface map: code -> name.
UNITS: dict[int, str] = {
    1: "greenstone",
    2: "metasediment",
    3: "felsic volcanic",
    4: "mafic intrusive",
    5: "granite",
    6: "cover",
}
# per unit (codes 1..5): host receptivity, magnetic susceptibility response (nT), density
# contrast response (mGal), potassium (%)
_HOST = np.array([0.3, 1.0, 1.0, 0.15, 0.03])
_MAG = np.array([150.0, 40.0, 25.0, 320.0, 70.0])
_GRAV = np.array([1.5, 0.0, -0.6, 2.5, -2.0])
_K = np.array([0.8, 2.0, 3.0, 0.5, 4.0])
_COVER_K = 1.4  # transported cover: its own potassium, no alteration seen through it


@dataclass
class ProvinceWorld:
    """A synthetic province: evidence rasters, deposits and the truth that placed them.

    Attributes
    ----------
    rasters : xarray.Dataset
        The evidence layers on a north-up grid (``y`` descending, ``x``), CRS written:
        ``geology`` (unit codes, see ``legend``; also as JSON in its ``legend`` attr),
        ``fault_distance``, ``fault_count``, ``granite_distance``, ``magnetics``,
        ``gravity``, ``potassium``.
    deposits : xarray.Dataset
        Deposit points (dim ``deposit``): coords ``x``, ``y``, ``deposit_id``; variable
        ``strength`` (size of the deposit's own footprint, 0.5-1).
    favourability : xarray.DataArray
        The noise-free favourability the deposits were drawn from (0-1), on the grid.
    bedrock : xarray.DataArray
        The true unit codes beneath the cover (1-5).
    barren : xarray.Dataset
        Centres (dim ``barren``: coords ``x``, ``y``) of the barren mafic plugs.
    legend : dict
        Unit code -> name of ``geology`` (:data:`UNITS`).
    crs : str
        CRS of every coordinate.
    """

    rasters: xr.Dataset
    deposits: xr.Dataset
    favourability: xr.DataArray
    bedrock: xr.DataArray
    barren: xr.Dataset
    legend: dict[int, str]
    crs: str


def _segment_distance(xx: np.ndarray, yy: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Distance (m) from every cell centre to the line segment ``seg`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = seg
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy))


def _contact_distance(inside: np.ndarray, resolution: float) -> np.ndarray:
    """Distance (m) from every cell to the nearest cell on the other side of a contact."""
    from scipy.ndimage import distance_transform_edt  # heavy: lazy

    if inside.all() or not inside.any():
        return np.full(inside.shape, np.inf)
    out = distance_transform_edt(~inside) + distance_transform_edt(inside)
    return np.asarray(out * resolution - 0.5 * resolution, dtype="float64")


def _place(
    rng: np.random.Generator, weight: np.ndarray, n: int, min_cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` cells with probability ``weight``, more than ``min_cells`` apart (Chebyshev)."""
    p = weight.ravel() / weight.sum()
    order = rng.choice(p.size, size=min(p.size, 40 * n), replace=False, p=p)
    nx = weight.shape[1]
    taken = np.zeros(weight.shape, dtype=bool)
    rows, cols = [], []
    for flat in order:
        r, c = divmod(int(flat), nx)
        if taken[r, c]:
            continue
        rows.append(r)
        cols.append(c)
        taken[
            max(r - min_cells, 0) : r + min_cells + 1, max(c - min_cells, 0) : c + min_cells + 1
        ] = True
        if len(rows) == n:
            break
    if len(rows) < n:
        raise DataError(
            f"province: only {len(rows)} of {n} deposits fit {min_cells} cells apart; "
            "ask for fewer deposits or a larger grid"
        )
    return np.asarray(rows), np.asarray(cols)


def province(
    seed: int = 0,
    *,
    shape: tuple[int, int] = (240, 240),
    resolution: float = 100.0,
    n_deposits: int = 150,
    n_faults: int = 14,
    n_granites: int = 3,
    n_barren: int = 60,
    cover_fraction: float = 0.25,
    origin: tuple[float, float] = (400_000.0, 7_000_000.0),
    crs: str = "EPSG:28353",
) -> ProvinceWorld:
    """Generate a synthetic mineral-system province: rasters, deposits and their truth.

    Parameters
    ----------
    seed : int
        Seed of every random step: the same seed gives the same world, bitwise.
    shape : (ny, nx)
        Grid cells.
    resolution : float
        Cell size (m).
    n_deposits : int
        Deposits, drawn from the favourability more than 400 m apart.
    n_faults : int
        Mapped faults (straight segments in two sets, NE and NW, 4-60 % of the area's width).
    n_granites : int
        Granite plutons (1.2-3 km radius, irregular outline).
    n_barren : int
        Barren mafic plugs: a deposit's magnetic and gravity footprint, no deposit.
    cover_fraction : float
        Share of the area under transported cover (0 for none).
    origin : (x, y)
        Lower-left corner of the grid (m, in ``crs``).
    crs : str
        Projected CRS of the world.

    Returns
    -------
    ProvinceWorld

    Examples
    --------
    >>> import xprospect as xp
    >>> w = xp.synthetic.province(seed=0, shape=(80, 80), n_deposits=20, n_barren=10)
    >>> sorted(w.rasters.data_vars)[:3], w.deposits.sizes["deposit"]
    (['fault_count', 'fault_distance', 'geology'], 20)
    """
    ny, nx = (int(shape[0]), int(shape[1]))
    if ny < 16 or nx < 16 or not float(resolution) > 0:
        raise DataError(
            f"province needs a grid of at least 16 x 16 cells; got {shape}, {resolution}"
        )
    if int(n_deposits) < 1 or int(n_faults) < 1 or int(n_granites) < 0 or int(n_barren) < 0:
        raise DataError(
            "province needs n_deposits >= 1, n_faults >= 1, n_granites >= 0, n_barren >= 0; got "
            f"{n_deposits}, {n_faults}, {n_granites}, {n_barren}"
        )
    if not 0.0 <= float(cover_fraction) < 1.0:
        raise DataError(f"province cover_fraction must lie in [0, 1); got {cover_fraction!r}")
    rng = np.random.default_rng(seed)
    res = float(resolution)
    width = max(ny, nx) * res
    x = origin[0] + (np.arange(nx) + 0.5) * res
    y = origin[1] + (np.arange(ny)[::-1] + 0.5) * res  # north up
    xx, yy = np.meshgrid(x, y)

    # bedrock: four units from the largest of four smooth fields, granite plutons over them
    fields = [_smooth_field(rng, scale=width / 3.0)(xx, yy) for _ in range(4)]
    bedrock = np.argmax(np.stack(fields), axis=0) + 1
    granite = np.zeros((ny, nx), dtype=bool)
    wobble = _smooth_field(rng, scale=width / 12.0)
    for _ in range(int(n_granites)):
        cx, cy = rng.uniform(x[0], x[-1]), rng.uniform(y[-1], y[0])
        radius = rng.uniform(0.05, 0.125) * width
        granite |= np.hypot(xx - cx, yy - cy) < radius * (1.0 + 0.25 * wobble(xx, yy))
    bedrock[granite] = 5
    covered = np.zeros((ny, nx), dtype=bool)
    if cover_fraction > 0:
        c = _smooth_field(rng, scale=width / 2.0)(xx, yy)
        covered = c > np.quantile(c, 1.0 - float(cover_fraction))

    # faults: two sets (NE and NW, +-15 degrees), lengths 4-60 % of the area's width
    segs = []
    for i in range(int(n_faults)):
        strike = np.deg2rad((45.0 if i % 2 == 0 else 135.0) + rng.normal(0, 15.0))
        half = 0.5 * width * rng.uniform(0.04, 0.6)
        cx, cy = rng.uniform(x[0], x[-1]), rng.uniform(y[-1], y[0])
        dx, dy = half * np.sin(strike), half * np.cos(strike)
        segs.append(np.array([cx - dx, cy - dy, cx + dx, cy + dy]))
    fdist = np.stack([_segment_distance(xx, yy, s) for s in segs])
    fault_distance = fdist.min(axis=0)
    fault_count = (fdist < 2000.0).sum(axis=0).astype("float64")
    near = (fdist < 1000.0).sum(axis=0)

    # the mineral system: host x fault x granite halo, crossings favoured
    true_contact = _contact_distance(granite, res)
    outside = np.where(granite, 0.0, true_contact)
    granite_term = (
        np.exp(-(((outside - 1500.0) / 1500.0) ** 2)) if n_granites else np.ones((ny, nx))
    )
    granite_term = np.where(granite, 0.03, 0.05 + 0.95 * granite_term)
    fault_term = 0.03 + np.exp(-((fault_distance / 500.0) ** 2)) * np.where(near >= 2, 2.0, 1.0)
    fav = _HOST[bedrock - 1] * fault_term * granite_term
    fav = fav / fav.max()

    rows, cols = _place(rng, fav**2, int(n_deposits), min_cells=max(round(400.0 / res), 1))
    dep_x, dep_y = x[cols], y[rows]
    strength = rng.uniform(0.5, 1.0, rows.size)
    dep_xy = np.column_stack([dep_x, dep_y])
    magnetite = strength * (rng.uniform(size=rows.size) < 0.7)
    hematite = strength * (rng.uniform(size=rows.size) < 0.8)
    potassic = strength * (rng.uniform(size=rows.size) < 0.8)
    barren_xy = np.column_stack(
        [rng.uniform(x[0], x[-1], int(n_barren)), rng.uniform(y[-1], y[0], int(n_barren))]
    )
    barren_s = rng.uniform(0.5, 1.0, int(n_barren))

    from scipy.ndimage import gaussian_filter  # heavy: lazy

    unit = bedrock - 1
    magnetics = (
        gaussian_filter(_MAG[unit], sigma=300.0 / res)
        + 80.0 * _smooth_field(rng, scale=width / 1.5)(xx, yy)
        + 300.0 * _halos(xx, yy, dep_xy, magnetite, 250.0)
        + 300.0 * _halos(xx, yy, barren_xy, barren_s, 300.0)
        + rng.normal(0.0, 10.0, (ny, nx))
    )
    gravity = (
        gaussian_filter(_GRAV[unit], sigma=800.0 / res)
        + 3.0 * _smooth_field(rng, scale=width)(xx, yy)
        + 1.0 * _halos(xx, yy, dep_xy, hematite, 500.0)
        + 1.0 * _halos(xx, yy, barren_xy, barren_s, 500.0)
        + rng.normal(0.0, 0.1, (ny, nx))
    )
    potassium = np.where(
        covered,
        _COVER_K,
        gaussian_filter(_K[unit], sigma=150.0 / res)
        + 0.8 * _halos(xx, yy, dep_xy, potassic, 800.0),
    ) + rng.normal(0.0, 0.25, (ny, nx))
    potassium = np.clip(potassium, 0.05, None)
    geology = np.where(covered, 6, bedrock).astype("float64")
    mapped = granite & ~covered
    granite_distance = _contact_distance(mapped, res)
    if not np.isfinite(granite_distance).all():  # no granite mapped: as far as the area goes
        granite_distance = np.full((ny, nx), float(width))

    dims = ("y", "x")
    coords = {"y": y, "x": x}
    rasters = xr.Dataset(
        {
            "geology": (dims, geology, {"units": "code", "legend": json.dumps(UNITS)}),
            "fault_distance": (dims, fault_distance, {"units": "m"}),
            "fault_count": (dims, fault_count, {"units": "count"}),
            "granite_distance": (dims, granite_distance, {"units": "m"}),
            "magnetics": (dims, magnetics, {"units": "nT"}),
            "gravity": (dims, gravity, {"units": "mGal"}),
            "potassium": (dims, potassium, {"units": "pct"}),
        },
        coords=coords,
    )
    deposits = xr.Dataset(
        {"strength": ("deposit", strength)},
        coords={
            "x": ("deposit", dep_x),
            "y": ("deposit", dep_y),
            "deposit_id": ("deposit", np.array([f"D{i + 1}" for i in range(rows.size)], object)),
        },
    )
    barren = xr.Dataset(
        {"strength": ("barren", barren_s)},
        coords={"x": ("barren", barren_xy[:, 0]), "y": ("barren", barren_xy[:, 1])},
    )
    return ProvinceWorld(
        rasters=write_crs(rasters, crs),
        deposits=write_crs(deposits, crs),
        favourability=write_crs(
            xr.DataArray(fav, dims=dims, coords=coords, name="favourability"), crs
        ),
        bedrock=write_crs(xr.DataArray(bedrock, dims=dims, coords=coords, name="bedrock"), crs),
        barren=write_crs(barren, crs),
        legend=dict(UNITS),
        crs=crs,
    )
