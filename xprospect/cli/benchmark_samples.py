"""``xprospect benchmark-samples CONFIG``: the sample-level protocol from a survey table.

Reads the samples and the deposits, transforms the detectors' inputs (log10 or ilr), and
judges the raw elements and per-sample detectors by :func:`xprospect.benchmark_samples`:
each deposit takes its nearest sample's score, negatives are drawn from samples far from
every deposit, and ``controls`` draws move the deposits to random places of the sampled
ground so that each method is read beside its own null.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

import xarray as xr

import xprospect as xp
from xprospect.cli._common import Command
from xprospect.cli.benchmark import log_leaders, write_results
from xprospect.exceptions import DataError
from xprospect.harness import SampleMethod, plot_benchmark_samples
from xprospect.pipeline import config, steps
from xprospect.pipeline.config import Field, load_config
from xprospect.points import sample_table

__all__ = ["COMMAND", "SCHEMA"]

log = logging.getLogger("xprospect.cli")

#: Detectors a configuration names.
DETECTORS = ("gmm", "iforest", "vae")

#: Keys of a sample-level benchmark configuration.
SCHEMA: dict[str, dict[str, Field]] = {
    # the pipeline's survey keys, one home; only the elements' help says what they are for here
    "samples": {
        **config.SCHEMA["samples"],
        "elements": dataclasses.replace(
            config.SCHEMA["samples"]["elements"],
            help="element columns judged and given to the detectors; unset: every analyte",
        ),
    },
    "deposits": {
        "path": Field("str", None, "deposits file, relative to this file", True),
        "x": Field("str", "x", "easting/longitude column"),
        "y": Field("str", "y", "northing/latitude column"),
        "crs": Field("str", None, "CRS of the coordinates (default the samples' crs)"),
        "query": Field("str", None, "pandas query keeping some deposits"),
    },
    "benchmark_samples": {
        "methods": Field(
            "list[str]",
            ["raw", "gmm", "iforest"],
            "methods: raw (every element), raw:<element>, gmm, iforest, vae",
        ),
        "transform": Field(
            "str",
            "log10",
            "detectors' inputs: log10 of each element, ilr balances (for the covariance of "
            "a mixture) or the values as read",
            choices=("log10", "ilr", "none"),
        ),
        "neighbours": Field(
            "int", 0, "add each sample's k nearest neighbours' median, MAD and contrast (0: no)"
        ),
        "seeds": Field("int", 1, "members of each detector's seed ensemble", positive=True),
        "vae_epochs": Field("int", 50, "epochs of the per-sample VAE", positive=True),
        "min_dist": Field(
            "float", 5000.0, "negatives lie at least this far from every deposit (m)", positive=True
        ),
        "n_draws": Field("int", 20, "draws of negatives averaged", positive=True),
        "controls": Field("int", 20, "control draws: deposits at random sites (0: none)"),
        "seed": Field("int", 0, "seed of the detectors and of every draw"),
    },
}

_KEYS = "; ".join(f"[{s}] " + ", ".join(k for k in fields) for s, fields in SCHEMA.items())


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``benchmark-samples`` options."""
    p.add_argument("config", help="sample-level benchmark TOML file")
    p.add_argument(
        "--out", required=True, help="folder for benchmark_samples.csv and benchmark_samples.png"
    )


def detector_inputs(
    samples: xr.Dataset, elements: list[str], transform: str
) -> tuple[xr.Dataset, list[str]]:
    """Return the table the methods read and the variables the detectors use.

    Raw methods read each element as given; ``log10`` replaces the elements by their
    logarithms (the same ranking for a raw element), ``ilr`` adds the pivot balances
    ``ilr1 ..`` beside the elements as read.

    Parameters
    ----------
    samples : xarray.Dataset
        The samples.
    elements : list of str
        Their element variables.
    transform : {"log10", "ilr", "none"}
        The detectors' inputs.

    Returns
    -------
    (xarray.Dataset, list of str)
        The table and the detectors' variables.
    """
    table = samples[elements]
    if transform == "log10":
        return table.prospect.log10(elements=elements), elements
    if transform == "ilr":
        ilr = table.prospect.ilr(elements=elements)
        balances = [str(v) for v in ilr.data_vars if str(v).startswith("ilr")]
        return xr.merge([table, ilr[balances]]), balances
    return table, elements


def _methods(b: dict[str, Any], uses: list[str]) -> list[Any]:
    """Return the configuration's methods as :func:`xprospect.benchmark_samples` takes them."""
    nb = {"k": b["neighbours"]} if b["neighbours"] > 0 else None
    fit = {"epochs": b["vae_epochs"]}
    out: list[Any] = []
    for m in b["methods"]:
        if m == "raw" or m.startswith("raw:"):
            out.append(m)
        elif m in DETECTORS:
            spec = SampleMethod(
                m, neighbourhood=nb, seeds=b["seeds"], fit_kwargs=fit, elements=uses
            )
            out.append((m, spec))
        else:
            raise DataError(
                f"benchmark_samples: unknown method {m!r}; use raw, raw:<element> or one of "
                f"{', '.join(DETECTORS)}"
            )
    return out


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``benchmark-samples``; return the files written."""
    cfg = load_config(args.config, schema=SCHEMA)
    base = Path(cfg["output"]["base"])
    s, d, b = cfg["samples"], cfg["deposits"], cfg["benchmark_samples"]
    if b["neighbours"] < 0 or b["controls"] < 0:
        raise DataError(
            f"benchmark_samples: neighbours and controls must be >= 0; got {b['neighbours']} "
            f"and {b['controls']}"
        )
    samples = steps.read_survey(base / s["path"], **{k: v for k, v in s.items() if k != "path"})
    steps.require_projected(samples, f"min_dist {b['min_dist']:g}", "judge samples")
    crs = samples.rio.crs
    deposits = steps.read_deposits(
        base / d["path"],
        x=d["x"],
        y=d["y"],
        crs=d["crs"],
        to_crs=crs,
        query=d["query"],
        default_crs=s["crs"],
    )
    elements, _ = sample_table(samples, None, None)  # read_survey kept the asked ones
    table, uses = detector_inputs(samples, elements, b["transform"])
    log.info(
        "%d samples, %d elements, %d deposits; detectors on %s",
        samples.sizes["sample"],
        len(elements),
        deposits.sizes["point"],
        b["transform"],
    )
    result = xp.benchmark_samples(
        table,
        deposits,
        _methods(b, uses),
        elements=uses,
        seed=b["seed"],
        min_dist=b["min_dist"],
        n_draws=b["n_draws"],
        controls=b["controls"],
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = write_results(
        out,
        {"benchmark_samples.csv": result},
        lambda path: plot_benchmark_samples(result, path),
        "benchmark_samples.png",
    )
    log_leaders(result)
    return written


COMMAND = Command(
    "benchmark-samples",
    help="judge raw elements and per-sample detectors at the samples "
    "(xprospect.benchmark_samples) from a TOML file",
    description=f"Run the sample-level protocol from a TOML file with keys {_KEYS}.",
    options=_options,
    run=_run,
)
