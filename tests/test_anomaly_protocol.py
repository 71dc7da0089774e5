"""The sample-level anomaly protocol: chance on a random score, 1.0 on a perfect one."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xprospect as xp
from xprospect.evaluate import sample_protocol
from xprospect.exceptions import DataError
from xprospect.points import distance_to_points, make_points

CRS = "EPSG:32750"


@pytest.fixture(scope="module")
def field():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 200_000, (3000, 2))
    dep = rng.uniform(20_000, 180_000, (40, 2))
    d = np.hypot(xy[:, None, 0] - dep[None, :, 0], xy[:, None, 1] - dep[None, :, 1]).min(1)
    samples = make_points(
        x=xy[:, 0], y=xy[:, 1], crs=CRS, data={"noise": rng.normal(size=len(xy)), "near": -d}
    )
    return samples, make_points(x=dep[:, 0], y=dep[:, 1], crs=CRS), d


def test_random_score_sits_at_chance_within_its_sampling_error(field):
    samples, deposits, _ = field
    aucs = [
        sample_protocol(np.random.default_rng(s).normal(size=3000), samples, deposits, seed=s)[
            "auc"
        ]
        for s in range(15)
    ]
    # 40 deposits against 40 negatives: the SE of one AUC at 0.5 is about 0.065
    se_mean = np.sqrt((40 + 40 + 1) / (12 * 40 * 40)) / np.sqrt(15)
    assert abs(np.mean(aucs) - 0.5) < 3 * se_mean
    r = sample_protocol("noise", samples, deposits)
    assert 0.5 - 0.2 < r["auc"] < 0.5 + 0.2
    assert r["n_draws"] == 20 and r["n_deposits"] == 40


def test_perfect_score_scores_one(field):
    samples, deposits, d = field
    r = sample_protocol("near", samples, deposits, min_dist=5000.0)
    assert r["auc"] == 1.0 and r["average_precision"] == 1.0
    assert r["success_rate"] == pytest.approx(1.0)
    # the top 1 % of samples are the ones closest to a deposit
    n_top = int(np.ceil(0.01 * 3000))
    assert r["top_distance_mean"] == pytest.approx(np.sort(d)[:n_top].mean())
    assert r["n_negative_pool"] == int((d >= 5000).sum())


def test_gridded_score_is_read_at_the_samples(field):
    samples, deposits, _ = field
    grid = xp.make_grid(bounds=(0, 0, 200_000, 200_000), resolution=2000, crs=CRS)
    dist = distance_to_points(deposits, grid)
    r = sample_protocol(-dist, samples, deposits)
    assert r["auc"] > 0.95
    direct = sample_protocol(np.arange(3000.0), samples, deposits)
    again = sample_protocol(xr.DataArray(np.arange(3000.0)), samples, deposits)
    assert direct == again


def test_protocol_names_bad_input(field):
    samples, deposits, _ = field
    with pytest.raises(DataError, match="not a variable"):
        sample_protocol("Au", samples, deposits)
    with pytest.raises(DataError, match="values for 3000 samples"):
        sample_protocol(np.zeros(5), samples, deposits)
    with pytest.raises(DataError, match="min_dist"):
        sample_protocol("near", samples, deposits, min_dist=1e9)


def test_control_sites_cover_the_sampled_ground_by_area():
    from xprospect.evaluate import control_sites

    rng = np.random.default_rng(3)
    # two sampled squares of equal area, one ten times denser, far apart
    dense = rng.uniform(0, 10_000, (1000, 2))
    sparse = rng.uniform(0, 10_000, (100, 2)) + np.array([50_000, 0])
    xy = np.vstack([dense, sparse])
    # deposits anywhere in either square: the farthest from a sample sets the reach
    dep = rng.uniform(0, 10_000, (20, 2)) + np.repeat([[0, 0], [50_000, 0]], 10, axis=0)
    sites = control_sites(xy, dep, draws=100, seed=0)
    assert len(sites) == 100 and all(s.shape == (20, 2) for s in sites)
    allsites = np.vstack(sites)

    # every site lies within reach of a sample: as far as the farthest deposit lies from
    # its nearest sample, or the median spacing of the samples where that is larger
    def nearest(a, b):
        return np.hypot(*(a[:, None] - b[None]).transpose(2, 0, 1)).min(1)

    spacing = np.median(np.sort(np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1)), 1)[:, 1])
    reach = max(nearest(dep, xy).max(), spacing)
    d = nearest(allsites, xy)
    assert (d <= reach + 1e-9).all() and d.max() > 0.5 * reach
    # by area, not by sample count: about half the sites in each square
    share = float(np.mean(allsites[:, 0] > 30_000))
    assert 0.4 < share < 0.6
    # draw r depends on (seed, r) only; another seed moves the sites
    again = control_sites(xy, dep, draws=3, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(again, sites[:3], strict=True))
    assert not np.array_equal(control_sites(xy, dep, draws=1, seed=1)[0], sites[0])
    # a deposit far from every sample widens the ground it is drawn from
    far = control_sites(xy, np.array([[5000.0, 30_000.0]]), draws=100, seed=0)
    assert np.vstack(far)[:, 1].max() > 15_000


def test_controls_give_each_score_its_null(field):
    samples, deposits, _ = field
    perfect = sample_protocol("near", samples, deposits, controls=19)
    # moved to random sites, the distance to the real deposits ranks them at chance
    assert abs(perfect["control_auc"] - 0.5) < 0.08
    assert perfect["control_auc_sd"] > 0
    assert perfect["control_p"] == pytest.approx(1 / 20) and perfect["controls"] == 19
    # a random score's real AUC is one more draw of its null: its p is not small on average
    ps = [
        sample_protocol(
            np.random.default_rng(s).normal(size=3000), samples, deposits, controls=9, seed=s
        )["control_p"]
        for s in range(12)
    ]
    assert 0.3 < np.mean(ps) < 0.7
    # the controls change none of the real figures; no controls, no control keys
    plain = sample_protocol("near", samples, deposits)
    assert "control_auc" not in plain
    assert {k: perfect[k] for k in plain} == plain
    with pytest.raises(DataError, match="controls"):
        sample_protocol("near", samples, deposits, controls=-1)


def test_permutation_p():
    from xprospect.evaluate import permutation_p

    assert permutation_p(0.8, [0.5, 0.6, 0.85, 0.4]) == pytest.approx(0.4)
    assert permutation_p(0.9, [0.5, 0.6]) == pytest.approx(1 / 3)
    null = np.array([[0.5, 0.9], [0.6, np.nan], [0.7, 0.95]])
    np.testing.assert_allclose(permutation_p([0.65, 0.9], null), [2 / 4, 3 / 4])
    with pytest.raises(DataError, match="at least one"):
        permutation_p(0.5, [])


def test_a_deposit_off_the_survey_is_counted_and_does_not_stretch_the_controls(field):
    samples, deposits, _ = field
    far = make_points(
        x=np.r_[deposits["x"].values, 900_000.0],
        y=np.r_[deposits["y"].values, 100_000.0],
        crs=CRS,
    )
    r = sample_protocol("near", samples, far, controls=5)
    assert r["n_deposits"] == 41 and r["n_deposits_far"] == 1
    # its nearest sample is 700 km from it and far from every other deposit: a negative too
    assert r["n_far_also_negative"] == 1
    assert sample_protocol("near", samples, deposits)["n_deposits_far"] == 0
    # the sampled ground of the controls is the real deposits' one, not 700 km wider
    from xprospect.evaluate import control_sites

    xy = np.column_stack([samples["x"].values, samples["y"].values])
    dxy = np.column_stack([far["x"].values, far["y"].values])
    inside = np.r_[np.ones(40, bool), False]
    sites = np.vstack(control_sites(xy, dxy, draws=5, seed=0, reach_from=inside))
    assert sites[:, 0].max() < 210_000
