"""Leave-holes-out folds and the block-model harness on a small synthetic drilled volume."""

from __future__ import annotations

import numpy as np
import pytest

from xprospect.evaluate.splits import hole_folds
from xprospect.exceptions import XProspectWarning

ELEMENTS = ["Au", "Ag", "As", "W"]


def _holes(seed=0, n=24, per=12):
    """Straight inclined holes: (n * per, 3) positions and hole labels."""
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)
    step = np.arange(per) * 10.0
    xyz = np.concatenate(
        [np.column_stack([cx[i] + 0.3 * step, cy[i] + 0.2 * step, -step]) for i in range(n)]
    )
    return xyz, np.repeat(np.array([f"H{i:02d}" for i in range(n)]), per)


@pytest.mark.parametrize("drop", ["composites", "holes"])
def test_hole_folds_never_split_a_hole_and_respect_the_buffer(drop):
    xyz, holes = _holes()
    buffer = 60.0
    folds = hole_folds(xyz, holes, n_folds=4, block_size=250.0, buffer=buffer, drop=drop)
    tested = np.concatenate([te for _, te in folds])
    assert np.array_equal(np.sort(tested), np.arange(len(xyz)))  # each composite once
    for tr, te in folds:
        test_holes = set(holes[te])
        # every composite of a test hole is tested in this fold, none trains
        assert np.isin(np.flatnonzero(np.isin(holes, list(test_holes))), te).all()
        assert not test_holes & set(holes[tr])
        d = np.sqrt(((xyz[tr][:, None, :] - xyz[te][None, :, :]) ** 2).sum(-1))
        assert d.min() > buffer
        if drop == "holes":  # training holes are whole
            for h in set(holes[tr]):
                assert (holes[tr] == h).sum() == (holes == h).sum()


