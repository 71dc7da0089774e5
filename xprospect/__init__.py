"""xprospect: mineral prospectivity from exploration geochemistry, native to xarray and dask."""

from __future__ import annotations

from xprospect import synthetic
from xprospect.accessor import ProspectAccessor
from xprospect.exceptions import CRSError, DataError, GridError, XProspectError, XProspectWarning
from xprospect.grid import grid_idw, make_grid, make_voxels

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
    "make_grid",
    "make_voxels",
    "synthetic",
]
