"""Every ``xprospect`` command end to end in a subprocess, on a tiny synthetic world."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xprospect as xp
from xprospect.cli import build_parser, main
from xprospect.exceptions import IncompleteStoreError
from xprospect.io import store as store_module
from xprospect.io._resume import read_ledger, write_ledger
from xprospect.pipeline import STAGES, digest, validate_config

ROOT = Path(__file__).resolve().parents[1]
CRS = "EPSG:32750"


def xprospect(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the command in a fresh process, as a user would."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "xprospect.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    return run


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A survey CSV (UTM, ppm columns) and a deposits CSV with a ``known`` column."""
    d = tmp_path_factory.mktemp("world")
    w = xp.synthetic.survey(seed=3, n_samples=600, n_deposits=20)
    t = w.samples.to_dataframe().reset_index()
    t[["sample_id", "x", "y", *w.elements]].to_csv(d / "samples.csv", index=False)
    deps = w.deposits.to_dataframe().reset_index()
    deps[["deposit_id", "x", "y", "known", "strength"]].to_csv(d / "deposits.csv", index=False)
    return d


def _written(run: subprocess.CompletedProcess) -> list[str]:
    lines = run.stdout.splitlines()
    assert lines[0] == "wrote:", run.stdout
    return [ln.strip() for ln in lines[1:]]


