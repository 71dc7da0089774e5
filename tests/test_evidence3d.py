"""3-D evidence layers: balances, halo ratios, factor analysis, meshes, structures, recipe."""

from __future__ import annotations

import contextlib

import dask
import numpy as np
import pandas as pd
import pytest
import trimesh
import xarray as xr
from sklearn.decomposition import FactorAnalysis
from sklearn.metrics import roc_auc_score

import xprospect as xp
from xprospect.evidence import (
    distance_to_mesh,
    inside_mesh,
    mesh_open_edges,
    read_mesh,
    zaozigou_layers,
)
from xprospect.evidence._mesh_kernels import tri_dist2
from xprospect.evidence.proximity import (
    buffer_structures,
    distance_to_samples,
    distance_to_samples_at,
    distance_to_structures,
    mask_distance,
)
from xprospect.preprocess import factor_analysis, factor_label
from xprospect.preprocess.compositional import balance, halo_ratio
from xprospect.synthetic import orebody as orebody_world
from xprospect.testing import assert_georef_equal

CRS = "EPSG:28350"


@contextlib.contextmanager
def no_compute():
    """Fail if anything inside computes a dask graph."""

    def scheduler(*args, **kwargs):
        raise AssertionError("a dask graph was computed")

    with dask.config.set(scheduler=scheduler):
        yield


def _table(values: dict[str, list[float]], backend: str = "numpy") -> xr.Dataset:
    ds = xr.Dataset({k: ("sample", np.asarray(v, dtype="float64")) for k, v in values.items()})
    return ds.chunk({"sample": 2}) if backend == "dask" else ds


# -- balance and halo ratio --------------------------------------------------------------


def test_balance_hand_values(backend):
    ds = _table({"Au": [8.0, 4.0], "Ag": [2.0, 1.0], "Co": [1.0, 2.0], "Ni": [4.0, 2.0]}, backend)
    b = balance(ds, ["Au", "Ag"], ["Co", "Ni"])
    # sqrt(2*2/4) * ln(sqrt(16)/sqrt(4)) = ln 2 ; sqrt(1) * ln(2/2) = 0
    np.testing.assert_allclose(b.values, [np.log(2.0), 0.0], atol=1e-12)
    b3 = balance(ds, ["Au"], ["Co", "Ni", "Ag"])
    den = np.cbrt([1.0 * 4.0 * 2.0, 2.0 * 2.0 * 1.0])
    expect = np.sqrt(3 / 4) * np.log(np.array([8.0, 4.0]) / den)
    np.testing.assert_allclose(b3.values, expect, rtol=1e-12)
    assert b.attrs["numerator"] == ["Au", "Ag"] and "gmean" in b.attrs["formula"]


def test_balance_errors():
    ds = _table({"Au": [1.0, 0.0], "Co": [1.0, 1.0]})
    with pytest.raises(xp.DataError, match="Au"):
        balance(ds, ["Au"], ["Co"])
    with pytest.raises(xp.DataError, match="both"):
        balance(ds, ["Au", "Co"], ["Co"])
    with pytest.raises(xp.DataError, match="Zn"):
        balance(ds, ["Zn"], ["Co"])


def test_halo_ratio_hand_values(backend):
    ds = _table(
        {"As": [2.0, 1.0], "Sb": [3.0, 1.0], "Hg": [1.0, 1.0], "W": [1.0, 4.0], "Mo": [2.0, 1.0]},
        backend,
    )
    r = halo_ratio(ds, ["As", "Sb", "Hg"], ["W", "Mo"])
    np.testing.assert_allclose(r.values, [3.0, 0.25], rtol=1e-12)
    lg = halo_ratio(ds, ["As", "Sb", "Hg"], ["W", "Mo"], kind="log")
    np.testing.assert_allclose(lg.values, np.log10([3.0, 0.25]), rtol=1e-12)
    bal = halo_ratio(ds, ["As", "Sb", "Hg"], ["W", "Mo"], kind="balance")
    expect = np.sqrt(6 / 5) * np.log(np.cbrt([6.0, 1.0]) / np.sqrt([2.0, 4.0]))
    np.testing.assert_allclose(bal.values, expect, rtol=1e-12)
    assert r.attrs["formula"] == "(As*Sb*Hg)/(W*Mo)"
    with pytest.raises(xp.DataError, match="kind"):
        halo_ratio(ds, ["As"], ["W"], kind="sum")


