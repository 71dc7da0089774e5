"""Running a model on the device: one copy per process, batches prefetched by a thread.

On CUDA, batches are gathered into pinned host memory by a prefetch thread while the previous
batch runs, copied with ``non_blocking=True`` and run under autocast (bfloat16 where the GPU
supports it, else float16). On CPU everything is plain float32. Window batches of 2-D convolutional
models run channels-last (NHWC) on either device: oneDNN's and cuDNN's fast paths.

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
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import os
import queue
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from xprospect._torch import import_torch, resolve_device
from xprospect.exceptions import ModelCardError
from xprospect.models.registry import from_config

torch = import_torch()

__all__ = ["ModelHandle", "model_digest", "run_batches"]

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
# core (CPU) or the whole GPU, so concurrent dask threads would only oversubscribe; they gather
# the next windows meanwhile. Dense (whole-tile) calls all run on one thread per device: on CPU
# each thread that calls torch gets its own OpenMP team, whose workers spin after every call,
# and the teams of several dask threads fight over the cores (STOAD over 16 chunks of 512^2:
# 2.96 s on one thread vs 4.01 s from the dask threads). Window batches are called from the
# gathering dask thread under a lock (a single-chunk stride-16 score: 0.87 s vs 1.10 s on the
# device thread; equal over many chunks).
_EXECUTORS: dict[tuple[int, str], ThreadPoolExecutor] = {}
_LOCKS: dict[str, threading.Lock] = {}


class _Inline:
    """Runs a call on the calling thread, one at a time per device (executor interface)."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        fut: Future = Future()
        with self.lock:
            fut.set_result(fn(*args))
        return fut


def _inline(dev: Any) -> _Inline:
    with _CACHE_LOCK:
        return _Inline(_LOCKS.setdefault(str(dev), threading.Lock()))


def _device_executor(dev: Any) -> ThreadPoolExecutor:
    key = (os.getpid(), str(dev))  # a forked worker process starts its own thread
    with _CACHE_LOCK:
        ex = _EXECUTORS.get(key)
        if ex is None:
            ex = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"xprospect-{dev}")
            _EXECUTORS[key] = ex
        return ex


class ModelHandle:
    """A model with a token: each process gets the weights once and reuses its device copy.

    The device copy is a deep copy put in eval mode, so the caller's model is left untouched
    (its device and train/eval flag). Pickling carries the token and the path of a checkpoint
    written once, never the model: see the module's notes.
    """

    def __init__(self, model: Any, token: str, device: Any, amp: Any) -> None:
        self.model = model
        self.token = token
        self.device = str(device)
        self.amp = amp
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
        return {"token": self.token, "device": self.device, "amp": self.amp, "path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
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
        dev = resolve_device(self.device)
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

    def use_amp(self, dev: Any) -> tuple[bool, Any]:
        """Whether to autocast on ``dev``, and the dtype."""
        if dev.type != "cuda" or self.amp is False:
            return False, None
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return True, dtype


def run_batches(
    handle: ModelHandle,
    fill: Callable[[np.ndarray, int, int], None],
    n: int,
    item_shape: tuple[int, ...],
    *,
    batch_size: int,
    prefetch: int,
    method: str,
    pad_batches: bool = True,
) -> np.ndarray:
    """Run ``n`` inputs through the model in batches; return ``(n, *out)`` float32.

    Parameters
    ----------
    handle : ModelHandle
        The model.
    fill : callable
        ``fill(buf, start, stop)`` writes inputs ``start:stop`` into ``buf[: stop - start]``.
    n : int
        Number of inputs.
    item_shape : tuple of int
        ``(C, *spatial)`` of one input.
    batch_size : int
        Inputs per batch.
    prefetch : int
        Batches gathered ahead by a background thread (0: none).
    method : {"windows", "dense"}
        ``score_windows`` (output ``(B,)``) or ``score_dense``.
    pad_batches : bool
        Pad the last batch to ``batch_size`` items (outputs of the padding are dropped).
    """
    model, dev = handle.get()
    amp, amp_dtype = handle.use_amp(dev)
    pin = dev.type == "cuda"
    starts = list(range(0, n, batch_size))
    outs: list[np.ndarray] = []

    def make(start: int) -> Any:
        stop = min(n, start + batch_size)
        # every batch has exactly batch_size items (the last one zero-padded): the same window
        # then goes through the same kernels whatever block it is in, so maps do not depend on
        # the chunking down to the last bit
        size = batch_size if pad_batches else stop - start
        t = torch.empty((size, *item_shape), dtype=torch.float32, pin_memory=pin)
        buf = t.numpy()
        fill(buf, start, stop)
        if size > stop - start:
            buf[stop - start :] = 0.0
        return t

    def batches() -> Iterable[Any]:
        if prefetch <= 0 or len(starts) <= 1:
            for s in starts:
                yield make(s)
            return
        q: queue.Queue = queue.Queue(maxsize=prefetch)
        stop_flag = threading.Event()

        def work() -> None:
            try:
                for s in starts:
                    if stop_flag.is_set():
                        return
                    q.put(make(s))
            except BaseException as err:  # surfaced in the consumer
                q.put(err)
            q.put(None)

        th = threading.Thread(target=work, daemon=True, name="xprospect-prefetch")
        th.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop_flag.set()
            while th.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    th.join(0.01)

    fn = model.score_windows if method == "windows" else model.score_dense
    nhwc = method == "windows" and getattr(model, "ndim", 0) == 2

    def call(t: Any) -> np.ndarray:
        with torch.inference_mode():
            x = t.to(dev, non_blocking=pin)
            if nhwc and x.ndim == 4:
                # fixed-shape window batches of 2-D convolutional models run channels-last
                # (oneDNN's and cuDNN's fast path); dense tiles change shape with the chunking
                # and stay NCHW, whose values do not depend on the tile size
                x = x.contiguous(memory_format=torch.channels_last)
            if amp:
                with torch.autocast(device_type=dev.type, dtype=amp_dtype):
                    y = fn(x)
            else:
                y = fn(x)
            return y.float().cpu().numpy()

    ex = _device_executor(dev) if method == "dense" else _inline(dev)
    for t in batches():
        outs.append(ex.submit(call, t).result())
    if not outs:
        return np.zeros((0,), dtype="float32")
    return np.concatenate(outs, axis=0)[:n]
