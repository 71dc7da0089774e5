"""``xprospect demo``: the main job on the package's synthetic world, end to end.

It prints short lines as it goes (counts, a few significant digits), draws progress bars on
a terminal for training and scoring, and ends with the files written. The map's
"prospective" area is its top 10 % (and 2 % for the inner targets) by default: see
:mod:`xprospect.pipeline.steps` for why a share of the area, not a 0.5 threshold.
"""

from __future__ import annotations

import argparse
import errno
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import xprospect as xp
from xprospect._dims import get_crs
from xprospect._figures import map_axis_labels
from xprospect._json import dumps
from xprospect.cli._common import Command, positive_float, positive_int, progress_of
from xprospect.exceptions import DataError
from xprospect.grid import grid_idw
from xprospect.io._atomic import atomic_path
from xprospect.pipeline import steps

__all__ = ["COMMAND", "run_demo"]

log = logging.getLogger("xprospect.cli")

_SHOWN = ("Au", "As", "Cu", "Sb", "Ni", "Fe")
#: Files the demo writes, in the order they are listed at the end.
OUTPUTS = (
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
)


def _holdout_scores(samples, grid, *, k, power, seed, fraction=0.1) -> dict[str, dict[str, float]]:
    """IDW hold-out validation: grid 90 % of the samples, predict the other 10 %."""
    rng = np.random.default_rng(seed)
    n = samples.sizes["sample"]
    test = np.zeros(n, dtype=bool)
    test[rng.choice(n, size=max(int(fraction * n), 1), replace=False)] = True
    train = samples.isel(sample=np.flatnonzero(~test))
    held = samples.isel(sample=np.flatnonzero(test))
    maps = grid_idw(train, like=grid, k=k, power=power, dtype="float64")
    out = {}
    for e in maps.data_vars:
        pred = maps[e].sel(x=held.x, y=held.y, method="nearest").values
        obs = held[e].values
        ok = np.isfinite(pred) & np.isfinite(obs) & (obs > 0) & (pred > 0)
        lp, lo = np.log10(pred[ok]), np.log10(obs[ok])
        out[str(e)] = {
            "rmse_log10": float(np.sqrt(np.mean((lp - lo) ** 2))),
            "r_log10": float(np.corrcoef(lp, lo)[0, 1]),
            "n_holdout": int(ok.sum()),
        }
    return out


def _truth_scores(world, maps) -> dict[str, float]:
    """Correlation of each log10 map with the world's noise-free truth at cell centres."""
    truth = world.truth(maps, elements=list(maps.data_vars))
    out = {}
    for e in maps.data_vars:
        a = np.log10(np.asarray(maps[e].values, dtype="float64")).ravel()
        b = np.log10(truth[e].values).ravel()
        ok = np.isfinite(a) & np.isfinite(b)
        out[str(e)] = float(np.corrcoef(a[ok], b[ok])[0, 1])
    return out


