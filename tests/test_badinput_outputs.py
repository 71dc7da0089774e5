"""Bad input to writers, output readers, cards, checkpoints: a clear error, nothing left.

Each case of the table builds a hostile but realistic input, calls one public entry point and
asserts the exception type and that the message names the offending thing (file, key, value).
The second half makes writes fail (a full disk at the write call, a read-only target at the
rename or at creation) and checks that no output file, temporary or partial, is left behind.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin

import xprospect as xp
import xprospect.io._atomic as atomic
from xprospect.evaluate.delineate import targets
from xprospect.exceptions import DataError, GridError, ModelCardError, XProspectError
from xprospect.io.blockmodel import plot_slices, to_block_csv, to_vtk, vtk_arrays
from xprospect.io.raster import read_geotiff, to_geotiff
from xprospect.io.store import open_zarr, to_zarr
from xprospect.models.card import check_card, make_card, normalise, validate_card
from xprospect.preprocess.scaling import minmax_scale

CRS = "EPSG:32750"


def _grid(
    values, *, res: float = 10.0, name: str = "Au", dtype: str = "float64", keep_res: bool = True
) -> xr.Dataset:
    values = np.asarray(values, dtype=dtype)
    ny, nx = values.shape
    y = 6_400_000.0 - res / 2 - res * np.arange(ny)
    x = 500_000.0 + res / 2 + res * np.arange(nx)
    ds = xr.Dataset({name: (("y", "x"), values)}, coords={"y": y, "x": x})
    if keep_res:
        ds["x"].attrs["resolution"] = res
        ds["y"].attrs["resolution"] = res
    return ds.rio.write_crs(CRS)


def _block(nz=3, ny=2, nx=2, *, zres=5.0) -> xr.Dataset:
    rng = np.random.default_rng(0)
    z = -zres / 2 - zres * np.arange(nz)
    y = 6_400_037.5 - 5.0 * np.arange(ny)
    x = 500_002.5 + 5.0 * np.arange(nx)
    return xr.Dataset(
        {"Cu": (("z", "y", "x"), rng.random((nz, ny, nx)).astype("float32"))},
        coords={"z": z, "y": y, "x": x},
    )


def _stack(dtype: str = "float32") -> xr.DataArray:
    data = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(dtype)
    s = xr.DataArray(
        data,
        dims=("element", "y", "x"),
        coords={"element": ["Au", "Cu"], "y": [25.0, 15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]},
    )
    return s.rio.write_crs(CRS)


def _good_card() -> dict:
    return make_card(_stack(), window=3, mean=[1.0, 2.0], std=[0.5, 2.0])


def _map_with_inf() -> xr.DataArray:
    g = _grid(np.arange(20.0).reshape(4, 5))["Au"]
    g[1, 2] = np.inf
    return g.rename("score")


def _write_checkpoint_with_card(tmp: Path, card: dict) -> Path:
    torch = pytest.importorskip("torch")
    from xprospect.models import SmallCNN
    from xprospect.train.checkpoint import CHECKPOINT_FORMAT

    net = SmallCNN(2, window=8, widths=(4,), seed=0)
    p = tmp / "crafted.pt"
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "config": net.config,
            "state_dict": net.state_dict(),
            "card": card,
        },
        p,
    )
    return p


# ---------------------------------------------------------------------------- the cases


def case_geotiff_uint8_wraps(tmp: Path) -> None:
    to_geotiff(_grid([[1.0, 300.0]]), tmp / "a.tif", dtype="uint8")


def case_geotiff_int16_negative(tmp: Path) -> None:
    to_geotiff(_grid([[-40000.0, 1.0]]), tmp / "a.tif", dtype="int16")


def case_geotiff_float32_overflow(tmp: Path) -> None:
    to_geotiff(_grid([[1e300, 1.0]]), tmp / "a.tif", dtype="float32")


def case_geotiff_int64_to_uint8(tmp: Path) -> None:
    to_geotiff(_grid([[1, 70000]], dtype="int64"), tmp / "a.tif", dtype="uint8")


def case_geotiff_nodata_clash(tmp: Path) -> None:
    to_geotiff(_grid([[np.nan, 255.0]]), tmp / "a.tif", dtype="uint8")


def case_geotiff_single_cell_no_resolution(tmp: Path) -> None:
    to_geotiff(_grid([[1.0, 2.0]], keep_res=False), tmp / "a.tif")


def case_geotiff_target_exists(tmp: Path) -> None:
    (tmp / "a.tif").write_bytes(b"keep me")
    to_geotiff(_grid([[1.0, 2.0]]), tmp / "a.tif")


def case_geotiff_missing_folder(tmp: Path) -> None:
    to_geotiff(_grid([[1.0, 2.0]]), tmp / "nowhere" / "a.tif")


def case_read_geotiff_empty(tmp: Path) -> None:
    (tmp / "empty.tif").write_bytes(b"")
    read_geotiff(tmp / "empty.tif")


def case_read_geotiff_truncated(tmp: Path) -> None:
    rng = np.random.default_rng(1)
    g = _grid(rng.random((300, 300)))
    [f] = to_geotiff(g, tmp / "full.tif", compress=None)
    data = f.read_bytes()
    (tmp / "cut.tif").write_bytes(data[: len(data) // 2])
    read_geotiff(tmp / "cut.tif")


def case_read_geotiff_not_a_tiff(tmp: Path) -> None:
    (tmp / "notes.tif").write_text("x,y,Au\n1,2,3\n")
    read_geotiff(tmp / "notes.tif")


def case_read_geotiff_bad_attrs_tag(tmp: Path) -> None:
    p = tmp / "bad.tif"
    with rasterio.open(
        p,
        "w",
        driver="GTiff",
        width=2,
        height=2,
        count=1,
        dtype="float32",
        crs=CRS,
        transform=from_origin(0, 20, 10, 10),
    ) as dst:
        dst.write(np.zeros((1, 2, 2), dtype="float32"))
        dst.update_tags(XPROSPECT_ATTRS="{not json")
    read_geotiff(p)


def case_block_csv_exists(tmp: Path) -> None:
    (tmp / "b.csv").write_text("keep me")
    to_block_csv(_block(), tmp / "b.csv")


def case_block_csv_column_clash(tmp: Path) -> None:
    to_block_csv(_block().rename(Cu="dz"), tmp / "b.csv", sizes=True)


def case_block_csv_bad_float_format(tmp: Path) -> None:
    to_block_csv(_block(), tmp / "b.csv", float_format="%q")


def case_block_csv_single_layer_no_resolution(tmp: Path) -> None:
    to_block_csv(_block(nz=1), tmp / "b.csv", sizes=True)


def case_vtk_single_layer_no_resolution(tmp: Path) -> None:
    vtk_arrays(_block(nz=1))


def case_open_zarr_empty_folder(tmp: Path) -> None:
    (tmp / "empty.zarr").mkdir()
    open_zarr(tmp / "empty.zarr")


def case_open_zarr_on_a_file(tmp: Path) -> None:
    (tmp / "maps.zarr").write_text("not a store")
    open_zarr(tmp / "maps.zarr")


def case_open_zarr_folder_of_other_files(tmp: Path) -> None:
    (tmp / "maps.zarr").mkdir()
    (tmp / "maps.zarr" / "readme.txt").write_text("hello")
    open_zarr(tmp / "maps.zarr")


def case_to_zarr_exists(tmp: Path) -> None:
    (tmp / "maps.zarr").mkdir()
    to_zarr(_grid([[1.0, 2.0]]), tmp / "maps.zarr")


def case_card_zero_std(tmp: Path) -> None:
    make_card(_stack("uint8"), std=[0.5, 0.0])


def case_card_nan_mean(tmp: Path) -> None:
    make_card(_stack(), mean=[np.nan, 1.0])


def case_card_elements_none(tmp: Path) -> None:
    validate_card({**_good_card(), "elements": None})


def case_card_elements_empty(tmp: Path) -> None:
    validate_card({**_good_card(), "elements": []})


def case_card_elements_not_strings(tmp: Path) -> None:
    validate_card({**_good_card(), "elements": ["Au", 3]})


def case_card_std_wrong_length(tmp: Path) -> None:
    validate_card({**_good_card(), "std": [1.0]})


def case_card_std_infinite(tmp: Path) -> None:
    validate_card({**_good_card(), "std": [1.0, float("inf")]})


def case_card_window_zero(tmp: Path) -> None:
    validate_card({**_good_card(), "window": 0})


def case_card_crs_unparseable(tmp: Path) -> None:
    validate_card({**_good_card(), "crs": "EPSG:not-a-code"})


def case_card_resolution_negative(tmp: Path) -> None:
    validate_card({**_good_card(), "resolution": [-10.0, 10.0]})


def case_card_not_a_dict(tmp: Path) -> None:
    validate_card(["elements", "Au"])


def case_card_stack_free_zero_std(tmp: Path) -> None:
    validate_card({"elements": None, "mean": [0.0, 1.0], "std": [1.0, 0.0]})


def case_check_card_stack_free_wrong_count(tmp: Path) -> None:
    check_card({"elements": None, "mean": [0.0, 1.0, 2.0], "std": [1.0, 1.0, 1.0]}, _stack())


def case_check_card_elements_none(tmp: Path) -> None:
    check_card({**_good_card(), "elements": None}, _stack())


def case_normalise_zero_std(tmp: Path) -> None:
    normalise(_stack(), {"mean": [0.0, 0.0], "std": [1.0, 0.0]})


def case_checkpoint_save_bad_card(tmp: Path) -> None:
    pytest.importorskip("torch")
    from xprospect.models import SmallCNN
    from xprospect.train.checkpoint import save_checkpoint

    net = SmallCNN(2, window=8, widths=(4,), seed=0)
    net.card = {**_good_card(), "window": -3}
    save_checkpoint(net, tmp / "net.pt")


def case_checkpoint_load_without_card(tmp: Path) -> None:
    from xprospect.train.checkpoint import load_checkpoint

    load_checkpoint(_write_checkpoint_with_card(tmp, {}))


def case_checkpoint_load_notes_only_card(tmp: Path) -> None:
    from xprospect.train.checkpoint import load_checkpoint

    load_checkpoint(_write_checkpoint_with_card(tmp, {"pretraining": {"epochs": 3}}))


def case_checkpoint_load_malformed_card(tmp: Path) -> None:
    from xprospect.train.checkpoint import load_checkpoint

    load_checkpoint(_write_checkpoint_with_card(tmp, {**_good_card(), "std": [1.0, 0.0]}))


def case_checkpoint_load_card_elements_none(tmp: Path) -> None:
    from xprospect.train.checkpoint import load_checkpoint

    load_checkpoint(_write_checkpoint_with_card(tmp, {**_good_card(), "elements": None}))


def case_minmax_with_inf(tmp: Path) -> None:
    minmax_scale(_map_with_inf()).compute()


def case_minmax_all_nan(tmp: Path) -> None:
    minmax_scale(_grid([[np.nan, np.nan]])["Au"]).compute()


def case_targets_with_inf(tmp: Path) -> None:
    targets(_map_with_inf(), levels={"high": 10.0}, scale=None)


def case_targets_with_inf_minmax(tmp: Path) -> None:
    targets(_map_with_inf(), levels={"high": 0.5})


CASES = [
    pytest.param(
        case_geotiff_uint8_wraps,
        DataError,
        r"300.*\[0, 255\] of uint8",
        id="geotiff-uint8-out-of-range",
    ),
    pytest.param(
        case_geotiff_int16_negative, DataError, r"-40000.*int16", id="geotiff-int16-out-of-range"
    ),
    pytest.param(
        case_geotiff_float32_overflow, DataError, r"1e\+300.*float32", id="geotiff-float32-overflow"
    ),
    pytest.param(
        case_geotiff_int64_to_uint8, DataError, r"70000.*uint8", id="geotiff-int64-to-uint8"
    ),
    pytest.param(
        case_geotiff_nodata_clash, DataError, r"value 255.*missing", id="geotiff-nodata-clash"
    ),
    pytest.param(
        case_geotiff_single_cell_no_resolution,
        GridError,
        r"single cell along 'y'.*resolution",
        id="geotiff-single-row-no-resolution",
    ),
    pytest.param(
        case_geotiff_target_exists, DataError, r"a\.tif already exist", id="geotiff-target-exists"
    ),
    pytest.param(
        case_geotiff_missing_folder,
        DataError,
        r"folder .*nowhere does not exist",
        id="geotiff-missing-folder",
    ),
    pytest.param(
        case_read_geotiff_empty, DataError, r"empty\.tif is an empty file", id="read-geotiff-empty"
    ),
    pytest.param(
        case_read_geotiff_truncated,
        DataError,
        r"cut\.tif is not a readable GeoTIFF",
        id="read-geotiff-truncated",
    ),
    pytest.param(
        case_read_geotiff_not_a_tiff,
        DataError,
        r"notes\.tif is not a readable",
        id="read-geotiff-not-a-tiff",
    ),
    pytest.param(
        case_read_geotiff_bad_attrs_tag,
        DataError,
        r"bad\.tif: tag XPROSPECT_ATTRS",
        id="read-geotiff-bad-attrs-tag",
    ),
    pytest.param(case_block_csv_exists, DataError, r"b\.csv already exists", id="block-csv-exists"),
    pytest.param(
        case_block_csv_column_clash, DataError, r"\['dz'\].*clash", id="block-csv-column-clash"
    ),
    pytest.param(
        case_block_csv_bad_float_format,
        DataError,
        r"float_format='%q'",
        id="block-csv-bad-float-format",
    ),
    pytest.param(
        case_block_csv_single_layer_no_resolution,
        GridError,
        r"single cell along 'z'",
        id="block-csv-single-layer-no-resolution",
    ),
    pytest.param(
        case_vtk_single_layer_no_resolution,
        GridError,
        r"single cell along 'z'",
        id="vtk-single-layer-no-resolution",
    ),
    pytest.param(
        case_open_zarr_empty_folder,
        DataError,
        r"empty\.zarr is not a zarr store.*empty",
        id="open-zarr-empty-folder",
    ),
    pytest.param(
        case_open_zarr_on_a_file, DataError, r"maps\.zarr is a file", id="open-zarr-on-a-file"
    ),
    pytest.param(
        case_open_zarr_folder_of_other_files,
        DataError,
        r"maps\.zarr is not a zarr store.*without zarr metadata",
        id="open-zarr-folder-of-other-files",
    ),
    pytest.param(case_to_zarr_exists, DataError, r"maps\.zarr already exists", id="to-zarr-exists"),
    pytest.param(
        case_card_zero_std, ModelCardError, r"std.*0\.0 for element 'Cu'", id="card-zero-std"
    ),
    pytest.param(
        case_card_nan_mean, ModelCardError, r"mean.*nan for element 'Au'", id="card-nan-mean"
    ),
    pytest.param(
        case_card_elements_none, ModelCardError, r"'elements'.*None", id="card-elements-none"
    ),
    pytest.param(
        case_card_elements_empty, ModelCardError, r"'elements'.*\[\]", id="card-elements-empty"
    ),
    pytest.param(
        case_card_elements_not_strings,
        ModelCardError,
        r"'elements'.*3",
        id="card-elements-not-strings",
    ),
    pytest.param(
        case_card_std_wrong_length,
        ModelCardError,
        r"'std'.*2 numbers.*1 values",
        id="card-std-wrong-length",
    ),
    pytest.param(
        case_card_std_infinite,
        ModelCardError,
        r"'std' holds inf at position 1",
        id="card-std-infinite",
    ),
    pytest.param(case_card_window_zero, ModelCardError, r"'window'.*0", id="card-window-zero"),
    pytest.param(
        case_card_crs_unparseable,
        ModelCardError,
        r"'crs'.*EPSG:not-a-code",
        id="card-crs-unparseable",
    ),
    pytest.param(
        case_card_resolution_negative,
        ModelCardError,
        r"'resolution'.*-10\.0",
        id="card-resolution-negative",
    ),
    pytest.param(
        case_card_not_a_dict, ModelCardError, r"must be a dict; got list", id="card-not-a-dict"
    ),
    pytest.param(
        case_card_stack_free_zero_std,
        ModelCardError,
        r"'std' holds 0\.0 at position 1",
        id="card-stack-free-zero-std",
    ),
    pytest.param(
        case_check_card_stack_free_wrong_count,
        ModelCardError,
        r"trained on 3 channels.*the stack has 2",
        id="check-card-stack-free-count",
    ),
    pytest.param(
        case_check_card_elements_none,
        ModelCardError,
        r"'elements'.*None",
        id="check-card-elements-none",
    ),
    pytest.param(
        case_normalise_zero_std, ModelCardError, r"std \[1\.0, 0\.0\]", id="normalise-zero-std"
    ),
    pytest.param(
        case_checkpoint_save_bad_card,
        ModelCardError,
        r"cannot write .*net\.pt: card key 'window'",
        id="checkpoint-save-bad-card",
    ),
    pytest.param(
        case_checkpoint_load_without_card,
        ModelCardError,
        r"crafted\.pt has no model card.*allow_no_card=True",
        id="checkpoint-load-without-card",
    ),
    pytest.param(
        case_checkpoint_load_notes_only_card,
        ModelCardError,
        r"crafted\.pt has no model card",
        id="checkpoint-load-notes-only-card",
    ),
    pytest.param(
        case_checkpoint_load_malformed_card,
        ModelCardError,
        r"crafted\.pt: card key 'std' holds 0\.0",
        id="checkpoint-load-malformed-card",
    ),
    pytest.param(
        case_checkpoint_load_card_elements_none,
        ModelCardError,
        r"crafted\.pt: card key 'elements'",
        id="checkpoint-load-card-elements-none",
    ),
    pytest.param(
        case_minmax_with_inf, DataError, r"'score' holds infinite values \(inf\)", id="minmax-inf"
    ),
    pytest.param(
        case_minmax_all_nan, DataError, r"'Au' holds no finite values", id="minmax-all-nan"
    ),
    pytest.param(
        case_targets_with_inf,
        DataError,
        r"'score' holds 1 infinite cell\(s\), the first \(inf\) at y=.*x=",
        id="targets-inf-unscaled",
    ),
    pytest.param(
        case_targets_with_inf_minmax,
        DataError,
        r"'score' holds infinite values",
        id="targets-inf-minmax",
    ),
]


@pytest.mark.parametrize(("case", "exc", "match"), CASES)
def test_bad_input_is_refused_by_name(
    case: Callable[[Path], None], exc: type, match: str, tmp_path: Path
) -> None:
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(exc, match=match) as info:
        case(tmp_path)
    assert isinstance(info.value, XProspectError)
    # a refused write leaves nothing new behind (no temporary or partial file)
    leftovers = [
        p.name for p in tmp_path.rglob("*") if p.name.startswith(".") or p.name.endswith(".part")
    ]
    assert leftovers == [], leftovers
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data  # an existing file is untouched


def test_the_table_is_large_enough():
    assert len(CASES) >= 25


# ---------------------------------------------------------------------------- failing writes


def _fail_partway(code: int) -> Callable:
    """A stand-in for a writer: it writes some bytes to its target, then fails with ``code``."""

    def write(self, target, *args, **kwargs):
        if isinstance(self, Path):  # Path.write_text(data): the path is self
            target = self
        path = target if isinstance(target, (str, os.PathLike)) else None
        if path is None:  # an open file object (pandas to_csv on a handle)
            target.write("x,y,z\n1,2,")
        else:
            Path(path).write_bytes(b"II*\x00partial")
        raise OSError(code, os.strerror(code))

    return write


def _targets_set():
    m = _grid(np.arange(20.0).reshape(4, 5))["Au"].rename("score")
    return targets(m, levels={"high": 0.5})


def _write_geotiff(tmp: Path) -> Path:
    to_geotiff(_grid([[1.0, 2.0], [3.0, 4.0]]), tmp / "out.tif")
    return tmp / "out.tif"


def _write_block_csv(tmp: Path) -> Path:
    return to_block_csv(_block(), tmp / "out.csv")


def _write_png(tmp: Path) -> Path:
    pytest.importorskip("matplotlib")
    return plot_slices(_block(), "Cu", elevations=[-2.5], path=tmp / "out.png")


def _write_targets_csv(tmp: Path) -> Path:
    return _targets_set().to_csv(tmp / "out.csv")


def _write_targets_geojson(tmp: Path) -> Path:
    return _targets_set().to_geojson(tmp / "out.geojson")


def _write_targets_gpkg(tmp: Path) -> Path:
    return _targets_set().to_gpkg(tmp / "out.gpkg")


def _write_vtk(tmp: Path) -> Path:
    pytest.importorskip("pyvista")
    return to_vtk(_block(), tmp / "out.vti")


def _eval_inputs():
    rng = np.random.default_rng(0)
    m = _grid(rng.random((10, 10)))["Au"].rename("score")
    x, y = m.x.values[[2, 7]], m.y.values[[3, 6]]
    coords = {"x": ("point", x), "y": ("point", y), "point_id": ("point", ["D0", "D1"])}
    return m, xr.Dataset(coords=coords).rio.write_crs(CRS)


def _write_report_json(tmp: Path) -> Path:
    m, dep = _eval_inputs()
    xp.evaluate.evaluate(m, dep, blocks=None, negatives=20).to_json(tmp / "out.json")
    return tmp / "out.json"


def _write_report_png(tmp: Path) -> Path:
    pytest.importorskip("matplotlib")
    m, dep = _eval_inputs()
    xp.evaluate.evaluate(m, dep, blocks=None, negatives=20).plot(tmp / "out.png")
    return tmp / "out.png"


def _write_compare_png(tmp: Path) -> Path:
    pytest.importorskip("matplotlib")
    m, dep = _eval_inputs()
    xp.evaluate.plot_compare({"a": m, "b": -m}, dep, negatives=20, path=tmp / "out.png")
    return tmp / "out.png"


def _write_checkpoint(tmp: Path) -> Path:
    pytest.importorskip("torch")
    from xprospect.models import SmallCNN
    from xprospect.train.checkpoint import write_checkpoint

    net = SmallCNN(2, window=3, widths=(2,), seed=0)
    return write_checkpoint(
        tmp / "out.pt", config=net.config, state_dict=net.state_dict(), card=_good_card()
    )


WRITERS = [
    pytest.param(_write_geotiff, "rioxarray.raster_array.RasterArray.to_raster", id="geotiff"),
    pytest.param(_write_block_csv, "pandas.DataFrame.to_csv", id="block-csv"),
    pytest.param(_write_png, "matplotlib.figure.Figure.savefig", id="png-slices"),
    pytest.param(_write_targets_csv, "pandas.DataFrame.to_csv", id="targets-csv"),
    pytest.param(_write_targets_geojson, "geopandas.GeoDataFrame.to_file", id="targets-geojson"),
    pytest.param(_write_targets_gpkg, "geopandas.GeoDataFrame.to_file", id="targets-gpkg"),
    pytest.param(_write_vtk, "pyvista.ImageData.save", id="vtk"),
    pytest.param(_write_report_json, "pathlib.Path.write_text", id="evaluation-json"),
    pytest.param(_write_report_png, "matplotlib.figure.Figure.savefig", id="evaluation-png"),
    pytest.param(_write_compare_png, "matplotlib.figure.Figure.savefig", id="compare-png"),
    pytest.param(_write_checkpoint, "torch.save", id="checkpoint"),
]


def _only_inputs(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir())


@pytest.mark.parametrize(("write", "call"), WRITERS)
def test_full_disk_at_the_write_call_leaves_nothing(write, call, tmp_path, monkeypatch):
    if call == "pyvista.ImageData.save":
        pytest.importorskip("pyvista")
    if call.startswith("matplotlib"):
        pytest.importorskip("matplotlib")
    if call.startswith("torch"):
        pytest.importorskip("torch")
    targets_set = _targets_set() if "targets" in write.__name__ else None
    monkeypatch.setattr(call, _fail_partway(errno.ENOSPC))
    if targets_set is not None:
        name, fn = {
            _write_targets_csv: ("out.csv", targets_set.to_csv),
            _write_targets_geojson: ("out.geojson", targets_set.to_geojson),
            _write_targets_gpkg: ("out.gpkg", targets_set.to_gpkg),
        }[write]
        with pytest.raises(DataError, match=rf"cannot write .*{name}: the disk is full"):
            fn(tmp_path / name)
    else:
        with pytest.raises(DataError, match=r"cannot write .*out\.\w+: the disk is full"):
            write(tmp_path)
    assert _only_inputs(tmp_path) == []


@pytest.mark.parametrize(("write", "call"), WRITERS)
def test_read_only_target_at_the_rename_leaves_nothing(write, call, tmp_path, monkeypatch):
    # tests run as root in CI, where chmod does not stop writes: fail the rename instead
    def refuse(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(
        DataError,
        match=r"cannot write .*out\.\w+: the target is on a "
        r"read-only file system; nothing was written",
    ):
        write(tmp_path)
    assert _only_inputs(tmp_path) == []


@pytest.mark.parametrize(("write", "call"), WRITERS)
def test_read_only_target_at_creation_leaves_nothing(write, call, tmp_path, monkeypatch):
    def refuse(path, mode="r", *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(atomic, "open", refuse, raising=False)
    with pytest.raises(DataError, match=r"read-only file system"):
        write(tmp_path)
    assert _only_inputs(tmp_path) == []


def test_existing_output_survives_a_failed_overwrite(tmp_path, monkeypatch):
    path = _write_geotiff(tmp_path)
    good = path.read_bytes()
    monkeypatch.setattr("rioxarray.raster_array.RasterArray.to_raster", _fail_partway(errno.ENOSPC))
    with pytest.raises(DataError, match="disk is full"):
        to_geotiff(_grid([[5.0, 6.0], [7.0, 8.0]]), path, overwrite=True)
    assert path.read_bytes() == good
    assert _only_inputs(tmp_path) == ["out.tif"]


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders"
)
def test_read_only_folder_for_real(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(DataError, match=r"permission denied|read-only"):
            to_geotiff(_grid([[1.0, 2.0]]), folder / "a.tif")
        with pytest.raises(DataError, match=r"permission denied|read-only"):
            to_zarr(_grid([[1.0, 2.0]]), folder / "a.zarr")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("metadata", ["zarr", "xarray"])
def test_to_zarr_read_only_target_is_a_clear_error(tmp_path, monkeypatch, metadata):
    import zarr.storage

    async def refuse(self, key, value, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self.root / key))

    # every file zarr writes (the metadata written with zarr's API, or through xarray)
    monkeypatch.setattr(zarr.storage.LocalStore, "set", refuse)
    if metadata == "xarray":
        monkeypatch.setattr("xprospect.io.store.direct", lambda ds, path: False)
    with pytest.raises(
        DataError,
        match=r"cannot write .*maps\.zarr: the target is on a "
        r"read-only file system",
    ):
        to_zarr(_grid([[1.0, 2.0]]), tmp_path / "maps.zarr")


def test_a_non_os_error_inside_a_write_is_named_and_cleaned_up(tmp_path, monkeypatch):
    def boom(self, target, *args, **kwargs):
        Path(target).write_bytes(b"partial")
        raise RuntimeError("GDAL said no")

    monkeypatch.setattr("rioxarray.raster_array.RasterArray.to_raster", boom)
    with pytest.raises(DataError, match=r"out\.tif: RuntimeError: GDAL said no"):
        _write_geotiff(tmp_path)
    assert _only_inputs(tmp_path) == []


def test_checkpoint_without_card_loads_only_when_asked(tmp_path):
    pytest.importorskip("torch")
    from xprospect.train.checkpoint import load_checkpoint

    p = _write_checkpoint_with_card(tmp_path, {})
    with pytest.warns(xp.XProspectWarning, match="no model card"):
        model = load_checkpoint(p, allow_no_card=True)
    assert model.card == {}


def test_a_valid_card_passes_save_and_load(tmp_path):
    pytest.importorskip("torch")
    from xprospect.train.checkpoint import load_checkpoint

    card = _good_card()
    model = load_checkpoint(_write_checkpoint_with_card(tmp_path, card))
    assert model.card == card
    check_card(model.card, _stack())


def test_a_stack_free_card_is_valid_and_checks_the_channel_count(tmp_path):
    card = {
        "elements": None,
        "window": [8, 8],
        "mean": [0.0, 1.0],
        "std": [1.0, 2.0],
        "data_hash": "abc",
        "recipe": {"name": "adam"},
    }
    validate_card(card)
    check_card(card, _stack())  # two channels, two elements


def test_float16_is_written_as_float32_with_a_warning(tmp_path):
    g = _grid([[1.5, np.nan]], dtype="float16")
    with pytest.warns(xp.XProspectWarning, match="float16 is written as float32"):
        [f] = to_geotiff(g, tmp_path / "h.tif")
    back = read_geotiff(f)
    assert back["Au"].dtype == np.float32
    np.testing.assert_array_equal(back["Au"].values, [[1.5, np.nan]])


def test_inf_does_not_hide_behind_no_finite_values():
    with pytest.raises(DataError) as info:
        minmax_scale(_map_with_inf()).compute()
    assert "no finite values" not in str(info.value)


def test_block_csv_float_format_still_applies_to_values_only(tmp_path):
    b = _block()
    p = to_block_csv(b, tmp_path / "b.csv", float_format="%.2f")
    t = pd.read_csv(p, dtype=str)
    assert t["y"].iloc[0] == "6400037.5"  # coordinates stay exact
    assert all(len(v.split(".")[1]) == 2 for v in t["Cu"])
