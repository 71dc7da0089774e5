"""The progress policy: a bar when forced or on a terminal, silence otherwise."""

from __future__ import annotations

import io

import pytest

import xprospect as xp
from xprospect._progress import progress_bar, wants_progress
from xprospect.exceptions import DataError


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_policy():
    assert wants_progress(True, io.StringIO())
    assert not wants_progress(False, _Tty())
    assert wants_progress(None, _Tty())  # auto: a terminal
    assert not wants_progress(None, io.StringIO())  # auto: a pipe or log
    with pytest.raises(DataError, match="progress="):
        wants_progress("yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("progress", "stream", "shown"),
    [
        (True, io.StringIO, True),
        (None, _Tty, True),
        (False, _Tty, False),
        (None, io.StringIO, False),
    ],
)
def test_bar_output(progress, stream, shown):
    out = stream()
    with progress_bar(4, desc="chunks", progress=progress, file=out) as bar:
        for _ in range(4):
            bar.update(1)
    text = out.getvalue()
    assert ("4/4" in text and "chunks" in text) is shown
    assert (text != "") is shown


def test_to_zarr_shows_chunks_written(tmp_path, capsys):
    w = xp.synthetic.survey(seed=0, n_samples=40, elements=["Au"])
    maps = xp.grid_idw(w.samples, like=xp.make_grid(like=w.samples, resolution=2000, chunks=10))
    total = len(maps.chunks["y"]) * len(maps.chunks["x"])
    xp.to_zarr(maps, tmp_path / "a.zarr", progress=True)
    err = capsys.readouterr().err
    assert f"{total}/{total}" in err and "to_zarr a.zarr" in err and "chunk" in err
    xp.to_zarr(maps, tmp_path / "b.zarr", progress=False)
    assert capsys.readouterr().err == ""
    xp.to_zarr(maps, tmp_path / "c.zarr")  # auto: pytest's captured stderr is not a terminal
    assert capsys.readouterr().err == ""