def test_ratio_on_voxels_is_lazy_and_georeferenced():
    vox = xp.make_voxels((0, 0, 0, 50, 70, 30), resolution=10, crs=CRS, chunks=(2, 5, 7))
    rng = np.random.default_rng(1)
    block = vox.assign(
        {e: (("z", "y", "x"), rng.lognormal(size=(3, 7, 5))) for e in ["As", "Sb", "W"]}
    ).chunk({"z": 2, "y": 5, "x": 3})
    with no_compute():
        r = halo_ratio(block, ["As", "Sb"], ["W"], kind="log")
    assert r.chunks is not None
    assert_georef_equal(r, vox)
    np.testing.assert_allclose(
        r.values, np.log10(block.As.values * block.Sb.values / block.W.values), rtol=1e-10
    )


# -- factor analysis -------------------------------------------------------------------


def _two_factor_data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, 2))
    loads = {
        "Sb": (0.9, 0),
        "Hg": (0.8, 0),
        "As": (0.7, 0),
        "Cu": (0, 0.9),
        "Ni": (0, 0.8),
        "Co": (0, 0.7),
    }
    data = {}
    for e, (a, b) in loads.items():
        noise = rng.normal(scale=np.sqrt(1 - a * a - b * b), size=n)
        data[e] = 10 ** (0.3 * (a * f[:, 0] + b * f[:, 1] + noise) + 1.0)
    return data, f


def test_factor_analysis_recovers_planted_factors():
    data, f = _two_factor_data()
    ds = xr.Dataset({e: ("sample", v) for e, v in data.items()})
    scores, loadings = factor_analysis(ds, n_factors=2, rotation="varimax")
    labels = loadings.attrs["labels"]
    groups = {frozenset(labels[c].split(": ")[1].split("+")) for c in ("F1", "F2")}
    assert groups == {frozenset({"Sb", "Hg", "As"}), frozenset({"Cu", "Ni", "Co"})}
    # loadings near the planted values (standardised, so loading = correlation)
    f_sb = "F1" if "Sb" in labels["F1"] else "F2"
    np.testing.assert_allclose(loadings.loc[["Sb", "Hg", "As"], f_sb], [0.9, 0.8, 0.7], atol=0.06)
    # scores track the planted factors
    assert np.corrcoef(scores.sel(factor=f_sb).values, f[:, 0])[0, 1] > 0.9
    assert scores.label.values.tolist() == [labels["F1"], labels["F2"]]


def test_factor_analysis_matches_sklearn_on_all_rows():
    """The covariance-only fit equals sklearn fitted on every standardised row."""
    data, _ = _two_factor_data(n=800, seed=3)
    ds = xr.Dataset({e: ("sample", v) for e, v in data.items()})
    _, loadings = factor_analysis(ds, n_factors=2)
    z = np.log10(np.stack([data[e] for e in data], axis=1))
    z = (z - z.mean(0)) / z.std(0)
    ref = FactorAnalysis(2, rotation="varimax", svd_method="lapack").fit(z).components_
    mine = loadings[["F1", "F2"]].to_numpy().T
    # same factors up to order and sign
    for row in mine:
        gap = min(min(np.abs(row - r).max(), np.abs(row + r).max()) for r in ref)
        assert gap < 1e-6


