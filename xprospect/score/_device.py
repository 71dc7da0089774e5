"""Running a model on a device: each chunk goes up once, is cut there, and comes back once.

One code path for every device; only a few small branches differ on CUDA (all in
:class:`Transfer` and :meth:`ModelHandle.use_amp`):

- **Upload once per chunk.** The chunk with its halo is copied to the device in one piece
  (on CUDA from pinned host memory with ``non_blocking=True`` on a side stream, an event
  telling the compute stream when it has arrived; on CPU the tensor simply shares the
  numpy array's memory).
- **Windows cut on the device.** Window models get their batches from strided views of the
  device tile (``Tensor.unfold``): each batch is one device-side copy of whole runs of
  windows along the last lattice axis, straight into the layout the model runs in
  (channels-last for 2-D networks: oneDNN's and cuDNN's fast path); no window is gathered
  on the host. Dense (fully convolutional) models run tile by tile on views of the same
  device tile.
- **Results once per chunk.** Scores accumulate in a device tensor and come back in one copy
  (on CUDA: into pinned memory on the side stream, waited for outside the compute lock).
- **Double buffering.** The upload of chunk k+1 (another dask thread) and the download of
  chunk k-1 run on side streams while chunk k computes, because only the model calls hold
  the per-device compute lock; :class:`Transfer`'s streams and events are no-ops on CPU.
- **Precision.** CUDA runs under autocast (bfloat16 where supported, else float16) unless
  ``amp=False``; CPU stays float32, its values bit for bit those of the host-gathered
  batches used before (same batch contents, shapes and memory layouts).
- ``compile=True`` wraps the scoring method in :func:`torch.compile` once per process,
  device and model (opt-in: the first chunk pays the compilation, and compiled kernels may
  round differently from eager ones).

The model never travels inside the task graph. A :class:`ModelHandle` pickles to its token,
device and the path of a checkpoint, never to the weights themselves, so a score job's graph
stays small whatever the model's size (a 100-chunk ResNet-50 job: under 2 MB). When first
pickled (a ``dask.distributed`` cluster, a process pool, a graph pickled by hand), the handle
saves the model once to a file in a private temporary folder of the submitting process,
removed when that process exits; each worker process loads that file on its first task and
caches the model by token, so the weights are read once per worker process, not once per
task. The workers must see the submitting machine's temporary folder (``LocalCluster``, or a
shared file system). In the process that built the job nothing is loaded: the handle finds the
live model.

Devices: ``device="auto"`` is resolved on the worker that runs the chunk (its own GPU, else
its CPU); on a machine with several GPUs each thread is pinned to one of them, round robin
in the order the threads first score (offset by a ``LocalCluster`` worker's number), see
:func:`choose_device`. Threads: see the policy in :mod:`xprospect._dask`.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import itertools
import os
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from xprospect._dask import _distributed_worker, model_threads
from xprospect._torch import import_torch, resolve_device
from xprospect.exceptions import DataError, ModelCardError
from xprospect.models.registry import from_config

torch = import_torch()

__all__ = [
    "ModelHandle",
    "Transfer",
    "choose_device",
    "model_digest",
    "score_dense_tiles",
    "score_lattice",
    "thread_slot",
    "worker_device",
]

# the live models of this process, by token: a handle unpickled where it was made needs no load
_LIVE: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_SPILL: dict[str, str] = {}


def model_digest(model: Any) -> str:
    """SHA-256 of a torch model's class and weights (its state dict, names and bytes).

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    str
        Hex digest; equal for equal weights in any process.
    """
    h = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    h.update(repr(getattr(model, "config", None)).encode())
    for name, value in model.state_dict().items():
        h.update(name.encode())
        if hasattr(value, "detach"):
            arr = value.detach().cpu().contiguous()
            h.update(str(arr.dtype).encode() + str(tuple(arr.shape)).encode())
            h.update(arr.view(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


def _spill_dir() -> str:
    path = _SPILL.get("dir")
    if path is None:
        path = tempfile.mkdtemp(prefix="xprospect-models-")
        _SPILL["dir"] = path
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


_CACHE: OrderedDict[tuple[str, str], Any] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 4
# One model call at a time per device and process: torch already spreads one call over every
# core (CPU) or the whole GPU, so concurrent dask threads would only oversubscribe; they cut
# the next windows meanwhile (on the device, outside the lock). Dense (whole-tile) calls all
# run on one thread per device: on CPU each thread that calls torch gets its own OpenMP team,
# whose workers spin after every call,
# and the teams of several dask threads fight over the cores (STOAD over 16 chunks of 512^2:
# 2.96 s on one thread vs 4.01 s from the dask threads). Window batches are called from the
# gathering dask thread under a lock (a single-chunk stride-16 score: 0.87 s vs 1.10 s on the
# device thread; equal over many chunks). Uploads and downloads hold no lock, which is what
# lets chunk k+1's copy and chunk k-1's results overlap chunk k's compute.
_EXECUTORS: dict[tuple[int, str], ThreadPoolExecutor] = {}
_LOCKS: dict[str, threading.Lock] = {}


def _device_lock(dev: Any) -> threading.Lock:
    with _CACHE_LOCK:
        return _LOCKS.setdefault(str(dev), threading.Lock())


def _device_executor(dev: Any) -> ThreadPoolExecutor:
    key = (os.getpid(), str(dev))  # a forked worker process starts its own thread
    with _CACHE_LOCK:
        ex = _EXECUTORS.get(key)
        if ex is None:
            ex = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"xprospect-{dev}")
            _EXECUTORS[key] = ex
        return ex


# ---- devices: which one this thread uses ---------------------------------------------------

_SLOTS = threading.local()
_SLOT_COUNTER = itertools.count()


def choose_device(spec: Any, cuda_count: int, slot: int) -> str:
    """Resolve a device spec to a device name for the thread with round-robin ``slot``.

    Parameters
    ----------
    spec : str or torch.device
        ``"auto"`` (this machine's GPUs, else its CPU), ``"cuda"`` (this machine's GPUs),
        or an explicit name (``"cpu"``, ``"cuda:1"``), returned as it is.
    cuda_count : int
        Number of GPUs this process sees.
    slot : int
        The calling thread's slot (:func:`thread_slot`): with several GPUs, slot ``i`` is
        pinned to GPU ``i % cuda_count``.

    Returns
    -------
    str
        A torch device name.

    Examples
    --------
    >>> choose_device("auto", 0, 3), choose_device("auto", 4, 5), choose_device("cuda", 1, 7)
    ('cpu', 'cuda:1', 'cuda:0')
    """
    name = str(spec)
    if name in ("auto", "None"):
        return "cpu" if cuda_count < 1 else f"cuda:{slot % cuda_count}"
    if name == "cuda" and cuda_count >= 1:
        return f"cuda:{slot % cuda_count}"
    return name


def thread_slot() -> int:
    """Return the calling thread's round-robin slot: its order among the threads that score.

    A ``dask.distributed`` worker whose name is an integer (a ``LocalCluster`` numbers its
    workers 0, 1, ...) offsets the slots by that number, so that single-threaded worker
    processes on one machine take different GPUs.

    Returns
    -------
    int
    """
    slot = getattr(_SLOTS, "slot", None)
    if slot is None:
        worker = _distributed_worker()
        name = getattr(worker, "name", None)
        offset = name if isinstance(name, int) else 0
        with _CACHE_LOCK:
            slot = _SLOTS.slot = next(_SLOT_COUNTER) + offset
    return int(slot)


def worker_device(spec: Any) -> Any:
    """Return the ``torch.device`` the calling thread scores on (see :func:`choose_device`).

    Parameters
    ----------
    spec : str or torch.device

    Returns
    -------
    torch.device
    """
    name = str(spec)
    if name in ("auto", "None", "cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        name = choose_device(name, count, thread_slot() if count > 1 else 0)
    return resolve_device(name)


# ---- the model, once per process and device ---------------------------------------------------


class ModelHandle:
    """A model with a token: each process gets the weights once and reuses its device copy.

    The device copy is a deep copy put in eval mode, so the caller's model is left untouched
    (its device and train/eval flag). Pickling carries the token and the path of a checkpoint
    written once, never the model: see the module's notes.

    Parameters
    ----------
    model : torch.nn.Module
        The live model.
    token : str
        The job's token (same weights and options, same token in every process).
    device : str or torch.device
        See :func:`worker_device`.
    amp : {"auto", True, False}
        Autocast on CUDA (never on CPU).
    compile : bool or mapping
        Wrap the scoring method in :func:`torch.compile` (a mapping: its keyword arguments).
    """

    def __init__(self, model: Any, token: str, device: Any, amp: Any, compile: Any = False) -> None:
        self.model = model
        self.token = token
        self.device = str(device)
        self.amp = amp
        self.compile = compile
        self.path: str | None = None
        _LIVE[token] = model

    def __dask_tokenize__(self) -> str:
        return self.token

    def __getstate__(self) -> dict[str, Any]:
        if self.path is None and self.model is not None:
            path = os.path.join(_spill_dir(), f"{self.token}.pt")
            if not os.path.exists(path):
                config = getattr(self.model, "config", None)
                if not isinstance(config, dict) or "name" not in config:
                    raise ModelCardError(
                        f"score: {type(self.model).__name__} has no registry config "
                        "({'name', 'kwargs'}), so worker processes could not rebuild it "
                        "from its weights; score it with the threaded scheduler, or build "
                        "it with xprospect.models.create"
                    )
                # weights and JSON-typed config only (never a pickled module), so the
                # workers load it with weights_only=True like any checkpoint
                payload = {
                    "config": dict(config),
                    "state_dict": self.model.state_dict(),
                    "card": dict(getattr(self.model, "card", None) or {}),
                }
                tmp = f"{path}.{os.getpid()}.tmp"
                torch.save(payload, tmp)
                os.replace(tmp, path)
            self.path = path
        return {
            "token": self.token,
            "device": self.device,
            "amp": self.amp,
            "compile": self.compile,
            "path": self.path,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("compile", False)
        self.__dict__.update(state)
        self.model = _LIVE.get(self.token)

    def _source(self) -> Any:
        """Return the model to copy to the device: live here, or loaded from its checkpoint."""
        if self.model is not None:
            return self.model
        if self.path is not None and os.path.exists(self.path):
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
            model = from_config(payload["config"])
            model.load_state_dict(payload["state_dict"])
            if payload.get("card"):
                model.card = payload["card"]
            return model
        raise ModelCardError(
            f"score: the model of job {self.token[:12]} is not reachable in "
            f"this process: its checkpoint {self.path} cannot be read here (the "
            "workers must share the submitting machine's temporary folder)"
        )

    def get(self) -> tuple[Any, Any]:
        """Return ``(device model, torch.device)``, cached per process and token."""
        dev = worker_device(self.device)
        key = (self.token, str(dev))
        with _CACHE_LOCK:
            m = _CACHE.get(key)
            if m is None:
                source = self._source()
                m = (copy.deepcopy(source) if source is self.model else source).to(dev).eval()
                for p in m.parameters():
                    p.requires_grad_(False)
                _CACHE[key] = m
                while len(_CACHE) > _CACHE_SIZE:
                    _CACHE.popitem(last=False)
            else:
                _CACHE.move_to_end(key)
        return m, dev

    def scorer(self, model: Any, dev: Any, method: str) -> Callable[[Any], Any]:
        """Return the scoring call (``score_windows`` or ``score_dense``), compiled if asked."""
        fn = model.score_windows if method == "windows" else model.score_dense
        if not self.compile:
            return fn
        key = (self.token, str(dev), method)
        with _CACHE_LOCK:
            compiled = _COMPILED.get(key)
            if compiled is None:
                opts = dict(self.compile) if isinstance(self.compile, Mapping) else {}
                compiled = _COMPILED[key] = torch.compile(fn, **opts)
                while len(_COMPILED) > 2 * _CACHE_SIZE:
                    _COMPILED.pop(next(iter(_COMPILED)))
        return compiled

    def use_amp(self, dev: Any) -> tuple[bool, Any]:
        """Whether to autocast on ``dev``, and the dtype (CUDA only)."""
        if dev.type != "cuda" or self.amp is False:
            return False, None
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return True, dtype


_COMPILED: dict[tuple[str, str, str], Any] = {}


# ---- transfers: pinned memory, side streams and events on CUDA, no-ops on CPU ------------------


class Transfer:
    """Host-to-device and device-to-host copies of one chunk, overlapping the compute on CUDA.

    On CUDA each thread has its own side stream: :meth:`upload` copies from pinned memory
    with ``non_blocking=True`` on it and records an event that :meth:`ready` makes the
    compute stream wait for; :meth:`download` waits (on the side stream) for the compute
    recorded so far and copies into pinned memory, returning a function that blocks only
    when the host needs the values. On CPU uploads share the numpy memory, :meth:`ready`
    does nothing and downloads are views: the same calls, no streams.

    Parameters
    ----------
    dev : torch.device
    """

    _streams: ClassVar[dict[tuple[int, str], Any]] = {}

    def __init__(self, dev: Any) -> None:
        self.dev = dev
        self.cuda = dev.type == "cuda"
        self.stream: Any = None
        if self.cuda:  # CUDA only: one side stream per thread and device
            key = (threading.get_ident(), str(dev))
            with _CACHE_LOCK:
                st = self._streams.get(key)
                if st is None:
                    st = self._streams[key] = torch.cuda.Stream(device=dev)
            self.stream = st

    def upload(self, arr: np.ndarray) -> tuple[Any, Any]:
        """Start copying ``arr`` to the device; return ``(tensor, event or None)``."""
        host = torch.from_numpy(np.ascontiguousarray(arr))
        if not self.cuda:
            return host, None
        host = host.pin_memory()  # CUDA only
        with torch.cuda.stream(self.stream):
            t = host.to(self.dev, non_blocking=True)
            ev = torch.cuda.Event()
            ev.record(self.stream)
        return t, ev

    def ready(self, t: Any, ev: Any) -> None:
        """Make the current (compute) stream wait until the upload of ``t`` has arrived."""
        if ev is not None:  # CUDA only
            cur = torch.cuda.current_stream(self.dev)
            cur.wait_event(ev)
            t.record_stream(cur)

    def download(self, t: Any) -> Callable[[], np.ndarray]:
        """Start copying ``t`` back once the compute so far is done; call the result to wait."""
        if not self.cuda:
            return lambda: t.numpy()
        done_compute = torch.cuda.Event()  # CUDA only from here
        done_compute.record(torch.cuda.current_stream(self.dev))
        host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        with torch.cuda.stream(self.stream):
            self.stream.wait_event(done_compute)
            host.copy_(t, non_blocking=True)
            t.record_stream(self.stream)
            done = torch.cuda.Event()
            done.record(self.stream)

        def result() -> np.ndarray:
            done.synchronize()
            return host.numpy()

        return result


@contextmanager
def _torch_threads(n: int, dev: Any) -> Iterator[None]:
    """Run a CPU model call on ``n`` torch threads (the calling thread's OpenMP team only).

    Not restored after each call: shrinking and regrowing the calling thread's OpenMP team
    around every call left its idle workers competing with the main thread's torch work
    (a naive loop run after score took 1.6-2x longer). :func:`xprospect.score.score`
    restores the caller's count once, when its in-process (numpy) path ends and after each
    block that a synchronous dask compute ran on the main thread
    (:func:`xprospect._torch.keep_torch_threads`); dask's pool threads keep this count.
    """
    if dev.type == "cpu" and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    yield


def _call(fn: Callable[[Any], Any], x: Any, amp: bool, amp_dtype: Any, dev: Any) -> Any:
    if amp:  # CUDA only
        with torch.autocast(device_type=dev.type, dtype=amp_dtype):
            return fn(x)
    return fn(x)


def _runs(flat: np.ndarray, last: np.ndarray) -> list[tuple[int, int]]:
    """Split sorted flat lattice indices into ``(start, stop)`` runs along the last axis."""
    if flat.size == 0:
        return []
    cut = np.flatnonzero((np.diff(flat) != 1) | (last[1:] == 0)) + 1
    bounds = [0, *cut.tolist(), int(flat.size)]
    return list(itertools.pairwise(bounds))


def score_lattice(
    handle: ModelHandle,
    xb: np.ndarray,
    *,
    window: Sequence[int],
    stride: Sequence[int],
    origin: Sequence[int],
    counts: Sequence[int],
    which: np.ndarray | None,
    batch_size: int,
) -> np.ndarray:
    """Score the windows of a stride lattice of one block, cut on the device.

    Parameters
    ----------
    handle : ModelHandle
        The model.
    xb : numpy.ndarray
        ``(C, *spatial)`` float32 block, padded so that every window lies inside it.
    window, stride : sequence of int
        Window edge and lattice step per spatial axis.
    origin : sequence of int
        Block index of the first lattice window's first cell, per axis.
    counts : sequence of int
        Lattice points per axis.
    which : numpy.ndarray or None
        Sorted flat (C-order) indices of the lattice points to score; None scores all.
    batch_size : int
        Windows per model call; every call gets exactly ``batch_size`` windows (the last
        batch zero-padded), so a window's score does not depend on its neighbours in the
        batch and maps do not depend on the chunking down to the last bit.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float32 scores of the chosen lattice points, in the order of ``which``.
    """
    model, dev = handle.get()
    amp, amp_dtype = handle.use_amp(dev)
    fn = handle.scorer(model, dev, "windows")
    nthreads = model_threads()
    nd = len(window)
    # fixed-shape window batches of 2-D convolutional models run channels-last (oneDNN's and
    # cuDNN's fast path); the tile is laid out (y, x, element) so that each window row is
    # one contiguous run of memory in both the tile and the batch
    cl = nd == 2 and getattr(model, "ndim", 0) == 2
    flat = np.arange(int(np.prod(counts))) if which is None else np.asarray(which, dtype=np.int64)
    n = int(flat.size)
    if n == 0:
        return np.zeros((0,), dtype="float32")
    tr = Transfer(dev)
    t, ev = tr.upload(xb)
    lock = _device_lock(dev)
    with torch.inference_mode():
        tr.ready(t, ev)
        spatial = tuple(slice(o, None) for o in origin)
        if cl:
            view = t.permute(*range(1, nd + 1), 0).contiguous()[spatial]
            for ax in range(nd):
                view = view.unfold(ax, window[ax], stride[ax])
        else:
            view = t[(slice(None), *spatial)]
            for ax in range(nd):
                view = view.unfold(ax + 1, window[ax], stride[ax])
            view = view.permute(*range(1, nd + 1), 0, *range(nd + 1, 2 * nd + 1))
        if any(view.shape[ax] < counts[ax] for ax in range(nd)):
            raise DataError(
                f"score: block {tuple(xb.shape)} holds lattice {tuple(view.shape[:nd])} "
                f"windows, fewer than the {tuple(counts)} asked (halo too small)"
            )
        idx = np.unravel_index(flat, tuple(counts))
        fmt = torch.channels_last if cl else torch.contiguous_format
        buf = torch.empty(
            (batch_size, xb.shape[0], *window), dtype=torch.float32, device=dev
        ).contiguous(memory_format=fmt)
        res = torch.empty((n,), dtype=torch.float32, device=dev)
        for i0 in range(0, n, batch_size):
            i1 = min(n, i0 + batch_size)
            for a, b in _runs(flat[i0:i1], idx[-1][i0:i1]):
                j = i0 + a
                lead = tuple(int(ix[j]) for ix in idx[:-1])
                k = int(idx[-1][j])
                buf[a:b].copy_(view[lead][k : k + b - a])
            if i1 - i0 < batch_size:
                buf[i1 - i0 :].zero_()
            with lock, _torch_threads(nthreads, dev):
                y = _call(fn, buf, amp, amp_dtype, dev)
                res[i0:i1] = y[: i1 - i0].float()
        pending = tr.download(res)
    return np.array(pending(), dtype="float32")


def score_dense_tiles(
    handle: ModelHandle,
    xb: np.ndarray,
    tiles: Sequence[tuple[tuple[slice, ...], tuple[slice, ...]]],
    out_shape: tuple[int, ...],
) -> np.ndarray:
    """Run a dense model over tiles of one block uploaded once; return the block's scores.

    Parameters
    ----------
    handle : ModelHandle
        The (dense) model.
    xb : numpy.ndarray
        ``(C, *spatial)`` float32 block with the halo the model's context needs.
    tiles : sequence of (source slices, target slices)
        For each tile, the block cells it reads (spatial slices of ``xb``) and the output
        cells it fills (slices of the result).
    out_shape : tuple of int
        Shape of the result.

    Returns
    -------
    numpy.ndarray
        ``out_shape`` float32; cells no tile covers are NaN.
    """
    model, dev = handle.get()
    amp, amp_dtype = handle.use_amp(dev)
    fn = handle.scorer(model, dev, "dense")
    nthreads = model_threads()
    tr = Transfer(dev)
    t, ev = tr.upload(xb)

    def compute() -> Callable[[], np.ndarray]:
        with torch.inference_mode(), _torch_threads(nthreads, dev):
            tr.ready(t, ev)
            out = torch.full(out_shape, float("nan"), dtype=torch.float32, device=dev)
            for src, dst in tiles:
                # one NCHW tile of the device copy, the same tensor the model saw when tiles
                # were cut on the host: its values do not depend on the tile size
                x = t[(slice(None), *src)].unsqueeze(0).contiguous()
                out[dst] = _call(fn, x, amp, amp_dtype, dev)[0].float()
            return tr.download(out)

    pending = _device_executor(dev).submit(compute).result()
    return np.array(pending(), dtype="float32")
