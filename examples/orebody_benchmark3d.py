"""Block-model harness on the synthetic orebody world: holes left out by 250 m blocks.

Run::

    python examples/orebody_benchmark3d.py            # every method, about 30 min on 2 cores
    python examples/orebody_benchmark3d.py grade:Au,gmm,stoad
    python examples/orebody_benchmark3d.py grade:Au,rf scores.csv   # also per-composite scores

What it does:

1. drills the synthetic orebody world (48 straight holes, 5 m assays of six elements), reads
   the tables back through ``read_drillholes``, desurveys and composites them to 10 m; the
   label of a composite is its logged lithology (``"ore"`` inside the lens);
2. :func:`xprospect.benchmark3d` deals whole holes to 4 folds by 250 m plan-view blocks, with
   a 40 m 3-D buffer of training composites around the test holes; for each fold the block
   model (IDW, k = 16, 40 m voxels, clr then z-scores) is built from the training holes only;
3. every method scores the held-out composites at their voxels: the interpolated Au and As
   grades, a GMM, random forest and gradient boosting on the block model, the 3-D DAE and
   STOAD (normal ground: voxels farther than 80 m from every training ore composite) and a
   supervised 3-D CNN on 5-voxel windows;
4. prints the per-fold counts, the harness table (pooled out-of-fold AUC with DeLong 95 %
   interval, PR AUC, Brier score, paired DeLong p against the best non-deep method) and the
   detectors' tile sizes and positions.
"""

from __future__ import annotations

import sys
import time

import pandas as pd

import xprospect as xp
from xprospect.io.drillholes import desurvey, read_drillholes
from xprospect.synthetic import orebody

ELEMENTS = ["Au", "Ag", "Cu", "As", "Sb", "W"]
METHODS = ["grade:Au", "grade:As", "gmm", "rf", "gbm", "dae", "stoad", "cnn3d"]
COLUMNS = [
    "kind",
    "auc",
    "auc_lower",
    "auc_upper",
    "pr_auc",
    "brier",
    "fold_auc_mean",
    "fold_auc_std",
    "p_vs_best_baseline",
    "best_baseline",
    "n_nan_cells",
    "seconds",
]


def main(methods: list[str], scores_csv: str | None = None) -> None:
    """Run the harness and print its tables (and write per-composite scores when asked)."""
    import torch  # lazy: the deep methods' thread count

    torch.set_num_threads(1)
    t0 = time.time()
    w = orebody(seed=0, n_holes=48, interval=5.0, elements=ELEMENTS)
    holes = read_drillholes(w.collar, w.survey, w.assay, w.lithology, crs=w.crs, length_unit="m")
    comp = desurvey(holes).prospect.composite(length=10.0)
    ore = comp["lith"].values == "ore"
    b = xp.benchmark3d(
        comp,
        ore,
        elements=ELEMENTS,
        methods=methods,
        n_folds=4,
        block_size=250.0,
        buffer=40.0,
        resolution=40.0,
        widths=(12, 6, 3),
        detector_training={"epochs": 10, "tiles_per_epoch": 64, "batch_size": 16},
        seed=0,
    )
    pd.set_option("display.width", 250)
    print(b.folds.to_string())
    print(b.table[COLUMNS].round(3).to_string())
    for name, reps in b.reports.items():
        if reps:
            print(name, [(r["tile"], r["min_valid"], r["tile_positions"]) for r in reps])
    if scores_csv:
        b.scores.to_csv(scores_csv, index=False)
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main(
        sys.argv[1].split(",") if len(sys.argv) > 1 else METHODS,
        sys.argv[2] if len(sys.argv) > 2 else None,
    )
