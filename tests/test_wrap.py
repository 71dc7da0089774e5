"""Bring your own model: plain torch modules through ``xp.models.wrap`` (issue 12, part 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import xprospect as xp
from xprospect.exceptions import ModelCardError, XProspectError
from xprospect.train import fit, load_checkpoint, save_checkpoint

ELEMENTS = ["Au", "As", "Cu"]
WINDOW = 9


class WindowNet(nn.Module):
    """A user's window classifier: (B, C, w, w) -> (B, 2) logits."""

    def __init__(self, in_channels: int = 3, hidden: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return self.head(h)


class DenseNet(nn.Module):
    """A user's fully convolutional net: (B, C, H, W) -> (B, 2, H, W), receptive half-width 2."""

    def __init__(self, in_channels: int = 3, hidden: int = 8) -> None:
        super().__init__()
        self.a = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.b = nn.Conv2d(hidden, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


@pytest.fixture(scope="module")
def data():
    world = xp.synthetic.survey(seed=3, n_samples=600, n_deposits=12, elements=ELEMENTS)
    grid = xp.make_grid(like=world.samples, resolution=1000.0)
    maps = xp.grid_idw(world.samples, like=grid, k=8).prospect.log10().prospect.zscore()
    stack = maps.prospect.stack(ELEMENTS)
    patches = stack.prospect.patches(
        positives=world.deposits, negatives=60, size=WINDOW, jitter=2, n_per_positive=3, seed=0
    )
    return stack, patches


def _fit(model, patches):
    return fit(model, patches, recipe="adam", epochs=3, device="cpu", progress=False, seed=0)


def test_a_plain_module_is_told_to_wrap(data, tmp_path):
    stack, patches = data
    with pytest.raises(ModelCardError, match=r"plain torch\.nn\.Module; wrap it"):
        xp.score.score(stack, WindowNet(), device="cpu", window=WINDOW, allow_no_card=True)
    with pytest.raises(ModelCardError, match="wrap it"):
        _fit(WindowNet(), patches)
    with pytest.raises(ModelCardError, match="wrap it"):
        save_checkpoint(WindowNet(), tmp_path / "plain.pt")
    with pytest.raises(XProspectError, match="window="):
        xp.models.wrap(WindowNet(), kind="window")
    with pytest.raises(XProspectError, match="context="):
        xp.models.wrap(DenseNet(), kind="dense")
    with pytest.raises(XProspectError, match="kind="):
        xp.models.wrap(DenseNet(), kind="pixel")


@pytest.mark.parametrize("kind", ["window", "dense"])
def test_wrapped_module_trains_scores_checkpoints_and_reloads(data, kind, tmp_path):
    stack, patches = data
    torch.manual_seed(0)
    if kind == "window":
        model = xp.models.wrap(
            WindowNet(hidden=8), kind="window", window=WINDOW, module_kwargs={"hidden": 8}
        )
    else:
        model = xp.models.wrap(
            DenseNet(hidden=8), kind="dense", context=2, window=WINDOW, module_kwargs={"hidden": 8}
        )
    res = _fit(model, patches)
    assert np.isfinite(res.history["loss"]).all()
    assert res.model.card["elements"] == ELEMENTS
    opts = {"stride": 3} if kind == "window" else {}  # window by window: a coarser stride
    out = xp.score.score(stack, res.model, device="cpu", **opts).values
    assert out.shape == (stack.sizes["y"], stack.sizes["x"])
    finite = out[np.isfinite(out)]
    assert finite.size and ((finite >= 0) & (finite <= 1)).all()
    if kind == "dense":  # a dense pass gives what the window centred on each cell gives
        by_windows = xp.score.score(stack, res.model, device="cpu", method="windows").values
        np.testing.assert_allclose(out, by_windows, atol=1e-5, equal_nan=True)
    path = save_checkpoint(res, tmp_path / f"{kind}.pt")
    raw = torch.load(path, weights_only=True)  # weights and JSON only: no pickled class
    want = f"{__name__}:{'WindowNet' if kind == 'window' else 'DenseNet'}"
    assert raw["config"]["kwargs"]["module_class"] == want
    with pytest.raises(ModelCardError, match="allow="):
        load_checkpoint(path)  # the class is never imported from the file
    with pytest.raises(ModelCardError, match="allow="):
        load_checkpoint(path, allow=[WindowNet if kind == "dense" else DenseNet])
    back = load_checkpoint(path, allow=[WindowNet, DenseNet])
    assert back.card == res.model.card and back.kind == kind
    again = xp.score.score(stack, back, device="cpu", **opts).values
    np.testing.assert_array_equal(again, out)


def test_probability_outputs_and_positive_class():
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 5 * 5, 2), nn.Softmax(dim=1))
    m = xp.models.wrap(net, kind="window", window=5, output="probabilities")
    x = torch.randn(6, 3, 5, 5)
    p = net(x)
    torch.testing.assert_close(m.score_windows(x), p[:, 1])
    torch.testing.assert_close(torch.softmax(m(x), dim=1), p)  # logits for the loss
    m0 = xp.models.wrap(net, kind="window", window=5, output="probabilities", positive_class=0)
    torch.testing.assert_close(m0.score_windows(x), p[:, 0])