@pytest.mark.slow
def test_every_command_end_to_end(world, tmp_path, capsys):
    c = tmp_path
    sam, dep = str(world / "samples.csv"), str(world / "deposits.csv")
    r = xprospect(
        "grid",
        sam,
        "--crs",
        CRS,
        "--resolution",
        "1000",
        "--chunks",
        "32",
        "--id-column",
        "sample_id",
        "--out",
        "maps.zarr",
        cwd=c,
    )
    assert _written(r) == ["maps.zarr"]
    assert "600 samples -> 16 maps of" in r.stderr
    maps = xp.open_zarr(c / "maps.zarr")
    assert maps.rio.crs.to_epsg() == 32750 and len(maps.data_vars) == 16
    assert maps.rio.resolution() == (1000.0, -1000.0)

    xprospect("transform", "maps.zarr", "--methods", "clr", "zscore", "--out", "ev.zarr", cwd=c)
    ev = xp.open_zarr(c / "ev.zarr")
    assert abs(float(ev["Au"].mean())) < 1e-3 and ev.rio.crs == maps.rio.crs

    r = xprospect(
        "select",
        "ev.zarr",
        "--deposits",
        dep,
        "--deposits-query",
        "known",
        "--out",
        "sel.csv",
        cwd=c,
    )
    sel = pd.read_csv(c / "sel.csv", index_col="element")
    assert set(sel.index) == set(ev.data_vars) and 2 <= sel["chosen"].sum() <= 8

    r = xprospect(
        "train",
        "ev.zarr",
        "--deposits",
        dep,
        "--deposits-query",
        "known",
        "--selection",
        "sel.csv",
        "--window",
        "10",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        "model.pt",
        cwd=c,
    )
    assert _written(r) == ["model.pt", "model.history.csv"]
    assert len(pd.read_csv(c / "model.history.csv")) == 2
    model = xp.train.load_checkpoint(c / "model.pt")
    assert model.card["elements"] == list(sel.index[sel["chosen"]])

    r = xprospect(
        "score",
        "ev.zarr",
        "--model",
        "model.pt",
        "--out",
        "score.zarr",
        "--device",
        "cpu",
        "--geotiff",
        "score.tif",
        cwd=c,
    )
    score = xp.open_zarr(c / "score.zarr")["prospectivity"]
    assert score.shape == (maps.sizes["y"], maps.sizes["x"])
    tif = xp.read_geotiff(c / "score.tif")
    assert tif.rio.crs.to_epsg() == 32750 and tif.rio.transform() == maps.rio.transform()
    # a finished store is refused without --overwrite (one line, exit 1); --resume on it
    # has nothing left to do and leaves it as it was (in this process: cheaper)
    before = digest(c / "score.zarr")
    args = [str(c / "ev.zarr"), "--model", str(c / "model.pt"), "--out", str(c / "score.zarr")]
    assert main(["score", *args]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert main(["-q", "score", *args, "--resume", "--device", "cpu"]) == 0
    assert digest(c / "score.zarr") == before
    # the same scoring on a dask.distributed cluster gives the same map; a network's bits
    # depend on its thread count (docs/conventions.md) and a one-thread worker runs the model
    # with one torch thread, so equal to float32 rounding
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cl:
        assert (
            main(
                [
                    "-q",
                    "score",
                    *args[:3],
                    "--out",
                    str(c / "cluster.zarr"),
                    "--scheduler",
                    cl.scheduler_address,
                    "--device",
                    "cpu",
                ]
            )
            == 0
        )
    on_cluster = xp.open_zarr(c / "cluster.zarr")["prospectivity"]
    np.testing.assert_allclose(on_cluster.values, score.values, rtol=0, atol=1e-6)

    r = xprospect(
        "evaluate",
        "score.zarr",
        "--deposits",
        dep,
        "--deposits-query",
        "not known",
        "--top",
        "10",
        "--out",
        "eval",
        cwd=c,
    )
    metrics = json.loads((c / "eval" / "metrics.json").read_text())
    assert metrics["n_deposits"] == 10 and 0 <= metrics["roc_auc"] <= 1
    assert metrics["top_percent"] == 10 and (c / "eval" / "evaluation.png").stat().st_size > 0
    assert "AUC " in r.stderr and "{" not in r.stderr  # a short line, not a JSON dict

    r = xprospect(
        "targets",
        "score.zarr",
        "--deposits",
        dep,
        "--top",
        "10",
        "2",
        "--out",
        "t.gpkg",
        "t.geojson",
        "t.csv",
        cwd=c,
    )
    import geopandas as gpd

    gdf = gpd.read_file(c / "t.gpkg")
    assert gdf.crs.to_epsg() == 32750 and len(gdf) == len(pd.read_csv(c / "t.csv")) > 0
    assert set(gdf["level"]) == {"top 10 %", "top 2 %"}
    assert "regions in the top 10 % of the area" in r.stderr

    xprospect(
        "anomaly",
        "ev.zarr",
        "--elements",
        "As",
        "Hg",
        "Cu",
        "--deposits",
        dep,
        "--buffer-m",
        "3000",
        "--out",
        "anomaly.zarr",
        cwd=c,
    )
    anomaly = xp.open_zarr(c / "anomaly.zarr")["anomaly"]
    assert anomaly.shape == score.shape and anomaly.rio.crs.to_epsg() == 32750

    # a published map to compare: the As layer as a GeoTIFF on the maps' grid, and on a
    # grid twice as coarse (resampled onto the maps' grid by nearest neighbour)
    ev = xp.open_zarr(c / "ev.zarr")
    xp.to_geotiff(ev[["As"]].rename({"As": "published"}), c / "published.tif", cog=False)
    coarse = ev[["As"]].isel(x=slice(None, None, 2), y=slice(None, None, 2))
    xp.to_geotiff(coarse.rename({"As": "coarse"}), c / "coarse.tif", cog=False)
    (c / "bench.toml").write_text(
        f'[benchmark]\nmaps = "ev.zarr"\nelements = ["As", "Hg", "Au"]\nmethods = ["raw"]\n'
        f'folds = 2\ncontrols = true\ncontrol_draws = 2\ncompare = ["published.tif", '
        f'"coarse.tif"]\n\n[deposits]\npath = "{dep}"\n'
    )
    r = xprospect("benchmark", "bench.toml", "--out", "bench", cwd=c)
    table = pd.read_csv(c / "bench" / "benchmark.csv", index_col=0)
    assert {"raw:As", "raw:Hg", "raw:Au", "map:published", "map:coarse"} <= set(table.index)
    # the same map as a file is judged exactly as the layer; the coarse one was resampled
    assert table.loc["map:published", "auc"] == pytest.approx(table.loc["raw:As", "auc"])
    assert table.loc["map:coarse", "kind"] == "raw" and "coarse.tif: resampled" in r.stderr
    assert (c / "bench" / "benchmark.png").exists()
    controls = pd.read_csv(c / "bench" / "controls.csv", index_col=0)
    assert set(controls.index) == set(table.index) and (controls["draws"] == 2).all()
    # each real AUC against its own control, in the table and on the terminal
    assert table["control_p"].between(1 / 3, 1).all() and "permutation p" in r.stderr + r.stdout


def _config(world: Path, **changes: dict) -> str:
    cfg = {
        "output": {"folder": "out"},
        "samples": {"path": str(world / "samples.csv"), "crs": CRS, "id_column": "sample_id"},
        "deposits": {
            "path": str(world / "deposits.csv"),
            "train_query": "known",
            "test_query": "not known",
        },
        "grid": {"resolution": 1000.0, "chunks": 32},
        "train": {"epochs": 2, "window_m": 10000.0, "device": "cpu"},
        "score": {"device": "cpu"},
    }
    for section, kv in changes.items():
        cfg.setdefault(section, {}).update(kv)
    out = []
    for section, kv in cfg.items():
        out.append(f"[{section}]")
        out += [f"{k} = {json.dumps(v)}" for k, v in kv.items()]
    return "\n".join(out) + "\n"


@pytest.mark.slow
def test_run_reproduces_the_python_api_and_reruns_only_what_changed(world, tmp_path, monkeypatch):
    r = xprospect("init", "pipeline.toml", cwd=tmp_path)
    example = (tmp_path / "pipeline.toml").read_text()
    assert "[samples]" in example and "# " in example and _written(r) == ["pipeline.toml"]
    toml = tmp_path / "pipeline.toml"
    toml.write_text(_config(world))
    r = xprospect("run", "pipeline.toml", cwd=tmp_path)
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["last_run"]["ran"] == list(STAGES)
    for name in (
        "maps.zarr",
        "evidence.zarr",
        "element_selection.csv",
        "model.pt",
        "history.csv",
        "prospectivity.zarr",
        "prospectivity.tif",
        "metrics.json",
        "evaluation.png",
        "targets.gpkg",
        "targets.geojson",
        "targets.csv",
    ):
        assert (out / name).exists(), name
    assert manifest["stages"]["grid"]["inputs"]
    assert "7 stages ran, 0 up to date" in r.stderr

    # the same map through the Python API, step by step, on the torch thread count of a
    # fresh process like the command's (an earlier in-process score may have changed ours,
    # and training's float sums depend on it)
    torch = pytest.importorskip("torch")
    fresh = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        capture_output=True,
        text=True,
        check=True,
    )
    before = torch.get_num_threads()
    torch.set_num_threads(int(fresh.stdout))
    samples = xp.read_samples(
        world / "samples.csv", x="x", y="y", crs=CRS, id_column="sample_id", duplicates="mean"
    )
    grid = xp.make_grid(like=samples, resolution=1000.0, pad=2000.0, chunks=32)
    ev = samples.prospect.idw(like=grid, k=12, power=2.0).prospect.transform("clr")
    ev = ev.prospect.zscore()
    known = xp.read_points(world / "deposits.csv", crs=CRS, query="known", duplicate_ids="keep")
    table = xp.select_elements(ev, known, alpha=0.01, seed=0)
    chosen = [str(e) for e in table.index[table["selected"]]]
    chosen = chosen if len(chosen) >= 2 else [str(e) for e in table.index[:2]]
    stack = ev.prospect.stack(chosen[:8])
    patches = stack.prospect.patches(
        positives=known,
        negatives=15 * known.sizes["point"],
        size=14,
        jitter=3,
        n_per_positive=8,
        seed=0,
    )
    net = xp.models.SmallCNN(len(chosen[:8]), window=10, widths=(16, 16, 32, 32), seed=0)
    fit = xp.train.fit(
        net,
        patches,
        recipe="adam",
        epochs=2,
        validation=0.25,
        early_stopping=3,
        crop=10,
        device="cpu",
        seed=0,
        progress=False,
    )
    expected = stack.prospect.score(fit.model, batch_size=64, device="cpu").compute()
    torch.set_num_threads(before)
    got = xp.open_zarr(out / "prospectivity.zarr")["prospectivity"]
    assert got.rio.crs.to_epsg() == 32750
    np.testing.assert_array_equal(got.values, expected.values)

    # nothing changed: every stage skipped
    assert main(["-q", "run", str(toml)]) == 0
    assert json.loads((out / "manifest.json").read_text())["last_run"]["ran"] == []
    # one training setting changed: train and what reads the model, nothing before it
    toml.write_text(_config(world, train={"epochs": 3}))
    assert main(["-q", "run", str(toml)]) == 0
    last = json.loads((out / "manifest.json").read_text())["last_run"]
    assert last["ran"] == ["train", "score", "evaluate", "targets"]
    assert last["skipped"] == ["grid", "transform", "select"]
    # one target setting changed: only the targets
    toml.write_text(_config(world, train={"epochs": 3}, targets={"top_percent": [5.0]}))
    assert main(["-q", "run", str(toml)]) == 0
    assert json.loads((out / "manifest.json").read_text())["last_run"]["ran"] == ["targets"]

    # a scoring run cut short (two chunks never marked done) opens as incomplete; `run
    # --resume` scores only those two, and evaluate/targets follow the finished store
    store = out / "prospectivity.zarr"
    whole = xp.open_zarr(store)["prospectivity"].values
    ledger = read_ledger(str(store))
    assert ledger is not None and ledger.total > 2
    lost = {0, ledger.total - 1}
    ledger.done -= lost
    ledger.state = "writing"
    write_ledger(str(store), ledger)
    with pytest.raises(IncompleteStoreError):
        xp.open_zarr(store)
    written: list[int] = []
    real = store_module.write_tasks

    def spy(ds, path, led, todo, *rest):
        written.extend(todo)
        return real(ds, path, led, todo, *rest)

    monkeypatch.setattr(store_module, "write_tasks", spy)
    assert main(["-q", "run", str(toml), "--resume"]) == 0
    last = json.loads((out / "manifest.json").read_text())["last_run"]
    assert last["ran"][0] == "score" and "train" in last["skipped"]
    assert set(written) == lost
    np.testing.assert_array_equal(xp.open_zarr(store)["prospectivity"].values, whole)


