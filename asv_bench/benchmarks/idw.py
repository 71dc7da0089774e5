"""IDW gridding (``xprospect.grid.idw``) against the peers the issue names.

Every case uses k=12, power 2 and float32 output. The peers are scipy
``cKDTree.query(k=12, workers=-1)`` and ``pykdtree`` ``KDTree.query(k=12)``, each
followed by the same numpy inverse-distance weighting (``idw_peer``).

The out-of-core case (``OutOfCoreZarr``) writes a 25.6 GB (uncompressed) store and
is manual: it is skipped unless ``XPROSPECT_BENCH_OUTOFCORE=1`` is set. The script
``asv_bench/outofcore.py`` runs it once and reports wall time and peak RSS.

Run as a script, the module times xprospect and both peers side by side, interleaved
round by round (minimum of the rounds, with the load average)::

    PYTHONPATH=. python asv_bench/benchmarks/idw.py 2d:3072 3d:128 many:8 --repeat 3

Measured on the 2-core machine under load, 30 Nov (2-D tiles 16 x 32 searched in
16 x 16 sub-tiles), ``2d:3072 --repeat 3`` (load 3.4-6.7): xprospect 2.035 s wall /
3.73 s CPU, scipy 9.15x wall (6.44x CPU), pykdtree 7.59x wall (5.58x CPU). The whole
IDW kernel alone, 1 thread, CPU, interleaved best of 4 against the square tiles before
(load 8-10): 2.923 s vs 3.398 s (1.16x; 1.26x in a second run).

Quiet (load 1.0-1.5, same day, the merged stop), ``2d:3072 3d:128 --repeat 3`` and
``many:8 many:64 many:512 many:2048 --repeat 3 --peers pykdtree``: 2-D xprospect 1.778 s
wall / 3.235 s CPU, scipy 9.74x wall (7.20x CPU), pykdtree 8.07x (6.28x); 3-D 128^3
0.636 s / 1.155 s, scipy 7.44x (6.10x), pykdtree 5.82x (5.02x); 1e6 samples onto 8^2,
64^2, 512^2, 2048^2: 1.50x, 1.34x, 1.97x, 3.75x pykdtree (CPU 1.52x, 1.39x, 2.07x, 3.33x).

Loaded (load 4.1-6.6: five sessions on the 2 cores), same day, tiles cut into eight
ranges per thread, the same two commands: 2-D xprospect 3.448 s wall / 3.484 s CPU,
scipy 7.45x wall (7.28x CPU), pykdtree 6.34x (6.08x); 3-D 128^3 1.372 s / 1.328 s,
scipy 6.03x (6.11x), pykdtree 4.81x (4.51x); 1e6 samples onto 8^2, 64^2, 512^2, 2048^2:
1.62x, 1.42x, 2.24x, 3.85x pykdtree (CPU 1.65x, 1.23x, 2.28x, 4.04x). Not comparable
with the quiet figures above (xprospect had about one core of the two).

Quiet (load 0.5-1.6, 30 Nov, the next stop merged: tiles cut into eight ranges per
thread), the same two commands: 2-D xprospect 1.772 s wall / 3.306 s CPU, scipy 10.21x
wall (7.39x CPU; scipy 18.09 s), pykdtree 8.50x (6.46x); 3-D 128^3 0.703 s / 1.344 s,
scipy 7.54x (6.03x), pykdtree 6.13x (5.09x); 1e6 samples onto 8^2, 64^2, 512^2, 2048^2:
1.47x, 1.37x, 2.30x, 4.00x pykdtree (CPU 1.47x, 1.41x, 2.20x, 3.59x). xprospect's own 2-D
time is the same as the stop before (1.772 vs 1.778 s); the 2-D ratio moved with scipy's
time (17.32 -> 18.09 s), so 10x wall holds in this run, not by a margin.

Loaded (load 4.4-6.8: other sessions on the 2 cores), 1 Dec, the next stop: each cell's k-th
distance is bounded by the cell beside it (``d_k(p) + |q - p|`` with ``p`` one step back
along x, else y, else z) instead of by the last cell searched, which lies a row away at
every row start; and 3-D tiles stop at 8 voxels (were 12 at 128^3). Candidates scanned per
cell fell from 101 to 84 (3-D, 12^3 tiles) and 49 to 42 (1e6 onto 2048^2), those inside the
starting bound from 27.4 to 16.7 and 25.3 to 19.2. ``grid_idw`` end to end, 2 threads,
main's kernel and tile plan swapped against this one's in one process, 8 interleaved rounds,
bitwise equal (load 5.8-6.2): 3-D 128^3 wall min 1.688 -> 1.529 s (0.91x; median 0.87x), CPU
min 1.110 -> 0.991 s (0.89x; median 0.85x); 1e6 onto 2048^2 wall 4.081 -> 4.165 s, CPU 2.625
-> 2.777 s (1.02-1.06x: no gain). Again at load 2.1-4.5: 3-D wall min 1.726 -> 1.467 s
(0.85x; median 0.82x), CPU 1.144 -> 1.010 s (0.88x; median 0.81x); 1e6 CPU 2.787 -> 2.701 s
(0.97x; median 0.94x), within the noise. The kernel alone, 1 thread, CPU, best of 8: 3-D
1.120 -> 0.984 s (0.88x, load 6.8); the bound alone, 12^3 tiles, 0.96x; cubes of 8 and 9
alike, 10 0.95x, 14 1.04x, 16 1.11x; at 64^3 cubes of 5 and 6 alike, 8 1.03x; 5,000 uniform
samples onto 128^3 (load 2.4, best of 5, bitwise equal) 1.038 -> 0.923 s (0.89x; median
0.80x). This script under the same load (one tree after the other, not interleaved): 3-D
scipy 6.33x (main) and 8.70x, but CPU 6.26x and 6.13x; at load 2.7, ``3d:128 --repeat 3
--peers scipy`` run new, main, new, main: 11.45x, 6.68x, 7.09x, 6.14x wall (CPU 7.32x,
5.97x, 7.08x, 5.57x); ``many:2048 --peers pykdtree`` (load 2.6-3.0) 3.47x main, 3.39x new
(CPU 3.15x, 3.47x). At these loads the script's figures move more than the change: the 8x
(3-D) and 5x (1e6) targets wait for a quiet rerun; 5x is not in reach of this change.

Tried and not kept (bitwise equal, none faster): a tighter start bound from the farthest of
the cell beside it's k neighbours (13.7 instead of 16.7 candidates inside it, 3-D kernel no
faster, 2-D 1.01x); with the new bound, 2-D tiles 5 x 10, 7 x 14 and 8 x 16 (1.00x, 1.04x,
1.00x of 6 x 12); a two-pass (radix) bucket sort of the 1e6 samples, by the low then the
high bits of the bucket (0.26-0.28 s against 0.16-0.28 s CPU for the one-pass counting sort,
a single-threaded step of some 15 % of the case's 1.6-1.7 s quiet wall time).

Where the time goes (kernel, 1 thread): the neighbour search is 76 % (3-D) and 83 % (1e6) of
it, and most of that is the selection pass of ``_nearest`` (duplicating it added 0.78 s to
0.93 s in 3-D and 1.63 s to 2.29 s with 1e6 samples); sorting candidates into shells about
0.13 s of either.

Quiet rerun (load 1.1-1.6, 1 Dec, the merged stop; main's tree run between the two 3-D runs
of this one): ``2d:3072 3d:128 --repeat 3``, then ``3d:128 --repeat 3`` on main and again
here, then ``many:8 many:64 many:512 many:2048 --repeat 3 --peers pykdtree``. 3-D 128^3:
xprospect 0.501 / 0.492 s wall (0.968 / 0.954 s CPU) against main's 0.658 s (1.251 s CPU):
scipy **9.44x / 9.50x** wall (CPU 7.32x / 7.28x), main 8.13x in the same session (CPU
6.52x); pykdtree 6.46x / 8.73x. 2-D 3072^2: 1.339 s / 2.607 s CPU, scipy **11.45x** (CPU
7.90x), pykdtree **9.27x** (CPU 6.69x). 1e6 samples onto 8^2, 64^2, 512^2, 2048^2: 1.47x,
1.23x, 2.24x, **4.15x** pykdtree (CPU 1.41x, 1.30x, 2.11x, 3.72x): the 5x target is not met.
``asv_bench/jit.py demo --cold-only`` main / this, alternated twice (load 0.4-1.1): 10.7 /
11.9 s and 11.8 / 10.1 s CPU (a first run straight after the benchmarks read 15.7 s).

The bucket sort in two cache-friendly scatters (1 Dec, this stop): the one-pass counting
sort wrote each of the 1e6 samples (3 coordinates, 4 values: 56 bytes) to a random place in
56 MB, a cache miss or two per sample. Now the buckets are cut into parts of about 1 MB of
samples (runs of whole buckets in bucket order): the samples go first to their part's run
(about 56 write streams), then are sorted by bucket within each run, in cache; both steps
keep the samples' order, so the sorted arrays are the same bits. From the main thread both
steps run on numba's threads (the pool of :func:`run_tasks`), about eight ranges per
thread: of samples for the first, of parts for the second. The second step sorts each run
in place through a scratch copy of it (reused from part to part, so in cache): no second
array of every sample to allocate and first-touch (``bucket_points`` CPU min 119 -> 106 ms
and 110 -> 87 ms against sorting into new arrays, two interleaved runs of 15 at load
2.6-3.2; the figures below before this unless said). ``bucket_points`` also returns the
extent, so ``plan_tiles`` no longer measures it again. ``bucket_points`` alone, 1e6 samples
x 4 (one range per thread then), main's against this one's in one process, interleaved best
of 11 (load 3.8-4.0, other sessions on both cores): main 238 ms wall / 144 ms CPU (medians
294 / 195), one thread 96 / 81 ms (152 / 101), two threads 136 / 94 ms (206 / 133); earlier
at load 3.0: main 250 / 170, one thread 153 / 100, two threads 160 / 106. One thread, the
steps: bucket ids 12 ms, scatter to the parts 36 ms, sort within the parts 34 ms (each with
the first touch of its output). Parts of 256 KB to 4 MB all alike (90-92 ms CPU). With the
other sessions on both cores, two threads cannot show their wall time; their critical path
can (the calling thread's CPU plus, per step, the most CPU one pool thread spent: the wall
time on idle cores), best of 11 at load 3.9-4.3: one thread 90 ms (median 127), two threads
61 ms (71), the three steps' CPU 84 ms on one thread and 96 ms on two. Not confirmed by a
quiet wall-time run. ``grid_idw`` end to end (one range per thread), main's
``bucket_points`` and ``plan_tiles`` swapped against these in one process, 6 interleaved
rounds, maps bitwise equal (load 3.1-4.6): 1e6 onto 2048^2 wall min 4.810 -> 3.171 s
(medians 5.258 -> 4.788), CPU 3.242 -> 3.178 s (3.390 -> 3.244); onto 512^2 1.155 -> 0.903
s wall, 0.729 -> 0.612 s CPU; onto 64^2 and 8^2, 3-D 128^3 and 2-D 3072^2 (7,000 samples:
one part, no threads) unchanged within the noise (CPU min 0.222 / 0.216, 0.215 / 0.202,
1.331 / 1.307, 3.927 / 4.031 s). Maps bitwise equal to main's tree (both trees run in turn,
170 arrays compared) on 14 cases: 1e6 onto 64^2 and 2048^2; 7,000 x 16 onto 1024^2 with
k=12, k=7 power 1.5, a radius, k=12 within a radius with min_points 3, anisotropy; dask
chunks; duplicated samples with missing values; predict at points; 3-D 64^3 k=12 and k=7
power 1.5; kriging 2-D and 3-D. This script, ``many:2048 --repeat 3 --peers pykdtree``,
main's tree and this one in turn twice (load 3.6-5.2): xprospect CPU 3.333, 3.308 s (main)
against 3.135, 3.110 s; again with eight ranges per thread (load 2.1-3.3): main 2.938 s
wall / 3.005 s CPU (3.61x pykdtree wall, 3.49x CPU) and 2.926 / 2.925 s (3.42x, 3.38x),
this one 1.755 / 3.230 s (**5.15x**, 3.58x) and 2.880 / 2.886 s (3.93x, 3.86x). The wall
times and ratios swing with the load (xprospect's wall time mostly equal to its CPU time:
one core of the two), so the 5x target waits for a quiet run. With eight ranges per thread,
``grid_idw`` end to end as above, 8 rounds (load 2.1-2.5): 1e6 onto 2048^2 wall min 1.934
-> 1.713 s (medians 3.280 -> 2.480), CPU 3.280 -> 3.086 s (3.397 -> 3.195); 6 rounds (load
2.7-3.4): onto 512^2 0.677 -> 0.525 s wall, 0.687 -> 0.616 s CPU; 64^2, 8^2 and 3-D 128^3
alike (CPU 0.234 / 0.237, 0.181 / 0.176, 1.332 / 1.288 s). ``bucket_points`` alone at load
2.2-2.4, best of 15: main 139 ms wall / 139 ms CPU (medians 234 / 234), one thread 79 / 79
(123 / 121), two threads 67 / 119 (89 / 144): two threads buy wall time with CPU. Last,
with the in-place step, ``bucket_points`` alone at load 3.0, best of 11: main 141 ms wall /
139 ms CPU (medians 409 / 199), one thread 133 / 83 (218 / 112), two threads 127 / 114 (197
/ 124). The final tree, ``grid_idw`` end to end as above, 8 rounds (load 1.5-2.2): 1e6 onto
2048^2 wall min 2.180 -> 2.886 s but medians 3.321 -> 3.167 s, CPU 3.136 -> 2.942 s (3.556
-> 3.312): the wall times follow the other session's load. ``bucket_points`` alone (load
2.3, best of 11): main 164 / 164 ms, one thread 72 / 72, two threads 97 / 107; critical
path at load 2.1 (another session on one core), best of 11: one thread 114 ms, two 90 ms,
for 106 against 120 ms of CPU. So the threads' wall-time gain on idle cores (some 25-30 ms)
is estimated, not measured, and with another session on a core they lose; ``PARALLEL_SORT``
(the fewest samples sorted on threads) turns them off.

Tried and not kept: sorting without the stored bucket ids (recomputed in each step from the
coordinates: 94 against 73 ms CPU min, slower); the first step writing one record per
sample (coordinates, values and bucket in 64 bytes: one write stream per part, not three;
93 against 78 ms CPU min, slower); building the fit's (n, 4) value table by ``np.stack``,
from a transposed copy or in blocks (13-19 ms, all alike the column fill).

Measured together and not merged (1 Dec, branch ``idw17b``): a ranked selection for 2-D
cells far from their sub-tile's centre (a tighter first bound ``d_k(p) + 0.35 step``, the
candidates within it copied to a short list without branching and each placed by its rank
counted against the others), with ``knn_tile`` compiled twice (with and without it). The
kernel alone, 1 thread: 1e6 onto 2048^2 0.83x of main's CPU, bitwise equal on 15 cases. But
its cold compile does not fit the JIT target: ``asv_bench/jit.py demo --cold-only`` read
33.8 and 27.6 s CPU (``knn_tile`` alone 25.3 and 20.8 s) against main's 10.8 s in the same
quiet run (load 1.1-1.4). End to end that run read, ``many:2048 --peers pykdtree``: 1.198 /
1.045 s with both branches against main's 1.310 s (3.84x / 4.54x pykdtree against 3.44x:
pykdtree itself ran at 4.5-4.7 s, not 6.9 s as the stop before). Not kept.

Quiet reruns of the stop (1 Dec, 04:43-04:52, load 0.4-1.8; this tree = the bucket sort
above; the machine ran slower than an hour before: main's own cold compile read 10.8 s at
04:39 and 16.6 / 17.3 s at 04:49-04:51), one command after another:
``many:512 many:2048 --repeat 3 --peers pykdtree`` this / main / this: 2048^2 1.689 / 1.862
/ 1.679 s wall (3.206 / 3.319 / 3.227 s CPU), **4.11x / 3.67x / 4.21x** pykdtree (CPU 3.51x /
3.32x / 3.53x); 512^2 0.351 / 0.526 s, 2.36x / 1.52x. ``2d:3072 3d:128 --repeat 3`` (this
tree): 2-D 1.864 s, scipy 9.94x, pykdtree 8.65x; 3-D 0.607 s, scipy 9.02x, pykdtree 7.20x.
``asv_bench/jit.py demo --cold-only`` main / this alternated twice: 17.3 / 16.4 s and 16.6 /
16.2 s CPU (this tree's sort kernels ``_sort_parts`` 1.0 s and ``_bucket_ids`` 0.5 s
against ``_counting_sort`` 0.8-0.9 s): no change in compile time from this stop; the 15 s
figure depends on the machine's phase (main 10.1-11.9 s in the stop before). The 5x
pykdtree target at 1e6 onto 2048^2 is not met (4.11-4.21x).

The ranked selection of ``idw17b`` merged as a kernel of its own (1 Dec, branch ``idw18``,
loaded machine throughout: load 2.8-5.5, other sessions on both cores, so xprospect's wall
time is mostly its CPU time). ``knn_tile`` and ``knn_tile_ranked`` are built from one
closure whose ``ranked`` flag numba prunes before typing, and ``idw_ranked_task`` runs only
where ``plan_tiles`` says ranking pays: 2-D sub-tile corners further than 0.2 d_k from their
centre, on lattices of 512^2 cells or more (never the demo's or the tests'). Maps bitwise
equal to main's tree (both trees run in turn, 178 arrays: 7,000 x 16 onto 1024^2 k=12, k=7
power 1.5, anisotropy; onto 256^2 a radius with min_points 3 and every sample within a
radius; dask chunks (300, 377) against numpy onto 1000^2; 500 query points; 5,000 clustered
3-D onto 64^3 and 128^3, k=7 power 1.5 at 64^3; kriging 2-D and 3-D; 1e6 onto 2048^2), again
with the ranked search forced on every lattice (``RANK_CELLS = 0``). The kernel alone, 1
thread, CPU, main's task module loaded beside this one in one process, interleaved (best of
5, 5, 7): 1e6 onto 2048^2 ranked 2.083 / 2.002 / 1.902 s against main's 2.739 / 2.377 /
2.392 s (**0.76x / 0.84x / 0.80x**, load 1.5-3.9; the plain task as merged 1.04x there, in
two earlier cuts 1.01x and 1.11x); onto 512^2 0.89x (best of 7, load 5.2); 7,000 onto 3072^2
ranked 1.11x, plain 0.96x; 3-D 128^3 ranked 1.09x, plain 0.97x / 1.02x (so 3-D and sparse
2-D keep the plain search). ``many:2048 --repeat 3 --peers pykdtree``, this / main / this /
main (load 2.9-3.8): xprospect 2.726 / 2.920 / 2.786 / 3.140 s wall (CPU 2.719 / 2.914 /
2.735 / 3.080 s), pykdtree 3.57x / 3.81x / 3.83x / 3.51x (pykdtree itself 9.7-11.1 s); an
earlier pair (load 4.1-5.5) 2.398 / 2.718 s, 3.77x / 3.70x, and this again 2.230 s, 4.45x; a
last pair, main then this (load 2.3-4.3): 2.771 / 2.480 s (CPU 2.732 / 2.425), 3.38x /
3.69x. The full test suite passes (1007 passed, 18 skipped: real data, pyvista, pykrige). So
the case's time falls some 7-12 % end to end (the kernel is most but not all of it): from
main's quiet 1.64-1.69 s (4.1-4.2x) that is about 4.5x; **5x is not shown** (no quiet run
here). ``2d:3072 3d:128 many:8 many:64 many:512 --repeat 3``, this then main (load 4.5-5.6):
2-D 3.396 / 3.414 s (CPU 2.908 / 3.320), 3-D 1.331 / 1.253 s (1.291 / 1.243; the kernel
alone 1.02x, noise), many:8 0.191 / 0.175, many:64 0.209 / 0.180 (CPU 0.162 / 0.170, 0.197 /
0.179; kernels alike, 0.017 s), many:512 0.415 / 0.564 s (ranked). Cold compile,
``asv_bench/jit.py demo --cold-only`` alternated (this / main): 13.1 / 14.6 s and 14.8 /
14.6 s CPU (load 3.1-4.9; ``knn_tile`` 4.0-5.3 s against 5.3-6.1 s, ``idw_task`` 2.8 s plus
the shared ``_idw_cells`` 1.0-1.2 s against 4.0-4.1 s; ``knn_tile_ranked`` not compiled).
Its first cut, ranked code inlined into ``knn_tile`` behind a ``False`` argument, read 20.9
/ 24.4 s (``knn_tile`` 10.9 / 12.9 s): numba types, lowers and optimises a dead branch
unless it is pruned before typing, and ``_idw_cells`` inlined in both tasks cost
``idw_task`` about 1 s more. The cold first call of 1e6 onto 2048^2 (a fresh
``NUMBA_CACHE_DIR``, first call CPU less second call CPU), this / main / this / main (load
5.3-5.4): 21.5 / 16.4 / 16.6 / 16.8 s: that lattice compiles only the ranked search, so
about what main compiles.

Quiet rerun (1 Dec 07:21-07:28, load 0.3-1.6, nothing else running; the merged stop against
main ``708918a``), ``many:2048 --repeat 3 --peers pykdtree`` run this / main / this, twice:
this 1.409 / 1.253 s wall (2.643 / 2.327 s CPU), **4.54x / 5.24x** pykdtree (CPU 3.91x /
4.61x); main 1.517 s (2.866 s CPU), 4.14x (3.55x); again this 1.408 / 1.372 s, 4.55x /
4.31x (CPU 3.93x / 3.93x), main 1.571 s, 3.93x (3.42x). The case runs 8-17 % faster than
main's in the same runs; 5x is reached in one run of four, so not reliably met.
``asv_bench/jit.py demo --cold-only``, this then main: 13.2 / 11.9 s CPU (38.6 / 30.7 s
wall), both under the 15 s target (``knn_tile`` 4.1 / 4.2 s, ``idw_task`` 2.5 / 3.4 s plus
the shared ``_idw_cells`` 0.9 s here).

A cheaper ranked selection (1 Dec, branch ``idw19``; the tree before it is main ``e8ca652``,
copied aside and run in turn, each in its own process). What the 1e6 case spends: 4.2M
cells, 87.5 % of them ranked (the rest, near their sub-tile's centre, insert in turn); a
ranked cell scans 36.6 candidates for the guessed bound and keeps 14.6, 13.7 % of them need
the second, loose bound; 144 candidates gathered per tile, 160 retries in all. Doubling one
step at a time (the kernel alone, 1 thread, about 1.0 s CPU then) put the ranking at about
0.19 s, the distances and compaction at 0.17 s, the IDW of the cells 0.16 s, the shells 0.05
s, writing tiles out 0.03 s, gathering next to nothing. Kept, each measured on the kernel
alone, 1 thread, CPU, 1e6 samples onto 2048^2, best of 4 per process, processes interleaved,
maps bitwise equal: (1) a rank counts the shorter distances only (one comparison per pair,
not three); equal distances share a rank and so leave one unused, found by a bit mask, and
only then is the list ranked again with ties broken by row: 1.05-1.07 s against 1.10-1.11 s;
(2) 2-D tiles ``TILE_2D`` 1.75 d_k (7 x 14 here, were 6 x 12): 1.02-1.03 against 1.05-1.06 s
(5 x 10 slower, 8 x 16 alike); (3) fewer square roots per cell (the k-th distance of the
cell just searched is kept, ``_reach`` takes the bound, not its square): 1.00-1.01 against
1.02-1.07 s; (4) every ranked candidate written to slot ``min(rank, k)`` of ``k + 1``
instead of behind a branch on ``rank < k`` that mispredicted for most of those left out:
0.90-0.93 against 0.99-1.01 s (a microbenchmark of the ranking: 66 against 106 ns a cell, 40
of them reading its input); (5) the IDW weights in a loop of their own and, up to
``SMALL_NE`` elements, each element's sum in a register: 0.886 against 0.904 s (best of 16
in 4 processes; medians per process 0.93-0.96 against 0.95-0.98). In all 1.10 -> 0.89 s
(0.81x); last, the committed tree against main, this / main / this / main (load 1.1): 0.899
/ 1.104 / 0.902 / 1.136 s. Maps bitwise equal to main's on 233 arrays (the 14 cases listed
above, 1e6 onto 64^2, 512^2 and 2048^2, duplicated samples with missing values, and the
ranked search forced on 7,000 x 16 onto 1024^2, on a radius with min_points 3, on the
duplicates and on samples on a lattice, full of ties).

``many:2048 --repeat 3 --peers pykdtree``, this / main / this / main: quiet (load 0.3-0.9,
11:11 UTC) xprospect 0.553 / 0.702 / 0.553 / 0.672 s wall (1.044 / 1.325 / 1.025 / 1.264 s
CPU), **5.92x / 4.68x / 5.94x / 4.84x** pykdtree (CPU 4.98x / 3.94x / 5.09x / 4.09x;
pykdtree 3.25-3.29 s); again at 11:18 (load 0.7-1.3, the final tree), this / main / this:
0.542 / 0.724 / 0.555 s, **6.05x / 4.53x / 5.88x** (CPU 5.11x / 3.80x / 5.00x); at load
1.0-1.4: 5.82x / 4.83x / 5.28x / 4.03x; at load 1.2-1.5 (before (5)): 5.12x / 4.95x / 5.62x
/ 5.19x; at load 3.5-3.7 (before (5)), this / main / this: 4.79x / 4.01x / 5.10x. So 5x
holds in quiet runs with a margin (0.553 s against the 0.65 s it needs), and under load it
is not guaranteed. ``2d:3072 3d:128 many:8 many:64 many:512 --repeat 3 --peers pykdtree``,
main then this (load 0.4-1.0): 2-D 0.903 / 0.882 s wall (CPU 1.757 / 1.697), 3-D 0.310 /
0.315 s (CPU 0.604 / 0.611), many:8 0.079 / 0.084, many:64 0.076 / 0.083, many:512 0.151 /
0.140 s (CPU 0.256 / 0.219); many:8 and many:64 again, ``--repeat 7``, this / main / this /
main (load 0.1-0.3): 0.082 / 0.077 / 0.081 / 0.083 s and 0.078 / 0.081 / 0.082 / 0.080 s:
alike. ``asv_bench/jit.py demo --cold-only``, this / main / main / this: 5.7 / 5.1 / 5.0 /
5.6 s CPU (``knn_tile`` 2.3 against 1.9-2.0 s).

Tried and not kept (bitwise equal, none faster): the ranked selection's first bound from the
farthest of the previous cell's k neighbours (at least k within it, no second pass;
1.27-1.29 against 1.10 s, ranking every cell and only the far ones alike); the short list
padded with infinities to 16 or 32 for a fixed trip count (1.72 s); the distances fused into
the compaction (1.08-1.09 against 1.05-1.07 s); ``GUESS`` 0.25, 0.3, 0.4 alike, 0.5 slower;
``RANK_FROM`` 0 (every cell ranked) and ``WIDE_2D`` 3 alike; the bound also from the cell
above (the smaller of the two) no faster; counting four ranks at a time in registers (a
microbenchmark: alike).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import tempfile
import time
from typing import ClassVar

import dask
import numba
import numpy as np
import xarray as xr

import xprospect as xp

K = 12
POWER = 2.0
N_SAMPLES_2D = 7000  # x 16 elements (the synthetic survey's default set)
N_SAMPLES_3D = 5000
N_ELEMENTS_3D = 12
CUBE = 1280.0  # edge of the 3-D block (m)
CUBE_ORIGIN = (500_000.0, 6_200_000.0, -CUBE)  # x, y, z of its lower corner
CRS = "EPSG:32750"
PEER_BATCH = 1 << 16  # grid nodes per peer query batch (keeps the peers' memory bounded)
OUTOFCORE_ENV = "XPROSPECT_BENCH_OUTOFCORE"


# ---- data --------------------------------------------------------------------------------------


def survey_2d(n_samples: int = N_SAMPLES_2D) -> xp.synthetic.SurveyWorld:
    """The synthetic 60 km survey (16 elements)."""
    return xp.synthetic.survey(seed=0, n_samples=n_samples)


def grid_2d(world, size: int, chunks=None) -> xr.Dataset:
    """A ``size`` x ``size`` template over the survey (3072 -> 19.53 m cells)."""
    width = world.bounds[2] - world.bounds[0]
    return xp.make_grid(world.bounds, resolution=width / size, crs=world.crs, chunks=chunks)


def samples_3d(
    n_samples: int = N_SAMPLES_3D, n_elements: int = N_ELEMENTS_3D, seed: int = 0
) -> xr.Dataset:
    """Clustered 3-D samples in a 1280 m cube with correlated lognormal values.

    90 % of the points sit in 25 Gaussian clusters (sigma 60 m, like drilled
    targets), 10 % are scattered uniformly.
    """
    rng = np.random.default_rng(seed)
    n_scatter = n_samples // 10
    centres = rng.uniform(0.1 * CUBE, 0.9 * CUBE, (25, 3))
    which = rng.integers(0, len(centres), n_samples - n_scatter)
    pts = np.vstack(
        [
            rng.uniform(0, CUBE, (n_scatter, 3)),
            centres[which] + rng.normal(0, 60.0, (which.size, 3)),
        ]
    )
    pts = np.clip(pts, 0, CUBE) + np.asarray(CUBE_ORIGIN)
    common = rng.normal(0, 1, n_samples)  # a shared factor: elements correlate
    data = {}
    for e in range(n_elements):
        loading = 0.3 * rng.uniform(0.3, 1.0)
        logc = rng.uniform(-1, 2) + loading * common + rng.normal(0, 0.2, n_samples)
        data[f"E{e:02d}"] = ("sample", 10**logc, {"units": "ppm"})
    ds = xr.Dataset(
        data,
        coords={"x": ("sample", pts[:, 0]), "y": ("sample", pts[:, 1]), "z": ("sample", pts[:, 2])},
    )
    return ds.rio.write_crs(CRS)


def voxels_3d(size: int, chunks=None) -> xr.Dataset:
    """A ``size``^3 voxel template over the cube (128 -> 10 m voxels)."""
    x0, y0, z0 = CUBE_ORIGIN
    return xp.make_voxels(
        (x0, y0, z0, x0 + CUBE, y0 + CUBE, z0 + CUBE),
        resolution=CUBE / size,
        crs=CRS,
        chunks=chunks,
    )


# ---- the code under test and its peers ---------------------------------------------------------


def idw_xprospect(samples: xr.Dataset, like: xr.Dataset) -> xr.Dataset:
    """``xp.grid_idw``, computed with the threaded scheduler when the template is chunked."""
    out = xp.grid_idw(samples, like=like, k=K, power=POWER, dtype="float32")
    return out.compute(scheduler="threads")


_WARM = False


def warm_jit() -> None:
    """Compile (or load from cache) the kernels once (numpy and dask paths)."""
    global _WARM
    if _WARM:
        return
    world = xp.synthetic.survey(seed=1, n_samples=50, elements=["Au"])
    idw_xprospect(world.samples, grid_2d(world, 8))
    idw_xprospect(world.samples, grid_2d(world, 8, chunks=4))
    _WARM = True


def peer_inputs(samples: xr.Dataset, like: xr.Dataset):
    """Sample points, values (n, ne) and node coordinates, columns in grid-dims order."""
    dims = ("z", "y", "x") if "z" in like.dims else ("y", "x")
    names = [n for n, v in samples.data_vars.items() if v.dims == ("sample",)]
    pts = np.column_stack([samples[d].values for d in dims]).astype("float64")
    vals = np.column_stack([samples[n].values for n in names]).astype("float64")
    coords = [like[d].values.astype("float64") for d in dims]
    return pts, vals, coords, names


def idw_peer(
    query, pts: np.ndarray, vals: np.ndarray, coords, power: float = POWER, dtype="float32"
) -> np.ndarray:
    """IDW of every column of ``vals`` at every grid node: ``query(q) -> (d, i)`` + numpy.

    Coincident samples (d == 0) give their mean, as in xprospect. Returns an array
    (n_elements, *grid shape).
    """
    shape = tuple(c.size for c in coords)
    ne = vals.shape[1]
    out = np.empty((ne, *shape), dtype=dtype)
    flat = out.reshape(ne, -1)
    n = flat.shape[1]
    for s in range(0, n, PEER_BATCH):
        e = min(s + PEER_BATCH, n)
        sub = np.unravel_index(np.arange(s, e), shape)
        q = np.column_stack([c[i] for c, i in zip(coords, sub, strict=True)])
        d, idx = query(q)
        with np.errstate(divide="ignore"):
            w = 1.0 / (d * d) if power == 2.0 else d**-power
        zero = d == 0.0
        hit = zero.any(axis=1)
        if hit.any():
            w[hit] = zero[hit]
        w /= w.sum(axis=1, keepdims=True)
        flat[:, s:e] = (w[:, None, :] @ vals[idx])[:, 0].T
    return out


def idw_scipy(pts, vals, coords) -> np.ndarray:
    """Peer: scipy ``cKDTree(pts).query(q, k=12, workers=-1)`` + numpy weighting."""
    from scipy.spatial import cKDTree

    tree = cKDTree(pts)
    return idw_peer(lambda q: tree.query(q, k=K, workers=-1), pts, vals, coords)


def idw_pykdtree(pts, vals, coords) -> np.ndarray:
    """Peer: ``pykdtree.kdtree.KDTree(pts).query(q, k=12)`` (OpenMP) + numpy weighting."""
    from pykdtree.kdtree import KDTree

    tree = KDTree(pts)
    return idw_peer(lambda q: tree.query(q, k=K), pts, vals, coords)


# ---- the asv cases ------------------------------------------------------------------------------


class _Case:
    """asv settings shared by every case; ``case(size)`` gives (samples, template)."""

    param_names: ClassVar[list[str]] = ["size"]
    number = 1
    repeat = (1, 3, 60.0)
    timeout = 600

    def case(self, size):
        raise TypeError(f"{type(self).__name__} names no case")


class _Ours(_Case):
    """``grid_idw`` on the case (warm JIT)."""

    def setup(self, size):
        warm_jit()
        self.samples, self.like = self.case(size)

    def time_grid_idw(self, size):
        idw_xprospect(self.samples, self.like)


class _Peers(_Case):
    """scipy cKDTree and pykdtree on the case, + numpy weighting."""

    def setup(self, size):
        self.pts, self.vals, self.coords, _ = peer_inputs(*self.case(size))

    def time_scipy_ckdtree(self, size):
        idw_scipy(self.pts, self.vals, self.coords)

    def time_pykdtree(self, size):
        idw_pykdtree(self.pts, self.vals, self.coords)


class _Case2D:
    params: ClassVar[list[int]] = [1024, 3072]
    n_samples = N_SAMPLES_2D
    chunks: int | None = None

    def case(self, size):
        world = survey_2d(self.n_samples)
        return world.samples, grid_2d(world, size, self.chunks)


class _Case3D:
    params: ClassVar[list[int]] = [64, 128]
    n_samples = N_SAMPLES_3D

    def case(self, size):
        return samples_3d(self.n_samples), voxels_3d(size)


class IDW2D(_Case2D, _Ours):
    """``grid_idw`` of 7,000 samples x 16 elements onto size^2 (numpy path, in memory)."""

    def peakmem_grid_idw(self, size):
        # whole-process RSS: interpreter, imports and samples included;
        # the output alone is 16 * size^2 * 4 bytes (604 MB at 3072)
        idw_xprospect(self.samples, self.like)


class IDW2DDask(IDW2D):
    """The same on a template chunked 1024 x 1024, computed with the threaded scheduler."""

    chunks = 1024


class IDW2DPeers(_Case2D, _Peers):
    """The peers on the same 2-D case: scipy cKDTree and pykdtree, + numpy weighting."""


class IDW3D(_Case3D, _Ours):
    """``grid_idw`` of 5,000 clustered samples x 12 elements onto size^3 voxels (numpy path)."""

    def peakmem_grid_idw(self, size):
        idw_xprospect(self.samples, self.like)


class IDW3DPeers(_Case3D, _Peers):
    """The peers on the same 3-D case."""


# ---- many samples ------------------------------------------------------------------------------


N_MANY = 1_000_000
MANY_EXTENT = 60_000.0
MANY_ORIGIN = (500_000.0, 6_200_000.0)


def many_samples(n_samples: int = N_MANY, n_elements: int = 4, seed: int = 0) -> xr.Dataset:
    """``n_samples`` uniform samples over a 60 km square with lognormal values."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, MANY_EXTENT, (n_samples, 2)) + np.asarray(MANY_ORIGIN)
    data = {f"E{e:02d}": ("sample", rng.lognormal(size=n_samples)) for e in range(n_elements)}
    coords = {"x": ("sample", pts[:, 0]), "y": ("sample", pts[:, 1])}
    return xr.Dataset(data, coords=coords).rio.write_crs(CRS)


