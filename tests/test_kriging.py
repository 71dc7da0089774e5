"""Ordinary kriging: dense oracle, exactness, variance, backends, laziness and bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
from reference import ordinary_kriging_dense

import xprospect as xp
from xprospect.grid import OrdinaryKriging
from xprospect.grid.base import anisotropy_matrix
from xprospect.grid.variogram import MIN_PAIRS, experimental_variogram, fit_variogram, variogram
from xprospect.testing import assert_georef_equal

CRS = "EPSG:32750"


def _samples(rng, n, ndim, n_el=2, extent=1000.0):
    pts = rng.uniform(0, extent, (n, ndim))
    vals = rng.lognormal(size=(n, n_el)) + pts[:, :1] / extent  # a trend: a real variogram
    coords = {"x": ("sample", pts[:, 0]), "y": ("sample", pts[:, 1])}
    if ndim == 3:
        coords["z"] = ("sample", pts[:, 2])
    ds = xr.Dataset(
        {f"E{i}": ("sample", vals[:, i], {"units": "ppm"}) for i in range(n_el)}, coords=coords
    )
    return xp._dims.write_crs(ds, CRS), pts, vals


def _template(ndim, chunks=None):
    if ndim == 2:
        return xp.make_grid((0, 0, 1000, 1000), resolution=(37, 41), crs=CRS, chunks=chunks)
    return xp.make_voxels(
        (0, 0, 0, 1000, 1000, 1000), resolution=(90, 110, 70), crs=CRS, chunks=chunks
    )


def _nodes(grid):
    if "z" in grid.dims:
        zz, yy, xx = np.meshgrid(grid.z.values, grid.y.values, grid.x.values, indexing="ij")
        return np.column_stack([xx.ravel(), yy.ravel(), zz.ravel()])
    yy, xx = np.meshgrid(grid.y.values, grid.x.values, indexing="ij")
    return np.column_stack([xx.ravel(), yy.ravel()])


def _points(xyz):
    coords = {"x": ("p", xyz[:, 0]), "y": ("p", xyz[:, 1])}
    if xyz.shape[1] == 3:
        coords["z"] = ("p", xyz[:, 2])
    return xr.Dataset(coords=coords)


PARAMS = {"psill": 1.5, "range": 400.0, "nugget": 0.2}
CASES = [
    dict(variogram_model="spherical", k=8),
    dict(variogram_model="exponential", k=12, radius=180.0),
    dict(variogram_model="gaussian", k=6),
]


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("case", CASES)
def test_matches_dense_reference(ndim, case):
    rng = np.random.default_rng(1)
    s, pts, vals = _samples(rng, 70, ndim)
    grid = _template(ndim)
    maps = xp.grid_kriging(s, like=grid, variogram_parameters=PARAMS, dtype="float64", **case)
    for e in range(vals.shape[1]):
        est, var = ordinary_kriging_dense(
            pts,
            vals[:, e],
            _nodes(grid),
            model=case["variogram_model"],
            psill=1.5,
            rng=400.0,
            nugget=0.2,
            k=case["k"],
            radius=case.get("radius"),
        )
        np.testing.assert_allclose(maps[f"E{e}"].values.ravel(), est, rtol=1e-8)
        np.testing.assert_allclose(maps[f"E{e}_variance"].values.ravel(), var, rtol=1e-8)
    if "radius" in case:
        assert np.isnan(maps["E0"].values).any()  # NaN beyond the search


@pytest.mark.parametrize("ndim", [2, 3])
def test_anisotropic_matches_dense_reference(ndim):
    rng = np.random.default_rng(2)
    s, pts, vals = _samples(rng, 60, ndim, n_el=1)
    aniso = (
        dict(ranges=(300, 100), azimuth=30)
        if ndim == 2
        else dict(ranges=(300, 150, 80), azimuth=30, dip=-20, rake=10)
    )
    grid = _template(ndim)
    maps = xp.grid_kriging(
        s, like=grid, variogram_parameters=PARAMS, k=10, anisotropy=aniso, dtype="float64"
    )
    amat = anisotropy_matrix(aniso, ndim)[:ndim, :ndim]
    est, var = ordinary_kriging_dense(
        pts,
        vals[:, 0],
        _nodes(grid),
        model="spherical",
        psill=1.5,
        rng=400.0,
        nugget=0.2,
        k=10,
        amat=amat,
    )
    np.testing.assert_allclose(maps["E0"].values.ravel(), est, rtol=1e-8)
    np.testing.assert_allclose(maps["E0_variance"].values.ravel(), var, rtol=1e-8)


@pytest.mark.parametrize("ndim", [2, 3])
def test_exact_at_samples_with_zero_variance(ndim):
    rng = np.random.default_rng(3)
    s, pts, vals = _samples(rng, 50, ndim)
    ok = OrdinaryKriging(variogram_parameters={**PARAMS, "nugget": 0.0}, k=10).fit(s)
    at = ok.predict(_points(pts))
    np.testing.assert_allclose(at["E0"].values, vals[:, 0], rtol=1e-12)
    np.testing.assert_allclose(at["E1"].values, vals[:, 1], rtol=1e-12)
    np.testing.assert_array_equal(at["E0_variance"].values, 0.0)
    # a point a hair away is (nearly) the sample value too: exact by the system, not a shortcut
    near = ok.predict(_points(pts + 1e-6))
    np.testing.assert_allclose(near["E0"].values, vals[:, 0], rtol=1e-6)


def test_variance_grows_with_distance_from_the_samples():
    rng = np.random.default_rng(4)
    s, _, _ = _samples(rng, 80, 2, n_el=1)
    params = {"psill": 1.0, "range": 5000.0, "nugget": 0.0}
    ok = OrdinaryKriging(variogram_model="exponential", variogram_parameters=params, k=16).fit(s)
    xs = np.linspace(1000.0, 4000.0, 40)
    var = ok.predict(_points(np.column_stack([xs, np.full_like(xs, 500.0)])))["E0_variance"]
    assert np.all(np.diff(var.values) > 0)
    on = ok.predict(_points(np.column_stack([s.x.values[:1], s.y.values[:1]])))
    assert float(on["E0_variance"][0]) == 0.0


def test_predict_equals_grid_and_accessor_equals_function():
    rng = np.random.default_rng(5)
    s, _, _ = _samples(rng, 60, 2)
    grid = _template(2)
    maps = xp.grid_kriging(s, like=grid, k=9, dtype="float64")
    assert_georef_equal(maps, grid)
    xr.testing.assert_identical(maps, s.prospect.krige(like=grid, k=9, dtype="float64"))
    at = OrdinaryKriging(k=9).fit(s).predict(_points(_nodes(grid)))
    np.testing.assert_allclose(
        at["E1_variance"].values, maps["E1_variance"].values.ravel(), rtol=1e-12
    )


@pytest.mark.parametrize(("ndim", "chunks"), [(2, (5, 7)), (3, (3, 4, 5))])
def test_numpy_equals_dask_uneven_chunks_and_lazy(ndim, chunks):
    rng = np.random.default_rng(6)
    s, _, _ = _samples(rng, 80, ndim)
    eager = xp.grid_kriging(s, like=_template(ndim), k=8)

    def refuse(*args, **kwargs):
        raise AssertionError("the graph was computed")

    with dask.config.set(scheduler=refuse):
        lazy = xp.grid_kriging(s, like=_template(ndim, chunks=chunks), k=8)
    assert lazy["E0"].chunks is not None
    for v in eager.data_vars:
        np.testing.assert_array_equal(lazy[v].values, eager[v].values)


def test_template_mask_leaves_nan_outside():
    rng = np.random.default_rng(7)
    s, _, _ = _samples(rng, 60, 2, n_el=1)
    grid = _template(2)
    inside = grid.x < 500
    maps = xp.grid_kriging(s, like=grid.assign(mask=inside.broadcast_like(grid.y)), k=8)
    assert np.isnan(maps["E0"].where(~inside).values[:, grid.x.values >= 500]).all()
    assert np.isfinite(maps["E0_variance"].values[:, grid.x.values < 500]).all()


def test_variogram_is_fitted_and_reported():
    rng = np.random.default_rng(8)
    pts = rng.uniform(0, 1000, (400, 3))
    pts[:, 2] = 0
    lags = np.linspace(10, 500, 15)
    truth = variogram("exponential", lags, psill=2.0, range=300.0, nugget=0.5)
    exp = {
        "lags": lags,
        "semivariance": truth,
        "pairs": np.full(15, 100),
        "max_lag": 500.0,
        "total_pairs": 1500,
    }
    fit = fit_variogram(exp, "exponential")
    assert fit["psill"] == pytest.approx(2.0, rel=0.02)
    assert fit["range"] == pytest.approx(300.0, rel=0.02)
    assert fit["nugget"] == pytest.approx(0.5, abs=0.02)
    e = experimental_variogram(pts, rng.normal(size=400), n_lags=10)
    assert e["pairs"].sum() == e["total_pairs"] > 0
    s, _, _ = _samples(rng, 120, 2, n_el=1)
    maps = xp.grid_kriging(s, like=_template(2), variogram_model="gaussian", k=8)
    a = maps["E0"].attrs
    assert a["variogram_model"] == "gaussian" and a["variogram_source"] == "fitted"
    assert isinstance(a["variogram_lags"], list) and a["variogram_sill"] > 0
    assert maps.attrs["kriging_colocated"] == "mean"


def test_colocated_samples_are_merged_never_nan():
    rng = np.random.default_rng(9)
    s, pts, vals = _samples(rng, 40, 2, n_el=1)
    dup = s.isel(sample=[0, 0, 1])
    dup["E0"] = ("sample", [10.0, 20.0, 5.0], {"units": "ppm"})
    both = xr.concat([s, dup], dim="sample")
    ok = OrdinaryKriging(variogram_parameters=PARAMS, k=8).fit(both)
    assert ok.colocated_merged_ == {"E0": 3}
    at = ok.predict(_points(pts[:2]))
    np.testing.assert_allclose(at["E0"].values, [(vals[0, 0] + 10 + 20) / 3, (vals[1, 0] + 5) / 2])
    maps = ok.grid(_template(2))
    assert np.isfinite(maps["E0"].values).all()
    assert maps["E0"].attrs["colocated_merged"] == 3


def test_near_singular_gaussian_system_gives_no_nan():
    rng = np.random.default_rng(10)
    _, pts, vals = _samples(rng, 15, 2, n_el=1)
    pts = np.vstack([pts, pts + np.array([1e-7, 0.0])])  # pairs of samples a hair apart
    s = xr.Dataset(
        {"E0": ("sample", np.concatenate([vals[:, 0], vals[:, 0] + 0.1]))},
        coords={"x": ("sample", pts[:, 0]), "y": ("sample", pts[:, 1])},
    )
    s = xp._dims.write_crs(s, CRS)
    maps = xp.grid_kriging(
        s,
        like=_template(2),
        variogram_model="gaussian",
        variogram_parameters={"psill": 1.0, "range": 2000.0, "nugget": 0.0},
        k=12,
    )
    assert np.isfinite(maps["E0"].values).all()
    assert np.isfinite(maps["E0_variance"].values).all()


def test_variogram_errors():
    rng = np.random.default_rng(11)
    few, _, _ = _samples(rng, 6, 2, n_el=1)
    assert 6 * 5 // 2 < MIN_PAIRS
    with pytest.raises(xp.DataError, match=r"only \d+ sample pairs .* need at least 30"):
        xp.grid_kriging(few, like=_template(2))
    flat, _, _ = _samples(rng, 50, 2, n_el=1)
    flat["E0"][:] = 3.0
    with pytest.raises(xp.DataError, match="every value is equal"):
        xp.grid_kriging(flat, like=_template(2))
    s, _, _ = _samples(rng, 50, 2, n_el=2)
    with pytest.raises(xp.DataError, match="variogram model must be one of"):
        xp.grid_kriging(s, like=_template(2), variogram_model="cubic")
    with pytest.raises(xp.DataError, match="need psill >= 0"):
        xp.grid_kriging(s, like=_template(2), variogram_parameters={**PARAMS, "range": 0})
    with pytest.raises(xp.DataError, match="no parameters for element 'E1'"):
        xp.grid_kriging(s, like=_template(2), variogram_parameters={"E0": PARAMS})
    with pytest.raises(xp.GridError, match="k must be an integer"):
        xp.grid_kriging(s, like=_template(2), k=0)
    with pytest.raises(xp.GridError, match="fitted on 3-D samples"):
        xp.grid_kriging(
            s.assign_coords(z=("sample", np.zeros(50))),
            like=_template(2),
            variogram_parameters=PARAMS,
        )
    with pytest.raises(xp.GridError, match="not fitted yet"):
        OrdinaryKriging().grid(_template(2))


def test_benchmark_bodies_run_and_agree_with_pykrige():
    pytest.importorskip("pykrige")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_bench"))
    from benchmarks import kriging as bk

    for cls in (bk.Kriging2D, bk.Kriging2DDask, bk.Kriging2DPeers):
        bench = cls()
        bench.n_samples = 150
        if cls is bk.Kriging2DDask:
            bench.chunks = 7
        bench.setup(24)
        for name in [n for n in dir(bench) if n.startswith("time_")]:
            getattr(bench, name)(24)
    world = bk.survey(150)
    like = bk.grid(world, 24)
    params = bk.fitted_parameters(world.samples)
    ours = bk.krige_xprospect(world.samples, like, params)
    assert bk.agreement(ours, bk.krige_pykrige(world.samples, like, params)) < 1e-6
