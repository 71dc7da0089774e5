"""The README's main job: ``xprospect demo --out DIR``."""

from __future__ import annotations

import json

import numpy as np
import pytest

import xprospect as xp
from xprospect.cli import main, run_demo

SMALL = dict(n_samples=800, n_deposits=20, resolution=1000, chunks=16, window=10, epochs=6)


def test_demo_writes_map_metrics_and_pictures(tmp_path):
    out = tmp_path / "demo"
    metrics = run_demo(out, seed=3, **SMALL)
    for name in ("samples.csv", "maps.zarr", "scores.zarr", "scores.tif", "maps.png",
                 "element_selection.csv", "history.csv", "model.pt", "prospectivity.zarr",
                 "prospectivity.tif", "prospectivity.png", "evaluation.png", "targets.csv",
                 "targets.geojson", "metrics.json"):
        assert (out / name).exists(), name
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    # honest metrics: hold-out samples were not used to grid, and the maps follow the truth
    au = metrics["idw_holdout_10pct"]["Au"]
    assert au["n_holdout"] == 80 and 0 < au["rmse_log10"] < 1
    assert metrics["idw_log10_corr_with_truth"]["Au"] > 0.5
    maps = xp.open_zarr(out / "maps.zarr")
    assert maps.rio.crs.to_epsg() == 32750
    assert np.isfinite(maps["Au"].values).all()
    # the prospectivity map is georeferenced like the grid and judged on unseen deposits
    prosp = xp.read_geotiff(out / "prospectivity.tif")
    assert prosp.rio.crs.to_epsg() == 32750
    assert prosp.rio.transform() == maps.rio.transform()
    ev = metrics["evaluation on hidden deposits"]
    assert 0.0 <= ev["roc_auc"] <= 1.0 and ev["capture"]["deposits_used"] == 10
    assert metrics["deposits"]["hidden (evaluation)"] == 10
    assert set(metrics["element_selection"]["selected"]) <= set(maps.data_vars)
    model = xp.train.load_checkpoint(out / "model.pt")
    assert model.card["elements"] == metrics["element_selection"]["selected"]


def test_demo_is_deterministic(tmp_path):
    small = {**SMALL, "n_samples": 400, "epochs": 3}
    a = run_demo(tmp_path / "a", seed=1, **small)
    b = run_demo(tmp_path / "b", seed=1, **small)
    a.pop("seconds")
    b.pop("seconds")
    assert a == b


def test_demo_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    assert main(["demo", "--out", str(out), "--n-samples", "200"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "precious"
    with pytest.raises(xp.XProspectError, match="not empty"):
        run_demo(out, n_samples=200)
