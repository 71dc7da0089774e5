"""``xprospect score``: apply a checkpoint to a zarr stack, resumable, locally or on a cluster."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import xprospect as xp
from xprospect.cli._common import (
    Command,
    check_new,
    positive_int,
    write_store,
)
from xprospect.pipeline import steps
from xprospect.pipeline.run import cluster, digest

__all__ = ["COMMAND"]

log = logging.getLogger("xprospect.cli")


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``score`` options."""
    p.add_argument("maps", help="zarr store holding the model card's elements")
    p.add_argument("--model", required=True, help="checkpoint from xprospect train (model.pt)")
    p.add_argument("--out", required=True, help="zarr store to write, e.g. score.zarr")
    p.add_argument(
        "--scheduler", default=None, help="dask.distributed scheduler address, tcp://host:8786"
    )
    p.add_argument(
        "--resume", action="store_true", help="finish an interrupted store (same job only)"
    )
    p.add_argument(
        "--window", type=positive_int, default=None, help="window of a window model (card's)"
    )
    p.add_argument(
        "--stride", type=positive_int, default=1, help="lattice stride of a window model (1)"
    )
    p.add_argument("--batch-size", type=positive_int, default=64, help="windows or tiles per batch")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--geotiff", default=None, help="also write the map as a COG GeoTIFF here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``score``; return the files written."""
    out = check_new(args.out, args)
    model = xp.train.load_checkpoint(args.model)
    # an absolute path: the store's job identity (checked by --resume) holds the input's path
    maps = xp.open_zarr(Path(args.maps).resolve(), chunks={})
    job = steps.score_maps(
        maps,
        model,
        window=args.window,
        stride=args.stride,
        batch_size=args.batch_size,
        device=args.device,
    )
    ident = {"model_sha256": digest(args.model), "window": args.window, "stride": args.stride}
    with cluster(args.scheduler):
        write_store(job.to_dataset(), out, args, resume=args.resume, job=ident)
    log.info("%d x %d cells scored", job.sizes["y"], job.sizes["x"])
    written = [out]
    if args.geotiff:
        score = xp.open_zarr(out)["prospectivity"].compute()
        written += steps.write_geotiff(score, args.geotiff, cog=True)
    return written


COMMAND = Command(
    "score",
    help="score element maps with a trained checkpoint into a zarr store (resumable)",
    description=(
        "Score element maps with a checkpoint, chunk by chunk, into a zarr store that "
        "records which chunks are complete: --resume finishes an interrupted run."
    ),
    options=_options,
    run=_run,
)
