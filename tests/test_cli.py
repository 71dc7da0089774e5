"""The README's main job: ``xprospect demo --out DIR``."""

from __future__ import annotations

import json

import numpy as np
import pytest

import xprospect as xp
from xprospect.cli import main, run_demo


def test_demo_writes_maps_metrics_and_picture(tmp_path):
    out = tmp_path / "demo"
    metrics = run_demo(out, seed=3, n_samples=400, resolution=1500, chunks=16)
    for name in ("samples.csv", "maps.zarr", "scores.zarr", "scores.tif", "maps.png",
                 "metrics.json"):
        assert (out / name).exists(), name
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    # honest metrics: hold-out samples were not used to grid, and the maps follow the truth
    au = metrics["idw_holdout_10pct"]["Au"]
    assert au["n_holdout"] == 40 and 0 < au["rmse_log10"] < 1
    assert metrics["idw_log10_corr_with_truth"]["Au"] > 0.5
    maps = xp.open_zarr(out / "maps.zarr")
    assert maps.rio.crs.to_epsg() == 32750
    assert np.isfinite(maps["Au"].values).all()


def test_demo_is_deterministic(tmp_path):
    a = run_demo(tmp_path / "a", seed=1, n_samples=200, resolution=3000)
    b = run_demo(tmp_path / "b", seed=1, n_samples=200, resolution=3000)
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
