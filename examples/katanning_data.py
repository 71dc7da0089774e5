"""The Katanning (WA) survey as the Katanning examples read and grid it.

One home for what ``katanning_cnn.py``, ``katanning_benchmark.py`` and
``katanning_anomaly.py`` share: the de-duplicated GSWA stream-sediment samples
(``area1_sediment_au_dedup.csv``, lon/lat reprojected to MGA zone 50, EPSG:28350) and the 32
MINEDEX gold sites (``area1_sediment_au_site.csv``) of ``wa_katanning_stream_sediment_au`` in
the data folder, and the gridding: IDW at 1 km (k = 12, nothing beyond 5 km of a sample),
then clr and z-scores. Each example chooses its own elements.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import xarray as xr

import xprospect as xp

FOLDER = "wa_katanning_stream_sediment_au"
CRS = "EPSG:28350"  # GDA94 / MGA zone 50
RESOLUTION = 1000.0
RADIUS = 5000.0


def read(data_dir: Path, elements: Sequence[str]) -> tuple[xr.Dataset, xr.Dataset]:
    """Return the samples (``elements``, read from their ``<element>_ppm`` columns) and the
    32 gold sites, both in EPSG:28350."""
    folder = Path(data_dir) / FOLDER
    samples = xp.read_samples(
        folder / "area1_sediment_au_dedup.csv",
        x="X",
        y="Y",
        crs="EPSG:4326",
        to_crs=CRS,
        elements=[f"{e}_ppm" for e in elements],
    )
    sites = xp.read_points(
        folder / "area1_sediment_au_site.csv",
        x="X",
        y="Y",
        crs="EPSG:4326",
        to_crs=CRS,
        id="SITE_CODE",
    )
    return samples, sites


def grid(samples: xr.Dataset, elements: Sequence[str]) -> xr.Dataset:
    """Grid ``elements`` of the samples at 1 km by IDW, then clr and z-scores (computed)."""
    elements = list(elements)
    like = xp.make_grid(like=samples, resolution=RESOLUTION, pad=2 * RESOLUTION)
    maps = samples.prospect.idw(like=like, k=12, radius=RADIUS, elements=elements)
    return maps.prospect.clr(elements=elements).prospect.transform("zscore").load()
