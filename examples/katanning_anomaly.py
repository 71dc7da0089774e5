"""Unsupervised anomaly maps on real stream sediments: Katanning (WA), 32 MINEDEX gold sites.

Run with the data folder of the project::

    XPROSPECT_DATA=../shared/data python examples/katanning_anomaly.py

What it does, step by step:

1. reads the de-duplicated GSWA stream-sediment samples (``area1_sediment_au_dedup.csv``:
   lon/lat, reprojected to MGA zone 50, EPSG:28350) and the 32 MINEDEX gold sites;
2. grids eight elements analysed in >= 92 % of the samples (Au, As, Cu, Pb, Zn, Ni, Co, Fe),
   chosen before looking at any result, by IDW at 1 km (k = 12, nothing beyond 5 km of a
   sample), then clr and z-score;
3. fits the five detectors of the anomaly issue. "Normal" ground for the unsupervised ones
   (VAE per cell, DAE, STOAD's student, GMM) is every cell farther than 3 km from a known
   site (the sites are only kept out of training, never used as positives);
4. MaxEnt needs presences: it is fitted on the sites, so its AUC on those same sites is
   **in-sample** (labelled as such). Its honest figure is a 5-fold spatial block
   cross-validation (20 km blocks): each site is ranked, among the non-site cells, by the
   model fitted without its fold;
5. prints :func:`xprospect.evaluate.compare` against the sites, with the raw Au map as a
   single-element reference.

``python examples/katanning_anomaly.py samples`` instead judges per-sample detectors under
the sample-level protocol of the open geochemical anomaly benchmarks
(:func:`xprospect.harness.benchmark_samples`: each site takes its nearest sample's score,
negatives drawn from samples >= 5 km from every site, 20 draws). Settings fixed before any
result was seen: the four elements analysed in every sample (Au, As, Cu, Pb), log10 for the
forest and the VAE, ilr for the covariance-based GMM, neighbourhoods of the 8 nearest samples,
seed ensembles of 5. Detectors are fitted on all samples without labels. Twenty control
draws move the sites to random places of the sampled ground: each method's control AUC
(its null) and the permutation p of its real AUC against them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from katanning_data import FOLDER, RESOLUTION, grid, read

import xprospect as xp
from xprospect.baselines import GaussianMixtureDetector, MaxEntModel
from xprospect.evaluate import spatial_block_folds
from xprospect.evidence.background import normal_mask
from xprospect.models import VAE, ConvAutoencoder
from xprospect.points import distance_to_points
from xprospect.train.anomaly import fit_anomaly, fit_stoad

ELEMENTS = ["Au", "As", "Cu", "Pb", "Zn", "Ni", "Co", "Fe"]
BUFFER = 3000.0


def load(data_dir: Path) -> tuple[xr.DataArray, xr.Dataset]:
    """Return the (element, y, x) clr + z-scored stack and the 32 sites, in EPSG:28350."""
    samples, sites = read(data_dir, ELEMENTS)
    return grid(samples, ELEMENTS).prospect.stack(ELEMENTS), sites


def maxent_spatial_cv(
    stack, sites, *, n_folds: int = 5, block: float = 20_000.0, seed: int = 0
) -> float:
    """Pooled out-of-fold AUC of MaxEnt over spatial blocks of sites.

    Each site's cell is ranked against the negatives (finite cells farther than one cell
    diagonal from every site) by the model fitted on the other folds' sites; the AUC is the
    mean over sites of the fraction of negatives it outranks (ties count one half), which is
    the Mann-Whitney AUC with every site judged by a model that never saw it.
    """
    xy = np.column_stack([sites["x"].values, sites["y"].values])
    finite = np.isfinite(stack.values).all(axis=0)
    iy, ix = _cells(sites, stack)
    on_data = finite[iy, ix]
    dist = distance_to_points(sites, stack).values
    negatives = finite & (dist > RESOLUTION * np.sqrt(2))
    ranks = []
    for train, test in spatial_block_folds(xy, n_folds=n_folds, block_size=block, seed=seed):
        train = train[on_data[train]]
        test = test[on_data[test]]
        if len(test) == 0 or len(train) < 3:
            continue
        model = MaxEntModel(seed=seed).fit(stack, sites.isel(point=train))
        m = model.predict(stack).values
        neg = np.sort(m[negatives])
        for i in test:
            s = m[iy[i], ix[i]]
            below = np.searchsorted(neg, s, side="left")
            ties = np.searchsorted(neg, s, side="right") - below
            ranks.append((below + 0.5 * ties) / neg.size)
    return float(np.mean(ranks))


def _cells(sites, stack) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the cell holding each site (nearest cell centre)."""
    y, x = stack["y"].values, stack["x"].values
    iy = np.abs(y[None, :] - sites["y"].values[:, None]).argmin(axis=1)
    ix = np.abs(x[None, :] - sites["x"].values[:, None]).argmin(axis=1)
    return iy, ix


