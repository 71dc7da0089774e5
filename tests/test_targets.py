"""Fractal C-A / C-V thresholds, min-max scaling and target delineation."""

from __future__ import annotations

import json

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import xprospect as xp
from xprospect.evaluate.delineate import DEFAULT_LEVELS, targets
from xprospect.preprocess.fractal import (
    classify_fractal,
    concentration_area,
    concentration_volume,
    fractal_thresholds,
)
from xprospect.preprocess.scaling import minmax_scale
from xprospect.testing import assert_georef_equal

CRS = "EPSG:32750"


def _no_compute(dsk, keys, **kwargs):
    raise AssertionError("dask computed where the function should stay lazy")


def _multifractal(n: int, breaks, exponents, vmin: float = 1.0) -> np.ndarray:
    """Values whose survival function is a power law with a new exponent after each break.

    ``P(V >= v)`` falls as ``v ** -exponents[k]`` between ``breaks[k-1]`` and ``breaks[k]``,
    so the C-A log-log curve is straight with slope ``-exponents[k]`` on each segment.
    Quantiles are taken exactly (no sampling noise), then shuffled in space.
    """
    u = (np.arange(n) + 0.5) / n
    b = [vmin, *breaks]
    surv = [1.0]
    for k in range(len(breaks)):
        surv.append(surv[-1] * (b[k + 1] / b[k]) ** (-exponents[k]))
    surv.append(0.0)
    v = np.empty(n)
    for k in range(len(b)):
        sel = (u <= surv[k]) & (u > surv[k + 1])
        v[sel] = b[k] * (u[sel] / surv[k]) ** (-1.0 / exponents[k])
    return np.random.default_rng(0).permutation(v)


def _grid(n: int, res: float = 10.0) -> xr.Dataset:
    return xp.make_grid((0.0, 0.0, n * res, n * res), resolution=res, crs=CRS)


# --------------------------------------------------------------------- fractal C-A / C-V
def test_ca_breakpoints_recovered_from_two_break_multifractal_map():
    grid = _grid(200)
    vals = _multifractal(200 * 200, breaks=[5.0, 40.0], exponents=[0.8, 2.0, 4.0])
    m = xr.DataArray(
        vals.reshape(200, 200), dims=("y", "x"), coords={"y": grid.y, "x": grid.x}, name="Au"
    )
    ft = fractal_thresholds(m, n_breaks=2)
    np.testing.assert_allclose(ft.thresholds, [5.0, 40.0], rtol=0.08)
    # The two lower populations' slopes are the exponents (the top one is a short,
    # discrete tail, so only its sign and steepness are checked).
    np.testing.assert_allclose(ft.slopes[:2], [-0.8, -2.0], rtol=0.05)
    assert ft.slopes[2] < -3.0
    np.testing.assert_allclose(ft.dimensions, -ft.slopes)
    assert ft.kind == "area"
    assert ft.curve["area"].iloc[0] == pytest.approx(200 * 200 * 100.0)  # cells x 10 m x 10 m
    # the accessor twin
    np.testing.assert_array_equal(
        m.prospect.fractal_thresholds(n_breaks=2).thresholds, ft.thresholds
    )


def test_ca_single_break_on_bare_values():
    vals = _multifractal(50_000, breaks=[12.0], exponents=[1.0, 2.5])
    ft = fractal_thresholds(vals, n_breaks=1)
    assert ft.thresholds[0] == pytest.approx(12.0, rel=0.05)
    assert ft.segments[0][0] == 0 and ft.segments[-1][1] == len(ft.curve)


def test_cv_uses_voxel_volume_and_finds_the_break():
    vox = xp.make_voxels((0, 0, 0, 200, 200, 100), resolution=(5, 10, 10), crs=CRS)
    shape = tuple(vox.sizes[d] for d in ("z", "y", "x"))
    vals = _multifractal(int(np.prod(shape)), breaks=[8.0], exponents=[1.0, 3.0])
    m = xr.DataArray(
        vals.reshape(shape), dims=("z", "y", "x"), coords={d: vox[d] for d in ("z", "y", "x")}
    )
    curve = concentration_volume(m, n_thresholds=20)
    assert list(curve.columns) == ["threshold", "n_cells", "volume"]
    assert curve["volume"].iloc[0] == pytest.approx(vals.size * 500.0)
    ft = fractal_thresholds(m, n_breaks=1)
    assert ft.kind == "volume"
    assert ft.thresholds[0] == pytest.approx(8.0, rel=0.08)


