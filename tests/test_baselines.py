"""Classical baselines: GMM, isolation forest, MaxEnt (elapid), random forest, SVM."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.metrics import roc_auc_score

import xprospect as xp
from xprospect import baselines as B
from xprospect._dims import write_crs
from xprospect.points import as_points, distance_to_points
from xprospect.testing import assert_georef_equal

MODELS = {
    "gmm": lambda: B.GaussianMixtureDetector(n_components=2),
    "iforest": lambda: B.IsolationForestDetector(n_estimators=60),
    "maxent": lambda: B.MaxEntModel(positive_buffer=3000.0, n_hinge_features=5),
    "rf": lambda: B.RandomForestModel(n_estimators=60, positive_buffer=3000.0),
    "svm": lambda: B.SVMModel(positive_buffer=3000.0),
    "gbm": lambda: B.GradientBoostingModel(max_iter=60, positive_buffer=3000.0),
    "logistic": lambda: B.LogisticModel(positive_buffer=3000.0),
    "wofe": lambda: B.WeightsOfEvidence(n_classes=6, positive_buffer=3000.0),
}


@pytest.fixture(scope="module")
def world_stack():
    """A 41 x 41 log10 stack of the synthetic world, known and hidden deposits."""
    w = xp.synthetic.survey(seed=0, n_samples=600, elements=["Au", "As", "Cu", "Pb", "Zn", "Sb"])
    maps = w.samples.prospect.idw(like=xp.make_grid(like=w.samples, resolution=1500))
    stack = maps.prospect.log10().prospect.stack().load()
    # a NaN corner (outside the study area) travels to NaN predictions
    stack[:, :3, :4] = np.nan
    dep = as_points(w.deposits)
    known = dep.isel(point=np.flatnonzero(w.deposits.known.values))
    hidden = dep.isel(point=np.flatnonzero(~w.deposits.known.values))
    return stack, known, hidden


def _fit(name, stack, known, seed=0):
    m = MODELS[name]()
    labels = None if isinstance(m, B.AnomalyDetector) else known
    return m.fit(stack, labels, seed=seed)


def _auc(pred: xr.DataArray, points, radius: float = 3000.0) -> float:
    near = distance_to_points(points, pred).values <= radius
    p = pred.values
    ok = np.isfinite(p)
    return roc_auc_score(near[ok], p[ok])


@pytest.mark.parametrize("name", list(MODELS))
def test_fit_predict_georef_nan_and_dask(world_stack, name):
    stack, known, hidden = world_stack
    m = _fit(name, stack, known)
    assert m.elements_ == ["Au", "As", "Cu", "Pb", "Zn", "Sb"] and m.ndim_ == 2
    assert m.fit_report_["valid_cells"] == 41 * 41 - 12
    pred = m.predict(stack)
    assert pred.dims == ("y", "x")
    assert_georef_equal(pred, stack)
    assert np.isnan(pred.values[:3, :4]).all()
    assert np.isfinite(pred.values[3:, :]).all()
    assert "NaN where any of" in pred.attrs["nan_reason"]
    lazy = m.predict(stack.chunk({"element": 2, "y": 5, "x": 7}))
    assert lazy.chunks is not None
    # equal up to BLAS summation order across chunk sizes
    np.testing.assert_allclose(lazy.values, pred.values, rtol=1e-12, atol=1e-14)
    # against the hidden deposits (never seen by the supervised fits)
    auc = _auc(pred, hidden)
    assert auc > 0.6, f"{name}: AUC {auc:.3f} against hidden deposits"


@pytest.mark.parametrize("name", ["gmm", "rf", "maxent"])
def test_same_seed_same_map(world_stack, name):
    stack, known, _ = world_stack
    a = _fit(name, stack, known, seed=3).predict(stack).values
    b = _fit(name, stack, known, seed=3).predict(stack).values
    np.testing.assert_array_equal(a, b)


def test_supervised_report_and_negatives(world_stack):
    stack, known, _ = world_stack
    rf = B.RandomForestModel(n_estimators=20, n_negatives=150, buffer=4000.0).fit(stack, known)
    rep = rf.fit_report_
    assert rep["negatives_source"] == "sample_negatives" and rep["negative_cells"] == 150
    assert rep["positive_cells"] == known.sizes["point"]
    # negatives lie farther than the buffer from every deposit
    geom_y, geom_x = stack.y.values, stack.x.values
    iy, ix = np.unravel_index(rf.negative_index_, (41, 41))
    d = distance_to_points(known, stack.isel(element=0)).values[iy, ix]
    assert d.min() > 4000.0 and geom_y.size == 41 and geom_x.size == 41
    # explicit negatives are used as given
    negs = write_crs(
        xr.Dataset(
            coords={
                "x": ("point", stack.x.values[10:20]),
                "y": ("point", stack.y.values[30:40]),
                "point_id": ("point", [f"n{i}" for i in range(10)]),
            }
        ),
        "EPSG:32750",
    )
    rf2 = B.RandomForestModel(n_estimators=20).fit(stack, known, negatives=negs)
    assert rf2.fit_report_["negatives_source"] == "given"
    assert rf2.fit_report_["negative_cells"] == 10
    # MaxEnt background: random valid cells, may include presence cells
    me = B.MaxEntModel(n_background=300, n_hinge_features=5).fit(stack, known)
    assert me.fit_report_["negatives_source"] == "random background cells"
    assert me.fit_report_["negative_cells"] == 300
    assert me.predict(stack).max() <= 1.0


def test_unsupervised_normal_mask_and_deposit_buffer(world_stack):
    stack, known, _ = world_stack
    normal = xr.zeros_like(stack.isel(element=0, drop=True), dtype=bool)
    normal[:, 20:] = True
    g = B.GaussianMixtureDetector(n_components=2, buffer=5000.0).fit(stack, known, normal=normal)
    _, ix = np.unravel_index(g.train_index_, (41, 41))
    assert ix.min() >= 20
    dist = distance_to_points(known, stack.isel(element=0)).values.ravel()
    assert dist[g.train_index_].min() > 5000.0
    assert g.fit_report_["excluded_near_labels"] > 0
    sub = B.IsolationForestDetector(n_estimators=10, max_cells=100).fit(stack, seed=1)
    assert sub.fit_report_["train_cells"] == 100


def test_voxel_stack():
    vox = xp.make_voxels((0, 0, 0, 90, 80, 60), resolution=(10, 10, 10), crs="EPSG:32750")
    shape = tuple(vox.sizes[d] for d in ("z", "y", "x"))
    rng = np.random.default_rng(0)
    data = rng.normal(size=(3, *shape))
    data[:, 2:4, 3:5, 4:6] += 3.0  # a buried anomalous body
    stack = xr.DataArray(
        data,
        dims=("element", "z", "y", "x"),
        coords={"element": ["Au", "As", "Sb"], **{d: vox[d] for d in ("z", "y", "x")}},
    )
    stack = write_crs(stack, "EPSG:32750")
    body = np.zeros(shape, bool)
    body[2:4, 3:5, 4:6] = True
    g = B.GaussianMixtureDetector(n_components=1).fit(stack)
    pred = g.predict(stack.chunk({"z": 2, "y": 5, "x": 7}))
    assert pred.dims == ("z", "y", "x")
    assert_georef_equal(pred, stack)
    assert roc_auc_score(body.ravel(), pred.values.ravel()) > 0.95
    zc, yc, xc = (vox[d].values for d in ("z", "y", "x"))
    pts = write_crs(
        xr.Dataset(
            coords={
                "x": ("point", [xc[4], xc[5]]),
                "y": ("point", [yc[3], yc[4]]),
                "z": ("point", [zc[2], zc[3]]),
                "point_id": ("point", ["o1", "o2"]),
            }
        ),
        "EPSG:32750",
    )
    rf = B.RandomForestModel(n_estimators=30, n_negatives=100).fit(stack, pts)
    assert rf.ndim_ == 3
    p = rf.predict(stack)
    assert roc_auc_score(body.ravel(), p.values.ravel()) > 0.9
    # a boolean label map works as labels too
    lab = xr.DataArray(body, dims=("z", "y", "x"), coords={d: vox[d] for d in ("z", "y", "x")})
    me = B.MaxEntModel(n_background=200, n_hinge_features=5).fit(stack, lab)
    assert me.fit_report_["positive_cells"] == int(body.sum())


def test_bad_input(world_stack):
    stack, known, _ = world_stack
    with pytest.raises(xp.DataError, match="stack DataArray"):
        B.GaussianMixtureDetector().fit(stack.to_dataset(dim="element"))
    with pytest.raises(xp.DataError, match="dims"):
        B.GaussianMixtureDetector().fit(stack.isel(element=0))
    with pytest.raises(xp.DataError, match="needs labels"):
        B.RandomForestModel().fit(stack)
    with pytest.raises(xp.DataError, match="unsupervised"):
        B.GaussianMixtureDetector().fit(stack, negatives=known)
    with pytest.raises(xp.DataError, match="normal has shape"):
        B.GaussianMixtureDetector().fit(stack, normal=np.ones((3, 3), bool))
    with pytest.raises(xp.DataError, match="seed"):
        B.GaussianMixtureDetector().fit(stack, seed=1.5)
    with pytest.raises(xp.ModelCardError, match="not fitted"):
        B.SVMModel().predict(stack)
    g = B.GaussianMixtureDetector(n_components=1).fit(stack)
    with pytest.raises(xp.ModelCardError, match="missing"):
        g.predict(stack.sel(element=["Au", "As"]))
    # reordered elements are matched by name
    np.testing.assert_allclose(
        g.predict(stack.sel(element=stack.element.values[::-1])).values, g.predict(stack).values
    )
    corner = write_crs(
        xr.Dataset(
            coords={
                "x": ("point", stack.x.values[:2]),
                "y": ("point", stack.y.values[:2]),
                "point_id": ("point", ["a", "b"]),
            }
        ),
        "EPSG:32750",
    )
    with pytest.raises(xp.DataError, match="NaN cells"):
        B.RandomForestModel().fit(stack, corner)
    with pytest.raises(xp.DataError, match="unknown MaxEnt"):
        B.MaxEntModel(feature_types=("linear", "spline")).fit(stack, known)
    with pytest.raises(xp.DataError, match="at least 5"):
        B.SVMModel(probability=True).fit(stack, known)


def test_prediction_in_row_batches_and_parallel_chunks_is_unchanged(world_stack):
    """Row batches and the chunking of an in-memory stack change nothing but memory."""
    stack, known, _ = world_stack
    m = B.RandomForestModel(n_estimators=30, positive_buffer=3000.0).fit(stack, known)
    whole = m.predict(stack)
    m.predict_rows = 97
    m.predict_chunk_cells = 300
    batched = m.predict(stack)
    assert batched.chunks is None  # eager in, eager out
    np.testing.assert_array_equal(batched.values, whole.values)


def test_stack_one_hot_encodes_categorical_evidence_with_its_legend():
    """Geology units become one indicator band per unit, the legend kept as JSON text."""
    import json

    y = np.arange(4.0)[::-1]
    x = np.arange(5.0)
    geo = np.array(
        [[1, 1, 2, 2, 3], [1, 1, 2, 3, 3], [1, 2, 2, 3, np.nan], [1, 1, 1, 1, 1]], dtype=float
    )
    ds = xr.Dataset(
        {"Au": (("y", "x"), np.arange(20.0).reshape(4, 5)), "geology": (("y", "x"), geo)},
        coords={"y": y, "x": x},
    )
    ds = write_crs(ds, "EPSG:32750")
    st = xp.stack_elements(
        ds,
        ["Au", "geology"],
        categorical=["geology"],
        legend={"geology": {1: "granite", 2: "greenstone"}},
    )
    assert list(st.element.values) == ["Au", "geology=granite", "geology=greenstone", "geology=3"]
    np.testing.assert_array_equal(st.sel(element="geology=granite").values[0], [1, 1, 0, 0, 0])
    assert np.isnan(st.sel(element="geology=3").values[2, 4])
    np.testing.assert_array_equal(st.sel(element="Au").values, ds["Au"].values)
    legend = json.loads(st.attrs["categorical_legend"])
    assert legend["geology"][0] == {"element": "geology=granite", "code": 1, "label": "granite"}
    assert st.attrs["units"] == ["", "", "", ""]
    assert_georef_equal(st, ds)
    with pytest.raises(xp.DataError, match="not among the stacked"):
        xp.stack_elements(ds, ["Au"], categorical=["geology"])
    # weights of evidence reads the indicator bands as binary evidence
    pts = as_points(np.array([[0.0, 3.0], [1.0, 2.0], [2.0, 1.0]]), crs="EPSG:32750")
    # (3 deposits on 20 cells are significant nowhere: no test, so the bands enter)
    m = B.WeightsOfEvidence(
        categorical=[e for e in st.element.values if "=" in e], min_studentized=0.0
    )
    m.fit(st, pts)
    assert np.isfinite(m.predict(st).values[:2]).all()


def test_gbm_small_table_fits_and_predicts_on_one_openmp_thread(world_stack, monkeypatch):
    """A small table's boosting runs on one OpenMP thread: a team's barriers cost more than
    its tiny histograms save, and under load they spun a Katanning fold 6-17x slower."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_info

    seen = []

    def omp_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"]

    fit, proba = HistGradientBoostingClassifier.fit, HistGradientBoostingClassifier.predict_proba

    def spy_fit(self, *a, **k):
        seen.append(("fit", omp_threads()))
        return fit(self, *a, **k)

    def spy_proba(self, *a, **k):
        seen.append(("predict", omp_threads()))
        return proba(self, *a, **k)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", spy_fit)
    monkeypatch.setattr(HistGradientBoostingClassifier, "predict_proba", spy_proba)
    stack, known, _ = world_stack
    m = B.GradientBoostingModel(max_iter=5, positive_buffer=3000.0).fit(stack, known)
    m.predict(stack)
    assert {k for k, _ in seen} == {"fit", "predict"}
    assert all(n and set(n) == {1} for _, n in seen), seen


