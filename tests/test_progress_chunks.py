"""Chunk progress bars: gridding through map_cells, training epochs; shown on a TTY only."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

import xprospect as xp
from xprospect._dask import map_cells
from xprospect._progress import ChunkProgress
from xprospect.exceptions import DataError


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def fake_tty(monkeypatch):
    """Make sys.stderr a terminal (inside the test: pytest resets it between phases)."""
    out = _Tty()
    monkeypatch.setattr(sys, "stderr", out)
    return out


def test_grid_idw_shows_chunks_done_on_a_terminal_only(monkeypatch):
    tty = fake_tty(monkeypatch)
    w = xp.synthetic.survey(seed=0, n_samples=40, elements=["Au"])
    like = xp.make_grid(like=w.samples, resolution=2000, chunks=10)
    maps = xp.grid_idw(w.samples, like=like)
    total = len(maps.chunks["y"]) * len(maps.chunks["x"])
    maps.compute()
    text = tty.getvalue()
    assert f"{total}/{total}" in text and "grid IDW" in text and "chunk" in text
    tty.seek(0)
    tty.truncate()
    xp.grid_idw(w.samples, like=like, progress=False).compute()
    assert tty.getvalue() == ""
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    xp.grid_idw(w.samples, like=like).compute()  # auto: not a terminal
    assert pipe.getvalue() == ""


def test_map_cells_bar_counts_every_chunk_once_per_compute(monkeypatch):
    tty = fake_tty(monkeypatch)
    grid = xp.make_grid((0, 0, 400, 300), resolution=100, crs="EPSG:28350")

    def east(block):
        return np.broadcast_to(block.coords[1], block.shape).copy()

    data, _ = map_cells(
        grid.chunk({"x": 2, "y": 2}), east, dtype="float64", progress=True, desc="east"
    )
    data.compute()
    data.compute()  # a second compute draws a second full bar
    assert tty.getvalue().count("4/4") >= 2 and "east" in tty.getvalue()
    with pytest.raises(DataError, match="progress="):
        ChunkProgress(3, "x", "yes", "k")  # type: ignore[arg-type]


def test_training_epochs_bar_follows_the_policy(monkeypatch):
    tty = fake_tty(monkeypatch)
    torch = pytest.importorskip("torch")
    from xprospect.train import _loop
    from xprospect.train.recipes import get_recipe

    model = torch.nn.Linear(2, 1)
    x = torch.randn(8, 2)

    def loss(batch):
        return model(batch).pow(2).mean(), len(batch)

    _loop.train_epochs(
        model,
        model.parameters(),
        get_recipe("adam"),
        epochs=3,
        batches=lambda e: [x],
        batch_loss=loss,
        desc="fit",
        progress=None,
    )
    assert "/3 [" in tty.getvalue() and "fit" in tty.getvalue()  # epochs done / total, ETA
    tty.seek(0)
    tty.truncate()
    _loop.train_epochs(
        model,
        model.parameters(),
        get_recipe("adam"),
        epochs=3,
        batches=lambda e: [x],
        batch_loss=loss,
        desc="fit",
        progress=False,
    )
    assert tty.getvalue() == ""
