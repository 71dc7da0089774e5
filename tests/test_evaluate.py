"""Evaluation toolkit: metrics against oracles, curves, capture, blocks, spatial CV, reports."""

from __future__ import annotations

import doctest
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

import xprospect as xp
from xprospect._dims import write_crs
from xprospect.evaluate import (
    DEFAULT_TOP_PERCENT,
    auc_ci,
    block_grid,
    block_labels,
    capture_efficiency,
    classification_metrics,
    compare,
    delong_se,
    evaluate,
    hanley_mcneil_se,
    plot_compare,
    roc_auc,
    roc_curve,
    spatial_block_folds,
    spatial_fold_ids,
    success_rate_curve,
    z_auc,
)
from xprospect.evaluate.splits import block_split, grid_block_ids, overlapping, spatial_split
from xprospect.testing import assert_georef_equal

CRS = "EPSG:32750"


def _grid(vals, res=10.0, x0=0.0, y_top=None, crs=CRS, name="score"):
    vals = np.asarray(vals, dtype="float64")
    ny, nx = vals.shape
    y_top = ny * res if y_top is None else y_top
    x = x0 + res * (np.arange(nx) + 0.5)
    y = y_top - res * (np.arange(ny) + 0.5)
    return write_crs(xr.DataArray(vals, dims=("y", "x"), coords={"y": y, "x": x}, name=name), crs)


def _pts(x, y, z=None, prefix="D", crs=CRS):
    coords = {
        "x": ("point", np.asarray(x, float)),
        "y": ("point", np.asarray(y, float)),
        "point_id": ("point", [f"{prefix}{i}" for i in range(len(x))]),
    }
    if z is not None:
        coords["z"] = ("point", np.asarray(z, float))
    return write_crs(xr.Dataset(coords=coords), crs)


# ---------------------------------------------------------------- metrics


def test_hanley_mcneil_hand_computed():
    # A = 0.8, n1 = 4, n2 = 5, by hand with exact fractions:
    #   Q1 = A / (2 - A) = 2/3,  Q2 = 2 A^2 / (1 + A) = 32/45,  A^2 = 16/25
    #   Q1 - A^2 = 2/75,  Q2 - A^2 = 16/225
    #   A(1-A) + (n1-1)(Q1-A^2) + (n2-1)(Q2-A^2) = 36/225 + 18/225 + 64/225 = 118/225
    #   SE^2 = 118 / (225 * 20) = 59/2250,  SE = 0.1619328...,  Z = 0.3 / SE = 1.852620...
    se = hanley_mcneil_se(0.8, 4, 5)
    assert se == pytest.approx(np.sqrt(59 / 2250), rel=1e-12)
    assert se == pytest.approx(0.16193277, abs=1e-8)
    assert z_auc(0.8, se) == pytest.approx(1.8526198, abs=1e-6)
    # data giving A = 0.8: each positive beats 4 of the 5 negatives
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    s = np.array([5, 6, 7, 8, 1, 2, 3, 4, 9], dtype=float)
    r = auc_ci(y, s, method="hanley")
    assert r["auc"] == pytest.approx(0.8)
    assert r["se"] == pytest.approx(np.sqrt(59 / 2250))
    assert r["z_auc"] == pytest.approx(1.8526198, abs=1e-6)
    assert (r["n_pos"], r["n_neg"]) == (4, 5)


def test_hanley_reproduces_pangxidong_table1():
    # Table 1 of the ResNet-50 study: (AUC, Z_AUC); balanced design with n1 = n2 = 122
    table = {
        "Au": (0.6024, 2.8395),
        "Sn": (0.6065, 2.9595),
        "Ag": (0.6762, 5.1563),
        "Mn": (0.5573, 1.5617),
        "Zn": (0.5450, 1.2232),
        "Sb": (0.5942, 2.6017),
        "Hg": (0.6393, 3.9516),
        "W": (0.5778, 2.1341),
        "B": (0.5901, 2.4839),
        "Cu": (0.6311, 3.6977),
        "Ba": (0.6147, 3.2020),
        "Pb": (0.5778, 2.1341),
        "As": (0.5655, 1.7893),
        "Bi": (0.5901, 2.4839),
        "Mo": (0.5983, 2.7203),
        "F": (0.5696, 1.9037),
    }
    selected = set()
    for e, (a, z) in table.items():
        ours = z_auc(a, hanley_mcneil_se(a, 122, 122))
        assert ours == pytest.approx(z, abs=0.0025), e
        if ours > 2.5758:
            selected.add(e)
    assert selected == {"Au", "Sn", "Cu", "Ag", "Ba", "Sb", "Hg", "Mo"}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 6)), min_size=4, max_size=60))
