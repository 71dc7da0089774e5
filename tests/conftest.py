"""Shared fixtures: the synthetic world, real data location, backends and data on them."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import xarray as xr

import xprospect as xp

# Dense scoring across dask chunkings agrees within this share of max(1, max |score|), not bit
# for bit (docs/conventions.md, "Randomness and determinism"): oneDNN picks its convolution
# kernel, and so its summation order, by input shape. On one machine the maps came out bitwise
# equal; on an AVX-512/AMX Xeon an autoencoder's map (scores up to 17) moved by 4.8e-5 between
# chunkings, 2.8e-6 of its largest score (bitwise again with torch.backends.mkldnn off).
CHUNK_RTOL = 1e-5


def assert_chunkings_agree(actual, desired) -> None:
    """Assert two dense scorings of one stack agree as chunkings do: same NaN cells, values
    within ``CHUNK_RTOL x max(1, max |desired|)``."""
    a = np.asarray(getattr(actual, "values", actual))
    d = np.asarray(getattr(desired, "values", desired))
    assert a.shape == d.shape, (a.shape, d.shape)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(d))
    if np.isnan(d).all():
        return
    bound = CHUNK_RTOL * max(1.0, float(np.nanmax(np.abs(d))))
    gap = float(np.nanmax(np.abs(a - d)))
    assert gap <= bound, f"chunkings differ by {gap:.3g} > {bound:.3g}"


def _data_dir() -> Path | None:
    env = os.environ.get("XPROSPECT_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module, so tests run the examples and they never rot.

    ``examples/`` goes on ``sys.path`` as a script run would put it, so that an example finds
    the modules beside it (``katanning_data.py``).
    """
    folder = Path(__file__).resolve().parents[1] / "examples"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    path = folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder of the real surveys; tests using it skip when it is absent."""
    d = _data_dir()
    if d is None:
        pytest.skip("real data not found: set $XPROSPECT_DATA or place shared/data beside the repo")
    return d


@pytest.fixture(scope="session")
def world():
    """A small synthetic world shared by many tests (do not modify it)."""
    return xp.synthetic.survey(seed=0, n_samples=400)


@pytest.fixture(params=["numpy", "dask"])
def backend(request) -> str:
    """Run a test on in-memory numpy data and on dask with uneven chunks."""
    return request.param


#: Dask chunks of the ``backend`` fixture: uneven (they divide no test grid side), so every
#: dask test meets partial edge chunks.
UNEVEN_CHUNKS = {"z": 3, "y": 5, "x": 7, "sample": 37, "point": 11}


@pytest.fixture
def to_backend(backend) -> Callable[..., xr.Dataset | xr.DataArray]:
    """Return ``convert(obj, chunks=None)``: ``obj`` as is on numpy, chunked on dask.

    Without ``chunks``, the dims of ``obj`` found in :data:`UNEVEN_CHUNKS` are chunked.
    """

    def convert(obj, chunks=None):
        if backend == "numpy":
            return obj
        spec = chunks or {d: c for d, c in UNEVEN_CHUNKS.items() if d in obj.dims}
        return obj.chunk(spec)

    return convert


@pytest.fixture(scope="session")
def world_maps(world) -> xr.Dataset:
    """IDW maps (1 km cells) of the shared world, in memory (do not modify them)."""
    grid = xp.make_grid(like=world.samples, resolution=1000.0)
    return world.samples.prospect.idw(like=grid, k=8).compute()


@pytest.fixture
def world_stack(world_maps, to_backend) -> xr.DataArray:
    """An (element, y, x) stack of Au, Cu and As on the ``backend`` (dask: uneven chunks)."""
    return to_backend(world_maps).prospect.stack(["Au", "Cu", "As"])


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread (the machine is shared; tiny nets gain nothing).

    Modules of tiny networks use it for every test:
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    torch = pytest.importorskip("torch")  # lazy: only the torch test modules ask for it
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
