"""Peak RSS of scoring an 8-element zarr stack with a dense CNN into a zarr store.

Issue 10's target: an 8 x 20,000^2 stack (12.8 GB as float32) scored by the dense CNN to
zarr with a peak RSS under 3 GB. The stack is written first (lazily generated, chunk by
chunk, so that making it does not count), then a fresh Python process opens it with
``xp.open_zarr``, stacks it, scores it (``device="cpu"``) and streams the map to a second
store with ``xp.to_zarr``; that process reports its own peak RSS (``ru_maxrss``, and
psutil sampled every 0.2 s). Memory must not grow with the raster: run two sizes and
compare (``--sizes 2048 4096``), the growth per cell extrapolates to 20,000^2.

The network is ``small_cnn`` run fully convolutionally; ``--widths`` makes it narrower
(the default, 8 8 16 16, keeps a 20,000^2 run within minutes on a few cores; memory
depends on the chunk, not on the widths' FLOP count).

Usage::

    PYTHONPATH=. python asv_bench/peakmem_score.py --sizes 2048 4096 [--chunks 1024]
        [--widths 8 8 16 16] [--dir /tmp] [--scheduler threads]

Strips of the full width tell whether memory grows with the width (``--cols``: each size
is then the number of rows, scored at each width)::

    PYTHONPATH=. python asv_bench/peakmem_score.py --sizes 2048 --cols 4096 20000 --chunks 512

Before and after the bands hand on halo strips rather than the blocks they are cut from
(:mod:`xprospect.io._bands`), interleaved, each run in a fresh process, with the RSS at the
end of every band::

    DASK_XPROSPECT__STORE__BAND_CHUNKS=8 PYTHONPATH=. python asv_bench/peakmem_score.py \
        --sizes 1536 --cols 4096 --chunks 512 --widths 4 4 4 4 --compare 3

asv: ``PeakmemDenseScore`` (manual: set ``XPROSPECT_BENCH_OUTOFCORE=1``).

Measured at full size, 8 x 20,000 x 20,000 (12.8 GB of float32 in a 7.8 GB store; chunks
1024, i.e. 20 x 20 chunks of 1000; widths 8 8 16 16; 2 shared cores, ``nice -n 19``, load
7-11), ``PYTHONPATH=. python asv_bench/peakmem_score.py --sizes 20000``: **peak RSS 2.30 GB**
(``ru_maxrss``; 0.44 GB of it the interpreter with torch), wall 1321 s (starved for minutes
by other work at nice 19), CPU 420 s; RSS at the end of each of the 20 bands 1.25, then
1.89-1.95 GB flat, 0.95 at the last (commit e4b63a3). The target (< 3 GB) is met. The same
run at commit cf77fd0 did not stay under it: its RSS grew band by band and read 4.80 GB
(``ps``) 27 minutes in, at 281 of 400 chunks, when it was stopped. Three causes, each
fixed in :mod:`xprospect.io._bands`: bands of at least 64 chunks (four rows of 20 here,
whose inputs dask reads ahead: 8 x 6144 x 8192 peaked at 1.71 GB in bands of four rows,
1.45 GB in bands of one; the default is now 8 chunks a thread); the scheduler's results
of a band, holding the halo views uncompacted and through them whole blocks, alive
through the next band's call; and glibc's arenas keeping freed blocks' pages (now handed
back after each band with ``malloc_trim``: band-end RSS 0.75 -> 0.65 GB at 8 x 4096^2 in
chunks of 512).

Measured (2 shared cores, load 10-16, default chunks 1024 and band size, after the bands
became rows, commit 63bd3d9): 8 x 4096 x 4096 1.37 GB, 8 x 20,000 x 4096 1.49 GB (before:
1.40 GB, the same within noise at this shape), 8 x 4096 x 20,000 1.37 GB (one band: no
row held between bands), 8 x 8192 x 20,000 2.59 GB (two bands of 4 rows: the first band's
last row of input blocks, ~0.7 GB, is held into the second); 0.44 GB of each is the
interpreter with torch. (The 8 x 20,000^2 figure is above.)
With ``DASK_XPROSPECT__STORE__BAND_CHUNKS=16 --chunks 512``
at 4096 columns: 0.82 / 1.08 GB at 2048 / 8192 rows before, 0.84 / 0.96 GB after.

Halo strips handed between bands (the ``--compare`` command above: 8 x 1536 x 4096, chunks
512, three bands of one row of 8 chunks, best of 3 interleaved, load 11-14 on 2 shared
cores): band-end RSS 0.72 / 0.79-0.82 / 0.77-0.81 GB when each band was handed its
previous row's blocks whole, 0.71-0.72 / 0.73 / 0.71-0.72 GB with the strips (flat: one row
of blocks, 8 x 8 x 512^2 float32 = 67 MB, less held); peak RSS 0.84 -> 0.83 GB (the peak
is reached inside a band), CPU 7.4 -> 7.3 s, wall 20.7 -> 20.0 s. What is still held from
one band into the next is the next row of input blocks (the halos of this row needed them,
the next band needs them whole): one row, ~0.67 GB at 20,000 columns in chunks of 1024,
the part that still grows with the width.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import ClassVar

import dask
import dask.array as da
import numpy as np
import psutil
import xarray as xr

import xprospect as xp
import xprospect.io._bands as bands_module

N_ELEMENTS = 8
ELEMENTS = [f"E{i}" for i in range(N_ELEMENTS)]
WINDOW = 32
OUTOFCORE_ENV = "XPROSPECT_BENCH_OUTOFCORE"


def _smooth(block_info=None) -> np.ndarray:
    (lo_y, hi_y), (lo_x, hi_x) = block_info[None]["array-location"]
    y = np.arange(lo_y, hi_y, dtype="float32")[:, None]
    x = np.arange(lo_x, hi_x, dtype="float32")[None, :]
    return (np.sin(x / 97.0) * np.cos(y / 61.0) + 0.001 * ((x * 7 + y * 13) % 17)).astype("float32")


def make_stack_store(path: str, size: int, chunks: int, cols: int | None = None) -> None:
    """Write 8 smooth float32 element maps of ``size x cols`` cells (lazy, chunk by chunk)."""
    res = 10.0
    cols = size if cols is None else cols
    coords = {"y": (size - np.arange(size) - 0.5) * res, "x": (np.arange(cols) + 0.5) * res}
    maps = {}
    for i, name in enumerate(ELEMENTS):
        base = da.map_blocks(
            _smooth,
            chunks=da.core.normalize_chunks(chunks, (size, cols)),
            dtype="float32",
            meta=np.empty((0, 0), "float32"),
        )
        maps[name] = (("y", "x"), base * (1.0 + 0.1 * i) + i)
    ds = xr.Dataset(maps, coords=coords).rio.write_crs("EPSG:32750")
    xp.to_zarr(ds, path, progress=False)


def make_model(widths):
    from xprospect.models.registry import create  # lazy: torch

    return create("small_cnn", in_channels=N_ELEMENTS, window=WINDOW, widths=list(widths), seed=0)


def score_to_zarr(stack_path: str, out: str, widths, scheduler: str = "threads") -> None:
    """The user's path: open the stack, score it lazily, stream the map to zarr."""
    stack = xp.open_zarr(stack_path, chunks={}).prospect.stack(ELEMENTS)
    job = stack.prospect.score(make_model(widths), device="cpu", allow_no_card=True)
    with dask.config.set(scheduler=scheduler):
        xp.to_zarr(job, out, progress=False)


