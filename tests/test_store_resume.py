"""Resumable, honest zarr stores: a killed write never opens as complete, and resumes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
import zarr

import xprospect as xp
from xprospect.exceptions import DataError, IncompleteStoreError
from xprospect.io._chunks import BloscInto, ChunkWriter
from xprospect.io._resume import LEDGER_ATTR, read_ledger, write_ledger

JOB = Path(__file__).with_name("_resume_job.py")
ROOT = Path(__file__).resolve().parents[1]


def _run(store: Path, mode: str, seed: int, counter: Path, kill_at: int | None = None):
    env = {
        **os.environ,
        "XP_COUNTER": str(counter),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("XP_KILL_AT", None)
    if kill_at is not None:
        env["XP_KILL_AT"] = str(kill_at)
    return subprocess.run(
        [sys.executable, str(JOB), str(store), mode, str(seed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _calls(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def _assert_same_store(a: Path, b: Path) -> None:
    da_, db = xp.open_zarr(a).compute(), xp.open_zarr(b).compute()
    assert list(da_.data_vars) == list(db.data_vars)
    for name in da_.variables:
        assert da_[name].dtype == db[name].dtype
        assert da_[name].values.tobytes() == db[name].values.tobytes(), name
        assert da_[name].attrs == db[name].attrs
    assert da_.attrs == db.attrs
    assert da_.rio.crs == db.rio.crs


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_killed_grid_job_resumes_to_the_uninterrupted_store(tmp_path):
    full, killed = tmp_path / "full.zarr", tmp_path / "killed.zarr"
    done = _run(full, "full", 0, tmp_path / "full.count")
    assert done.returncode == 0, done.stderr
    assert _calls(tmp_path / "full.count") == 16 * 2  # 4 x 4 chunks, two elements

    kill_at = random.Random().randint(3, 24)  # a random chunk of the 32 transform calls
    dead = _run(killed, "full", 0, tmp_path / "killed.count", kill_at=kill_at)
    assert dead.returncode == -9, (kill_at, dead.stderr)
    ledger = read_ledger(str(killed))
    assert ledger is not None and not ledger.complete, kill_at
    missing = ledger.missing
    assert 0 < len(missing) <= 16

    with pytest.raises(IncompleteStoreError, match=rf"{len(missing)} of its 16 chunks"):
        xp.open_zarr(killed)
    partial = xp.open_zarr(killed, allow_incomplete=True)
    assert partial.attrs["missing_chunks"] == len(missing)
    assert int((~partial["complete"]).sum()) == sum(
        (r["y"].stop - r["y"].start) * (r["x"].stop - r["x"].start)
        for r in map(ledger.region, missing)
    )

    again = _run(killed, "resume", 0, tmp_path / "resume.count")
    assert again.returncode == 0, again.stderr
    # only the missing chunks were recomputed: one transform call per element and chunk
    assert _calls(tmp_path / "resume.count") == 2 * len(missing), kill_at
    _assert_same_store(full, killed)
    assert _files(full) == _files(killed)  # every file (chunks, metadata, ledger), byte for byte

    # resuming a finished store computes nothing
    twice = _run(killed, "resume", 0, tmp_path / "twice.count")
    assert twice.returncode == 0, twice.stderr
    assert _calls(tmp_path / "twice.count") == 0

    # a changed input (other samples) is refused
    other = _run(killed, "resume", 1, tmp_path / "other.count")
    assert other.returncode != 0
    assert "started by another job" in other.stderr
    assert _calls(tmp_path / "other.count") == 0


@pytest.fixture
def maps():
    w = xp.synthetic.survey(seed=3, n_samples=60, elements=["Au", "Cu"])
    grid = xp.make_grid(like=w.samples, resolution=2000, chunks=8)
    return xp.grid_idw(w.samples, like=grid)


def test_ledger_marks_complete_only_after_the_write(maps, tmp_path):
    store = tmp_path / "m.zarr"
    delayed = xp.to_zarr(maps, store, compute=False)
    with pytest.raises(IncompleteStoreError, match="never written"):
        xp.open_zarr(store)  # metadata only so far
    assert xp.open_zarr(store, allow_incomplete=True)["complete"].values.sum() == 0
    dask.compute(delayed)
    back = xp.open_zarr(store)
    assert LEDGER_ATTR not in back.attrs and "complete" not in back.coords
    xr.testing.assert_identical(back.compute(), maps.compute())


def test_resume_on_missing_path_starts_and_on_foreign_store_refuses(maps, tmp_path):
    store = tmp_path / "m.zarr"
    xp.to_zarr(maps, store, resume=True, progress=False)
    xr.testing.assert_identical(xp.open_zarr(store).compute(), maps.compute())
    # a resumed finished store is left as it is
    xp.to_zarr(maps, store, resume=True, progress=False)
    # another job= (e.g. another model checkpoint) is refused
    with pytest.raises(DataError, match="started by another job"):
        xp.to_zarr(maps, store, resume=True, job={"model": "other"})
    # without resume an existing store is refused as before, naming resume=True
    with pytest.raises(DataError, match="resume=True"):
        xp.to_zarr(maps, store)
    # a store with no ledger (plain xarray) cannot be resumed
    plain = tmp_path / "plain.zarr"
    maps.to_zarr(plain, zarr_format=3)
    with pytest.raises(DataError, match="not written by to_zarr"):
        xp.to_zarr(maps, plain, resume=True)


def test_resume_writes_only_missing_chunks_in_process(maps, tmp_path):
    store = tmp_path / "m.zarr"
    xp.to_zarr(maps, store, progress=False)
    ledger = read_ledger(str(store))
    assert ledger is not None and ledger.total == int(np.prod(ledger.grid)) > 4
    # forget three chunks (as a killed run would have left them) and spoil their data
    lost = [0, 2, ledger.total - 1]
    ledger.done -= set(lost)
    ledger.state = "writing"
    write_ledger(str(store), ledger)
    group = zarr.open_group(str(store), mode="r+")
    for flat in lost:
        region = ledger.region(flat)
        group["Au"][region["y"], region["x"]] = -1.0
    with pytest.raises(IncompleteStoreError, match=f"3 of its {ledger.total} chunks"):
        xp.open_zarr(store)
    xp.to_zarr(maps, store, resume=True, progress=False)
    xr.testing.assert_identical(xp.open_zarr(store).compute(), maps.compute())


def test_resume_removes_the_partial_files_a_killed_write_left(maps, tmp_path):
    store = tmp_path / "m.zarr"
    xp.to_zarr(maps, store, progress=False)
    before = _files(store)
    # a run killed between opening a chunk's temporary file and moving it in leaves these
    stale = [store / "Au" / "c" / "0" / "0.0123abcd.partial", store / "Au" / "c" / "9.ff.partial"]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    xp.to_zarr(maps, store, resume=True, progress=False)
    assert not any(p.exists() for p in stale)
    assert _files(store) == before


def test_default_codec_and_no_sliver_chunks(tmp_path):
    grid = xr.Dataset(
        {
            "v": (
                ("y", "x"),
                dask.array.random.default_rng(0)
                .random((129, 100), chunks=(32, 50))
                .astype("float32"),
            )
        },
        coords={"y": np.arange(129.0), "x": np.arange(100.0)},
    )
    xp.to_zarr(grid, tmp_path / "g.zarr", progress=False)
    arr = zarr.open_group(str(tmp_path / "g.zarr"), mode="r")["v"]
    assert arr.chunks == (33, 50)  # 32 x 4 + a 1-cell sliver -> 4 even chunks of 33
    assert [type(c).__name__ for c in arr.compressors] == ["BloscCodec"]
    assert arr.compressors[0].cname.value == "lz4" and arr.compressors[0].shuffle.value == "shuffle"
    xr.testing.assert_identical(xp.open_zarr(tmp_path / "g.zarr").compute(), grid.compute())
    xp.to_zarr(grid, tmp_path / "raw.zarr", compressors=(), progress=False)
    assert zarr.open_group(str(tmp_path / "raw.zarr"), mode="r")["v"].compressors == ()


def test_template_chunks_have_no_sliver_and_store_as_they_are(tmp_path):
    grid = xp.make_grid((0, 0, 2049, 1000), resolution=1.0, crs="EPSG:32750", chunks=512)
    assert grid["mask"].chunks == ((512, 488), (513, 513, 513, 510))  # 2049 = 4 x 512 + 1
    maps = xr.Dataset({"v": grid["mask"].astype("float32")})
    xp.to_zarr(maps, tmp_path / "m.zarr", progress=False)
    assert zarr.open_group(str(tmp_path / "m.zarr"), mode="r")["v"].chunks == (512, 513)


def _fail_at(block, block_info=None):
    if block_info is not None and block_info[None]["chunk-location"] == (1, 1):
        raise RuntimeError("chunk (1, 1) fails")
    return block


def test_ledger_written_in_batches_and_kept_on_failure(maps, tmp_path, monkeypatch):
    import xprospect.io._resume as resume

    writes = []
    real = resume.write_ledger
    monkeypatch.setattr(resume, "write_ledger", lambda *a: writes.append(1) or real(*a))
    store = tmp_path / "m.zarr"
    with dask.config.set({"xprospect.store.ledger_interval": 3600, "scheduler": "sync"}):
        xp.to_zarr(maps, store, progress=False)
        total = read_ledger(str(store)).total
        assert total > 4 and len(writes) <= 1  # one flush for all the chunks (not one each)
        # a run that fails part way keeps the chunks it wrote before the error
        bad = maps.assign(
            Au=maps["Au"].copy(data=maps["Au"].data.map_blocks(_fail_at, dtype=maps["Au"].dtype))
        )
        with pytest.raises(RuntimeError, match="fails"):
            xp.to_zarr(bad, tmp_path / "bad.zarr", progress=False)
    ledger = read_ledger(str(tmp_path / "bad.zarr"))
    assert 0 < len(ledger.done) < ledger.total and ledger.state == "writing"
    with pytest.raises(IncompleteStoreError):
        xp.open_zarr(tmp_path / "bad.zarr")
    back = xp.open_zarr(tmp_path / "bad.zarr", allow_incomplete=True).compute()
    for flat in ledger.done:
        region = ledger.region(flat)
        np.testing.assert_array_equal(
            back["Cu"][region["y"], region["x"]], maps["Cu"][region["y"], region["x"]]
        )


def test_ledger_rewritten_off_the_callers_thread(maps, tmp_path, monkeypatch):
    # the ledger's rewrites run in a writer thread of their own (the caller, dask's scheduler
    # thread, never waits on the file); close() writes what is left and raises its errors
    import threading

    import xprospect.io._resume as resume

    store = tmp_path / "m.zarr"
    xp.to_zarr(maps, store, progress=False)
    total = read_ledger(str(store)).total
    threads = []
    real = resume.write_ledger
    monkeypatch.setattr(
        resume, "write_ledger", lambda *a: threads.append(threading.current_thread()) or real(*a)
    )

    class _Bar:
        def update(self, n):
            pass

    ledger = resume.Ledger.from_attr(zarr.open_group(str(store)).attrs[LEDGER_ATTR])
    ledger.done, ledger.state = set(), "writing"
    with dask.config.set({"xprospect.store.ledger_interval": 0}):
        updater = resume.LedgerUpdater(str(store), ledger, _Bar())
        for flat in range(total):
            updater.done(flat)
        updater.close()
    assert read_ledger(str(store)).done == set(range(total))
    assert read_ledger(str(store)).state == "writing"
    assert threads and any(t is not threading.main_thread() for t in threads)

    # an error of the writer thread (a full disk, a removed store) reaches the caller
    def fail(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(resume, "write_ledger", fail)
    with dask.config.set({"xprospect.store.ledger_interval": 0}):
        updater = resume.LedgerUpdater(str(store), ledger, _Bar())
        updater.done(0)
        with pytest.raises(OSError, match="No space left"):
            updater.close(complete=True)
    assert read_ledger(str(store)).state == "writing"  # never marked complete
    # in the caller's thread when asked (dask config xprospect.store.ledger_thread=False)
    monkeypatch.setattr(
        resume, "write_ledger", lambda *a: threads.append(threading.current_thread()) or real(*a)
    )
    threads.clear()
    with dask.config.set(
        {"xprospect.store.ledger_interval": 0, "xprospect.store.ledger_thread": False}
    ):
        updater = resume.LedgerUpdater(str(store), ledger, _Bar())
        updater.done(1)
        updater.close(complete=True)
    assert threads == [threading.main_thread()] * len(threads) and len(threads) == 2
    assert read_ledger(str(store)).state == "complete"


def test_direct_chunk_writes_match_zarrs_own_and_empty_chunks_are_skipped(tmp_path, monkeypatch):
    # whole chunks are encoded and written by xprospect.io._chunks in the dask thread; the
    # stored bytes equal what zarr's own write gives, edge chunks are padded the same way,
    # and a chunk holding only the fill value is not stored (zarr's empty-chunk rule)
    rng = np.random.default_rng(0)
    data = rng.normal(size=(2, 50, 70)).astype("float32")
    data[:, :16, :16] = np.nan  # chunk (0, 0) is empty: zarr skips it
    data[:, 16, 16] = np.nan  # chunk (1, 1) starts with the fill value but is not empty
    ds = xr.Dataset(
        {"a": (("y", "x"), data[0]), "b": (("y", "x"), data[1])},
        coords={"y": np.arange(50.0), "x": np.arange(70.0)},
    ).chunk(16)
    ours = tmp_path / "ours.zarr"
    direct = []
    write = ChunkWriter.write
    monkeypatch.setattr(
        ChunkWriter, "write", lambda self, c, b: direct.append(c) or write(self, c, b)
    )
    xp.to_zarr(ds, ours, progress=False)
    # 4 x 5 chunks per variable: the empty one is not stored, every other is written
    # directly, the one whose first cell is NaN too (its emptiness checked as zarr does)
    assert len(direct) == 2 * 19 and (0, 0) not in direct and (1, 1) in direct
    plain = tmp_path / "plain.zarr"
    xr.Dataset({n: v.copy() for n, v in ds.data_vars.items()}).to_zarr(
        plain,
        zarr_format=3,
        consolidated=False,
        encoding={
            n: {"compressors": xp.io.store.default_compressors(), "chunks": (16, 16)}
            for n in ds.data_vars
        },
    )
    for name in ("a", "b"):
        files = sorted(
            p.relative_to(ours / name) for p in (ours / name / "c").rglob("*") if p.is_file()
        )
        assert files == sorted(
            p.relative_to(plain / name) for p in (plain / name / "c").rglob("*") if p.is_file()
        )
        assert Path("c/0/0") not in files and Path("c/1/1") in files and Path("c/3/4") in files
        for f in files:
            assert (ours / name / f).read_bytes() == (plain / name / f).read_bytes(), f
    back = xp.open_zarr(ours).compute()
    np.testing.assert_array_equal(back["a"].values, data[0])
    np.testing.assert_array_equal(back["b"].values, data[1])
    assert not list(ours.rglob("*.partial"))
    # an empty chunk stored before (a resumed run's stale file) is removed, as zarr does
    stale = ours / "a" / "c" / "0" / "0"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"stale")
    writer = ChunkWriter.of(zarr.open_array(str(ours / "a"), mode="r+"))
    writer.drop((0, 0))
    writer.drop((0, 0))  # not stored: nothing to do
    assert not stale.exists()
    assert np.isnan(xp.open_zarr(ours)["a"].values[:16, :16]).all()


def test_chunk_files_handed_to_the_kernel_in_pieces_hold_the_same_bytes(tmp_path):
    # write_piece only changes how many bytes each write call hands over (the page cache's
    # folio sizes), never the stored files: a store written in pieces of 7 bytes (and one
    # in whole chunks) is byte for byte the default one, with no temporary left behind
    from xprospect.io._chunks import write_piece

    rng = np.random.default_rng(1)
    data = np.cumsum(rng.normal(size=(40, 50)), axis=1).astype("float32")
    ds = xr.Dataset(
        {"v": (("y", "x"), data)}, coords={"y": np.arange(40.0), "x": np.arange(50.0)}
    ).chunk(16)
    assert write_piece() == 65536
    xp.to_zarr(ds, tmp_path / "default.zarr", progress=False)
    for piece in (7, 0):
        with dask.config.set({"xprospect.store.write_piece": piece}):
            assert write_piece() == piece
            xp.to_zarr(ds, tmp_path / f"p{piece}.zarr", progress=False)
        chunks = _files(tmp_path / f"p{piece}.zarr" / "v" / "c")
        assert len(chunks) == 3 * 4
        assert chunks == _files(tmp_path / "default.zarr" / "v" / "c")
        assert not list((tmp_path / f"p{piece}.zarr").rglob("*.partial"))
        np.testing.assert_array_equal(xp.open_zarr(tmp_path / f"p{piece}.zarr")["v"].values, data)


def test_blosc_into_gives_numcodecs_bytes_from_a_reused_buffer():
    # the default codec is run into a buffer kept per thread (no new bytes per chunk); its
    # output is byte for byte what numcodecs gives from a worker thread, whatever chunk the
    # buffer held before (an incompressible chunk is stored raw the same way), and it is
    # picklable (a graph sent to a cluster carries it)
    import pickle
    import threading

    from numcodecs.blosc import Blosc
    from zarr.codecs import BloscCodec, BytesCodec, ZstdCodec

    rng = np.random.default_rng(0)
    chunks = [
        np.cumsum(rng.normal(size=(64, 80)), axis=1).astype("float32"),  # compressible
        rng.normal(size=(16, 16)).astype("float32"),  # stored raw (too small to gain)
        rng.integers(0, 9, size=(33, 7)).astype("int16"),
        np.asfortranarray(rng.normal(size=(20, 30))),  # float64, not C order
    ]
    for shuffle, cname in [("shuffle", "lz4"), ("bitshuffle", "zstd"), ("noshuffle", "lz4")]:
        for data in chunks:
            codec = BloscCodec(cname=cname, clevel=5, shuffle=shuffle, typesize=data.dtype.itemsize)
            enc = BloscInto.of((BytesCodec(), codec))
            assert enc is not None and pickle.loads(pickle.dumps(enc)) == enc
            peer = Blosc(
                cname=cname,
                clevel=5,
                shuffle={"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[shuffle],
                typesize=data.dtype.itemsize,
            )
            theirs: list[bytes] = []
            worker = threading.Thread(
                target=lambda p=peer, d=data, t=theirs: t.append(p.encode(np.ascontiguousarray(d)))
            )
            worker.start()
            worker.join()
            ours = enc.encode(data)
            assert ours is not None and bytes(ours) == theirs[0], (shuffle, cname, data.shape)
            np.testing.assert_array_equal(
                np.frombuffer(peer.decode(bytes(ours)), data.dtype).reshape(data.shape), data
            )
    # anything else goes through zarr's own codecs
    assert BloscInto.of((BytesCodec(), ZstdCodec())) is None
    assert BloscInto.of((BytesCodec(endian="big"), BloscCodec())) is None


def test_writes_run_in_bands_of_rows_each_task_once(tmp_path, monkeypatch):
    # with many chunks the write tasks run band by band (memory bounded by the width); a
    # task shared by two bands (a halo's source chunk, a coarser upstream chunk) runs once
    calls: list[tuple] = []

    def upstream(block, block_info=None):
        calls.append(tuple(block_info[0]["chunk-location"]))
        return block * 2.0

    base = dask.array.arange(48 * 40, dtype="float32").reshape(48, 40).rechunk((12, 10))
    twice = base.map_blocks(upstream, dtype="float32")  # 4 x 4 chunks of 12 x 10
    lazy = twice.rechunk((6, 10)).map_overlap(lambda b: b + 1.0, depth=1, boundary="none")
    ds = xr.Dataset({"v": (("y", "x"), lazy)}, coords={"y": np.arange(48.0), "x": np.arange(40.0)})
    seen = []
    run = xp.io.store.run_in_bands
    monkeypatch.setattr(
        xp.io.store,
        "run_in_bands",
        lambda g, bands, get: seen.append(len(bands)) or run(g, bands, get),
    )
    with dask.config.set({"xprospect.store.band_chunks": 4, "scheduler": "threads"}):
        xp.to_zarr(ds, tmp_path / "banded.zarr", progress=False)
    assert seen == [8]  # 8 rows of 4 chunks
    assert sorted(calls) == sorted({c for c in calls}) and len(calls) == 16
    expected = np.arange(48 * 40, dtype="float32").reshape(48, 40) * 2.0 + 1.0
    np.testing.assert_array_equal(xp.open_zarr(tmp_path / "banded.zarr")["v"].values, expected)


def test_bands_are_rows_when_the_dataset_lists_x_first(tmp_path, monkeypatch):
    # a score's map lists its coordinates x first (ds.dims is then x, y): the bands must
    # still be rows of the arrays (memory bounded by the width), not columns whose memory
    # grows with the height; held halo slices are copies, not views of whole blocks
    lazy = dask.array.ones((24, 40), dtype="float32", chunks=(6, 10))
    lazy = lazy.map_overlap(lambda b: b + 1.0, depth=1, boundary="none")
    ds = xr.DataArray(
        lazy, dims=("y", "x"), name="v", coords={"x": np.arange(40.0), "y": np.arange(24.0)}
    ).to_dataset()
    assert tuple(ds.dims) == ("x", "y")
    seen: list[list[list[int]]] = []
    run = xp.io.store.run_in_bands

    def spy(graph, bands, get):
        seen.append([[k[1] for k in band] for band in bands])
        return run(graph, bands, get)

    monkeypatch.setattr(xp.io.store, "run_in_bands", spy)
    with dask.config.set({"xprospect.store.band_chunks": 4, "scheduler": "threads"}):
        xp.to_zarr(ds, tmp_path / "rows.zarr", progress=False)
    ledger = read_ledger(str(tmp_path / "rows.zarr"))
    assert ledger is not None and ledger.dims == ("y", "x")
    assert seen == [[[4 * r + c for c in range(4)] for r in range(4)]]  # 4 rows of 4 chunks
    np.testing.assert_array_equal(xp.open_zarr(tmp_path / "rows.zarr")["v"].values, 2.0)


def test_bands_hand_over_halo_strips_not_the_blocks_they_cut(tmp_path, monkeypatch, caplog):
    # a band computes the halo strips that the next band cuts from its blocks, so what it
    # hands over is the strips plus the next row's blocks (its own halos needed those),
    # not also this row's blocks: one row of blocks held at a band's end, not two
    import logging

    import xprospect.io._bands as bands

    stack = dask.array.ones((8, 48, 40), dtype="float32", chunks=(8, 8, 10))
    halo = dask.array.overlap.overlap(stack, depth={0: 0, 1: 2, 2: 2}, boundary="none")

    def score(b, block_info=None):  # a dense score's shape: the stack and halo in, a map out
        return np.full(block_info[None]["chunk-shape"], 2.0 * b.mean(), dtype="float32")

    lazy = dask.array.map_blocks(score, halo, drop_axis=0, chunks=stack.chunks[1:], dtype="float32")
    ds = xr.Dataset({"v": (("y", "x"), lazy)}, coords={"y": np.arange(48.0), "x": np.arange(40.0)})
    row = 4 * 8 * 8 * 10 * 4  # bytes of one row of blocks
    held = {}
    for mode in ("blocks", "strips"):
        if mode == "blocks":  # as before: each band cut its halos from the blocks handed
            monkeypatch.setattr(bands, "_SLICERS", ())
        else:
            monkeypatch.undo()
        caplog.clear()
        with (
            caplog.at_level(logging.DEBUG, logger=bands.__name__),
            dask.config.set({"xprospect.store.band_chunks": 4, "scheduler": "threads"}),
        ):
            xp.to_zarr(ds, tmp_path / f"{mode}.zarr", progress=False)
        held[mode] = [r.args[3] for r in caplog.records if r.name == bands.__name__]
        np.testing.assert_array_equal(xp.open_zarr(tmp_path / f"{mode}.zarr")["v"].values, 2.0)
    assert len(held["strips"]) == 6 and held["strips"][-1] == 0  # 6 rows of 4 chunks
    assert max(held["blocks"][1:-1]) >= 2 * row  # two rows of blocks
    assert row <= max(held["strips"]) < 1.5 * row  # one row and the strips


def test_bands_follow_the_leading_dim_of_a_ledger_listing_x_first(tmp_path):
    # a store started before the ledger listed its dims in the arrays' order: resumed, it
    # is still written in bands of rows (the flat indices keep that ledger's order)
    from xprospect.io._bands import _compact
    from xprospect.io._resume import Ledger
    from xprospect.io.store import _bands

    ledger = Ledger(job="j", dims=("x", "y"), chunks={"x": (10,) * 3, "y": (5,) * 2})
    keys = {("w", flat): flat for flat in range(6)}  # flat = 2 * x + y
    bands = _bands(keys, ledger, 1, "y")
    assert bands == [[("w", 0), ("w", 2), ("w", 4)], [("w", 1), ("w", 3), ("w", 5)]]
    block = np.zeros((8, 64, 64), dtype="float32")
    piece = _compact(block[:, -2:, :])
    assert piece.base is None and piece.shape == (8, 2, 64)
    assert _compact(block[:, :40, :]).base is not None  # most of the block: kept as a view


def test_empty_chunk_check_matches_zarrs_rule():
    # _Target.empty: every cell the fill value (NaN equal to NaN), the sampled cells first
    from xprospect.io._resume import _Target

    def target(fill):
        return _Target(None, None, fill, None, (), None)

    nan = np.full((4, 5), np.nan, dtype="float32")
    assert target(np.float32(np.nan)).empty(nan)
    for i in [(0, 0), (3, 4), (2, 2), (1, 3)]:  # first, last, middle, elsewhere
        one = nan.copy()
        one[i] = 1.0
        assert not target(np.float32(np.nan)).empty(one), i
    zeros = np.zeros((3, 3), dtype="int16")
    assert target(np.int16(0)).empty(zeros) and not target(np.int16(7)).empty(zeros)
    zeros[0, 1] = 7
    assert not target(np.int16(0)).empty(zeros)
    assert not target(np.float32(0)).empty(nan)  # NaN is not a fill value of 0
    assert target(np.float32(np.nan)).empty(nan[:, ::2])  # a strided view
