"""Run the whole path from a configuration: stages, one output folder, a manifest, skipping.

Stages run in order: ``grid`` -> ``transform`` -> ``select`` -> ``train`` -> ``score`` ->
``evaluate``, ``targets``. Each stage names its inputs (files) and its parameters (the
configuration keys it reads); its *key* is a digest of both. ``manifest.json`` in the output
folder records, per stage, the parameters, the inputs' and outputs' SHA-256 digests and the
time taken. A stage is skipped when its key equals the recorded one and its outputs are on
disk unchanged (their digests match): so a rerun after editing one stage's settings redoes
that stage and those that read what it wrote, and nothing else; editing an input file redoes
everything downstream of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

import xprospect as xp
from xprospect._json import dumps
from xprospect._version import __version__
from xprospect.exceptions import DataError
from xprospect.io._atomic import atomic_path
from xprospect.pipeline import steps
from xprospect.pipeline.config import load_config

__all__ = ["STAGES", "PipelineResult", "cluster", "digest", "run_pipeline"]

log = logging.getLogger("xprospect.pipeline")

STAGES = ("grid", "transform", "select", "train", "score", "evaluate", "targets")
MANIFEST = "manifest.json"

# Output names inside the folder, one home.
MAPS, EVIDENCE, SELECTION = "maps.zarr", "evidence.zarr", "element_selection.csv"
MODEL, HISTORY = "model.pt", "history.csv"
SCORE_ZARR, SCORE_TIF = "prospectivity.zarr", "prospectivity.tif"
METRICS, FIGURE = "metrics.json", "evaluation.png"
TARGETS = ("targets.gpkg", "targets.geojson", "targets.csv")


@dataclasses.dataclass
class PipelineResult:
    """What :func:`run_pipeline` returns.

    Attributes
    ----------
    folder : pathlib.Path
        The output folder.
    ran, skipped : list of str
        Stages recomputed, and stages whose outputs were up to date.
    outputs : dict
        Stage -> list of output paths.
    manifest : dict
        The manifest written.
    summary : dict
        Short results (grid shape, elements chosen, AUC ...).
    """

    folder: Path
    ran: list[str]
    skipped: list[str]
    outputs: dict[str, list[Path]]
    manifest: dict[str, Any]
    summary: dict[str, Any]


def digest(path: str | Path) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and bytes, sorted).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str
        Hex digest (``"missing"`` when the path does not exist).
    """
    path = Path(path)
    h = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    if not path.is_dir():
        return "missing"
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            p = Path(root) / name
            h.update(str(p.relative_to(path)).encode())
            h.update(digest(p).encode())
    return h.hexdigest()