def test_maxent_auto_features_follow_the_presence_count(world_stack):
    """Maxent's "auto features": linear; quadratic from 10; hinge from 15; product and
    threshold from 80 presences; an explicit sequence is used as given."""
    from xprospect.baselines.supervised import _maxent_auto_features

    assert _maxent_auto_features(5) == ("linear",)
    assert _maxent_auto_features(9) == ("linear",)
    assert _maxent_auto_features(10) == ("linear", "quadratic")
    assert _maxent_auto_features(12) == ("linear", "quadratic")
    assert _maxent_auto_features(15) == ("linear", "quadratic", "hinge")
    assert _maxent_auto_features(20) == ("linear", "quadratic", "hinge")
    assert _maxent_auto_features(79) == ("linear", "quadratic", "hinge")
    assert _maxent_auto_features(80) == ("linear", "quadratic", "hinge", "product", "threshold")
    assert _maxent_auto_features(100) == ("linear", "quadratic", "hinge", "product", "threshold")
    stack, known, _ = world_stack
    # the default picks by the presences of this fit (deposit cells, or cells near them)
    few = B.MaxEntModel(n_background=200, n_hinge_features=5).fit(stack, known)
    n_few = few.fit_report_["positive_cells"]
    assert few.feature_types_ == _maxent_auto_features(n_few)
    many = B.MaxEntModel(n_background=400, n_hinge_features=5, positive_buffer=3000.0)
    many.fit(stack, known)
    n_many = many.fit_report_["positive_cells"]
    assert n_many > n_few
    assert many.feature_types_ == _maxent_auto_features(n_many)
    assert list(many.maxent_.feature_types) == list(many.feature_types_)
    # an explicit sequence is respected whatever the presences
    fixed = B.MaxEntModel(("linear", "hinge"), n_background=200, n_hinge_features=5)
    fixed.fit(stack, known)
    assert fixed.feature_types_ == ("linear", "hinge")
    assert list(fixed.maxent_.feature_types) == ["linear", "hinge"]
    with pytest.raises(xp.DataError, match="'auto' or a sequence"):
        B.MaxEntModel(feature_types="linear").fit(stack, known)


