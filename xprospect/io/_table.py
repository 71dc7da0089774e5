"""The one table reader of :mod:`xprospect.io`: samples, points and drillholes read through it.

:func:`read_table` takes a path (CSV-like with any of ``, ; TAB |`` as separator, optionally
compressed, or Parquet) or a pandas DataFrame and returns the frame with string column names,
never the caller's object. Every reader therefore refuses the same things with the same
errors: an unknown suffix (:class:`~xprospect.exceptions.DataError`), a missing file
(:class:`~xprospect.exceptions.MissingFileError`, also a :class:`FileNotFoundError`), a
source that is neither a path nor a table, and a table without data rows.

CSV text is read as text first (``keep_default_na=False``) and then typed per column: a
column whose every cell is a number or one of pandas' NA tokens (``NA``, ``NULL``, ``None``,
``n/a``, empty...) becomes numeric with those cells missing; any other column stays text
*verbatim*, so an id or a country code ``NA`` (Namibia) is never turned into a gap. Columns
the caller names as text (``dtype=``) are never typed. An empty file, a ragged row, a
duplicated header and bytes that are not UTF-8 are handled here too: the first three are
refused naming the file (and the row), the last is read as Windows-1252 (or the
``encoding=`` given) and :attr:`Table.encoding` says which was used.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.common import get_handle

from xprospect.exceptions import DataError, MissingFileError

__all__ = ["Table", "file_kind", "read_table"]

_CSV_SUFFIXES = (".csv", ".txt", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zip", ".xz", ".zst")
# pandas' default NA tokens: missing in numeric columns only (text columns keep them as text).
NA_TOKENS = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)
# Tried in this order when no encoding= is given: UTF-8 (with or without a BOM), then the
# Windows code page assay tables exported on Windows use; latin-1 decodes any byte.
_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")


@dataclass(frozen=True)
class Table:
    """A table read by :func:`read_table`.

    Attributes
    ----------
    frame : pandas.DataFrame
        The rows (a shallow copy of a DataFrame given; string column names).
    label : str
        How to name the table in messages (the path, or the caller's DataFrame label).
    name : str or None
        The file name, None for a DataFrame.
    encoding : str or None
        The text encoding a CSV was read with (None for Parquet and DataFrames).
    """

    frame: pd.DataFrame
    label: str
    name: str | None
    encoding: str | None = None


def file_kind(path: Path) -> tuple[str, bool]:
    """Return ``("csv" | "parquet", compressed)`` from a path's suffixes, or raise.

    Parameters
    ----------
    path : pathlib.Path
        The file.

    Returns
    -------
    tuple of (str, bool)
        The format and whether a CSV is compressed.

    Raises
    ------
    DataError
        If the suffix names no format the readers know.
    """
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in _COMPRESSION_SUFFIXES
    if compressed:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in _CSV_SUFFIXES:
        return "csv", compressed
    if last in _PARQUET_SUFFIXES and not compressed:
        return "parquet", False
    msg = (
        f"cannot tell the format of {path}: expected a suffix "
        f"{list(_CSV_SUFFIXES + _PARQUET_SUFFIXES)} (or a pandas DataFrame)"
    )
    raise DataError(msg)


def _sniff_sep(header: str) -> str:
    counts = {s: header.count(s) for s in (",", ";", "\t", "|")}
    sep = max(counts, key=counts.__getitem__)
    return sep if counts[sep] else ","


def _read_text(
    path: Path, compressed: bool, encoding: str | None, label: str, what: str
) -> tuple[str, str]:
    """Return the file's text and the encoding that decoded it."""
    if compressed:
        with get_handle(path, "rb", compression="infer", is_text=False) as h:
            raw = h.handle.read()
    else:
        raw = path.read_bytes()
    tried = (encoding,) if encoding is not None else _ENCODINGS
    for enc in tried:
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError as err:
            last = err
        except LookupError as err:
            raise DataError(f"encoding={encoding!r} is not a known text encoding") from err
    line = raw[: last.start].count(b"\n") + 1
    byte = raw[last.start : last.start + 1]
    msg = (
        f"the {what} {label} is not valid {encoding} text: byte {byte!r} "
        f"at line {line}; pass the file's encoding= (e.g. 'cp1252', 'latin-1')"
    )
    raise DataError(msg)


def _check_header(header: list[str], label: str, what: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen and name != "":
            msg = (
                f"the {what} {label} has the column {name!r} twice (columns {seen[name] + 1} "
                f"and {i + 1}); rename one so that no value is read under the wrong name"
            )
            raise DataError(msg)
        seen.setdefault(name, i)


def type_columns(frame: pd.DataFrame, text: set[str]) -> pd.DataFrame:
    """Type a frame read as text: numeric where every cell is a number or an NA token.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns of Python strings (read with ``dtype=str, keep_default_na=False``).
    text : set of str
        Columns kept as text whatever they hold.

    Returns
    -------
    pandas.DataFrame
        Numeric columns as int64 (whole numbers, no gap) or float64 (NA tokens as NaN,
        ``inf`` and ``1e400`` kept as infinities for the readers to refuse by name); every
        other column unchanged, as text.
    """
    out = {}
    for col in frame.columns:
        s = frame[col]
        if col not in text:
            stripped = s.str.strip()
            na = stripped.isin(NA_TOKENS) | stripped.isna()  # short rows give NaN
            if not na.all():
                try:
                    num = pd.to_numeric(stripped[~na])
                except (ValueError, TypeError):
                    num = None
                if (
                    num is not None
                    and pd.api.types.is_float_dtype(num.dtype)
                    and np.isinf(num.to_numpy()).any()
                ):
                    num = None  # kept as text, so that readers name "Infinity" as written
                if num is not None and not pd.api.types.is_bool_dtype(num.dtype):
                    if na.any():
                        full = pd.Series(np.nan, index=s.index, dtype="float64")
                        full[~na] = num.astype("float64")
                        s = full
                    else:
                        s = num
            else:
                s = pd.Series(np.nan, index=s.index, dtype="float64")
        out[col] = s
    return pd.DataFrame(out, index=frame.index)


def _read_csv(
    path: Path,
    compressed: bool,
    label: str,
    what: str,
    encoding: str | None,
    dtype: Callable[[list[str]], Mapping[str, Any] | None] | None,
) -> tuple[pd.DataFrame, str]:
    text, used = _read_text(path, compressed, encoding, label, what)
    first = text.split("\n", 1)[0]
    if not text.strip():
        raise DataError(f"the {what} {label} is empty: no header and no rows")
    sep = _sniff_sep(first)
    header = next(csv.reader([first.rstrip("\r")], delimiter=sep))
    _check_header(header, label, what)
    try:
        names = [str(c) for c in pd.read_csv(io.StringIO(first), sep=sep, nrows=0).columns]
    except pd.errors.EmptyDataError as err:
        raise DataError(f"the {what} {label} has no header line") from err
    types = dtype(names) if dtype is not None else None
    text_cols = {c for c, t in (types or {}).items() if t is str}
    # one fast typed read: NA tokens only in columns not declared text; declared text verbatim
    na = {c: list(NA_TOKENS) for c in names if c not in text_cols}
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            encoding=used,
            dtype=dict.fromkeys(text_cols, str),
            keep_default_na=False,
            na_values=na,
            low_memory=False,
        )
    except pd.errors.EmptyDataError as err:
        raise DataError(f"the {what} {label} is empty: no header and no rows") from err
    except pd.errors.ParserError as err:
        m = re.search(r"line (\d+), saw (\d+)", str(err))
        m2 = re.search(r"Expected (\d+) fields", str(err))
        if m and m2:
            line = int(m.group(1))
            msg = (
                f"the {what} {label} has a ragged row: row {line - 1} (line {line} of the "
                f"file) has {m.group(2)} fields where the header has {m2.group(1)}"
            )
        else:
            msg = f"the {what} {label} cannot be parsed as {sep!r}-separated text: {err}"
        raise DataError(msg) from err
    frame.columns = [str(c) for c in frame.columns]
    # columns that came out as text (NA tokens may have been taken as gaps) or hold an
    # infinity (named as written by the readers): read again as text, then typed cell by cell
    again = [
        c
        for c in frame.columns
        if c not in text_cols
        and (
            not pd.api.types.is_numeric_dtype(frame[c].dtype)
            or (pd.api.types.is_float_dtype(frame[c].dtype) and np.isinf(frame[c].to_numpy()).any())
        )
    ]
    if again:
        raw = pd.read_csv(
            path,
            sep=sep,
            encoding=used,
            dtype=str,
            keep_default_na=False,
            usecols=lambda c: str(c) in again,
            low_memory=False,
        )
        raw.columns = [str(c) for c in raw.columns]
        typed = type_columns(raw, set())
        for c in again:
            frame[c] = typed[c]
    return frame, used


def read_table(
    source: Any,
    *,
    what: str,
    frame_label: str = "the DataFrame",
    dtype: Callable[[list[str]], Mapping[str, Any] | None] | None = None,
    allow_empty: bool = False,
    encoding: str | None = None,
) -> Table:
    """Read a CSV or Parquet file, or take a DataFrame, as one of the package's tables.

    Parameters
    ----------
    source : path or pandas.DataFrame
        The table.
    what : str
        What the table is (``"sample table"``, ``"points table"``, ``"collar table"``),
        for messages.
    frame_label : str
        How to name a DataFrame given as ``source`` in messages.
    dtype : callable, optional
        Called with a CSV's header before its rows are read; returns the ``dtype=`` of
        :func:`pandas.read_csv` (e.g. ids kept as text, so ``"007"`` stays ``"007"``). It
        may raise naming a missing column before any row is read.
    allow_empty : bool
        Accept a table without data rows (the caller then reports it itself).
    encoding : str, optional
        Text encoding of a CSV; by default UTF-8, then Windows-1252, then latin-1.

    Returns
    -------
    Table
        The frame, its label and file name.

    Raises
    ------
    MissingFileError
        If the file does not exist.
    DataError
        If the source is neither a path nor a DataFrame, its format is unknown, it holds
        no data rows, it is empty, a row has more fields than the header, a header is
        repeated, or its text is not in ``encoding``.
    """
    if isinstance(source, pd.DataFrame):
        frame = source.copy(deep=False)  # columns are only read, never assigned in place
        frame.columns = [str(c) for c in frame.columns]
        _check_header(list(frame.columns), frame_label, what)
        out = Table(frame, frame_label, None)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        label = str(source)
        kind, compressed = file_kind(path)
        if not path.is_file():
            raise MissingFileError(f"{what} {label} does not exist")
        used = None
        if kind == "parquet":
            frame = pd.read_parquet(path)
            frame.columns = [str(c) for c in frame.columns]
        else:
            frame, used = _read_csv(path, compressed, label, what, encoding, dtype)
        out = Table(frame, label, path.name, used)
    else:
        msg = f"the {what} must be a path or a pandas DataFrame; got {type(source).__name__}"
        raise DataError(msg)
    if len(out.frame) == 0 and not allow_empty:
        where = f"the {what} {out.label}" if out.name else f"the {what} given as a DataFrame"
        raise DataError(f"{where} has no data rows")
    return out