class _Sampler(threading.Thread):
    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.proc, self.interval = psutil.Process(), interval
        self.peak = self.proc.memory_info().rss
        self._halt = threading.Event()

    def run(self):
        while not self._halt.wait(self.interval):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return max(self.peak, self.proc.memory_info().rss)


class _BandRSS(logging.Handler):
    """Records the process's RSS each time :mod:`xprospect.io._bands` finishes a band."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.rss: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.rss.append(psutil.Process().memory_info().rss)


def _child(stack_path: str, out: str, widths, scheduler: str, halo: str = "strips") -> None:
    import xprospect.models  # noqa: F401  (torch imported before the baseline)

    if halo == "blocks":  # as before: halo slices run in the band that uses them
        bands_module._SLICERS = ()
    bands_log = logging.getLogger(bands_module.__name__)
    handler = _BandRSS()
    bands_log.addHandler(handler)
    bands_log.setLevel(logging.DEBUG)
    base = psutil.Process().memory_info().rss
    sampler = _Sampler()
    sampler.start()
    t, c = time.perf_counter(), time.process_time()
    score_to_zarr(stack_path, out, widths, scheduler)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    peak = sampler.stop()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "sampled": peak,
                "maxrss": maxrss,
                "base": base,
                "band_rss": handler.rss,
            }
        )
    )


def measure(
    size: int,
    chunks: int,
    widths,
    folder: str,
    scheduler: str = "threads",
    cols: int | None = None,
    halo: str = "strips",
) -> dict:
    """Make the stack (``size`` rows, ``cols`` columns, default ``size``), score it in a fresh
    process; return its wall and CPU time, peak RSS and RSS at the end of each band.

    ``halo="blocks"`` runs the write as before the halo strips were handed between bands
    (each band slices the blocks it was handed), for side-by-side figures."""
    cols = size if cols is None else cols
    stack_path = os.path.join(folder, f"stack{size}x{cols}.zarr")
    out = os.path.join(folder, f"score{size}x{cols}.zarr")
    if not os.path.exists(stack_path):
        make_stack_store(stack_path, size, chunks, cols)
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", stack_path, out, scheduler, halo]
    cmd += [str(w) for w in widths]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    res = json.loads(done.stdout.strip().splitlines()[-1])
    res["cells"] = size * cols
    res["rows"], res["cols"] = size, cols
    return res


class PeakmemDenseScore:
    """Manual: peak RSS of the scoring process (a fresh one) for an 8 x size^2 stack.

    Tracked in bytes (``track_`` so that the stack's making, done in ``setup``, and the
    parent asv process do not count).
    """

    params: ClassVar[list[int]] = [2048, 20_000]
    param_names: ClassVar[list[str]] = ["size"]
    chunks = 1024
    widths = (8, 8, 16, 16)
    number = 1
    repeat = 1
    timeout = 7200

    def setup(self, size):
        if os.environ.get(OUTOFCORE_ENV) != "1":
            raise NotImplementedError(f"manual benchmark: set {OUTOFCORE_ENV}=1 to run it")
        self.folder = tempfile.mkdtemp(prefix="xp-peakmem-score-")

    def teardown(self, size):
        shutil.rmtree(getattr(self, "folder", ""), ignore_errors=True)

    def track_peak_rss(self, size):
        return measure(size, self.chunks, self.widths, self.folder)["maxrss"]

    track_peak_rss.unit = "bytes"


def compare(size, chunks, widths, folder, scheduler, cols, rounds: int) -> None:
    """Print peak and band-end RSS of halo blocks (before) and strips (now), interleaved."""
    gb = 1e9
    best: dict[str, dict] = {}
    for r in range(rounds):
        for halo in ("blocks", "strips"):
            res = measure(size, chunks, widths, folder, scheduler, cols, halo)
            bands = " ".join(f"{x / gb:.2f}" for x in res["band_rss"])
            print(
                f"round {r} halo {halo}: 8 x {res['rows']} x {res['cols']} (chunks {chunks}): "
                f"peak RSS {res['maxrss'] / gb:.2f} GB, wall {res['wall']:.1f} s, CPU "
                f"{res['cpu']:.1f} s, RSS at band ends [{bands}] GB, load "
                f"{os.getloadavg()[0]:.1f}",
                flush=True,
            )
            b = best.setdefault(halo, dict(res))
            for key in ("maxrss", "wall", "cpu"):
                b[key] = min(b[key], res[key])
    for halo, b in best.items():
        print(
            f"best of {rounds}, halo {halo}: peak RSS {b['maxrss'] / gb:.2f} GB, wall "
            f"{b['wall']:.1f} s, CPU {b['cpu']:.1f} s"
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    p.add_argument(
        "--cols",
        type=int,
        nargs="+",
        default=None,
        help="strips: each size is the rows, scored at each of these widths (default square)",
    )
    p.add_argument("--chunks", type=int, default=1024)
    p.add_argument("--widths", type=int, nargs="+", default=[8, 8, 16, 16])
    p.add_argument("--scheduler", default="threads")
    p.add_argument("--dir", default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument(
        "--compare",
        type=int,
        default=0,
        metavar="N",
        help="N interleaved rounds per shape of the halo blocks handed between bands (as "
        "before) and of the halo strips (now), each in a fresh process; best of N",
    )
    a = p.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="xp-peakmem-score-", dir=a.dir)
    gb = 1e9
    if a.compare:
        try:
            for size, cols in [(s, c) for s in a.sizes for c in (a.cols or [None])]:
                compare(size, a.chunks, a.widths, folder, a.scheduler, cols, a.compare)
        finally:
            if not a.keep:
                shutil.rmtree(folder, ignore_errors=True)
        return 0
    rows = []
    shapes = [(s, c) for s in a.sizes for c in (a.cols or [None])]
    try:
        for size, cols in shapes:
            r = measure(size, a.chunks, a.widths, folder, a.scheduler, cols)
            rows.append(r)
            print(
                f"8 x {r['rows']} x {r['cols']} (chunks {a.chunks}, widths {a.widths}): wall "
                f"{r['wall']:.1f} s, peak RSS {r['maxrss'] / gb:.2f} GB (sampled "
                f"{r['sampled'] / gb:.2f}, after imports {r['base'] / gb:.2f}), "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        if len(rows) >= 2 and a.cols and rows[0]["cols"] != rows[-1]["cols"]:
            a0, a1 = rows[0], rows[-1]
            per_col = (a1["maxrss"] - a0["maxrss"]) / (a1["cols"] - a0["cols"])
            print(
                f"growth with width at {a0['rows']} rows: {per_col / 1e3:.1f} kB per column "
                f"({(a1['maxrss'] - a0['maxrss']) / 1e6:+.0f} MB from {a0['cols']} to "
                f"{a1['cols']} columns)"
            )
        elif len(rows) >= 2 and a.cols:
            a0, a1 = rows[0], rows[-1]
            print(
                f"growth with height at {a0['cols']} columns: "
                f"{(a1['maxrss'] - a0['maxrss']) / 1e6:+.0f} MB from {a0['rows']} to "
                f"{a1['rows']} rows"
            )
        elif len(rows) >= 2:
            a0, a1 = rows[-2], rows[-1]
            # growth per cell (an upper bound) and per cell of width (dask keeps about a
            # row of chunks for the halos: memory may grow with the raster's width only)
            per_cell = (a1["maxrss"] - a0["maxrss"]) / (a1["cells"] - a0["cells"])
            w0, w1 = a0["cells"] ** 0.5, a1["cells"] ** 0.5
            per_width = (a1["maxrss"] - a0["maxrss"]) / (w1 - w0)
            lin = a1["maxrss"] + per_cell * (20_000**2 - a1["cells"])
            wide = a1["maxrss"] + per_width * (20_000 - w1)
            print(
                f"growth {per_cell * 1e6 / 1e6:.2f} MB per 1e6 cells, {per_width / 1e3:.1f} kB "
                f"per cell of width; extrapolated to 8 x 20000^2: {lin / gb:.2f} GB if "
                f"linear in cells, {wide / gb:.2f} GB if linear in width (target < 3 GB)"
            )
    finally:
        if not a.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        stack_path, out, scheduler, halo, *w = sys.argv[2:]
        _child(stack_path, out, [int(x) for x in w], scheduler, halo)
    else:
        raise SystemExit(main())
