"""``xprospect benchmark3d CONFIG``: the block-model harness (:func:`xprospect.benchmark3d`).

Reads the drillhole tables (collar, survey, assay, lithology), desurveys and composites them,
labels each composite from a column (a lithology code, say) and runs every method on the
same leave-holes-out folds, each fold's block model built from its training holes only.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

import xprospect as xp
from xprospect.cli._common import Command
from xprospect.cli.benchmark import log_leaders, write_results
from xprospect.exceptions import DataError
from xprospect.pipeline.config import Field, load_config

__all__ = ["COMMAND", "SCHEMA"]

log = logging.getLogger("xprospect.cli")

#: Keys of a block-model benchmark configuration.
SCHEMA: dict[str, dict[str, Field]] = {
    "drillholes": {
        "collar": Field("str", None, "collar table, relative to this file", True),
        "survey": Field("str", None, "survey table (holes without one are vertical)"),
        "assay": Field("str", None, "assay table (from, to, element columns)", True),
        "lithology": Field("str", None, "lithology table (from, to, label columns)"),
        "crs": Field("str", None, "projected CRS of the collars, e.g. EPSG:28350", True),
        "length_unit": Field("str", None, "unit of every depth", True, choices=("m", "ft", "ftUS")),
        "dip_convention": Field(
            "str",
            None,
            "sign of downward dips (default inferred)",
            choices=("negative-down", "positive-down"),
        ),
        "composite": Field("float", 2.0, "composite length in metres", positive=True),
        "composite_by": Field(
            "str", None, "lithology column composites never straddle (default the label column)"
        ),
    },
    "labels": {
        "column": Field("str", None, "composite column that marks ore, e.g. lith", True),
        "values": Field("list[str]", None, "values of that column that are ore", True),
    },
    "benchmark3d": {
        "elements": Field("list[str]", None, "elements of the block model", True),
        "methods": Field(
            "list[str]",
            ["grade:Au", "gmm", "rf"],
            "methods: grade:<element>, dae, stoad, cnn3d, rf, gbm, logistic, gmm, iforest; "
            "geometry controls coverage, elevation, cnn3d_mask",
        ),
        "folds": Field("int", 4, "folds of holes", positive=True),
        "block_size": Field("float", 250.0, "plan-view block edge (metres) dealing holes", True),
        "buffer": Field("float", 0.0, "3-D metres kept free of training composites"),
        "resolution": Field("float", 40.0, "voxel edge in metres", positive=True),
        "max_distance": Field("float", None, "mask voxels farther from every composite (m)"),
        "normal": Field(
            "str", "outside_buffer", "detectors' normal ground", choices=("outside_buffer", "all")
        ),
        "seed": Field("int", 0, "seed of folds and methods"),
        "controls": Field("bool", False, "add shifted-label controls (controls.csv)"),
        "control_draws": Field("int", 5, "shifted-label draws (whole re-runs)", positive=True),
    },
}

_KEYS = "; ".join(f"[{s}] " + ", ".join(k for k in fields) for s, fields in SCHEMA.items())


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``benchmark3d`` options."""
    p.add_argument("config", help="block-model benchmark TOML file")
    p.add_argument(
        "--out",
        required=True,
        help="folder for benchmark3d.csv, scores.csv, folds.csv, benchmark3d.png "
        "(and controls.csv with controls)",
    )


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``benchmark3d``; return the files written."""
    cfg = load_config(args.config, schema=SCHEMA)
    base = Path(cfg["output"]["base"])
    d, lab, b = cfg["drillholes"], cfg["labels"], cfg["benchmark3d"]

    def table(key: str) -> Path | None:
        return None if d[key] is None else base / d[key]

    holes = xp.read_drillholes(
        table("collar"),
        table("survey"),
        table("assay"),
        table("lithology"),
        crs=d["crs"],
        length_unit=d["length_unit"],
        dip_convention=d["dip_convention"],
    )
    by = d["composite_by"]
    if by is None and holes.lithology is not None and lab["column"] in holes.lithology:
        by = lab["column"]  # composites never straddle the ore boundary
    samples = xp.composite(holes, length=d["composite"], by=by)
    if lab["column"] not in samples.variables:
        raise DataError(
            f"labels: column {lab['column']!r} is not a column of the composites; "
            f"they hold {', '.join(sorted(map(str, samples.variables)))}"
        )
    values = np.asarray(samples[lab["column"]].values).astype(str)
    ore = np.isin(values, lab["values"])
    log.info(
        "%d composites of %d holes, %d ore (%s in %s)",
        ore.size,
        len(np.unique(samples["hole_id"].values)),
        int(ore.sum()),
        "/".join(lab["values"]),
        lab["column"],
    )
    bench = xp.benchmark3d(
        samples,
        ore,
        elements=b["elements"],
        methods=b["methods"],
        n_folds=b["folds"],
        block_size=b["block_size"],
        buffer=b["buffer"],
        resolution=b["resolution"],
        max_distance=b["max_distance"],
        normal=b["normal"],
        seed=b["seed"],
        controls=b["control_draws"] if b["controls"] else False,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = {
        "benchmark3d.csv": bench.table,
        "scores.csv": bench.scores,
        "folds.csv": bench.folds,
        "controls.csv": bench.controls,
    }
    written = write_results(out, frames, bench.plot, "benchmark3d.png", no_index=("scores.csv",))
    log_leaders(bench.table)
    return written


COMMAND = Command(
    "benchmark3d",
    help="compare methods on leave-holes-out folds of drillholes (xprospect.benchmark3d)",
    description=f"Run the block-model harness from a TOML file with keys {_KEYS}.",
    options=_options,
    run=_run,
)
