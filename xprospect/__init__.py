"""xprospect: mineral prospectivity from exploration geochemistry, native to xarray and dask."""

from __future__ import annotations

from xprospect import preprocess, synthetic
from xprospect.accessor import ProspectAccessor
from xprospect.exceptions import (
    CRSError,
    DataError,
    GridError,
    ModelCardError,
    XProspectError,
    XProspectWarning,
)
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

# Subpackages that import torch (or are heavy) load on first attribute access, so that
# ``import xprospect`` stays quick for users who only grid and transform.
_LAZY_SUBMODULES = ("baselines", "evaluate", "evidence", "models", "patches", "score", "train")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"xprospect.{name}")
    raise AttributeError(f"module 'xprospect' has no attribute {name!r}")


__all__ = [
    "CRSError",
    "DataError",
    "GridError",
    "ModelCardError",
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
