"""Desurvey and compositing (``xprospect.io.drillholes``) against a per-hole Python peer.

The issue asks for 1,000 holes x 200 survey stations each, reported as holes/s against a
straightforward per-hole Python implementation of minimum curvature (at least 20x). The peer
(``peer_desurvey`` / ``peer_composite``) loops over holes, stations and composites in Python
with the textbook angle formulas; it is also the oracle the tests compare against.

Run once at full size and print the ratio::

    python asv_bench/benchmarks/drillholes.py
"""

from __future__ import annotations

import bisect
import math
import time
from typing import ClassVar

import numpy as np
import pandas as pd

from xprospect.io.drillholes import composite, desurvey, read_drillholes

N_HOLES = 1000
N_STATIONS = 200
STATION_STEP = 5.0  # m between survey stations (holes 995 m deep)
INTERVAL = 2.5  # m assay intervals
COMPOSITE = 2.0  # m composites
CRS = "EPSG:28350"


# ---- data --------------------------------------------------------------------------------------


def make_tables(n_holes: int = N_HOLES, n_stations: int = N_STATIONS, seed: int = 0):
    """Collar, survey and assay tables of smoothly curving holes (dips -50 to -85)."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"H{i:05d}" for i in range(n_holes)], dtype=object)
    collar = pd.DataFrame(
        {
            "hole_id": ids,
            "x": rng.uniform(500_000, 510_000, n_holes),
            "y": rng.uniform(6_400_000, 6_410_000, n_holes),
            "z": rng.uniform(380, 420, n_holes),
        }
    )
    md = np.arange(n_stations) * STATION_STEP
    f = md / md[-1] if n_stations > 1 else md
    dip0 = rng.uniform(-75, -55, n_holes)[:, None]
    dip = np.clip(dip0 - 10 * f + rng.normal(0, 0.3, (n_holes, n_stations)), -89.5, -45)
    az = (
        rng.uniform(0, 360, n_holes)[:, None] + 25 * f + rng.normal(0, 0.5, (n_holes, n_stations))
    ) % 360
    survey = pd.DataFrame(
        {
            "hole_id": np.repeat(ids, n_stations),
            "depth": np.tile(md, n_holes),
            "dip": dip.ravel(),
            "azimuth": az.ravel(),
        }
    )
    end = md[-1]
    edges = np.arange(0.0, end + 1e-9, INTERVAL)
    fr, to = edges[:-1], edges[1:]
    n_int = fr.size
    assay = pd.DataFrame(
        {
            "hole_id": np.repeat(ids, n_int),
            "from": np.tile(fr, n_holes),
            "to": np.tile(to, n_holes),
            "Cu_ppm": rng.lognormal(4, 1, n_holes * n_int),
            "Ni_ppm": rng.lognormal(5, 1, n_holes * n_int),
        }
    )
    return collar, survey, assay


def make_holes(n_holes: int = N_HOLES, n_stations: int = N_STATIONS, seed: int = 0):
    """The tables read into :class:`~xprospect.io.Drillholes` (ingest is not timed)."""
    collar, survey, assay = make_tables(n_holes, n_stations, seed)
    return read_drillholes(
        collar, survey, assay, crs=CRS, length_unit="m", dip_convention="negative-down"
    )


# ---- the peer: per-hole Python minimum curvature -----------------------------------------------


def _min_curv_step(md1, inc1, az1, md2, inc2, az2):
    """Textbook minimum-curvature increment (dE, dN, dTVD) between two stations (radians)."""
    cb = math.cos(inc2 - inc1) - math.sin(inc1) * math.sin(inc2) * (1 - math.cos(az2 - az1))
    b = math.acos(max(-1.0, min(1.0, cb)))
    rf = 1.0 if b < 1e-9 else 2.0 / b * math.tan(b / 2)
    h = (md2 - md1) / 2 * rf
    de = h * (math.sin(inc1) * math.sin(az1) + math.sin(inc2) * math.sin(az2))
    dn = h * (math.sin(inc1) * math.cos(az1) + math.sin(inc2) * math.cos(az2))
    dv = h * (math.cos(inc1) + math.cos(inc2))
    return de, dn, dv


def _unit(inc, az):
    return (math.sin(inc) * math.sin(az), math.sin(inc) * math.cos(az), math.cos(inc))


def peer_hole(collar_xyz, md, dip, az):
    """Station positions of one hole; dip negative down, degrees. Returns a list of tuples."""
    inc = [math.radians(90.0 + d) for d in dip]
    azr = [math.radians(a) for a in az]
    x, y, z = collar_xyz
    out = [(x, y, z)]
    for i in range(1, len(md)):
        de, dn, dv = _min_curv_step(md[i - 1], inc[i - 1], azr[i - 1], md[i], inc[i], azr[i])
        x, y, z = x + de, y + dn, z - dv
        out.append((x, y, z))
    return {"md": list(md), "inc": inc, "az": azr, "pos": out}


def peer_position(hole, depth):
    """Position at ``depth`` on the minimum-curvature arc (straight past the last station)."""
    md, inc, az, pos = hole["md"], hole["inc"], hole["az"], hole["pos"]
    i = max(0, bisect.bisect_right(md, depth) - 1)
    if i == len(md) - 1:
        t = _unit(inc[i], az[i])
        s = depth - md[i]
        return (pos[i][0] + s * t[0], pos[i][1] + s * t[1], pos[i][2] - s * t[2])
    t1, t2 = _unit(inc[i], az[i]), _unit(inc[i + 1], az[i + 1])
    cb = sum(a * b for a, b in zip(t1, t2, strict=True))
    b = math.acos(max(-1.0, min(1.0, cb)))
    f = (depth - md[i]) / (md[i + 1] - md[i])
    if b < 1e-9:
        t = t1
    else:
        w1, w2 = math.sin((1 - f) * b) / math.sin(b), math.sin(f * b) / math.sin(b)
        t = tuple(w1 * a + w2 * c for a, c in zip(t1, t2, strict=True))
    fb = f * b
    rf = 1.0 if fb < 1e-9 else 2.0 / fb * math.tan(fb / 2)
    h = (depth - md[i]) / 2 * rf
    return (
        pos[i][0] + h * (t1[0] + t[0]),
        pos[i][1] + h * (t1[1] + t[1]),
        pos[i][2] - h * (t1[2] + t[2]),
    )


def _per_hole(collar, survey):
    holes = {}
    sv = {h: g for h, g in survey.groupby("hole_id", sort=False)}
    for h, x, y, z in collar[["hole_id", "x", "y", "z"]].itertuples(index=False):
        g = sv[h]
        holes[h] = peer_hole(
            (x, y, z), g["depth"].tolist(), g["dip"].tolist(), g["azimuth"].tolist()
        )
    return holes


def peer_desurvey(collar, survey, assay):
    """Mid-point positions of every assay interval, one hole and one interval at a time."""
    holes = _per_hole(collar, survey)
    out = []
    for h, fr, to in assay[["hole_id", "from", "to"]].itertuples(index=False):
        out.append(peer_position(holes[h], 0.5 * (fr + to)))
    return np.asarray(out)


def peer_composite(collar, survey, assay, length=COMPOSITE, elements=("Cu_ppm", "Ni_ppm")):
    """Per-hole compositing from the top of each hole's (gap-free) intervals, then positions."""
    holes = _per_hole(collar, survey)
    rows = []
    for h, g in assay.groupby("hole_id", sort=False):
        fr, to = g["from"].to_numpy(), g["to"].to_numpy()
        vals = g[list(elements)].to_numpy()
        top, bottom = fr[0], to[-1]
        c0 = top
        while c0 < bottom - 1e-9:
            c1 = min(c0 + length, bottom)
            ov = np.clip(np.minimum(to, c1) - np.maximum(fr, c0), 0, None)
            w = ov.sum()
            v = (vals * ov[:, None]).sum(axis=0) / w
            rows.append((*peer_position(holes[h], 0.5 * (c0 + c1)), *v))
            c0 = c1
    return np.asarray(rows)


