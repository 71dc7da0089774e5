"""FlatAdam: torch's Adam update over one parameter buffer (xprospect.train._flat_adam)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from xprospect.models import VAE  # noqa: E402
from xprospect.train._flat_adam import FlatAdam, StepSchedule, flat_usable  # noqa: E402
from xprospect.train._loop import train_epochs  # noqa: E402
from xprospect.train.recipes import get_recipe  # noqa: E402


def _steps(model, opt, sched, xs):
    for i, xb in enumerate(xs):
        opt.zero_grad(set_to_none=True)
        model.loss(xb)[0].backward()
        opt.step()
        if i % 2 == 1:
            sched.step()


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_flat_adam_matches_torch_adam(kind):
    torch.manual_seed(0)
    xs = [torch.randn(64, 5) for _ in range(12)]
    ref, flat = VAE(5), VAE(5)
    flat.load_state_dict(ref.state_dict())
    recipe = get_recipe("adam").replace(optimizer=kind, weight_decay=1e-2, step_size=2, gamma=0.5)
    opt_ref = recipe.make_optimizer(ref.parameters())
    opt_flat = recipe.make_optimizer(flat.parameters(), flat=True)
    assert isinstance(opt_flat, FlatAdam) and not isinstance(opt_ref, FlatAdam)
    sched_ref, sched_flat = recipe.make_scheduler(opt_ref), recipe.make_scheduler(opt_flat)
    assert isinstance(sched_flat, StepSchedule)
    torch.manual_seed(1)  # the VAE's reparameterisation noise: the same draws on both sides
    _steps(ref, opt_ref, sched_ref, xs)
    torch.manual_seed(1)
    _steps(flat, opt_flat, sched_flat, xs)
    # the same rates, float for float, and the same weights up to float32 rounding
    assert opt_flat.param_groups[0]["lr"] == opt_ref.param_groups[0]["lr"] == 1e-3 * 0.5**3
    for (k, a), b in zip(ref.state_dict().items(), flat.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=k)
    opt_flat.release()
    ptrs = {p.untyped_storage().data_ptr() for p in flat.parameters()}
    assert len(ptrs) == len(list(flat.parameters()))  # each parameter owns its storage again


def test_flat_adam_takes_back_replaced_grads_and_data():
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    opt = FlatAdam(lin.parameters(), lr=0.1)
    assert lin.weight.untyped_storage().data_ptr() == opt.flat.untyped_storage().data_ptr()
    lin.weight.grad = torch.ones(2, 3)  # a gradient set from outside
    lin.bias.grad = None  # none at all: a zero gradient
    lin.weight.data = torch.zeros(2, 3)  # weights replaced from outside
    opt.step()
    assert lin.weight.untyped_storage().data_ptr() == opt.flat.untyped_storage().data_ptr()
    # Adam's first step moves every weight by lr against the sign of its gradient
    torch.testing.assert_close(lin.weight.detach(), torch.full((2, 3), -0.1))
    assert float(opt.grad[6:].abs().sum()) == 0.0  # the bias's zero gradient


def test_flat_usable():
    lin = torch.nn.Linear(3, 2)
    assert flat_usable(lin.parameters())
    assert not flat_usable([])
    assert not flat_usable(lin.double().parameters())
    lin.float().bias.requires_grad_(False)
    assert not flat_usable(lin.parameters())
    assert not flat_usable([{"params": list(lin.parameters())}])


def test_an_interrupted_fit_gives_the_parameters_their_storage_back():
    torch.manual_seed(0)
    model = VAE(5)
    xs = [torch.randn(32, 5) for _ in range(3)]

    def batch_loss(xb):
        if xb is xs[-1]:
            raise KeyboardInterrupt  # the user stops the fit during the first epoch
        return model.loss(xb)[0], len(xb)

    with pytest.raises(KeyboardInterrupt):
        train_epochs(
            model,
            model.parameters(),
            get_recipe("adam"),
            epochs=2,
            batches=lambda epoch: xs,
            batch_loss=batch_loss,
            flat=True,
        )
    ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert len(ptrs) == len(list(model.parameters()))  # each parameter owns its storage again