def test_roc_auc_equals_sklearn_with_ties(pairs):
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs], dtype=float)
    if y.all() or (~y).all():
        return
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def _delong_slow(y, s):
    pos, neg = s[y], s[~y]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return np.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))


def test_delong_and_bootstrap():
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.3
    s = np.round(rng.normal(0, 1, 300) + 0.8 * y, 1)  # rounding makes ties
    assert delong_se(y, s) == pytest.approx(_delong_slow(y, s), rel=1e-10)
    b = auc_ci(y, s, method="bootstrap", n_boot=400, seed=1)
    d = auc_ci(y, s, method="delong")
    assert b["se"] == pytest.approx(d["se"], rel=0.25)
    assert b["lower"] < b["auc"] < b["upper"]
    assert auc_ci(y, s, method="bootstrap", n_boot=400, seed=1) == b
    assert d["upper"] - d["lower"] == pytest.approx(2 * 1.959964 * d["se"], rel=1e-5)


def test_classification_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.4
    s = np.clip(rng.normal(0.3 + 0.4 * y, 0.25), 0, 1)
    m = classification_metrics(y, s, threshold=0.5)
    pred = s >= 0.5
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    # nothing predicted positive: precision 0 by the stated zero-division policy
    assert classification_metrics(y, s, threshold=2.0)["precision"] == 0.0


def test_metric_errors():
    with pytest.raises(xp.DataError, match="both classes"):
        roc_auc([1, 1], [0.1, 0.2])
    with pytest.raises(xp.DataError, match="non-finite"):
        roc_auc([0, 1], [np.nan, 0.2])
    with pytest.raises(xp.DataError, match="method"):
        auc_ci([0, 1], [0.1, 0.2], method="nope")


def test_roc_curve_table():
    c = roc_curve([0, 1, 0, 1, 1], [0.1, 0.9, 0.4, 0.3, 0.8])
    assert list(c.columns) == ["fpr", "tpr", "threshold"]
    assert c.attrs["auc"] == pytest.approx(
        skm.roc_auc_score([0, 1, 0, 1, 1], [0.1, 0.9, 0.4, 0.3, 0.8])
    )


# ---------------------------------------------------------------- curves and capture


def test_success_rate_curve_known_answer():
    # 2 x 4 map, scores 8..1 row-major, one NaN cell; deposits in the cells scored 7 and 4,
    # two deposits in the cell scored 4
    vals = np.array([[8, 7, 6, 5], [4, 3, np.nan, 1]], dtype=float)
    m = _grid(vals)
    dep = _pts([15, 5, 5, 35], [15, 5, 5, 5])  # cells (0,1), (1,0) twice, (1,3)
    c = success_rate_curve(m, dep, vertices_only=False)
    n = 7  # finite cells
    np.testing.assert_allclose(c["area_fraction"], np.arange(8) / n)
    np.testing.assert_allclose(c["deposit_fraction"], [0, 0, 0.25, 0.25, 0.25, 0.75, 0.75, 1.0])
    assert np.isinf(c["threshold"].iloc[0])
    np.testing.assert_allclose(c["threshold"].iloc[1:], [8, 7, 6, 5, 4, 3, 1])
    # vertices only: same piecewise-linear curve
    v = success_rate_curve(m, dep)
    grid = np.linspace(0, 1, 101)
    np.testing.assert_allclose(
        np.interp(grid, v["area_fraction"], v["deposit_fraction"]),
        np.interp(grid, c["area_fraction"], c["deposit_fraction"]),
    )
    assert v.attrs["auc"] == pytest.approx(c.attrs["auc"])
    # area under the curve = AUC of deposit cells (with multiplicity) against all cells
    finite = vals[np.isfinite(vals)]
    dep_scores = np.array([7, 4, 4, 1.0])
    y = np.r_[np.ones(4, bool), np.zeros(finite.size, bool)]
    assert c.attrs["auc"] == pytest.approx(roc_auc(y, np.r_[dep_scores, finite]))


