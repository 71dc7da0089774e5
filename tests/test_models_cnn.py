"""Supervised classifiers (ResNets, SmallCNN) and the transfer-learning helpers: CPU contracts."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

import xprospect as xp
from xprospect.models import (
    ResNet,
    SmallCNN,
    adapt_first_conv,
    cnn3d,
    freeze,
    load_compatible_state_dict,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    small_cnn,
    unfreeze,
)
from xprospect.models._dense import box_mean, conv_bn_relu, conv_bn_relu_linear
from xprospect.models.base import ProspectModel
from xprospect.models.registry import available, create, from_config
from xprospect.models.weights import first_conv_name


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def dense_equals_windows(net, spatial, window):
    """Assert a float64 eval net's dense pass equals its window-by-window pass on a random
    input of 3 channels; returns the input and the per-window scores."""
    x = torch.randn(1, 3, *spatial, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        dense = net.score_dense(x)[0]
        wins, out = all_windows(x, window)
        per_window = net.score_windows(wins).reshape(out)
    assert dense.shape == tuple(out)
    np.testing.assert_allclose(dense.numpy(), per_window.numpy(), rtol=0, atol=1e-12)
    return x, per_window


def all_windows(x, w):
    """Every stride-1 window of ``x`` (1, C, *spatial), in C order of their corner."""
    spatial = x.shape[2:]
    out = [s - w + 1 for s in spatial]
    wins = []
    for idx in np.ndindex(*out):
        sl = tuple(slice(i, i + w) for i in idx)
        wins.append(x[(0, slice(None), *sl)])
    return torch.stack(wins), out


def perturb_bn(model, seed):
    """Give every batch norm non-trivial running statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm3d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


# --- parameter counts (torchvision's) --------------------------------------------------------


def test_resnet_parameter_counts_match_torchvision():
    assert n_params(resnet50(in_channels=3, num_classes=1000)) == 25_557_032
    assert n_params(resnet18(in_channels=3, num_classes=1000)) == 11_689_512
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        assert n_params(resnet34(in_channels=3, num_classes=1000)) == 21_797_672
        assert n_params(resnet101(in_channels=3, num_classes=1000)) == 44_549_160


def test_resnet_key_names_are_torchvision_names():
    keys = set(resnet50(in_channels=3, num_classes=1000).state_dict())
    for k in (
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.downsample.0.weight",
        "layer1.0.downsample.1.num_batches_tracked",
        "layer2.0.conv2.weight",
        "layer4.2.bn3.bias",
        "fc.weight",
    ):
        assert k in keys
    # v1.5: the stride sits on the 3x3 convolution of the first block of a stage
    net = resnet50(in_channels=3, num_classes=2)
    assert net.layer2[0].conv2.stride == (2, 2)
    assert net.layer2[0].conv1.stride == (1, 1)


