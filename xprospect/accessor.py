"""The ``.prospect`` accessors: one-line methods over xprospect's functions.

As rioxarray splits ``.rio`` into ``RasterDataset`` and ``RasterArray``, ``.prospect`` is a
Dataset accessor (:class:`ProspectDatasetAccessor`: sample tables and element maps, e.g.
``samples.prospect.idw``, ``maps.prospect.stack``) and a DataArray accessor
(:class:`ProspectDataArrayAccessor`: stacks and score maps, e.g. ``stack.prospect.score``,
``score.prospect.evaluate``) sharing a base (:class:`ProspectAccessor`) with what applies to
both, so each type offers only what applies to it. The accessors hold no state beyond the
object they wrap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

import xarray as xr

from xprospect._dims import SAMPLE_DIM
from xprospect.exceptions import DataError
from xprospect.grid import grid_idw, grid_kriging, stack_elements
from xprospect.io.blockmodel import (
    plot_section,
    plot_slices,
    to_block_csv,
    to_vtk,
)
from xprospect.io.desurvey import composite
from xprospect.io.raster import to_geotiff
from xprospect.io.store import to_zarr
from xprospect.patches import make_patches
from xprospect.preprocess import clr, ilr, log10, robust_scale, transform, zscore
from xprospect.preprocess.fractal import fractal_thresholds
from xprospect.preprocess.scaling import minmax_scale
from xprospect.score import score

__all__ = ["ProspectAccessor", "ProspectDataArrayAccessor", "ProspectDatasetAccessor"]

T = TypeVar("T", xr.Dataset, xr.DataArray)


class ProspectAccessor(Generic[T]):
    """Methods common to the Dataset and DataArray accessors, each calling its function twin.

    The base of :class:`ProspectDatasetAccessor` and :class:`ProspectDataArrayAccessor`.
    """

    def __init__(self, obj: T) -> None:
        self._obj: T = obj

    def transform(self, method: str, **kwargs: Any) -> xr.Dataset | xr.DataArray:
        """Apply a transform by name; see :func:`xprospect.preprocess.transform`."""
        return transform(self._obj, method, **kwargs)

    def log10(self, *, elements: Sequence[str] | None = None) -> xr.Dataset | xr.DataArray:
        """Base-10 log of elements; see :func:`xprospect.preprocess.log10`."""
        return log10(self._obj, elements=elements)

    def zscore(
        self,
        *,
        elements: Sequence[str] | None = None,
        mean: Mapping[str, float] | None = None,
        std: Mapping[str, float] | None = None,
    ) -> xr.Dataset | xr.DataArray:
        """Standardise elements; see :func:`xprospect.preprocess.zscore`."""
        return zscore(self._obj, elements=elements, mean=mean, std=std)

    def robust_scale(
        self,
        *,
        elements: Sequence[str] | None = None,
        median: Mapping[str, float] | None = None,
        iqr: Mapping[str, float] | None = None,
    ) -> xr.Dataset | xr.DataArray:
        """Scale by median and IQR; see :func:`xprospect.preprocess.robust_scale`."""
        return robust_scale(self._obj, elements=elements, median=median, iqr=iqr)

    def to_zarr(self, store: Any, **kwargs: Any) -> Any:
        """Write to a zarr store keeping the CRS; see :func:`xprospect.to_zarr`."""
        return to_zarr(self._obj, store, **kwargs)

    def to_geotiff(self, path: Any, **kwargs: Any) -> list:
        """Write (y, x) variables to GeoTIFF; see :func:`xprospect.to_geotiff`."""
        return to_geotiff(self._obj, path, **kwargs)

    def select_elements(
        self,
        deposits: Any,
        *,
        negatives: Any = None,
        buffer: float | None = None,
        alpha: float = 0.01,
        elements: Sequence[str] | None = None,
        seed: int = 0,
        svm: bool = False,
        depleted: bool = False,
        oxides: str | None = "stronger",
    ) -> Any:
        """Select elements by Z_AUC; see :func:`xprospect.evidence.select_elements`."""
        # lazy: evidence compiles its kernels on import (seconds), kept off `import xprospect`
        from xprospect.evidence.selection import select_elements

        return select_elements(
            self._obj,
            deposits,
            negatives=negatives,
            buffer=buffer,
            alpha=alpha,
            elements=elements,
            seed=seed,
            svm=svm,
            depleted=depleted,
            oxides=oxides,
        )

    def mask_distance(
        self,
        samples: xr.Dataset,
        *,
        max_distance: float,
        anisotropy: Mapping[str, Any] | None = None,
    ) -> xr.Dataset | xr.DataArray:
        """NaN voxels far from every sample; see :func:`xprospect.mask_distance`."""
        # lazy: evidence compiles its kernels on import (seconds), kept off `import xprospect`
        from xprospect.evidence.proximity import mask_distance

        return mask_distance(self._obj, samples, max_distance=max_distance, anisotropy=anisotropy)

    def to_block_csv(self, path: Any, **kwargs: Any) -> Any:
        """Write voxels as x, y, z, value rows; see :func:`xprospect.io.to_block_csv`."""
        return to_block_csv(self._obj, path, **kwargs)

    def plot_slices(self, var: str | None = None, **kwargs: Any) -> Any:
        """Plan slices of voxels as PNG; see :func:`xprospect.io.plot_slices`."""
        return plot_slices(self._obj, var, **kwargs)

    def plot_section(self, var: str | None = None, **kwargs: Any) -> Any:
        """Vertical section of voxels as PNG; see :func:`xprospect.io.plot_section`."""
        return plot_section(self._obj, var, **kwargs)

    def to_vtk(self, path: Any, **kwargs: Any) -> Any:
        """Write voxels as a VTK image (pyvista extra); see :func:`xprospect.io.to_vtk`."""
        return to_vtk(self._obj, path, **kwargs)


@xr.register_dataset_accessor("prospect")
class ProspectDatasetAccessor(ProspectAccessor[xr.Dataset]):
    """``ds.prospect``: sample tables and element maps (gridding, stacking, log-ratios)."""

    def idw(
        self,
        *,
        like: xr.Dataset | xr.DataArray,
        k: int | None = 12,
        power: float = 2.0,
        radius: float | None = None,
        min_points: int = 1,
        anisotropy: Mapping[str, Any] | None = None,
        elements: Sequence[str] | None = None,
        dtype: Any = "float32",
        chunks: Any = None,
    ) -> xr.Dataset:
        """Grid these samples by IDW; see :func:`xprospect.grid_idw`."""
        return grid_idw(
            self._obj,
            like=like,
            k=k,
            power=power,
            radius=radius,
            min_points=min_points,
            anisotropy=anisotropy,
            elements=elements,
            dtype=dtype,
            chunks=chunks,
        )

    def krige(
        self,
        *,
        like: xr.Dataset | xr.DataArray,
        variogram_model: str = "spherical",
        variogram_parameters: Mapping[str, Any] | None = None,
        k: int = 16,
        radius: float | None = None,
        **kwargs: Any,
    ) -> xr.Dataset:
        """Grid these samples by ordinary kriging; see :func:`xprospect.grid_kriging`."""
        return grid_kriging(
            self._obj,
            like=like,
            variogram_model=variogram_model,
            variogram_parameters=variogram_parameters,
            k=k,
            radius=radius,
            **kwargs,
        )

    def stack(self, elements: Sequence[str] | None = None) -> xr.DataArray:
        """Stack element maps into (element, y, x); see :func:`xprospect.stack_elements`."""
        return stack_elements(self._obj, elements)

    def clr(self, *, elements: Sequence[str] | None = None) -> xr.Dataset:
        """Centred log-ratio; see :func:`xprospect.preprocess.clr`."""
        return clr(self._obj, elements=elements)

    def ilr(self, *, elements: Sequence[str] | None = None, basis: str = "pivot") -> xr.Dataset:
        """Isometric log-ratio balances; see :func:`xprospect.preprocess.ilr`."""
        return ilr(self._obj, elements=elements, basis=basis)

    def score(self, model: Any, **kwargs: Any) -> xr.DataArray:
        """Score each sample of this samples table; see :func:`xprospect.score.score`."""
        if SAMPLE_DIM not in self._obj.dims:
            msg = (
                f"a Dataset is scored only as a samples table (dim {SAMPLE_DIM!r}); this one has "
                f"dims {tuple(self._obj.dims)}: stack its maps first, "
                "ds.prospect.stack(elements).prospect.score(model)"
            )
            raise DataError(msg)
        return score(self._obj, model, **kwargs)

    def composite(
        self,
        *,
        length: float = 2.0,
        by: str | None = None,
        min_coverage: float = 0.5,
        dropna: bool = True,
    ) -> xr.Dataset:
        """Fixed-length composites of desurveyed intervals; see :func:`xprospect.io.composite`."""
        return composite(self._obj, length=length, by=by, min_coverage=min_coverage, dropna=dropna)


@xr.register_dataarray_accessor("prospect")
class ProspectDataArrayAccessor(ProspectAccessor[xr.DataArray]):
    """``da.prospect``: stacks (element, ...) and score maps (windows, scoring, evaluation)."""

    def patches(
        self,
        *,
        positives: Any,
        negatives: Any = 225,
        size: Any = 256,
        jitter: Any = 64,
        **kwargs: Any,
    ) -> Any:
        """Cut labelled training windows; see :func:`xprospect.patches.make_patches`."""
        return make_patches(
            self._obj, positives=positives, negatives=negatives, size=size, jitter=jitter, **kwargs
        )

    def score(self, model: Any, **kwargs: Any) -> xr.DataArray:
        """Apply a fitted model to this stack lazily; see :func:`xprospect.score.score`."""
        return score(self._obj, model, **kwargs)

    def evaluate(
        self,
        deposits: Any,
        *,
        negatives: Any = None,
        buffer: float | None = None,
        threshold: float | None = None,
        top_percent: float | None = None,
        blocks: Any = (12, 12),
        ci: str = "hanley",
        level: float = 0.95,
        seed: int = 0,
    ) -> Any:
        """Evaluate this score map against deposits; see :func:`xprospect.evaluate.evaluate`."""
        # lazy: evaluate compiles its kernels on import (seconds), kept off `import xprospect`
        from xprospect.evaluate.report import evaluate

        return evaluate(
            self._obj,
            deposits,
            negatives=negatives,
            buffer=buffer,
            threshold=threshold,
            top_percent=top_percent,
            blocks=blocks,
            ci=ci,
            level=level,
            seed=seed,
        )

    def targets(self, **kwargs: Any) -> Any:
        """Delineate ranked target regions; see :func:`xprospect.evaluate.targets`."""
        # lazy: evaluate compiles its kernels on import (seconds), kept off `import xprospect`
        from xprospect.evaluate.delineate import targets

        return targets(self._obj, **kwargs)

    def minmax(self) -> xr.DataArray:
        """Scale to [0, 1] globally; see :func:`xprospect.preprocess.scaling.minmax_scale`."""
        return minmax_scale(self._obj)

    def fractal_thresholds(self, **kwargs: Any) -> Any:
        """C-A / C-V fractal thresholds; see :func:`xprospect.preprocess.fractal_thresholds`."""
        return fractal_thresholds(self._obj, **kwargs)

    # -- maps that say how sure they are (xprospect.evaluate) ---------------------------

    def ensemble(self, models: Sequence[Any], **kwargs: Any) -> xr.Dataset:
        """Mean and std maps of fitted models; see :func:`xprospect.evaluate.ensemble_map`."""
        # lazy: evaluate compiles its kernels on import (seconds), kept off `import xprospect`
        from xprospect.evaluate.uncertainty import ensemble_map

        return ensemble_map(self._obj, models, **kwargs)

    def mc_dropout(self, model: Any, **kwargs: Any) -> xr.Dataset:
        """Monte Carlo dropout mean and std; see :func:`xprospect.evaluate.mc_dropout_map`."""
        # lazy: as above
        from xprospect.evaluate.uncertainty import mc_dropout_map

        return mc_dropout_map(self._obj, model, **kwargs)

    def applicability(self, train: Any, **kwargs: Any) -> xr.Dataset:
        """DI map and AOA mask; see :func:`xprospect.evaluate.area_of_applicability`."""
        # lazy: as above
        from xprospect.evaluate.applicability import area_of_applicability

        return area_of_applicability(self._obj, train, **kwargs)

    def occlusion(self, model: Any, **kwargs: Any) -> xr.Dataset:
        """Occlusion attribution per element; see :func:`xprospect.evaluate.occlusion_maps`."""
        # lazy: as above
        from xprospect.evaluate.attribution import occlusion_maps

        return occlusion_maps(self._obj, model, **kwargs)

    def integrated_gradients(self, model: Any, **kwargs: Any) -> xr.Dataset:
        """Integrated gradients per element; see :func:`xprospect.evaluate.attribution`."""
        # lazy: as above
        from xprospect.evaluate.attribution import integrated_gradients_maps

        return integrated_gradients_maps(self._obj, model, **kwargs)

    def calibrate(self, calibrator: Any) -> xr.DataArray:
        """Calibrated probabilities of this score map; see :meth:`Calibrator.apply`."""
        return calibrator.apply(self._obj)
