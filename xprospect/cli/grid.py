"""``xprospect grid``: survey samples (CSV, Parquet, GeoPackage, Shapefile) to element maps."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xprospect.cli._common import (
    Command,
    add_store_options,
    check_new,
    positive_float,
    positive_int,
    write_store,
)
from xprospect.pipeline import steps

__all__ = ["COMMAND"]

log = logging.getLogger("xprospect.cli")


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``grid`` options."""
    p.add_argument("samples", help="survey file: CSV, Parquet, GeoPackage or Shapefile points")
    p.add_argument("--x", default="x", help="easting/longitude column of a table (default x)")
    p.add_argument("--y", default="y", help="northing/latitude column of a table (default y)")
    p.add_argument("--crs", default=None, help="CRS of the coordinates, e.g. EPSG:4326")
    p.add_argument("--to-crs", default=None, help="projected CRS (metres) to grid in")
    p.add_argument("--resolution", type=positive_float, required=True, help="cell size in metres")
    p.add_argument(
        "--method", choices=("idw", "kriging"), default="idw", help="gridder (default idw)"
    )
    p.add_argument("--k", type=positive_int, default=12, help="neighbours per cell (default 12)")
    p.add_argument("--power", type=positive_float, default=2.0, help="IDW power (default 2)")
    p.add_argument(
        "--variogram",
        choices=("spherical", "exponential", "gaussian"),
        default="spherical",
        help="kriging variogram model (default spherical)",
    )
    p.add_argument(
        "--pad", type=float, default=None, help="margin around the samples in metres (two cells)"
    )
    p.add_argument(
        "--chunks", type=positive_int, default=256, help="dask chunk edge in cells (default 256)"
    )
    p.add_argument("--elements", nargs="+", default=None, help="element columns (default all)")
    p.add_argument("--id-column", default=None, help="sample id column")
    p.add_argument(
        "--duplicates",
        choices=("mean", "drop", "keep", "error"),
        default="mean",
        help="co-located samples: mean, drop (exact duplicates only), keep or error (default mean)",
    )
    add_store_options(p, "zarr store to write, e.g. maps.zarr")


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``grid``; return the files written."""
    out = check_new(args.out, args)
    samples = steps.read_survey(
        args.samples,
        x=args.x,
        y=args.y,
        crs=args.crs,
        to_crs=args.to_crs,
        elements=args.elements,
        id_column=args.id_column,
        duplicates=args.duplicates,
    )
    maps = steps.grid_samples(
        samples,
        resolution=args.resolution,
        method=args.method,
        k=args.k,
        power=args.power,
        variogram=args.variogram,
        pad=args.pad,
        chunks=args.chunks,
    )
    log.info(
        "%d samples -> %d maps of %d x %d cells at %g m (%s)",
        samples.sizes["sample"],
        len(maps.data_vars),
        maps.sizes["y"],
        maps.sizes["x"],
        args.resolution,
        maps.rio.crs,
    )
    write_store(maps, out, args)
    return [out]


COMMAND = Command(
    "grid",
    help="grid survey samples onto a regular grid (IDW or kriging) into a zarr store",
    description="Grid survey samples onto a regular grid (IDW or kriging) into a zarr store.",
    options=_options,
    run=_run,
)
