"""Reading and writing: tables, drillholes, points, meshes, rasters, stores and block models."""

from __future__ import annotations

from xprospect.io.blockmodel import (
    plot_section,
    plot_slices,
    to_block_csv,
    to_vtk,
)
from xprospect.io.desurvey import composite, desurvey, desurvey_points
from xprospect.io.drillholes import Drillholes, read_drillholes
from xprospect.io.mesh import as_mesh, read_mesh
from xprospect.io.points import read_points
from xprospect.io.raster import read_geotiff, to_geotiff
from xprospect.io.samples import ingest_report, parse_analyte_column, read_samples
from xprospect.io.store import open_zarr, to_zarr

__all__ = [
    "Drillholes",
    "as_mesh",
    "composite",
    "desurvey",
    "desurvey_points",
    "ingest_report",
    "open_zarr",
    "parse_analyte_column",
    "plot_section",
    "plot_slices",
    "read_drillholes",
    "read_geotiff",
    "read_mesh",
    "read_points",
    "read_samples",
    "to_block_csv",
    "to_geotiff",
    "to_vtk",
    "to_zarr",
]
