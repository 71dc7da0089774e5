"""The benchmark harness: DeLong against a reference, identical folds, the buffer, controls."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import load_example
from scipy import stats
from scipy.spatial import cKDTree

import xprospect as xp
from xprospect import baselines as B
from xprospect.evaluate import delong_covariance, delong_test
from xprospect.exceptions import DataError, XProspectWarning
from xprospect.harness import DeepMethod, benchmark
from xprospect.points import make_points, point_cells

BUFFER = 3000.0


def delong_reference(y, scores):
    """DeLong et al. (1988) by its O(m n) structural components (kernel psi over all pairs)."""
    y = np.asarray(y, bool)
    k = scores.shape[0]
    m, n = int(y.sum()), int((~y).sum())
    v10, v01, auc = np.empty((k, m)), np.empty((k, n)), np.empty(k)
    for r in range(k):
        x, z = scores[r, y], scores[r, ~y]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        auc[r] = psi.mean()
        v10[r] = psi.mean(axis=1)
        v01[r] = psi.mean(axis=0)
    s10 = np.array(
        [
            [np.sum((v10[i] - auc[i]) * (v10[j] - auc[j])) / (m - 1) for j in range(k)]
            for i in range(k)
        ]
    )
    s01 = np.array(
        [
            [np.sum((v01[i] - auc[i]) * (v01[j] - auc[j])) / (n - 1) for j in range(k)]
            for i in range(k)
        ]
    )
    return auc, s10 / m + s01 / n


@pytest.fixture(scope="module")
def world():
    w = xp.synthetic.survey(seed=0, n_samples=800, n_deposits=80, elements=["Au", "As", "Cu", "Pb"])
    maps = w.samples.prospect.idw(like=xp.make_grid(like=w.samples, resolution=1000))
    return maps.prospect.log10().prospect.stack().load(), w.deposits


METHODS = [
    "raw",
    ("rf", B.RandomForestModel(n_estimators=40)),
    ("gbm", B.GradientBoostingModel(max_iter=40)),
    "logistic",
    ("wofe", B.WeightsOfEvidence(n_classes=6)),
    ("gmm", B.GaussianMixtureDetector(n_components=2)),
]


@pytest.fixture(scope="module")
def run(world):
    stack, deposits = world
    # a one-epoch network is a random function of the evidence, whose shuffled control
    # strays from 0.5 (0.417 measured with a 5-cell window): the fixture trains 3 epochs
    deep = DeepMethod(
        "small_cnn",
        model_kwargs={"widths": [8]},
        window=3,
        jitter=1,
        n_per_positive=2,
        negative_ratio=5,
        fit_kwargs={"epochs": 3, "device": "cpu"},
        name="cnn",
    )
    return benchmark(
        stack, deposits, methods=[*METHODS, deep], folds=4, buffer=BUFFER, seed=0, controls=True
    )


# ---- DeLong --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_delong_matches_the_quadratic_reference(seed):
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.random(n) < 0.2
    a = y * 0.8 + rng.normal(size=n)
    b = np.round(y * 0.5 + rng.normal(size=n), 1)  # ties
    auc, cov = delong_covariance(y, np.vstack([a, b]))
    ref_auc, ref_cov = delong_reference(y, np.vstack([a, b]))
    np.testing.assert_allclose(auc, ref_auc, rtol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(np.sqrt(cov[0, 0]), xp.evaluate.delong_se(y, a), rtol=1e-10)
    t = delong_test(y, a, b)
    var = ref_cov[0, 0] + ref_cov[1, 1] - 2 * ref_cov[0, 1]
    assert t["se"] == pytest.approx(np.sqrt(var), rel=1e-10)
    assert delong_test(y, a, a)["p_value"] == 1.0


# ---- the harness ---------------------------------------------------------------------------


def test_every_method_is_judged_on_the_same_folds_and_cells(run, world):
    stack, deposits = world
    fold = run.maps["held_out_fold"].values
    held = fold >= 0
    names = list(run.table.index)
    assert set(names) == {
        "raw:Au",
        "raw:As",
        "raw:Cu",
        "raw:Pb",
        "rf",
        "gbm",
        "logistic",
        "wofe",
        "gmm",
        "cnn",
    }
    for n in names:
        assert np.isfinite(run.maps[n].values[held]).all(), n
        assert np.isnan(run.maps[n].values[~held]).all(), n
        assert run.table.loc[n, "n_nan_cells"] == 0
    # the fold assignment does not depend on which methods run
    other = benchmark(stack, deposits, methods=["raw:Au"], folds=4, buffer=BUFFER, seed=0)
    np.testing.assert_array_equal(other.maps["held_out_fold"].values, fold)
    assert other.table.loc["raw:Au", "auc"] == run.table.loc["raw:Au", "auc"]
    # every fold holds deposits out; every held-out cell is scored once
    assert (run.folds["test_deposits"] > 0).all()
    assert run.folds["test_cells"].sum() == held.sum() == run.settings["held_out_cells"]


def test_no_training_cell_of_any_method_lies_within_the_buffer_of_a_test_cell(run):
    fold = run.maps["held_out_fold"].values
    yy, xx = np.meshgrid(run.maps["y"].values, run.maps["x"].values, indexing="ij")
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    for f in range(4):
        tree = cKDTree(xy[fold.ravel() == f])
        for name, per_fold in run.training.items():
            used = per_fold[f]
            assert used.size > 0, name
            d, _ = tree.query(xy[used], p=np.inf)
            assert d.min() > BUFFER, f"{name} fold {f}: a training cell {d.min()} from a test cell"
            assert (fold.ravel()[used] != f).all()
    # the window model's footprint covers whole windows, wider than its centres
    assert run.training["cnn"][0].size > 0


def test_table_columns_and_paired_tests(run):
    t = run.table
    for col in (
        "auc",
        "auc_lower",
        "auc_upper",
        "pr_auc",
        "capture_5",
        "capture_10",
        "capture_20",
        "area_5",
        "area_10",
        "area_20",
        "tie_area_max",
        "brier",
        "p_vs_best_baseline",
        "best_baseline",
        "fold_auc_mean",
        "seconds",
    ):
        assert col in t.columns
    assert (t["auc_lower"] <= t["auc"]).all() and (t["auc"] <= t["auc_upper"]).all()
    assert (t["area_20"] >= 0.2 - 1e-9).all()
    assert np.isnan(t.loc["raw:Au", "brier"]) and np.isfinite(t.loc["rf", "brier"])
    best = t.loc["rf", "best_baseline"]
    assert t.loc[best, "kind"] != "deep" and t.loc[best, "p_vs_best_baseline"] == 1.0
    assert t["auc"].is_monotonic_decreasing
    assert t.loc["logistic", "auc"] > 0.7  # the world has learnable signal


def test_shuffled_label_controls_sit_at_chance(run):
    c = run.controls
    # every method: the trained ones re-trained on random "deposits", the detector and the
    # raw layers (their maps kept, the judged labels shuffled within each fold)
    assert set(c.index) == set(run.table.index)
    assert {"rf", "gbm", "logistic", "wofe", "gmm", "cnn", "raw:Au"} <= set(c.index)
    for name, auc in c["auc"].items():
        assert abs(auc - 0.5) <= 0.08, f"{name}: shuffled-label AUC {auc:.3f}"
    # the detector's and the Au layer's real maps rank the sites well above their controls
    assert run.table.loc["gmm", "auc"] > c.loc["gmm", "auc"] + 0.15
    assert run.table.loc["raw:Au", "auc"] > c.loc["raw:Au", "auc"] + 0.15


def test_a_detectors_control_shuffles_its_judged_labels_within_each_fold(run):
    """The detector keeps its trained map: per fold, its control scores are the real
    held-out scores in another order (as if the held-out deposits sat on random cells)."""
    from xprospect.harness import _shuffled_judging

    real = run.maps["gmm"].values.ravel()
    fold = run.maps["held_out_fold"].values.ravel()
    for f in range(4):
        s = real[fold == f]
        draws = _shuffled_judging(s, 3, 0, f)
        assert draws.shape == (3, s.size)
        for d in draws:
            np.testing.assert_array_equal(np.sort(d), np.sort(s))
            assert not np.array_equal(d, s)
        np.testing.assert_array_equal(draws, _shuffled_judging(s, 3, 0, f))  # seeded
    # ... and the harness's control table is those draws, judged like the real map
    ctrl = np.full(real.shape, np.nan)
    for f in range(4):
        ctrl[fold == f] = _shuffled_judging(real[fold == f], 1, 0, f)[0]
    held = fold >= 0
    dep = run.maps["deposit"].values.ravel()
    assert run.controls.loc["gmm", "auc"] == pytest.approx(
        xp.evaluate.roc_auc(dep[held], ctrl[held]), abs=1e-12
    )


def test_controls_of_several_draws_report_their_mean_and_spread(world):
    stack, deposits = world
    rf = ("rf", B.RandomForestModel(n_estimators=20))
    wofe = ("wofe", B.WeightsOfEvidence(n_classes=6))
    # one draw strays by chance (0.42 seen for rf): judge the mean
    b = benchmark(
        stack, deposits, methods=["logistic", rf, wofe], folds=4, buffer=BUFFER, seed=1, controls=6
    )
    c = b.controls
    assert (c["draws"] == 6).all() and np.isfinite(c["auc_sd"]).all() and (c["auc_sd"] > 0).all()
    assert (c["auc_fold_rank_sd"] > 0).all()
    for name, auc in c["auc"].items():
        assert abs(auc - 0.5) <= 0.08, f"{name}: mean shuffled-label AUC {auc:.3f}"
    # each real AUC is read against its own draws: the mean of the null and a permutation p
    t = b.table
    np.testing.assert_allclose(t["control_auc"], c["auc"].reindex(t.index), rtol=1e-12)
    assert set(np.round(t["control_p"] * 7).astype(int)) <= set(range(1, 8))
    # logistic learns the world (real AUC > 0.7): no draw of its control reaches it, so its
    # p is the smallest 6 draws can give
    assert t.loc["logistic", "control_p"] == pytest.approx(1 / 7)
    one = benchmark(
        stack, deposits, methods=["logistic"], folds=4, buffer=BUFFER, seed=1, controls=True
    )
    assert one.controls.loc["logistic", "draws"] == 1
    # the real table does not depend on the controls (beyond the columns they add)
    assert one.table.loc["logistic", "auc"] == b.table.loc["logistic", "auc"]
    plain = benchmark(stack, deposits, methods=["logistic"], folds=4, buffer=BUFFER, seed=1)
    assert "control_p" not in plain.table and plain.controls is None
    assert plain.table.loc["logistic", "auc"] == b.table.loc["logistic", "auc"]
    with pytest.raises(DataError, match="controls"):
        benchmark(stack, deposits, methods=["logistic"], folds=4, buffer=BUFFER, controls=-1)


@pytest.mark.realdata
def test_katanning_example_reads_its_documented_flags_and_refuses_others():
    """``examples/katanning_benchmark.py``: ``--controls`` alone means 5 draws (True), with a
    value that many; an unknown flag stops with a usage error instead of being ignored
    while the default table runs."""
    ex = load_example("katanning_benchmark")
    a = ex.parse(["OUT", "--controls", "--only=raw,cnn", "--jobs=2", "--sample-level"])
    assert (a.out, a.controls, a.only, a.jobs, a.sample_level) == ("OUT", True, "raw,cnn", 2, True)
    assert ex.parse(["--controls=8"]).controls == 8
    a = ex.parse([])
    assert (a.out, a.controls, a.seed, a.no_deep, a.detectors) == (None, False, 0, False, False)
    for bad in (["--no-such-flag"], ["--seed=x"], ["a", "b"]):
        with pytest.raises(SystemExit) as exc:
            ex.parse(bad)
        assert exc.value.code == 2


def test_katanning_controls_sit_at_chance(data_dir):
    """On Katanning's 20 site cells a single control draw ranges 0.3-0.7: judge the mean of 8.

    Before WofE's significance test (``min_studentized``) its mean control was 0.39 (seed 0):
    every layer's largest contrast entered, however small, and a zero deposit count in the
    tail gave the extreme cells, where real sites sit, a large negative weight.
    """
    ex = load_example("katanning_benchmark")
    if not (data_dir / ex.FOLDER).is_dir():
        pytest.skip(f"{ex.FOLDER} not in {data_dir}")
    stack, sites = ex.load(data_dir)
    with warnings.catch_warnings():
        # a fold or draw with no significant evidence gives WofE's flat prior map
        warnings.filterwarnings("ignore", "weights of evidence: no evidence", XProspectWarning)
        b = benchmark(
            stack,
            sites,
            methods=[
                "logistic",
                "wofe",
                "gmm",
                xp.DetectorMethod("dae", seeds=1, fit_kwargs={"epochs": 3, "device": "cpu"}),
            ],
            folds=4,
            block_size=ex.BLOCK,
            buffer=ex.BUFFER,
            seed=0,
            controls=8,
        )
    c = b.controls
    assert (c["draws"] == 8).all() and set(c.index) == {"logistic", "wofe", "gmm", "dae"}
    for name, auc in c["auc"].items():
        assert abs(auc - 0.5) <= 0.08, f"{name}: mean shuffled-label AUC {auc:.3f}"
        assert abs(c.loc[name, "auc_fold_rank"] - 0.5) <= 0.08, name
    # the real sites are learnable: WofE's own map ranks them above chance
    assert b.table.loc["wofe", "auc"] > 0.55
    # the same out-of-fold maps at the samples (the example's --sample-level): every
    # method's control, the sites moved to random places of the sampled ground, at chance
    t = ex.sample_level(b, data_dir)
    assert set(t.index) == {"logistic", "wofe", "gmm", "dae"} and (t["n_samples"] == 736).all()
    assert (t["control_auc"] - 0.5).abs().max() <= 0.08, t["control_auc"]


def test_fold_rank_auc_ignores_offsets_between_folds():
    """A map that is constant inside each fold has a pooled AUC set by the folds' offsets
    alone, and a fold-rank AUC of 0.5."""
    from xprospect.harness import _table

    rng = np.random.default_rng(0)
    fold = np.repeat(np.arange(4), 250)
    y = rng.random(1000) < 0.05
    y[fold == 3] |= rng.random(250) < 0.2  # a deposit-rich fold
    offset = np.array([0.3, 0.2, 0.1, 0.0])[fold]  # ... scored lowest by its model
    noise = rng.normal(size=1000)
    t = _table(
        {"flat": offset, "noisy": offset + 1e-3 * noise, "good": y + 0.0},
        {"flat": "baseline", "noisy": "baseline", "good": "baseline"},
        {"flat": True, "noisy": True, "good": True},
        y,
        fold,
        4,
        0.95,
    )
    assert t.loc["flat", "auc"] < 0.4 and t.loc["flat", "auc_fold_rank"] == pytest.approx(0.5)
    assert abs(t.loc["noisy", "auc_fold_rank"] - 0.5) < 0.1
    assert t.loc["good", "auc_fold_rank"] == pytest.approx(t.loc["good", "auc"])


def test_figure_is_saved(run, tmp_path):
    run.plot(tmp_path / "bench.png")
    assert (tmp_path / "bench.png").stat().st_size > 1000


def test_harness_names_bad_input(world):
    stack, deposits = world
    with pytest.raises(DataError, match="unknown method"):
        benchmark(stack, deposits, methods=["nope"])
    with pytest.raises(DataError, match="not in the stack"):
        benchmark(stack, deposits, methods=["raw:Zr"])
    with pytest.raises(DataError, match="folds"):
        benchmark(stack, deposits, methods=["raw"], folds=1)
    one = make_points(x=[stack.x.values[5]], y=[stack.y.values[5]], crs=stack.rio.crs)
    with pytest.raises(DataError, match="deposit cells"):
        benchmark(stack, one, methods=["raw"])


def test_a_map_given_as_a_method_is_judged_as_a_raw_layer_and_fed_to_no_other(world):
    """An external map (a published map, a sampling-density layer) on the stack's grid is
    judged on the same folds as a raw layer; it is a feature of no learned method."""
    stack, deposits = world
    au = stack.sel(element="Au", drop=True)
    holed = au.where(au.x > au.x.values[3]).rename("Au_holed")  # unscored cells rank lowest
    kw = {"folds": 3, "buffer": BUFFER, "seed": 0}
    with_maps = benchmark(
        stack, deposits, methods=["raw:Au", "logistic", au.rename("Au"), ("holed", holed)], **kw
    )
    plain = benchmark(stack, deposits, methods=["raw:Au", "logistic"], **kw)
    t = with_maps.table
    assert t.loc["map:Au", "kind"] == "raw"
    np.testing.assert_array_equal(with_maps.maps["map:Au"].values, with_maps.maps["raw:Au"].values)
    assert t.loc["map:Au", "auc"] == t.loc["raw:Au", "auc"]
    # the learned method saw the stack's layers only
    assert t.loc["logistic", "auc"] == plain.table.loc["logistic", "auc"]
    assert t.loc["holed", "n_nan_cells"] > 0
    with pytest.raises(DataError, match="needs a name"):
        benchmark(stack, deposits, methods=[au.rename(None)], **kw)
    with pytest.raises(DataError, match="x coordinates differ"):
        benchmark(stack, deposits, methods=[("cut", au.isel(x=slice(1, None)))], **kw)
    with pytest.raises(DataError, match="dims"):
        benchmark(stack, deposits, methods=[("cube", stack.rename("s"))], **kw)
    with pytest.raises(DataError, match="reproject"):
        benchmark(stack, deposits, methods=[("wgs", au.rio.write_crs("EPSG:4326"))], **kw)


def test_out_of_fold_maps_are_judged_at_the_samples(run, world):
    """Every method's pooled out-of-fold map, read at the samples, by the sample-level
    protocol: the supervised and deep rows beside the raw layers, with controls."""
    _, deposits = world
    samples = xp.synthetic.survey(
        seed=0, n_samples=800, n_deposits=80, elements=["Au", "As", "Cu", "Pb"]
    ).samples
    t = run.sample_level(samples, deposits, min_dist=3000.0, n_draws=10, controls=5)
    assert set(t.index) == set(run.table.index) and t["auc"].is_monotonic_decreasing
    assert (t["kind"] == run.table["kind"].reindex(t.index)).all()
    ref = xp.evaluate.sample_protocol(
        run.maps["raw:Au"], samples, deposits, min_dist=3000.0, n_draws=10
    )
    assert t.loc["raw:Au", "auc"] == ref["auc"]
    assert t.loc["raw:Au", "n_samples"] == ref["n_samples"]
    assert (t["control_auc"] - 0.5).abs().max() < 0.08, t["control_auc"]
    assert t["best_raw"].iloc[0].startswith("raw:") and t["p_vs_best_raw"].between(0, 1).all()
    # fold_ranks: each cell's area rank within its fold's held-out cells, read at the samples
    r = run.sample_level(samples, deposits, fold_ranks=True, min_dist=3000.0, n_draws=10)
    fold = run.maps["held_out_fold"].values
    au = run.maps["raw:Au"].values
    ranks = np.full(au.shape, np.nan)
    for f in range(4):
        cells = (fold == f) & np.isfinite(au)
        ranks[cells] = stats.rankdata(au[cells]) / cells.sum()
    ref = xp.evaluate.sample_protocol(
        run.maps["raw:Au"].copy(data=ranks), samples, deposits, min_dist=3000.0, n_draws=10
    )
    assert r.loc["raw:Au", "auc"] == ref["auc"] and set(r.index) == set(t.index)


def test_tuned_baseline_chooses_on_inner_folds(world):
    stack, deposits = world
    tuned = xp.Tuned(B.LogisticModel(), {"C": [0.001, 1.0]}, inner_folds=2)
    b = benchmark(
        stack,
        deposits,
        methods=[("logistic_tuned", tuned), "raw:Au"],
        folds=4,
        buffer=BUFFER,
        seed=0,
    )
    rec = b.tuning["logistic_tuned"]
    assert [r["fold"] for r in rec] == [0, 1, 2, 3]
    assert all(r["params"]["C"] in (0.001, 1.0) and 0 <= r["inner_auc"] <= 1 for r in rec)
    assert np.isfinite(b.table.loc["logistic_tuned", "auc"])
    with pytest.raises(DataError, match="inner_folds"):
        benchmark(stack, deposits, methods=[xp.Tuned(B.LogisticModel(), {}, 1)])


def test_tuned_floor_counts_the_deposits_pooled_over_every_inner_fold(world, monkeypatch):
    """The floor is met by the pooled inner held-out deposits (each training deposit once),
    not by those of one inner fold: a floor above every single inner fold's count but at
    the pooled count still chooses; one above the pooled count keeps the first candidate."""
    import xprospect.harness as harness

    stack, deposits = world
    tests = []
    real = harness._run_baseline

    def spy(est, stack_, x, pos, ground, test, seed, control=False):
        tests.append(test)
        return real(est, stack_, x, pos, ground, test, seed, control)

    def run(floor):
        tuned = xp.Tuned(
            B.LogisticModel(), {"C": [0.001, 1.0]}, inner_folds=3, min_validation_deposits=floor
        )
        return benchmark(
            stack, deposits, methods=[("lt", tuned)], folds=2, buffer=BUFFER, seed=0
        ).tuning["lt"]

    rows = run(0)
    pooled = min(r["inner_deposits"] for r in rows)
    raw = benchmark(stack, deposits, methods=["raw:Au"], folds=2, buffer=BUFFER, seed=0)
    assert [r["inner_deposits"] for r in rows] == raw.folds["training_deposits"].tolist()
    monkeypatch.setattr(harness, "_run_baseline", spy)
    chosen = run(pooled)
    assert all(np.isfinite(r["inner_auc"]) and len(r["candidates"]) == 2 for r in chosen)
    assert [r["params"] for r in chosen] == [r["params"] for r in rows]
    dep = raw.maps["deposit"].values.ravel()
    fold = raw.maps["held_out_fold"].values.ravel()
    outer = [np.flatnonzero(fold == f) for f in range(2)]
    inner = [t for t in tests if not any(np.array_equal(t, o) for o in outer)]
    assert len(inner) == 2 * 2 * 3  # outer folds x candidates x inner folds
    assert max(int(dep[t].sum()) for t in inner) < pooled  # no inner fold held that many
    with pytest.warns(XProspectWarning, match="first grid point"):
        kept = run(max(r["inner_deposits"] for r in rows) + 1)
    assert all(r["params"] == {"C": 0.001} and np.isnan(r["inner_auc"]) for r in kept)


def test_barren_points_protocol_draws_negatives_blind_to_the_deposits(world):
    stack, deposits = world
    pix = benchmark(stack, deposits, methods=["raw:Au"], folds=4, buffer=BUFFER, seed=0)
    pts = benchmark(
        stack, deposits, methods=["raw:Au"], folds=4, buffer=BUFFER, seed=0, negatives=400
    )
    n_dep = pix.settings["deposit_cells"]
    assert n_dep < pts.settings["judged_cells"] <= 400 + n_dep
    assert pix.settings["judged_cells"] == pix.settings["held_out_cells"]
    assert pts.maps.attrs["protocol"].startswith("points")
    # the same folds and the same out-of-fold map: only the judged cells differ
    np.testing.assert_array_equal(pts.maps["raw:Au"].values, pix.maps["raw:Au"].values)
    assert abs(pts.table.loc["raw:Au", "auc"] - pix.table.loc["raw:Au", "auc"]) < 0.05


def test_detector_without_training_tiles_leaves_its_folds_unscored(world):
    """A detector whose ground holds no tile: warned per fold, NaN there, the table stands."""
    stack, deposits = world
    huge = xp.DetectorMethod("dae", seeds=1, fit_kwargs={"epochs": 1, "tile": 10_001})
    with pytest.warns(XProspectWarning, match=r"fold \d: dae cannot be trained.*smaller than"):
        b = benchmark(
            stack,
            deposits,
            methods=["raw:Au", huge],
            folds=4,
            buffer=BUFFER,
            seed=0,
            detector_ground="all",
        )
    held = b.maps["held_out_fold"].values >= 0
    assert np.isnan(b.maps["dae"].values[held]).all()
    assert np.isfinite(b.maps["raw:Au"].values[held]).all()
    assert b.table.loc["dae", "n_nan_cells"] == b.settings["judged_cells"]
    assert all(len(t) == 0 for t in b.training["dae"])


def test_deep_detectors_run_on_the_same_folds_without_labels(world):
    """VAE, DAE and STOAD train on each fold's training ground (no labels), every held-out
    cell is scored, none of their training cells lies within the buffer, and they carry no
    shuffled-label control that shuffles the labels they are judged against (they train on
    none)."""
    stack, deposits = world
    quick = {"epochs": 2, "device": "cpu"}
    methods = [
        "raw:Au",
        xp.DetectorMethod("vae", seeds=2, fit_kwargs=quick),
        ("dae", xp.DetectorMethod("dae", seeds=1, fit_kwargs=quick)),
        xp.DetectorMethod("stoad", seeds=1, fit_kwargs=quick, name="stoad1"),
    ]
    # the whole training ground (this world's 80 deposits leave too little ground away from
    # them for the default "away" at 1 km: fit_anomaly warns of few tile positions)
    b = benchmark(
        stack,
        deposits,
        methods=methods,
        folds=4,
        buffer=BUFFER,
        seed=0,
        controls=True,
        detector_ground="all",
    )
    ref = benchmark(stack, deposits, methods=["raw:Au"], folds=4, buffer=BUFFER, seed=0)
    fold = b.maps["held_out_fold"].values
    np.testing.assert_array_equal(fold, ref.maps["held_out_fold"].values)
    held = fold >= 0
    for n in ("vae", "dae", "stoad1"):
        assert b.table.loc[n, "kind"] == "deep"
        assert np.isfinite(b.maps[n].values[held]).all(), n
        assert b.table.loc[n, "best_baseline"] == "raw:Au"
    assert set(b.controls.index) == {"raw:Au", "vae", "dae", "stoad1"}
    for n in ("vae", "dae", "stoad1"):
        auc = b.controls.loc[n, "auc"]
        assert abs(auc - 0.5) <= 0.08, f"{n}: shuffled-label AUC {auc:.3f}"
    yy, xx = np.meshgrid(b.maps["y"].values, b.maps["x"].values, indexing="ij")
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    for f in range(4):
        d, _ = cKDTree(xy[fold.ravel() == f]).query(xy[b.training["dae"][f]], p=np.inf)
        assert d.min() > BUFFER
    with pytest.raises(DataError, match="vae"):
        xp.DetectorMethod("ae")
    with pytest.raises(DataError, match="seeds"):
        xp.DetectorMethod("dae", seeds=0)


def test_detectors_learn_normal_away_from_the_training_deposits(world):
    """By default a detector's normal ground leaves out the training deposits and the buffer
    around them (never the held-out ones); ``detector_ground="all"`` keeps the whole ground."""
    stack, deposits = world
    gmm = ("gmm", B.GaussianMixtureDetector(n_components=2))
    away = benchmark(stack, deposits, methods=[gmm], folds=4, buffer=BUFFER, seed=0)
    every = benchmark(
        stack, deposits, methods=[gmm], folds=4, buffer=BUFFER, seed=0, detector_ground="all"
    )
    assert away.settings["detector_ground"] == "away"
    yy, xx = np.meshgrid(away.maps["y"].values, away.maps["x"].values, indexing="ij")
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    fold = away.maps["held_out_fold"].values.ravel()
    dep = np.unique(point_cells(deposits, stack, require=False).flat)
    for f in range(4):
        # the fold's training deposits: on the ground, farther than the buffer from its test
        to_test, _ = cKDTree(xy[fold == f]).query(xy[dep], p=np.inf)
        train_dep = dep[(fold[dep] >= 0) & (fold[dep] != f) & (to_test > BUFFER)]
        tree = cKDTree(xy[train_dep])
        d_away, _ = tree.query(xy[away.training["gmm"][f]], p=np.inf)
        d_all, _ = tree.query(xy[every.training["gmm"][f]], p=np.inf)
        assert d_away.min() > BUFFER and d_all.min() <= BUFFER, f
    with pytest.raises(DataError, match="detector_ground"):
        benchmark(stack, deposits, methods=[gmm], folds=4, buffer=BUFFER, detector_ground="x")
