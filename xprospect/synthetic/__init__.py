"""Synthetic worlds with known truth, shared by tests, examples, benchmarks and the demo.

Three worlds, each made by one function and described by one class:

* :func:`survey` -> :class:`SurveyWorld`: a 2-D stream-sediment-like survey with deposits
  whose zoned halos are known everywhere (:mod:`xprospect.synthetic.surveys`);
* :func:`orebody` -> :class:`OrebodyWorld`: a 3-D drilled volume with a buried, dipping
  lens-shaped orebody, zoned primary halos, a fault and the ore wireframe
  (:mod:`xprospect.synthetic.orebodies`);
* :func:`province` -> :class:`ProvinceWorld`: a 2-D mineral-system province of geology,
  structure and geophysics rasters with deposits drawn from a known favourability
  (:mod:`xprospect.synthetic.provinces`).

The old names ``SyntheticWorld`` and ``World3D`` still resolve, with a ``FutureWarning``.
"""

from __future__ import annotations

import warnings
from typing import Any

from xprospect.exceptions import XProspectDeprecationWarning
from xprospect.synthetic.orebodies import ELEMENTS_3D, OrebodyWorld, orebody
from xprospect.synthetic.provinces import UNITS, ProvinceWorld, province
from xprospect.synthetic.surveys import DEFAULT_ELEMENTS, SurveyWorld, survey

__all__ = [
    "DEFAULT_ELEMENTS",
    "ELEMENTS_3D",
    "UNITS",
    "OrebodyWorld",
    "ProvinceWorld",
    "SurveyWorld",
    "orebody",
    "province",
    "survey",
]

# old name -> (new object, new name)
_RENAMED: dict[str, tuple[Any, str]] = {
    "SyntheticWorld": (SurveyWorld, "xprospect.synthetic.SurveyWorld"),
    "World3D": (OrebodyWorld, "xprospect.synthetic.OrebodyWorld"),
}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        obj, new = _RENAMED[name]
        warnings.warn(
            f"xprospect.synthetic.{name} is deprecated; use {new}",
            XProspectDeprecationWarning,
            stacklevel=2,
        )
        return obj
    raise AttributeError(f"module 'xprospect.synthetic' has no attribute {name!r}")
