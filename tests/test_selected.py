"""Element selection inside the harness: chosen per fold on the training ground only."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

import xprospect as xp
from xprospect import harness
from xprospect.exceptions import DataError
from xprospect.harness import DeepMethod, Selected, Tuned, benchmark
from xprospect.points import make_points

STEP = 1000.0
BUFFER = 3000.0
NOISE = ["n1", "n2", "n3", "n4", "n5"]


@pytest.fixture(scope="module")
def world():
    """A 48 x 48 grid of 1 km cells: Au is raised around 40 deposits, five noise elements."""
    rng = np.random.default_rng(0)
    ny = nx = 48
    iy = rng.integers(2, ny - 2, 40)
    ix = rng.integers(2, nx - 2, 40)
    halo = np.zeros((ny, nx))
    halo[iy, ix] = 1.0
    halo = ndimage.gaussian_filter(halo, 1.5)
    layers = {"Au": halo / halo.max() * 3.0 + rng.normal(size=(ny, nx))}
    for n in NOISE:
        layers[n] = ndimage.gaussian_filter(rng.normal(size=(ny, nx)), 1.0) * 3.0
    order = ["n1", "n2", "Au", "n3", "n4", "n5"]  # Au not first: the kept index must be looked up
    y = (np.arange(ny)[::-1] + 0.5) * STEP
    x = (np.arange(nx) + 0.5) * STEP
    stack = xr.DataArray(
        np.stack([layers[e] for e in order]),
        dims=("element", "y", "x"),
        coords={"element": order, "y": y, "x": x},
    )
    deposits = make_points(x=x[ix], y=y[iy])
    return stack, deposits


def test_one_informative_element_among_noise_is_chosen_in_every_fold(world):
    stack, deposits = world
    b = benchmark(
        stack,
        deposits,
        methods=[
            "logistic",
            Selected("logistic"),  # the study's rule: |Z_AUC| > 2.576
            Selected("raw", k=1),
        ],
        folds=4,
        buffer=BUFFER,
        seed=0,
    )
    for name in ("logistic+select", "raw:selected"):
        rows = b.selection[name]
        assert [r["fold"] for r in rows] == [0, 1, 2, 3]
        for r in rows:
            assert r["elements"] == ["Au"], (name, r)
            assert r["z_auc"]["Au"] > 2.576
            assert max(r["z_auc"][n] for n in NOISE) < r["z_auc"]["Au"]
            assert 0 < r["n_deposits"] <= int(b.folds.loc[r["fold"], "training_deposits"])
    # raw:selected is the Au layer itself, fold by fold
    np.testing.assert_array_equal(
        b.maps["raw:selected"].values[b.maps["held_out_fold"].values >= 0],
        stack.sel(element="Au").values[b.maps["held_out_fold"].values >= 0],
    )
    assert b.table.loc["raw:selected", "kind"] == "raw"
    assert b.table.loc["logistic+select", "auc"] > 0.75


def test_selection_sees_no_held_out_deposit_or_buffer_cell_and_its_elements_are_used(
    world, monkeypatch
):
    stack, deposits = world
    seen: list[dict] = []
    fitted: list[tuple[str, list[str]]] = []
    real_select = harness.select_elements
    real_baseline = harness._run_baseline
    real_deep = harness._run_deep

    def spy_select(maps, deps, **kw):
        seen.append(
            {
                "finite": np.isfinite(maps.values).all(axis=0),
                "deposits": np.c_[deps["x"].values, deps["y"].values],
                "negatives": np.c_[kw["negatives"]["x"].values, kw["negatives"]["y"].values],
            }
        )
        return real_select(maps, deps, **kw)

    def spy_baseline(est, stk, x, *a, **k):
        assert x.shape[1] == stk.sizes["element"]
        fitted.append(("baseline", [str(e) for e in stk["element"].values]))
        return real_baseline(est, stk, x, *a, **k)

    def spy_deep(spec, stk, *a, **k):
        fitted.append(("deep", [str(e) for e in stk["element"].values]))
        return real_deep(spec, stk, *a, **k)

    monkeypatch.setattr(harness, "select_elements", spy_select)
    monkeypatch.setattr(harness, "_run_baseline", spy_baseline)
    monkeypatch.setattr(harness, "_run_deep", spy_deep)
    deep = DeepMethod(
        "small_cnn",
        model_kwargs={"widths": [4]},
        window=3,
        n_per_positive=1,
        negative_ratio=3,
        validation=None,
        fit_kwargs={"epochs": 1, "device": "cpu"},
        name="cnn",
    )
    b = benchmark(
        stack,
        deposits,
        methods=[Selected("logistic", k=2), Selected(deep, k=3)],
        folds=3,
        buffer=BUFFER,
        seed=1,
    )
    # one selection per method and fold, in the harness's order (fold by fold, method by method)
    assert len(seen) == 6 and len(fitted) == 6
    held = b.maps["held_out_fold"].values
    dep = b.maps["deposit"].values
    reach = int(BUFFER / STEP)
    xx, yy = np.meshgrid(stack["x"].values, stack["y"].values)
    for i, call in enumerate(seen):
        f, name = divmod(i, 2)
        near = ndimage.maximum_filter((held == f).astype(np.uint8), size=2 * reach + 1) > 0
        ground = b.maps["training_ground"].values[f]
        # selection reads only the training ground: no held-out cell, no buffer cell
        assert call["finite"].any()
        assert not (call["finite"] & near).any()
        np.testing.assert_array_equal(call["finite"], ground)

        # its positives are training deposits, none held out; its negatives lie on the ground
        def xy(mask):
            return {(float(a), float(c)) for a, c in zip(xx[mask], yy[mask], strict=True)}

        got = {(float(a), float(c)) for a, c in call["deposits"]}
        assert got == xy(ground & dep) and not (got & xy((held == f) & dep))
        assert {(float(a), float(c)) for a, c in call["negatives"]} <= xy(ground)
        # the method of that fold was fitted on exactly the elements kept
        method = ["logistic+select", "cnn+select"][name]
        kept = b.selection[method][f]["elements"]
        assert fitted[i] == (["baseline", "deep"][name], kept)
        assert len(kept) == [2, 3][name] and kept[0] in stack["element"].values


def test_k_chosen_on_inner_folds_and_recorded(world):
    stack, deposits = world
    tuned = Tuned(
        Selected("logistic", k=1), {"k": [1, 6]}, inner_folds=2, min_validation_deposits=0
    )
    b = benchmark(stack, deposits, methods=[("lt", tuned)], folds=3, buffer=BUFFER, seed=0)
    assert [r["params"]["k"] in (1, 6) for r in b.tuning["lt"]] == [True] * 3
    for t, s in zip(b.tuning["lt"], b.selection["lt"], strict=True):
        assert len(s["elements"]) == t["params"]["k"]  # the outer refit keeps the chosen k
        assert {c["params"]["k"] for c in t["candidates"]} == {1, 6}


def test_selected_refuses_bad_rules_and_methods(world):
    stack, deposits = world
    with pytest.raises(DataError, match="k="):
        Selected("logistic", k=0)
    with pytest.raises(DataError, match="alpha"):
        Selected("logistic", alpha=1.5)
    for bad in ("raw:Au", "gmm", Selected("logistic")):
        with pytest.raises(DataError, match="Selected"):
            benchmark(stack, deposits, methods=[Selected(bad)], folds=2, buffer=BUFFER)
    assert xp.Selected is Selected


def test_selected_from_rule_names_the_paper_rule_and_k():
    assert Selected.from_rule("gbm", "paper") == Selected("gbm")
    assert Selected.from_rule("gbm", "k3") == Selected("gbm", k=3)
    for bad in ("k", "top3", ""):
        with pytest.raises(DataError, match="element selection rule"):
            Selected.from_rule("gbm", bad)
    with pytest.raises(DataError, match="k=0"):
        Selected.from_rule("gbm", "k0")


def test_tuned_floor_of_a_selected_deep_method_is_the_deep_methods():
    """Tuned(Selected(deep)) keeps the DeepMethod's own floor, as Tuned(deep) does."""
    deep = DeepMethod("small_cnn", min_validation_deposits=5)
    assert Tuned(deep, {"window": [9]}).floor == 5
    assert Tuned(Selected(deep), {"k": [1, 2]}).floor == 5
    assert Tuned(Selected("logistic"), {"k": [1, 2]}).floor == 20
    assert Tuned(Selected(deep), {"k": [1]}, min_validation_deposits=3).floor == 3