def test_concentration_area_counts_and_ignores_nan():
    curve = concentration_area(np.array([1.0, 2.0, np.nan, 4.0, 8.0]), thresholds=[1, 3, 8])
    assert curve["n_cells"].tolist() == [4, 2, 1]
    assert curve["area"].tolist() == [4.0, 2.0, 1.0]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.01, 1e4), min_size=5, max_size=200))
def test_ca_curve_is_non_increasing(values):
    v = np.asarray(values)
    if v.min() == v.max():
        return
    curve = concentration_area(v, n_thresholds=10)
    assert np.all(np.diff(curve["area"].to_numpy()) <= 0)
    assert curve["n_cells"].iloc[0] == v.size


def test_fractal_bad_input():
    with pytest.raises(xp.DataError, match="positive"):
        concentration_area(np.array([-1.0, 0.0, -3.0]))
    with pytest.raises(xp.DataError, match="unknown method"):
        fractal_thresholds(np.arange(1.0, 100.0), method="spline")
    with pytest.raises(xp.DataError, match="too few"):
        fractal_thresholds(np.arange(1.0, 100.0), n_thresholds=6, n_breaks=2)
    with pytest.raises(xp.DataError, match="no finite"):
        concentration_area(np.full(4, np.nan))
    with pytest.raises(xp.DataError, match="dims"):
        concentration_area(xr.DataArray(np.ones((2, 2, 2)), dims=("a", "y", "x")))


def test_classify_fractal_lazy_and_matches_numpy(backend):
    grid = _grid(12)
    vals = np.linspace(0.5, 60.0, 144).reshape(12, 12)
    vals[0, 0] = np.nan
    m = xr.DataArray(vals, dims=("y", "x"), coords={"y": grid.y, "x": grid.x})
    m = xp._dims.write_crs(m, CRS)
    if backend == "dask":
        m = m.chunk({"y": 5, "x": 7})
    with dask.config.set(scheduler=_no_compute):
        cls = classify_fractal(m, [5.0, 40.0])
    out = cls.values
    assert out[0, 0] == -1
    expect = np.where(vals < 5, 0, np.where(vals < 40, 1, 2))
    np.testing.assert_array_equal(out[1:], expect[1:])
    assert cls.attrs["class_names"] == ["background", "anomaly", "high anomaly"]
    assert_georef_equal(cls, m)
    with pytest.raises(xp.DataError, match="ascending"):
        classify_fractal(m, [40.0, 5.0])


# --------------------------------------------------------------------- min-max scaling
def test_minmax_scale_global_nan_aware_and_lazy(backend):
    grid = _grid(10)
    vals = np.arange(100.0).reshape(10, 10) * 3 - 50
    vals[3, 4] = np.nan
    m = xp._dims.write_crs(
        xr.DataArray(vals, dims=("y", "x"), coords={"y": grid.y, "x": grid.x}, name="s"), CRS
    )
    if backend == "dask":
        m = m.chunk({"y": 5, "x": 7})
    with dask.config.set(scheduler=_no_compute):
        out = minmax_scale(m)
    res = out.values
    assert np.nanmin(res) == 0.0 and np.nanmax(res) == 1.0
    assert np.isnan(res[3, 4])
    np.testing.assert_allclose(res, (vals + 50) / 297.0)
    assert out.attrs["scaling"] == "minmax (global)"
    assert_georef_equal(out, m)
    xr.testing.assert_allclose(m.prospect.minmax(), out)


def test_minmax_scale_refuses_constant_map(backend):
    m = xr.DataArray(np.full((4, 6), 2.0), dims=("y", "x"))
    if backend == "dask":
        m = m.chunk({"y": 3, "x": 4})
    with pytest.raises(xp.DataError, match="constant"):
        minmax_scale(m).values  # noqa: B018  (dask raises at compute)


