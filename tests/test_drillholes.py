"""Drillholes: ingest policies, desurvey against exact and published answers, compositing,
distance masking and block-model outputs."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import xprospect as xp
from xprospect.evidence.proximity import distance_to_samples, mask_distance, sampling_density
from xprospect.exceptions import DataError, GridError
from xprospect.io import (
    composite,
    desurvey,
    desurvey_points,
    plot_slices,
    read_drillholes,
    to_block_csv,
    to_vtk,
)
from xprospect.io.blockmodel import section_profile, vtk_arrays
from xprospect.testing import assert_georef_equal, raise_if_dask_computes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_bench"))

from benchmarks import drillholes as bdh

CRS = "EPSG:28350"
METHODS = ["minimum_curvature", "tangent", "balanced_tangent"]


def _collar(ids=("A",), x=500_000.0, y=6_400_000.0, z=400.0, **extra):
    n = len(ids)
    d = {"hole_id": list(ids), "x": [x + 100 * i for i in range(n)], "y": [y] * n, "z": [z] * n}
    d.update(extra)
    return pd.DataFrame(d)


def _survey(hole, depths, dips, azs):
    n = len(depths)
    return pd.DataFrame({"hole_id": [hole] * n, "depth": depths, "dip": dips, "azimuth": azs})


def _direction(dip, az):
    d, a = math.radians(dip), math.radians(az)
    return np.array([math.cos(d) * math.sin(a), math.cos(d) * math.cos(a), math.sin(d)])


# ---- desurvey: exact answers ------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_straight_inclined_hole_is_exact(method):
    holes = read_drillholes(
        _collar(), _survey("A", [0, 50, 100], [-60] * 3, [30] * 3), crs=CRS, length_unit="m"
    )
    depths = np.array([0.0, 10.0, 49.0, 75.5, 100.0, 150.0])
    got = desurvey_points(holes, ["A"] * depths.size, depths, method=method)
    want = np.array([500_000.0, 6_400_000.0, 400.0]) + depths[:, None] * _direction(-60, 30)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def _arc_holes(radius=400.0, inc0=10.0, az=45.0, step=30.0, n=12):
    """Stations on a circular arc in the vertical plane of azimuth ``az``: I = I0 + md / R."""
    md = np.arange(n) * step
    inc = inc0 + np.degrees(md / radius)
    return read_drillholes(
        _collar(x=0.0, y=0.0, z=0.0),
        _survey("A", md, -(90.0 - inc), [az] * n),
        crs=CRS,
        length_unit="m",
        dip_convention="negative-down",
    ), md


def _arc_exact(depth, radius=400.0, inc0=10.0, az=45.0):
    i0, i = math.radians(inc0), math.radians(inc0) + depth / radius
    h = radius * (np.cos(i0) - np.cos(i))  # horizontal displacement
    v = radius * (np.sin(i) - np.sin(i0))  # vertical depth
    a = math.radians(az)
    return np.column_stack([h * math.sin(a), h * math.cos(a), -v])


def test_constant_curvature_arc_is_exact_with_minimum_curvature():
    holes, md = _arc_holes()
    depths = np.linspace(0, md[-1], 97)  # stations and points between them
    got = desurvey_points(holes, ["A"] * depths.size, depths)
    np.testing.assert_allclose(got, _arc_exact(depths), rtol=0, atol=1e-6)


def test_tangent_is_biased_on_arcs_and_identical_on_straight_holes():
    holes, md = _arc_holes()
    d = np.array([md[-1]])
    exact = _arc_exact(d)[0]
    mc = desurvey_points(holes, ["A"], d)[0]
    tan = desurvey_points(holes, ["A"], d, method="tangent")[0]
    bal = desurvey_points(holes, ["A"], d, method="balanced_tangent")[0]
    # the tangent holds the upper (steeper) direction: too deep, not far enough out
    assert np.linalg.norm(tan - exact) > 1.0
    assert tan[2] < exact[2] and np.hypot(*tan[:2]) < np.hypot(*exact[:2])
    # balanced tangent is second order: much closer, still not exact
    assert 1e-4 < np.linalg.norm(bal - exact) < np.linalg.norm(tan - exact) / 10
    assert np.linalg.norm(mc - exact) < 1e-6
    straight = read_drillholes(
        _collar(), _survey("A", [0, 40, 80], [-70] * 3, [300] * 3), crs=CRS, length_unit="m"
    )
    q = np.array([5.0, 55.0, 120.0])
    ref = desurvey_points(straight, ["A"] * 3, q)
    for m in METHODS[1:]:
        np.testing.assert_allclose(
            desurvey_points(straight, ["A"] * 3, q, method=m), ref, atol=1e-9
        )


def test_published_minimum_curvature_example():
    # Lapeyrouse, N. J. (2002) "Formulas and Calculations for Drilling, Production and
    # Workover", 2nd ed., Gulf Professional Publishing, directional-survey section, as worked at
    # drillingformulas.com/minimum-curvature-method: station 1 at MD 3500 ft, inclination 15,
    # azimuth 20; station 2 at MD 3600 ft, inclination 25, azimuth 45 -> dogleg 0.22605 rad
    # (12.95 deg), RF 1.00408, North 27.22 ft, East 19.45 ft, TVD 94.01 ft. (The page's RF
    # is a misprint: 2 / b * tan(b / 2) at b = 0.22605 is 1.00428, and only 1.00428 gives the
    # published North/East/TVD, which are reproduced here to their 0.01 ft.)
    holes = read_drillholes(
        _collar(x=2_000_000.0, y=7_000_000.0, z=1000.0),
        _survey("A", [3500.0, 3600.0], [-(90 - 15.0), -(90 - 25.0)], [20.0, 45.0]),
        crs="EPSG:2276",
        length_unit="ftUS",
    )  # NAD83 Texas North Central, US survey feet
    p = desurvey_points(holes, ["A", "A"], np.array([3500.0, 3600.0]) * 1200 / 3937)
    d_east, d_north, d_up = p[1] - p[0]
    assert d_north == pytest.approx(27.22, abs=0.01)
    assert d_east == pytest.approx(19.45, abs=0.01)
    assert -d_up == pytest.approx(94.01, abs=0.01)
    from xprospect.io._desurvey_kernels import _dogleg, _ratio_factor

    t1, t2 = _direction(-75, 20), _direction(-65, 45)
    b = _dogleg(*t1, *t2)
    assert b == pytest.approx(0.22605, abs=1e-5)
    assert _ratio_factor(b) == pytest.approx(1.00428, abs=1e-5)


def test_desurvey_matches_per_hole_python_peer():
    tables = bdh.make_tables(n_holes=6, n_stations=25, seed=3)
    holes = read_drillholes(*tables, crs=CRS, length_unit="m", dip_convention="negative-down")
    ours = desurvey(holes)
    peer = bdh.peer_desurvey(*tables)
    np.testing.assert_allclose(np.column_stack([ours.x, ours.y, ours.z]), peer, atol=1e-6)
    comp = composite(holes, length=2.0, min_coverage=0.0)
    pc = bdh.peer_composite(*tables)
    np.testing.assert_allclose(
        np.column_stack([comp.x, comp.y, comp.z, comp.Cu, comp.Ni]), pc, rtol=1e-9, atol=1e-6
    )


def test_interval_dataset_layout_and_grid_idw():
    holes = read_drillholes(
        _collar(["A", "B"]),
        pd.concat([_survey("A", [0, 100], [-60, -65], [90, 95]), _survey("B", [0], [-90], [0])]),
        pd.DataFrame(
            {
                "hole_id": ["A", "A", "B"],
                "from": [0, 5, 0],
                "to": [5, 10, 8],
                "Au_ppb": ["<1", 12, 30],
                "Cu_pct": [0.1, 0.2, "-0.01"],
            }
        ),
        crs=CRS,
        length_unit="m",
    )
    ds = desurvey(holes)
    assert ds.sizes["sample"] == 3
    for c in ("x", "y", "z", "x_from", "z_to", "hole_id", "depth_from", "depth_to", "length"):
        assert c in ds.coords
    assert ds.rio.crs.to_epsg() == 28350
    assert ds["Au"].attrs["units"] == "ppb" and ds["Cu"].attrs["units"] == "pct"
    assert ds["Au"].values[0] == 0.5 and ds["Cu"].values[2] == 0.005
    np.testing.assert_allclose(ds["z"], 0.5 * (ds["z_from"] + ds["z_to"]), atol=0.01)
    assert xp.ingest_report(ds)["n_holes"] == 2
    vox = xp.make_voxels(like=ds, resolution=5, pad=5)
    block = ds.prospect.idw(like=vox, k=2)
    assert_georef_equal(block, vox)
    assert np.isfinite(block["Au"].values).all()


# ---- ingest policies ---------------------------------------------------------------------------


def test_feet_and_positive_down_match_metres_and_negative_down():
    ft = 0.3048
    col = _collar(z=1000.0)
    a = read_drillholes(
        col,
        _survey("A", [0, 300], [-60, -70], [10, 20]),
        pd.DataFrame({"hole_id": ["A"], "from": [100.0], "to": [110.0], "Ni_ppm": [5.0]}),
        crs=CRS,
        length_unit="m",
    )
    b = read_drillholes(
        col,
        _survey("A", [0, 300 / ft], [60, 70], [10, 20]),
        pd.DataFrame({"hole_id": ["A"], "from": [100 / ft], "to": [110 / ft], "Ni_ppm": [5.0]}),
        crs=CRS,
        length_unit="ft",
    )
    assert b.report["length_factor_to_m"] == ft
    assert b.report["survey"]["dip_convention"] == "positive-down"
    assert b.report["survey"]["dip_convention_inferred"] is True
    da_, db = desurvey(a), desurvey(b)
    for c in ("x", "y", "z", "depth_from", "depth_to"):
        np.testing.assert_allclose(db[c], da_[c], atol=1e-6)


def test_required_and_bad_options():
    with pytest.raises(DataError, match="length_unit= is required"):
        read_drillholes(_collar(), crs=CRS)
    with pytest.raises(xp.CRSError, match="geographic"):
        read_drillholes(_collar(), crs="EPSG:4326", length_unit="m")
    with pytest.raises(DataError, match="overlaps must be one of"):
        read_drillholes(_collar(), crs=CRS, length_unit="m", overlaps="merge")
    with pytest.raises(DataError, match="no column for 'x'"):
        read_drillholes(_collar().rename(columns={"x": "easting_mga"}), crs=CRS, length_unit="m")
    ok = read_drillholes(
        _collar().rename(columns={"x": "easting_mga"}),
        crs=CRS,
        length_unit="m",
        columns={"x": "easting_mga"},
    )
    assert ok.report["collar"]["columns"]["x"] == "easting_mga"


def test_mixed_dip_signs_need_a_convention():
    sv = pd.concat([_survey("A", [0, 50], [-60, 30], [0, 0])])
    with pytest.raises(DataError, match=r"dip convention.*hole 'A' at depth 50"):
        read_drillholes(_collar(), sv, crs=CRS, length_unit="m")
    with pytest.raises(DataError, match=r"dips outside \[-90, 90\].*hole 'A' at depth 50"):
        read_drillholes(
            _collar(), _survey("A", [0, 50], [-60, -95], [0, 0]), crs=CRS, length_unit="m"
        )


def test_sentinel_survey_rows_are_dropped_and_reported():
    sv = _survey("A", [0, 100, 90000], [-60, -62, -10], [0, 0, 180])
    h = read_drillholes(_collar(), sv, crs=CRS, length_unit="ft")
    r = h.report["survey"]
    assert r["sentinel_rows_dropped"] == 1 and r["sentinel_holes"] == ["A"]
    assert h.survey["depth"].max() == pytest.approx(100 * 0.3048)
    json.dumps(h.report)  # JSON-able


@pytest.mark.parametrize("policy", ["error", "first", "last", "mean"])
def test_duplicate_survey_depths(policy):
    sv = _survey("A", [0, 50, 50], [-60, -60, -70], [0, 10, 10])
    if policy == "error":
        with pytest.raises(DataError, match=r"hole 'A' at depth 50.0"):
            read_drillholes(_collar(), sv, crs=CRS, length_unit="m")
        return
    h = read_drillholes(_collar(), sv, crs=CRS, length_unit="m", duplicate_survey=policy)
    assert h.report["survey"]["duplicate_depth_rows"] == 2
    row = h.survey[h.survey["depth"] == 50.0]
    assert len(row) == 1
    want = {"first": -60.0, "last": -70.0, "mean": -65.0}[policy]
    assert row["dip"].iloc[0] == pytest.approx(want, abs=1e-9)


def _assay(rows):
    return pd.DataFrame(rows, columns=["hole_id", "from", "to", "Cu_ppm"])


def test_overlap_policies():
    rows = [("A", 0, 2, 10.0), ("A", 2, 5, 20.0), ("A", 4, 6, 30.0), ("A", 6, 8, 40.0)]
    with pytest.raises(DataError, match=r"hole 'A' from 4.0 to 6.0 \(row 3\)"):
        read_drillholes(_collar(), assay=_assay(rows), crs=CRS, length_unit="m")
    k = read_drillholes(
        _collar(), assay=_assay(rows), crs=CRS, length_unit="m", overlaps="keep-first"
    )
    assert k.assay["from"].tolist() == [0, 2, 6] and k.report["assay"]["n_overlapping"] == 1
    t = read_drillholes(
        _collar(), assay=_assay(rows), crs=CRS, length_unit="m", overlaps="truncate"
    )
    assert t.assay["from"].tolist() == [0, 2, 5, 6]
    assert t.assay["Cu"].tolist() == [10, 20, 30, 40]


def test_gaps_and_bad_intervals():
    h = read_drillholes(
        _collar(), assay=_assay([("A", 0, 2, 1.0), ("A", 5, 6, 2.0)]), crs=CRS, length_unit="m"
    )
    assert h.report["assay"]["n_gaps"] == 1
    assert h.report["assay"]["gap_length_m"] == pytest.approx(3.0)
    with pytest.raises(DataError, match=r"to <= from.*hole 'A' from 7.0 to 6.0"):
        read_drillholes(_collar(), assay=_assay([("A", 7.0, 6.0, 1.0)]), crs=CRS, length_unit="m")


@pytest.mark.parametrize("policy", ["error", "truncate", "drop", "extend"])
def test_past_end_of_hole(policy):
    col = _collar(max_depth=[5.0])
    rows = [("A", 0, 3, 1.0), ("A", 3, 7, 2.0), ("A", 7, 9, 3.0)]
    if policy == "error":
        with pytest.raises(DataError, match=r"past the end.*hole 'A' to depth 7.0 beyond .*5.0"):
            read_drillholes(col, assay=_assay(rows), crs=CRS, length_unit="m")
        return
    h = read_drillholes(col, assay=_assay(rows), crs=CRS, length_unit="m", past_end=policy)
    assert h.report["assay"]["n_past_end"] == 2
    to = h.assay["to"].tolist()
    assert to == {"truncate": [3, 5], "drop": [3], "extend": [3, 7, 9]}[policy]
    assert h.collar["end_depth"].iloc[0] == (9.0 if policy == "extend" else 5.0)


def test_holes_missing_from_collar_are_named():
    rows = [("A", 0, 1, 1.0), ("ZZ9", 0, 1, 2.0)]
    with pytest.raises(DataError, match=r"not in the collar table: \['ZZ9'\]"):
        read_drillholes(_collar(), assay=_assay(rows), crs=CRS, length_unit="m")
    h = read_drillholes(
        _collar(), assay=_assay(rows), crs=CRS, length_unit="m", missing_collar="drop"
    )
    assert h.report["assay"]["holes_not_in_collar"] == ["ZZ9"] and len(h.assay) == 1


def test_holes_without_survey_are_vertical_and_reported():
    h = read_drillholes(
        _collar(["A", "B"]),
        _survey("A", [0], [-60], [90]),
        assay=_assay([("B", 0, 10, 1.0)]),
        crs=CRS,
        length_unit="m",
    )
    assert h.report["holes_without_survey"] == ["B"]
    ds = desurvey(h)
    assert float(ds.x[0]) == float(h.collar.x[1]) and float(ds.z[0]) == 395.0
    with pytest.raises(DataError, match=r"no survey rows: \['B'\]"):
        read_drillholes(
            _collar(["A", "B"]),
            _survey("A", [0], [-60], [90]),
            crs=CRS,
            length_unit="m",
            no_survey="error",
        )


def test_csv_files_keep_text_ids_and_name_the_file(tmp_path):
    col = tmp_path / "collar.csv"
    _collar(["007", "B"]).to_csv(col, index=False)
    asy = tmp_path / "assay.csv"
    _assay([("007", 0, 1, 1.0), ("007", 1, "x", 2.0)]).to_csv(asy, index=False)
    with pytest.raises(DataError, match=r"assay.csv.*'x' in hole '007' at row 2"):
        read_drillholes(col, assay=asy, crs=CRS, length_unit="m")
    _assay([("007", 0, 1, 1.0)]).to_csv(asy, index=False)
    h = read_drillholes(col, assay=asy, crs=CRS, length_unit="m")
    assert h.hole_ids == ["007", "B"] and h.report["assay"]["source"] == "assay.csv"


def test_lithology_labels_are_carried_by_majority():
    lith = pd.DataFrame(
        {"hole_id": ["A"] * 2, "from": [0.0, 3.5], "to": [3.5, 10.0], "rock": ["basalt", "ore"]}
    )
    h = read_drillholes(
        _collar(),
        assay=_assay([("A", 0, 2, 1.0), ("A", 2, 4, 2.0), ("A", 4, 6, 3.0)]),
        lithology=lith,
        crs=CRS,
        length_unit="m",
    )
    ds = desurvey(h)
    assert ds["rock"].values.tolist() == ["basalt", "basalt", "ore"]
    lith_ds = desurvey(h, table="lithology")
    assert lith_ds.sizes["sample"] == 2 and "rock" in lith_ds.coords


# ---- compositing -------------------------------------------------------------------------------


@st.composite
def _hole_tables(draw):
    n_holes = draw(st.integers(1, 3))
    rows = []
    for i in range(n_holes):
        depth = draw(st.floats(0, 5))
        for _ in range(draw(st.integers(1, 12))):
            if draw(st.booleans()) and draw(st.booleans()):
                depth += draw(st.floats(0.1, 3))  # a gap
            ln = draw(st.floats(0.05, 4))
            v = draw(st.one_of(st.none(), st.floats(0, 1000)))
            rows.append((f"H{i}", depth, depth + ln, v))
            depth += ln
    return _collar([f"H{i}" for i in range(n_holes)]), _assay(rows)


@settings(max_examples=40, deadline=None)
@given(tables=_hole_tables(), length=st.sampled_from([0.7, 1.0, 2.0, 5.0]))
def test_composite_conserves_length_weighted_content(tables, length):
    col, asy = tables
    assume(asy["Cu_ppm"].notna().any())
    h = read_drillholes(col, assay=asy, crs=CRS, length_unit="m")
    comp = composite(h, length=length, min_coverage=0.0, dropna=False)
    a = h.assay.assign(w=h.assay["Cu"] * (h.assay["to"] - h.assay["from"]))
    want = a.groupby("hole_id")["w"].sum()
    clen_cu = np.zeros(comp.sizes["sample"])
    # analysed length per composite: recompute from intervals to weight the composite value
    for i, (hid, f, t) in enumerate(
        zip(comp.hole_id.values, comp.depth_from.values, comp.depth_to.values, strict=True)
    ):
        sub = a[(a.hole_id == hid) & a.Cu.notna()]
        clen_cu[i] = np.clip(np.minimum(sub["to"], t) - np.maximum(sub["from"], f), 0, None).sum()
    got = pd.Series(np.nan_to_num(comp["Cu"].values) * clen_cu).groupby(comp.hole_id.values).sum()
    np.testing.assert_allclose(got.reindex(want.index).fillna(0), want, rtol=1e-9, atol=1e-9)
    # composites never straddle a gap and stay within the hole's intervals
    total = (h.assay["to"] - h.assay["from"]).sum()
    assert comp["length"].sum() == pytest.approx(total)


def test_composite_lengths_residuals_gaps_and_coverage():
    rows = [("A", 0, 3, 1.0), ("A", 3, 5.5, 3.0), ("A", 8, 9, None), ("A", 9, 12, 5.0)]
    h = read_drillholes(_collar(), assay=_assay(rows), crs=CRS, length_unit="m")
    c = composite(h, length=2.0, min_coverage=0.5, dropna=False)
    # run 0-5.5: 0-2, 2-4, 4-5.5 (residual 1.5 >= 1 kept); run 8-12: 8-10, 10-12
    assert c.depth_from.values.tolist() == [0, 2, 4, 8, 10]
    assert c.depth_to.values.tolist() == [2, 4, 5.5, 10, 12]
    np.testing.assert_allclose(c["Cu"].values, [1.0, 2.0, 3.0, 5.0, 5.0])  # 8-10: 1 m of 2 m
    c2 = composite(h, length=2.0, min_coverage=0.8, dropna=False)
    assert c2.depth_to.values.tolist() == [2, 5.5, 10, 12]  # 1.5 < 1.6 merged upwards
    assert np.isnan(c2["Cu"].values[2])  # 8-10 has 1 m of 2 m analysed < 80 %
    rep = json.loads(c2.attrs["composite_report"])
    assert rep["n_merged_residuals"] == 1 and rep["nan_by_coverage"]["Cu"] == 1


def test_composite_by_domain_and_labels():
    lith = pd.DataFrame(
        {"hole_id": ["A"] * 2, "from": [0.0, 3.0], "to": [3.0, 8.0], "rock": ["waste", "ore"]}
    )
    rows = [("A", i, i + 1, float(i + 1)) for i in range(8)]
    h = read_drillholes(_collar(), assay=_assay(rows), lithology=lith, crs=CRS, length_unit="m")
    plain = composite(h, length=2.0, min_coverage=0.0)
    assert plain.depth_from.values.tolist() == [0, 2, 4, 6]
    assert plain["rock"].values.tolist() == ["waste", "waste", "ore", "ore"]  # 2-4 ties: first
    dom = composite(h, length=2.0, by="rock", min_coverage=0.0)
    assert dom.depth_from.values.tolist() == [0, 2, 3, 5, 7]
    assert dom["rock"].values.tolist() == ["waste", "waste", "ore", "ore", "ore"]
    np.testing.assert_allclose(dom["Cu"].values, [1.5, 3.0, 4.5, 6.5, 8.0])
    with pytest.raises(DataError, match="by='lith'"):
        composite(h, by="lith")


def test_old_drillhole_doors_warn_and_agree():
    # one door per operation: holes.prospect.* and holes.desurvey/composite are aliases
    h = read_drillholes(
        _collar(), assay=_assay([("A", 0, 1, 1.0), ("A", 1, 2, 2.0)]), crs=CRS, length_unit="m"
    )
    with pytest.warns(FutureWarning, match=r"xprospect\.composite\(holes"):
        old = h.prospect.composite(length=2.0)
    assert old.identical(composite(h, length=2.0))
    with pytest.warns(FutureWarning, match=r"xprospect\.desurvey\(holes"):
        old = h.desurvey()
    assert old.identical(desurvey(h))
    with pytest.warns(FutureWarning, match="holes.composite"):
        h.composite(length=2.0)


def test_composite_of_dataset_matches_drillholes_and_accessor():
    h = read_drillholes(
        _collar(),
        _survey("A", [0, 50], [-55, -55], [120, 120]),
        _assay([("A", i, i + 1.5, float(i)) for i in np.arange(0, 30, 1.5)]),
        crs=CRS,
        length_unit="m",
    )
    a = composite(h, length=4.0)
    b = desurvey(h).prospect.composite(length=4.0)
    for c in ("x", "y", "z", "x_to", "z_from", "depth_from", "depth_to"):
        np.testing.assert_allclose(b[c], a[c], atol=1e-6)
    np.testing.assert_allclose(b["Cu"], a["Cu"])
    assert b.rio.crs == a.rio.crs


# ---- masking and outputs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def block():
    tables = bdh.make_tables(n_holes=8, n_stations=10, seed=1)
    tables[1]["depth"] *= 0.5  # 45 m holes
    tables = (tables[0], tables[1], tables[2][tables[2]["to"] <= 45])
    h = read_drillholes(*tables, crs=CRS, length_unit="m", dip_convention="negative-down")
    s = composite(h, length=5.0)
    bounds = (500_000, 6_400_000, 300, 510_000, 6_410_000, 420)
    vox = xp.make_voxels(bounds, resolution=(40, 1000, 1000), crs=CRS)
    return s, s.prospect.idw(like=vox, k=4)


@pytest.mark.parametrize("chunks", [None, (2, 5, 7)])
def test_mask_distance_against_brute_force(block, chunks):
    s, b = block
    if chunks is not None:
        b = b.chunk(dict(zip(("z", "y", "x"), chunks, strict=True)))
        with raise_if_dask_computes():
            out = mask_distance(b, s, max_distance=800.0)
    else:
        out = b.prospect.mask_distance(s, max_distance=800.0)
    zz, yy, xx = np.meshgrid(b.z.values, b.y.values, b.x.values, indexing="ij")
    q = np.column_stack([xx.ravel(), yy.ravel(), zz.ravel()])
    pts = np.column_stack([s.x, s.y, s.z])
    d = np.sqrt(((q[:, None, :] - pts[None]) ** 2).sum(-1)).min(1).reshape(zz.shape)
    want = np.where(d <= 800.0, b["Cu"].values, np.nan)
    np.testing.assert_array_equal(out["Cu"].values, want)
    assert 0 < np.isnan(want).sum() < want.size
    assert_georef_equal(out, block[1])
    assert out["Cu"].attrs["masked_beyond_distance"] == 800.0
    dist = distance_to_samples(b, s)
    np.testing.assert_allclose(dist.values, d, rtol=1e-12)


@pytest.mark.parametrize("chunks", [None, (2, 5, 7)])
def test_sampling_density_counts_samples_within_the_radius(block, chunks):
    s, b = block
    if chunks is not None:
        b = b.chunk(dict(zip(("z", "y", "x"), chunks, strict=True)))
    with raise_if_dask_computes():
        dens = sampling_density(b, s, radius=600.0)
    zz, yy, xx = np.meshgrid(b.z.values, b.y.values, b.x.values, indexing="ij")
    q = np.column_stack([xx.ravel(), yy.ravel(), zz.ravel()])
    pts = np.column_stack([s.x, s.y, s.z])
    d = np.sqrt(((q[:, None, :] - pts[None]) ** 2).sum(-1))
    want = (d <= 600.0).sum(1).reshape(zz.shape).astype(float)
    np.testing.assert_array_equal(dens.values, want)
    assert 0 < (want > 0).sum() < want.size and want.max() > 1
    assert dens.name == "sampling_density" and dens.attrs["radius"] == 600.0
    assert_georef_equal(dens, b)
    # an ellipsoid that stretches vertical offsets 10x counts fewer samples
    flat = sampling_density(b, s, radius=600.0, anisotropy=dict(ranges=(100, 100, 10)))
    assert (flat.values <= dens.values).all() and (flat.values < dens.values).any()


def test_sampling_density_on_a_grid_and_its_errors():
    import xarray as xr

    rng = np.random.default_rng(0)
    grid = xp.make_grid((0, 0, 100, 80), resolution=10, crs=CRS)
    xy = rng.uniform(0, 100, (60, 2)) * [1.0, 0.8]
    s = xr.Dataset(coords={"x": ("sample", xy[:, 0]), "y": ("sample", xy[:, 1])})
    s = s.rio.write_crs(CRS)
    dens = sampling_density(grid, s, radius=15.0)
    yy, xx = np.meshgrid(grid.y.values, grid.x.values, indexing="ij")
    d = np.hypot(xx.ravel()[:, None] - xy[:, 0], yy.ravel()[:, None] - xy[:, 1])
    np.testing.assert_array_equal(dens.values, (d <= 15.0).sum(1).reshape(xx.shape))
    for bad in (0.0, -5.0, float("nan"), "far"):
        with pytest.raises(DataError, match="radius"):
            sampling_density(grid, s, radius=bad)
    with pytest.raises(xp.CRSError):
        sampling_density(grid, s.rio.write_crs("EPSG:32750"), radius=15.0)


def test_mask_distance_anisotropy_and_errors(block):
    s, b = block
    iso = distance_to_samples(b, s).values
    flat = distance_to_samples(b, s, anisotropy=dict(ranges=(100, 100, 10))).values
    assert (flat >= iso - 1e-9).all() and (flat > iso).any()  # vertical offsets count 10x
    with pytest.raises(GridError, match="max_distance"):
        mask_distance(b, s, max_distance=-1)
    other = s.rio.write_crs("EPSG:32750")
    with pytest.raises(xp.CRSError):
        mask_distance(b, other, max_distance=10)


def test_to_block_csv(block, tmp_path):
    s, b = block
    m = b.prospect.mask_distance(s, max_distance=800.0).chunk({"z": 2})
    p = m.prospect.to_block_csv(tmp_path / "block.csv", variables=["Cu", "Ni"], sizes=True)
    t = pd.read_csv(p)
    assert t.columns.tolist() == ["x", "y", "z", "dx", "dy", "dz", "Cu", "Ni"]
    assert len(t) == int(m["Cu"].notnull().sum())
    assert (t["dz"] == 40).all()
    row = t.iloc[0]
    want = m["Cu"].sel(x=row.x, y=row.y, z=row.z).values.item()
    assert row.Cu == pytest.approx(want, rel=1e-5)
    with pytest.raises(DataError, match="already exists"):
        to_block_csv(m, p)
    to_block_csv(m, p, overwrite=True, dropna=False)
    assert len(pd.read_csv(p)) == m["Cu"].size


def test_plot_slices_and_section(block, tmp_path):
    _, b = block
    p = plot_slices(b, "Cu", elevations=[320, 400], path=tmp_path / "s.png")
    assert p.read_bytes()[:4] == b"\x89PNG"
    q = b.prospect.plot_section(
        "Cu", start=(500_500, 6_400_500), end=(509_500, 6_409_500), path=tmp_path / "x.png"
    )
    assert q.read_bytes()[:4] == b"\x89PNG"
    prof = section_profile(b, "Cu", start=(500_500, 6_400_500), end=(509_500, 6_400_500))
    np.testing.assert_array_equal(
        prof.isel(distance=0).values, b["Cu"].sel(x=500_500, y=6_400_500).values
    )
    with pytest.raises(GridError, match="outside the block's z range"):
        plot_slices(b, "Cu", elevations=[1000], path=tmp_path / "t.png")
    with pytest.raises(DataError, match="already exists"):
        plot_slices(b, "Cu", elevations=[320], path=p)


def test_vtk_layout_and_missing_extra(block, tmp_path, monkeypatch):
    _, b = block
    arr = vtk_arrays(b, "Cu")
    nz, ny, nx = b["Cu"].shape
    assert arr["dimensions"] == (nx + 1, ny + 1, nz + 1)
    assert arr["origin"] == (b.x.values[0] - 500, b.y.values[-1] - 500, b.z.values[0] - 20)
    flat = arr["cell_data"]["Cu"]
    # cell (i, j, k) = (x, y ascending, z) sits at i + nx * (j + ny * k)
    i, j, k = 3, 1, 2
    assert flat[i + nx * (j + ny * k)] == b["Cu"].values[k, ny - 1 - j, i]
    monkeypatch.setitem(sys.modules, "pyvista", None)
    with pytest.raises(ImportError, match=r"pip install xprospect\[vtk\]"):
        to_vtk(b, tmp_path / "b.vti")


# ---- benchmark bodies --------------------------------------------------------------------------


def test_benchmark_bodies_run():
    bench = bdh.Desurvey()
    bench.n_stations = 12
    bench.setup(4)
    names = [n for n in dir(bench) if n.startswith(("time_", "peakmem_"))]
    assert len(names) == 5
    for n in names:
        getattr(bench, n)(4)


# ---- real data ---------------------------------------------------------------------------------


@pytest.mark.realdata
def test_forrestania_loads_desurveys_and_grids(data_dir):
    d = data_dir / "forrestania_ni_drillholes_gswa"
    h = read_drillholes(
        d / "collar_georeferenced.csv",
        d / "survey.csv",
        d / "assay.csv",
        crs="EPSG:28350",
        length_unit="m",
        columns={"x": "mga50_e", "y": "mga50_n"},
        duplicate_survey="mean",
        overlaps="keep-first",
    )
    r = h.report
    assert r["n_holes"] == 100 and r["assay"]["n_holes"] == 72
    assert r["assay"]["n_overlapping"] == 2 and r["survey"]["duplicate_depth_rows"] == 4
    assert r["survey"]["dip_convention"] == "negative-down"
    assert len(h.elements) == 50 and h.element_attrs["Ni"]["units"] == "ppm"
    s = desurvey(h)
    assert s.sizes["sample"] == 4072
    assert 4.0 <= float(s.depth_to.max()) <= 1126.5
    xs, ys = h.collar["x"], h.collar["y"]
    assert (s.x >= xs.min() - 1200).all() and (s.x <= xs.max() + 1200).all()
    assert (s.y >= ys.min() - 1200).all() and (s.y <= ys.max() + 1200).all()
    assert float(s.z.max()) <= 0 and float(s.z.min()) > -1130
    c = composite(h, length=10.0)
    assert 0 < c.sizes["sample"] < 4072
    assert float(c["Ni"].max()) <= float(s["Ni"].max())
    vox = xp.make_voxels(like=c, resolution=(100, 2000, 2000), chunks=(4, 5, 7))
    block = c.prospect.idw(like=vox, k=8, elements=["Ni", "Cu"])
    block = block.prospect.mask_distance(c, max_distance=500)
    ni = block["Ni"].values
    assert np.isfinite(ni).any() and np.isnan(ni).any()
    assert np.nanmax(ni) <= float(c["Ni"].max()) + 1e-3


@pytest.mark.realdata
def test_babbitt_feet_positive_down_padding_rows(data_dir):
    d = data_dir / "babbitt_cuni_drillholes"
    h = read_drillholes(
        d / "collar_BABBITT.csv",
        d / "survey_BABBITT.csv",
        d / "assay_BABBITT.csv",
        crs="EPSG:26791",
        length_unit="ftUS",
        assay_units="pct",
    )
    r = h.report
    assert r["n_holes"] == 399 and r["survey"]["sentinel_rows_dropped"] == 70
    assert r["survey"]["dip_convention"] == "positive-down"
    assert sorted(h.elements) == ["Cu", "Fe", "Ni", "S"] and h.element_attrs["Cu"]["units"] == "pct"
    # depths stored in metres: the deepest interval 3574 ft
    assert h.assay["to"].max() == pytest.approx(3574 * 1200 / 3937)
    c = composite(h, length=20 * 1200 / 3937)  # 20 ft composites
    rep = json.loads(c.attrs["composite_report"])
    assert rep["n_empty_dropped"] > 0  # the long unsampled tops
    # positions stay in the CRS's feet: collar elevations 1528-1633 ft, holes < 3600 ft long
    assert float(c.z.max()) < 1633 and float(c.z.min()) > 1528 - 3600
    xs, ys = h.collar["x"], h.collar["y"]
    assert float(c.x.min()) > xs.min() - 2000 and float(c.x.max()) < xs.max() + 2000
    assert float(c.y.min()) > ys.min() - 2000 and float(c.y.max()) < ys.max() + 2000
    assert 0.2 < float(c["Cu"].median()) < 0.5  # median 0.30 % over assayed intervals
    vox = xp.make_voxels(like=c, resolution=(200, 1000, 1000), chunks=(5, 6, 7))
    block = c.prospect.idw(like=vox, k=8, elements=["Cu", "Ni"])
    block = block.prospect.mask_distance(c, max_distance=600)
    cu = block["Cu"].values
    assert np.isfinite(cu).mean() > 0.05 and np.nanmax(cu) <= float(c["Cu"].max()) + 1e-6