def _key(params: Mapping[str, Any], inputs: Mapping[str, str]) -> str:
    text = json.dumps({"params": params, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_manifest(folder: Path) -> dict[str, Any]:
    p = folder / MANIFEST
    if not p.exists():
        return {"stages": {}}
    try:
        m = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        log.warning("manifest %s is unreadable: every stage runs again", p)
        return {"stages": {}}
    return m if isinstance(m.get("stages"), dict) else {"stages": {}}


def _write_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    text = dumps(manifest, indent=2)
    with atomic_path(folder / MANIFEST) as tmp:
        tmp.write_text(text)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


@dataclasses.dataclass
class _Stage:
    name: str
    params: dict[str, Any]
    inputs: list[Path]
    outputs: list[Path]
    work: Callable[[], str]


def run_pipeline(
    config: str | Path | Mapping[str, Any],
    *,
    scheduler: str | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool | None = None,
) -> PipelineResult:
    """Run the pipeline a configuration describes, skipping up-to-date stages.

    Parameters
    ----------
    config : path or mapping
        A TOML file (see :func:`xprospect.pipeline.config.load_config`) or an already
        validated configuration (relative paths then resolve against the working folder).
    scheduler : str, optional
        Address of a ``dask.distributed`` scheduler (``tcp://host:8786``) to run on.
    resume : bool
        Finish an interrupted scoring store rather than start it again (see
        :func:`xprospect.to_zarr`).
    force : bool
        Run every stage, whatever the manifest says.
    progress : bool or None
        Progress bars for training and writing (None: on a terminal).

    Returns
    -------
    PipelineResult
    """
    cfg = load_config(config) if isinstance(config, str | Path) else dict(config)
    with cluster(scheduler):
        return _run(cfg, resume=resume, force=force, progress=progress)


@contextlib.contextmanager
def cluster(address: str | None) -> Iterator[Any]:
    """Connect to a ``dask.distributed`` scheduler for the duration (nothing when None).

    Parameters
    ----------
    address : str or None
        Scheduler address, e.g. ``tcp://host:8786``.

    Yields
    ------
    distributed.Client or None
    """
    if address is None:
        yield None
        return
    from distributed import Client  # lazy: only for a cluster

    try:
        client = Client(address, timeout="20s")
    except OSError as err:
        raise DataError(f"cannot reach the dask scheduler at {address}: {err}") from err
    with client:
        log.info("on the cluster at %s (%d workers)", address, len(client.nthreads()))
        yield client


def _without(section: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """Return a configuration section less some keys (the rest: a step's keyword arguments)."""
    return {k: v for k, v in section.items() if k not in keys}


def _run(
    cfg: Mapping[str, Any], *, resume: bool, force: bool, progress: bool | None
) -> PipelineResult:
    out_cfg = cfg["output"]
    base = Path(out_cfg.get("base") or ".")
    folder = base / out_cfg["folder"]
    if folder.exists() and not folder.is_dir():
        raise DataError(f"output folder {folder} is an existing file; change [output] folder")
    folder.mkdir(parents=True, exist_ok=True)
    seed = int(out_cfg["seed"])
    sam, dep = cfg["samples"], cfg["deposits"]
    samples_path = base / sam["path"]
    deposits_path = base / dep["path"]
    to_crs = sam["to_crs"] or sam["crs"]
    dep_crs = dep["crs"] or sam["crs"]  # in the stages' parameters
    summary: dict[str, Any] = {}

    train_query = dep["train_query"]
    test_query = dep["test_query"] or train_query

    def deposits(query: str | None) -> xr.Dataset:
        return steps.read_deposits(
            deposits_path,
            x=dep["x"],
            y=dep["y"],
            crs=dep["crs"],
            to_crs=to_crs,
            query=query,
            default_crs=sam["crs"],
        )

    def f(name: str) -> Path:
        return folder / name

    def open_maps(name: str) -> Any:
        return xp.open_zarr(f(name), chunks={})

    def do_grid() -> str:
        # the sections' keys are the steps' keyword arguments (config.SCHEMA)
        samples = steps.read_survey(samples_path, **_without(sam, "path"))
        g = cfg["grid"]
        maps = steps.grid_samples(samples, **g)
        xp.to_zarr(maps, f(MAPS), mode="w", progress=progress)
        ny, nx = maps.sizes["y"], maps.sizes["x"]
        summary["grid"] = {"samples": int(samples.sizes["sample"]), "shape": [ny, nx]}
        return (
            f"{samples.sizes['sample']} samples -> {len(maps.data_vars)} maps of "
            f"{ny} x {nx} cells at {g['resolution']:g} m ({maps.rio.crs})"
        )

    def do_transform() -> str:
        methods = cfg["transform"]["methods"]
        ev = steps.transform_maps(open_maps(MAPS), methods)
        xp.to_zarr(ev, f(EVIDENCE), mode="w", progress=progress)
        return f"{len(ev.data_vars)} maps: {', '.join(methods) or 'no transform'}"

    def do_select() -> str:
        s = cfg["select"]
        table, chosen = steps.choose_elements(
            open_maps(EVIDENCE).compute(), deposits(train_query), seed=seed, **s
        )
        table = table.assign(chosen=table.index.isin(chosen))
        with atomic_path(f(SELECTION)) as tmp:
            table.to_csv(tmp, index_label="element")
        summary["elements"] = chosen
        return f"{len(chosen)} of {len(table)} elements chosen: {', '.join(chosen)}"

    def do_train() -> str:
        t = cfg["train"]
        table = pd.read_csv(f(SELECTION), index_col="element")
        chosen = [str(e) for e in table.index[table["chosen"].astype(bool)]]
        maps = open_maps(EVIDENCE)
        window = steps.cells_from_metres(t["window_m"], maps, least=5)
        deps = deposits(train_query)
        fit = steps.train_model(
            maps,
            deps,
            chosen,
            window=window,
            seed=seed,
            progress=progress,
            **_without(t, "window_m"),
        )
        xp.train.save_checkpoint(fit, f(MODEL))
        with atomic_path(f(HISTORY)) as tmp:
            fit.history.to_csv(tmp, index=False)
        val = float(fit.history["val_auc"].max())
        summary["train"] = {"window_cells": window, "best_epoch": int(fit.best_epoch)}
        summary["train"]["val_auc"] = val
        return (
            f"{t['model']} ({window} x {window} cells) on {deps.sizes['point']} deposits, "
            f"{len(fit.history)} epochs, best {fit.best_epoch}; spatial-validation AUC "
            f"{steps.significant(val)}"
        )

    def do_score() -> str:
        sc = cfg["score"]
        model = xp.train.load_checkpoint(f(MODEL))
        job = steps.score_maps(open_maps(EVIDENCE), model, **sc)
        ident = {"model_sha256": digest(f(MODEL)), "stride": sc["stride"]}
        if resume:
            xp.to_zarr(job.to_dataset(), f(SCORE_ZARR), resume=True, job=ident, progress=progress)
        else:
            xp.to_zarr(job.to_dataset(), f(SCORE_ZARR), mode="w", job=ident, progress=progress)
        score = xp.open_zarr(f(SCORE_ZARR))["prospectivity"].compute()
        steps.write_geotiff(score, f(SCORE_TIF), cog=bool(out_cfg["cog"]))
        return f"{score.sizes['y']} x {score.sizes['x']} cells scored"

    def do_evaluate() -> str:
        e = cfg["evaluate"]
        score = xp.open_zarr(f(SCORE_ZARR))["prospectivity"].compute()
        deps = deposits(test_query)
        report, short = steps.evaluate_map(
            score, deps, top_percent=e["top_percent"], blocks=e["blocks"], seed=seed
        )
        which = (
            f"test_query {dep['test_query']!r}"
            if dep["test_query"]
            else "training deposits (a fit, not a test)"
        )
        metrics = {"evaluated_on": which, **short, "report": report.to_dict()}
        text = dumps(metrics, indent=2)
        with atomic_path(f(METRICS)) as tmp:
            tmp.write_text(text)
        report.plot(f(FIGURE))
        summary["evaluate"] = short
        inside = short["deposits_in_top"]
        share = "n/a" if inside is None else f"{100 * inside:.0f} %"
        return (
            f"AUC {steps.significant(short['roc_auc'])} on {short['n_deposits']} deposits "
            f"({which}); {share} of them in the top {e['top_percent']:g} % of the area"
        )

    def do_targets() -> str:
        t = cfg["targets"]
        score = xp.open_zarr(f(SCORE_ZARR))["prospectivity"].compute()
        tgt = steps.make_targets(
            score,
            top_percent=t["top_percent"],
            deposits=deposits(test_query),
            min_cells=t["min_cells"],
        )
        steps.write_targets(tgt, [f(n) for n in TARGETS])
        counts = tgt.table.groupby("level").size().to_dict()
        return "; ".join(f"{n} regions in the {lvl} of the area" for lvl, n in counts.items())

    dep_params = {k: dep[k] for k in ("x", "y")} | {"crs": dep_crs, "to_crs": to_crs}
    stages = [
        _Stage("grid", {**sam, **cfg["grid"]}, [samples_path], [f(MAPS)], do_grid),
        _Stage("transform", dict(cfg["transform"]), [f(MAPS)], [f(EVIDENCE)], do_transform),
        _Stage(
            "select",
            {**cfg["select"], **dep_params, "query": train_query, "seed": seed},
            [f(EVIDENCE), deposits_path],
            [f(SELECTION)],
            do_select,
        ),
        _Stage(
            "train",
            {**cfg["train"], **dep_params, "query": train_query, "seed": seed},
            [f(EVIDENCE), deposits_path, f(SELECTION)],
            [f(MODEL), f(HISTORY)],
            do_train,
        ),
        _Stage(
            "score",
            {**cfg["score"], "cog": out_cfg["cog"]},
            [f(EVIDENCE), f(MODEL)],
            [f(SCORE_ZARR), f(SCORE_TIF)],
            do_score,
        ),
        _Stage(
            "evaluate",
            {**cfg["evaluate"], **dep_params, "query": test_query, "seed": seed},
            [f(SCORE_ZARR), deposits_path],
            [f(METRICS), f(FIGURE)],
            do_evaluate,
        ),
        _Stage(
            "targets",
            {**cfg["targets"], **dep_params, "query": test_query},
            [f(SCORE_ZARR), deposits_path],
            [f(n) for n in TARGETS],
            do_targets,
        ),
    ]
    manifest = _read_manifest(folder)
    record: dict[str, Any] = dict(manifest["stages"])
    ran: list[str] = []
    skipped: list[str] = []
    for st in stages:
        inputs = {_rel(p, folder, base): digest(p) for p in st.inputs}
        key = _key(st.params, inputs)
        old = record.get(st.name, {})
        fresh = (
            not force
            and old.get("key") == key
            and all(
                old.get("outputs", {}).get(_rel(p, folder, base)) == digest(p) for p in st.outputs
            )
        )
        if fresh:
            skipped.append(st.name)
            log.info("%-9s up to date, skipped", st.name)
            continue
        if not (resume and st.name == "score"):
            for p in st.outputs:
                _remove(p)
        t0 = time.perf_counter()
        line = st.work()
        seconds = time.perf_counter() - t0
        log.info("%-9s %s (%.1f s)", st.name, line, seconds)
        record[st.name] = {
            "key": key,
            "parameters": st.params,
            "inputs": inputs,
            "outputs": {_rel(p, folder, base): digest(p) for p in st.outputs},
            "seconds": round(seconds, 2),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        ran.append(st.name)
        manifest = {
            "xprospect": __version__,
            "stages": record,
            "last_run": {"ran": ran, "skipped": skipped},
        }
        _write_manifest(folder, manifest)
    manifest = {
        "xprospect": __version__,
        "stages": record,
        "last_run": {"ran": ran, "skipped": skipped},
    }
    _write_manifest(folder, manifest)
    return PipelineResult(
        folder=folder,
        ran=ran,
        skipped=skipped,
        outputs={st.name: st.outputs for st in stages},
        manifest=manifest,
        summary=summary,
    )


def _rel(p: Path, folder: Path, base: Path) -> str:
    """Name a path as the manifest does: relative to the output folder, else to the config."""
    for root in (folder, base):
        try:
            return str(p.resolve().relative_to(root.resolve()))
        except ValueError:
            continue
    return str(p.resolve())
