"""Block-model harness on real drillholes: the Babbitt Cu-Ni deposit, holes left out by blocks.

Run (``../shared/data`` beside the checkout, or ``$XPROSPECT_DATA``)::

    python examples/babbitt_benchmark3d.py --detector-seeds 1  # labels: inside Mpz.stl, 3 min
    python examples/babbitt_benchmark3d.py --labels Cu:0.5     # labels: composite Cu >= 0.5 %
    python examples/babbitt_benchmark3d.py grade:Cu,gmm,logistic,rf --controls 5

What it does:

1. reads the Babbitt collars, surveys and assays (399 holes, US survey feet, Cu, Ni, S in
   wt %) through ``read_drillholes``, desurveys them and composites to 50 ft (4 267
   composites with assays);
2. labels each composite: inside the ``Mpz.stl`` mineralised-domain wireframe (tested on
   a 25 x 50 x 50 ft voxel grid; 73 % of the composites: a broad envelope drawn by a
   geologist, independent of this code), or ``--labels Cu:0.5``, its own assay at or above
   a cut-off (logged mineralised intervals, as in the hidden SEDEX database; the held-out
   composites' own assays never reach their scores, which come from the block model of the
   training holes);
3. :func:`xprospect.benchmark3d` deals whole holes to 4 folds by 820 ft (250 m) plan-view
   blocks with a 130 ft (40 m) buffer; each fold's block model (IDW, k = 12, anisotropic
   600 / 600 / 200 ft ranges, 100 x 200 x 200 ft voxels, masked beyond ``--max-distance``
   of the training composites, clr then z-scores) is built from its training holes only;
4. prints the per-fold counts, the harness table (pooled out-of-fold AUC with DeLong 95 %
   interval, PR AUC, the largest share of composites tied on one score, paired DeLong p
   against the best non-deep method) and the detectors' tiles.

The masked block model is what starved the 3-D detectors on real drillholes: with the
normal ground "outside 400 ft of training ore" and ore 73 % of the composites, it is a thin
shell around the drilled volume in which no 13-voxel tile is even half normal, so
``fit_anomaly`` refused every fold and, before that was caught per fold, stopped the whole
harness. The NaN-aware detectors now fall back to tiles a quarter, then a tenth normal
(warned; the fold's report says which), and a fold that still has none is left unscored
with a warning.

Measured on 2 Dec (2-core machine, torch on 1 thread; pooled out-of-fold AUC [95 % DeLong
interval], paired DeLong p against the best non-deep method, seconds of the method's fits).

Labels inside ``Mpz.stl`` (72.7 % of 4 267 composites). ``python
examples/babbitt_benchmark3d.py
grade:Cu,grade:Ni,grade:S,coverage,elevation,logistic,gbm,rf,gmm,cnn3d`` (60 s) and
``python examples/babbitt_benchmark3d.py --detector-seeds 1`` (the default methods, one
detector seed each, 184 s)::

    cnn3d       0.752 [0.736, 0.768]  p < 0.001 (vs coverage)     37 s
    coverage    0.705 [0.689, 0.722]  (73 % of composites tied at a full window)
    grade:Cu    0.647 [0.628, 0.665]
    elevation   0.643 [0.623, 0.663]
    logistic    0.639    gbm 0.623    grade:Ni 0.623    grade:S 0.621    rf 0.610
    stoad       0.565    dae 0.561    gmm 0.515
    cnn3d_mask  0.476 [0.454, 0.498]  (the CNN on the data mask alone; 120 s run with
                                       grade:Cu,coverage,elevation,cnn3d_mask,cnn3d)

Shifted-label controls (``python examples/babbitt_benchmark3d.py
grade:Cu,coverage,elevation,logistic,cnn3d --controls 5``, 298 s): every method's mean
control AUC 0.492-0.505, and each real AUC above all five of its draws (``control_p`` 0.167,
the smallest 5 draws can give).

The 3-D CNN is the one method above the grade and the geometry controls; trained on the
data mask alone it is at chance (its training windows, at training composites, are full of
data whatever the label), so its lead is not the drilling pattern. The wireframe is a broad
domain, though: its labels are an interpretation, and elevation alone nearly matches the
grade.

Labels Cu >= 0.5 % (23.9 %; ``--labels Cu:0.5``, the same two commands, about 60 s and
219 s)::

    grade:Cu    0.702 [0.683, 0.721]
    elevation   0.692 [0.673, 0.711]  p 0.31 (vs grade:Cu)
    grade:Ni    0.679    cnn3d 0.675 (p 0.001)    grade:S 0.662    gbm 0.645
    logistic    0.641    rf 0.632    coverage 0.554
    dae         0.538    stoad 0.524    gmm 0.521

Neither a 5-seed CNN ensemble (``grade:Cu,elevation,logistic,cnn3d --labels Cu:0.5
--cnn-ensemble 5``, 213 s: 0.679 [0.660, 0.698], p 0.002 below the grade) nor leave-holes-out
training features (``... --training-features leave_holes_out``, 73 s: 0.671) closes the gap.
On mineralised intervals defined by grade, nothing beats the interpolated grade, and the
detectors sit near chance, as on the hidden SEDEX database (0.47-0.58). With log10 instead
of clr features (measured by patching the block-model transform; not an option) STOAD rose
to 0.653 on these labels and DAE and GMM stayed at chance (0.509, 0.508), all below the
grade; on the wireframe labels DAE 0.570, STOAD 0.557 and GMM 0.535 (against 0.561, 0.565
and 0.515 on clr).

Masked at 400 ft (``--max-distance 400``) the DAE and STOAD had refused every fold before
the sparse-tile fallback (``only 0 36-cell tile positions with at least 100% ...``); with
it they train on tiles at least a tenth normal and score 0.610 and 0.595 against the
grade's 0.642 (at ``min_valid=0.1`` forced, one seed, 284 s).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import xprospect as xp
from xprospect.evidence.mesh import inside_mesh, read_mesh
from xprospect.io.drillholes import read_drillholes
from xprospect.points import as_points, points_to_index

FT = 1200 / 3937  # US survey foot in metres
ELEMENTS = ["Cu", "Ni", "S"]
METHODS = ["grade:Cu", "grade:Ni", "grade:S", "gmm", "logistic", "rf", "gbm", "dae", "stoad"]
COLUMNS = [
    "kind",
    "auc",
    "auc_lower",
    "auc_upper",
    "pr_auc",
    "tie_area_max",
    "p_vs_best_baseline",
    "best_baseline",
    "n_nan_cells",
    "seconds",
]


def data_dir() -> Path:
    """The Babbitt folder of ``$XPROSPECT_DATA`` or of ``../shared/data`` beside the checkout."""
    root = os.environ.get("XPROSPECT_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "data"
    return base / "babbitt_cuni_drillholes"


def composites(d: Path):
    """Babbitt's 50 ft composites of Cu, Ni and S (positions in ftUS, EPSG:26791)."""
    holes = read_drillholes(
        d / "collar_BABBITT.csv",
        d / "survey_BABBITT.csv",
        d / "assay_BABBITT.csv",
        crs="EPSG:26791",
        length_unit="ftUS",
        assay_units="pct",
        elements=["CU", "NI", "S"],
    )
    return xp.composite(holes, length=50 * FT)