def test_factor_scores_dask_equal_numpy_and_lazy():
    rng = np.random.default_rng(0)
    vox = xp.make_voxels((0, 0, 0, 60, 70, 40), resolution=10, crs=CRS)
    shape = tuple(vox.sizes[d] for d in ("z", "y", "x"))
    g = rng.normal(size=shape)
    block = vox.assign(
        {
            e: (("z", "y", "x"), 10 ** (0.4 * g * w + 0.3 * rng.normal(size=shape)))
            for e, w in [("Sb", 1), ("Hg", 0.9), ("Cu", 0.1), ("Zn", 0.0)]
        }
    )
    block["Cu"][0, 0, 0] = np.nan
    s_np, l_np = factor_analysis(block, n_factors=1)
    lazy = block.chunk({"z": 3, "y": 5, "x": 7})
    s_da, l_da = factor_analysis(lazy, n_factors=1)
    assert s_da.chunks is not None
    np.testing.assert_allclose(s_da.values, s_np.values, rtol=1e-5, atol=1e-5)
    pd.testing.assert_frame_equal(l_da, l_np)
    assert np.isnan(s_np.values[0, 0, 0, 0]) and np.isfinite(s_np.values[0, 1, 0, 0])
    assert_georef_equal(s_np.isel(factor=0), vox)
    assert set(l_np.attrs["labels"]["F1"][4:].split("+")) == {"Sb", "Hg"}
    assert l_np.attrs["converged"]


def test_factor_analysis_errors():
    ds = _table({"Au": [1.0, 2.0, 3.0], "Cu": [1.0, 2.0, 4.0]})
    with pytest.raises(xp.DataError, match="n_factors"):
        factor_analysis(ds, n_factors=2)
    with pytest.raises(xp.DataError, match="rotation"):
        factor_analysis(ds, n_factors=1, rotation="promax")
    assert factor_label(pd.Series({"Sb": 0.9, "Hg": 0.8, "Co": -0.6, "Au": 0.1})) == "Sb+Hg-Co"


# -- meshes: distances and inside -------------------------------------------------------


def _cube_distance(x, y, z, h=1.0):
    q = np.abs(np.stack([x, y, z])) - h
    outside = np.sqrt((np.clip(q, 0, None) ** 2).sum(axis=0))
    inside = np.minimum(np.max(q, axis=0), 0.0)
    return np.abs(outside + inside)


def test_point_triangle_distance_regions():
    tri = (0, 0, 0, 1, 0, 0, 0, 1, 0)
    assert tri_dist2(0.2, 0.2, 2.0, *tri) == pytest.approx(4.0)  # face
    assert tri_dist2(-1.0, -1.0, 0.0, *tri) == pytest.approx(2.0)  # vertex a
    assert tri_dist2(0.5, -2.0, 0.0, *tri) == pytest.approx(4.0)  # edge ab
    assert tri_dist2(1.0, 1.0, 0.0, *tri) == pytest.approx(0.5)  # edge bc
    # a zero-area triangle is a segment
    assert tri_dist2(0.5, 1.0, 0.0, 0, 0, 0, 1, 0, 0, 1, 0, 0) == pytest.approx(1.0)


@pytest.mark.parametrize("chunks", [None, (5, 7, 4)])
def test_distance_to_cube_is_analytical(chunks):
    vox = xp.make_voxels(
        (-2.1, -2.3, -1.9, 2.2, 2.0, 2.4), resolution=(0.3, 0.25, 0.35), crs=CRS, chunks=chunks
    )
    box = trimesh.creation.box(extents=(2, 2, 2))
    d = distance_to_mesh(vox, box)
    zz, yy, xx = np.meshgrid(vox.z, vox.y, vox.x, indexing="ij")
    np.testing.assert_allclose(d.values, _cube_distance(xx, yy, zz), atol=1e-5)
    assert_georef_equal(d, vox)
    assert (d.chunks is not None) == (chunks is not None)


def test_distance_to_sphere_and_cap():
    r = 5.0
    ball = trimesh.creation.icosphere(subdivisions=4, radius=r)
    vox = xp.make_voxels((-8, -8, -8, 8, 8, 8), resolution=1.0, crs=CRS)
    d = distance_to_mesh(vox, ball)
    zz, yy, xx = np.meshgrid(vox.z, vox.y, vox.x, indexing="ij")
    exact = np.abs(np.sqrt(xx**2 + yy**2 + zz**2) - r)
    # an inscribed polyhedron: within its sagitta (deepest face plane) of the sphere
    sag = r - np.min(np.abs(np.einsum("ij,ij->i", ball.face_normals, ball.triangles[:, 0])))
    assert np.abs(d.values - exact).max() < sag + 1e-6
    capped = distance_to_mesh(vox, ball, max_distance=1.5)
    near = d.values <= 1.5
    np.testing.assert_allclose(capped.values[near], d.values[near], rtol=1e-6)
    assert np.isinf(capped.values[~near]).all()


