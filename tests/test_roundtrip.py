"""Round trips keep coordinates, transform, CRS, nodata, dtype and attrs exactly.

zarr, GeoTIFF (1 x 1, 1 x N, N x 1 and a larger grid), block CSV and the VTK arrays; then the
outputs of these writers and readers are written to NetCDF (scipy's netCDF3 engine, the one
installed everywhere), which accepts only strings, numbers and lists of numbers as attrs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from xprospect.evaluate.delineate import targets
from xprospect.io.blockmodel import to_block_csv, vtk_arrays
from xprospect.io.raster import grid_transform, read_geotiff, to_geotiff
from xprospect.io.store import open_zarr, to_zarr
from xprospect.preprocess.scaling import minmax_scale

CRS = "EPSG:32750"
# strings that look like literals must come back as the same strings, numbers as numbers
FILE_ATTRS = {
    "title": "1",
    "source": "{'a': 1}",
    "history": "[1, 2]",
    "n_runs": 3,
    "version": 1.5,
    "levels": [0.5, 1.5],
    "empty": "",
    "flag": True,
}
VAR_ATTRS = {
    "units": "ppb",
    "note": "None",
    "k": 12,
    "power": 2.0,
    "ids": [1, 2, 3],
    "nan_is_kept": float("nan"),
}


def _grid(ny: int, nx: int, *, res: float = 25.0, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    values = rng.random((ny, nx)).astype("float32") * 1000
    values[0, 0] = np.nan
    y = 6_400_037.5 - res * np.arange(ny)
    x = 500_012.5 + res * np.arange(nx)
    ds = xr.Dataset(
        {"Au": (("y", "x"), values, dict(VAR_ATTRS))},
        coords={"y": y, "x": x},
        attrs=dict(FILE_ATTRS),
    )
    ds["x"].attrs["resolution"] = res
    ds["y"].attrs["resolution"] = res
    return ds.rio.write_crs(CRS)


def _same_attrs(got: dict, want: dict) -> None:
    assert set(got) == set(want), (sorted(got), sorted(want))
    for k, v in want.items():
        g = got[k]
        assert type(g) is type(v), (k, g, v)
        if isinstance(v, float) and np.isnan(v):
            assert np.isnan(g)
        else:
            assert g == v, (k, g, v)


# ---------------------------------------------------------------------------------- zarr


def test_zarr_round_trip_is_identical(tmp_path):
    ds = _grid(6, 5)
    ds["classes"] = (("y", "x"), np.arange(30, dtype="int16").reshape(6, 5), {"nodata": -1})
    ds["mask"] = (("y", "x"), np.ones((6, 5), dtype=bool))
    to_zarr(ds, tmp_path / "g.zarr")
    back = open_zarr(tmp_path / "g.zarr").compute()
    xr.testing.assert_identical(back.drop_encoding(), ds)
    for n in ds.data_vars:
        assert back[n].dtype == ds[n].dtype
    _same_attrs(back.attrs, FILE_ATTRS)
    assert back.rio.crs == ds.rio.crs


# ------------------------------------------------------------------------------- GeoTIFF


@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 7), (6, 1), (40, 30)], ids=["1x1", "1xN", "Nx1", "40x30"]
)
def test_geotiff_round_trip_keeps_everything(shape, tmp_path):
    ds = _grid(*shape)
    [f] = to_geotiff(ds, tmp_path / "g.tif")
    want_transform = rasterio.Affine(25.0, 0.0, 500_000.0, 0.0, -25.0, 6_400_050.0)
    assert grid_transform(ds) == want_transform
    with rasterio.open(f) as src:
        assert src.transform == want_transform  # never the identity, whatever the shape
        assert src.crs.to_epsg() == 32750
        assert np.isnan(src.nodata)
        assert src.dtypes == ("float32",)
    back = read_geotiff(f)
    for d in ("y", "x"):
        np.testing.assert_array_equal(back[d].values, ds[d].values)
    assert grid_transform(back) == want_transform
    assert back.rio.crs == ds.rio.crs
    assert back["Au"].dtype == np.float32
    np.testing.assert_array_equal(back["Au"].values, ds["Au"].values)  # NaN stays NaN
    _same_attrs(back.attrs, FILE_ATTRS)
    _same_attrs(back["Au"].attrs, VAR_ATTRS)
    # and once more from what was read: the second trip is the same file
    [g] = to_geotiff(back, tmp_path / "again.tif")
    with rasterio.open(f) as a, rasterio.open(g) as b:
        assert a.transform == b.transform and a.crs == b.crs and a.tags() == b.tags()
        np.testing.assert_array_equal(a.read(), b.read())


def test_geotiff_class_raster_keeps_integers_and_nodata(tmp_path):
    ds = _grid(3, 4)
    cls = xr.DataArray(
        np.array([[0, 1, 2, 255]] * 3, dtype="uint8"),
        dims=("y", "x"),
        coords={"y": ds.y, "x": ds.x},
        attrs={"class_names": '["a", "b", "c"]'},
    )
    cls = cls.rio.write_nodata(255)
    ds = ds.assign(cls=cls)
    [f] = to_geotiff(ds, tmp_path / "c.tif", variables="cls")
    with rasterio.open(f) as src:
        assert src.dtypes == ("uint8",) and src.nodata == 255
    back = read_geotiff(f)
    assert back["cls"].dtype == np.uint8
    assert back["cls"].attrs["_FillValue"] == 255
    assert back["cls"].attrs["class_names"] == '["a", "b", "c"]'
    np.testing.assert_array_equal(back["cls"].values, cls.values)
    [g] = to_geotiff(back, tmp_path / "c2.tif")
    with rasterio.open(g) as src:
        assert src.dtypes == ("uint8",) and src.nodata == 255


def test_geotiff_multiband_attrs_per_band(tmp_path):
    ds = _grid(4, 5)
    ds["Cu"] = ds["Au"].copy() * 2
    ds["Cu"].attrs = {"units": "ppm", "looks_like_int": "7"}
    [f] = to_geotiff(ds, tmp_path / "m.tif", multiband=True)
    back = read_geotiff(f)
    _same_attrs(back["Au"].attrs, VAR_ATTRS)
    _same_attrs(back["Cu"].attrs, {"units": "ppm", "looks_like_int": "7"})


def test_foreign_tags_are_read_as_strings(tmp_path):
    p = tmp_path / "foreign.tif"
    with rasterio.open(
        p,
        "w",
        driver="GTiff",
        width=2,
        height=2,
        count=1,
        dtype="float32",
        crs=CRS,
        transform=rasterio.Affine(10, 0, 0, 0, -10, 20),
    ) as dst:
        dst.write(np.zeros((1, 2, 2), dtype="float32"))
        dst.update_tags(code="1", spec="{'a': 1}")
    back = read_geotiff(p)
    assert back.attrs["code"] == "1" and back.attrs["spec"] == "{'a': 1}"


# ----------------------------------------------------------------------------- block CSV


def _block() -> xr.Dataset:
    rng = np.random.default_rng(3)
    nz, ny, nx = 4, 3, 5
    z = -2.5 - 5.0 * np.arange(nz)  # stored top down, as block models often are
    y = 6_400_037.5 - 5.0 * np.arange(ny)
    x = 500_002.5 + 5.0 * np.arange(nx)
    dims = ("z", "y", "x")
    return xr.Dataset(
        {
            "Cu": (dims, rng.random((nz, ny, nx)).astype("float32") * 1e4),
            "Au": (dims, rng.random((nz, ny, nx)) / 3.0),
            "rock": (dims, rng.integers(0, 2**31 - 1, (nz, ny, nx)).astype("int32")),
        },
        coords={"z": z, "y": y, "x": x},
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
def test_block_csv_round_trip_is_exact(chunked, tmp_path):
    b = _block()
    if chunked:
        b = b.chunk({"z": 3})
    p = to_block_csv(b, tmp_path / "b.csv", sizes=True)
    t = pd.read_csv(p)
    assert t.columns.tolist() == ["x", "y", "z", "dx", "dy", "dz", "Cu", "Au", "rock"]
    assert (t[["dx", "dy", "dz"]] == 5.0).all().all()
    # every voxel centre is distinct: 5 m voxels at a northing of 6.4e6 do not collapse
    assert len(t.drop_duplicates(["x", "y", "z"])) == b["Cu"].size
    back = t.set_index(["z", "y", "x"]).to_xarray().reindex_like(b)
    for d in ("z", "y", "x"):
        np.testing.assert_array_equal(back[d].values, b[d].values)
    np.testing.assert_array_equal(back["Cu"].values.astype("float32"), b["Cu"].values)
    np.testing.assert_array_equal(back["Au"].values, b["Au"].values)
    np.testing.assert_array_equal(back["rock"].values, b["rock"].values)


def test_block_csv_nan_voxels(tmp_path):
    b = _block()[["Au"]]
    b["Au"][0, 0, 0] = np.nan
    t = pd.read_csv(to_block_csv(b, tmp_path / "a.csv"))
    assert len(t) == b["Au"].size - 1
    t = pd.read_csv(to_block_csv(b, tmp_path / "b.csv", dropna=False))
    assert t["Au"].isna().sum() == 1


# ----------------------------------------------------------------------------------- VTK


def test_vtk_arrays_do_not_mirror_a_downward_z():
    down = _block()
    up = down.isel(z=slice(None, None, -1))  # the same voxels, z stored ascending
    a, b = vtk_arrays(down, "Cu"), vtk_arrays(up, "Cu")
    assert a["origin"] == b["origin"] == (500_000.0, 6_400_025.0, -20.0)
    assert a["spacing"] == b["spacing"] == (5.0, 5.0, 5.0)
    np.testing.assert_array_equal(a["cell_data"]["Cu"], b["cell_data"]["Cu"])
    # cell (i, j, k) sits at i + nx * (j + ny * k), k = 0 the lowest layer (z = -17.5)
    _, ny, nx = down["Cu"].shape
    flat = a["cell_data"]["Cu"]
    assert flat[0] == np.float64(down["Cu"].sel(z=-17.5).values[ny - 1, 0])
    assert flat[-1] == np.float64(down["Cu"].sel(z=-2.5).values[0, nx - 1])


def test_vtk_file_round_trip(tmp_path):
    pv = pytest.importorskip("pyvista")
    from xprospect.io.blockmodel import to_vtk

    b = _block()
    img = pv.read(to_vtk(b, tmp_path / "b.vti", variables="Cu"))
    arrays = vtk_arrays(b, "Cu")
    assert tuple(img.origin) == arrays["origin"] and tuple(img.spacing) == arrays["spacing"]
    np.testing.assert_array_equal(img.cell_data["Cu"], arrays["cell_data"]["Cu"])


# -------------------------------------------------------------------------------- NetCDF


def test_outputs_write_to_netcdf(tmp_path):
    ds = _grid(5, 6)
    ds.attrs = {k: v for k, v in FILE_ATTRS.items() if not isinstance(v, bool)}
    [f] = to_geotiff(ds, tmp_path / "g.tif")
    outputs = {"read_geotiff": read_geotiff(f)}
    # netCDF3 has no unsigned types: an int16 class raster
    cls = ds["Au"].fillna(-1).astype("int16").rio.write_nodata(-1)
    [c] = to_geotiff(ds.assign(cls=cls), tmp_path / "c.tif", variables="cls")
    outputs["read_geotiff_classes"] = read_geotiff(c)
    to_zarr(ds, tmp_path / "g.zarr")
    outputs["open_zarr"] = open_zarr(tmp_path / "g.zarr")
    score = ds["Au"].rename("score")
    outputs["minmax_scale"] = minmax_scale(score).to_dataset()
    t = targets(score, levels={"high": 0.5})
    outputs["targets_labels"] = t.labels.to_dataset()
    outputs["targets_classes"] = t.classes.to_dataset()
    for name, out in outputs.items():
        path = tmp_path / f"{name}.nc"
        out.drop_encoding().to_netcdf(path, engine="scipy")
        with xr.open_dataset(path, engine="scipy") as back:
            assert set(back.data_vars) == set(out.data_vars), name


def test_half_float_geotiff_reads_as_float32(tmp_path):
    # a 16-bit float TIFF (GDAL: Float32 with NBITS=16), as some survey offices send
    p = tmp_path / "half.tif"
    values = np.array([[[1.5, 2.25, np.nan], [0.099975586, 65504.0, -3.0]]], dtype="float32")
    with rasterio.open(
        p,
        "w",
        driver="GTiff",
        width=3,
        height=2,
        count=1,
        dtype="float32",
        nbits=16,
        crs=CRS,
        transform=rasterio.Affine(10, 0, 0, 0, -10, 20),
        nodata=np.nan,
    ) as dst:
        dst.write(values)
    back = read_geotiff(p)
    assert back["half"].dtype == np.float32
    np.testing.assert_array_equal(back["half"].values, values[0])
    assert grid_transform(back) == rasterio.Affine(10, 0, 0, 0, -10, 20)
