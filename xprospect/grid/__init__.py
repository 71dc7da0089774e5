"""Georeferenced grid and voxel templates and the gridders (IDW, ordinary kriging)."""

from xprospect.grid.base import Gridder
from xprospect.grid.idw import IDW, grid_idw
from xprospect.grid.kriging import OrdinaryKriging, grid_kriging
from xprospect.grid.stack import stack_elements
from xprospect.grid.template import make_grid, make_voxels

__all__ = [
    "IDW",
    "Gridder",
    "OrdinaryKriging",
    "grid_idw",
    "grid_kriging",
    "make_grid",
    "make_voxels",
    "stack_elements",
]
