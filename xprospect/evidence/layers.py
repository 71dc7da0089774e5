"""Evidence layers on grids and voxel models: balances, halo ratios, structures, and ``build``.

The building blocks work on any Dataset of element variables laid out as samples
(``sample``), a 2-D grid (y, x) or a voxel model (z, y, x), numpy or dask backed,
and keep coordinates and CRS. :func:`build` assembles the five evidence layers of the
Zaozigou 3-D study (Yu et al., 2022, *Minerals* 12, 1382; section 4.1, Table 1):

1. a buffer around ore-controlling structures (30 m around fractures);
2. a factor-analysis association (the Sb-Hg factor F4, tracing fractures);
3. the Au anomaly class from concentration-volume (C-V) fractal thresholds;
4. the near-ore halo association Au-Ag-Cu-Pb-Zn (balance B2 of a knowledge-driven
   compositional data analysis);
5. the front-halo / tail-halo parameter (As-Sb-Hg)/(W-Bi-Co-Mo).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect._dims import check_same_crs, get_crs, grid_geometry, parse_crs, write_crs
from xprospect.evidence.mesh import (
    _check_mesh_crs,
    _grid_result,
    _run_on_grid,
    _TriangleIndex,
    as_mesh,
)
from xprospect.exceptions import DataError, GridError

__all__ = [
    "FRONT_HALO",
    "NEAR_ORE_HALO",
    "TAIL_HALO",
    "balance",
    "buffer_structures",
    "build",
    "distance_to_structures",
    "halo_ratio",
]

log = logging.getLogger(__name__)

#: Front (head) halo elements of hydrothermal gold deposits (Zaozigou B1).
FRONT_HALO: tuple[str, ...] = ("As", "Sb", "Hg")
#: Near-ore halo elements (Zaozigou B2).
NEAR_ORE_HALO: tuple[str, ...] = ("Au", "Ag", "Cu", "Pb", "Zn")
#: Tail halo elements (Zaozigou B3).
TAIL_HALO: tuple[str, ...] = ("W", "Bi", "Co", "Mo")

_RATIO_KINDS = ("ratio", "log", "balance")


# -- compositional building blocks ----------------------------------------------------


def _group(ds: xr.Dataset, names: Sequence[str] | str, what: str, func: str) -> list[str]:
    names = [names] if isinstance(names, str) else [str(n) for n in names]
    if not names:
        raise DataError(f"{func}(): the {what} group is empty")
    missing = [n for n in names if n not in ds.data_vars]
    if missing:
        raise DataError(f"{func}(): {what} elements {missing} are not variables of the Dataset; "
                        f"it holds {sorted(map(str, ds.data_vars))}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"{func}(): {what} elements {dup} are repeated")
    return names


def _sum_logs(ds: xr.Dataset, names: list[str]) -> xr.DataArray:
    from xprospect.preprocess.scaling import _checked_log

    logs = [_checked_log(ds[n], n) for n in names]
    return sum(logs[1:], logs[0])


def _as_result(new: xr.DataArray, ds: xr.Dataset, name: str,
               attrs: dict[str, Any]) -> xr.DataArray:
    out = new.rename(name)
    out.attrs = attrs
    keep = {c: ds.coords[c] for c in ds.coords if c not in out.coords
            and set(ds.coords[c].dims) <= set(out.dims)}
    out = out.assign_coords(keep)
    crs = get_crs(ds)
    return write_crs(out, crs) if crs is not None else out


def balance(ds: xr.Dataset, numerator: Sequence[str], denominator: Sequence[str], *,
            name: str | None = None) -> xr.DataArray:
    """Isometric log-ratio balance between two groups of elements.

    ``b = sqrt(r s / (r + s)) * ln(g(num) / g(den))`` with ``g`` the geometric mean and
    ``r``, ``s`` the group sizes (Egozcue and Pawlowsky-Glahn, 2005): the coordinate
    of a sequential binary partition, positive where the numerator group dominates.
    Scale invariant (units cancel up to a constant).

    Parameters
    ----------
    ds : xarray.Dataset
        Samples, grid or voxels with the element variables, numpy or dask backed.
    numerator, denominator : list of str
        Disjoint, non-empty groups of element variables.
    name : str, optional
        Result name (default ``"balance_<num>_vs_<den>"``).

    Returns
    -------
    xarray.DataArray
        On ``ds``'s dims, coordinates and CRS; NaN where any part is missing; lazy on dask.

    Raises
    ------
    DataError
        Missing, repeated or overlapping elements, or non-positive values (at once on
        numpy data, when computed on dask data).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"Au": ("sample", [4.0]), "Ag": ("sample", [1.0]),
    ...                  "Co": ("sample", [2.0])})
    >>> b = balance(ds, ["Au", "Ag"], ["Co"])  # sqrt(2/3) * ln(sqrt(4 * 1) / 2) = 0
    >>> float(b[0])
    0.0
    """
    if not isinstance(ds, xr.Dataset):
        raise DataError(f"balance() needs a Dataset of element variables; got {type(ds).__name__}")
    num = _group(ds, numerator, "numerator", "balance")
    den = _group(ds, denominator, "denominator", "balance")
    both = sorted(set(num) & set(den))
    if both:
        raise DataError(f"balance(): elements {both} are in both the numerator and denominator")
    r, s = len(num), len(den)
    coef = float(np.sqrt(r * s / (r + s)))
    new = coef * (_sum_logs(ds, num) / r - _sum_logs(ds, den) / s)
    name = name or f"balance_{'_'.join(num)}_vs_{'_'.join(den)}"
    attrs = {"long_name": f"balance {'-'.join(num)} / {'-'.join(den)}", "units": "ilr",
             "numerator": num, "denominator": den,
             "formula": f"sqrt({r}*{s}/({r}+{s})) * ln(gmean({','.join(num)}) / "
                        f"gmean({','.join(den)}))"}
    return _as_result(new, ds, name, attrs)


_balance = balance  # build() has an argument of the same name


def halo_ratio(ds: xr.Dataset, front: Sequence[str] = FRONT_HALO,
               tail: Sequence[str] = TAIL_HALO, *, kind: str = "ratio",
               name: str = "halo_ratio") -> xr.DataArray:
    """Front-halo / tail-halo parameter of primary-halo zoning, e.g. (As Sb Hg)/(W Bi Co Mo).

    Above a blind orebody the front (head) halo elements dominate and below it the tail
    halo elements, so the ratio rises upwards through an ore-forming system and stays
    high above blind ore. The products follow the primary-halo literature (e.g.
    ``(As*Sb*Hg)/(W*Bi*Co*Mo)``); they are computed through logarithms, so no product
    overflows.

    Parameters
    ----------
    ds : xarray.Dataset
        Samples, grid or voxels with the element variables (concentrations > 0).
    front, tail : list of str
        Front- and tail-halo elements (defaults :data:`FRONT_HALO`, :data:`TAIL_HALO`).
    kind : {"ratio", "log", "balance"}
        ``"ratio"``: ``prod(front) / prod(tail)`` in the data's units;
        ``"log"``: its log10, ``sum log10 front - sum log10 tail``;
        ``"balance"``: the ilr balance of the two groups, ``sqrt(rs/(r+s)) ln(g(front) /
        g(tail))``, which does not depend on units or group sizes. Yu et al. (2022) use
        the quotient of two balances, B1/B3, each of a group against the remaining
        parts; that quotient changes sign and diverges where B3 crosses 0, so it is not
        offered: ``"balance"`` contrasts the two groups directly.
    name : str
        Result name.

    Returns
    -------
    xarray.DataArray
        On ``ds``'s dims, coordinates and CRS; lazy on dask.

    Raises
    ------
    DataError
        Missing or overlapping elements, an unknown ``kind``, non-positive values.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset({e: ("sample", [v]) for e, v in
    ...                  {"As": 2.0, "Sb": 3.0, "Hg": 1.0, "W": 1.0, "Mo": 2.0}.items()})
    >>> round(float(halo_ratio(ds, ["As", "Sb", "Hg"], ["W", "Mo"])[0]), 9)
    3.0
    """
    if kind not in _RATIO_KINDS:
        raise DataError(f"halo_ratio(kind={kind!r}) is unknown; valid kinds: {list(_RATIO_KINDS)}")
    if not isinstance(ds, xr.Dataset):
        raise DataError(f"halo_ratio() needs a Dataset of elements; got {type(ds).__name__}")
    fr = _group(ds, front, "front", "halo_ratio")
    tl = _group(ds, tail, "tail", "halo_ratio")
    both = sorted(set(fr) & set(tl))
    if both:
        raise DataError(f"halo_ratio(): elements {both} are in both the front and tail groups")
    if kind == "balance":
        out = balance(ds, fr, tl, name=name)
        out.attrs["long_name"] = f"front/tail halo balance ({'-'.join(fr)})/({'-'.join(tl)})"
        out.attrs["kind"] = kind
        return out
    lnr = _sum_logs(ds, fr) - _sum_logs(ds, tl)
    prod = f"({'*'.join(fr)})/({'*'.join(tl)})"
    if kind == "ratio":
        new = np.exp(lnr)
        attrs = {"formula": prod, "units": "ratio of products of concentrations"}
    else:
        new = lnr / float(np.log(10.0))
        attrs = {"formula": f"log10({prod})", "units": "log10"}
    attrs.update({"long_name": f"front/tail halo ratio ({'-'.join(fr)})/({'-'.join(tl)})",
                  "front": fr, "tail": tl, "kind": kind})
    return _as_result(new, ds, name, attrs)


# -- structures -----------------------------------------------------------------------


def _points_array(obj: Any, ndim: int, what: str) -> np.ndarray:
    axes = ("x", "y", "z")[:ndim]
    if isinstance(obj, xr.Dataset):
        cols = []
        for a in axes:
            if a not in obj.coords and a not in obj.data_vars:
                raise DataError(f"{what} has no {a!r} coordinate (needed on a {ndim}-D grid)")
            cols.append(np.asarray(obj[a].values, dtype="float64").ravel())
        arr = np.stack(cols, axis=1)
    elif isinstance(obj, pd.DataFrame):
        missing = [a for a in axes if a not in obj.columns]
        if missing:
            raise DataError(f"{what} has no columns {missing}; it has {list(obj.columns)}")
        arr = obj[list(axes)].to_numpy(dtype="float64")
    else:
        arr = np.asarray(obj, dtype="float64")
        if arr.ndim != 2 or arr.shape[1] not in (2, 3) or (ndim == 3 and arr.shape[1] != 3):
            raise DataError(f"{what} as an array must be (n, {ndim}) coordinates; got shape "
                            f"{arr.shape}")
        arr = arr[:, :ndim]
    if arr.shape[0] == 0:
        raise DataError(f"{what} holds no points")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{what} has non-finite coordinates")
    out = np.zeros((arr.shape[0], 3))
    out[:, :ndim] = arr
    return out


def _shapely_parts(geom: Any, ndim: int, what: str, pts: list, segs: list) -> None:
    gtype = geom.geom_type
    if geom.is_empty:
        return
    if gtype in ("Point", "MultiPoint"):
        coords = (np.asarray([g.coords[0] for g in geom.geoms]) if gtype == "MultiPoint"
                  else np.asarray(geom.coords))
        pts.append(_lift(coords, ndim, geom.has_z, what))
    elif gtype in ("LineString", "LinearRing"):
        c = _lift(np.asarray(geom.coords), ndim, geom.has_z, what)
        if len(c) == 1:
            pts.append(c)
        else:
            segs.append(np.stack([c[:-1], c[1:], c[1:]], axis=1))
    elif gtype == "Polygon":
        _shapely_parts(geom.exterior, ndim, what, pts, segs)
        for ring in geom.interiors:
            _shapely_parts(ring, ndim, what, pts, segs)
    elif hasattr(geom, "geoms"):
        for g in geom.geoms:
            _shapely_parts(g, ndim, what, pts, segs)
    else:  # pragma: no cover - every shapely type is handled above
        raise DataError(f"{what}: geometry type {gtype!r} is not supported")


def _lift(coords: np.ndarray, ndim: int, has_z: bool, what: str) -> np.ndarray:
    if ndim == 3 and not has_z:
        raise DataError(f"{what} has 2-D geometries; a voxel grid needs x, y, z coordinates "
                        "(give 3-D lines or a triangulated surface)")
    out = np.zeros((coords.shape[0], 3))
    out[:, :ndim] = coords[:, :ndim]
    return out


def _collect(structures: Any, like: xr.Dataset | xr.DataArray, ndim: int
             ) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """Split ``structures`` into points (n, 3) and triangles (m, 3, 3) in grid space."""
    import trimesh

    items = list(structures) if isinstance(structures, (list, tuple)) else [structures]
    pts: list[np.ndarray] = []
    tris: list[np.ndarray] = []
    kinds: list[str] = []
    grid_crs = get_crs(like)
    for i, obj in enumerate(items):
        what = f"structure {i}" if len(items) > 1 else "the structures"
        if isinstance(obj, (str, Path, trimesh.Trimesh, trimesh.Scene)):
            if ndim != 3:
                raise GridError(f"{what} is a triangulated surface; it needs a voxel grid "
                                "(z, y, x). On a 2-D grid give its trace as lines or points")
            mesh = as_mesh(obj, what=what)
            _check_mesh_crs(mesh, like, what)
            tris.append(np.asarray(mesh.triangles, dtype="float64"))
            kinds.append(f"mesh ({len(mesh.faces)} triangles)")
            continue
        if hasattr(obj, "geom_type") or hasattr(obj, "geometry"):
            crs = getattr(obj, "crs", None)
            if crs is not None and grid_crs is not None:
                check_same_crs(parse_crs(crs), grid_crs, what, "the grid (like=)")
            geoms = list(obj.geometry) if hasattr(obj, "geometry") else [obj]
            p: list[np.ndarray] = []
            s: list[np.ndarray] = []
            for g in geoms:
                if g is not None:
                    _shapely_parts(g, ndim, what, p, s)
            pts += p
            tris += s
            kinds.append(f"geometries ({sum(len(a) for a in s)} segments, "
                         f"{sum(len(a) for a in p)} points)")
            continue
        if isinstance(obj, xr.Dataset):
            crs = get_crs(obj)
            if crs is not None and grid_crs is not None:
                check_same_crs(crs, grid_crs, what, "the grid (like=)")
        arr = _points_array(obj, ndim, what)
        pts.append(arr)
        kinds.append(f"points ({len(arr)})")
    p_all = np.concatenate(pts) if pts else None
    t_all = np.concatenate(tris) if tris else None
    return p_all, t_all, kinds


def _structure_block(*coords: np.ndarray, index: _TriangleIndex | None, tree: Any,
                     max_distance: float, out_dtype: Any) -> np.ndarray:
    grids = np.meshgrid(*coords, indexing="ij")
    q = np.zeros((grids[0].size, 3))
    for g, ax in zip(grids, "zyx"[-len(coords):], strict=True):
        q[:, "xyz".index(ax)] = g.ravel()
    best = np.full(q.shape[0], np.inf)
    if index is not None:
        best = np.minimum(best, index.query(q, max_distance))
    if tree is not None:
        # scipy's bound is strict: widen it a hair so cells exactly at the cap count
        bound = max_distance * (1 + 1e-9) + 1e-12 if np.isfinite(max_distance) else np.inf
        d, _ = tree.query(q, k=1, distance_upper_bound=bound)
        best = np.minimum(best, d)
    if np.isfinite(max_distance):
        best[best > max_distance] = np.inf
    return best.reshape(grids[0].shape).astype(out_dtype, copy=False)


def distance_to_structures(like: xr.Dataset | xr.DataArray, structures: Any, *,
                           max_distance: float | None = None, name: str = "structure_distance",
                           dtype: Any = "float32") -> xr.DataArray:
    """Euclidean distance from each cell centre to the nearest structure.

    Structures may be triangulated surfaces (fault or contact wireframes: a
    ``trimesh.Trimesh`` or a mesh file path, voxel grids only), point sets (a ``point``
    Dataset from :func:`~xprospect.evidence.read_points`, a DataFrame with ``x``,
    ``y`` [, ``z``] columns or an (n, 2|3) array), shapely geometries or a
    GeoDataFrame/GeoSeries (lines as exact segments; polygons by their boundary;
    points), or a list mixing them. Surfaces and lines use exact point-triangle /
    point-segment distances through a bounding-volume hierarchy, points a k-d tree.
    Lazy per dask chunk of ``like``.

    Parameters
    ----------
    like : xarray.Dataset or DataArray
        Grid (y, x) or voxels (z, y, x).
    structures : mesh, path, points, geometries or a list of them
        In ``like``'s CRS (checked when they carry one).
    max_distance : float, optional
        Search no farther; cells beyond get ``inf``.
    name : str
        Result name.
    dtype : dtype
        Output dtype.

    Returns
    -------
    xarray.DataArray
        Distances in CRS units on ``like``'s grid and CRS.

    Raises
    ------
    DataError
        Unusable structures (empty, non-finite, 2-D geometries on voxels).
    GridError
        A surface given for a 2-D grid.
    CRSError
        A CRS mismatch.

    Examples
    --------
    >>> import numpy as np
    >>> import xprospect as xp
    >>> grid = xp.make_grid((0, 0, 4, 4), resolution=1, crs="EPSG:28350")
    >>> d = xp.evidence.distance_to_structures(grid, np.array([[0.5, 0.5]]))
    >>> float(d.sel(y=3.5, x=0.5))
    3.0
    """
    geom = grid_geometry(like)
    pts, tris, kinds = _collect(structures, like, geom.ndim)
    cap = np.inf if max_distance is None else float(max_distance)
    if not cap > 0:
        raise DataError(f"max_distance must be > 0; got {max_distance!r}")
    index = _TriangleIndex(tris) if tris is not None else None
    tree = None
    if pts is not None:
        from scipy.spatial import cKDTree

        tree = cKDTree(pts)
    dtype = np.dtype(dtype)
    data, dims = _run_on_grid(like, _structure_block, dtype, index=index, tree=tree,
                              max_distance=cap, out_dtype=dtype)
    attrs: dict[str, Any] = {"units": "CRS units", "long_name": "distance to structures",
                             "structures": "; ".join(kinds),
                             "method": "exact distance to triangles/segments (BVH) and points "
                                       "(k-d tree)"}
    if max_distance is not None:
        attrs["max_distance"] = cap
    return _grid_result(data, like, dims, name, attrs)


def buffer_structures(like: xr.Dataset | xr.DataArray, structures: Any,
                      distance: float = 30.0, *, name: str = "structure_buffer") -> xr.DataArray:
    """Cells within ``distance`` of a structure (the "30 m fracture buffer" layer).

    Parameters
    ----------
    like : xarray.Dataset or DataArray
        Grid or voxels.
    structures : see :func:`distance_to_structures`
    distance : float
        Buffer width in CRS units (> 0); a cell centre exactly at it is inside.
    name : str
        Result name.

    Returns
    -------
    xarray.DataArray
        Boolean, True inside the buffer; lazy per chunk.

    Examples
    --------
    >>> import numpy as np
    >>> import xprospect as xp
    >>> grid = xp.make_grid((0, 0, 4, 4), resolution=1, crs="EPSG:28350")
    >>> int(xp.evidence.buffer_structures(grid, np.array([[0.5, 0.5]]), 1.0).sum())
    3
    """
    width = float(distance)
    if not width > 0:
        raise DataError(f"buffer distance must be > 0; got {distance!r}")
    d = distance_to_structures(like, structures, max_distance=width, dtype="float64")
    out = d <= width
    out.name = name
    out.attrs = {"long_name": f"within {width:g} of structures", "distance": width,
                 "structures": d.attrs["structures"]}
    crs = get_crs(like)
    return write_crs(out, crs) if crs is not None else out


# -- the five Zaozigou layers ---------------------------------------------------------


def _valid_mask(ds: xr.Dataset, names: list[str]) -> xr.DataArray:
    ok = ds[names[0]].notnull()
    for n in names[1:]:
        ok = ok & ds[n].notnull()
    return ok


def _pick_factor(scores: xr.DataArray, loadings: pd.DataFrame, keep: Sequence[str]
                 ) -> tuple[xr.DataArray, str, float]:
    keep = list(keep)
    missing = [e for e in keep if e not in loadings.index]
    if missing:
        raise DataError(f"factor_keep elements {missing} were not in the factor analysis "
                        f"(elements {list(loadings.index)})")
    fac = [c for c in loadings.columns if c.startswith("F")]
    sums = loadings.loc[keep, fac].sum(axis=0)
    best = str(sums.abs().idxmax())
    sign = 1.0 if sums[best] >= 0 else -1.0
    return scores.sel(factor=best, drop=True) * sign, best, sign


def build(
    block: xr.Dataset,
    *,
    ratio: tuple[Sequence[str], Sequence[str]] | None = (FRONT_HALO, TAIL_HALO),
    ratio_kind: str = "log",
    factors: int | None = 4,
    factor_elements: Sequence[str] | None = None,
    factor_keep: Sequence[str] | None = ("Sb", "Hg"),
    balance: tuple[Sequence[str], Sequence[str] | None] | None = (NEAR_ORE_HALO, None),
    cv_element: str | None = "Au",
    cv_breaks: int = 2,
    structures: Any = None,
    buffer: float = 30.0,
    seed: int = 0,
) -> xr.Dataset:
    """Evidence layers of a geochemical block model (Yu et al., 2022, Table 1).

    Each layer is optional; the defaults reproduce the Zaozigou set for a block with
    the twelve elements Ag, As, Au, Cu, Hg, Pb, Zn, Sb, W, Bi, Co, Mo:

    ``structure_buffer``
        1 within ``buffer`` of ``structures`` (surfaces, lines or points), else 0;
        see :func:`buffer_structures`.
    ``factor_<elements>`` (or ``F1`` ... ``Fn``)
        Scores of a varimax factor analysis of log10 standardised elements
        (:func:`xprospect.preprocess.factor_analysis`); with ``factor_keep`` only the
        factor whose loadings on those elements sum highest (e.g. the Sb-Hg factor),
        signed so that they load positively.
    ``cv_<element>``
        Class of ``cv_element`` from concentration-volume fractal thresholds
        (:func:`xprospect.preprocess.fractal_thresholds`, ``cv_breaks`` breaks): 0
        background, 1 anomaly, 2 high anomaly.
    ``balance_<elements>``
        The ilr balance of the near-ore group against the remaining elements of the
        block (or the group given), :func:`balance`.
    ``halo_ratio``
        Front/tail halo parameter, :func:`halo_ratio` with ``kind=ratio_kind`` (default
        log10 of the product ratio: the same ranking, a tamer scale for models).

    Factor analysis and the C-V thresholds are global (they compute the data they
    need); the other layers stay lazy. Every geochemical layer is NaN where one of its
    elements is; the buffer layer is NaN wherever all geochemical layers are, so the
    layers share one footprint.

    Parameters
    ----------
    block : xarray.Dataset
        Voxel model (or 2-D grid) with one variable per element, concentrations > 0.
    ratio : (front, tail) or None
        Halo groups for ``halo_ratio``.
    ratio_kind : {"log", "ratio", "balance"}
        See :func:`halo_ratio`.
    factors : int or None
        Number of factors.
    factor_elements : list of str, optional
        Elements in the factor analysis (default every numeric element variable).
    factor_keep : list of str or None
        Keep only the factor of this association (None keeps every factor).
    balance : (numerator, denominator or None) or None
        Groups of the balance layer; a None denominator means every other element
        variable of the block.
    cv_element : str or None
        Element of the C-V fractal class layer.
    cv_breaks : int
        Number of C-V thresholds.
    structures : optional
        Structures for the buffer layer (see :func:`distance_to_structures`).
    buffer : float
        Buffer width in CRS units.
    seed : int
        Seed of the factor analysis.

    Returns
    -------
    xarray.Dataset
        One float32 variable per layer on the block's grid and CRS, each with attrs
        saying how it was made (``long_name``, ``formula`` or ``method``, elements),
        plus the block's ``mask`` when it has one. ``attrs["layers"]`` lists them.

    Raises
    ------
    DataError
        A layer needs elements the block does not hold (named), or nothing to build.

    Examples
    --------
    >>> import xprospect as xp
    >>> import xarray as xr, numpy as np
    >>> rng = np.random.default_rng(0)
    >>> vox = xp.make_voxels((0, 0, 0, 50, 50, 50), resolution=10, crs="EPSG:28350")
    >>> block = vox.assign({e: (("z", "y", "x"), rng.lognormal(size=(5, 5, 5)))
    ...                     for e in ["As", "Sb", "Hg", "W", "Mo"]})
    >>> layers = xp.evidence.build(block, ratio=(["As", "Sb", "Hg"], ["W", "Mo"]),
    ...                            factors=None, balance=None, cv_element=None)
    >>> list(layers.data_vars)
    ['mask', 'halo_ratio']
    """
    if not isinstance(block, xr.Dataset):
        raise DataError(f"build() needs a Dataset block model; got {type(block).__name__}")
    geom = grid_geometry(block)
    from xprospect._dims import element_vars

    elements = [n for n in element_vars(block, geom.dims) if block[n].dtype != bool]
    out = xr.Dataset(coords={d: block[d] for d in geom.dims})
    layers: dict[str, xr.DataArray] = {}
    used: set[str] = set()

    if ratio is not None:
        front, tail = ratio
        layers["halo_ratio"] = halo_ratio(block, front, tail, kind=ratio_kind)
        used |= set(front) | set(tail)

    if balance is not None:
        num, den = balance
        num = _group(block, num, "balance numerator", "build")
        if den is None:
            den = [e for e in elements if e not in num]
            if not den:
                raise DataError(f"build(): no elements left for the balance denominator after "
                                f"{num}")
        nm = f"balance_{'_'.join(num)}"
        layers[nm] = _balance(block, num, den, name=nm)
        used |= set(num) | set(den)

    if cv_element is not None:
        from xprospect.preprocess.fractal import classify_fractal, fractal_thresholds

        _group(block, [cv_element], "C-V", "build")
        var = block[cv_element]
        thr = fractal_thresholds(var, n_breaks=int(cv_breaks), kind="volume"
                                 if "z" in geom.dims else "area")
        cls = classify_fractal(var, thr)
        lay = cls.where(cls >= 0).astype("float32")
        lay.attrs = {"long_name": f"{cv_element} {'C-V' if 'z' in geom.dims else 'C-A'} "
                                  "fractal anomaly class",
                     "class_names": cls.attrs["class_names"],
                     "thresholds": [float(t) for t in thr.thresholds],
                     "units": "class", "element": cv_element,
                     "method": f"piecewise log-log fit, {int(cv_breaks)} breaks"}
        layers[f"cv_{cv_element}"] = lay
        used.add(cv_element)

    if factors is not None:
        from xprospect.preprocess.factors import factor_analysis

        fel = list(factor_elements) if factor_elements is not None else elements
        scores, loadings = factor_analysis(block, n_factors=int(factors), elements=fel,
                                           seed=seed)
        used |= set(fel)
        base = {"method": scores.attrs["method"], "units": "1",
                "loadings": {f: {e: round(float(v), 4) for e, v in loadings[f].items()}
                             for f in loadings.columns if f.startswith("F")}}
        if factor_keep is not None:
            lay, fname, sign = _pick_factor(scores, loadings, factor_keep)
            label = loadings.attrs["labels"][fname]
            nm = f"factor_{'_'.join(factor_keep)}"
            lay.attrs = {**base, "long_name": f"factor scores {label}"
                         + (" (sign flipped)" if sign < 0 else ""), "factor": fname}
            layers[nm] = lay
        else:
            for f, label in loadings.attrs["labels"].items():
                lay = scores.sel(factor=f, drop=True)
                lay.attrs = {**base, "long_name": f"factor scores {label}", "factor": f}
                layers[f] = lay

    geo_valid = _valid_mask(block, sorted(used)) if used else None
    if structures is not None:
        buf = buffer_structures(block, structures, buffer)
        lay = buf.astype("float32")
        if geo_valid is not None:
            lay = lay.where(geo_valid)
        lay.attrs = {**buf.attrs, "units": "1 inside, 0 outside",
                     "long_name": f"{float(buffer):g} buffer around structures"}
        layers = {"structure_buffer": lay, **layers}

    if not layers:
        raise DataError("build(): every layer is switched off; nothing to build")
    if "mask" in block.data_vars:
        out["mask"] = block["mask"]
    for nm, lay in layers.items():
        lay = lay.astype("float32", keep_attrs=True).reset_coords(drop=True)
        out[nm] = (geom.dims, lay.transpose(*geom.dims).data, lay.attrs)
    out.attrs["layers"] = list(layers)
    out.attrs["source"] = "xprospect.evidence.build"
    crs = get_crs(block)
    return write_crs(out, crs) if crs is not None else out

