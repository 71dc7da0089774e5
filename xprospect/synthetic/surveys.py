"""Synthetic survey worlds (2-D, stream sediments) with known truth: :func:`survey`.

A world is a stream-sediment-like survey: sample sites clustered along random
drainage lines (plus a sparse scatter), correlated lognormal multi-element
backgrounds driven by a few smooth "lithology" fields, and a few deposits whose
element halos have different widths (zoning: wide distal As-Sb-Hg halos, narrow
proximal Au-Ag-Cu-Bi-W-Mo halos). Optional barren look-alike anomalies carry the
deposits' multi-element signature over much wider halos and hold no deposit: a per-cell
model cannot tell their cores from a deposit's, only the spatial shape of the anomaly (a
narrow peak against a broad swell) can. Every field is a continuous function of position,
so the noise-free truth can be evaluated on any grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from xprospect._dims import write_crs
from xprospect.exceptions import DataError

__all__ = ["DEFAULT_ELEMENTS", "SurveyWorld", "survey"]

DEFAULT_ELEMENTS: tuple[str, ...] = (
    "Au",
    "Ag",
    "As",
    "Sb",
    "Hg",
    "Cu",
    "Pb",
    "Zn",
    "Mo",
    "Bi",
    "W",
    "Ni",
    "Co",
    "Cr",
    "Fe",
    "Mn",
)

# element: (unit, median background, log10 sd of background, halo amplitude (log10),
#           halo width relative to the base width)
_PROPS: dict[str, tuple[str, float, float, float, float]] = {
    "Au": ("ppb", 1.0, 0.35, 1.6, 0.6),
    "Ag": ("ppm", 0.08, 0.25, 1.0, 0.7),
    "As": ("ppm", 8.0, 0.3, 1.2, 1.8),
    "Sb": ("ppm", 0.5, 0.25, 1.0, 2.0),
    "Hg": ("ppm", 0.03, 0.25, 0.9, 2.2),
    "Cu": ("ppm", 25.0, 0.25, 0.8, 0.9),
    "Pb": ("ppm", 15.0, 0.2, 0.6, 1.2),
    "Zn": ("ppm", 50.0, 0.2, 0.5, 1.3),
    "Mo": ("ppm", 1.0, 0.25, 0.7, 0.8),
    "Bi": ("ppm", 0.2, 0.25, 0.9, 0.7),
    "W": ("ppm", 1.5, 0.25, 0.8, 0.8),
    "Ni": ("ppm", 30.0, 0.3, 0.0, 1.0),
    "Co": ("ppm", 12.0, 0.25, 0.0, 1.0),
    "Cr": ("ppm", 80.0, 0.3, 0.0, 1.0),
    "Fe": ("pct", 4.0, 0.12, 0.05, 1.5),
    "Mn": ("ppm", 700.0, 0.2, 0.0, 1.0),
}


def _props(name: str, rng: np.random.Generator) -> tuple[str, float, float, float, float]:
    if name in _PROPS:
        return _PROPS[name]
    # an element we know nothing about: background only, drawn reproducibly
    return ("ppm", float(10 ** rng.uniform(-1, 2)), float(rng.uniform(0.15, 0.35)), 0.0, 1.0)


@dataclass
class _SmoothField:
    """Sum of random plane waves: a smooth, stationary field defined everywhere."""

    kx: np.ndarray
    ky: np.ndarray
    phase: np.ndarray
    amp: float

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        arg = np.multiply.outer(x, self.kx) + np.multiply.outer(y, self.ky) + self.phase
        return self.amp * np.cos(arg).sum(axis=-1)


def _smooth_field(rng: np.random.Generator, scale: float, n_waves: int = 24) -> _SmoothField:
    k = rng.gamma(4.0, 1.0 / 4.0, n_waves) * 2 * np.pi / scale
    theta = rng.uniform(0, 2 * np.pi, n_waves)
    return _SmoothField(
        k * np.cos(theta),
        k * np.sin(theta),
        rng.uniform(0, 2 * np.pi, n_waves),
        float(np.sqrt(2.0 / n_waves)),
    )


@dataclass
class SurveyWorld:
    """A synthetic survey with its known truth.

    Attributes
    ----------
    samples : xarray.Dataset
        Sample table (dim ``sample``), one variable per element with ``units``.
    deposits : xarray.Dataset
        Deposit points (dim ``deposit``): coords ``x``, ``y``, ``deposit_id``; variables
        ``strength`` and ``known`` (True for deposits a user would know; the others are
        hidden).
    crs : str
        CRS of every coordinate.
    bounds : tuple
        (xmin, ymin, xmax, ymax) of the survey area.
    barren : xarray.Dataset or None
        Centres (dim ``barren``: coords ``x``, ``y``; variable ``strength``) of the barren
        look-alike anomalies, None when the world has none.
    """

    samples: xr.Dataset
    deposits: xr.Dataset
    crs: str
    bounds: tuple[float, float, float, float]
    elements: tuple[str, ...]
    _log_background: dict[str, tuple[float, np.ndarray]] = field(repr=False)
    _lith: list[_SmoothField] = field(repr=False)
    _halo: dict[str, tuple[float, float]] = field(repr=False)
    _dep_xy: np.ndarray = field(repr=False)
    _dep_strength: np.ndarray = field(repr=False)
    _base_width: float = field(repr=False)
    barren: xr.Dataset | None = None
    _barren_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    _barren_strength: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    _barren_width: float = field(default=3.0, repr=False)

    def log10_truth(self, x: np.ndarray, y: np.ndarray, element: str) -> np.ndarray:
        """Noise-free log10 concentration of ``element`` at points (x, y)."""
        mu, loads = self._log_background[element]
        out = np.full(np.broadcast(x, y).shape, mu, dtype="float64")
        for f, w in zip(self._lith, loads, strict=True):
            out += w * f(x, y)
        amp, rel = self._halo[element]
        if amp:
            out += amp * self.footprint(x, y, rel)
            if len(self._barren_strength):
                out += amp * self.barren_footprint(x, y, rel)
        return out

    def footprint(self, x: np.ndarray, y: np.ndarray, rel_width: float = 1.0) -> np.ndarray:
        """Sum of the deposits' Gaussian halos (1 at a deposit of strength 1)."""
        return _halos(x, y, self._dep_xy, self._dep_strength, self._base_width * rel_width)

    def barren_footprint(self, x: np.ndarray, y: np.ndarray, rel_width: float = 1.0) -> np.ndarray:
        """Sum of the barren anomalies' halos (``barren_width`` times a deposit's width)."""
        w = self._base_width * self._barren_width * rel_width
        return _halos(x, y, self._barren_xy, self._barren_strength, w)

    def truth(
        self, like: xr.Dataset | xr.DataArray, elements: Sequence[str] | None = None
    ) -> xr.Dataset:
        """Noise-free concentrations of ``elements`` at the cell centres of a grid."""
        yy, xx = np.meshgrid(like["y"].values, like["x"].values, indexing="ij")
        out = xr.Dataset(coords={"y": like["y"], "x": like["x"]})
        for e in elements or self.elements:
            out[e] = (
                ("y", "x"),
                10 ** self.log10_truth(xx, yy, e),
                {"units": self.samples[e].attrs["units"]},
            )
        return write_crs(out, self.crs)


