"""Supervised training: recipes, the fit loop, spatial validation, cards and checkpoints."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import TensorDataset

import xprospect as xp
from xprospect.evaluate.splits import overlapping, spatial_split
from xprospect.exceptions import DataError, ModelCardError, XProspectError
from xprospect.models import SmallCNN
from xprospect.patches import PatchPlan, PatchSet
from xprospect.score import score
from xprospect.train import (
    RECIPES,
    Recipe,
    fit,
    get_recipe,
    load_checkpoint,
    save_checkpoint,
)
from xprospect.train._loop import ChannelStats, class_weights
from xprospect.train.fitting import HISTORY_COLUMNS

ELEMENTS = ["Au", "Ag", "As", "Cu", "Ni", "Cr"]
RES = 500.0
SIZE = 16


def synthetic_stack(seed: int, *, n_deposits: int = 30, n_samples: int = 1500, noise: float = 0.2):
    """A synthetic world gridded by IDW at 500 m, log10 and z-scored, stacked."""
    world = xp.synthetic.survey(
        seed=seed, n_samples=n_samples, n_deposits=n_deposits, elements=ELEMENTS, noise=noise
    )
    grid = xp.make_grid(like=world.samples, resolution=RES)
    maps = xp.grid_idw(world.samples, like=grid, k=8).prospect.log10().prospect.zscore()
    return world, maps.prospect.stack(ELEMENTS)


def deposit_patches(world, stack, *, n_neg: int = 150, per: int = 3, seed: int = 0):
    return stack.prospect.patches(
        positives=world.deposits,
        negatives=n_neg,
        size=SIZE,
        jitter=3,
        n_per_positive=per,
        seed=seed,
    )


def small_cnn(seed: int = 0, n: int = len(ELEMENTS)) -> SmallCNN:
    return SmallCNN(n, window=SIZE, widths=(16, 16, 32), seed=seed)


def with_labels(ps: PatchSet, labels: np.ndarray) -> PatchSet:
    p = ps.plan
    return PatchSet(PatchPlan(p.geometry, p.size, p.origins, labels, p.groups), ps.stack)


@pytest.fixture(scope="module")
def world_stack():
    return synthetic_stack(7)


@pytest.fixture(scope="module")
def patchset(world_stack):
    world, stack = world_stack
    return deposit_patches(world, stack)


@pytest.fixture(scope="module")
def trained(patchset):
    """A SmallCNN fitted on the synthetic world with a spatial validation split."""
    return fit(
        small_cnn(),
        patchset,
        recipe="adam",
        epochs=6,
        validation=0.25,
        device="cpu",
        progress=False,
        seed=0,
    )


def toy_data(n: int = 48, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 10, 10, generator=g)
    y = torch.arange(n) % 2
    x[y == 1, 0, 3:7, 3:7] += 1.5
    return TensorDataset(x, y)


def toy_model(seed: int = 0) -> SmallCNN:
    return SmallCNN(3, window=10, widths=(8, 8), seed=seed)


# ---- recipes ---------------------------------------------------------------------------------


def test_recipes_follow_the_studies():
    sgd = get_recipe("resnet-sgd")
    assert (sgd.optimizer, sgd.lr, sgd.momentum, sgd.weight_decay) == ("sgd", 0.01, 0.9, 1e-4)
    assert (sgd.batch_size, sgd.epochs, sgd.step_size, sgd.gamma) == (32, 120, 30, 0.5)
    adam = RECIPES["adam"]
    assert (adam.optimizer, adam.lr, adam.batch_size, adam.step_size, adam.gamma) == (
        "adam",
        1e-3,
        16,
        5,
        0.9,
    )
    assert get_recipe(sgd.to_dict()) == sgd
    with pytest.raises(XProspectError, match="unknown"):
        get_recipe("sgd-fast")
    with pytest.raises(XProspectError, match="optimizer"):
        Recipe(name="x", optimizer="lbfgs")


def test_learning_rate_schedule_in_history():
    rec = get_recipe("resnet-sgd").replace(step_size=2, epochs=5, batch_size=16)
    res = fit(toy_model(), toy_data(), recipe=rec, device="cpu", progress=False)
    np.testing.assert_allclose(res.history["lr"], [0.01, 0.01, 0.005, 0.005, 0.0025])


# ---- the loop --------------------------------------------------------------------------------


def test_history_columns_and_result():
    data = toy_data()
    res = fit(
        toy_model(),
        data,
        recipe="adam",
        epochs=3,
        validation=np.arange(36, 48),
        device="cpu",
        progress=False,
    )
    # the registered metrics beyond the AUC follow the fixed columns
    assert tuple(res.history.columns) == (
        *HISTORY_COLUMNS,
        "val_pr_auc",
        "val_brier",
        "val_capture_5",
        "val_capture_10",
        "val_capture_20",
    )
    assert res.history["epoch"].tolist() == [1, 2, 3]
    assert res.history[["loss", "acc", "val_loss", "val_acc", "val_auc"]].notna().all().all()
    assert not res.model.training
    assert all(p.device.type == "cpu" for p in res.model.parameters())
    assert res.val_index.tolist() == list(range(36, 48))
    assert res.card["mean"] is not None and res.card["recipe"]["name"] == "adam"
    # without validation the validation columns are NaN and the last epoch is kept
    res2 = fit(toy_model(), data, recipe="adam", epochs=2, device="cpu", progress=False)
    assert res2.history["val_auc"].isna().all() and res2.best_epoch == 2


def test_fit_is_deterministic_on_cpu():
    data = toy_data()
    kw = dict(
        recipe="adam", epochs=3, validation=np.arange(36, 48), device="cpu", progress=False, seed=3
    )
    a = fit(toy_model(), data, **kw)
    b = fit(toy_model(), data, **kw)
    pd.testing.assert_frame_equal(a.history, b.history)
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    c = fit(toy_model(), data, **{**kw, "seed": 4})
    assert not a.history["loss"].equals(c.history["loss"])
    # the caller's global RNG is left alone
    model = toy_model()  # (building layers draws from the global RNG)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    fit(model, data, **kw)
    assert torch.equal(torch.rand(1), before)


def test_fit_on_patchset_is_deterministic(patchset):
    kw = dict(recipe="adam", epochs=2, validation=0.25, device="cpu", progress=False, seed=1)
    a = fit(small_cnn(), patchset, **kw)
    b = fit(small_cnn(), patchset, **kw)
    pd.testing.assert_frame_equal(a.history, b.history)
    assert all(
        torch.equal(v, w)
        for v, w in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True)
    )


def test_early_stopping():
    # labels carry no signal, so validation stops improving quickly
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(
        torch.randn(64, 3, 10, 10, generator=g), torch.randint(0, 2, (64,), generator=g)
    )
    res = fit(
        toy_model(),
        data,
        recipe="adam",
        epochs=40,
        validation=np.arange(44, 64),
        early_stopping=2,
        device="cpu",
        progress=False,
    )
    assert res.stopped_early
    assert len(res.history) == res.best_epoch + 2 < 40
    best = res.history.set_index("epoch").loc[res.best_epoch, "val_auc"]
    assert best == res.history["val_auc"].max()
    with pytest.raises(XProspectError, match="validation"):
        fit(toy_model(), data, epochs=2, early_stopping=2, progress=False, device="cpu")


def test_best_weights_are_returned():
    data = toy_data()
    res = fit(
        toy_model(),
        data,
        recipe="adam",
        epochs=4,
        validation=np.arange(36, 48),
        device="cpu",
        progress=False,
        monitor="val_loss",
    )
    assert res.best_epoch == int(res.history["val_loss"].idxmin()) + 1
    # the returned weights reproduce the best epoch's validation loss
    val = torch.utils.data.Subset(data, range(36, 48))
    p = score(val, res.model, device="cpu")
    y = data.tensors[1][36:48].numpy()
    w = class_weights(data.tensors[1][:36].numpy(), "balanced", 2)
    nll = -(w[y] * np.log(np.where(y == 1, p, 1 - p))).sum() / w[y].sum()
    assert nll == pytest.approx(res.history["val_loss"].min(), rel=1e-4)


def test_class_weights():
    y = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(class_weights(y, "balanced", 2), [4 / 6, 2.0])
    np.testing.assert_allclose(class_weights(y, {1: 3.0}, 2), [1.0, 3.0])
    assert class_weights(y, None, 2) is None
    with pytest.raises(DataError, match="no class"):
        class_weights(np.zeros(4, dtype=int), "balanced", 2)
    with pytest.raises(XProspectError, match="class_weight"):
        class_weights(y, "inverse", 2)


def test_channel_stats_are_nan_aware_and_hash_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (20, 2, 5, 5)).astype("float32")
    x[0, 0, :2] = np.nan
    s = ChannelStats()
    s.update(x[:7], np.zeros(7))
    s.update(x[7:], np.ones(13))
    mean, std, h = s.result()
    flat = np.moveaxis(x, 1, 0).reshape(2, -1).astype("float64")
    np.testing.assert_allclose(mean, np.nanmean(flat, axis=1), rtol=1e-10)
    np.testing.assert_allclose(std, np.nanstd(flat, axis=1), rtol=1e-8)
    s2 = ChannelStats()
    s2.update(x[:7], np.zeros(7))
    s2.update(x[7:], np.r_[0, np.ones(12)])
    assert s2.result()[2] != h


def test_refuses_anomaly_models_and_bad_options():
    from xprospect.models import ConvAutoencoder

    with pytest.raises(ModelCardError, match="fit_anomaly"):
        fit(ConvAutoencoder(3), toy_data(), epochs=1, progress=False)
    with pytest.raises(XProspectError, match="monitor"):
        fit(toy_model(), toy_data(), epochs=1, monitor="acc", progress=False)
    with pytest.raises(DataError, match="spatial split"):
        fit(toy_model(), toy_data(), epochs=1, validation=0.2, progress=False)
    with pytest.raises(XProspectError, match="only 'space'"):
        fit(toy_model(), toy_data(), epochs=1, validation=0.2, split="random", progress=False)


# ---- spatial validation ----------------------------------------------------------------------


def test_spatial_split_keeps_groups_and_buffer(patchset):
    tr, va, info = spatial_split(
        patchset.xy,
        patchset.labels,
        extent=(SIZE * RES, SIZE * RES),
        fraction=0.25,
        groups=patchset.groups,
        seed=0,
    )
    assert not set(tr) & set(va)
    assert info["n_train"] + info["n_val"] + info["n_dropped"] == len(patchset)
    # no training window overlaps a validation window (checked on grid indices)
    o = patchset.plan.origins
    dy = np.abs(o[tr, None, 0] - o[None, va, 0]) < SIZE
    dx = np.abs(o[tr, None, 1] - o[None, va, 1]) < SIZE
    assert not (dy & dx).any()
    # windows of one deposit stay on one side
    g = patchset.groups
    for grp in np.unique(g[g >= 0]):
        members = set(np.flatnonzero(g == grp))
        assert not (members & set(tr) and members & set(va))
    for side in (tr, va):
        assert set(np.unique(patchset.labels[side])) == {0, 1}


def test_overlapping():
    a = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 9.0]])
    b = np.array([[0.0, 9.5]])
    np.testing.assert_array_equal(overlapping(a, b, (10.0, 10.0)), [True, False, True])


def test_fit_validation_split_is_spatial(trained, patchset):
    tr, va = trained.train_index, trained.val_index
    o = patchset.plan.origins
    dy = np.abs(o[tr, None, 0] - o[None, va, 0]) < SIZE
    dx = np.abs(o[tr, None, 1] - o[None, va, 1]) < SIZE
    assert not (dy & dx).any()
    assert trained.split["method"].startswith("spatial")
    assert trained.card["split"]["n_val"] == len(va)


def test_card_describes_training(trained, patchset):
    card = trained.card
    assert card["elements"] == ELEMENTS
    assert card["resolution"] == [RES, RES]
    assert card["window"] == [SIZE, SIZE]
    assert card["crs"] is not None and card["recipe"]["name"] == "adam"
    assert card["epochs"] == 6 and card["best_epoch"] == trained.best_epoch
    assert len(card["data_hash"]) == 64
    x = patchset.load(trained.train_index).astype("float64")
    flat = np.moveaxis(x, 1, 0).reshape(len(ELEMENTS), -1)
    np.testing.assert_allclose(card["mean"], np.nanmean(flat, axis=1), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(card["std"], np.nanstd(flat, axis=1), rtol=1e-6)


# ---- checkpoints -----------------------------------------------------------------------------


def test_checkpoint_round_trip_gives_identical_scores(trained, world_stack, patchset, tmp_path):
    _, stack = world_stack
    path = save_checkpoint(trained, tmp_path / "cnn.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == 1 and raw["config"]["name"] == "small_cnn"
    back = load_checkpoint(path)
    assert back.card == trained.model.card and not back.training
    a = xp.score.score(stack, trained.model, device="cpu")
    b = stack.prospect.score(back, device="cpu")
    np.testing.assert_array_equal(a.values, b.values)
    assert np.isfinite(a.values).any()
    np.testing.assert_array_equal(
        score(patchset, back, device="cpu"), score(patchset, trained.model, device="cpu")
    )


def test_checkpoint_written_during_fit(patchset, tmp_path):
    res = fit(
        small_cnn(),
        patchset,
        recipe="adam",
        epochs=2,
        validation=0.25,
        device="cpu",
        progress=False,
        checkpoint=tmp_path / "run" / "best.pt",
    )
    assert res.checkpoint == tmp_path / "run" / "best.pt"
    back = load_checkpoint(res.checkpoint)
    assert back.card["best_epoch"] == res.best_epoch
    for k, v in res.model.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k


def test_mismatched_elements_are_refused(trained, world_stack, tmp_path):
    _, stack = world_stack
    model = load_checkpoint(save_checkpoint(trained, tmp_path / "m.pt"))
    with pytest.raises(ModelCardError, match="order"):
        xp.score.score(stack.isel(element=slice(None, None, -1)), model, device="cpu")
    other = stack.isel(element=[0, 1, 2, 3, 4]).copy()
    other = xr_concat_renamed(other, stack.isel(element=[5]), "Zn")
    with pytest.raises(ModelCardError, match="missing"):
        xp.score.score(other, model, device="cpu")
    coarse = stack.isel(x=slice(None, None, 2), y=slice(None, None, 2))
    with pytest.raises(ModelCardError, match="resolution"):
        xp.score.score(coarse, model, device="cpu")


def xr_concat_renamed(a, b, name):
    import xarray as xr

    b = b.assign_coords(element=[name])
    return xr.concat([a, b], dim="element")


def test_corrupt_and_foreign_files_are_refused(tmp_path):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"\x80\x02not a torch file at all")
    with pytest.raises(ModelCardError, match=r"corrupt\.pt"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ModelCardError, match=r"foreign\.pt.*not an xprospect checkpoint"):
        load_checkpoint(foreign)
    # a pickle carrying arbitrary objects is never unpickled
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump(
            {
                "format": 1,
                "config": {"name": "small_cnn"},
                "state_dict": {},
                "card": Recipe(name="x"),
            },
            f,
            protocol=2,
        )
    with pytest.raises(ModelCardError, match=r"evil\.pt"):
        load_checkpoint(evil)
    with pytest.raises(ModelCardError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(toy_model(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ModelCardError, match=r"truncated\.pt"):
        load_checkpoint(truncated)


# ---- learning on the synthetic world ---------------------------------------------------------


def held_out(ps: PatchSet, seed: int = 0):
    tr, te, _ = spatial_split(
        ps.xy, ps.labels, extent=(SIZE * RES, SIZE * RES), fraction=0.3, groups=ps.groups, seed=seed
    )
    return ps.subset(tr), ps.subset(te)


@pytest.mark.slow
def test_learns_prospectivity_on_spatially_held_out_windows(patchset):
    from sklearn.metrics import roc_auc_score

    train, test = held_out(patchset)
    res = fit(
        small_cnn(),
        train,
        recipe="adam",
        epochs=20,
        validation=0.25,
        early_stopping=5,
        device="cpu",
        progress=False,
    )
    auc = roc_auc_score(test.labels, score(test, res.model, device="cpu"))
    assert auc >= 0.75, auc
    # shuffled-label control: same windows, labels permuted; averaged over permutations
    control = []
    for s in range(4):
        labels = np.random.default_rng(s).permutation(train.labels)
        r = fit(
            small_cnn(s),
            with_labels(train, labels),
            recipe="adam",
            epochs=15,
            device="cpu",
            progress=False,
            seed=s,
        )
        control.append(roc_auc_score(test.labels, score(test, r.model, device="cpu")))
    print(f"spatial held-out AUC {auc:.3f}; shuffled-label AUCs {np.round(control, 3)}")
    assert np.mean(control) <= 0.65, control


def test_resnet_records_its_window_through_a_checkpoint(world_stack, tmp_path):
    world, stack = world_stack
    ps = stack.prospect.patches(
        positives=world.deposits, negatives=20, size=20, jitter=2, crop=16, buffer=4000.0, seed=0
    )
    model = xp.models.resnet18(in_channels=len(ELEMENTS), num_classes=2, seed=0)
    res = fit(model, ps, recipe="resnet-sgd", epochs=1, batch_size=16, device="cpu", progress=False)
    assert res.model.window == 16 and res.card["window"] == [16, 16]
    back = load_checkpoint(save_checkpoint(res, tmp_path / "r18.pt"))
    assert back.window == 16 and back.context == (8, 7)
    sub = stack.isel(y=slice(0, 40), x=slice(0, 48))
    np.testing.assert_array_equal(
        xp.score.score(sub, back, stride=8, device="cpu").values,
        xp.score.score(sub, res.model, stride=8, device="cpu").values,
    )


def test_validation_given_as_patchset_or_indices(patchset):
    tr, va, _ = spatial_split(
        patchset.xy,
        patchset.labels,
        extent=(SIZE * RES, SIZE * RES),
        fraction=0.25,
        groups=patchset.groups,
        seed=2,
    )
    res = fit(
        small_cnn(),
        patchset.subset(tr),
        validation=patchset.subset(va),
        recipe="adam",
        epochs=1,
        device="cpu",
        progress=False,
    )
    assert res.history["val_auc"].notna().all() and res.split["n_val"] == len(va)
    # indices into the training set: overlapping training windows are dropped
    res2 = fit(
        small_cnn(), patchset, validation=va, recipe="adam", epochs=1, device="cpu", progress=False
    )
    assert res2.split["n_dropped"] > 0
    assert not set(res2.train_index) & set(va)


# ---- spatial cross-validation of the whole path ---------------------------------------------


@pytest.mark.slow
def test_cross_validate_is_spatial_and_learns(world_stack, monkeypatch):
    from sklearn.metrics import roc_auc_score

    import xprospect.train.crossval as crossval
    from xprospect.points import make_points, points_to_index
    from xprospect.train import cross_validate

    world, stack = world_stack
    barren_windows = []  # the barren points each fold trains from, seen on the way in
    real_make_patches = crossval.make_patches

    def spy(*args, **kwargs):
        barren_windows.append(kwargs["negatives"])
        return real_make_patches(*args, **kwargs)

    monkeypatch.setattr(crossval, "make_patches", spy)
    settings = dict(
        model="small_cnn",
        model_kwargs={"widths": [16, 16, 32]},
        window=10,
        jitter=2,
        n_per_positive=3,
        negatives=150,
        n_folds=3,
        select_alpha=0.01,
        fit_kwargs={"epochs": 12, "device": "cpu"},
        score_kwargs={"device": "cpu"},
        seed=0,
    )
    cv = cross_validate(stack, world.deposits, **settings)
    pts = cv.points
    # every point is scored once, by the model of the fold that held it out
    assert (pts["fold"] >= 0).all() and np.isfinite(pts["score"]).all()
    assert sorted(pts["fold"].unique()) == [0, 1, 2]
    assert cv.auc == pytest.approx(roc_auc_score(pts["label"], pts["score"]))
    assert cv.auc_ci[0] < cv.auc < cv.auc_ci[1]
    # the buffer: no test point has a training point of its fold within the buffer
    buf = cv.settings["buffer"]
    assert buf == (10 + 4 + 2) * RES
    assert cv.folds["n_dropped_by_buffer"].sum() > 0
    # capture: the share of held-out deposits in the top 20 % of each fold's map
    dep = pts[pts["label"] == 1]
    assert cv.capture["deposit_fraction"] == pytest.approx(dep["captured"].mean())
    # every registered metric is a fold column and a pooled metric (PR AUC, Brier, capture)
    from sklearn.metrics import average_precision_score, brier_score_loss

    for col in ("auc", "pr_auc", "brier", "capture_5", "capture_10", "capture_20"):
        assert col in cv.folds.columns and col in cv.metrics, col
    assert cv.metrics["pr_auc"] == pytest.approx(
        average_precision_score(pts["label"], pts["score"])
    )
    assert cv.metrics["brier"] == pytest.approx(brier_score_loss(pts["label"], pts["score"]))
    # judged barren points are drawn blind to the deposits (some lie beside one; none on a
    # deposit cell), barren training windows apart from every deposit
    assert cv.settings["barren"].startswith("drawn twice")
    dep_xy = np.column_stack([world.deposits["x"].values, world.deposits["y"].values])
    barren = pts[pts["label"] == 0]
    near = np.abs(barren[["x", "y"]].values[:, None, :] - dep_xy[None]).max(axis=-1).min(axis=1)
    assert (near <= buf).any()
    on = make_points(x=barren["x"].values, y=barren["y"].values, crs=stack.rio.crs)
    dep_cells = {tuple(c) for c in points_to_index(world.deposits, stack)[0]}
    assert not dep_cells & {tuple(c) for c in points_to_index(on, stack)[0]}
    assert len(barren_windows) == 3
    for neg in barren_windows:
        gap = np.column_stack([neg["x"].values, neg["y"].values])[:, None, :] - dep_xy[None]
        assert (np.sqrt((gap**2).sum(axis=-1)).min(axis=1) > buf).all()
    print(cv)
    assert cv.auc >= 0.7, cv
    assert cv.capture["deposit_fraction"] > 0.35, cv.capture
    # same seed, same result
    again = cross_validate(stack, world.deposits, **settings)
    np.testing.assert_array_equal(again.points["score"].values, pts["score"].values)


def test_cross_validate_refuses_bad_input(world_stack):
    from xprospect.baselines import RandomForestModel
    from xprospect.models import VAE
    from xprospect.train import cross_validate

    world, stack = world_stack
    # a baseline (class, instance or name) or an anomaly model: a clear error that points
    # to the harness, before any fold is trained (a baseline class was a bare TypeError)
    for model in (RandomForestModel, RandomForestModel(), "rf", lambda n, seed: VAE(n)):
        with pytest.raises(xp.DataError, match=r"xp\.benchmark"):
            cross_validate(
                stack,
                world.deposits,
                model=model,
                n_folds=3,
                window=5,
                fit_kwargs={"epochs": 1, "device": "cpu"},
            )
    with pytest.raises(xp.DataError, match="stack DataArray"):
        cross_validate(stack.to_dataset("element"), world.deposits, model="small_cnn")
    with pytest.raises(xp.DataError, match="prospective_area"):
        cross_validate(stack, world.deposits, model="small_cnn", prospective_area=1.5)
    with pytest.raises(xp.DataError, match="deposits"):
        cross_validate(stack, world.deposits.isel(deposit=[0, 1]), model="small_cnn", n_folds=3)


# one epoch on tiny folds: the skill is not what is tested here, its warning is not news
@pytest.mark.filterwarnings("ignore::xprospect.exceptions.XProspectWarning")
def test_cross_validate_deals_the_benchmarks_folds_whatever_the_barren_points(world_stack):
    from xprospect.harness import benchmark
    from xprospect.points import make_points, points_to_index
    from xprospect.train import cross_validate

    world, stack = world_stack
    fkw = {"epochs": 1, "validation": None, "early_stopping": None, "device": "cpu"}
    kw = dict(
        model="small_cnn",
        model_kwargs={"widths": [4, 4]},
        window=5,
        jitter=0,
        n_per_positive=1,
        n_folds=3,
        fit_kwargs=fkw,
        score_kwargs={"device": "cpu"},
        seed=3,
    )
    rng = np.random.default_rng(0)
    x0, x1 = float(stack.x.min()), float(stack.x.max())
    y0, y1 = float(stack.y.min()), float(stack.y.max())
    runs = []
    for n in (40, 90):  # two barren sets of different sizes and places
        neg = make_points(x=rng.uniform(x0, x1, n), y=rng.uniform(y0, y1, n), crs=stack.rio.crs)
        runs.append(cross_validate(stack, world.deposits, negatives=neg, **kw).points)
    folds = [r.loc[r["label"] == 1].set_index("point_id")["fold"].sort_index() for r in runs]
    # the deposits' folds depend on the grid, the deposits and the seed, not on the barren
    # points (dealt by spatial_block_folds over every point, they did)
    pd.testing.assert_series_equal(folds[0], folds[1])
    # and they are the folds the harness deals for the same grid, deposits and seed
    b = benchmark(stack, world.deposits, methods=["raw:Au"], folds=3, buffer=0.0, seed=3)
    held = b.maps["held_out_fold"].values
    dep = runs[0][runs[0]["label"] == 1]
    idx, _ = points_to_index(
        make_points(x=dep["x"].values, y=dep["y"].values, crs=stack.rio.crs), stack
    )
    np.testing.assert_array_equal(held[tuple(idx.T)], dep["fold"].values)


def test_fit_is_the_function_and_moved_modules_warn():
    import importlib
    import sys

    import xprospect.train

    assert callable(xprospect.train.fit) and xprospect.train.fit is fit
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("xprospect.train.fit")  # the module is train.fitting now
    for old, new in (
        ("xprospect.models.transfer", "xprospect.models.weights"),
        ("xprospect.score.core", "xprospect.score.engine"),
    ):
        sys.modules.pop(old, None)
        with pytest.warns(FutureWarning, match=new.rsplit(".", 1)[0]):
            mod = importlib.import_module(old)
        target = importlib.import_module(new)
        assert all(getattr(mod, n) is getattr(target, n) for n in mod.__all__)


def test_every_trainer_takes_its_optimiser_from_a_recipe(monkeypatch):
    from xprospect.train import _loop
    from xprospect.train.recipes import Recipe

    made = []
    real = Recipe.make_optimizer

    def spy(self, params):
        made.append(self.name)
        return real(self, params)

    monkeypatch.setattr(Recipe, "make_optimizer", spy)
    data = toy_data()
    fit(toy_model(), data, recipe="adam", epochs=1, device="cpu", progress=False)
    _, stack = synthetic_stack(0, n_samples=300, n_deposits=3)
    xp.train.pretrain_reconstruction(
        small_cnn(), stack, n_patches=8, epochs=1, batch_size=4, progress=False, device="cpu"
    )
    assert made == ["adam", "reconstruction"]
    log = _loop.train_epochs(
        toy_model(),
        [],
        get_recipe("adam"),
        epochs=0,
        batches=lambda e: [],
        batch_loss=lambda b: None,
    )
    assert log.rows == [] and log.best_epoch == 0
