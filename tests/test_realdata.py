"""Gridding real surveys from ../shared/data (skipped when the data are absent)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

import xprospect as xp

pytestmark = pytest.mark.realdata

KATANNING = "wa_katanning_stream_sediment_au/area1_sediment_au.csv"
LAPLAND = "central_lapland_till_geochem_gtk/IOCG_CLB_Till_Geochem_reg_511p.csv"


def test_katanning_au_map_finite_within_radius(data_dir):
    samples = xp.read_samples(
        data_dir / KATANNING, x="X", y="Y", crs="EPSG:4326", to_crs="EPSG:32750", duplicates="drop"
    )
    report = xp.ingest_report(samples)
    assert samples.sizes["sample"] == 866
    assert report["n_exact_duplicates"] == 526
    grid = xp.make_grid(like=samples, resolution=1000, pad=2000, chunks=(37, 53))
    radius = 5000.0
    maps = samples.prospect.idw(like=grid, k=12, radius=radius, elements=["Au", "As", "Cu"])
    au = maps["Au"].compute()
    assert au.rio.crs.to_epsg() == 32750
    yy, xx = np.meshgrid(grid.y.values, grid.x.values, indexing="ij")
    tree = cKDTree(np.column_stack([samples.x.values, samples.y.values]))
    d, _ = tree.query(np.column_stack([xx.ravel(), yy.ravel()]))
    near = (d <= radius).reshape(au.shape)
    # finite wherever a sample lies within the radius, NaN (never 0) elsewhere
    assert np.isfinite(au.values[near]).all()
    assert np.isnan(au.values[~near]).all()
    assert near.sum() > 0.3 * near.size and (~near).sum() > 0
    valid = samples["Au"].values
    # bounded by the samples (to float32 rounding)
    assert au.min() >= np.nanmin(valid) * (1 - 1e-6)
    assert au.max() <= np.nanmax(valid) * (1 + 1e-6)


def test_lapland_idw_holdout_beats_the_mean(data_dir):
    elements = ["Cu_ppm_511", "Co_ppm_511", "Fe_ppm_511"]
    samples = xp.read_samples(
        data_dir / LAPLAND, x="Easting", y="Northing", crs="EPSG:3067", elements=elements
    )
    n = samples.sizes["sample"]
    assert n == 1112
    rng = np.random.default_rng(0)
    test = np.zeros(n, dtype=bool)
    test[rng.choice(n, n // 5, replace=False)] = True
    train, held = samples.isel(sample=~test), samples.isel(sample=test)
    grid = xp.make_grid(like=samples, resolution=250, pad=500)
    maps = xp.grid_idw(train, like=grid, k=8, power=2, dtype="float64")
    for name in maps.data_vars:
        pred = maps[name].sel(x=held.x, y=held.y, method="nearest").values
        obs = held[name].values
        ok = np.isfinite(obs) & (obs > 0)
        rmse_idw = np.sqrt(np.mean((np.log10(pred[ok]) - np.log10(obs[ok])) ** 2))
        rmse_mean = np.sqrt(
            np.mean((np.log10(np.nanmean(train[name].values)) - np.log10(obs[ok])) ** 2)
        )
        assert rmse_idw < 0.9 * rmse_mean, (name, rmse_idw, rmse_mean)
