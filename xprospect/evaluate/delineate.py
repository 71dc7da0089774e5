"""Delineation of exploration targets: connected regions of a map above levels.

A map is cut at one or more levels (by default the top 10 % and 2 % of its area,
:data:`~xprospect.evaluate.DEFAULT_TOP_PERCENT`; or fixed values on the map min-max scaled
to [0, 1] by :func:`xprospect.preprocess.scaling.minmax_scale`, such as the study's 0.75
"medium" and 0.998 "high" potential; quantiles of the map; fractal C-A / C-V thresholds),
and the cells at or above each level are grouped into connected regions (2-D areas or 3-D
volumes). Regions are ranked and summarised in a table (size, score, deposits inside,
centroid, bounding box, elevation range) and their outlines returned as a GeoDataFrame
(:meth:`TargetSet.to_geodataframe`) and written through geopandas as GeoPackage or RFC 7946 GeoJSON.

Targets are inherently global (a region can span every chunk), so lazy input is computed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect._dask import compute_once
from xprospect._dims import GRID_DIMS_2D, GRID_DIMS_3D, get_crs, grid_geometry, write_crs
from xprospect._sanity import warn_if_constant
from xprospect.evaluate._common import DEFAULT_TOP_PERCENT, as_share
from xprospect.exceptions import DataError, GridError
from xprospect.io._atomic import atomic_path, write_error
from xprospect.points import as_points, points_to_index
from xprospect.preprocess.fractal import fractal_thresholds
from xprospect.preprocess.scaling import minmax_scale

__all__ = ["DEFAULT_LEVELS", "TargetSet", "targets"]

#: The study's potential levels (Yu et al., 2022): medium >= 0.75, high >= 0.998.
DEFAULT_LEVELS = {"medium": 0.75, "high": 0.998}
_RANK_BY = ("max", "mean", "n_cells")


@dataclass
class TargetSet:
    """Target regions of a map at one or more levels.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per region, sorted by level (lowest first) then rank: ``level``,
        ``level_value``, ``region`` (ids follow the rank within a level, 1 = best),
        ``rank``, ``within`` (the region of the next lower level that holds it; 0 for the
        lowest level), ``n_cells``, ``area_m2`` (2-D) or ``volume_m3`` (3-D),
        ``max_score``, ``mean_score``, ``n_deposits``, ``deposit_ids``, ``centroid_x``,
        ``centroid_y`` (``centroid_z``; the unweighted mean of cell centres), ``xmin``,
        ``ymin``, ``xmax``, ``ymax`` (cell edges) and, in 3-D, ``z_min``, ``z_max``
        (voxel edges: the elevation range).
    labels : xarray.DataArray
        int32 region ids (``level``, y, x) or (``level``, z, y, x) on the map's grid and
        CRS; 0 outside every region of that level.
    score : xarray.DataArray
        The (scaled) map the levels were applied to.
    levels : dict
        Level name -> value on ``score``.
    crs : pyproj.CRS or None
        The map's CRS.
    report : dict
        What was done: scaling, connectivity, levels, deposits outside the grid.
    """

    table: pd.DataFrame
    labels: xr.DataArray
    score: xr.DataArray = field(repr=False)
    levels: dict[str, float]
    crs: Any
    report: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def classes(self) -> xr.DataArray:
        """Potential class per cell: 0 below every level, ``k`` at the k-th level (ascending).

        ``attrs["class_names"]`` is JSON text (a list of strings: ``"none"`` then the
        levels), so that every NetCDF engine, zarr and GeoTIFF accept it.
        """
        lab = self.labels
        cls = (lab > 0).sum("level").astype("int8")
        cls = cls.where(np.isfinite(self.score), -1).astype("int8")
        cls.name = "potential"
        cls.attrs = {"class_names": json.dumps(["none", *self.levels]), "nodata": -1}
        return cls

    def to_csv(self, path: str | Path, **kwargs: Any) -> Path:
        """Write the region table to CSV (``pandas.DataFrame.to_csv`` options pass through).

        Written under a temporary name and renamed on success: a failure (a full disk, a
        read-only target) leaves no file and raises a :class:`DataError` saying why.
        """
        path = Path(path)
        if not path.parent.is_dir():
            raise DataError(f"cannot write {path}: folder {path.parent} does not exist")
        with atomic_path(path) as tmp:
            self.table.to_csv(tmp, index=False, **kwargs)
        return path

    def to_geodataframe(
        self, *, level: str | Sequence[str] | None = None, mode: str = "slices"
    ) -> Any:
        """Region outlines as a :class:`geopandas.GeoDataFrame` in the map's CRS.

        Polygons trace cell edges (``rasterio.features.shapes``); a region whose cells
        touch only at corners becomes a MultiPolygon. Each row carries its table row.

        Parameters
        ----------
        level : str or list of str, optional
            Levels to keep (default all).
        mode : {"slices", "footprint"}
            3-D maps only: ``"slices"`` gives one row per region and elevation slice
            (columns ``z``, ``z_bottom``, ``z_top``); ``"footprint"`` gives each region's
            plan-view footprint (the union over its slices).

        Returns
        -------
        geopandas.GeoDataFrame
            One row per region (and slice), the table's columns plus ``geometry``.

        Raises
        ------
        DataError
            For an unknown level or mode.
        """
        # geopandas, rasterio and shapely are heavy imports needed only to build polygons: lazy
        import geopandas
        from rasterio.features import shapes
        from shapely.geometry import shape
        from shapely.ops import unary_union

        if mode not in ("slices", "footprint"):
            raise DataError(f"mode must be 'slices' or 'footprint'; got {mode!r}")
        names = (
            list(self.levels)
            if level is None
            else ([level] if isinstance(level, str) else list(level))
        )
        for n in names:
            if n not in self.levels:
                raise DataError(f"unknown level {n!r}; levels are {list(self.levels)}")
        geom = grid_geometry(self.labels.isel(level=0))
        transform = (
            self.labels.isel(level=0).rio.transform()
            if geom.ndim == 2
            else self.labels.isel(level=0, z=0).rio.transform()
        )
        conn = 8 if self.report.get("connectivity", 1) > 1 else 4
        rows = {(r.level, r.region): r for r in self.table.itertuples(index=False)}
        records: list[dict[str, Any]] = []
        polygons: list[Any] = []

        def emit(lab2d: np.ndarray, extra: dict[str, Any], lvl: str) -> None:
            if not lab2d.any():
                return
            parts: dict[int, list] = {}
            for g, v in shapes(
                lab2d.astype("int32"), mask=lab2d > 0, connectivity=conn, transform=transform
            ):
                parts.setdefault(int(v), []).append(shape(g))
            for rid in sorted(parts):
                records.append({**rows[(lvl, rid)]._asdict(), **extra})
                polygons.append(unary_union(parts[rid]))

        for lvl in names:
            lab = np.asarray(self.labels.sel(level=lvl).values)
            if geom.ndim == 2:
                emit(lab, {}, lvl)
            elif mode == "slices":
                dz = abs(geom.step[0]) if geom.step[0] != 0 else float("nan")
                for k, zc in enumerate(self.labels["z"].values):
                    emit(
                        lab[k],
                        {
                            "z": float(zc),
                            "z_bottom": float(zc - dz / 2),
                            "z_top": float(zc + dz / 2),
                        },
                        lvl,
                    )
            else:
                for rid in np.unique(lab[lab > 0]):
                    foot = np.where((lab == rid).any(axis=0), int(rid), 0)
                    emit(foot, {}, lvl)
        columns = list(self.table.columns)
        if geom.ndim == 3 and mode == "slices":
            columns += ["z", "z_bottom", "z_top"]
        frame = pd.DataFrame.from_records(records, columns=columns)
        return geopandas.GeoDataFrame(frame, geometry=polygons, crs=self.crs)

    def to_gpkg(
        self,
        path: str | Path,
        *,
        level: str | Sequence[str] | None = None,
        mode: str = "slices",
        layer: str = "targets",
    ) -> Path:
        """Write region outlines to a GeoPackage layer in the map's CRS (QGIS opens it).

        Parameters
        ----------
        path : str or Path
            Output ``.gpkg`` file (replaced if it exists).
        level, mode
            As for :meth:`to_geodataframe`.
        layer : str
            Layer name.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        DataError
            For an unknown level or mode, or when the write fails: the file is written
            under a temporary name and renamed on success, so a failure leaves nothing.
        """
        gdf = self.to_geodataframe(level=level, mode=mode)
        return _write_vector(gdf, Path(path), driver="GPKG", layer=layer)

    def to_geojson(
        self, path: str | Path, *, level: str | Sequence[str] | None = None, mode: str = "slices"
    ) -> Path:
        """Write region outlines as RFC 7946 GeoJSON (WGS 84 longitude/latitude).

        RFC 7946 allows only WGS 84 coordinates and no ``crs`` member, so the outlines are
        reprojected (by GDAL's GeoJSON driver with ``RFC7946=YES``, through geopandas); use
        :meth:`to_gpkg` to keep the map's CRS. A map without a CRS cannot be written as RFC
        7946 GeoJSON.

        Parameters
        ----------
        path : str or Path
            Output file.
        level, mode
            As for :meth:`to_geodataframe`.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        DataError
            For an unknown level or mode, a map without a CRS, or when the write fails
            (nothing is left behind).
        """
        if self.crs is None:
            raise DataError(
                f"cannot write {path}: RFC 7946 GeoJSON is in WGS 84 and the map has no CRS "
                "to reproject from; write_crs the map first or use to_gpkg"
            )
        gdf = self.to_geodataframe(level=level, mode=mode).to_crs("EPSG:4326")
        return _write_vector(gdf, Path(path), driver="GeoJSON", RFC7946="YES")


def _write_vector(gdf: Any, path: Path, *, driver: str, **options: Any) -> Path:
    """Write ``gdf`` through pyogrio atomically (a temporary file renamed on success)."""
    if not path.parent.is_dir():
        raise DataError(f"cannot write {path}: folder {path.parent} does not exist")
    # GDAL refuses a list column (none here) and wants plain dtypes: the table has only
    # numbers and strings, so the frame is written as is.
    with atomic_path(path) as tmp:
        try:
            gdf.to_file(tmp, driver=driver, engine="pyogrio", **options)
        except (OSError, RuntimeError, ValueError) as err:
            raise write_error(path, err) from err
    return path


def _top_quantiles(top_percent: Any) -> dict[str, float]:
    """``{"top 10 %": 0.9, ...}``: shares of the area (percent) as named quantiles."""
    shares = [top_percent] if np.isscalar(top_percent) else list(top_percent)
    if not shares:
        raise DataError("top_percent is empty: give at least one share of the area")
    return {f"top {p:g} %": 1 - p / 100 for p in map(as_share, shares)}


def _resolve_levels(
    score: np.ndarray, levels: Any, quantiles: Any, thresholds: Any, score_da: xr.DataArray
) -> dict[str, float]:

    def named(v: Any, what: str, prefix: str) -> dict[str, float]:
        if isinstance(v, Mapping):
            out = {str(k): float(x) for k, x in v.items()}
        elif np.isscalar(v):
            one = float(np.asarray(v, dtype="float64"))
            out = {f"{prefix}{one:g}": one}
        else:
            out = {
                f"{prefix}{float(x):g}": float(x)
                for x in np.atleast_1d(np.asarray(v, dtype="float64"))
            }
        if not out:
            raise DataError(f"{what} is empty")
        bad = {k: x for k, x in out.items() if not np.isfinite(x)}
        if bad:
            raise DataError(f"{what} holds non-finite values: {bad}")
        return out

    finite = score[np.isfinite(score)]
    if quantiles is not None:
        q = named(quantiles, "quantiles", "q")
        bad = {k: x for k, x in q.items() if not 0 <= x <= 1}
        if bad:
            raise DataError(f"quantiles must lie in [0, 1]; got {bad}")
        out = {k: float(np.quantile(finite, x)) for k, x in q.items()}
    elif thresholds is not None:
        if isinstance(thresholds, str):
            if thresholds != "fractal":
                raise DataError(
                    f"thresholds must be 'fractal', a FractalThresholds or values; "
                    f"got {thresholds!r}"
                )
            thresholds = fractal_thresholds(score_da)
        vals = getattr(thresholds, "thresholds", thresholds)
        if isinstance(vals, Mapping):
            out = named(vals, "thresholds", "t")
        else:
            vals = np.atleast_1d(np.asarray(vals, dtype="float64"))
            out = {
                ("anomaly" if len(vals) == 1 else f"fractal_{i + 1}"): float(v)
                for i, v in enumerate(vals)
            }
            out = named(out, "thresholds", "t")
    else:
        out = named(levels, "levels", "level_")
    # Ascending, so that a region of a higher level lies inside one of the level below.
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


def _region_stats(
    lab: np.ndarray,
    n: int,
    score: np.ndarray,
    centres: list[np.ndarray],
    steps: list[float],
    dims: tuple[str, ...],
) -> dict[str, np.ndarray]:
    flat = lab.ravel()
    sel = flat > 0
    ids = flat[sel]
    s = score.ravel()[sel]
    counts = np.bincount(ids, minlength=n + 1)[1:]
    total = np.bincount(ids, weights=s, minlength=n + 1)[1:]
    mx = np.full(n + 1, -np.inf)
    np.maximum.at(mx, ids, s)
    stats: dict[str, np.ndarray] = {
        "n_cells": counts,
        "max_score": mx[1:],
        "mean_score": total / counts,
    }
    grids = np.meshgrid(*centres, indexing="ij")
    for d, g, st in zip(dims, grids, steps, strict=True):
        c = g.ravel()[sel]
        stats[f"centroid_{d}"] = np.bincount(ids, weights=c, minlength=n + 1)[1:] / counts
        lo = np.full(n + 1, np.inf)
        hi = np.full(n + 1, -np.inf)
        np.minimum.at(lo, ids, c)
        np.maximum.at(hi, ids, c)
        half = abs(st) / 2
        stats[f"{d}_lo"], stats[f"{d}_hi"] = lo[1:] - half, hi[1:] + half
    return stats


def targets(
    score_map: xr.DataArray,
    *,
    levels: Mapping[str, float] | Sequence[float] | None = None,
    quantiles: Mapping[str, float] | Sequence[float] | None = None,
    thresholds: Any = None,
    top_percent: float | Sequence[float] | None = None,
    scale: str | None = "auto",
    deposits: Any = None,
    connectivity: int = 1,
    min_cells: int = 1,
    rank_by: str = "max",
) -> TargetSet:
    """Delineate, rank and summarise target regions of a prospectivity or anomaly map.

    Cells at or above a level form regions by ``scipy.ndimage.label`` (2-D or 3-D).
    Levels are nested: every region of a higher level lies inside one region of each lower
    level (column ``within``). Inherently global: lazy (dask) input is computed.

    Parameters
    ----------
    score_map : xarray.DataArray
        A (y, x) map or (z, y, x) voxel map; larger = more prospective.
    levels : mapping or sequence of float, optional
        Named levels on the min-max scaled map, e.g. :data:`DEFAULT_LEVELS`
        ``{"medium": 0.75, "high": 0.998}`` (Yu et al., 2022). Unnamed values are named
        ``level_<value>``.
    quantiles : mapping or sequence of float, optional
        Levels as quantiles of the map's finite values (e.g. ``{"top5": 0.95}``).
    thresholds : "fractal", FractalThresholds or sequence of float, optional
        Levels in the map's own units, e.g. from
        :func:`xprospect.preprocess.fractal_thresholds` (``"fractal"`` computes C-A / C-V
        thresholds with two breaks on the map).
    top_percent : float or sequence of float, optional
        Levels as shares of the area (percent of the finite cells), named ``"top 10 %"``...
        The default when none of ``levels``, ``quantiles``, ``thresholds`` and
        ``top_percent`` is given: :data:`~xprospect.evaluate.DEFAULT_TOP_PERCENT`, the top
        10 % and 2 % of the area. A share of the area means the same on any map (a
        probability, an uncalibrated or anomaly score), unlike a fixed score; pass
        ``levels=`` for fixed fractions of the map's range.
    scale : {"auto", "minmax", None}
        Scale the map before applying levels. ``"auto"`` scales by :func:`minmax_scale`
        when ``levels`` are used (they are fractions of the range, as in the study) and
        leaves the map as is for ``quantiles`` and ``thresholds``.
    deposits : points, optional
        Known deposits in any form :func:`xprospect.points.as_points` takes (a point
        Dataset, a GeoDataFrame, a GeoPackage/Shapefile/GeoJSON path...); each region
        counts and lists those whose cell lies inside it. Points outside the grid are
        ignored (counted in ``report``).
    connectivity : int
        Neighbourhood of ``scipy.ndimage.generate_binary_structure``: 1 joins cells sharing
        a face (4 in 2-D, 6 in 3-D), 2 also edges (8 in 2-D, 18 in 3-D), 3 also corners (3-D).
    min_cells : int
        Drop regions smaller than this (cells).
    rank_by : {"max", "mean", "n_cells"}
        Ranking within a level (ties broken by the others, in that order).

    Only one of ``levels``, ``quantiles``, ``thresholds`` and ``top_percent`` may be given.

    Returns
    -------
    TargetSet
        ``table`` (pandas), ``labels`` (georeferenced), ``classes``, ``to_geodataframe``,
        ``to_csv``, ``to_gpkg``, ``to_geojson``.

    Raises
    ------
    DataError, GridError
        For a map that is not a grid, bad levels or options.

    Examples
    --------
    >>> import numpy as np, xprospect as xp
    >>> grid = xp.make_grid((0, 0, 100, 100), resolution=10, crs="EPSG:32750")
    >>> m = xr.zeros_like(grid["mask"], dtype="float64")
    >>> m[2:4, 2:4] = 1.0
    >>> t = targets(m, levels={"high": 0.9})
    >>> t.table[["level", "region", "n_cells", "area_m2"]].values.tolist()
    [['high', 1, 4, 400.0]]
    """
    from scipy import ndimage  # scipy is a heavy import used only for region labelling

    if not isinstance(score_map, xr.DataArray):
        raise DataError(f"targets needs a DataArray map; got {type(score_map).__name__}")
    dims = GRID_DIMS_3D if "z" in score_map.dims else GRID_DIMS_2D
    if set(score_map.dims) != set(dims):
        raise DataError(
            f"targets needs a map with dims {dims}; got {score_map.dims} "
            f"(variable {score_map.name!r}); select one layer first"
        )
    score_map = score_map.transpose(*dims)
    geom = grid_geometry(score_map)
    if any(s == 0 for s in geom.step):
        raise GridError(
            f"cannot infer cell sizes of a map with a single cell along an axis "
            f"(shape {geom.shape})"
        )
    if rank_by not in _RANK_BY:
        raise DataError(f"rank_by must be one of {_RANK_BY}; got {rank_by!r}")
    if not isinstance(connectivity, (int, np.integer)) or not 1 <= connectivity <= len(dims):
        raise DataError(f"connectivity must be an integer in 1..{len(dims)}; got {connectivity!r}")
    given = [
        n
        for n, v in (
            ("levels", levels),
            ("quantiles", quantiles),
            ("thresholds", thresholds),
            ("top_percent", top_percent),
        )
        if v is not None
    ]
    if len(given) > 1:
        raise DataError(
            f"pass only one of levels=, quantiles=, thresholds=, top_percent=; got {given}"
        )
    if not given:
        top_percent = DEFAULT_TOP_PERCENT
    if top_percent is not None:
        quantiles = _top_quantiles(top_percent)
    if scale == "auto":
        scale = "minmax" if levels is not None else None
    if scale == "minmax":
        score_map = minmax_scale(score_map)
    elif scale is not None:
        raise DataError(f"scale must be 'auto', 'minmax' or None; got {scale!r}")
    # Inherently global: regions can span every chunk. Computed once (on a cluster:
    # persisted there, then gathered), and every step below reads the same values.
    score_map = compute_once(score_map)
    values = np.asarray(score_map.values, dtype="float64")
    inf = np.isinf(values)
    if inf.any():
        at = np.unravel_index(int(np.argmax(inf)), values.shape)
        where = ", ".join(
            f"{d}={float(score_map[d].values[i])!r}" for d, i in zip(dims, at, strict=True)
        )
        raise DataError(
            f"map {score_map.name!r} holds {int(inf.sum())} infinite cell(s), the "
            f"first ({float(values[at])!r}) at {where}; mask them first "
            "(map.where(np.isfinite(map)))"
        )
    if not np.isfinite(values).any():
        raise DataError(f"map {score_map.name!r} holds no finite values")
    warn_if_constant(values, f"the map {score_map.name!r}")
    lv = _resolve_levels(values, levels, quantiles, thresholds, score_map)
    if scale == "minmax":
        out_of_range = {k: v for k, v in lv.items() if not 0.0 <= v <= 1.0}
        if out_of_range:
            raise DataError(
                f"levels {out_of_range} lie outside [0, 1], the range of the "
                "min-max scaled map: no cell could reach them; pass levels as "
                "fractions of the range, or scale=None to cut the map's own values"
            )

    structure = ndimage.generate_binary_structure(len(dims), int(connectivity))
    centres = [np.asarray(score_map[d].values, dtype="float64") for d in dims]
    cell = float(np.prod([abs(s) for s in geom.step]))
    crs = get_crs(score_map)

    dep_cells = None
    n_outside = 0
    dep_ids: np.ndarray = np.array([], dtype=object)
    if deposits is not None:
        pts = as_points(deposits, like=score_map)
        idx, inside = points_to_index(pts, score_map)
        dep_ids = np.asarray(pts["point_id"].values).astype(str)[inside]
        n_outside = int((~inside).sum())
        dep_cells = idx[inside]

    lab_all = np.zeros((len(lv), *values.shape), dtype="int32")
    frames = []
    prev: np.ndarray | None = None
    with np.errstate(invalid="ignore"):
        for li, (name, val) in enumerate(lv.items()):
            above = values >= val
            lab, n = ndimage.label(above, structure=structure)
            if n == 0:
                prev = lab_all[li]
                continue
            st = _region_stats(lab, n, values, centres, list(geom.step), dims)
            keep = st["n_cells"] >= max(int(min_cells), 1)
            keys = {
                "max": st["max_score"],
                "mean": st["mean_score"],
                "n_cells": st["n_cells"].astype("float64"),
            }
            order_keys = [keys[k] for k in (rank_by, *[r for r in _RANK_BY if r != rank_by])]
            order = np.lexsort([-k for k in order_keys[::-1]])
            order = order[keep[order]]
            new_id = np.zeros(n + 1, dtype="int32")
            new_id[order + 1] = np.arange(1, order.size + 1, dtype="int32")
            lab = new_id[lab]
            lab_all[li] = lab
            df = pd.DataFrame(
                {
                    "level": name,
                    "level_value": val,
                    "region": np.arange(1, order.size + 1),
                    "rank": np.arange(1, order.size + 1),
                }
            )
            if prev is not None:
                # The parent: any cell of the region looked up in the lower level's labels.
                flat = lab.ravel()
                nz = np.flatnonzero(flat)
                _, first = np.unique(flat[nz], return_index=True)
                df["within"] = prev.ravel()[nz[first]]
            else:
                df["within"] = 0
            df["n_cells"] = st["n_cells"][order]
            df["area_m2" if len(dims) == 2 else "volume_m3"] = st["n_cells"][order] * cell
            df["max_score"] = st["max_score"][order]
            df["mean_score"] = st["mean_score"][order]
            if dep_cells is not None and len(dep_cells):
                rid = lab[tuple(dep_cells.T)]
                df["n_deposits"] = np.bincount(rid, minlength=order.size + 1)[1:]
                df["deposit_ids"] = [",".join(dep_ids[rid == r]) for r in range(1, order.size + 1)]
            else:
                df["n_deposits"] = 0
                df["deposit_ids"] = ""
            for d in ("x", "y", "z")[: len(dims)]:
                df[f"centroid_{d}"] = st[f"centroid_{d}"][order]
            df["xmin"], df["xmax"] = st["x_lo"][order], st["x_hi"][order]
            df["ymin"], df["ymax"] = st["y_lo"][order], st["y_hi"][order]
            if len(dims) == 3:
                df["z_min"], df["z_max"] = st["z_lo"][order], st["z_hi"][order]
            frames.append(df)
            prev = lab
    table = pd.concat(frames, ignore_index=True) if frames else _empty_table(len(dims))

    coords: dict[str, Any] = {"level": list(lv)}
    coords.update({d: score_map[d] for d in dims})
    labels = xr.DataArray(lab_all, dims=("level", *dims), coords=coords, name="target")
    labels.attrs = {"long_name": "target region id (0 = none)", "levels": list(lv.values())}
    if crs is not None:
        labels = write_crs(labels, crs)
    report = {
        "scale": scale,
        "connectivity": int(connectivity),
        "levels": lv,
        "rank_by": rank_by,
        "min_cells": int(min_cells),
        "deposits_outside_grid": n_outside,
        "n_deposits": 0 if dep_cells is None else len(dep_cells),
    }
    return TargetSet(table=table, labels=labels, score=score_map, levels=lv, crs=crs, report=report)


def _empty_table(ndim: int) -> pd.DataFrame:
    cols = [
        "level",
        "level_value",
        "region",
        "rank",
        "within",
        "n_cells",
        "area_m2" if ndim == 2 else "volume_m3",
        "max_score",
        "mean_score",
        "n_deposits",
        "deposit_ids",
        "centroid_x",
        "centroid_y",
    ]
    if ndim == 3:
        cols.append("centroid_z")
    cols += ["xmin", "xmax", "ymin", "ymax"]
    if ndim == 3:
        cols += ["z_min", "z_max"]
    return pd.DataFrame({c: [] for c in cols})
