"""Dense scoring on a process ``LocalCluster``: two single-threaded workers against one.

Issue 10's target: two single-threaded worker processes score a dense model over an
8 x 4096^2 stack in at most 0.6x the time of one. The stack is a zarr store (each worker
reads its own chunks; nothing large travels from the client), scored by ``small_cnn``
run fully convolutionally and written with ``xp.to_zarr`` (the user's path). Runs are
interleaved (one, two, one, two...), best of ``repeat``, wall time; only the cluster being
timed is alive (each run starts its cluster, warms it on a small store with the same
chunks, times the job and closes it: see :func:`side_by_side` for why). The task stream
splits each run into the time the workers spent in tasks (by prefix: reading, halos, the
model, writing), each worker's time without a task (before its first, between tasks,
after its last) and the rest (scheduling, transfers, the client's ledger); each run also
reports the CPU seconds of every process (client with the scheduler and nannies, the
workers), the megabytes and transfers moved between workers and the task counts: measures
that a loaded machine does not distort the way it distorts wall time.

What the two-worker run spent beyond half of one (8 x 4096^2, chunks 1024, one run each,
load 10-13, so counts and bytes, not seconds): the stack of eight zarr maps was built one
chunk per element (``to_array``), 128 read tasks + 128 stack tasks + 16 rechunks gathering
the eight 4 MB element blocks of each chunk; reads landed on both workers, so the
rechunks pulled element blocks across (436 tasks, 410 MB moved in 36 transfers for a
512 MB stack). ``stack_elements`` now stacks lazy maps blockwise, fused with the reads:
one task per chunk reads and stacks its elements on the worker that scores it (180 tasks;
213 MB in 16 transfers in the same conditions, 56 MB in 21 in the best of three below).
What still moves: the halo strips (16 rows or columns of a neighbour, 0.5 MB) and whole
32 MB blocks when the scheduler starts a chunk's score on the other worker than the one
that read it (its occupancy balancing; with work stealing off 144 MB still moved).
Reading each chunk's halo from the store instead of from its neighbours would decompress
the eight neighbouring zarr chunks (256 MB) per 1024^2 chunk to keep 16-cell strips,
more work than the strips' transfer, so halos still come from the neighbours. Results
are gathered by the client only as chunk numbers (``as_completed(with_results=True)``).

What limits the ratio on a two-core machine. The one-worker run is not one core's work:
beside the worker's task thread, its event loop, zarr's codec threads and the client's
loop (with the scheduler and the nanny) run on the second core. The two-worker run must
fit all of it, twice the event loops, into the same two cores. CPU seconds per thread
(``/proc``, load 6.8-7.7, one warm run each): one worker 21.2 s in all: the model (the
device thread) 11.9, the task thread (stacking, halos, padding) 2.2, zarr's threads 1.7,
the worker's event loop 2.9, the client's loop 2.2; two workers 23.1 s: the model 12.3,
task threads 2.2, zarr 1.8, the two event loops 4.6, the client's loop 2.0, 112 MB moved
in 17 transfers. The event loops cost per second of wall time, busy or not: idle, each
worker's loop and the scheduler's took ~5 % of a core; during the job a worker's loop
took ~7 % with dask's default statistical profiler (a sample of the task thread's stack
every 10 ms) and ~3 % with it off (``--no-worker-profile``), the client's 5-6 %. So the
two workers have about 1.8 of the two cores for ~16 s of the one worker's critical-path
work: a floor near 0.56 before any imbalance of the 16 one-second chunks (a chunk's score
is ~6 % of the two-worker run) or the serial start (graph, metadata) and end (ledger).
The old harness kept both clusters alive to interleave them: the idle one-worker cluster
(scheduler loop + worker loop, ~10 % of a core) then ran on the cores the two-worker run
needed, about 0.03 of the 0.63 measured on a quiet machine at the previous stop.

Measured (best of 3 interleaved, wall, load 12.4, two cores shared with four other jobs,
both clusters alive): one worker 59.3 s, two 70.6 s (1.19): with both cores busy with
other work a second worker adds no CPU, so this wall ratio says nothing about the target;
the CPU of all the processes was 34.4 s for one worker and 34.8 s for two. With only the
timed cluster alive, load 8.5: one worker 51.4 s, two 51.3 s (1.00), CPU of all processes
20.9 s and 27.6 s. Quieter (load 0.4-2.1 over the runs, best of 2, default dask
settings), two runs: one worker 17.61 s, two 9.75 s (**0.55**); one 17.38 s, two 10.28 s
(**0.59**; the target, <= 0.6, met in both); CPU of all processes 19.3-19.7 s for one
worker and 18.6-19.5 s for two, 149-217 MB moved in 18 transfers, each worker idle
0.4-0.9 s of the ~10 s (start 0.2, between tasks 0.4-0.6, tail 0.05-0.45: one chunk's
score is ~0.9 s, so the tail is the part that decides between 0.55 and 0.59). With the
workers' profiler off at load 5.0: 29.34 s and 18.76 s (0.64), loaded too much to say more.
A third quiet run, of the merged stop (load 1.9, best of 2): one worker 17.27 s, two
9.54 s (**0.55**); CPU of all processes 19.15 s and 18.45 s; 280 MB moved in 18 transfers.

Run as a script::

    PYTHONPATH=. python asv_bench/benchmarks/cluster.py --size 4096 --chunks 1024 --repeat 3
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

import dask

import xprospect as xp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peakmem_score import ELEMENTS, make_model, make_stack_store

WIDTHS = (8, 8, 16, 16)


def cluster(n_workers: int, worker_profile: bool = True) -> Any:
    """A process LocalCluster of ``n_workers`` single-threaded workers, and its client.

    ``worker_profile=False`` turns off each worker's statistical profiler (dask config
    ``distributed.worker.profile.enabled``, read by the worker processes when they start).
    """
    from distributed import Client, LocalCluster  # lazy: optional dependency

    with dask.config.set({"distributed.worker.profile.enabled": bool(worker_profile)}):
        lc = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit=None,
        )
    return lc, Client(lc, set_as_default=False)


def score_to_zarr(client: Any, stack_path: str, out: str, widths=WIDTHS) -> dict[str, float]:
    """Score the stack on ``client``'s cluster into ``out``; wall time and task time by prefix."""
    from distributed import get_task_stream  # lazy: optional dependency

    shutil.rmtree(out, ignore_errors=True)
    model = make_model(widths)
    moved = client.run(_received)
    cpu = _cpu_seconds()
    t0, t = time.time(), time.perf_counter()
    with client.as_current(), get_task_stream(client) as ts:
        stack = xp.open_zarr(stack_path, chunks={}).prospect.stack(ELEMENTS)
        job = stack.prospect.score(model, device="cpu", allow_no_card=True)
        xp.to_zarr(job, out, progress=False)
    spent: dict[str, float] = defaultdict(float)
    spent["wall"] = time.perf_counter() - t
    spent["cpu"] = _cpu_seconds() - cpu
    after = client.run(_received)
    spent["moved MB"] = sum(after[w][0] - moved.get(w, (0, 0))[0] for w in after) / 1e6
    spent["transfers"] = sum(after[w][1] - moved.get(w, (0, 0))[1] for w in after)
    computing: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for task in ts.data:
        prefix = str(task["key"]).strip("()'\"").split("-")[0]
        spent[f"tasks:{prefix}"] += 1
        for s in task["startstops"]:
            spent[f"{s['action']}:{prefix}"] += s["stop"] - s["start"]
            if s["action"] == "compute":
                computing[task["worker"]].append((s["start"], s["stop"]))
    for i, (_, spans) in enumerate(sorted(computing.items())):
        spent.update(_idle(sorted(spans), t0, t0 + spent["wall"], f"worker {i}"))
    return dict(spent)


