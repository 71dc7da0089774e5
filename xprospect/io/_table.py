"""The one table reader of :mod:`xprospect.io`: samples, points and drillholes read through it.

:func:`read_table` takes a path (CSV-like with any of ``, ; TAB |`` as separator, optionally
compressed, or Parquet) or a pandas DataFrame and returns the frame with string column names,
never the caller's object. Every reader therefore refuses the same things with the same
errors: an unknown suffix (:class:`~xprospect.exceptions.DataError`), a missing file
(:class:`~xprospect.exceptions.MissingFileError`, also a :class:`FileNotFoundError`), a
source that is neither a path nor a table, and a table without data rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from xprospect.exceptions import DataError, MissingFileError

__all__ = ["Table", "file_kind", "read_table"]

_CSV_SUFFIXES = (".csv", ".txt", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zip", ".xz", ".zst")


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
    """

    frame: pd.DataFrame
    label: str
    name: str | None


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
    msg = (f"cannot tell the format of {path}: expected a suffix "
           f"{list(_CSV_SUFFIXES + _PARQUET_SUFFIXES)} (or a pandas DataFrame)")
    raise DataError(msg)


def _sniff_sep(path: Path, compressed: bool) -> str:
    if compressed:
        return ","
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        header = f.readline()
    counts = {s: header.count(s) for s in (",", ";", "\t", "|")}
    sep = max(counts, key=counts.__getitem__)
    return sep if counts[sep] else ","


def read_table(source: Any, *, what: str, frame_label: str = "the DataFrame",
               dtype: Callable[[list[str]], Mapping[str, Any] | None] | None = None,
               allow_empty: bool = False) -> Table:
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

    Returns
    -------
    Table
        The frame, its label and file name.

    Raises
    ------
    MissingFileError
        If the file does not exist.
    DataError
        If the source is neither a path nor a DataFrame, its format is unknown, or it holds
        no data rows.
    """
    if isinstance(source, pd.DataFrame):
        frame = source.copy(deep=False)  # columns are only read, never assigned in place
        frame.columns = [str(c) for c in frame.columns]
        out = Table(frame, frame_label, None)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        label = str(source)
        kind, compressed = file_kind(path)
        if not path.is_file():
            raise MissingFileError(f"{what} {label} does not exist")
        if kind == "parquet":
            frame = pd.read_parquet(path)
            frame.columns = [str(c) for c in frame.columns]
        else:
            sep = _sniff_sep(path, compressed)
            types = None
            if dtype is not None:
                header = [str(c) for c in pd.read_csv(path, sep=sep, nrows=0).columns]
                types = dtype(header)
            frame = pd.read_csv(path, sep=sep, dtype=types, low_memory=False)
            frame.columns = [str(c) for c in frame.columns]
        out = Table(frame, label, path.name)
    else:
        msg = f"the {what} must be a path or a pandas DataFrame; got {type(source).__name__}"
        raise DataError(msg)
    if len(out.frame) == 0 and not allow_empty:
        where = f"the {what} {out.label}" if out.name else f"the {what} given as a DataFrame"
        raise DataError(f"{where} has no data rows")
    return out
