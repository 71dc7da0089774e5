"""Readers that turn sample tables and files into georeferenced xarray objects."""

from __future__ import annotations

from xprospect.io.raster import read_geotiff, to_geotiff
from xprospect.io.samples import ingest_report, parse_analyte_column, read_samples
from xprospect.io.store import open_zarr, to_zarr

__all__ = [
    "ingest_report",
    "open_zarr",
    "parse_analyte_column",
    "read_geotiff",
    "read_samples",
    "to_geotiff",
    "to_zarr",
]