def test_hole_folds_from_a_dataset_group_by_plan_view_block():
    xr = pytest.importorskip("xarray")
    xyz, holes = _holes(seed=1)
    ds = xr.Dataset(
        coords={
            "x": ("sample", xyz[:, 0]),
            "y": ("sample", xyz[:, 1]),
            "z": ("sample", xyz[:, 2]),
            "hole_id": ("sample", holes),
        }
    )
    a = hole_folds(ds, n_folds=3, block_size=300.0, seed=2)
    b = hole_folds(xyz, holes, n_folds=3, block_size=300.0, seed=2)
    for (tra, tea), (trb, teb) in zip(a, b, strict=True):
        assert np.array_equal(tra, trb) and np.array_equal(tea, teb)
    # holes whose centroids share a 300 m block share a fold
    cen = {h: xyz[holes == h].mean(axis=0)[:2] for h in set(holes)}
    lo = np.min(list(cen.values()), axis=0)  # blocks start at the holes' minimum
    cen = {h: (c - lo) // 300.0 for h, c in cen.items()}
    fold = {h: f for f, (_, te) in enumerate(a) for h in set(holes[te])}
    for h1 in cen:
        for h2 in cen:
            if tuple(cen[h1]) == tuple(cen[h2]):
                assert fold[h1] == fold[h2]


@pytest.fixture(scope="module")
def composites():
    pytest.importorskip("trimesh")
    from xprospect.synthetic import orebody

    w = orebody(seed=0, n_holes=20, interval=20.0, hole_depth=700.0, elements=ELEMENTS)
    return w.samples()


def test_benchmark3d_same_folds_for_every_method(composites):
    pytest.importorskip("torch")
    import torch

    from xprospect.harness3d import benchmark3d

    s = composites
    y = s["ore"].values
    assert 0 < y.sum() < y.size
    methods = ["grade:Au", "gmm", "logistic", "dae"]
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        b = benchmark3d(
            s,
            "ore",
            elements=ELEMENTS,
            methods=methods,
            n_folds=3,
            block_size=300.0,
            buffer=30.0,
            resolution=40.0,
            widths=(4, 3, 2),
            detector_training={"epochs": 1, "tiles_per_epoch": 16, "batch_size": 4},
        )
    finally:
        torch.set_num_threads(n)
    t = b.table
    assert set(t.index) == set(methods)
    for col in ("kind", "auc", "auc_lower", "auc_upper", "pr_auc", "brier", "p_vs_best_baseline"):
        assert col in t.columns
    assert t.loc["grade:Au", "kind"] == "raw" and t.loc["dae", "kind"] == "deep"
    assert np.isnan(t.loc["grade:Au", "brier"]) and np.isfinite(t.loc["logistic", "brier"])
    assert (t["auc_lower"] <= t["auc"]).all() and (t["auc"] <= t["auc_upper"]).all()
    # identical folds: the harness's fold assignment is hole_folds', the same for all methods
    folds = hole_folds(s, n_folds=3, block_size=300.0, buffer=30.0, seed=0)
    expect = np.empty(len(y), dtype=int)
    for f, (_, te) in enumerate(folds):
        expect[te] = f
    assert np.array_equal(b.scores["fold"].to_numpy(), expect)
    for m in methods:
        for f, (tr, _) in enumerate(folds):
            assert np.array_equal(b.training[m][f], tr)
    holes = s["hole_id"].values
    for tr, te in folds:
        assert not set(holes[tr]) & set(holes[te])
    assert b.reports["dae"][0]["tile_positions"] > 0 and "tile" in b.reports["dae"][0]
    assert b.scores["grade:Au"].notna().all()


def test_benchmark3d_warns_when_ore_is_the_majority_of_all_ground(composites):
    from xprospect.harness3d import benchmark3d

    s = composites
    mostly = np.ones(s.sizes["sample"], dtype=bool)
    mostly[::4] = False  # "ore" on 75 % of the composites
    with pytest.warns(XProspectWarning, match="majority as normal"):
        benchmark3d(
            s,
            mostly,
            elements=ELEMENTS,
            methods=["gmm"],
            n_folds=3,
            block_size=300.0,
            resolution=80.0,
            normal="all",
        )


def _fold_inputs(s, f=0, buffer=30.0):
    """One fold's training composites, block model, voxels and supervised rows."""
    from xprospect import harness3d as h
    from xprospect.grid.template import make_voxels
    from xprospect.points import as_points, points_to_index

    folds = hole_folds(s, n_folds=3, block_size=300.0, buffer=buffer, seed=0)
    tr, _ = folds[f]
    vox = make_voxels(like=s, resolution=40.0)
    idx, inside = points_to_index(as_points(s, like=vox), vox)
    train = s.isel(sample=tr)
    _, stack, stats = h._block_model(train, vox, ELEMENTS, {"k": 16}, None)
    y = s["ore"].values[tr]
    ti, ok = idx[tr], inside[tr].copy()
    ok[ok] = np.isfinite(stack.values).all(axis=0)[tuple(ti[ok].T)]
    neg = ok & ~y
    return train, vox, stack, stats, np.where(ok[:, None], ti, 0), ok, y, neg


def _inner(train, vox, stack, stats, cells, ok, y, neg, window=None):
    from xprospect import harness3d as h

    return h._inner_training(
        train,
        train["hole_id"].values,
        cells,
        ok,
        y,
        neg,
        voxels=vox,
        stack=stack,
        elements=ELEMENTS,
        idw={"k": 16},
        max_distance=None,
        stats=stats,
        n_inner=3,
        block_size=300.0,
        buffer=30.0,
        window=window,
        seed=0,
    )


def test_leave_holes_out_training_features_ignore_the_own_holes_assays(composites):
    """A training composite's features (table rows and CNN windows) hold no assay of its hole."""
    train, vox, stack, stats, cells, ok, y, neg = _fold_inputs(composites)
    a = _inner(train, vox, stack, stats, cells, ok, y, neg, window=3)
    holes = train["hole_id"].values
    target = holes[np.flatnonzero(ok & y)[0]]  # a training hole through the ore
    changed = train.copy(deep=True)
    rows = holes == target
    rng = np.random.default_rng(1)
    for e in ELEMENTS:  # the hole's own assays scrambled by factors of 0.01-100
        changed[e].values[rows] = changed[e].values[rows] * 10.0 ** rng.uniform(-2, 2, rows.sum())
    b = _inner(changed, vox, stack, stats, cells, ok, y, neg, window=3)
    # the inner groups depend on positions only: the same rows, labels and windows
    assert np.array_equal(a.group, b.group) and np.array_equal(a.cell, b.cell)
    assert np.array_equal(a.y, b.y) and a.y.any() and not a.y.all()
    # the group holding the target hole: features unchanged, bit for bit
    g = a.group[(a.cell == cells[rows & ok][0]).all(axis=1)]
    assert g.size >= 1
    own = np.isin(a.group, g)
    np.testing.assert_array_equal(a.x[own], b.x[own])
    assert a.windows is not None and b.windows is not None and a.window_group is not None
    wown = np.isin(a.window_group, g)
    assert wown.any()
    np.testing.assert_array_equal(a.windows[wown], b.windows[wown])
    # ...while the other groups, which interpolate from that hole, do see the change
    assert not np.allclose(a.x[~own], b.x[~own])
    # and the fold's block model at the hole's voxels is its own assays (the old defect)
    from xprospect import harness3d as h

    _, stack_b, _ = h._block_model(changed, vox, ELEMENTS, {"k": 16}, None)
    at = tuple(cells[rows & ok].T)
    assert not np.allclose(stack.values[(slice(None), *at)], stack_b.values[(slice(None), *at)])


def test_leave_holes_out_values_match_the_block_model_of_the_same_holes(composites):
    """The point evaluation is the block model's gridder: equal at voxels, given all holes."""
    from xprospect import harness3d as h

    train, vox, stack, stats, cells, ok, _, _ = _fold_inputs(composites)
    at = np.unique(cells[ok], axis=0)
    got = h._voxel_values(train, vox, at, ELEMENTS, {"k": 16}, None, stats)
    ref = stack.values[(slice(None), *at.T)].T
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_benchmark3d_training_features_option(composites):
    pytest.importorskip("torch")
    import torch

    from xprospect.exceptions import DataError
    from xprospect.harness3d import benchmark3d

    kw = dict(
        elements=ELEMENTS,
        methods=["grade:Au", "logistic", "cnn3d"],
        n_folds=3,
        block_size=300.0,
        buffer=30.0,
        resolution=40.0,
        cnn_training={"epochs": 1, "widths": (4,), "ensemble": 2},
    )
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        lho = benchmark3d(composites, "ore", training_features="leave_holes_out", **kw)
        old = benchmark3d(composites, "ore", **kw)
    finally:
        torch.set_num_threads(n)
    assert lho.settings["training_features"] == "leave_holes_out"
    assert old.settings["training_features"] == "block_model"  # the default
    assert (lho.folds["inner_groups"] >= 2).all() and (lho.folds["inner_rows"] > 0).all()
    assert (old.folds["inner_groups"] == 0).all()
    for b in (lho, old):
        assert b.scores[["logistic", "cnn3d"]].notna().all().all()
    # the grade does not train: identical; the supervised scores differ with their features
    np.testing.assert_array_equal(lho.scores["grade:Au"], old.scores["grade:Au"])
    assert not np.allclose(lho.scores["logistic"], old.scores["logistic"])
    with pytest.raises(DataError, match="training_features"):
        benchmark3d(composites, "ore", training_features="own", **kw)
    with pytest.raises(DataError, match="inner_folds"):
        benchmark3d(composites, "ore", training_features="leave_holes_out", inner_folds=1, **kw)
    bad = dict(kw, methods=["cnn3d"], cnn_training={"ensemble": 0})
    with pytest.raises(DataError, match="ensemble"):
        benchmark3d(composites, "ore", **bad)


def test_benchmark3d_detector_seed_ensemble_is_the_mean_of_its_members(composites):
    """``detector_training={"seeds": [...]}``: each fold's STOAD is a seed ensemble."""
    pytest.importorskip("torch")
    import torch

    from xprospect.harness3d import benchmark3d

    kw = dict(
        elements=ELEMENTS,
        methods=["stoad"],
        n_folds=3,
        block_size=300.0,
        buffer=30.0,
        resolution=40.0,
        widths=(4, 3, 2),
    )
    train = {"epochs": 1, "tiles_per_epoch": 16, "batch_size": 4}
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = [
            benchmark3d(composites, "ore", detector_training={**train, "seeds": [s]}, **kw)
            for s in (3, 8)
        ]
        ens = benchmark3d(composites, "ore", detector_training={**train, "seeds": [3, 8]}, **kw)
    finally:
        torch.set_num_threads(n)
    a, b = (o.scores["stoad"].to_numpy() for o in one)
    both = np.isfinite(a) & np.isfinite(b)
    assert both.sum() > 0.9 * len(a)
    assert not np.allclose(a[both], b[both])  # the members differ by seed
    np.testing.assert_allclose(
        ens.scores["stoad"].to_numpy(), (a + b) / 2.0, rtol=1e-4, atol=1e-5, equal_nan=True
    )
    for rep in ens.reports["stoad"]:  # one report per fold, naming its members
        assert rep["seeds"] == [3, 8] and len(rep["members"]) == 2


def test_benchmark3d_fold_without_training_ore_leaves_supervised_scores_unscored(composites):
    """A fold whose training holes hold no ore: warned, its supervised scores NaN, no crash."""
    from xprospect.harness3d import benchmark3d

    s = composites
    kw = dict(n_folds=3, block_size=300.0, buffer=30.0)
    folds = hole_folds(s, seed=0, **kw)
    _, te0 = folds[0]
    y = np.zeros(s.sizes["sample"], dtype=bool)
    au = s["Au"].values[te0]
    y[te0[np.argsort(au)[-12:]]] = True  # "ore" only in the holes fold 0 tests
    with pytest.warns(XProspectWarning, match="fold 0: 0 ore voxel"):
        b = benchmark3d(
            s, y, elements=ELEMENTS, methods=["grade:Au", "logistic"], resolution=40.0, **kw
        )
    fold = b.scores["fold"].to_numpy()
    lg = b.scores["logistic"].to_numpy()
    assert np.isnan(lg[fold == 0]).all() and np.isfinite(lg[fold > 0]).all()
    assert b.scores["grade:Au"].notna().all()
    assert b.table.loc["logistic", "n_nan_cells"] == (fold == 0).sum()


def test_benchmark3d_detector_without_training_tiles_leaves_its_folds_unscored(composites):
    """A detector refused for too few tiles: warned, its folds NaN, the other methods run."""
    from xprospect.exceptions import DataError
    from xprospect.harness3d import benchmark3d

    s = composites
    kw = dict(
        elements=ELEMENTS,
        n_folds=3,
        block_size=300.0,
        buffer=30.0,
        resolution=40.0,
        widths=(4, 3, 2),
    )
    fast = {"epochs": 1, "tiles_per_epoch": 16, "batch_size": 4, "seeds": 1}
    # normal ground 900 m from every training ore composite: a few hundred scattered voxels
    with pytest.warns(XProspectWarning, match=r"fold \d: dae cannot be trained.*0 13-cell tile"):
        b = benchmark3d(
            s,
            "ore",
            methods=["grade:Au", "dae"],
            detector_training=fast,
            normal_buffer=900.0,
            **kw,
        )
    assert b.scores["dae"].isna().all() and b.scores["grade:Au"].notna().all()
    assert [r["fold"] for r in b.reports["dae"]] == [0, 1, 2]
    assert all("tile positions" in r["skipped"] for r in b.reports["dae"])
    assert b.table.loc["dae", "n_nan_cells"] == s.sizes["sample"]
    # a bad setting is not a thin ground: it still stops the run
    bad = {"epochs": 1, "min_valid": 2.0, "seeds": 1}
    with pytest.raises(DataError, match="min_valid must be in"):
        benchmark3d(s, "ore", methods=["dae"], detector_training=bad, **kw)


def test_benchmark3d_geometry_controls_read_where_the_data_are(composites):
    """coverage: the data-holding share of the window at the composite's voxel in the fold's
    block model; elevation: z, signed by the training composites; both kind "raw"."""
    from scipy.ndimage import uniform_filter

    from xprospect.evaluate import roc_auc
    from xprospect.grid.template import make_voxels
    from xprospect.harness3d import benchmark3d, coverage, data_mask
    from xprospect.points import as_points, points_to_index

    s = composites
    kw = dict(n_folds=3, block_size=300.0, buffer=30.0)
    b = benchmark3d(
        s,
        "ore",
        elements=ELEMENTS,
        methods=["grade:Au", "coverage", "elevation", "cnn3d_mask"],
        resolution=40.0,
        max_distance=120.0,
        cnn_training={"window": 3, "epochs": 1, "widths": (4,)},
        **kw,
    )
    t = b.table
    assert (t.loc[["coverage", "elevation", "cnn3d_mask"], "kind"] == "raw").all()
    assert np.isfinite(t.loc["cnn3d_mask", "brier"])  # a probability, as cnn3d's
    assert b.scores["cnn3d_mask"].notna().all()  # the mask is defined on every voxel
    folds = hole_folds(s, seed=0, **kw)
    y, z = s["ore"].values, s["z"].values
    cov = b.scores["coverage"].to_numpy()
    ele = b.scores["elevation"].to_numpy()
    assert np.nanmin(cov) >= 0.0 and np.nanmax(cov) <= 1.0
    vox = make_voxels(like=s, resolution=40.0)
    idx, inside = points_to_index(as_points(s, like=vox), vox)
    for tr, te in folds:
        sign = 1.0 if roc_auc(y[tr], z[tr]) >= 0.5 else -1.0
        np.testing.assert_array_equal(ele[te], sign * z[te])
        # the fold's block model holds data within 120 m of its training composites only
        block = s.isel(sample=tr).prospect.idw(like=vox, elements=ELEMENTS, k=16)
        block = block.prospect.mask_distance(s.isel(sample=tr), max_distance=120.0)
        finite = np.isfinite(block.prospect.stack().values).all(axis=0)
        want = uniform_filter(finite.astype(float), size=3, mode="constant")
        ok = inside[te]
        np.testing.assert_allclose(cov[te][ok], want[tuple(idx[te][ok].T)], atol=1e-12)
        np.testing.assert_allclose(coverage(finite, 3), want, atol=1e-12)
        one = data_mask(block.prospect.stack())
        assert list(one["element"].values) == ["data"]
        np.testing.assert_array_equal(one.values[0], finite.astype(one.dtype))
        assert set(np.unique(coverage(finite, 3) * 27)) <= set(range(28))  # exact counts
        assert (cov[te][ok] < 1).any()  # held-out holes lie at the edge of the drilled volume
    with pytest.raises(Exception, match="coverage"):
        benchmark3d(s, "ore", elements=ELEMENTS, methods=["volume"], **kw)
    # without a distance mask the data mask is all ones: said, not silently constant
    with pytest.warns(XProspectWarning, match="no drilling pattern"):
        flat = benchmark3d(
            s,
            "ore",
            elements=ELEMENTS,
            methods=["cnn3d_mask"],
            resolution=40.0,
            cnn_training={"window": 3, "epochs": 1, "widths": (4,)},
            **kw,
        )
    per_fold = flat.scores.groupby("fold")["cnn3d_mask"].nunique()
    assert (per_fold == 1).all()


def test_shifted_labels_move_every_label_to_another_hole_and_keep_the_runs():
    from xprospect.exceptions import DataError
    from xprospect.harness3d import shifted_labels

    _, holes = _holes(seed=3, n=7, per=5)
    holes = np.concatenate([holes, np.repeat(["H99"], 9)])  # one longer hole
    down = np.concatenate([np.arange(35) % 5, np.arange(9)]) * 2.0
    rng = np.random.default_rng(4)
    depth_of_first = set()
    for _ in range(50):
        src = shifted_labels(np.arange(len(holes)), holes, down, rng)  # where each came from
        assert np.array_equal(np.sort(src), np.arange(len(holes)))  # a permutation
        assert (holes[src] != holes).all()  # every label left its hole
        depth_of_first.add(float(down[np.flatnonzero(src == 0)[0]]))
        for h in np.unique(holes):  # down a hole the labels run in down-hole order, cyclically
            mine = np.flatnonzero(holes == h)[np.argsort(down[holes == h])]
            origin = src[mine]
            nxt = np.roll(origin, -1)
            breaks = (holes[nxt] != holes[origin]) | (down[nxt] <= down[origin])
            assert breaks.sum() <= (2 if len(mine) == 5 else 4)  # chain cut, rotation wrap
    assert len(depth_of_first) >= 4  # and labels leave their depth: the top one lands anywhere
    y = np.zeros(len(holes), dtype=bool)
    y[[0, 1, 2, 40]] = True
    assert shifted_labels(y, holes, down, rng).sum() == 4
    with pytest.raises(DataError, match="H99"):
        shifted_labels(y[:14], holes[-14:], down[-14:], rng)  # H99: 9 of 14


def test_shifted_null_is_centred_and_wider_than_a_composite_shuffle(composites):
    """Runs of ore along holes: a composite-by-composite shuffle gives too narrow a null."""
    from sklearn.metrics import roc_auc_score

    from xprospect.harness3d import shifted_labels

    s = composites
    y, au = s["ore"].values, s["Au"].values
    holes, down = s["hole_id"].values, s["from"].values
    assert roc_auc_score(y, au) > 0.9
    rng = np.random.default_rng(0)
    shifted = [roc_auc_score(shifted_labels(y, holes, down, rng), au) for _ in range(400)]
    naive = [roc_auc_score(rng.permutation(y), au) for _ in range(400)]
    assert abs(np.mean(shifted) - 0.5) < 3 * np.std(shifted) / np.sqrt(400)
    assert np.std(shifted) > 1.3 * np.std(naive)  # 0.095 against 0.058 (seed 0)


def test_benchmark3d_controls_rerun_every_method_on_shifted_labels(composites, tmp_path):
    """Each control draw is the harness re-run on shifted labels; its p reads the real AUC."""
    from xprospect.exceptions import DataError
    from xprospect.harness3d import _CONTROL_KEY, benchmark3d, shifted_labels

    s = composites
    kw = dict(
        elements=ELEMENTS,
        methods=["grade:Au", "logistic", "gmm"],
        n_folds=3,
        block_size=300.0,
        buffer=30.0,
        resolution=40.0,
    )
    b = benchmark3d(s, "ore", controls=3, **kw)
    plain = benchmark3d(s, "ore", **kw)
    assert "control_p" not in plain.table and plain.controls is None
    t, c = b.table, b.controls
    assert np.allclose(t["auc"], plain.table["auc"].reindex(t.index))  # the real run unchanged
    assert set(c.index) == set(t.index) and (c["draws"] == 3).all()
    assert np.allclose(t["control_auc"], c["auc"].reindex(t.index))
    assert t["control_p"].isin([0.25, 0.5, 0.75, 1.0]).all()
    # the interpolated grade ranks the real ore above every one of its 3 control draws
    assert t.loc["grade:Au", "control_p"] == 0.25
    assert (c["auc"] < 0.62).all()
    # each draw is the plain harness on the labels shifted by the draw's own seed stream
    y = s["ore"].values
    draws = []
    for d in range(3):
        rng = np.random.default_rng([0, d, _CONTROL_KEY])
        moved = shifted_labels(y, s["hole_id"].values, s["from"].values, rng)
        assert moved.sum() == y.sum() and (moved != y).any()
        draws.append(benchmark3d(s, moved, **kw).table["auc"].reindex(c.index))
    assert np.allclose(c["auc"], np.mean(draws, axis=0))
    assert np.allclose(c["auc_sd"], np.std(draws, axis=0, ddof=1))
    # the figure: a bar per method with its control mark, a ROC curve per method
    fig = b.plot(tmp_path / "bench3d.png")
    bars, roc = fig.axes[:2]
    assert (tmp_path / "bench3d.png").stat().st_size > 0
    assert [p.get_width() for p in bars.patches[: len(t)]] == list(t["auc"][::-1])
    marks = [col for col in bars.collections if col.get_label().startswith("its shifted")]
    assert np.allclose(marks[0].get_offsets()[:, 0], t["control_auc"][::-1])
    curves = {ln.get_label(): ln for ln in roc.lines}
    for m in t.index:
        ln = curves[f"{m} ({t.loc[m, 'auc']:.3f})"]
        assert np.isclose(np.trapezoid(ln.get_ydata(), ln.get_xdata()), t.loc[m, "auc"])
    with pytest.raises(DataError, match="controls"):
        benchmark3d(s, "ore", controls=-1, **kw)
    # a draw's warnings name the draw: two ore composites are too few for a supervised fit
    y2 = np.zeros_like(y)
    y2[:2] = True
    kw["methods"] = ["grade:Au", "logistic"]
    with pytest.warns(XProspectWarning) as rec:
        benchmark3d(s, y2, controls=1, **kw)
    msgs = [str(w.message) for w in rec]
    assert any(m.startswith("fold ") for m in msgs)  # the real run's
    assert any(m.startswith("control draw 0: fold ") and "ore voxel" in m for m in msgs)


def test_benchmark3d_controls_refused_before_the_real_run(composites, monkeypatch):
    """Where one hole holds half the composites no shift exists: refused before any fit."""
    import xprospect.harness3d as h3
    from xprospect.exceptions import DataError

    s = composites.copy()
    holes = s["hole_id"].values.copy()
    names = np.unique(holes)
    holes[np.isin(holes, names[: len(names) // 2 + 1])] = "BIG"
    s = s.assign_coords(hole_id=("sample", holes))

    def ran(*args, **kwargs):
        raise AssertionError("the real run started")

    monkeypatch.setattr(h3, "hole_folds", ran)
    with pytest.raises(DataError, match="hole 'BIG' holds"):
        h3.benchmark3d(s, "ore", elements=ELEMENTS, methods=["grade:Au"], controls=2)


def test_patchset_from_windows_reads_back_the_windows():
    import xarray as xr

    from xprospect.patches.patchset import PatchSet

    rng = np.random.default_rng(0)
    stack = xr.DataArray(
        np.zeros((2, 4, 5, 6), dtype="float32"),
        dims=("element", "z", "y", "x"),
        coords={
            "element": ["a", "b"],
            "z": -10.0 * np.arange(4),
            "y": 10.0 * np.arange(5),
            "x": 10.0 * np.arange(6),
        },
    )
    win = rng.normal(size=(7, 2, 3, 3, 3)).astype("float32")
    lab = np.array([1, 0, 0, 1, 0, 0, 0])
    ps = PatchSet.from_windows(win, lab, like=stack)
    assert len(ps) == 7 and ps.elements == ["a", "b"]
    np.testing.assert_array_equal(ps.labels, lab)
    np.testing.assert_array_equal(ps.load(), win)
    from xprospect.exceptions import DataError

    with pytest.raises(DataError, match="windows must be"):
        PatchSet.from_windows(win[:, :1], lab, like=stack)


def test_supervised_fit_cells_fits_a_table_and_checks_it():
    from xprospect.baselines import LogisticModel
    from xprospect.exceptions import DataError

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x[:, 0] + 0.3 * rng.normal(size=200) > 1.0
    m = LogisticModel().fit_cells(x, y, elements=["a", "b", "c"], ndim=3, seed=0)
    assert m.elements_ == ["a", "b", "c"] and m.ndim_ == 3
    assert m.fit_report_ == {"positive_cells": int(y.sum()), "negative_cells": int((~y).sum())}
    s = m.score_cells(x)
    assert s[y].mean() > s[~y].mean()  # the first column carries the label
    bad = x.copy()
    bad[5, 1] = np.nan
    with pytest.raises(DataError, match="row 5"):
        LogisticModel().fit_cells(bad, y, elements=["a", "b", "c"])
    with pytest.raises(DataError, match="positive"):
        LogisticModel().fit_cells(x, np.zeros(200, dtype=bool), elements=["a", "b", "c"])
    with pytest.raises(DataError, match="table"):
        LogisticModel().fit_cells(x, y, elements=["a", "b"])