def run(
    data_dir: Path, *, epochs: int = 30, vae_epochs: int = 15, seed: int = 0, device: str = "cpu"
) -> tuple[pd.DataFrame, dict]:
    """Fit every detector, return the comparison table and the extra figures."""
    stack, sites = load(data_dir)
    normal = normal_mask(stack, mode="outside_buffer", deposits=sites, buffer=BUFFER)
    n = len(ELEMENTS)
    maps = {"Au (raw, clr)": stack.sel(element="Au", drop=True)}
    vae = fit_anomaly(
        VAE(n, hidden=(24, 12), latent=3),
        stack,
        normal=normal,
        epochs=vae_epochs,
        batch_size=64,
        seed=seed,
        device=device,
    )
    maps["VAE"] = stack.prospect.score(vae.model, device=device)
    small = (16, 8, 4)
    dae = fit_anomaly(
        ConvAutoencoder(n, widths=small),
        stack,
        normal=normal,
        epochs=epochs,
        seed=seed,
        device=device,
    )
    maps["DAE"] = stack.prospect.score(dae.model, device=device)
    stoad = fit_stoad(
        ConvAutoencoder(n, widths=small),
        stack,
        normal=normal,
        epochs=epochs,
        seed=seed,
        device=device,
    )
    maps["STOAD"] = stack.prospect.score(stoad.model, device=device)
    gmm = GaussianMixtureDetector(n_components=3, seed=seed, dependent="project")
    gmm = gmm.fit(stack, normal=normal)
    maps["GMM"] = gmm.predict(stack)
    maxent = MaxEntModel(seed=seed).fit(stack, sites)
    maps["MaxEnt (in-sample)"] = maxent.predict(stack)
    maps = {k: v.compute() for k, v in maps.items()}
    table = xp.evaluate.compare(maps, sites, seed=seed)
    extra = {
        "maxent_spatial_cv_auc": maxent_spatial_cv(stack, sites, seed=seed),
        "n_sites_on_data": int(table["n_deposits"].iloc[0]),
        "n_cells_finite": int(np.isfinite(stack.values).all(axis=0).sum()),
        "student_saw_site_buffer": bool((stoad.student_cells & ~normal).any()),
    }
    return table, extra


COMPLETE = ["Au", "As", "Cu", "Pb"]  # analysed in every one of the 866 samples


def sample_level(
    data_dir: Path, *, seed: int = 0, vae_epochs: int = 100, controls: int = 20
) -> pd.DataFrame:
    """The sample-level table: raw Au and per-sample detectors (see the module notes).

    ``controls`` sets of random sites of the sampled ground stand in for the 32 sites
    (:func:`xprospect.evaluate.control_sites`): each method's control AUC and permutation p.
    """
    from xprospect.harness import SampleMethod, benchmark_samples

    samples, sites = read(data_dir, COMPLETE)
    raw = samples[COMPLETE]
    logs = raw.prospect.log10(elements=COMPLETE)
    ilr = raw.prospect.ilr(elements=COMPLETE)
    table = xr.merge([logs, ilr])
    balances = [str(v) for v in ilr.data_vars]
    nb = {"k": 8}
    vae = {"epochs": vae_epochs, "batch_size": 64}
    methods = [
        "raw:Au",
        ("GMM (ilr)", SampleMethod("gmm", elements=balances)),
        ("GMM (ilr) + neighbours", SampleMethod("gmm", elements=balances, neighbourhood=nb)),
        ("iforest", SampleMethod("iforest", elements=COMPLETE, seeds=5)),
        (
            "iforest + neighbours",
            SampleMethod("iforest", elements=COMPLETE, seeds=5, neighbourhood=nb),
        ),
        ("VAE x5", SampleMethod("vae", elements=COMPLETE, seeds=5, fit_kwargs=vae)),
        (
            "VAE x5 + neighbours",
            SampleMethod("vae", elements=COMPLETE, seeds=5, neighbourhood=nb, fit_kwargs=vae),
        ),
    ]
    return benchmark_samples(
        table, sites, methods, seed=seed, min_dist=5000.0, n_draws=20, controls=controls
    )


def main() -> int:
    root = os.environ.get("XPROSPECT_DATA")
    if not root or not (Path(root) / FOLDER).is_dir():
        print(f"set XPROSPECT_DATA to the folder holding {FOLDER}/", file=sys.stderr)
        return 1
    if sys.argv[1:] == ["samples"]:
        t = time.perf_counter()
        table = sample_level(Path(root))
        cols = [
            "kind",
            "auc",
            "auc_std",
            "control_auc",
            "control_auc_sd",
            "control_p",
            "pool_auc",
            "pool_auc_lower",
            "pool_auc_upper",
            "p_vs_best_raw",
            "average_precision",
            "success_rate",
            "recall_top_n",
            "top_distance_mean",
            "n_deposits",
            "n_samples",
            "seconds",
        ]
        with pd.option_context(
            "display.width", 200, "display.max_columns", None, "display.precision", 3
        ):
            print(table[cols])
        print(f"{time.perf_counter() - t:.0f} s")
        return 0
    t = time.perf_counter()
    table, extra = run(Path(root))
    cols = ["auc", "auc_lower", "auc_upper", "success_rate_auc", "n_deposits", "n_negatives"]
    with pd.option_context(
        "display.width", 160, "display.max_columns", None, "display.precision", 3
    ):
        print(table[cols])
    print(
        f"MaxEnt, 5-fold spatial block CV (20 km blocks), out-of-fold AUC: "
        f"{extra['maxent_spatial_cv_auc']:.3f}"
    )
    print(
        f"{extra['n_sites_on_data']} of 32 sites lie on gridded cells "
        f"({extra['n_cells_finite']} finite cells); {time.perf_counter() - t:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
