"""Georeferenced grid and voxel templates and the IDW gridder."""

from xprospect.grid.idw import IDW, grid_idw
from xprospect.grid.stack import stack_elements
from xprospect.grid.template import make_grid, make_voxels

__all__ = ["IDW", "grid_idw", "make_grid", "make_voxels", "stack_elements"]
