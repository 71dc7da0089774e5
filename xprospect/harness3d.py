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

Geometry controls (``"coverage"``, ``"elevation"``, ``"cnn3d_mask"``): where holes are
drilled and how deep they reach says much of where a geologist drew the ore. On the
Babbitt drillholes (``examples/babbitt_benchmark3d.py``, labels inside the ``Mpz.stl``
domain) the share of data-holding voxels in a 5-voxel window around a held-out composite
ranks it at 0.705 and its elevation at 0.643, against the interpolated Cu grade's 0.647;
the 3-D CNN reaches 0.752, above coverage (paired p < 0.001), and the same CNN trained on
the data mask alone (``"cnn3d_mask"``) 0.476: its training windows, drawn at training
composites, are full of data whatever the label, so the CNN cannot learn the drilling
pattern from them, and its lead comes from the chemistry around the composite. Put them
in the methods so that the table's best non-deep method includes them.

Training features of the supervised methods (``"cnn3d"``, ``"rf"``, ``"gbm"``,
``"logistic"``, ...): by default (``training_features="block_model"``) a training composite
is described by the fold's block model at its voxel, where IDW returns mostly its own
assays. ``training_features="leave_holes_out"`` describes it by the block model interpolated
**without its own hole** (the fold's training holes dealt to inner groups by plan-view
blocks, each group read from a block model of the other groups, evaluated only at the
voxels it needs), as a held-out composite is described by the fold's block model, which
holds none of its assays either. It removes that train/test mismatch but measured lower on
the synthetic orebody world (rf 0.783 -> 0.753, gbm 0.884 -> 0.740, a 5-seed cnn3d ensemble
0.912 -> 0.872; ``examples/orebody_benchmark3d.py``): with a handful of ore composites per
fold, their smoothed leave-holes-out features are noisier positives than their own assays.
So it is an option, not the default.

Seed ensembles of the detectors: by default (:data:`DETECTOR_TRAINING`, ``"seeds": 5``)
each fold's DAE and STOAD are the mean of 5 detectors trained from 5 seeds, so that a
fold's map does not hang on one seed. On the synthetic orebody world
(``examples/orebody_benchmark3d.py``, world seeds 0-3) the 5-seed STOAD's pooled AUC was
0.979 / 0.978 / 0.784 / 0.981 against 0.959 / 0.978 / 0.739 / 0.974 for one seed (the
interpolated Au grade 0.953 / 0.964 / 0.860 / 0.982), for 5 times the training time;
``detector_training={"seeds": 1}`` trains one.

