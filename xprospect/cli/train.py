"""``xprospect train``: a window classifier from maps and deposits (checkpoint, history)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

import xprospect as xp
from xprospect.cli._common import (
    Command,
    add_deposit_options,
    deposits_from,
    positive_float,
    positive_int,
    progress_of,
)
from xprospect.exceptions import DataError
from xprospect.io._atomic import atomic_path
from xprospect.pipeline import steps

__all__ = ["COMMAND"]

log = logging.getLogger("xprospect.cli")


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``train`` options."""
    p.add_argument("maps", help="zarr store of (transformed) element maps")
    add_deposit_options(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--elements", nargs="+", help="input elements, in order")
    which.add_argument(
        "--selection", help="element table from xprospect select (its chosen elements)"
    )
    p.add_argument("--model", default="small_cnn", help="registered model (small_cnn, resnet18...)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--window", type=positive_int, help="model window in cells")
    size.add_argument(
        "--window-m",
        type=positive_float,
        default=6000.0,
        help="model window in metres, converted with the grid's resolution (default 6000)",
    )
    p.add_argument(
        "--recipe", choices=("adam", "resnet-sgd"), default="adam", help="training recipe"
    )
    p.add_argument("--epochs", type=positive_int, default=20, help="epochs (default 20)")
    p.add_argument(
        "--validation",
        type=float,
        default=0.25,
        help="share of windows in the spatial validation split (default 0.25; 0: none)",
    )
    p.add_argument(
        "--negatives-per-positive", type=positive_int, default=15, help="barren windows per deposit"
    )
    p.add_argument(
        "--n-per-positive", type=positive_int, default=8, help="jittered windows per deposit"
    )
    p.add_argument("--batch-size", type=positive_int, default=None, help="training batch")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--seed", type=int, default=0, help="seed of windows, split, weights")
    p.add_argument("--out", required=True, help="checkpoint to write, e.g. model.pt")


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``train``; return the files written."""
    if not 0 <= args.validation < 1:
        raise DataError(f"--validation must be a share in [0, 1); got {args.validation}")
    maps = xp.open_zarr(args.maps, chunks={})
    if args.selection:
        table = pd.read_csv(args.selection, index_col="element")
        if "chosen" not in table:
            raise DataError(f"{args.selection} has no column 'chosen' (from xprospect select)")
        elements = [str(e) for e in table.index[table["chosen"].astype(bool)]]
    else:
        elements = list(args.elements)
    window = args.window or steps.cells_from_metres(args.window_m, maps, least=5)
    deposits = deposits_from(args, maps)
    fit = steps.train_model(
        maps,
        deposits,
        elements,
        model=args.model,
        window=window,
        recipe=args.recipe,
        epochs=args.epochs,
        validation=args.validation,
        negatives_per_positive=args.negatives_per_positive,
        n_per_positive=args.n_per_positive,
        batch_size=args.batch_size,
        device=args.device,
        seed=args.seed,
        progress=progress_of(args),
    )
    out = Path(args.out)
    xp.train.save_checkpoint(fit, out)
    history = out.with_suffix(".history.csv")
    with atomic_path(history) as tmp:
        fit.history.to_csv(tmp, index=False)
    log.info(
        "%s (%d x %d cells, %s) on %d deposits: %d epochs, best %d, spatial-validation AUC %s",
        args.model,
        window,
        window,
        ", ".join(elements),
        deposits.sizes["point"],
        len(fit.history),
        fit.best_epoch,
        steps.significant(fit.history["val_auc"].max()),
    )
    return [out, history]


COMMAND = Command(
    "train",
    help="train a window model on windows around deposits; write a checkpoint and history",
    description=(
        "Train a window classifier on labelled windows (jittered around deposits, random "
        "barren ones) with a spatial validation split; write the checkpoint with its model "
        "card and the per-epoch history (<out stem>.history.csv)."
    ),
    options=_options,
    run=_run,
)
