"""Training of the unsupervised detectors: VAE on points or cells, DAE and STOAD on tiles.

Recipe (Yu et al. 2022, section 4.3-4.4): Adam, learning rate 1e-3 decayed by 10 % every
5 epochs, batch 16; 70 % of the normal ground for training and 30 % held out, split by whole
spatial blocks (:func:`xprospect.evaluate.splits.block_split`). The VAE uses the same optimiser
and decay (Luo et al. 2020 do not give theirs).

Policies, stated once:

- **Normalisation**: per-element mean and standard deviation over the training ground (all
  finite cells for STOAD, whose teacher sees everything); stored in the model card so that
  :func:`xprospect.score.score` applies them before the model.
- **NaN cells**: a cell with any non-finite element is never a training or held-out target.
  Samples with a missing element are dropped (counted in ``fit.report``).
- **Tile positions** (convolutional models): whole tiles (every cell usable, or without
  data: the edge of the sampled area is trained as it is scored) when at least 100
  positions exist at some tile size, large tile cores first; otherwise, as on drillhole
  block models cut by a distance mask, tiles with at least half of their cells usable
  (``min_valid=`` sets the share). Unusable cells enter a tile as missing data (NaN): the
  autoencoders and STOAD skip them with partial convolutions (never reading them as
  zeros), and the loss is a masked mean over the usable training cells of the tile's core
  only. Fewer positions than the batch size is refused, fewer than 100 warns, and the fit
  report names the tile size, the valid share and the number of positions.
- **Throughput**: a tile costs its whole area in every layer but trains only its core, so
  large cores come first (48 cells in 2-D, 24 in 3-D), and by default a step holds about
  as many trained cells as the study's 16 tiles of 9-cell cores (``batch_size`` tiles
  otherwise). STOAD's frozen teacher features are computed once for the whole grid.
- **Held-out loss**: the mean per-cell loss at the test-block cells; for the convolutional
  models only at test cells whose whole receptive field is finite (their context may
  include training cells, the target cells themselves were never trained on).
- **Loading**: the stack is read into memory (drawing tiles and computing statistics are
  inherently global operations).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect._dims import (
    ELEMENT_DIM,
    SAMPLE_DIM,
    get_crs,
    grid_geometry,
    sample_coords,
    write_crs,
)
from xprospect._torch import import_torch, resolve_device, torch_threads
from xprospect.evaluate.splits import block_split, choose_blocks
from xprospect.evidence.background import normal_mask
from xprospect.exceptions import (
    DataError,
    ModelCardError,
    TrainingGroundError,
    XProspectDeprecationWarning,
    XProspectWarning,
)
from xprospect.models.anomaly_ensemble import AnomalyEnsemble
from xprospect.models.autoencoder import ConvAutoencoder
from xprospect.models.card import make_card
from xprospect.models.stoad import STOAD, STOADStudent
from xprospect.score import samples as _scoring
from xprospect.score.samples import sample_table
from xprospect.train import _loop
from xprospect.train.recipes import Recipe, get_recipe

torch = import_torch()

__all__ = [
    "AnomalyFit",
    "StoadFit",
    "fit_anomaly",
    "fit_stoad",
    "points_score_map",
    "score_samples",
]

log = logging.getLogger(__name__)

_STD_FLOOR = 1e-12
#: Cells per axis of one held-out evaluation pass (2-D, 3-D): about as many cells a pass.
_EVAL_CHUNK = {2: 256, 3: 64}
#: Valid share of a tile accepted when too few tiles lie wholly inside the training ground.
_PARTIAL_VALID = 0.5
#: Sparser valid shares a NaN-aware model falls back to when no share above gives
#: :data:`_FEW_POSITIONS` positions: a block model masked at a short drilling distance, whose
#: normal ground (away from ore) is a thin shell around the drilled volume, holds no tile even
#: half valid (on the Babbitt drillholes, none of 13 voxels at 50 %). Partial convolutions skip
#: the masked cells and the loss counts only the valid core cells, so such tiles train on what
#: ground there is; a fit that uses them warns.
_SPARSE_VALID = (0.25, 0.1)
#: Fewer tile positions than this warn (and below the batch size the fit is refused).
_FEW_POSITIONS = 100
#: Default tile cores (cells a side) tried first, largest first, per spatial dimension count.
#: A tile of edge ``2 r + core`` costs its whole area in every layer but trains only its core:
#: 9-cell cores (the old default) spent 60 % (2-D) to 77 % (3-D) of a step on the margins,
#: and 16 tiles of them a step paid the per-step cost on 1 296 cells; large cores bring a
#: step's cost per trained cell near that of scoring (asv_bench/benchmarks/training.py).
_CORES = {2: (48, 32, 24, 16, 9), 3: (24, 16, 9)}
#: Trained cells per step when ``batch_size`` is not given: the study's 16 tiles of 9-cell
#: cores in 2-D, so an epoch takes about as many optimiser steps as before.
_CELLS_PER_STEP = {2: 16 * 9**2, 3: 16 * 9**3}
#: Refuse fewer tile positions than this when ``batch_size`` is not given.
_MIN_POSITIONS = 16
#: Largest cache of a STOAD teacher's features (bytes); above it they are recomputed per step.
_TEACHER_CACHE_BYTES = 1 << 30


@dataclass
class AnomalyFit:
    """Result of :func:`fit_anomaly`.

    Attributes
    ----------
    model : ProspectModel
        The trained model (on CPU, eval mode), with its ``card`` set.
    history : pandas.DataFrame
        One row per epoch: ``epoch``, ``lr``, ``train_loss``, ``test_loss`` (held-out blocks)
        and the loss parts (``recon``, ``kl`` for the VAE, on the test side).
    train_mask, test_mask : xarray.DataArray or None
        Training and held-out cells (grid data); for samples, boolean DataArrays along
        ``sample``.
    report : dict
        What the policies did: counts of cells/samples used, dropped, tiles per epoch.
    """

    model: Any
    history: pd.DataFrame
    train_mask: xr.DataArray | None = None
    test_mask: xr.DataArray | None = None
    report: dict[str, Any] = field(default_factory=dict)
    selection: pd.DataFrame | None = None


@dataclass
class StoadFit:
    """Result of :func:`fit_stoad`.

    Attributes
    ----------
    model : STOAD
        Teacher and student (CPU, eval mode), card set.
    history : pandas.DataFrame
        Rows per epoch with a ``stage`` column (``"teacher"`` then ``"student"``). The teacher
        is trained on all cells, so its ``test_loss`` is NaN (no held-out ground exists for
        it); the student's is the loss on the 30 % normal test blocks.
    student_cells : xarray.DataArray
        Boolean grid of every cell that appeared in any tile the student was trained on.
    teacher_cells : xarray.DataArray
        Same for the teacher.
    train_mask, test_mask : xarray.DataArray
        The student's training and held-out normal cells.
    report : dict
        Policy counts.
    """

    model: STOAD
    history: pd.DataFrame
    student_cells: xr.DataArray
    teacher_cells: xr.DataArray
    train_mask: xr.DataArray
    test_mask: xr.DataArray
    report: dict[str, Any] = field(default_factory=dict)
    selection: pd.DataFrame | None = None


# ----------------------------------------------------------------------------- data helpers


def _load_stack(
    stack: xr.Dataset | xr.DataArray, n_channels: int, ndim: int | None, what: str
) -> tuple[xr.DataArray, np.ndarray, np.ndarray]:
    """Validate a stack; return it (element first), float32 values and the finite-cell mask."""
    if not isinstance(stack, xr.DataArray) or ELEMENT_DIM not in stack.dims:
        msg = f"{what} needs an (element, y, x) or (element, z, y, x) DataArray stack"
        raise DataError(msg)
    geom = grid_geometry(stack)
    stack = stack.transpose(ELEMENT_DIM, *geom.dims)
    if stack.sizes[ELEMENT_DIM] != n_channels:
        msg = (
            f"the model takes {n_channels} elements; the stack has "
            f"{stack.sizes[ELEMENT_DIM]}: {[str(e) for e in stack[ELEMENT_DIM].values]}"
        )
        raise ModelCardError(msg)
    if ndim is not None and geom.ndim != ndim:
        raise ModelCardError(f"the model is {ndim}-D; the stack is {geom.ndim}-D {geom.dims}")
    values = np.asarray(stack.values, dtype="float32")  # inherently global: see module doc
    finite = np.isfinite(values).all(axis=0)
    if not finite.any():
        raise DataError(f"the stack {stack.name!r} has no cell where every element is finite")
    return stack, values, finite


def _grid_like(stack: xr.DataArray, data: np.ndarray, name: str) -> xr.DataArray:
    ref = stack.isel({ELEMENT_DIM: 0}, drop=True)
    out = xr.DataArray(data, dims=ref.dims, coords={d: ref[d] for d in ref.dims}, name=name)
    crs = get_crs(stack)
    return write_crs(out, crs) if crs is not None else out


def _normal_values(normal: xr.DataArray | None, stack: xr.DataArray) -> tuple[np.ndarray, str]:
    if normal is None:
        return np.ones(grid_geometry(stack).shape, dtype=bool), "all"
    ref = normal_mask(stack, mode="mask", mask=normal)
    return np.asarray(ref.values, dtype=bool), str(normal.attrs.get("normal_mode", "mask"))


def _check_holdout(holdout: float) -> float:
    h = float(holdout)
    if not 0.0 <= h < 1.0:
        raise DataError(f"holdout must lie in [0, 1); got {holdout!r}")
    return h


def _no_holdout(blocks: int | Sequence[int], holdout: float) -> bool:
    """Tell whether the whole ground trains: ``holdout=0`` or a single block."""
    return float(holdout) == 0.0 or int(np.prod(np.asarray(blocks))) == 1


@dataclass
class _Ground:
    """A loaded stack with its normal ground split into training and held-out cells."""

    stack: xr.DataArray
    values: np.ndarray
    finite: np.ndarray
    norm: np.ndarray
    mode: str
    train: xr.DataArray
    test: xr.DataArray

    def report(self) -> dict[str, int]:
        """Return the counts of cells, non-finite, normal, training and held-out cells."""
        return {
            "n_cells": int(self.finite.size),
            "n_nonfinite": int((~self.finite).sum()),
            "n_normal": int(self.norm.sum()),
            "n_train": int(self.train.values.sum()),
            "n_test": int(self.test.values.sum()),
        }


def _ground(
    stack: xr.Dataset | xr.DataArray,
    n_channels: int,
    ndim: int | None,
    what: str,
    *,
    normal: xr.DataArray | None,
    blocks: int | Sequence[int],
    holdout: float,
    seed: int,
) -> _Ground:
    """Load ``stack`` and split its normal, finite cells by blocks (or keep them all)."""
    stack, values, finite = _load_stack(stack, n_channels, ndim, what)
    norm, mode = _normal_values(normal, stack)
    usable = _grid_like(stack, finite & norm, "usable")
    if _no_holdout(blocks, holdout):
        train = usable.rename("train")
        test = usable.copy(data=np.zeros(usable.shape, dtype=bool)).rename("test")
    else:
        train, test = block_split(usable, blocks=blocks, train_fraction=1.0 - holdout, seed=seed)
    return _Ground(stack, values, finite, norm, mode, train, test)


def _best_epoch(history: pd.DataFrame) -> int:
    """Epoch of the lowest held-out loss (the last epoch when none is finite)."""
    loss = np.asarray(history["test_loss"], dtype="float64") if len(history) else np.array([])
    if not np.isfinite(loss).any():
        return int(history["epoch"].iloc[-1]) if len(history) else 0
    return int(history["epoch"].iloc[int(np.nanargmin(loss))])


def _stop_rule(patience: int | None) -> dict[str, Any]:
    """Keywords of :func:`_loop.train_epochs` for early stopping on the held-out loss.

    None: every epoch runs and the model keeps its last weights. Otherwise the held-out run
    stops after ``patience`` epochs without a lower ``test_loss`` and the model keeps the
    weights of the best epoch.
    """
    if patience is None:
        return {}

    def rank(row: Any) -> tuple[float]:
        loss = float(row.get("test_loss", float("nan")))
        return (-loss if math.isfinite(loss) else -math.inf,)

    return {"rank": rank, "patience": int(patience)}


def _stats(values: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cells = values[:, where].astype("float64")
    mean = cells.mean(axis=1)
    std = cells.std(axis=1)
    std = np.where(std > _STD_FLOOR * np.maximum(np.abs(mean), 1.0), std, 1.0)
    return mean, std


def _standardise(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    shape = (-1,) + (1,) * (values.ndim - 1)
    z = (values - mean.reshape(shape).astype("float32")) / std.reshape(shape).astype("float32")
    return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)  # never a training target


def _hash(*arrays: np.ndarray) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _box_sums(mask: np.ndarray, size: int) -> np.ndarray:
    """Count of True cells in every ``size``-edge box, indexed by the box's first corner."""
    out = mask.astype(np.int64)
    for ax in range(out.ndim):
        pad = [(0, 0)] * out.ndim
        pad[ax] = (1, 0)
        c = np.cumsum(np.pad(out, pad), axis=ax)
        n = c.shape[ax]
        out = np.take(c, np.arange(size, n), axis=ax) - np.take(c, np.arange(0, n - size), axis=ax)
    return out


