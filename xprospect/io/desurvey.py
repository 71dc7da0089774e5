"""Desurvey and composite drillholes: intervals along holes into 3-D samples.

:func:`desurvey` turns the intervals of :class:`~xprospect.io.drillholes.Drillholes` into a 3-D
sample Dataset (dim ``sample``, coordinates ``x``, ``y``, ``z`` at interval mid-points) that
:func:`xprospect.grid_idw` grids onto :func:`xprospect.make_voxels`; :func:`composite` makes
fixed-length, length-weighted composites first (of drillholes or of a desurveyed Dataset).
The numba kernels are in :mod:`xprospect.io._desurvey_kernels`; the hot path has no per-hole
Python loop.

Geometry: x east, y north, z elevation (up), azimuth in degrees clockwise from north, dip in
degrees from horizontal, negative downwards. Depths along the hole are in metres; positions
are in the CRS's units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect._dims import SAMPLE_DIM, write_crs
from xprospect._json import dumps
from xprospect.exceptions import DataError
from xprospect.io import _desurvey_kernels as _k
from xprospect.io._columns import check_choice
from xprospect.io.samples import REPORT_ATTR

if TYPE_CHECKING:  # the container only types arguments here; reading imports this module
    from xprospect.io.drillholes import Drillholes

__all__ = ["composite", "desurvey", "desurvey_points", "directions", "hole_codes"]

# Tolerance (m) for touching intervals, end-of-hole checks and duplicate depths.
TOL = 1e-6
# Coordinates a desurveyed interval Dataset carries (besides label columns).
_GEOMETRY_COORDS = (
    "x",
    "y",
    "z",
    "x_from",
    "y_from",
    "z_from",
    "x_to",
    "y_to",
    "z_to",
    "hole_id",
    "depth_from",
    "depth_to",
    "length",
    "spatial_ref",
)


def hole_codes(ids: pd.Series, order: np.ndarray) -> np.ndarray:
    """Index of each hole id in the sorted collar ids ``order`` (every id must be there)."""
    uniq, inv = np.unique(np.asarray(ids, dtype=object).astype(str), return_inverse=True)
    pos = np.searchsorted(order.astype(str), uniq)
    return pos[inv].astype(np.int64)


def directions(dip: np.ndarray, az: np.ndarray) -> np.ndarray:
    """Return unit vectors (east, north, up) from dip (negative down) and azimuth, in degrees."""
    d, a = np.radians(dip), np.radians(az)
    return np.column_stack([np.cos(d) * np.sin(a), np.cos(d) * np.cos(a), np.sin(d)])


# ----------------------------------------------------------------------------- desurvey


def _is_drillholes(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("collar", "survey", "assay", "element_attrs"))


def _stations(holes: Drillholes):
    """Station arrays grouped by hole code (every hole has >= 1 station)."""
    sv = holes.survey
    code = sv["hole"].to_numpy(np.int64)
    idx = np.argsort(code, kind="stable")
    counts = np.bincount(code, minlength=len(holes.collar))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    md = np.ascontiguousarray(sv["depth"].to_numpy("float64")[idx])
    t = np.ascontiguousarray(directions(sv["dip"].to_numpy()[idx], sv["azimuth"].to_numpy()[idx]))
    return offsets, md, t


def _method_code(method: str) -> int:
    if method not in _k.METHODS:
        raise DataError(f"method must be one of {list(_k.METHODS)}; got {method!r}")
    return _k.METHODS[method]


def desurvey_points(
    holes: Drillholes,
    hole_id: Sequence[str] | np.ndarray,
    depth: np.ndarray,
    *,
    method: str = "minimum_curvature",
) -> np.ndarray:
    """Positions (x, y, z in CRS units) at measured depths (m) along holes.

    Parameters
    ----------
    holes : Drillholes
        The holes, surveyed.
    hole_id : array of str
        Hole of each query.
    depth : array of float
        Measured depth along the hole in metres.
    method : {"minimum_curvature", "tangent", "balanced_tangent"}
        Desurvey method (see :func:`desurvey`).

    Returns
    -------
    numpy.ndarray
        (n, 3) positions: x, y (CRS units) and z elevation.
    """
    order = holes.collar["hole_id"].to_numpy(dtype=object).astype(str)
    ids = np.asarray(hole_id, dtype=object).astype(str)
    known = np.isin(ids, order)
    if not known.all():
        raise DataError(f"hole {ids[~known][0]!r} is not among the drillholes")
    return _positions(holes, hole_codes(pd.Series(ids), order), depth, method)


def _positions(holes: Drillholes, code: np.ndarray, depth: np.ndarray, method: str) -> np.ndarray:
    m = _method_code(method)
    offsets, md, t = _stations(holes)
    spos = np.empty((md.size, 3))
    _k.station_positions(offsets, md, t, m, spos)
    q = np.ascontiguousarray(np.asarray(depth, dtype="float64"))
    out = np.empty((q.size, 3))
    _k.positions_at(offsets, md, t, spos, np.ascontiguousarray(code, dtype=np.int64), q, m, out)
    scale = 1.0 / holes.report["crs_unit_m"]
    collar = holes.collar[["x", "y", "z"]].to_numpy("float64")
    return collar[code] + out * scale


def _interval_table(holes: Drillholes, table: str | None) -> tuple[pd.DataFrame, str]:
    if table is None:
        table = "assay" if holes.assay is not None else "lithology"
    check_choice(table, ("assay", "lithology"), "table")
    df = holes.assay if table == "assay" else holes.lithology
    if df is None:
        raise DataError(f"these drillholes have no {table} table to desurvey")
    return df, table


def _overlap_pairs(a_h, a_from, a_to, b_h, b_from, b_to, stride):
    """Pairs (i in a, j in b, overlap length) of intervals in the same hole.

    ``b`` must be sorted by (hole, from) and free of overlaps; holes are integer codes. Every
    (hole, depth) maps onto one line (``code * stride + depth``) so one ``searchsorted``
    serves all holes at once.
    """
    ga0, ga1 = a_h * stride + a_from, a_h * stride + a_to
    gb0, gb1 = b_h * stride + b_from, b_h * stride + b_to
    i0 = np.searchsorted(gb1, ga0, side="right")
    i1 = np.searchsorted(gb0, ga1, side="left")
    n = np.maximum(i1 - i0, 0)
    ia = np.repeat(np.arange(a_h.size), n)
    start = np.repeat(i0 - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
    jb = start + np.arange(ia.size)
    ov = np.minimum(ga1[ia], gb1[jb]) - np.maximum(ga0[ia], gb0[jb])
    keep = ov > 0
    return ia[keep], jb[keep], ov[keep]


def _majority(
    ia: np.ndarray,
    codes: np.ndarray,
    ov: np.ndarray,
    n: int,
    categories: np.ndarray,
    jb: np.ndarray,
) -> np.ndarray:
    """Label of largest total overlap per ``a`` interval ("" where none overlaps).

    Ties go to the label met first down the hole (``jb`` is the depth order).
    """
    out = np.full(n, "", dtype=object)
    ok = codes >= 0
    if not ok.any():
        return out
    df = pd.DataFrame({"a": ia[ok], "c": codes[ok], "w": ov[ok], "j": jb[ok]})
    s = df.groupby(["a", "c"], sort=True).agg(w=("w", "sum"), j=("j", "min")).reset_index()
    s = s.sort_values(["a", "w", "j"], ascending=[True, False, True], kind="stable")
    first = s.drop_duplicates("a", keep="first")
    out[first["a"].to_numpy()] = categories[first["c"].to_numpy()]
    return out


def _stride(*depth_arrays: np.ndarray) -> float:
    m = max((float(np.max(d)) for d in depth_arrays if d.size), default=0.0)
    return 2.0 * m + 10.0


def _carry_labels(
    holes: Drillholes, codes_: np.ndarray, fr: np.ndarray, to: np.ndarray
) -> dict[str, np.ndarray]:
    """Majority-by-length lithology labels for intervals (hole codes in ``order``)."""
    lith = holes.lithology
    if lith is None:
        return {}
    lh = lith["hole"].to_numpy(np.int64)
    lf, lt = lith["from"].to_numpy("float64"), lith["to"].to_numpy("float64")
    stride = _stride(to, lt)
    ia, jb, ov = _overlap_pairs(codes_, fr, to, lh, lf, lt, stride)
    out = {}
    for c in holes.labels:
        cat = pd.Categorical(lith[c].to_numpy(dtype=object))
        codes = np.asarray(cat.codes)[jb]
        codes = np.where(lith[c].to_numpy(dtype=object)[jb] == "", -1, codes)
        out[c] = _majority(ia, codes, ov, fr.size, np.asarray(cat.categories, dtype=object), jb)
    return out


def _samples_dataset(
    holes: Drillholes,
    code: np.ndarray,
    fr: np.ndarray,
    to: np.ndarray,
    values: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    method: str,
    extra_attrs: Mapping[str, Any],
) -> xr.Dataset:
    n = fr.size
    q_h = np.concatenate([code, code, code])
    q_d = np.concatenate([fr, to, 0.5 * (fr + to)])
    xyz = _positions(holes, q_h, q_d, method)
    hole = holes.collar["hole_id"].to_numpy(dtype=object).astype(str)[code]
    p_from, p_to, p_mid = xyz[:n], xyz[n : 2 * n], xyz[2 * n :]
    coords: dict[str, Any] = {
        "x": (SAMPLE_DIM, p_mid[:, 0]),
        "y": (SAMPLE_DIM, p_mid[:, 1]),
        "z": (SAMPLE_DIM, p_mid[:, 2]),
        "hole_id": (SAMPLE_DIM, hole),
        "depth_from": (SAMPLE_DIM, fr, {"units": "m"}),
        "depth_to": (SAMPLE_DIM, to, {"units": "m"}),
        "length": (SAMPLE_DIM, to - fr, {"units": "m"}),
    }
    for i, ax in enumerate("xyz"):
        coords[f"{ax}_from"] = (SAMPLE_DIM, p_from[:, i])
        coords[f"{ax}_to"] = (SAMPLE_DIM, p_to[:, i])
    for c, v in labels.items():
        name = c if c not in coords else f"{c}_"
        coords[name] = (SAMPLE_DIM, np.asarray(v, dtype=object).astype(str))
    data = {}
    for name, v in values.items():
        data[name] = xr.Variable(
            SAMPLE_DIM, np.asarray(v, dtype="float64"), dict(holes.element_attrs.get(name, {}))
        )
    ds = xr.Dataset(data, coords=coords)
    ds.attrs[REPORT_ATTR] = dumps(holes.report, nonfinite="keep")
    ds.attrs["desurvey_method"] = method
    ds.attrs.update(extra_attrs)
    return write_crs(ds, holes.crs)


def desurvey(
    holes: Drillholes, *, method: str = "minimum_curvature", table: str | None = None
) -> xr.Dataset:
    """Desurvey drillhole intervals into a 3-D sample Dataset.

    Parameters
    ----------
    holes : Drillholes
        From :func:`read_drillholes`.
    method : {"minimum_curvature", "tangent", "balanced_tangent"}
        ``minimum_curvature`` (default) joins stations by circular arcs (positions between
        stations lie on the arc); ``tangent`` holds each station's direction down to the next
        station; ``balanced_tangent`` runs half of each segment along either end's direction.
        Below the last station every method continues straight.
    table : {"assay", "lithology"}, optional
        Intervals to desurvey; default the assay table (the lithology table if there is none).

    Returns
    -------
    xarray.Dataset
        Dim ``sample`` (one per interval, sorted by hole and depth); coordinates ``x``, ``y``,
        ``z`` (interval mid-points; z elevation, up), ``x_from`` ... ``z_to`` (end points),
        ``hole_id``, ``depth_from``, ``depth_to``, ``length`` (m) and every lithology label
        (majority by length over the interval; ``""`` where none); one float64 variable per
        element with its units; the CRS; ``attrs["ingest_report"]``. It is a sample table that
        :func:`xprospect.grid_idw` grids in 3-D.

    Examples
    --------
    >>> import pandas as pd
    >>> from xprospect.io import desurvey, read_drillholes
    >>> collar = pd.DataFrame({"hole_id": ["A"], "x": [0.0], "y": [0.0], "z": [0.0]})
    >>> lith = pd.DataFrame({"hole_id": ["A"], "from": [0.0], "to": [10.0], "rock": ["gabbro"]})
    >>> holes = read_drillholes(collar, lithology=lith, crs="EPSG:28350", length_unit="m")
    >>> ds = desurvey(holes)
    >>> float(ds["z"][0]), str(ds["rock"][0].values)
    (-5.0, 'gabbro')
    """
    df, table = _interval_table(holes, table)
    code = df["hole"].to_numpy(np.int64)
    fr, to = df["from"].to_numpy("float64"), df["to"].to_numpy("float64")
    values = {e: df[e].to_numpy("float64") for e in holes.elements} if table == "assay" else {}
    if table == "assay":
        labels = _carry_labels(holes, code, fr, to)
    else:
        labels = {c: df[c].to_numpy(dtype=object) for c in holes.labels}
    return _samples_dataset(holes, code, fr, to, values, labels, method, {"intervals": table})


# ----------------------------------------------------------------------------- composite


def _composite_intervals(
    h: np.ndarray,
    fr: np.ndarray,
    to: np.ndarray,
    dom: np.ndarray,
    length: float,
    min_coverage: float,
):
    """Composite (hole code, from, to) within runs of touching intervals of one domain.

    Composites start at the top of each run; a residual shorter than ``min_coverage *
    length`` at the bottom of a run is merged into the composite above it (when there is
    one), so no length is lost.
    """
    if not h.size:
        return np.empty(0, np.int64), np.empty(0), np.empty(0)
    brk = np.ones(h.size, dtype=bool)
    brk[1:] = (h[1:] != h[:-1]) | (fr[1:] > to[:-1] + TOL) | (dom[1:] != dom[:-1])
    start = np.flatnonzero(brk)
    top = fr[start]
    bottom = np.maximum.reduceat(to, start)
    run_len = bottom - top
    n_full = np.floor(run_len / length + 1e-9).astype(np.int64)
    resid = run_len - n_full * length
    resid = np.where(resid < 1e-9 * length, 0.0, resid)
    own = (resid > 0) & ((resid >= min_coverage * length) | (n_full == 0))
    n = n_full + own.astype(np.int64)
    run = np.repeat(np.arange(start.size), n)
    k = np.arange(run.size) - np.repeat(np.concatenate([[0], np.cumsum(n)[:-1]]), n)
    c_from = top[run] + k * length
    c_to = np.minimum(c_from + length, bottom[run])
    last = k == n[run] - 1
    c_to = np.where(last, bottom[run], c_to)  # merged residuals extend the last composite
    return h[start][run], c_from, c_to


def composite(
    source: Drillholes | xr.Dataset,
    *,
    length: float = 2.0,
    by: str | None = None,
    min_coverage: float = 0.5,
    method: str = "minimum_curvature",
    dropna: bool = True,
) -> xr.Dataset:
    """Fixed-length, length-weighted composites within holes, as 3-D samples.

    Parameters
    ----------
    source : Drillholes or xarray.Dataset
        Drillholes (composites of the assay table, positioned by desurveying) or an interval
        Dataset from :func:`desurvey` (positions of composite ends are interpolated linearly
        between the interval end points it carries).
    length : float
        Composite length in metres.
    by : str, optional
        A label (e.g. the lithology column) whose changes end a composite: composites never
        straddle a domain boundary. Each assay interval belongs to the domain covering most of
        it.
    min_coverage : float
        In [0, 1]. A residual at the bottom of a run shorter than ``min_coverage * length`` is
        merged into the composite above; an element whose analysed length in a composite is
        below ``min_coverage`` times the composite's length is NaN there.
    method : str
        Desurvey method for :class:`Drillholes` input (see :func:`desurvey`).
    dropna : bool
        Leave out composites where every element is NaN (e.g. long unsampled runs); they
        hold no content, so conservation is unaffected. Counted as ``n_empty_dropped``.

    Returns
    -------
    xarray.Dataset
        Same layout as :func:`desurvey`: one sample per composite; element values
        ``sum(v_i l_i) / sum(l_i)`` over the analysed overlap lengths ``l_i``; labels by
        majority of length; ``attrs["composite_report"]`` (JSON) counts what was done.

    Notes
    -----
    Runs are maximal sequences of touching intervals (gaps end a run, so nothing is averaged
    across a missing interval) within one hole and, with ``by``, one domain. Composites start
    at the top of each run. Length-weighted content ``sum(v l)`` per hole is conserved by
    every composite with a value (exactly so with ``min_coverage=0``).

    Examples
    --------
    >>> import pandas as pd
    >>> from xprospect.io import composite, read_drillholes
    >>> collar = pd.DataFrame({"hole_id": ["A"], "x": [0.0], "y": [0.0], "z": [0.0]})
    >>> assay = pd.DataFrame({"hole_id": ["A"] * 3, "from": [0.0, 1.0, 3.0],
    ...                       "to": [1.0, 3.0, 4.0], "Cu_pct": [1.0, 2.0, 4.0]})
    >>> holes = read_drillholes(collar, assay=assay, crs="EPSG:28350", length_unit="m")
    >>> comp = composite(holes, length=2.0)
    >>> comp["Cu"].values.tolist(), comp["z"].values.tolist()
    ([1.5, 3.0], [-1.0, -3.0])
    """
    length = float(length)
    if not math.isfinite(length) or length <= 0:
        raise DataError(f"length must be a positive number of metres; got {length!r}")
    if not 0.0 <= float(min_coverage) <= 1.0:
        raise DataError(f"min_coverage must lie in [0, 1]; got {min_coverage!r}")
    if not isinstance(source, xr.Dataset) and _is_drillholes(source):
        df, _ = _interval_table(source, "assay")
        h = df["hole"].to_numpy(np.int64)
        fr, to = df["from"].to_numpy("float64"), df["to"].to_numpy("float64")
        elements = source.elements
        vals = np.column_stack([df[e].to_numpy("float64") for e in elements])
        piece_labels = _carry_labels(source, h, fr, to) if by is not None else {}
        available = source.labels
    elif isinstance(source, xr.Dataset):
        need = [c for c in ("hole_id", "depth_from", "depth_to") if c not in source.coords]
        if need or SAMPLE_DIM not in source.dims:
            raise DataError(
                f"composite() needs drillholes or an interval Dataset from desurvey() "
                f"(dim 'sample', coords hole_id, depth_from, depth_to); missing {need}"
            )
        hole_txt = source["hole_id"].values.astype(object)
        order = list(pd.unique(hole_txt))
        h = pd.Categorical(hole_txt, categories=order).codes.astype(np.int64)
        fr = np.asarray(source["depth_from"].values, dtype="float64")
        to = np.asarray(source["depth_to"].values, dtype="float64")
        srt = np.lexsort((fr, h))
        h, fr, to = h[srt], fr[srt], to[srt]
        elements = [
            str(n)
            for n, v in source.data_vars.items()
            if v.dims == (SAMPLE_DIM,) and np.issubdtype(v.dtype, np.number)
        ]
        vals = (
            np.column_stack([np.asarray(source[e].values, dtype="float64")[srt] for e in elements])
            if elements
            else np.empty((h.size, 0))
        )
        available = [
            str(c)
            for c, v in source.coords.items()
            if c not in _GEOMETRY_COORDS and v.dims == (SAMPLE_DIM,) and v.dtype.kind in "OUS"
        ]
        piece_labels = {c: source[c].values.astype(object)[srt] for c in available}
        ends = np.column_stack(
            [
                np.asarray(source[f"{a}_{s}"].values, dtype="float64")[srt]
                for s in ("from", "to")
                for a in "xyz"
            ]
        )
        overl = fr[1:] < to[:-1] - TOL
        if (overl & (h[1:] == h[:-1])).any():
            i = int(np.flatnonzero(overl & (h[1:] == h[:-1]))[0]) + 1
            raise DataError(
                f"intervals overlap in hole {order[h[i]]!r} at depth "
                f"{float(fr[i])!r} m; composite needs non-overlapping intervals"
            )
    else:
        raise DataError(
            f"composite() takes Drillholes or a desurveyed Dataset; got {type(source).__name__}"
        )
    if by is not None and by not in available:
        raise DataError(f"by={by!r} is not a label of these intervals; labels: {available}")
    dom = np.zeros(h.size, np.int64)
    if by is not None:
        dom = np.asarray(pd.Categorical(piece_labels[by]).codes, dtype=np.int64)

    ch, cf, ct = _composite_intervals(h, fr, to, dom, length, float(min_coverage))
    stride = _stride(to, ct)
    ia, jb, ov = _overlap_pairs(ch, cf, ct, h, fr, to, stride)
    n = ch.size
    values: dict[str, np.ndarray] = {}
    n_low = {}
    clen = ct - cf
    for i, e in enumerate(elements):
        v = vals[jb, i]
        ok = np.isfinite(v)
        tot = np.bincount(ia[ok], weights=v[ok] * ov[ok], minlength=n)
        cov = np.bincount(ia[ok], weights=ov[ok], minlength=n)
        out = np.full(n, np.nan)
        good = (cov > 0) & (cov >= float(min_coverage) * clen - TOL)
        out[good] = tot[good] / cov[good]
        values[e] = out
        n_low[e] = int(((cov > 0) & ~good).sum())
    n_empty = 0
    if dropna and values:
        keep = np.zeros(n, dtype=bool)
        for v in values.values():
            keep |= np.isfinite(v)
        n_empty = int((~keep).sum())
        ch, cf, ct, clen = ch[keep], cf[keep], ct[keep], clen[keep]
        values = {e: v[keep] for e, v in values.items()}
        ia_keep = keep[ia]
        remap = np.cumsum(keep) - 1
        ia, jb, ov = remap[ia[ia_keep]], jb[ia_keep], ov[ia_keep]
        n = ch.size
    rep = {
        "length": length,
        "by": by,
        "min_coverage": float(min_coverage),
        "n_intervals": int(h.size),
        "n_composites": int(n),
        "n_merged_residuals": int(np.sum(clen > length * (1 + 1e-9))),
        "n_short": int(np.sum(clen < length * (1 - 1e-9))),
        "nan_by_coverage": n_low,
        "n_empty_dropped": n_empty,
    }
    if not isinstance(source, xr.Dataset):
        labels = _carry_labels(source, ch, cf, ct)
        ds = _samples_dataset(
            source,
            ch,
            cf,
            ct,
            values,
            labels,
            method,
            {"composite_report": dumps(rep, nonfinite="keep")},
        )
        return ds
    labels = {}
    for c in available:
        cat = pd.Categorical(piece_labels[c])
        codes = np.asarray(cat.codes)[jb]
        labels[c] = _majority(ia, codes, ov, n, np.asarray(cat.categories, dtype=object), jb)
    return _composite_from_dataset(
        source, order, h, fr, to, ends, ch, cf, ct, values, labels, rep, stride
    )


def _interp_positions(h, fr, to, ends, qh, qd, stride, side="right"):
    """Linear interpolation of positions between interval end points (same hole).

    ``side="left"`` picks, at a depth where two intervals touch, the upper one (for the
    bottom of a composite).
    """
    g0, gq = h * stride + fr, qh * stride + qd
    j = np.clip(np.searchsorted(g0, gq, side=side) - 1, 0, h.size - 1)
    f = np.clip((qd - fr[j]) / (to[j] - fr[j]), 0.0, 1.0)[:, None]
    return ends[j, :3] + f * (ends[j, 3:] - ends[j, :3])


def _composite_from_dataset(
    source, order, h, fr, to, ends, ch, cf, ct, values, labels, rep, stride
) -> xr.Dataset:
    pf = _interp_positions(h, fr, to, ends, ch, cf, stride)
    pt = _interp_positions(h, fr, to, ends, ch, ct, stride, side="left")
    pm = _interp_positions(h, fr, to, ends, ch, 0.5 * (cf + ct), stride)
    coords: dict[str, Any] = {
        "x": (SAMPLE_DIM, pm[:, 0]),
        "y": (SAMPLE_DIM, pm[:, 1]),
        "z": (SAMPLE_DIM, pm[:, 2]),
        "hole_id": (SAMPLE_DIM, np.asarray(order, dtype=object)[ch].astype(str)),
        "depth_from": (SAMPLE_DIM, cf, {"units": "m"}),
        "depth_to": (SAMPLE_DIM, ct, {"units": "m"}),
        "length": (SAMPLE_DIM, ct - cf, {"units": "m"}),
    }
    for i, ax in enumerate("xyz"):
        coords[f"{ax}_from"] = (SAMPLE_DIM, pf[:, i])
        coords[f"{ax}_to"] = (SAMPLE_DIM, pt[:, i])
    for c, v in labels.items():
        coords[c] = (SAMPLE_DIM, np.asarray(v, dtype=object).astype(str))
    data = {e: xr.Variable(SAMPLE_DIM, v, dict(source[e].attrs)) for e, v in values.items()}
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(source.attrs)
    ds.attrs["composite_report"] = dumps(rep, nonfinite="keep")
    crs = source.rio.crs
    return write_crs(ds, crs) if crs is not None else ds