def wireframe_labels(comp, d: Path) -> np.ndarray:
    """Per composite: inside ``Mpz.stl``, tested at its voxel of a 25 x 50 x 50 ft grid."""
    fine = xp.make_voxels(like=comp, resolution=(25.0, 50.0, 50.0))
    mesh = read_mesh(d / "Mpz.stl", crs="EPSG:26791")
    inside = np.asarray(inside_mesh(fine, mesh, repair=True).values, dtype=bool)  # 3 open edges
    idx, ok = points_to_index(as_points(comp, like=fine), fine)
    labels = np.zeros(comp.sizes["sample"], dtype=bool)
    labels[ok] = inside[tuple(idx[ok].T)]
    return labels


def labels_of(comp, spec: str, d: Path) -> np.ndarray:
    """``"mpz"`` (inside the wireframe) or ``"<element>:<cut-off>"`` (own assay, wt %)."""
    if spec == "mpz":
        return wireframe_labels(comp, d)
    element, cutoff = spec.split(":")
    values = np.asarray(comp[element].values, dtype="float64")
    return np.nan_to_num(values, nan=-np.inf) >= float(cutoff)


def main(
    methods: list[str],
    *,
    labels: str = "mpz",
    max_distance: float = 800.0,
    detector_seeds: int = 5,
    controls: int = 0,
    cnn_ensemble: int = 1,
    training_features: str = "block_model",
    scores_csv: str | None = None,
) -> None:
    """Run the harness on Babbitt and print its tables."""
    import torch  # lazy: the deep methods' thread count

    torch.set_num_threads(1)
    t0 = time.time()
    d = data_dir()
    comp = composites(d)
    y = labels_of(comp, labels, d)
    print(f"{comp.sizes['sample']} composites, {y.mean():.1%} labelled {labels}")
    b = xp.benchmark3d(
        comp,
        y,
        elements=ELEMENTS,
        methods=methods,
        n_folds=4,
        block_size=820.0,
        buffer=130.0,
        resolution=(100.0, 200.0, 200.0),
        idw={"k": 12, "anisotropy": {"ranges": (600.0, 600.0, 200.0), "azimuth": 0.0, "dip": 0.0}},
        max_distance=max_distance,
        widths=(9, 6, 3),
        detector_training={
            "epochs": 10,
            "tiles_per_epoch": 64,
            "batch_size": 16,
            "seeds": detector_seeds if detector_seeds > 1 else None,
        },
        cnn_training={"ensemble": cnn_ensemble},
        training_features=training_features,
        seed=0,
        controls=controls,
    )
    pd.set_option("display.width", 250)
    print(b.folds.to_string())
    extra = ["control_auc", "control_p"] if b.controls is not None else []
    print(b.table[COLUMNS + extra].round(3).to_string())
    keys = ("tile", "min_valid", "tile_positions")
    for name, reps in b.reports.items():
        if reps:
            print(name, [tuple(r.get(k, "skipped") for k in keys) for r in reps])
    if scores_csv:
        b.scores.to_csv(scores_csv, index=False)
    print(f"labels {labels}, max_distance {max_distance} ft, total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("methods", nargs="?", default=",".join(METHODS), help="comma-separated")
    cli.add_argument("--labels", default="mpz", help="'mpz' or '<element>:<cut-off %%>'")
    cli.add_argument("--max-distance", type=float, default=800.0, help="block-model mask, ft")
    cli.add_argument("--detector-seeds", type=int, default=5, help="DAE/STOAD ensemble size")
    cli.add_argument("--controls", type=int, default=0, help="shifted-label control draws")
    cli.add_argument("--cnn-ensemble", type=int, default=1, help="cnn3d seed-ensemble size")
    cli.add_argument(
        "--training-features", default="block_model", help="block_model or leave_holes_out"
    )
    cli.add_argument("--scores-csv", default=None, help="per-composite scores")
    a = cli.parse_args()
    main(
        a.methods.split(","),
        labels=a.labels,
        max_distance=a.max_distance,
        detector_seeds=a.detector_seeds,
        controls=a.controls,
        cnn_ensemble=a.cnn_ensemble,
        training_features=a.training_features,
        scores_csv=a.scores_csv,
    )
