"""A lazy score map is computed once by ``evaluate`` and ``targets`` (issue 12, part 5).

The "model" is a counting block function behind a dask map: every real (non-empty) block
it is asked for is one run of the model on that chunk.
"""

from __future__ import annotations

import threading

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import xprospect as xp
from xprospect._dims import write_crs
from xprospect._progress import _on_worker


class CountingModel:
    """Return each block as is and count the blocks asked for (meta calls excluded)."""

    def __init__(self) -> None:
        self.calls = 0
        self.on_worker = 0  # blocks run by a dask.distributed worker
        self._lock = threading.Lock()
        _LIVE[id(self)] = self

    def __reduce__(self):
        # an in-process cluster pickles the graph: unpickle to this very counter
        return _live, (id(self),)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        if block.size:
            with self._lock:
                self.calls += 1
                self.on_worker += _on_worker()
        return block


_LIVE: dict[int, CountingModel] = {}


def _live(key: int) -> CountingModel:
    return _LIVE[key]


@pytest.fixture(scope="module")
def footprint():
    world = xp.synthetic.survey(seed=0, n_samples=200)
    g = xp.make_grid(world.bounds, resolution=1000.0, crs=world.crs)
    fp = world.footprint(*np.meshgrid(g.x.values, g.y.values))
    m = xr.DataArray(fp, dims=("y", "x"), coords={"y": g.y, "x": g.x}, name="score")
    return write_crs(m, world.crs), world.deposits


def _lazy(m: xr.DataArray, model: CountingModel) -> xr.DataArray:
    h, w = m.shape
    data = da.from_array(m.values, chunks=(h // 2 + 1, w // 2 + 1)).map_blocks(
        model, meta=np.empty((0, 0), m.dtype)
    )
    return m.copy(data=data)


def test_evaluate_and_targets_compute_the_map_once(footprint):
    m, deps = footprint
    model = CountingModel()
    lazy = _lazy(m, model)
    n_chunks = lazy.data.npartitions
    assert n_chunks == 4 and model.calls == 0
    report = lazy.prospect.evaluate(deps, blocks=(6, 6))
    assert model.calls == n_chunks  # once, not once per curve
    tgt = report.targets(quantiles={"top5": 0.95})
    assert model.calls == n_chunks  # the report's computed map is reused
    want = xp.evaluate.targets(m, quantiles={"top5": 0.95}, deposits=deps)
    assert tgt.table.equals(want.table)
    model.calls = 0
    for kwargs in ({}, {"quantiles": [0.9]}, {"thresholds": [0.5]}):
        xp.evaluate.targets(lazy, deposits=deps, **kwargs)
        assert model.calls == n_chunks, kwargs
        model.calls = 0
    np.testing.assert_array_equal(report.score_map.values, m.values)


def test_compare_computes_each_map_once(footprint):
    m, deps = footprint
    a, b = CountingModel(), CountingModel()
    xp.evaluate.compare({"a": _lazy(m, a), "b": _lazy(m, b)}, deps)
    assert a.calls == b.calls == 4


def test_on_a_cluster_the_map_is_persisted_there_once(footprint, monkeypatch):
    """With a dask.distributed client, evaluate and targets persist the map on the cluster."""
    distributed = pytest.importorskip("distributed")
    m, deps = footprint
    persisted = []
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        real_persist = client.persist

        def spy(obj, **kwargs):
            persisted.append(obj.name)
            return real_persist(obj, **kwargs)

        monkeypatch.setattr(client, "persist", spy)
        model = CountingModel()
        lazy = _lazy(m, model)
        report = xp.evaluate.evaluate(lazy, deps, blocks=(6, 6))
        assert model.calls == model.on_worker == 4  # once, and on the cluster
        assert persisted == ["score"]
        report.targets()
        assert model.calls == 4
        model.calls = model.on_worker = 0
        t = xp.evaluate.targets(lazy, deposits=deps)
        assert model.calls == model.on_worker == 4
        assert len(persisted) == 2
    want = xp.evaluate.targets(m, deposits=deps)
    assert t.table.equals(want.table)
    np.testing.assert_array_equal(report.score_map.values, m.values)