# ---- benchmarks --------------------------------------------------------------------------------


class Desurvey:
    """Desurvey + composite of 1,000 holes x 200 stations: xprospect vs the per-hole peer."""

    params = ([N_HOLES],)
    param_names: ClassVar[list[str]] = ["n_holes"]
    timeout = 600
    n_stations = N_STATIONS

    def setup(self, n_holes):
        self.tables = make_tables(n_holes, self.n_stations)
        self.holes = read_drillholes(
            *self.tables, crs=CRS, length_unit="m", dip_convention="negative-down"
        )
        composite(self.holes, length=COMPOSITE)  # compile the kernels

    def time_desurvey_xprospect(self, n_holes):
        desurvey(self.holes)

    def time_composite_xprospect(self, n_holes):
        composite(self.holes, length=COMPOSITE, min_coverage=0.0)

    def time_desurvey_peer(self, n_holes):
        peer_desurvey(*self.tables)

    def time_composite_peer(self, n_holes):
        peer_composite(*self.tables)

    def peakmem_composite_xprospect(self, n_holes):
        composite(self.holes, length=COMPOSITE, min_coverage=0.0)


def main(n_holes: int = N_HOLES, repeat: int = 3) -> dict[str, float]:
    """Time both sides once at full size (best of ``repeat`` for xprospect) and print holes/s."""
    bench = Desurvey()
    bench.setup(n_holes)
    res = {}
    for name, fn, rep in [
        (
            "xprospect desurvey+composite",
            lambda: (
                bench.time_desurvey_xprospect(n_holes),
                bench.time_composite_xprospect(n_holes),
            ),
            repeat,
        ),
        (
            "peer desurvey+composite",
            lambda: (bench.time_desurvey_peer(n_holes), bench.time_composite_peer(n_holes)),
            1,
        ),
    ]:
        best = math.inf
        for _ in range(rep):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        res[name] = n_holes / best
        print(f"{name}: {best:.3f} s, {n_holes / best:,.0f} holes/s")
    ratio = res["xprospect desurvey+composite"] / res["peer desurvey+composite"]
    print(f"ratio: {ratio:.1f}x")
    res["ratio"] = ratio
    return res


if __name__ == "__main__":
    main()
