"""What every ``xprospect`` command shares: argument types, output policy, one-line errors.

Output policy: the commands speak through the ``xprospect.cli`` and ``xprospect.pipeline``
loggers (short human lines on stderr) and end with the list of files written on stdout. Only
the ``xprospect`` logger gets a handler, and only while a command runs: the root logger is
never configured. ``--quiet`` keeps warnings and errors only; ``--verbose`` adds the
library's own INFO lines (ingest reports, sampling policies); ``--debug`` shows the Python
traceback of an error. Progress bars are drawn on a terminal (never with ``--quiet``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import xarray as xr

import xprospect as xp
from xprospect.exceptions import DataError, XProspectError
from xprospect.pipeline import steps

__all__ = [
    "Command",
    "Parser",
    "add_deposit_options",
    "add_map_options",
    "add_store_options",
    "check_new",
    "common_options",
    "deposits_from",
    "one_line",
    "open_map",
    "positive_float",
    "positive_int",
    "progress_of",
    "quiet_output",
    "share",
    "write_store",
]

log = logging.getLogger("xprospect.cli")

_SPOKEN = ("xprospect.cli", "xprospect.pipeline")


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the problem and the command's help, then exit 2."""
        self.exit(2, f"xprospect: error: {message} (see xprospect {self._sub_hint()}--help)\n")

    def _sub_hint(self) -> str:
        words = self.prog.split()[1:]
        return "".join(f"{w} " for w in words)


def _positive(text: str, kind: type[int] | type[float], what: str) -> float:
    """Parse ``text`` as ``kind`` and refuse what is not positive and finite, naming it."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive {what}; got {text!r}") from None
    if not (np.isfinite(value) and value > 0):
        shown = value if kind is int else text  # an integer as parsed, a number as typed
        raise argparse.ArgumentTypeError(f"expected a positive {what}; got {shown}")
    return value


def positive_int(text: str) -> int:
    """Parse a positive integer argument.

    Parameters
    ----------
    text : str

    Returns
    -------
    int
    """
    value = _positive(text, int, "integer")
    return int(value)


def positive_float(text: str) -> float:
    """Parse a positive, finite number argument.

    Parameters
    ----------
    text : str

    Returns
    -------
    float
    """
    return float(_positive(text, float, "number"))


def share(text: str) -> float:
    """Parse a share of the area in percent, in (0, 100].

    Parameters
    ----------
    text : str

    Returns
    -------
    float
    """
    value = positive_float(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected a percentage in (0, 100]; got {text}")
    return value


def common_options() -> argparse.ArgumentParser:
    """Options every command takes (before or after its name): debug, quiet, verbose.

    Returns
    -------
    argparse.ArgumentParser
        A parent parser (``add_help=False``).
    """
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("output")
    g.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the Python traceback of an error",
    )
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print only warnings, errors and the files written; no progress bars",
    )
    g.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="also print the library's detailed reports (ingest, sampling, splits)",
    )
    return p


@dataclass(frozen=True)
class Command:
    """One ``xprospect`` command: its name, help lines, options and what runs it.

    Parameters
    ----------
    name : str
        The command's word, e.g. ``"grid"``.
    help : str
        The line in ``xprospect --help``.
    description : str
        The paragraph of ``xprospect NAME --help``.
    options : callable
        Adds the command's own options to its parser.
    run : callable
        Runs the command on the parsed arguments; returns the files written.
    """

    name: str
    help: str
    description: str
    options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], list[Path]]

    def register(
        self, sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]
    ) -> argparse.ArgumentParser:
        """Add the command to the ``xprospect`` subparsers.

        Parameters
        ----------
        sub : subparsers
        parents : list of parsers
            Shared options.

        Returns
        -------
        argparse.ArgumentParser
            The command's parser.
        """
        p = sub.add_parser(self.name, parents=parents, help=self.help, description=self.description)
        self.options(p)
        p.set_defaults(func=self.run)
        return p


def add_map_options(p: argparse.ArgumentParser) -> None:
    """Add the positional ``map`` (zarr store or GeoTIFF) and ``--variable``.

    Parameters
    ----------
    p : argparse.ArgumentParser
    """
    p.add_argument("map", help="zarr store (prospectivity or anomaly) or GeoTIFF")
    p.add_argument("--variable", default=None, help="variable of a zarr store (default the map's)")


def add_store_options(p: argparse.ArgumentParser, out: str, *, geotiff: bool = False) -> None:
    """Add ``--out`` (a zarr store), optionally ``--geotiff``, and ``--overwrite``.

    Parameters
    ----------
    p : argparse.ArgumentParser
    out : str
        Help line of ``--out``.
    geotiff : bool
        Whether the command can also write a COG GeoTIFF.
    """
    p.add_argument("--out", required=True, help=out)
    if geotiff:
        p.add_argument("--geotiff", default=None, help="also write the map as a COG GeoTIFF here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")


def write_store(ds: xr.Dataset, out: Path, args: argparse.Namespace, **kwargs: Any) -> None:
    """Write a command's zarr store: replace it only with ``--overwrite``, progress per policy.

    Parameters
    ----------
    ds : xarray.Dataset
    out : Path
        The store (checked by :func:`check_new`).
    args : argparse.Namespace
        With ``overwrite`` (and ``quiet``).
    **kwargs
        Passed to :func:`xprospect.to_zarr` (``resume``, ``job``).
    """
    mode = "w" if args.overwrite else "w-"  # resume=True finishes an existing store
    xp.to_zarr(ds, out, mode=mode, progress=progress_of(args), **kwargs)


def add_deposit_options(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    """Add ``--deposits`` and the options that say how to read it.

    Parameters
    ----------
    p : argparse.ArgumentParser
    required : bool
        Whether ``--deposits`` must be given.
    """
    g = p.add_argument_group("deposits")
    g.add_argument(
        "--deposits",
        required=required,
        help="deposits file: CSV, Parquet, GeoPackage, Shapefile or GeoJSON points",
    )
    g.add_argument("--deposits-x", default="x", help="easting/longitude column (default x)")
    g.add_argument("--deposits-y", default="y", help="northing/latitude column (default y)")
    g.add_argument(
        "--deposits-crs",
        default=None,
        help="CRS of the deposits' coordinates (default: the map's; a vector file's own)",
    )
    g.add_argument(
        "--deposits-query",
        default=None,
        help="pandas query keeping some deposits, e.g. \"SITE_TYPE_ != 'Occurrence'\"",
    )


def deposits_from(args: argparse.Namespace, like: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """Read the deposits the options name, in the CRS of ``like``.

    Parameters
    ----------
    args : argparse.Namespace
    like : Dataset or DataArray
        A map (its CRS is the target).

    Returns
    -------
    xarray.Dataset
    """
    crs = like.rio.crs
    return steps.read_deposits(
        args.deposits,
        x=args.deposits_x,
        y=args.deposits_y,
        crs=args.deposits_crs,
        to_crs=crs,
        query=args.deposits_query,
        default_crs=crs,
    )


def open_map(path: str | Path, variable: str | None = None) -> xr.DataArray:
    """Open one map from a zarr store or a GeoTIFF.

    Without ``variable`` the store's ``prospectivity`` or ``anomaly`` variable, or its only
    one; a store of several other maps (element maps) asks for ``--variable``.

    Parameters
    ----------
    path : str or Path
    variable : str, optional

    Returns
    -------
    xarray.DataArray
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"cannot read {path}: no such file or folder")
    if path.suffix.lower() in (".tif", ".tiff"):
        da: Any = xp.read_geotiff(path)
        if isinstance(da, xr.Dataset):
            da = da[_one_variable(path, [str(v) for v in da.data_vars], variable)]
        return da.squeeze(drop=True) if "band" in da.dims else da
    ds = xp.open_zarr(path, chunks={})
    variable = _one_variable(path, [str(v) for v in ds.data_vars], variable)
    return ds[variable]