def test_every_command_has_help_for_every_option():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert len(sub.choices) == 14 and {"benchmark3d", "benchmark-samples"} <= set(sub.choices)
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help, f"xprospect {name} {action.option_strings or action.dest}"
        # argparse %-formats help strings but not descriptions: no "%%" may reach the user
        assert "%%" not in p.format_help(), name


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"xprospect {xp.__version__}"
    with pytest.raises(SystemExit):
        main(["grid", "--help"])
    assert "--resolution" in capsys.readouterr().out


def test_a_bad_configuration_names_file_and_line(tmp_path, capsys):
    toml = tmp_path / "p.toml"
    toml.write_text(
        '[samples]\npath = "s.csv"\ncrs = "EPSG:32750"\n\n[grid]\n'
        'resolution = -5\nmethod = "nearest"\ncolour = 1\n'
    )
    assert main(["run", str(toml)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("xprospect: error: ")
    assert f"{toml}, line 6: [grid] resolution: expected > 0" in err
    assert f"{toml}, line 7: [grid] method: expected one of ['idw', 'kriging']" in err
    assert f"{toml}, line 8: [grid] colour: unknown key" in err
    assert "missing required key 'path'" in err  # [deposits] is absent


def test_init_refuses_to_overwrite(tmp_path, capsys):
    p = tmp_path / "pipeline.toml"
    p.write_text("mine")
    assert main(["init", str(p)]) == 1
    assert "already exists" in capsys.readouterr().err and p.read_text() == "mine"
    assert main(["-q", "init", str(p), "--force"]) == 0
    assert validate_config(tomllib.loads(p.read_text()))["grid"]["resolution"] == 250.0


def test_every_commented_key_of_the_example_is_valid_when_uncommented():
    from xprospect.pipeline import example_config

    text = example_config()
    assert validate_config(tomllib.loads(text))["samples"]["id_column"] is None
    opened = re.sub(r"(?m)^# (\w+ = )", r"\1", text)
    cfg = validate_config(tomllib.loads(opened))
    assert cfg["samples"]["id_column"] == "SAMPLEID" and cfg["grid"]["pad"] == 1000.0


def test_the_commands_never_configure_the_root_logger(tmp_path, capsys):
    import logging

    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    assert main(["init", str(tmp_path / "p.toml")]) == 0
    assert main(["init", str(tmp_path / "p.toml")]) == 1
    assert (list(root.handlers), root.level) == before
    assert logging.getLogger("xprospect").handlers == []
    src = Path(xp.__file__).parent
    offenders = [str(p) for p in src.rglob("*.py") if "basicConfig" in p.read_text()]
    assert offenders == []


def test_quiet_default_and_verbose_say_less_and_more(tmp_path, capsys):
    """-q: the files written only; default: the command's short line; -v: the library's
    reports too (here the ingest report)."""
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "x": 500000 + rng.random(30) * 20000,
            "y": 6.2e6 + rng.random(30) * 20000,
            "Au_ppb": rng.random(30) + 0.1,
        }
    ).to_csv(tmp_path / "s.csv", index=False)
    said = {}
    for flag in ("-q", None, "-v"):
        out = tmp_path / f"m{flag}.zarr"
        args = [flag] if flag else []
        assert (
            main(
                [
                    *args,
                    "grid",
                    str(tmp_path / "s.csv"),
                    "--crs",
                    CRS,
                    "--resolution",
                    "2000",
                    "--chunks",
                    "8",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        said[flag] = capsys.readouterr()
        assert said[flag].out.splitlines() == ["wrote:", f"  {out}"]
    assert said["-q"].err == ""
    assert (
        said[None].err.startswith("30 samples -> 1 maps of")
        and "read 30 rows" not in said[None].err
    )
    assert "read 30 rows from" in said["-v"].err and "30 samples -> 1 maps" in said["-v"].err


def test_a_store_of_several_maps_asks_which_to_evaluate(tmp_path, capsys):
    """``evaluate evidence.zarr`` took the store's first element map without a word."""
    from xprospect.cli._common import open_map

    grid = xp.make_grid((500000, 6.2e6, 510000, 6.21e6), resolution=1000.0, crs=CRS)
    shape = (grid.sizes["y"], grid.sizes["x"])
    maps = xr.Dataset(
        {n: (("y", "x"), np.full(shape, i, "f4")) for i, n in enumerate(["Ag", "Au"])},
        coords={"y": grid.y, "x": grid.x},
    )
    maps = maps.rio.write_crs(CRS)
    maps.to_zarr(tmp_path / "ev.zarr")
    assert float(open_map(tmp_path / "ev.zarr", "Au").max()) == 1.0
    with pytest.raises(xp.DataError, match="choose one with --variable"):
        open_map(tmp_path / "ev.zarr")
    pd.DataFrame({"x": [505000.0], "y": [6.205e6]}).to_csv(tmp_path / "d.csv", index=False)
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "ev.zarr"),
                "--deposits",
                str(tmp_path / "d.csv"),
                "--out",
                str(tmp_path / "e"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "holds 2 maps (Ag, Au); choose one with --variable" in err
    maps[["Au"]].rename({"Au": "prospectivity"}).assign(Ag=maps["Ag"]).to_zarr(
        tmp_path / "score.zarr"
    )
    assert open_map(tmp_path / "score.zarr").name == "prospectivity"


def test_benchmark3d_command_from_drillhole_tables(tmp_path):
    """Collar, survey, assay and lithology CSVs to the block-model harness's table, scores,
    controls and figure, without Python; a label column the composites lack is named."""
    pytest.importorskip("trimesh")
    from xprospect.synthetic import orebody

    w = orebody(seed=0, n_holes=20, interval=10.0, elements=["Au", "Ag", "As", "W"])
    for name in ("collar", "survey", "assay", "lithology"):
        getattr(w, name).to_csv(tmp_path / f"{name}.csv", index=False)
    crs = w.crs.to_string() if hasattr(w.crs, "to_string") else str(w.crs)
    cfg = (
        f'[drillholes]\ncollar = "collar.csv"\nsurvey = "survey.csv"\nassay = "assay.csv"\n'
        f'lithology = "lithology.csv"\ncrs = "{crs}"\nlength_unit = "m"\ncomposite = 20.0\n\n'
        '[labels]\ncolumn = "lith"\nvalues = ["ore"]\n\n'
        '[benchmark3d]\nelements = ["Au", "Ag", "As", "W"]\nmethods = ["grade:Au", "logistic"]\n'
        "folds = 3\nblock_size = 300.0\nbuffer = 30.0\nresolution = 40.0\n"
        "controls = true\ncontrol_draws = 2\n"
    )
    (tmp_path / "b3.toml").write_text(cfg)
    r = xprospect("benchmark3d", "b3.toml", "--out", "b3", cwd=tmp_path)
    out = tmp_path / "b3"
    table = pd.read_csv(out / "benchmark3d.csv", index_col=0)
    assert set(table.index) == {"grade:Au", "logistic"}
    assert table["auc"].between(0, 1).all() and table["control_p"].between(1 / 3, 1).all()
    scores = pd.read_csv(out / "scores.csv")
    assert {"hole", "fold", "label", "grade:Au", "logistic"} <= set(scores.columns)
    assert scores["label"].any() and not scores["label"].all()
    controls = pd.read_csv(out / "controls.csv", index_col=0)
    assert (controls["draws"] == 2).all()
    assert len(pd.read_csv(out / "folds.csv")) == 3
    assert (out / "benchmark3d.png").stat().st_size > 1000
    assert "permutation p" in r.stderr + r.stdout and "ore (ore in lith)" in r.stderr + r.stdout
    # the same run straight from Python gives the same table
    holes = xp.read_drillholes(w.collar, w.survey, w.assay, w.lithology, crs=w.crs, length_unit="m")
    comp = xp.composite(holes, length=20.0, by="lith")
    b = xp.benchmark3d(
        comp,
        comp["lith"].values == "ore",
        elements=["Au", "Ag", "As", "W"],
        methods=["grade:Au", "logistic"],
        n_folds=3,
        block_size=300.0,
        buffer=30.0,
        resolution=40.0,
    )
    np.testing.assert_allclose(table["auc"], b.table["auc"].reindex(table.index))
    (tmp_path / "bad.toml").write_text(cfg.replace('column = "lith"', 'column = "rock"'))
    bad = subprocess.run(
        [sys.executable, "-m", "xprospect.cli", "benchmark3d", "bad.toml", "--out", "x"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        timeout=600,
    )
    assert bad.returncode != 0 and "'rock'" in bad.stderr and "Traceback" not in bad.stderr


def test_benchmark_samples_command_from_survey_tables(world, tmp_path):
    """A survey CSV and a deposits CSV to the sample-level table, with controls, and its
    figure, without Python; the same table as xp.benchmark_samples; bad keys named."""
    cfg = (
        f'[samples]\npath = "{world / "samples.csv"}"\ncrs = "{CRS}"\n\n'
        f'[deposits]\npath = "{world / "deposits.csv"}"\n\n'
        '[benchmark_samples]\nmethods = ["raw:Au", "raw:Cu", "gmm", "iforest"]\n'
        'transform = "ilr"\nmin_dist = 2000.0\nn_draws = 10\ncontrols = 5\n'
    )
    (tmp_path / "bs.toml").write_text(cfg)
    r = xprospect("benchmark-samples", "bs.toml", "--out", "bs", cwd=tmp_path)
    out = tmp_path / "bs"
    assert _written(r) == [
        str(Path("bs") / "benchmark_samples.csv"),
        str(Path("bs") / "benchmark_samples.png"),
    ]
    table = pd.read_csv(out / "benchmark_samples.csv", index_col=0)
    assert set(table.index) == {"raw:Au", "raw:Cu", "gmm", "iforest"}
    assert (table["controls"] == 5).all() and table["control_p"].between(1 / 6, 1).all()
    assert (table["n_deposits"] == 20).all() and table["auc"].is_monotonic_decreasing
    assert (out / "benchmark_samples.png").stat().st_size > 1000
    assert "permutation p" in r.stderr and "detectors on ilr" in r.stderr
    # the same run straight from Python: detectors on the ilr balances, raw on the values
    samples = xp.read_samples(world / "samples.csv", x="x", y="y", crs=CRS, duplicates="mean")
    deposits = xp.read_points(world / "deposits.csv", x="x", y="y", crs=CRS)
    els = [str(v) for v in samples.data_vars]
    ilr = samples.prospect.ilr(elements=els)
    balances = [str(v) for v in ilr.data_vars if str(v).startswith("ilr")]
    direct = xp.benchmark_samples(
        xr.merge([samples[els], ilr[balances]]),
        deposits,
        [
            "raw:Au",
            "raw:Cu",
            ("gmm", xp.harness.SampleMethod("gmm", elements=balances)),
            ("iforest", xp.harness.SampleMethod("iforest", elements=balances)),
        ],
        min_dist=2000.0,
        n_draws=10,
        controls=5,
    )
    np.testing.assert_allclose(table["auc"], direct["auc"].reindex(table.index))
    np.testing.assert_allclose(table["control_auc"], direct["control_auc"].reindex(table.index))
    # a method it does not know, and samples in degrees with a distance in metres
    (tmp_path / "bad.toml").write_text(cfg.replace('"iforest"]', '"knn"]'))
    from pyproj import Transformer

    cli = [sys.executable, "-m", "xprospect.cli"]
    lonlat = pd.read_csv(world / "samples.csv")
    to_deg = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lonlat["x"], lonlat["y"] = to_deg.transform(lonlat["x"].to_numpy(), lonlat["y"].to_numpy())
    lonlat.to_csv(tmp_path / "deg.csv", index=False)
    deg = cfg.replace(str(world / "samples.csv"), "deg.csv").replace(
        f'crs = "{CRS}"', 'crs = "EPSG:4326"'
    )
    (tmp_path / "deg.toml").write_text(deg)
    for name, said in (("bad", "unknown method 'knn'"), ("deg", "projected CRS")):
        bad = subprocess.run(
            [*cli, "benchmark-samples", f"{name}.toml", "--out", "x"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=tmp_path,
            timeout=600,
        )
        assert bad.returncode != 0 and said in bad.stderr and "Traceback" not in bad.stderr
