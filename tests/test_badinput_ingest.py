"""Bad input at every ingest door: each case names the exception and what its message names.

One table of cases across ``read_samples``, ``read_points``, ``read_drillholes`` and the grid
templates; each builds its input in a temporary folder, calls the reader and checks both the
exception type and that the message names the offending file, column, row or value. The
policies that turn some of these into a reported result are tested after the table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import xprospect as xp
from xprospect.exceptions import CRSError, DataError, GridError, MissingFileError, XProspectWarning
from xprospect.io import read_drillholes
from xprospect.io.points import read_points

HEAD = "E,N,Au_ppb,Cu_ppm\n"
OK_ROWS = "500000,6300000,5,10\n500100,6300100,7,12\n"
UTM = {"x": "E", "y": "N", "crs": "EPSG:32750"}


def _write(tmp_path, data, name="s.csv"):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def _samples(data, name="s.csv", **kw):
    def run(tmp_path):
        return xp.read_samples(_write(tmp_path, data, name), **(UTM | kw))

    return run


def _points(data, name="p.csv", **kw):
    def run(tmp_path):
        opts = {"x": "E", "y": "N", "crs": "EPSG:32750"} | kw
        return read_points(_write(tmp_path, data, name), **opts)

    return run


COLLAR = "hole_id,x,y,z,max_depth\nH1,500000,6400000,400,300\nH2,500200,6400000,400,200\n"


def _holes(collar=COLLAR, survey=None, **kw):
    def run(tmp_path):
        c = _write(tmp_path, collar, "collar.csv")
        s = None if survey is None else _write(tmp_path, survey, "survey.csv")
        opts = {"crs": "EPSG:32750", "length_unit": "m"} | kw
        return read_drillholes(c, s, **opts)

    return run


def _grid(bounds, resolution, **kw):
    def run(tmp_path):
        return xp.make_grid(bounds, resolution=resolution, crs="EPSG:32750", **kw)

    return run


CASES = [
    # --- read_samples: files that cannot be read as tables
    pytest.param(_samples(b""), DataError, ["s.csv", "empty"], id="samples-empty-file"),
    pytest.param(_samples(HEAD), DataError, ["s.csv", "no data rows"], id="samples-header-only"),
    pytest.param(
        _samples(HEAD + "500000,6300000,5,10\n500100,6300100,7,12,99\n"),
        DataError,
        ["s.csv", "row 2", "5 fields", "header has 4"],
        id="samples-ragged-row",
    ),
    pytest.param(
        _samples("E,N,Au_ppb,Site\n500000,6300000,5,Jos\xe9\n".encode("latin-1"), encoding="utf-8"),
        DataError,
        ["s.csv", "utf-8", "line 2"],
        id="samples-latin1-declared-utf8",
    ),
    pytest.param(
        _samples(HEAD + OK_ROWS, encoding="klingon"),
        DataError,
        ["klingon"],
        id="samples-unknown-encoding",
    ),
    pytest.param(
        _samples("E,N,Au_ppb,Au_ppb\n500000,6300000,5,10\n"),
        DataError,
        ["s.csv", "'Au_ppb'", "twice", "columns 3 and 4"],
        id="samples-duplicated-header",
    ),
    pytest.param(
        lambda tmp_path: xp.read_samples(tmp_path / "nope.csv", **UTM),
        MissingFileError,
        ["nope.csv"],
        id="samples-missing-file",
    ),
    # --- read_samples: non-finite concentrations
    pytest.param(
        _samples(HEAD + "500000,6300000,5,10\n500100,6300100,inf,12\n"),
        DataError,
        ["s.csv", "'Au_ppb'", "row 2", "'inf'"],
        id="samples-inf",
    ),
    pytest.param(
        _samples(HEAD + "500000,6300000,Infinity,10\n"),
        DataError,
        ["'Au_ppb'", "row 1", "'Infinity'"],
        id="samples-Infinity",
    ),
    pytest.param(
        _samples(HEAD + "500000,6300000,5,10\n500100,6300100,5,1e400\n"),
        DataError,
        ["'Cu_ppm'", "row 2", "1e400"],
        id="samples-1e400",
    ),
    pytest.param(
        _samples(HEAD + "500000,6300000,-inf,10\n"),
        DataError,
        ["'Au_ppb'", "row 1", "-inf"],
        id="samples-minus-inf-as-dl",
    ),
    pytest.param(
        _samples(HEAD + "500000,6300000,<inf,10\n"),
        DataError,
        ["'Au_ppb'", "row 1", "<inf"],
        id="samples-lt-inf",
    ),
    pytest.param(
        _samples("E,N,Fe2O3_pct\n500000,6300000,1\n500100,6300100,1e305\n", units="ppb"),
        DataError,
        ["'Fe2O3_pct'", "row 2", "overflows", "1e+305"],
        id="samples-unit-overflow",
    ),
    # --- read_samples: cells and coordinates
    pytest.param(
        _samples(HEAD + "500000,6300000,abc,10\n"),
        DataError,
        ["'Au_ppb'", "row 1", "'abc'"],
        id="samples-text-cell",
    ),
    pytest.param(
        _samples(HEAD + "500000,6300000,5,10\n,6300100,7,12\n"),
        DataError,
        ["'E'", "row 2"],
        id="samples-missing-coordinate",
    ),
    pytest.param(
        _samples(HEAD + "500000,inf,5,10\n"),
        DataError,
        ["'N'", "row 1", "inf"],
        id="samples-infinite-coordinate",
    ),
    pytest.param(
        _samples(HEAD + "500000,6300000,5,10\nabc,6300100,7,12\n", missing_coords="drop"),
        DataError,
        ["'E'", "row 2", "'abc'"],
        id="samples-drop-keeps-refusing-garbage",
    ),
    # --- read_samples: coordinates against the area of use
    pytest.param(
        _samples("lon,lat,Au_ppb\n117.5,-33.4,5\n117.6,-33.5,6\n", x="lon", y="lat"),
        CRSError,
        ["row 1", "117.5", "EPSG:32750", "longitude/latitude"],
        id="samples-lonlat-declared-utm",
    ),
    pytest.param(
        _samples(
            "lat,lon,Au_ppb\n-13.0,27.0,5\n-13.1,27.2,6\n",
            x="lat",
            y="lon",
            crs="EPSG:4326",
            to_crs="EPSG:32735",
        ),
        CRSError,
        ["row 1", "to_crs=EPSG:32735", "swap", "x='lon', y='lat'"],
        id="samples-swapped-lonlat-reprojected",
    ),
    pytest.param(
        _samples("E,N,Au_ppb\n6300000,400000,5\n", crs="EPSG:28350"),
        CRSError,
        ["row 1", "EPSG:28350", "swap"],
        id="samples-swapped-projected",
    ),
    pytest.param(
        _samples(
            "lon,lat,Au_ppb\n117.5,-33.4,5\n117.6,-133.5,6\n", x="lon", y="lat", crs="EPSG:4326"
        ),
        CRSError,
        ["row 2", "-133.5", "longitude/latitude"],
        id="samples-latitude-out-of-range",
    ),
    # --- read_samples: options
    pytest.param(
        _samples(HEAD + OK_ROWS, nonfinite="zero"),
        DataError,
        ["nonfinite", "'zero'"],
        id="samples-bad-nonfinite-option",
    ),
    pytest.param(
        _samples(HEAD + OK_ROWS, missing_coords="guess"),
        DataError,
        ["missing_coords", "'guess'"],
        id="samples-bad-missing-coords-option",
    ),
    pytest.param(
        _samples(HEAD + OK_ROWS, sentinels="maybe"),
        DataError,
        ["sentinels", "'maybe'"],
        id="samples-bad-sentinels-option",
    ),
    pytest.param(
        _samples(HEAD + OK_ROWS, units={"Zn": "ppm"}),
        DataError,
        ["'Zn'", "s.csv"],
        id="samples-units-mapping-unknown-column",
    ),
    pytest.param(
        _samples(HEAD + OK_ROWS, units={"Au_ppb": "kg"}),
        DataError,
        ["'Au_ppb'", "'kg'"],
        id="samples-units-mapping-bad-unit",
    ),
    pytest.param(
        lambda tmp_path: xp.read_samples(
            pd.DataFrame([[500000.0, 6.3e6, 1.0, 2.0]], columns=["E", "N", "Au_ppb", "Au_ppb"]),
            **UTM,
        ),
        DataError,
        ["'Au_ppb'", "twice"],
        id="samples-dataframe-duplicated-columns",
    ),
    # --- read_points
    pytest.param(_points(b""), DataError, ["p.csv", "empty"], id="points-empty-file"),
    pytest.param(
        _points("E,N\n500000,6300000\n500100,6300100,3\n"),
        DataError,
        ["p.csv", "row 2", "3 fields"],
        id="points-ragged-row",
    ),
    pytest.param(
        _points("E,N,E\n500000,6300000,1\n"),
        DataError,
        ["p.csv", "'E'", "twice"],
        id="points-duplicated-header",
    ),
    pytest.param(
        _points("E,N,id\n500000,6300000,D1\n500100,6300100,D2\n500200,6300200,D1\n", id="id"),
        DataError,
        ["p.csv", "'D1'", "row 3", "row 1"],
        id="points-duplicate-ids",
    ),
    pytest.param(
        _points("E,N,id\n500000,6300000,D1\n", id="id", duplicate_ids="merge"),
        DataError,
        ["duplicate_ids", "'merge'"],
        id="points-bad-duplicate-ids-option",
    ),
    pytest.param(
        _points("E,N\n117.5,-33.4\n"),
        CRSError,
        ["p.csv", "row 1", "117.5", "longitude/latitude"],
        id="points-lonlat-declared-utm",
    ),
    pytest.param(
        _points("lat,lon\n-13.0,27.0\n", x="lat", y="lon", crs="EPSG:4326", to_crs="EPSG:32735"),
        CRSError,
        ["row 1", "swap"],
        id="points-swapped-lonlat",
    ),
    pytest.param(
        _points("E,N\n500000,6300000\n500100,inf\n"),
        DataError,
        ["'N'", "row 2", "inf"],
        id="points-infinite-coordinate",
    ),
    pytest.param(
        _points("E,N\n500000,6300000\n", crs=None), DataError, ["crs="], id="points-no-crs"
    ),
    # --- read_drillholes
    pytest.param(
        _holes(
            survey="hole_id,depth,dip,azimuth\nH1,0,60,90\nH2,0,-60,90\n",
            dip_convention="negative-down",
        ),
        DataError,
        ["survey.csv", "'H1'", "60.0", "above", "rising_holes='allow'"],
        id="holes-rising-above-collar",
    ),
    pytest.param(
        _holes(collar="hole_id,x,x,z\nH1,500000,500000,400\n"),
        DataError,
        ["collar.csv", "'x'", "twice"],
        id="holes-duplicated-header",
    ),
    pytest.param(_holes(collar=b""), DataError, ["collar.csv", "empty"], id="holes-empty-collar"),
    pytest.param(
        _holes(survey="hole_id,depth,dip,azimuth\nH1,0,-60,90\nH1,50,-60,90,7\n"),
        DataError,
        ["survey.csv", "row 2"],
        id="holes-ragged-survey",
    ),
    pytest.param(
        _holes(survey="hole_id,depth,dip,azimuth\nH1,0,-60,90\n", rising_holes="no"),
        DataError,
        ["rising_holes", "'no'"],
        id="holes-bad-rising-option",
    ),
    # --- grid templates
    pytest.param(
        _grid((0.0, 0.0, 1e308, 1000.0), 10.0),
        GridError,
        ["1e+308", "along x"],
        id="grid-1e308-coordinate",
    ),
    pytest.param(
        _grid((0.0, 0.0, 1e6, 1e6), 1.0),
        GridError,
        ["1e+12 cells", "931 GiB", "chunks="],
        id="grid-931-GiB",
    ),
    pytest.param(
        _grid((0.0, math.nan, 100.0, 100.0), 1.0),
        GridError,
        ["finite", "nan"],
        id="grid-nan-bounds",
    ),
    pytest.param(
        lambda tmp_path: xp.make_voxels(
            (0, 0, 0, 1e5, 1e5, 1e5), resolution=1.0, crs="EPSG:32750", chunks=64
        ),
        GridError,
        ["1e+15 cells", "PiB", "lazy"],
        id="voxels-too-large-even-lazy",
    ),
]


@pytest.mark.parametrize(("call", "error", "names"), CASES)
def test_bad_input_is_refused_by_name(tmp_path, call, error, names):
    with pytest.raises(error) as info:
        call(tmp_path)
    msg = str(info.value)
    missing = [n for n in names if n not in msg]
    assert not missing, f"message lacks {missing}: {msg}"


def test_enough_cases():
    assert len(CASES) >= 30


# ----------------------------------------------------------------------------- policies


def test_na_like_text_stays_text(tmp_path):
    text = (
        "E,N,Au_ppb,country,code,note\n500000,6300000,5,NA,NULL,None\n500100,6300100,NA,ZA,007,\n"
    )
    ds = xp.read_samples(_write(tmp_path, text), **UTM)
    assert ds["country"].values.tolist() == ["NA", "ZA"]
    assert ds["code"].values.tolist() == ["NULL", "007"]
    assert ds["note"].values.tolist() == ["None", ""]
    assert np.isnan(ds["Au"].values[1])  # in a numeric column NA is missing


def test_points_text_columns_keep_na(tmp_path):
    text = "E,N,id,country\n500000,6300000,D1,NA\n500100,6300100,NULL,BW\n"
    pts = read_points(_write(tmp_path, text, "p.csv"), x="E", y="N", crs="EPSG:32750", id="id")
    assert pts["point_id"].values.tolist() == ["D1", "NULL"]
    assert pts["country"].values.tolist() == ["NA", "BW"]


def test_latin1_read_and_reported(tmp_path):
    data = "E,N,Au_ppb,Site\n500000,6300000,5,Jos\xe9\n".encode("latin-1")
    ds = xp.read_samples(_write(tmp_path, data), **UTM)
    assert ds["Site"].values.tolist() == ["Jos\xe9"]
    assert xp.ingest_report(ds)["encoding"] == "cp1252"
    ds = xp.read_samples(_write(tmp_path, data), encoding="latin-1", **UTM)
    assert xp.ingest_report(ds)["encoding"] == "latin-1"


def test_sentinel_policy():
    table = pd.DataFrame(
        {
            "E": 500000.0 + np.arange(6),
            "N": 6.3e6,
            "Au_ppb": [-99.0, -1.0, 5.0, 12.0, -99999.0, 8.0],
            "Cu_ppm": [9999.0, 10.0, 20.0, 30.0, -500.0, 15.0],
        }
    )
    ds = xp.read_samples(table, **UTM)
    rep = xp.ingest_report(ds)
    np.testing.assert_array_equal(ds["Au"].values, [np.nan, 0.5, 5.0, 12.0, np.nan, 8.0])
    # 9999 is far above Cu's values (an over-range code); -500 is a "DL" 16x the largest value
    np.testing.assert_array_equal(ds["Cu"].values, [np.nan, 10.0, 20.0, 30.0, np.nan, 15.0])
    assert rep["columns"]["Au_ppb"]["implausible_dl"] == 2
    assert rep["columns"]["Cu_ppm"]["over_range"] == 1
    assert rep["columns"]["Cu_ppm"]["implausible_dl"] == 1
    assert "all nines" in rep["sentinel_policy"]
    off = xp.read_samples(table, sentinels="none", **UTM)
    assert off["Au"].values[0] == 49.5 and xp.ingest_report(off)["sentinel_policy"] == "off"
    named = xp.read_samples(table, sentinels=[-99], **UTM)
    assert np.isnan(named["Au"].values[0]) and named["Au"].values[4] == 49999.5
    assert xp.ingest_report(named)["sentinel_codes"] == [-99.0]


def test_nonfinite_missing_policy(tmp_path):
    ds = xp.read_samples(
        _write(tmp_path, HEAD + "500000,6300000,inf,10\n500100,6300100,5,1\n"),
        nonfinite="missing",
        **UTM,
    )
    assert np.isnan(ds["Au"].values[0])
    assert xp.ingest_report(ds)["columns"]["Au_ppb"]["nonfinite"] == 1


def test_oxides_stray_index_and_roles(tmp_path):
    text = (
        ",E,N,SiO2,Al2O3,Fe2O3,MgO,CaO,TiO2,Depth\n"
        "0,500000,6300000,60.1,15.2,5.5,2.1,3.3,0.6,1.5\n"
        "1,500100,6300100,58.0,14.9,6.1,2.4,3.0,0.7,2.0\n"
    )
    ds = xp.read_samples(_write(tmp_path, text), **UTM)
    rep = xp.ingest_report(ds)
    assert {"SiO2", "Al2O3", "Fe2O3", "MgO", "CaO", "TiO2"} <= set(ds.data_vars)
    assert ds["SiO2"].attrs["units"] == "pct"
    assert "wt%" in rep["assumed_units"]["SiO2"]
    assert rep["ignored_columns"] == ["Unnamed: 0"]
    assert "index" in rep["ignored_reasons"]["Unnamed: 0"]
    assert "Unnamed: 0" not in ds.coords
    assert rep["column_roles"] == {
        "Unnamed: 0": "ignored",
        "E": "coordinate",
        "N": "coordinate",
        "SiO2": "element",
        "Al2O3": "element",
        "Fe2O3": "element",
        "MgO": "element",
        "CaO": "element",
        "TiO2": "element",
        "Depth": "metadata",
    }


def test_units_mapping(tmp_path):
    text = "E,N,Au_ppb,Cu_ppm,Zn\n500000,6300000,5,10,30\n500100,6300100,7,12,40\n"
    ds = xp.read_samples(
        _write(tmp_path, text),
        elements=["Au_ppb", "Cu_ppm", "Zn"],
        units={"Au": "ppm", "Zn": "ppm"},
        **UTM,
    )
    np.testing.assert_allclose(ds["Au"].values, [0.005, 0.007])
    assert ds["Au"].attrs["units"] == "ppm" and ds["Cu"].attrs["units"] == "ppm"
    assert ds["Zn"].attrs["units"] == "ppm"  # declared: the column has no suffix
    np.testing.assert_array_equal(ds["Zn"].values, [30.0, 40.0])


def test_missing_coords_drop(tmp_path):
    text = HEAD + "500000,6300000,5,10\n,6300100,7,12\n500200,NA,8,13\n500300,6300300,9,14\n"
    ds = xp.read_samples(_write(tmp_path, text), missing_coords="drop", **UTM)
    assert ds["row"].values.tolist() == [1, 4]
    np.testing.assert_array_equal(ds["Au"].values, [5.0, 9.0])
    assert xp.ingest_report(ds)["n_rows_without_coords"] == 2


def test_duplicate_point_ids_keep_and_first(tmp_path):
    text = "E,N,id\n500000,6300000,D1\n500100,6300100,D2\n500200,6300200,D1\n"
    path = _write(tmp_path, text, "p.csv")
    with pytest.warns(XProspectWarning, match="row 3 repeats 'D1'"):
        kept = read_points(path, x="E", y="N", crs="EPSG:32750", id="id", duplicate_ids="keep")
    assert kept.sizes["point"] == 3 and kept.attrs["n_duplicate_ids"] == 1
    with pytest.warns(XProspectWarning):
        first = read_points(path, x="E", y="N", crs="EPSG:32750", id="id", duplicate_ids="first")
    assert first["point_id"].values.tolist() == ["D1", "D2"]
    np.testing.assert_array_equal(first["x"].values, [500000.0, 500100.0])


def test_rising_holes_allowed_and_reported(tmp_path):
    holes = _holes(
        survey="hole_id,depth,dip,azimuth\nH1,0,60,90\nH2,0,-60,90\n",
        dip_convention="negative-down",
        rising_holes="allow",
    )(tmp_path)
    assert holes.report["holes_rising_above_collar"] == ["H1"]
    down = _holes(
        survey="hole_id,depth,dip,azimuth\nH1,0,60,90\nH2,0,60,90\n", dip_convention="positive-down"
    )(tmp_path)
    assert down.report["holes_rising_above_collar"] == []


def test_crs_mismatch_message_reads():
    grid = xp.make_grid((500000, 6300000, 501000, 6301000), resolution=100, crs="EPSG:32750")
    pts = read_points(
        pd.DataFrame({"lon": [117.0], "lat": [-33.0]}), x="lon", y="lat", crs="EPSG:4326"
    )
    from xprospect.points import point_coords

    with pytest.raises(CRSError) as info:
        point_coords(pts, grid)
    assert "the points is in" not in str(info.value)
    assert "the points: CRS EPSG:4326" in str(info.value)


def test_bare_element_columns_with_text_cells_are_elements_not_metadata(tmp_path):
    """A bare ``Au`` column holding ``<0.5`` or one typo was not numeric, so it was read as
    metadata and left out of the maps without a word; beside a bare oxide (``SiO2``, a known
    analyte) every bare element column was left out."""
    table = pd.DataFrame(
        {
            "x": [500000.0, 501000.0, 502000.0],
            "y": [6.2e6, 6.2e6, 6.201e6],
            "Au": ["1.0", "<0.5", "3"],
            "Cu": [4.0, 5.0, 6.0],
            "SiO2": [60.0, 61.0, 62.0],
            "C": ["granite", "schist", "granite"],  # an element symbol holding words: metadata
        }
    )
    table.to_csv(tmp_path / "s.csv", index=False)
    ds = xp.read_samples(tmp_path / "s.csv", x="x", y="y", crs="EPSG:32750")
    assert list(ds.data_vars) == ["Au", "Cu", "SiO2"]
    np.testing.assert_allclose(ds["Au"].values, [1.0, 0.25, 3.0])  # bdl="half" of <0.5
    report = xp.ingest_report(ds)
    assert report["column_roles"]["C"] == "metadata"
    assert "unit unknown" in report["assumed_units"]["Au"]
    table.loc[1, "Au"] = "abc"
    table.to_csv(tmp_path / "typo.csv", index=False)
    with pytest.raises(xp.DataError, match=r"column 'Au' in .*typo.csv.*'abc' \(row 2\)"):
        xp.read_samples(tmp_path / "typo.csv", x="x", y="y", crs="EPSG:32750")
    with pytest.raises(xp.DataError, match=r"'Zz' .*analyte columns: \['Au', 'Cu', 'SiO2', 'C'\]"):
        xp.read_samples(tmp_path / "s.csv", x="x", y="y", crs="EPSG:32750", elements=["Zz"])


@pytest.mark.parametrize("query", ["known ==", "grade > 1", "site"])
def test_a_bad_points_query_names_the_file_and_the_query(tmp_path, query):
    """A query with a syntax error or an unknown column was a raw pandas/SyntaxError."""
    path = _write(tmp_path, "x,y,site\n500000,6300000,A\n500100,6300100,B\n", "d.csv")
    with pytest.raises(
        DataError,
        match=rf"d.csv: query={query!r} cannot select rows .*"
        r"columns are \['x', 'y', 'site'\]",
    ):
        read_points(path, crs="EPSG:32750", query=query)
