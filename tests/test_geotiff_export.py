"""GeoTIFF export: lazy multi-band writes, Cloud Optimized GeoTIFF, a distributed lock."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

import xprospect as xp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_bench"))

from benchmarks import raster as braster


def _assert_cog(path: Path, *, n_overviews_min: int = 1) -> None:
    """Validate a COG the way GDAL's validate_cloud_optimized_geotiff.py does.

    The structural-metadata "ghost" header says the IFDs come before the data; the image is
    tiled; overviews exist, are tiled, and their tile data lie before the full-resolution
    tiles (so a reader of a zoomed-out view fetches only the start of the file).
    """
    head = path.read_bytes()[:1024]
    assert b"GDAL_STRUCTURAL_METADATA_SIZE" in head
    assert b"LAYOUT=IFDS_BEFORE_DATA" in head and b"BLOCK_ORDER=ROW_MAJOR" in head
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        bh, bw = src.block_shapes[0]
        assert bw < src.width or (bw == 512 and bh == 512)  # tiled, not stripped
        assert bh == bw
        ovr = src.overviews(1)
        assert len(ovr) >= n_overviews_min and ovr == sorted(ovr)
        main = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
    for level in range(len(ovr)):
        with rasterio.open(path, overview_level=level) as o:
            assert o.block_shapes[0] == (bh, bw)
            off = int(o.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
            assert 0 < off < main, (level, off, main)


def test_cog_has_overviews_and_reads_back(tmp_path):
    ds = braster.lazy_stack(1100, n_bands=3, chunk=300).compute()
    [path] = xp.to_geotiff(ds, tmp_path / "maps.tif", multiband=True, cog=True)
    _assert_cog(path)
    back = xp.read_geotiff(path)
    assert sorted(back.data_vars) == ["E0", "E1", "E2"]
    np.testing.assert_array_equal(back["E1"].values, ds["E1"].values)
    assert back.rio.crs == ds.rio.crs
    assert back.rio.transform() == ds.rio.transform()
    # a class (integer) map: nearest-neighbour overviews keep class values
    cls = (ds["E0"] > 0).astype("int8").rename("cls")
    [cpath] = xp.to_geotiff(cls, tmp_path / "cls.tif", cog=True)
    _assert_cog(cpath)
    with rasterio.open(cpath, overview_level=0) as o:
        assert set(np.unique(o.read(1))) <= {0, 1}
    assert list(tmp_path.iterdir()) and not list(tmp_path.glob("*.plain.tif"))


def test_lazy_multiband_write_is_close_to_the_computed_write(tmp_path):
    lazy = braster.lazy_stack(1024, n_bands=4, chunk=300)  # chunks split bands and tiles
    computed = lazy.compute()
    assert len(lazy["E0"].chunks[0]) > 1
    ratio = braster.lazy_over_computed(lazy, computed, tmp_path)
    assert ratio < 1.5, ratio  # issue: 378 s against 7.9 s before bands were merged
    a = xp.read_geotiff(tmp_path / "lazy.tif")
    b = xp.read_geotiff(tmp_path / "computed.tif")
    for n in computed.data_vars:
        np.testing.assert_array_equal(a[n].values, b[n].values)


def test_lazy_map_writes_from_a_distributed_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    lazy = braster.lazy_stack(256, n_bands=2, chunk=100)
    import dask

    # worker processes (a thread lock cannot be pickled to them), spawned as in
    # test_distributed; one worker keeps the test fast
    with (
        dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}),
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        # the default lock is a distributed one when a client is active
        [p1] = xp.to_geotiff(lazy, tmp_path / "auto.tif", multiband=True)
        lock = distributed.Lock("xp-test-geotiff")
        [p2] = xp.to_geotiff(lazy, tmp_path / "given.tif", multiband=True, lock=lock, cog=True)
    _assert_cog(p2, n_overviews_min=0)
    want = lazy.compute()
    for p in (p1, p2):
        back = xp.read_geotiff(p)
        np.testing.assert_array_equal(back["E1"].values, want["E1"].values)


def test_benchmark_bodies_run_at_a_tiny_size(tmp_path):
    bench = braster.MultibandGeoTIFF()
    bench.setup(64)
    try:
        for name in ("time_lazy", "time_computed", "time_cog"):
            getattr(bench, name)(64)
        assert bench.track_lazy_over_computed(64) > 0
        assert (bench.folder / "cog.tif").exists()
    finally:
        bench.teardown(64)
