"""Zarr and GeoTIFF round-trips keep CRS, transform, coordinates, attrs and chunks."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import rasterio
import xarray as xr

import xprospect as xp
from xprospect.exceptions import CRSError, DataError, GridError
from xprospect.testing import assert_georef_equal

GRID_CHUNKS = {"y": 5, "x": 7}


@pytest.fixture(scope="module")
def survey():
    w = xp.synthetic.survey(seed=0, n_samples=300)
    grid = xp.make_grid(like=w.samples, resolution=2000)
    maps = xp.grid_idw(w.samples, like=grid).assign(mask=grid["mask"])
    maps["Au"][0, 0] = np.nan  # a missing cell must survive as NaN
    return w.samples, maps


@pytest.fixture
def maps(survey, to_backend):
    return to_backend(survey[1], GRID_CHUNKS)


def _assert_georef(result: xr.Dataset, expected: xr.Dataset) -> None:
    assert_georef_equal(result, expected)
    assert result.rio.crs == expected.rio.crs
    assert result.rio.transform() == expected.rio.transform()


# -- zarr ---------------------------------------------------------------------------------


def test_zarr_round_trip_grid(maps, backend, tmp_path):
    store = tmp_path / "maps.zarr"
    assert xp.to_zarr(maps, store) is None
    back = xp.open_zarr(store, chunks={})
    _assert_georef(back, maps)
    assert list(back.data_vars) == list(maps.data_vars)  # order survives
    assert back.attrs == maps.attrs
    assert all(back[n].chunks is not None for n in back.data_vars)  # lazy
    if backend == "dask":
        assert all(back[n].chunks == maps[n].chunks for n in maps.data_vars)
    xr.testing.assert_identical(back.compute(), maps.compute())
    assert back["mask"].dtype == bool


def test_zarr_round_trip_samples(survey, tmp_path):
    samples = survey[0]
    xp.to_zarr(samples, tmp_path / "s.zarr")
    back = xp.open_zarr(tmp_path / "s.zarr")
    assert back.rio.crs == samples.rio.crs
    assert list(back.data_vars) == list(samples.data_vars)
    xr.testing.assert_identical(back.compute(), samples)


def test_zarr_round_trip_voxels(tmp_path):
    vox = xp.make_voxels(
        (0, 0, -40, 100, 50, 0), resolution=(10, 25, 25), crs="EPSG:28350", chunks=(3, 2, 3)
    )
    vox["Cu"] = vox["mask"].astype("float32") * 5
    xp.to_zarr(vox, tmp_path / "v.zarr")
    back = xp.open_zarr(tmp_path / "v.zarr", chunks={})
    assert_georef_equal(back, vox)
    assert back["Cu"].chunks == vox["Cu"].chunks
    xr.testing.assert_identical(back.compute(), vox.compute())


def test_zarr_open_auto_chunks_are_multiples_of_stored(survey, tmp_path):
    maps = survey[1].chunk(GRID_CHUNKS)
    xp.to_zarr(maps, tmp_path / "m.zarr")
    back = xp.open_zarr(tmp_path / "m.zarr")  # chunks="auto"
    for dim_chunks, stored in zip(back["Au"].chunks, (5, 7), strict=True):
        assert all(c % stored == 0 for c in dim_chunks[:-1])
    xp.to_zarr(survey[0], tmp_path / "s.zarr")  # string sample ids do not break "auto"
    assert xp.open_zarr(tmp_path / "s.zarr")["Au"].chunks is not None


def test_zarr_refuses_to_overwrite(survey, tmp_path):
    maps = survey[1]
    store = tmp_path / "maps.zarr"
    xp.to_zarr(maps, store)
    with pytest.raises(DataError, match=f"{store} already exists; pass mode='w'"):
        xp.to_zarr(maps[["Cu"]], store)
    assert "Au" in xp.open_zarr(store).data_vars  # untouched
    xp.to_zarr(maps[["Cu"]], store, mode="w")
    assert list(xp.open_zarr(store).data_vars) == ["Cu"]
    with pytest.raises(DataError, match="mode='a'"):
        xp.to_zarr(maps, tmp_path / "other.zarr", mode="a")


def test_zarr_numpy_chunks_option(survey, tmp_path):
    xp.to_zarr(survey[1], tmp_path / "m.zarr", chunks=10)
    assert xp.open_zarr(tmp_path / "m.zarr", chunks={})["Au"].chunks == ((10,) * 3, (10,) * 3)
    xp.to_zarr(survey[1], tmp_path / "d.zarr")  # default: 512 a side, here the whole grid
    assert xp.open_zarr(tmp_path / "d.zarr", chunks={})["Au"].chunks == ((30,), (30,))
    with pytest.raises(DataError, match=r"dims \['z'\]"):
        xp.to_zarr(survey[1], tmp_path / "e.zarr", chunks={"z": 4})


def test_zarr_irregular_chunks_and_stale_encoding(survey, tmp_path):
    maps = survey[1]
    irregular = maps.chunk({"y": (3, 9, 18), "x": 7})
    xp.to_zarr(irregular, tmp_path / "a.zarr")
    back = xp.open_zarr(tmp_path / "a.zarr", chunks={})
    assert back["Au"].chunks[0] == (18, 12)
    xr.testing.assert_identical(back.compute(), maps)
    # re-writing what was read, with other chunks: the old chunk encoding must not clash
    xp.to_zarr(back.chunk({"y": 4, "x": 11}), tmp_path / "b.zarr")
    again = xp.open_zarr(tmp_path / "b.zarr", chunks={})
    assert again["Au"].chunks == ((4,) * 7 + (2,), (11, 11, 8))
    xr.testing.assert_identical(again.compute(), maps)


def test_zarr_compute_false_and_dataarray(survey, tmp_path):
    maps = survey[1].chunk(GRID_CHUNKS)
    delayed = xp.to_zarr(maps, tmp_path / "m.zarr", compute=False)
    assert dask.is_dask_collection(delayed)
    delayed.compute()
    xr.testing.assert_identical(xp.open_zarr(tmp_path / "m.zarr").compute(), maps.compute())
    xp.to_zarr(maps["Cu"], tmp_path / "cu.zarr")
    back = xp.open_zarr(tmp_path / "cu.zarr")
    assert list(back.data_vars) == ["Cu"] and back.rio.crs == maps.rio.crs


def test_zarr_accessor_and_missing_store(survey, tmp_path):
    maps = survey[1]
    maps.prospect.to_zarr(tmp_path / "a.zarr")
    xr.testing.assert_identical(xp.open_zarr(tmp_path / "a.zarr").compute(), maps)
    with pytest.raises(DataError, match="no zarr store at"):
        xp.open_zarr(tmp_path / "missing.zarr")


# -- GeoTIFF ------------------------------------------------------------------------------


def _assert_same_values(result: xr.Dataset, expected: xr.Dataset, names) -> None:
    for n in names:
        np.testing.assert_array_equal(result[n].values, expected[n].values, err_msg=n)


def test_geotiff_single_variable_round_trip(maps, tmp_path):
    path = tmp_path / "au.tif"
    assert xp.to_geotiff(maps, path, variables="Au") == [path]
    back = xp.read_geotiff(path)
    _assert_georef(back, maps)
    assert list(back.data_vars) == ["Au"]
    assert back["Au"].dims == ("y", "x")
    assert back["Au"].dtype == np.float32
    assert np.isnan(back["Au"][0, 0])
    _assert_same_values(back, maps, ["Au"])
    assert back["Au"].attrs["units"] == "ppb"
    assert back.attrs["title"] == maps.attrs["title"]
    assert "GeoTransform" not in back["spatial_ref"].attrs  # derived from coords instead
    with rasterio.open(path) as src:
        assert src.nodata is not None and np.isnan(src.nodata)
        assert src.descriptions == ("Au",)
        assert src.profile["tiled"]


def test_geotiff_multiband_round_trip(maps, tmp_path):
    path = tmp_path / "maps.tif"
    names = ["Au", "Cu", "As"]
    assert xp.to_geotiff(maps, path, variables=names, multiband=True) == [path]
    with rasterio.open(path) as src:
        assert src.count == 3
        assert src.descriptions == tuple(names)
    back = xp.read_geotiff(path, chunks=(5, 7))
    _assert_georef(back, maps)
    assert list(back.data_vars) == names
    assert back["Cu"].chunks == maps["Cu"].chunk(GRID_CHUNKS).chunks
    _assert_same_values(back, maps, names)
    assert back["Au"].attrs["units"] == "ppb" and back["Cu"].attrs["units"] == "ppm"
    assert back["Cu"].attrs["gridding"] == "idw"


def test_geotiff_one_file_per_variable(survey, tmp_path):
    maps = survey[1]
    files = xp.to_geotiff(maps, tmp_path / "maps.tif", variables=["Au", "mask"])
    assert files == [tmp_path / "maps_Au.tif", tmp_path / "maps_mask.tif"]
    mask = xp.read_geotiff(files[1])
    assert list(mask.data_vars) == ["mask"]
    np.testing.assert_array_equal(mask["mask"].values, 1)
    folder = tmp_path / "out"
    folder.mkdir()
    files = xp.to_geotiff(maps, folder)
    assert [f.name for f in files] == [f"{e}.tif" for e in xp.synthetic.DEFAULT_ELEMENTS] + [
        "mask.tif"
    ]


def test_geotiff_refuses_to_overwrite(survey, tmp_path):
    maps = survey[1]
    path = tmp_path / "au.tif"
    xp.to_geotiff(maps, path, variables="Au")
    with pytest.raises(DataError, match=f"{path} already exist"):
        xp.to_geotiff(maps, path, variables="Cu")
    assert list(xp.read_geotiff(path).data_vars) == ["Au"]
    xp.to_geotiff(maps, path, variables="Cu", overwrite=True)
    assert list(xp.read_geotiff(path).data_vars) == ["Cu"]
    with pytest.raises(DataError, match="does not exist"):
        xp.to_geotiff(maps, tmp_path / "nowhere" / "a.tif", variables="Au")


def test_geotiff_integer_dtype_marks_nodata(survey, tmp_path):
    maps = survey[1]
    path = tmp_path / "au16.tif"
    xp.to_geotiff(maps, path, variables="Au", dtype="int16")
    with rasterio.open(path) as src:
        assert src.dtypes == ("int16",) and src.nodata == -32768
    back = xp.read_geotiff(path)
    # an integer raster is a class raster: read as integers with its nodata kept
    assert back["Au"].dtype == np.int16 and back["Au"].attrs["_FillValue"] == -32768
    assert back["Au"].values[0, 0] == -32768
    np.testing.assert_array_equal(back["Au"].values[1:], maps["Au"].values[1:].astype("int16"))


def test_geotiff_rejects_voxels_and_missing_crs(survey, tmp_path):
    vox = xp.make_voxels((0, 0, -40, 100, 50, 0), resolution=(10, 25, 25), crs="EPSG:28350")
    vox["Cu"] = vox["mask"].astype("float32")
    with pytest.raises(GridError, match="voxel"):
        xp.to_geotiff(vox, tmp_path / "v.tif")
    with pytest.raises(GridError, match=r"variable 'Cu'.*voxel"):
        xp.to_geotiff(vox, tmp_path / "v.tif", variables="Cu")
    no_crs = survey[1][["Au"]].drop_vars("spatial_ref")
    for v in no_crs.variables.values():
        v.encoding.pop("grid_mapping", None)
    with pytest.raises(CRSError, match="no CRS"):
        xp.to_geotiff(no_crs, tmp_path / "a.tif")


def test_read_geotiff_names_and_errors(survey, tmp_path):
    maps = survey[1]
    [path] = xp.to_geotiff(maps, tmp_path / "m.tif", variables=["Au", "Cu"], multiband=True)
    assert list(xp.read_geotiff(path, name=["gold", "copper"]).data_vars) == ["gold", "copper"]
    with pytest.raises(DataError, match="2 band"):
        xp.read_geotiff(path, name="gold")
    with pytest.raises(DataError, match="no GeoTIFF at"):
        xp.read_geotiff(tmp_path / "missing.tif")


def test_geotiff_accessor_and_dataarray(survey, tmp_path):
    maps = survey[1]
    files = maps.prospect.to_geotiff(tmp_path / "a.tif", variables="Cu")
    assert files == [tmp_path / "a.tif"]
    xp.to_geotiff(maps, tmp_path / "b.tif", variables="Cu")
    a, b = xp.read_geotiff(files[0]), xp.read_geotiff(tmp_path / "b.tif")
    xr.testing.assert_identical(a["Cu"].drop_encoding(), b["Cu"].drop_encoding())
    [f] = maps["Cu"].prospect.to_geotiff(tmp_path / "c.tif")
    back = xp.read_geotiff(f)
    assert list(back.data_vars) == ["Cu"]
    _assert_georef(back, maps)


# -- the one JSON sanitiser and the mesh reader ---------------------------------------------


def test_jsonable_numpy_tables_paths_and_nonfinite(tmp_path):
    import json

    import pandas as pd

    from xprospect._json import dumps, jsonable

    obj = {
        1: np.float32(0.5),
        "n": np.int64(3),
        "ok": np.bool_(True),
        "nan": float("nan"),
        "a": np.arange(3),
        "t": (np.float64(1.0), None),
        "p": tmp_path / "x.csv",
        "df": pd.DataFrame({"k": [1, 2]}),
    }
    out = jsonable(obj)
    assert out == {
        "1": 0.5,
        "n": 3,
        "ok": True,
        "nan": None,
        "a": [0, 1, 2],
        "t": [1.0, None],
        "p": str(tmp_path / "x.csv"),
        "df": {"k": [1, 2]},
    }
    assert json.loads(dumps(obj)) == out
    assert np.isnan(jsonable({"x": np.float64("nan")}, nonfinite="keep")["x"])
    with pytest.raises(TypeError, match="object is not JSON-able"):
        jsonable({"bad": object()}, strict=True)


def test_read_mesh_from_io(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    path = tmp_path / "box.stl"
    trimesh.creation.box(extents=(10, 10, 10)).export(path)
    mesh = xp.io.read_mesh(path, crs="EPSG:28350")
    assert len(mesh.faces) == 12 and mesh.metadata["source"] == str(path)
    with pytest.raises(DataError, match="does not exist"):
        xp.io.read_mesh(tmp_path / "none.stl")
    with pytest.raises(DataError, match="holds no triangles"):
        xp.io.as_mesh(trimesh.Trimesh())
