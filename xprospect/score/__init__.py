"""Scoring: a model over a whole stack, lazily per chunk, stitched back on the grid.

:func:`score` is the one verb that applies a fitted model of the package (a network or a
baseline) to a stack (:mod:`xprospect.score.engine`); point tables are scored by
:func:`score_samples` and gridded by :func:`points_score_map` (:mod:`xprospect.score.samples`).
"""

from __future__ import annotations

from xprospect.score.engine import EDGE_MODES, NAN_MODES, score
from xprospect.score.lattice import UPSAMPLE_MODES, lattice_size
from xprospect.score.samples import points_score_map, score_samples

__all__ = [
    "EDGE_MODES",
    "NAN_MODES",
    "UPSAMPLE_MODES",
    "lattice_size",
    "points_score_map",
    "score",
    "score_samples",
]
