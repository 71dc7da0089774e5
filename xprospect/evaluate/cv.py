"""Former home of spatial block cross-validation; see :mod:`xprospect.evaluate.splits`.

Importing a name from here still works and raises a ``FutureWarning`` naming its new home.
"""

from __future__ import annotations

import warnings
from typing import Any

from xprospect.evaluate import splits
from xprospect.exceptions import XProspectDeprecationWarning

__all__: list[str] = []

_MOVED = ("spatial_block_folds", "spatial_fold_ids")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"xprospect.evaluate.cv.{name} moved to xprospect.evaluate.splits.{name}; "
            "import it from there (or from xprospect.evaluate)",
            XProspectDeprecationWarning,
            stacklevel=2,
        )
        return getattr(splits, name)
    raise AttributeError(f"module 'xprospect.evaluate.cv' has no attribute {name!r}")