def _one_variable(path: Path, names: list[str], variable: str | None) -> str:
    """Return the variable to read: the one asked for, the map's, or the only one."""
    if variable is None:
        for preferred in ("prospectivity", "anomaly"):
            if preferred in names:
                return preferred
        if len(names) > 1:
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            msg = f"{path} holds {len(names)} maps ({shown}); choose one with --variable"
            raise DataError(msg)
        variable = names[0] if names else None
    if variable not in names:
        raise DataError(f"{path} holds no variable {variable!r}; it holds {names}")
    return variable


def check_new(path: str | Path, args: argparse.Namespace) -> Path:
    """Refuse an existing output unless ``--overwrite`` (or ``--resume``) says what to do.

    Parameters
    ----------
    path : str or Path
        The output.
    args : argparse.Namespace
        With optional ``overwrite`` and ``resume``.

    Returns
    -------
    Path
    """
    path = Path(path)
    if (
        path.exists()
        and not getattr(args, "overwrite", False)
        and not getattr(args, "resume", False)
    ):
        hint = " or --resume to finish it" if hasattr(args, "resume") else ""
        raise DataError(f"{path} already exists; pass --overwrite to replace it{hint}")
    return path


def progress_of(args: argparse.Namespace) -> bool | None:
    """Progress policy of a command: never with ``--quiet``, else on a terminal.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    bool or None
    """
    return False if getattr(args, "quiet", False) else None


class _Spoken(logging.Filter):
    """Let through the commands' own INFO lines; the library's only from WARNING up."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose or record.levelno >= logging.WARNING:
            return True
        return record.name.startswith(_SPOKEN)


@contextlib.contextmanager
def quiet_output(args: argparse.Namespace) -> Iterator[None]:
    """Route the ``xprospect`` loggers and warnings to short lines on stderr while a command runs.

    Parameters
    ----------
    args : argparse.Namespace
        With optional ``quiet`` and ``verbose``.

    Yields
    ------
    None
    """
    quiet = getattr(args, "quiet", False)
    verbose = getattr(args, "verbose", False) and not quiet
    logger = logging.getLogger("xprospect")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(_Spoken(verbose))
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False

    def show(message: Any, category: Any, filename: Any, lineno: Any, *a: Any, **k: Any) -> None:
        print(f"xprospect: warning: {' '.join(str(message).split())}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


def one_line(err: BaseException) -> str:
    """Say what went wrong in one line (an OSError names its file; others say their type).

    Parameters
    ----------
    err : BaseException

    Returns
    -------
    str
    """
    if isinstance(err, XProspectError):
        text = str(err)
    elif isinstance(err, OSError):
        where = f": {err.filename}" if err.filename else ""
        text = f"{err.strerror or err}{where}"
    else:
        text = f"unexpected {type(err).__name__}: {err} (run again with --debug for the traceback)"
    return " ".join(text.split())
