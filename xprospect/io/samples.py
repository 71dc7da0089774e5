"""Read point-sample tables (CSV, Parquet, DataFrame) into georeferenced sample Datasets.

The work is in :func:`read_samples`: it finds the analyte columns, cleans the messy
values exploration assays carry (sentinels, ``<DL`` strings, ``-DL`` numbers, zeros),
applies a stated below-detection policy, handles duplicate samples, reprojects and
writes the CRS. What it did is recorded, as JSON, in ``ds.attrs["ingest_report"]``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Transformer

from xprospect._dims import SAMPLE_DIM, check_area_of_use, parse_crs, write_crs
from xprospect._json import dumps
from xprospect.exceptions import CRSError, DataError
from xprospect.io._columns import (
    check_choice,
    check_columns,
    is_numeric,
    list_columns,
    numbers,
    sentinel_mask,
    text_values,
)
from xprospect.io._table import NA_TOKENS, read_table

__all__ = ["ingest_report", "parse_analyte_column", "read_samples"]

logger = logging.getLogger("xprospect.io")

REPORT_ATTR = "ingest_report"

# Unit suffixes (lower case) -> canonical unit. g/t is ppm; ppt is parts per trillion.
_UNIT_ALIASES: dict[str, str] = {
    "ppm": "ppm",
    "mg_kg": "ppm",
    "mgkg": "ppm",
    "ug_g": "ppm",
    "g_t": "ppm",
    "gpt": "ppm",
    "gt": "ppm",
    "g_tonne": "ppm",
    "ppb": "ppb",
    "ug_kg": "ppb",
    "ugkg": "ppb",
    "ng_g": "ppb",
    "mg_t": "ppb",
    "ppt": "ppt",
    "ng_kg": "ppt",
    "pct": "pct",
    "percent": "pct",
    "wt%": "pct",
    "wt_pct": "pct",
    "wtpct": "pct",
    "%": "pct",
    "wt_%": "pct",
    "perc": "pct",
}
# How many ppm one unit is.
_TO_PPM: dict[str, float] = {"ppm": 1.0, "ppb": 1e-3, "ppt": 1e-6, "pct": 1e4}

_ELEMENTS = frozenset(
    """
