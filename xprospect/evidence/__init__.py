"""Evidence: labels from deposits, negatives, element selection, proximity, meshes, layers.

Balances and halo ratios are re-exported from :mod:`xprospect.preprocess.compositional` and
the block split of background ground from :mod:`xprospect.evaluate.splits`, their homes.
"""

from __future__ import annotations

from xprospect.evaluate.splits import block_split, choose_blocks
from xprospect.evidence.background import normal_mask
from xprospect.evidence.labels import (
    as_points,
    distance_to_points,
    points_to_index,
    rasterize_points,
    read_points,
    sample_negatives,
)
from xprospect.evidence.layers import build
from xprospect.evidence.mesh import (
    as_mesh,
    distance_to_mesh,
    inside_mesh,
    mesh_open_edges,
    read_mesh,
)
from xprospect.evidence.neighbourhood import neighbourhood_features
from xprospect.evidence.proximity import (
    buffer_structures,
    distance_to_samples,
    distance_to_structures,
    mask_distance,
    sampling_density,
)
from xprospect.evidence.selection import plot_selection, select_elements
from xprospect.evidence.zaozigou import zaozigou_layers
from xprospect.preprocess.compositional import (
    FRONT_HALO,
    NEAR_ORE_HALO,
    TAIL_HALO,
    balance,
    halo_ratio,
)

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
    "distance_to_samples",
    "distance_to_structures",
    "halo_ratio",
    "inside_mesh",
    "mask_distance",
    "mesh_open_edges",
    "neighbourhood_features",
    "normal_mask",
    "plot_selection",
    "points_to_index",
    "rasterize_points",
    "read_mesh",
    "read_points",
    "sample_negatives",
    "sampling_density",
    "select_elements",
    "zaozigou_layers",
]
