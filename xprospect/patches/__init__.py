"""Patches: data-free window plans, lazy extraction, augmentation, torch datasets, stitching."""

from __future__ import annotations

from xprospect.patches.augment import augment_patch, augment_rng, centre_crop
from xprospect.patches.extract import extract_patches, iter_patches, window_has_nan
from xprospect.patches.patchset import NAN_POLICIES, PatchSet, make_patches
from xprospect.patches.plan import (
    EDGE_POLICIES,
    PatchPlan,
    as_geometry,
    plan_around_points,
    plan_grid,
    plan_random,
)
from xprospect.patches.stitch import stitch_patches

__all__ = [
    "EDGE_POLICIES",
    "NAN_POLICIES",
    "PatchPlan",
    "PatchSet",
    "as_geometry",
    "augment_patch",
    "augment_rng",
    "centre_crop",
    "extract_patches",
    "iter_patches",
    "make_patches",
    "plan_around_points",
    "plan_grid",
    "plan_random",
    "stitch_patches",
    "window_has_nan",
]
