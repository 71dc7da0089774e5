"""Points from GeoPandas and GDAL vector files equal the CSV read with ``crs=`` (issue 12)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xprospect as xp
from xprospect.points import as_points

geopandas = pytest.importorskip("geopandas")

CRS = "EPSG:32750"


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """The same five sites as a CSV, a GeoDataFrame and GPKG / SHP / GeoJSON / FGB files."""
    d = tmp_path_factory.mktemp("sites")
    df = pd.DataFrame(
        {
            "E": [500100.0, 500300.5, 501000.0, 502500.25, 503000.0],
            "N": [6.2e6, 6.2001e6, 6.2e6 + 2500.0, 6.199e6, 6.2005e6],
            "site": ["A", "B", "C", "D", "E"],
            "grade": [1.5, 2.0, 0.3, 7.25, 4.0],
        }
    )
    df.to_csv(d / "sites.csv", index=False)
    gdf = geopandas.GeoDataFrame(
        df.drop(columns=["E", "N"]), geometry=geopandas.points_from_xy(df.E, df.N), crs=CRS
    )
    paths = {"csv": d / "sites.csv"}
    for ext, driver in (
        ("gpkg", "GPKG"),
        ("shp", "ESRI Shapefile"),
        ("geojson", "GeoJSON"),
        ("fgb", "FlatGeobuf"),
    ):
        paths[ext] = d / f"sites.{ext}"
        gdf.to_file(paths[ext], driver=driver, engine="pyogrio")
    return gdf, paths


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    # FlatGeobuf stores features in its spatial index's order: compare by id
    a = a.isel(point=np.argsort(a["point_id"].values))
    b = b.isel(point=np.argsort(b["point_id"].values))
    np.testing.assert_array_equal(a["x"].values, b["x"].values)
    np.testing.assert_array_equal(a["y"].values, b["y"].values)
    assert a["point_id"].values.tolist() == b["point_id"].values.tolist()
    assert a["grade"].values.tolist() == b["grade"].values.tolist()
    assert xp._dims.get_crs(a) == xp._dims.get_crs(b)


@pytest.mark.parametrize("form", ["gdf", "gpkg", "shp", "geojson", "fgb"])
def test_vector_points_equal_the_csv(sites, form):
    gdf, paths = sites
    ref = xp.read_points(paths["csv"], x="E", y="N", crs=CRS, id="site")
    source = gdf if form == "gdf" else paths[form]
    got = xp.read_points(source, id="site")
    _same(got, ref)
    # the deposits argument of every function goes through as_points: the same forms work
    pts = as_points(source)
    np.testing.assert_array_equal(np.sort(pts["x"].values), np.sort(ref["x"].values))
    assert xp._dims.get_crs(pts) == xp._dims.get_crs(ref)


def test_vector_points_options_and_errors(sites, tmp_path):
    gdf, paths = sites
    sub = xp.read_points(paths["gpkg"], id="site", query="grade > 1", to_crs="EPSG:4326")
    assert sub["point_id"].values.tolist() == ["A", "B", "D", "E"]
    assert xp._dims.get_crs(sub).to_epsg() == 4326 and (sub["x"] > 100).all()
    with pytest.raises(xp.CRSError):
        xp.read_points(gdf, crs="EPSG:4326")  # the geometry's CRS and crs= disagree
    with pytest.raises(xp.DataError, match="no CRS"):
        as_points(gdf.set_crs(None, allow_override=True))
    poly = gdf.set_geometry(gdf.buffer(10.0))
    with pytest.raises(xp.DataError, match="row 1 holds a Polygon"):
        xp.read_points(poly)
    with pytest.raises(xp.exceptions.MissingFileError):
        xp.read_points(tmp_path / "absent.gpkg")


def test_deposits_as_a_geopackage_in_evaluation_and_targets(world_maps, world, tmp_path):
    dep = world.deposits
    gdf = geopandas.GeoDataFrame(
        {"point_id": dep["deposit_id"].values.astype(str)},
        geometry=geopandas.points_from_xy(dep["x"].values, dep["y"].values),
        crs=xp._dims.get_crs(world_maps),
    )
    path = tmp_path / "deposits.gpkg"
    gdf.to_file(path, driver="GPKG", engine="pyogrio")
    m = world_maps["Au"]
    by_ds = xp.evaluate.targets(m, deposits=dep)
    by_file = xp.evaluate.targets(m, deposits=str(path))
    pd.testing.assert_frame_equal(by_ds.table, by_file.table)
    assert by_ds.report["n_deposits"] > 0