# --------------------------------------------------------------------- targets 2-D
@pytest.fixture
def two_blobs() -> tuple[xr.DataArray, xr.Dataset]:
    """A 20 x 20 map (10 m cells) with a strong 3x3 blob and a weaker 2x4 blob."""
    grid = _grid(20)
    vals = np.zeros((20, 20))
    vals[2:5, 3:6] = 0.9  # strong blob, 9 cells
    vals[3, 4] = 1.0  # its peak
    vals[12:14, 10:14] = 0.8  # weaker blob, 8 cells
    vals[19, 19] = np.nan
    m = xr.DataArray(vals, dims=("y", "x"), coords={"y": grid.y, "x": grid.x}, name="score")
    m = xp._dims.write_crs(m, CRS)
    # deposits: one in each blob, one outside both, one off the grid
    deps = xr.Dataset(
        coords={
            "x": ("point", [45.0, 115.0, 185.0, 1e6]),
            "y": ("point", [165.0, 65.0, 15.0, 0.0]),
            "point_id": ("point", ["A", "B", "C", "off"]),
        }
    )
    return m, xp._dims.write_crs(deps, CRS)


def test_targets_two_blobs_areas_ranks_centroids_deposits(two_blobs, backend):
    m, deps = two_blobs
    if backend == "dask":
        m = m.chunk({"y": 5, "x": 7})
    t = targets(m, levels={"medium": 0.75, "high": 0.95}, deposits=deps)
    tab = t.table
    med = tab[tab.level == "medium"].reset_index(drop=True)
    high = tab[tab.level == "high"].reset_index(drop=True)
    assert len(med) == 2 and len(high) == 1
    # rank 1 = the strong blob (max 1.0), rank 2 = the weaker one (max 0.8)
    assert med.region.tolist() == [1, 2] and med["rank"].tolist() == [1, 2]
    assert med.n_cells.tolist() == [9, 8]
    assert med.area_m2.tolist() == [900.0, 800.0]
    assert med.max_score.tolist() == pytest.approx([1.0, 0.8])
    assert med.mean_score.tolist() == pytest.approx([(8 * 0.9 + 1.0) / 9, 0.8])
    # centroids: blob 1 covers rows 2-4, cols 3-5 -> x = 45, y = 200 - 35 = 165
    assert med.centroid_x.tolist() == pytest.approx([45.0, 120.0])
    assert med.centroid_y.tolist() == pytest.approx([165.0, 70.0])
    assert med[["xmin", "xmax", "ymin", "ymax"]].iloc[0].tolist() == [30.0, 60.0, 150.0, 180.0]
    assert med.n_deposits.tolist() == [1, 1]
    assert med.deposit_ids.tolist() == ["A", "B"]
    assert t.report["deposits_outside_grid"] == 1
    # the high region is the single peak cell, inside medium region 1
    assert high.n_cells.tolist() == [1] and high.within.tolist() == [1]
    assert high.deposit_ids.tolist() == ["A"]
    # label map georeferenced, one layer per level
    assert t.labels.dims == ("level", "y", "x")
    assert_georef_equal(t.labels.sel(level="medium"), m)
    assert int((t.labels.sel(level="medium") == 2).sum()) == 8
    cls = t.classes.values
    assert cls[3, 4] == 2 and cls[2, 3] == 1 and cls[0, 0] == 0 and cls[19, 19] == -1


def test_targets_connectivity_and_min_cells():
    grid = _grid(6)
    vals = np.zeros((6, 6))
    vals[1, 1] = vals[2, 2] = 1.0  # diagonal neighbours
    vals[5, 5] = 1.0
    m = xr.DataArray(vals, dims=("y", "x"), coords={"y": grid.y, "x": grid.x})
    assert len(targets(m, levels=[0.5], connectivity=1)) == 3
    assert len(targets(m, levels=[0.5], connectivity=2)) == 2
    t = targets(m, levels=[0.5], connectivity=2, min_cells=2)
    assert t.table.n_cells.tolist() == [2]
    assert t.table.level.tolist() == ["level_0.5"]


def test_targets_quantiles_and_fractal_thresholds():
    grid = _grid(100)
    vals = _multifractal(100 * 100, breaks=[5.0, 40.0], exponents=[0.8, 2.0, 4.0])
    m = xr.DataArray(vals.reshape(100, 100), dims=("y", "x"), coords={"y": grid.y, "x": grid.x})
    tq = targets(m, quantiles={"top1": 0.99})
    assert tq.report["scale"] is None
    assert tq.table.n_cells.sum() == 100  # the top 1 % of 10,000 distinct values
    ft = fractal_thresholds(m)
    tf = targets(m, thresholds=ft)
    assert list(tf.levels) == ["fractal_1", "fractal_2"]
    assert tf.levels["fractal_1"] == pytest.approx(ft.thresholds[0])
    n_above = [(vals >= v).sum() for v in ft.thresholds]
    assert tf.table.groupby("level").n_cells.sum().tolist() == n_above
    assert targets(m, thresholds="fractal").levels == tf.levels