def _write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write one output atomically: ``write(tmp)`` then a rename; a failure leaves nothing."""
    with atomic_path(path) as tmp:
        write(tmp)


def _savefig(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt  # lazy: heavy, only for the figures

    try:
        _write(path, lambda tmp: fig.savefig(tmp, dpi=110))
    finally:
        plt.close(fig)


def _plot_deposits(
    ax: Any, dep: Any, size: float, labels: tuple[str, str], *, hidden_colour: str
) -> None:
    """Mark the known (gold) and hidden deposits as stars, coordinates in km."""
    known = dep["known"].values
    for where, colour, label in ((known, "gold", labels[0]), (~known, hidden_colour, labels[1])):
        ax.scatter(
            dep.x[where] / 1e3,
            dep.y[where] / 1e3,
            marker="*",
            s=size,
            c=colour,
            edgecolors="k",
            label=label,
        )


def _figure(scores, world, samples, path: Path) -> None:
    import matplotlib  # heavy, only for the figures

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [e for e in _SHOWN if e in scores.data_vars][:6]
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.5), constrained_layout=True)
    b = scores.rio.bounds()
    extent = (b[0] / 1e3, b[2] / 1e3, b[1] / 1e3, b[3] / 1e3)
    dep = world.deposits
    for ax, e in zip(axes.ravel(), names, strict=False):
        im = ax.imshow(
            scores[e].values, extent=extent, origin="upper", cmap="RdYlBu_r", vmin=-2.5, vmax=2.5
        )
        ax.scatter(
            samples.x / 1e3,
            samples.y / 1e3,
            s=1,
            c="k",
            alpha=0.25,
            linewidths=0,
            label="samples",
        )
        _plot_deposits(ax, dep, 140, ("known deposit", "hidden deposit"), hidden_colour="white")
        ax.set_title(f"{e}: clr, z-score")
        xlabel, ylabel, _ = map_axis_labels(get_crs(scores))  # data already in km here
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    axes.ravel()[0].legend(loc="lower left", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6, label="z-score of clr")
    fig.suptitle(f"xprospect demo: IDW maps of the synthetic world ({scores.rio.crs})")
    _savefig(fig, path)


def _prospectivity_figure(score, world, path: Path) -> None:
    import matplotlib  # heavy, only for the figures

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 7), constrained_layout=True)
    b = score.rio.bounds()
    extent = (b[0] / 1e3, b[2] / 1e3, b[1] / 1e3, b[3] / 1e3)
    im = ax.imshow(score.values, extent=extent, origin="upper", cmap="magma", vmin=0, vmax=1)
    dep = world.deposits
    labels = ("known deposit (training)", "hidden deposit (evaluation only)")
    _plot_deposits(ax, dep, 150, labels, hidden_colour="cyan")
    ax.legend(loc="lower left", fontsize=8)
    xlabel, ylabel, _ = map_axis_labels(get_crs(score))  # data already in km here
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"CNN prospectivity, synthetic world ({score.rio.crs})")
    fig.colorbar(im, ax=ax, shrink=0.8, label="P(prospective)")
    _savefig(fig, path)


def run_demo(
    out: str | Path,
    *,
    seed: int = 0,
    n_samples: int = 3000,
    n_deposits: int = 40,
    resolution: float = 250.0,
    k: int = 12,
    power: float = 2.0,
    chunks: int = 128,
    window: int = 24,
    epochs: int = 25,
    overwrite: bool = False,
    top_percent: float = steps.DEFAULT_TOP_PERCENT[0],
    progress: bool | None = False,
) -> dict:
    """Run the main job on the package's synthetic world and write its outputs.

    Synthetic survey -> CSV -> :func:`xprospect.read_samples` -> template -> IDW (dask, chunk
    by chunk) -> clr -> z-score -> element selection by AUC / Z_AUC against the *known*
    deposits -> training windows slid around them plus random barren windows -> a small
    fully convolutional CNN trained with a spatial validation split -> the prospectivity map
    scored chunk by chunk -> evaluation against the *hidden* deposits (never seen in
    training) -> targets. Everything is written to ``out``: ``maps.zarr``, ``scores.zarr``,
    ``prospectivity.zarr``, ``prospectivity.tif``, ``prospectivity.png``, ``evaluation.png``,
    ``element_selection.csv``, ``history.csv``, ``model.pt`` (with its model card),
    ``targets.csv``, ``targets.geojson`` and ``metrics.json``.

    Parameters
    ----------
    out : path
        Output folder; it must not exist or be empty unless ``overwrite``.
    seed : int
        Seed of the synthetic world, the splits, negatives and training.
    n_samples : int
        Sample sites in the synthetic survey.
    n_deposits : int
        Deposits in the synthetic world (half known, half hidden).
    resolution : float
        Cell size in metres.
    k, power : int, float
        IDW parameters.
    chunks : int
        Dask chunk size of the grid.
    window : int
        CNN window edge in cells (training patches are ``window + 4``, randomly cropped).
    epochs : int
        Training epochs (Adam; the best epoch on the spatial validation split is kept).
    overwrite : bool
        Replace the outputs in a non-empty folder.
    top_percent : float
        Share of the area called prospective (percent): it sets the evaluation's
        threshold; targets are drawn at the top ``top_percent`` % and 2 %.
    progress : bool or None
        Progress bars for writing, training and scoring (None: on a terminal).

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    out = Path(out)
    for name, value in (
        ("n_samples", n_samples),
        ("n_deposits", n_deposits),
        ("k", k),
        ("chunks", chunks),
        ("window", window),
        ("epochs", epochs),
    ):
        if int(value) < 1:
            raise DataError(f"{name} must be a positive integer; got {value}")
    if not resolution > 0 or not np.isfinite(resolution):
        raise DataError(f"resolution must be a positive number of metres; got {resolution}")
    if out.exists() and not out.is_dir():
        raise DataError(
            f"output folder {out} is an existing file, not a folder; choose another --out"
        )
    if out.exists() and any(out.iterdir()) and not overwrite:
        msg = f"output folder {out} is not empty; pass --overwrite to replace its demo outputs"
        raise DataError(msg)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        why = (
            "a folder on its path is a file"
            if err.errno == errno.ENOTDIR
            else (err.strerror or str(err))
        )
        raise DataError(f"cannot create the output folder {out}: {why}") from err
    t0 = time.perf_counter()
    world = xp.synthetic.survey(seed=seed, n_samples=n_samples, n_deposits=n_deposits)
    table = world.samples.to_dataframe().reset_index()
    cols = ["sample_id", "x", "y", *world.elements]
    csv = out / "samples.csv"
    renamed = table[cols].rename(
        columns={e: f"{e}_{world.samples[e].attrs['units']}" for e in world.elements}
    )
    _write(csv, lambda tmp: renamed.to_csv(tmp, index=False))
    samples = xp.read_samples(
        csv, x="x", y="y", crs=world.crs, id_column="sample_id", duplicates="mean"
    )
    grid = xp.make_grid(like=samples, resolution=resolution, pad=2 * resolution, chunks=chunks)
    maps = samples.prospect.idw(like=grid, k=k, power=power)
    scores = maps.prospect.transform("clr").prospect.zscore()
    log.info(
        "%d samples -> %d element maps of %d x %d cells at %g m (%s)",
        samples.sizes["sample"],
        len(maps.data_vars),
        grid.sizes["y"],
        grid.sizes["x"],
        resolution,
        grid.rio.crs,
    )
    xp.to_zarr(maps, out / "maps.zarr", mode="w", progress=progress)
    xp.to_zarr(scores, out / "scores.zarr", mode="w", progress=progress)
    maps = xp.open_zarr(out / "maps.zarr").compute()
    scores = xp.open_zarr(out / "scores.zarr")  # lazy: the CNN scores it chunk by chunk
    xp.to_geotiff(scores.compute(), out / "scores.tif", multiband=True, overwrite=True)
    _figure(scores.compute(), world, samples, out / "maps.png")
    t_grid = time.perf_counter() - t0

    # Supervised CNN: known deposits train, hidden deposits judge.
    deps = xp.points.as_points(world.deposits)
    known = deps.isel(point=np.flatnonzero(deps["known"].values))
    hidden = deps.isel(point=np.flatnonzero(~deps["known"].values))
    selection = xp.evidence.select_elements(scores, known, alpha=0.01, seed=seed)
    _write(out / "element_selection.csv", selection.to_csv)
    chosen = [str(e) for e in selection.index[selection["selected"]]]
    if len(chosen) < 2:  # too few significant elements: keep the best two by Z_AUC
        chosen = [str(e) for e in selection.index[:2]]
    log.info(
        "%d of %d elements chosen against the %d known deposits: %s",
        len(chosen),
        len(selection),
        known.sizes["point"],
        ", ".join(chosen),
    )
    stack = scores.prospect.stack(chosen)
    patches = stack.prospect.patches(
        positives=known,
        negatives=15 * known.sizes["point"],
        size=window + 4,
        jitter=window // 3,
        n_per_positive=8,
        seed=seed,
    )
    model = xp.models.SmallCNN(len(chosen), window=window, widths=(16, 16, 32, 32), seed=seed)
    fit = xp.train.fit(
        model,
        patches,
        recipe="adam",
        epochs=epochs,
        validation=0.25,
        early_stopping=max(3, epochs // 3),
        crop=window,
        device="auto",
        seed=seed,
        progress=progress,
    )
    log.info(
        "small CNN trained on %d windows: best epoch %d of %d, spatial-validation AUC %s",
        len(patches),
        fit.best_epoch,
        len(fit.history),
        steps.significant(fit.history["val_auc"].max()),
    )
    _write(out / "history.csv", lambda tmp: fit.history.to_csv(tmp, index=False))
    xp.train.save_checkpoint(fit, out / "model.pt")
    prospectivity = stack.prospect.score(fit.model, batch_size=64, device="auto")
    xp.to_zarr(prospectivity.to_dataset(), out / "prospectivity.zarr", mode="w", progress=progress)
    prospectivity = xp.open_zarr(out / "prospectivity.zarr")["prospectivity"].compute()
    xp.to_geotiff(prospectivity, out / "prospectivity.tif", overwrite=True)
    _prospectivity_figure(prospectivity, world, out / "prospectivity.png")
    report, short = steps.evaluate_map(
        prospectivity, hidden, top_percent=top_percent, blocks=(12, 12), seed=seed
    )
    report.plot(out / "evaluation.png")
    tgt = steps.make_targets(prospectivity, top_percent=(top_percent, 2.0), deposits=deps)
    steps.write_targets(tgt, [out / "targets.csv", out / "targets.geojson"])
    inside = short["deposits_in_top"]
    log.info(
        "AUC on the %d hidden deposits %s; %s of them in the top %g %% of the area",
        hidden.sizes["point"],
        steps.significant(short["roc_auc"]),
        "n/a" if inside is None else f"{100 * inside:.0f} %",
        top_percent,
    )

    rep = report.to_dict()
    m = rep["metrics"]
    metrics = {
        "seed": seed,
        "n_samples": int(samples.sizes["sample"]),
        "grid": {
            "crs": str(grid.rio.crs),
            "shape": [int(grid.sizes["y"]), int(grid.sizes["x"])],
            "resolution": resolution,
            "chunks": chunks,
        },
        "idw": {"k": k, "power": power},
        "idw_holdout_10pct": _holdout_scores(
            samples, grid.drop_vars("mask"), k=k, power=power, seed=seed
        ),
        "idw_log10_corr_with_truth": _truth_scores(world, maps),
        "deposits": {
            "n": int(deps.sizes["point"]),
            "known (training)": int(known.sizes["point"]),
            "hidden (evaluation)": int(hidden.sizes["point"]),
        },
        "element_selection": {
            "alpha": 0.01,
            "selected": chosen,
            "z_auc": {str(e): float(v) for e, v in selection["z_auc"].items()},
        },
        "training": {
            "model": fit.model.config,
            "windows": len(patches),
            "positives": int(patches.labels.sum()),
            "best_epoch": int(fit.best_epoch),
            "epochs_run": len(fit.history),
            "best_val_auc (spatial split)": float(fit.history["val_auc"].max()),
        },
        "evaluation on hidden deposits": {
            "roc_auc": m.get("roc_auc"),
            "auc_ci": m.get("auc_ci"),
            "accuracy": m.get("accuracy"),
            "precision": m.get("precision"),
            "recall": m.get("recall"),
            "f1": m.get("f1"),
            "confusion_matrix": m.get("confusion_matrix"),
            "success_rate_auc": m.get("success_rate_auc"),
            "capture": rep["capture"],
            "top_percent": top_percent,
            "threshold (top percent)": short["threshold"],
            "deposits_in_top": inside,
            "blocks_12x12": m.get("blocks"),
        },
        "targets": tgt.table.groupby("level").size().to_dict(),
        "seconds": {"gridding": round(t_grid, 2), "total": round(time.perf_counter() - t0, 2)},
    }
    text = dumps(metrics, indent=2)
    _write(out / "metrics.json", lambda tmp: tmp.write_text(text))
    return metrics


def _options(p: argparse.ArgumentParser) -> None:
    """Add the ``demo`` options."""
    p.add_argument("--out", required=True, help="output folder (new or empty)")
    p.add_argument("--seed", type=int, default=0, help="seed of the world and training (0)")
    p.add_argument(
        "--n-samples", type=positive_int, default=3000, help="survey samples (default 3000)"
    )
    p.add_argument(
        "--n-deposits", type=positive_int, default=40, help="deposits, half hidden (default 40)"
    )
    p.add_argument(
        "--resolution", type=positive_float, default=250.0, help="cell size in metres (250)"
    )
    p.add_argument("--epochs", type=positive_int, default=25, help="training epochs (25)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the demo outputs in a non-empty folder"
    )


def _run(args: argparse.Namespace) -> list[Path]:
    """Run ``demo``; return the files written."""
    out = Path(args.out)
    metrics = run_demo(
        out,
        seed=args.seed,
        n_samples=args.n_samples,
        n_deposits=args.n_deposits,
        resolution=args.resolution,
        epochs=args.epochs,
        overwrite=args.overwrite,
        progress=progress_of(args),
    )
    log.info("done in %.0f s", metrics["seconds"]["total"])
    return [out / name for name in OUTPUTS]


COMMAND = Command(
    "demo",
    help="run the main job on the synthetic world (about a minute on 2 cores)",
    description=(
        "Synthetic survey -> IDW -> clr + z-score -> element selection -> small CNN -> "
        "prospectivity map -> evaluation on hidden deposits -> targets, all into --out."
    ),
    options=_options,
    run=_run,
)
