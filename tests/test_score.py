"""score(): window lattice and dense paths, chunk invariance, georeferencing, cards, clusters."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr

torch = pytest.importorskip("torch")

from conftest import CHUNK_RTOL, assert_chunkings_agree  # noqa: E402

import xprospect  # noqa: E402, F401  (registers .prospect)
from xprospect.exceptions import DataError, ModelCardError  # noqa: E402
from xprospect.models.base import ProspectModel  # noqa: E402
from xprospect.models.card import make_card  # noqa: E402
from xprospect.score import score  # noqa: E402
from xprospect.score.lattice import lattice_size  # noqa: E402
from xprospect.testing import assert_georef_equal  # noqa: E402

CRS = "EPSG:32750"


class TinyDense(ProspectModel):
    """Two valid 3x3 convolutions: dense, context (2, 2), window 5 (the contract, nothing more)."""

    task = "anomaly"
    dense = True

    def __init__(self, in_channels=3, ndim=2, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        conv = torch.nn.Conv2d if ndim == 2 else torch.nn.Conv3d
        self.c1, self.c2 = conv(in_channels, 4, 3), conv(4, 1, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.ndim, self.in_channels, self.window, self.context = ndim, in_channels, 5, (2, 2)
        self.config = {"name": "tiny_dense", "kwargs": {"in_channels": in_channels}}

    def score_dense(self, x):
        return self.c2(torch.tanh(self.c1(x)))[:, 0]

    def score_windows(self, x):
        out = self.score_dense(x)
        return out.reshape(len(x), -1)[:, 0]


class TinyWindow(TinyDense):
    """A window model (not dense): the mean of the dense map over the window, as a classifier."""

    task = "classifier"
    dense = False

    def score_windows(self, x):
        return torch.sigmoid(self.score_dense(x).flatten(1).mean(1))


def make_stack(shape=(23, 31), n_el=3, seed=0, res=10.0):
    rng = np.random.default_rng(seed)
    coords = {"element": [f"E{i}" for i in range(n_el)]}
    coords["y"] = 6_200_000.0 + res * (shape[-2] - 1 - np.arange(shape[-2]))
    coords["x"] = 500_000.0 + res * np.arange(shape[-1])
    dims = ("element", "y", "x")
    if len(shape) == 3:
        coords["z"] = -100.0 + res * np.arange(shape[0])
        dims = ("element", "z", "y", "x")
    data = rng.normal(size=(n_el, *shape)).astype("float32")
    return xr.DataArray(data, dims=dims, coords=coords, name="stack").rio.write_crs(CRS)


def naive_lattice(arr, model, window, stride, pad_value=0.0):
    """Oracle: pad, slice every lattice window with numpy, score in one batch."""
    nd = arr.ndim - 1
    before, after = window // 2, window - 1 - window // 2
    ks = [np.arange(lattice_size(n, stride)) * stride for n in arr.shape[1:]]
    pad = [(0, 0)] + [(before, after + stride)] * nd
    p = np.pad(arr, pad, constant_values=pad_value)
    grid = np.meshgrid(*ks, indexing="ij")
    wins = [
        p[(slice(None), *[slice(int(c), int(c) + window) for c in cell])]
        for cell in zip(*[g.ravel() for g in grid], strict=True)
    ]
    with torch.no_grad():
        s = model.score_windows(torch.from_numpy(np.stack(wins))).numpy()
    return s.reshape(grid[0].shape)


def refuse(*args, **kwargs):
    raise AssertionError("dask computed")


# ---- chunk invariance and oracles --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "stride", "upsample"),
    [
        ("dense", 1, "nearest"),
        ("windows", 1, "nearest"),
        ("windows", 3, "nearest"),
        ("windows", 4, "bilinear"),
        ("windows", 3, "mean"),
    ],
)
def test_identical_whatever_the_chunking(method, stride, upsample):
    stack = make_stack()
    model = TinyWindow() if method == "windows" else TinyDense()
    eager = score(stack, model, stride=stride, upsample=upsample, device="cpu", allow_no_card=True)
    with dask.config.set(scheduler=refuse):
        lazy = score(
            stack.chunk({"y": 5, "x": 7}),
            model,
            stride=stride,
            upsample=upsample,
            device="cpu",
            allow_no_card=True,
        )
    assert lazy.chunks == ((5, 5, 5, 5, 3), (7, 7, 7, 7, 3))
    other = score(
        stack.chunk({"y": 11, "x": 16}),
        model,
        stride=stride,
        upsample=upsample,
        device="cpu",
        allow_no_card=True,
    )
    # window lattices: the same bits; dense convolutions: float32 rounding (CHUNK_RTOL)
    same = np.testing.assert_array_equal if method == "windows" else assert_chunkings_agree
    same(lazy.values, eager.values)
    same(other.values, eager.values)
    assert eager.name == "prospectivity" and eager.dtype == np.float32
    assert np.isfinite(eager.values).all()
    assert_georef_equal(lazy, stack)
    assert_georef_equal(eager, stack)


def test_window_lattice_matches_naive_loop_nearest_and_bilinear():
    stack = make_stack()
    model = TinyWindow()
    s = 4
    lat = naive_lattice(stack.values, model, 5, s)
    near = score(
        stack, model, stride=s, upsample="nearest", device="cpu", allow_no_card=True
    ).values
    iy = np.minimum((2 * np.arange(23) + s) // (2 * s), lat.shape[0] - 1)
    ix = np.minimum((2 * np.arange(31) + s) // (2 * s), lat.shape[1] - 1)
    np.testing.assert_allclose(near, lat[np.ix_(iy, ix)], rtol=1e-6, atol=1e-7)
    # on the lattice every mode gives the lattice score itself
    bil = score(
        stack, model, stride=s, upsample="bilinear", device="cpu", allow_no_card=True
    ).values
    np.testing.assert_allclose(
        bil[::s, ::s], lat[: len(range(0, 23, s)), : len(range(0, 31, s))], rtol=1e-6, atol=1e-7
    )
    # half-way between two lattice points (along x) bilinear is the average
    np.testing.assert_allclose(bil[0, 2], 0.5 * (lat[0, 0] + lat[0, 1]), rtol=1e-6)
    mean = score(stack, model, stride=s, upsample="mean", device="cpu", allow_no_card=True).values
    # cell (0, 0) is covered by lattice windows k = 0 only (window 5, after 2 < stride 4)
    np.testing.assert_allclose(mean[0, 0], lat[0, 0], rtol=1e-6)
    # cell (0, 2): windows at x = 0 (covers to 2) and x = 4 (covers from 2)
    np.testing.assert_allclose(mean[0, 2], 0.5 * (lat[0, 0] + lat[0, 1]), rtol=1e-6)


def test_dense_equals_window_by_window_at_centres():
    stack = make_stack()
    model = TinyDense()
    dense = score(stack.chunk({"y": 5, "x": 7}), model, device="cpu", allow_no_card=True).values
    windows = score(stack, model, method="windows", device="cpu", allow_no_card=True).values
    lat = naive_lattice(stack.values, model, 5, 1)
    np.testing.assert_allclose(dense, windows, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dense, lat, rtol=1e-5, atol=1e-6)
    tiled = score(stack, model, device="cpu", tile=4, allow_no_card=True).values
    np.testing.assert_allclose(tiled, dense, rtol=1e-6, atol=1e-6)


def test_3d_dense_and_windows_chunk_invariant():
    stack = make_stack(shape=(9, 10, 11), n_el=2)
    model = TinyDense(in_channels=2, ndim=3)
    eager = score(stack, model, device="cpu", allow_no_card=True)
    lazy = score(stack.chunk({"z": 4, "y": 5, "x": 7}), model, device="cpu", allow_no_card=True)
    assert_chunkings_agree(lazy, eager)
    assert eager.dims == ("z", "y", "x")
    win = score(
        stack.chunk({"z": 4, "y": 5, "x": 7}),
        model,
        method="windows",
        stride=2,
        upsample="bilinear",
        device="cpu",
        allow_no_card=True,
    )
    np.testing.assert_array_equal(
        win.values,
        score(
            stack,
            model,
            method="windows",
            stride=2,
            upsample="bilinear",
            device="cpu",
            allow_no_card=True,
        ).values,
    )
    np.testing.assert_allclose(
        win.values[::2, ::2, ::2], eager.values[::2, ::2, ::2], rtol=1e-5, atol=1e-6
    )


def test_registered_small_cnn_dense_matches_windows():
    from xprospect.models.registry import available, create

    if "small_cnn" not in available():
        pytest.skip("small_cnn is not registered")
    stack = make_stack(shape=(20, 22))
    model = create("small_cnn", in_channels=3, window=9, widths=[4, 4], seed=0)
    dense = score(stack.chunk({"y": 5, "x": 7}), model, device="cpu", allow_no_card=True).values
    windows = score(stack, model, method="windows", device="cpu", allow_no_card=True).values
    np.testing.assert_allclose(dense, windows, rtol=1e-4, atol=1e-6)


# ---- policies, cards, errors -------------------------------------------------------------------


def test_nan_masked_edges_and_attrs():
    stack = make_stack()
    stack[:, 3, 4] = np.nan
    model = TinyDense()
    out = score(stack.chunk({"y": 5, "x": 7}), model, device="cpu", allow_no_card=True)
    v = out.values
    assert np.isnan(v[3, 4]) and np.isnan(v).sum() == 1
    filled = score(stack, model, nan="fill", device="cpu", allow_no_card=True).values
    assert np.isfinite(filled).all()
    assert filled[3, 5] == pytest.approx(v[3, 5], rel=CHUNK_RTOL, abs=CHUNK_RTOL)
    prop = score(stack, model, nan="propagate", device="cpu", allow_no_card=True).values
    assert np.isnan(prop).sum() == 25
    refl = score(stack, model, edge="reflect", device="cpu", allow_no_card=True).values
    assert_chunkings_agree(
        score(
            stack.chunk({"y": 5, "x": 7}), model, edge="reflect", device="cpu", allow_no_card=True
        ),
        refl,
    )
    assert out.attrs["nan"] == "mask" and out.attrs["method"] == "dense"
    with pytest.raises(DataError):
        score(stack, TinyWindow(), stride=6, upsample="mean", device="cpu", allow_no_card=True)
    with pytest.raises(DataError):
        score(stack, model, upsample="cubic", device="cpu", allow_no_card=True)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_an_infinite_input_is_missing_data_as_nan_is(bad):
    # log10 of a zero assay is -inf: masked and filled like NaN, never fed to the model
    model = TinyDense()
    with_nan, with_inf = make_stack(), make_stack()
    with_nan[1, 3, 4] = np.nan
    with_inf[1, 3, 4] = bad
    for nan in ("mask", "fill"):
        # the same chunking on both sides: an infinite value and a NaN give the same bits
        ref = score(
            with_nan.chunk({"y": 5, "x": 7}), model, nan=nan, device="cpu", allow_no_card=True
        ).values
        got = score(
            with_inf.chunk({"y": 5, "x": 7}), model, nan=nan, device="cpu", allow_no_card=True
        ).values
        np.testing.assert_array_equal(got, ref)
    masked = score(with_inf, model, device="cpu", allow_no_card=True).values
    assert np.isnan(masked[3, 4]) and np.isnan(masked).sum() == 1


def test_card_refuses_mismatch_and_normalises():
    stack = make_stack()
    model = TinyDense()
    other = stack.assign_coords(element=["E0", "E2", "E1"])
    model.card = make_card(other, window=5)
    with pytest.raises(ModelCardError, match="order"):
        score(stack, model, device="cpu", allow_no_card=True)
    with pytest.raises(ModelCardError, match="input elements"):
        score(stack.isel(element=[0, 1]), TinyDense(), device="cpu", allow_no_card=True)
    with pytest.raises(ModelCardError, match="3-D"):
        score(make_stack(shape=(4, 6, 7)), model, device="cpu", allow_no_card=True)
    mean, std = [1.0, -2.0, 0.5], [2.0, 4.0, 0.5]
    model.card = make_card(stack, window=5, mean=mean, std=std)
    got = score(stack, model, device="cpu", allow_no_card=True).values
    manual = (stack - xr.DataArray(mean, dims="element")) / xr.DataArray(std, dims="element")
    plain = TinyDense()
    want = score(manual.astype("float32"), plain, device="cpu", allow_no_card=True).values
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("card", [None, {}, {"notes": "pretrained elsewhere"}])
def test_a_network_without_a_card_is_scored_only_when_asked(card):
    from torch.utils.data import TensorDataset

    stack = make_stack()
    model = TinyDense()
    if card is not None:
        model.card = card
    windows = TensorDataset(torch.zeros(2, 3, 5, 5), torch.zeros(2, dtype=torch.long))
    for call in (
        lambda: score(stack, model, device="cpu"),
        lambda: stack.prospect.score(model, device="cpu"),
        lambda: score(windows, model, device="cpu"),
    ):
        with pytest.raises(
            ModelCardError,
            match=r"TinyDense has no model card.*"
            r"allow_no_card=True",
        ):
            call()
    got = score(stack, model, device="cpu", allow_no_card=True)
    assert np.isfinite(got.values).all()
    assert score(windows, model, device="cpu", allow_no_card=True).shape == (2,)


def test_every_model_the_package_trains_carries_a_card():
    from torch.utils.data import TensorDataset

    from xprospect.models import VAE, SmallCNN
    from xprospect.train import fit, fit_anomaly

    stack = make_stack()
    fit_a = fit_anomaly(VAE(3), stack, epochs=1, batch_size=16, seed=0, device="cpu")
    assert np.isfinite(score(stack, fit_a.model, device="cpu").values).any()
    cnn = SmallCNN(3, window=5, widths=(4,), seed=0)
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(24, 3, 7, 7)), dtype=torch.float32)
    windows = TensorDataset(x, torch.as_tensor(np.tile([0, 1], 12)))
    fitted = fit(
        cnn,
        windows,
        recipe="adam",
        epochs=1,
        crop=5,
        validation=None,
        device="cpu",
        seed=0,
        progress=False,
    )
    assert np.isfinite(score(stack, fitted.model, device="cpu").values).all()


def test_accessor_and_model_left_untouched():
    stack = make_stack()
    model = TinyDense().train()
    a = stack.prospect.score(model, device="cpu", allow_no_card=True)
    b = score(stack, model, device="cpu", allow_no_card=True)
    np.testing.assert_array_equal(a.values, b.values)
    assert model.training


# ---- one verb: baselines and windows ----------------------------------------------------------


@pytest.mark.parametrize("chunks", [None, {"y": 7, "x": 12}])
def test_score_of_a_fitted_baseline_is_its_own_prediction(chunks):
    from xprospect.baselines import GaussianMixtureDetector

    stack = make_stack()
    stack[:, :2, :3] = np.nan
    if chunks is not None:
        stack = stack.chunk(chunks)
    gmm = GaussianMixtureDetector(n_components=2, seed=0).fit(stack)
    got = score(stack, gmm)
    xr.testing.assert_identical(got, gmm.predict(stack))
    xr.testing.assert_identical(stack.prospect.score(gmm), gmm.predict(stack))
    assert got.chunks == gmm.predict(stack).chunks
    with pytest.raises(DataError, match="stride, window do not apply"):
        score(stack, gmm, window=5, stride=2)


def test_score_given_windows_scores_each_window_and_predict_is_its_alias():
    from torch.utils.data import TensorDataset

    from xprospect.train import predict

    model = TinyWindow()
    model.card = {"mean": [0.5, 0.0, -0.5], "std": [2.0, 1.0, 0.5]}
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 3, 5, 5, generator=g)
    windows = TensorDataset(x, torch.zeros(10, dtype=torch.long))
    got = score(windows, model, batch_size=4, device="cpu", allow_no_card=True)
    mean = torch.tensor(model.card["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(model.card["std"]).view(1, -1, 1, 1)
    with torch.no_grad():
        want = model.score_windows((x - mean) / std).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    with pytest.warns(FutureWarning, match=r"xprospect.score.score\(windows, model\)"):
        old = predict(model, windows, batch_size=4, device="cpu")
    np.testing.assert_array_equal(old, got)
    with pytest.raises(DataError, match="stride do not apply"):
        score(windows, model, stride=2)


def test_runs_on_distributed_cluster():
    distributed = pytest.importorskip("distributed")
    stack = make_stack()
    model = TinyWindow()
    expect = score(
        stack, model, stride=2, upsample="bilinear", device="cpu", allow_no_card=True
    ).values
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        got = score(
            stack.chunk({"y": 5, "x": 7}),
            model,
            stride=2,
            upsample="bilinear",
            device="cpu",
            allow_no_card=True,
        ).compute()
    np.testing.assert_array_equal(got.values, expect)


# ---- asv benchmark bodies at tiny size ---------------------------------------------------------


def _bench():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_bench"))
    from benchmarks import score as bscore

    return bscore


@pytest.mark.parametrize("stride", [1, 4, 16])
def test_bench_score_vs_loop_tiny(stride):
    b = _bench()
    bench = b.ScoreVsLoop()
    bench.sizes = {1: 20, 4: 40, 16: 40}
    bench.chunks, bench.window, bench.widths = 13, 9, (4, 4)
    bench.setup(stride)
    ours, peer = bench.time_score(stride), bench.time_naive_loop(stride)
    assert ours.shape == peer.shape == (bench.size, bench.size)
    np.testing.assert_allclose(ours, peer, rtol=1e-5, atol=1e-6)


def test_bench_dense_vs_loop_tiny():
    b = _bench()
    bench = b.DenseVsLoop()
    bench.chunks, bench.window, bench.widths = 11, 9, (4, 4)
    bench.setup(24)
    np.testing.assert_allclose(
        bench.time_dense(24), bench.time_window_loop(24), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("model", [TinyWindow(), TinyDense()], ids=["window", "dense"])
def test_lazy_raster_smaller_than_the_window_scores_as_in_memory(model):
    """A dask raster smaller than the halo scores (no halo to borrow) equal to the numpy path."""
    stack = make_stack(shape=(8, 8))
    kw = {"allow_no_card": True, **({"window": 33} if not model.dense else {})}
    eager = score(stack, model, **kw).values
    lazy = score(stack.chunk({"y": 4, "x": 4}), model, **kw).values
    np.testing.assert_array_equal(lazy, eager)
    assert np.isfinite(eager).any()
