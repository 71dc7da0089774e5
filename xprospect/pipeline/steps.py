"""The steps of the prospectivity path, one function each: the core under the command line.

Each step reads what it needs, does one job through the library's public functions and
returns plain objects; writing is left to the caller (:mod:`xprospect.pipeline.run` and the
``xprospect`` commands), so the same calls serve a script, the commands and a configuration
file. Sizes a geologist thinks of in metres (training windows, buffers) are given in metres
and converted to cells from the grid's resolution.

Choice stated here once: a map's "prospective" area is **the top N % of its cells** (10 % and
2 % by default), not the cells above a fixed probability such as 0.5. A score's scale depends
on the model, its calibration and the class balance it was trained on; a share of the area is
what a field programme can cover, and it compares across models and surveys.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

import xprospect as xp
from xprospect._dims import grid_geometry
from xprospect.evaluate import DEFAULT_TOP_PERCENT, top_area_threshold
from xprospect.exceptions import DataError
from xprospect.points import read_vector

__all__ = [
    "DEFAULT_TOP_PERCENT",
    "VECTOR_SUFFIXES",
    "cells_from_metres",
    "choose_elements",
    "detect_anomalies",
    "evaluate_map",
    "grid_samples",
    "make_targets",
    "read_deposits",
    "read_survey",
    "require_projected",
    "score_maps",
    "significant",
    "top_threshold",
    "train_model",
    "transform_maps",
    "write_geotiff",
    "write_targets",
]

#: Suffixes read as vector files (through geopandas / GDAL), not as tables.
VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb")


def _is_vector(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VECTOR_SUFFIXES


def _vector_table(path: str | Path) -> tuple[pd.DataFrame, Any]:
    """Read a point vector file: its attributes, with point coordinates as columns ``x``, ``y``."""
    gdf = read_vector(path)
    if len(gdf) == 0:
        raise DataError(f"{path} holds no features")
    kinds = set(gdf.geometry.geom_type.dropna())
    if kinds - {"Point"}:
        raise DataError(f"{path}: expected point features; got {sorted(kinds)}")
    table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    table["x"] = gdf.geometry.x.to_numpy()
    table["y"] = gdf.geometry.y.to_numpy()
    return table, gdf.crs


def read_survey(
    path: str | Path,
    *,
    x: str = "x",
    y: str = "y",
    crs: Any = None,
    to_crs: Any = None,
    elements: Sequence[str] | None = None,
    id_column: str | None = None,
    duplicates: str = "mean",
    bdl: str | float = "half",
) -> xr.Dataset:
    """Read survey samples from CSV, Parquet or a point vector file (GeoPackage, Shapefile...).

    Tables go through :func:`xprospect.read_samples`; a vector file's points and CRS come
    from its geometry (``x``, ``y`` and ``crs`` are then ignored unless ``crs`` overrides a
    file without one) and its attributes are ingested the same way.

    Parameters
    ----------
    path : str or Path
        The survey file.
    x, y : str
        Coordinate columns of a table.
    crs, to_crs : CRS specs
        CRS of the coordinates, and the one to reproject to.
    elements : sequence of str, optional
        Element columns to keep (default: every analyte column).
    id_column : str, optional
        Sample id column.
    duplicates : {"keep", "drop", "mean", "error"}
        Policy for co-located samples (see :func:`xprospect.read_samples`).
    bdl : str or float
        Below-detection policy.

    Returns
    -------
    xarray.Dataset
        Samples (dim ``sample``).
    """
    source: Any = path
    if _is_vector(path):
        source, file_crs = _vector_table(path)
        x, y = "x", "y"
        crs = file_crs if file_crs is not None else crs
    return xp.read_samples(
        source,
        x=x,
        y=y,
        crs=crs,
        to_crs=to_crs,
        elements=list(elements) if elements else None,
        id_column=id_column,
        duplicates=duplicates,
        bdl=bdl,
    )


def read_deposits(
    path: str | Path,
    *,
    x: str = "x",
    y: str = "y",
    crs: Any = None,
    to_crs: Any = None,
    query: str | None = None,
    default_crs: Any = None,
) -> xr.Dataset:
    """Read deposit points (CSV, Parquet or a vector file) through :func:`xprospect.read_points`.

    Parameters
    ----------
    path : str or Path
        The deposits file.
    x, y : str
        Coordinate columns of a table.
    crs, to_crs : CRS specs
        CRS of the coordinates (a vector file's own when it has one), and the grid's.
    query : str, optional
        A pandas query keeping some rows (e.g. ``"SITE_TYPE_ != 'Occurrence'"``).
    default_crs : CRS spec, optional
        CRS of a table's coordinates, or of a vector file without its own, when ``crs`` is
        not given (the map's or the survey's): a vector file that has a CRS keeps it and is
        reprojected to ``to_crs``, where ``crs=`` must agree with it.

    Returns
    -------
    xarray.Dataset
        Points (dim ``point``).
    """
    if crs is None and not (_is_vector(path) and _vector_crs(path) is not None):
        crs = default_crs
    if _is_vector(path):  # read_points takes the file's own geometry and CRS
        return xp.read_points(path, crs=crs, to_crs=to_crs, query=query, duplicate_ids="keep")
    return xp.read_points(path, x=x, y=y, crs=crs, to_crs=to_crs, query=query, duplicate_ids="keep")


def _vector_crs(path: str | Path) -> Any:
    """Return the CRS a vector file declares (None when it has none or cannot be read)."""
    import pyogrio  # lazy: GDAL's vector reader, needed only for vector files

    try:
        return pyogrio.read_info(path)["crs"]
    except Exception:  # a missing or unreadable file: read_points names the problem
        return None


def _utm_of(samples: xr.Dataset) -> str:
    """Name the WGS 84 UTM zone of the samples' centre (lon/lat), e.g. ``"EPSG:32750"``."""
    lon = float(np.nanmean(samples["x"].values))
    lat = float(np.nanmean(samples["y"].values))
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def require_projected(samples: xr.Dataset, what: str, verb: str) -> None:
    """Refuse samples in longitude/latitude where a distance in metres is asked for.

    Parameters
    ----------
    samples : xarray.Dataset
        Samples (or points) with a CRS.
    what : str
        The distance asked for, e.g. ``"the resolution 1000"``.
    verb : str
        What needs it, e.g. ``"grid"``: the message says "``verb`` in a projected CRS".

    Raises
    ------
    DataError
        When the samples' CRS is geographic, naming a UTM zone to use.
    """
    crs = samples.rio.crs
    if crs is not None and crs.is_geographic:
        raise DataError(
            f"the samples are in {crs} (longitude/latitude in degrees) and {what} is in "
            f"metres: {verb} in a projected CRS, set to_crs (--to-crs), e.g. {_utm_of(samples)}"
        )


def grid_samples(
    samples: xr.Dataset,
    *,
    resolution: float,
    method: str = "idw",
    k: int = 12,
    power: float = 2.0,
    variogram: str = "spherical",
    pad: float | None = None,
    chunks: int = 256,
    elements: Sequence[str] | None = None,
) -> xr.Dataset:
    """Grid samples onto a template around them (lazy, chunk by chunk).

    Parameters
    ----------
    samples : xarray.Dataset
        Samples (dim ``sample``) with a CRS in metres.
    resolution : float
        Cell size (CRS units, metres).
    method : {"idw", "kriging"}
        Gridder.
    k : int
        Neighbours per cell.
    power : float
        IDW power.
    variogram : str
        Kriging variogram model.
    pad : float, optional
        Margin around the samples (default two cells).
    chunks : int
        Dask chunk edge (cells).
    elements : sequence of str, optional
        Elements to grid (default all).

    Returns
    -------
    xarray.Dataset
        One map per element (kriging adds ``<element>_variance``).
    """
    if method not in ("idw", "kriging"):
        raise DataError(f"method must be 'idw' or 'kriging'; got {method!r}")
    require_projected(samples, f"the resolution {resolution:g}", "grid")
    pad = 2 * resolution if pad is None else pad
    grid = xp.make_grid(like=samples, resolution=resolution, pad=pad, chunks=chunks)
    els = list(elements) if elements else None
    if method == "idw":
        return xp.grid_idw(samples, like=grid, k=k, power=power, elements=els)
    return xp.grid_kriging(samples, like=grid, variogram_model=variogram, k=k, elements=els)


def transform_maps(maps: xr.Dataset, methods: Sequence[str] = ("clr", "zscore")) -> xr.Dataset:
    """Apply transforms in order (lazy): e.g. ``("clr", "zscore")`` or ``("log10",)``.

    Parameters
    ----------
    maps : xarray.Dataset
        Element maps (kriging variances are left out of compositional transforms).
    methods : sequence of str
        Names of :func:`xprospect.preprocess.transform`.

    Returns
    -------
    xarray.Dataset
    """
    known = tuple(xp.preprocess.TRANSFORMS)
    out: Any = maps[[v for v in maps.data_vars if not str(v).endswith("_variance")]]
    for m in methods:
        if m not in known:
            raise DataError(f"unknown transform {m!r}; known: {', '.join(known)}")
        out = xp.preprocess.transform(out, m)
    return out


def choose_elements(
    maps: xr.Dataset,
    deposits: xr.Dataset,
    *,
    alpha: float = 0.01,
    min_elements: int = 2,
    max_elements: int | None = 8,
    elements: Sequence[str] | None = None,
    seed: int = 0,
) -> tuple[pd.DataFrame, list[str]]:
    """Rank elements by AUC / Z_AUC against deposits and choose the model's inputs.

    The significant elements (``selected``), best first, capped at ``max_elements``; at
    least the ``min_elements`` best by Z_AUC when fewer are significant. ``elements``
    overrides the choice (the table is still computed, for the record).

    Parameters
    ----------
    maps : xarray.Dataset
        Transformed element maps.
    deposits : xarray.Dataset
        Deposit points in the maps' CRS.
    alpha : float
        Significance level.
    min_elements, max_elements : int
        Bounds on the number chosen (``max_elements=None``: no cap).
    elements : sequence of str, optional
        The elements to use, overriding the choice.
    seed : int
        Seed of the negatives drawn by :func:`xprospect.select_elements`.

    Returns
    -------
    (pandas.DataFrame, list of str)
        The selection table and the chosen elements.
    """
    table = xp.select_elements(maps, deposits, alpha=alpha, seed=seed)
    if elements:
        missing = [e for e in elements if e not in maps.data_vars]
        if missing:
            raise DataError(f"elements {missing} are not among the maps {list(maps.data_vars)}")
        return table, [str(e) for e in elements]
    chosen = [str(e) for e in table.index[table["selected"]]]
    if len(chosen) < min_elements:
        chosen = [str(e) for e in table.index[:min_elements]]
    if max_elements is not None:
        chosen = chosen[:max_elements]
    return table, chosen


def cells_from_metres(metres: float, maps: xr.Dataset | xr.DataArray, *, least: int = 1) -> int:
    """Convert a length in metres (CRS units) to a whole number of cells of ``maps``.

    Parameters
    ----------
    metres : float
        The length.
    maps : xarray.Dataset or DataArray
        A grid (its x resolution is used).
    least : int
        Smallest number of cells returned.

    Returns
    -------
    int
    """
    res = abs(float(grid_geometry(maps).step[-1]))
    return max(int(least), round(float(metres) / res))


# The small CNN's widths in the pipeline (four valid 3x3 convolutions).
_SMALL_CNN_WIDTHS = (16, 16, 32, 32)


def train_model(
    maps: xr.Dataset,
    deposits: xr.Dataset,
    elements: Sequence[str],
    *,
    model: str = "small_cnn",
    window: int = 16,
    recipe: str = "adam",
    epochs: int = 20,
    validation: float = 0.25,
    negatives_per_positive: int = 15,
    n_per_positive: int = 8,
    batch_size: int | None = None,
    device: str = "auto",
    seed: int = 0,
    progress: bool | None = None,
) -> Any:
    """Train a window model on labelled windows around deposits and random barren ground.

    Parameters
    ----------
    maps : xarray.Dataset
        Transformed element maps.
    deposits : xarray.Dataset
        Training deposits in the maps' CRS.
    elements : sequence of str
        Input elements (their order is kept in the model card).
    model : str
        Registered model name (:func:`xprospect.models.registry.available`), e.g.
        ``"small_cnn"`` or ``"resnet18"``.
    window : int
        Model window (cells); patches are ``window + 4`` cells, randomly cropped.
    recipe : str
        Training recipe (``"adam"``, ``"resnet-sgd"``).
    epochs : int
        Epochs (the best on the spatial validation split is kept).
    validation : float
        Share of windows held out by a spatial split (0: none).
    negatives_per_positive : int
        Barren windows per deposit.
    n_per_positive : int
        Jittered windows per deposit.
    batch_size : int, optional
        Training batch (default the recipe's).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    seed : int
        Seed of the windows, the split and the weights.
    progress : bool or None
        Epoch progress bar (None: on a terminal).

    Returns
    -------
    xprospect.train.FitResult
    """
    from xprospect.models import registry  # lazy: torch is heavy

    least = 2 * len(_SMALL_CNN_WIDTHS) + 1  # each valid 3x3 convolution takes 2 cells
    if model == "small_cnn" and window < least:
        res = abs(float(grid_geometry(maps).step[-1]))
        msg = (
            f"a window of {window} cells ({window * res:g} m at {res:g} m cells) is too small "
            f"for small_cnn's {len(_SMALL_CNN_WIDTHS)} convolutions: it needs at least {least} "
            f"cells; raise the window to {least * res:g} m or more ([train] window_m, --window-m)"
        )
        raise DataError(msg)
    stack = maps.prospect.stack(list(elements))
    n_dep = int(deposits.sizes["point"])
    if n_dep < 2:
        raise DataError(f"training needs at least 2 deposits on the grid; got {n_dep}")
    patches = stack.prospect.patches(
        positives=deposits,
        negatives=negatives_per_positive * n_dep,
        size=window + 4,
        jitter=max(window // 3, 1),
        n_per_positive=n_per_positive,
        seed=seed,
    )
    kwargs: dict[str, Any] = {"seed": seed}
    if model == "small_cnn":
        kwargs.update(window=window, widths=_SMALL_CNN_WIDTHS)
        net = registry.create(model, in_channels=len(elements), **kwargs)
    else:
        net = registry.create(model, in_channels=len(elements), num_classes=2)
    return xp.train.fit(
        net,
        patches,
        recipe=recipe,
        epochs=epochs,
        batch_size=batch_size,
        validation=validation if validation > 0 else None,
        early_stopping=max(3, epochs // 3),
        crop=window,
        device=device,
        seed=seed,
        progress=progress,
    )


def score_maps(
    maps: xr.Dataset,
    model: Any,
    *,
    window: int | None = None,
    stride: int = 1,
    batch_size: int = 64,
    device: str = "auto",
) -> xr.DataArray:
    """Score maps lazily with a fitted model, on the elements its card names.

    Parameters
    ----------
    maps : xarray.Dataset
        Element maps holding (at least) the model card's elements.
    model : model
        A fitted model (e.g. from :func:`xprospect.train.load_checkpoint`).
    window : int, optional
        Window of a window model (default from its card).
    stride : int
        Stride of a window model's lattice.
    batch_size : int
        Windows or tiles per batch.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    xarray.DataArray
        ``prospectivity`` on the maps' grid (lazy).
    """
    card = getattr(model, "card", {}) or {}
    elements = card.get("elements")
    if not elements:
        raise DataError("the model has no card naming its elements; train it with xprospect")
    missing = [e for e in elements if e not in maps.data_vars]
    if missing:
        raise DataError(
            f"the maps lack the model's elements {missing} (they hold {list(maps.data_vars)})"
        )
    stack = maps.prospect.stack(list(elements))
    kwargs: dict[str, Any] = {"batch_size": batch_size, "device": device}
    if window is not None:
        kwargs.update(window=window, stride=stride)
    elif stride != 1:
        kwargs["stride"] = stride
    return stack.prospect.score(model, **kwargs)


def top_threshold(score: xr.DataArray, percent: float) -> float:
    """Score value at or above which lie the top ``percent`` % of the map's valid cells.

    Parameters
    ----------
    score : xarray.DataArray
        The map (computed if lazy).
    percent : float
        Share of the area, in (0, 100].

    Returns
    -------
    float
    """
    return top_area_threshold(score.values, percent, f"map {score.name!r}")


def evaluate_map(
    score: xr.DataArray,
    deposits: xr.Dataset,
    *,
    top_percent: float = DEFAULT_TOP_PERCENT[0],
    blocks: Sequence[int] = (12, 12),
    seed: int = 0,
) -> tuple[Any, dict[str, Any]]:
    """Evaluate a map against deposits, calling its top ``top_percent`` % prospective.

    Parameters
    ----------
    score : xarray.DataArray
        The map (computed once here when lazy).
    deposits : xarray.Dataset
        Deposits in the map's CRS.
    top_percent : float
        Share of the area called prospective (sets the confusion matrix's threshold).
    blocks : (int, int)
        Block grid of the studies' block evaluation.
    seed : int
        Seed of the negatives.

    Returns
    -------
    (EvaluationReport, dict)
        The report and a short summary (AUC with its interval, share of deposits in the
        top area, threshold).
    """
    score = score.compute()
    report = score.prospect.evaluate(
        deposits, top_percent=top_percent, blocks=tuple(blocks), seed=seed
    )
    thr = report.settings["threshold"]
    m = report.to_dict()["metrics"]
    inside = _share_in_top(score, deposits, thr)
    summary = {
        "roc_auc": m.get("roc_auc"),
        "auc_ci": m.get("auc_ci"),
        "top_percent": float(top_percent),
        "threshold": thr,
        "deposits_in_top": inside,
        "n_deposits": int(deposits.sizes["point"]),
    }
    return report, summary


def _share_in_top(score: xr.DataArray, deposits: xr.Dataset, thr: float) -> float | None:
    x = xr.DataArray(deposits["x"].values, dims="point")
    y = xr.DataArray(deposits["y"].values, dims="point")
    at = score.sel(x=x, y=y, method="nearest").values
    ok = np.isfinite(at)
    return float(np.mean(at[ok] >= thr)) if ok.any() else None


def make_targets(
    score: xr.DataArray,
    *,
    top_percent: Sequence[float] = DEFAULT_TOP_PERCENT,
    deposits: xr.Dataset | None = None,
    min_cells: int = 1,
) -> Any:
    """Delineate target regions at the top ``top_percent`` % of the area.

    Parameters
    ----------
    score : xarray.DataArray
        The map.
    top_percent : sequence of float
        Shares of the area (percent), one level each (``"top 10 %"`` ...).
    deposits : xarray.Dataset, optional
        Known deposits, counted per region.
    min_cells : int
        Smallest region kept.

    Returns
    -------
    xprospect.evaluate.delineate.TargetSet
    """
    return score.compute().prospect.targets(
        top_percent=top_percent, deposits=deposits, min_cells=min_cells
    )


def write_targets(targets: Any, paths: Sequence[str | Path]) -> list[Path]:
    """Write targets to each path by its suffix: ``.gpkg``, ``.geojson`` or ``.csv``.

    GeoPackage (in the map's CRS) and RFC 7946 GeoJSON are written through geopandas.

    Parameters
    ----------
    targets : TargetSet
        From :func:`make_targets`.
    paths : sequence of path
        Outputs.

    Returns
    -------
    list of Path
    """
    out = []
    for p in map(Path, paths):
        suffix = p.suffix.lower()
        if suffix == ".csv":
            targets.to_csv(p)
        elif suffix in (".geojson", ".json"):
            targets.to_geojson(p)
        elif suffix == ".gpkg":
            targets.to_gpkg(p)
        else:
            raise DataError(f"cannot tell the target format of {p}: use .gpkg, .geojson or .csv")
        out.append(p)
    return out


def write_geotiff(da: xr.DataArray, path: str | Path, *, cog: bool = True) -> list[Path]:
    """Write a map as GeoTIFF, a Cloud Optimized one when ``cog`` and the library can.

    Parameters
    ----------
    da : xarray.DataArray
        The map.
    path : path
        Output file.
    cog : bool
        Ask :func:`xprospect.to_geotiff` for a COG (with overviews).

    Returns
    -------
    list of Path
    """
    return xp.to_geotiff(da, path, overwrite=True, cog=cog)


def detect_anomalies(
    maps: xr.Dataset,
    *,
    detector: str = "gmm",
    elements: Sequence[str] | None = None,
    deposits: xr.Dataset | None = None,
    buffer: float | None = None,
    n_components: int = 3,
    seed: int = 0,
) -> tuple[Any, xr.DataArray]:
    """Fit an anomaly detector on "normal" ground and score every cell.

    Parameters
    ----------
    maps : xarray.Dataset
        Transformed element maps.
    detector : {"gmm", "iforest"}
        Gaussian mixture (negative log-likelihood) or isolation forest.
    elements : sequence of str, optional
        Elements used (default all).
    deposits : xarray.Dataset, optional
        Known deposits: ground within ``buffer`` of them is left out of "normal".
    buffer : float, optional
        Metres around deposits left out of the normal ground.
    n_components : int
        Mixture components (``gmm``).
    seed : int
        Seed of the detector.

    Returns
    -------
    (detector, xarray.DataArray)
        The fitted detector and the anomaly map (larger = more anomalous).
    """
    from xprospect.evidence.background import normal_mask  # lazy: evidence is heavy

    stack = maps.prospect.stack(list(elements) if elements else None)
    if deposits is not None:
        normal = normal_mask(stack, mode="outside_buffer", deposits=deposits, buffer=buffer)
    else:
        normal = None
    if detector == "gmm":
        det = xp.baselines.GaussianMixtureDetector(
            n_components=n_components, seed=seed, dependent="project"
        )
    elif detector == "iforest":
        det = xp.baselines.IsolationForestDetector(seed=seed)
    else:
        raise DataError(f"detector must be 'gmm' or 'iforest'; got {detector!r}")
    det.fit(stack, normal=normal)
    return det, det.predict(stack).rename("anomaly")


def significant(value: Any, digits: int = 3) -> str:
    """Format a number with a few significant digits (``"n/a"`` for None or NaN).

    Parameters
    ----------
    value : number or None
    digits : int

    Returns
    -------
    str

    Examples
    --------
    >>> significant(0.873456), significant(None), significant(12345.6), significant(0.7996)
    ('0.873', 'n/a', '1.23e+04', '0.800')
    """
    if value is None:
        return "n/a"
    v = float(value)
    if not math.isfinite(v):
        return "n/a"
    return f"{v:#.{digits}g}".rstrip(".")  # keep trailing zeros: 0.800, not 0.8