def test_success_rate_ties_enter_together_and_drops_counted():
    m = _grid([[1, 1, 0, 0]])
    dep = _pts([5, 1000], [5, 5])  # second deposit outside the grid
    c = success_rate_curve(m, dep, vertices_only=False)
    np.testing.assert_allclose(c["area_fraction"], [0, 0.5, 1.0])
    np.testing.assert_allclose(c["deposit_fraction"], [0, 1.0, 1.0])
    assert c.attrs["deposits_outside_grid"] == 1 and c.attrs["deposits_used"] == 1


def test_capture_efficiency():
    vals = np.array([[0.9, 0.8, 0.1], [0.2, 0.7, np.nan]])
    m = _grid(vals)
    dep = _pts([5, 25, 15, 25], [15, 15, 5, 5])  # 0.9, 0.1, 0.7 and one on NaN
    r = capture_efficiency(m, dep, threshold=0.5)
    assert r["n_captured"] == 2 and r["deposits_used"] == 3 and r["deposits_on_nan"] == 1
    assert r["deposit_fraction"] == pytest.approx(2 / 3)
    assert r["area_fraction"] == pytest.approx(3 / 5)
    assert r["efficiency"] == pytest.approx((2 / 3) / (3 / 5))
    q = capture_efficiency(m, dep, quantile=0.8)  # top cells: 0.9 (and ties)
    assert q["threshold"] == pytest.approx(np.quantile([0.9, 0.8, 0.1, 0.2, 0.7], 0.8))
    with pytest.raises(xp.DataError, match="exactly one"):
        capture_efficiency(m, dep)
    with pytest.raises(xp.DataError, match="none of the"):
        capture_efficiency(m, _pts([25], [5]), threshold=0.5)


def test_curves_and_capture_accept_voxels():
    rng = np.random.default_rng(0)
    vals = rng.random((3, 4, 5))
    vals[2, 3, 4] = 5.0
    vals[0, 0, 0] = np.nan
    z = np.array([5.0, 15.0, 25.0])
    y = np.array([35.0, 25.0, 15.0, 5.0])
    x = 5.0 + 10 * np.arange(5)
    m = write_crs(xr.DataArray(vals, dims=("z", "y", "x"), coords={"z": z, "y": y, "x": x}), CRS)
    dep = _pts([45.0], [5.0], z=[25.0])
    c = success_rate_curve(m, dep)
    assert c["deposit_fraction"].iloc[1] == 1.0
    assert c["area_fraction"].iloc[1] == pytest.approx(1 / 59)
    r = capture_efficiency(m, dep, quantile=0.5)
    assert r["n_cells"] == 59 and r["n_captured"] == 1
    rep = evaluate(m, dep, blocks=(2, 2))
    assert rep.blocks is None and rep.metrics["roc_auc"] == 1.0


# ---------------------------------------------------------------- blocks


