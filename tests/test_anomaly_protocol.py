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