def many_grid(size: int) -> xr.Dataset:
    """A ``size`` x ``size`` template over the 60 km square (coarse to fine)."""
    x0, y0 = MANY_ORIGIN
    return xp.make_grid(
        (x0, y0, x0 + MANY_EXTENT, y0 + MANY_EXTENT), resolution=MANY_EXTENT / size, crs=CRS
    )


class _CaseMany:
    params: ClassVar[list[int]] = [8, 64, 512, 2048]
    n_samples = N_MANY

    def case(self, size):
        return many_samples(self.n_samples), many_grid(size)


class IDWManySamples(_CaseMany, _Ours):
    """1,000,000 samples x 4 elements onto coarse to fine grids (tiles sized from density)."""


class IDWManySamplesPeers(_CaseMany, _Peers):
    """The peers on the same cases (pykdtree leads scipy on coarse grids)."""


# ---- out of core -------------------------------------------------------------------------------


def grid_to_zarr(
    samples: xr.Dataset,
    like: xr.Dataset,
    path: str,
    *,
    mask: bool = True,
    scheduler: str = "threads",
    num_workers: int | None = None,
) -> None:
    """Grid onto a chunked template and stream the blocks into a zarr store.

    ``mask=False`` drops the template's study-area ``mask`` and passes its chunks to
    ``grid_idw`` instead. (Before the mask was applied inside each IDW block, a
    separate ``where`` made the threaded scheduler hold most blocks in memory; both
    paths are kept to show they now stream alike.)
    """
    kw = {}
    if not mask:
        kw["chunks"] = dict(like["mask"].chunksizes)
        like = like.drop_vars("mask")
    maps = xp.grid_idw(samples, like=like, k=K, power=POWER, dtype="float32", **kw)
    with dask.config.set(scheduler=scheduler, num_workers=num_workers):
        maps.to_zarr(path, mode="w", consolidated=False, compute=True)


