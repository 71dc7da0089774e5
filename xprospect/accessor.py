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

    def stack(self, elements: Sequence[str] | None = None) -> xr.DataArray:
        """Stack element maps into (element, y, x); see :func:`xprospect.stack_elements`."""
        from xprospect.grid import stack_elements

        return stack_elements(self._obj, elements)  # type: ignore[arg-type]

    def transform(self, method: str, **kwargs: Any) -> xr.Dataset | xr.DataArray:
        """Apply a transform by name; see :func:`xprospect.preprocess.transform`."""
        from xprospect.preprocess import transform

        return transform(self._obj, method, **kwargs)

    def log10(self, *, elements: Sequence[str] | None = None) -> xr.Dataset | xr.DataArray:
        """Base-10 log of elements; see :func:`xprospect.preprocess.log10`."""
        from xprospect.preprocess import log10

        return log10(self._obj, elements=elements)

    def clr(self, *, elements: Sequence[str] | None = None) -> xr.Dataset:
        """Centred log-ratio; see :func:`xprospect.preprocess.clr`."""
        from xprospect.preprocess import clr

        return clr(self._obj, elements=elements)  # type: ignore[arg-type]

    def ilr(self, *, elements: Sequence[str] | None = None, basis: str = "pivot") -> xr.Dataset:
        """Isometric log-ratio balances; see :func:`xprospect.preprocess.ilr`."""
        from xprospect.preprocess import ilr

        return ilr(self._obj, elements=elements, basis=basis)  # type: ignore[arg-type]

    def zscore(self, *, elements: Sequence[str] | None = None,
               mean: Mapping[str, float] | None = None,
               std: Mapping[str, float] | None = None) -> xr.Dataset | xr.DataArray:
        """Standardise elements; see :func:`xprospect.preprocess.zscore`."""
        from xprospect.preprocess import zscore

        return zscore(self._obj, elements=elements, mean=mean, std=std)

    def robust_scale(self, *, elements: Sequence[str] | None = None,
                     median: Mapping[str, float] | None = None,
                     iqr: Mapping[str, float] | None = None) -> xr.Dataset | xr.DataArray:
        """Scale by median and IQR; see :func:`xprospect.preprocess.robust_scale`."""
        from xprospect.preprocess import robust_scale

        return robust_scale(self._obj, elements=elements, median=median, iqr=iqr)

    def to_zarr(self, store: Any, **kwargs: Any) -> Any:
        """Write to a zarr store keeping the CRS; see :func:`xprospect.to_zarr`."""
        from xprospect.io.store import to_zarr

        return to_zarr(self._obj, store, **kwargs)

    def to_geotiff(self, path: Any, **kwargs: Any) -> list:
        """Write (y, x) variables to GeoTIFF; see :func:`xprospect.to_geotiff`."""
        from xprospect.io.raster import to_geotiff

        return to_geotiff(self._obj, path, **kwargs)


xr.register_dataset_accessor("prospect")(ProspectAccessor)
xr.register_dataarray_accessor("prospect")(ProspectAccessor)
