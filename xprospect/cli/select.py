"""``xprospect select``: rank elements by AUC / Z_AUC against deposits (a CSV table)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import xprospect as xp
from xprospect.cli._common import (
    Command,
    add_deposit_options,
    deposits_from,
    positive_float,
    positive_int,
)
from xprospect.io._atomic import atomic_path
from xprospect.pipeline import steps

__all__ = ["COMMAND"]

log = logging.getLogger("xprospect.cli")


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``select`` options."""
    p.add_argument("maps", help="zarr store of (transformed) element maps")
    add_deposit_options(p)
    p.add_argument(
        "--alpha", type=positive_float, default=0.01, help="significance level (default 0.01)"
    )
    p.add_argument(
        "--min-elements", type=positive_int, default=2, help="choose at least this many (2)"
    )
    p.add_argument(
        "--max-elements", type=positive_int, default=8, help="choose at most this many (8)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the negatives (default 0)")
    p.add_argument("--out", required=True, help="CSV table to write (column chosen marks them)")


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``select``; return the files written."""
    maps = xp.open_zarr(args.maps, chunks={}).compute()
    deposits = deposits_from(args, maps)
    table, chosen = steps.choose_elements(
        maps,
        deposits,
        alpha=args.alpha,
        min_elements=args.min_elements,
        max_elements=args.max_elements,
        seed=args.seed,
    )
    table = table.assign(chosen=table.index.isin(chosen))
    out = Path(args.out)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index_label="element")
    best = ", ".join(f"{e} {steps.significant(table.loc[e, 'z_auc'])}" for e in chosen)
    log.info("%d of %d elements chosen (Z_AUC): %s", len(chosen), len(table), best)
    return [out]


COMMAND = Command(
    "select",
    help="rank elements by AUC / Z_AUC against deposits and choose the model's inputs",
    description="Rank elements by AUC / Z_AUC against deposits; write the table as CSV.",
    options=_options,
    run=_run,
)