# --- shape contracts ---------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [resnet18, resnet34, resnet50], ids=lambda f: f.__name__)
def test_resnet_shape_contract(factory):
    torch.manual_seed(0)
    # small windows keep ResNet-50 quick on a shared CPU; the pool adapts to any size
    w = 64 if factory is resnet18 else 32
    net = factory(in_channels=8, num_classes=2, window=w, seed=0)
    assert isinstance(net, ProspectModel)
    assert (net.task, net.ndim, net.dense, net.in_channels) == ("classifier", 2, False, 8)
    assert net.window == w and net.context == (w // 2, w // 2 - 1)
    x = torch.randn(2, 8, w, w)
    net.eval()
    with torch.no_grad():
        logits = net(x)
        p = net.score_windows(x)
    assert logits.shape == (2, 2)
    assert p.shape == (2,)
    assert torch.allclose(p, torch.softmax(logits, dim=1)[:, 1])
    assert torch.all((p >= 0) & (p <= 1))
    # one training step on CPU runs and gives gradients everywhere
    net.train()
    loss = torch.nn.functional.cross_entropy(net(x), torch.tensor([0, 1]))
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_resnet_without_window_and_wrong_input():
    net = resnet18(in_channels=4, num_classes=3)
    assert net.window is None and net.context == (0, 0)
    with pytest.raises(xp.ModelCardError, match="C=4"):
        net(torch.zeros(1, 3, 32, 32))
    with pytest.raises(xp.ModelCardError, match="in_channels"):
        resnet18(in_channels=0)


def test_zero_init_residual_and_seed():
    net = resnet18(in_channels=2, zero_init_residual=True, seed=1)
    assert torch.all(net.layer1[0].bn2.weight == 0)
    assert torch.all(net.layer1[0].bn1.weight == 1)
    net50 = resnet50(in_channels=2, zero_init_residual=True, seed=1)
    assert torch.all(net50.layer3[2].bn3.weight == 0)
    a, b = resnet18(in_channels=2, seed=7), resnet18(in_channels=2, seed=7)
    assert torch.equal(a.conv1.weight, b.conv1.weight)
    assert not torch.equal(a.conv1.weight, resnet18(in_channels=2, seed=8).conv1.weight)


@pytest.mark.parametrize("ndim", [2, 3])
def test_small_cnn_shape_contract(ndim):
    net = SmallCNN(5, window=12, widths=(8, 8, 16, 16), ndim=ndim, seed=0)
    assert (net.task, net.ndim, net.dense, net.in_channels) == ("classifier", ndim, True, 5)
    assert net.context == (6, 5)
    x = torch.randn(3, 5, *([12] * ndim))
    assert net(x).shape == (3, 2)
    assert net.score_windows(x).shape == (3,)
    big = torch.randn(2, 5, *([15, 17, 19][:ndim] if ndim == 3 else [15, 17]))
    out = net.eval().score_dense(big)
    expect = tuple(s - 12 + 1 for s in big.shape[2:])
    assert out.shape == (2, *expect)
    # context contract: out = spatial - before - after
    assert out.shape[1:] == tuple(s - sum(net.context) for s in big.shape[2:])


def test_small_cnn_rejects_bad_config_and_input():
    with pytest.raises(xp.ModelCardError, match="too small"):
        SmallCNN(3, window=8, widths=(4, 4, 4, 4))
    with pytest.raises(xp.ModelCardError, match="ndim"):
        SmallCNN(3, ndim=1)
    with pytest.raises(xp.ModelCardError, match="dropout"):
        SmallCNN(3, dropout=1.5)
    net = SmallCNN(3, window=12, widths=(4, 4))
    with pytest.raises(xp.ModelCardError, match="C=3"):
        net(torch.zeros(1, 4, 12, 12))
    with pytest.raises(xp.ModelCardError, match="smaller"):
        net.score_dense(torch.zeros(1, 3, 11, 20))


# --- dense == windows --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ndim", "window", "spatial", "num_classes"),
    [(2, 11, (19, 16), 2), (2, 10, (14, 17), 3), (2, 9, (12, 13), 1), (3, 7, (9, 10, 11), 2)],
)
def test_small_cnn_dense_equals_windows_everywhere(ndim, window, spatial, num_classes):
    torch.manual_seed(0)
    widths = (6, 8, 8) if ndim == 2 else (4, 6)
    net = SmallCNN(3, num_classes, window=window, widths=widths, ndim=ndim, dropout=0.3, seed=2)
    perturb_bn(net, seed=3)
    net = net.double().eval()
    _, per_window = dense_equals_windows(net, spatial, window)
    # scores vary across the map, so the comparison is not vacuous
    assert float(per_window.std()) > 1e-4


