"""Drillholes: read collar, survey, assay and lithology tables into :class:`Drillholes`.

:func:`read_drillholes` cleans the four tables under stated policies (each recorded in a
JSON-able report, also logged) and returns a :class:`Drillholes`. Turning its intervals into
3-D samples is :mod:`xprospect.io.desurvey`'s work (:func:`~xprospect.io.desurvey.desurvey`,
:func:`~xprospect.io.desurvey.composite`).

Geometry: x east, y north, z elevation (up), azimuth in degrees clockwise from north, dip in
degrees from horizontal, negative downwards (after ingest, whatever the file's convention).
Depths along the hole are kept in metres; positions are in the CRS's units (a CRS in US
survey feet gives positions in feet), and the collar elevation is read in those units too.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import CRS

from xprospect._dims import parse_crs
from xprospect.exceptions import CRSError, DataError, XProspectDeprecationWarning
from xprospect.io._columns import check_choice, is_numeric, norm_name, numbers, text_values
from xprospect.io._table import read_table
from xprospect.io.desurvey import TOL, composite, desurvey, directions, hole_codes
from xprospect.io.samples import (
    _ELEMENTS,
    _TO_PPM,
    _UNIT_ALIASES,
    SENTINEL_POLICY,
    _check_options,
    _clean_column,
    _plan_columns,
)

__all__ = ["Drillholes", "read_drillholes"]

logger = logging.getLogger("xprospect.io")

LENGTH_UNITS = {"m": 1.0, "ft": 0.3048, "ftUS": 1200.0 / 3937.0}
DIP_CONVENTIONS = ("negative-down", "positive-down")
OVERLAP_POLICIES = ("error", "keep-first", "truncate")
DUPLICATE_SURVEY_POLICIES = ("error", "first", "last", "mean")
PAST_END_POLICIES = ("error", "truncate", "drop", "extend")
MISSING_COLLAR_POLICIES = ("error", "drop")
NO_SURVEY_POLICIES = ("vertical", "error")
RISING_POLICIES = ("error", "allow")
# How far (metres) a hole may climb above its collar before it is called rising.
_RISE_TOL = 1.0
_MAX_EXAMPLES = 10

# Column names recognised for each role (compared lower case, spaces and dashes as "_").
_ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "hole_id": ("hole_id", "holeid", "bhid", "dhid", "hole", "hole_name", "holename", "hole_no"),
    "x": ("x", "xcollar", "x_collar", "east", "easting", "e"),
    "y": ("y", "ycollar", "y_collar", "north", "northing", "n"),
    "z": ("z", "zcollar", "z_collar", "rl", "elevation", "elev"),
    "end_depth": ("max_depth", "maxdepth", "eoh", "total_depth", "end_depth", "td"),
    "depth": ("depth", "at", "md", "survey_depth", "distance", "depth_m"),
    "dip": ("dip",),
    "azimuth": ("azimuth", "az", "azi", "bearing"),
    "from": ("from", "depth_from", "from_m", "mfrom", "from_depth", "frm"),
    "to": ("to", "depth_to", "to_m", "mto", "to_depth"),
}
_TABLE_ROLES = {
    "collar": ("hole_id", "x", "y", "z"),
    "survey": ("hole_id", "depth", "dip", "azimuth"),
    "assay": ("hole_id", "from", "to"),
    "lithology": ("hole_id", "from", "to"),
}


# ----------------------------------------------------------------------------- container


@dataclass(frozen=True)
class Drillholes:
    """Cleaned drillhole tables with their CRS and ingest report.

    Made by :func:`read_drillholes`. Tables are tidy DataFrames sorted by hole then depth,
    with depths in metres:

    * ``collar``: ``hole_id``, ``x``, ``y``, ``z`` (CRS units), ``end_depth`` (m; the collar's
      end-of-hole depth where given, else the deepest survey or interval);
    * ``survey``: ``hole_id``, ``depth``, ``dip`` (negative down), ``azimuth``, ``hole``; every
      hole has a station at depth 0;
    * ``assay`` (or None): ``hole_id``, ``hole``, ``from``, ``to`` and one float column per
      element (units in ``element_attrs``);
    * ``lithology`` (or None): ``hole_id``, ``hole``, ``from``, ``to`` and text label columns.

    ``hole`` is the hole's row in ``collar`` (an integer code).

    Attributes
    ----------
    crs : pyproj.CRS
        CRS of the collar coordinates (projected).
    report : dict
        What each ingest policy did (JSON-able); also ``attrs["ingest_report"]`` of every
        Dataset made from these holes.
    element_attrs : dict
        Per element: ``units``, ``source_column``, ``detection_limits``, ``bdl``.
    """

    collar: pd.DataFrame
    survey: pd.DataFrame
    assay: pd.DataFrame | None
    lithology: pd.DataFrame | None
    crs: CRS
    report: dict[str, Any]
    element_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def hole_ids(self) -> list[str]:
        """Hole ids in collar order (sorted)."""
        return self.collar["hole_id"].tolist()

    @property
    def elements(self) -> list[str]:
        """Element columns of the assay table."""
        return list(self.element_attrs)

    @property
    def labels(self) -> list[str]:
        """Label (categorical) columns of the lithology table."""
        if self.lithology is None:
            return []
        return [c for c in self.lithology.columns if c not in ("hole_id", "hole", "from", "to")]

    @property
    def prospect(self) -> _DeprecatedMethods:
        """Return the deprecated ``.prospect`` door; call :func:`xprospect.composite` instead."""
        return _DeprecatedMethods(self, "holes.prospect.")

    def desurvey(
        self, *, method: str = "minimum_curvature", table: str | None = None
    ) -> xr.Dataset:
        """Desurvey (deprecated door); call :func:`xprospect.desurvey` ``(holes, ...)``."""
        return _DeprecatedMethods(self, "holes.").desurvey(method=method, table=table)

    def composite(
        self,
        *,
        length: float = 2.0,
        by: str | None = None,
        min_coverage: float = 0.5,
        method: str = "minimum_curvature",
        dropna: bool = True,
    ) -> xr.Dataset:
        """Composite (deprecated door); call :func:`xprospect.composite` ``(holes, ...)``."""
        return _DeprecatedMethods(self, "holes.").composite(
            length=length, by=by, min_coverage=min_coverage, method=method, dropna=dropna
        )

    def __repr__(self) -> str:
        n_a = 0 if self.assay is None else len(self.assay)
        n_l = 0 if self.lithology is None else len(self.lithology)
        return (
            f"<Drillholes: {len(self.collar)} holes, {len(self.survey)} survey stations, "
            f"{n_a} assay intervals ({len(self.element_attrs)} elements), {n_l} lithology "
            f"intervals, crs={self.crs.to_string()}>"
        )


class _DeprecatedMethods:
    """The old doors to desurvey and composite drillholes, each warning towards the function."""

    def __init__(self, holes: Drillholes, prefix: str) -> None:
        self._holes = holes
        self._prefix = prefix

    def _warn(self, name: str) -> None:
        msg = (
            f"{self._prefix}{name}(...) is deprecated; call xprospect.{name}(holes, ...) "
            "instead (one door per operation)"
        )
        warnings.warn(msg, XProspectDeprecationWarning, stacklevel=3)

    def desurvey(
        self, *, method: str = "minimum_curvature", table: str | None = None
    ) -> xr.Dataset:
        """Warn, then call :func:`xprospect.desurvey`."""
        self._warn("desurvey")
        return desurvey(self._holes, method=method, table=table)

    def composite(
        self,
        *,
        length: float = 2.0,
        by: str | None = None,
        min_coverage: float = 0.5,
        method: str = "minimum_curvature",
        dropna: bool = True,
    ) -> xr.Dataset:
        """Warn, then call :func:`xprospect.composite`."""
        self._warn("composite")
        return composite(
            self._holes,
            length=length,
            by=by,
            min_coverage=min_coverage,
            method=method,
            dropna=dropna,
        )


# ----------------------------------------------------------------------------- reading


def _resolve_roles(
    columns: Sequence[str],
    table: str,
    label: str,
    overrides: Mapping[str, str],
    optional: Iterable[str] = (),
) -> dict[str, str]:
    """Map each role of ``table`` to a column (explicit names first, then known names)."""
    roles = list(_TABLE_ROLES[table]) + list(optional)
    out: dict[str, str] = {}
    normed = {norm_name(c): c for c in columns}
    for role in roles:
        if role in overrides:
            col = overrides[role]
            if col not in columns:
                near = [c for c in columns if norm_name(c) == norm_name(col)]
                hint = f"; did you mean {near[0]!r}?" if near else ""
                msg = (
                    f"column {col!r} (given for {role}) is not in the {table} table "
                    f"{label}{hint}; its columns: {list(columns)}"
                )
                raise DataError(msg)
            out[role] = col
            continue
        hits = [normed[n] for n in _ROLE_NAMES[role] if n in normed]
        if hits:
            out[role] = hits[0]
        elif role not in optional:
            key = "hole_id=" if role == "hole_id" else f"columns={{'{role}': ...}}"
            msg = (
                f"the {table} table {label} has no column for {role!r} (looked for "
                f"{list(_ROLE_NAMES[role])}, any case); name it with {key}; its columns: "
                f"{list(columns)}"
            )
            raise DataError(msg)
    used = [c for c in out.values()]
    if len(set(used)) != len(used):
        raise DataError(f"the {table} table {label}: one column plays two roles: {out}")
    return out


def _read_frame(
    source: Any, table: str, overrides: Mapping[str, str], optional: Iterable[str] = ()
) -> tuple[pd.DataFrame, dict[str, str], str]:
    """Read a table; return the frame (never the caller's object), roles and a label."""
    resolved: list[dict[str, str]] = []
    label = str(source)

    def text_columns(header: list[str]) -> dict[str, Any]:
        roles = _resolve_roles(header, table, label, overrides, optional)
        resolved.append(roles)
        # hole ids stay text ("007" is not 7); lithology labels too
        if table == "lithology":
            return {c: str for c in header if c not in (roles["from"], roles["to"])}
        return {roles["hole_id"]: str}

    read = read_table(
        source,
        what=f"{table} table",
        dtype=text_columns,
        frame_label=f"(DataFrame given as {table}=)",
    )
    roles = (
        resolved[0]
        if resolved
        else _resolve_roles(list(read.frame.columns), table, read.label, overrides, optional)
    )
    return read.frame, roles, read.label


def _hole_ids(frame: pd.DataFrame, col: str, table: str, label: str) -> np.ndarray:
    ids = np.array([s.strip() for s in text_values(frame[col])], dtype=object)
    empty = ids == ""
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        msg = (
            f"the {table} table {label} has {int(empty.sum())} rows without a hole id in "
            f"column {col!r}, first at row {i + 1}"
        )
        raise DataError(msg)
    return ids


def _examples(holes: np.ndarray, depths: np.ndarray | None = None) -> list[Any]:
    if depths is None:
        return [str(h) for h in pd.unique(holes)[:_MAX_EXAMPLES]]
    return [
        {"hole": str(h), "depth_m": round(float(d), 6)}
        for h, d in zip(holes[:_MAX_EXAMPLES], depths[:_MAX_EXAMPLES], strict=True)
    ]


def _missing_collar(
    ids: np.ndarray, known: set[str], table: str, label: str, policy: str, report: dict[str, Any]
) -> np.ndarray:
    """Boolean keep-mask: rows whose hole is in the collar table."""
    ok = np.fromiter((h in known for h in ids), dtype=bool, count=ids.size)
    missing = pd.unique(ids[~ok])
    report["holes_not_in_collar"] = [str(h) for h in missing]
    report["rows_without_collar"] = int((~ok).sum())
    if missing.size:
        if policy == "error":
            msg = (
                f"the {table} table {label} has {missing.size} holes that are not in the "
                f"collar table: {list(missing[:_MAX_EXAMPLES])}; pass missing_collar='drop' "
                "to leave their rows out"
            )
            raise DataError(msg)
        logger.info(
            "%s: dropped %d rows of %d holes not in the collar table: %s",
            label,
            int((~ok).sum()),
            missing.size,
            list(missing[:_MAX_EXAMPLES]),
        )
    return ok


def _read_collar(source, overrides, crs_unit, length_factor) -> tuple[pd.DataFrame, dict, str]:
    frame, roles, label = _read_frame(source, "collar", overrides, optional=("end_depth",))
    ids = _hole_ids(frame, roles["hole_id"], "collar", label)
    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    if dup.any():
        h = ids[dup][0]
        rows = (np.flatnonzero(ids == h) + 1).tolist()
        msg = (
            f"the collar table {label} lists hole {h!r} more than once (rows {rows}); "
            f"{int(pd.Series(ids[dup]).nunique())} holes repeat"
        )
        raise DataError(msg)
    out = pd.DataFrame({"hole_id": ids})
    for role in ("x", "y", "z"):
        out[role] = numbers(frame, roles[role], role, f"the collar table {label}", ids=ids)
    if "end_depth" in roles:
        end = pd.to_numeric(frame[roles["end_depth"]], errors="coerce").to_numpy("float64")
        out["end_depth"] = end * length_factor
    else:
        out["end_depth"] = np.nan
    out = out.sort_values("hole_id", kind="stable").reset_index(drop=True)
    rep = {
        "source": _source_name(source),
        "n_holes": len(out),
        "columns": {k: str(v) for k, v in roles.items()},
    }
    return out, rep, label


def _source_name(source: Any) -> str:
    return "DataFrame" if isinstance(source, pd.DataFrame) else Path(source).name


def _read_survey(
    source,
    overrides,
    known,
    *,
    length_factor,
    dip_convention,
    sentinels,
    duplicate_survey,
    missing_collar,
) -> tuple[pd.DataFrame, dict, str | None]:
    frame, roles, label = _read_frame(source, "survey", overrides)
    rep: dict[str, Any] = {
        "source": _source_name(source),
        "n_rows_read": len(frame),
        "columns": {k: str(v) for k, v in roles.items()},
    }
    ids = _hole_ids(frame, roles["hole_id"], "survey", label)
    where = f"the survey table {label}"
    depth = numbers(frame, roles["depth"], "depth", where, ids=ids)
    sent = np.zeros(depth.size, dtype=bool)
    for s in sentinels:
        sent |= np.isclose(depth, s, rtol=0, atol=1e-6)
    rep["sentinel_depths"] = [float(s) for s in sentinels]
    rep["sentinel_rows_dropped"] = int(sent.sum())
    rep["sentinel_holes"] = _examples(ids[sent])
    keep = ~sent & _missing_collar(ids, known, "survey", label, missing_collar, rep)
    frame, ids, depth = frame[keep], ids[keep], depth[keep]
    if not len(frame):
        raise DataError(
            f"the survey table {label} has no rows left after dropping "
            f"{rep['sentinel_rows_dropped']} sentinel depths and "
            f"{rep['rows_without_collar']} rows without a collar"
        )
    dip = numbers(frame, roles["dip"], "dip", where, ids=ids)
    az = numbers(frame, roles["azimuth"], "azimuth", where, ids=ids)
    neg = depth < 0
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise DataError(
            f"the survey table {label} has {int(neg.sum())} negative depths, first "
            f"{float(depth[i])!r} in hole {ids[i]!r}"
        )
    steep = np.abs(dip) > 90
    if steep.any():
        i = int(np.flatnonzero(steep)[0])
        raise DataError(
            f"the survey table {label} has {int(steep.sum())} dips outside "
            f"[-90, 90] degrees, first {float(dip[i])!r} in hole {ids[i]!r} at depth "
            f"{float(depth[i])!r}"
        )
    inferred = None
    if dip_convention is None:
        if np.all(dip <= 0) and np.any(dip < 0):
            inferred = "negative-down"
        elif np.all(dip >= 0) and np.any(dip > 0):
            inferred = "positive-down"
        else:
            up = np.flatnonzero(dip > 0)
            i = int(up[0]) if up.size else 0
            msg = (
                f"cannot tell the dip convention of the survey table {label}: dips have both "
                f"signs (e.g. {float(dip[i])!r} in hole {ids[i]!r} at depth "
                f"{float(depth[i])!r}) or are all 0; pass dip_convention='negative-down' or "
                "'positive-down'"
            )
            raise DataError(msg)
        dip_convention = inferred
    rep["dip_convention"] = dip_convention
    rep["dip_convention_inferred"] = inferred is not None
    if dip_convention == "positive-down":
        dip = -dip
    wrapped = (az < 0) | (az >= 360)
    rep["azimuths_wrapped"] = int(wrapped.sum())
    az = np.mod(az, 360.0)
    depth = depth * length_factor
    sv = pd.DataFrame({"hole_id": ids, "depth": depth, "dip": dip, "azimuth": az})
    sv = sv.sort_values(["hole_id", "depth"], kind="stable").reset_index(drop=True)
    sv = _duplicate_stations(sv, duplicate_survey, label, rep)
    return sv, rep, inferred


def _duplicate_stations(sv: pd.DataFrame, policy: str, label: str, rep: dict) -> pd.DataFrame:
    key = sv[["hole_id", "depth"]]
    dup = key.duplicated(keep=False).to_numpy()
    rep["duplicate_depth_rows"] = int(dup.sum())
    rep["duplicate_depths"] = _examples(sv["hole_id"].to_numpy()[dup], sv["depth"].to_numpy()[dup])
    rep["duplicate_survey"] = policy
    if not dup.any():
        return sv
    if policy == "error":
        h, d = sv["hole_id"].iloc[np.flatnonzero(dup)[0]], sv["depth"].iloc[np.flatnonzero(dup)[0]]
        msg = (
            f"the survey table {label} has {int(dup.sum())} rows at repeated depths, first "
            f"hole {h!r} at depth {float(d)!r} m; pass duplicate_survey='first', 'last' "
            "or 'mean'"
        )
        raise DataError(msg)
    if policy in ("first", "last"):
        return sv[~key.duplicated(keep=policy).to_numpy()].reset_index(drop=True)
    # mean of the direction vectors (not of the angles: azimuths 359 and 1 average to 0)
    t = directions(sv["dip"].to_numpy(), sv["azimuth"].to_numpy())
    g = sv.assign(tx=t[:, 0], ty=t[:, 1], tz=t[:, 2]).groupby(["hole_id", "depth"], sort=True)
    m = g[["tx", "ty", "tz"]].mean().reset_index()
    v = m[["tx", "ty", "tz"]].to_numpy()
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    dip = np.degrees(np.arcsin(np.clip(v[:, 2], -1, 1)))
    az = np.mod(np.degrees(np.arctan2(v[:, 0], v[:, 1])), 360.0)
    return pd.DataFrame({"hole_id": m["hole_id"], "depth": m["depth"], "dip": dip, "azimuth": az})


def _read_intervals(
    source, table, overrides, known, *, length_factor, overlaps, missing_collar, assay_opts=None
):
    frame, roles, label = _read_frame(source, table, overrides)
    rep: dict[str, Any] = {
        "source": _source_name(source),
        "n_rows_read": len(frame),
        "columns": {k: str(v) for k, v in roles.items()},
    }
    ids_all = _hole_ids(frame, roles["hole_id"], table, label)
    keep = _missing_collar(ids_all, known, table, label, missing_collar, rep)
    ids = ids_all[keep]
    sub = frame[keep]
    where = f"the {table} table {label}"
    fr = numbers(sub, roles["from"], "from depth", where, ids=ids) * length_factor
    to = numbers(sub, roles["to"], "to depth", where, ids=ids) * length_factor
    bad = (to <= fr) | (fr < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = (
            f"the {table} table {label} has {int(bad.sum())} intervals with to <= from or a "
            f"negative depth, first in hole {ids[i]!r} from {float(fr[i] / length_factor)!r} to "
            f"{float(to[i] / length_factor)!r} (row {int(np.flatnonzero(keep)[i]) + 1})"
        )
        raise DataError(msg)
    out = pd.DataFrame({"hole_id": ids, "from": fr, "to": to})
    attrs: dict[str, dict[str, Any]] = {}
    if table == "assay":
        values, attrs, col_rep = _assay_values(frame, roles, label, keep, assay_opts)
        for name, v in values.items():
            out[name] = v
        rep.update(col_rep)
    else:
        label_cols = assay_opts.get("labels")  # type: ignore[union-attr]
        skip = set(roles.values())
        cols = (
            [c for c in frame.columns if c not in skip]
            if label_cols is None
            else list([label_cols] if isinstance(label_cols, str) else label_cols)
        )
        for c in cols:
            if c not in frame.columns:
                raise DataError(
                    f"lithology column {c!r} is not in {label}; its columns: {list(frame.columns)}"
                )
            if c in ("hole_id", "hole", "from", "to"):
                raise DataError(f"lithology column {c!r} clashes with a key column name")
            out[c] = np.array([s.strip() for s in text_values(sub[c])], dtype=object)
        if not cols:
            raise DataError(
                f"the lithology table {label} has no label columns besides {sorted(skip)}"
            )
        rep["labels"] = cols
    out["_row"] = np.flatnonzero(keep) + 1
    out = out.sort_values(["hole_id", "from"], kind="stable").reset_index(drop=True)
    out = _resolve_overlaps(out, overlaps, table, label, rep, length_factor)
    return out, rep, attrs, label


def _assay_values(frame, roles, label, keep, opts):
    factor, target, sentinels = _check_options(opts["bdl"], "keep", opts["units"], opts["missing"])
    numeric = {c: is_numeric(frame[c]) for c in frame.columns}
    coords = {"from": roles["from"], "to": roles["to"]}
    plan = _plan_columns(
        list(frame.columns), coords, opts["elements"], roles["hole_id"], label, numeric
    )
    default_unit = opts["assay_units"]
    values: dict[str, np.ndarray] = {}
    attrs: dict[str, dict[str, Any]] = {}
    counts: dict[str, Any] = {}
    dropped = []
    for col in plan.elements:
        unit = plan.units[col]
        if unit == "unknown" and default_unit is not None:
            u = default_unit.get(col) if isinstance(default_unit, Mapping) else default_unit
            if u is not None:
                unit = _UNIT_ALIASES.get(str(u).lower())
                if unit is None:
                    raise DataError(
                        f"assay_units for column {col!r} must be one of "
                        f"{sorted(_TO_PPM)}; got {u!r}"
                    )
        c = _clean_column(frame[col], col, label, sentinels, auto=True)
        if c.counts["missing"] == len(frame):
            if plan.explicit:
                raise DataError(f"element column {col!r} in {label} has no data")
            dropped.append(col)
            continue
        scale = 1.0
        if target is not None:
            if unit == "unknown":
                raise DataError(
                    f"cannot convert column {col!r} in {label} to units={target!r}: "
                    "its unit is unknown; name it like 'Cu_pct' or pass assay_units="
                )
            scale, unit = _TO_PPM[unit] / _TO_PPM[target], target
        v, dl = c.value * scale, c.dl * scale
        if factor is not None:
            v[c.bdl] = factor * dl[c.bdl]
        name = plan.analytes[col]
        if name.capitalize() in _ELEMENTS and name.isupper():
            name = name.capitalize()  # CU -> Cu
        if name in values or name in ("hole_id", "hole", "from", "to"):
            name = col
        values[name] = v[keep]
        d = dl[c.bdl]
        attrs[name] = {
            "units": unit,
            "source_column": str(col),
            "detection_limits": np.unique(d[np.isfinite(d)]).tolist(),
            "bdl": opts["bdl"] if isinstance(opts["bdl"], str) else float(opts["bdl"]),
        }
        counts[str(col)] = c.counts
    if not values:
        raise DataError(f"every element column in {label} is entirely missing: {dropped}")
    rep = {
        "elements": {n: a["source_column"] for n, a in attrs.items()},
        "element_columns": counts,
        "dropped_columns": dropped,
        "ignored_columns": [str(c) for c in plan.ignored],
        "bdl": opts["bdl"] if isinstance(opts["bdl"], str) else float(opts["bdl"]),
        "units": target,
        "sentinel_policy": SENTINEL_POLICY,
    }
    return values, attrs, rep


def _prev_max_to(h: np.ndarray, to: np.ndarray) -> np.ndarray:
    """Deepest ``to`` of the earlier intervals of the same hole (-inf for a hole's first)."""
    s = pd.Series(to).groupby(h).cummax().groupby(h).shift(1)
    return s.fillna(-np.inf).to_numpy()


def _resolve_overlaps(out, policy, table, label, rep, length_factor):
    h = out["hole_id"].to_numpy()
    fr, to = out["from"].to_numpy(), out["to"].to_numpy()
    prev = _prev_max_to(h, to)
    over = fr < prev - TOL
    rep["overlaps"] = policy
    rep["n_overlapping"] = int(over.sum())
    rep["overlapping"] = _examples(h[over], fr[over])
    if over.any():
        if policy == "error":
            i = int(np.flatnonzero(over)[0])
            msg = (
                f"the {table} table {label} has {int(over.sum())} intervals overlapping an "
                f"earlier interval of their hole, first in hole {h[i]!r} from "
                f"{float(fr[i] / length_factor)!r} to {float(to[i] / length_factor)!r} (row "
                f"{int(out['_row'].iloc[i])}), which starts above the end "
                f"{float(prev[i] / length_factor)!r} of the one before; pass "
                "overlaps='keep-first' or 'truncate'"
            )
            raise DataError(msg)
        if policy == "keep-first":
            # drop overlapping intervals one pass at a time: dropping one may clear the next
            while over.any():
                out = out[~over].reset_index(drop=True)
                h, fr, to = (
                    out["hole_id"].to_numpy(),
                    out["from"].to_numpy(),
                    out["to"].to_numpy(),
                )
                over = fr < _prev_max_to(h, to) - TOL
        else:
            fr = np.maximum(fr, prev)
            out = out.assign(**{"from": fr})
            out = out[out["to"].to_numpy() > fr + TOL].reset_index(drop=True)
        rep["n_intervals_after_overlaps"] = len(out)
    h, fr, to = out["hole_id"].to_numpy(), out["from"].to_numpy(), out["to"].to_numpy()
    prev = _prev_max_to(h, to)
    gap = np.isfinite(prev) & (fr > prev + TOL)
    rep["n_gaps"] = int(gap.sum())
    rep["gap_length_m"] = float((fr[gap] - prev[gap]).sum())
    rep["gaps"] = _examples(h[gap], prev[gap])
    return out


def _apply_end(table_df, name, label, collar, policy, rep, length_factor):
    end = collar.set_index("hole_id")["end_depth"].reindex(table_df["hole_id"]).to_numpy()
    to = table_df["to"].to_numpy()
    fr = table_df["from"].to_numpy()
    past = np.isfinite(end) & (to > end + TOL)
    rep["past_end"] = policy
    rep["n_past_end"] = int(past.sum())
    rep["past_end_intervals"] = _examples(table_df["hole_id"].to_numpy()[past], to[past])
    if not past.any():
        return table_df
    if policy == "error":
        i = int(np.flatnonzero(past)[0])
        msg = (
            f"the {name} table {label} has {int(past.sum())} intervals past the end of "
            f"their hole, first in hole {table_df['hole_id'].iloc[i]!r} to depth "
            f"{float(to[i] / length_factor)!r} beyond its end at "
            f"{float(end[i] / length_factor)!r} (row "
            f"{int(table_df['_row'].iloc[i])}); pass past_end='truncate', 'drop' or 'extend'"
        )
        raise DataError(msg)
    if policy == "drop":
        return table_df[~past].reset_index(drop=True)
    if policy == "truncate":
        new_to = np.where(past, end, to)
        table_df = table_df.assign(to=new_to)
        return table_df[new_to > fr + TOL].reset_index(drop=True)
    return table_df  # extend: the hole end moves down (set by the caller)


def read_drillholes(
    collar: str | os.PathLike[str] | pd.DataFrame,
    survey: str | os.PathLike[str] | pd.DataFrame | None = None,
    assay: str | os.PathLike[str] | pd.DataFrame | None = None,
    lithology: str | os.PathLike[str] | pd.DataFrame | None = None,
    *,
    crs: Any,
    length_unit: str | None = None,
    dip_convention: str | None = None,
    hole_id: str | None = None,
    columns: Mapping[str, str] | None = None,
    elements: str | Sequence[str] | None = None,
    assay_units: str | Mapping[str, str] | None = None,
    units: str | None = None,
    bdl: str | float = "half",
    missing: Iterable[float] | float | None = (-9999,),
    lithology_columns: str | Sequence[str] | None = None,
    survey_sentinels: Iterable[float] = (90000.0, 99999.0, -9999.0),
    duplicate_survey: str = "error",
    overlaps: str = "error",
    past_end: str = "error",
    missing_collar: str = "error",
    no_survey: str = "vertical",
    rising_holes: str = "error",
) -> Drillholes:
    """Read collar, survey, assay and lithology tables into :class:`Drillholes`.

    Parameters
    ----------
    collar : str, path or pandas.DataFrame
        One row per hole: hole id, x, y (in ``crs``), z (collar elevation in the CRS's
        linear unit) and optionally the end-of-hole depth (``max_depth``, ``eoh``, ...).
    survey : str, path or DataFrame, optional
        Hole id, depth along the hole, dip and azimuth (degrees, clockwise from north).
        Holes without survey rows are vertical (``no_survey``).
    assay : str, path or DataFrame, optional
        Hole id, from, to and element columns, read as :func:`xprospect.read_samples` reads
        them (``<element>_<unit>`` names, ``<DL``/``-DL`` below detection, sentinels).
    lithology : str, path or DataFrame, optional
        Hole id, from, to and text label columns (lithology, ore codes, domains).
    crs : str, int or pyproj.CRS
        Projected CRS of the collar x, y. Required.
    length_unit : {"m", "ft", "ftUS"}
        Unit of every depth (survey depth, from, to, end of hole). Required; depths are
        converted to metres (the factor is in the report).
    dip_convention : {"negative-down", "positive-down"}, optional
        Sign of downward dips in the survey. By default inferred when every dip has one sign
        (the inference is recorded); mixed signs then raise.
    hole_id : str, optional
        The hole id column of every table (default: a column named ``hole_id``, ``holeid``,
        ``bhid``, ``dhid``, ``hole``..., any case).
    columns : dict, optional
        Column names per role where the defaults do not find them: ``x``, ``y``, ``z``,
        ``end_depth`` (collar), ``depth``, ``dip``, ``azimuth`` (survey), ``from``, ``to``
        (assay and lithology).
    elements : str or list of str, optional
        Assay columns to read (as in ``read_samples``); default every analyte column, or every
        numeric column when none is named ``<element>_<unit>``.
    assay_units : str or dict, optional
        Unit of assay columns whose name carries none (e.g. ``"pct"`` for ``CU``, ``NI``).
    units : {"ppm", "ppb", "ppt", "pct"}, optional
        Convert every element to this unit.
    bdl : {"half", "dl", "nan"} or float
        Below-detection policy of ``read_samples``.
    missing : sequence of float
        Sentinel values meaning "no value" in assay cells. Codes such as ``-99`` or a "-DL"
        far above a column's values are read as missing too, by ``read_samples``'s
        ``sentinels="auto"`` policy (counted per column as ``implausible_dl`` and
        ``over_range``); an infinite assay value is refused naming column and row.
    lithology_columns : str or list of str, optional
        Label columns of the lithology table (default: all but hole id, from, to).
    survey_sentinels : sequence of float
        Survey depths (in ``length_unit``) that mark padding rows, dropped and counted.
    duplicate_survey : {"error", "first", "last", "mean"}
        Survey rows repeating a hole's depth: raise, keep the first or last, or average the
        direction vectors.
    overlaps : {"error", "keep-first", "truncate"}
        Intervals starting above the end of an earlier interval of the same hole: raise, drop
        the later interval, or start it where the earlier one ends (dropping it if nothing is
        left).
    past_end : {"error", "truncate", "drop", "extend"}
        Intervals ending below the collar's end-of-hole depth (only checked where the collar
        gives one): raise, cut them at the end, drop them, or move the end down.
    missing_collar : {"error", "drop"}
        Survey or interval rows of holes missing from the collar table.
    no_survey : {"vertical", "error"}
        Holes without survey rows: assume vertical (listed in the report) or raise.
    rising_holes : {"error", "allow"}
        A hole whose path climbs more than 1 m above its collar (tangent estimate from the
        survey dips, down to the end of the hole) is almost always a dip-sign mistake (a
        positive dip declared ``"negative-down"``): raise naming the hole, its dip and how
        high it climbs (default), or allow it (underground holes drilled upwards), listed in
        ``report["holes_rising_above_collar"]``.

    Returns
    -------
    Drillholes
        Sorted tidy tables in metres, the CRS and ``report`` (JSON-able, also logged).

    Raises
    ------
    DataError
        A missing column, non-numeric value, bad interval or policy breach, naming the file,
        hole and depth (in ``length_unit``).
    CRSError
        ``crs`` missing, invalid or geographic.

    Notes
    -----
    Gaps between intervals are kept as gaps (nothing is invented there; compositing never
    averages across them); their number and length are reported. Every hole gets a survey
    station at depth 0: where its first station is deeper, the first direction is extended to
    the collar (counted as ``top_stations_added``).

    Examples
    --------
    >>> import pandas as pd
    >>> from xprospect.io import desurvey, read_drillholes
    >>> collar = pd.DataFrame({"hole_id": ["A"], "x": [500000.0], "y": [6.4e6], "z": [400.0]})
    >>> survey = pd.DataFrame({"hole_id": ["A", "A"], "depth": [0.0, 100.0],
    ...                        "dip": [-60.0, -60.0], "azimuth": [90.0, 90.0]})
    >>> assay = pd.DataFrame({"hole_id": ["A", "A"], "from": [10.0, 12.0], "to": [12.0, 14.0],
    ...                       "Ni_ppm": [1500.0, "<5"]})
    >>> holes = read_drillholes(collar, survey, assay, crs="EPSG:28350", length_unit="m")
    >>> samples = desurvey(holes)
    >>> round(float(samples["z"][0]), 3)  # 11 m down a hole dipping 60 degrees
    390.474
    >>> samples["Ni"].values.tolist()
    [1500.0, 2.5]
    """
    if crs is None:
        raise CRSError("crs= is required: the projected CRS of the collar x, y columns")
    crs_obj = parse_crs(crs, "crs")
    if crs_obj.is_geographic:
        msg = (
            f"crs={crs_obj.to_string()} is geographic: desurveying needs a projected CRS in "
            "metres or feet; reproject the collars first"
        )
        raise CRSError(msg)
    if length_unit is None:
        raise DataError(
            f"length_unit= is required: one of {list(LENGTH_UNITS)} (the unit of "
            "depths in the survey and interval tables)"
        )
    check_choice(length_unit, list(LENGTH_UNITS), "length_unit")
    if dip_convention is not None:
        check_choice(dip_convention, DIP_CONVENTIONS, "dip_convention")
    check_choice(duplicate_survey, DUPLICATE_SURVEY_POLICIES, "duplicate_survey")
    check_choice(overlaps, OVERLAP_POLICIES, "overlaps")
    check_choice(past_end, PAST_END_POLICIES, "past_end")
    check_choice(missing_collar, MISSING_COLLAR_POLICIES, "missing_collar")
    check_choice(no_survey, NO_SURVEY_POLICIES, "no_survey")
    check_choice(rising_holes, RISING_POLICIES, "rising_holes")
    overrides = dict(columns or {})
    if hole_id is not None:
        overrides["hole_id"] = hole_id
    unknown = set(overrides) - set(_ROLE_NAMES)
    if unknown:
        raise DataError(f"columns= has unknown roles {sorted(unknown)}; roles: {list(_ROLE_NAMES)}")
    lf = LENGTH_UNITS[length_unit]
    crs_unit = crs_obj.axis_info[0].unit_conversion_factor

    col, col_rep, _ = _read_collar(collar, overrides, crs_unit, lf)
    known = set(col["hole_id"])
    report: dict[str, Any] = {
        "crs": crs_obj.to_string(),
        "crs_unit_m": crs_unit,
        "length_unit": length_unit,
        "length_factor_to_m": lf,
        "collar": col_rep,
    }
    tables: dict[str, pd.DataFrame | None] = {"assay": None, "lithology": None}
    element_attrs: dict[str, dict[str, Any]] = {}
    labels: dict[str, str] = {}
    for name, src in (("assay", assay), ("lithology", lithology)):
        if src is None:
            continue
        opts = (
            {
                "bdl": bdl,
                "units": units,
                "missing": missing,
                "elements": elements,
                "assay_units": assay_units,
            }
            if name == "assay"
            else {"labels": lithology_columns}
        )
        df, rep, attrs, label = _read_intervals(
            src,
            name,
            overrides,
            known,
            length_factor=lf,
            overlaps=overlaps,
            missing_collar=missing_collar,
            assay_opts=opts,
        )
        tables[name], report[name], labels[name] = df, rep, label
        element_attrs.update(attrs)
    if survey is not None:
        sv, srep, _ = _read_survey(
            survey,
            overrides,
            known,
            length_factor=lf,
            dip_convention=dip_convention,
            sentinels=list(survey_sentinels),
            duplicate_survey=duplicate_survey,
            missing_collar=missing_collar,
        )
        report["survey"] = srep
    else:
        sv = pd.DataFrame(
            {"hole_id": pd.Series([], dtype=object), "depth": [], "dip": [], "azimuth": []}
        )
        report["survey"] = {"source": None}

    # end of hole: the collar's where given, checked against the intervals
    for name in ("assay", "lithology"):
        df = tables[name]
        if df is not None:
            tables[name] = _apply_end(df, name, labels[name], col, past_end, report[name], lf)
    deepest = (
        pd.concat(
            [sv[["hole_id", "depth"]].rename(columns={"depth": "d"})]
            + [
                t[["hole_id", "to"]].rename(columns={"to": "d"})
                for t in tables.values()
                if t is not None
            ]
        )
        .groupby("hole_id")["d"]
        .max()
    )
    deep = deepest.reindex(col["hole_id"]).to_numpy()
    given = col["end_depth"].to_numpy()
    end = np.where(np.isfinite(given), given, deep)
    if past_end == "extend":
        end = np.fmax(end, deep)
    col["end_depth"] = end
    report["collar"]["end_depth_from_collar"] = int(np.isfinite(given).sum())

    # every hole gets a station at depth 0
    no_sv = sorted(known - set(sv["hole_id"]))
    if no_sv and no_survey == "error":
        raise DataError(
            f"{len(no_sv)} holes have no survey rows: {no_sv[:_MAX_EXAMPLES]}; "
            "pass no_survey='vertical' to assume vertical holes"
        )
    first = sv.groupby("hole_id", sort=False).head(1)
    top = first[first["depth"] > 0].assign(depth=0.0)
    vert = pd.DataFrame({"hole_id": no_sv, "depth": 0.0, "dip": -90.0, "azimuth": 0.0})
    sv = pd.concat([d for d in (sv, top, vert) if len(d)], ignore_index=True)
    sv = sv.sort_values(["hole_id", "depth"], kind="stable").reset_index(drop=True)
    report["survey"]["top_stations_added"] = len(top)
    report["holes_without_survey"] = no_sv
    report["n_holes_without_survey"] = len(no_sv)
    _check_doglegs(sv)
    rising = _rising(sv, col)
    report["holes_rising_above_collar"] = [h for h, _, _ in rising]
    report["rising_holes"] = rising_holes
    if rising and rising_holes == "error":
        h, dip, rise = rising[0]
        label = report["survey"].get("source") or "the survey table"
        msg = (
            f"{len(rising)} holes in {label} climb above their collar, first {h!r}: dip "
            f"{dip!r} at its collar (after dip_convention="
            f"{report['survey'].get('dip_convention')!r}) takes it {rise:.1f} m above the "
            "collar; check the dip sign convention (dip_convention='positive-down'), or pass "
            "rising_holes='allow' for holes drilled upwards"
        )
        raise DataError(msg)
    for name in ("assay", "lithology"):
        df = tables[name]
        if df is not None:
            has = set(df["hole_id"])
            report[name]["n_holes"] = len(has)
            report[name]["n_intervals"] = len(df)
            report[name]["holes_without_intervals"] = len(known - has)
            tables[name] = df.drop(columns="_row")
    # integer hole codes (index into the collar table) keep the hot paths off strings
    order = col["hole_id"].to_numpy(dtype=object)
    sv["hole"] = hole_codes(sv["hole_id"], order)
    for name in ("assay", "lithology"):
        df = tables[name]
        if df is not None:
            df.insert(1, "hole", hole_codes(df["hole_id"], order))
    report["n_holes"] = len(col)
    report["n_survey_stations"] = len(sv)
    logger.info(
        "read %d drillholes (%s, depths in %s): %d stations, %d without survey (vertical), "
        "assay intervals %s, lithology intervals %s",
        len(col),
        crs_obj.to_string(),
        length_unit,
        len(sv),
        len(no_sv),
        None if tables["assay"] is None else len(tables["assay"]),
        None if tables["lithology"] is None else len(tables["lithology"]),
    )
    return Drillholes(
        collar=col,
        survey=sv,
        assay=tables["assay"],
        lithology=tables["lithology"],
        crs=crs_obj,
        report=report,
        element_attrs=element_attrs,
    )


def _rising(sv: pd.DataFrame, col: pd.DataFrame) -> list[tuple[str, float, float]]:
    """Return (hole, first dip, metres climbed) of holes climbing above their collar.

    A tangent estimate: between stations the hole follows the mean of the two stations' up
    components, below the last station the last one's, down to the end of the hole.
    """
    if not len(sv):
        return []
    up = directions(sv["dip"].to_numpy(), sv["azimuth"].to_numpy())[:, 2]
    h = sv["hole_id"].to_numpy(dtype=object)
    d = sv["depth"].to_numpy(dtype="float64")
    same = np.r_[False, h[1:] == h[:-1]]
    dz = np.zeros(len(sv))
    prev = np.flatnonzero(same) - 1
    dz[same] = (d[same] - d[prev]) * (up[same] + up[prev]) / 2
    z = pd.Series(dz).groupby(h, sort=False).cumsum().to_numpy()
    end = col.set_index("hole_id")["end_depth"].reindex(h).to_numpy(dtype="float64")
    last = np.r_[h[1:] != h[:-1], True]
    tail = np.where(last & np.isfinite(end), np.maximum(end - d, 0.0) * up, 0.0)
    top = pd.Series(np.maximum(z, z + tail)).groupby(h, sort=False).max()
    first_dip = pd.Series(sv["dip"].to_numpy()).groupby(h, sort=False).first()
    return [(str(k), float(first_dip[k]), float(v)) for k, v in top.items() if v > _RISE_TOL]


def _check_doglegs(sv: pd.DataFrame) -> None:
    """Raise on a hole that turns back on itself between two stations (dogleg near 180)."""
    t = directions(sv["dip"].to_numpy(), sv["azimuth"].to_numpy())
    h = sv["hole_id"].to_numpy()
    same = h[1:] == h[:-1]
    cos = np.einsum("ij,ij->i", t[1:], t[:-1])
    bad = same & (cos < math.cos(math.radians(179.0)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0]) + 1
        msg = (
            f"hole {h[i]!r} turns by more than 179 degrees between survey depths "
            f"{float(sv['depth'].iloc[i - 1])!r} and {float(sv['depth'].iloc[i])!r} m: "
            "check the dip signs"
        )
        raise DataError(msg)
