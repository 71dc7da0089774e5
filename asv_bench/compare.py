"""Side-by-side timings of xprospect IDW and its peers, outside asv (medians of repeats).

Runs the asv cases (``benchmarks/idw.py``) at full size: 2-D 7,000 samples x 16
elements onto 3072^2 and 3-D 5,000 x 12 onto 128^3, k=12, power 2, float32.
``xp-dask`` is xprospect on the template chunked 1024 (threaded scheduler).
Methods are interleaved round by round so that load from other processes hits
each alike; the load average is printed with every case. Also checks that the
peers give the same maps and measures xprospect's peak RSS in a fresh process.

Usage::

    python asv_bench/compare.py [--repeat 3] [--size2d 3072] [--size3d 128]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmarks import idw as bidw


def _case(ndim: int, size: int, chunks: int | None = None):
    if ndim == 2:
        world = bidw.survey_2d()
        return world.samples, bidw.grid_2d(world, size, chunks)
    return bidw.samples_3d(), bidw.voxels_3d(size, chunks)


def _time_case(ndim: int, size: int, repeat: int) -> dict[str, list[float]]:
    samples, like = _case(ndim, size)
    pts, vals, coords, names = bidw.peer_inputs(samples, like)
    like_dask = _case(ndim, size, chunks=1024)[1]
    methods = {
        "xprospect": lambda: bidw.idw_xprospect(samples, like),
        "xp-dask": lambda: bidw.idw_xprospect(samples, like_dask),
        "scipy": lambda: bidw.idw_scipy(pts, vals, coords),
        "pykdtree": lambda: bidw.idw_pykdtree(pts, vals, coords),
    }
    times, _, results = bidw.interleave(methods, repeat)
    for m in results:
        if m.startswith("xp"):
            results[m] = np.stack([results[m][n].values for n in names])
    ref = results["scipy"]
    for m in ("xprospect", "xp-dask", "pykdtree"):
        rel = float(np.max(np.abs(results[m] - ref) / np.abs(ref)))
        print(f"  max relative difference {m} vs scipy: {rel:.1e}")
    return times


def _vm_hwm() -> int:
    """Peak RSS of this process (Linux VmHWM, resettable), in bytes."""
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM"))


def _peakmem_child(size: int) -> None:
    samples, like = _case(2, size)
    base = psutil.Process().memory_info().rss
    try:  # reset the peak so that imports and JIT loading do not count (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        out = bidw.idw_xprospect(samples, like)
        peak = _vm_hwm()
    except OSError:
        out = bidw.idw_xprospect(samples, like)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    nbytes = sum(v.nbytes for v in out.data_vars.values())
    print(json.dumps({"before": base, "peak": peak, "output": nbytes}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--size2d", type=int, default=3072)
    p.add_argument("--size3d", type=int, default=128)
    p.add_argument("--peakmem-child", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    bidw.warm_jit()
    if a.peakmem_child:
        _peakmem_child(a.peakmem_child)
        return 0
    print(f"cpus {os.cpu_count()}, numba threads {bidw.numba_threads()}")
    for ndim, size in ((2, a.size2d), (3, a.size3d)):
        print(f"{ndim}-D {size}^{ndim}: load before {os.getloadavg()[0]:.2f}")
        times = _time_case(ndim, size, a.repeat)
        med = {m: statistics.median(t) for m, t in times.items()}
        for m, t in times.items():
            runs = ", ".join(f"{x:.2f}" for x in t)
            ratio = med[m] / med["xprospect"]
            print(f"  {m:10s} median {med[m]:6.2f} s  ({runs})  {ratio:4.1f}x xprospect")
        print(f"  load after {os.getloadavg()[0]:.2f}")
    cmd = [sys.executable, __file__, "--peakmem-child", str(a.size2d)]
    r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    mb = 1e6
    print(
        f"peak RSS, xprospect 2-D {a.size2d}^2 (fresh process): {r['peak'] / mb:.0f} MB; "
        f"before the call {r['before'] / mb:.0f} MB; output {r['output'] / mb:.0f} MB; "
        f"increase {(r['peak'] - r['before']) / r['output']:.2f}x output, "
        f"whole process {r['peak'] / r['output']:.2f}x output"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
