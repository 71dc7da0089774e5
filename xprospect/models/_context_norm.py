"""Edge normalisation of the NaN-aware dense detectors (the autoencoders and STOAD).

A cell near the edge of the data (or of the grid) is read from fewer neighbours, so its
anomaly score is larger for the same chemistry, and the top scores would pile up on the
edge. :class:`ContextNorm` reads each cell's raw score against the raw scores of training
cells with as much valid context: the cells are binned by the share of their receptive box
holding data (:data:`CONTEXT_BINS` equal bins, plus one for whole contexts), and a bin's
score quantiles (:data:`CONTEXT_LEVELS`) are mapped onto those of whole contexts. The
quantiles are a buffer of the model, so they travel with its state dict; a checkpoint written
before they existed loads as "no normalisation".

A model using it subclasses :class:`ContextNorm` before its torch base, calls
:meth:`ContextNorm.init_context_norm` in ``__init__``, provides ``error_and_context(x)``
(the raw per-cell score and :func:`context_share` of a valid pass) and scores through
:meth:`ContextNorm.normalise_context`; :func:`xprospect.train.fit_anomaly` and
:func:`xprospect.train.fit_stoad` set the quantiles after training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xprospect._torch import import_torch

torch = import_torch()
F = torch.nn.functional

__all__ = ["CONTEXT_BINS", "CONTEXT_LEVELS", "ContextNorm", "context_share"]

#: Bins of the valid-context share (``[0, 1)`` in equal steps) of the edge normalisation, plus
#: one bin for whole contexts: see :meth:`ContextNorm.set_context_norm`.
CONTEXT_BINS = 10
#: Error quantiles matched between a context bin and whole contexts.
CONTEXT_LEVELS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)


def context_share(mask: Any, r: int) -> Any:
    """Share of valid cells in each ``2 r + 1`` box of ``mask``, valid pass.

    ``mask`` is ``(B, 1, *spatial)`` float (1 valid, 0 missing); returns ``(B,
    *(spatial - 2 r))``: for each output cell of a valid pass, the share of its receptive box
    holding data. Separable running means (one axis at a time), not a ``(2 r + 1) ** d``
    kernel.
    """
    k = 2 * int(r) + 1
    nd = mask.ndim - 2
    pool = F.avg_pool2d if nd == 2 else F.avg_pool3d
    out = mask
    for ax in range(nd):
        size = tuple(k if a == ax else 1 for a in range(nd))
        out = pool(out, size, stride=1)
    return out[:, 0]


class ContextNorm:
    """Mixin of a dense detector: its raw scores read against training cells' by context.

    The quantiles live in the buffer ``context_norm`` (``(CONTEXT_BINS + 1, levels)``, the
    last row whole contexts; all zeros: not set, scores are the raw ones).
    """

    context_norm: Any

    def init_context_norm(self) -> None:
        """Register the ``context_norm`` buffer, unset (call in ``__init__``)."""
        # error quantiles per context bin (set_context_norm); all rows equal: not set
        self.register_buffer(  # type: ignore[attr-defined]
            "context_norm", torch.zeros(CONTEXT_BINS + 1, len(CONTEXT_LEVELS))
        )

    def set_context_norm(self, share: Any, error: Any, *, min_cells: int = 50) -> Any:
        """Fit the edge normalisation from errors of training cells and their context shares.

        A cell near the edge of the data (or of the grid) is read from fewer neighbours, so
        its error (raw score) is larger for the same chemistry, and the top scores would
        pile up on the edge. Each cell's error is therefore read against the errors of
        training cells with as much valid context: the cells are binned by their share
        (:data:`CONTEXT_BINS` equal bins, plus one for whole contexts), and a bin's error
        quantiles (:data:`CONTEXT_LEVELS`) are mapped onto those of whole contexts
        (piecewise linear between them, proportional beyond the first and last). A cell
        then scores what a whole-context cell at the same rank of its own context's errors
        scores; whole-context cells keep their error. Bins with fewer than ``min_cells``
        cells take quantiles interpolated from the populated bins around them (the nearest
        one at the ends); without populated whole contexts or partial ones nothing is set.

        Parameters
        ----------
        share, error : array-like
            Valid-context share and error (``error_and_context``) of training cells.
        min_cells : int
            Cells a bin needs to be used.

        Returns
        -------
        numpy.ndarray
            The median error of each bin over that of whole contexts (ones when nothing is
            set): how much larger a typical error is at that context.
        """
        share = np.asarray(share, dtype="float64").reshape(-1)
        error = np.asarray(error, dtype="float64").reshape(-1)
        ok = np.isfinite(share) & np.isfinite(error)
        share, error = share[ok], error[ok]
        idx = _context_bin(torch.from_numpy(share)).numpy()
        levels = np.asarray(CONTEXT_LEVELS)
        centres, rows = [], []
        for b in range(CONTEXT_BINS + 1):
            e = error[idx == b]
            if e.size >= int(min_cells):
                centres.append(1.0 if b == CONTEXT_BINS else (b + 0.5) / CONTEXT_BINS)
                rows.append(np.quantile(e, levels))
        knots = np.zeros((CONTEXT_BINS + 1, levels.size))
        if len(centres) >= 2 and centres[-1] == 1.0:
            at = [(b + 0.5) / CONTEXT_BINS for b in range(CONTEXT_BINS)] + [1.0]
            q = np.stack(rows)
            knots = np.stack([np.interp(at, centres, q[:, j]) for j in range(levels.size)], 1)
            # strictly increasing rows, so that the map is monotone and invertible
            tiny = 1e-9 * max(float(np.abs(knots).max()), 1.0)
            knots = np.maximum.accumulate(knots + tiny * np.arange(levels.size), axis=1)
        with torch.no_grad():
            self.context_norm.copy_(torch.from_numpy(knots).to(self.context_norm))
        mid = levels.size // 2
        if not knots.any():
            return np.ones(CONTEXT_BINS + 1)
        return knots[:, mid] / max(knots[-1, mid], 1e-30)

    def normalise_context(self, error: Any, share: Any) -> Any:
        """Return raw per-cell ``error`` read through the quantiles (unchanged when unset).

        Whole contexts (``share`` 1) and NaN keep their value.
        """
        if bool((share < 1).any()) and bool((self.context_norm != self.context_norm[-1]).any()):
            return _map_context(error, share, self.context_norm)
        return error

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any) -> None:
        # a checkpoint written before the edge normalisation existed: no normalisation
        state_dict.setdefault(prefix + "context_norm", torch.zeros_like(self.context_norm))
        super()._load_from_state_dict(state_dict, prefix, *args)  # type: ignore[misc]


def _context_bin(share: Any) -> Any:
    """Bin of each valid-context share: ``floor(share * CONTEXT_BINS)``, whole contexts last."""
    b = (share * CONTEXT_BINS).floor().clamp(0, CONTEXT_BINS - 1).long()
    return torch.where(share >= 1.0 - 1e-6, torch.full_like(b, CONTEXT_BINS), b)


def _map_context(error: Any, share: Any, knots: Any) -> Any:
    """Map each error from its context bin's quantiles onto those of whole contexts.

    ``knots`` is ``(CONTEXT_BINS + 1, levels)``, the last row whole contexts. Piecewise
    linear between the knots, proportional (through 0) beyond the first and the last;
    whole-context cells and NaN pass unchanged.
    """
    b = _context_bin(share)
    flat_e, flat_b = error.reshape(-1), b.reshape(-1)
    x = knots[flat_b]  # (N, levels)
    y = knots[-1]
    n = y.numel()
    e = torch.nan_to_num(flat_e, nan=0.0)
    j = torch.searchsorted(x, e[:, None]).squeeze(1)
    lo = (j - 1).clamp(0, n - 2)
    x0 = x.gather(1, lo[:, None]).squeeze(1)
    x1 = x.gather(1, (lo + 1)[:, None]).squeeze(1)
    t = (e - x0) / (x1 - x0).clamp_min(1e-30)
    inner = y[lo] + t * (y[lo + 1] - y[lo])
    below = e * (y[0] / x[:, 0].clamp_min(1e-30))
    above = e * (y[-1] / x[:, -1].clamp_min(1e-30))
    out = torch.where(j == 0, below, torch.where(j >= n, above, inner))
    out = torch.where((flat_b == CONTEXT_BINS) | torch.isnan(flat_e), flat_e, out)
    return out.reshape(error.shape)