def test_targets_geodataframe_geopackage_geojson_and_csv_round_trip(two_blobs, tmp_path):
    import geopandas

    m, deps = two_blobs
    t = m.prospect.targets(levels={"medium": 0.75, "high": 0.95}, deposits=deps)
    gdf = t.to_geodataframe()
    assert isinstance(gdf, geopandas.GeoDataFrame) and gdf.crs.to_epsg() == 32750
    assert len(gdf) == 3
    f1 = gdf[(gdf.level == "medium") & (gdf.region == 1)].iloc[0]
    assert f1.geometry.geom_type == "Polygon"
    assert f1.geometry.bounds == (30.0, 150.0, 60.0, 180.0)
    assert f1.deposit_ids == "A"
    assert f1.geometry.area == pytest.approx(f1.area_m2)
    # GeoPackage: the map's CRS, every column and every polygon come back
    back = geopandas.read_file(t.to_gpkg(tmp_path / "targets.gpkg"))
    assert back.crs.to_epsg() == 32750
    assert list(back.columns) == list(gdf.columns)
    assert back.geometry.geom_equals(gdf.geometry).all()
    pd.testing.assert_frame_equal(
        pd.DataFrame(back.drop(columns="geometry")),
        pd.DataFrame(gdf.drop(columns="geometry")),
        check_dtype=False,
    )
    # RFC 7946 GeoJSON: WGS 84 longitude/latitude, no crs member
    path = t.to_geojson(tmp_path / "targets.geojson")
    doc = json.loads(path.read_text())
    assert "crs" not in doc and len(doc["features"]) == 3
    lonlat = geopandas.read_file(path)
    assert lonlat.crs.to_epsg() == 4326
    from pyproj import Transformer

    corner = Transformer.from_crs(32750, 4326, always_xy=True).transform(30.0, 150.0)
    ring = np.asarray(lonlat.geometry.iloc[0].exterior.coords)
    assert np.abs(ring - np.asarray(corner)).sum(axis=1).min() < 1e-6  # a corner, in lon/lat
    again = lonlat.to_crs(32750)
    np.testing.assert_allclose(again.geometry.area, gdf.geometry.area, rtol=1e-4)
    only_high = json.loads(t.to_geojson(tmp_path / "h.geojson", level="high").read_text())
    assert [f["properties"]["level"] for f in only_high["features"]] == ["high"]
    table = pd.read_csv(t.to_csv(tmp_path / "targets.csv"), keep_default_na=False)
    assert table.shape == t.table.shape
    assert table.area_m2.tolist() == t.table.area_m2.tolist()


def test_targets_geojson_needs_a_crs(two_blobs, tmp_path):
    m, _ = two_blobs
    bare = xr.DataArray(m.values, dims=("y", "x"), coords={"y": m.y.values, "x": m.x.values})
    t = targets(bare)
    assert t.crs is None
    with pytest.raises(xp.DataError, match="RFC 7946"):
        t.to_geojson(tmp_path / "x.geojson")
    assert not (tmp_path / "x.geojson").exists()
    assert t.to_gpkg(tmp_path / "x.gpkg").exists()  # GeoPackage needs no CRS


