"""Sanity warnings: results that are computed without error but cannot be right.

Each check warns with an :class:`~xprospect.exceptions.XProspectWarning` saying what was
seen and what usually causes it; none changes a result. They are called where the result
is made: :func:`xprospect.train.fit` (a diverged loss), :func:`xprospect.train.cross_validate`
(an AUC below chance), :func:`xprospect.evaluate.evaluate` and
:func:`xprospect.evaluate.targets` (a constant map), :func:`xprospect.score.score` (a stack
far outside the training data's domain; for a lazy stack the check runs alongside the score,
:class:`DomainCheck`).
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from xprospect.exceptions import XProspectWarning

__all__ = [
    "DOMAIN_Z",
    "DomainCheck",
    "warn_if_below_chance",
    "warn_if_constant",
    "warn_if_diverged",
    "warn_if_out_of_domain",
]

#: How many training standard deviations an element's mean may move before scoring warns.
DOMAIN_Z = 3.0
# a map whose range is below this fraction of its largest magnitude is "constant"
_CONSTANT_RTOL = 1e-6


def warn_if_constant(values: np.ndarray, what: str, *, stacklevel: int = 3) -> bool:
    """Warn when the finite values of a map are (nearly) all equal.

    Parameters
    ----------
    values : numpy.ndarray
        The map's values.
    what : str
        How to name the map.
    stacklevel : int
        Passed to :func:`warnings.warn`.

    Returns
    -------
    bool
        Whether it warned.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     warn_if_constant(np.full((4, 4), 1.0), "the map")
    True
    """
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        return False
    lo, hi = float(finite.min()), float(finite.max())
    scale = max(abs(lo), abs(hi), np.finfo("float64").tiny)
    if hi - lo > _CONSTANT_RTOL * scale:
        return False
    warnings.warn(
        f"{what} is constant or nearly so (every finite cell within [{lo:.6g}, {hi:.6g}]): "
        "it ranks nothing. A diverged or untrained model, a saturated output or an "
        "all-constant input usually does this",
        XProspectWarning,
        stacklevel=stacklevel,
    )
    return True


def warn_if_diverged(losses: Sequence[float], n_classes: int = 2, *, stacklevel: int = 3) -> bool:
    """Warn when a training loss is non-finite or has exploded.

    The loss of a classifier guessing at chance is ``ln(n_classes)`` (0.69 for two
    classes). A loss above ten times that, or ending ten times above its lowest value,
    means the optimiser diverged (too high a learning rate for the model, unnormalised
    inputs, batch statistics of tiny batches).

    Parameters
    ----------
    losses : sequence of float
        Training loss per epoch.
    n_classes : int
        Classes of the model's output (1 means one logit: two classes).
    stacklevel : int
        Passed to :func:`warnings.warn`.

    Returns
    -------
    bool
        Whether it warned.
    """
    arr = np.asarray(list(losses), dtype="float64")
    if arr.size == 0:
        return False
    chance = math.log(max(int(n_classes), 2))
    bad = ~np.isfinite(arr)
    if bad.any():
        why = f"the loss became {arr[bad][0]!r} at epoch {int(np.flatnonzero(bad)[0]) + 1}"
    elif arr.max() > 10 * chance:
        i = int(arr.argmax())
        why = (
            f"the loss reached {arr[i]:.4g} at epoch {i + 1}, over ten times the "
            f"{chance:.3g} of guessing at chance"
        )
    elif arr[-1] > 10 * max(arr.min(), 1e-3) and arr[-1] > chance:
        why = f"the loss rose from {arr.min():.4g} to {arr[-1]:.4g}"
    else:
        return False
    warnings.warn(
        f"training diverged: {why}; lower the learning rate (lr=), check the inputs are "
        "normalised, or use a smaller model or larger batches",
        XProspectWarning,
        stacklevel=stacklevel,
    )
    return True


def warn_if_below_chance(auc: float, what: str, *, stacklevel: int = 3) -> bool:
    """Warn when a held-out AUC is below 0.5 (worse than ranking at random).

    Parameters
    ----------
    auc : float
        The AUC.
    what : str
        What it measures (e.g. ``"the mean cross-validated AUC"``).
    stacklevel : int
        Passed to :func:`warnings.warn`.

    Returns
    -------
    bool
        Whether it warned.
    """
    if not (np.isfinite(auc) and auc < 0.5):
        return False
    warnings.warn(
        f"{what} is {auc:.3f}, below the 0.5 of ranking at random: the model does not "
        "generalise to held-out areas (too few deposits per fold, overfitting, or a "
        "signal that is not spatially stationary)",
        XProspectWarning,
        stacklevel=stacklevel,
    )
    return True


def warn_if_out_of_domain(
    normalised: Any, elements: Sequence[str], *, max_z: float = DOMAIN_Z, stacklevel: int = 3
) -> list[str]:
    """Warn when a normalised stack's elements sit far from their training distribution.

    Parameters
    ----------
    normalised : numpy.ndarray
        ``(element, ...)`` values normalised with the training mean and standard
        deviation (so the training data had mean 0 and standard deviation 1).
    elements : sequence of str
        Element names, in order.
    max_z : float
        The largest shift of an element's median, in training standard deviations, or
        factor of its spread, accepted without a warning.
    stacklevel : int
        Passed to :func:`warnings.warn`.

    Returns
    -------
    list of str
        The elements found out of domain (empty: no warning).
    """
    arr = np.asarray(normalised, dtype="float64").reshape(len(elements), -1)
    stats: list[tuple[float, float] | None] = []
    for row in arr:
        v = row[np.isfinite(row)]
        if v.size < _MIN_CELLS:
            stats.append(None)
            continue
        q25, med, q75 = np.quantile(v, [0.25, 0.5, 0.75])
        stats.append((float(med), float(q75 - q25)))
    return _warn_domain(elements, stats, max_z, stacklevel + 1)


# fewer finite cells than this say nothing about an element's domain
_MIN_CELLS = 10
# the lazy check's histogram of normalised values: 0.02 sd bins over +-50 sd (plus one bin
# each side for the tails), fine enough for quantiles compared with a 3 sd limit
_HIST_LIMIT = 50.0
_HIST_BINS = 5000
_PENDING: dict[str, tuple[set[Any], np.ndarray]] = {}
_PENDING_LOCK = threading.Lock()


def _warn_domain(
    elements: Sequence[str],
    stats: Sequence[tuple[float, float] | None],
    max_z: float,
    stacklevel: int,
) -> list[str]:
    """Warn for the elements whose median (sd) or IQR-based spread exceeds ``max_z``."""
    bad = []
    for name, st in zip(elements, stats, strict=True):
        if st is None:
            continue
        med, iqr = st
        spread = iqr / 1.349  # the standard deviation of a normal's IQR
        if abs(med) > max_z or spread > max_z:
            bad.append(f"{name} (median {med:+.2g} sd, spread x{spread:.2g})")
    if bad:
        warnings.warn(
            "the scored stack lies far outside the training data's domain for "
            f"{', '.join(bad)}: other units, another transform, or another survey than the "
            "model was trained on; its scores there are extrapolation",
            XProspectWarning,
            stacklevel=stacklevel,
        )
    return bad


class DomainCheck:
    """The out-of-domain check of a lazy stack, run chunk by chunk alongside its score.

    A small picklable object stored in the graph as an identity ``map_blocks`` layer on the
    normalised stack (so the chunks are read once, by the score's own compute): each chunk
    adds a histogram of its normalised values per element (0.02 sd bins), and when every
    chunk of the stack has been seen in this process (their histograms summed as they come),
    each element's median and interquartile range read from them, and
    :func:`warn_if_out_of_domain`'s rule applied, once per computation. A compute that
    reads only part of the map checks nothing; on a ``dask.distributed`` cluster each
    worker process sees only its share of the chunks (and its warnings go to its log), so
    the check is effectively off there: score an in-memory stack to have it up front.

    Parameters
    ----------
    elements : sequence of str
        Element names, in the stack's order.
    total : int
        Number of chunks of the stack.
    key : str
        Identifies the job (the score's dask token).
    max_z : float
        As for :func:`warn_if_out_of_domain`.
    """

    def __init__(
        self, elements: Sequence[str], total: int, key: str, *, max_z: float = DOMAIN_Z
    ) -> None:
        self.elements = [str(e) for e in elements]
        self.total, self.key, self.max_z = int(total), str(key), float(max_z)

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("DomainCheck", self.key, self.total, tuple(self.elements), self.max_z)

    def __call__(self, block: np.ndarray, block_info: Any = None) -> np.ndarray:
        """Add ``block`` (``(element, ...)``, normalised) to the check; return it unchanged."""
        if block.size == 0 or block_info is None:  # dask's meta inference
            return block
        loc = tuple(tuple(r) for r in block_info[None]["array-location"])
        rows = np.asarray(block, dtype="float64").reshape(block.shape[0], -1)
        counts = np.zeros((rows.shape[0], _HIST_BINS + 2), dtype="int64")
        width = 2 * _HIST_LIMIT / _HIST_BINS
        for i, row in enumerate(rows):
            v = row[np.isfinite(row)]
            idx = np.floor((v + _HIST_LIMIT) / width).astype("int64") + 1
            counts[i] = np.bincount(np.clip(idx, 0, _HIST_BINS + 1), minlength=_HIST_BINS + 2)
        with _PENDING_LOCK:
            # one running histogram per job and the chunks in it (a chunk computed twice
            # counts once), so the memory held is one histogram, whatever the chunk count
            seen, total = _PENDING.setdefault(self.key, (set(), np.zeros_like(counts)))
            if loc not in seen:
                seen.add(loc)
                total += counts
            if len(seen) < self.total:
                return block
            del _PENDING[self.key]
        stats = [_hist_stats(c) for c in total]
        _warn_domain(self.elements, stats, self.max_z, 2)
        return block


def _hist_stats(counts: np.ndarray) -> tuple[float, float] | None:
    """Median and IQR of one element from its histogram (linear within a bin)."""
    n = int(counts.sum())
    if n < _MIN_CELLS:
        return None
    width = 2 * _HIST_LIMIT / _HIST_BINS
    # bin k (1.._HIST_BINS) spans [-L + (k-1) w, -L + k w); the tails sit at -L and +L
    edges = np.concatenate([[-_HIST_LIMIT], -_HIST_LIMIT + width * np.arange(_HIST_BINS + 1)])
    edges = np.append(edges, _HIST_LIMIT)
    cum = np.concatenate([[0], np.cumsum(counts)]) / n
    q25, med, q75 = np.interp([0.25, 0.5, 0.75], cum, edges)
    return float(med), float(q75 - q25)