def test_inside_cube_with_centres_on_faces():
    # centres at -1, -0.5, ..., 1 on every axis: many lie exactly on faces, edges, corners
    c = np.arange(-1.5, 1.6, 0.5)
    vox = xr.Dataset(coords={"z": c, "y": c[::-1], "x": c}).rio.write_crs(CRS)
    assert 1.0 in vox.x.values and -1.0 in vox.z.values
    box = trimesh.creation.box(extents=(2, 2, 2))
    ins = inside_mesh(vox, box)
    zz, yy, xx = np.meshgrid(vox.z, vox.y, vox.x, indexing="ij")
    half_open = (xx >= -1) & (xx < 1) & (yy >= -1) & (yy < 1) & (zz >= -1) & (zz < 1)
    np.testing.assert_array_equal(ins.values, half_open)
    # a cube tilted so its edges and vertices fall on grid lines still labels consistently
    rot = trimesh.transformations.rotation_matrix(np.pi / 4, [0, 0, 1])
    tilted = box.copy().apply_transform(rot)
    t = inside_mesh(vox, tilted).values
    rr = np.abs(xx) + np.abs(yy)
    np.testing.assert_array_equal(t[(rr < np.sqrt(2) - 1e-9) & (np.abs(zz) < 1)], True)
    assert not t[(rr > np.sqrt(2) + 1e-9) | (np.abs(zz) > 1)].any()


def test_inside_sphere_and_dask():
    r = 5.0
    ball = trimesh.creation.icosphere(subdivisions=3, radius=r)
    vox = xp.make_voxels((-6, -6, -6, 6, 6, 6), resolution=0.5, crs=CRS, chunks=(5, 7, 9))
    with no_compute():
        ins = inside_mesh(vox, ball)
    zz, yy, xx = np.meshgrid(vox.z, vox.y, vox.x, indexing="ij")
    rad = np.sqrt(xx**2 + yy**2 + zz**2)
    sag = r * (1 - np.cos(np.radians(4.8)))
    vals = ins.values
    assert vals[rad < r - sag].all() and not vals[rad > r].any()
    np.testing.assert_array_equal(vals, inside_mesh(vox.compute(), ball).values)
    assert ins.dtype == bool and ins.attrs["open_edges_found"] == 0


def test_open_mesh_is_refused_or_repaired():
    box = trimesh.creation.box(extents=(2, 2, 2))
    holed = trimesh.Trimesh(box.vertices, box.faces[1:], process=False)
    assert mesh_open_edges(holed) == 3
    vox = xp.make_voxels((-2, -2, -2, 2, 2, 2), resolution=1.0, crs=CRS)
    with pytest.raises(xp.DataError, match="3 edges"):
        inside_mesh(vox, holed)
    fixed = inside_mesh(vox, holed, repair=True)
    np.testing.assert_array_equal(fixed.values, inside_mesh(vox, box).values)
    assert "filled holes" in fixed.attrs["repair"]


def test_read_mesh_and_crs(tmp_path):
    path = tmp_path / "box.ply"
    trimesh.creation.box(extents=(2, 2, 2)).export(path)
    mesh = read_mesh(path, crs=CRS)
    assert len(mesh.faces) == 12 and mesh.metadata["source"] == str(path)
    vox = xp.make_voxels((-2, -2, -2, 2, 2, 2), resolution=1.0, crs="EPSG:32750")
    with pytest.raises(xp.CRSError):
        inside_mesh(vox, mesh)
    with pytest.raises(xp.DataError, match="does not exist"):
        read_mesh(tmp_path / "nope.stl")


# -- structures and buffers ------------------------------------------------------------


