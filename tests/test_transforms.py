"""Transforms (log10, clr, ilr, z-score, robust): numpy == dask, laziness, georeferencing."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr

import xprospect as xp
from xprospect.exceptions import DataError, XProspectError
from xprospect.preprocess import pivot_basis
from xprospect.testing import assert_georef_equal

METHODS = ["log10", "clr", "ilr", "zscore", "robust"]
FUNCS = {
    "log10": xp.preprocess.log10,
    "clr": xp.preprocess.clr,
    "ilr": xp.preprocess.ilr,
    "zscore": xp.preprocess.zscore,
    "robust": xp.preprocess.robust_scale,
}
ACCESSOR = {
    "log10": "log10",
    "clr": "clr",
    "ilr": "ilr",
    "zscore": "zscore",
    "robust": "robust_scale",
}
GRID_CHUNKS = {"y": 5, "x": 7}
SAMPLE_CHUNKS = {"sample": 37}


class _CountingScheduler:
    """A dask scheduler that raises once more than ``max_computes`` computes ran."""

    def __init__(self, max_computes: int = 0) -> None:
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk, keys, **kwargs):
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(
                f"too many dask computes: {self.total_computes} > {self.max_computes}"
            )
        return dask.get(dsk, keys, **kwargs)


def raise_if_dask_computes(max_computes: int = 0):
    return dask.config.set(scheduler=_CountingScheduler(max_computes))


@pytest.fixture(scope="module")
def survey():
    w = xp.synthetic.survey(seed=0, n_samples=300)
    grid = xp.make_grid(like=w.samples, resolution=2000)
    maps = xp.grid_idw(w.samples, like=grid).assign(mask=grid["mask"])
    return w.samples, maps


def _data(survey, kind: str, backend: str) -> xr.Dataset:
    samples, maps = survey
    ds = maps if kind == "grid" else samples
    if backend == "dask":
        ds = ds.chunk(GRID_CHUNKS if kind == "grid" else SAMPLE_CHUNKS)
    return ds


def _elements(ds: xr.Dataset) -> list[str]:
    return [
        str(n)
        for n, v in ds.data_vars.items()
        if v.dtype != bool and np.issubdtype(v.dtype, np.number)
    ]


@pytest.mark.parametrize("kind", ["grid", "samples"])
@pytest.mark.parametrize("method", METHODS)
def test_numpy_equals_dask_and_lazy(survey, backend, kind, method):
    ref = FUNCS[method](_data(survey, kind, "numpy"))
    ds = _data(survey, kind, backend)
    with raise_if_dask_computes():
        out = FUNCS[method](ds)
    new_vars = [n for n in out.data_vars if n not in ("mask",)]
    assert list(out.data_vars) == list(ref.data_vars)
    for n in new_vars:
        assert (out[n].chunks is not None) == (backend == "dask"), n
    out = out.compute()  # one pass: the clr centre is shared by every element
    for n in new_vars:
        assert out[n].dtype == ref[n].dtype, n
        assert out[n].dims == ref[n].dims, n
        np.testing.assert_allclose(out[n].values, ref[n].values, rtol=1e-5, atol=1e-6, err_msg=n)
        expected_attrs = {
            k: v
            for k, v in ref[n].attrs.items()
            if backend == "numpy" or not k.startswith(("zscore_", "robust_"))
        }
        assert out[n].attrs == expected_attrs, n


@pytest.mark.parametrize("method", METHODS)
def test_keeps_georeferencing_and_other_variables(survey, backend, method):
    ds = _data(survey, "grid", backend)
    out = FUNCS[method](ds)
    assert_georef_equal(out, ds)
    assert out.rio.crs == ds.rio.crs
    assert out.attrs == ds.attrs
    xr.testing.assert_identical(out["mask"], ds["mask"])
    samples = _data(survey, "samples", backend)
    s_out = FUNCS[method](samples)
    assert s_out.rio.crs == samples.rio.crs
    for c in ("x", "y", "sample_id", "spatial_ref"):
        xr.testing.assert_identical(s_out[c], samples[c])


def test_voxels_default_elements():
    vox = xp.make_voxels(
        (0, 0, -40, 100, 50, 0), resolution=(10, 25, 25), crs="EPSG:28350", chunks=(3, 2, 3)
    )
    rng = np.random.default_rng(1)
    for e in ("Au", "Cu", "Zn"):
        vox[e] = (("z", "y", "x"), rng.lognormal(size=vox["mask"].shape), {"units": "ppm"})
    out = xp.preprocess.clr(vox)
    assert set(out.data_vars) == {"mask", "Au", "Cu", "Zn"}
    np.testing.assert_allclose((out["Au"] + out["Cu"] + out["Zn"]).values, 0, atol=1e-12)
    assert_georef_equal(out, vox)


@pytest.mark.parametrize("method", METHODS)
def test_accessor_matches_function(survey, backend, method):
    ds = _data(survey, "grid", backend)
    expected = FUNCS[method](ds)
    xr.testing.assert_identical(getattr(ds.prospect, ACCESSOR[method])(), expected)
    xr.testing.assert_identical(ds.prospect.transform(method), expected)
    xr.testing.assert_identical(xp.preprocess.transform(ds, method), expected)


def test_transform_unknown_method_lists_valid_names(survey):
    with pytest.raises(XProspectError, match="valid methods: clr, ilr, log10, robust, zscore"):
        xp.preprocess.transform(survey[0], "logit")


def test_transform_passes_options(survey):
    samples = survey[0]
    out = xp.preprocess.transform(samples, "log10", elements=["Au"])
    xr.testing.assert_identical(out["Cu"], samples["Cu"])
    np.testing.assert_allclose(out["Au"].values, np.log10(samples["Au"].values))


def test_log10_values_units_and_elements(survey):
    samples = survey[0]
    out = xp.preprocess.log10(samples, elements=["Au", "Cu"])
    np.testing.assert_allclose(out["Au"].values, np.log10(samples["Au"].values))
    assert out["Au"].attrs["units"] == "log10(ppb)"
    assert out["Au"].attrs["xprospect_transform"] == "log10"
    assert "transform" not in out["Au"].attrs  # rioxarray reads that name as the affine
    xr.testing.assert_identical(out["Zn"], samples["Zn"])  # not selected: untouched
    twice = xp.preprocess.zscore(out, elements="Au")
    assert twice["Au"].attrs["xprospect_transform"] == "log10, zscore"


def test_log10_dataarray_and_nan(survey):
    au = survey[0]["Au"].copy()
    au[0] = np.nan
    out = xp.preprocess.log10(au)
    assert isinstance(out, xr.DataArray) and out.name == "Au"
    assert np.isnan(out[0]) and np.isfinite(out[1:]).all()
    xr.testing.assert_identical(au.prospect.log10(), out)


def test_default_elements_skip_bool_and_strings(survey):
    samples, maps = survey
    out = xp.preprocess.clr(maps)
    changed = [n for n in maps.data_vars if not out[n].identical(maps[n])]
    assert changed == list(xp.synthetic.DEFAULT_ELEMENTS)  # not the boolean mask
    flagged = samples.assign(flag=("sample", np.ones(300, bool)))
    out = xp.preprocess.zscore(flagged)
    xr.testing.assert_identical(out["flag"], flagged["flag"])
    xr.testing.assert_identical(out["sample_id"], samples["sample_id"])


def test_unknown_or_bad_elements_raise(survey):
    samples = survey[0]
    with pytest.raises(DataError, match="'Xx' is not a data variable"):
        xp.preprocess.log10(samples, elements=["Au", "Xx"])
    with pytest.raises(DataError, match="not a real numeric"):
        xp.preprocess.log10(samples.assign(flag=("sample", np.ones(300, bool))), elements="flag")
    with pytest.raises(DataError, match="found no numeric element variables"):
        xp.preprocess.log10(samples[[]])


# -- non-positive values ------------------------------------------------------------------


def _with_bad_values(samples: xr.Dataset) -> xr.Dataset:
    bad = samples.copy(deep=True)
    bad["As"][3] = 0.0
    bad["As"][100] = -5.0  # a below-detection code, in another dask chunk
    return bad


@pytest.mark.parametrize("method", ["log10", "clr", "ilr"])
def test_nonpositive_raise_now_on_numpy(survey, method):
    bad = _with_bad_values(survey[0])
    with pytest.raises(DataError, match=r"element 'As' has 2 non-positive value"):
        FUNCS[method](bad)


@pytest.mark.parametrize("method", ["log10", "clr", "ilr"])
def test_nonpositive_raise_on_compute_with_dask(survey, method):
    bad = _with_bad_values(survey[0]).chunk(SAMPLE_CHUNKS)
    with raise_if_dask_computes():
        out = FUNCS[method](bad)  # lazy: no check has run yet
    with pytest.raises(
        DataError,
        match=r"element 'As' has 1 non-positive value\(s\) in one "
        "dask chunk",
    ):
        out.compute()


# -- compositional ------------------------------------------------------------------------


def test_clr_formula_and_rows_sum_to_zero(survey, backend):
    ds = _data(survey, "samples", backend)
    out = xp.preprocess.clr(ds).compute()
    names = _elements(ds)
    logs = np.log(np.column_stack([survey[0][n].values for n in names]))
    expected = logs - logs.mean(axis=1, keepdims=True)
    got = np.column_stack([out[n].values for n in names])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 0, atol=1e-10)
    assert all(out[n].attrs["units"] == "clr" for n in names)


def test_clr_nan_part_gives_nan_cell(survey):
    samples = survey[0].copy(deep=True)
    samples["Au"][7] = np.nan
    out = xp.preprocess.clr(samples, elements=["Au", "Cu", "Zn"])
    assert all(np.isnan(out[n][7]) for n in ("Au", "Cu", "Zn"))
    assert np.isfinite(out["Cu"][8])


def test_clr_needs_two_parts(survey):
    with pytest.raises(DataError, match="at least 2 elements"):
        xp.preprocess.clr(survey[0], elements=["Au"])
    with pytest.raises(DataError, match="single DataArray"):
        xp.preprocess.clr(survey[0]["Au"])


def test_pivot_basis_orthonormal():
    for d in (2, 3, 7):
        v = pivot_basis(d)
        assert v.shape == (d - 1, d)
        np.testing.assert_allclose(v @ v.T, np.eye(d - 1), atol=1e-12)
        np.testing.assert_allclose(v.sum(axis=1), 0, atol=1e-12)
    with pytest.raises(DataError):
        pivot_basis(1)


def _aitchison(a: np.ndarray, b: np.ndarray) -> float:
    ca = np.log(a) - np.log(a).mean()
    cb = np.log(b) - np.log(b).mean()
    return float(np.sqrt(((ca - cb) ** 2).sum()))


def test_ilr_is_an_isometry(survey, backend):
    ds = _data(survey, "samples", backend)
    names = _elements(ds)
    out = xp.preprocess.ilr(ds).compute()
    z = np.column_stack([out[f"ilr{k}"].values for k in range(1, len(names))])
    x = np.column_stack([survey[0][n].values for n in names])
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, x.shape[0], size=(20, 2)):
        np.testing.assert_allclose(np.linalg.norm(z[i] - z[j]), _aitchison(x[i], x[j]), rtol=1e-10)
    # and equal to the basis applied to clr
    clr = np.log(x) - np.log(x).mean(axis=1, keepdims=True)
    np.testing.assert_allclose(z, clr @ pivot_basis(len(names)).T, rtol=1e-9, atol=1e-12)


def test_ilr_variables_and_attrs(survey):
    samples = survey[0]
    out = xp.preprocess.ilr(samples, elements=["Au", "Cu", "As"])
    assert [n for n in out.data_vars if str(n).startswith("ilr")] == ["ilr1", "ilr2"]
    assert "Au" not in out and "Zn" in out
    assert out["ilr1"].attrs["numerator"] == ["Au"]
    assert out["ilr1"].attrs["denominator"] == ["Cu", "As"]
    assert out["ilr2"].attrs["numerator"] == ["Cu"]
    assert out["ilr2"].attrs["denominator"] == ["As"]
    assert out["ilr1"].attrs["units"] == "ilr"
    expected = np.sqrt(2 / 3) * np.log(samples["Au"] / np.sqrt(samples["Cu"] * samples["As"]))
    np.testing.assert_allclose(out["ilr1"].values, expected.values, rtol=1e-10)


def test_ilr_bad_basis_and_clash(survey):
    samples = survey[0]
    with pytest.raises(DataError, match="valid bases"):
        xp.preprocess.ilr(samples, basis="sbp")
    with pytest.raises(DataError, match="overwrite existing variables"):
        xp.preprocess.ilr(samples.assign(ilr1=samples["Au"]), elements=["Au", "Cu", "As"])


# -- scaling ------------------------------------------------------------------------------


def test_zscore_numpy_stats_in_attrs(survey):
    maps = survey[1]
    out = xp.preprocess.zscore(maps)
    for n in _elements(maps):
        v = maps[n].values.astype("float64")
        assert out[n].attrs["zscore_mean"] == pytest.approx(np.nanmean(v))
        assert out[n].attrs["zscore_std"] == pytest.approx(np.nanstd(v))
        assert float(out[n].mean()) == pytest.approx(0, abs=1e-5)
        assert float(out[n].std()) == pytest.approx(1, rel=1e-5)
        assert out[n].attrs["units"] == "standard deviations"


def test_zscore_stats_apply_to_another_area(survey, backend):
    maps = survey[1]
    train = _data(survey, "grid", backend).isel(x=slice(0, 15))
    new = _data(survey, "grid", backend).isel(x=slice(15, None))
    mean, std = xp.preprocess.zscore_stats(train, elements=["Au", "Cu"])
    ref = maps.isel(x=slice(0, 15))
    assert mean["Au"] == pytest.approx(float(ref["Au"].astype("float64").mean()))
    with raise_if_dask_computes():
        out = xp.preprocess.zscore(new, elements=["Au", "Cu"], mean=mean, std=std)
    assert out["Au"].attrs["zscore_mean"] == mean["Au"]  # known numbers: stored on dask too
    expected = (maps["Au"].isel(x=slice(15, None)).values - mean["Au"]) / std["Au"]
    np.testing.assert_allclose(out["Au"].values, expected, rtol=1e-5, atol=1e-6)
    xr.testing.assert_identical(out["Zn"], new["Zn"])


def test_zscore_given_stats_errors(survey):
    samples = survey[0]
    with pytest.raises(DataError, match="both mean= and std="):
        xp.preprocess.zscore(samples, mean={"Au": 1.0})
    with pytest.raises(DataError, match=r"no value for elements \['Cu'\]"):
        xp.preprocess.zscore(samples, elements=["Au", "Cu"], mean={"Au": 1, "Cu": 2}, std={"Au": 1})
    with pytest.raises(DataError, match=r"element 'Au' is 0\.0"):
        xp.preprocess.zscore(samples, elements="Au", mean={"Au": 1}, std={"Au": 0})


def test_zscore_constant_element(survey):
    samples = survey[0].assign(Const=("sample", np.full(300, 2.0), {"units": "ppm"}))
    with pytest.raises(
        DataError, match=r"element 'Const' cannot be scaled: its standard deviation is 0\.0"
    ):
        xp.preprocess.zscore(samples)
    lazy = xp.preprocess.zscore(samples.chunk(SAMPLE_CHUNKS))  # checked when computed
    with pytest.raises(DataError, match="element 'Const'"):
        lazy["Const"].compute()
    np.testing.assert_allclose(
        lazy["Au"].values, xp.preprocess.zscore(samples, elements="Au")["Au"].values
    )


def test_robust_scale_median_and_iqr(survey, backend):
    maps = survey[1]
    out = xp.preprocess.robust_scale(_data(survey, "grid", backend))
    for n in _elements(maps):
        v = maps[n].values.astype("float64")
        q25, q50, q75 = np.nanpercentile(v, [25, 50, 75])
        np.testing.assert_allclose(out[n].values, (v - q50) / (q75 - q25), rtol=1e-5, atol=1e-6)
        assert out[n].attrs["units"] == "IQR"
        if backend == "numpy":
            assert out[n].attrs["robust_median"] == pytest.approx(q50)
            assert out[n].attrs["robust_iqr"] == pytest.approx(q75 - q25)
    median, iqr = xp.preprocess.robust_stats(_data(survey, "grid", backend), elements="Cu")
    np.testing.assert_allclose(
        [median["Cu"], iqr["Cu"]],
        [
            out["Cu"].attrs.get("robust_median", median["Cu"]),
            out["Cu"].attrs.get("robust_iqr", iqr["Cu"]),
        ],
    )


def test_robust_scale_zero_iqr(survey):
    v = np.ones(300)
    v[:10] = np.arange(10) + 2  # most values at one level: IQR 0
    samples = survey[0].assign(Ag=("sample", v, {"units": "ppm"}))
    with pytest.raises(
        DataError, match=r"element 'Ag' cannot be scaled: its interquartile range is 0\.0"
    ):
        xp.preprocess.robust_scale(samples)
    lazy = xp.preprocess.robust_scale(samples.chunk(SAMPLE_CHUNKS))
    with pytest.raises(DataError, match="element 'Ag'"):
        lazy.compute()
