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
