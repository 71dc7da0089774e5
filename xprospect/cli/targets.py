"""``xprospect targets``: ranked target regions at the top N % of the area."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xprospect.cli._common import (
    Command,
    add_deposit_options,
    add_map_options,
    deposits_from,
    open_map,
    positive_int,
    share,
)
from xprospect.pipeline import steps

__all__ = ["COMMAND"]

log = logging.getLogger("xprospect.cli")


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``targets`` options."""
    add_map_options(p)
    p.add_argument(
        "--top",
        type=share,
        nargs="+",
        default=list(steps.DEFAULT_TOP_PERCENT),
        help="percent of the area per level (default 10 2)",
    )
    p.add_argument("--min-cells", type=positive_int, default=1, help="smallest region in cells (1)")
    add_deposit_options(p, required=False)
    p.add_argument(
        "--out", nargs="+", required=True, help="outputs: targets.gpkg targets.geojson targets.csv"
    )


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``targets``; return the files written."""
    score = open_map(args.map, args.variable).compute()
    deposits = deposits_from(args, score) if args.deposits else None
    tgt = steps.make_targets(
        score, top_percent=args.top, deposits=deposits, min_cells=args.min_cells
    )
    written = steps.write_targets(tgt, args.out)
    for level, n in tgt.table.groupby("level").size().items():
        log.info("%d regions in the %s of the area", n, level)
    return written


COMMAND = Command(
    "targets",
    help="delineate target regions at the top N %% of the area (GeoPackage, GeoJSON, CSV)",
    description=(
        "Delineate and rank target regions: the cells in the top N % of the map's area, "
        "one nested level per --top value (default 10 and 2). The format follows each "
        "--out suffix: .gpkg, .geojson or .csv."
    ),
    options=_options,
    run=_run,
)
