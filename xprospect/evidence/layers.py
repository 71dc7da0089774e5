"""Former home of the evidence-layer functions; each now lives where its concern does.

* balances, halo ratios and the halo element groups: :mod:`xprospect.preprocess.compositional`;
* distance to and buffers around structures: :mod:`xprospect.evidence.proximity`;
* the Zaozigou study's recipe ``build``: :func:`xprospect.evidence.zaozigou.zaozigou_layers`.

Names imported from here still work and raise a ``FutureWarning`` naming their new home.
"""

from __future__ import annotations

import warnings
from typing import Any

import xarray as xr

from xprospect.evidence import proximity
from xprospect.evidence.zaozigou import zaozigou_layers
from xprospect.exceptions import XProspectDeprecationWarning
from xprospect.preprocess import compositional

__all__ = ["build"]

_MOVED = {
    "FRONT_HALO": compositional,
    "NEAR_ORE_HALO": compositional,
    "TAIL_HALO": compositional,
    "balance": compositional,
    "halo_ratio": compositional,
    "buffer_structures": proximity,
    "distance_to_structures": proximity,
}


def build(block: xr.Dataset, **kwargs: Any) -> xr.Dataset:
    """Evidence layers of the Zaozigou study; renamed :func:`zaozigou_layers`.

    .. deprecated::
        Use :func:`xprospect.evidence.zaozigou_layers`, which takes the same arguments.

    Parameters
    ----------
    block : xarray.Dataset
        Voxel model (or 2-D grid) with one variable per element.
    **kwargs
        Options of :func:`~xprospect.evidence.zaozigou_layers`.

    Returns
    -------
    xarray.Dataset
        What :func:`~xprospect.evidence.zaozigou_layers` returns.
    """
    warnings.warn(
        "xprospect.evidence.build is renamed xprospect.evidence.zaozigou_layers "
        "(the Zaozigou study's layer recipe)",
        XProspectDeprecationWarning,
        stacklevel=2,
    )
    return zaozigou_layers(block, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        home = _MOVED[name]
        warnings.warn(
            f"xprospect.evidence.layers.{name} moved to {home.__name__}.{name}",
            XProspectDeprecationWarning,
            stacklevel=2,
        )
        return getattr(home, name)
    raise AttributeError(f"module 'xprospect.evidence.layers' has no attribute {name!r}")
