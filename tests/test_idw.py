"""IDW gridding: oracle, invariants, backends, georeferencing and bad input."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import idw_brute_force

import xprospect as xp
from xprospect._dask import map_cells
from xprospect.grid.idw import anisotropy_matrix
from xprospect.testing import assert_georef_equal

CRS = "EPSG:32750"


def _samples(rng, n, ndim, n_el=3, missing=0.0, extent=1000.0, offset=0.0):
    pts = rng.uniform(0, extent, (n, ndim)) + offset
    vals = rng.lognormal(size=(n, n_el))
    if missing:
        vals[rng.random((n, n_el)) < missing] = np.nan
    coords = {"x": ("sample", pts[:, 0]), "y": ("sample", pts[:, 1])}
    if ndim == 3:
        coords["z"] = ("sample", pts[:, 2])
    ds = xr.Dataset(
        {f"E{i}": ("sample", vals[:, i], {"units": "ppm"}) for i in range(n_el)}, coords=coords
    )
    return xp._dims.write_crs(ds, CRS), pts, vals


def _nodes(grid):
    if "z" in grid.dims:
        zz, yy, xx = np.meshgrid(grid.z.values, grid.y.values, grid.x.values, indexing="ij")
        return np.column_stack([xx.ravel(), yy.ravel(), zz.ravel()])
    yy, xx = np.meshgrid(grid.y.values, grid.x.values, indexing="ij")
    return np.column_stack([xx.ravel(), yy.ravel()])


def _template(ndim, chunks=None):
    if ndim == 2:
        return xp.make_grid((0, 0, 1000, 1000), resolution=(37, 41), crs=CRS, chunks=chunks)
    return xp.make_voxels(
        (0, 0, 0, 1000, 1000, 1000), resolution=(90, 110, 70), crs=CRS, chunks=chunks
    )


def _stack(maps, names):
    return np.column_stack([maps[n].values.ravel() for n in names])


CASES = [
    dict(k=12, power=2.0),
    dict(k=5, power=1.3),
    dict(k=1, power=2.0),
    dict(k=8, power=3.0, radius=300.0),
    dict(k=20, power=2.0, radius=150.0, min_points=3),
    dict(k=None, power=2.0, radius=250.0),
    dict(k=None, power=0.7, radius=180.0, min_points=2),
]


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_matches_brute_force(ndim, case):
    rng = np.random.default_rng(42)
    s, pts, vals = _samples(rng, 250, ndim, missing=0.15)
    grid = _template(ndim)
    maps = xp.grid_idw(s, like=grid, dtype="float64", **case)
    ref = idw_brute_force(pts, vals, _nodes(grid), **case)
    got = _stack(maps, ["E0", "E1", "E2"])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("ndim", [2, 3])
def test_anisotropic_matches_brute_force(ndim):
    rng = np.random.default_rng(3)
    s, pts, vals = _samples(rng, 300, ndim)
    if ndim == 2:
        aniso = dict(ranges=(400, 120), azimuth=30)
    else:
        aniso = dict(ranges=(400, 150, 60), azimuth=45, dip=-60, rake=20)
    grid = _template(ndim)
    for case in (dict(k=6), dict(k=16, radius=350.0)):
        maps = xp.grid_idw(s, like=grid, dtype="float64", anisotropy=aniso, **case)
        amat = anisotropy_matrix(aniso, ndim)[:ndim, :ndim]
        ref = idw_brute_force(pts, vals, _nodes(grid), amat=amat, **case)
        np.testing.assert_allclose(_stack(maps, ["E0", "E1", "E2"]), ref, rtol=1e-9, equal_nan=True)


def test_anisotropy_matrix_axes():
    # the major axis at azimuth 90 (east), dip 0: a point 400 m east is 400 m away,
    # a point 100 m north (the semi-major range) is as far as 400 m east
    a = anisotropy_matrix(dict(ranges=(400, 100, 50), azimuth=90, dip=0), 3)
    assert np.linalg.norm(a @ [400, 0, 0]) == pytest.approx(400)
    assert np.linalg.norm(a @ [0, 100, 0]) == pytest.approx(400)
    assert np.linalg.norm(a @ [0, 0, 50]) == pytest.approx(400)
    # dip -90 points the major axis straight down
    a = anisotropy_matrix(dict(ranges=(400, 100, 50), azimuth=0, dip=-90), 3)
    assert np.linalg.norm(a @ [0, 0, -400]) == pytest.approx(400)


def test_missing_element_values_use_only_samples_that_have_them():
    rng = np.random.default_rng(0)
    s, _, _ = _samples(rng, 100, 2, n_el=2)
    v0 = s["E0"].values.copy()
    v0[:50] = np.nan
    s["E0"] = ("sample", v0)
    grid = _template(2)
    maps = xp.grid_idw(s, like=grid, k=6, dtype="float64")
    full = xp.grid_idw(s.isel(sample=slice(50, None)), like=grid, k=6, dtype="float64")
    np.testing.assert_allclose(maps["E0"].values, full["E0"].values, rtol=1e-12)
    # E1 still uses every sample, including the 50 that miss E0
    every = xp.grid_idw(s[["E1"]], like=grid, k=6, dtype="float64")
    np.testing.assert_allclose(maps["E1"].values, every["E1"].values, rtol=1e-12)


# ---- invariants (hypothesis) ---------------------------------------------------------


@st.composite
def _problem(draw):
    n = draw(st.integers(3, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    k = draw(st.integers(1, 10))
    power = draw(st.sampled_from([0.5, 1.0, 2.0, 3.5]))
    return n, seed, k, power


def _on_lattice(rng, n):
    """Samples placed exactly on cell centres of a 20 x 30 grid of 10 m cells."""
    grid = xp.make_grid((0, 0, 300, 200), resolution=10, crs=CRS)
    iy = rng.choice(grid.sizes["y"] * grid.sizes["x"], size=n, replace=False)
    r, c = np.unravel_index(iy, (grid.sizes["y"], grid.sizes["x"]))
    x = grid.x.values[c]
    y = grid.y.values[r]
    v = rng.lognormal(size=n)
    ds = xr.Dataset({"Au": ("sample", v)}, coords={"x": ("sample", x), "y": ("sample", y)})
    return xp._dims.write_crs(ds, CRS), grid, r, c


@settings(max_examples=40, deadline=None)
@given(_problem())
def test_exact_at_samples_and_bounded(problem):
    n, seed, k, power = problem
    rng = np.random.default_rng(seed)
    s, grid, r, c = _on_lattice(rng, n)
    maps = xp.grid_idw(s, like=grid, k=k, power=power, dtype="float64")
    au = maps["Au"].values
    # a sample exactly on a cell centre returns its own value
    np.testing.assert_allclose(au[r, c], s["Au"].values, rtol=1e-12)
    v = s["Au"].values
    assert np.all(au >= v.min() * (1 - 1e-12)) and np.all(au <= v.max() * (1 + 1e-12))


@settings(max_examples=25, deadline=None)
@given(_problem(), st.floats(-1e6, 1e6), st.floats(-1e6, 1e6))
def test_invariant_to_order_and_translation(problem, dx, dy):
    n, seed, k, power = problem
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 300, n), rng.uniform(0, 200, n)
    v = rng.lognormal(size=n)

    def run(x, y, v, shift=(0.0, 0.0)):
        ds = xr.Dataset(
            {"Au": ("sample", v)},
            coords={"x": ("sample", x + shift[0]), "y": ("sample", y + shift[1])},
        )
        ds = xp._dims.write_crs(ds, CRS)
        b = (0 + shift[0], 0 + shift[1], 300 + shift[0], 200 + shift[1])
        return xp.grid_idw(
            ds, like=xp.make_grid(b, resolution=10, crs=CRS), k=k, power=power, dtype="float64"
        )["Au"].values

    base = run(x, y, v)
    perm = rng.permutation(n)
    np.testing.assert_allclose(run(x[perm], y[perm], v[perm]), base, rtol=1e-12)
    # whole multiples of the cell size keep cell centres aligned with the samples
    sx, sy = round(dx / 10) * 10.0, round(dy / 10) * 10.0
    np.testing.assert_allclose(run(x, y, v, (sx, sy)), base, rtol=1e-7)


# ---- backends --------------------------------------------------------------------------


class _RaiseOnCompute:
    def __init__(self):
        self.n = 0

    def __call__(self, dsk, keys, **kwargs):
        self.n += 1
        raise RuntimeError("dask computed while it must stay lazy")


@pytest.mark.parametrize("ndim", [2, 3])
def test_numpy_equals_dask_uneven_chunks(ndim):
    rng = np.random.default_rng(7)
    s, _, _ = _samples(rng, 200, ndim, missing=0.1)
    chunks = (5, 7) if ndim == 2 else (3, 5, 4)
    eager = xp.grid_idw(s, like=_template(ndim), k=7, dtype="float64")
    with dask.config.set(scheduler=_RaiseOnCompute()):
        lazy = xp.grid_idw(s, like=_template(ndim, chunks=chunks), k=7, dtype="float64")
    assert lazy["E0"].chunks is not None
    assert lazy["E0"].data.chunksize == chunks
    xr.testing.assert_allclose(lazy.compute(), eager, rtol=1e-13)
    with dask.config.set(scheduler="threads"):
        xr.testing.assert_allclose(lazy.compute(), eager, rtol=1e-13)


def test_dask_with_distributed_cluster():
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(1)
    s, _, _ = _samples(rng, 150, 2)
    eager = xp.grid_idw(s, like=_template(2), k=5)
    lazy = xp.grid_idw(s, like=_template(2, chunks=(11, 9)), k=5)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        got = lazy.compute()
    xr.testing.assert_equal(got, eager)


def test_chunks_argument_overrides_template():
    rng = np.random.default_rng(1)
    s, _, _ = _samples(rng, 50, 2)
    maps = xp.grid_idw(s, like=_template(2), k=4, chunks=8)
    assert maps["E0"].data.chunksize == (8, 8)


# ---- georeferencing ----------------------------------------------------------------------


def test_template_is_north_up_with_cell_centres():
    grid = xp.make_grid((100, 200, 1100, 700), resolution=100, crs=CRS)
    assert grid.sizes == {"y": 5, "x": 10}
    assert grid.y.values[0] > grid.y.values[-1]
    assert grid.x.values[0] == 150 and grid.y.values[0] == 650
    t = grid.rio.transform()
    assert (t.a, t.e, t.c, t.f) == (100, -100, 100, 700)
    assert grid.rio.crs.to_epsg() == 32750


def test_template_snaps_and_pads():
    grid = xp.make_grid((120, 230, 980, 640), resolution=100, pad=50, crs=CRS)
    assert grid.x.values[0] == 50 and grid.x.values[-1] == 1050
    assert grid.y.values[0] == 650 and grid.y.values[-1] == 150


def test_template_like_samples_and_voxels(world):
    grid = xp.make_grid(like=world.samples, resolution=500, pad=1000, chunks=16)
    assert grid.rio.crs == world.samples.rio.crs
    assert grid["mask"].data.chunksize == (16, 16)
    b = grid.rio.bounds()
    assert b[0] <= world.samples.x.min() - 1000 and b[2] >= world.samples.x.max() + 1000
    vox = xp.make_voxels(
        (0, 0, -500, 1000, 800, 0), resolution=(50, 100, 100), crs=CRS, chunks=(4, 4, 4)
    )
    assert vox["mask"].dims == ("z", "y", "x")
    assert vox.z.values[0] == -475 and np.all(np.diff(vox.z.values) > 0)


def test_sample_on_cell_centre_and_georef_kept(world):
    grid = xp.make_grid(like=world.samples, resolution=1000)
    maps = xp.grid_idw(world.samples, like=grid, k=8)
    assert_georef_equal(maps, grid)
    assert maps["Au"].attrs["units"] == "ppb"
    assert maps["Au"].dtype == np.float32


@pytest.mark.parametrize("chunks", [None, (5, 7)])
def test_mask_gives_nan_outside_study_area(chunks):
    rng = np.random.default_rng(2)
    s, _, _ = _samples(rng, 60, 2)
    grid = _template(2)
    m = np.ones(grid["mask"].shape, dtype=bool)
    m[:3] = False
    grid["mask"] = (("y", "x"), m)
    if chunks:
        grid = grid.chunk(dict(zip(("y", "x"), chunks, strict=True)))
    maps = xp.grid_idw(s, like=grid, k=4)
    assert (maps["E0"].chunks is not None) == bool(chunks)
    assert np.isnan(maps["E0"].values[:3]).all() and np.isfinite(maps["E0"].values[3:]).all()


def test_radius_gives_nan_not_zero_far_from_samples():
    ds = xr.Dataset(
        {"Au": ("sample", [5.0, 7.0])},
        coords={"x": ("sample", [50.0, 60.0]), "y": ("sample", [50.0, 50.0])},
    )
    ds = xp._dims.write_crs(ds, CRS)
    grid = xp.make_grid((0, 0, 1000, 1000), resolution=10, crs=CRS)
    maps = xp.grid_idw(ds, like=grid, k=2, radius=100)
    au = maps["Au"].values
    assert np.isnan(au).sum() > 0.9 * au.size
    near = au[np.isfinite(au)]
    assert near.min() >= 5 and near.max() <= 7


def test_accessor_equals_function(world):
    grid = xp.make_grid(like=world.samples, resolution=2000)
    kw = dict(k=5, power=1.5, radius=20000, min_points=2, elements=["Au", "Cu"])
    xr.testing.assert_identical(
        world.samples.prospect.idw(like=grid, **kw), xp.grid_idw(world.samples, like=grid, **kw)
    )


# ---- bad input -------------------------------------------------------------------------------


@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    s, _, _ = _samples(rng, 30, 2)
    return s, _template(2)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(k=0), "k must be an integer >= 1"),
        (dict(k=2.5), "k must be an integer >= 1"),
        (dict(power=0), "power must be a finite number > 0"),
        (dict(power=-1), "power must be a finite number > 0"),
        (dict(radius=0), "radius must be a finite number > 0"),
        (dict(radius=-5.0), "radius must be a finite number > 0"),
        (dict(k=None), "k=None .* needs a radius"),
        (dict(k=3, min_points=4), "min_points=4 can never be reached with k=3"),
        (dict(elements=["Zz"]), "element 'Zz' is not in the samples"),
        (dict(anisotropy=dict(ranges=(100, -1))), "anisotropy ranges must be 2 positive"),
        (dict(anisotropy=dict(ranges=(100, 50), dip=10)), "unknown keys \\['dip'\\]"),
    ],
)
def test_bad_parameters(small, kw, match):
    s, grid = small
    with pytest.raises(xp.XProspectError, match=match):
        xp.grid_idw(s, like=grid, **kw)


def test_bad_crs(small):
    s, grid = small
    with pytest.raises(xp.CRSError, match="the samples has no CRS"):
        xp.grid_idw(s.drop_vars("spatial_ref"), like=grid)
    other = xp.make_grid((0, 0, 1000, 1000), resolution=50, crs="EPSG:4326")
    with pytest.raises(xp.CRSError, match=r"EPSG:32750, but the template .* EPSG:4326"):
        xp.grid_idw(s, like=other)


def test_no_overlap(small):
    s, _ = small
    far = xp.make_grid((1e6, 1e6, 1.1e6, 1.1e6), resolution=1000, crs=CRS)
    with pytest.raises(xp.GridError, match="does not overlap the samples"):
        xp.grid_idw(s, like=far)


def test_non_uniform_grid(small):
    s, grid = small
    x = grid.x.values.copy()
    x[5] += 3.0
    bad = grid.assign_coords(x=x)
    with pytest.raises(xp.GridError, match="'x' is not uniformly spaced"):
        xp.grid_idw(s, like=bad)


def test_all_missing_and_non_numeric_elements(small):
    s, grid = small
    s = s.assign(E0=("sample", np.full(s.sizes["sample"], np.nan)))
    with pytest.raises(xp.DataError, match="element 'E0' has no valid values"):
        xp.grid_idw(s, like=grid)
    s = s.assign(E0=("sample", np.array(["a"] * s.sizes["sample"], dtype=object)))
    with pytest.raises(xp.DataError, match="element 'E0' is not numeric"):
        xp.grid_idw(s, like=grid, elements=["E0"])


def test_non_finite_coordinates(small):
    s, grid = small
    x = s.x.values.copy()
    x[4] = np.nan
    with pytest.raises(xp.DataError, match=r"1 samples have missing or non-finite coordinates"):
        xp.grid_idw(s.assign_coords(x=("sample", x)), like=grid)


def test_voxels_need_z(small):
    s, _ = small
    with pytest.raises(xp.GridError, match="needs samples with a 'z' coordinate"):
        xp.grid_idw(s, like=_template(3))


@pytest.mark.parametrize("ndim", [2, 3])
def test_dense_candidates_grow_buffers(ndim):
    # 2,000 samples in a small cluster and k=60: a tile gathers far more candidates than the
    # kernel's initial buffers hold, on several threads (numpy) and on one per chunk (dask)
    rng = np.random.default_rng(5)
    s, pts, vals = _samples(rng, 2000, ndim, n_el=1, extent=60.0, offset=470.0)
    grid = _template(ndim)
    ref = idw_brute_force(pts, vals, _nodes(grid), k=60)
    for chunks in (None, 6):
        maps = xp.grid_idw(s, like=_template(ndim, chunks=chunks), k=60, dtype="float64")
        np.testing.assert_allclose(maps["E0"].values.ravel(), ref[:, 0], rtol=1e-9)


# ---- stacking ----------------------------------------------------------------------------------


def test_stack_is_lazy_ordered_and_georeferenced(world):
    grid = xp.make_grid(like=world.samples, resolution=2000, chunks=(5, 7))
    maps = xp.grid_idw(world.samples, like=grid, k=6)
    with dask.config.set(scheduler=_RaiseOnCompute()):
        stack = maps.prospect.stack(["Cu", "Au", "As"])
    assert stack.dims == ("element", "y", "x")
    assert list(stack.element.values) == ["Cu", "Au", "As"]
    assert stack.attrs["units"] == ["ppm", "ppb", "ppm"]
    assert stack.chunks is not None
    assert_georef_equal(stack, grid)
    np.testing.assert_array_equal(stack.sel(element="Au").values, maps["Au"].values)
    xr.testing.assert_identical(stack, xp.stack_elements(maps, ["Cu", "Au", "As"]))
    every = maps.prospect.stack()
    assert list(every.element.values) == list(world.elements)


def test_lazy_stack_holds_every_element_in_one_task_per_chunk(tmp_path):
    """A stack of lazy maps reads and stacks each chunk's elements in one task (blockwise
    fusion), not one task per element gathered by a rechunk; values and dtype as to_array."""
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {
            "Au": (("y", "x"), rng.normal(size=(12, 10)).astype("float32")),
            "Cu": (("y", "x"), rng.normal(size=(12, 10))),
            "As": (("y", "x"), rng.normal(size=(12, 10)).astype("float32")),
        },
        coords={"y": np.arange(12.0)[::-1], "x": np.arange(10.0)},
    )
    xp.to_zarr(ds.chunk({"y": 5, "x": 4}), tmp_path / "m.zarr", progress=False)
    with dask.config.set(scheduler=_RaiseOnCompute()):
        stack = xp.open_zarr(tmp_path / "m.zarr", chunks={}).prospect.stack(["Cu", "Au", "As"])
    assert stack.chunks == ((3,), (5, 5, 2), (4, 4, 2)) and stack.dtype == "float64"
    eager = ds[["Cu", "Au", "As"]].to_array(dim="element")
    np.testing.assert_array_equal(stack.values, eager.values)
    (opt,) = dask.optimize(stack.data)
    blocks = [k for k in opt.__dask_graph__() if isinstance(k, tuple)]
    assert len(blocks) == 9  # one task per spatial chunk, the reads fused into it


def test_stack_errors(world):
    grid = xp.make_grid(like=world.samples, resolution=4000)
    maps = xp.grid_idw(world.samples, like=grid, k=6, elements=["Au", "Cu"])
    with pytest.raises(xp.DataError, match="element 'Hg' is not in the Dataset"):
        maps.prospect.stack(["Au", "Hg"])
    with pytest.raises(xp.DataError, match=r"repeated: \['Au'\]"):
        maps.prospect.stack(["Au", "Au"])


def test_eager_gridding_from_worker_threads():
    # several threads gridding in memory at once must neither crash nor differ
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(11)
    s, _, _ = _samples(rng, 300, 2)
    expected = xp.grid_idw(s, like=_template(2), k=6)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: xp.grid_idw(s, like=_template(2), k=6), range(8)))
    for r in results:
        xr.testing.assert_equal(r, expected)


# ---- the cell runner (xprospect._dask.map_cells) ------------------------------------------------


def _grid_dims(ndim):
    return ("y", "x") if ndim == 2 else ("z", "y", "x")


def _refuse(*args, **kwargs):
    raise AssertionError("the graph was computed")


@pytest.mark.parametrize("ndim", [2, 3])
def test_map_cells_numpy_equals_dask_with_mask_and_skips_empty_chunks(ndim):
    calls = []

    def centres(block, scale):
        calls.append(block.parallel)
        c = block.centres().sum(axis=1).reshape(block.shape) * scale
        return np.stack([c, -c])

    grid = _template(ndim)
    shape = tuple(grid.sizes[d] for d in _grid_dims(ndim))
    eager, dims = map_cells(grid, centres, dtype="float64", nout=2, scale=2.0)
    assert dims == _grid_dims(ndim) and eager.shape == (2, *shape)
    assert calls == [True]  # one call on the whole grid, on the main thread
    chunks = (5, 7) if ndim == 2 else (3, 4, 5)
    calls.clear()
    with dask.config.set(scheduler=_refuse):
        data, _ = map_cells(
            _template(ndim, chunks=chunks), centres, dtype="float64", nout=2, scale=2.0
        )
    np.testing.assert_array_equal(data.compute(), eager)
    assert calls and not any(calls)  # dask chunks never start the gridders' threads
    mask = np.zeros(shape, dtype=bool)
    mask[(0,) * ndim] = True
    calls.clear()
    data, _ = map_cells(
        _template(ndim, chunks=chunks), centres, dtype="float64", nout=2, mask=mask, scale=2.0
    )
    out = data.compute()
    assert len(calls) == 1  # only the chunk holding the one True cell ran
    assert np.isnan(out).sum() == out.size - 2
    first = (slice(None), *((0,) * ndim))
    np.testing.assert_array_equal(out[first], eager[first])


# ---- tiles, threads and the kernel cache ------------------------------------------------------


def test_coarse_grid_splits_over_all_tiles():
    # many samples onto an 8 x 8 grid: one-cell tiles, cut into ranges for every thread
    from xprospect.grid import _neighbours

    rng = np.random.default_rng(3)
    pts = np.column_stack([np.zeros(20_000), rng.uniform(0, 1000, (20_000, 2))])
    axes = np.diag([0.0, 125.0, 125.0])
    tile, ntiles, ntasks, _ = _neighbours.plan_tiles(pts, 12, axes, (1, 8, 8), 2, True)
    assert tile.tolist() == [1, 1, 1]
    assert ntiles == 64
    assert ntasks == min(64, _neighbours.TASKS_PER_THREAD * _neighbours.nb.get_num_threads())
    assert _neighbours.plan_tiles(pts, 12, axes, (1, 8, 8), 2, False)[2] == 1
    # a fine grid keeps wide tiles: 1.75 d_k = 1.75 (12 / (0.02 pi))^0.5 / 2 = 12.1 cells
    # tall, twice that wide (searched as two 12 x 12 sub-tiles)
    fine = _neighbours.plan_tiles(pts, 12, np.diag([0.0, 2.0, 2.0]), (1, 512, 512), 2, True)
    assert fine[0].tolist() == [1, 12, 24]


def test_bucket_sort_is_a_stable_sort_by_bucket(monkeypatch):
    # the two-step bucket sort (to parts, then by bucket within each part), on one thread
    # or on several, orders the points as a stable argsort of their bucket numbers:
    # duplicates and points on the far edges included, 2-D (a constant column) and 3-D
    from xprospect.grid import _neighbours

    rng = np.random.default_rng(6)
    # small parts and a low threshold: many parts and threads on a few thousand points
    monkeypatch.setattr(_neighbours, "PART_BYTES", 2048)
    monkeypatch.setattr(_neighbours, "PARALLEL_SORT", 1)
    for ndim in (2, 3):
        pts = rng.uniform(0, 1000, (3000, 3))
        pts[:500] = pts[500:1000]  # duplicates
        pts[1000] = 1000.0  # the upper corner
        if ndim == 2:
            pts[:, 0] = 7.0
        vals = rng.normal(size=(pts.shape[0], 3))
        for parallel in (False, True):
            ps, vs, start, lo, size, shape, span = _neighbours.bucket_points(
                pts, vals, 3.0, parallel
            )
            ia = np.minimum(((pts - lo) / size).astype(np.int64), shape - 1)
            bucket = (ia[:, 0] * shape[1] + ia[:, 1]) * shape[2] + ia[:, 2]
            order = np.argsort(bucket, kind="stable")
            np.testing.assert_array_equal(ps, pts[order])
            np.testing.assert_array_equal(vs, vals[order])
            counts = np.bincount(bucket, minlength=int(np.prod(shape)))
            np.testing.assert_array_equal(start, np.r_[0, np.cumsum(counts)])
            np.testing.assert_array_equal(span, pts.max(axis=0) - pts.min(axis=0))


def test_task_split_does_not_change_the_map(monkeypatch):
    # the same tiles run in one range or in many: identical maps, 2-D and 3-D
    from xprospect.grid import _neighbours

    rng = np.random.default_rng(4)
    for ndim in (2, 3):
        s, _, _ = _samples(rng, 300, ndim)
        one = xp.grid_idw(s, like=_template(ndim), k=9, dtype="float64")
        monkeypatch.setattr(_neighbours, "task_count", lambda ntiles, parallel: ntiles)
        every = xp.grid_idw(s, like=_template(ndim), k=9, dtype="float64")
        monkeypatch.undo()
        xr.testing.assert_equal(one, every)


def _lattice_samples(rng):
    """Samples on a 50 m lattice over 1 km: many cells see ties at the k-th distance."""
    gx, gy = np.meshgrid(np.arange(0.0, 1000.0, 50.0), np.arange(0.0, 1000.0, 50.0))
    ties = xr.Dataset(
        {"E0": ("sample", rng.lognormal(size=gx.size))},
        coords={"x": ("sample", gx.ravel()), "y": ("sample", gy.ravel())},
    )
    return xp._dims.write_crs(ties, CRS)


def test_wide_tiles_searched_in_sub_tiles_give_the_same_bits(monkeypatch):
    # 2-D tiles are WIDE_2D times wider than tall (longer runs of each output row per
    # write) and searched in square sub-tiles: the neighbours, hence the IDW and kriging
    # maps, are bitwise those of square tiles, ties at the k-th distance included
    from xprospect.grid import _neighbours

    rng = np.random.default_rng(5)
    s, _, _ = _samples(rng, 400, 2)
    ties = _lattice_samples(rng)
    cases = [
        (s, _template(2), {}),
        (ties, xp.make_grid((0, 0, 1000, 1000), resolution=12.5, crs=CRS), {}),
    ]
    for samples, like, kw in cases:
        maps = {}
        for wide in (1, 2, 3):
            monkeypatch.setattr(_neighbours, "WIDE_2D", wide)
            idw = xp.grid_idw(samples, like=like, k=7, dtype="float64", **kw)
            ok = xp.grid_kriging(samples, like=like, k=7, dtype="float64")
            maps[wide] = (idw, ok)
        monkeypatch.undo()
        for wide in (2, 3):
            for a, b in zip(maps[1], maps[wide], strict=True):
                for name in a.data_vars:
                    assert np.array_equal(
                        a[name].values.view(np.int64), b[name].values.view(np.int64)
                    ), (wide, name)


def test_ranked_search_gives_the_same_bits(monkeypatch):
    # the ranked search (knn_tile_ranked, via idw_ranked_task) where plan_tiles asks for it
    # (forced here on small lattices): the same IDW maps, bit for bit, as the plain search,
    # ties at the k-th distance included, 2-D with and without a radius
    from xprospect.grid import _neighbours

    rng = np.random.default_rng(8)
    s, _, _ = _samples(rng, 600, 2)
    ties = _lattice_samples(rng)
    fine = xp.make_grid((0, 0, 1000, 1000), resolution=6.25, crs=CRS)
    cases = [
        (s, fine, dict(k=12)),
        (s, fine, dict(k=7, power=1.5, radius=60.0, min_points=3)),
        (ties, fine, dict(k=7)),
    ]
    for samples, like, kw in cases:
        plain = xp.grid_idw(samples, like=like, dtype="float64", **kw)
        monkeypatch.setattr(_neighbours, "RANK_CELLS", 0)
        calls = []

        def run(task, *a, calls=calls, run_tasks=_neighbours.run_tasks):
            calls.append(task)
            run_tasks(task, *a)

        monkeypatch.setattr(_neighbours, "run_tasks", run)
        ranked = xp.grid_idw(samples, like=like, dtype="float64", **kw)
        monkeypatch.undo()
        assert [t.py_func.__name__ for t in calls] == ["idw_ranked_task"]
        for name in plain.data_vars:
            assert np.array_equal(
                plain[name].values.view(np.int64), ranked[name].values.view(np.int64)
            ), (kw, name)


def test_small_lattices_do_not_compile_the_ranked_search():
    # the ranked search is compiled only for 2-D lattices of RANK_CELLS cells or more whose
    # sub-tile corners lie far from their centre against d_k (1e6 samples onto 2048^2);
    # 500^2 cells (< 512^2) keep the plain search, as do smaller lattices (the demo's, the
    # tests'), 2-D lattices whose sub-tiles are small against d_k, and 3-D lattices
    from xprospect.grid import _neighbours

    rng = np.random.default_rng(9)
    dense = np.column_stack([np.zeros(1_000_000), rng.uniform(0, 2048, (1_000_000, 2))])
    axes = np.diag([0.0, 1.0, 1.0])
    assert _neighbours.plan_tiles(dense, 12, axes, (1, 2048, 2048), 2, True)[3]
    assert not _neighbours.plan_tiles(dense, 12, axes, (1, 500, 500), 2, True)[3]
    sparse = dense[:3000] * 30.0  # the demo's density: 3000 samples, d_k of 8.6 cells
    assert not _neighbours.plan_tiles(sparse, 12, axes * 250.0 / 30.0, (1, 250, 250), 2, True)[3]
    # 7,000 samples onto 3072^2: sub-tiles of 16 cells are small against d_k (72 cells)
    coarse = dense[:7000] * 1.5
    assert not _neighbours.plan_tiles(coarse, 12, axes, (1, 3072, 3072), 2, True)[3]
    vox = rng.uniform(0, 128, (5000, 3))
    assert not _neighbours.plan_tiles(vox, 12, np.eye(3), (128, 128, 128), 3, True)[3]


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("n", [30, 200])
def test_ranked_selection_orders_ties_by_row(n, ties):
    # a cell's k nearest candidates placed by rank from a short list (a tight first bound
    # that may hold fewer than k of them, then the loose one) are those inserted in turn:
    # the k smallest by (squared distance, sample row), equal distances included (ranked
    # again by row) or none; a list longer than RANKED is left to insertion (-1)
    from xprospect.grid import _neighbours

    rng = np.random.default_rng(7)
    k = 12
    fb = np.zeros((8, n))
    ib = np.zeros((4, n), dtype=np.int64)
    if ties:
        fb[4:6] = rng.integers(-4, 5, (2, n))  # integer lattice: many equal distances
    else:
        fb[4:6] = rng.uniform(-4.0, 4.0, (2, n))
    ib[1] = rng.permutation(10 * n)[:n]
    q = (0.0, 0.0, 0.0)
    d2 = fb[4] ** 2 + fb[5] ** 2
    for guess2, bound2 in [(np.inf, np.inf), (2.0, np.inf), (5.0, 18.0), (8.0, 8.0), (1.0, 2.0)]:
        inside = np.flatnonzero(d2 <= bound2)
        best = inside[np.lexsort((ib[1, inside], d2[inside]))][:k]
        for ranked in (False, True):
            kd = np.empty(k + 1)  # the ranked selection's slot k takes those left out
            ki = np.empty(k + 1, dtype=np.int64)
            if ranked:
                bounds2 = (guess2, bound2)
                got = _neighbours._nearest_ranked(fb, ib, (n, n), q, k, bounds2, kd, ki)
                tried = np.count_nonzero(d2 <= guess2)
                listed = tried if tried >= k or guess2 >= bound2 else inside.size
                if listed > _neighbours.RANKED:
                    assert got == -1
                    continue
            else:
                got = _neighbours._nearest(fb, ib, n, *q, k, bound2, kd, ki)
            assert got == best.size
            assert np.array_equal(kd[:got], d2[best])
            assert np.array_equal(ki[:got], ib[1, best])


@pytest.mark.parametrize("power", [2.0, 1.5])
def test_few_and_many_elements_give_the_same_bits(power):
    # up to SMALL_NE elements each element's sum is kept in a register, above it all
    # elements of a cell are summed together: the same operations in the same order, so
    # an element gridded alone, with a few others or with many is the same map, bit for
    # bit (coincident samples and a sample on a cell centre included)
    from xprospect.grid import _kernels

    rng = np.random.default_rng(11)
    n_el = _kernels.SMALL_NE + 4
    s, _, _ = _samples(rng, 400, 2, n_el=n_el)
    s = s.isel(sample=np.r_[np.arange(400), np.arange(20)])  # coincident samples
    like = _template(2)
    s["x"].values[0], s["y"].values[0] = like.x.values[3], like.y.values[5]
    names = list(s.data_vars)
    every = xp.grid_idw(s, like=like, k=9, power=power, dtype="float64")
    few = xp.grid_idw(s, like=like, k=9, power=power, elements=names[:3], dtype="float64")
    for i, name in enumerate(names):
        alone = xp.grid_idw(s, like=like, k=9, power=power, elements=[name], dtype="float64")
        for other in (every, few) if i < 3 else (every,):
            assert np.array_equal(
                alone[name].values.view(np.int64), other[name].values.view(np.int64)
            ), name


def test_equidistant_neighbours_do_not_depend_on_chunks():
    # samples on a regular lattice: many cells have ties at the k-th distance; which of the
    # tied samples counts is fixed (by sample), so every chunking gives the same map
    gx, gy = np.meshgrid(np.arange(0.0, 1000.0, 50.0), np.arange(0.0, 1000.0, 50.0))
    vals = np.random.default_rng(2).lognormal(size=gx.size)
    s = xr.Dataset(
        {"E0": ("sample", vals)}, coords={"x": ("sample", gx.ravel()), "y": ("sample", gy.ravel())}
    )
    s = xp._dims.write_crs(s, CRS)
    like = xp.make_grid((0, 0, 1000, 1000), resolution=25, crs=CRS)
    eager = xp.grid_idw(s, like=like, k=3, dtype="float64")
    for chunks in (7, (5, 13)):
        lazy = xp.grid_idw(s, like=like, k=3, dtype="float64", chunks=chunks)
        xr.testing.assert_equal(lazy.compute(), eager)


def test_kernels_compile_uncached_where_no_cache_folder_is_writable():
    # numba refuses cache=True for a function whose source file it cannot cache (here: a
    # function without a file); the package's jit then compiles it uncached instead
    from xprospect.grid._jit import jit

    namespace: dict = {}
    exec(compile("def twice(x):\n    return 2 * x\n", "<no file>", "exec"), namespace)
    with pytest.raises(RuntimeError, match="cannot cache"):
        import numba

        numba.njit(cache=True)(namespace["twice"])
    twice = jit()(namespace["twice"])
    assert twice(21) == 42
    assert twice._cache.__class__.__name__ == "NullCache"
