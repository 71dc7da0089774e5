"""The benchmark harness for block models: holes left out by spatial blocks, composites judged.

:func:`benchmark3d` deals whole drillholes to folds by plan-view blocks
(:func:`xprospect.evaluate.splits.hole_folds`, with a 3-D buffer of training composites kept
clear around the test holes). For each fold it builds the block model **from the training
holes only** (IDW of every element to one fixed voxel template, masked beyond a drilling
distance, clr then z-scores), trains every method on that block model and scores the
held-out composites at the voxels holding them. Every method sees the same folds and the
same block model; the labels are the held-out composites inside vs outside the mineralised
intervals (or a synthetic orebody's truth). The table is the one of the 2-D harness
(:func:`xprospect.harness.benchmark`): pooled out-of-fold ROC AUC with its DeLong
interval, PR AUC, capture, Brier score where a method gives probabilities, per-fold AUC and
a paired DeLong test of each method against the best non-deep method.

Methods: ``"grade:<element>"`` (the interpolated grade itself), ``"dae"`` (3-D
convolutional autoencoder, :func:`xprospect.train.anomaly.fit_anomaly`), ``"stoad"``
(:func:`xprospect.train.anomaly.fit_stoad`), ``"cnn3d"`` (a supervised 3-D
:class:`~xprospect.models.SmallCNN` on windows of the block model around the training
composites) and the named baselines of the 2-D harness (``"gmm"``, ``"iforest"``, ``"rf"``,
``"gbm"``, ``"logistic"``, ...), fitted on the block-model voxels.

Policy for detectors trained on "all" ground: an anomaly detector learns what is common as
normal, so when ore is the majority of the sampled ground (of the training composites) a
detector trained on every voxel learns ore as normal and ranks it *below* the host. With
``normal="all"`` the harness then warns (:class:`~xprospect.exceptions.XProspectWarning`);
the default ``normal="outside_buffer"`` trains the detectors on the voxels farther than
``normal_buffer`` from every training ore composite.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect.baselines import AnomalyDetector, SupervisedModel
from xprospect.evaluate.splits import hole_folds
from xprospect.evidence.background import normal_mask
from xprospect.exceptions import DataError, XProspectWarning
from xprospect.grid.template import make_voxels
from xprospect.harness import BASELINES, _table
from xprospect.points import as_points, points_to_index

__all__ = ["Benchmark3D", "benchmark3d"]

log = logging.getLogger(__name__)

_DEEP = ("dae", "stoad", "cnn3d")

#: Training defaults of the 3-D detectors (small: the harness refits them every fold).
DETECTOR_TRAINING: dict[str, Any] = {"epochs": 20, "tiles_per_epoch": 128, "batch_size": 16}
#: Training defaults of the supervised 3-D CNN.
CNN_TRAINING: dict[str, Any] = {
    "window": 5,
    "widths": (16, 16),
    "recipe": "adam",
    "epochs": 30,
    "batch_size": 64,
}


@dataclasses.dataclass
class Benchmark3D:
    """What :func:`benchmark3d` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per method (index ``method``), best pooled AUC first, with the columns of
        :class:`xprospect.harness.Benchmark`'s table (``auc`` and its DeLong interval,
        ``pr_auc``, captures, ``brier``, fold AUCs, ``p_vs_best_baseline``, ...) and
        ``seconds``. ``n_nan_cells`` counts held-out composites a method left unscored
        (off the masked block model; ranked lowest).
    scores : pandas.DataFrame
        One row per composite: ``hole``, ``fold`` (the fold holding it out), ``label`` and
        every method's out-of-fold score.
    folds : pandas.DataFrame
        Per fold: test holes, composites and ore composites; training holes, composites and
        ore composites; composites dropped by the buffer; voxels of the block model.
    training : dict
        ``training[method][fold]``: the composites (indices) the fold's block model, and so
        the method, was built from.
    reports : dict
        ``reports[method][fold]``: the fit report of each detector (tile size, positions).
    settings : dict
        Folds, block size, buffer, voxel size, IDW and mask settings, seed.
    """

    table: pd.DataFrame
    scores: pd.DataFrame
    folds: pd.DataFrame
    training: dict[str, list[np.ndarray]]
    reports: dict[str, list[dict[str, Any]]]
    settings: dict[str, Any]


def _labels(samples: xr.Dataset, labels: Any) -> np.ndarray:
    if isinstance(labels, str):
        if labels not in samples.variables:
            raise DataError(f"labels={labels!r} is not a variable of the composites")
        labels = samples[labels].values
    y = np.asarray(labels)
    if y.shape != (samples.sizes["sample"],):
        msg = f"labels need one value per composite ({samples.sizes['sample']}); got {y.shape}"
        raise DataError(msg)
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise DataError(f"labels must be boolean (or 0/1); got values such as {y[:3]!r}")
        y = y.astype(bool)
    if y.all() or not y.any():
        raise DataError(f"labels hold {int(y.sum())} of {y.size} composites: need both classes")
    return y


def _parse(methods: Sequence[str], elements: list[str]) -> list[tuple[str, str]]:
    out = []
    for m in methods:
        key = str(m).lower()
        if key.startswith("grade:"):
            e = str(m)[6:]
            if e not in elements:
                raise DataError(f"method {m!r}: element {e!r} is not in elements={elements}")
            out.append((f"grade:{e}", "raw"))
        elif key in _DEEP:
            out.append((key, "deep"))
        elif key in BASELINES:
            kind = "anomaly" if isinstance(BASELINES[key](), AnomalyDetector) else "baseline"
            out.append((key, kind))
        else:
            msg = (
                f"unknown method {m!r}; known: 'grade:<element>', {list(_DEEP)}, "
                f"{sorted(BASELINES)}"
            )
            raise DataError(msg)
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise DataError(f"methods named twice: {names}")
    return out


def _block_model(
    train: xr.Dataset,
    voxels: xr.Dataset,
    elements: list[str],
    idw: Mapping[str, Any],
    max_distance: float | None,
) -> tuple[xr.Dataset, xr.DataArray]:
    """IDW block model of the training composites and its clr, z-scored stack."""
    block = train.prospect.idw(like=voxels, elements=elements, **idw)
    if max_distance is not None:
        block = block.prospect.mask_distance(train, max_distance=max_distance)
    block = block.load()
    stack = block.prospect.clr(elements=elements).prospect.transform("zscore").prospect.stack()
    return block, stack.load()


def _at(values: np.ndarray, idx: np.ndarray, inside: np.ndarray) -> np.ndarray:
    out = np.full(len(idx), np.nan)
    out[inside] = values[tuple(idx[inside].T)]
    return out


def _warn_majority(y_train: np.ndarray, method: str) -> None:
    share = float(y_train.mean())
    if share > 0.5:
        msg = (
            f"{method} is trained on all ground while ore is {share:.0%} of the training "
            "composites: a detector learns the majority as normal and will rank ore low; use "
            "normal='outside_buffer'"
        )
        warnings.warn(msg, XProspectWarning, stacklevel=4)


def _fit_detector(
    key: str,
    stack: xr.DataArray,
    normal: xr.DataArray | None,
    *,
    training: Mapping[str, Any],
    widths: Sequence[int] | None,
    seed: int,
    device: str,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Train the 3-D DAE or STOAD on one fold's block model; its score map and fit report."""
    from xprospect.models import ConvAutoencoder  # lazy: torch
    from xprospect.train.anomaly import fit_anomaly, fit_stoad  # lazy: torch

    net = ConvAutoencoder(stack.sizes["element"], ndim=3, widths=widths)
    if key == "dae":
        fit: Any = fit_anomaly(net, stack, normal=normal, seed=seed, device=device, **training)
    else:
        fit = fit_stoad(net, stack, normal=normal, seed=seed, device=device, **training)
    score = stack.prospect.score(fit.model, device=device)
    return np.asarray(score.values, dtype="float64"), dict(fit.report)


