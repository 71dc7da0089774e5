"""Deprecated module: the 3-D synthetic world is :mod:`xprospect.synthetic.orebodies`.

Every name still resolves, with a ``FutureWarning`` naming its new home:
``orebody_world`` -> :func:`xprospect.synthetic.orebody`, ``World3D`` ->
:class:`xprospect.synthetic.OrebodyWorld`, ``ELEMENTS_3D`` ->
:data:`xprospect.synthetic.ELEMENTS_3D`.
"""

from __future__ import annotations

import warnings
from typing import Any

from xprospect.exceptions import XProspectDeprecationWarning
from xprospect.synthetic import orebodies as _orebodies

_RENAMED = {
    "orebody_world": ("orebody", "xprospect.synthetic.orebody"),
    "World3D": ("OrebodyWorld", "xprospect.synthetic.OrebodyWorld"),
    "ELEMENTS_3D": ("ELEMENTS_3D", "xprospect.synthetic.ELEMENTS_3D"),
}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        attr, new = _RENAMED[name]
        warnings.warn(
            f"xprospect.synthetic3d.{name} is deprecated; use {new}",
            XProspectDeprecationWarning,
            stacklevel=2,
        )
        return getattr(_orebodies, attr)
    raise AttributeError(f"module 'xprospect.synthetic3d' has no attribute {name!r}")
