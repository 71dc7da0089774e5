"""Stronger deep models: ensembles, MC dropout, multi-scale context, PU loss, batch-wise
augmentation, and each of them as an option of the benchmark harness's DeepMethod."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.spatial import cKDTree

import xprospect as xp
from xprospect.evaluate.metrics import roc_auc
from xprospect.exceptions import DataError
from xprospect.harness import DeepMethod, Tuned, benchmark
from xprospect.models import DeepEnsemble, MultiScaleCNN, SmallCNN
from xprospect.models.registry import from_config
from xprospect.score import score
from xprospect.train import fit
from xprospect.train._batches import TensorBatches
from xprospect.train.fitting import nnpu_loss

# ---- models --------------------------------------------------------------------------------


def _members(n, dropout=0.0):
    return [SmallCNN(3, window=7, widths=(4, 4), dropout=dropout, seed=s).eval() for s in range(n)]


def test_ensemble_mean_and_std_are_those_of_the_members_dense_and_by_window():
    ms = _members(3)
    ens = DeepEnsemble(ms)
    x = torch.randn(5, 3, 7, 7)
    with torch.inference_mode():
        p = torch.stack([m.score_windows(x) for m in ms])
        torch.testing.assert_close(ens.score_windows(x), p.mean(0))
        torch.testing.assert_close(ens.with_output("std").score_windows(x), p.std(0))
        torch.testing.assert_close(torch.softmax(ens(x), 1)[:, 1], p.mean(0), atol=1e-6, rtol=0)
        raster = torch.randn(1, 3, 12, 15)
        dense = ens.with_output("std").score_dense(raster)
        win = raster.unfold(2, 7, 1).unfold(3, 7, 1).permute(0, 2, 3, 1, 4, 5)
        by_window = ens.with_output("std").score_windows(win.reshape(-1, 3, 7, 7))
        torch.testing.assert_close(dense.reshape(-1), by_window, atol=1e-5, rtol=1e-4)
    # a checkpoint's config rebuilds the ensemble; the weights load into it
    again = from_config(ens.config)
    again.load_state_dict(ens.state_dict())
    again.eval()
    with torch.inference_mode():
        torch.testing.assert_close(again.score_windows(x), ens.score_windows(x))


def test_mc_dropout_gives_spread_reproducibly_and_needs_dropout():
    ens = DeepEnsemble(_members(1, dropout=0.5), mc_samples=8, mc_seed=3)
    x = torch.randn(4, 3, 9, 9)
    with torch.inference_mode():
        s1 = ens.with_output("std").score_dense(x)
        s2 = ens.with_output("std").score_dense(x)
    assert (s1 > 0).all()
    torch.testing.assert_close(s1, s2)  # seeded masks
    assert not ens.members[0].dropout.training  # dropout is switched back off
    with pytest.raises(xp.exceptions.ModelCardError, match="dropout"):
        DeepEnsemble(_members(2), mc_samples=4)


def test_mc_dropout_of_a_multiscale_cnn_spreads_its_dense_scores():
    """The multi-scale CNN's fast eval dense pass must not skip a dropout that Monte Carlo
    dropout switched on: its passes were all equal (std 0 everywhere)."""
    for classes in (2, 3):
        net = MultiScaleCNN(3, classes, window=5, context=9, widths=(4, 4), dropout=0.5, seed=0)
        ens = DeepEnsemble([net.eval()], mc_samples=6, mc_seed=1)
        raster = torch.randn(1, 3, 14, 15, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            spread = ens.with_output("std").score_dense(raster)
            plain = net.score_dense(raster)  # dropout off again: the fast pass
        assert float((spread > 0).float().mean()) > 0.8 and float(spread.mean()) > 0.01, classes
        o = net.offset
        with torch.inference_mode():
            lg = net.fine(raster[..., o:-o, o:-o]) + net.coarse(raster)
        torch.testing.assert_close(plain, torch.softmax(lg, 1)[:, 1], atol=2e-6, rtol=0)


def test_ensemble_refuses_members_of_other_normalisation():
    a, b = _members(2)
    a.card = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    b.card = {"mean": [0.0, 1.0, 0.0], "std": [1.0, 1.0, 1.0]}
    with pytest.raises(xp.exceptions.ModelCardError, match="same windows"):
        DeepEnsemble([a, b])


def test_multiscale_dense_pass_equals_the_window_pass():
    net = MultiScaleCNN(3, window=5, context=11, widths=(6, 6), seed=0).eval()
    raster = torch.randn(1, 3, 16, 19)
    with torch.inference_mode():
        dense = net.score_dense(raster)
        win = raster.unfold(2, 11, 1).unfold(3, 11, 1).permute(0, 2, 3, 1, 4, 5)
        by_window = net.score_windows(win.reshape(-1, 3, 11, 11))
    assert dense.shape == (1, 6, 9)
    torch.testing.assert_close(dense.reshape(-1), by_window, atol=1e-5, rtol=1e-4)
    assert net.window == 11 and net.context == (5, 5)
    with pytest.raises(xp.exceptions.ModelCardError, match="even"):
        MultiScaleCNN(3, window=5, context=10, widths=(4,))


def _multiscale(seed=0):
    """A MultiScaleCNN in eval mode whose batch norms hold non-trivial statistics."""
    net = MultiScaleCNN(3, window=5, context=11, widths=(6, 6), context_widths=(6, 8), seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return net.eval()


def test_multiscale_fast_dense_pass_equals_plain_modules():
    """Eval: channels-last, folded batch norms, running-sum means == the plain modules to 2e-6;
    train (batch statistics): the plain modules themselves."""
    net = _multiscale()
    x = torch.randn(2, 3, 40, 37, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        fast = net.score_dense(x)
        plain = torch.softmax(net._logits(x), dim=1)[:, 1]
    assert fast.shape == plain.shape == (2, 30, 27)
    assert float((fast - plain).abs().max()) < 2e-6
    assert float(plain.std()) > 1e-3  # the scores vary: the comparison is not vacuous
    net.train()
    with torch.no_grad():
        torch.testing.assert_close(
            net.score_dense(x), torch.softmax(net._logits(x), dim=1)[:, 1], rtol=0, atol=0
        )


@pytest.mark.parametrize("classes", [1, 3])
def test_multiscale_fast_dense_pass_of_one_and_three_classes_equals_plain_modules(classes):
    """Two classes take the logit-difference head; one and three keep every logit."""
    net = MultiScaleCNN(3, classes, window=5, context=11, widths=(6, 20), seed=0).eval()
    x = torch.randn(1, 3, 30, 26, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        fast, logits = net.score_dense(x), net._logits(x)
    plain = torch.sigmoid(logits[:, 0]) if classes == 1 else torch.softmax(logits, 1)[:, 1]
    assert fast.shape == plain.shape == (1, 20, 16)
    assert float((fast - plain).abs().max()) < 2e-6 and float(plain.std()) > 1e-4


@pytest.mark.parametrize("edge", ["pad", "reflect"])
def test_multiscale_score_dense_equals_window_by_window(edge):
    """score(): the dense pass, in memory and over uneven dask chunks, gives every cell its
    window's score (the window path) to float32 rounding, with the same NaN cells."""
    rng = np.random.default_rng(0)
    data = rng.normal(size=(3, 23, 31)).astype("float32")
    data[1, 0, 4] = data[0, 12, 30] = data[2, 9, 9] = np.nan  # two on the edges, one inside
    stack = xr.DataArray(
        data,
        dims=("element", "y", "x"),
        coords={"element": ["a", "b", "c"], "y": np.arange(23.0)[::-1], "x": np.arange(31.0)},
    )
    net = _multiscale()
    kw = {"device": "cpu", "allow_no_card": True, "edge": edge}
    windows = score(stack, net, method="windows", **kw).values
    dense = score(stack, net, **kw)
    lazy = score(stack.chunk({"y": (8, 6, 9), "x": (13, 11, 7)}), net, **kw)
    assert dense.attrs["method"] == "dense" and lazy.chunks == ((8, 6, 9), (13, 11, 7))
    assert np.isnan(windows).sum() == 3 and np.isnan(windows[[0, 12, 9], [4, 30, 9]]).all()
    for got in (dense.values, lazy.values):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(windows))
        np.testing.assert_allclose(got, windows, rtol=1e-5, atol=1e-7)
    assert float(np.nanstd(windows)) > 1e-3