def test_tuned_grid_naming_no_parameter_of_its_method_is_refused_up_front(world, monkeypatch):
    """A grid key the method lacks, or a grid value that is no list of candidates, is a
    DataError naming it before anything is fitted (it was a TypeError or ValueError from
    ``dataclasses.replace`` / sklearn once the first fold's tuning began)."""
    stack, deposits = world

    def never(*a, **k):
        raise AssertionError("nothing is fitted for a bad grid")

    monkeypatch.setattr(harness, "_run_baseline", never)
    monkeypatch.setattr(harness, "_run_deep", never)
    cases = [
        (Tuned(Selected("logistic"), {"C": [0.1, 1.0]}), "'C'.*Selected\\(Tuned"),
        (Tuned(Selected("logistic"), {"k": 3}), "'k'.*list"),
        (Tuned(Selected("logistic"), {"k": []}), "'k'.*no candidate"),
        (Tuned(xp.baselines.LogisticModel(), {"c": [1.0]}), "'c'.*LogisticModel"),
        (Tuned(DeepMethod("small_cnn"), {"windw": [9]}), "'windw'.*DeepMethod"),
        (Tuned(DeepMethod("small_cnn"), [{"jitter": [0]}, {"gap": [1]}]), "'gap'.*DeepMethod"),
        (Tuned(DeepMethod("small_cnn"), [{"jitter": [0]}, {"jitter": 1}]), "'jitter'.*list"),
        (Tuned(DeepMethod("small_cnn"), []), "empty list"),
        (Tuned(DeepMethod("small_cnn"), [{"jitter": [0]}, ("jitter", 1)]), "not a mapping"),
        (Tuned(DeepMethod("small_cnn"), "jitter"), "neither a mapping"),
    ]
    for tuned, match in cases:
        with pytest.raises(DataError, match=match):
            benchmark(stack, deposits, methods=["raw:Au", ("t", tuned)], folds=2, buffer=BUFFER)
