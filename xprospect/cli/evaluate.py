"""``xprospect evaluate``: a map against deposits (metrics JSON and a figure)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xprospect._json import dumps
from xprospect.cli._common import (
    Command,
    add_deposit_options,
    add_map_options,
    deposits_from,
    open_map,
    positive_int,
    share,
)
from xprospect.io._atomic import atomic_path
from xprospect.pipeline import steps

__all__ = ["COMMAND"]

log = logging.getLogger("xprospect.cli")


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``evaluate`` options."""
    add_map_options(p)
    add_deposit_options(p)
    p.add_argument(
        "--top",
        type=share,
        default=steps.DEFAULT_TOP_PERCENT[0],
        help="percent of the area called prospective (default 10)",
    )
    p.add_argument(
        "--blocks", type=positive_int, nargs=2, default=[12, 12], help="block grid (12 12)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the negatives (default 0)")
    p.add_argument("--out", required=True, help="folder for metrics.json and evaluation.png")


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``evaluate``; return the files written."""
    score = open_map(args.map, args.variable).compute()
    deposits = deposits_from(args, score)
    report, short = steps.evaluate_map(
        score, deposits, top_percent=args.top, blocks=args.blocks, seed=args.seed
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics, figure = out / "metrics.json", out / "evaluation.png"
    text = dumps({**short, "report": report.to_dict()}, indent=2)
    with atomic_path(metrics) as tmp:
        tmp.write_text(text)
    report.plot(figure)
    inside = short["deposits_in_top"]
    log.info(
        "AUC %s on %d deposits; %s of them in the top %g %% of the area",
        steps.significant(short["roc_auc"]),
        short["n_deposits"],
        "n/a" if inside is None else f"{100 * inside:.0f} %",
        args.top,
    )
    return [metrics, figure]


COMMAND = Command(
    "evaluate",
    help="evaluate a map against deposits: metrics.json and evaluation.png",
    description=(
        "Evaluate a prospectivity or anomaly map against deposits (AUC with its interval, "
        "success-rate curve, block grid); the top --top % of the area is called "
        "prospective for the confusion matrix. Writes OUT/metrics.json and "
        "OUT/evaluation.png."
    ),
    options=_options,
    run=_run,
)