@pytest.mark.parametrize("labels", ["deposits", "random"])
def test_maxent_map_does_not_depend_on_the_sign_of_an_element(world_stack, labels):
    """Negating the evidence mirrors MaxEnt's features (x -> 1 - x, hinges onto hinges): the
    fit must give the same map. elapid's scikit-learn fit penalises the intercept, and MaxEnt's
    features can stand in for it (a forward and a reverse hinge at one knot sum, with the
    linear feature, to a constant): before the fit was centred the offset went into negative
    weights on every feature, so the map fell with every element whatever the presences
    (Spearman 0.94 between the two fits on random presences; shuffled-label controls of
    MaxEnt at 0.36-0.40 on the synthetic benchmark world)."""
    from scipy import stats

    stack, known, _ = world_stack
    if labels == "random":  # shuffled labels: 20 cells drawn at random
        cells = np.flatnonzero(np.isfinite(stack.values).all(axis=0).ravel())
        pick = np.random.default_rng(3).choice(cells, 20, replace=False)
        flags = np.zeros(stack[0].size, dtype=bool)
        flags[pick] = True
        known = stack[0].copy(data=flags.reshape(stack.shape[1:])).rename("labels")
    maps = []
    for sign in (1.0, -1.0):
        m = B.MaxEntModel(("linear", "hinge"), n_background=300, n_hinge_features=5)
        m.fit(sign * stack, known, seed=0)
        maps.append(m.predict(sign * stack).values.ravel())
    ok = np.isfinite(maps[0])
    assert stats.spearmanr(maps[0][ok], maps[1][ok])[0] > 0.999
    np.testing.assert_allclose(maps[0][ok], maps[1][ok], atol=0.01)
