"""Former home of background ground; see :mod:`xprospect.evidence.background`.

``normal_mask`` moved to :mod:`xprospect.evidence.background` and the block split of
normal ground (``block_split``, ``choose_blocks``) to :mod:`xprospect.evaluate.splits`.
Names imported from here still work and raise a ``FutureWarning`` naming their new home.
"""

from __future__ import annotations

import warnings
from typing import Any

from xprospect.evaluate import splits
from xprospect.evidence import background
from xprospect.exceptions import XProspectDeprecationWarning

__all__: list[str] = []

_MOVED = {"normal_mask": background, "block_split": splits, "choose_blocks": splits}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        home = _MOVED[name]
        warnings.warn(
            f"xprospect.evidence.normal.{name} moved to {home.__name__}.{name}",
            XProspectDeprecationWarning,
            stacklevel=2,
        )
        return getattr(home, name)
    raise AttributeError(f"module 'xprospect.evidence.normal' has no attribute {name!r}")
