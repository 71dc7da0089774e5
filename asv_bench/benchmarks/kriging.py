"""Ordinary kriging (``xprospect.grid.kriging``) side by side with PyKrige.

The case the issue names: 10,000 samples x 4 elements of the synthetic survey onto a
1024 x 1024 grid, 16 nearest samples per cell, a spherical variogram fitted per element
by xprospect and handed to both packages, float64 output. The peer is PyKrige's
``OrdinaryKriging(...).execute("grid", ..., backend="C", n_closest_points=16)``, once
per element (PyKrige krige one variable at a time). ``agreement`` checks that both
give the same map to 1e-6 relative.

A standalone run of the bodies (warm JIT, wall time, the ratio and the agreement)::

    PYTHONPATH=. python asv_bench/benchmarks/kriging.py [size] [n_samples]
"""

from __future__ import annotations

import sys
import time
from typing import ClassVar

import numpy as np
import xarray as xr

import xprospect as xp
from xprospect.grid import OrdinaryKriging

K = 16
N_SAMPLES = 10_000
ELEMENTS = ["Au", "Cu", "As", "Sb"]
MODEL = "spherical"


def survey(n_samples: int = N_SAMPLES) -> xp.synthetic.SyntheticWorld:
    """The synthetic survey with four elements."""
    return xp.synthetic.survey(seed=0, n_samples=n_samples, elements=ELEMENTS)


def grid(world, size: int, chunks=None) -> xr.Dataset:
    """A ``size`` x ``size`` template over the survey."""
    width = world.bounds[2] - world.bounds[0]
    return xp.make_grid(world.bounds, resolution=width / size, crs=world.crs, chunks=chunks)


def fitted_parameters(samples: xr.Dataset) -> dict[str, dict[str, float]]:
    """The spherical variogram xprospect fits per element (given to both packages)."""
    ok = OrdinaryKriging(variogram_model=MODEL, k=K).fit(samples)
    return {
        n: {p: float(v[p]) for p in ("psill", "range", "nugget")} for n, v in ok.variograms_.items()
    }


def krige_xprospect(samples: xr.Dataset, like: xr.Dataset, params) -> xr.Dataset:
    """``xp.grid_kriging`` with the given variograms, float64, computed."""
    out = xp.grid_kriging(
        samples, like=like, variogram_model=MODEL, variogram_parameters=params, k=K, dtype="float64"
    )
    return out.compute(scheduler="threads")


def krige_pykrige(samples: xr.Dataset, like: xr.Dataset, params) -> dict[str, np.ndarray]:
    """Peer: PyKrige's C backend with the 16 closest points, one element at a time.

    Returns per element (estimate, variance) on the template's (y, x) order.
    """
    from pykrige.ok import OrdinaryKriging as PyKrigeOK  # the peer, only for the bench

    x = samples["x"].values.astype("float64")
    y = samples["y"].values.astype("float64")
    gx = like["x"].values.astype("float64")
    gy = like["y"].values.astype("float64")
    flip = gy.size > 1 and gy[0] > gy[-1]
    out = {}
    for n in ELEMENTS:
        ok = PyKrigeOK(
            x,
            y,
            samples[n].values.astype("float64"),
            variogram_model=MODEL,
            variogram_parameters=params[n],
            enable_plotting=False,
        )
        z, ss = ok.execute("grid", gx, gy[::-1] if flip else gy, backend="C", n_closest_points=K)
        z, ss = np.asarray(z), np.asarray(ss)
        out[n] = (z[::-1] if flip else z, ss[::-1] if flip else ss)
    return out


def agreement(ours: xr.Dataset, peer: dict[str, np.ndarray]) -> float:
    """Largest relative difference of estimates and variances (scaled by each map's range)."""
    worst = 0.0
    for n, (z, ss) in peer.items():
        for mine, theirs in ((ours[n].values, z), (ours[f"{n}_variance"].values, ss)):
            scale = max(float(np.nanmax(np.abs(theirs))), 1e-300)
            worst = max(worst, float(np.nanmax(np.abs(mine - theirs))) / scale)
    return worst


_WARM = False


def warm_jit() -> None:
    """Compile (or load from cache) the kriging kernels once (numpy and dask paths)."""
    global _WARM
    if _WARM:
        return
    world = survey(200)
    params = fitted_parameters(world.samples)
    krige_xprospect(world.samples, grid(world, 8), params)
    krige_xprospect(world.samples, grid(world, 8, chunks=4), params)
    _WARM = True


class Kriging2D:
    """``grid_kriging`` of 10,000 samples x 4 elements onto size^2, 16 neighbours."""

    params: ClassVar[list[int]] = [1024]
    param_names: ClassVar[list[str]] = ["size"]
    n_samples = N_SAMPLES
    chunks: int | None = None
    number = 1
    repeat = (1, 3, 120.0)
    timeout = 900

    def setup(self, size):
        warm_jit()
        world = survey(self.n_samples)
        self.samples = world.samples
        self.like = grid(world, size, self.chunks)
        self.vparams = fitted_parameters(self.samples)

    def time_grid_kriging(self, size):
        krige_xprospect(self.samples, self.like, self.vparams)

    def time_fit_and_grid_kriging(self, size):
        out = xp.grid_kriging(self.samples, like=self.like, variogram_model=MODEL, k=K)
        out.compute(scheduler="threads")


class Kriging2DDask(Kriging2D):
    """The same on a template chunked 256 x 256, computed with the threaded scheduler."""

    chunks = 256


class Kriging2DPeers:
    """PyKrige on the same case (C backend, 16 closest points, the same variograms)."""

    params: ClassVar[list[int]] = [1024]
    param_names: ClassVar[list[str]] = ["size"]
    n_samples = N_SAMPLES
    number = 1
    repeat = (1, 1, 600.0)
    timeout = 1800

    def setup(self, size):
        world = survey(self.n_samples)
        self.samples = world.samples
        self.like = grid(world, size)
        self.vparams = fitted_parameters(self.samples)

    def time_pykrige(self, size):
        krige_pykrige(self.samples, self.like, self.vparams)


def main(size: int = 1024, n_samples: int = N_SAMPLES) -> None:
    """Time both side by side once (after warming the JIT) and print ratio and agreement."""
    warm_jit()
    world = survey(n_samples)
    like = grid(world, size)
    params = fitted_parameters(world.samples)
    t0 = time.perf_counter()
    ours = krige_xprospect(world.samples, like, params)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    peer = krige_pykrige(world.samples, like, params)
    t_peer = time.perf_counter() - t0
    print(f"{n_samples} samples x {len(ELEMENTS)} elements onto {size}^2, k={K}")
    print(
        f"xprospect {t_ours:.2f} s, PyKrige (C, n_closest_points={K}) {t_peer:.2f} s, "
        f"ratio {t_peer / t_ours:.1f}x"
    )
    print(f"max relative difference {agreement(ours, peer):.2e}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
