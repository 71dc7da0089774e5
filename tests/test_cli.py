"""The README's main job: ``xprospect demo --out DIR``."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xprospect as xp
from xprospect.cli import main, run_demo

SMALL = dict(n_samples=800, n_deposits=20, resolution=1000, chunks=16, window=10, epochs=6)


def test_demo_writes_map_metrics_and_pictures(tmp_path):
    out = tmp_path / "demo"
    metrics = run_demo(out, seed=3, **SMALL)
    for name in (
        "samples.csv",
        "maps.zarr",
        "scores.zarr",
        "scores.tif",
        "maps.png",
        "element_selection.csv",
        "history.csv",
        "model.pt",
        "prospectivity.zarr",
        "prospectivity.tif",
        "prospectivity.png",
        "evaluation.png",
        "targets.csv",
        "targets.geojson",
        "metrics.json",
    ):
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
    assert main(["demo", "--out", str(out), "--n-samples", "200"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xprospect: error: ") and "not empty" in err
    assert (out / "notes.txt").read_text() == "precious"
    with pytest.raises(xp.XProspectError, match="not empty"):
        run_demo(out, n_samples=200)


# ------------------------------------------------------------------ one-line errors, no traceback


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("xprospect: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        pytest.param(
            ["--n-samples", "0"],
            "--n-samples: expected a positive integer; got 0",
            id="n-samples-0",
        ),
        pytest.param(
            ["--n-samples", "ten"],
            "--n-samples: expected a positive integer; got 'ten'",
            id="n-samples-text",
        ),
        pytest.param(
            ["--epochs", "-3"],
            "--epochs: expected a positive integer; got -3",
            id="epochs-negative",
        ),
        pytest.param(
            ["--resolution", "nan"],
            "--resolution: expected a positive number; got nan",
            id="resolution-nan",
        ),
        pytest.param(
            ["--colour", "red"], "unrecognized arguments: --colour red", id="unknown-option"
        ),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args, match, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--out", str(tmp_path / "o"), *args])
    assert info.value.code == 2
    line = _one_error_line(capsys.readouterr().err)
    assert match in line
    assert not (tmp_path / "o").exists()


def test_missing_out_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo"])
    assert info.value.code == 2
    assert "required: --out" in _one_error_line(capsys.readouterr().err)


def test_out_that_is_a_file_is_one_line_and_exit_1(tmp_path, capsys):
    f = tmp_path / "report.txt"
    f.write_text("mine")
    assert main(["demo", "--out", str(f), "--n-samples", "200"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"{f} is an existing file, not a folder" in line
    assert f.read_text() == "mine"


def test_out_under_a_file_is_one_line_and_exit_1(tmp_path, capsys):
    f = tmp_path / "report.txt"
    f.write_text("mine")
    assert main(["demo", "--out", str(f / "sub"), "--n-samples", "200"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"cannot create the output folder {f / 'sub'}: a folder on its path is a file" in line


def test_read_only_target_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    # tests may run as root, where chmod does not stop writes: refuse the mkdir instead
    def refuse(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert main(["demo", "--out", str(tmp_path / "o"), "--n-samples", "200"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"cannot create the output folder {tmp_path / 'o'}: Read-only file system" in line


def test_full_disk_mid_run_is_one_line_exit_1_and_no_partial_file(tmp_path, capsys, monkeypatch):
    import pandas as pd

    def full(self, path, *args, **kwargs):
        Path(path).write_text("sample_id,x,")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    out = tmp_path / "o"
    assert main(["demo", "--out", str(out), "--n-samples", "200"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"cannot write {out / 'samples.csv'}: the disk is full" in line
    assert list(out.iterdir()) == []  # no partial samples.csv, no temporary file


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(
    tmp_path, capsys, monkeypatch
):
    def boom(*args, **kwargs):
        raise ValueError("something deep broke")

    monkeypatch.setattr(xp.synthetic, "survey", boom)
    assert main(["demo", "--out", str(tmp_path / "a"), "--n-samples", "200"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "unexpected ValueError: something deep broke" in line and "--debug" in line
    assert main(["demo", "--out", str(tmp_path / "b"), "--n-samples", "200", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("xprospect: error: unexpected ValueError")


def test_the_installed_command_prints_one_line(tmp_path):
    # a real process: nothing but the one line on stderr, and the exit status
    f = tmp_path / "taken"
    f.write_text("x")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for args, code, match in (
        (["--n-samples", "0"], 2, "positive integer"),
        ([], 1, "is an existing file"),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "xprospect.cli", "demo", "--out", str(f), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert run.returncode == code, run.stderr
        assert match in _one_error_line(run.stderr)
        assert run.stdout == ""
