"""Scoring on a dask.distributed cluster: the weights go to each worker once, not in every task."""

from __future__ import annotations

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
    grid = xp.make_grid((x0, y0, x0 + (n_cells - 1) * 500.0, y0 + (n_cells - 1) * 500.0),
                        resolution=500.0, crs=w.samples.rio.crs, chunks=chunk)
    maps = xp.grid_idw(w.samples, like=grid)  # lazy: the graph holds no raster
    return maps.prospect.stack(list(elements))


def _graph_bytes(job) -> int:
    return len(cloudpickle.dumps(dict(job.__dask_graph__())))


def test_resnet50_graph_is_small_whatever_the_weights():
    stack = _stack(n_cells=640, chunk=64, elements=["Au", "Cu", "Zn", "Pb", "Ag", "As", "Sb", "Bi"])
    model = create("resnet50", in_channels=8, window=32, seed=0)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    assert weights > 90e6  # about 94 MB of float32
    job = score(stack, model, window=32, stride=16, device="cpu")
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
    assert score(stack, a, device="cpu").data.name == score(stack, b, device="cpu").data.name
    assert score(stack, a, device="cpu").data.name != score(stack, c, device="cpu").data.name
    assert (score(stack, a, method="windows", stride=2, device="cpu").data.name
            != score(stack, a, method="windows", stride=3, device="cpu").data.name)
