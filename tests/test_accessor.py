"""The .prospect accessors: a Dataset one and a DataArray one sharing a base."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xprospect as xp
from xprospect.accessor import (
    ProspectAccessor,
    ProspectDataArrayAccessor,
    ProspectDatasetAccessor,
)

DATASET_ONLY = {"idw", "stack", "clr", "ilr", "composite"}
DATAARRAY_ONLY = {"patches", "evaluate", "targets", "minmax", "fractal_thresholds"}
# `score` is on both: a stack (DataArray) or a samples table (Dataset with a sample dim)
BOTH = {"score"}
SHARED = {
    "transform",
    "log10",
    "zscore",
    "robust_scale",
    "to_zarr",
    "to_geotiff",
    "select_elements",
    "mask_distance",
    "to_block_csv",
    "plot_slices",
    "plot_section",
    "to_vtk",
}


def _public(obj):
    return {n for n in dir(obj) if not n.startswith("_")}


def test_each_type_offers_only_what_applies():
    ds = xr.Dataset({"Cu": (("y", "x"), np.ones((2, 3)))})
    da = ds["Cu"]
    assert isinstance(ds.prospect, ProspectDatasetAccessor)
    assert isinstance(da.prospect, ProspectDataArrayAccessor)
    assert DATASET_ONLY <= _public(ds.prospect)
    assert DATAARRAY_ONLY <= _public(da.prospect)
    assert not DATASET_ONLY & _public(da.prospect)
    assert not DATAARRAY_ONLY & _public(ds.prospect)
    assert BOTH <= _public(ds.prospect) & _public(da.prospect)
    assert SHARED <= _public(ds.prospect) & _public(da.prospect)
    with pytest.raises(xp.XProspectError, match="samples table"):
        ds.prospect.score(object())  # a grid Dataset is not a stack: it says how to make one
    with pytest.raises(AttributeError):
        da.prospect.stack  # noqa: B018  (a DataArray is already one)


def test_the_base_stays_importable_from_the_package():
    assert xp.ProspectAccessor is ProspectAccessor
    assert issubclass(ProspectDatasetAccessor, ProspectAccessor)
    assert issubclass(ProspectDataArrayAccessor, ProspectAccessor)
    assert _public(ProspectAccessor) == SHARED


def test_readme_chain_runs_on_the_types_it_names():
    w = xp.synthetic.survey(seed=0, n_samples=200, elements=["Cu", "Pb", "Zn"])
    grid = xp.make_grid(like=w.samples, resolution=2000)
    maps = w.samples.prospect.idw(like=grid, k=8)[["Cu", "Pb", "Zn"]]
    maps = maps.prospect.transform("clr").prospect.zscore()
    stack = maps.prospect.stack(["Cu", "Zn"])
    assert isinstance(stack, xr.DataArray) and stack.dims[0] == "element"
    xr.testing.assert_identical(stack, xp.stack_elements(maps, ["Cu", "Zn"]))
    scaled = stack.isel(element=0, drop=True).prospect.minmax()
    assert float(scaled.min()) == 0.0 and float(scaled.max()) == 1.0