def test_block_labels_and_grid_known_map():
    vals = np.arange(6 * 7, dtype=float).reshape(6, 7)
    m = _grid(vals, res=10.0, x0=1000.0, y_top=2000.0)
    lab = block_labels(m, (3, 2))  # 3 along x, 2 along y
    assert_georef_equal(lab, m)
    # columns split 7 -> [0:2], [2:4], [4:7]; rows 6 -> [0:3], [3:6]
    np.testing.assert_array_equal(lab.values[0], [1, 1, 2, 2, 3, 3, 3])
    np.testing.assert_array_equal(lab.values[5], [4, 4, 5, 5, 6, 6, 6])
    dep = _pts([1005.0, 1065.0], [1995.0, 1945.0])  # cells (0,0) and (5,6)
    t = block_grid(m, (3, 2), deposits=dep, threshold=20.0)
    assert list(t.index) == [1, 2, 3, 4, 5, 6]
    b3 = t.loc[3]
    assert (b3["row"], b3["col"], b3["i0"], b3["i1"], b3["j0"], b3["j1"]) == (0, 2, 0, 3, 4, 7)
    assert (b3["xmin"], b3["xmax"], b3["ymin"], b3["ymax"]) == (1040.0, 1070.0, 1970.0, 2000.0)
    assert b3["mean_score"] == pytest.approx(vals[0:3, 4:7].mean())
    assert b3["max_score"] == vals[2, 6]
    for b, row in t.iterrows():
        assert (lab.values == b).sum() == row["n_cells"]
    np.testing.assert_array_equal(t["n_deposits"], [1, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(t["predicted"], t["mean_score"] >= 20.0)
    met = t.attrs["metrics"]
    assert met["tp"] + met["fn"] == 2 and met["tn"] + met["fp"] == 4
    with pytest.raises(xp.GridError, match="3-D"):
        block_grid(m.expand_dims(z=[0.0, 1.0]).transpose("z", "y", "x"), 2)


def test_block_grid_nan_block_and_study_size():
    vals = np.random.default_rng(0).random((48, 48))
    vals[:4, :4] = np.nan
    t = block_grid(_grid(vals), (12, 12))
    assert len(t) == 144 and (t["n_cells"] == 16).all()
    assert np.isnan(t.loc[1, "score"]) and not t.loc[1, "predicted"]
    assert t.loc[144, ["row", "col"]].tolist() == [11, 11]
    # median blocks with deposits: each block's score is the median of its finite cells
    dep = _pts([25.0, 465.0], [455.0, 15.0])
    med = block_grid(_grid(vals), (12, 12), deposits=dep, reduce="median")
    assert med.loc[2, "score"] == pytest.approx(np.median(vals[:4, 4:8]))
    assert med["n_deposits"].sum() == 1 and med.attrs["deposits_on_nan"] == 1  # block 1: NaN
    assert med.loc[[1, 144], "truth"].tolist() == [False, True]


# ---------------------------------------------------------------- spatial CV


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(30, 150),
    n_folds=st.integers(2, 5),
    buffer=st.floats(0, 150),
    seed=st.integers(0, 5),
    metric=st.sampled_from(["chebyshev", "euclidean"]),
)
def test_spatial_folds_respect_buffer_and_groups(n, n_folds, buffer, seed, metric):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1000, (max(n // 6, n_folds * 2), 2))
    grp = rng.integers(0, len(centres), n)
    xy = centres[grp] + rng.uniform(-40, 40, (n, 2))  # jittered windows around "deposits"
    try:
        folds = spatial_block_folds(
            xy, n_folds=n_folds, blocks=(6, 6), buffer=buffer, groups=grp, metric=metric, seed=seed
        )
    except xp.DataError:
        return  # too few units or the buffer empties a training set: refused, not wrong
    tests = np.concatenate([te for _, te in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(n))
    fold_of = np.empty(n, int)
    for f, (tr, te) in enumerate(folds):
        fold_of[te] = f
        assert not np.intersect1d(tr, te).size
        d = np.abs(xy[tr][:, None, :] - xy[te][None, :, :])
        dist = d.max(-1) if metric == "chebyshev" else np.sqrt((d**2).sum(-1))
        assert (dist > buffer).all()
    for g in np.unique(grp):
        assert len(np.unique(fold_of[grp == g])) == 1
    again = spatial_block_folds(
        xy, n_folds=n_folds, blocks=(6, 6), buffer=buffer, groups=grp, metric=metric, seed=seed
    )
    for (a, b), (c, d) in zip(folds, again, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_spatial_folds_windows_do_not_overlap_and_points_input():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 2000, (120, 2))
    window = 160.0  # e.g. 16 cells x 10 m
    folds = spatial_block_folds(
        _pts(xy[:, 0], xy[:, 1]), n_folds=4, block_size=500.0, buffer=window
    )
    for tr, te in folds:
        cheb = np.abs(xy[tr][:, None] - xy[te][None]).max(-1)
        assert (cheb >= window).all()  # square windows of this extent never overlap
    ids = spatial_fold_ids(xy, n_folds=4, block_size=500.0)
    assert np.bincount(ids).min() > 0
    with pytest.raises(xp.DataError, match="n_folds"):
        spatial_block_folds(xy, n_folds=5, blocks=(2, 2))


def test_grid_folds_balance_deposits_and_points_take_their_cells_fold():
    from xprospect.evaluate.splits import deal_blocks, folds_from_ids, grid_fold_ids

    valid = np.ones((20, 30), dtype=bool)
    valid[:, :3] = False  # a strip off the data: in no fold
    rng = np.random.default_rng(4)
    dep = np.unique(rng.choice(np.flatnonzero(valid), 13, replace=False))
    fold, block = grid_fold_ids(valid, (10.0, 10.0), dep, 3, blocks=(4, 4), seed=2)
    assert (fold[~valid] == -1).all() and set(np.unique(fold[valid])) == {0, 1, 2}
    assert int(block.max()) == 15
    per_fold = np.bincount(fold.flat[dep], minlength=3)
    # blocks holding deposits are dealt to the fold with fewest deposits so far: no fold
    # ends further from the others than the largest block's count
    per_block = np.bincount(block.flat[dep])
    assert per_fold.max() - per_fold.min() <= per_block.max()
    # the same deal from the parts, and block_size in CRS units as blocks: 300 m / 4 -> 75 m
    np.testing.assert_array_equal(
        np.where(valid, deal_blocks(block.ravel(), valid.ravel(), dep, 3, 2)[block], -1), fold
    )
    np.testing.assert_array_equal(
        grid_fold_ids(valid, (10.0, 10.0), dep, 3, block_size=(75.0, 50.0), seed=2)[0], fold
    )
    with pytest.raises(xp.DataError, match="blocks hold deposits"):
        grid_fold_ids(valid, (10.0, 10.0), dep[:2], 3, blocks=(4, 4))
    # points: fold -1 is never trained on nor tested; the buffer drops training points
    xy = np.array([[0.0, 0.0], [5.0, 0.0], [10.0, 0.0], [11.0, 0.0], [50.0, 0.0]])
    folds = folds_from_ids(xy, [0, 1, 1, 0, -1], buffer=1.5)
    assert [(tr.tolist(), te.tolist()) for tr, te in folds] == [([1], [0, 3]), ([0], [1, 2])]
    with pytest.raises(xp.DataError, match="one entry per point"):
        folds_from_ids(xy, [0, 1])
    with pytest.raises(xp.DataError, match="no point has a fold"):
        folds_from_ids(xy, [-1] * 5)


def test_spatial_split_one_fold_groups_buffer_and_classes():
    rng = np.random.default_rng(3)
    centres = rng.uniform(0, 3000, (12, 2))
    grp = np.repeat(np.arange(12), 5)
    pos = centres[grp] + rng.uniform(-30, 30, (60, 2))
    neg = rng.uniform(0, 3000, (140, 2))
    xy = np.vstack([pos, neg])
    labels = np.r_[np.ones(60, int), np.zeros(140, int)]
    groups = np.r_[grp, np.full(140, -1)]
    extent = (160.0, 160.0)
    tr, va, info = spatial_split(xy, labels, extent=extent, fraction=0.25, groups=groups, seed=1)
    assert not np.intersect1d(tr, va).size
    assert info["n_train"] + info["n_val"] + info["n_dropped"] == len(xy)
    assert not overlapping(xy[tr], xy[va], extent).any()
    for g in range(12):
        members = np.flatnonzero(groups == g)
        assert not (np.isin(members, tr).any() and np.isin(members, va).any())
    for side in (tr, va):
        assert set(labels[side]) == {0, 1}
    # the default block shrinks until a fold holds both classes; a fixed block does not
    lone = np.r_[np.zeros(199, int), 1]
    with pytest.raises(xp.DataError, match="no spatial validation split"):
        spatial_split(xy, lone, extent=extent, fraction=0.25, block=3000.0)
    np.testing.assert_array_equal(
        overlapping(
            np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 9.0]]), np.array([[0.0, 9.5]]), (10.0, 10.0)
        ),
        [True, False, True],
    )


def test_block_split_grid_cells_one_home():
    m = xr.DataArray(
        np.ones((10, 10), bool),
        dims=("y", "x"),
        coords={"y": np.arange(10.0)[::-1], "x": np.arange(10.0)},
    )
    tr, te = block_split(m, blocks=5, seed=0)
    assert not (tr & te).any() and bool((tr | te).all())
    assert tr.attrs["blocks"] == [5, 5]
    ids = grid_block_ids((10, 10), (5, 5))
    for b in range(25):  # whole blocks on one side
        assert len(np.unique(tr.values[ids == b])) == 1
    from xprospect.evidence import block_split as ev_block_split

    assert ev_block_split is block_split
    with pytest.warns(FutureWarning, match="xprospect.evaluate.splits"):
        from xprospect.evaluate.cv import spatial_block_folds as old
    assert old is spatial_block_folds


# ---------------------------------------------------------------- evaluate and compare


@pytest.fixture(scope="module")
def many_world():
    return xp.synthetic.survey(seed=2, n_samples=200, n_deposits=40)


@pytest.fixture(scope="module")
def truth_map(many_world):
    g = xp.make_grid(many_world.bounds, resolution=1000.0, crs=many_world.crs)
    xx, yy = np.meshgrid(g.x.values, g.y.values)
    fp = many_world.footprint(xx, yy)
    return write_crs(
        xr.DataArray(fp / fp.max(), dims=("y", "x"), coords={"y": g.y, "x": g.x}, name="truth"),
        many_world.crs,
    )


def test_evaluate_truth_high_random_chance(many_world, truth_map):
    rep = evaluate(truth_map, many_world.deposits, blocks=(12, 12))
    assert rep.metrics["roc_auc"] > 0.95
    assert rep.metrics["auc_ci"]["lower"] > 0.9
    assert rep.metrics["success_rate_auc"] > 0.9
    assert rep.blocks is not None and len(rep.blocks) == 144
    assert rep.settings["deposits_used"] == 40
    rnd = truth_map.copy(data=np.random.default_rng(0).random(truth_map.shape))
    r2 = evaluate(rnd, many_world.deposits, negatives=500, seed=0)
    assert abs(r2.metrics["roc_auc"] - 0.5) < 0.15
    assert abs(r2.metrics["success_rate_auc"] - 0.5) < 0.15
    assert r2.settings["n_negatives"] == 500
    json.dumps(rep.to_dict())  # JSON-able
    json.loads(r2.to_json())


def test_evaluate_dask_equals_numpy_and_accessor(many_world, truth_map):
    lazy = truth_map.chunk({"y": (5, 7) * 5, "x": 7})
    a = evaluate(truth_map, many_world.deposits, negatives=200, seed=3)
    b = lazy.prospect.evaluate(many_world.deposits, negatives=200, seed=3)
    assert a.metrics == b.metrics
    pd.testing.assert_frame_equal(a.success_rate, b.success_rate)
    pd.testing.assert_frame_equal(a.blocks, b.blocks)


def test_compare_table_and_figures(many_world, truth_map, tmp_path):
    err = truth_map * 50.0 + 3.0  # an "anomaly score" outside [0, 1]
    rnd = truth_map.copy(data=np.random.default_rng(1).random(truth_map.shape))
    maps = {"truth": truth_map, "anomaly": err, "random": rnd}
    t = compare(maps, many_world.deposits, negatives=300, seed=0)
    assert list(t.index) == ["truth", "anomaly", "random"]
    assert t.loc["truth", "auc"] == pytest.approx(t.loc["anomaly", "auc"])
    assert bool(t.loc["anomaly", "scaled"]) and not bool(t.loc["truth", "scaled"])
    assert t.loc["truth", "f1"] == pytest.approx(t.loc["anomaly", "f1"])  # min-max of a [0,1]
    assert t.loc["truth", "auc"] > t.loc["random", "auc"] + 0.3
    assert (t["n_negatives"] == 300).all()
    rep = evaluate(truth_map, many_world.deposits, negatives=300, seed=0)
    assert t.loc["truth", "auc"] == pytest.approx(rep.metrics["roc_auc"])
    p1, p2 = tmp_path / "cmp.png", tmp_path / "report.png"
    plot_compare(maps, many_world.deposits, path=p1, negatives=300)
    rep.plot(p2)
    for p in (p1, p2):
        assert p.stat().st_size > 10_000 and p.read_bytes()[:4] == b"\x89PNG"


def test_compare_judges_each_map_at_its_own_top_share_by_default(many_world, truth_map):
    # scores on different scales: the default judges each at its own top 10 % of the area
    maps = {"truth": truth_map, "anomaly": truth_map * 50.0 + 3.0}
    t = compare(maps, many_world.deposits, negatives=300, seed=0, scale=None)
    assert t.attrs["top_percent"] == 10.0 and t.attrs["threshold"] is None
    for name, m in maps.items():
        v = m.values[np.isfinite(m.values)]
        assert np.mean(v >= t.loc[name, "threshold"]) == pytest.approx(0.10, abs=0.005)
    assert t.loc["truth", "f1"] == pytest.approx(t.loc["anomaly", "f1"])
    assert t.loc["truth", "capture_area_fraction"] == pytest.approx(0.10, abs=0.005)
    one = compare(maps, many_world.deposits, negatives=300, seed=0, scale=None, threshold=0.5)
    assert (one["threshold"] == 0.5).all() and one.attrs["top_percent"] is None
    with pytest.raises(xp.DataError, match="not both"):
        compare(maps, many_world.deposits, threshold=0.5, top_percent=5)


def test_evaluate_computes_a_lazy_map_once(many_world, truth_map):
    import dask

    lazy = truth_map.chunk({"y": (5, 7) * 5, "x": 7})
    calls = []

    def counting_scheduler(dsk, keys, **kwargs):
        calls.append(keys)
        return dask.get(dsk, keys, **kwargs)

    for negatives in (None, 150):
        calls.clear()
        with dask.config.set(scheduler=counting_scheduler):
            rep = evaluate(lazy, many_world.deposits, negatives=negatives, blocks=(6, 6))
        assert len(calls) == 1, calls  # curves, capture and blocks reuse the values
        ref = evaluate(truth_map, many_world.deposits, negatives=negatives, blocks=(6, 6))
        assert rep.metrics == ref.metrics
    calls.clear()
    with dask.config.set(scheduler=counting_scheduler):
        compare({"lazy": lazy, "scaled": lazy * 7.0}, many_world.deposits, negatives=100)
    assert len(calls) == 2, calls  # once per map, scaling included


def test_registered_metric_appears_in_evaluate_and_compare(many_world, truth_map):
    from xprospect.evaluate import (
        metric_registry,
        register_metric,
        score_metrics,
        unregister_metric,
    )

    def top_decile(y, s):
        return float(y[s >= np.quantile(s, 0.9)].mean())

    # the package registers PR AUC, Brier and capture at the top 5/10/20 % beside the AUC
    assert list(metric_registry()) == [
        "roc_auc",
        "average_precision",
        "brier",
        "capture_5",
        "capture_10",
        "capture_20",
    ]
    register_metric(
        "top_decile_precision",
        top_decile,
        column="top10_precision",
        description="share of deposits among the top 10 % of scores",
    )
    try:
        with pytest.raises(xp.XProspectError, match="already registered"):
            register_metric("top_decile_precision", top_decile)
        rep = evaluate(truth_map, many_world.deposits, negatives=200, seed=1)
        assert 0.0 < rep.metrics["top_decile_precision"] <= 1.0
        assert score_metrics(
            [0, 0, 1, 1], [0.1, 0.2, 0.3, 0.9], names=["roc_auc", "top_decile_precision"]
        ) == {"roc_auc": 1.0, "top_decile_precision": 1.0}
        table = compare({"truth": truth_map}, many_world.deposits, negatives=200, seed=1)
        assert table.loc["truth", "top10_precision"] == rep.metrics["top_decile_precision"]
        assert table.loc["truth", "auc"] == rep.metrics["roc_auc"]
        assert "roc_auc" not in table.columns  # roc_auc's column is "auc"
        json.loads(rep.to_json())
    finally:
        unregister_metric("top_decile_precision")
    assert "top_decile_precision" not in evaluate(truth_map, many_world.deposits).metrics
    with pytest.raises(xp.XProspectError, match="not registered"):
        score_metrics([0, 1], [0.1, 0.9], names=["nope"])


def test_evaluate_bad_inputs(truth_map, many_world):
    with pytest.raises(xp.DataError, match="no finite"):
        evaluate(truth_map * np.nan, many_world.deposits)
    with pytest.raises(xp.GridError, match="dims"):
        evaluate(truth_map.expand_dims(band=[1, 2]), many_world.deposits)


def test_benchmark_free_doctests():
    import xprospect.evaluate.blocks as b
    import xprospect.evaluate.curves as c
    import xprospect.evaluate.metrics as m
    import xprospect.evaluate.report as r
    import xprospect.evaluate.splits as v

    for mod in (b, c, v, m, r):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.failed == 0 and res.attempted > 0, mod.__name__


def test_evaluate_never_imports_evidence():
    """The evidence <-> evaluate cycle stays broken: evaluate reaches points via xprospect.points.

    evidence may use evaluate's two leaf modules (metrics, splits), which import nothing of
    the package above the ground floor.
    """
    import ast
    from pathlib import Path

    import xprospect.evaluate as ev

    def imported(path: Path) -> set[str]:
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        return names

    pkg = Path(ev.__file__).parent
    for path in pkg.glob("*.py"):
        bad = {m for m in imported(path) if m.startswith("xprospect.evidence")}
        assert not bad, f"{path.name} imports {sorted(bad)}"
    ground = ("xprospect._dims", "xprospect.exceptions")
    for leaf in ("metrics.py", "splits.py"):
        internal = {m for m in imported(pkg / leaf) if m.startswith("xprospect")}
        assert internal <= set(ground), f"{leaf} imports {sorted(internal)}"


def test_evaluate_calls_the_top_ten_percent_prospective_by_default(many_world, truth_map):
    """Issue 12, part 8: the default threshold is a share of the area, not the score 0.5."""
    rep = evaluate(truth_map, many_world.deposits, negatives=200, seed=0)
    v = truth_map.values[np.isfinite(truth_map.values)]
    assert rep.settings["top_percent"] == DEFAULT_TOP_PERCENT[0] == 10.0
    assert rep.settings["threshold"] == pytest.approx(np.quantile(v, 0.9))
    assert np.mean(v >= rep.settings["threshold"]) == pytest.approx(0.10, abs=0.01)
    assert rep.capture["area_fraction"] == pytest.approx(0.10, abs=0.01)
    top2 = evaluate(truth_map, many_world.deposits, negatives=200, seed=0, top_percent=2)
    assert np.mean(v >= top2.settings["threshold"]) == pytest.approx(0.02, abs=0.005)
    fixed = evaluate(truth_map, many_world.deposits, negatives=200, seed=0, threshold=0.5)
    assert fixed.settings["threshold"] == 0.5 and fixed.settings["top_percent"] is None
    assert fixed.capture["threshold"] == 0.5
    with pytest.raises(xp.DataError, match="not both"):
        evaluate(truth_map, many_world.deposits, threshold=0.5, top_percent=10)
    with pytest.raises(xp.DataError, match=r"top percent must be in \(0, 100\]"):
        evaluate(truth_map, many_world.deposits, top_percent=0)