def _halos(
    x: np.ndarray, y: np.ndarray, centres: np.ndarray, strength: np.ndarray, width: float
) -> np.ndarray:
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y, dtype="float64")
    out = np.zeros(np.broadcast(x, y).shape)
    for (dx, dy), s in zip(centres, strength, strict=True):
        out += s * np.exp(-((x - dx) ** 2 + (y - dy) ** 2) / (2 * width * width))
    return out


def _drainage_sites(rng, n, bounds) -> tuple[np.ndarray, np.ndarray]:
    xmin, ymin, xmax, ymax = bounds
    w, h = xmax - xmin, ymax - ymin
    n_scatter = n // 10
    n_lines = max(int(np.sqrt(n) / 2), 3)
    per_line = np.diff(np.linspace(0, n - n_scatter, n_lines + 1).astype(int))
    xs, ys = [rng.uniform(xmin, xmax, n_scatter)], [rng.uniform(ymin, ymax, n_scatter)]
    step = np.sqrt(w * h / n) * 0.6
    for m in per_line:
        x0, y0 = rng.uniform(xmin, xmax), rng.uniform(ymin, ymax)
        heading = rng.uniform(0, 2 * np.pi)
        turns = np.cumsum(rng.normal(0, 0.25, m))
        px = x0 + np.cumsum(step * np.cos(heading + turns))
        py = y0 + np.cumsum(step * np.sin(heading + turns))
        # fold the walk back into the area like a stream that turns at a divide
        px = xmin + np.abs(((px - xmin) + w) % (2 * w) - w)
        py = ymin + np.abs(((py - ymin) + h) % (2 * h) - h)
        xs.append(px + rng.normal(0, step * 0.15, m))
        ys.append(py + rng.normal(0, step * 0.15, m))
    x = np.clip(np.concatenate(xs), xmin, xmax)
    y = np.clip(np.concatenate(ys), ymin, ymax)
    return x, y


