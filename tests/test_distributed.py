"""Scoring on a dask.distributed cluster: the weights go to each worker once, not in every task."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

import xprospect as xp  # noqa: E402
from xprospect.models.registry import create  # noqa: E402
from xprospect.score import score  # noqa: E402
from xprospect.score._device import ModelHandle, model_digest  # noqa: E402

ELEMENTS = ["Au", "Cu", "Zn"]


def _stack(n_cells: int = 48, chunk: int = 16, elements=ELEMENTS):
    w = xp.synthetic.survey(seed=0, n_samples=80, elements=list(elements))
    x0, y0 = float(w.samples.x.min()), float(w.samples.y.min())
    grid = xp.make_grid(
        (x0, y0, x0 + (n_cells - 1) * 500.0, y0 + (n_cells - 1) * 500.0),
        resolution=500.0,
        crs=w.samples.rio.crs,
        chunks=chunk,
    )
    maps = xp.grid_idw(w.samples, like=grid)  # lazy: the graph holds no raster
    return maps.prospect.stack(list(elements))


def _graph_bytes(job) -> int:
    return len(cloudpickle.dumps(dict(job.__dask_graph__())))


def test_resnet50_graph_is_small_whatever_the_weights():
    stack = _stack(n_cells=640, chunk=64, elements=["Au", "Cu", "Zn", "Pb", "Ag", "As", "Sb", "Bi"])
    model = create("resnet50", in_channels=8, window=32, seed=0)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    assert weights > 90e6  # about 94 MB of float32
    job = score(stack, model, window=32, stride=16, device="cpu", allow_no_card=True)
    assert job.data.npartitions == 100
    size = _graph_bytes(job)
    assert size < 2e6, size
    # the handle pickles to a reference: unpickled where it was made it finds the live model
    handle = cloudpickle.loads(cloudpickle.dumps(ModelHandle(model, "t50", "cpu", None)))
    assert handle.model is model


def test_token_is_the_weights_and_options():
    stack = _stack()
    a = create("small_cnn", in_channels=3, window=9, widths=[4, 4], seed=0)
    b = create("small_cnn", in_channels=3, window=9, widths=[4, 4], seed=0)
    c = create("small_cnn", in_channels=3, window=9, widths=[4, 4], seed=1)
    assert model_digest(a) == model_digest(b) != model_digest(c)
    kw = {"device": "cpu", "allow_no_card": True}  # untrained modules: no card on purpose
    assert score(stack, a, **kw).data.name == score(stack, b, **kw).data.name
    assert score(stack, a, **kw).data.name != score(stack, c, **kw).data.name
    assert (
        score(stack, a, method="windows", stride=2, **kw).data.name
        != score(stack, a, method="windows", stride=3, **kw).data.name
    )


@pytest.fixture(scope="module")
def client():
    import dask

    # spawned, not forked: a child forked after torch started its thread pools can deadlock
    with (
        dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _loaded_tokens() -> list[str]:
    from xprospect.score import _device

    return [k[0] for k in _device._CACHE]


@pytest.mark.parametrize("kind", ["dense", "window"])
def test_process_cluster_equals_threads_bit_for_bit(client, kind, tmp_path):
    stack = _stack()
    if kind == "dense":
        model = create("small_cnn", in_channels=3, window=9, widths=[4, 4], seed=0)
        options = {}
    else:
        model = create("resnet18", in_channels=3, window=16, seed=0)
        options = {"window": 16, "stride": 4}
    job = score(stack, model, device="cpu", allow_no_card=True, **options)
    want = job.compute(scheduler="threads")  # dask's threaded scheduler, in this process
    got = job.compute()  # the two worker processes
    np.testing.assert_array_equal(got.values, want.values)
    assert _graph_bytes(job) < 2e6
    # each worker process holds the model once, under the job's token
    loaded = client.run(_loaded_tokens)
    assert len(loaded) == 2
    token = job.data.name.removeprefix("prospectivity-")
    for tokens in loaded.values():
        assert tokens.count(token) <= 1
    assert any(token in tokens for tokens in loaded.values())
    # and the distributed write path of to_zarr marks every chunk as it lands
    xp.to_zarr(job, tmp_path / "s.zarr", progress=False)
    back = xp.open_zarr(tmp_path / "s.zarr").compute()
    np.testing.assert_array_equal(back["prospectivity"].values, want.values)
