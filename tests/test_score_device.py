"""The device path of score on CPU: transfers, devices, masks, resources, threads, progress."""

from __future__ import annotations

import contextlib
import io
import sys
import threading

import dask
import numpy as np
import pytest
import xarray as xr

torch = pytest.importorskip("torch")

from threadpoolctl import threadpool_info  # noqa: E402

import xprospect  # noqa: E402  (registers .prospect)
from xprospect._dask import map_cells, model_threads  # noqa: E402
from xprospect.exceptions import DataError, XProspectDeprecationWarning  # noqa: E402
from xprospect.score import _device, score  # noqa: E402
from xprospect.score._device import Transfer, choose_device, thread_slot  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_score import TinyDense, TinyWindow, make_stack  # noqa: E402

CALLS = {"windows": 0, "dense": 0, "rows": 0}
SEEN: list[dict] = []


class CountingWindow(TinyWindow):
    def score_windows(self, x):
        CALLS["windows"] += 1
        return super().score_windows(x)


class CountingDense(TinyDense):
    def score_dense(self, x):
        CALLS["dense"] += 1
        return super().score_dense(x)


class Recording(TinyDense):
    """Records the thread settings it runs under."""

    def score_dense(self, x):
        SEEN.append(
            {
                "torch": torch.get_num_threads(),
                "t": threading.current_thread().name,
                "blas": [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"],
            }
        )
        return super().score_dense(x)


def reset():
    for k in CALLS:
        CALLS[k] = 0


# ---- transfers and device choice ---------------------------------------------------------------


def test_transfer_on_cpu_is_the_same_calls_without_streams():
    tr = Transfer(torch.device("cpu"))
    a = np.arange(12, dtype="float32").reshape(3, 4)
    t, ev = tr.upload(a)
    assert ev is None and tr.stream is None
    assert t.data_ptr() == a.__array_interface__["data"][0]  # no copy on CPU
    tr.ready(t, ev)
    back = tr.download(t * 2)
    np.testing.assert_array_equal(back(), 2 * a)


def test_device_choice_round_robin_with_a_fake_gpu_count():
    assert choose_device("auto", 0, 5) == "cpu"
    assert [choose_device("auto", 4, s) for s in range(6)] == [
        "cuda:0",
        "cuda:1",
        "cuda:2",
        "cuda:3",
        "cuda:0",
        "cuda:1",
    ]
    assert choose_device("cuda", 2, 3) == "cuda:1"
    assert choose_device("cuda:1", 4, 0) == "cuda:1" and choose_device("cpu", 4, 2) == "cpu"
    slots = {}

    def grab(i):
        slots[i] = (thread_slot(), thread_slot())

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(a == b for a, b in slots.values())  # a thread keeps its slot
    assert len({a for a, _ in slots.values()}) == 4  # each thread its own (its own GPU)
    # on this machine "auto" is the CPU whatever the thread
    assert str(_device.worker_device("auto")) == ("cuda:0" if torch.cuda.is_available() else "cpu")


def test_prefetch_is_deprecated_and_compile_is_plumbed():
    stack = make_stack()
    model = TinyWindow()
    plain = score(stack, model, stride=2, device="cpu", allow_no_card=True).values
    with pytest.warns(XProspectDeprecationWarning, match="prefetch"):
        score(stack, model, stride=2, device="cpu", prefetch=2, allow_no_card=True)
    before = len(_device._COMPILED)
    got = score(
        stack, model, stride=2, device="cpu", compile={"backend": "eager"}, allow_no_card=True
    ).values
    assert len(_device._COMPILED) == before + 1  # the scorer went through torch.compile
    np.testing.assert_allclose(got, plain, rtol=1e-6, atol=1e-7)


# ---- masks: nothing computed where nothing is wanted -------------------------------------------


def test_mask_skips_chunks_and_windows_before_any_model_call():
    stack = make_stack(shape=(30, 40))
    mask = np.zeros((30, 40), bool)
    mask[2:9, 3:12] = True  # inside the first chunk only
    chunked = stack.chunk({"y": 10, "x": 20})
    model = CountingWindow()
    reset()
    full = score(
        chunked,
        model,
        stride=2,
        upsample="bilinear",
        device="cpu",
        batch_size=8,
        allow_no_card=True,
    ).values
    all_calls = CALLS["windows"]
    reset()
    got = score(
        chunked,
        model,
        stride=2,
        upsample="bilinear",
        device="cpu",
        batch_size=8,
        mask=xr.DataArray(mask, dims=("y", "x")),
        allow_no_card=True,
    ).values
    # only the lattice points the 7 x 9 wanted cells read (bilinear, stride 2): rows 1-4,
    # columns 1-6, 24 windows in 3 batches of 8
    assert CALLS["windows"] == 3 < all_calls
    np.testing.assert_array_equal(got[mask], full[mask])  # wanted cells bit for bit
    assert np.isnan(got[~mask]).all()
    reset()
    none = score(
        chunked, model, device="cpu", mask=np.zeros((30, 40), bool), allow_no_card=True
    ).values
    assert CALLS["windows"] == 0 and np.isnan(none).all()
    with pytest.raises(DataError, match="boolean"):
        score(chunked, model, device="cpu", mask=mask.astype(int), allow_no_card=True)


def test_mask_skips_dense_tiles_and_takes_a_template():
    stack = make_stack(shape=(30, 40))
    tmpl = xr.Dataset(
        {"mask": (("y", "x"), np.zeros((30, 40), bool))}, coords={"y": stack.y, "x": stack.x}
    )
    tmpl["mask"][20:, 30:] = True
    model = CountingDense()
    reset()
    full = score(stack, model, device="cpu", tile=10, allow_no_card=True).values
    assert CALLS["dense"] == 12
    reset()
    got = score(stack, model, device="cpu", tile=10, mask=tmpl, allow_no_card=True).values
    assert CALLS["dense"] == 1  # the one tile holding wanted cells
    m = tmpl["mask"].values
    np.testing.assert_array_equal(got[m], full[m])
    assert np.isnan(got[~m]).all()


def test_map_cells_never_calls_the_function_on_a_masked_chunk():
    stack = make_stack(shape=(30, 40))
    calls = []

    def east(block):
        calls.append(block.start)
        return np.broadcast_to(block.coords[1], block.shape).copy()

    mask = np.zeros((30, 40), bool)
    mask[:10, :20] = True
    data, _ = map_cells(stack.chunk({"y": 10, "x": 20}), east, dtype="float64", mask=mask)
    out = data.compute()
    assert calls == [(0, 0)]  # 1 of 6 chunks computed
    assert np.isnan(out[~mask]).all() and np.isfinite(out[mask]).all()


# ---- cluster resources and thread policy -------------------------------------------------------


def test_resources_annotate_the_scoring_tasks():
    stack = make_stack().chunk({"y": 12, "x": 16})
    out = score(
        stack, TinyWindow(), stride=2, device="cpu", resources={"GPU": 1}, allow_no_card=True
    )
    layers = out.data.__dask_graph__().layers
    ann = [lay.annotations for name, lay in layers.items() if name.startswith("prospectivity")]
    assert ann and all(a == {"resources": {"GPU": 1}} for a in ann)
    plain = score(stack, TinyWindow(), stride=2, device="cpu", allow_no_card=True)
    assert not any(lay.annotations for lay in plain.data.__dask_graph__().layers.values())
    with pytest.raises(DataError, match="resources"):
        score(stack, TinyWindow(), device="cpu", resources={"GPU": -1}, allow_no_card=True)


@contextlib.contextmanager
def _gpu_and_cpu_workers(distributed):
    """An in-process cluster of one worker declaring ``{"GPU": 1}`` and one plain worker."""
    spec = {
        "gpu": {"cls": distributed.Worker, "options": {"nthreads": 1, "resources": {"GPU": 1}}},
        "cpu": {"cls": distributed.Worker, "options": {"nthreads": 1}},
    }
    sched = {"cls": distributed.Scheduler, "options": {"dashboard_address": None}}
    with (
        distributed.SpecCluster(workers=spec, scheduler=sched) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.wait_for_workers(2)
        gpu = next(
            a
            for a, w in client.scheduler_info(n_workers=-1)["workers"].items()
            if w.get("resources")
        )
        yield client, gpu


def test_thread_policy_inside_scored_and_gridded_blocks():
    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    main_blas = blas()
    stack = make_stack().chunk({"y": 12, "x": 16})
    SEEN.clear()
    score(stack, Recording(), device="cpu", allow_no_card=True).compute(scheduler="threads")
    # the model call gets the process's cores; BLAS is held to one thread per dask thread
    assert SEEN and all(s["torch"] == model_threads() for s in SEEN)
    assert all(s["blas"] == [1] * len(s["blas"]) for s in SEEN), SEEN
    inside = []

    def probe(block):
        inside.append({i["user_api"]: i["num_threads"] for i in threadpool_info()})
        return np.zeros(block.shape)

    map_cells(stack, probe, dtype="float64", chunks=8)[0].compute(scheduler="threads")
    # OpenMP (per thread) is held to one thread in every gridded chunk; the BLAS limit is
    # process-wide and checked inside the scored chunks above
    assert inside and all(d.get("openmp", 1) == 1 for d in inside), inside
    assert all(d.get("blas", 1) <= max([*main_blas, 1]) for d in inside)
    with dask.config.set({"xprospect.threads.block": 2}):
        inside.clear()
        map_cells(stack, probe, dtype="float64", chunks=8)[0].compute(scheduler="threads")
        assert inside and all(d.get("openmp", 2) == 2 for d in inside), inside
    SEEN.clear()
    with dask.config.set({"xprospect.threads.model": 1}):
        score(stack, Recording(), device="cpu", allow_no_card=True).compute(scheduler="threads")
    assert SEEN and all(s["torch"] == 1 for s in SEEN)


@pytest.mark.parametrize("model", [TinyWindow, TinyDense])
def test_score_gives_the_callers_torch_thread_count_back(model):
    # the model runs on model_threads() torch threads; the calling thread keeps its own
    # count (a caller that trains after scoring stays bitwise reproducible)
    stack = make_stack()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with dask.config.set({"xprospect.threads.model": 2}):
            for data, scheduler in [
                (stack, None),
                (stack.chunk({"y": 12, "x": 16}), "sync"),
                (stack.chunk({"y": 12, "x": 16}), "threads"),
            ]:
                SEEN.clear()
                job = score(data, model(), window=5, device="cpu", allow_no_card=True)
                if scheduler is not None:
                    job = job.compute(scheduler=scheduler)
                assert np.isfinite(job.values).any()
                assert torch.get_num_threads() == 1, (model.__name__, scheduler)
    finally:
        torch.set_num_threads(before)


# ---- progress ----------------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_score_progress_on_a_terminal_and_silent_when_off(monkeypatch):
    stack = make_stack().chunk({"y": 12, "x": 16})
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    score(stack, TinyWindow(), stride=2, device="cpu", allow_no_card=True).compute()
    assert "4/4" in tty.getvalue() and "score" in tty.getvalue()
    tty.seek(0)
    tty.truncate()
    score(stack, TinyWindow(), stride=2, device="cpu", progress=False, allow_no_card=True).compute()
    assert tty.getvalue() == ""
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    score(stack, TinyWindow(), stride=2, device="cpu", allow_no_card=True).compute()
    assert pipe.getvalue() == ""


def test_bench_masked_score_tiny():
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_bench"))
    from benchmarks import score as bscore

    bench = bscore.MaskedScore()
    bench.size, bench.chunks, bench.stride = 48, 12, 4
    bench.setup()
    bench.model = bscore.make_model(9, (4, 4))
    masked, full = bench.time_masked(), bench.time_unmasked()
    m = bench.mask.values
    np.testing.assert_array_equal(masked[m], full[m])
    assert np.isnan(masked[~m]).all()


@pytest.mark.parametrize("write", ["compute", "to_zarr"])
def test_declared_gpu_resources_are_honoured_on_a_cluster(write, tmp_path):
    # dask's low-level fusion drops layer annotations (its documented caveat): a plain
    # compute needs it off; to_zarr optimises the graph itself, without low-level fusion for
    # annotated layers, so the scoring tasks keep their resources with no config from the user
    distributed = pytest.importorskip("distributed")
    stack = make_stack().chunk({"y": 12, "x": 16})
    model = TinyWindow()
    expect = score(stack, model, stride=2, device="cpu", allow_no_card=True).values
    with _gpu_and_cpu_workers(distributed) as (client, gpu):
        job = score(stack, model, stride=2, device="auto", allow_no_card=True)
        with distributed.get_task_stream(client) as ts:
            if write == "compute":
                with dask.config.set({"optimization.fuse.active": False}):
                    got = job.compute().values
            else:
                xprospect.to_zarr(job, tmp_path / "s.zarr", progress=False)
    if write == "to_zarr":  # read back outside the cluster and its task stream
        got = xprospect.open_zarr(tmp_path / "s.zarr")["prospectivity"].values
    np.testing.assert_array_equal(got, expect)
    ran = {t["worker"] for t in ts.data if "prospectivity" in str(t["key"])}
    assert ran == {gpu}