def _tile_corners(
    allowed: np.ndarray,
    tile: int,
    targets: np.ndarray,
    r: int,
    min_valid: float,
    missing: np.ndarray | None = None,
) -> np.ndarray:
    """Corners of tiles whose ``allowed`` share is at least ``min_valid``, a target in the core.

    ``min_valid=1`` keeps only tiles wholly inside ``allowed``; an empty array when none fits.
    With ``missing`` (cells without data, which a NaN-aware network skips at scoring time
    too), ``min_valid=1`` keeps tiles wholly inside ``allowed | missing`` and at least
    :data:`_PARTIAL_VALID` allowed: the edge of the data is trained as it is scored.
    """
    if any(n < tile for n in allowed.shape):
        return np.zeros((0, allowed.ndim), dtype=np.int64)
    size = tile**allowed.ndim
    if missing is not None and min_valid >= 1.0 and missing.any():
        full = _box_sums(allowed | missing, tile) == size
        full &= _box_sums(allowed, tile) >= max(math.ceil(_PARTIAL_VALID * size - 1e-9), 1)
        core = _box_sums(targets, tile - 2 * r) > 0
        full &= core[tuple(slice(r, r + n) for n in full.shape)]
        return np.argwhere(full)
    need = math.ceil(float(min_valid) * size - 1e-9)
    full = _box_sums(allowed, tile) >= max(need, 1)
    core = _box_sums(targets, tile - 2 * r) > 0
    full &= core[tuple(slice(r, r + n) for n in full.shape)]
    return np.argwhere(full)


def _set_seed_and_reset(model: Any, seed: int, reset: bool) -> None:
    torch.manual_seed(int(seed))
    if reset:
        for m in model.modules():
            if hasattr(m, "reset_parameters") and m is not model:
                m.reset_parameters()


def _check_training_args(epochs: int, batch_size: int, lr: float) -> None:
    if int(epochs) < 0 or int(batch_size) < 1 or not float(lr) > 0:
        msg = f"need epochs >= 0, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}"
        raise DataError(msg)


def _anomaly_recipe(epochs: int, batch_size: int, lr: float) -> Recipe:
    """Return the study's "adam" recipe with this run's learning rate, batch and epochs."""
    return get_recipe("adam").replace(
        lr=float(lr), batch_size=int(batch_size), epochs=int(epochs) or None
    )


# ----------------------------------------------------------------------------- VAE


#: Vectors a step for "vectors" models (the VAE) when ``batch_size`` is not given.
_VECTOR_BATCH = 512
#: Steps an epoch at least for a sample table (see :func:`_vector_batch`).
_MIN_SAMPLE_STEPS = 16
#: The smallest default batch of samples.
_MIN_SAMPLE_BATCH = 32


