"""``xprospect transform``: clr, ilr, log10, z-score... of element maps, in order."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import xprospect as xp
from xprospect.cli._common import check_new, progress_of
from xprospect.pipeline import steps

__all__ = ["register", "run"]

log = logging.getLogger("xprospect.cli")


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``transform`` command.

    Parameters
    ----------
    sub : subparsers
    parents : list of parsers
        Shared options.
    """
    p = sub.add_parser(
        "transform",
        parents=parents,
        help="transform element maps (clr, ilr, log10, zscore, robust...) in order",
        description="Transform element maps in order, lazily, into a new zarr store.",
    )
    p.add_argument("maps", help="zarr store of element maps (from xprospect grid)")
    p.add_argument(
        "--methods",
        nargs="+",
        default=["clr", "zscore"],
        help="transforms in order (default clr zscore); known: "
        + ", ".join(xp.preprocess.TRANSFORMS),
    )
    p.add_argument("--out", required=True, help="zarr store to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> list[Path]:
    """Run ``transform``.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    list of Path
        Files written.
    """
    out = check_new(args.out, args)
    maps = xp.open_zarr(args.maps, chunks={})
    out_maps = steps.transform_maps(maps, args.methods)
    log.info("%d maps: %s", len(out_maps.data_vars), ", ".join(args.methods))
    xp.to_zarr(out_maps, out, mode="w" if args.overwrite else "w-", progress=progress_of(args))
    return [out]
