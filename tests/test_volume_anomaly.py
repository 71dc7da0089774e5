"""3-D detectors on masked, irregular drillhole volumes: partial tiles and the masked loss.

A block model gridded from drillholes and masked beyond a short drilling distance is a set
of tubes: no tile the size of the autoencoder's receptive field lies wholly inside it. The
detectors then train on tiles that are at least half valid (a thin ground: a quarter, then
a tenth, warned about), the masked cells entering as missing data and never counting in
the loss; too few positions are refused or warned about.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

torch = pytest.importorskip("torch")

from xprospect.exceptions import (  # noqa: E402
    DataError,
    TrainingGroundError,
    XProspectWarning,
)
from xprospect.models import ConvAutoencoder  # noqa: E402
from xprospect.train.anomaly import fit_anomaly, fit_stoad  # noqa: E402

WIDTHS = (4, 3, 2)  # receptive radius 6: the smallest tile is 13 voxels
FAST = dict(epochs=2, tiles_per_epoch=16, batch_size=4, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny nets, shared machine


def _volume(shape=(20, 24, 24), seed=0) -> xr.DataArray:
    """Three smooth elements on a (z, y, x) voxel grid, 10 m voxels."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.arange(n, dtype="float32") for n in shape], indexing="ij")
    vals = np.stack(
        [np.sin(xx / 3 + k) + np.cos(yy / 4 - k) + 0.3 * zz / shape[0] for k in range(3)]
    ) + 0.1 * rng.standard_normal((3, *shape)).astype("float32")
    coords = {
        "element": ["Cu", "Pb", "Zn"],
        "z": -10.0 * np.arange(shape[0]),
        "y": 10.0 * np.arange(shape[1]),
        "x": 10.0 * np.arange(shape[2]),
    }
    return xr.DataArray(vals.astype("float32"), dims=("element", "z", "y", "x"), coords=coords)


def _tubes(shape, spacing=8, radius=3.5) -> np.ndarray:
    """Vertical drillhole tubes: voxels within ``radius`` cells of holes ``spacing`` apart."""
    _, yy, xx = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    dy = (yy - spacing // 2) % spacing - spacing // 2
    dx = (xx - spacing // 2) % spacing - spacing // 2
    return np.hypot(dy, dx) <= radius


def test_irregular_mask_trains_with_partial_tiles():
    stack = _volume()
    tubes = _tubes(stack.shape[1:])
    masked = stack.where(xr.DataArray(tubes, dims=("z", "y", "x")))
    assert 0.5 < tubes.mean() < 0.9
    with pytest.raises(DataError, match="tile positions"):  # no whole 13-voxel cube exists
        fit_anomaly(ConvAutoencoder(3, ndim=3, widths=WIDTHS), masked, min_valid=1.0, **FAST)
    fit = fit_anomaly(ConvAutoencoder(3, ndim=3, widths=WIDTHS), masked, seed=0, **FAST)
    rep = fit.report
    assert rep["min_valid"] == 0.5 and rep["tile"] >= 13 and rep["tile_positions"] >= 100
    assert fit.history.attrs["tile"] == rep["tile"]
    assert fit.history.attrs["tile_positions"] == rep["tile_positions"]
    assert np.isfinite(fit.history["train_loss"]).all() and fit.history["train_loss"].gt(0).all()
    # the model saw only valid voxels: the masked ones were zeros
    assert rep["n_cells_seen"] <= int(tubes.sum())
    score = masked.prospect.score(fit.model, device="cpu").values
    assert np.isnan(score[~tubes]).all() and np.isfinite(score[tubes]).any()


def test_thin_ground_falls_back_to_sparse_tiles_with_a_warning():
    """Narrow tubes (14 % of the voxels): no tile is half valid; a tenth-valid one trains."""
    stack = _volume(seed=4)
    tubes = _tubes(stack.shape[1:], radius=1.5)
    masked = stack.where(xr.DataArray(tubes, dims=("z", "y", "x")))
    assert 0.1 < tubes.mean() < 0.25
    with pytest.raises(TrainingGroundError, match="tile positions"):  # the old policy's end
        fit_anomaly(ConvAutoencoder(3, ndim=3, widths=WIDTHS), masked, min_valid=0.5, **FAST)
    with pytest.warns(XProspectWarning, match=r"is even 50%.*at least 10%"):
        fit = fit_anomaly(ConvAutoencoder(3, ndim=3, widths=WIDTHS), masked, seed=0, **FAST)
    rep = fit.report
    assert rep["min_valid"] == 0.1 and rep["tile_positions"] >= 100
    loss = fit.history["train_loss"]
    assert np.isfinite(loss).all() and loss.gt(0).all()
    assert rep["n_cells_seen"] <= int(tubes.sum())  # only valid voxels count in the loss
    score = masked.prospect.score(fit.model, device="cpu").values
    assert np.isnan(score[~tubes]).all() and np.isfinite(score[tubes]).all()


def test_loss_ignores_masked_voxels():
    """Garbage in the non-normal voxels changes nothing: inputs zeroed, loss masked."""
    stack = _volume(seed=1)
    tubes = _tubes(stack.shape[1:])
    normal = xr.DataArray(tubes, dims=("z", "y", "x"), coords={d: stack[d] for d in "zyx"})
    garbage = stack.where(normal, 1.0e4)
    fits = [
        fit_anomaly(ConvAutoencoder(3, ndim=3, widths=WIDTHS), s, normal=normal, seed=3, **FAST)
        for s in (stack, garbage)
    ]
    a, b = (f.history for f in fits)
    assert fits[0].report["min_valid"] == 0.5
    np.testing.assert_array_equal(a["train_loss"].values, b["train_loss"].values)
    np.testing.assert_array_equal(a["test_loss"].values, b["test_loss"].values)
    for pa, pb in zip(fits[0].model.parameters(), fits[1].model.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_stoad_student_partial_tiles_stay_in_normal_ground():
    stack = _volume(seed=2)
    tubes = _tubes(stack.shape[1:])
    normal = xr.DataArray(tubes, dims=("z", "y", "x"), coords={d: stack[d] for d in "zyx"})
    fit = fit_stoad(ConvAutoencoder(3, ndim=3, widths=WIDTHS), stack, normal=normal, seed=0, **FAST)
    rep = fit.report
    assert rep["min_valid"] == 0.5 and rep["teacher_min_valid"] == 1.0  # teacher: all voxels
    assert {"tile", "tile_positions", "teacher_tile", "teacher_tile_positions"} <= set(rep)
    seen = fit.student_cells.values
    assert seen.any() and not (seen & ~tubes).any()


def _cube(shape=(16, 16, 16), edge=13) -> xr.DataArray:
    stack = _volume(shape)
    keep = np.zeros(shape, dtype=bool)
    keep[:edge, :edge, :edge] = True
    return stack.where(xr.DataArray(keep, dims=("z", "y", "x")))


def test_too_few_positions_refused():
    with pytest.raises(DataError, match=r"only \d+ 13-cell tile positions.*batch_size=64"):
        fit_anomaly(
            ConvAutoencoder(3, ndim=3, widths=WIDTHS),
            _cube(),
            min_valid=1.0,
            epochs=1,
            batch_size=64,
            device="cpu",
        )


def test_few_positions_warn():
    with pytest.warns(XProspectWarning, match="fewer than 100"):
        fit = fit_anomaly(
            ConvAutoencoder(3, ndim=3, widths=WIDTHS),
            _cube((18, 18, 18), edge=16),
            min_valid=1.0,
            **FAST,
        )
    assert 4 <= fit.report["tile_positions"] < 100 and fit.report["tile"] == 13