class OutOfCoreZarr:
    """Manual: 16 elements onto 20,000^2 (25.6 GB as float32) streamed to zarr.

    Skipped unless ``XPROSPECT_BENCH_OUTOFCORE=1``; e.g.
    ``XPROSPECT_BENCH_OUTOFCORE=1 asv run --python=same --bench OutOfCore``.
    Target: peak RSS < 4 GB. ``mask=True`` is the plain path (template chunked by
    ``make_grid``, with its mask); ``mask=False`` passes the chunks without a mask.
    """

    params: ClassVar[list[bool]] = [True, False]
    param_names: ClassVar[list[str]] = ["mask"]
    size = 20_000
    chunks = 2048
    n_samples = N_SAMPLES_2D
    number = 1
    repeat = 1
    rounds = 1
    timeout = 3600
    store: str | None = None

    def setup(self, mask):
        if os.environ.get(OUTOFCORE_ENV) != "1":
            raise NotImplementedError(f"manual benchmark: set {OUTOFCORE_ENV}=1 to run it")
        warm_jit()
        world = survey_2d(self.n_samples)
        self.samples = world.samples
        self.like = grid_2d(world, self.size, self.chunks)
        self.store = tempfile.mkdtemp(suffix=".zarr", prefix="xprospect-outofcore-")

    def teardown(self, mask):
        if self.store is not None:  # asv calls teardown after a skipping setup too
            shutil.rmtree(self.store, ignore_errors=True)

    def peakmem_grid_idw_to_zarr(self, mask):
        grid_to_zarr(self.samples, self.like, self.store, mask=mask)


