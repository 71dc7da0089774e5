"""The supervised CNN path end to end on real stream sediments (Katanning, 32 MINEDEX gold sites).

Runs ``examples/katanning_cnn.py`` (so the example never rots) on the ``data_dir`` fixture:
twelve elements gridded at 1 km, clr + z-score, element selection by Z_AUC, then a 4-fold
spatial block cross-validation of the whole training path (30 km blocks, an 11 km buffer,
elements re-selected on each fold's training sites) and a final model on every site.

What it measures (1 Dec 2026, ``cross_validate``'s folds dealt with the deposits balanced, as
the harness deals them): 25 of 32 sites on data, dealt 14, 5, 3 and 3 to the folds (one 30 km
block holds 14); after the buffer most folds train on 4-5 sites (5, 5, 5, 10 for seed 0). The
pooled out-of-fold AUC reads 0.28, 0.39 and 0.33 for seeds 0-2 (0.69, 0.73 and 0.30 without the
per-fold selection), against 0.82-0.83 for the raw Au map on the same points: the CNN does not
beat chance here, and ``cross_validate`` says so with an ``XProspectWarning``. The former deal
(deposits and barren points dealt together by point counts) read 0.80, 0.43 and 0.65 (0.43,
0.27, 0.29 without selection), putting 19-21 sites in one fold that trained on 1-3: its 0.80 for
seed 0, once asserted here as "the CNN beats chance", was that deal's luck. Asserted: the path
runs, every fold holds held-out sites, every point is judged by a model that never trained near
it, and a pooled AUC below chance is warned of.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import load_example

import xprospect as xp

pytest.importorskip("torch")

pytestmark = pytest.mark.realdata


def _example():
    return load_example("katanning_cnn")


def test_katanning_cnn_spatial_cross_validation(data_dir, tmp_path):
    ex = _example()
    if not (data_dir / ex.FOLDER).is_dir():
        pytest.skip(f"{ex.FOLDER} not in {data_dir}")
    out = tmp_path / "katanning"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        m = ex.run(data_dir, out=out, seed=0, device="cpu")
    cv = m["cross_validation"]
    assert 20 <= m["n_sites_on_data"] <= 32
    assert len(cv["folds"]) == 4
    assert sum(f["n_test_deposits"] for f in cv["folds"]) == m["n_sites_on_data"]
    assert all(f["n_test_deposits"] >= 1 for f in cv["folds"])  # deposits dealt to every fold
    # the buffer is a window plus jitter, and it dropped training points next to test points
    assert cv["settings"]["buffer"] == (ex.WINDOW + 2 + 2) * ex.RESOLUTION
    assert sum(f["n_dropped_by_buffer"] for f in cv["folds"]) > 0
    assert np.isfinite(cv["auc"]) and cv["auc_ci"][0] < cv["auc"] < cv["auc_ci"][1]
    assert 0.0 <= cv["capture"]["deposit_fraction"] <= 1.0
    # below chance (0.28 for seed 0 when measured), and said so: never a silent figure
    below = [
        w
        for w in seen
        if issubclass(w.category, xp.XProspectWarning) and "below the 0.5" in str(w.message)
    ]
    assert bool(below) == (cv["auc"] < 0.5), (cv["auc"], [str(w.message) for w in seen])
    assert m["selection"]["Au"]["selected"]  # gold is the significant element at gold sites
    for name in (
        "prospectivity.zarr",
        "prospectivity.tif",
        "metrics.json",
        "cv_points.csv",
        "targets.geojson",
        "evaluation_in_sample.png",
    ):
        assert (out / name).exists(), name
