"""Determinism: what holds, exactly (docs/conventions.md, "Randomness and determinism").

- Same seed and same thread count: the same bits, for IDW, kriging, ``train.fit`` + ``score``
  and ``train.fit_anomaly`` + ``score``.
- IDW and kriging: the same bits whatever the numba thread count (each cell is computed by
  one thread, in a fixed order).
- Networks across torch thread counts: not bit-identical (CPU kernels split their sums by
  thread); on this small world the maps agree to 1e-5 of their range and give the same top-2 %
  cells. The difference grows with training length (see the conventions).
- Dense scoring across dask chunkings: the same cells, NaN where the eager map is NaN, values
  within 1e-6 x max(1, max |score|) (a few float32 rounding steps), not bit-identical.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
numba = pytest.importorskip("numba")

from conftest import assert_chunkings_agree  # noqa: E402

import xprospect as xp  # noqa: E402
from xprospect.grid.kriging import grid_kriging  # noqa: E402
from xprospect.score.engine import score  # noqa: E402

ELEMENTS = ["Au", "As", "Cu", "Sb"]
# tolerance of a map across torch thread counts, relative to the map's range
THREAD_RTOL = 1e-5


@pytest.fixture(scope="module")
def world():
    w = xp.synthetic.survey(seed=2, n_samples=500, n_deposits=12)
    grid = xp.make_grid(like=w.samples, resolution=1200, pad=2400, chunks=16)
    return w, grid


@pytest.fixture(scope="module")
def stack(world):
    w, grid = world
    maps = w.samples.prospect.idw(like=grid, k=8)
    scores = maps.prospect.transform("clr").prospect.zscore()
    return scores.prospect.stack(ELEMENTS).compute()


@pytest.fixture
def threads():
    """Set torch's and numba's thread counts inside a test; restored afterwards."""
    t0, n0 = torch.get_num_threads(), numba.get_num_threads()

    def set_threads(n: int) -> None:
        torch.set_num_threads(n)
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))

    yield set_threads
    torch.set_num_threads(t0)
    numba.set_num_threads(n0)


def _fit_cnn(stack, world, seed=0):
    w, _ = world
    deps = xp.points.as_points(w.deposits)
    known = deps.isel(point=np.flatnonzero(deps["known"].values))
    patches = stack.prospect.patches(
        positives=known, negatives=40, size=14, jitter=3, n_per_positive=4, seed=seed
    )
    model = xp.models.SmallCNN(len(ELEMENTS), window=10, widths=(8, 8, 16), seed=seed)
    return xp.train.fit(
        model,
        patches,
        recipe="adam",
        epochs=3,
        validation=0.25,
        crop=10,
        device="cpu",
        seed=seed,
        progress=False,
    )


def _fit_anomaly(kind, stack, seed=0):
    if kind == "vae":
        return xp.train.fit_anomaly(
            xp.models.VAE(len(ELEMENTS)), stack, epochs=3, batch_size=32, seed=seed, device="cpu"
        )
    return xp.train.fit_anomaly(
        xp.models.ConvAutoencoder(len(ELEMENTS), widths=(8, 4, 2)),
        stack,
        epochs=2,
        tiles_per_epoch=64,
        seed=seed,
        device="cpu",
    )


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _top(values: np.ndarray, q: float = 0.98) -> np.ndarray:
    return np.flatnonzero(values.ravel() >= np.nanquantile(values, q))


# ------------------------------------------------------- same seed, same threads: same bits


@pytest.mark.parametrize("n_threads", [1, 2])
def test_idw_and_kriging_same_bits_whatever_the_thread_count(world, threads, n_threads):
    w, grid = world
    threads(1)
    idw1 = w.samples.prospect.idw(like=grid, k=8).compute()
    kr1 = grid_kriging(w.samples, like=grid, elements=["Au", "Cu"]).compute()
    threads(n_threads)
    idw2 = w.samples.prospect.idw(like=grid, k=8).compute()
    kr2 = grid_kriging(w.samples, like=grid, elements=["Au", "Cu"]).compute()
    for e in idw1.data_vars:
        np.testing.assert_array_equal(idw1[e].values, idw2[e].values)
    for e in kr1.data_vars:
        np.testing.assert_array_equal(kr1[e].values, kr2[e].values)


def test_fit_and_score_same_seed_same_threads_same_bits(stack, world, threads):
    threads(1)
    a, b = _fit_cnn(stack, world), _fit_cnn(stack, world)
    assert _same_weights(a.model, b.model)
    assert a.history.equals(b.history)
    np.testing.assert_array_equal(
        score(stack, a.model, device="cpu").values, score(stack, b.model, device="cpu").values
    )


@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_fit_anomaly_and_score_same_seed_same_threads_same_bits(stack, threads, kind):
    threads(1)
    a, b = _fit_anomaly(kind, stack), _fit_anomaly(kind, stack)
    assert _same_weights(a.model, b.model)
    np.testing.assert_array_equal(
        score(stack, a.model, device="cpu").values, score(stack, b.model, device="cpu").values
    )


# ------------------------------------------------- across torch thread counts: a tolerance


@pytest.mark.parametrize("kind", ["cnn", "vae", "ae"])
def test_networks_across_thread_counts_agree_within_tolerance_same_top_cells(
    stack, world, threads, kind
):
    maps = []
    for n in (1, 2):
        threads(n)
        fit = _fit_cnn(stack, world) if kind == "cnn" else _fit_anomaly(kind, stack)
        maps.append(score(stack, fit.model, device="cpu").values)
    one, two = maps
    np.testing.assert_array_equal(np.isnan(one), np.isnan(two))
    span = float(np.nanmax(one) - np.nanmin(one))
    assert np.nanmax(np.abs(one - two)) <= THREAD_RTOL * span
    np.testing.assert_array_equal(_top(one), _top(two))  # the same targets


# ------------------------------------------------------------ across chunkings: a tolerance


@pytest.mark.parametrize("kind", ["cnn", "vae", "ae"])
def test_dense_scoring_across_chunkings_within_float32_rounding(stack, world, threads, kind):
    threads(1)
    fit = _fit_cnn(stack, world) if kind == "cnn" else _fit_anomaly(kind, stack)
    eager = score(stack, fit.model, device="cpu").values
    for ch in (8, 13, 50):
        lazy = score(stack.chunk({"y": ch, "x": ch}), fit.model, device="cpu").values
        assert_chunkings_agree(lazy, eager)
        np.testing.assert_array_equal(_top(eager), _top(lazy))
