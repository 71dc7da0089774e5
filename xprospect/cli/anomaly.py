"""``xprospect anomaly``: fit an anomaly detector on normal ground and map every cell."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import xprospect as xp
from xprospect.cli._common import (
    add_deposit_options,
    check_new,
    deposits_from,
    positive_float,
    positive_int,
    progress_of,
)
from xprospect.pipeline import steps

__all__ = ["register", "run"]

log = logging.getLogger("xprospect.cli")


def register(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``anomaly`` command.

    Parameters
    ----------
    sub : subparsers
    parents : list of parsers
        Shared options.
    """
    p = sub.add_parser(
        "anomaly",
        parents=parents,
        help="fit an anomaly detector (Gaussian mixture, isolation forest) and map anomalies",
        description=(
            "Fit an anomaly detector on normal ground (all cells, or those farther than "
            "--buffer-m from the --deposits) and write the anomaly map (larger = rarer)."
        ),
    )
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
    p.add_argument("--out", required=True, help="zarr store to write, e.g. anomaly.zarr")
    p.add_argument("--geotiff", default=None, help="also write the map as a COG GeoTIFF here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> list[Path]:
    """Run ``anomaly``.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    list of Path
        Files written.
    """
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
    xp.to_zarr(
        anomaly.to_dataset(),
        out,
        mode="w" if args.overwrite else "w-",
        progress=progress_of(args),
    )
    log.info(
        "%s anomaly map of %d x %d cells", args.detector, anomaly.sizes["y"], anomaly.sizes["x"]
    )
    written = [out]
    if args.geotiff:
        written += steps.write_geotiff(anomaly.compute(), args.geotiff, cog=True)
    return written
