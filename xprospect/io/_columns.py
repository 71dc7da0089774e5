"""Column handling shared by the table readers: names, lists, numbers and text.

Every reader of :mod:`xprospect.io` names a missing column, a non-numeric value or an empty
id the same way, through these helpers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from xprospect.exceptions import DataError

__all__ = [
    "check_choice",
    "check_columns",
    "is_numeric",
    "list_columns",
    "norm_name",
    "numbers",
    "sentinel_mask",
    "text_values",
]


def norm_name(name: str) -> str:
    """Lower case, spaces and dashes as ``_``: how column names are compared."""
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def list_columns(columns: Sequence[str], limit: int = 40) -> str:
    """Return the columns for a message, cut after ``limit`` names."""
    cols = [str(c) for c in columns]
    if len(cols) <= limit:
        return repr(cols)
    return f"{cols[:limit]!r} and {len(cols) - limit} more"


def check_columns(columns: Sequence[str], wanted: Mapping[str, str], label: str) -> None:
    """Raise unless every column of ``wanted`` (role -> column) is in ``columns``, once each.

    Parameters
    ----------
    columns : sequence of str
        The table's columns.
    wanted : mapping of str to str
        Role (the keyword that named it, e.g. ``x``) to column name.
    label : str
        The table, for messages.

    Raises
    ------
    DataError
        Naming the missing column, a near miss in case, and the columns available.
    """
    for role, col in wanted.items():
        if col not in columns:
            near = [c for c in columns if str(c).lower() == str(col).lower()]
            hint = f"; did you mean {near[0]!r}?" if near else ""
            msg = (
                f"coordinate column {col!r} (for {role}=) is not in {label}{hint} "
                f"available columns: {list_columns(columns)}"
            )
            raise DataError(msg)
    if len(set(wanted.values())) != len(wanted):
        raise DataError(f"x, y and z must name different columns; got {dict(wanted)}")


def is_numeric(s: pd.Series) -> bool:
    """Whether a column holds numbers (booleans are not numbers here)."""
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def sentinel_mask(v: np.ndarray, sentinels: np.ndarray) -> np.ndarray:
    """Where ``v`` equals one of the missing-value sentinels (e.g. -9999)."""
    mask = np.zeros(v.shape, dtype=bool)
    for s in sentinels:
        mask |= np.isclose(v, s, rtol=1e-9, atol=1e-6)
    return mask


def numbers(
    frame: pd.DataFrame,
    col: str,
    what: str,
    label: str,
    *,
    ids: np.ndarray | None = None,
    sentinels: np.ndarray | None = None,
    hint: str = "",
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Return a column as finite float64 values, or raise naming the first bad row.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table.
    col : str
        The column.
    what : str
        Its role (``x``, ``depth``), for messages.
    label : str
        The table, for messages.
    ids : numpy.ndarray, optional
        Hole ids of the rows, named in messages.
    sentinels : numpy.ndarray, optional
        Values that mean "missing".
    hint : str
        Appended to the message (e.g. why every row needs a value).
    rows : numpy.ndarray, optional
        0-based source rows of the frame's rows (when some were left out), for messages.

    Returns
    -------
    numpy.ndarray
        float64 values.

    Raises
    ------
    DataError
        ``column 'E' (x) in <label> has N missing or non-numeric values, first <v> at row
        <r>`` (rows counted from 1, the header not counted).
    """
    s = frame[col]
    v = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    bad = ~np.isfinite(v)
    if np.isinf(v).any():
        i = int(np.flatnonzero(np.isinf(v))[0])
        row = i if rows is None else int(rows[i])
        hole = "" if ids is None else f" in hole {ids[i]!r}"
        msg = (
            f"column {col!r} ({what}) in {label} has {int(np.isinf(v).sum())} non-finite "
            f"values, first {s.iloc[i]!r}{hole} at row {row + 1}"
        )
        raise DataError(msg)
    if sentinels is not None and len(sentinels):
        bad |= sentinel_mask(v, sentinels)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = i if rows is None else int(rows[i])
        hole = "" if ids is None else f" in hole {ids[i]!r}"
        msg = (
            f"column {col!r} ({what}) in {label} has {int(bad.sum())} missing or "
            f"non-numeric values, first {s.iloc[i]!r}{hole} at row {row + 1}{hint}"
        )
        raise DataError(msg)
    return v


def text_values(s: pd.Series) -> np.ndarray:
    """Return a column as text (object array, ``""`` for missing); whole floats print as ints."""
    if pd.api.types.is_float_dtype(s.dtype):
        # integers stored as floats because of gaps print as "5", not "5.0"
        vals = s.to_numpy(dtype="float64", na_value=np.nan)
        fin = np.isfinite(vals)
        if fin.any() and np.all(vals[fin] == np.round(vals[fin])):
            s = s.astype("Int64")
    return s.astype("string").to_numpy(dtype=object, na_value="")


def check_choice(value: object, options: Sequence[str], name: str) -> None:
    """Raise unless ``value`` is one of ``options`` (a policy or method keyword)."""
    if value not in options:
        raise DataError(f"{name} must be one of {list(options)}; got {value!r}")
