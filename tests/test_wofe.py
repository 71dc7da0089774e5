"""Weights of evidence against a hand-computed table and the log-linear posterior."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xprospect import baselines as B
from xprospect.exceptions import DataError
from xprospect.points import make_points


def _raster():
    """A 10 x 10 raster, binary evidence A (left 3 columns) and 3-class evidence G (codes)."""
    y = np.arange(10.0)[::-1] * 100 + 50
    x = np.arange(10.0) * 100 + 50
    a = np.zeros((10, 10))
    a[:, :3] = 1.0                       # 30 cells
    g = np.zeros((10, 10))
    g[:5, :] = 1.0                       # 50 cells of code 1 (top)
    g[:2, :] = 2.0                       # 20 cells of code 2 (top two rows), 30 left with 0
    g[5:, :] = 0.0
    stack = xr.DataArray(np.stack([a, g]), dims=("element", "y", "x"),
                         coords={"element": ["A", "G"], "y": y, "x": x})
    # 5 deposit cells: (row, col) -> A and G values
    rc = [(0, 0), (1, 1), (3, 2), (4, 8), (8, 5)]
    pts = make_points(x=[x[c] for _, c in rc], y=[y[r] for r, _ in rc])
    return stack, pts, rc


def test_weights_match_a_hand_computed_table():
    stack, pts, _ = _raster()
    m = B.WeightsOfEvidence(categorical=["A", "G"]).fit(stack, pts)
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
        (w_plus - w_minus) / np.sqrt(v_plus + v_minus), rel=1e-12)
    # G code 2 (rows 0-1): 20 cells, 2 deposits; code 1 (rows 2-4): 30 cells, 2 deposits
    r2 = t.loc[("G", 2.0)]
    assert (r2["n_cells"], r2["n_deposits"]) == (20, 2)
    assert r2["weight"] == pytest.approx(np.log((2 / 5) / (18 / 95)), rel=1e-12)
    r1 = t.loc[("G", 1.0)]
    assert (r1["n_cells"], r1["n_deposits"]) == (30, 2)
    assert r1["var_weight"] == pytest.approx(1 / 2 + 1 / 28, rel=1e-12)


def test_posterior_is_the_log_linear_formula():
    stack, pts, _ = _raster()
    m = B.WeightsOfEvidence(categorical=["A", "G"]).fit(stack, pts)
    post = m.predict(stack).values
    std = m.predict_std(stack).values
    t = m.table_.set_index(["element", "code"])
    prior_logit = np.log(0.05 / 0.95)
    a, g = stack.sel(element="A").values, stack.sel(element="G").values
    logit = prior_logit + np.vectorize(lambda v: t.loc[("A", v), "weight"])(a) \
        + np.vectorize(lambda v: t.loc[("G", v), "weight"])(g)
    expect = 1 / (1 + np.exp(-logit))
    np.testing.assert_allclose(post, expect, rtol=1e-12)
    var = 1 / 5 + np.vectorize(lambda v: t.loc[("A", v), "var_weight"])(a) \
        + np.vectorize(lambda v: t.loc[("G", v), "var_weight"])(g)
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
    m = B.WeightsOfEvidence(n_classes=10, categorical=["A"]).fit(cont, pts)
    gen = m.table_[(m.table_["element"] == "C") & m.table_["used"]]
    assert len(gen) == 1 and gen["class"].iloc[0] == -1
    classes = m.table_[(m.table_["element"] == "C") & ~m.table_["used"]]
    # every cumulative cut, by hand: the best studentized contrast is the one kept
    best = -np.inf
    nbd = classes["n_deposits"].to_numpy()
    nb = classes["n_cells"].to_numpy()
    for cd, cb in [(np.cumsum(nbd[::-1])[::-1][1:], np.cumsum(nb[::-1])[::-1][1:]),
                   (np.cumsum(nbd)[:-1], np.cumsum(nb)[:-1])]:
        t = B.weights_table(cd, cb, 5, 100)
        best = max(best, float(t["studentized_contrast"].max()))
    assert gen["studentized_contrast"].iloc[0] == pytest.approx(best)
    assert gen["pattern"].iloc[0].startswith("value <=")


def test_wofe_refuses_bad_options():
    stack, pts, _ = _raster()
    with pytest.raises(DataError, match="generalize"):
        B.WeightsOfEvidence(generalize="maybe").fit(stack, pts)
    with pytest.raises(DataError, match="categorical elements"):
        B.WeightsOfEvidence(categorical=["Nope"]).fit(stack, pts)