def test_small_cnn_dense_equals_windows_float32_default_widths():
    net = SmallCNN(4, window=16, seed=0)
    perturb_bn(net, seed=1)
    net.eval()
    x = torch.randn(1, 4, 22, 21, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        dense = net.score_dense(x)[0]
        wins, out = all_windows(x, 16)
        per_window = net.score_windows(wins).reshape(out)
    assert float((dense - per_window).abs().max()) < 1e-5


@pytest.mark.parametrize(("ndim", "spatial"), [(2, (70, 83)), (3, (20, 22, 19))])
def test_small_cnn_fast_dense_pass_equals_plain_modules(ndim, spatial):
    """The eval dense pass (channels-last, folded batch norms, running-sum window mean)
    gives the plain module pass (logit_map, avg_pool) within 2e-6 in float32."""
    net = SmallCNN(8, window=16 if ndim == 2 else 10, widths=(16, 16, 32), ndim=ndim, seed=0)
    perturb_bn(net, seed=5)
    net.eval()
    with torch.no_grad():
        net.head.weight.mul_(0.05)  # scores away from 0 and 1, so that they vary
    x = torch.randn(2, 8, *spatial, generator=torch.Generator().manual_seed(6))
    pool = torch.nn.functional.avg_pool2d if ndim == 2 else torch.nn.functional.avg_pool3d
    with torch.no_grad():
        fast = net.score_dense(x)
        plain = torch.softmax(pool(net.logit_map(x), kernel_size=net.pool, stride=1), dim=1)[:, 1]
    assert fast.dtype == torch.float32 and fast.shape == plain.shape
    assert float((fast - plain).abs().max()) < 2e-6
    assert float(plain.std()) > 1e-3  # the maps vary: the comparison is not vacuous
    # in train mode (batch statistics) score_dense is the plain module pass itself
    net.train()
    with torch.no_grad():
        torch.testing.assert_close(
            net.score_dense(x),
            torch.softmax(pool(net.logit_map(x), kernel_size=net.pool, stride=1), dim=1)[:, 1],
            rtol=0,
            atol=0,
        )


def test_box_mean_equals_avg_pool():
    x = torch.randn(2, 3, 40, 37, generator=torch.Generator().manual_seed(0)) * 10
    torch.testing.assert_close(
        box_mean(x, 9, 2), torch.nn.functional.avg_pool2d(x, 9, stride=1), rtol=0, atol=5e-6
    )
    x3 = torch.randn(1, 2, 9, 7, 8, generator=torch.Generator().manual_seed(1)) * 10
    torch.testing.assert_close(
        box_mean(x3, 3, 3), torch.nn.functional.avg_pool3d(x3, 3, stride=1), rtol=0, atol=5e-6
    )
    assert box_mean(x, 1, 2).equal(x)


@pytest.mark.parametrize("layout", ["channels_last", "plain"])
def test_grouped_last_block_and_head_equal_the_block_then_the_head(layout):
    """40 output channels (groups of 16, 16, 8), folded norm, dilation; a block that cannot
    be folded (LeakyReLU) is called as it is: both equal the head applied to the block."""
    g = torch.Generator().manual_seed(0)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    x = torch.randn(2, 5, 23, 19, generator=g).contiguous(memory_format=fmt)
    w, b = torch.randn(3, 40, generator=g), torch.randn(3, generator=g)
    for act in (torch.nn.ReLU(), torch.nn.LeakyReLU(0.1)):
        block = torch.nn.Sequential(
            torch.nn.Conv2d(5, 40, 3, dilation=2, bias=False), torch.nn.BatchNorm2d(40), act
        )
        with torch.no_grad():
            block[1].running_mean.copy_(torch.randn(40, generator=g))
            block[1].running_var.copy_(torch.rand(40, generator=g) + 0.5)
        block.eval()
        with torch.no_grad():
            y = conv_bn_relu(block, x) if isinstance(act, torch.nn.ReLU) else block(x)
            want = torch.nn.functional.conv2d(y, w[:, :, None, None], b)
            got = conv_bn_relu_linear(block, x, w, b)
        assert got.shape == want.shape == (2, 3, 19, 15)
        torch.testing.assert_close(got, want, rtol=0, atol=2e-5)


@pytest.mark.parametrize(("ndim", "window", "spatial"), [(2, 9, (14, 12)), (3, 7, (9, 8, 10))])
def test_small_cnn_linear_path_dense_equals_windows(ndim, window, spatial):
    """linear=True: the eval dense pass equals the window-by-window pass (odd windows)."""
    net = SmallCNN(3, window=window, widths=(4, 6), ndim=ndim, linear=True, seed=2)
    perturb_bn(net, seed=3)
    with torch.no_grad():
        net.linear.weight.normal_(generator=torch.Generator().manual_seed(5))
        net.linear.bias.fill_(0.2)
    net = net.double().eval()
    x, per_window = dense_equals_windows(net, spatial, window)
    assert float(per_window.std()) > 1e-3
    with torch.no_grad():
        # train mode (batch statistics): the plain modules, the centre cells' reading added
        net.train()
        pool = torch.nn.functional.avg_pool2d if ndim == 2 else torch.nn.functional.avg_pool3d
        logits = pool(net.logit_map(x), kernel_size=net.pool, stride=1)
        centre = net.linear(
            x[(0, slice(None), *(slice(window // 2, s - window // 2) for s in spatial))]
        )
        want = torch.softmax(logits + centre[None], dim=1)[:, 1]
        np.testing.assert_allclose(net.score_dense(x).numpy(), want.numpy(), rtol=0, atol=1e-12)


def test_small_cnn_linear_path_reads_the_centre_cell_as_a_logistic_regression():
    """With the convolutional head silenced, linear=True scores every window exactly as a
    logistic regression of its centre cell; the path starts at zero (the plain network), and
    the option is kept in the model's config only when set."""
    net = SmallCNN(2, window=9, widths=(4, 4, 4), linear=True, seed=0)
    x = torch.randn(5, 2, 9, 9, generator=torch.Generator().manual_seed(1))
    plain = SmallCNN(2, window=9, widths=(4, 4, 4), seed=0)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), plain.eval()(x), rtol=0, atol=0)
        net.head.weight.zero_()
        net.head.bias.zero_()
        net.linear.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0]]).reshape(2, 2, 1, 1))
        net.linear.bias.copy_(torch.tensor([0.1, -0.3]))
        centre = x[:, :, 4, 4]
        z = centre @ torch.tensor([[1.0, -2.0], [0.5, 3.0]]).t() + torch.tensor([0.1, -0.3])
        torch.testing.assert_close(net.score_windows(x), torch.softmax(z, dim=1)[:, 1])
        # the other cells of the window do not move the score
        y = x.clone()
        y[:, :, :4] = 100.0
        torch.testing.assert_close(net.score_windows(y), net.score_windows(x))
    assert net.config["kwargs"]["linear"] is True
    assert "linear" not in plain.config["kwargs"]
    again = from_config(json.loads(json.dumps(net.config)))
    assert again.linear is not None and plain.linear is None