# ---- script: side-by-side runs outside asv -----------------------------------------------------

CASES = {"2d": _Case2D, "3d": _Case3D, "many": _CaseMany}
DEFAULT_CASES = ["2d:3072", "3d:128", "many:8", "many:64", "many:512", "many:2048"]


def numba_threads() -> int:
    """Threads the gridders use (numba's thread count)."""
    return numba.get_num_threads()


def interleave(methods, repeat: int):
    """Run each of ``methods`` (name -> callable) once per round, ``repeat`` rounds.

    Returns the wall times and the CPU times (this process, every thread) per method,
    and each method's last result.
    """
    times: dict[str, list[float]] = {m: [] for m in methods}
    cpu: dict[str, list[float]] = {m: [] for m in methods}
    results = {}
    for _ in range(repeat):
        for m, f in methods.items():
            c = time.process_time()
            t = time.perf_counter()
            results[m] = f()
            times[m].append(time.perf_counter() - t)
            cpu[m].append(time.process_time() - c)
    return times, cpu, results


def run_cases(specs, repeat: int = 3, peers=("scipy", "pykdtree")) -> None:
    """Time xprospect and the peers on each ``kind:size`` case, interleaved round by round.

    Every round runs each method once, so load from other processes hits them alike;
    the minimum over rounds is the figure (the load average is printed per case), and
    the ratios are peer minimum over xprospect minimum, in wall time and in CPU time
    (all threads of this process: on a loaded machine, the fairer of the two).
    """
    warm_jit()
    print(f"cpus {os.cpu_count()}, numba threads {numba_threads()}")
    for spec in specs:
        kind, size = spec.split(":")
        samples, like = CASES[kind]().case(int(size))
        pts, vals, coords, names = peer_inputs(samples, like)
        peer_fn = {"scipy": idw_scipy, "pykdtree": idw_pykdtree}
        methods = {"xprospect": functools.partial(idw_xprospect, samples, like)}
        for m in peers:
            methods[m] = functools.partial(peer_fn[m], pts, vals, coords)
        load = os.getloadavg()[0]
        times, cpu, results = interleave(methods, repeat)
        load = [load, os.getloadavg()[0]]
        ours = np.stack([results["xprospect"][n].values for n in names])
        print(
            f"{spec} ({len(pts)} samples x {len(names)} elements), load 1-min "
            f"{min(load):.2f}-{max(load):.2f}"
        )
        best = {m: min(t) for m, t in times.items()}
        best_cpu = {m: min(t) for m, t in cpu.items()}
        for m, t in times.items():
            runs = ", ".join(f"{x:.3f}" for x in t)
            line = f"  {m:10s} min {best[m]:7.3f} s ({runs}), CPU {best_cpu[m]:7.3f} s"
            if m != "xprospect":
                rel = float(np.max(np.abs(results[m] - ours) / np.abs(results[m])))
                line += (
                    f"  {best[m] / best['xprospect']:5.2f}x xprospect (CPU "
                    f"{best_cpu[m] / best_cpu['xprospect']:5.2f}x), max rel diff {rel:.1e}"
                )
            print(line, flush=True)


def main(argv=None) -> int:
    """Command line: ``python asv_bench/benchmarks/idw.py [kind:size ...] [--repeat N]``."""
    p = argparse.ArgumentParser(description=run_cases.__doc__.splitlines()[0])
    p.add_argument("cases", nargs="*", default=DEFAULT_CASES, help="2d:N, 3d:N or many:N")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--peers", default="scipy,pykdtree", help="comma-separated; '' for none")
    a = p.parse_args(argv)
    run_cases(a.cases, a.repeat, tuple(m for m in a.peers.split(",") if m))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