# --------------------------------------------------------------------- targets 3-D
def test_targets_3d_volumes_elevation_ranges_and_slices(tmp_path):
    vox = xp.make_voxels((0, 0, 1000, 100, 100, 1100), resolution=(10, 10, 10), crs=CRS)
    shape = tuple(vox.sizes[d] for d in ("z", "y", "x"))
    vals = np.zeros(shape)
    vals[2:5, 1:3, 1:3] = 1.0  # 3 x 2 x 2 = 12 voxels at z 1020-1050
    vals[7:9, 6:9, 6:8] = 0.8  # 2 x 3 x 2 = 12 voxels at z 1070-1090, weaker
    m = xr.DataArray(vals, dims=("z", "y", "x"), coords={d: vox[d] for d in ("z", "y", "x")})
    m = xp._dims.write_crs(m, CRS)
    deps = xp._dims.write_crs(
        xr.Dataset(
            coords={
                "x": ("point", [75.0]),
                "y": ("point", [25.0]),
                "z": ("point", [1085.0]),
                "point_id": ("point", ["deep"]),
            }
        ),
        CRS,
    )
    t = targets(m.chunk({"z": 4, "y": 5, "x": 7}), levels={"medium": 0.75}, deposits=deps)
    tab = t.table
    assert tab.volume_m3.tolist() == [12_000.0, 12_000.0]
    assert tab.z_min.tolist() == [1020.0, 1070.0] and tab.z_max.tolist() == [1050.0, 1090.0]
    assert tab.centroid_z.tolist() == pytest.approx([1035.0, 1080.0])
    assert tab.n_deposits.tolist() == [0, 1]
    assert t.labels.dims == ("level", "z", "y", "x")
    assert_georef_equal(t.labels.sel(level="medium"), m)
    slices = t.to_geodataframe()
    assert len(slices) == 3 + 2  # one polygon per region and slice
    assert sorted(slices[slices.region == 1].z) == [1025.0, 1035.0, 1045.0]
    foot = t.to_geodataframe(mode="footprint")
    assert len(foot) == 2
    assert foot.geometry.iloc[0].area == pytest.approx(400.0)
    import geopandas

    back = geopandas.read_file(t.to_gpkg(tmp_path / "s.gpkg"))
    assert len(back) == 5 and back.crs == slices.crs


def test_targets_bad_input(two_blobs):
    m, _ = two_blobs
    with pytest.raises(xp.DataError, match="only one of"):
        targets(m, levels=[0.5], quantiles=[0.9])
    with pytest.raises(xp.DataError, match="dims"):
        targets(m.expand_dims(element=["Au"]))
    with pytest.raises(xp.DataError, match="quantiles"):
        targets(m, quantiles=[1.5])
    with pytest.raises(xp.DataError, match="connectivity"):
        targets(m, connectivity=3)
    with pytest.raises(xp.DataError, match="scale"):
        targets(m, scale="zscore")
    with pytest.raises(xp.DataError, match="DataArray"):
        targets(m.to_dataset())
    t = targets(m)
    with pytest.raises(xp.DataError, match="unknown level"):
        t.to_geojson("/tmp/never.json", level="nope")


def test_levels_outside_the_scaled_range_are_refused():
    m = xr.DataArray(
        np.arange(16.0).reshape(4, 4),
        dims=("y", "x"),
        coords={"y": [3.5, 2.5, 1.5, 0.5], "x": [0.5, 1.5, 2.5, 3.5]},
    )
    with pytest.raises(xp.DataError, match=r"outside \[0, 1\]"):
        targets(m, levels={"high": 2.0})
    # the map's own units are fine without scaling
    assert len(targets(m, levels={"high": 12.0}, scale=None).table) == 1


def test_default_targets_are_the_top_ten_and_two_percent_of_the_area():
    """Issue 12, part 8: targets default to shares of the area, not fixed scores."""
    grid = _grid(100)
    values = np.arange(10_000, dtype="float64").reshape(100, 100)
    m = xr.DataArray(values, coords={"y": grid.y, "x": grid.x}, dims=("y", "x"), name="p")
    t = targets(m)
    assert list(t.levels) == ["top 10 %", "top 2 %"]
    cells = t.table.groupby("level")["n_cells"].sum()
    assert cells["top 10 %"] == 1000 and cells["top 2 %"] == 200
    assert t.report["scale"] is None  # shares of the area need no scaling
    one = targets(m, top_percent=5)
    assert list(one.levels) == ["top 5 %"] and one.table["n_cells"].sum() == 500
    fixed = targets(m, levels=DEFAULT_LEVELS)  # the study's fixed fractions still work
    assert list(fixed.levels) == ["medium", "high"] and fixed.report["scale"] == "minmax"
    with pytest.raises(xp.DataError, match="only one of"):
        targets(m, top_percent=10, quantiles=[0.9])
    with pytest.raises(xp.DataError, match=r"top percent must be in \(0, 100\]"):
        targets(m, top_percent=[150])