def test_small_cnn_dense_respects_batch():
    net = SmallCNN(2, window=9, widths=(4, 4), seed=0).eval()
    x = torch.randn(3, 2, 12, 13)
    with torch.no_grad():
        together = net.score_dense(x)
        apart = torch.cat([net.score_dense(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, apart)


# --- registry ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "shape"),
    [
        ("resnet18", {"in_channels": 8, "num_classes": 2, "window": 64}, (2, 8, 64, 64)),
        ("resnet34", {"in_channels": 8, "window": 64}, (2, 8, 32, 32)),
        ("resnet50", {"in_channels": 8, "zero_init_residual": True}, (2, 8, 32, 32)),
        ("resnet", {"block": "basic", "layers": [1, 1, 1, 1], "in_channels": 8}, (2, 8, 64, 64)),
        ("small_cnn", {"in_channels": 6, "window": 12, "widths": [4, 8]}, (2, 6, 12, 12)),
        ("small_cnn", {"in_channels": 6, "window": 9, "ndim": 3, "widths": [4]}, (2, 6, 9, 9, 9)),
        ("small_cnn", {"in_channels": 3, "window": 9, "linear": True}, (2, 3, 9, 9)),
        ("cnn3d", {"in_channels": 4, "window": 10, "widths": [4, 4]}, (2, 4, 10, 10, 10)),
    ],
)
def test_registry_config_round_trip(name, kwargs, shape):
    assert name in available()
    model = create(name, seed=0, **kwargs)
    assert model.config["name"] == name
    config = json.loads(json.dumps(model.config))  # JSON-able
    again = from_config(config)
    assert type(again) is type(model)
    assert again.config == model.config
    assert again.window == model.window and again.ndim == model.ndim
    assert [(k, tuple(v.shape)) for k, v in again.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in model.state_dict().items()
    ]
    # the seed is part of the config, so the rebuilt model starts from the same weights
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    with torch.no_grad():
        assert model.eval()(torch.randn(*shape)).shape == (2, 2)


def test_cnn3d_is_small_cnn_in_3d():
    net = cnn3d(3, window=8, widths=(4, 4))
    assert isinstance(net, SmallCNN) and net.ndim == 3
    assert "ndim" not in net.config["kwargs"]
    assert isinstance(small_cnn(3, window=8, widths=(4,)), SmallCNN)


# --- transfer: loading, adapting, freezing ------------------------------------------------------


def test_adapt_first_conv_keeps_constant_response():
    w = torch.randn(16, 3, 7, 7, generator=torch.Generator().manual_seed(0))
    for mode, counts in (("mean", (1, 2, 3, 8)), ("cycle", (1, 3, 6))):
        for c in counts:
            new = adapt_first_conv(w, c, mode=mode)
            assert new.shape == (16, c, 7, 7)
            torch.testing.assert_close(new.sum(1), w.sum(1))
    mean8 = adapt_first_conv(w, 8)
    torch.testing.assert_close(mean8[:, 5], w.mean(1) * 3 / 8)
    cyc8 = adapt_first_conv(w, 8, mode="cycle")
    torch.testing.assert_close(cyc8[:, 4], w[:, 1] * 3 / 8)
    same = adapt_first_conv(w, 3)
    assert torch.equal(same, w) and same.data_ptr() != w.data_ptr()
    with pytest.raises(xp.ModelCardError, match="mode"):
        adapt_first_conv(w, 8, mode="nearest")
    with pytest.raises(xp.ModelCardError, match="convolution weight"):
        adapt_first_conv(torch.zeros(4, 3), 2)


def test_load_resnet18_imagenet_shaped_into_8_channel_2_class():
    src = resnet18(in_channels=3, num_classes=1000, seed=0)
    perturb_bn(src, seed=5)
    dst = resnet18(in_channels=8, num_classes=2, seed=1)
    fc_before = dst.fc.weight.detach().clone()
    report = load_compatible_state_dict(dst, src.state_dict())
    json.dumps(report)
    assert first_conv_name(dst) == "conv1.weight"
    assert report["adapted"] == {"conv1.weight": [3, 8]}
    assert set(report["skipped"]) == {"fc.weight", "fc.bias"}
    assert report["skipped"]["fc.weight"] == {"source": [1000, 512], "model": [2, 512]}
    assert report["missing"] == [] and report["unexpected"] == []
    n_keys = len(dst.state_dict())
    assert len(report["loaded"]) == n_keys - 3
    src_sd, dst_sd = src.state_dict(), dst.state_dict()
    for k in report["loaded"]:
        assert torch.equal(src_sd[k], dst_sd[k]), k
    torch.testing.assert_close(dst.conv1.weight, adapt_first_conv(src.conv1.weight, 8))
    assert torch.equal(dst.fc.weight, fc_before)  # head left as initialised
    with torch.no_grad():
        assert dst.eval()(torch.randn(1, 8, 64, 64)).shape == (1, 2)


def test_load_compatible_options_and_errors():
    src = resnet18(in_channels=3, num_classes=1000, seed=0)
    dst = resnet18(in_channels=8, num_classes=2, seed=1)
    conv_before = dst.conv1.weight.detach().clone()
    report = load_compatible_state_dict(dst, src, adapt_input=False)
    assert "conv1.weight" in report["skipped"] and report["adapted"] == {}
    assert torch.equal(dst.conv1.weight, conv_before)
    with pytest.raises(xp.ModelCardError, match=r"fc\.weight"):
        load_compatible_state_dict(resnet18(in_channels=3, num_classes=2), src, strict_shapes=True)
    # a DataParallel-style prefix is dropped
    wrapped = {f"module.{k}": v for k, v in src.state_dict().items()}
    same = resnet18(in_channels=3, num_classes=1000, seed=3)
    report = load_compatible_state_dict(same, wrapped)
    assert report["skipped"] == {} and report["adapted"] == {}
    # another architecture shares nothing: a clear error
    with pytest.raises(xp.ModelCardError, match="no tensor of the state dict fits SmallCNN"):
        load_compatible_state_dict(SmallCNN(3, window=12, widths=(4, 4)), src.state_dict())
    with pytest.raises(xp.ModelCardError, match="checkpoint"):
        load_compatible_state_dict(dst, {"model": src.state_dict(), "card": {}})


def test_load_small_cnn_into_wider_input():
    src = SmallCNN(3, window=12, widths=(4, 8), seed=0)
    dst = SmallCNN(5, window=12, widths=(4, 8), seed=1)
    report = load_compatible_state_dict(dst, src.state_dict())
    assert report["adapted"] == {"block1.0.weight": [3, 5]}
    assert report["skipped"] == {}


def test_freeze_named_layers_and_bn_stays_in_eval():
    net = resnet18(in_channels=8, num_classes=2, seed=0)
    names = freeze(net, ["conv1", "bn1", "layer1", "layer2"])
    assert names == ["conv1", "bn1", "layer1", "layer2"]
    frozen_prefixes = ("conv1.", "bn1.", "layer1.", "layer2.")
    for k, p in net.named_parameters():
        assert p.requires_grad is (not k.startswith(frozen_prefixes)), k
    net.train()
    assert not net.bn1.training and not net.layer2[1].bn2.training
    assert net.layer3[0].bn1.training
    # a training step leaves the frozen batch norms' statistics and weights unchanged
    before = copy.deepcopy(net.state_dict())
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(
        net(torch.randn(4, 8, 32, 32)), torch.tensor([0, 1] * 2)
    )
    loss.backward()
    opt.step()
    after = net.state_dict()
    for k in before:
        if k.startswith(frozen_prefixes):
            assert torch.equal(before[k], after[k]), k
    assert not torch.equal(before["layer3.0.bn1.running_mean"], after["layer3.0.bn1.running_mean"])
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    # a deep copy keeps the frozen state
    twin = copy.deepcopy(net).train()
    assert not twin.bn1.training and twin.layer3[0].bn1.training
    unfreeze(net)
    assert all(p.requires_grad for p in net.parameters())
    assert net.bn1.training
    net.eval()
    net.train()
    assert net.bn1.training and net.layer1[0].bn1.training


def test_freeze_by_stage_count():
    net = resnet18(in_channels=3, seed=0)
    assert freeze(net, 2) == ["conv1", "bn1", "layer1"]
    trainable = {k.split(".")[0] for k, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"layer2", "layer3", "layer4", "fc"}
    unfreeze(net)
    freeze(net, 5)
    assert {k for k, p in net.named_parameters() if p.requires_grad} == {"fc.weight", "fc.bias"}
    small = SmallCNN(3, window=12, widths=(4, 4, 4), seed=0)
    assert freeze(small, 2) == ["block1", "block2"]
    assert all(p.requires_grad for p in small.block3.parameters())
    assert all(p.requires_grad for p in small.head.parameters())
    with pytest.raises(xp.ModelCardError, match="cannot freeze 4 stages"):
        freeze(small, 4)
    with pytest.raises(xp.ModelCardError, match="no submodule 'layer9'"):
        freeze(net, ["layer9"])
    unfreeze(net)
    assert freeze(net, "layer3.0") == ["layer3.0"]
    assert not net.layer3[0].conv1.weight.requires_grad
    assert net.layer3[1].conv1.weight.requires_grad


def test_resnet_is_resnet_class():
    assert isinstance(resnet18(in_channels=1), ResNet)


def test_box_mean_keeps_non_finite_cells_to_their_own_boxes():
    """A NaN or infinite cell makes NaN only the boxes that hold it (avg_pool's non-finite
    boxes), the others keep avg_pool's means: running sums carried it into every later box
    along each axis (NaN - NaN, inf - inf)."""
    x = torch.randn(1, 2, 30, 27, generator=torch.Generator().manual_seed(2))
    x[0, 0, 10, 12] = float("nan")
    x[0, 1, 4, 20] = float("inf")
    x[0, 1, 25, 3] = -float("inf")
    want = torch.nn.functional.avg_pool2d(x, 5, stride=1)
    got = box_mean(x, 5, 2)
    assert 0 < int((~want.isfinite()).sum()) < want.numel() // 4
    assert got.isnan().equal(~want.isfinite())
    torch.testing.assert_close(
        got,
        want.nan_to_num(float("nan"), float("nan"), float("nan")),
        rtol=0,
        atol=5e-6,
        equal_nan=True,
    )
    x3 = torch.randn(1, 1, 9, 10, 11, generator=torch.Generator().manual_seed(3))
    x3[0, 0, 4, 5, 6] = float("nan")
    torch.testing.assert_close(
        box_mean(x3, 3, 3),
        torch.nn.functional.avg_pool3d(x3, 3, stride=1),
        rtol=0,
        atol=5e-6,
        equal_nan=True,
    )


def test_dense_scores_of_a_nan_cell_stay_in_its_windows():
    """score_dense with a NaN input cell (``nan="propagate"``) is NaN only where a window
    reads it, as the plain module pass gives, for the small and the multi-scale CNN."""
    x = torch.randn(1, 3, 40, 40, generator=torch.Generator().manual_seed(4))
    x[0, 1, 15, 15] = float("nan")
    nets = [
        SmallCNN(3, window=9, widths=(4, 4), seed=0),
        xp.models.MultiScaleCNN(3, window=9, context=13, widths=(4, 4), seed=0),
    ]
    for net in nets:
        net.eval()
        with torch.no_grad():
            fast = net.score_dense(x)
            if isinstance(net, SmallCNN):
                lg = torch.nn.functional.avg_pool2d(net.logit_map(x), net.pool, stride=1)
            else:
                o, (h, w) = net.offset, x.shape[-2:]
                lg = net.fine(x[..., o : h - o, o : w - o]) + net.coarse(x)
            plain = torch.softmax(lg, dim=1)[:, 1]
        assert fast.isnan().any() and not fast.isnan().all()
        torch.testing.assert_close(fast, plain, rtol=0, atol=2e-6, equal_nan=True)