H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se
Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb
Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu
""".split()
)
# Major-element oxides read as elements when their column carries no unit suffix: by
# convention they are reported in wt% (``pct``), and the report says the unit was assumed.
_OXIDES = frozenset(
    {
        "SiO2",
        "TiO2",
        "Al2O3",
        "Fe2O3",
        "Fe2O3T",
        "FeO",
        "FeOT",
        "MnO",
        "MgO",
        "CaO",
        "Na2O",
        "K2O",
        "P2O5",
        "Cr2O3",
        "BaO",
        "SO3",
        "LOI",
    }
)
# A stray index column written by pandas (an empty header read back).
_INDEX_RE = re.compile(r"^Unnamed: \d+$")
# Codes of all nines: 99, 999, ... as a negative "-DL" or a positive over-range value.
_NINES_RE = re.compile(r"^9{2,}$")
_SENTINEL_POLICIES = ("auto", "none")
_NONFINITE_POLICIES = ("error", "missing")
_MISSING_COORDS_POLICIES = ("error", "drop")
SENTINEL_POLICY = (
    "a negative value -d is a missing-value code, not a detection limit d, when d is 99, "
    "999, 9999, ... (all nines) or d exceeds 10 times the column.s largest detected value; a "
    "positive value 999, 9999, ... (all nines) more than 10 times the median of the column's "
    "other detected values is an over-range code; both are counted and read as missing"
)
# A column named by a bare element symbol ("Au", "Cu") is an element column when at least
# this share of its non-empty cells read as results (numbers, "<DL", ">x", BDL markers),
# even when it is not numeric: its other cells are then cleaned or refused by name.
_BARE_ELEMENT_SHARE = 0.5
# Analytes that are not chemical formulas.
_SPECIAL_ANALYTES = frozenset({"LOI", "TOT", "TOTAL", "SUM", "TC", "TOC", "TS"})
# Qualifiers written after a formula: Fe2O3T (total), H2Oneg / H2Opos, H2O-, H2O+.
_QUALIFIERS = ("T", "t", "tot", "Tot", "total", "neg", "pos", "-", "+")

_ANALYTE_RE = re.compile(
    r"^(?P<analyte>[A-Za-z][A-Za-z0-9+\-]*?)_(?P<unit>"
    + "|".join(re.escape(u) for u in sorted(_UNIT_ALIASES, key=len, reverse=True))
    + r")$",
    re.IGNORECASE,
)
_TOKEN_RE = re.compile(r"[A-Z][a-z]?\d*")

# Text cells meaning "no value" (compared lower case, stripped).
_MISSING_TOKENS = frozenset(
    {
        "",
        "na",
        "n.a.",
        "n.a",
        "n/a",
        "nan",
        "-",
        "--",
        "---",
        "nd",
        "n.d.",
        "none",
        "null",
        "<na>",
        "#n/a",
        "ns",
        "n.s.",
        "is",
        "lnr",
        "nss",
    }
) | {t.lower() for t in NA_TOKENS}  # and pandas' own NA tokens
# Text cells meaning "below detection, limit not stated" (treated like 0).
_BDL_TOKENS = frozenset({"bdl", "b.d.l.", "<dl", "<lod", "<ld", "bd"})
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_LT_RE = r"^<\s*=?\s*" + _NUMBER + r"$"
_GT_RE = r"^>\s*=?\s*" + _NUMBER + r"$"

_BDL_POLICIES = ("half", "dl", "nan")
_DUPLICATE_POLICIES = ("keep", "drop", "mean", "error")
# Output names a source column may not take as a coordinate.
_RESERVED = frozenset({"x", "y", "z", SAMPLE_DIM, "sample_id", "row", "spatial_ref", "name"})


def _is_formula(text: str) -> bool:
    tokens = _TOKEN_RE.findall(text)
    if not tokens or "".join(tokens) != text:
        return False
    return all(re.sub(r"\d+$", "", t) in _ELEMENTS for t in tokens)


def parse_analyte_column(column: str) -> tuple[str, str] | None:
    """Split an ``<element or oxide>_<unit>`` column name into (analyte, unit).

    Parameters
    ----------
    column : str
        A column name such as ``"Au_ppb"``, ``"Fe2O3_pct"``, ``"Cu_PPM"`` or ``"LOI_pct"``.

    Returns
    -------
    tuple of str or None
        The analyte as written (``"Fe2O3"``) and the canonical unit (``"ppm"``, ``"ppb"``,
        ``"ppt"`` or ``"pct"``), or None when the name is not an analyte column.

    Examples
    --------
    >>> parse_analyte_column("Au_ppb")
    ('Au', 'ppb')
    >>> parse_analyte_column("Fe2O3T_wt%")
    ('Fe2O3T', 'pct')
    >>> parse_analyte_column("Depth_m") is None
    True
    """
    m = _ANALYTE_RE.match(str(column))
    if m is None:
        return None
    analyte, unit = m.group("analyte"), _UNIT_ALIASES[m.group("unit").lower()]
    if analyte.upper() in _SPECIAL_ANALYTES:
        return analyte, unit
    for q in ("", *_QUALIFIERS):
        if analyte.endswith(q) and _is_formula(analyte[: len(analyte) - len(q)]):
            return analyte, unit
    return None


def ingest_report(ds: xr.Dataset) -> dict[str, Any]:
    """Return the ingest report that :func:`read_samples` stored on ``ds``.

    Parameters
    ----------
    ds : xarray.Dataset
        A Dataset made by :func:`read_samples` (also after a zarr or netCDF round trip).

    Returns
    -------
    dict
        The parsed ``ds.attrs["ingest_report"]``.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"E": [500000.0, 500100.0], "N": [6.3e6, 6.3e6],
    ...                       "Au_ppb": ["<1", "12"]})
    >>> ds = read_samples(table, x="E", y="N", crs="EPSG:32750")
    >>> ingest_report(ds)["columns"]["Au_ppb"]["below_detection"]
    1
    """
    if REPORT_ATTR not in ds.attrs:
        raise DataError("this Dataset has no ingest report; it was not made by read_samples")
    return json.loads(ds.attrs[REPORT_ATTR])


# ----------------------------------------------------------------------------- reading


@dataclass
class _Plan:
    """Which source column plays which role."""

    coords: dict[str, str]  # output coordinate name -> source column
    elements: list[str]  # source columns
    units: dict[str, str]  # source column -> canonical unit or "unknown"
    analytes: dict[str, str]  # source column -> bare analyte (or the column itself)
    ignored: list[str] = field(default_factory=list)  # analyte columns not asked for
    explicit: bool = False
    reasons: dict[str, str] = field(default_factory=dict)  # ignored column -> why
    assumed: dict[str, str] = field(default_factory=dict)  # column -> why its unit is assumed


def _plan_columns(
    columns: Sequence[str],
    coords: dict[str, str],
    elements: str | Sequence[str] | None,
    id_column: str | None,
    label: str,
    numeric: dict[str, bool] | None,
) -> _Plan:
    """Decide element columns; ``numeric`` (column -> is numeric) is needed only for fallback."""
    check_columns(columns, coords, label)
    if id_column is not None and id_column not in columns:
        msg = (
            f"id_column {id_column!r} is not in {label}; available columns: {list_columns(columns)}"
        )
        raise DataError(msg)
    taken = set(coords.values()) | ({id_column} if id_column is not None else set())
    stray = [c for c in columns if _INDEX_RE.match(str(c)) and c not in taken]
    taken |= set(stray)
    parsed = {c: parse_analyte_column(c) for c in columns if c not in taken}
    assumed = {}
    for c in parsed:
        if parsed[c] is None and str(c).strip() in _OXIDES:
            parsed[c] = (str(c).strip(), "pct")
            assumed[c] = "oxide without a unit suffix: wt% (pct) by convention"
    analyte_cols = [c for c, p in parsed.items() if p is not None]

    if elements is None:
        chosen = list(analyte_cols)
        if not chosen:
            if numeric is None:
                return _Plan(coords, [], {}, {})  # caller reads the data and asks again
            chosen = [c for c in columns if c not in taken and numeric.get(c, False)]
            if not chosen:
                msg = (
                    f"{label} has no analyte columns: none is named '<element>_<unit>' "
                    f"(e.g. 'Au_ppb') and none outside the coordinates is numeric; "
                    f"columns: {list_columns(columns)}"
                )
                raise DataError(msg)
        explicit = False
    else:
        wanted = [elements] if isinstance(elements, str) else list(elements)
        if not wanted:
            raise DataError("elements=[] asks for no elements; pass None to take every analyte")
        chosen = []
        for item in wanted:
            if item in taken:
                msg = f"element {item!r} is the coordinate or id column in {label}"
                raise DataError(msg)
            if item in parsed:
                hits = [item]
            else:
                hits = [c for c in analyte_cols if parsed[c][0] == item]  # type: ignore[index]
            if not hits:
                named = [c for c in parsed if c in analyte_cols or str(c).strip() in _ELEMENTS]
                known = (
                    f"analyte columns: {list_columns(named)}"
                    if named
                    else f"columns: {list_columns(list(parsed))}"
                )
                msg = (
                    f"element {item!r} is not a column of {label} and matches no "
                    f"'<element>_<unit>' column; {known}"
                )
                raise DataError(msg)
            chosen.extend(h for h in hits if h not in chosen)
        explicit = True

    units = {c: parsed[c][1] if parsed.get(c) else "unknown" for c in chosen}  # type: ignore[index]
    analytes = {c: parsed[c][0] if parsed.get(c) else str(c) for c in chosen}  # type: ignore[index]
    ignored = [c for c in analyte_cols if c not in chosen]
    reasons = {c: "analyte column not asked for in elements=" for c in ignored}
    for c in stray:
        reasons[c] = "empty header: a stray index column written by pandas"
    ignored += stray
    assumed = {c: why for c, why in assumed.items() if c in chosen}
    return _Plan(coords, chosen, units, analytes, ignored, explicit, reasons, assumed)


def _read_table(
    source: Any,
    coords: dict[str, str],
    elements: Any,
    id_column: str | None,
    encoding: str | None = None,
) -> tuple[pd.DataFrame, _Plan, str, str | None, str | None]:
    """Return the frame (never the caller's object), the plan, a label and the file name."""
    planned: list[_Plan] = []

    def text_columns(header: list[str]) -> dict[str, Any] | None:
        plan = _plan_columns(header, coords, elements, id_column, str(source), None)
        planned.append(plan)
        if plan.elements:
            # Everything but coordinates and elements is text: keeps ids such as "007" intact.
            keep_num = set(plan.elements) | set(coords.values())
            return {c: str for c in header if c not in keep_num}
        return {id_column: str} if id_column is not None else None

    table = read_table(source, what="sample table", dtype=text_columns, encoding=encoding)
    frame, label = table.frame, table.label
    if planned and planned[0].elements:
        plan = planned[0]
    else:
        numeric = {c: is_numeric(frame[c]) for c in frame.columns}
        plan = _plan_columns(list(frame.columns), coords, elements, id_column, label, numeric)
    return frame, _with_bare_elements(frame, plan, id_column), label, table.name, table.encoding


def _reads_as_measurements(s: pd.Series) -> bool:
    """Whether most non-empty cells of a column read as results (numbers, ``<DL``, ``>x``)."""
    txt = s.dropna().astype(str).str.strip()
    txt = txt[~txt.str.lower().isin(_MISSING_TOKENS)]
    if txt.empty:
        return False
    ok = (
        pd.to_numeric(txt, errors="coerce").notna()
        | txt.str.match(_LT_RE)
        | txt.str.match(_GT_RE)
        | txt.str.lower().isin(_BDL_TOKENS)
    )
    return bool(ok.mean() >= _BARE_ELEMENT_SHARE)


def _with_bare_elements(frame: pd.DataFrame, plan: _Plan, id_column: str | None) -> _Plan:
    """Add the columns named by a bare element symbol (``Au``) that read as results.

    Without it a bare ``Au`` column holding one typo or ``<0.5`` cells was not numeric,
    so it was silently read as metadata (see ``_BARE_ELEMENT_SHARE``).
    """
    if plan.explicit:
        return plan
    taken = set(plan.coords.values()) | {id_column} | set(plan.elements) | set(plan.ignored)
    extra = [
        c
        for c in frame.columns
        if c not in taken and str(c).strip() in _ELEMENTS and _reads_as_measurements(frame[c])
    ]
    if not extra:
        return plan
    chosen = set(plan.elements) | set(extra)
    plan.elements = [c for c in frame.columns if c in chosen]
    for c in extra:
        plan.units[c] = "unknown"
        plan.analytes[c] = str(c).strip()
        plan.assumed[c] = "element symbol without a unit suffix: unit unknown"
    return plan


# ----------------------------------------------------------------------------- cleaning


@dataclass
class _Column:
    """A cleaned element column in its source unit."""

    value: np.ndarray  # detected (and above-detection) values; NaN elsewhere
    dl: np.ndarray  # detection limit where below detection, NaN elsewhere
    bdl: np.ndarray  # bool, below detection
    counts: dict[str, int]


def _is_nines(v: np.ndarray) -> np.ndarray:
    """Where ``|v|`` is 99, 999, 9999, ... exactly."""
    a = np.abs(v)
    out = np.zeros(v.shape, dtype=bool)
    ok = np.isfinite(a) & (a >= 99) & (a < 1e15) & (a == np.round(a))
    out[ok] = [bool(_NINES_RE.match(str(int(t)))) for t in a[ok]]
    return out


def _auto_sentinels(v: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(implausible -DL mask, over-range mask) of one column by :data:`SENTINEL_POLICY`.

    ``v`` holds numbers (NaN for missing and text cells); ``known`` marks cells already
    read as below or above detection from text (``<DL``, ``>x``), which are left alone.
    """
    free = ~known & np.isfinite(v)
    nines = _is_nines(v)
    over = np.zeros(v.shape, dtype=bool)
    cand = np.flatnonzero(free & (v > 0) & nines)
    if cand.size:
        rest = v[free & (v > 0) & ~nines]
        if rest.size:
            over[cand] = v[cand] > 10 * float(np.median(rest))
    detected = v[free & (v > 0) & ~over]
    top = float(detected.max()) if detected.size else math.inf
    implausible = free & (v < 0) & (nines | (-v > 10 * top))
    return implausible, over


def _clean_column(
    s: pd.Series,
    column: str,
    label: str,
    sentinels: np.ndarray,
    auto: bool = False,
    nonfinite: str = "error",
) -> _Column:
    n = len(s)
    lt = np.full(n, np.nan)  # DL from "<x" cells
    gt = np.zeros(n, dtype=bool)
    unknown_bdl = np.zeros(n, dtype=bool)
    if is_numeric(s):
        # copies: pandas may hand out read-only views
        v = np.array(s.to_numpy(dtype="float64", na_value=np.nan), copy=True)
    elif pd.api.types.is_bool_dtype(s.dtype):
        msg = f"column {column!r} in {label} holds booleans, not concentrations"
        raise DataError(msg)
    else:
        v = np.array(
            pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan), copy=True
        )
        text_idx = np.flatnonzero(np.isnan(v) & ~s.isna().to_numpy())
        if text_idx.size:
            txt = s.iloc[text_idx].astype(str).str.strip()
            # padded numbers such as " 5 " are numbers
            again = pd.to_numeric(txt, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            ok = ~np.isnan(again)
            v[text_idx[ok]] = again[ok]
            text_idx, txt = text_idx[~ok], txt[~ok]
            low = txt.str.lower()
            miss = low.isin(_MISSING_TOKENS).to_numpy()
            unk = low.isin(_BDL_TOKENS).to_numpy()
            lt_val = pd.to_numeric(txt.str.extract(_LT_RE, expand=False), errors="coerce")
            gt_val = pd.to_numeric(txt.str.extract(_GT_RE, expand=False), errors="coerce")
            lt_val = lt_val.to_numpy(dtype="float64", na_value=np.nan)
            gt_val = gt_val.to_numpy(dtype="float64", na_value=np.nan)
            is_lt, is_gt = ~np.isnan(lt_val), ~np.isnan(gt_val)
            # "<inf", ">Infinity": non-finite limits, handled by the nonfinite policy below
            inf_txt = low.str.fullmatch(r"[<>]\s*=?\s*[-+]?inf(inity)?").to_numpy(dtype=bool)
            v[text_idx[inf_txt]] = np.inf
            bad = ~(miss | unk | is_lt | is_gt | inf_txt)
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                msg = (
                    f"column {column!r} in {label} has {int(bad.sum())} non-numeric values "
                    f"such as {txt.iloc[first]!r} (row {int(text_idx[first]) + 1}); "
                    "understood are numbers, '<DL', '>value' and empty/NA markers"
                )
                raise DataError(msg)
            lt[text_idx[is_lt]] = np.abs(lt_val[is_lt])
            gt[text_idx[is_gt]] = True
            v[text_idx[is_gt]] = gt_val[is_gt]
            unknown_bdl[text_idx[unk]] = True

    inf = np.isinf(v) | np.isinf(lt)
    if inf.any():
        if nonfinite == "error":
            i = int(np.flatnonzero(inf)[0])
            msg = (
                f"column {column!r} in {label} has {int(inf.sum())} non-finite values "
                f"(infinity or a number too large for float64), first {s.iloc[i]!r} at row "
                f"{i + 1}; fix the file or pass nonfinite='missing' to read them as missing"
            )
            raise DataError(msg)
        v[inf] = np.nan
        lt[inf] = np.nan
        gt[inf] = False
    sentinel = sentinel_mask(v, sentinels)
    implausible = np.zeros(n, dtype=bool)
    over = np.zeros(n, dtype=bool)
    if auto:
        implausible, over = _auto_sentinels(
            np.where(sentinel, np.nan, v), gt | ~np.isnan(lt) | unknown_bdl
        )
    v[sentinel | implausible | over] = np.nan
    has_lt = ~np.isnan(lt)
    zero = (v == 0) | unknown_bdl | (has_lt & (lt == 0))
    neg = v < 0
    bdl = neg | zero | has_lt
    missing = np.isnan(v) & ~bdl
    dl = np.full(n, np.nan)
    dl[neg] = -v[neg]
    dl[has_lt] = lt[has_lt]
    if zero.any():
        # Policy: a 0 (or a bare "BDL") is below a limit the table does not state; the best
        # guess of that limit is the smallest positive value the column reports or, in a
        # column with none, the smallest limit it states.
        pos = v[(v > 0) & ~bdl]
        if not pos.size:
            pos = dl[np.isfinite(dl) & (dl > 0)]
        dl[zero] = pos.min() if pos.size else np.nan
    v[bdl] = np.nan
    counts = {
        "missing": int(missing.sum()),
        "below_detection": int(bdl.sum()),
        "zero_as_bdl": int(zero.sum()),
        "above_detection": int(gt.sum()),
        "sentinel": int(sentinel.sum()),
        "implausible_dl": int(implausible.sum()),
        "over_range": int(over.sum()),
        "nonfinite": int(inf.sum()),
    }
    return _Column(v, dl, bdl, counts)


# ----------------------------------------------------------------------------- helpers


def _unit(value: Any, what: str) -> str:
    target = _UNIT_ALIASES.get(str(value).lower())
    if target is None:
        raise DataError(f"{what} must be one of {sorted(_TO_PPM)} (or None); got {value!r}")
    return target


def _check_options(
    bdl: Any,
    duplicates: str,
    units: Any,
    missing: Any,
) -> tuple[float | None, str | dict[str, str] | None, np.ndarray]:
    """Return the BDL factor (None = NaN), the target unit(s) and the sentinel array."""
    if isinstance(bdl, str):
        if bdl not in _BDL_POLICIES:
            raise DataError(f"bdl must be one of {_BDL_POLICIES} or a number; got {bdl!r}")
        factor = {"half": 0.5, "dl": 1.0, "nan": None}[bdl]
    elif (
        isinstance(bdl, bool)
        or not isinstance(bdl, int | float | np.number)
        or not math.isfinite(float(bdl))
        or float(bdl) < 0
    ):
        raise DataError(f"bdl must be one of {_BDL_POLICIES} or a finite number >= 0; got {bdl!r}")
    else:
        factor = float(bdl)
    if duplicates not in _DUPLICATE_POLICIES:
        raise DataError(f"duplicates must be one of {_DUPLICATE_POLICIES}; got {duplicates!r}")
    target: str | dict[str, str] | None = None
    if isinstance(units, Mapping):
        target = {str(k): _unit(v, f"units[{k!r}]") for k, v in units.items()}
    elif units is not None:
        target = _unit(units, "units")
    if missing is None:
        missing = ()
    elif isinstance(missing, int | float | np.number):
        missing = (missing,)
    try:
        sentinels = np.asarray(list(missing), dtype="float64")
    except (TypeError, ValueError) as err:
        raise DataError(f"missing must be a sequence of numbers; got {missing!r}") from err
    return factor, target, sentinels


def _sentinel_option(value: Any) -> tuple[bool, np.ndarray]:
    """Return (apply the auto policy, the user's extra codes) from ``sentinels=``."""
    if isinstance(value, str):
        check_choice(value, _SENTINEL_POLICIES, "sentinels")
        return value == "auto", np.zeros(0)
    if isinstance(value, int | float | np.number):
        value = (value,)
    try:
        codes = np.asarray(list(value), dtype="float64")
    except (TypeError, ValueError) as err:
        msg = f"sentinels must be 'auto', 'none' or a sequence of numbers; got {value!r}"
        raise DataError(msg) from err
    return False, codes


def _coord_missing(s: pd.Series, sentinels: np.ndarray) -> np.ndarray:
    """Where a coordinate cell is empty, an NA marker or a sentinel (not where it is garbage)."""
    if is_numeric(s):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        return np.isnan(v) | sentinel_mask(v, sentinels)
    txt = s.astype("string").str.strip().str.lower()
    miss = (txt.isna() | txt.isin(_MISSING_TOKENS)).to_numpy(dtype=bool, na_value=True)
    v = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return miss | sentinel_mask(v, sentinels)


def _duplicate_masks(loc: np.ndarray, cleaned: Sequence[_Column]) -> tuple[np.ndarray, np.ndarray]:
    """Exact-duplicate mask and co-located mask (a repeated location among the rest).

    Values are compared after cleaning with NaN equal to NaN and below-detection cells as
    -DL. Only rows whose location repeats can be duplicates, so values are compared for those
    alone (few in a survey; hashing every column of a million rows would take seconds).
    """
    n = loc.shape[0]
    exact = np.zeros(n, dtype=bool)
    colocated = np.zeros(n, dtype=bool)
    cand = np.flatnonzero(pd.DataFrame(loc).duplicated(keep=False).to_numpy())
    if cand.size:
        enc = [np.where(c.bdl[cand], -c.dl[cand], c.value[cand]) for c in cleaned]
        keys = pd.DataFrame(np.column_stack([loc[cand], *enc]))
        ex = keys.duplicated(keep="first").to_numpy()
        exact[cand] = ex
        rest = cand[~ex]
        colocated[rest] = pd.DataFrame(loc[rest]).duplicated(keep="first").to_numpy()
    return exact, colocated


def _first_twin(keys: np.ndarray, i: int) -> int:
    """Index of the first earlier row equal to row ``i`` (NaN equals NaN)."""
    same = (keys[:i] == keys[i]) | (np.isnan(keys[:i]) & np.isnan(keys[i]))
    return int(np.flatnonzero(same.all(axis=1))[0])


def _column_targets(
    target: str | dict[str, str] | None, cleaned: Mapping[str, Any], plan: _Plan, label: str
) -> dict[str, str]:
    """Return the unit each element column ends in (converted, or declared for a bare column)."""
    if target is None:
        return {}
    if isinstance(target, str):
        unknown = [col for col in cleaned if plan.units[col] == "unknown"]
        if unknown:
            msg = (
                f"cannot convert to units={target!r}: columns {unknown} in {label} carry no "
                "unit suffix (name them like 'Au_ppb', or pass units= a mapping per column)"
            )
            raise DataError(msg)
        return dict.fromkeys(cleaned, target)
    out = {}
    for key, unit in target.items():
        hits = [c for c in cleaned if c == key or plan.analytes[c] == key]
        if not hits:
            msg = (
                f"units= names {key!r}, which is no element column of {label}; element "
                f"columns: {list_columns(list(cleaned))}"
            )
            raise DataError(msg)
        out.update(dict.fromkeys(hits, unit))
    return out


def _column_roles(
    columns: Iterable[str],
    plan: _Plan,
    coords: Mapping[str, str],
    id_column: str | None,
    cleaned: Mapping[str, Any],
    dropped: Sequence[str],
) -> dict[str, str]:
    """Every source column's role: element, coordinate, id, metadata, ignored or dropped."""
    roles = {}
    for col in columns:
        if col in cleaned:
            role = "element"
        elif col in dropped:
            role = "dropped (every value missing)"
        elif col in coords.values():
            role = "coordinate"
        elif col == id_column:
            role = "id"
        elif col in plan.ignored:
            role = "ignored"
        else:
            role = "metadata"
        roles[str(col)] = role
    return roles


def _unique_name(name: str, used: set[str]) -> str:
    out = name
    while out in used or out in _RESERVED:
        out = out + "_"
    return out


# ----------------------------------------------------------------------------- public


def read_samples(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    x: str,
    y: str,
    z: str | None = None,
    crs: Any = None,
    to_crs: Any = None,
    elements: str | Sequence[str] | None = None,
    duplicates: str = "keep",
    bdl: str | float = "half",
    missing: Iterable[float] | float | None = (-9999,),
    units: str | Mapping[str, str] | None = None,
    id_column: str | None = None,
    sentinels: str | Iterable[float] = "auto",
    nonfinite: str = "error",
    missing_coords: str = "error",
    encoding: str | None = None,
) -> xr.Dataset:
    """Read a table of point samples into a georeferenced Dataset along ``sample``.

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        A ``.csv``/``.txt``/``.tsv`` file (optionally compressed, delimiter taken from the
        header line), a ``.parquet``/``.pq`` file, or a DataFrame (which is never modified).
    x, y : str
        Columns holding the sample coordinates, in ``crs``.
    z : str, optional
        Column holding elevation (passed through unchanged by reprojection).
    crs : str, int, pyproj.CRS
        CRS of ``x``/``y`` (anything pyproj accepts). Required.
    to_crs : str, int, pyproj.CRS, optional
        Reproject the samples to this CRS (``pyproj.Transformer``, ``always_xy=True``).
    elements : str or list of str, optional
        Columns to read as elements, each a column name (``"Au_ppb"``) or a bare analyte
        (``"Au"`` takes every ``Au_<unit>`` column). By default every column named
        ``<element or oxide>_<unit>`` (unit suffixes such as ppm, ppb, ppt, pct, percent,
        wt%, g_t, gpt, mg_kg, any case); when there is none, every numeric column other than
        the coordinates and ``id_column``, with units ``"unknown"``. A column named by a
        bare element symbol (``"Au"``, ``"Cu"``) is an element (unit ``"unknown"``) when at
        least half of its non-empty cells read as results (numbers, ``"<DL"``, ``">x"``),
        so ``"<0.5"`` cells are read as below detection and a stray word is refused by
        column, row and value rather than the column being taken for metadata.
    duplicates : {"keep", "drop", "mean", "error"}
        What to do with samples at the same location (see Notes).
    bdl : {"half", "dl", "nan"} or float
        Value given to below-detection results: half the detection limit (DL), the DL,
        NaN, or ``bdl * DL``.
    missing : sequence of float
        Sentinel numbers meaning "no value" (matched with a tolerance of 1e-6), e.g.
        ``(-9999, -99999)``.
    units : {"ppm", "ppb", "ppt", "pct"} or mapping, optional
        Convert every element (and its detection limits) to this unit; or a mapping from
        column (or bare analyte) to unit: a column whose name carries a unit suffix is
        converted to the mapped unit, a column without one is declared to be in it.
    id_column : str, optional
        Column whose values become the ``sample_id`` coordinate.
    sentinels : "auto", "none" or sequence of float
        Missing-value codes in element columns besides ``missing``. ``"auto"`` (default)
        applies :data:`SENTINEL_POLICY` (``-99``, ``-9999`` or a "-DL" above the column's
        largest detected value x 10 read as missing, not as a detection limit; ``9999`` far
        above the column's values read as an over-range code, missing); ``"none"`` turns it
        off; a sequence names the codes (matched like ``missing``) and turns it off.
    nonfinite : {"error", "missing"}
        Element cells holding ``inf``, ``Infinity``, ``1e400`` (and ``<inf``) raise naming the
        column, row and value; ``"missing"`` reads them as missing (counted as ``nonfinite``).
    missing_coords : {"error", "drop"}
        A row whose coordinate is empty, an NA marker or a ``missing`` sentinel raises
        (default) or, with ``"drop"``, is left out and counted (``n_rows_without_coords``).
    encoding : str, optional
        Text encoding of a CSV file; by default UTF-8, then Windows-1252 (the report's
        ``encoding`` says which was used).

    Returns
    -------
    xarray.Dataset
        One float64 variable per element along ``sample``, named by the bare analyte
        (``Au``, ``Fe2O3``), or by the full column name where two columns give the same
        analyte (``Au_ppm`` and ``Au_ppb``). Attributes: ``units``, ``source_column``,
        ``detection_limits`` (the distinct DLs met, in ``units``) and ``bdl``. Coordinates
        along ``sample``: float64 ``x``, ``y`` (and ``z``); ``row``, the 1-based data row of
        the source table; ``sample_id``; every other non-element column as text (a column
        clashing with these names, or called ``name``, gets a trailing ``_``). Analyte columns
        not asked for are left out. The CRS is written with rioxarray and
        ``attrs["ingest_report"]`` holds a JSON report (read it with :func:`ingest_report`):
        among others ``column_roles`` (every source column: ``element``, ``coordinate``,
        ``id``, ``metadata`` or ``ignored``), ``ignored_columns`` and ``ignored_reasons``,
        ``assumed_units``, ``encoding`` and ``sentinel_policy``.

    Raises
    ------
    DataError
        A missing coordinate, id or element column; a missing or non-numeric coordinate; an
        element cell that is not understood; an explicitly requested element whose every value
        is missing; duplicate locations with ``duplicates="error"``; a bad option.
    CRSError
        ``crs`` missing or invalid, or coordinates impossible in a geographic ``crs``.

    Notes
    -----
    Rows are counted from 1 at the first data row (the header is not a row). Cells are
    cleaned per element column with these policies, each counted in the report:

    * numbers equal to a ``missing`` sentinel, empty cells and markers such as ``NA``,
      ``n.a.``, ``-``, ``nd`` are missing (``missing`` counts all of them, ``sentinel`` the
      sentinels among them, ``implausible_dl`` and ``over_range`` the codes found by the
      ``sentinels="auto"`` policy, ``nonfinite`` the infinities read as missing);
    * ``"<0.5"`` is below detection with DL 0.5; a negative number ``-0.5`` is below
      detection written as -DL, so DL 0.5;
    * an exact 0 (and a bare ``"BDL"``) is below a DL the table does not state: the DL is
      taken as the smallest positive value in that column (``zero_as_bdl``), or where the
      column has none the smallest DL it states (NaN when it states none either);
    * ``">1000"`` is kept as 1000 and counted as ``above_detection``;
    * any other text raises :class:`~xprospect.exceptions.DataError` naming it.

    Columns: a column named ``<analyte>_<unit>``, or a major oxide without suffix (``SiO2``,
    ``Al2O3``, ``Fe2O3``, ``MgO``, ``CaO``, ``TiO2``... read in wt%, listed under
    ``assumed_units``), is an element; a column with an empty header (``Unnamed: 0``, a stray
    pandas index) is ignored with that reason; every other column is kept as a text
    coordinate (metadata), read verbatim (``NA``, ``NULL``, ``None`` stay text). A header
    named twice is refused. Coordinates must lie inside the area of use of ``crs`` (and of
    ``to_crs``), widened by a margin; the error names the first row outside and says when
    swapping x and y would fit.

    Below-detection cells then get the ``bdl`` value. An element column with every value
    missing raises when requested in ``elements`` and is otherwise dropped and listed in the
    report.

    Duplicates: an *exact duplicate* has the location and every element value (after
    cleaning, NaN equal to NaN, below-detection compared by DL) of an earlier row; a
    *co-located* sample shares an earlier sample's location with other values. ``"keep"``
    only counts them; ``"drop"`` removes exact duplicates (keeping the first), leaving
    co-located samples; ``"mean"`` also replaces co-located samples by one sample whose
    elements are the NaN-ignoring mean (after the ``bdl`` policy) and whose ids and ``row``
    are the first's; ``"error"`` raises if any row repeats an earlier location.

    Examples
    --------
    >>> import pandas as pd
    >>> import xprospect as xp
    >>> table = pd.DataFrame({
    ...     "lon": [117.5, 117.6, 117.6], "lat": [-33.5, -33.4, -33.4],
    ...     "Au_ppb": ["<1", "12", "12"], "Cu_ppm": [-2.0, 35.0, 35.0]})
    >>> ds = xp.read_samples(table, x="lon", y="lat", crs="EPSG:4326", to_crs="EPSG:32750",
    ...                      duplicates="drop", units="ppm")
    >>> ds.sizes["sample"]
    2
    >>> ds["Au"].values.tolist()
    [0.0005, 0.012]
    >>> ds["Cu"].values.tolist()
    [1.0, 35.0]
    >>> xp.ingest_report(ds)["n_exact_duplicates"]
    1
    """
    if crs is None:
        msg = (
            "crs= is required: the CRS of the x/y columns, e.g. crs='EPSG:4326' for "
            "longitude/latitude or crs='EPSG:32750' for UTM 50S"
        )
        raise CRSError(msg)
    crs_in = parse_crs(crs, "crs")
    crs_out = parse_crs(to_crs, "to_crs") if to_crs is not None else None
    auto, extra_codes = _sentinel_option(sentinels)
    factor, target, sentinels = _check_options(bdl, duplicates, units, missing)
    check_choice(nonfinite, _NONFINITE_POLICIES, "nonfinite")
    check_choice(missing_coords, _MISSING_COORDS_POLICIES, "missing_coords")
    element_sentinels = np.concatenate([sentinels, extra_codes])
    coords = {"x": x, "y": y} | ({"z": z} if z is not None else {})

    frame, plan, label, file_name, used_encoding = _read_table(
        source, coords, elements, id_column, encoding
    )
    n_read = len(frame)

    # --- coordinates
    present = np.ones(n_read, dtype=bool)
    if missing_coords == "drop":
        for col in coords.values():
            present &= ~_coord_missing(frame[col], sentinels)
    loc = {
        role: numbers(
            frame.loc[present] if not present.all() else frame,
            col,
            role,
            label,
            sentinels=sentinels,
            hint="; every sample needs a location",
            rows=np.flatnonzero(present),
        )
        for role, col in coords.items()
    }
    base = np.flatnonzero(present)
    check_area_of_use(
        crs_in, loc["x"], loc["y"], label=label, what="samples", x_name=x, y_name=y, rows=base + 1
    )
    if crs_out is not None:
        check_area_of_use(
            crs_out,
            loc["x"],
            loc["y"],
            label=label,
            what="samples",
            x_name=x,
            y_name=y,
            rows=base + 1,
            src=crs_in,
        )

    # --- elements
    cleaned: dict[str, _Column] = {}
    dropped: list[str] = []
    for col in plan.elements:
        c = _clean_column(frame[col], col, label, element_sentinels, auto, nonfinite)
        if c.counts["missing"] == n_read:
            if plan.explicit:
                msg = (
                    f"element column {col!r} in {label} has no data: every value is missing "
                    f"({c.counts['sentinel']} sentinels {sentinels.tolist()}, "
                    f"{n_read - c.counts['sentinel']} empty or NA)"
                )
                raise DataError(msg)
            dropped.append(col)
            continue
        cleaned[col] = c
    if not cleaned:
        raise DataError(f"every element column in {label} is entirely missing: {dropped}")
    if not present.all():  # rows without coordinates, dropped by missing_coords="drop"
        cleaned = {
            col: _Column(c.value[base], c.dl[base], c.bdl[base], c.counts)
            for col, c in cleaned.items()
        }
    targets = _column_targets(target, cleaned, plan, label)

    # variable names: the bare analyte, or the column where two columns give one analyte
    bare = [plan.analytes[col] for col in cleaned]
    var_names: dict[str, str] = {}
    for col in cleaned:
        name = plan.analytes[col]
        if bare.count(name) > 1:
            logger.info(
                "columns %s in %s all hold %s; keeping their full names as variables",
                [c for c in cleaned if plan.analytes[c] == name],
                label,
                name,
            )
            name = col
        var_names[col] = name

    # values after the bdl policy and unit conversion
    values: dict[str, np.ndarray] = {}
    dls: dict[str, np.ndarray] = {}
    out_units: dict[str, str] = {}
    for col, c in cleaned.items():
        unit = plan.units[col]
        scale = 1.0
        if col in targets and unit != "unknown":
            scale = _TO_PPM[unit] / _TO_PPM[targets[col]]
        if col in targets:
            unit = targets[col]
        with np.errstate(over="ignore"):
            v = c.value * scale
            dl = c.dl * scale
        over = (np.isinf(v) & np.isfinite(c.value)) | (np.isinf(dl) & np.isfinite(c.dl))
        if over.any():
            i = int(np.flatnonzero(over)[0])
            msg = (
                f"column {col!r} in {label}: converting {plan.units[col]} to {unit} "
                f"overflows float64 at row {int(base[i]) + 1} (value "
                f"{float(c.value[i] if np.isfinite(c.value[i]) else c.dl[i])!r})"
            )
            raise DataError(msg)
        if factor is not None:
            v[c.bdl] = factor * dl[c.bdl]
        values[col], dls[col], out_units[col] = v, dl, unit

    # --- duplicates, judged on the location and the cleaned values with BDL as -DL
    loc_arr = np.column_stack([loc[r] for r in coords])
    exact, colocated = _duplicate_masks(loc_arr, list(cleaned.values()))
    n_exact, n_coloc = int(exact.sum()), int(colocated.sum())
    n_coloc_locs = int(pd.DataFrame(loc_arr[colocated]).drop_duplicates().shape[0])
    if duplicates == "error" and (n_exact or n_coloc):
        i = int(np.flatnonzero(exact | colocated)[0])
        j = _first_twin(loc_arr, i)
        where = dict(zip(coords, loc_arr[i].tolist(), strict=True))
        msg = (
            f"{label} has {n_exact + n_coloc} rows at the location of an earlier row "
            f"({n_exact} exact duplicates, {n_coloc} co-located with other values); first: "
            f"row {int(base[i]) + 1} repeats row {int(base[j]) + 1} at {where}; "
            "use duplicates='drop' or 'mean'"
        )
        raise DataError(msg)
    keep = ~exact if duplicates in ("drop", "mean") else np.ones(base.size, dtype=bool)
    rows = np.flatnonzero(keep)
    if duplicates == "mean" and n_coloc:
        group = pd.DataFrame(loc_arr[rows]).groupby(list(range(loc_arr.shape[1])), sort=False)
        codes = group.ngroup().to_numpy()
        n_groups = int(codes.max()) + 1
        first = np.unique(codes, return_index=True)[1]
        for col, v in values.items():
            v = v[rows]
            ok = ~np.isnan(v)
            total = np.bincount(codes, weights=np.where(ok, v, 0.0), minlength=n_groups)
            count = np.bincount(codes, weights=ok.astype("float64"), minlength=n_groups)
            mean = np.full(n_groups, np.nan)
            np.divide(total, count, out=mean, where=count > 0)
            values[col] = mean
        rows = rows[first]
    else:
        values = {col: v[rows] for col, v in values.items()}

    # --- coordinates, reprojected
    xs, ys = loc["x"][rows], loc["y"][rows]
    if crs_out is not None:
        tr = Transformer.from_crs(crs_in, crs_out, always_xy=True)
        xs, ys = (np.asarray(a, dtype="float64") for a in tr.transform(xs, ys))
        bad = ~(np.isfinite(xs) & np.isfinite(ys))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            msg = (
                f"reprojecting {label} from {crs_in.to_string()} to {crs_out.to_string()} "
                f"gave {int(bad.sum())} non-finite coordinates, first at row "
                f"{int(base[rows[i]]) + 1} "
                f"(x={loc['x'][rows[i]]!r}, y={loc['y'][rows[i]]!r})"
            )
            raise CRSError(msg)
    ds_coords: dict[str, Any] = {"x": (SAMPLE_DIM, xs), "y": (SAMPLE_DIM, ys)}
    if "z" in loc:
        ds_coords["z"] = (SAMPLE_DIM, loc["z"][rows])
    src_rows = base[rows]
    ds_coords["row"] = (SAMPLE_DIM, (src_rows + 1).astype("int64"))
    if id_column is not None:
        ds_coords["sample_id"] = (SAMPLE_DIM, text_values(frame[id_column].iloc[src_rows]))
    used = set(ds_coords) | set(var_names.values())
    skip = set(plan.elements) | set(plan.ignored) | set(coords.values()) | {id_column}
    for col in frame.columns:
        if col in skip:
            continue
        name = _unique_name(str(col), used)
        used.add(name)
        ds_coords[name] = (SAMPLE_DIM, text_values(frame[col].iloc[src_rows]))

    data_vars = {}
    for col, v in values.items():
        dl = dls[col][cleaned[col].bdl]
        attrs = {
            "units": out_units[col],
            "source_column": str(col),
            "detection_limits": np.unique(dl[np.isfinite(dl)]).tolist(),
            "bdl": bdl if isinstance(bdl, str) else float(bdl),
        }
        data_vars[var_names[col]] = xr.Variable(SAMPLE_DIM, v.astype("float64"), attrs)
    ds = xr.Dataset(data_vars, coords=ds_coords)

    report = {
        "source": file_name if file_name is not None else "DataFrame",
        "n_rows_read": n_read,
        "n_samples": int(ds.sizes[SAMPLE_DIM]),
        "crs": crs_in.to_string(),
        "to_crs": crs_out.to_string() if crs_out is not None else None,
        "bdl": bdl if isinstance(bdl, str) else float(bdl),
        "duplicates": duplicates,
        "n_exact_duplicates": n_exact,
        "n_exact_duplicates_dropped": n_exact if duplicates in ("drop", "mean") else 0,
        "n_colocated": n_coloc,
        "n_colocated_locations": n_coloc_locs,
        "n_colocated_merged": n_coloc if duplicates == "mean" else 0,
        "missing_sentinels": sentinels.tolist(),
        "units": target,
        "elements": {var_names[c]: str(c) for c in cleaned},
        "columns": {str(c): cleaned[c].counts for c in cleaned},
        "dropped_columns": [str(c) for c in dropped],
        "ignored_columns": [str(c) for c in plan.ignored],
        "ignored_reasons": {str(c): plan.reasons.get(c, "") for c in plan.ignored},
        "assumed_units": {str(c): why for c, why in plan.assumed.items() if c in cleaned},
        "column_roles": _column_roles(frame.columns, plan, coords, id_column, cleaned, dropped),
        "sentinel_policy": SENTINEL_POLICY if auto else "off",
        "sentinel_codes": extra_codes.tolist(),
        "nonfinite": nonfinite,
        "missing_coords": missing_coords,
        "n_rows_without_coords": int((~present).sum()),
        "encoding": used_encoding,
    }
    ds.attrs[REPORT_ATTR] = dumps(report, nonfinite="keep")
    ds = write_crs(ds, crs_out if crs_out is not None else crs_in)

    n_bdl = sum(c.counts["below_detection"] for c in cleaned.values())
    n_miss = sum(c.counts["missing"] for c in cleaned.values())
    logger.info(
        "read %d rows from %s: %d samples, %d elements; %d exact duplicates (%s), %d co-located; "
        "%d cells below detection (bdl=%r), %d missing; dropped all-missing columns %s",
        n_read,
        report["source"],
        report["n_samples"],
        len(cleaned),
        n_exact,
        "dropped" if duplicates in ("drop", "mean") else "kept",
        n_coloc,
        n_bdl,
        bdl,
        n_miss,
        report["dropped_columns"],
    )
    return ds