def test_distance_to_structures_points_lines_and_buffer():
    shapely = pytest.importorskip("shapely")
    grid = xp.make_grid((0, 0, 10, 10), resolution=1.0, crs=CRS, chunks=(3, 4))
    line = shapely.geometry.LineString([(0, 5), (10, 5)])
    d = distance_to_structures(grid, line)
    yy, _ = np.meshgrid(grid.y, grid.x, indexing="ij")
    np.testing.assert_allclose(d.values, np.abs(yy - 5), atol=1e-6)
    pts = pd.DataFrame({"x": [0.5], "y": [0.5]})
    both = distance_to_structures(grid, [line, pts])
    np.testing.assert_allclose(
        both.values, np.minimum(np.abs(yy - 5), distance_to_structures(grid, pts).values), atol=1e-6
    )
    buf = buffer_structures(grid, line, 1.5)
    np.testing.assert_array_equal(buf.values, np.abs(yy - 5) <= 1.5)
    assert buf.dtype == bool and buf.attrs["distance"] == 1.5
    with pytest.raises(xp.GridError, match="voxel"):
        distance_to_structures(grid, trimesh.creation.box())
    # a cell centre exactly at the buffer distance is inside (scipy's bound is strict)
    assert int(buffer_structures(grid, np.array([[0.5, 0.5]]), 1.0).sum()) == 3


@pytest.mark.parametrize("ndim", [2, 3])
def test_distance_to_samples_one_runner_numpy_equals_dask(ndim):
    rng = np.random.default_rng(ndim)
    if ndim == 3:
        like = xp.make_voxels((0, 0, 0, 90, 70, 50), resolution=10, crs=CRS)
        coords = {
            "x": rng.uniform(0, 90, 6),
            "y": rng.uniform(0, 70, 6),
            "z": rng.uniform(0, 50, 6),
        }
        lazy = like.chunk({"z": (2, 3), "y": (3, 4), "x": (5, 4)})
    else:
        like = xp.make_grid((0, 0, 90, 70), resolution=10, crs=CRS)
        coords = {"x": rng.uniform(0, 90, 6), "y": rng.uniform(0, 70, 6)}
        lazy = like.chunk({"y": (3, 4), "x": (5, 4)})
    samples = xr.Dataset(coords={k: ("sample", v) for k, v in coords.items()})
    samples = samples.rio.write_crs(CRS)
    ref = distance_to_samples(like, samples)
    with no_compute():
        out = distance_to_samples(lazy, samples)
        masked = mask_distance(
            lazy.assign(v=xr.ones_like(lazy["mask"], dtype="float64")), samples, max_distance=15.0
        )
    assert out.chunks is not None and masked["v"].chunks is not None
    xr.testing.assert_identical(out.compute(), ref)
    dims = ref.dims
    grids = np.meshgrid(*[like[d].values for d in dims], indexing="ij")
    cen = np.stack([g.ravel() for g in grids], axis=1)
    pts = np.stack([coords[d] for d in dims], axis=1)
    brute = np.sqrt(((cen[:, None, :] - pts[None]) ** 2).sum(-1)).min(1).reshape(ref.shape)
    np.testing.assert_allclose(ref.values, brute, rtol=1e-12)
    np.testing.assert_array_equal(np.isfinite(masked["v"].values), brute <= 15.0)
    if ndim == 3:  # the same distances at points (voxel centres as x, y, z columns)
        xyz = np.stack([grids[dims.index(d)].ravel() for d in "xyz"], axis=1)
        at = distance_to_samples_at(xyz, samples).reshape(ref.shape)
        np.testing.assert_array_equal(at, ref.values)
        assert distance_to_samples_at(np.empty((0, 3)), samples).shape == (0,)


def test_buffer_around_a_fault_surface_on_voxels():
    w = orebody_world(seed=1, n_holes=4)
    vox = xp.make_voxels(w.bounds, resolution=40, crs=w.crs, chunks=(6, 7, 5))
    buf = buffer_structures(vox, w.fault, 30.0)
    zz, yy, xx = np.meshgrid(vox.z, vox.y, vox.x, indexing="ij")
    np.testing.assert_array_equal(buf.values, w.fault_distance(xx, yy, zz) <= 30.0)


# -- the Zaozigou recipe on the synthetic 3-D world ---------------------------------------


@pytest.fixture(scope="module")
def world3d():
    return orebody_world(seed=0)


