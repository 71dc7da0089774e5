"""``xprospect init``: write a commented example pipeline configuration."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xprospect.cli._common import Command
from xprospect.exceptions import DataError
from xprospect.io._atomic import atomic_path
from xprospect.pipeline.config import example_config

__all__ = ["COMMAND"]

log = logging.getLogger("xprospect.cli")


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``init`` options."""
    p.add_argument(
        "path", nargs="?", default="pipeline.toml", help="file to write (default pipeline.toml)"
    )
    p.add_argument("--force", action="store_true", help="replace an existing file")


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``init``; return the files written."""
    path = Path(args.path)
    if path.exists() and not args.force:
        raise DataError(f"{path} already exists; pass --force to replace it")
    text = example_config()
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    log.info("edit the paths, columns and CRS in %s, then: xprospect run %s", path, path)
    return [path]


COMMAND = Command(
    "init",
    help="write a commented example pipeline configuration (pipeline.toml)",
    description="Write a commented example configuration to edit, then xprospect run it.",
    options=_options,
    run=_run,
)