def _vector_batch(data: Any) -> int:
    """Default batch of a "vectors" model: 512, or smaller for a short sample table.

    A survey's sample table holds hundreds to a few thousand rows: at 512 an epoch is one
    or two steps, and the epochs of a recipe leave the VAE untrained. On 866 Katanning
    samples (4 elements, log10; seeds 0-2) 100 epochs of 2 steps ended at a training loss
    of 3.78-3.99, near where it started, and ranked the gold sites at chance (0.49-0.52 by
    the sample-level protocol); at 54 a step (16 steps an epoch) it reached 2.91-3.07, and
    on the 600 samples of a synthetic survey 2.94-3.26 against 3.91-4.01. So a sample
    table gets at least ``_MIN_SAMPLE_STEPS`` steps an epoch (batches of ``n / 16``, at
    least 32, at most 512). Grids keep 512: their cells number in the tens of thousands.
    """
    if isinstance(data, xr.Dataset) and SAMPLE_DIM in data.dims:
        n = int(data.sizes[SAMPLE_DIM])
        per_step = -(-n // _MIN_SAMPLE_STEPS)  # ceil
        return int(min(_VECTOR_BATCH, max(_MIN_SAMPLE_BATCH, per_step)))
    return _VECTOR_BATCH


def _fit_vectors(
    model: Any,
    train: np.ndarray,
    test: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: Any,
    progress: bool | None,
    patience: int | None = None,
) -> pd.DataFrame:
    """Train a "vectors" model on rows of ``train``; held-out loss and score on ``test``."""
    rng = np.random.default_rng(seed)
    xtr = torch.from_numpy(np.ascontiguousarray(train, dtype="float32")).to(device)
    xte = torch.from_numpy(np.ascontiguousarray(test, dtype="float32")).to(device)

    def batches(_epoch: int) -> Any:
        order = torch.from_numpy(rng.permutation(len(xtr))).to(device)
        shuffled = xtr[order]  # one gather an epoch; the batches are views of it
        for s in range(0, len(xtr), batch_size):
            yield shuffled[s : s + batch_size]

    def batch_loss(xb: Any) -> _loop.BatchLoss:
        return model.loss(xb)[0], len(xb)

    def evaluate(_epoch: int) -> dict[str, float]:
        if len(xte) == 0:  # the whole ground trains: nothing is held out
            return {"test_loss": float("nan")}
        model.eval()
        with torch.no_grad():
            # held-out loss with the sampled code, as in training, plus the deterministic score
            tl, parts = model.loss(xte)
            det = model.score_vectors(xte).mean()
        return {
            "test_loss": float(tl),
            **{k: float(v) for k, v in parts.items()},
            "test_score": float(det),
        }

    run = _loop.train_epochs(
        model,
        model.parameters(),
        _anomaly_recipe(epochs, batch_size, lr),
        epochs=epochs,
        batches=batches,
        batch_loss=batch_loss,
        evaluate=evaluate,
        loss_key="train_loss",
        desc="vectors",
        progress=progress,
        flat=True,  # every weight is in the loss: see xprospect.train._flat_adam
        **_stop_rule(patience),
    )
    return pd.DataFrame(run.rows)


def _fit_vae_samples(
    model: Any,
    samples: xr.Dataset,
    *,
    elements,
    blocks,
    holdout,
    epochs,
    batch_size,
    lr,
    seed,
    device,
    progress,
    patience=None,
) -> AnomalyFit:
    names, values = sample_table(samples, model.in_channels, elements)
    ok = np.isfinite(values).all(axis=1)
    if ok.sum() < 2:
        raise DataError(f"only {int(ok.sum())} samples have every element of {names} finite")
    xy = sample_coords(samples)
    nb = int(blocks) if np.ndim(blocks) == 0 else int(blocks[0])
    ids = np.zeros(len(values), dtype=np.int64)
    for c in ("y", "x"):
        v = xy[c]
        lo, hi = np.nanmin(v[ok]), np.nanmax(v[ok])
        run = np.clip(((v - lo) / max(hi - lo, 1e-12) * nb).astype(np.int64), 0, nb - 1)
        ids = ids * nb + run
    is_train = ok.copy()
    if not _no_holdout(nb, holdout):
        is_train[ok] = choose_blocks(ids[ok], nb * nb, train_fraction=1.0 - holdout, seed=seed)
    is_test = ok & ~is_train
    mean, std = _stats(values.T, is_train)
    z = (values - mean) / std
    history = _fit_vectors(
        model,
        z[is_train],
        z[is_test],
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        progress=progress,
        patience=patience,
    )
    crs = get_crs(samples)
    model.card = {
        "elements": names,
        "ndim": None,
        "dims": None,
        "resolution": None,
        "crs": crs.to_wkt() if crs is not None else None,
        "window": None,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "data_hash": _hash(z[is_train]),
        "trained_on": "samples",
        "recipe": _recipe(epochs, batch_size, lr, seed),
    }
    tr = xr.DataArray(is_train, dims=SAMPLE_DIM, name="train")
    te = xr.DataArray(is_test, dims=SAMPLE_DIM, name="test")
    report = {
        "n_samples": len(values),
        "n_dropped_nonfinite": int((~ok).sum()),
        "n_train": int(is_train.sum()),
        "n_test": int(is_test.sum()),
    }
    return AnomalyFit(model, history, tr, te, report)


def _recipe(epochs: int, batch_size: int, lr: float, seed: int, **extra: Any) -> dict[str, Any]:
    """Return the card's record of the anomaly recipe."""
    rec = _anomaly_recipe(epochs, batch_size, lr)
    return {
        "optimizer": rec.optimizer,
        "lr": rec.lr,
        "lr_decay": f"x{rec.gamma} every {rec.step_size} epochs",
        "epochs": int(epochs),
        "batch_size": rec.batch_size,
        "seed": int(seed),
        **extra,
    }


def _fit_vae_grid(
    model: Any,
    stack: xr.Dataset | xr.DataArray,
    *,
    normal,
    blocks,
    holdout,
    epochs,
    batch_size,
    lr,
    seed,
    device,
    progress,
    patience=None,
) -> AnomalyFit:
    g = _ground(
        stack,
        model.in_channels,
        None,
        "fit_anomaly",
        normal=normal,
        blocks=blocks,
        holdout=holdout,
        seed=seed,
    )
    tr, te = g.train.values, g.test.values
    mean, std = _stats(g.values, tr)
    z = _standardise(g.values, mean, std)
    history = _fit_vectors(
        model,
        z[:, tr].T,
        z[:, te].T,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        progress=progress,
        patience=patience,
    )
    model.card = make_card(
        g.stack,
        mean=mean.tolist(),
        std=std.tolist(),
        data_hash=_hash(z[:, tr], tr),
        trained_on="grid cells",
        normal_mode=g.mode,
        recipe=_recipe(epochs, batch_size, lr, seed),
    )
    return AnomalyFit(model, history, g.train, g.test, g.report())


# ----------------------------------------------------------------------------- tiles


def _valid_passes(
    z: np.ndarray,
    r: int,
    device: Any,
    fn: Any,
    n_out: int,
    *,
    where: np.ndarray | None = None,
    pad: bool = False,
) -> list[np.ndarray]:
    """Per-cell maps of a valid pass ``fn`` over the grid, in chunks of :data:`_EVAL_CHUNK`.

    ``fn`` takes a ``(1, C, *chunk)`` tensor and returns ``n_out`` tensors ``(1, *(chunk -
    2 r))``; each map is NaN where no chunk reached. With ``pad`` the grid is padded with
    ``r`` NaN cells a side first, as :func:`xprospect.score.score` pads it for a NaN-aware
    model, so every cell is reached and those at its border see the context they are scored
    with; without it the cells within ``r`` of the border stay NaN. With ``where`` (boolean
    grid), chunks whose output holds no cell of it are skipped.
    """
    shape = z.shape[1:]
    if pad:
        z = np.pad(z, [(0, 0)] + [(r, r)] * len(shape), constant_values=np.nan)
    full = z.shape[1:]
    outs = [np.full(shape, np.nan, dtype="float32") for _ in range(n_out)]
    step = max(_EVAL_CHUNK.get(len(shape), 64) - 2 * r, 1)
    starts = [range(0, max(n - 2 * r, 1), step) for n in full]
    shift = r if pad else 0
    with torch.no_grad():
        for corner in np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, len(shape)):
            src = tuple(
                slice(int(c), min(int(c) + step + 2 * r, n))
                for c, n in zip(corner, full, strict=True)
            )
            if any(s.stop - s.start < 2 * r + 1 for s in src):
                continue
            dst = tuple(slice(s.start + r - shift, s.stop - r - shift) for s in src)
            if where is not None and not where[dst].any():
                continue
            xb = torch.from_numpy(np.ascontiguousarray(z[(slice(None), *src)]))[None].to(device)
            for out, t in zip(outs, fn(xb), strict=True):
                out[dst] = t[0].cpu().numpy()
    return outs


def _per_cell_loss(
    model: Any, z: np.ndarray, device: Any, where: np.ndarray | None = None
) -> np.ndarray:
    """Per-cell loss map (NaN within ``r`` of the edge) by valid passes over chunks.

    With ``where`` (boolean grid), chunks holding no cell of it are skipped (NaN there): the
    held-out loss reads the test cells only, so a whole-grid pass per epoch is not needed.
    """
    scale = model.loss_scale

    def fn(xb: Any) -> tuple[Any]:
        return (model.score_dense(xb) * scale,)

    return _valid_passes(z, model.context[0], device, fn, 1, where=where)[0]


