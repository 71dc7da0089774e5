"""Weights of evidence against a hand-computed table and the log-linear posterior."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xprospect import baselines as B
from xprospect.exceptions import DataError, XProspectWarning
from xprospect.points import make_points


def _raster():
    """A 10 x 10 raster, binary evidence A (left 3 columns) and 3-class evidence G (codes)."""
    y = np.arange(10.0)[::-1] * 100 + 50
    x = np.arange(10.0) * 100 + 50
    a = np.zeros((10, 10))
    a[:, :3] = 1.0  # 30 cells
    g = np.zeros((10, 10))
    g[:5, :] = 1.0  # 50 cells of code 1 (top)
    g[:2, :] = 2.0  # 20 cells of code 2 (top two rows), 30 left with 0
    g[5:, :] = 0.0
    stack = xr.DataArray(
        np.stack([a, g]), dims=("element", "y", "x"), coords={"element": ["A", "G"], "y": y, "x": x}
    )
    # 5 deposit cells: (row, col) -> A and G values
    rc = [(0, 0), (1, 1), (3, 2), (4, 8), (8, 5)]
    pts = make_points(x=[x[c] for _, c in rc], y=[y[r] for r, _ in rc])
    return stack, pts, rc


def test_weights_match_a_hand_computed_table():
    stack, pts, _ = _raster()
    m = B.WeightsOfEvidence(categorical=["A", "G"], min_studentized=0.0).fit(stack, pts)
    t = m.table_.set_index(["element", "code"])
    # evidence A present (code 1): 30 cells, 3 deposits (cols 0, 1, 2); N(D) = 5, N(T) = 100
    nd, nnd = 5.0, 95.0
    bd, b = 3.0, 30.0
    w_plus = np.log((bd / nd) / ((b - bd) / nnd))
    w_minus = np.log(((nd - bd) / nd) / ((nnd - b + bd) / nnd))
    v_plus = 1 / bd + 1 / (b - bd)
    v_minus = 1 / (nd - bd) + 1 / (nnd - b + bd)
    row = t.loc[("A", 1.0)]
    assert row["n_cells"] == 30 and row["n_deposits"] == 3
    assert row["w_plus"] == pytest.approx(w_plus, rel=1e-12)
    assert row["w_minus"] == pytest.approx(w_minus, rel=1e-12)
    assert row["contrast"] == pytest.approx(w_plus - w_minus, rel=1e-12)
    assert row["studentized_contrast"] == pytest.approx(
        (w_plus - w_minus) / np.sqrt(v_plus + v_minus), rel=1e-12
    )
    # G code 2 (rows 0-1): 20 cells, 2 deposits; code 1 (rows 2-4): 30 cells, 2 deposits
    r2 = t.loc[("G", 2.0)]
    assert (r2["n_cells"], r2["n_deposits"]) == (20, 2)
    assert r2["weight"] == pytest.approx(np.log((2 / 5) / (18 / 95)), rel=1e-12)
    r1 = t.loc[("G", 1.0)]
    assert (r1["n_cells"], r1["n_deposits"]) == (30, 2)
    assert r1["var_weight"] == pytest.approx(1 / 2 + 1 / 28, rel=1e-12)


def test_posterior_is_the_log_linear_formula():
    stack, pts, _ = _raster()
    m = B.WeightsOfEvidence(categorical=["A", "G"], min_studentized=0.0).fit(stack, pts)
    post = m.predict(stack).values
    std = m.predict_std(stack).values
    t = m.table_.set_index(["element", "code"])
    prior_logit = np.log(0.05 / 0.95)
    a, g = stack.sel(element="A").values, stack.sel(element="G").values
    logit = (
        prior_logit
        + np.vectorize(lambda v: t.loc[("A", v), "weight"])(a)
        + np.vectorize(lambda v: t.loc[("G", v), "weight"])(g)
    )
    expect = 1 / (1 + np.exp(-logit))
    np.testing.assert_allclose(post, expect, rtol=1e-12)
    var = (
        1 / 5
        + np.vectorize(lambda v: t.loc[("A", v), "var_weight"])(a)
        + np.vectorize(lambda v: t.loc[("G", v), "var_weight"])(g)
    )
    np.testing.assert_allclose(std, expect * np.sqrt(var), rtol=1e-12)
    ci = m.ci_test_
    assert ci["predicted"] == pytest.approx(float(post.sum()))
    assert ci["omnibus_ratio"] == pytest.approx(5 / post.sum())
    assert 0.0 <= ci["p_value"] <= 1.0


def test_binary_generalisation_picks_the_best_cumulative_contrast():
    stack, pts, _ = _raster()
    # a continuous layer: the column index, deposits in columns 0, 1, 2, 8, 5
    col = xr.broadcast(stack.x, stack.y)[0].transpose("y", "x") / 100.0
    cont = xr.concat([stack.sel(element="A"), col.expand_dims(element=["C"])], "element")
    cont = cont.transpose("element", "y", "x")
    # the choice of the pattern, without the significance test (its contrast is 1.4 s.d.)
    m = B.WeightsOfEvidence(n_classes=10, categorical=["A"], min_studentized=0.0).fit(cont, pts)
    gen = m.table_[(m.table_["element"] == "C") & m.table_["used"]]
    assert len(gen) == 1 and gen["class"].iloc[0] == -1
    classes = m.table_[(m.table_["element"] == "C") & ~m.table_["used"]]
    # every cumulative cut, by hand: the best studentized contrast is the one kept
    best = -np.inf
    nbd = classes["n_deposits"].to_numpy()
    nb = classes["n_cells"].to_numpy()
    for cd, cb in [
        (np.cumsum(nbd[::-1])[::-1][1:], np.cumsum(nb[::-1])[::-1][1:]),
        (np.cumsum(nbd)[:-1], np.cumsum(nb)[:-1]),
    ]:
        t = B.weights_table(cd, cb, 5, 100)
        best = max(best, float(t["studentized_contrast"].max()))
    assert gen["studentized_contrast"].iloc[0] == pytest.approx(best)
    assert gen["pattern"].iloc[0].startswith("value <=")


def _signal_raster():
    """A 20 x 20 raster, 12 deposit cells: S (the column) carries signal, N (the row) none.

    G is categorical: code 1 (columns 0-1, 8 deposits), 0 (columns 2-5, 4 deposits),
    3 (columns 6-9, none) and 2 (columns 10-19, none).
    """
    n = 20
    y = np.arange(float(n))[::-1] * 100 + 50
    x = np.arange(float(n)) * 100 + 50
    cols, rows = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float))
    g = np.select([cols <= 1, cols <= 5, cols <= 9], [1.0, 0.0, 3.0], 2.0)
    stack = xr.DataArray(
        np.stack([cols, rows, g]),
        dims=("element", "y", "x"),
        coords={"element": ["S", "N", "G"], "y": y, "x": x},
    )
    r = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 1, 11]
    c = [0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3]
    pts = make_points(x=[x[j] for j in c], y=[y[i] for i in r])
    return stack, pts


def test_only_significant_patterns_enter_the_posterior():
    stack, pts = _signal_raster()
    m = B.WeightsOfEvidence(n_classes=10, categorical=["G"]).fit(stack, pts)
    assert m.min_studentized == 2.0
    t = m.table_
    gen = t[t["class"] == -1].set_index("element")
    # S: the cut "column <= 1" (40 cells, 8 of 12 deposits), 4.9 s.d.: kept
    s_row = gen.loc["S"]
    by_hand = B.weights_table([8], [40], 12, 400).iloc[0]
    assert s_row["pattern"].startswith("value <=") and s_row["upper"] < 2
    assert s_row["studentized_contrast"] == pytest.approx(by_hand["studentized_contrast"])
    assert s_row["studentized_contrast"] >= 2 and s_row["significant"] and s_row["used"]
    # N: deposits spread evenly over the rows; its best cut is below 2 s.d.: dropped
    n_row = gen.loc["N"]
    assert 0 < n_row["studentized_contrast"] < 2
    assert not n_row["significant"] and not n_row["used"]
    assert not t[(t["element"] == "N") & t["used"]].size
    # G: code 1 (8 deposits in 40 cells) and code 2 (0 in 200: -2.2 s.d.) keep their own
    # weights; codes 0 and 3 (4 deposits in 160 cells) are pooled into one "other" class
    g = t[t["element"] == "G"].set_index("code")
    assert g.loc[1.0, "significant"] and g.loc[2.0, "significant"]
    assert g.loc[2.0, "studentized_contrast"] <= -2
    assert g.loc[1.0, "weight"] == pytest.approx(np.log((8 / 12) / (32 / 388)), rel=1e-12)
    assert g.loc[2.0, "weight"] == pytest.approx(np.log((0.5 / 12) / (200 / 388)), rel=1e-12)
    other = np.log((4 / 12) / (156 / 388))
    for code in (0.0, 3.0):
        assert g.loc[code, "pattern"] == "other" and not g.loc[code, "significant"]
        assert g.loc[code, "weight"] == pytest.approx(other, rel=1e-12)
        assert g.loc[code, "var_weight"] == pytest.approx(1 / 4 + 1 / 156, rel=1e-12)
    # the posterior: the prior plus S's pattern and G's class, nothing from N
    sv, gv = stack.sel(element="S").values, stack.sel(element="G").values
    logit = (
        np.log(12 / 388)
        + np.where(sv <= s_row["upper"], s_row["w_plus"], s_row["w_minus"])
        + np.vectorize(lambda v: g.loc[v, "weight"])(gv)
    )
    np.testing.assert_allclose(m.predict(stack).values, 1 / (1 + np.exp(-logit)), rtol=1e-12)
    # with no test, N enters and the map changes
    loose = B.WeightsOfEvidence(n_classes=10, categorical=["G"], min_studentized=0.0)
    loose.fit(stack, pts)
    assert loose.table_.set_index(["element", "class"]).loc[("N", -1), "used"]
    assert not np.allclose(loose.predict(stack).values, m.predict(stack).values)


def test_no_significant_evidence_gives_a_flat_prior_map_and_warns():
    stack, pts = _signal_raster()
    noise = stack.sel(element=["N"])
    with pytest.warns(XProspectWarning, match="no evidence layer .* is significant"):
        m = B.WeightsOfEvidence(n_classes=10).fit(noise, pts)
    post = m.predict(noise).values
    np.testing.assert_allclose(post, 12 / 400, rtol=1e-12)
    assert m.ci_test_["predicted"] == pytest.approx(12.0)
    # a categorical layer with no significant code: every class pooled, weight 0
    g = stack.sel(element=["G"])
    with pytest.warns(XProspectWarning, match="flat map"):
        mg = B.WeightsOfEvidence(categorical=["G"], min_studentized=10.0).fit(g, pts)
    assert (mg.table_["weight"] == 0).all() and (mg.table_["pattern"] == "other").all()
    np.testing.assert_allclose(mg.predict(g).values, 12 / 400, rtol=1e-12)


def test_wofe_refuses_bad_options():
    stack, pts, _ = _raster()
    with pytest.raises(DataError, match="generalize"):
        B.WeightsOfEvidence(generalize="maybe").fit(stack, pts)
    with pytest.raises(DataError, match="categorical elements"):
        B.WeightsOfEvidence(categorical=["Nope"]).fit(stack, pts)
    with pytest.raises(DataError, match="min_studentized"):
        B.WeightsOfEvidence(min_studentized=-1.0).fit(stack, pts)
