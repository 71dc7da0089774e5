"""The ``.prospect`` accessor: one-line methods over xprospect's functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import xarray as xr

__all__ = ["ProspectAccessor"]


class ProspectAccessor:
    """xprospect methods on xarray objects, each a thin call of its function twin.

    The accessor holds no state beyond the object it wraps.
    """

    def __init__(self, obj: xr.Dataset | xr.DataArray) -> None:
        self._obj = obj

    def idw(self, *, like: xr.Dataset | xr.DataArray, k: int | None = 12, power: float = 2.0,
            radius: float | None = None, min_points: int = 1,
            anisotropy: Mapping[str, Any] | None = None, elements: Sequence[str] | None = None,
            dtype: Any = "float32", chunks: Any = None) -> xr.Dataset:
        """Grid these samples by IDW; see :func:`xprospect.grid_idw`."""
        from xprospect.grid import grid_idw

        return grid_idw(self._obj, like=like, k=k, power=power, radius=radius,
                        min_points=min_points, anisotropy=anisotropy, elements=elements,
                        dtype=dtype, chunks=chunks)


xr.register_dataset_accessor("prospect")(ProspectAccessor)
xr.register_dataarray_accessor("prospect")(ProspectAccessor)
