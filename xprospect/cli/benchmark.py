"""``xprospect benchmark CONFIG``: the benchmark harness (:func:`xprospect.benchmark`) from TOML."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

import xprospect as xp
from xprospect._dims import ELEMENT_DIM
from xprospect.cli._common import Command
from xprospect.exceptions import DataError
from xprospect.io._atomic import atomic_path
from xprospect.pipeline import steps
from xprospect.pipeline.config import Field, load_config

__all__ = ["COMMAND", "SCHEMA"]

log = logging.getLogger("xprospect.cli")

#: Keys of a benchmark configuration.
SCHEMA: dict[str, dict[str, Field]] = {
    "benchmark": {
        "maps": Field("str", None, "zarr store of element maps, relative to this file", True),
        "elements": Field("list[str]", None, "layers compared (default all)"),
        "methods": Field(
            "list[str]",
            ["raw", "rf"],
            "methods: raw, raw:<layer>, rf, gbm, logistic, wofe, maxent, svm, gmm, iforest, "
            "vae, dae, stoad",
        ),
        "folds": Field("int", 4, "spatial folds", positive=True),
        "block_size": Field("float", None, "fold block edge in metres", positive=True),
        "buffer": Field("float", None, "metres between training and held-out cells"),
        "seed": Field("int", 0, "seed of folds and methods"),
        "controls": Field("bool", False, "add shuffled-label controls (controls.csv)"),
        "control_draws": Field("int", 5, "random label draws averaged per control", positive=True),
        "compare": Field(
            "list[str]",
            None,
            "one-band GeoTIFF maps (a published map, say), relative to this file, judged "
            "like raw layers on the same folds (row map:<file stem>)",
        ),
    },
    "deposits": {
        "path": Field("str", None, "deposits file, relative to this file", True),
        "x": Field("str", "x", "easting/longitude column"),
        "y": Field("str", "y", "northing/latitude column"),
        "crs": Field("str", None, "CRS of the coordinates (default the maps')"),
        "query": Field("str", None, "pandas query keeping some deposits"),
    },
}

_KEYS = "; ".join(f"[{s}] " + ", ".join(k for k in fields) for s, fields in SCHEMA.items())


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``benchmark`` options."""
    p.add_argument("config", help="benchmark TOML file")
    p.add_argument(
        "--out",
        required=True,
        help="folder for benchmark.csv, benchmark.png (and controls.csv with controls)",
    )


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``benchmark``; return the files written."""
    cfg = load_config(args.config, schema=SCHEMA)
    base = Path(cfg["output"]["base"])
    b, d = cfg["benchmark"], cfg["deposits"]
    maps = xp.open_zarr(base / b["maps"], chunks={}).compute()
    crs = maps.rio.crs
    deposits = steps.read_deposits(
        base / d["path"], x=d["x"], y=d["y"], crs=d["crs"] or crs, to_crs=crs, query=d["query"]
    )
    stack = maps.prospect.stack(b["elements"])
    compared = [external_map(base / f, stack) for f in b["compare"] or []]
    bench = xp.benchmark(
        stack,
        deposits,
        methods=[*b["methods"], *compared],
        folds=b["folds"],
        block_size=b["block_size"],
        buffer=b["buffer"],
        seed=b["seed"],
        controls=b["control_draws"] if b["controls"] else False,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = {"benchmark.csv": bench.table, "controls.csv": bench.controls}
    written = write_results(out, frames, bench.plot, "benchmark.png")
    log_leaders(bench.table)
    return written


def external_map(path: Path, stack: xr.DataArray) -> tuple[str, xr.DataArray]:
    """Read a one-band GeoTIFF onto the stack's grid, as a method the harness judges.

    Parameters
    ----------
    path : Path
        The GeoTIFF.
    stack : xarray.DataArray
        The harness's stack (element, y, x), with its CRS.

    Returns
    -------
    (str, xarray.DataArray)
        ``map:<file stem>`` and the map on the stack's grid, float with NaN where the
        file has no data. A map on another grid or CRS is resampled onto the stack's by
        nearest neighbour (said on the terminal).

    Raises
    ------
    DataError
        When the file is not a one-band GeoTIFF, or it or the maps have no CRS.
    """
    ds = xp.read_geotiff(path)
    if len(ds.data_vars) != 1:
        raise DataError(
            f"{path}: compare takes one-band maps; this one has {len(ds.data_vars)} bands"
        )
    da = next(iter(ds.data_vars.values())).load()
    fill = da.attrs.get("_FillValue", da.encoding.get("_FillValue"))
    if da.dtype.kind in "iub":  # a class raster: its nodata value is no score
        da = da.where(da != fill) if fill is not None else da.astype("float64")
    like = stack.isel({ELEMENT_DIM: 0}, drop=True)
    if da.rio.crs is None or like.rio.crs is None:
        which = "the maps have" if like.rio.crs is None else f"{path} has"
        raise DataError(f"{which} no CRS: cannot place {path.name} on the maps' grid")
    same = (
        da.rio.crs == like.rio.crs
        and da.shape == like.shape
        and all(np.allclose(da[d].values, like[d].values) for d in ("y", "x"))
    )
    if same:
        da = da.assign_coords(y=like["y"], x=like["x"])
    else:
        from rasterio.enums import Resampling  # lazy: only for a map on another grid

        da = da.rio.reproject_match(like, resampling=Resampling.nearest)
        da = da.where(da != da.rio.nodata) if da.rio.nodata is not None else da
        log.info("%s: resampled onto the maps' grid (nearest neighbour)", path.name)
    return f"map:{path.stem}", da.astype("float64").rename(path.stem)


def write_results(
    out: Path,
    frames: Mapping[str, pd.DataFrame | None],
    plot: Callable[[Path], Any],
    figure: str,
    *,
    no_index: Sequence[str] = (),
) -> list[Path]:
    """Write a harness's tables (CSV) and figure into ``out``, each atomically.

    Parameters
    ----------
    out : Path
        An existing folder.
    frames : mapping
        File name to table; a None table (controls not asked for) is skipped.
    plot : callable
        Draws the figure into the path it is given.
    figure : str
        File name of the figure.
    no_index : sequence of str
        Files written without the table's index.

    Returns
    -------
    list of Path
        The files written, tables first.
    """
    written = []
    for name, frame in frames.items():
        if frame is None:
            continue
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=name not in no_index)
        written.append(out / name)
    with atomic_path(out / figure) as tmp:
        plot(tmp)
    return [*written, out / figure]


def log_leaders(table: pd.DataFrame, n: int = 5) -> None:
    """Log the best ``n`` rows of a harness table: AUC, interval, control and its p.

    Parameters
    ----------
    table : pandas.DataFrame
        A harness table (``auc``, optionally ``auc_lower`` and ``auc_upper``,
        ``control_auc`` and ``control_p``), best first.
    n : int
        Rows logged.
    """
    for name, row in table.head(n).iterrows():
        interval = (
            f" [{steps.significant(row['auc_lower'])}, {steps.significant(row['auc_upper'])}]"
            if "auc_lower" in row
            else ""
        )
        against = (
            f"; its control {steps.significant(row['control_auc'])}, "
            f"permutation p {steps.significant(row['control_p'])}"
            if "control_p" in row
            else ""
        )
        log.info("%-16s AUC %s%s%s", name, steps.significant(row["auc"]), interval, against)


COMMAND = Command(
    "benchmark",
    help="compare methods on the same spatial folds (xprospect.benchmark) from a TOML file",
    description=f"Run the benchmark harness from a TOML file with keys {_KEYS}.",
    options=_options,
    run=_run,
)
