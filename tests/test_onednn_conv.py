"""Training at the machine's rate: the oneDNN 3-D convolutions (forward and the hand-made
backward of a batch-of-one tile) compute what torch's own convolutions compute, up to float32
rounding."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import xprospect.models.autoencoder as autoencoder  # noqa: E402
from xprospect.models import ConvAutoencoder  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("padding", [0, 1])
def test_onednn_conv_matches_torch_convolution_and_gradients(ndim, padding):
    torch.manual_seed(0)
    x = torch.randn((1, 3) + (9,) * ndim, requires_grad=True)
    w = torch.randn((4, 3) + (3,) * ndim, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    fn = torch.nn.functional.conv2d if ndim == 2 else torch.nn.functional.conv3d
    ours = autoencoder._OneDNNConv.apply(x, w, b, padding)  # what conv_nd runs on a 3-D tile
    (ours * ours).sum().backward()
    gx, gw, gb = x.grad.clone(), w.grad.clone(), b.grad.clone()
    x.grad = w.grad = b.grad = None
    ref = fn(x, w, b, padding=padding)
    (ref * ref).sum().backward()
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gx, x.grad, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(gw, w.grad, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(gb, b.grad, rtol=1e-4, atol=1e-3)


def test_autoencoder_loss_same_with_and_without_onednn(monkeypatch):
    torch.manual_seed(0)
    model = ConvAutoencoder(3, ndim=3, widths=(6, 4, 2))
    x = torch.randn(1, 3, 16, 16, 16)
    x[:, :, :4] = float("nan")  # partial convolutions too
    losses = []
    for flag in (True, False):
        monkeypatch.setattr(autoencoder, "MKLDNN_ON_CPU", flag)
        model.zero_grad(set_to_none=True)
        loss = model.loss(x)[0]
        loss.backward()
        losses.append((float(loss.detach()), [p.grad.clone() for p in model.parameters()]))
    assert losses[0][0] == pytest.approx(losses[1][0], rel=1e-5)
    for a, b in zip(losses[0][1], losses[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
