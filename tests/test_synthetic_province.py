"""The synthetic mineral-system province: rasters, deposits and the truth that placed them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import load_example
from sklearn.metrics import roc_auc_score

import xprospect as xp
from xprospect.exceptions import DataError
from xprospect.synthetic import UNITS, province

SMALL = {"shape": (90, 100), "n_deposits": 30, "n_barren": 10}


@pytest.fixture(scope="module")
def world() -> xp.synthetic.ProvinceWorld:
    return province(seed=3, **SMALL)


def _cells(w: xp.synthetic.ProvinceWorld) -> tuple[np.ndarray, np.ndarray]:
    r = w.rasters
    rows = np.searchsorted(-r["y"].values, -w.deposits["y"].values)
    cols = np.searchsorted(r["x"].values, w.deposits["x"].values)
    assert np.allclose(r["y"].values[rows], w.deposits["y"].values)
    assert np.allclose(r["x"].values[cols], w.deposits["x"].values)
    return rows, cols


def test_same_seed_same_world_bitwise_and_another_seed_differs():
    a, b, c = province(seed=1, **SMALL), province(seed=1, **SMALL), province(seed=2, **SMALL)
    assert a.rasters.identical(b.rasters)
    assert a.deposits.identical(b.deposits)
    assert np.array_equal(a.favourability.values, b.favourability.values)
    assert not np.array_equal(a.rasters["magnetics"].values, c.rasters["magnetics"].values)


def test_rasters_are_a_georeferenced_north_up_grid(world):
    r = world.rasters
    assert r.rio.crs.to_epsg() == 28353
    assert dict(r.sizes) == {"y": 90, "x": 100}
    assert (np.diff(r["y"].values) == -100.0).all() and (np.diff(r["x"].values) == 100.0).all()
    assert sorted(r.data_vars) == sorted(
        [
            "geology",
            "fault_distance",
            "fault_count",
            "granite_distance",
            "magnetics",
            "gravity",
            "potassium",
        ]
    )
    for v in r.data_vars:
        assert np.isfinite(r[v].values).all(), v
    assert set(np.unique(r["geology"].values)) <= set(UNITS)
    assert json.loads(r["geology"].attrs["legend"]) == {str(k): v for k, v in UNITS.items()}
    assert (r["fault_distance"].values >= 0).all() and (r["potassium"].values > 0).all()
    assert world.deposits.rio.crs == r.rio.crs


def test_deposits_sit_on_the_favourable_ground_apart(world):
    d = world.deposits
    assert d.sizes["deposit"] == 30
    xy = np.column_stack([d["x"].values, d["y"].values])
    gaps = np.abs(xy[:, None, :] - xy[None, :, :]).max(axis=-1) + np.eye(len(xy)) * 1e9
    assert gaps.min() > 400.0  # Chebyshev spacing of the draw, in metres
    rows, cols = _cells(world)
    label = np.zeros(world.favourability.shape, dtype=bool)
    label[rows, cols] = True
    fav = world.favourability.values
    assert roc_auc_score(label.ravel(), fav.ravel()) > 0.85
    # near mapped faults and never inside a granite (host receptivity 0.03)
    assert roc_auc_score(label.ravel(), -world.rasters["fault_distance"].values.ravel()) > 0.75
    hosts = world.bedrock.values[rows, cols]
    assert np.isin(hosts, [1, 2, 3, 4]).mean() > 0.9


def test_cover_hides_the_geology_and_the_alteration_but_not_the_geophysics():
    w = province(seed=4, shape=(90, 100), n_deposits=30, n_barren=0, cover_fraction=0.4)
    g = w.rasters["geology"].values
    covered = g == 6
    assert 0.35 < covered.mean() < 0.45
    assert set(np.unique(w.bedrock.values[covered])) <= {1, 2, 3, 4, 5}
    rows, cols = _cells(w)
    under = covered[rows, cols]
    assert under.any() and (~under).any()
    k = w.rasters["potassium"].values[rows, cols]
    # a potassic halo lifts exposed deposits' K, never covered ones' (cover K 1.4 +- noise)
    assert np.abs(k[under] - 1.4).max() < 1.2
    # magnetics and gravity are the same functions of the ground under cover or not
    w0 = province(seed=4, shape=(90, 100), n_deposits=30, n_barren=0, cover_fraction=0.0)
    assert np.array_equal(w.bedrock.values, w0.bedrock.values)


def test_the_stack_builder_one_hot_encodes_the_geology_with_its_legend(world):
    stack = xp.stack_elements(world.rasters, categorical=["geology"], legend={"geology": UNITS})
    names = [str(e) for e in stack["element"].values]
    present = sorted(int(c) for c in np.unique(world.rasters["geology"].values))
    assert names[: len(present)] == [f"geology={UNITS[c]}" for c in present]
    onehot = stack.sel(element=names[: len(present)]).values
    assert np.array_equal(onehot.sum(axis=0), np.ones(onehot.shape[1:]))
    legend = json.loads(stack.attrs["categorical_legend"])
    assert [b["label"] for b in legend["geology"]] == [UNITS[c] for c in present]


@pytest.mark.parametrize(
    "kw",
    [
        {"shape": (8, 40)},
        {"n_deposits": 0},
        {"n_faults": 0},
        {"cover_fraction": 1.0},
        {"shape": (20, 20), "n_deposits": 500},
    ],
)
def test_bad_settings_are_named(kw):
    with pytest.raises(DataError, match="province"):
        province(seed=0, **{**SMALL, **kw})


def test_the_harness_judges_the_province_and_its_truth():
    w = province(seed=5, shape=(60, 60), n_deposits=40, n_barren=10)
    cont = [v for v in w.rasters.data_vars if v != "geology"]
    r = w.rasters.prospect.zscore(elements=cont)
    stack = xp.stack_elements(
        r, ["geology", *cont], categorical=["geology"], legend={"geology": w.legend}
    )
    b = xp.benchmark(
        stack,
        w.deposits,
        methods=["raw:fault_distance", "logistic", ("truth", w.favourability)],
        folds=2,
        block_size=1500.0,
        buffer=300.0,
        seed=0,
    )
    t = b.table
    assert set(t.index) == {"raw:fault_distance", "logistic", "truth"}
    assert b.settings["deposit_cells"] == 40
    # the favourability that placed the deposits ranks them well out of fold; so does
    # distance to a fault, read with the sign each fold's training ground gives it
    assert t.loc["truth", "auc"] > 0.75
    assert t.loc["raw:fault_distance", "auc"] > 0.6


def test_the_example_builds_its_cnn_row_from_its_flags(world):
    """``examples/province_benchmark.py``: the stack as the IOCG check built it, and the CNN
    row with the training targets and epochs its flags give (``--epochs`` drops the inner
    validation side)."""
    ex = load_example("province_benchmark")
    stack = ex.stack_of(world)
    assert stack.attrs["categorical_legend"] and np.isfinite(stack.values).all()
    a = ex.parse(["out", "--negatives=resample", "--ratio", "50", "--epochs=2", "--jitter=0"])
    assert a.out == "out" and not a.truth
    deep = ex.deep_options(a)
    assert deep.pop("jitter") == 0  # a flag of 0 is set, not dropped
    assert deep == {
        "negatives": "resample",
        "negative_ratio": 50.0,
        "validation": None,
        "fit_kwargs": {"epochs": 2},
    }
    assert ex.deep_options(ex.parse([])) == {}  # DeepMethod's defaults
    for bad in (["--bogus"], ["--negatives=some"], ["a", "b"]):
        with pytest.raises(SystemExit) as exc:  # refused, not ignored for a default run
            ex.parse(bad)
        assert exc.value.code == 2
    rows = ex.methods(["logistic", "cnn"], 2, 1, False, world, deep)
    assert rows[0] == "logistic"
    cnn = rows[1]
    assert isinstance(cnn, xp.DeepMethod) and cnn.name == "cnn_ens2"
    assert (cnn.negatives, cnn.negative_ratio, cnn.validation) == ("resample", 50.0, None)
    assert dict(cnn.fit_kwargs) == {"device": "cpu", "epochs": 2}
    assert deep["fit_kwargs"] == {"epochs": 2}  # the caller's arguments are left as given
    # --tune-targets: the same CNN wrapped in Tuned over the two training targets
    assert ex.tune_options(a) is None
    t = ex.parse(["--tune-targets", "--inner-folds=2", "--tune-floor=60", "--epochs=2"])
    tune = ex.tune_options(t)
    assert tune == {"inner_folds": 2, "min_validation_deposits": 60}
    name, tuned = ex.methods(["cnn"], 3, 1, False, world, ex.deep_options(t), tune)[0]
    assert name == "cnn_ens3_tuned" and isinstance(tuned, xp.Tuned)
    assert tuned.grid is xp.harness.TARGET_GRID and (tuned.inner_folds, tuned.floor) == (2, 60)
    assert isinstance(tuned.estimator, xp.DeepMethod) and tuned.estimator.validation is None
    assert ex.tune_options(ex.parse(["--tune-targets"]))["min_validation_deposits"] is None
    with pytest.raises(SystemExit) as exc:  # the flags it chooses cannot also be given
        ex.parse(["--tune-targets", "--gap=1"])
    assert exc.value.code == 2