Why the tree baselines fall below the grade they are given (measured on that world):
the fold's block model at a training composite's voxel is mostly its own assays, so ore
and host training rows are separated by the Au feature alone with a wide gap, while
held-out composites, interpolated from other holes, fall inside that gap. A random forest
then learns one threshold and gives 93 % of the held-out composites the same score (the
table's ``tie_area_max``); balanced class weights or not (0.783 / 0.786), log instead of
clr features (0.783 -> 0.791 on world seed 0, 0.928 -> 0.955 on seed 1; gradient boosting
0.884 -> 0.664 and 0.918 -> 0.955) do not fix it consistently. A linear, monotone model
(``"logistic"``) ranks the interpolated values as the grade does (0.954 / 0.967 against
grade:Au 0.953 / 0.964). clr itself costs the Au feature alone 0.04 (0.916 against the
grade's 0.953, seed 0): it removes the common enrichment of the near-ore elements.

Policy for detectors trained on "all" ground: an anomaly detector learns what is common as
normal, so when ore is the majority of the sampled ground (of the training composites) a
detector trained on every voxel learns ore as normal and ranks it *below* the host. With
``normal="all"`` the harness then warns (:class:`~xprospect.exceptions.XProspectWarning`);
the default ``normal="outside_buffer"`` trains the detectors on the voxels farther than
``normal_buffer`` from every training ore composite.

Shifted-label controls (``controls=n``): each draw re-runs every method on labels moved to
other holes and depths as whole runs (:func:`shifted_labels`), not shuffled composite by
composite. Ore comes in runs along a hole, so a composite-by-composite shuffle gives a null
far too narrow: on the synthetic orebody world (seed 0, 35 ore composites of 4272, the
interpolated Au grade's out-of-fold scores, 2000 draws) the shifted null's AUC was 0.492
+- 0.144 against 0.499 +- 0.048 for a composite shuffle, whose largest draw (0.687) a real
AUC of 0.7 would beat, while 10 % of the shifted draws reach 0.68. Its permutation p for the
grade's real 0.953 was 1 / 2001; for the As grade's 0.900, 4 / 2001.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect._dims import get_crs, grid_geometry, write_crs
from xprospect._figures import finish_figure
from xprospect.baselines import AnomalyDetector, SupervisedModel
from xprospect.evaluate.metrics import roc_auc
from xprospect.evaluate.splits import hole_folds
from xprospect.evidence.background import normal_mask
from xprospect.evidence.proximity import distance_to_samples_at
from xprospect.exceptions import DataError, TrainingGroundError, XProspectWarning
from xprospect.grid.idw import IDW
from xprospect.grid.template import make_voxels
from xprospect.harness import BASELINES, _table, auc_figure, summarise_controls
from xprospect.patches.patchset import PatchSet, make_patches
from xprospect.patches.plan import plan_around_points
from xprospect.points import as_points, points_to_index
from xprospect.preprocess import clr, zscore

__all__ = ["GEOMETRY", "Benchmark3D", "benchmark3d", "coverage", "data_mask", "shifted_labels"]

log = logging.getLogger(__name__)

_DEEP = ("dae", "stoad", "cnn3d")
#: Geometry controls: scores from where the data are, not what they hold (kind "raw").
GEOMETRY = ("coverage", "elevation", "cnn3d_mask")
#: Where the supervised methods read their training composites' features.
TRAINING_FEATURES = ("leave_holes_out", "block_model")
#: Keywords of ``grid_idw`` that shape the output grid, not the interpolation.
_GRID_ONLY = ("dtype", "chunks", "progress")

#: Training defaults of the 3-D detectors (small: the harness refits them every fold).
#: ``seeds``: each fold's DAE / STOAD is a seed ensemble of 5 (module docstring).
DETECTOR_TRAINING: dict[str, Any] = {
    "epochs": 20,
    "tiles_per_epoch": 128,
    "batch_size": 16,
    "seeds": 5,
}
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
        ore composites; composites dropped by the buffer; voxels of the block model; inner
        groups of holes and table rows of the supervised methods' leave-holes-out training
        features (0 with ``training_features="block_model"``).
    training : dict
        ``training[method][fold]``: the composites (indices) the fold's block model, and so
        the method, was built from.
    reports : dict
        ``reports[method][fold]``: the fit report of each detector (tile size, positions);
        ``{"fold": f, "skipped": reason}`` for a fold whose ground holds too few training
        tiles (:class:`~xprospect.exceptions.TrainingGroundError`, warned about; its
        held-out composites stay unscored).
    settings : dict
        Folds, block size, buffer, voxel size, IDW and mask settings, seed.
    controls : pandas.DataFrame or None
        With ``controls``: the table of the shifted-label control runs (the mean of the
        draws, ``auc_sd``, ``draws``); the table then also holds each method's
        ``control_auc`` and permutation ``control_p`` (as in the 2-D harness).
    """

    table: pd.DataFrame
    scores: pd.DataFrame
    folds: pd.DataFrame
    training: dict[str, list[np.ndarray]]
    reports: dict[str, list[dict[str, Any]]]
    settings: dict[str, Any]
    controls: pd.DataFrame | None = None

    def plot(self, path: str | Path | None = None) -> Any:
        """Draw the AUCs with their intervals and every method's pooled out-of-fold ROC curve.

        Parameters
        ----------
        path : str or Path, optional
            Save the figure there (PNG, PDF, ... by suffix).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from sklearn.metrics import roc_curve  # lazy: sklearn is heavy

        fig, ax2 = auc_figure(
            self.table, control="its shifted-label control (mean AUC)", headless=path is not None
        )
        tested = self.scores["fold"].to_numpy() >= 0
        y = self.scores["label"].to_numpy()[tested].astype(bool)
        for name, row in self.table.iterrows():
            s = self.scores[name].to_numpy(dtype="float64")[tested]
            bad = ~np.isfinite(s)  # unscored composites rank lowest, as in the table
            if bad.all():
                continue
            s = np.where(bad, np.nanmin(s[~bad]) - 1.0, s)
            fpr, tpr, _ = roc_curve(y, s)
            ax2.plot(fpr, tpr, lw=1.2, label=f"{name} ({row['auc']:.3f})")
        ax2.plot([0, 1], [0, 1], color="k", lw=0.8, ls=":", label="random ranking")
        ax2.set_xlabel("false positive rate (barren composites above, 0-1)")
        ax2.set_ylabel("true positive rate (ore composites above, 0-1)")
        ax2.set_title("Pooled out-of-fold ROC of the held-out composites")
        ax2.set_aspect("equal")
        ax2.legend(loc="lower right", fontsize=8)
        return finish_figure(fig, path)


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
        elif key in GEOMETRY:
            out.append((key, "raw"))
        elif key in BASELINES:
            kind = "anomaly" if isinstance(BASELINES[key](), AnomalyDetector) else "baseline"
            out.append((key, kind))
        else:
            msg = (
                f"unknown method {m!r}; known: 'grade:<element>', {list(GEOMETRY)}, "
                f"{list(_DEEP)}, {sorted(BASELINES)}"
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
) -> tuple[xr.Dataset, xr.DataArray, tuple[dict[str, float], dict[str, float]]]:
    """IDW block model of the training composites, its clr, z-scored stack and the z-scores."""
    block = train.prospect.idw(like=voxels, elements=elements, **idw)
    if max_distance is not None:
        block = block.prospect.mask_distance(train, max_distance=max_distance)
    block = block.load()
    scaled = block.prospect.clr(elements=elements).prospect.transform("zscore")
    stats = (
        {e: float(scaled[e].attrs["zscore_mean"]) for e in elements},
        {e: float(scaled[e].attrs["zscore_std"]) for e in elements},
    )
    return block, scaled.prospect.stack().load(), stats


def _voxel_values(
    train: xr.Dataset,
    voxels: xr.Dataset,
    cells: np.ndarray,
    elements: list[str],
    idw: Mapping[str, Any],
    max_distance: float | None,
    stats: tuple[dict[str, float], dict[str, float]],
) -> np.ndarray:
    """Return what :func:`_block_model` gives at voxels ``cells`` (m, 3) from ``train`` alone.

    The same IDW evaluated only at those voxel centres (the gridder's ``predict``), the
    same distance mask, dtype and clr, and z-scored with the fold's statistics ``stats``
    so the values sit on the scale of the fold's block model. Returns (m, n_elements).
    """
    kw = {k: v for k, v in idw.items() if k not in _GRID_ONLY}
    dtype = idw.get("dtype", "float32")
    centre = {
        d: np.asarray(voxels[d].values, dtype="float64")[cells[:, a]]
        for a, d in enumerate(("z", "y", "x"))
    }
    pts = xr.Dataset(coords={d: ("sample", v) for d, v in centre.items()})
    crs = get_crs(train)
    if crs is not None:
        pts = write_crs(pts, crs)
    got = IDW(elements=elements, **kw).fit(train).predict(pts)
    vals = xr.Dataset(
        {e: ("sample", np.asarray(got[e].values).astype(dtype).astype("float64")) for e in elements}
    )
    if max_distance is not None:  # the test mask_distance applies to the fold's block model
        far = distance_to_samples_at(np.column_stack([centre[d] for d in "xyz"]), train)
        vals = vals.where(xr.DataArray(far <= float(max_distance), dims="sample"))
    z = zscore(clr(vals, elements=elements), elements=elements, mean=stats[0], std=stats[1])
    return np.column_stack([np.asarray(z[e].values, dtype="float64") for e in elements])


def _inner_groups(
    train: xr.Dataset,
    holes: np.ndarray,
    *,
    n_inner: int,
    block_size: float,
    buffer: float,
    seed: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Deal a fold's training holes to inner groups by plan-view blocks (holes never split).

    Each ``(others, group)``: the composites (indices into ``train``) that interpolate the
    group's features (other groups, minus those within ``buffer`` of the group, as the
    outer fold drops them around its test holes) and the group's composites.
    """
    inner = hole_folds(
        train, holes, n_folds=n_inner, block_size=block_size, buffer=buffer, seed=seed
    )
    return [(o, g) for o, g in inner if len(g)]


def _inner_windows(
    block_stack: xr.DataArray,
    values: np.ndarray,
    cells: np.ndarray,
    pos: np.ndarray,
    neg: np.ndarray,
    window: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Windows around ``pos`` / ``neg`` voxels (k, 3) read from the values of one inner group.

    ``values`` (m, n_elements) at voxels ``cells`` (m, 3); other voxels are NaN, filled
    with 0 when read, as ``make_patches(nan="fill")`` reads the fold's block model. The
    windows are placed as :func:`make_patches` places them (no jitter, shifted inside).
    """
    grid = np.full(block_stack.shape, np.nan, dtype="float32")
    grid[(slice(None), *cells.T)] = values.T
    stack = block_stack.copy(data=grid)
    geom = grid_geometry(stack)
    sz = (window,) * 3
    plans = [
        plan_around_points(
            geom,
            p,
            size=sz,
            jitter=0,
            n_per_point=1,
            label=lab,
            groups=np.full(len(p), -1),
            edge="shift",
            seed=seed,
        )
        for p, lab in ((pos, 1), (neg, 0))
        if len(p)
    ]
    wins = [PatchSet(pl, stack, fill_value=0.0).load() for pl in plans]
    labs = [pl.labels for pl in plans]
    return np.concatenate(wins), np.concatenate(labs)


def _halo(cells: np.ndarray, reach: int, shape: tuple[int, ...]) -> np.ndarray:
    """Return the voxels (m, 3) within ``reach`` voxels (per axis) of ``cells``, on the grid."""
    r = np.arange(-reach, reach + 1)
    off = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    near = (cells[:, None, :] + off[None, :, :]).reshape(-1, 3)
    near = near[((near >= 0) & (near < np.asarray(shape))).all(axis=1)]
    return np.unique(near, axis=0)


@dataclasses.dataclass
class _InnerTraining:
    """Training features of one fold read without each composite's own hole."""

    x: np.ndarray  # (rows, n_elements): one row per (inner group, voxel)
    y: np.ndarray  # (rows,) any ore composite of the group in the voxel
    group: np.ndarray  # (rows,) the inner group of each row
    cell: np.ndarray  # (rows, 3) the voxel of each row
    windows: np.ndarray | None  # (n, C, w, w, w) for the CNN, or None
    window_labels: np.ndarray | None
    window_group: np.ndarray | None
    groups: int


def _inner_training(
    train: xr.Dataset,
    holes: np.ndarray,
    cells: np.ndarray,
    ok: np.ndarray,
    ore: np.ndarray,
    neg_rows: np.ndarray,
    *,
    voxels: xr.Dataset,
    stack: xr.DataArray,
    elements: list[str],
    idw: Mapping[str, Any],
    max_distance: float | None,
    stats: tuple[dict[str, float], dict[str, float]],
    n_inner: int,
    block_size: float,
    buffer: float,
    window: int | None,
    seed: int,
) -> _InnerTraining:
    """Leave-holes-out features of a fold's training composites (see :func:`benchmark3d`).

    The training holes are dealt to ``n_inner`` groups by plan-view blocks; each group's
    composites read the block model interpolated from the other groups only (the fold's
    IDW, mask and z-scores), at their voxels (tables) and, when ``window`` is given, over
    the windows around them (the CNN). So no training composite's features hold its own
    hole's assays, as no test composite's features do.
    """
    shape = tuple(int(stack.sizes[d]) for d in ("z", "y", "x"))
    xs, ys, gs, cs, wins, wlabs, wgs = [], [], [], [], [], [], []
    groups = _inner_groups(
        train, holes, n_inner=n_inner, block_size=block_size, buffer=buffer, seed=seed
    )
    for g, (others, grp) in enumerate(groups):
        members = grp[ok[grp]]
        if not len(members):
            continue
        vox, inv = np.unique(cells[members], axis=0, return_inverse=True)
        query = vox if window is None else _halo(vox, window - 1, shape)
        vals = _voxel_values(
            train.isel(sample=others), voxels, query, elements, idw, max_distance, stats
        )
        flat_q = np.ravel_multi_index(tuple(query.T), shape)
        order = np.argsort(flat_q)
        loc = order[np.searchsorted(flat_q[order], np.ravel_multi_index(tuple(vox.T), shape))]
        lab = np.zeros(len(vox), dtype=bool)
        lab[inv.ravel()[ore[members]]] = True
        keep = np.isfinite(vals[loc]).all(axis=1)
        xs.append(vals[loc][keep])
        ys.append(lab[keep])
        gs.append(np.full(int(keep.sum()), g))
        cs.append(vox[keep])
        if window is not None:
            pos = cells[members[ore[members]]]
            neg = cells[grp[neg_rows[grp]]]
            w, wl = _inner_windows(stack, vals, query, pos, neg, window, seed)
            wins.append(w)
            wlabs.append(wl)
            wgs.append(np.full(len(wl), g))
    return _InnerTraining(
        np.concatenate(xs) if xs else np.zeros((0, len(elements))),
        np.concatenate(ys) if ys else np.zeros(0, dtype=bool),
        np.concatenate(gs) if gs else np.zeros(0, dtype=np.int64),
        np.concatenate(cs) if cs else np.zeros((0, 3), dtype=np.int64),
        np.concatenate(wins) if wins else None,
        np.concatenate(wlabs) if wlabs else None,
        np.concatenate(wgs) if wgs else None,
        len(groups),
    )


def _at(values: np.ndarray, idx: np.ndarray, inside: np.ndarray) -> np.ndarray:
    out = np.full(len(idx), np.nan)
    out[inside] = values[tuple(idx[inside].T)]
    return out


def coverage(finite: np.ndarray, window: int) -> np.ndarray:
    """Share of a block model's voxels holding data in the cube of ``window`` voxels around each.

    Parameters
    ----------
    finite : numpy.ndarray of bool
        Voxels of the block model with a value (inside its drilling-distance mask).
    window : int
        Edge of the cube (voxels), the supervised 3-D CNN's window by default.

    Returns
    -------
    numpy.ndarray
        The share in [0, 1]; voxels beyond the grid count as holding none. A geometry
        control of :func:`benchmark3d` (``"coverage"``): where the drilling is dense, not
        what it found. A method that ranks held-out composites no better than this learned
        the drilling pattern (a wireframe drawn around the drilled volume, the edge of the
        mask), not the chemistry.
    """
    from scipy.ndimage import correlate1d  # a box sum, one pass per axis

    # integer counts (exact, so voxels of equal cover tie exactly), then the share
    counts = np.asarray(finite, dtype=np.int64)
    ones = np.ones(int(window), dtype=np.int64)
    for axis in range(counts.ndim):
        counts = correlate1d(counts, ones, axis=axis, mode="constant", cval=0)
    return counts / float(int(window) ** counts.ndim)


def data_mask(stack: xr.DataArray) -> xr.DataArray:
    """Return a one-element stack (``"data"``): 1 where every element is finite, else 0.

    Parameters
    ----------
    stack : xarray.DataArray
        A block-model stack (``element``, ``z``, ``y``, ``x``).

    Returns
    -------
    xarray.DataArray
        Same grid and dtype, one element named ``"data"``: the input of the
        ``"cnn3d_mask"`` geometry control of :func:`benchmark3d`, the 3-D CNN trained on
        where the block model holds data, without a value of it.
    """
    finite = np.isfinite(stack.values).all(axis=0)
    one = stack.isel(element=[0]).copy(data=finite[None].astype(stack.dtype))
    return one.assign_coords(element=["data"])


def _elevation(z: np.ndarray, tr: np.ndarray, te: np.ndarray, y_train: np.ndarray) -> np.ndarray:
    """Held-out elevations, signed so that the training composites' AUC is at least 0.5."""
    ytr = np.asarray(y_train, dtype=bool)
    sign = 1.0
    if 0 < ytr.sum() < ytr.size and roc_auc(ytr, z[tr]) < 0.5:
        sign = -1.0  # ore lies deeper than host on the training holes
    return sign * z[te]


def _warn_majority(y_train: np.ndarray, method: str) -> None:
    share = float(y_train.mean())
    if share > 0.5:
        msg = (
            f"{method} is trained on all ground while ore is {share:.0%} of the training "
            "composites: a detector learns the majority as normal and will rank ore low; use "
            "normal='outside_buffer'"
        )
        warnings.warn(msg, XProspectWarning, stacklevel=4)


def _warn_few_positives(fold: int, n_pos: int, method: str) -> None:
    msg = (
        f"fold {fold}: {n_pos} ore voxel(s) among the training composites, fewer than the 2 a "
        f"supervised fit needs: {method} leaves the fold's held-out composites unscored (NaN, "
        "ranked lowest in the table)"
    )
    warnings.warn(msg, XProspectWarning, stacklevel=3)


def _warn_no_ground(fold: int, method: str, err: Exception) -> None:
    msg = (
        f"fold {fold}: {method} cannot be trained on the fold's block model ({err}); it "
        "leaves the fold's held-out composites unscored (NaN, ranked lowest in the table)"
    )
    warnings.warn(msg, XProspectWarning, stacklevel=3)


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
    patches: PatchSet,
    *,
    training: Mapping[str, Any],
    seed: int,
    device: str,
) -> np.ndarray:
    """Train supervised 3-D SmallCNN(s) on labelled windows; the (mean) map of the fold's stack.

    ``training["ensemble"]`` members (default 1) are trained with seeds ``seed + 1000 m``,
    as the 2-D harness seeds its ensembles, and scored as one
    :class:`~xprospect.models.DeepEnsemble` (their mean probability).
    """
    from xprospect.models import DeepEnsemble, SmallCNN  # lazy: torch
    from xprospect.train import fit  # lazy: torch

    opts = dict(training)
    window = int(opts.pop("window", 5))
    widths = tuple(opts.pop("widths", (16, 16)))
    n_members = int(opts.pop("ensemble", 1))
    if n_members < 1:
        raise DataError(f"cnn_training ensemble must be >= 1; got {n_members}")
    models = []
    for m in range(n_members):
        s = seed + 1000 * m
        net = SmallCNN(stack.sizes["element"], ndim=3, window=window, widths=widths, seed=s)
        res = fit(net, patches, seed=s, device=device, progress=False, validation=None, **opts)
        models.append(res.model)
    model = models[0] if n_members == 1 else DeepEnsemble(models)
    score = stack.prospect.score(model, device=device)
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
    training_features: str = "block_model",
    inner_folds: int = 4,
    inner_block_size: float | None = None,
    hole: str = "hole_id",
    level: float = 0.95,
    seed: int = 0,
    device: str = "cpu",
    controls: bool | int = False,
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
        ``"grade:<element>"``, ``"dae"``, ``"stoad"``, ``"cnn3d"``, baseline names of
        :data:`xprospect.harness.BASELINES` and the geometry controls of :data:`GEOMETRY`:
        ``"coverage"`` (the share of the fold's block-model voxels holding data in the
        CNN's window around the composite, :func:`coverage`), ``"elevation"`` (the
        composite's z, its sign taken from the fold's training composites) and
        ``"cnn3d_mask"`` (``"cnn3d"``'s network, windows and training on the block model's
        data mask alone, :func:`data_mask`; always on the fold's block model). They read
        where the drilling is, not what it found: a method that does not beat them has
        learned the drilling pattern (module docstring).
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
        ``"seeds"`` (default 5): a count N (members seeded ``seed + fold + i``) or a list of
        seeds makes each fold's DAE / STOAD a seed ensemble (their mean score, an
        :class:`~xprospect.models.AnomalyEnsemble`), so that a fold's map does not hang on
        one seed; each fold's report then lists its ``seeds`` and ``members``.
    cnn_training : dict, optional
        ``window``, ``widths``, ``ensemble`` (members of a seed ensemble, default 1) and
        keywords of :func:`xprospect.train.fit` for ``"cnn3d"`` (default
        :data:`CNN_TRAINING`).
    widths : sequence of int, optional
        Encoder widths of the 3-D autoencoders (default the model's).
    training_features : {"leave_holes_out", "block_model"}
        Where the supervised methods (``"cnn3d"`` and the supervised baselines: ``"rf"``,
        ``"gbm"``, ``"logistic"``, ...) read the features of their training composites.
        ``"leave_holes_out"``: the fold's training holes are dealt to
        ``inner_folds`` groups by the same plan-view blocks (a hole never split, training
        composites within ``buffer`` of a group left out as the outer folds leave them out),
        and each group's composites read the block model interpolated from the other
        groups only (same gridder, mask, clr and the fold's z-scores; evaluated only at the
        voxels the group's composites, or their CNN windows, occupy). The held-out
        composites are scored on the fold's block model of all training holes, which holds
        no assay of theirs either, so training and test features come from the same kind of
        interpolation, but measured lower (module docstring). ``"block_model"`` (default):
        the fold's block model itself, whose value at a training composite's voxel is
        dominated by that composite's own assays (training features then look unlike
        held-out ones). Detectors and grades are unaffected.
    inner_folds : int
        Inner groups of training holes for ``training_features="leave_holes_out"``.
    inner_block_size : float, optional
        Plan-view block edge by which training holes are dealt to inner groups; default
        ``block_size`` (inner groups left out as the outer folds leave out test holes). A
        block smaller than the hole spacing deals single holes, so a group's composites
        are interpolated from their nearest neighbouring holes.
    hole : str
        Name of the hole coordinate.
    level : float
        Confidence level of the AUC intervals.
    seed : int
        Seeds the folds and every fit.
    device : str
        Torch device of the deep methods.
    controls : bool or int
        Shifted-label controls: ``n`` draws (``True``: 5), each a whole re-run of every
        method (same folds, block models and seeds) with the labels moved to other
        composites, so each costs as much as the real run. The labels are not shuffled
        one by one, which would break the runs of ore composites along a hole and give a
        null far narrower than the real one: the holes are chained in a random order, each
        down the hole (by ``depth_from`` or ``from`` where the composites hold it, else
        in their order),
        and the chain of labels is rotated by a random offset at least the longest hole's
        composite count from either end (a toroidal shift), so every label lands in
        another hole, then each hole's labels are rotated down the hole by a random offset
        of their own, so they also leave their depth (the mineralised intervals keep their
        lengths). The methods that
        read labels (the supervised ones; the detectors through the ``outside_buffer``
        normal ground) re-train on the moved labels, and every method is judged against
        them: their AUCs should sit near 0.5. The controls' table is ``controls``, and the
        table gains ``control_auc`` and ``control_p`` (the permutation p of the real AUC
        against the draws, smallest ``1 / (draws + 1)``).

    Returns
    -------
    Benchmark3D
        The table, per-composite out-of-fold scores, per-fold counts, training sets, fit
        reports, settings and, with ``controls``, the controls' table.
    """
    elements = [str(e) for e in elements]
    y = _labels(samples, labels)
    parsed = _parse(methods, elements)
    if normal not in ("outside_buffer", "all"):
        raise DataError(f"normal must be 'outside_buffer' or 'all'; got {normal!r}")
    if training_features not in TRAINING_FEATURES:
        msg = f"training_features must be one of {TRAINING_FEATURES}; got {training_features!r}"
        raise DataError(msg)
    if training_features == "leave_holes_out" and int(inner_folds) < 2:
        raise DataError(f"inner_folds must be at least 2; got {inner_folds!r}")
    missing = [e for e in elements if e not in samples.data_vars]
    if missing:
        raise DataError(f"elements {missing} are not variables of the composites")
    holes = np.asarray(samples[hole].values)
    n_draws = 5 if controls is True else int(controls)
    if n_draws < 0:
        raise DataError(f"controls must be True, False or a number of draws >= 0; got {controls}")
    if n_draws:
        _check_shiftable(holes)  # before the real run, not after it
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
    elevation = np.asarray(samples["z"].values, dtype="float64")
    cover_window = int(cnn_kw.get("window", 5))
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
        block, stack, stats = _block_model(train, voxels, elements, idw_kw, max_distance)
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
        supervised = [n for n, k in parsed if k == "baseline" or n in ("cnn3d", "cnn3d_mask")]
        inner: _InnerTraining | None = None
        t_inner = time.perf_counter()
        if training_features == "leave_holes_out" and set(supervised) - {"cnn3d_mask"}:
            inner = _inner_training(
                train,
                holes[tr],
                np.where(ok[:, None], ti, 0),
                ok,
                ytr,
                neg_rows,
                voxels=voxels,
                stack=stack,
                elements=elements,
                idw=idw_kw,
                max_distance=max_distance,
                stats=stats,
                n_inner=int(inner_folds),
                block_size=block_size if inner_block_size is None else float(inner_block_size),
                buffer=buffer,
                window=int(cnn_kw.get("window", 5)) if "cnn3d" in supervised else None,
                seed=seed + f,
            )
        t_inner = time.perf_counter() - t_inner
        n_pos = int(pos_map.sum()) if inner is None else int(inner.y.sum())
        for name, _ in parsed:
            t0 = time.perf_counter()
            training[name].append(tr)
            n_pos_m = int(pos_map.sum()) if name == "cnn3d_mask" else n_pos
            if name in supervised and n_pos_m < 2:
                _warn_few_positives(f, n_pos_m, name)
                continue  # its held-out composites stay unscored (NaN, ranked lowest)
            if name == "coverage":
                vals = _at(coverage(finite, cover_window), idx[te], inside[te])
            elif name == "elevation":
                vals = _elevation(elevation, tr, te, ytr)
            elif name.startswith("grade:"):
                vals = _at(np.asarray(block[name[6:]].values, dtype="float64"), idx[te], inside[te])
            elif name in ("dae", "stoad"):
                if norm is None:
                    _warn_majority(ytr, name)
                try:
                    smap, rep = _fit_detector(
                        name,
                        stack,
                        norm,
                        training=det_kw,
                        widths=widths,
                        seed=seed + f,
                        device=device,
                    )
                except TrainingGroundError as err:
                    _warn_no_ground(f, name, err)
                    reports[name].append({"fold": f, "skipped": str(err)})
                    continue  # its held-out composites stay unscored (NaN, ranked lowest)
                reports[name].append(rep)
                vals = _at(smap, idx[te], inside[te])
            elif name in ("cnn3d", "cnn3d_mask"):
                # cnn3d_mask: the same network and windows on the block model's data mask
                # alone (one channel, 1 where a voxel holds data): the drilling pattern
                src = stack if name == "cnn3d" else data_mask(stack)
                if name == "cnn3d_mask" and finite.all():
                    msg = (
                        f"fold {f}: the block model holds data on every voxel (no "
                        "max_distance), so cnn3d_mask has no drilling pattern to read: its "
                        "scores are one value per fold"
                    )
                    warnings.warn(msg, XProspectWarning, stacklevel=2)
                if inner is None or name == "cnn3d_mask":
                    pos_pts = as_points(train.isel(sample=np.flatnonzero(ok & ytr)), like=voxels)
                    patches = make_patches(
                        src,
                        positives=pos_pts,
                        negatives=neg_pts,
                        size=int(cnn_kw.get("window", 5)),
                        jitter=0,
                        nan="fill",
                        seed=seed + f,
                    )
                else:
                    assert inner.windows is not None and inner.window_labels is not None
                    patches = PatchSet.from_windows(inner.windows, inner.window_labels, like=stack)
                smap = _fit_cnn(src, patches, training=cnn_kw, seed=seed + f, device=device)
                vals = _at(smap, idx[te], inside[te])
            else:
                est = BASELINES[name]()
                if isinstance(est, AnomalyDetector):
                    if norm is None:
                        _warn_majority(ytr, name)
                    est.fit(stack, normal=norm, seed=seed + f)
                elif inner is None:
                    assert isinstance(est, SupervisedModel)
                    labels_map = stack.isel(element=0, drop=True).copy(data=pos_map)
                    est.fit(stack, labels_map, negatives=neg_pts, seed=seed + f)
                else:
                    assert isinstance(est, SupervisedModel)
                    names = [str(e) for e in stack["element"].values]
                    est.fit_cells(inner.x, inner.y, elements=names, ndim=3, seed=seed + f)
                vals = np.full(len(te), np.nan)
                good = np.isfinite(table_te).all(axis=1)
                if good.any():
                    vals[good] = est.score_cells(table_te[good])
            scores[name][te] = vals
            seconds[name] += time.perf_counter() - t0
            if name in supervised:  # the inner features, shared, charged to each user
                seconds[name] += t_inner
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
                "inner_groups": 0 if inner is None else inner.groups,
                "inner_rows": 0 if inner is None else len(inner.y),
            }
        )
        log.info("benchmark3d fold %d: %s", f, rows[-1])
    kinds = dict(parsed)
    prob = {name: kinds[name] == "baseline" or name in ("cnn3d", "cnn3d_mask") for name in scores}
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
        "training_features": training_features,
        "inner_folds": int(inner_folds),
        "inner_block_size": float(block_size if inner_block_size is None else inner_block_size),
        "seed": int(seed),
    }
    ctable = None
    if n_draws:
        # every argument but the labels (and the controls themselves)
        kw: dict[str, Any] = {
            "elements": elements,
            "methods": methods,
            "n_folds": n_folds,
            "block_size": block_size,
            "buffer": buffer,
            "resolution": resolution,
            "idw": idw,
            "max_distance": max_distance,
            "normal": normal,
            "normal_buffer": normal_buffer,
            "detector_training": detector_training,
            "cnn_training": cnn_training,
            "widths": widths,
            "training_features": training_features,
            "inner_folds": inner_folds,
            "inner_block_size": inner_block_size,
            "hole": hole,
            "level": level,
            "seed": seed,
            "device": device,
        }
        # down-hole order: xp.composite's depth_from, a table's "from", else as given
        key = next((k for k in ("depth_from", "from") if k in samples.variables), None)
        down = (
            np.arange(n, dtype="float64")
            if key is None
            else np.asarray(samples[key].values, dtype="float64")
        )
        per_draw = []
        for draw in range(n_draws):
            rng = np.random.default_rng([seed, draw, _CONTROL_KEY])
            moved = shifted_labels(y, holes, down, rng)
            log.info("benchmark3d control draw %d of %d", draw + 1, n_draws)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                per_draw.append(benchmark3d(samples, moved, **kw).table)
            for w in caught:  # a draw's warnings say they are a control's
                if issubclass(w.category, XProspectWarning):
                    msg = f"control draw {draw}: {w.message}"
                    warnings.warn(msg, XProspectWarning, stacklevel=2)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        ctable = summarise_controls(table, per_draw)
        settings["controls"] = n_draws
    return Benchmark3D(
        table, per, pd.DataFrame(rows).set_index("fold"), training, reports, settings, ctable
    )


#: Seed-stream key of the control draws' label shifts (apart from every fit's seed).
_CONTROL_KEY = 30_000


def _check_shiftable(holes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the holes, each composite's hole code and the counts; refuse where no shift exists."""
    names, code, counts = np.unique(holes, return_inverse=True, return_counts=True)
    n, longest = len(holes), int(counts.max())
    if n - longest < longest:
        raise DataError(
            f"hole {names[np.argmax(counts)]!r} holds {longest} of {n} composites: a "
            "shifted-label control needs every hole to hold fewer than half of them"
        )
    return names, code, counts


def shifted_labels(
    y: np.ndarray, holes: np.ndarray, down: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Labels rotated along a random chain of the holes (a toroidal shift).

    Parameters
    ----------
    y : numpy.ndarray
        Labels, one per composite.
    holes : numpy.ndarray
        Hole of each composite.
    down : numpy.ndarray
        Down-hole position of each composite (orders it within its hole).
    rng : numpy.random.Generator
        Draws the chain order and the offset.

    Returns
    -------
    numpy.ndarray
        The labels moved: the holes chained in a random order, each down the hole, and the
        chain's labels rotated by an offset in ``[L, n - L]`` (``L`` the most composites of
        one hole), so every label leaves its hole; then each hole's labels rotated down the
        hole by a random offset of its own, so they also leave their depth. Runs of ore keep
        their lengths, but for those cut at a hole's end. Same count of each label.

    Raises
    ------
    DataError
        When one hole holds half the composites or more (no such offset exists).
    """
    n = len(y)
    names, code, counts = _check_shiftable(holes)
    longest = int(counts.max())
    rank = rng.permutation(len(names))[code]
    chain = np.lexsort((down, rank))
    offset = int(rng.integers(longest, n - longest + 1))
    moved = np.empty_like(y)
    moved[chain] = np.roll(y[chain], offset)
    # then each hole's labels rotated down the hole by its own random offset: with holes
    # of equal length the chain's offset alone keeps every label near its depth, and a
    # score that follows depth (a flat lens, a halo) keeps its AUC on such a "null"
    order = np.lexsort((down, code))  # hole by hole (in code order), down each hole
    start = np.repeat(np.cumsum(counts) - counts, counts)
    size = np.repeat(counts, counts)
    turn = np.repeat(rng.integers(0, counts), counts)
    dest = start + (np.arange(n) - start + turn) % size
    out = np.empty_like(y)
    out[order[dest]] = moved[order]
    return out
