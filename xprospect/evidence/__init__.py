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

__all__ = [
    "as_points",
    "distance_to_points",
    "points_to_index",
    "rasterize_points",
    "read_points",
    "sample_negatives",
]
