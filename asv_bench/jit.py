"""Numba compile time of the gridders and of ``xprospect demo``, cold and warm.

Each case runs in a fresh process with ``NUMBA_CACHE_DIR`` set to a folder of its own:
first empty (cold: everything the case calls is compiled), then again on the folder the
cold run filled (warm: loaded from numba's cache). Compile time is the CPU time of the
compiling thread between numba's ``numba:compile`` events, summed over every function
compiled (each counted without its callees), so it does not grow with the load other
processes put on the machine as wall time does; loading from the cache is not
compilation and shows in the wall time only.

Usage::

    PYTHONPATH=. python asv_bench/jit.py [idw2d idw3d kriging points demo] [--cold-only]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ("idw2d", "idw3d", "kriging", "points", "demo")


def _work(case: str) -> None:
    """Run one case in this process (numpy and dask paths, so both kernel variants)."""
    import numpy as np  # lazy: the parent process only spawns children

    import xprospect as xp

    if case == "demo":
        from xprospect.cli import main

        out = Path(tempfile.mkdtemp(prefix="xprospect-jit-demo-"))
        try:
            main(["demo", "--out", str(out), "--overwrite"])
        finally:
            shutil.rmtree(out, ignore_errors=True)
        return
    world = xp.synthetic.survey(seed=0, n_samples=300, elements=["Au", "Cu"])
    if case in ("idw2d", "kriging", "points"):
        grid = xp.make_grid(like=world.samples, resolution=2000)
        samples = world.samples
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from benchmarks.idw import samples_3d, voxels_3d

        samples, grid = samples_3d(300, 2), voxels_3d(12)
    if case == "points":
        pts = xr_points(samples)
        xp.grid.IDW(k=8).fit(samples).predict(pts)
        xp.grid.OrdinaryKriging(k=8).fit(samples).predict(pts)
        return
    fn = xp.grid_kriging if case == "kriging" else xp.grid_idw
    for chunks in (None, 8):
        out = fn(samples, like=grid, k=8, chunks=chunks)
        out.compute(scheduler="threads")
    np.asarray(out[next(iter(out.data_vars))].values)


def xr_points(samples):
    """The first 50 samples' places as a point set."""
    return samples.isel(sample=slice(0, 50))[[]]


def _child(case: str) -> None:
    import threading  # lazy: only the measuring child needs these

    from numba.core import event

    class _Timer(event.Listener):
        """Compile CPU time per kernel, its callees' compilations excluded (per thread)."""

        def __init__(self):
            self.local = threading.local()
            self.by: dict[str, float] = {}
            self.lock = threading.Lock()

        def on_start(self, ev):
            stack = self.local.__dict__.setdefault("stack", [])
            stack.append([ev.data["dispatcher"].py_func.__qualname__, time.thread_time(), 0.0])

        def on_end(self, ev):
            stack = self.local.stack
            name, t0, inner = stack.pop()
            dt = time.thread_time() - t0
            if stack:
                stack[-1][2] += dt
            with self.lock:
                self.by[name] = self.by.get(name, 0.0) + dt - inner

    timer = _Timer()
    t0 = time.perf_counter()
    with event.install_listener("numba:compile", timer):
        _work(case)
    wall = time.perf_counter() - t0
    top = dict(sorted(timer.by.items(), key=lambda kv: -kv[1])[:6])
    print(json.dumps({"wall": wall, "compile": sum(timer.by.values()), "top": top}))


def measure(case: str, cache_dir: str) -> dict:
    """Run ``case`` in a fresh process with numba's cache in ``cache_dir``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    r = subprocess.run(
        [sys.executable, __file__, "--child", case],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    """Print cold and warm compile and wall times per case."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cases", nargs="*", default=list(CASES[:4]))
    p.add_argument("--cold-only", action="store_true", help="skip the warm (cached) rerun")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        _child(a.child)
        return 0
    for case in a.cases:
        cache = tempfile.mkdtemp(prefix="xprospect-numba-cache-")
        try:
            load = os.getloadavg()[0]
            cold = measure(case, cache)
            warm = None if a.cold_only else measure(case, cache)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        line = f"{case}: cold: compile {cold['compile']:.1f} s CPU, {cold['wall']:.1f} s wall"
        if warm is not None:
            line += f"; warm: compile {warm['compile']:.1f} s CPU, {warm['wall']:.1f} s wall"
        print(f"{line} (load {load:.2f} -> {os.getloadavg()[0]:.2f})")
        print(
            "  cold compile CPU s by function (callees excluded): "
            + ", ".join(f"{k} {v:.1f}" for k, v in cold["top"].items())
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
