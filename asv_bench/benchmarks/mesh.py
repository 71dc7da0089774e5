"""Distance to and inside a triangulated surface on voxel grids, against trimesh.

Ours: ``xprospect.evidence.distance_to_mesh`` (numba BVH, exact point-triangle distance)
and ``inside_mesh`` (vertical-ray parity per voxel column). Peers, on the same voxel
centres: ``trimesh.proximity.closest_point`` (rtree candidates + numpy) and
``trimesh.Trimesh.contains`` (ray tests through embree/rtree). The peers are run on a
subset of ``PEER_POINTS`` centres (they are slow); compare per-voxel rates.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import trimesh

import xprospect as xp

CRS = "EPSG:28350"
PEER_POINTS = 2_000


def _mesh(subdivisions: int = 4):
    """An ellipsoidal lens (icosphere scaled), 20 * 4**subdivisions triangles."""
    m = trimesh.creation.icosphere(subdivisions=subdivisions)
    m.apply_scale((300.0, 180.0, 40.0))
    return m


def _voxels(size: int):
    return xp.make_voxels((-500, -500, -500, 500, 500, 500), resolution=1000 / size, crs=CRS)


def _centres(vox, n: int) -> np.ndarray:
    zz, yy, xx = np.meshgrid(vox.z.values, vox.y.values, vox.x.values, indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)
    return pts[np.random.default_rng(0).choice(len(pts), size=min(n, len(pts)), replace=False)]


class MeshVoxels:
    """Voxels/s of distance and inside tests (size**3 voxels, 5,120 triangles)."""

    params: ClassVar = [64, 100]
    param_names: ClassVar = ["size"]
    timeout = 300

    def setup(self, size):
        self.mesh = _mesh()
        self.vox = _voxels(size)
        small = _voxels(8)
        xp.evidence.distance_to_mesh(small, self.mesh)  # JIT warm-up
        xp.evidence.inside_mesh(small, self.mesh)
        self.pts = _centres(self.vox, PEER_POINTS)

    def time_distance_to_mesh(self, size):
        xp.evidence.distance_to_mesh(self.vox, self.mesh)

    def time_inside_mesh(self, size):
        xp.evidence.inside_mesh(self.vox, self.mesh)

    def time_peer_trimesh_closest_point(self, size):
        trimesh.proximity.closest_point(self.mesh, self.pts)

    def time_peer_trimesh_contains(self, size):
        self.mesh.contains(self.pts)

    def peakmem_distance_to_mesh(self, size):
        xp.evidence.distance_to_mesh(self.vox, self.mesh)
