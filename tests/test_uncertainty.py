"""Maps that say how sure they are: ensembles, MC dropout, calibration, AOA, attribution."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xprospect as xp
from xprospect.evaluate import (
    Calibrator,
    area_of_applicability,
    brier_score,
    calibrate_inner_folds,
    ensemble_map,
    integrated_gradients_maps,
    mc_dropout_map,
    occlusion_maps,
    plot_reliability,
    plot_risk_return,
    spatial_block_folds,
)
from xprospect.points import make_points, point_cells, sample_negatives
from xprospect.score import score
from xprospect.testing import assert_georef_equal

torch = pytest.importorskip("torch")

from xprospect.models import SmallCNN  # noqa: E402
from xprospect.train import fit  # noqa: E402

ELEMENTS = ["Au", "As", "Cu", "Ni"]
WINDOW = 9


@pytest.fixture(scope="module")
def world_stack():
    """A synthetic survey, IDW at 1 km, log10 and z-scored: (element, 60, 60)."""
    world = xp.synthetic.survey(seed=3, n_samples=900, n_deposits=40, elements=ELEMENTS)
    grid = xp.make_grid(like=world.samples, resolution=1000.0)
    maps = xp.grid_idw(world.samples, like=grid, k=8).prospect.log10().prospect.zscore()
    return world, maps.prospect.stack(ELEMENTS).compute()


def _train_cnn(world, stack, *, seed: int, dropout: float = 0.0):
    patches = stack.prospect.patches(
        positives=world.deposits, negatives=100, size=WINDOW, jitter=2, n_per_positive=2, seed=seed
    )
    net = SmallCNN(len(ELEMENTS), window=WINDOW, widths=(8, 8), dropout=dropout, seed=seed)
    return fit(
        net,
        patches,
        recipe="adam",
        epochs=3,
        validation=None,
        device="cpu",
        progress=False,
        seed=seed,
    ).model


@pytest.fixture(scope="module")
def cnns(world_stack):
    """Two SmallCNNs with dropout, really trained on the world (seeds 0 and 1)."""
    world, stack = world_stack
    return [_train_cnn(world, stack, seed=s, dropout=0.3) for s in (0, 1)]


@pytest.fixture(scope="module")
def logistic(world_stack):
    world, stack = world_stack
    return xp.baselines.LogisticModel(seed=0).fit(stack, world.deposits)


# ---- ensembles and Monte Carlo dropout -----------------------------------------------------


def test_ensemble_map_of_networks_and_a_baseline(world_stack, cnns, logistic):
    _, stack = world_stack
    members = [*cnns, logistic]
    out = ensemble_map(stack, members, names=["a", "b", "lr"], keep_members=True, device="cpu")
    maps = np.stack(
        [score(stack, m, device="cpu").values for m in cnns] + [score(stack, logistic).values]
    )
    np.testing.assert_allclose(out["mean"].values, maps.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["std"].values, maps.std(0, ddof=1), rtol=1e-5, atol=1e-6)
    assert list(out["members"]["member"].values) == ["a", "b", "lr"]
    assert float(out["std"].max()) > 0.01
    assert_georef_equal(out["mean"], stack.isel(element=0, drop=True))
    assert out.rio.crs == stack.rio.crs
    # lazy on a dask stack, and the same values
    lazy = ensemble_map(stack.chunk({"y": 25, "x": 33}), members, device="cpu")
    assert lazy["std"].chunks is not None
    np.testing.assert_allclose(lazy["std"].values, out["std"].values, rtol=1e-4, atol=1e-6)
    with pytest.raises(xp.DataError, match="at least one"):
        ensemble_map(stack, [])
    with pytest.raises(xp.DataError, match="distinct"):
        ensemble_map(stack, cnns, names=["x", "x"])


def test_mc_dropout_is_seeded_lazy_and_spread(world_stack, cnns):
    _, stack = world_stack
    net = cnns[0]
    a = mc_dropout_map(stack, net, passes=6, seed=0, device="cpu", keep_members=True)
    b = mc_dropout_map(stack, net, passes=6, seed=0, device="cpu")
    c = mc_dropout_map(stack, net, passes=6, seed=1, device="cpu")
    np.testing.assert_array_equal(a["std"].values, b["std"].values)
    assert not np.allclose(a["std"].values, c["std"].values)
    assert float(a["std"].max()) > 1e-3 and np.isfinite(a["std"].values).all()
    members = a["members"].values
    assert not np.allclose(members[0], members[1])  # passes are different networks
    plain = score(stack, net, device="cpu").values
    # the mean of passes stays near the network's own (dropout-off) map
    assert np.corrcoef(a["mean"].values.ravel(), plain.ravel())[0, 1] > 0.8
    # a chunked stack gives the same passes: masks do not depend on chunking or batching
    lazy = mc_dropout_map(stack.chunk({"y": 17, "x": 40}), net, passes=6, seed=0, device="cpu")
    assert lazy["mean"].chunks is not None
    np.testing.assert_allclose(lazy["mean"].values, a["mean"].values, atol=1e-5)
    assert net.dropout.training is False and type(net.dropout).__name__ == "Dropout"
    plain_net = SmallCNN(len(ELEMENTS), window=WINDOW, widths=(8, 8), seed=0)
    with pytest.raises(xp.ModelCardError, match="no dropout"):
        mc_dropout_map(stack, plain_net, passes=3, allow_no_card=True)
    with pytest.raises(xp.DataError, match="passes"):
        mc_dropout_map(stack, net, passes=1)


def test_risk_return_figure(world_stack, cnns, logistic, tmp_path):
    world, stack = world_stack
    out = ensemble_map(stack, [*cnns, logistic], device="cpu")
    path = tmp_path / "risk.png"
    fig = plot_risk_return(out, deposits=world.deposits, path=path)
    ax = fig.axes[0]
    assert path.stat().st_size > 5000
    assert "standard deviation" in ax.get_xlabel() and "mean" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("cells") and labels[1].startswith("deposits")


# ---- calibration ---------------------------------------------------------------------------


def test_temperature_and_isotonic_recover_known_calibration():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 20000)
    y = rng.random(z.size) < 1 / (1 + np.exp(-z))
    p = 1 / (1 + np.exp(-2.5 * z))  # overconfident: T = 2.5
    cal = Calibrator("temperature").fit(p, y)
    assert cal.temperature_ == pytest.approx(2.5, rel=0.08)
    iso = Calibrator("isotonic").fit(p, y)
    q = iso.predict(np.sort(p))
    assert (np.diff(q) >= 0).all() and 0 <= q.min() and q.max() <= 1
    for c in (cal, iso):
        assert brier_score(y, c.predict(p)) < brier_score(y, p)
    with pytest.raises(xp.DataError, match="isotonic"):
        Calibrator("temperature").fit(p * 3, y)
    with pytest.raises(xp.DataError, match="both classes"):
        Calibrator("platt").fit(p, np.zeros_like(y))
    with pytest.raises(xp.XProspectError, match="not fitted"):
        Calibrator().predict(p)


def test_calibrator_applies_lazily_to_a_map(world_stack, logistic):
    _, stack = world_stack
    m = score(stack.chunk({"y": 20, "x": 20}), logistic)
    rng = np.random.default_rng(1)
    p = rng.random(400)
    cal = Calibrator("platt").fit(p, rng.random(400) < 0.5 * p)
    out = cal.apply(m)
    assert out.chunks == m.chunks and out.name == "probability"
    assert_georef_equal(out, m)
    np.testing.assert_allclose(out.values, cal.predict(m.values))


def test_calibration_on_inner_folds_reduces_brier_on_held_out_folds(world_stack, tmp_path):
    """Outer spatial folds of the synthetic world; each calibrator sees inner folds only."""
    world, stack = world_stack
    valid = np.isfinite(stack.values).all(axis=0)
    dep = point_cells(world.deposits, stack.isel(element=0), valid)
    negs = sample_negatives(stack, world.deposits, 400, seed=0)
    neg = point_cells(negs, stack.isel(element=0), valid)
    flat = np.concatenate([np.unique(dep.flat), neg.flat])
    y = np.r_[np.ones(np.unique(dep.flat).size, bool), np.zeros(neg.flat.size, bool)]
    iy, ix = np.unravel_index(flat, valid.shape)
    xy = np.column_stack([stack.x.values[ix], stack.y.values[iy]])
    crs = stack.rio.crs

    cache: dict[tuple[int, ...], np.ndarray] = {}

    def cell_scores(train_idx: np.ndarray) -> np.ndarray:
        key = tuple(train_idx.tolist())
        if key not in cache:
            tr = xy[train_idx]
            pos = make_points(*tr[y[train_idx]].T, crs=crs)
            negp = make_points(*tr[~y[train_idx]].T, crs=crs)
            rf = xp.baselines.RandomForestModel(n_estimators=60, min_samples_leaf=2, seed=0)
            rf.fit(stack, pos, negatives=negp)
            cache[key] = score(stack, rf).values.ravel()[flat]
        return cache[key]

    outer = spatial_block_folds(xy, n_folds=4, block_size=15_000.0, seed=0)
    held_y, raw, cal = [], [], {m: [] for m in ("temperature", "platt", "isotonic")}
    for train_idx, test_idx in outer:
        if not 0 < y[test_idx].sum() < test_idx.size:
            continue

        def fit_score(tr, te, train_idx=train_idx):  # indices into the outer training set
            return cell_scores(train_idx[tr])[train_idx[te]]

        p_test = cell_scores(train_idx)[test_idx]
        held_y.append(y[test_idx])
        raw.append(p_test)
        for method in cal:
            c = calibrate_inner_folds(
                fit_score,
                xy[train_idx],
                y[train_idx],
                method=method,
                n_folds=3,
                block_size=15_000.0,
                seed=0,
            )
            assert c.fit_report_["n_scored"] <= train_idx.size
            cal[method].append(c.predict(p_test))
    assert len(held_y) >= 3
    yy, before = np.concatenate(held_y), np.concatenate(raw)
    after = {m: np.concatenate(v) for m, v in cal.items()}
    b0 = brier_score(yy, before)
    # Platt and isotonic correct the prevalence the forest was balanced away from (measured:
    # 0.102 -> 0.071 and 0.073); temperature alone keeps the balanced prior by design (its
    # own recovery is tested above) and is not expected to
    for method in ("platt", "isotonic"):
        assert brier_score(yy, after[method]) < 0.9 * b0, (method, b0)
    fig = plot_reliability(
        yy, {"random forest": before, "platt": after["platt"]}, n_bins=5, path=tmp_path / "rel.png"
    )
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("Brier" in t for t in texts) and (tmp_path / "rel.png").exists()


# ---- area of applicability -----------------------------------------------------------------


def test_area_of_applicability_flags_shifted_evidence(world_stack):
    _, stack = world_stack
    rng = np.random.default_rng(0)
    valid = np.isfinite(stack.values).all(axis=0)
    cells = rng.choice(np.flatnonzero(valid), 300, replace=False)
    iy, ix = np.unravel_index(cells, valid.shape)
    pts = make_points(stack.x.values[ix], stack.y.values[iy], crs=stack.rio.crs)
    shifted = stack.copy(data=stack.values.copy())
    shifted[:, :15, :15] += 8.0  # far outside the training range
    # the training evidence comes from the shifted stack at the points: keep them off the box
    inbox = (iy < 15) & (ix < 15)
    out = area_of_applicability(shifted, pts.isel(point=np.flatnonzero(~inbox)))
    aoa = out["AOA"].values
    assert not aoa[:15, :15].any()  # the shifted region is flagged
    rest = valid.copy()
    rest[:15, :15] = False
    assert aoa[rest].mean() > 0.95  # in-range cells are not
    di = out["DI"].values
    assert di[:15, :15].min() > out.attrs["threshold"]
    assert_georef_equal(out["DI"], stack.isel(element=0, drop=True))
    # lazy, chunk by chunk, with the same values
    lazy = area_of_applicability(
        shifted.chunk({"y": 13, "x": 27}), pts.isel(point=np.flatnonzero(~inbox))
    )
    assert lazy["DI"].chunks is not None
    np.testing.assert_allclose(lazy["DI"].values, di, equal_nan=True)


def test_aoa_threshold_is_the_cast_upper_whisker():
    rng = np.random.default_rng(2)
    train = rng.normal(size=(60, 3))
    folds = np.arange(60) % 4
    v = rng.normal(size=(3, 8, 9))
    stack = xr.DataArray(
        v,
        dims=("element", "y", "x"),
        coords={"element": ["a", "b", "c"], "y": np.arange(8.0)[::-1], "x": np.arange(9.0)},
    )
    out = area_of_applicability(stack, train, folds=folds, weights=[1.0, 2.0, 0.5])
    # by hand: standardise, weight, CV nearest distance over the mean pairwise distance
    from scipy.spatial.distance import cdist, pdist

    scale = np.array([1.0, 2.0, 0.5]) / train.std(0, ddof=1)
    z = (train - train.mean(0)) * scale
    dbar = pdist(z).mean()
    d = cdist(z, z)
    tdi = np.array([d[i, folds != folds[i]].min() for i in range(60)]) / dbar
    q25, q75 = np.quantile(tdi, [0.25, 0.75])
    thr = tdi[tdi <= q75 + 1.5 * (q75 - q25)].max()
    assert out.attrs["threshold"] == pytest.approx(thr)
    cell = (v.reshape(3, -1).T - train.mean(0)) * scale
    expect = cdist(cell, z).min(1).reshape(8, 9) / dbar
    np.testing.assert_allclose(out["DI"].values, expect)
    np.testing.assert_array_equal(out["AOA"].values, expect <= thr)
    with pytest.raises(xp.DataError, match="folds"):
        area_of_applicability(stack, train)
    with pytest.raises(xp.DataError, match="weights"):
        area_of_applicability(stack, train, folds=folds, weights=[1.0, -1.0, 1.0])


# ---- attribution ---------------------------------------------------------------------------


def test_occlusion_maps_of_a_baseline_and_a_network(world_stack, cnns, logistic):
    _, stack = world_stack
    occ = occlusion_maps(stack, logistic)
    assert sorted(occ.data_vars) == sorted([*ELEMENTS, "score"])
    assert_georef_equal(occ["Au"], stack.isel(element=0, drop=True))
    # by hand for one element: the score minus the score with Au at its mean
    mean_au = float(stack.sel(element="Au").mean())
    occluded = stack.copy(data=stack.values.copy())
    occluded.loc["Au"] = mean_au
    expect = score(stack, logistic).values - score(occluded, logistic).values
    np.testing.assert_allclose(occ["Au"].values, expect, atol=1e-12)
    # a network's baseline is its card's training mean; lazy on dask with the same values
    net = cnns[0]
    a = occlusion_maps(stack, net, device="cpu")
    lazy = occlusion_maps(stack.chunk({"y": 20, "x": 31}), net, device="cpu")
    assert lazy["Cu"].chunks is not None
    np.testing.assert_allclose(lazy["Cu"].values, a["Cu"].values, atol=1e-5)
    assert a["Au"].attrs["baseline"] == str(net.card["mean"][0])


def test_integrated_gradients_are_complete(world_stack, cnns):
    """Summed over elements, the attributions equal score(x) - score(baseline)."""
    _, stack = world_stack
    net = cnns[1]
    sub = stack.isel(y=slice(12, 30), x=slice(8, 26))
    ig = integrated_gradients_maps(sub, net, steps=24, device="cpu", batch_size=512)
    assert sorted(ig.data_vars) == sorted(ELEMENTS)
    assert_georef_equal(ig["As"], sub.isel(element=0, drop=True))
    total = sum(ig[e].values for e in ELEMENTS)
    base = sub.copy(
        data=np.broadcast_to(
            np.asarray(net.card["mean"], dtype=sub.dtype)[:, None, None], sub.shape
        ).copy()
    )
    diff = (score(sub, net, device="cpu") - score(base, net, device="cpu")).values
    assert np.abs(diff).max() > 0.05
    # a midpoint rule of 24 steps through ReLUs: within 3 % of the largest difference
    np.testing.assert_allclose(total, diff, atol=0.03 * np.abs(diff).max())
    assert np.corrcoef(total.ravel(), diff.ravel())[0, 1] > 0.99
    lazy = integrated_gradients_maps(
        sub.chunk({"y": 11, "x": 13}), net, steps=24, device="cpu", batch_size=512
    )
    np.testing.assert_allclose(lazy["Au"].values, ig["Au"].values, atol=1e-5)
    with pytest.raises(xp.ModelCardError, match="torch network"):
        integrated_gradients_maps(sub, xp.baselines.LogisticModel())


# ---- the metric registry: PR AUC, Brier and capture appear everywhere ------------------------


def test_registered_metrics_fill_evaluate_and_compare(world_stack, logistic):
    from sklearn.metrics import average_precision_score, brier_score_loss

    from xprospect.evaluate import capture_at, compare, evaluate, score_metrics

    world, stack = world_stack
    prob = score(stack, logistic)
    raw = stack.sel(element="Au", drop=True).rename("Au")  # not a probability: Brier is NaN
    rep = evaluate(prob, world.deposits, negatives=300, seed=2)
    for key in ("average_precision", "brier", "capture_5", "capture_10", "capture_20"):
        assert np.isfinite(rep.metrics[key]), key
    table = compare({"logistic": prob, "Au": raw}, world.deposits, negatives=300, seed=2)
    for col in ("pr_auc", "brier", "capture_5", "capture_10", "capture_20"):
        assert col in table.columns
    assert table.loc["logistic", "pr_auc"] == pytest.approx(rep.metrics["average_precision"])
    assert np.isfinite(table.loc["Au", "pr_auc"])
    assert np.isnan(evaluate(raw, world.deposits, negatives=300, seed=2).metrics["brier"])
    # the values are those of the plain functions (and of scikit-learn)
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.1
    s = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1)
    m = score_metrics(y, s)
    assert m["average_precision"] == pytest.approx(average_precision_score(y, s))
    assert m["brier"] == pytest.approx(brier_score_loss(y, s))
    assert m["capture_10"] == pytest.approx(capture_at(y, s, 0.10)[0])


def test_accessor_methods_match_their_functions(world_stack, logistic, tmp_path):
    import json

    from xprospect.evaluate import evaluate

    world, stack = world_stack
    rng = np.random.default_rng(4)
    cells = rng.choice(stack.sizes["y"] * stack.sizes["x"], 120, replace=False)
    iy, ix = np.unravel_index(cells, (stack.sizes["y"], stack.sizes["x"]))
    pts = make_points(stack.x.values[ix], stack.y.values[iy], crs=stack.rio.crs)
    a = stack.prospect.applicability(pts)
    b = area_of_applicability(stack, pts)
    xr.testing.assert_identical(a, b)
    xr.testing.assert_identical(stack.prospect.occlusion(logistic), occlusion_maps(stack, logistic))
    ens = stack.prospect.ensemble([logistic])
    xr.testing.assert_identical(ens, ensemble_map(stack, [logistic]))
    prob = score(stack, logistic)
    cal = Calibrator("isotonic").fit(rng.random(300), rng.random(300) < 0.2)
    xr.testing.assert_identical(prob.prospect.calibrate(cal), cal.apply(prob))
    # a report holding a NaN Brier score (a map that is not a probability) still writes JSON
    rep = evaluate(stack.sel(element="Au", drop=True), world.deposits, negatives=100)
    assert json.loads(rep.to_json())["metrics"]["brier"] is None


def test_doctests_of_the_uncertainty_modules():
    import doctest

    import xprospect.evaluate.applicability as a
    import xprospect.evaluate.attribution as t
    import xprospect.evaluate.calibration as c
    import xprospect.evaluate.uncertainty as u

    for mod in (a, c, t, u):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.failed == 0 and res.attempted > 0, mod.__name__
