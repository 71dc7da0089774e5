"""``xprospect anomaly``: fit an anomaly detector on normal ground and map every cell."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import xprospect as xp
from xprospect.cli._common import (
    Command,
    add_deposit_options,
    add_store_options,
    check_new,
    deposits_from,
    positive_float,
    positive_int,
    write_store,
)
from xprospect.pipeline import steps

__all__ = ["COMMAND"]

log = logging.getLogger("xprospect.cli")


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``anomaly`` options."""
    p.add_argument("maps", help="zarr store of (transformed) element maps")
    p.add_argument(
        "--detector", choices=("gmm", "iforest"), default="gmm", help="detector (default gmm)"
    )
    p.add_argument("--elements", nargs="+", default=None, help="elements used (default all)")
    add_deposit_options(p, required=False)
    p.add_argument(
        "--buffer-m",
        type=positive_float,
        default=None,
        help="metres around deposits left out of normal ground (default the library's)",
    )
    p.add_argument(
        "--n-components", type=positive_int, default=3, help="mixture components (gmm; 3)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the detector (default 0)")
    add_store_options(p, "zarr store to write, e.g. anomaly.zarr", geotiff=True)


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``anomaly``; return the files written."""
    out = check_new(args.out, args)
    maps = xp.open_zarr(args.maps, chunks={}).compute()
    deposits = deposits_from(args, maps) if args.deposits else None
    _, anomaly = steps.detect_anomalies(
        maps,
        detector=args.detector,
        elements=args.elements,
        deposits=deposits,
        buffer=args.buffer_m,
        n_components=args.n_components,
        seed=args.seed,
    )
    write_store(anomaly.to_dataset(), out, args)
    log.info(
        "%s anomaly map of %d x %d cells", args.detector, anomaly.sizes["y"], anomaly.sizes["x"]
    )
    written = [out]
    if args.geotiff:
        written += steps.write_geotiff(anomaly.compute(), args.geotiff, cog=True)
    return written


COMMAND = Command(
    "anomaly",
    help="fit an anomaly detector (Gaussian mixture, isolation forest) and map anomalies",
    description=(
        "Fit an anomaly detector on normal ground (all cells, or those farther than "
        "--buffer-m from the --deposits) and write the anomaly map (larger = rarer)."
    ),
    options=_options,
    run=_run,
)
