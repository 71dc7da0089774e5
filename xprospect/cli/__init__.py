"""The ``xprospect`` command line: from a survey table and deposits to a map without Python.

Commands (``xprospect COMMAND --help`` for each): ``grid``, ``transform``, ``select``,
``train``, ``score``, ``evaluate``, ``targets``, ``anomaly``, ``benchmark``,
``benchmark3d``, ``benchmark-samples``, ``init``, ``run`` and ``demo``. Each is a thin layer over
:mod:`xprospect.pipeline`; one module per command in this package registers its options and
runs it.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from xprospect._version import __version__
from xprospect.cli import (
    anomaly,
    benchmark,
    benchmark3d,
    benchmark_samples,
    demo,
    evaluate,
    grid,
    init,
    run,
    score,
    select,
    targets,
    train,
    transform,
)
from xprospect.cli._common import Parser, common_options, one_line, quiet_output
from xprospect.cli.demo import run_demo

__all__ = ["build_parser", "main", "run_demo"]

_COMMANDS = [init, run, grid, transform, select, train, score, evaluate, targets, anomaly]
_COMMANDS += [benchmark, benchmark3d, benchmark_samples, demo]


def build_parser() -> argparse.ArgumentParser:
    """Build the ``xprospect`` parser with every command.

    Returns
    -------
    argparse.ArgumentParser
    """
    common = common_options()
    parser = Parser(
        prog="xprospect",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        parents=[common],
    )
    parser.add_argument(
        "--version", action="version", version=f"xprospect {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=Parser, metavar="COMMAND"
    )
    for module in _COMMANDS:
        module.COMMAND.register(sub, [common])
    return parser


def _print_written(paths: Sequence[Path]) -> None:
    seen = [p for p in dict.fromkeys(Path(p) for p in paths) if p.exists()]
    if not seen:
        return
    print("wrote:")
    for p in seen:
        print(f"  {p}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xprospect`` command.

    Every failure prints one line ``xprospect: error: <message>`` on stderr, without a
    traceback (``--debug`` shows it): exit status 2 for bad usage (an argument out of range,
    an unknown option), 1 when the job fails (bad input or an output that cannot be written).
    On success the files written are listed on stdout.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    args = build_parser().parse_args(argv)
    try:
        with quiet_output(args):
            written = args.func(args)
    except Exception as err:  # one line for the user; the traceback only when asked
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"xprospect: error: {one_line(err)}", file=sys.stderr)
        return 1
    _print_written(written)
    return 0
