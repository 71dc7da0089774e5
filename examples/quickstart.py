"""Quick start: grid a synthetic survey, log-ratio transform it and write it to zarr and GeoTIFF.

Run: python examples/quickstart.py OUT_FOLDER  (default: ./quickstart-out)
"""

import sys
from pathlib import Path

import xprospect as xp

out = Path(sys.argv[1] if len(sys.argv) > 1 else "quickstart-out")
out.mkdir(parents=True, exist_ok=True)

world = xp.synthetic.survey(seed=0, n_samples=2000)
samples = world.samples  # xr.Dataset, dim "sample", one variable per element, CRS EPSG:32750
grid = xp.make_grid(like=samples, resolution=250, pad=1000, chunks=256)
maps = samples.prospect.idw(like=grid, k=12, power=2)  # lazy: one dask task per chunk
maps = maps.prospect.transform("clr").prospect.zscore()
maps.prospect.to_zarr(out / "maps.zarr", mode="w")
maps.prospect.to_geotiff(out / "maps.tif", multiband=True, overwrite=True)
print(xp.open_zarr(out / "maps.zarr"))