def _context_errors(model: Any, z: np.ndarray, device: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell error (not normalised) and valid-context share of every cell of the grid.

    The grid is padded with ``r`` NaN cells a side, as :func:`xprospect.score.score` pads
    it for a NaN-aware model, so the cells at its border see the context they are scored
    with (see :func:`_valid_passes`).
    """
    err, share = _valid_passes(z, model.context[0], device, model.error_and_context, 2, pad=True)
    return err, share


def _fit_context_norm(model: Any, z: np.ndarray, cells: np.ndarray, device: Any) -> list[float]:
    """Set a NaN-aware detector's edge normalisation from its errors at ``cells``.

    Any model with the edge normalisation (the autoencoders, STOAD: see
    :class:`xprospect.models._context_norm.ContextNorm`); returns each context bin's median
    error over that of whole contexts.
    """
    model.eval()
    err, share = _context_errors(model, z, device)
    return [float(v) for v in model.set_context_norm(share[cells], err[cells])]


def _context_norm_default(ndim: int) -> bool:
    """Edge normalisation on by default in 2-D only.

    Measured on the synthetic worlds (three model seeds each): in 2-D it brought the
    edge share of the top 5 % from 0.52-0.65 to par and raised AUC (DAE 0.53-0.56 to
    0.62-0.65); in 3-D the edge of a block model is the distance mask, where voxels are
    smooth interpolations with smaller errors, and it lowered AUC in every case (orebody
    world seeds 0 and 1: DAE 0.910 to 0.857 and 0.902 to 0.874, STOAD 0.985 to 0.983
    and 0.975 to 0.962) while the unnormalised top 5 % already sat below the edge's par.
    """
    return ndim == 2


def _tile_batch(batch_size: int | None, tile: int, r: int, ndim: int) -> int:
    """Tiles per optimiser step: ``batch_size``, else about :data:`_CELLS_PER_STEP` cells."""
    if batch_size is not None:
        return int(batch_size)
    core = max(tile - 2 * r, 1) ** ndim
    return max(1, round(_CELLS_PER_STEP.get(ndim, 16 * 9**ndim) / core))


def _teacher_cache(model: Any, z: np.ndarray, device: Any) -> list[np.ndarray] | None:
    """Return a STOAD teacher's valid features of the whole grid (None when too large).

    The teacher is frozen, so its features of a tile never change; with valid convolutions
    the features of a cell depend only on the input within its receptive radius, so the
    whole grid's features, cropped, are every tile's. Computed once in slabs along the first
    spatial axis (``2 r`` overlap) instead of at every step.
    """
    if not hasattr(model, "teacher_features"):
        return None
    r = model.context[0]
    spatial = z.shape[1:]
    if min(spatial) < 2 * r + 1:
        return None
    widths = model.teacher.encoder.widths
    taps = model.teacher.encoder.taps
    n_out = int(np.prod([n - 2 * r for n in spatial]))
    if sum(widths[t - 1] for t in taps) * n_out * 4 > _TEACHER_CACHE_BYTES:
        return None
    per_row = int(np.prod(spatial[1:]))
    slab = max(1, (1 << 21) // max(per_row, 1))  # output rows per pass: ~2 M cells
    parts: list[list[np.ndarray]] = []
    was = model.training
    model.eval()
    with torch.no_grad():
        for a in range(0, spatial[0] - 2 * r, slab):
            b = min(a + slab, spatial[0] - 2 * r)
            xb = torch.from_numpy(np.ascontiguousarray(z[:, a : b + 2 * r]))[None].to(device)
            feats = model.teacher_features(xb, padding="valid")
            parts.append([f[0].cpu().numpy() for f in feats])
    model.train(was)
    return [np.concatenate([p[i] for p in parts], axis=1) for i in range(len(parts[0]))]


def _fit_tiles(
    model: Any,
    params: Any,
    z: np.ndarray,
    corners: np.ndarray,
    targets: np.ndarray,
    *,
    tile: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: Any,
    test_cells: np.ndarray | None,
    progress: bool | None,
    stage: str,
    tiles_per_epoch: int | None = None,
    patience: int | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Train ``model.loss`` on random tiles at ``corners``; return history and the cells seen.

    ``z`` holds NaN at the cells outside the training ground (missing data to the NaN-aware
    networks). The loss of a tile is averaged over the cells of its valid core that are in
    ``targets``. A STOAD's frozen teacher features are computed once for the whole grid
    (:func:`_teacher_cache`) and cut per tile like the input.
    """
    rng = np.random.default_rng(seed)
    r = model.context[0]
    ndim = z.ndim - 1
    seen = np.zeros(z.shape[1:], dtype=bool)
    valid = max(tile - 2 * r, 1) ** ndim
    per_epoch = int(
        np.clip(math.ceil(np.count_nonzero(targets) / valid), batch_size, 4096)
        if tiles_per_epoch is None
        else tiles_per_epoch
    )
    core = tuple(slice(r, tile - r) for _ in range(ndim))
    cache = _teacher_cache(model, z, device) if epochs > 0 else None
    counted: dict[int, int] = {}

    def axis_index(cb: np.ndarray, n: int) -> tuple[Any, ...]:
        off = np.arange(n)
        return tuple(
            (cb[:, a][:, None] + off).reshape((-1,) + (1,) * a + (n,) + (1,) * (ndim - a - 1))
            for a in range(ndim)
        )

    def batches(epoch: int) -> Any:
        pick = corners[rng.integers(0, len(corners), per_epoch)]
        for s in range(0, per_epoch, batch_size):
            cb = pick[s : s + batch_size]
            idx = axis_index(cb, tile)
            xb = z[(slice(None), *idx)]  # (C, B, tile, ...)
            tb = torch.from_numpy(np.ascontiguousarray(targets[idx][(slice(None), *core)]))
            counted[epoch] = counted.get(epoch, 0) + int(tb.sum())
            for c in cb:
                seen[tuple(slice(int(v), int(v) + tile) for v in c)] = True
            xb = torch.from_numpy(np.ascontiguousarray(np.moveaxis(xb, 0, 1))).to(device)
            feats = None
            if cache is not None:
                cidx = axis_index(cb, tile - 2 * r)
                feats = [
                    torch.from_numpy(
                        np.ascontiguousarray(np.moveaxis(f[(slice(None), *cidx)], 0, 1))
                    ).to(device)
                    for f in cache
                ]
            yield xb, tb.to(device), feats

    def batch_loss(batch: Any) -> _loop.BatchLoss:
        xb, tb, feats = batch
        if feats is None:
            return model.loss(xb, tb)[0], len(xb)
        return model.loss(xb, tb, teacher=feats)[0], len(xb)

    def evaluate(epoch: int) -> dict[str, Any]:
        test_loss = float("nan")
        if test_cells is not None:
            model.eval()
            per_cell = _per_cell_loss(model, z, device, test_cells)
            vals = per_cell[test_cells]
            vals = vals[np.isfinite(vals)]
            test_loss = float(vals.mean()) if vals.size else float("nan")
        return {"test_loss": test_loss, "tiles": per_epoch, "cells": counted.pop(epoch, 0)}

    run = _loop.train_epochs(
        model,
        params,
        _anomaly_recipe(epochs, batch_size, lr),
        epochs=epochs,
        batches=batches,
        batch_loss=batch_loss,
        evaluate=evaluate,
        loss_key="train_loss",
        row_prefix={"stage": stage},
        desc=stage,
        progress=progress,
        flat=True,  # every weight is in the loss: see xprospect.train._flat_adam
        **_stop_rule(patience),
    )
    return pd.DataFrame(run.rows), seen


def _cells_per_epoch(history: pd.DataFrame) -> float:
    """Mean count of loss (target) cells per epoch: the training rate's unit, as scoring's."""
    return float(history["cells"].mean()) if len(history) and "cells" in history else 0.0


def _eval_cells(test: np.ndarray, finite: np.ndarray, r: int) -> np.ndarray:
    """Test cells whose whole ``2 r + 1`` receptive box is finite."""
    size = 2 * r + 1
    full = _box_sums(finite, size) == size**finite.ndim
    ok = np.zeros_like(finite)
    ok[tuple(slice(r, r + n) for n in full.shape)] = full
    return test & ok


def _pick_tile(
    model: Any,
    tile: int | None,
    allowed: np.ndarray,
    targets: np.ndarray,
    what: str,
    batch_size: int | None,
    min_valid: float | None,
    missing: np.ndarray | None = None,
) -> tuple[int, float, np.ndarray]:
    """Pick the tile edge, the valid share and the tile corners (the tile-position policy).

    Sizes tried: ``tile`` if given, else ``2 r + core`` for the cores of :data:`_CORES`
    (largest first), then ``2 r + 7``, ``2 r + 5``, ... ``2 r + 1``. Valid shares tried:
    ``min_valid`` if given, else 1 (whole tiles) then :data:`_PARTIAL_VALID`, then, for a
    NaN-aware model only, the shares of :data:`_SPARSE_VALID` (warned about). For a NaN-aware
    model (``nan_aware``: cells without data are skipped, not read as zeros) a whole tile
    may hold cells of ``missing`` (no data) as long as its other cells are all allowed, so
    that cells at the edge of the data are trained as they are scored (see
    :func:`_tile_corners`); non-normal cells with data still make a tile partial. The
    share is reported as 1 when every position found is whole. The first (share, size) with at
    least :data:`_FEW_POSITIONS` positions wins, else the one with the most positions. Fewer
    than ``batch_size`` (default :data:`_MIN_POSITIONS`) positions is refused (a degenerate
    fit that memorises a handful of tiles); fewer than :data:`_FEW_POSITIONS` warns.
    """
    r = model.context[0]
    if tile is not None and int(tile) < 2 * r + 1:
        msg = f"tile={tile} is smaller than the receptive field {2 * r + 1} of the model"
        raise DataError(msg)
    if min_valid is not None and not 0.0 < float(min_valid) <= 1.0:
        raise DataError(f"min_valid must be in (0, 1]; got {min_valid!r}")
    cores = (*_CORES.get(allowed.ndim, (9,)), 7, 5, 3, 1)
    sizes = [int(tile)] if tile is not None else [2 * r + c for c in cores]
    nan_aware = bool(getattr(model, "nan_aware", False))
    if min_valid is not None:
        shares: tuple[float, ...] = (float(min_valid),)
    else:
        shares = (1.0, _PARTIAL_VALID) + (_SPARSE_VALID if nan_aware else ())
    if min_valid is not None or not nan_aware:
        missing = None
    best: tuple[int, float, np.ndarray] | None = None
    for share in shares:
        for t in sizes:
            corners = _tile_corners(allowed, t, targets, r, share, missing)
            if len(corners) >= _FEW_POSITIONS:
                if min_valid is None and share < _PARTIAL_VALID:
                    _warn_sparse(t, share, len(corners), what, stacklevel=5)
                return t, _reported_share(allowed, t, corners, share, missing), corners
            if best is None or len(corners) > len(best[2]):
                best = (t, share, corners)
    assert best is not None
    t, share, corners = best
    if not len(corners):  # none anywhere: name the least the policy asked for
        t, share = min(sizes), shares[-1]
    share = _reported_share(allowed, t, corners, share, missing)
    n = len(corners)
    if n == 0 and any(g < min(sizes) for g in allowed.shape):
        msg = f"the grid {allowed.shape} ({what}) is smaller than the tile {min(sizes)} cells"
        raise TrainingGroundError(msg)
    where = (
        f"{n} {t}-cell tile positions with at least {share:.0%} of their cells among the "
        f"{what} ({int(allowed.sum())} cells) and a training cell in the core"
    )
    if n < max(int(_MIN_POSITIONS if batch_size is None else batch_size), 1):
        msg = (
            f"only {where}; need at least batch_size={batch_size} (a fit on so few tiles "
            "memorises them): use a smaller tile=, a lower min_valid=, fewer blocks= or a "
            "wider normal area"
        )
        raise TrainingGroundError(msg)
    msg = (
        f"only {where} (fewer than {_FEW_POSITIONS}): the fit may memorise them; consider a "
        "smaller tile=, a lower min_valid= or a wider normal area"
    )
    warnings.warn(msg, XProspectWarning, stacklevel=4)
    return t, share, corners


def _warn_sparse(tile: int, share: float, n: int, what: str, *, stacklevel: int) -> None:
    """Warn that the default tile policy fell back to tiles mostly outside the training ground."""
    msg = (
        f"no {tile}-cell tile is even {_PARTIAL_VALID:.0%} {what}: training on {n} tiles "
        f"with at least {share:.0%} of their cells among them (the rest masked, outside the "
        "loss); the normal ground is thin or scattered (a distance mask, a buffer around "
        "ore), so the detector learns from little context: widen it or check the fit"
    )
    warnings.warn(msg, XProspectWarning, stacklevel=stacklevel)


def _reported_share(
    allowed: np.ndarray, tile: int, corners: np.ndarray, share: float, missing: Any
) -> float:
    """Return the valid share the positions guarantee.

    A whole tile holding cells without data (see :func:`_tile_corners`) is only
    :data:`_PARTIAL_VALID` valid.
    """
    if share < 1.0 or missing is None or not missing.any() or not len(corners):
        return share
    sums = _box_sums(allowed, tile)[tuple(corners.T)]
    return 1.0 if bool((sums == tile**allowed.ndim).all()) else _PARTIAL_VALID


def _tile_report(fit_report: dict[str, Any], prefix: str, tile: int, share: float, n: int) -> None:
    """Record the tile size, the valid share and the number of positions in a fit report."""
    fit_report[f"{prefix}tile"] = int(tile)
    fit_report[f"{prefix}min_valid"] = float(share)
    fit_report[f"{prefix}tile_positions"] = int(n)


def _masked_input(model: Any, z: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Standardised values with every cell outside ``allowed`` set to NaN (missing data).

    A model that is not ``nan_aware`` gets 0 (the training mean) there instead.

    Partial tiles then carry no value of a masked cell (a non-normal cell's chemistry never
    reaches a network trained on normal ground); the NaN-aware networks skip those cells
    (partial convolutions) and never count them in the loss. Whole tiles are unchanged.
    """
    if allowed.all():
        return z
    fill = np.float32(np.nan if getattr(model, "nan_aware", False) else 0.0)
    return np.where(allowed[None], z, fill)


def _fit_conv(
    model: Any,
    stack: xr.Dataset | xr.DataArray,
    *,
    normal,
    tile,
    blocks,
    holdout,
    epochs,
    batch_size,
    lr,
    seed,
    device,
    progress,
    tiles_per_epoch,
    min_valid,
    patience=None,
    context_norm=None,
) -> AnomalyFit:
    g = _ground(
        stack,
        model.in_channels,
        model.ndim,
        "fit_anomaly",
        normal=normal,
        blocks=blocks,
        holdout=holdout,
        seed=seed,
    )
    stack, values, finite, norm, mode = g.stack, g.values, g.finite, g.norm, g.mode
    tr = np.asarray(g.train.values)
    te = np.asarray(g.test.values)
    allowed = finite & norm
    tile, share, corners = _pick_tile(
        model, tile, allowed, tr, "normal, finite cells", batch_size, min_valid, ~finite
    )
    batch_size = _tile_batch(batch_size, tile, model.context[0], model.ndim)
    mean, std = _stats(values, tr)
    z = _standardise(values, mean, std)
    model.to(device)
    if context_norm is None:
        context_norm = _context_norm_default(model.ndim)
    norms = hasattr(model, "set_context_norm") and getattr(model, "nan_aware", False)
    if norms:  # no normalisation while training (the held-out loss is the plain error)
        model.context_norm.zero_()
    zin = _masked_input(model, z, allowed)
    history, seen = _fit_tiles(
        model,
        model.parameters(),
        zin,
        corners,
        tr,
        tile=tile,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        test_cells=_eval_cells(te, finite, model.context[0]) if te.any() else None,
        progress=progress,
        stage="autoencoder",
        tiles_per_epoch=tiles_per_epoch,
        patience=patience,
    )
    seen &= allowed  # masked cells of partial tiles were zeros, never seen
    factors = None
    if norms and context_norm:  # the cells' contexts as scored: NaN only where no data
        factors = _fit_context_norm(model, _masked_input(model, z, finite), tr, device)
    model.card = make_card(
        stack,
        mean=mean.tolist(),
        std=std.tolist(),
        data_hash=_hash(z[:, tr], tr),
        trained_on="tiles",
        tile=tile,
        normal_mode=mode,
        recipe=_recipe(epochs, batch_size, lr, seed),
    )
    report = {
        **g.report(),
        "n_tile_positions": len(corners),
        "n_cells_seen": int(seen.sum()),
        "context_norm": factors,
        "cells_per_epoch": _cells_per_epoch(history),
    }
    _tile_report(report, "", tile, share, len(corners))
    history.attrs.update({k: report[k] for k in ("tile", "min_valid", "tile_positions")})
    return AnomalyFit(model, history, g.train, g.test, report)


# ----------------------------------------------------------------------------- public


def fit_anomaly(
    model: Any,
    data: xr.Dataset | xr.DataArray,
    *,
    normal: xr.DataArray | None = None,
    epochs: int = 100,
    batch_size: int | None = None,
    lr: float = 1e-3,
    tile: int | None = None,
    min_valid: float | None = None,
    blocks: int | Sequence[int] = 5,
    holdout: float = 0.0,
    refit: bool = True,
    patience: int | None = None,
    seeds: int | Sequence[int] | None = None,
    elements: Sequence[str] | None = None,
    context_norm: bool | None = None,
    tiles_per_epoch: int | None = None,
    seed: int = 0,
    device: Any = "auto",
    reset: bool = True,
    threads: int | None = None,
    progress: bool | None = None,
) -> AnomalyFit:
    """Train an anomaly model (VAE, convolutional autoencoder, ...) on normal ground.

    The model says how it is trained through its class attribute ``anomaly_samples`` (see
    :mod:`xprospect.models.base`): ``"vectors"`` models (the VAE) learn from element vectors of
    cells or samples, ``"tiles"`` models (the autoencoders) from tiles of cells; any model
    following that contract is trained the same way, with the study's ``"adam"`` recipe
    (:mod:`xprospect.train.recipes`) and the loop every trainer shares.

    By default the detector trains on **all** the normal ground (``holdout=0``). With
    ``holdout > 0`` a share of whole spatial blocks is held out for model selection: the
    epoch of lowest held-out loss is chosen, then (``refit=True``) the model is trained again
    from the same start on all the ground for that many epochs, so that no block of the map
    was left out of the final model. ``seeds=N`` averages N detectors trained from N seeds
    (an :class:`~xprospect.models.AnomalyEnsemble`), so a map does not hang on one seed.

    Parameters
    ----------
    model : ProspectModel
        An anomaly model declaring ``anomaly_samples`` ("vectors" or "tiles"), e.g. a
        :class:`~xprospect.models.VAE` or :class:`~xprospect.models.ConvAutoencoder`; trained
        in place and returned as ``fit.model`` (with ``seeds``, deep copies are trained).
    data : xarray.Dataset or DataArray
        A sample table (Dataset with dim ``sample``; "vectors" models only) or a stack
        (``element``, y, x) / (``element``, z, y, x). Stacks are read into memory.
    normal : xarray.DataArray, optional
        Boolean grid of normal cells (see :func:`xprospect.evidence.background.normal_mask`);
        default every cell. Not used for samples.
    epochs, lr : int, float
        Adam with ``lr`` decayed 10 % every 5 epochs. For the VAE an epoch is one pass over
        the training cells/samples; for the autoencoder enough random tiles to cover the
        training cells once on average.
    batch_size : int, optional
        Tiles per step for "tiles" models, default as many as hold about 1 296 trained
        cells in 2-D (the study's 16 tiles of a 9-cell core; 16 x 729 in 3-D), and 512
        vectors for "vectors" models: a batch of 16 element vectors is a few hundred flops,
        so per-step overhead would dominate training (see ``asv_bench/benchmarks/anomaly.py``).
        A sample table of fewer than 8 192 samples takes batches of ``n / 16`` (at least
        32) instead, so that an epoch is at least 16 steps: at 512 a survey's few hundred
        samples made an epoch one or two steps, and the VAE did not train.
    tile : int, optional
        Tile edge (cells) for the autoencoder; default ``2 r + core`` for cores 48, 32, 24,
        16, 9 in 2-D (24, 16, 9 in 3-D) then 7, 5, 3, 1, the first with enough tile
        positions (see ``min_valid``): a large core spends less of a step on the margins
        the loss does not count (``asv_bench/benchmarks/training.py``). The tile size and
        the number of positions used are in ``report`` (``tile``, ``min_valid``,
        ``tile_positions``) and ``history.attrs``.
    min_valid : float, optional
        Share of a tile's cells that must be finite, normal cells (0 < ``min_valid`` <= 1).
        Masked cells of a tile enter the network as missing data (NaN; partial convolutions
        skip them) and never count in the loss, which is averaged over the valid training
        cells of the tile's core only. Cells without data count as usable in a whole tile
        of a NaN-aware model (the autoencoders, STOAD) when at least half the tile is.
        Default: whole tiles (1) when at least 100 positions exist at some size, else
        tiles at least half valid (irregular block models, distance masks), else, for a
        NaN-aware model, at least a quarter, then a tenth valid, with a warning (a thin
        normal ground: a shell around ore in a block model masked at a drilling distance).
        Fewer than ``batch_size`` positions is a
        :class:`~xprospect.exceptions.TrainingGroundError` (a ``DataError``);
        fewer than 100 warns (:class:`~xprospect.exceptions.XProspectWarning`).
    blocks : int or sequence of int
        Spatial blocks per axis for the held-out split
        (:func:`~xprospect.evaluate.splits.block_split`); for samples, a
        ``blocks x blocks`` split of their bounding box. ``blocks=1`` holds nothing out.
    holdout : float
        Share of the ground held out by whole blocks for model selection, in [0, 1); 0 (the
        default) trains on everything and reports no held-out loss.
    refit : bool
        With ``holdout > 0``: train again on all the ground for the selected number of
        epochs (default). False keeps the model trained on the training blocks.
    patience : int, optional
        With ``holdout > 0``: stop the held-out run after ``patience`` epochs without a
        lower held-out loss (``epochs`` is then a ceiling); the selected epoch and the refit
        are as without it, and with ``refit=False`` the model keeps the best epoch's
        weights. ``report["epochs_run"]`` says how many epochs the held-out run took.
        Default None: every epoch runs.
    seeds : int or sequence of int, optional
        Train one member per seed (an int N means ``seed, seed + 1, ..., seed + N - 1``)
        and return their :class:`~xprospect.models.AnomalyEnsemble`.
    elements : list of str, optional
        Sample variables, in order (default every numeric variable along ``sample``).
    context_norm : bool or None
        NaN-aware autoencoders: after training, normalise each cell's score by the median
        error of training cells with as much valid context (the edge of the data, the
        border of the grid), relative to whole contexts
        (:meth:`~xprospect.models.ConvAutoencoder.set_context_norm`; the factors are in
        ``report["context_norm"]``). A cell near the edge is reconstructed from fewer
        neighbours, so without it the top scores pile up on the edge. Default (None): on for
        2-D stacks, off for 3-D block models, where it lowered AUC on the synthetic
        orebody world (the edge there is the distance mask's smooth interpolation).
    tiles_per_epoch : int, optional
        Autoencoder tiles per epoch (default: enough to cover the training cells once).
    seed : int
        Seeds the weight initialisation (when ``reset``), the split, the batches and the VAE
        noise: the same seed and the same torch thread count give the same model, bit for
        bit, on the CPU (another thread count rounds differently; see docs/conventions.md).
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``.
    reset : bool
        Re-initialise the weights from ``seed`` before training.
    threads : int, optional
        Torch intra-op threads while training on the CPU (restored afterwards). Default
        (None): 1. A step's work is small (512 vectors, or about 1 300 trained cells of
        tiles), too small to share between threads, and threads that wait for each other
        turn a busy machine's spare cycles into spinning: on a 2-core machine shared with
        other work, a VAE step measured 25x slower with 2 threads than with 1, and STOAD's
        README recipe (5 elements x 244^2 cells, 5 + 5 epochs here) took 47.5 CPU s with
        torch's own 2 threads against 2.8 s with 1 (load 5-7). On the quiet machine the
        same fit took 1.9 / 1.7 s wall (3.8 / 3.3 s CPU) on 2 threads against 1.8 / 2.2 s
        on 1: no gain to pay for. Give more on a quiet machine with large tiles.
    progress : bool or None
        Show a progress bar over epochs (with the loss and an ETA): True always, None (the
        default) on a terminal or in a notebook only, False never.

    Returns
    -------
    AnomalyFit
        ``model`` (CPU, eval mode, card with normalisation), ``history``, masks, ``report``
        (``selected_epochs`` with a holdout, ``seeds`` with an ensemble) and ``selection``
        (the held-out run's history when the model was refitted).

    Examples
    --------
    >>> import xprospect as xp
    >>> from xprospect.models import VAE
    >>> w = xp.synthetic.survey(seed=0, n_samples=300, elements=["Cu", "Pb", "Zn"])
    >>> fit = fit_anomaly(VAE(3), w.samples.prospect.log10(), epochs=2, seed=0, device="cpu")
    >>> list(fit.history.columns[:4])
    ['epoch', 'lr', 'train_loss', 'test_loss']
    """
    holdout = _check_holdout(holdout)
    kind = getattr(type(model), "anomaly_samples", None)
    if batch_size is None and kind == "vectors":
        batch_size = _vector_batch(data)
    _check_training_args(epochs, 1 if batch_size is None else batch_size, lr)
    dev = resolve_device(device)
    split = not _no_holdout(blocks, holdout)
    patience = _check_patience(patience, split)

    def one(net: Any, s: int) -> AnomalyFit:
        start = {k: v.detach().clone() for k, v in net.state_dict().items()}

        def run(h: float, n_epochs: int) -> AnomalyFit:
            net.load_state_dict(start)
            return _fit_anomaly_once(
                net,
                data,
                kind=kind,
                normal=normal,
                epochs=n_epochs,
                batch_size=batch_size,
                lr=lr,
                tile=tile,
                min_valid=min_valid,
                blocks=blocks,
                holdout=h,
                elements=elements,
                tiles_per_epoch=tiles_per_epoch,
                seed=s,
                device=dev,
                reset=reset,
                progress=progress,
                patience=patience if h > 0 else None,
                context_norm=context_norm,
            )

        fit = run(holdout, epochs)
        if split:
            best = _best_epoch(fit.history)
            fit.report["selected_epochs"] = best
            fit.report["epochs_run"] = len(fit.history)
            if refit and epochs > 0:
                final = run(0.0, max(best, 1))
                final.selection = fit.history
                final.report.update(selected_epochs=best, epochs_run=len(fit.history), refit=True)
                return final
        return fit

    with torch_threads(1 if threads is None else threads, dev):
        seed_list = _seed_list(seed, seeds)
        if len(seed_list) == 1 and seeds is None:
            return one(model, seed_list[0])
        fits = [one(copy.deepcopy(model), s) for s in seed_list]
    return _ensemble_fit(fits, seed_list)


def _check_patience(patience: int | None, split: bool) -> int | None:
    """Validate ``patience``: a positive count, and only with held-out blocks to watch."""
    if patience is None:
        return None
    if int(patience) < 1:
        raise DataError(f"patience must be a positive number of epochs; got {patience!r}")
    if not split:
        msg = (
            f"patience={patience} stops on the held-out loss, but nothing is held out: "
            "give holdout > 0 (e.g. holdout=0.3) and blocks > 1"
        )
        raise DataError(msg)
    return int(patience)


def _seed_list(seed: int, seeds: int | Sequence[int] | None) -> list[int]:
    if seeds is None:
        return [int(seed)]
    if np.ndim(seeds) == 0:
        n = int(seeds)  # type: ignore[arg-type]
        if n < 1:
            raise DataError(f"seeds must be a positive count or a list of seeds; got {seeds!r}")
        return [int(seed) + i for i in range(n)]
    out = [int(s) for s in seeds]  # type: ignore[union-attr]
    if not out:
        raise DataError("seeds is an empty list")
    return out


def _ensemble_fit(fits: list[Any], seed_list: list[int]) -> Any:
    """Combine per-seed fits (AnomalyFit or StoadFit) into one fit of their ensemble."""
    cards = [f.model.card for f in fits]
    for c, s in zip(cards[1:], seed_list[1:], strict=True):
        if c.get("mean") != cards[0].get("mean") or c.get("std") != cards[0].get("std"):
            msg = (
                f"seed {s} normalised its data differently from seed {seed_list[0]} (each "
                "trained on its own blocks): a seed ensemble needs holdout=0 or refit=True"
            )
            raise DataError(msg)
    ens = AnomalyEnsemble([f.model for f in fits]).eval()
    ens.card = {**cards[0], "ensemble_seeds": list(seed_list)}
    history = pd.concat(
        [f.history.assign(seed=s) for f, s in zip(fits, seed_list, strict=True)],
        ignore_index=True,
    )
    first = fits[0]
    first.model = ens
    first.history = history
    first.report = {**first.report, "seeds": list(seed_list), "members": [f.report for f in fits]}
    return first


def _fit_anomaly_once(
    model: Any,
    data: xr.Dataset | xr.DataArray,
    *,
    kind: str | None,
    normal: xr.DataArray | None,
    epochs: int,
    batch_size: int | None,
    lr: float,
    tile: int | None,
    min_valid: float | None,
    blocks: int | Sequence[int],
    holdout: float,
    elements: Sequence[str] | None,
    tiles_per_epoch: int | None,
    seed: int,
    device: Any,
    reset: bool,
    progress: bool | None,
    patience: int | None = None,
    context_norm: bool | None = None,
) -> AnomalyFit:
    """One training run of :func:`fit_anomaly` (one seed, one split)."""
    dev = device
    with torch.random.fork_rng(devices=[]):
        _set_seed_and_reset(model, seed, reset)
        model.to(dev)
        if kind == "vectors":
            if isinstance(data, xr.Dataset) and SAMPLE_DIM in data.dims:
                fit = _fit_vae_samples(
                    model,
                    data,
                    elements=elements,
                    blocks=blocks,
                    holdout=holdout,
                    epochs=epochs,
                    batch_size=batch_size,
                    lr=lr,
                    seed=seed,
                    device=dev,
                    progress=progress,
                    patience=patience,
                )
            else:
                fit = _fit_vae_grid(
                    model,
                    data,
                    normal=normal,
                    blocks=blocks,
                    holdout=holdout,
                    epochs=epochs,
                    batch_size=batch_size,
                    lr=lr,
                    seed=seed,
                    device=dev,
                    progress=progress,
                    patience=patience,
                )
        elif kind == "tiles":
            fit = _fit_conv(
                model,
                data,
                normal=normal,
                tile=tile,
                blocks=blocks,
                holdout=holdout,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                seed=seed,
                device=dev,
                progress=progress,
                tiles_per_epoch=tiles_per_epoch,
                min_valid=min_valid,
                patience=patience,
                context_norm=context_norm,
            )
        else:
            msg = (
                f"{type(model).__name__} declares anomaly_samples={kind!r}; fit_anomaly trains "
                "models drawing 'vectors' (e.g. VAE) or 'tiles' (e.g. ConvAutoencoder), see "
                "xprospect.models.base (use fit_stoad for STOAD)"
            )
            raise ModelCardError(msg)
    fit.model.cpu().eval()
    return fit


def fit_stoad(
    teacher: ConvAutoencoder,
    stack: xr.DataArray,
    *,
    normal: xr.DataArray | None = None,
    epochs: int = 100,
    teacher_epochs: int | None = None,
    batch_size: int | None = None,
    lr: float = 1e-3,
    tile: int | None = None,
    teacher_tile: int | None = None,
    min_valid: float | None = None,
    blocks: int | Sequence[int] = 5,
    holdout: float = 0.0,
    refit: bool = True,
    patience: int | None = None,
    seeds: int | Sequence[int] | None = None,
    weights: Sequence[float] = (1 / 3, 1 / 3, 1 / 3),
    context_norm: bool | None = None,
    tiles_per_epoch: int | None = None,
    seed: int = 0,
    device: Any = "auto",
    threads: int | None = None,
    progress: bool | None = None,
) -> StoadFit:
    """Train STOAD: the teacher autoencoder on all cells, then the student on normal cells.

    The ground is used as in :func:`fit_anomaly`: all of it by default (``holdout=0``);
    with ``holdout > 0`` whole blocks are held out to choose the student's epochs, then the
    student is trained again on all the ground (``refit``), the teacher kept.

    Parameters
    ----------
    teacher : ConvAutoencoder
        Teacher network. With ``teacher_epochs=0`` it is used as given (pre-trained);
        otherwise it is re-initialised from ``seed`` and trained on tiles from every finite
        cell (the study: "all layers").
    stack : xarray.DataArray
        (``element``, y, x) or (``element``, z, y, x); read into memory.
    normal : xarray.DataArray, optional
        Boolean grid of normal cells (e.g. ``normal_mask(..., mode="outside_buffer")``);
        default (None) every cell, as in :func:`fit_anomaly`. The student's tiles are drawn
        in the training cells of the normal, finite ground (see ``min_valid``).
    epochs : int
        Student epochs.
    teacher_epochs : int, optional
        Teacher epochs (default ``epochs``).
    batch_size, lr : int, float, optional
        Adam, lr decayed 10 % every 5 epochs (the study's recipe, both networks); tiles per
        step as in :func:`fit_anomaly` (default about 1 296 trained cells a step in 2-D).
    tile, teacher_tile : int, optional
        Tile edges for the student and the teacher, chosen as in :func:`fit_anomaly`
        (large cores first, shrunk when few fit). The teacher's features are computed once
        for the whole grid, not at every student step (it is frozen).
    min_valid : float, optional
        Valid share of a tile, as in :func:`fit_anomaly` (both networks). The student's
        tiles may hold non-normal cells only as zeros, outside its loss. The report gives
        ``tile``, ``min_valid``, ``tile_positions`` (student) and ``teacher_tile``,
        ``teacher_min_valid``, ``teacher_tile_positions``.
    blocks : int or sequence of int
        Spatial blocks per axis for the held-out split (``blocks=1``: none).
    holdout : float
        Share of the normal ground held out by blocks to select the student's epochs, in
        [0, 1); 0 (default) trains on all of it.
    refit : bool
        With ``holdout > 0``: retrain the student on all the ground for the selected epochs.
    patience : int, optional
        With ``holdout > 0``: stop the student's held-out run after ``patience`` epochs
        without a lower held-out loss (as in :func:`fit_anomaly`).
    seeds : int or sequence of int, optional
        Train one STOAD per seed and return their
        :class:`~xprospect.models.AnomalyEnsemble` (mean score).
    weights : 3 floats
        Depth weights (h1, h2, h3).
    context_norm : bool or None
        After training, read each cell's score against the scores of the student's
        training cells with as much valid context (the edge of the data, the border of the
        grid), relative to whole contexts, as :func:`fit_anomaly` does for the autoencoder
        (:meth:`~xprospect.models.STOAD.set_context_norm`; the factors are in
        ``report["context_norm"]``). A cell near the edge is distilled from fewer
        neighbours, so without it the top scores pile up on the edge. Default (None): on for
        2-D stacks, off for 3-D block models, where it lowered AUC on the synthetic
        orebody world (the edge there is the distance mask's smooth interpolation).
    tiles_per_epoch : int, optional
        Tiles per epoch for both networks (default: enough to cover their cells once).
    seed : int
        Seeds everything (weights, split, tiles).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``.
    threads : int, optional
        Torch CPU threads while training (restored afterwards); None (default): 1 (see
        :func:`fit_anomaly`).
    progress : bool or None
        Progress bars over each network's epochs: True always, None (the default) on a
        terminal or in a notebook only, False never.

    Returns
    -------
    StoadFit
        ``model`` (STOAD, CPU, eval, card with normalisation), ``history``,
        ``student_cells``, ``teacher_cells``, masks, ``report`` and ``selection``.
    """
    _check_training_args(epochs, 1 if batch_size is None else batch_size, lr)
    if not isinstance(teacher, ConvAutoencoder):
        raise ModelCardError(f"the STOAD teacher must be a ConvAutoencoder; got {type(teacher)}")
    t_epochs = int(epochs if teacher_epochs is None else teacher_epochs)
    _check_training_args(t_epochs, 1 if batch_size is None else batch_size, lr)
    holdout = _check_holdout(holdout)
    dev = resolve_device(device)
    split = not _no_holdout(blocks, holdout)
    patience = _check_patience(patience, split)
    kw = dict(
        normal=normal,
        batch_size=batch_size,
        lr=lr,
        tile=tile,
        teacher_tile=teacher_tile,
        min_valid=min_valid,
        blocks=blocks,
        weights=weights,
        context_norm=context_norm,
        tiles_per_epoch=tiles_per_epoch,
        device=dev,
        progress=progress,
    )

    def one(net: ConvAutoencoder, s: int) -> StoadFit:
        fit = _fit_stoad_once(
            net,
            stack,
            epochs=epochs,
            teacher_epochs=t_epochs,
            holdout=holdout,
            seed=s,
            patience=patience,
            **kw,
        )
        if split:
            student = fit.history[fit.history["stage"] == "student"]
            best = _best_epoch(student)
            fit.report.update(selected_epochs=best, epochs_run=len(student))
            if refit and epochs > 0:
                final = _fit_stoad_once(
                    fit.model.teacher,
                    stack,
                    epochs=max(best, 1),
                    teacher_epochs=0,
                    holdout=0.0,
                    seed=s,
                    **kw,
                )
                teacher_rows = fit.history[fit.history["stage"] == "teacher"]
                final.history = pd.concat([teacher_rows, final.history], ignore_index=True)
                final.teacher_cells = fit.teacher_cells
                final.selection = fit.history
                final.report.update(selected_epochs=best, epochs_run=len(student), refit=True)
                return final
        return fit

    with torch_threads(1 if threads is None else threads, dev):
        seed_list = _seed_list(seed, seeds)
        if len(seed_list) == 1 and seeds is None:
            return one(teacher, seed_list[0])
        fits = [one(copy.deepcopy(teacher), s) for s in seed_list]
    return _ensemble_fit(fits, seed_list)


def _fit_stoad_once(
    teacher: ConvAutoencoder,
    stack: xr.DataArray,
    *,
    normal: xr.DataArray | None,
    epochs: int,
    teacher_epochs: int,
    batch_size: int | None,
    lr: float,
    tile: int | None,
    teacher_tile: int | None,
    min_valid: float | None,
    blocks: int | Sequence[int],
    holdout: float,
    weights: Sequence[float],
    tiles_per_epoch: int | None,
    seed: int,
    device: Any,
    progress: bool | None,
    patience: int | None = None,
    context_norm: bool | None = None,
) -> StoadFit:
    """One STOAD training run of :func:`fit_stoad` (one seed, one split)."""
    t_epochs = int(teacher_epochs)
    dev = device
    if context_norm is None:
        context_norm = _context_norm_default(teacher.ndim)
    g = _ground(
        stack,
        teacher.in_channels,
        teacher.ndim,
        "fit_stoad",
        normal=normal,
        blocks=blocks,
        holdout=holdout,
        seed=seed,
    )
    stack, values, finite, norm, mode = g.stack, g.values, g.finite, g.norm, g.mode
    train, test = g.train, g.test
    tr, te = np.asarray(train.values), np.asarray(test.values)
    mean, std = _stats(values, finite)
    z = _standardise(values, mean, std)
    frames = []
    with torch.random.fork_rng(devices=[]):
        _set_seed_and_reset(teacher, seed, reset=t_epochs > 0)
        teacher.to(dev)
        t_seen = np.zeros(finite.shape, dtype=bool)
        t_report: dict[str, Any] = {}
        ttile = None
        if t_epochs > 0:
            for p in teacher.parameters():
                p.requires_grad_(True)
            ttile, tshare, tcorners = _pick_tile(
                teacher,
                teacher_tile,
                finite,
                finite,
                "finite cells",
                batch_size,
                min_valid,
                ~finite,
            )
            hist, t_seen = _fit_tiles(
                teacher,
                teacher.parameters(),
                _masked_input(teacher, z, finite),
                tcorners,
                finite,
                tile=ttile,
                epochs=t_epochs,
                batch_size=_tile_batch(batch_size, ttile, teacher.context[0], teacher.ndim),
                lr=lr,
                seed=seed,
                device=dev,
                test_cells=None,
                progress=progress,
                stage="teacher",
                tiles_per_epoch=tiles_per_epoch,
            )
            t_seen &= finite
            _tile_report(t_report, "teacher_", ttile, tshare, len(tcorners))
            frames.append(hist)
        teacher.eval()
        torch.manual_seed(int(seed) + 1)
        model = STOAD(teacher, STOADStudent.like(teacher), weights=weights).to(dev)
        allowed = finite & norm
        stile, sshare, scorners = _pick_tile(
            model, tile, allowed, tr, "normal, finite cells", batch_size, min_valid, ~finite
        )
        s_batch = _tile_batch(batch_size, stile, model.context[0], model.ndim)
        hist, s_seen = _fit_tiles(
            model,
            model.student.parameters(),
            _masked_input(model, z, allowed),
            scorners,
            tr,
            tile=stile,
            epochs=epochs,
            batch_size=s_batch,
            lr=lr,
            seed=seed + 1,
            device=dev,
            test_cells=_eval_cells(te, finite, model.context[0]) if te.any() else None,
            progress=progress,
            stage="student",
            tiles_per_epoch=tiles_per_epoch,
            patience=patience if te.any() else None,
        )
        s_seen &= allowed  # non-normal cells of partial tiles were zeros, never seen
        frames.append(hist)
        factors = None
        if context_norm:  # the cells' contexts as scored: NaN only where no data
            factors = _fit_context_norm(model, _masked_input(model, z, finite), tr, dev)
    model.cpu().eval()
    model.card = make_card(
        stack,
        mean=mean.tolist(),
        std=std.tolist(),
        data_hash=_hash(z[:, tr], tr),
        trained_on="tiles",
        tile=stile,
        normal_mode=mode,
        weights=list(model.weights),
        recipe=_recipe(epochs, s_batch, lr, seed, teacher_epochs=t_epochs),
    )
    report = {
        **g.report(),
        "student_tile": stile,
        "teacher_tile": ttile,
        "n_student_tile_positions": len(scorners),
        "n_student_cells_seen": int(s_seen.sum()),
        "context_norm": factors,
        "cells_per_epoch": _cells_per_epoch(hist),
    }
    _tile_report(report, "", stile, sshare, len(scorners))
    report.update(t_report)
    history = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    history.attrs.update(
        {k: v for k, v in report.items() if k.endswith(("tile", "min_valid", "tile_positions"))}
    )
    return StoadFit(
        model,
        history,
        _grid_like(stack, s_seen, "student_cells"),
        _grid_like(stack, t_seen, "teacher_cells"),
        train,
        test,
        report,
    )


def score_samples(model: Any, samples: xr.Dataset, *, name: str = "anomaly") -> xr.DataArray:
    """Score samples; deprecated alias of :func:`xprospect.score.score_samples`."""
    warnings.warn(
        "xprospect.train.score_samples is deprecated: use "
        "xprospect.score.score_samples (same arguments)",
        XProspectDeprecationWarning,
        stacklevel=2,
    )
    return _scoring.score_samples(model, samples, name=name)


def points_score_map(
    model: Any, samples: xr.Dataset, like: xr.Dataset | xr.DataArray, **idw_kwargs: Any
) -> xr.DataArray:
    """Grid sample scores; deprecated alias of :func:`xprospect.score.points_score_map`."""
    warnings.warn(
        "xprospect.train.points_score_map is deprecated: use "
        "xprospect.score.points_score_map (same arguments)",
        XProspectDeprecationWarning,
        stacklevel=2,
    )
    return _scoring.points_score_map(model, samples, like, **idw_kwargs)
