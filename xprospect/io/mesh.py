"""Read triangulated surfaces (faults, ore-domain wireframes) through trimesh.

Meshes carry their CRS in ``mesh.metadata["crs"]`` (WKT); measuring them against grids is
:mod:`xprospect.evidence.mesh`'s work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xprospect._dims import parse_crs
from xprospect.exceptions import DataError

__all__ = ["as_mesh", "read_mesh"]


def _trimesh():
    try:
        import trimesh  # heavy optional dependency: loaded only when a mesh is read
    except ImportError as err:  # pragma: no cover - trimesh is a dependency
        msg = "reading and measuring meshes needs trimesh: pip install trimesh"
        raise ImportError(msg) from err
    return trimesh


def read_mesh(path: str | Path, *, crs: Any = None, process: bool = True) -> Any:
    """Read a triangulated surface (STL, OBJ, PLY, OFF, ...) through trimesh.

    Parameters
    ----------
    path : str or Path
        The mesh file; its format is taken from the extension.
    crs : optional
        CRS of the vertex coordinates (mesh files do not store one). Stored as WKT in
        ``mesh.metadata["crs"]`` and checked against the grids the mesh is measured on.
        Without it the mesh is assumed to share the grid's CRS.
    process : bool
        Let trimesh merge duplicate vertices (STL stores each triangle's corners
        separately; merging is needed to tell whether the surface is closed).

    Returns
    -------
    trimesh.Trimesh
        One mesh (a multi-part file is concatenated), with ``metadata["crs"]`` and
        ``metadata["source"]``.

    Raises
    ------
    DataError
        The file is missing, unreadable or holds no triangles.

    Examples
    --------
    >>> import tempfile, os, trimesh
    >>> import xprospect as xp
    >>> path = os.path.join(tempfile.mkdtemp(), "box.stl")
    >>> _ = trimesh.creation.box(extents=(10, 10, 10)).export(path)
    >>> mesh = xp.io.read_mesh(path, crs="EPSG:28350")
    >>> len(mesh.faces), mesh.metadata["crs"].startswith("PROJCRS")
    (12, True)
    """
    trimesh = _trimesh()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"mesh file {str(path)!r} does not exist")
    try:
        loaded = trimesh.load(str(path), force="mesh", process=process)
    except Exception as err:
        raise DataError(f"mesh file {str(path)!r} could not be read by trimesh: {err}") from err
    mesh = as_mesh(loaded, what=repr(str(path)))
    mesh.metadata["source"] = str(path)
    if crs is not None:
        mesh.metadata["crs"] = parse_crs(crs).to_wkt()
    return mesh


def as_mesh(obj: Any, *, crs: Any = None, what: str = "the mesh") -> Any:
    """Return ``obj`` as one ``trimesh.Trimesh`` (a path is read with :func:`read_mesh`).

    Parameters
    ----------
    obj : trimesh.Trimesh, trimesh.Scene, path, or (vertices, faces)
        The surface.
    crs : optional
        CRS to record on the mesh (overrides one already recorded).
    what : str
        How to name the object in errors.

    Returns
    -------
    trimesh.Trimesh
    """
    trimesh = _trimesh()
    if isinstance(obj, (str, Path)):
        return read_mesh(obj, crs=crs)
    if isinstance(obj, trimesh.Scene):
        geoms = [g for g in obj.geometry.values() if isinstance(g, trimesh.Trimesh)]
        obj = trimesh.util.concatenate(geoms) if geoms else trimesh.Trimesh()
    elif isinstance(obj, tuple) and len(obj) == 2:
        obj = trimesh.Trimesh(vertices=np.asarray(obj[0], float), faces=np.asarray(obj[1]))
    if not isinstance(obj, trimesh.Trimesh):
        raise DataError(
            f"{what} is not a triangulated surface (got {type(obj).__name__}); "
            "pass a trimesh.Trimesh, a mesh file path or (vertices, faces)"
        )
    if len(obj.faces) == 0:
        raise DataError(f"{what} holds no triangles")
    if not np.all(np.isfinite(obj.vertices)):
        raise DataError(f"{what} has non-finite vertex coordinates")
    if crs is not None:
        obj.metadata["crs"] = parse_crs(crs).to_wkt()
    return obj
