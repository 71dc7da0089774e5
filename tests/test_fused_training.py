"""Training at the machine's rate: the fused VAE step and oneDNN convolutions compute what
the plain autograd / torch paths compute (up to float32 rounding), and a fit stays bitwise
reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

torch = pytest.importorskip("torch")

import xprospect.models.autoencoder as autoencoder  # noqa: E402
from xprospect.models import VAE, ConvAutoencoder  # noqa: E402
from xprospect.train.anomaly import fit_anomaly  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _autograd_loss(model: VAE, x):
    recon, mu, logvar = model(x)
    rec = ((recon - x) ** 2).sum(dim=-1).mean()
    return rec + model.kl_weight * model.kl_divergence(mu, logvar).mean()


@pytest.mark.parametrize("activation", ["relu", "elu", "leaky_relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("n", [7, 3000])  # one block, and several blocks of the fused pass
def test_fused_vae_step_matches_autograd(activation, n):
    torch.manual_seed(0)
    model = VAE(6, hidden=(24, 12), latent=3, kl_weight=0.7, activation=activation)
    model.train()
    x = torch.randn(n, 6)
    torch.manual_seed(1)
    fused, parts = model.loss(x)
    (2.5 * fused).backward()  # a scaled loss: the backward applies the chain rule
    g_fused = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the same draws of the code
    plain = _autograd_loss(model, x)
    (2.5 * plain).backward()
    assert float(fused.detach()) == pytest.approx(float(plain.detach()), rel=1e-5)
    assert float(parts["recon"] + model.kl_weight * parts["kl"]) == pytest.approx(
        float(plain), rel=1e-5
    )
    for a, p in zip(g_fused, model.parameters(), strict=True):
        assert a.shape == p.shape
        torch.testing.assert_close(a, p.grad, rtol=1e-4, atol=1e-6 * float(p.grad.abs().max()))


def test_fused_vae_step_only_in_training_with_gradients():
    model = VAE(4)
    x = torch.randn(5, 4)
    model.eval()
    loss, _ = model.loss(x)
    assert loss.grad_fn is not None and "Fused" not in type(loss.grad_fn).__name__
    model.train()
    with torch.no_grad():
        assert model.loss(x)[0].grad_fn is None
    assert "Fused" in type(model.loss(x)[0].grad_fn).__name__
    model.fused_step = False
    assert "Fused" not in type(model.loss(x)[0].grad_fn).__name__


def _stack(n=48, c=4, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((c, n, n)).astype("float32")
    return xr.DataArray(
        data,
        dims=("element", "y", "x"),
        coords={
            "element": [f"E{i}" for i in range(c)],
            "y": np.arange(n)[::-1] * 10.0 + 5,
            "x": np.arange(n) * 10.0 + 5,
        },
    )


def test_vae_fit_fused_same_seed_same_bits_and_close_to_autograd():
    stack = _stack()

    def fit(fused: bool):
        model = VAE(4, hidden=(8, 4), latent=2)
        model.fused_step = fused
        return fit_anomaly(model, stack, epochs=3, batch_size=64, seed=0, device="cpu").model

    a, b, ref = fit(True), fit(True), fit(False)
    for (k, va), vb, vr in zip(
        a.state_dict().items(), b.state_dict().values(), ref.state_dict().values(), strict=True
    ):
        assert torch.equal(va, vb), k  # same seed -> the same bits
        torch.testing.assert_close(va, vr, rtol=1e-3, atol=1e-4)  # the autograd fit, rounded


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
        losses.append((float(loss), [p.grad.clone() for p in model.parameters()]))
    assert losses[0][0] == pytest.approx(losses[1][0], rel=1e-5)
    for a, b in zip(losses[0][1], losses[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
