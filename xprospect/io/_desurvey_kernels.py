"""Numba kernels for desurveying drillholes: plain loops over all holes, preallocated ``out``.

Stations and queries are flat arrays over every hole, grouped by hole; ``offsets`` (length
``n_holes + 1``) delimit each hole's stations. Directions are unit vectors (east, north, up).
Methods: 0 minimum curvature, 1 tangent (the upper station's direction holds down to the
next station, the mining convention "a survey applies below it"), 2 balanced tangent (half
of each segment along either end's direction).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["METHODS", "positions_at", "station_positions"]

METHODS = {"minimum_curvature": 0, "tangent": 1, "balanced_tangent": 2}

# Below this dogleg (radians) the ratio factor uses its series (2/b tan(b/2) = 1 + b^2/12 + ..).
_SMALL = 1e-4


def _dogleg(t1x, t1y, t1z, t2x, t2y, t2z):
    # 2 asin(|t2 - t1| / 2): accurate for small angles, unlike acos of the dot product
    dx, dy, dz = t2x - t1x, t2y - t1y, t2z - t1z
    c = 0.5 * math.sqrt(dx * dx + dy * dy + dz * dz)
    c = min(c, 1.0)
    return 2.0 * math.asin(c)


def _ratio_factor(b):
    if b < _SMALL:
        return 1.0 + b * b / 12.0 + b**4 / 120.0
    return 2.0 / b * math.tan(0.5 * b)


def _segment(method, md1, md2, t1, t2, m, out3):
    """Offset from the station at ``md1`` to measured depth ``m`` in [md1, md2] (or beyond)."""
    t1x, t1y, t1z = t1[0], t1[1], t1[2]
    t2x, t2y, t2z = t2[0], t2[1], t2[2]
    seg = md2 - md1
    s = m - md1
    if seg <= 0.0:
        out3[0] = s * t1x
        out3[1] = s * t1y
        out3[2] = s * t1z
    elif method == 0:
        b = _dogleg(t1x, t1y, t1z, t2x, t2y, t2z)
        f = s / seg
        if b < _SMALL:
            # slerp degenerates to linear interpolation of the directions
            tx = (1.0 - f) * t1x + f * t2x
            ty = (1.0 - f) * t1y + f * t2y
            tz = (1.0 - f) * t1z + f * t2z
            nrm = math.sqrt(tx * tx + ty * ty + tz * tz)
            tx, ty, tz = tx / nrm, ty / nrm, tz / nrm
        else:
            sb = math.sin(b)
            w1 = math.sin((1.0 - f) * b) / sb
            w2 = math.sin(f * b) / sb
            tx = w1 * t1x + w2 * t2x
            ty = w1 * t1y + w2 * t2y
            tz = w1 * t1z + w2 * t2z
        rf = _ratio_factor(f * b)
        h = 0.5 * s * rf
        out3[0] = h * (t1x + tx)
        out3[1] = h * (t1y + ty)
        out3[2] = h * (t1z + tz)
    elif method == 1:
        out3[0] = s * t1x
        out3[1] = s * t1y
        out3[2] = s * t1z
    else:
        half = 0.5 * seg
        a = min(s, half)
        r = max(s - half, 0.0)
        out3[0] = a * t1x + r * t2x
        out3[1] = a * t1y + r * t2y
        out3[2] = a * t1z + r * t2z


def _station_positions(offsets, md, t, method, out):
    """Offsets from the collar of every station (first station of each hole at ``md`` 0)."""
    d = np.empty(3)
    for h in range(offsets.size - 1):
        a, b = offsets[h], offsets[h + 1]
        if b <= a:
            continue
        out[a, 0] = md[a] * t[a, 0]
        out[a, 1] = md[a] * t[a, 1]
        out[a, 2] = md[a] * t[a, 2]
        for i in range(a + 1, b):
            _segment(method, md[i - 1], md[i], t[i - 1], t[i], md[i], d)
            out[i, 0] = out[i - 1, 0] + d[0]
            out[i, 1] = out[i - 1, 1] + d[1]
            out[i, 2] = out[i - 1, 2] + d[2]


def _positions_at(offsets, md, t, spos, qhole, qmd, method, out):
    """Offsets from the collar at measured depths ``qmd`` in holes ``qhole``.

    Depths above a hole's first station follow its direction back to the collar line; depths
    below its last station continue straight along the last direction.
    """
    d = np.empty(3)
    for q in range(qmd.size):
        h = qhole[q]
        a, b = offsets[h], offsets[h + 1]
        m = qmd[q]
        # last station with md <= m (binary search), a when m is above every station
        lo, hi = a, b
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if md[mid] <= m:
                lo = mid
            else:
                hi = mid
        i = lo
        if m < md[i] or i == b - 1:
            # above the first station, or at/below the last: a straight line
            s = m - md[i]
            out[q, 0] = spos[i, 0] + s * t[i, 0]
            out[q, 1] = spos[i, 1] + s * t[i, 1]
            out[q, 2] = spos[i, 2] + s * t[i, 2]
            continue
        _segment(method, md[i], md[i + 1], t[i], t[i + 1], m, d)
        out[q, 0] = spos[i, 0] + d[0]
        out[q, 1] = spos[i, 1] + d[1]
        out[q, 2] = spos[i, 2] + d[2]


_jit = nb.njit(nogil=True, cache=True, error_model="numpy")
_dogleg = _jit(_dogleg)
_ratio_factor = _jit(_ratio_factor)
_segment = _jit(_segment)
station_positions = _jit(_station_positions)
positions_at = _jit(_positions_at)