def _fit_cnn(
    stack: xr.DataArray,
    pos: xr.Dataset,
    neg: xr.Dataset,
    *,
    training: Mapping[str, Any],
    seed: int,
    device: str,
) -> np.ndarray:
    """Train a supervised 3-D SmallCNN on windows around the training composites; its map."""
    from xprospect.models import SmallCNN  # lazy: torch
    from xprospect.patches import make_patches  # lazy: builds torch-facing patch sets
    from xprospect.train import fit  # lazy: torch

    opts = dict(training)
    window = int(opts.pop("window", 5))
    widths = tuple(opts.pop("widths", (16, 16)))
    patches = make_patches(
        stack, positives=pos, negatives=neg, size=window, jitter=0, nan="fill", seed=seed
    )
    net = SmallCNN(stack.sizes["element"], ndim=3, window=window, widths=widths, seed=seed)
    res = fit(net, patches, seed=seed, device=device, progress=False, validation=None, **opts)
    score = stack.prospect.score(res.model, device=device)
    return np.asarray(score.values, dtype="float64")


def benchmark3d(
    samples: xr.Dataset,
    labels: Any,
    *,
    elements: Sequence[str],
    methods: Sequence[str] = ("grade:Au", "dae", "stoad", "gmm", "rf"),
    n_folds: int = 4,
    block_size: float = 250.0,
    buffer: float = 0.0,
    resolution: float | Sequence[float] = 40.0,
    idw: Mapping[str, Any] | None = None,
    max_distance: float | None = None,
    normal: str = "outside_buffer",
    normal_buffer: float | None = None,
    detector_training: Mapping[str, Any] | None = None,
    cnn_training: Mapping[str, Any] | None = None,
    widths: Sequence[int] | None = None,
    hole: str = "hole_id",
    level: float = 0.95,
    seed: int = 0,
    device: str = "cpu",
) -> Benchmark3D:
    """Score methods on held-out drillholes, each fold's block model built from its training holes.

    Parameters
    ----------
    samples : xarray.Dataset
        Composites along ``sample`` with ``x``, ``y``, ``z``, the ``hole`` coordinate and
        one variable per element (positive concentrations).
    labels : str or array of bool
        Per composite: inside a mineralised interval (or the orebody), e.g.
        ``samples["lith"] == "ore"``; or the name of such a variable.
    elements : list of str
        Elements of the block model.
    methods : list of str
        ``"grade:<element>"``, ``"dae"``, ``"stoad"``, ``"cnn3d"`` and baseline names of
        :data:`xprospect.harness.BASELINES`.
    n_folds : int
        Folds of holes.
    block_size : float
        Plan-view block edge (CRS units) by which holes are dealt to folds.
    buffer : float
        3-D distance kept free of training composites around every test composite.
    resolution : float or (dz, dy, dx)
        Voxel size of the block model (one template for every fold, over all composites).
    idw : dict, optional
        Keywords of the IDW gridder (``k``, ``power``, ``anisotropy``, ...); default ``k=16``.
    max_distance : float, optional
        Mask voxels farther than this from every training composite (default none).
    normal : {"outside_buffer", "all"}
        Ground the detectors (DAE, STOAD student, GMM, isolation forest) treat as normal:
        voxels farther than ``normal_buffer`` from every training ore composite, or all
        (warned about when ore is the majority of the training composites).
    normal_buffer : float, optional
        Default twice the largest voxel edge.
    detector_training : dict, optional
        Keywords of ``fit_anomaly`` / ``fit_stoad`` (default :data:`DETECTOR_TRAINING`).
    cnn_training : dict, optional
        ``window`` and keywords of :func:`xprospect.train.fit` for ``"cnn3d"`` (default
        :data:`CNN_TRAINING`).
    widths : sequence of int, optional
        Encoder widths of the 3-D autoencoders (default the model's).
    hole : str
        Name of the hole coordinate.
    level : float
        Confidence level of the AUC intervals.
    seed : int
        Seeds the folds and every fit.
    device : str
        Torch device of the deep methods.

    Returns
    -------
    Benchmark3D
        The table, per-composite out-of-fold scores, per-fold counts, training sets, fit
        reports and settings.
    """
    elements = [str(e) for e in elements]
    y = _labels(samples, labels)
    parsed = _parse(methods, elements)
    if normal not in ("outside_buffer", "all"):
        raise DataError(f"normal must be 'outside_buffer' or 'all'; got {normal!r}")
    missing = [e for e in elements if e not in samples.data_vars]
    if missing:
        raise DataError(f"elements {missing} are not variables of the composites")
    holes = np.asarray(samples[hole].values)
    folds = hole_folds(
        samples, holes, n_folds=n_folds, block_size=block_size, buffer=buffer, seed=seed
    )
    voxels = make_voxels(like=samples, resolution=resolution)
    edge = max(abs(float(np.diff(voxels[d].values[:2])[0])) for d in ("z", "y", "x"))
    nbuf = 2.0 * edge if normal_buffer is None else float(normal_buffer)
    idw_kw = {"k": 16, **dict(idw or {})}
    det_kw = {**DETECTOR_TRAINING, **dict(detector_training or {})}
    cnn_kw = {**CNN_TRAINING, **dict(cnn_training or {})}
    idx, inside = points_to_index(as_points(samples, like=voxels), voxels)
    n = len(y)
    fold_of = np.full(n, -1, dtype=np.int64)
    scores = {name: np.full(n, np.nan) for name, _ in parsed}
    seconds = dict.fromkeys(scores, 0.0)
    training: dict[str, list[np.ndarray]] = {name: [] for name in scores}
    reports: dict[str, list[dict[str, Any]]] = {name: [] for name in scores}
    rows = []
    for f, (tr, te) in enumerate(folds):
        fold_of[te] = f
        train = samples.isel(sample=tr)
        block, stack = _block_model(train, voxels, elements, idw_kw, max_distance)
        finite = np.isfinite(stack.values).all(axis=0)
        ytr = y[tr]
        ore_pts = as_points(train.isel(sample=np.flatnonzero(ytr)), like=voxels)
        if normal == "all" or not ytr.any():
            norm = None
        else:
            norm = normal_mask(stack, mode="outside_buffer", deposits=ore_pts, buffer=nbuf)
        # training composites on voxels of the block model: supervised labels
        ti, tin = idx[tr], inside[tr]
        ok = tin.copy()
        ok[tin] = finite[tuple(ti[tin].T)]
        pos_map = np.zeros(finite.shape, dtype=bool)
        pos_map[tuple(ti[ok & ytr].T)] = True
        neg_rows = ok & ~ytr
        neg_rows[ok] &= ~pos_map[tuple(ti[ok].T)]
        neg_pts = as_points(train.isel(sample=np.flatnonzero(neg_rows)), like=voxels)
        table_te = np.stack(
            [_at(stack.values[j], idx[te], inside[te]) for j in range(len(elements))], axis=1
        )
        for name, kind in parsed:
            t0 = time.perf_counter()
            training[name].append(tr)
            if kind == "raw":
                vals = _at(np.asarray(block[name[6:]].values, dtype="float64"), idx[te], inside[te])
            elif name in ("dae", "stoad"):
                if norm is None:
                    _warn_majority(ytr, name)
                smap, rep = _fit_detector(
                    name, stack, norm, training=det_kw, widths=widths, seed=seed + f, device=device
                )
                reports[name].append(rep)
                vals = _at(smap, idx[te], inside[te])
            elif name == "cnn3d":
                pos_pts = as_points(train.isel(sample=np.flatnonzero(ok & ytr)), like=voxels)
                smap = _fit_cnn(
                    stack, pos_pts, neg_pts, training=cnn_kw, seed=seed + f, device=device
                )
                vals = _at(smap, idx[te], inside[te])
            else:
                est = BASELINES[name]()
                if isinstance(est, AnomalyDetector):
                    if norm is None:
                        _warn_majority(ytr, name)
                    est.fit(stack, normal=norm, seed=seed + f)
                else:
                    assert isinstance(est, SupervisedModel)
                    labels_map = stack.isel(element=0, drop=True).copy(data=pos_map)
                    est.fit(stack, labels_map, negatives=neg_pts, seed=seed + f)
                vals = np.full(len(te), np.nan)
                good = np.isfinite(table_te).all(axis=1)
                if good.any():
                    vals[good] = est.score_cells(table_te[good])
            scores[name][te] = vals
            seconds[name] += time.perf_counter() - t0
        rows.append(
            {
                "fold": f,
                "test_holes": len(np.unique(holes[te])),
                "test_composites": len(te),
                "test_ore": int(y[te].sum()),
                "train_holes": len(np.unique(holes[tr])),
                "train_composites": len(tr),
                "train_ore": int(ytr.sum()),
                "buffer_dropped": int(n - len(te) - len(tr)),
                "block_voxels": int(finite.sum()),
            }
        )
        log.info("benchmark3d fold %d: %s", f, rows[-1])
    kinds = dict(parsed)
    prob = {name: kinds[name] == "baseline" or name == "cnn3d" for name in scores}
    table = _table(scores, kinds, prob, y, fold_of, len(folds), level)
    table["seconds"] = pd.Series(seconds)
    table = table.sort_values("auc", ascending=False)
    per = pd.DataFrame({"hole": holes, "fold": fold_of, "label": y, **scores})
    settings = {
        "n_folds": len(folds),
        "block_size": float(block_size),
        "buffer": float(buffer),
        "resolution": resolution,
        "idw": idw_kw,
        "max_distance": max_distance,
        "normal": normal,
        "normal_buffer": nbuf,
        "detector_training": det_kw,
        "cnn_training": cnn_kw,
        "seed": int(seed),
    }
    return Benchmark3D(
        table, per, pd.DataFrame(rows).set_index("fold"), training, reports, settings
    )
