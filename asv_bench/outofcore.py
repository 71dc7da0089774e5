"""Out-of-core IDW, run once: 16 elements onto 20,000^2 streamed to a zarr store.

Reports wall time and peak RSS (psutil sampled every 0.2 s, and ru_maxrss), then
deletes the store. Target: peak RSS < 4 GB.

Usage::

    python asv_bench/outofcore.py [--size 20000] [--chunks 2048] [--scheduler threads]
                                  [--workers N] [--dir FOLDER] [--no-mask]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmarks import idw as bidw


class RSSSampler(threading.Thread):
    """Track the process's peak resident set size by sampling."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval = interval
        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.wait(self.interval):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, self.proc.memory_info().rss)


def _du(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=20_000)
    p.add_argument("--chunks", type=int, default=2048)
    p.add_argument("--samples", type=int, default=bidw.N_SAMPLES_2D)
    p.add_argument("--scheduler", default="threads", choices=["threads", "synchronous"])
    p.add_argument("--workers", type=int, default=None, help="dask threads (default: cores)")
    p.add_argument("--dir", default=None, help="where to put the temporary store")
    p.add_argument(
        "--no-mask",
        action="store_true",
        help="drop the template's mask and pass chunks= to grid_idw (to compare both paths)",
    )
    p.add_argument("--keep", action="store_true", help="keep the store")
    a = p.parse_args(argv)

    bidw.warm_jit()
    world = bidw.survey_2d(a.samples)
    like = bidw.grid_2d(world, a.size, chunks=a.chunks)
    ne = len(world.elements)
    raw = ne * like.sizes["y"] * like.sizes["x"] * 4
    store = tempfile.mkdtemp(suffix=".zarr", prefix="xprospect-outofcore-", dir=a.dir)
    base = psutil.Process().memory_info().rss
    sampler = RSSSampler()
    sampler.start()
    t0 = time.perf_counter()
    try:
        bidw.grid_to_zarr(
            world.samples,
            like,
            store,
            mask=not a.no_mask,
            scheduler=a.scheduler,
            num_workers=a.workers,
        )
        wall = time.perf_counter() - t0
        peak = sampler.stop()
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        disk = _du(store)
    finally:
        if not a.keep:
            shutil.rmtree(store, ignore_errors=True)
    gb = 1e9
    print(
        f"grid {like.sizes['y']} x {like.sizes['x']} x {ne} elements, chunks={a.chunks}, "
        f"{a.samples} samples, mask={not a.no_mask}, scheduler={a.scheduler}, "
        f"workers={a.workers or os.cpu_count()}"
    )
    print(f"uncompressed {raw / gb:.1f} GB, on disk {disk / gb:.2f} GB ({raw / disk:.1f}x)")
    print(f"wall {wall:.1f} s ({raw / wall / gb:.2f} GB/s of float32 output)")
    print(
        f"peak RSS {peak / gb:.2f} GB sampled / {maxrss / gb:.2f} GB ru_maxrss "
        f"(before: {base / gb:.2f} GB); target < 4 GB: {'ok' if maxrss < 4e9 else 'EXCEEDED'}"
    )
    print(f"store {'kept at ' + store if a.keep else 'deleted'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
