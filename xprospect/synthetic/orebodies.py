"""Synthetic drilled volumes (3-D) with a known orebody: :func:`orebody`.

A world is a buried, dipping lens-shaped orebody, zoned primary halos and drillholes.

The orebody is an ellipsoidal lens (semi-axes along strike, down dip and across)
lying in a dipping fault plane, buried under a flat-ish surface. Its primary
geochemical halos follow the classic zoning of hydrothermal gold deposits:

* near-ore halo (Au, Ag, Cu, Pb, Zn): centred on the lens, a few tens of metres wide;
  Au also carries an extra step inside the ore;
* front (head) halo (As, Sb, Hg): broad, centred above the lens (up and outward);
* tail halo (W, Bi, Co, Mo): centred below the lens;
* Sb and Hg are also enriched along the fault plane (the ore-bearing structure).

Backgrounds are correlated lognormal fields (two smooth 3-D "lithology" fields plus
per-sample noise). Drillholes are straight (constant azimuth and dip), so every
desurvey method gives the same positions; the tables follow the layout that
``xp.read_drillholes`` reads (``hole_id``, ``x``, ``y``, ``z``, ``depth``; ``depth``,
``azimuth``, ``dip`` negative down; ``from``, ``to`` and one column per element).
Every field is a function of position, so the noise-free truth is known anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect._dims import parse_crs, write_crs
from xprospect.exceptions import DataError

__all__ = ["ELEMENTS_3D", "OrebodyWorld", "orebody"]

#: The twelve elements of the Zaozigou primary-halo data set.
ELEMENTS_3D: tuple[str, ...] = (
    "Au",
    "Ag",
    "Cu",
    "Pb",
    "Zn",
    "As",
    "Sb",
    "Hg",
    "W",
    "Bi",
    "Co",
    "Mo",
)

# element: (unit, median background, log10 sd of background noise, zone, log10 amplitude)
_PROPS: dict[str, tuple[str, float, float, str, float]] = {
    "Au": ("ppb", 1.5, 0.20, "near", 1.8),
    "Ag": ("ppm", 0.08, 0.18, "near", 1.2),
    "Cu": ("ppm", 25.0, 0.15, "near", 0.8),
    "Pb": ("ppm", 15.0, 0.15, "near", 0.7),
    "Zn": ("ppm", 50.0, 0.12, "near", 0.6),
    "As": ("ppm", 8.0, 0.20, "front", 1.2),
    "Sb": ("ppm", 0.5, 0.18, "front", 1.0),
    "Hg": ("ppm", 0.03, 0.18, "front", 0.9),
    "W": ("ppm", 1.5, 0.15, "tail", 0.9),
    "Bi": ("ppm", 0.2, 0.18, "tail", 1.0),
    "Co": ("ppm", 12.0, 0.12, "tail", 0.5),
    "Mo": ("ppm", 1.0, 0.15, "tail", 0.8),
}
_FAULT_ELEMENTS = {"Sb": 0.6, "Hg": 0.6}
_FAULT_WIDTH = 40.0  # e-folding distance (m) of the fault's Sb-Hg enrichment
_ORE_STEP_AU = 0.8  # extra log10 Au inside the ore


@dataclass
class _Lens:
    centre: np.ndarray  # (3,) x, y, z
    axes: np.ndarray  # (3,) semi-axes: strike, down dip, across
    rot: np.ndarray  # (3, 3) columns: strike, down-dip and normal unit vectors

    def local(self, x, y, z) -> np.ndarray:
        p = np.stack(np.broadcast_arrays(x, y, z), axis=-1).astype("float64") - self.centre
        return p @ self.rot  # (..., 3) coordinates along strike, down dip, across

    def radius(
        self, x, y, z, grow: float = 0.0, shift: Sequence[float] | np.ndarray = (0, 0, 0)
    ) -> np.ndarray:
        """Normalised radius (1 on the lens surface) of an ellipsoid grown by ``grow`` m."""
        q = self.local(np.asarray(x) - shift[0], np.asarray(y) - shift[1], np.asarray(z) - shift[2])
        return np.sqrt(((q / (self.axes + grow)) ** 2).sum(axis=-1))


@dataclass
class _Waves3D:
    k: np.ndarray  # (n, 3)
    phase: np.ndarray
    amp: float

    def __call__(self, x, y, z) -> np.ndarray:
        p = np.stack(np.broadcast_arrays(x, y, z), axis=-1).astype("float64")
        return self.amp * np.cos(p @ self.k.T + self.phase).sum(axis=-1)


def _waves(rng: np.random.Generator, scale: float, n: int = 16) -> _Waves3D:
    k = rng.normal(size=(n, 3))
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    k *= (rng.gamma(4.0, 0.25, n) * 2 * np.pi / scale)[:, None]
    return _Waves3D(k, rng.uniform(0, 2 * np.pi, n), float(np.sqrt(2.0 / n)))


@dataclass
class OrebodyWorld:
    """A synthetic drilled volume with a known orebody.

    Attributes
    ----------
    collar : pandas.DataFrame
        ``hole_id, x, y, z, depth`` (m, elevation up).
    survey : pandas.DataFrame
        ``hole_id, depth, azimuth, dip`` (degrees; dip negative downwards).
    assay : pandas.DataFrame
        ``hole_id, from, to`` and one column per element (units in :attr:`units`).
    lithology : pandas.DataFrame
        ``hole_id, from, to, lith`` with ``lith`` ``"ore"`` or ``"host"``.
    crs : str
        CRS of every coordinate.
    bounds : tuple
        (xmin, ymin, zmin, xmax, ymax, zmax) of the modelled volume.
    elements : tuple of str
    units : dict
        Element -> unit.
    orebody : trimesh.Trimesh
        Closed wireframe of the lens (an icosphere inscribed in the ellipsoid, so
        slightly smaller than the analytic :meth:`ore`).
    fault : trimesh.Trimesh
        The ore-bearing fault plane (an open rectangle through the lens).
    """

    collar: pd.DataFrame
    survey: pd.DataFrame
    assay: pd.DataFrame
    lithology: pd.DataFrame
    crs: str
    bounds: tuple[float, float, float, float, float, float]
    elements: tuple[str, ...]
    units: dict[str, str]
    orebody: Any
    fault: Any
    _lens: _Lens = field(repr=False)
    _mu: dict[str, float] = field(repr=False)
    _loads: dict[str, np.ndarray] = field(repr=False)
    _lith: list[_Waves3D] = field(repr=False)
    _front_shift: np.ndarray = field(repr=False)
    _tail_shift: np.ndarray = field(repr=False)
    _midpoints: np.ndarray = field(repr=False)

    # -- truth --------------------------------------------------------------------------

    def ore(self, x, y, z) -> np.ndarray:
        """Return True where (x, y, z) lies inside the analytic lens."""
        return self._lens.radius(x, y, z) <= 1.0

    def fault_distance(self, x, y, z) -> np.ndarray:
        """Distance (m) to the (infinite) fault plane through the lens."""
        return np.abs(self._lens.local(x, y, z)[..., 2])

    def log10_truth(self, x, y, z, element: str) -> np.ndarray:
        """Noise-free log10 concentration of ``element`` at points (x, y, z)."""
        _, _, _, zone, amp = _PROPS[element]
        out = np.full(np.broadcast(x, y, z).shape, self._mu[element], dtype="float64")
        for f, w in zip(self._lith, self._loads[element], strict=True):
            out += w * f(x, y, z)
        lens = self._lens
        if zone == "near":
            out += amp * np.exp(-(lens.radius(x, y, z, grow=40.0) ** 2))
            if element == "Au":
                out += _ORE_STEP_AU * self.ore(x, y, z)
        elif zone == "front":
            out += amp * np.exp(-(lens.radius(x, y, z, grow=150.0, shift=self._front_shift) ** 2))
        else:
            out += amp * np.exp(-(lens.radius(x, y, z, grow=80.0, shift=self._tail_shift) ** 2))
        if element in _FAULT_ELEMENTS:
            out += _FAULT_ELEMENTS[element] * np.exp(-self.fault_distance(x, y, z) / _FAULT_WIDTH)
        return out

    def truth(
        self, like: xr.Dataset | xr.DataArray, elements: Sequence[str] | None = ()
    ) -> xr.Dataset:
        """Evaluate the orebody (``ore``, bool) and noise-free concentrations on a voxel grid.

        Parameters
        ----------
        like : xarray.Dataset or DataArray
            A voxel grid (z, y, x); evaluated at its centres (in memory).
        elements : list of str, optional
            Elements to add (default none; None adds every element).

        Returns
        -------
        xarray.Dataset
            ``ore`` and the requested elements on ``like``'s coordinates, with the CRS.
        """
        zz, yy, xx = np.meshgrid(
            like["z"].values, like["y"].values, like["x"].values, indexing="ij"
        )
        dims = ("z", "y", "x")
        out = xr.Dataset(coords={d: like[d] for d in dims})
        out["ore"] = (dims, self.ore(xx, yy, zz), {"long_name": "inside the orebody (truth)"})
        for e in self.elements if elements is None else elements:
            out[e] = (
                dims,
                (10 ** self.log10_truth(xx, yy, zz, e)).astype("float32"),
                {"units": self.units[e]},
            )
        return write_crs(out, self.crs)

    def samples(self) -> xr.Dataset:
        """Assay intervals as 3-D samples at their midpoints (exact: holes are straight).

        Returns
        -------
        xarray.Dataset
            Dim ``sample``; coords ``x``, ``y``, ``z``, ``hole_id``, ``from``, ``to`` and
            ``ore`` (midpoint inside the lens); one variable per element with ``units``.
        """
        m = self._midpoints
        a = self.assay
        ds = xr.Dataset(
            coords={
                "x": ("sample", m[:, 0]),
                "y": ("sample", m[:, 1]),
                "z": ("sample", m[:, 2]),
                "hole_id": ("sample", a["hole_id"].to_numpy()),
                "from": ("sample", a["from"].to_numpy()),
                "to": ("sample", a["to"].to_numpy()),
                "ore": ("sample", self.ore(m[:, 0], m[:, 1], m[:, 2])),
            }
        )
        for e in self.elements:
            ds[e] = (
                "sample",
                a[e].to_numpy(dtype="float64"),
                {"units": self.units[e], "source_column": e},
            )
        return write_crs(ds, self.crs)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _lens_frame(strike: float, dip: float) -> np.ndarray:
    s, d = np.radians(strike), np.radians(dip)
    u = np.array([np.sin(s), np.cos(s), 0.0])  # along strike (azimuth clockwise from north)
    dd = np.array([np.sin(s + np.pi / 2), np.cos(s + np.pi / 2), 0.0])  # dip direction
    v = _unit(np.cos(d) * dd + np.array([0.0, 0.0, -np.sin(d)]))  # down dip
    w = np.cross(u, v)
    return np.stack([u, v, w], axis=1)


def _meshes(lens: _Lens, crs: str, fault_half: float):
    import trimesh  # heavy optional dependency: only the meshes need it

    sphere = trimesh.creation.icosphere(subdivisions=3)
    verts = (np.asarray(sphere.vertices) * lens.axes) @ lens.rot.T + lens.centre
    ore = trimesh.Trimesh(vertices=verts, faces=np.asarray(sphere.faces), process=False)
    n = 8
    g = np.linspace(-fault_half, fault_half, n + 1)
    gu, gv = np.meshgrid(g, g, indexing="ij")
    pv = np.stack([gu.ravel(), gv.ravel(), np.zeros(gu.size)], axis=1) @ lens.rot.T + lens.centre
    faces = []
    for i in range(n):
        for j in range(n):
            a, b = i * (n + 1) + j, (i + 1) * (n + 1) + j
            faces += [[a, b, b + 1], [a, b + 1, a + 1]]
    fault = trimesh.Trimesh(vertices=pv, faces=np.asarray(faces), process=False)
    wkt = parse_crs(crs).to_wkt()
    for m, name in ((ore, "synthetic orebody"), (fault, "synthetic fault")):
        m.metadata["crs"] = wkt
        m.metadata["source"] = name
    return ore, fault


def orebody(
    seed: int = 0,
    *,
    n_holes: int = 48,
    interval: float = 5.0,
    hole_depth: float = 900.0,
    elements: Sequence[str] | None = None,
    strike: float = 45.0,
    dip: float = 60.0,
    lens_axes: tuple[float, float, float] = (300.0, 180.0, 40.0),
    crs: str = "EPSG:32648",
) -> OrebodyWorld:
    """Make a synthetic drilled volume with a buried lens-shaped orebody and zoned halos.

    Parameters
    ----------
    seed : int
        Seed of every random step (same seed, same world).
    n_holes : int
        Number of drillholes (collars on a jittered grid, dips -55 to -90 degrees).
    interval : float
        Assay interval length (m).
    hole_depth : float
        Length of every hole along its trace (m).
    elements : list of str, optional
        A subset of :data:`ELEMENTS_3D` (default all twelve).
    strike, dip : float
        Orientation of the fault and the lens (degrees; strike clockwise from north,
        dip downwards to the right of strike).
    lens_axes : (float, float, float)
        Semi-axes of the lens along strike, down dip and across (m).
    crs : str
        CRS written on everything (a projected, metre CRS).

    Returns
    -------
    OrebodyWorld

    Examples
    --------
    >>> from xprospect.synthetic import orebody
    >>> w = orebody(seed=0, n_holes=12)
    >>> sorted(w.collar.columns), int(w.samples()["ore"].sum()) > 0
    (['depth', 'hole_id', 'x', 'y', 'z'], True)
    """
    names = tuple(ELEMENTS_3D if elements is None else elements)
    unknown = [e for e in names if e not in _PROPS]
    if unknown:
        raise DataError(f"orebody knows elements {list(ELEMENTS_3D)}; got {unknown}")
    rng = np.random.default_rng(seed)
    x0, y0, surface = 500_000.0, 3_800_000.0, 3000.0
    size = 1200.0
    bounds = (x0, y0, surface - 1000.0, x0 + size, y0 + size, surface + 50.0)
    centre = np.array(
        [
            x0 + size / 2 + rng.uniform(-60, 60),
            y0 + size / 2 + rng.uniform(-60, 60),
            surface - 520.0 + rng.uniform(-40, 40),
        ]
    )
    lens = _Lens(centre, np.asarray(lens_axes, dtype="float64"), _lens_frame(strike, dip))
    lith = [_waves(rng, 500.0), _waves(rng, 300.0)]
    mu, loads = {}, {}
    for e in ELEMENTS_3D:  # drawn for all twelve so a subset gives the same fields
        _, med, _, _, _ = _PROPS[e]
        mu[e] = float(np.log10(med))
        loads[e] = rng.normal(0.0, 0.08, size=2)
    ore_mesh, fault_mesh = _meshes(lens, crs, fault_half=1100.0)
    world = OrebodyWorld(
        collar=pd.DataFrame(),
        survey=pd.DataFrame(),
        assay=pd.DataFrame(),
        lithology=pd.DataFrame(),
        crs=crs,
        bounds=bounds,
        elements=names,
        units={e: _PROPS[e][0] for e in names},
        orebody=ore_mesh,
        fault=fault_mesh,
        _lens=lens,
        _mu=mu,
        _loads=loads,
        _lith=lith,
        _front_shift=np.array([0.0, 0.0, 180.0]),
        _tail_shift=np.array([0.0, 0.0, -160.0]),
        _midpoints=np.empty((0, 3)),
    )
    _drill(
        world,
        rng,
        n_holes=int(n_holes),
        interval=float(interval),
        hole_depth=float(hole_depth),
        surface=surface,
        size=size,
        x0=x0,
        y0=y0,
    )
    return world


def _drill(
    world: OrebodyWorld,
    rng: np.random.Generator,
    *,
    n_holes: int,
    interval: float,
    hole_depth: float,
    surface: float,
    size: float,
    x0: float,
    y0: float,
) -> None:
    n_side = int(np.ceil(np.sqrt(n_holes)))
    spacing = 0.8 * size / n_side
    ij = np.stack(
        np.meshgrid(np.arange(n_side), np.arange(n_side), indexing="ij"), axis=-1
    ).reshape(-1, 2)[:n_holes]
    cx = x0 + 0.1 * size + (ij[:, 0] + 0.5) * spacing + rng.uniform(-0.3, 0.3, n_holes) * spacing
    cy = y0 + 0.1 * size + (ij[:, 1] + 0.5) * spacing + rng.uniform(-0.3, 0.3, n_holes) * spacing
    cz = surface + 15.0 * np.sin((cx - x0) / 230.0) * np.cos((cy - y0) / 310.0)
    dips = -rng.uniform(55.0, 90.0, n_holes)
    azis = rng.uniform(0.0, 360.0, n_holes)
    ids = [f"SYN{i + 1:03d}" for i in range(n_holes)]
    world.collar = pd.DataFrame(
        {"hole_id": ids, "x": cx, "y": cy, "z": cz, "depth": np.full(n_holes, hole_depth)}
    )
    stations = np.arange(0.0, hole_depth + 1e-9, 100.0)
    if stations[-1] < hole_depth:
        stations = np.append(stations, hole_depth)
    world.survey = pd.DataFrame(
        {
            "hole_id": np.repeat(ids, stations.size),
            "depth": np.tile(stations, n_holes),
            "azimuth": np.repeat(azis, stations.size),
            "dip": np.repeat(dips, stations.size),
        }
    )
    edges = np.arange(10.0, hole_depth + 1e-9, interval)  # 0-10 m overburden not sampled
    frm, to = edges[:-1], edges[1:]
    mid = 0.5 * (frm + to)
    a, d = np.radians(azis), np.radians(-dips)
    direction = np.stack([np.sin(a) * np.cos(d), np.cos(a) * np.cos(d), -np.sin(d)], axis=1)
    pts = (
        np.stack([cx, cy, cz], axis=1)[:, None, :] + mid[None, :, None] * direction[:, None, :]
    ).reshape(-1, 3)
    n_int = mid.size
    table: dict[str, Any] = {
        "hole_id": np.repeat(ids, n_int),
        "from": np.tile(frm, n_holes),
        "to": np.tile(to, n_holes),
    }
    for e in ELEMENTS_3D:  # noise drawn for all twelve: a subset sees the same values
        noise = rng.normal(0.0, _PROPS[e][2], pts.shape[0])
        if e in world.elements:
            lg = world.log10_truth(pts[:, 0], pts[:, 1], pts[:, 2], e) + noise
            table[e] = np.round(10**lg, 6)
    world.assay = pd.DataFrame(table)
    world._midpoints = pts
    ore = world.ore(pts[:, 0], pts[:, 1], pts[:, 2]).reshape(n_holes, n_int)
    rows = []
    for h, hid in enumerate(ids):
        run_start = 0
        for k in range(1, n_int + 1):
            if k == n_int or ore[h, k] != ore[h, run_start]:
                rows.append(
                    (hid, frm[run_start], to[k - 1], "ore" if ore[h, run_start] else "host")
                )
                run_start = k
    world.lithology = pd.DataFrame(rows, columns=["hole_id", "from", "to", "lith"])
