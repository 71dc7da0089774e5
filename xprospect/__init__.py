"""xprospect: mineral prospectivity from exploration geochemistry, native to xarray and dask."""

from __future__ import annotations

import importlib

from xprospect import points, preprocess, synthetic
from xprospect._version import __version__
from xprospect.accessor import ProspectAccessor
from xprospect.exceptions import (
    CRSError,
    DataError,
    GridError,
    IncompleteStoreError,
    ModelCardError,
    TrainingGroundError,
    XProspectError,
    XProspectWarning,
)
from xprospect.grid import grid_idw, grid_kriging, make_grid, make_voxels, stack_elements
from xprospect.io import (
    Drillholes,
    composite,
    desurvey,
    ingest_report,
    open_zarr,
    read_drillholes,
    read_geotiff,
    read_points,
    read_samples,
    to_block_csv,
    to_geotiff,
    to_zarr,
)

# Subpackages that import torch (or are heavy) load on first attribute access, so that
# ``import xprospect`` stays quick for users who only grid and transform.
_LAZY_SUBMODULES = (
    "baselines",
    "evaluate",
    "evidence",
    "models",
    "patches",
    "score",
    "train",
    "synthetic3d",
)
# Functions of those subpackages offered at the top level, loaded on first access too.
_LAZY_FUNCTIONS = {
    "Benchmark": "xprospect.harness",
    "DeepMethod": "xprospect.harness",
    "DetectorMethod": "xprospect.harness",
    "Tuned": "xprospect.harness",
    "benchmark": "xprospect.harness",
    "Benchmark3D": "xprospect.harness3d",
    "benchmark3d": "xprospect.harness3d",
    "mask_distance": "xprospect.evidence.proximity",
    "select_elements": "xprospect.evidence.selection",
    "make_patches": "xprospect.patches",
    "SampleMethod": "xprospect.harness",
    "benchmark_samples": "xprospect.harness",
    "Selected": "xprospect.harness",
}


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"xprospect.{name}")
    if name in _LAZY_FUNCTIONS:
        return getattr(importlib.import_module(_LAZY_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'xprospect' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_SUBMODULES, *_LAZY_FUNCTIONS})


__all__ = [
    "CRSError",
    "DataError",
    "Drillholes",
    "GridError",
    "IncompleteStoreError",
    "ModelCardError",
    "ProspectAccessor",
    "TrainingGroundError",
    "XProspectError",
    "XProspectWarning",
    "__version__",
    "composite",
    "desurvey",
    "grid_idw",
    "grid_kriging",
    "ingest_report",
    "make_grid",
    "make_voxels",
    "mask_distance",
    "open_zarr",
    "points",
    "preprocess",
    "read_drillholes",
    "read_geotiff",
    "read_points",
    "read_samples",
    "stack_elements",
    "synthetic",
    "to_block_csv",
    "to_geotiff",
    "to_zarr",
]
