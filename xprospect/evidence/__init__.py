"""Evidence: labels from deposits, negatives, element selection, evidence layers."""

from __future__ import annotations

from xprospect.evidence.labels import (
    as_points,
    distance_to_points,
    points_to_index,
    rasterize_points,
    read_points,
    sample_negatives,
)
from xprospect.evidence.layers import (
    FRONT_HALO,
    NEAR_ORE_HALO,
    TAIL_HALO,
    balance,
    buffer_structures,
    build,
    distance_to_structures,
    halo_ratio,
)
from xprospect.evidence.mesh import (
    as_mesh,
    distance_to_mesh,
    inside_mesh,
    mesh_open_edges,
    read_mesh,
)
from xprospect.evidence.normal import block_split, choose_blocks, normal_mask
from xprospect.evidence.selection import plot_selection, select_elements

__all__ = [
    "FRONT_HALO",
    "NEAR_ORE_HALO",
    "TAIL_HALO",
    "as_mesh",
    "as_points",
    "balance",
    "block_split",
    "buffer_structures",
    "build",
    "choose_blocks",
    "distance_to_mesh",
    "distance_to_points",
    "distance_to_structures",
    "halo_ratio",
    "inside_mesh",
    "mesh_open_edges",
    "normal_mask",
    "plot_selection",
    "points_to_index",
    "rasterize_points",
    "read_mesh",
    "read_points",
    "sample_negatives",
    "select_elements",
]