def survey(
    seed: int = 0,
    *,
    n_samples: int = 3000,
    n_deposits: int = 6,
    elements: Sequence[str] | None = None,
    bounds: tuple[float, float, float, float] = (500_000.0, 6_200_000.0, 560_000.0, 6_260_000.0),
    crs: str = "EPSG:32750",
    noise: float = 0.1,
    halo_width: float | None = None,
    known_fraction: float = 0.5,
    n_barren: int = 0,
    barren_width: float = 3.0,
) -> SurveyWorld:
    """Generate a synthetic stream-sediment survey with hidden, zoned deposits.

    Parameters
    ----------
    seed : int
        Seed of every random step: the same seed gives the same world.
    n_samples : int
        Number of sample sites.
    n_deposits : int
        Number of deposits.
    elements : list of str, optional
        Elements to simulate (default: 16 elements, Au to Mn).
    bounds : (xmin, ymin, xmax, ymax)
        Survey area in ``crs`` units (metres).
    crs : str
        Projected CRS of the world.
    noise : float
        Per-sample log10 noise (sampling and analytical error).
    halo_width : float, optional
        Base halo width (Gaussian sigma) in metres; default 4 % of the area's width.
    known_fraction : float
        Share of deposits flagged ``known`` (the rest stay hidden for validation).
    n_barren : int
        Barren look-alike anomalies: the deposits' element signature and strength range over
        halos ``barren_width`` times wider, with no deposit (their centres are
        ``world.barren``). They are drawn from their own random stream, so ``n_barren=0``
        gives the same world as before they existed.
    barren_width : float
        Halo width of a barren anomaly relative to a deposit's (> 1: a broad swell).

    Returns
    -------
    SurveyWorld

    Examples
    --------
    >>> import xprospect as xp
    >>> world = xp.synthetic.survey(seed=1, n_samples=500)
    >>> world.samples.sizes["sample"], world.deposits.sizes["deposit"]
    (500, 6)
    """
    if int(n_barren) < 0 or not float(barren_width) > 0:
        raise DataError(
            f"survey needs n_barren >= 0 and barren_width > 0; got {n_barren!r}, {barren_width!r}"
        )
    rng = np.random.default_rng(seed)
    elements = tuple(elements) if elements is not None else DEFAULT_ELEMENTS
    xmin, ymin, xmax, ymax = bounds
    width = xmax - xmin
    base_width = halo_width if halo_width is not None else 0.04 * width
    x, y = _drainage_sites(rng, n_samples, bounds)
    n_lith = 3
    lith = [_smooth_field(rng, scale=width / s) for s in (2.0, 4.0, 8.0)]
    margin = 0.1 * width
    dep_xy = np.column_stack(
        [
            rng.uniform(xmin + margin, xmax - margin, n_deposits),
            rng.uniform(ymin + margin, ymax - margin, n_deposits),
        ]
    )
    strength = rng.uniform(0.6, 1.0, n_deposits)
    log_bg, halos, units = {}, {}, {}
    for e in elements:
        unit, median, sd, amp, rel = _props(e, rng)
        loads = rng.normal(0, 1, n_lith)
        loads *= sd / np.linalg.norm(loads)
        log_bg[e] = (float(np.log10(median)), loads)
        halos[e] = (amp, rel)
        units[e] = unit
    dep_names = [f"D{i + 1}" for i in range(n_deposits)]
    known = np.zeros(n_deposits, dtype=bool)
    known[rng.permutation(n_deposits)[: round(known_fraction * n_deposits)]] = True
    deposits = xr.Dataset(
        {"strength": ("deposit", strength), "known": ("deposit", known)},
        coords={
            "x": ("deposit", dep_xy[:, 0]),
            "y": ("deposit", dep_xy[:, 1]),
            "deposit_id": ("deposit", np.array(dep_names, dtype=object)),
        },
    )
    deposits = write_crs(deposits, crs)
    world = SurveyWorld(
        samples=xr.Dataset(),
        deposits=deposits,
        crs=crs,
        bounds=tuple(bounds),  # type: ignore[arg-type]
        elements=elements,
        _log_background=log_bg,
        _lith=lith,
        _halo=halos,
        _dep_xy=dep_xy,
        _dep_strength=strength,
        _base_width=base_width,
    )
    if n_barren:
        # their own stream: the rest of the world does not move with n_barren
        brng = np.random.default_rng([seed, 1])
        bxy = np.column_stack(
            [
                brng.uniform(xmin + margin, xmax - margin, int(n_barren)),
                brng.uniform(ymin + margin, ymax - margin, int(n_barren)),
            ]
        )
        world._barren_xy = bxy
        world._barren_strength = brng.uniform(0.6, 1.0, int(n_barren))
        world._barren_width = float(barren_width)
        world.barren = write_crs(
            xr.Dataset(
                {"strength": ("barren", world._barren_strength)},
                coords={"x": ("barren", bxy[:, 0]), "y": ("barren", bxy[:, 1])},
            ),
            crs,
        )
    data = {}
    for e in elements:
        logc = world.log10_truth(x, y, e) + rng.normal(0, noise, x.size)
        data[e] = ("sample", 10**logc, {"units": units[e]})
    samples = xr.Dataset(
        data,
        coords={
            "x": ("sample", x),
            "y": ("sample", y),
            "sample_id": ("sample", np.array([f"S{i:06d}" for i in range(x.size)], dtype=object)),
        },
        attrs={
            "title": f"xprospect synthetic survey (seed={seed})",
            "source": "xprospect.synthetic",
        },
    )
    world.samples = write_crs(samples, crs)
    return world
