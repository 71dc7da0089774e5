"""Sample ingest: real survey, messy values, duplicates, units, reprojection and bad input."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xprospect as xp
from xprospect.exceptions import CRSError, DataError
from xprospect.io.samples import parse_analyte_column

KATANNING = "wa_katanning_stream_sediment_au"


def _write(tmp_path, text, name="survey.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


SMALL = """E,N,id,Au_ppb,Cu_ppm
500000,6300000,a1,<0.5,10
500100,6300000,a2,3,-2
500200,6300000,a3,>1000,0
500300,6300000,a4,NA,4
500400,6300000,a5,-9999,
"""


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def katanning_csv(data_dir):
    path = data_dir / KATANNING / "area1_sediment_au.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.mark.realdata
def test_katanning_dedup_and_reprojection(katanning_csv, caplog):
    with caplog.at_level(logging.INFO, logger="xprospect.io"):
        ds = xp.read_samples(
            katanning_csv, x="X", y="Y", crs="EPSG:4326", to_crs="EPSG:32750", duplicates="drop"
        )
    rep = xp.ingest_report(ds)
    assert ds.sizes["sample"] == 866
    assert rep["n_rows_read"] == 1392 and rep["n_samples"] == 866
    assert rep["n_exact_duplicates"] == 526 and rep["n_exact_duplicates_dropped"] == 526
    # 820 unique locations remain, so 46 co-located samples with other values
    assert rep["n_colocated"] == 46
    assert rep["source"] == "area1_sediment_au.csv"
    assert rep["crs"] == "EPSG:4326" and rep["to_crs"] == "EPSG:32750"
    assert "526 exact duplicates" in caplog.text

    assert ds.rio.crs.to_epsg() == 32750
    assert ds.x.dtype == np.float64 and ds.y.dtype == np.float64
    assert 480_000 < ds.x.min() and ds.x.max() < 660_000
    assert 6.19e6 < ds.y.min() and ds.y.max() < 6.40e6
    assert ds["Au"].attrs["units"] == "ppm" and ds["Au"].attrs["source_column"] == "Au_ppm"
    assert ds["Pt"].attrs["units"] == "ppb"
    assert ds["SAMPLEID"].dtype == object and ds["SAMPLEID"].values[0] == "377937"

    # the dedup file holds the same rows in the same order: detected values identical,
    # below-detection ones at half the DL
    ref = pd.read_csv(katanning_csv.parent / "area1_sediment_au_dedup.csv")
    np.testing.assert_allclose(ds.x.size, len(ref))
    au = ref["Au_ppm"].to_numpy()
    pos, neg = au > 0, (au < 0) & (au != -9999)
    np.testing.assert_array_equal(ds["Au"].values[pos], au[pos])
    np.testing.assert_allclose(ds["Au"].values[neg], -au[neg] / 2)
    np.testing.assert_allclose(ds["Au"].values[au == 0], au[pos].min() / 2)


@pytest.mark.realdata
def test_katanning_counts_match_pandas(katanning_csv):
    ds = xp.read_samples(katanning_csv, x="X", y="Y", crs="EPSG:4326")
    rep = xp.ingest_report(ds)
    raw = pd.read_csv(katanning_csv)
    assert ds.sizes["sample"] == 1392  # duplicates="keep"
    assert rep["n_exact_duplicates"] == 526 and rep["n_exact_duplicates_dropped"] == 0

    au = raw["Au_ppm"]
    assert ((au <= 0) & (au != -9999)).sum() == 207
    assert rep["columns"]["Au_ppm"]["below_detection"] == 207

    analytes = [c for c in raw.columns if parse_analyte_column(c) is not None]
    assert len(analytes) == 123
    all_missing = [c for c in analytes if (raw[c] == -9999).all()]
    assert rep["dropped_columns"] == all_missing and "LOI_pct" in all_missing
    kept = [c for c in analytes if c not in all_missing]
    assert list(rep["columns"]) == kept
    for c in kept:
        v = raw[c]
        sentinel = int((v == -9999).sum())
        expected = {
            "missing": sentinel + int(v.isna().sum()),
            "below_detection": int(((v <= 0) & (v != -9999)).sum()),
            "zero_as_bdl": int((v == 0).sum()),
            "above_detection": 0,
            "sentinel": sentinel,
            "implausible_dl": 0,
            "over_range": 0,
            "nonfinite": 0,
        }
        assert rep["columns"][c] == expected, c
        name = next(k for k, s in rep["elements"].items() if s == c)
        assert int(ds[name].isnull().sum()) == expected["missing"], c
    assert sum(c["sentinel"] for c in rep["columns"].values()) > 0


# ----------------------------------------------------------------------------- messy values


def test_messy_values_and_counts(tmp_path):
    ds = xp.read_samples(_write(tmp_path, SMALL), x="E", y="N", crs="EPSG:32750", id_column="id")
    rep = xp.ingest_report(ds)
    # Au: "<0.5" -> DL 0.5 -> 0.25; ">1000" -> 1000; NA and -9999 missing
    np.testing.assert_array_equal(ds["Au"].values, [0.25, 3.0, 1000.0, np.nan, np.nan])
    # Cu: -2 -> DL 2 -> 1; 0 -> DL = smallest positive (4) -> 2; empty -> missing
    np.testing.assert_array_equal(ds["Cu"].values, [10.0, 1.0, 2.0, 4.0, np.nan])
    assert rep["columns"]["Au_ppb"] == {
        "missing": 2,
        "below_detection": 1,
        "zero_as_bdl": 0,
        "above_detection": 1,
        "sentinel": 1,
        "implausible_dl": 0,
        "over_range": 0,
        "nonfinite": 0,
    }
    assert rep["columns"]["Cu_ppm"] == {
        "missing": 1,
        "below_detection": 2,
        "zero_as_bdl": 1,
        "above_detection": 0,
        "sentinel": 0,
        "implausible_dl": 0,
        "over_range": 0,
        "nonfinite": 0,
    }
    assert ds["Au"].attrs == {
        "units": "ppb",
        "source_column": "Au_ppb",
        "detection_limits": [0.5],
        "bdl": "half",
    }
    assert ds["Cu"].attrs["detection_limits"] == [2.0, 4.0]
    assert ds["sample_id"].values.tolist() == ["a1", "a2", "a3", "a4", "a5"]
    assert ds["row"].values.tolist() == [1, 2, 3, 4, 5]
    assert ds.x.dtype == np.float64 and ds["Au"].dtype == np.float64
    assert ds.rio.crs.to_epsg() == 32750


def test_text_markers(tmp_path):
    text = "x,y,Au_ppb\n0,0,< 0.5\n1,0,n.a.\n2,0,-\n3,0,nd\n4,0, 7 \n5,0,<=2\n6,0,BDL\n7,0,8\n"
    ds = xp.read_samples(_write(tmp_path, text), x="x", y="y", crs="EPSG:3857", bdl="dl")
    np.testing.assert_array_equal(
        ds["Au"].values, [0.5, np.nan, np.nan, np.nan, 7.0, 2.0, 7.0, 8.0]
    )
    counts = xp.ingest_report(ds)["columns"]["Au_ppb"]
    assert counts["missing"] == 3 and counts["below_detection"] == 3
    assert counts["zero_as_bdl"] == 1


@pytest.mark.parametrize(
    ("bdl", "expected"),
    [
        ("half", [0.25, 1.0, 2.0, 4.0]),
        ("dl", [0.5, 2.0, 4.0, 4.0]),
        ("nan", [np.nan, np.nan, np.nan, 4.0]),
        (0.1, [0.05, 0.2, 0.4, 4.0]),
        (0, [0.0, 0.0, 0.0, 4.0]),
    ],
)
def test_bdl_policies(bdl, expected):
    table = pd.DataFrame(
        {"x": [0.0, 1, 2, 3], "y": [0.0, 0, 0, 0], "Cu_ppm": ["<0.5", "-2", "0", "4"]}
    )
    ds = xp.read_samples(table, x="x", y="y", crs="EPSG:3857", bdl=bdl)
    np.testing.assert_allclose(ds["Cu"].values, expected)
    assert xp.ingest_report(ds)["columns"]["Cu_ppm"]["below_detection"] == 3


def test_zero_without_positive_values_takes_smallest_stated_dl():
    # Re_ppm in the Katanning survey: every value below detection
    table = pd.DataFrame({"x": [0.0, 1, 2], "y": [0.0, 0, 0], "Re_ppm": [0.0, -0.0005, -0.0001]})
    ds = xp.read_samples(table, x="x", y="y", crs="EPSG:3857", bdl="dl")
    np.testing.assert_allclose(ds["Re"].values, [0.0001, 0.0005, 0.0001])
    table["Re_ppm"] = [0.0, 0.0, -9999.0]
    ds = xp.read_samples(table, x="x", y="y", crs="EPSG:3857")
    assert np.isnan(ds["Re"].values).all()
    assert xp.ingest_report(ds)["columns"]["Re_ppm"]["zero_as_bdl"] == 2


@pytest.mark.parametrize("bdl", ["quarter", -0.5, True, float("nan")])
def test_bad_bdl(bdl):
    table = pd.DataFrame({"x": [0.0], "y": [0.0], "Cu_ppm": [1.0]})
    with pytest.raises(DataError, match="bdl must be"):
        xp.read_samples(table, x="x", y="y", crs="EPSG:3857", bdl=bdl)


def test_sentinels_with_tolerance():
    table = pd.DataFrame(
        {
            "x": [0.0, 1, 2, 3],
            "y": [0.0, 0, 0, 0],
            "Cu_ppm": [-9999.0000001, -99999.0, 5.0, -9999.0],
        }
    )
    ds = xp.read_samples(table, x="x", y="y", crs="EPSG:3857", missing=(-9999, -99999))
    np.testing.assert_array_equal(ds["Cu"].values, [np.nan, np.nan, 5.0, np.nan])
    assert xp.ingest_report(ds)["columns"]["Cu_ppm"]["sentinel"] == 3
    # without -99999 as a sentinel the auto policy reads it as a code (all nines), not a DL
    ds = xp.read_samples(table, x="x", y="y", crs="EPSG:3857")
    assert xp.ingest_report(ds)["columns"]["Cu_ppm"]["implausible_dl"] == 1
    assert xp.ingest_report(ds)["columns"]["Cu_ppm"]["below_detection"] == 0
    # with the policy off it is a (strange) below-detection value
    ds = xp.read_samples(table, x="x", y="y", crs="EPSG:3857", sentinels="none")
    assert xp.ingest_report(ds)["columns"]["Cu_ppm"]["below_detection"] == 1


# ----------------------------------------------------------------------------- units, names


def test_units_conversion():
    table = pd.DataFrame(
        {
            "x": [0.0, 1],
            "y": [0.0, 0],
            "Au_ppb": [1500.0, -5.0],
            "Fe_pct": [2.5, 1.0],
            "Cu_ppm": [30.0, 7.0],
        }
    )
    ds = xp.read_samples(table, x="x", y="y", crs="EPSG:3857", units="ppm", bdl="dl")
    np.testing.assert_allclose(ds["Au"].values, [1.5, 0.005])
    np.testing.assert_allclose(ds["Fe"].values, [25_000.0, 10_000.0])
    np.testing.assert_allclose(ds["Cu"].values, [30.0, 7.0])
    assert {ds[v].attrs["units"] for v in ds.data_vars} == {"ppm"}
    np.testing.assert_allclose(ds["Au"].attrs["detection_limits"], [0.005])
    assert xp.ingest_report(ds)["units"] == "ppm"
    ds = xp.read_samples(table, x="x", y="y", crs="EPSG:3857", units="ppb")
    np.testing.assert_allclose(ds["Cu"].values, [30_000.0, 7_000.0])
    with pytest.raises(DataError, match="units must be"):
        xp.read_samples(table, x="x", y="y", crs="EPSG:3857", units="kg")


def test_units_need_suffixes():
    table = pd.DataFrame({"x": [0.0, 1], "y": [0.0, 0], "gold": [1.0, 2.0]})
    ds = xp.read_samples(table, x="x", y="y", crs="EPSG:3857")
    assert ds["gold"].attrs["units"] == "unknown"
    with pytest.raises(DataError, match=r"'gold'.*no unit suffix"):
        xp.read_samples(table, x="x", y="y", crs="EPSG:3857", units="ppm")


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("Au_ppb", ("Au", "ppb")),
        ("Au_PPB", ("Au", "ppb")),
        ("Cu_mg_kg", ("Cu", "ppm")),
        ("Au_g_t", ("Au", "ppm")),
        ("Au_gpt", ("Au", "ppm")),
        ("Fe2O3_wt%", ("Fe2O3", "pct")),
        ("SiO2_percent", ("SiO2", "pct")),
        ("Fe2O3T_pct", ("Fe2O3T", "pct")),
        ("H2Oneg_pct", ("H2Oneg", "pct")),
        ("LOI_pct", ("LOI", "pct")),
        ("Au_ppt", ("Au", "ppt")),
        ("Depth_ppm", None),
        ("Recovery_pct", None),
        ("LABnegNR_N", None),
        ("X", None),
        ("Au", None),
        ("sample_ppm", None),
    ],
)
def test_parse_analyte_column(column, expected):
    assert parse_analyte_column(column) == expected


def test_element_selection_and_name_clash(caplog):
    table = pd.DataFrame(
        {
            "x": [0.0, 1],
            "y": [0.0, 0],
            "Au_ppm": [0.1, 0.2],
            "Au_ppb": [100.0, 200.0],
            "Cu_ppm": [5.0, 6.0],
            "name": ["p", "q"],
        }
    )
    with caplog.at_level(logging.INFO, logger="xprospect.io"):
        ds = xp.read_samples(table, x="x", y="y", crs="EPSG:3857")
    assert sorted(ds.data_vars) == ["Au_ppb", "Au_ppm", "Cu"]
    assert "full names" in caplog.text
    # a column called "name" would break rioxarray: it gets a trailing underscore
    assert "name" not in ds.coords and ds["name_"].values.tolist() == ["p", "q"]

    ds = xp.read_samples(table, x="x", y="y", crs="EPSG:3857", elements=["Cu"])
    assert list(ds.data_vars) == ["Cu"]
    assert "Au_ppm" not in ds.coords  # analytes not asked for are left out
    assert xp.ingest_report(ds)["ignored_columns"] == ["Au_ppm", "Au_ppb"]
    ds = xp.read_samples(table, x="x", y="y", crs="EPSG:3857", elements=["Au_ppb", "Cu"])
    assert list(ds.data_vars) == ["Au", "Cu"] and ds["Au"].attrs["units"] == "ppb"
    with pytest.raises(DataError, match=r"element 'Zn' is not a column of the DataFrame"):
        xp.read_samples(table, x="x", y="y", crs="EPSG:3857", elements=["Zn"])


def test_fallback_to_numeric_columns(tmp_path):
    text = "east,north,hole,code,gold,copper\n0,0,H1,007,1.5,3\n1,0,H2,008,-0.1,4\n"
    ds = xp.read_samples(
        _write(tmp_path, text), x="east", y="north", crs="EPSG:3857", id_column="code"
    )
    assert sorted(ds.data_vars) == ["copper", "gold"]
    assert ds["gold"].attrs["units"] == "unknown"
    np.testing.assert_allclose(ds["gold"].values, [1.5, 0.05])
    assert ds["sample_id"].values.tolist() == ["007", "008"]  # ids keep leading zeros
    assert ds["hole"].values.tolist() == ["H1", "H2"]


def test_z_and_reprojection():
    table = pd.DataFrame(
        {"lon": [117.0, 117.5], "lat": [-33.0, -33.2], "RL": [250.0, 260.0], "Au_ppb": [1.0, 2.0]}
    )
    ds = xp.read_samples(table, x="lon", y="lat", z="RL", crs="EPSG:4326", to_crs=32750)
    assert ds.z.values.tolist() == [250.0, 260.0]
    np.testing.assert_allclose(ds.x.values[0], 500_000.0, atol=1e-6)  # central meridian
    assert ds.rio.crs.to_epsg() == 32750
    keep = xp.read_samples(table, x="lon", y="lat", crs="EPSG:4326")
    assert keep.x.values.tolist() == [117.0, 117.5] and keep.rio.crs.to_epsg() == 4326


# ----------------------------------------------------------------------------- duplicates


DUPS = pd.DataFrame(
    {
        "x": [0.0, 0.0, 1.0, 1.0, 2.0, 0.0, 3.0],
        "y": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "sid": ["a", "b", "c", "d", "e", "f", "g"],
        "Cu_ppm": [10.0, 10.0, 4.0, 8.0, 1.0, 10.0, np.nan],
        "Zn_ppm": [np.nan, np.nan, 2.0, np.nan, 5.0, 20.0, 3.0],
    }
)
# rows (1-based): 2 repeats 1 exactly (NaN == NaN); 4 is co-located with 3;
# 6 is co-located with 1 (Zn differs)


def _dups(policy):
    return xp.read_samples(DUPS, x="x", y="y", crs="EPSG:3857", duplicates=policy, id_column="sid")


def test_duplicates_keep():
    ds = _dups("keep")
    rep = xp.ingest_report(ds)
    assert ds.sizes["sample"] == 7
    assert rep["n_exact_duplicates"] == 1 and rep["n_colocated"] == 2
    assert rep["n_colocated_locations"] == 2


def test_duplicates_drop():
    ds = _dups("drop")
    assert ds["sample_id"].values.tolist() == ["a", "c", "d", "e", "f", "g"]
    assert ds["row"].values.tolist() == [1, 3, 4, 5, 6, 7]
    assert xp.ingest_report(ds)["n_exact_duplicates_dropped"] == 1


def test_duplicates_mean():
    ds = _dups("mean")
    assert ds["sample_id"].values.tolist() == ["a", "c", "e", "g"]
    assert ds.x.values.tolist() == [0.0, 1.0, 2.0, 3.0]
    np.testing.assert_array_equal(ds["Cu"].values, [10.0, 6.0, 1.0, np.nan])
    np.testing.assert_array_equal(ds["Zn"].values, [20.0, 2.0, 5.0, 3.0])
    rep = xp.ingest_report(ds)
    assert rep["n_colocated_merged"] == 2 and rep["n_samples"] == 4


def test_duplicates_error():
    with pytest.raises(DataError, match=r"3 rows at the location.*1 exact.*row 2 repeats row 1"):
        _dups("error")
    ok = DUPS.iloc[[0, 2, 4, 6]]
    assert (
        xp.read_samples(ok, x="x", y="y", crs="EPSG:3857", duplicates="error").sizes["sample"] == 4
    )
    with pytest.raises(DataError, match="duplicates must be"):
        _dups("first")


def test_duplicates_compare_detection_limits():
    # "<1" and "<2" are different results, so these are co-located, not exact duplicates
    table = pd.DataFrame({"x": [0.0, 0.0], "y": [0.0, 0.0], "Au_ppb": ["<1", "<2"]})
    rep = xp.ingest_report(xp.read_samples(table, x="x", y="y", crs="EPSG:3857", bdl="nan"))
    assert rep["n_exact_duplicates"] == 0 and rep["n_colocated"] == 1


# ----------------------------------------------------------------------------- sources


def test_dataframe_not_mutated():
    table = pd.DataFrame(
        {
            "x": [0.0, 1],
            "y": [0.0, 0],
            "Au_ppb": ["<1", "-9999"],
            "Cu_ppm": [-2.0, 0.0],
            "name": ["p", "q"],
        }
    )
    before = table.copy(deep=True)
    xp.read_samples(table, x="x", y="y", crs="EPSG:3857", duplicates="mean", units="ppm")
    pd.testing.assert_frame_equal(table, before)


def test_parquet_round_trip(tmp_path):
    csv = _write(tmp_path, SMALL)
    pq = tmp_path / "survey.parquet"
    pd.read_csv(csv, dtype={"id": str}).to_parquet(pq)
    kw = {"x": "E", "y": "N", "crs": "EPSG:32750", "id_column": "id", "units": "ppm"}
    a, b = xp.read_samples(csv, **kw), xp.read_samples(pq, **kw)
    ra, rb = xp.ingest_report(a), xp.ingest_report(b)
    assert (ra.pop("source"), rb.pop("source")) == ("survey.csv", "survey.parquet")
    assert (ra.pop("encoding"), rb.pop("encoding")) == ("utf-8-sig", None)
    assert ra == rb
    drop = {"ingest_report"}
    a.attrs = {k: v for k, v in a.attrs.items() if k not in drop}
    b.attrs = {k: v for k, v in b.attrs.items() if k not in drop}
    xr.testing.assert_identical(a, b)


def test_semicolon_and_dataframe_agree(tmp_path):
    path = _write(tmp_path, SMALL.replace(",", ";"), name="survey.txt")
    a = xp.read_samples(path, x="E", y="N", crs="EPSG:3857")
    b = xp.read_samples(
        pd.read_csv(_write(tmp_path, SMALL), dtype={"id": str}), x="E", y="N", crs="EPSG:3857"
    )
    xr.testing.assert_equal(a.drop_attrs(), b.drop_attrs())


def test_report_survives_zarr(tmp_path):
    ds = xp.read_samples(_write(tmp_path, SMALL), x="E", y="N", crs="EPSG:32750")
    ds.to_zarr(tmp_path / "s.zarr", consolidated=False)
    back = xr.open_zarr(tmp_path / "s.zarr", consolidated=False)
    assert xp.ingest_report(back) == xp.ingest_report(ds)
    assert json.loads(back.attrs["ingest_report"])["n_rows_read"] == 5
    assert back.rio.crs.to_epsg() == 32750


# ----------------------------------------------------------------------------- bad input


def test_missing_coordinate_column(tmp_path):
    path = _write(tmp_path, SMALL)
    with pytest.raises(DataError, match=r"'X' \(for x=\) is not in .*survey\.csv.*'E', 'N'"):
        xp.read_samples(path, x="X", y="N", crs="EPSG:3857")


def test_non_numeric_cell(tmp_path):
    text = "E,N,Cu_ppm\n0,0,5\n1,0,abc\n2,0,7\n3,0,1,5\n4,0,x\n"
    text = text.replace("1,5", '"1,5"')
    path = _write(tmp_path, text)
    with pytest.raises(
        DataError,
        match=r"column 'Cu_ppm' in .*survey\.csv has 3 non-numeric "
        r"values such as 'abc' \(row 2\)",
    ):
        xp.read_samples(path, x="E", y="N", crs="EPSG:3857")


def test_bad_coordinates(tmp_path):
    path = _write(tmp_path, "E,N,Cu_ppm\n0,0,5\n1,,6\n2,north,7\n")
    with pytest.raises(
        DataError,
        match=r"'N' \(y\) in .*survey\.csv has 2 missing or "
        r"non-numeric values.*row 2",
    ):
        xp.read_samples(path, x="E", y="N", crs="EPSG:3857")


def test_all_missing_element(tmp_path):
    path = _write(tmp_path, "E,N,Cu_ppm,Pt_ppb\n0,0,5,-9999\n1,0,6,\n")
    with pytest.raises(DataError, match=r"'Pt_ppb' in .*survey\.csv.*every value is missing"):
        xp.read_samples(path, x="E", y="N", crs="EPSG:3857", elements=["Cu", "Pt"])
    ds = xp.read_samples(path, x="E", y="N", crs="EPSG:3857")  # auto-detected: dropped
    assert list(ds.data_vars) == ["Cu"]
    assert xp.ingest_report(ds)["dropped_columns"] == ["Pt_ppb"]


def test_crs_required_and_valid(tmp_path):
    path = _write(tmp_path, SMALL)
    with pytest.raises(CRSError, match="crs= is required"):
        xp.read_samples(path, x="E", y="N")
    with pytest.raises(CRSError, match="crs= is required"):
        xp.read_samples(path, x="E", y="N", crs=None)
    with pytest.raises(CRSError, match="'EPSG:0' is not a valid"):
        xp.read_samples(path, x="E", y="N", crs="EPSG:0")
    with pytest.raises(CRSError, match="to_crs='nonsense'"):
        xp.read_samples(path, x="E", y="N", crs="EPSG:32750", to_crs="nonsense")
    # projected metres read as longitude/latitude
    with pytest.raises(CRSError, match=r"outside longitude/latitude.*row 1"):
        xp.read_samples(path, x="E", y="N", crs="EPSG:4326")


def test_bad_source(tmp_path):
    with pytest.raises(DataError, match="cannot tell the format"):
        xp.read_samples(tmp_path / "survey.xlsx", x="E", y="N", crs="EPSG:32750")
    with pytest.raises(FileNotFoundError, match=r"absent\.csv"):
        xp.read_samples(tmp_path / "absent.csv", x="E", y="N", crs="EPSG:32750")
    with pytest.raises(DataError, match="id_column 'ID' is not in"):
        xp.read_samples(_write(tmp_path, SMALL), x="E", y="N", crs="EPSG:32750", id_column="ID")
    with pytest.raises(DataError, match="no data rows"):
        xp.read_samples(
            _write(tmp_path, "E,N,Cu_ppm\n", "empty.csv"), x="E", y="N", crs="EPSG:32750"
        )


def test_ingest_report_needs_report():
    with pytest.raises(DataError, match="no ingest report"):
        xp.ingest_report(xr.Dataset())
