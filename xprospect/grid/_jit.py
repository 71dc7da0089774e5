"""numba's ``njit`` as the gridding kernels use it: nogil, numpy's error model, cached.

``nogil``: dask threads and the gridders' own thread pool run kernels side by side.
``cache``: each kernel compiles once per environment. numba keeps its cache next to the
source (``__pycache__``), else in the user's cache folder (``~/.cache/numba``), or in
``$NUMBA_CACHE_DIR`` when that is set. When none of these is writable (a read-only
install run by a user without a home), numba refuses ``cache=True`` when the kernel is
defined; :func:`jit` then defines it uncached, so the package still imports and the
kernels compile on first use in each process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba as nb

__all__ = ["jit"]


def jit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """Return a decorator compiling a function with numba (nogil, cached where possible).

    Parameters
    ----------
    **options
        Further ``numba.njit`` options (e.g. ``fastmath``, ``inline``).

    Returns
    -------
    callable
        The decorator.
    """
    base = {"nogil": True, "error_model": "numpy", **options}

    def wrap(fn: Callable[..., Any]) -> Any:
        try:
            return nb.njit(cache=True, **base)(fn)
        except RuntimeError:  # no cache locator: no writable folder for this source file
            return nb.njit(cache=False, **base)(fn)

    return wrap
