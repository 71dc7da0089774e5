"""xprospect: mineral prospectivity from exploration geochemistry, native to xarray and dask."""

from __future__ import annotations

from xprospect import preprocess, synthetic
from xprospect.accessor import ProspectAccessor
from xprospect.exceptions import CRSError, DataError, GridError, XProspectError, XProspectWarning
from xprospect.grid import grid_idw, make_grid, make_voxels, stack_elements
from xprospect.io import (
    ingest_report,
    open_zarr,
    read_geotiff,
    read_samples,
    to_geotiff,
    to_zarr,
)

__version__ = "0.1.0"

__all__ = [
    "CRSError",
    "DataError",
    "GridError",
    "ProspectAccessor",
    "XProspectError",
    "XProspectWarning",
    "__version__",
    "grid_idw",
    "ingest_report",
    "make_grid",
    "make_voxels",
    "open_zarr",
    "preprocess",
    "read_geotiff",
    "read_samples",
    "stack_elements",
    "synthetic",
    "to_geotiff",
    "to_zarr",
]
