"""``xprospect run pipeline.toml``: the whole path from a configuration file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xprospect.cli._common import Command, progress_of
from xprospect.pipeline import STAGES, run_pipeline
from xprospect.pipeline.run import MANIFEST

__all__ = ["COMMAND"]

log = logging.getLogger("xprospect.cli")


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``run`` options."""
    p.add_argument("config", help="pipeline TOML file (xprospect init writes an example)")
    p.add_argument(
        "--scheduler", default=None, help="dask.distributed scheduler address, tcp://host:8786"
    )
    p.add_argument("--resume", action="store_true", help="finish an interrupted scoring store")
    p.add_argument("--force", action="store_true", help="run every stage again")


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``run``; return the files written (by the stages that ran) and the manifest."""
    res = run_pipeline(
        args.config,
        scheduler=args.scheduler,
        resume=args.resume,
        force=args.force,
        progress=progress_of(args),
    )
    log.info(
        "%d stages ran, %d up to date%s",
        len(res.ran),
        len(res.skipped),
        f" ({', '.join(res.skipped)})" if res.skipped else "",
    )
    return [p for s in res.ran for p in res.outputs[s]] + [res.folder / MANIFEST]


COMMAND = Command(
    "run",
    help="run the pipeline a TOML file describes (stages up to date are skipped)",
    description=(
        f"Run the stages {' -> '.join(STAGES)} into one folder with a manifest; a rerun "
        "redoes only the stages whose inputs or settings changed. Start from xprospect init."
    ),
    options=_options,
    run=_run,
)
