"""``xprospect transform``: clr, ilr, log10, z-score... of element maps, in order."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import xprospect as xp
from xprospect.cli._common import Command, add_store_options, check_new, write_store
from xprospect.pipeline import steps

__all__ = ["COMMAND"]

log = logging.getLogger("xprospect.cli")


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``transform`` options."""
    p.add_argument("maps", help="zarr store of element maps (from xprospect grid)")
    p.add_argument(
        "--methods",
        nargs="+",
        default=["clr", "zscore"],
        help="transforms in order (default clr zscore); known: "
        + ", ".join(xp.preprocess.TRANSFORMS),
    )
    add_store_options(p, "zarr store to write")


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``transform``; return the files written."""
    out = check_new(args.out, args)
    maps = xp.open_zarr(args.maps, chunks={})
    out_maps = steps.transform_maps(maps, args.methods)
    log.info("%d maps: %s", len(out_maps.data_vars), ", ".join(args.methods))
    write_store(out_maps, out, args)
    return [out]


COMMAND = Command(
    "transform",
    help="transform element maps (clr, ilr, log10, zscore, robust...) in order",
    description="Transform element maps in order, lazily, into a new zarr store.",
    options=_options,
    run=_run,
)
