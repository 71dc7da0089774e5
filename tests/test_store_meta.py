"""The metadata ``to_zarr`` writes with zarr's API is the one xarray writes (issue 10, part 3)."""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xprospect as xp
import xprospect.io.store as store_module
from xprospect.exceptions import IncompleteStoreError
from xprospect.io._meta import direct


def _tree(root: Path) -> dict[str, object]:
    """Every file of a store: ``zarr.json`` parsed, chunks as bytes."""
    out: dict[str, object] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            key = str(p.relative_to(root))
            out[key] = json.loads(p.read_text()) if p.name == "zarr.json" else p.read_bytes()
    return out


def _both(ds: xr.Dataset, tmp_path: Path, monkeypatch, **kwargs) -> tuple[Path, Path]:
    ours, theirs = tmp_path / "ours.zarr", tmp_path / "xarray.zarr"
    xp.to_zarr(ds, ours, progress=False, **kwargs)
    with monkeypatch.context() as m:
        m.setattr(store_module, "direct", lambda ds, path: False)
        xp.to_zarr(ds, theirs, progress=False, **kwargs)
    return ours, theirs


def _grid(n: int = 40, chunks: int = 16) -> xr.Dataset:
    y = 1000.0 - 10.0 * np.arange(n)
    x = 500.0 + 10.0 * np.arange(n + 3)
    base = da.random.default_rng(0).random((n, n + 3), chunks=chunks).astype("float32")
    ds = xr.Dataset(
        {
            "Au": (("y", "x"), base, {"units": "ppb", "scale": np.float32(2.5)}),
            "Cu": (("y", "x"), base * 2 + 1, {"units": "ppm", "levels": np.array([1, 2, 3])}),
            "count": (("y", "x"), (base * 10).astype("int32")),
            "flag": (("y", "x"), base > 0.5),
            "depth": ("y", np.linspace(0.0, 1.0, n)),  # in memory: cut into zarr chunks
        },
        coords={"y": ("y", y, {"long_name": "northing"}), "x": x},
        attrs={"title": "maps", "params": {"k": 12, "power": 2.0}, "ids": np.arange(3)},
    )
    ds["Au"].encoding["_FillValue"] = -9999.0
    return ds.rio.write_crs("EPSG:32750")


def test_grid_store_is_the_one_xarray_writes(tmp_path, monkeypatch):
    ds = _grid()
    assert direct(store_module._prepare(ds, None, lazy=True), str(tmp_path / "x.zarr"))
    ours, theirs = _both(ds, tmp_path, monkeypatch)
    a, b = _tree(ours), _tree(theirs)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key
    for opener in (xr.open_zarr, xp.open_zarr):
        xr.testing.assert_identical(opener(ours).compute(), opener(theirs).compute())
    opened = xp.open_zarr(ours)
    assert opened.rio.crs.to_epsg() == 32750
    assert list(opened.data_vars) == ["Au", "Cu", "count", "flag", "depth"]
    root = json.loads((ours / "zarr.json").read_text())
    assert root["attributes"]["xprospect_ledger"]["state"] == "complete"
    assert root["consolidated_metadata"]["kind"] == "inline"
    meta = json.loads((ours / "Au" / "zarr.json").read_text())
    assert meta["dimension_names"] == ["y", "x"]
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [16, 16]


def test_voxels_and_times_are_the_ones_xarray_writes(tmp_path, monkeypatch):
    z = np.arange(6) * 5.0
    grid = da.ones((6, 8, 9), chunks=(3, 4, 4), dtype="float64")
    times = pd.date_range("2020-01-01", periods=6, freq="D").values
    ds = xr.Dataset(
        {"grade": (("z", "y", "x"), grid), "when": ("z", times)},
        coords={"z": z, "y": np.arange(8.0), "x": np.arange(9.0)},
    )
    ours, theirs = _both(ds, tmp_path, monkeypatch)
    a, b = _tree(ours), _tree(theirs)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key
    xr.testing.assert_identical(xp.open_zarr(ours).compute(), xp.open_zarr(theirs).compute())


def test_replacing_a_store_leaves_nothing_of_the_old_one(tmp_path):
    path = tmp_path / "maps.zarr"
    xp.to_zarr(_grid().rename({"Au": "Ag"}), path, progress=False)
    xp.to_zarr(_grid(n=20), path, mode="w", progress=False)
    assert not (path / "Ag").exists()
    assert xp.open_zarr(path).sizes == {"y": 20, "x": 23}


# zarr warns that fixed-length strings have no zarr v3 specification yet: its own notice on
# the dtype this test writes on purpose, not about xprospect
@pytest.mark.filterwarnings("ignore:The data type .* does not have a Zarr V3 specification")
def test_strings_go_through_xarray(tmp_path):
    table = xr.Dataset(
        {"Au": ("sample", np.arange(4.0)), "hole": ("sample", np.array(["a", "bb", "c", "d"]))},
        coords={"sample": np.arange(4)},
    )
    out = store_module._prepare(table, None, lazy=True)
    assert not direct(out, str(tmp_path / "t.zarr"))
    xp.to_zarr(table, tmp_path / "t.zarr", progress=False)
    back = xp.open_zarr(tmp_path / "t.zarr").compute()
    assert list(back["hole"].values) == ["a", "bb", "c", "d"]
    np.testing.assert_array_equal(back["Au"].values, np.arange(4.0))


@pytest.mark.filterwarnings("ignore:Failed to open Zarr store with consolidated metadata")
@pytest.mark.parametrize("mode", ["w-", "w"])
def test_a_store_stopped_after_its_root_resumes_afresh(tmp_path, monkeypatch, mode):
    """A write stopped once the root group exists (the arrays not yet) resumes from scratch."""
    import xprospect.io._meta as meta_module

    path = tmp_path / "maps.zarr"
    ds = _grid()

    class Stop(Exception):
        pass

    async def stop(*args, **kwargs):
        raise Stop

    with monkeypatch.context() as m:
        m.setattr(meta_module.zarr.api.asynchronous, "create_array", stop)
        with pytest.raises(Stop):
            xp.to_zarr(ds, path, progress=False, mode=mode)
    assert (path / "zarr.json").exists()
    with pytest.raises(IncompleteStoreError):
        xp.open_zarr(path)
    xp.to_zarr(ds, path, progress=False, resume=True)
    xp.to_zarr(ds, tmp_path / "full.zarr", progress=False)
    assert _tree(path) == _tree(tmp_path / "full.zarr")
