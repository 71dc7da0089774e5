"""Transforms of element variables before modelling: logs, log-ratios, balances, scaling.

Every transform takes a grid, voxel model or sample table (numpy or dask backed),
keeps coordinates, CRS, attrs and non-element variables, and stays lazy on dask.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from xprospect.exceptions import XProspectError
from xprospect.preprocess.compositional import (
    FRONT_HALO,
    NEAR_ORE_HALO,
    TAIL_HALO,
    balance,
    clr,
    halo_ratio,
    ilr,
    pivot_basis,
)
from xprospect.preprocess.factors import FACTOR_DIM, factor_analysis, factor_label
from xprospect.preprocess.fractal import (
    FractalThresholds,
    classify_fractal,
    concentration_area,
    concentration_volume,
    fractal_thresholds,
)
from xprospect.preprocess.scaling import (
    HISTORY_ATTR,
    log10,
    minmax_scale,
    robust_scale,
    robust_stats,
    transform_history,
    zscore,
    zscore_stats,
)

__all__ = [
    "FACTOR_DIM",
    "FRONT_HALO",
    "HISTORY_ATTR",
    "NEAR_ORE_HALO",
    "TAIL_HALO",
    "TRANSFORMS",
    "FractalThresholds",
    "balance",
    "classify_fractal",
    "clr",
    "concentration_area",
    "concentration_volume",
    "factor_analysis",
    "factor_label",
    "fractal_thresholds",
    "halo_ratio",
    "ilr",
    "log10",
    "minmax_scale",
    "pivot_basis",
    "robust_scale",
    "robust_stats",
    "transform",
    "transform_history",
    "zscore",
    "zscore_stats",
]

#: Transform names accepted by :func:`transform`, and the function each calls.
TRANSFORMS = {
    "clr": clr,
    "ilr": ilr,
    "log10": log10,
    "robust": robust_scale,
    "zscore": zscore,
}


def transform(
    ds: xr.Dataset | xr.DataArray, method: str, **kwargs: Any
) -> xr.Dataset | xr.DataArray:
    """Apply a transform chosen by name (e.g. from a configuration file).

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        Grid, voxels or samples.
    method : {"log10", "clr", "ilr", "zscore", "robust"}
        The transform: :func:`log10`, :func:`clr`, :func:`ilr`, :func:`zscore` or
        :func:`robust_scale`.
    **kwargs
        Options of that function (``elements=``, ``mean=``, ...).

    Returns
    -------
    xarray.Dataset or DataArray
        What the chosen function returns.

    Raises
    ------
    XProspectError
        For an unknown ``method``, listing the valid names.

    Examples
    --------
    >>> import xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu"])
    >>> xp.preprocess.transform(w.samples, "clr")["Au"].attrs["units"]
    'clr'
    """
    func: Any = TRANSFORMS.get(method) if isinstance(method, str) else None
    if func is None:
        msg = f"unknown transform {method!r}; valid methods: {', '.join(sorted(TRANSFORMS))}"
        raise XProspectError(msg)
    return func(ds, **kwargs)