def _idle(spans: list[tuple[float, float]], t0: float, t1: float, who: str) -> dict[str, float]:
    """A single-threaded worker's time without a task: before the first, between, after the last."""
    gaps = sum(max(0.0, b0 - a1) for (_, a1), (b0, _) in itertools.pairwise(spans))
    return {
        f"{who} idle:start": spans[0][0] - t0,
        f"{who} idle:between": gaps,
        f"{who} idle:tail": t1 - max(stop for _, stop in spans),
    }


def _received(dask_worker: Any) -> tuple[int, int]:
    """Bytes and count of the transfers a worker received from other workers so far."""
    log = dask_worker.transfer_incoming_log
    return sum(t["total"] for t in log), len(log)


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process (client, schedulers, nannies) and its
    children (the workers of both clusters)."""
    import psutil  # lazy: a dependency of distributed

    procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


class TwoWorkersOverOne:
    """Wall time of two single-threaded workers over one (target <= 0.6)."""

    params: ClassVar[list[int]] = [4096]
    param_names: ClassVar[list[str]] = ["size"]
    chunks = 1024
    number = 1
    repeat = 1
    timeout = 3600

    def setup(self, size):
        self.folder = tempfile.mkdtemp(prefix="xp-bench-cluster-")
        self.stack = os.path.join(self.folder, "stack.zarr")
        self.warm = os.path.join(self.folder, "warm.zarr")
        make_stack_store(self.stack, size, self.chunks)
        make_stack_store(self.warm, 2 * self.chunks, self.chunks)

    def teardown(self, size):
        shutil.rmtree(getattr(self, "folder", ""), ignore_errors=True)

    def track_two_over_one(self, size):
        best = side_by_side(self.stack, self.warm, self.folder, repeat=2)
        return best[2]["wall"] / best[1]["wall"]

    track_two_over_one.unit = "ratio"


def side_by_side(
    stack: str, warm: str, folder: str, repeat: int = 3, worker_profile: bool = True
) -> dict[int, dict]:
    """Best run (by wall time) of one and of two workers, interleaved (one, two, one...).

    Only the cluster being timed is alive: each run starts its cluster, warms it with the
    same job over the small store ``warm`` (same chunks, so the same tile shapes: torch and
    zarr imported, oneDNN's kernels made), times the job over ``stack`` and closes the
    cluster. An idle cluster left running beside the timed one is not idle: its scheduler
    loop and each worker's event loop (ticks, system monitor, heartbeats) took ~5 % of a
    core each, 10 % for the one-worker cluster, taken from the two cores the two-worker run
    needs.
    """
    best: dict[int, dict] = {}
    for _ in range(repeat):
        for n in (1, 2):
            lc, client = cluster(n, worker_profile)
            try:
                score_to_zarr(client, warm, os.path.join(folder, "warm-score.zarr"))
                r = score_to_zarr(client, stack, os.path.join(folder, f"score{n}.zarr"))
            finally:
                client.close()
                lc.close()
            if n not in best or r["wall"] < best[n]["wall"]:
                best[n] = r
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--chunks", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--no-worker-profile",
        action="store_true",
        help="turn off the workers' statistical profiler (see the module's notes)",
    )
    a = p.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="xp-bench-cluster-")
    stack = os.path.join(folder, "stack.zarr")
    warm = os.path.join(folder, "warm.zarr")
    make_stack_store(stack, a.size, a.chunks)
    make_stack_store(warm, 2 * a.chunks, a.chunks)
    try:
        best = side_by_side(stack, warm, folder, a.repeat, not a.no_worker_profile)
        print(
            f"dense small_cnn {WIDTHS} over 8 x {a.size}^2, chunks {a.chunks}, best of "
            f"{a.repeat} (wall), load {os.getloadavg()[0]:.1f}"
            + (", workers' profiler off" if a.no_worker_profile else "")
        )
        for n, r in best.items():
            tasks = {k: v for k, v in sorted(r.items()) if ":" in k and not k.startswith("tasks:")}
            busy = sum(v for k, v in tasks.items() if k.startswith("compute:"))
            counts = {k[6:]: int(v) for k, v in sorted(r.items()) if k.startswith("tasks:")}
            print(
                f"{n} worker(s): wall {r['wall']:.2f} s, workers busy {busy:.2f} s "
                f"({busy / (n * r['wall']):.0%} of {n} x wall); CPU of all processes "
                f"{r['cpu']:.2f} s; {r['moved MB']:.0f} MB moved between workers in "
                f"{r['transfers']:.0f} transfers"
            )
            idle = {k: v for k, v in tasks.items() if k.startswith("worker ")}
            print(
                "   seconds: "
                + ", ".join(f"{k} {v:.2f}" for k, v in tasks.items() if v >= 0.05 and k not in idle)
            )
            print("   idle: " + ", ".join(f"{k} {v:.2f}" for k, v in idle.items()))
            print(f"   tasks: {counts}")
        print(f"two over one: {best[2]['wall'] / best[1]['wall']:.2f} (target <= 0.6)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
