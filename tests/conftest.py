"""Shared fixtures: the synthetic world, real data location, dask clusters."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

import xprospect as xp


def _data_dir() -> Path | None:
    env = os.environ.get("XPROSPECT_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module, so tests run the examples and they never rot."""
    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
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