def test_zaozigou_layers_find_the_orebody(world3d):
    w = world3d
    vox = xp.make_voxels(w.bounds, resolution=30, crs=w.crs, chunks=(9, 16, 11))
    block = w.samples().prospect.idw(like=vox, k=16, power=2, radius=150)
    layers = zaozigou_layers(block, structures=w.fault, buffer=30.0)
    assert_georef_equal(layers, vox)
    expected = ["structure_buffer", "halo_ratio", "balance_Au_Ag_Cu_Pb_Zn", "cv_Au", "factor_Sb_Hg"]
    assert list(layers.data_vars) == expected == layers.attrs["layers"]
    assert layers["halo_ratio"].chunks is not None  # stayed lazy
    truth = w.truth(vox)["ore"].values
    out = layers.compute()
    aucs = {}
    for name in expected:
        a = out[name].values
        ok = np.isfinite(a)
        assert ok.mean() > 0.5
        aucs[name] = roc_auc_score(truth[ok], a[ok])
        assert out[name].attrs["long_name"]
    assert min(aucs.values()) > 0.6, aucs
    assert out["halo_ratio"].attrs["formula"] == "log10((As*Sb*Hg)/(W*Bi*Co*Mo))"
    assert "Sb" in out["factor_Sb_Hg"].attrs["long_name"]
    assert set(np.unique(out["cv_Au"].values[np.isfinite(out["cv_Au"].values)])) <= {0, 1, 2}


def test_zaozigou_layers_names_missing_elements():
    vox = xp.make_voxels((0, 0, 0, 30, 30, 30), resolution=10, crs=CRS)
    block = vox.assign({"Cu": (("z", "y", "x"), np.ones((3, 3, 3)))})
    with pytest.raises(xp.DataError, match="As"):
        zaozigou_layers(block)


def test_old_layer_names_warn_and_point_to_their_new_homes():
    rng = np.random.default_rng(0)
    vox = xp.make_voxels((0, 0, 0, 50, 50, 50), resolution=10, crs=CRS)
    block = vox.assign(
        {e: (("z", "y", "x"), rng.lognormal(size=(5, 5, 5))) for e in ["As", "Sb", "Hg", "W", "Mo"]}
    )
    opts = dict(
        ratio=(["As", "Sb", "Hg"], ["W", "Mo"]), factors=None, balance=None, cv_element=None
    )
    with pytest.warns(FutureWarning, match="zaozigou_layers"):
        old = xp.evidence.build(block, **opts)
    xr.testing.assert_identical(old, zaozigou_layers(block, **opts))
    with pytest.warns(FutureWarning, match="xprospect.preprocess.compositional.halo_ratio"):
        from xprospect.evidence.layers import halo_ratio as old_ratio
    assert old_ratio is halo_ratio is xp.evidence.halo_ratio is xp.preprocess.halo_ratio
    with pytest.warns(FutureWarning, match="xprospect.evidence.proximity"):
        from xprospect.evidence.layers import distance_to_structures as old_dist
    assert old_dist is distance_to_structures


# -- real data -------------------------------------------------------------------------


def test_babbitt_wireframe_labels_voxels(data_dir):
    path = data_dir / "babbitt_cuni_drillholes" / "Mpz.stl"
    if not path.exists():
        pytest.skip("Mpz.stl not found")
    mesh = read_mesh(path, crs="EPSG:26791")
    assert len(mesh.faces) == 63749
    lo, hi = mesh.bounds
    vox = xp.make_voxels(
        (*lo, *hi), resolution=(100, 250, 250), crs="EPSG:26791", chunks=(8, 16, 16)
    )
    with pytest.raises(xp.DataError, match="3 edges"):
        inside_mesh(vox, mesh)
    ins = inside_mesh(vox, mesh, repair=True).values
    n, total = int(ins.sum()), ins.size
    print(f"Mpz.stl: {n} of {total} voxels inside ({n / total:.1%})")
    assert 0 < n < total
    # the enclosed volume agrees with the mesh's own volume (trimesh, divergence theorem)
    vol = n * 100 * 250 * 250
    assert abs(vol - abs(mesh.volume)) / abs(mesh.volume) < 0.1


def test_mesh_benchmark_bodies_run():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asv_bench"))
    from benchmarks import mesh as bmesh

    bench = bmesh.MeshVoxels()
    bench.setup(8)
    names = [n for n in dir(bench) if n.startswith(("time_", "peakmem_"))]
    assert len(names) == 5
    for n in names:
        getattr(bench, n)(8)
