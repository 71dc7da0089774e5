"""Deprecated home of the stack scoring engine: use :mod:`xprospect.score.engine`."""

from __future__ import annotations

import warnings

from xprospect.exceptions import XProspectDeprecationWarning
from xprospect.score.engine import EDGE_MODES, NAN_MODES, score

__all__ = ["EDGE_MODES", "NAN_MODES", "score"]

warnings.warn(
    "xprospect.score.core is deprecated and will be removed: import score from xprospect.score "
    "(the engine now lives in xprospect.score.engine)",
    XProspectDeprecationWarning,
    stacklevel=2,
)
