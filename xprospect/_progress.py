"""One progress policy for long steps: a tqdm bar on a terminal or in a notebook, else silence.

``progress=None`` (the default of every verb that takes it) means *auto*: a bar when the
stream it would write to is a terminal (or the code runs in a Jupyter kernel, where
``tqdm.auto`` draws a widget), nothing otherwise (logs, CI, pipes). ``progress=True``
forces the bar, ``progress=False`` silences it. The bar counts chunks (or epochs) done
out of the total and shows an ETA. When a ``dask.distributed`` client is active,
:func:`distributed_client` returns it so that callers can hand their futures to
``distributed.progress`` instead, which reflects the cluster's own task stream.
"""

from __future__ import annotations

import sys
import threading
from typing import IO, Any

from tqdm.auto import tqdm

from xprospect.exceptions import DataError

__all__ = [
    "ChunkProgress",
    "distributed_client",
    "in_notebook",
    "progress_bar",
    "wants_progress",
]


def in_notebook() -> bool:
    """Tell whether the code runs in a Jupyter kernel (where tqdm draws a widget).

    Returns
    -------
    bool
    """
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    get_ipython = getattr(shell, "get_ipython", None)
    ip = get_ipython() if get_ipython is not None else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def wants_progress(progress: bool | None, file: IO[str] | None = None) -> bool:
    """Resolve ``progress=`` (True, False or None = auto) to whether a bar is drawn.

    Parameters
    ----------
    progress : bool or None
        True forces a bar, False silences it, None draws one only on a terminal or in a
        notebook.
    file : text stream, optional
        Where the bar would be written (default ``sys.stderr``).

    Returns
    -------
    bool

    Raises
    ------
    DataError
        When ``progress`` is not True, False or None.
    """
    if progress is not None and not isinstance(progress, bool):
        raise DataError(f"progress= must be True, False or None (auto); got {progress!r}")
    if progress is not None:
        return progress
    stream = sys.stderr if file is None else file
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty()) or in_notebook()


def progress_bar(
    total: int,
    *,
    desc: str,
    progress: bool | None = None,
    unit: str = "chunk",
    file: IO[str] | None = None,
) -> Any:
    """Make a tqdm bar of ``total`` steps, drawn according to :func:`wants_progress`.

    Parameters
    ----------
    total : int
        Number of steps (chunks, epochs).
    desc : str
        Label shown before the bar, e.g. ``"to_zarr score.zarr"``.
    progress : bool or None
        See :func:`wants_progress`.
    unit : str
        Name of one step.
    file : text stream, optional
        Where to write (default ``sys.stderr``).

    Returns
    -------
    tqdm.tqdm
        A bar (disabled, hence silent, when no progress is wanted); use it as a context
        manager and call ``update(n)``.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with progress_bar(3, desc="demo", progress=True, file=out) as bar:
    ...     bar.update(3)
    >>> "3/3" in out.getvalue()
    True
    """
    show = wants_progress(progress, file)
    return tqdm(
        total=int(total),
        desc=desc,
        unit=unit,
        disable=not show,
        file=sys.stderr if file is None else file,
        dynamic_ncols=True,
        mininterval=0.2,
    )


def distributed_client() -> Any | None:
    """Return the active ``dask.distributed`` client, or None (none, or not installed).

    Returns
    -------
    distributed.Client or None
    """
    try:
        from distributed import get_client  # lazy: optional, only when a cluster is used
    except ImportError:
        return None
    try:
        return get_client()
    except ValueError:
        return None


_BARS: dict[str, list[Any]] = {}
_BARS_LOCK = threading.Lock()


class ChunkProgress:
    """Chunks done / total of one lazy job, counted by its chunk tasks as they finish.

    A small picklable object stored in the graph: each chunk task calls :meth:`done`, and
    the first one to finish in a process opens a :func:`progress_bar` there (drawn by the
    policy of :func:`wants_progress` in that process), which closes itself when ``total``
    chunks are done; computing the job again starts a new bar. So the bar shows however
    the job is computed by dask's local (threaded or synchronous) scheduler: ``.values``,
    ``.compute()``, :func:`xprospect.to_zarr`. On a ``dask.distributed`` worker it does
    nothing (no terminal to draw on); :func:`xprospect.to_zarr` shows the cluster's own
    progress there.

    Parameters
    ----------
    total : int
        Number of chunks.
    desc : str
        Label of the bar.
    progress : bool or None
        See :func:`wants_progress`.
    key : str
        Identifies the job (its dask token).
    """

    def __init__(self, total: int, desc: str, progress: bool | None, key: str) -> None:
        if progress is not None and not isinstance(progress, bool):
            raise DataError(f"progress= must be True, False or None (auto); got {progress!r}")
        self.total, self.desc, self.progress, self.key = int(total), desc, progress, key

    def done(self, n: int = 1) -> None:
        """Count ``n`` chunks as done (called by the chunk tasks)."""
        if self.progress is False or _on_worker():
            return
        with _BARS_LOCK:
            entry = _BARS.get(self.key)
            if entry is None:
                bar = progress_bar(self.total, desc=self.desc, progress=self.progress)
                entry = _BARS[self.key] = [bar, 0]
            entry[1] += n
            entry[0].update(n)
            if entry[1] >= self.total:
                entry[0].close()
                del _BARS[self.key]


def _on_worker() -> bool:
    if "distributed" not in sys.modules:
        return False
    from distributed import get_worker  # lazy: optional, only with a cluster

    try:
        get_worker()
    except ValueError:
        return False
    return True