# ---- training ------------------------------------------------------------------------------


def test_tensor_batches_crop_flip_rotate_like_augment_patch_and_are_seeded():
    x = np.arange(4 * 2 * 5 * 5, dtype="float32").reshape(4, 2, 5, 5)
    tb = TensorBatches(
        x, np.array([0, 1, 0, 1]), batch_size=3, crop=(3, 3), augment=True, shuffle=True, seed=1
    )
    tb.set_epoch(2)
    a = list(tb.batches())
    b = list(tb.batches())
    assert [t[0].shape for t in a] == [(3, 2, 3, 3), (1, 2, 3, 3)]
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        torch.testing.assert_close(xa, xb)
        assert torch.equal(ya, yb)
    # every augmented window is a crop of its source window under one of the 8 symmetries
    xs = torch.cat([t[0] for t in a])
    ys = torch.cat([t[1] for t in a])
    for w in xs:
        src = int(w[0].min().item()) // 50  # values of window i lie in [50 i, 50 i + 50)
        assert int(ys[[int(t.min()) // 50 for t in xs].index(src)]) == src % 2
        ok = False
        for k in range(4):
            for flip in (False, True):
                s = torch.rot90(torch.from_numpy(x[src]), k, dims=(-2, -1))
                s = s.flip(-1) if flip else s
                for oy in range(3):
                    for ox in range(3):
                        ok |= bool(torch.equal(s[:, oy : oy + 3, ox : ox + 3], w))
        assert ok
    plain = TensorBatches(
        x, np.zeros(4), batch_size=4, crop=(3, 3), augment=False, shuffle=False, seed=0
    )
    torch.testing.assert_close(next(plain.batches())[0], torch.from_numpy(x[:, :, 1:4, 1:4]))


def test_tensor_batches_draw_fresh_negatives_each_epoch_and_keep_every_positive():
    """``epoch_negatives``: each epoch holds every label-1 window and that many distinct
    label-0 ones, drawn anew per epoch from ``(seed, epoch)``; across epochs the pool is
    met; without it the batches are those of a plain shuffle (unchanged)."""
    n_pos, n_neg, k = 6, 200, 20
    labels = np.r_[np.ones(n_pos, dtype=int), np.zeros(n_neg, dtype=int)]
    rng = np.random.default_rng(0)
    order = rng.permutation(labels.size)
    labels = labels[order]
    x = np.arange(labels.size, dtype="float32")[:, None, None, None] * np.ones((1, 1, 3, 3))

    def epoch(tb, e):
        tb.set_epoch(e)
        got = [(xb[:, 0, 1, 1].numpy().astype(int), yb.numpy()) for xb, yb in tb.batches()]
        ids = np.concatenate([g[0] for g in got])
        ys = np.concatenate([g[1] for g in got])
        np.testing.assert_array_equal(ys, labels[ids])  # each window keeps its label
        return ids

    tb = TensorBatches(
        x, labels, batch_size=16, crop=None, augment=False, shuffle=True, seed=3, epoch_negatives=k
    )
    np.testing.assert_array_equal(np.sort(tb.epoch_labels()), np.r_[np.zeros(k), np.ones(n_pos)])
    seen = set()
    draws = []
    for e in range(30):
        ids = epoch(tb, e)
        assert ids.size == n_pos + k and np.unique(ids).size == ids.size
        assert set(np.flatnonzero(labels == 1)) <= set(ids)
        draws.append(frozenset(ids[labels[ids] == 0]))
        seen |= draws[-1]
    np.testing.assert_array_equal(epoch(tb, 4), epoch(tb, 4))  # seeded by (seed, epoch)
    assert len(set(draws)) == 30  # a fresh draw every epoch
    assert len(seen) > 0.9 * n_neg  # 30 draws of 20 meet most of the 200
    # a pool no larger than the draw: every window every epoch, as without the option
    whole = TensorBatches(
        x,
        labels,
        batch_size=16,
        crop=None,
        augment=False,
        shuffle=True,
        seed=3,
        epoch_negatives=n_neg,
    )
    plain = TensorBatches(x, labels, batch_size=16, crop=None, augment=False, shuffle=True, seed=3)
    assert whole.epoch_negatives is None
    want = np.random.default_rng([3, 5]).permutation(labels.size)
    np.testing.assert_array_equal(epoch(plain, 5), want)
    np.testing.assert_array_equal(epoch(whole, 5), want)


def _survey_patches(negatives=150, dtype="float32", **kw):
    """A small survey's log10 IDW stack (Au, As; 30 x 30 cells) and 5-cell windows: 12
    deposits and ``negatives`` barren ones (``kw``: other arguments of make_patches)."""
    w = xp.synthetic.survey(seed=1, n_samples=300, n_deposits=12, elements=["Au", "As"])
    stack = (
        w.samples.prospect.idw(like=xp.make_grid(like=w.samples, resolution=2000))
        .prospect.log10()
        .prospect.stack()
        .load()
        .astype(dtype)
    )
    patches = xp.make_patches(
        stack, positives=w.deposits, negatives=negatives, size=5, seed=0, **kw
    )
    return stack, patches


def test_fit_with_epoch_negatives_weighs_the_epoch_mix_and_refuses_what_it_cannot_draw(
    monkeypatch,
):
    import xprospect.train._loop as loop

    _, patches = _survey_patches()
    n_pos = int(np.sum(np.asarray(patches.labels) == 1))
    seen = []
    real = loop.class_weights

    def spy(labels, mode, n):
        seen.append(np.bincount(np.asarray(labels), minlength=2))
        return real(labels, mode, n)

    monkeypatch.setattr(loop, "class_weights", spy)
    kw = {"recipe": "adam", "epochs": 2, "progress": False, "device": "cpu"}
    res = fit(SmallCNN(2, window=5, widths=(4,), seed=0), patches, epoch_negatives=30, **kw)
    assert res.card["epoch_negatives"] == 30
    np.testing.assert_array_equal(seen[-1], [30, n_pos])  # balanced over the epoch's mix
    again = fit(SmallCNN(2, window=5, widths=(4,), seed=0), patches, epoch_negatives=30, **kw)
    for a, b in zip(
        res.model.state_dict().values(), again.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)  # same seed, same threads: bitwise
    plain = fit(SmallCNN(2, window=5, widths=(4,), seed=0), patches, **kw)
    assert "epoch_negatives" not in plain.card
    for bad in (0, 2.5, "30", True):
        with pytest.raises(xp.exceptions.XProspectError, match=f"epoch_negatives={bad!r}"):
            fit(SmallCNN(2, window=5, widths=(4,)), patches, epoch_negatives=bad, **kw)
    data = torch.utils.data.TensorDataset(torch.randn(8, 2, 5, 5), torch.arange(8) % 2)
    with pytest.raises(xp.exceptions.XProspectError, match=r"PatchSet.*TensorDataset"):
        fit(SmallCNN(2, window=5, widths=(4,)), data, epoch_negatives=2, **kw)


@pytest.mark.parametrize("n_negatives", [150, 5])
def test_fit_refuses_windows_larger_than_the_free_memory(monkeypatch, n_negatives):
    """The windows are held in memory, whole or (when they overlap enough for it to be
    smaller) as the box they lie in: a read beyond the free memory is refused by name
    (windows, sizes, box, GB) before anything is read, instead of an out-of-memory kill
    later; the same windows train when they fit."""
    import xprospect.patches.extract as extract
    import xprospect.train._batches as batches

    _, patches = _survey_patches(n_negatives)
    n = len(patches)
    whole = n * 2 * 25 * 4  # float32 windows
    lo, hi = extract.region_bounds(patches.plan)
    box = 2 * int(np.prod(hi - lo)) * 4
    # 150 barren windows overlap on the 30 x 30 grid: the box is the smaller; 5 do not
    assert (box < whole) == (n_negatives == 150)
    need = min(box, whole)
    read = []
    real_load, real_region = type(patches).load, extract.read_region
    monkeypatch.setattr(
        type(patches), "load", lambda self, *a, **k: read.append(1) or real_load(self, *a, **k)
    )
    monkeypatch.setattr(
        batches, "read_region", lambda *a, **k: read.append(1) or real_region(*a, **k)
    )
    kw = {"recipe": "adam", "epochs": 1, "progress": False, "device": "cpu"}
    monkeypatch.setattr(batches, "_available_memory", lambda: int(need / 0.8) - 1)
    where = rf", cut from the {hi[0] - lo[0]} x {hi[1] - lo[1]}-cell box" if box < whole else ""
    with pytest.raises(
        DataError, match=rf"read {n} windows of 2 element\(s\) x 5 x 5 cells into memory{where} \("
    ):
        fit(SmallCNN(2, window=5, widths=(4,), seed=0), patches, **kw)
    assert not read  # refused before a window was read
    monkeypatch.setattr(batches, "_available_memory", lambda: int(need / 0.8) + 1)
    fit(SmallCNN(2, window=5, widths=(4,), seed=0), patches, **kw)
    assert read


def test_windows_cut_from_their_box_train_bitwise_as_the_whole_windows(monkeypatch):
    """A ground of overlapping windows (every cell a barren centre, drawn anew each epoch)
    is cut batch by batch from the box it lies in; the batches, and so the trained weights
    (same seed, same threads), are those of the windows read whole."""
    import xprospect.train._batches as batches

    # 250 barren windows on the 30 x 30 grid overlap: their box is far smaller than they
    # are; a float64 stack: the float32 cast happens in the cut as in the read
    stack, patches = _survey_patches(250, dtype="float64", jitter=1)
    kinds = []
    real = batches._windows
    monkeypatch.setattr(batches, "_windows", lambda p: kinds.append(real(p)) or kinds[-1])
    kw = {"recipe": "adam", "epochs": 3, "progress": False, "device": "cpu", "seed": 4}
    cut = fit(SmallCNN(2, window=3, widths=(4,), seed=0), patches, epoch_negatives=40, **kw)
    assert isinstance(kinds[-1], batches.RegionWindows)
    monkeypatch.setattr(batches, "_windows", lambda p: kinds.append(p.load()) or kinds[-1])
    whole = fit(SmallCNN(2, window=3, widths=(4,), seed=0), patches, epoch_negatives=40, **kw)
    assert isinstance(kinds[-1], np.ndarray)
    assert cut.card["data_hash"] == whole.card["data_hash"]
    for a, b in zip(
        cut.model.state_dict().values(), whole.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    # the batches themselves, augmented and cropped
    x = patches.load()
    reg, lo = xp.patches.extract.read_region(stack, patches.plan)
    for aug in (True, False):
        opts = {"batch_size": 32, "crop": (3, 3), "augment": aug, "shuffle": True, "seed": 2}
        a = TensorBatches(x, patches.labels, epoch_negatives=50, **opts)
        b = TensorBatches(
            batches.RegionWindows(reg, patches.plan.origins - lo, (5, 5)),
            patches.labels,
            epoch_negatives=50,
            **opts,
        )
        for e in (0, 3):
            a.set_epoch(e)
            b.set_epoch(e)
            for (xa, ya), (xb, yb) in zip(a.batches(), b.batches(), strict=True):
                assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert a.stats() == b.stats()


@pytest.mark.parametrize("ndim", [2, 3])
def test_region_windows_are_the_windows_read_whole(ndim):
    """Any index (positions, a slice) gives the windows PatchSet.load reads, in 2-D and 3-D,
    windows over the grid's edge (padded) included."""
    import xprospect.train._batches as batches
    from xprospect.patches.extract import read_region

    rng = np.random.default_rng(0)
    shape = (20, 30) if ndim == 2 else (9, 11, 13)
    dims = ("y", "x") if ndim == 2 else ("z", "y", "x")
    coords = {
        d: np.arange(n, dtype=float) * (1 if d != "y" else -1)
        for d, n in zip(dims, shape, strict=True)
    }
    stack = xr.DataArray(
        rng.normal(size=(3, *shape)),
        dims=("element", *dims),
        coords={"element": ["a", "b", "c"], **coords},
    )
    centres = np.stack([rng.integers(0, n, 40) for n in shape], axis=1)
    size = (7, 5) if ndim == 2 else (3, 5, 4)
    plan = xp.patches.plan_around_points(stack, centres, size=size, edge="pad")
    assert (~plan.inside()).any()
    want = torch.from_numpy(xp.patches.extract_patches(stack, plan, pad_value=-1).astype("f4"))
    region, lo = read_region(stack, plan, pad_value=-1)
    rw = batches.RegionWindows(region, plan.origins - lo, size)
    assert rw.shape == tuple(want.shape) and rw.dim() == want.dim() and len(rw) == 40
    idx = torch.as_tensor(rng.permutation(40)[:17])
    assert torch.equal(rw[idx], want[idx])
    assert torch.equal(rw[3:9], want[3:9])
    assert torch.equal(rw[:1][0], want[0])
    with pytest.raises(TypeError, match="slice or an array"):
        rw[0]


def test_available_memory_takes_a_cgroup_limit_below_the_machine(tmp_path, monkeypatch):
    """Inside a container the cgroup limit, not the machine's free memory, is what is left."""
    import xprospect.train._batches as batches

    assert batches._cgroup_free(str(tmp_path)) is None  # no cgroup files
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.current").write_text("1000\n")
    assert batches._cgroup_free(str(tmp_path)) is None  # v2 without a limit
    (tmp_path / "memory.max").write_text("5000\n")
    assert batches._cgroup_free(str(tmp_path)) == 4000
    (tmp_path / "memory.current").write_text("9000\n")
    assert batches._cgroup_free(str(tmp_path)) == 0
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text(f"{2**63 - 4096}\n")
    (v1 / "memory" / "memory.usage_in_bytes").write_text("10\n")
    assert batches._cgroup_free(str(v1)) is None  # v1's "no limit"
    (v1 / "memory" / "memory.limit_in_bytes").write_text("2048\n")
    assert batches._cgroup_free(str(v1)) == 2038
    monkeypatch.setattr(batches, "_cgroup_free", lambda: 12345)
    assert batches._available_memory() == 12345  # below any machine's free memory


def test_nnpu_loss_matches_its_formula_and_fit_learns_from_positive_unlabelled_windows():
    logits = torch.tensor([[0.0, 2.0], [0.0, -1.0], [0.0, 0.5], [0.0, -3.0]])
    y = torch.tensor([1, 1, 0, 0])
    pi = 0.3
    g = logits[:, 1]
    sp = torch.sigmoid(-g[:2]).mean()
    sn = torch.sigmoid(g[:2]).mean()
    su = torch.sigmoid(g[2:]).mean()
    want = pi * sp + torch.clamp(su - pi * sn, min=0)
    torch.testing.assert_close(nnpu_loss(pi)(logits, y), want)
    # positives are bright; the unlabelled set holds 20 % of them
    gen = torch.Generator().manual_seed(0)
    xp_ = torch.randn(60, 2, 5, 5, generator=gen) + 1.5
    xu = torch.randn(200, 2, 5, 5, generator=gen)
    xu[:40] += 1.5
    data = torch.utils.data.TensorDataset(
        torch.cat([xp_, xu]),
        torch.cat([torch.ones(60, dtype=torch.long), torch.zeros(200, dtype=torch.long)]),
    )
    res = fit(
        SmallCNN(2, window=5, widths=(8,), seed=0),
        data,
        recipe="adam",
        epochs=5,
        loss="nnpu",
        pu_prior=0.2,
        progress=False,
        device="cpu",
    )
    assert res.card["loss"] == {"nnpu": 0.2}
    with torch.inference_mode():
        s = res.model.score_windows(xu).numpy()
    truth = np.r_[np.ones(40), np.zeros(160)]
    assert roc_auc(truth, s) > 0.9
    with pytest.raises(xp.exceptions.XProspectError, match="pu_prior"):
        fit(SmallCNN(2, window=5, widths=(8,)), data, loss="nnpu", progress=False)


# ---- the harness ---------------------------------------------------------------------------

BUFFER = 3000.0


@pytest.fixture(scope="module")
def world():
    w = xp.synthetic.survey(seed=0, n_samples=600, n_deposits=40, elements=["Au", "As", "Cu"])
    maps = w.samples.prospect.idw(like=xp.make_grid(like=w.samples, resolution=1500))
    return maps.prospect.log10().prospect.stack().load(), w.deposits


def _deep(name, **kw):
    kw.setdefault("model_kwargs", {"widths": [8]})
    return (
        name,
        DeepMethod(
            kw.pop("model", "small_cnn"),
            window=kw.pop("window", 5),
            n_per_positive=2,
            negative_ratio=5,
            fit_kwargs={"epochs": 2, "device": "cpu"},
            **kw,
        ),
    )


def test_every_deep_option_runs_in_the_harness_inside_the_training_ground(world):
    stack, deposits = world
    methods = [
        "raw:Au",
        _deep("plain"),
        _deep("ensemble", ensemble=2, n_jobs=2),
        _deep("mc", model_kwargs={"widths": [8], "dropout": 0.3}, mc_dropout=4),
        _deep("pu", negatives="pu"),
        _deep("mae", pretrain={"epochs": 1, "n_patches": 32}),
        _deep(
            "multiscale",
            model="multiscale_cnn",
            model_kwargs={"widths": [8], "context": 9},
            window=5,
        ),
        _deep("whole", windows="whole", validation=None),
    ]
    b = benchmark(stack, deposits, methods=methods, folds=2, buffer=BUFFER, seed=0)
    held = b.maps["held_out_fold"].values >= 0
    yy, xx = np.meshgrid(b.maps["y"].values, b.maps["x"].values, indexing="ij")
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    fold = b.maps["held_out_fold"].values.ravel()
    for name in b.table.index:
        v = b.maps[name].values[held]
        assert np.isfinite(v).all(), name
        if name != "raw:Au":
            assert ((v >= 0) & (v <= 1)).all(), name
        for f in range(2):
            used = b.training[name][f]
            d, _ = cKDTree(xy[fold == f]).query(xy[used], p=np.inf)
            assert d.min() > BUFFER, name
    # the buffer is blanked instead of dropping deposits: windows reach more of the ground
    assert b.training["plain"][0].size > b.training["whole"][0].size


def test_deep_hyper_parameters_are_chosen_on_pooled_inner_folds_blind_to_the_test_fold(
    world, monkeypatch
):
    """Tuned fits every candidate on each inner fold, pools the inner out-of-fold scores
    (every training deposit judged once) and never trains on, reads or scores a cell of the
    outer held-out fold or its buffer: inner training windows read them as blank (NaN)."""
    import xprospect.harness as harness

    stack, deposits = world
    calls, srcs = [], []
    real_run, real_patches = harness._run_deep, harness.make_patches

    def run_spy(spec, stack_, pos, ground, near_test, test, seed, block=None):
        calls.append(
            (spec.window, pos.copy(), ground.ravel().copy(), near_test.ravel().copy(), test.copy())
        )
        return real_run(spec, stack_, pos, ground, near_test, test, seed, block)

    def patches_spy(src, **kw):
        srcs.append(np.asarray(src.values).reshape(src.sizes["element"], -1).copy())
        return real_patches(src, **kw)

    monkeypatch.setattr(harness, "_run_deep", run_spy)
    monkeypatch.setattr(harness, "make_patches", patches_spy)
    tuned = Tuned(
        _deep("t", validation=None)[1],
        grid={"window": [5, 3]},
        inner_folds=2,
        min_validation_deposits=0,
    )
    b = benchmark(stack, deposits, methods=[("tuned_cnn", tuned)], folds=2, buffer=BUFFER, seed=0)
    rows = b.tuning["tuned_cnn"]
    fold = b.maps["held_out_fold"].values.ravel()
    assert len(rows) == 2 and len(calls) == len(srcs) == 2 * (2 * 2 + 1)
    for f, row in enumerate(rows):
        assert row["params"]["window"] in (5, 3)
        assert [c["params"]["window"] for c in row["candidates"]] == [5, 3]
        assert row["inner_auc"] == max(c["inner_auc"] for c in row["candidates"])
        ground = b.maps["training_ground"].values[f].ravel()
        # pooled: the inner held-out cells of one candidate partition the outer ground,
        # and their deposits are the fold's training deposits, each once
        inner = calls[5 * f : 5 * f + 4]
        for c in range(2):
            tests = np.concatenate([t for _, _, _, _, t in inner[2 * c : 2 * c + 2]])
            assert np.array_equal(np.sort(tests), np.flatnonzero(ground))
        assert row["inner_deposits"] == b.folds.loc[f, "training_deposits"]
        for (_, pos, sub, blank, test), src in zip(inner, srcs[5 * f : 5 * f + 4], strict=True):
            assert ground[test].all() and ground[pos].all() and ground[sub].all()
            assert blank[~ground].all()  # outer held-out fold and buffer are blanked...
            assert np.isnan(src[:, ~ground]).all()  # ...in the windows the inner fit cuts
            assert not (sub & blank).any()
        # the outer fit comes last, with the chosen window, on the whole training ground
        window, pos, sub, _, test = calls[5 * f + 4]
        assert window == row["params"]["window"]
        assert np.array_equal(sub, ground) and np.array_equal(test, np.flatnonzero(fold == f))
    assert b.table.loc["tuned_cnn", "kind"] == "deep"


def test_tuned_grid_as_a_list_tries_each_mapping_and_never_crosses_them(world, monkeypatch):
    """A list of grids (ParameterGrid's form) tries the pairs it names, in order, and no
    crossed pair (``jitter=1, negative_gap=1`` puts barren windows where a jittered positive
    may lie); the outer fit takes the chosen pair; below the floor the first pair is kept."""
    import xprospect.harness as harness

    stack, deposits = world
    calls = []
    real_run = harness._run_deep

    def run_spy(spec, *a, **kw):
        calls.append((spec.jitter, spec.negative_gap))
        return real_run(spec, *a, **kw)

    monkeypatch.setattr(harness, "_run_deep", run_spy)
    pairs = [{"jitter": 1, "negative_gap": 2}, {"jitter": 0, "negative_gap": 1}]
    assert list(harness.TARGET_GRID) == [{k: [v] for k, v in p.items()} for p in pairs]
    cnn = _deep("t", validation=None)[1]

    def run(floor):
        calls.clear()
        tuned = Tuned(cnn, grid=harness.TARGET_GRID, inner_folds=2, min_validation_deposits=floor)
        return benchmark(
            stack, deposits, methods=[("tuned_cnn", tuned)], folds=2, buffer=BUFFER, seed=0
        ).tuning["tuned_cnn"]

    rows = run(0)
    assert len(calls) == 2 * (2 * 2 + 1)
    for f, row in enumerate(rows):
        assert [c["params"] for c in row["candidates"]] == pairs
        assert row["params"] in pairs and calls[5 * f + 4] == tuple(row["params"].values())
        assert calls[5 * f : 5 * f + 4] == [(1, 2), (1, 2), (0, 1), (0, 1)]
    with pytest.warns(xp.exceptions.XProspectWarning, match="first grid point"):
        rows = run(10**6)
    assert calls == [(1, 2), (1, 2)] and all(r["params"] == pairs[0] for r in rows)


def test_tuned_keeps_the_first_grid_point_and_warns_with_too_few_pooled_deposits(
    world, monkeypatch
):
    """Below the floor nothing is fitted on inner folds: the default (first) candidate is
    kept, with a warning; the floor defaults to the DeepMethod's min_validation_deposits."""
    import xprospect.harness as harness

    stack, deposits = world
    n = []
    real_run = harness._run_deep

    def run_spy(*a, **kw):
        n.append(1)
        return real_run(*a, **kw)

    monkeypatch.setattr(harness, "_run_deep", run_spy)
    tuned = Tuned(_deep("t", validation=None)[1], grid={"window": [5, 3]}, inner_folds=2)
    assert tuned.floor == 100
    with pytest.warns(xp.exceptions.XProspectWarning, match="min_validation_deposits=100"):
        b = benchmark(
            stack,
            deposits.isel(deposit=slice(0, 16)),
            methods=[("tuned_cnn", tuned)],
            folds=2,
            buffer=BUFFER,
            seed=0,
        )
    assert len(n) == 2  # the two outer fits only
    for row in b.tuning["tuned_cnn"]:
        assert row["params"] == {"window": 5} and np.isnan(row["inner_auc"])
        assert row["candidates"] == [] and row["inner_deposits"] < 100
    with pytest.raises(DataError, match="min_validation_deposits"):
        benchmark(stack, deposits, methods=[Tuned(_deep("t")[1], {}, 2, -1)])


def test_ensemble_members_trained_side_by_side_give_the_same_ensemble(world):
    """Members train in forked processes, each from its own seed: the same maps as one by
    one, to float32 rounding (a child's torch threads sum in another order)."""
    stack, deposits = world
    methods = [_deep("serial", ensemble=2, n_jobs=1), _deep("parallel", ensemble=2, n_jobs=2)]
    b = benchmark(stack, deposits, methods=methods, folds=2, buffer=BUFFER, seed=0)
    held = b.maps["held_out_fold"].values >= 0
    a, c = b.maps["serial"].values[held], b.maps["parallel"].values[held]
    np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)


def test_all_negatives_train_on_every_ground_cell_and_never_near_a_test_cell(world, monkeypatch):
    """``negatives="all"``: every training-ground cell beyond ``negative_gap`` of the
    training deposits is a barren centre, every training deposit a positive one, and no
    window reads a cell within the buffer of a held-out cell."""
    import xprospect.harness as harness

    stack, deposits = world
    seen = []
    real = harness.make_patches

    def spy(src, *, positives, negatives, **kw):
        cells = []
        for pts in (positives, negatives):
            cells.append(np.asarray(xp.points.point_cells(pts, stack).flat))
        seen.append(tuple(cells))
        return real(src, positives=positives, negatives=negatives, **kw)

    monkeypatch.setattr(harness, "make_patches", spy)
    methods = [_deep("all", negatives="all", validation=None), _deep("random", validation=None)]
    b = benchmark(stack, deposits, methods=methods, folds=2, buffer=BUFFER, seed=0)
    # fold 0: "all", "random"; fold 1: "all", "random"
    assert len(seen) == 4
    dep = b.maps["deposit"].values
    fold = b.maps["held_out_fold"].values.ravel()
    yy, xx = np.meshgrid(b.maps["y"].values, b.maps["x"].values, indexing="ij")
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    for f in range(2):
        ground = b.maps["training_ground"].values[f]
        pos, neg = seen[2 * f]
        near_dep = harness._near(ground & dep, (2, 2))  # negative_gap = 2
        np.testing.assert_array_equal(np.sort(pos), np.flatnonzero(ground & dep))
        np.testing.assert_array_equal(np.sort(neg), np.flatnonzero(ground & ~near_dep))
        # random negatives are a sample of the same cells
        _, rneg = seen[2 * f + 1]
        assert set(rneg) < set(neg)
        # the windows of every barren cell, none within the buffer of a test cell
        used = b.training["all"][f]
        assert set(neg) <= set(used)
        d, _ = cKDTree(xy[fold == f]).query(xy[used], p=np.inf)
        assert d.min() > BUFFER
    held = b.maps["held_out_fold"].values >= 0
    assert np.isfinite(b.maps["all"].values[held]).all()
    with pytest.raises(xp.exceptions.DataError, match="'all', 'resample' or 'pu'"):
        DeepMethod(negatives="every")


def test_resample_negatives_draw_from_every_ground_cell_at_the_random_cost(world, monkeypatch):
    """``negatives="resample"``: the windows are those of ``"all"`` (every ground cell beyond
    ``negative_gap``), and each fit draws ``negative_ratio`` barren windows per deposit of its
    training side anew each epoch (the refit: per training deposit); the same seed gives the
    same maps."""
    import xprospect.harness as harness

    stack, deposits = world
    calls = []
    real = harness.fit

    def spy(model, patches, **kw):
        lab = np.asarray(patches.labels)
        calls.append((int((lab == 0).sum()), kw.get("epoch_negatives"), kw.get("validation")))
        return real(model, patches, **kw)

    monkeypatch.setattr(harness, "fit", spy)
    methods = [_deep("all", negatives="all", validation=None)]
    methods += [_deep("resample", negatives="resample", validation=None)]
    b = benchmark(stack, deposits, methods=methods, folds=2, buffer=BUFFER, seed=0)
    dep = b.maps["deposit"].values
    for f in range(2):
        (n_all, e_all, _), (n_res, e_res, _) = calls[2 * f], calls[2 * f + 1]
        assert n_all == n_res and e_all is None
        n_dep = int((b.maps["training_ground"].values[f] & dep).sum())
        assert e_res == 5 * n_dep < n_res  # negative_ratio = 5 of the pool
    again = benchmark(stack, deposits, methods=methods[1:], folds=2, buffer=BUFFER, seed=0)
    held = b.maps["held_out_fold"].values >= 0
    np.testing.assert_array_equal(
        b.maps["resample"].values[held], again.maps["resample"].values[held]
    )
    # with an inner validation side: its share of deposits is left out of the epoch's draw
    calls.clear()
    kind = _deep("val", negatives="resample", validation=0.5, min_validation_deposits=0)
    benchmark(stack, deposits, methods=[kind], folds=2, buffer=BUFFER, seed=0)
    chosen, refit = calls[0], calls[1]
    assert chosen[2] is not None and refit[2] is None
    assert 0 < chosen[1] < refit[1] and refit[1] % 5 == 0


def test_harness_warns_when_inner_validation_chooses_the_first_epoch(world, monkeypatch):
    """A member whose inner validation AUC peaks at the first epoch is refitted for one epoch:
    the harness says so (with the validation side's deposits), and says nothing without it."""
    import xprospect.harness as harness

    stack, deposits = world
    real = harness.fit
    refits = []

    def first_epoch(model, patches, **kw):
        res = real(model, patches, **kw)
        if "validation" in kw:
            res.best_epoch = 1  # as when the validation AUC falls from the first epoch on
        else:
            refits.append(kw["epochs"])
        return res

    monkeypatch.setattr(harness, "fit", first_epoch)
    spec = _deep("early", ensemble=2, early_stopping=2, min_validation_deposits=0)
    spec[1].fit_kwargs["epochs"] = 3
    with pytest.warns(xp.exceptions.XProspectWarning, match=r"first epoch for 2 of 2 member"):
        benchmark(stack, deposits, methods=[spec], folds=2, buffer=BUFFER, seed=0)
    assert refits and all(e == 1 for e in refits)
    refits.clear()
    monkeypatch.setattr(harness, "fit", real)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", ".*the inner validation side", Warning)
        benchmark(
            stack, deposits, methods=[_deep("early", validation=None)], folds=2, buffer=BUFFER
        )


def test_too_few_validation_deposits_train_for_the_fixed_budget(world, monkeypatch):
    """A validation side of a few deposits chooses epochs by noise: below
    ``min_validation_deposits`` members train for the fixed budget, without it."""
    import xprospect.harness as harness

    stack, deposits = world
    real = harness.fit
    calls: list[tuple[bool, int]] = []

    def spy(model, patches, **kw):
        calls.append(("validation" in kw, int(kw["epochs"])))
        return real(model, patches, **kw)

    monkeypatch.setattr(harness, "fit", spy)
    # 40 deposits over 2 folds: about 6 per fold on a 0.3 validation side, fewer than 100
    benchmark(stack, deposits, methods=[_deep("fixed")], folds=2, buffer=BUFFER, seed=0)
    assert calls == [(False, 2), (False, 2)]
    calls.clear()
    benchmark(
        stack,
        deposits,
        methods=[_deep("inner", min_validation_deposits=0)],
        folds=2,
        buffer=BUFFER,
        seed=0,
    )
    assert [v for v, _ in calls] == [True, False, True, False]  # chosen there, then refitted
    with pytest.raises(DataError, match="min_validation_deposits"):
        DeepMethod(min_validation_deposits=-1)
