"""Deprecated home of the weight-surgery helpers: use :mod:`xprospect.models.weights`."""

from __future__ import annotations

import warnings

from xprospect.exceptions import XProspectDeprecationWarning
from xprospect.models.weights import (
    adapt_first_conv,
    first_conv_name,
    freeze,
    load_compatible_state_dict,
    unfreeze,
)

__all__ = [
    "adapt_first_conv",
    "first_conv_name",
    "freeze",
    "load_compatible_state_dict",
    "unfreeze",
]

warnings.warn(
    "xprospect.models.transfer is deprecated and will be removed: import from "
    "xprospect.models.weights (same functions)",
    XProspectDeprecationWarning,
    stacklevel=2,
)
