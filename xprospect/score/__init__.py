"""Scoring: a model over a whole stack, lazily per chunk, stitched back on the grid."""

from __future__ import annotations

from xprospect.score.core import EDGE_MODES, NAN_MODES, score
from xprospect.score.lattice import UPSAMPLE_MODES, lattice_size

__all__ = ["EDGE_MODES", "NAN_MODES", "UPSAMPLE_MODES", "lattice_size", "score"]
