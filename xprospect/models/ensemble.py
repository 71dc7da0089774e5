"""Deep ensembles and Monte Carlo dropout as one model of the package's contract.

:class:`DeepEnsemble` holds trained window classifiers (members of one architecture, trained
with different seeds on the same windows, so they share the card's normalisation) and scores
like any of them: ``score(stack, ensemble)`` gives the members' mean probability, and
``score(stack, ensemble.with_output("std"))`` their standard deviation (the uncertainty map).
With ``mc_samples > 0`` every member is also run that many times with its dropout layers
active (Monte Carlo dropout, Gal & Ghahramani 2016), each pass with its own seeded masks, and
the mean and standard deviation run over all members and passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError
from xprospect.models.base import ProspectModel
from xprospect.models.registry import create, register

torch = import_torch()
nn = torch.nn

__all__ = ["DeepEnsemble", "deep_ensemble"]

_OUTPUTS = ("mean", "std")


def _dropouts(model: Any) -> list[Any]:
    return [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]


class DeepEnsemble(ProspectModel):
    """Mean (or standard deviation) of the class-1 probability of several classifiers.

    Parameters
    ----------
    members : sequence of ProspectModel
        Trained classifiers of one input layout (same ``in_channels``, ``window`` and
        ``ndim``); when they carry cards, their normalisation must agree (train them on the
        same windows).
    output : {"mean", "std"}
        What :meth:`score_windows` and :meth:`score_dense` return.
    mc_samples : int
        Monte Carlo dropout passes per member (0: dropout off, one pass).
    mc_seed : int
        Seed of the dropout masks of the Monte Carlo passes.

    Notes
    -----
    ``forward`` returns two-class logits ``log(1 - p), log(p)`` of the mean probability, so
    the ensemble is itself a classifier of the contract. It is ``dense`` when every member is
    (the members' dense maps are combined cell by cell). The ensemble's card is the first
    member's, with ``ensemble`` (member count, seeds) and ``mc_samples`` added.

    Examples
    --------
    >>> from xprospect.models import SmallCNN
    >>> ms = [SmallCNN(3, window=7, widths=(4,), seed=s).eval() for s in range(3)]
    >>> ens = DeepEnsemble(ms)
    >>> ens.score_windows(torch.zeros(2, 3, 7, 7)).shape
    torch.Size([2])
    >>> ens.with_output("std").score_dense(torch.zeros(1, 3, 9, 9)).shape
    torch.Size([1, 3, 3])
    """

    def __init__(
        self,
        members: Sequence[Any],
        *,
        output: str = "mean",
        mc_samples: int = 0,
        mc_seed: int = 0,
    ) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ModelCardError("a DeepEnsemble needs at least one member")
        if output not in _OUTPUTS:
            raise ModelCardError(f"DeepEnsemble output={output!r}; use 'mean' or 'std'")
        if int(mc_samples) < 0:
            raise ModelCardError(f"mc_samples must be >= 0; got {mc_samples!r}")
        first = members[0]
        for i, m in enumerate(members):
            if getattr(m, "task", "classifier") != "classifier":
                raise ModelCardError(f"ensemble member {i} is not a classifier")
            for attr in ("in_channels", "window", "ndim"):
                if getattr(m, attr, None) != getattr(first, attr, None):
                    raise ModelCardError(
                        f"ensemble member {i} has {attr}={getattr(m, attr, None)!r}; member 0 "
                        f"has {getattr(first, attr, None)!r}"
                    )
            _check_same_normalisation(first, m, i)
        if int(mc_samples) > 0 and not any(_dropouts(m) for m in members):
            raise ModelCardError(
                "mc_samples > 0 needs members with dropout layers (e.g. small_cnn dropout=0.2)"
            )
        self.members = nn.ModuleList(members)
        # mirror the members' mode without switching them (their batch norms stay as given)
        self.training = any(m.training for m in members)
        self.output = output
        self.mc_samples = int(mc_samples)
        self.mc_seed = int(mc_seed)
        self.ndim = first.ndim
        self.in_channels = first.in_channels
        self.window = first.window
        self.context = tuple(first.context)
        self.dense = all(bool(getattr(m, "dense", False)) for m in members)
        self.num_classes = 2
        self.config = {
            "name": "deep_ensemble",
            "kwargs": {
                "members": [dict(m.config) for m in members],
                "output": output,
                "mc_samples": self.mc_samples,
                "mc_seed": self.mc_seed,
            },
        }
        card = dict(getattr(first, "card", None) or {})
        if card:
            card["ensemble"] = {
                "members": len(members),
                "seeds": [(getattr(m, "card", None) or {}).get("seed") for m in members],
            }
            card["mc_samples"] = self.mc_samples
        self.card = card

    def with_output(self, output: str) -> DeepEnsemble:
        """Return an ensemble sharing these members that outputs ``"mean"`` or ``"std"``.

        Parameters
        ----------
        output : {"mean", "std"}

        Returns
        -------
        DeepEnsemble
        """
        out = DeepEnsemble(
            list(self.members), output=output, mc_samples=self.mc_samples, mc_seed=self.mc_seed
        )
        out.card = dict(self.card)
        return out

    def _passes(self, fn: Callable[[Any, Any], Any], x: Any) -> Any:
        """Stack ``fn(member, x)`` over members (and Monte Carlo passes): ``(K, ...)``."""
        outs = []
        for i, m in enumerate(self.members):
            if self.mc_samples == 0:
                outs.append(fn(m, x))
                continue
            drops = _dropouts(m)
            was = [d.training for d in drops]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.mc_seed * 1_000_003 + i)
                try:
                    for d in drops:
                        d.train(True)
                    for _ in range(self.mc_samples):
                        outs.append(fn(m, x))
                finally:
                    for d, w in zip(drops, was, strict=True):
                        d.train(w)
        return torch.stack(outs)

    def _reduce(self, p: Any) -> Any:
        if self.output == "mean":
            return p.mean(dim=0)
        if p.shape[0] < 2:
            return torch.zeros_like(p[0])
        return p.std(dim=0)

    def member_probabilities(self, x: Any) -> Any:
        """Class-1 probability of each member (and pass) for windows ``x``: ``(K, B)``."""
        return self._passes(lambda m, v: m.score_windows(v), x)

    def forward(self, x: Any) -> Any:
        """Two-class logits of the members' mean probability for windows ``(B, C, *window)``."""
        p = self.member_probabilities(x).mean(dim=0).clamp(1e-7, 1.0 - 1e-7)
        return torch.stack([torch.log1p(-p), torch.log(p)], dim=1)

    def score_windows(self, x: Any) -> Any:
        """Mean (or std) of the members' class-1 probability: ``(B,)``."""
        return self._reduce(self.member_probabilities(x))

    def score_dense(self, x: Any) -> Any:
        """Mean (or std) of the members' dense maps: ``(B, *out)``."""
        if not self.dense:
            raise ModelCardError("a DeepEnsemble of non-dense members is scored by windows")
        return self._reduce(self._passes(lambda m, v: m.score_dense(v), x))


def _check_same_normalisation(a: Any, b: Any, i: int) -> None:
    ca, cb = getattr(a, "card", None) or {}, getattr(b, "card", None) or {}
    for key in ("mean", "std", "elements"):
        va, vb = ca.get(key), cb.get(key)
        if va is None or vb is None:
            continue
        same = (
            va == vb
            if key == "elements"
            else np.allclose(np.asarray(va, float), np.asarray(vb, float), rtol=1e-6)
        )
        if not same:
            raise ModelCardError(
                f"ensemble member {i}'s card has another {key!r} than member 0's: members "
                "must be trained on the same windows so that one normalisation fits all"
            )


@register("deep_ensemble")
def deep_ensemble(
    members: Sequence[Mapping[str, Any]],
    *,
    output: str = "mean",
    mc_samples: int = 0,
    mc_seed: int = 0,
) -> DeepEnsemble:
    """Rebuild a :class:`DeepEnsemble` (untrained members) from the members' configs.

    Parameters
    ----------
    members : sequence of mapping
        Each member's ``config`` (``{"name": ..., "kwargs": ...}``).
    output, mc_samples, mc_seed
        See :class:`DeepEnsemble`.

    Returns
    -------
    DeepEnsemble
    """
    built = [create(str(c["name"]), **dict(c.get("kwargs", {}))) for c in members]
    return DeepEnsemble(built, output=output, mc_samples=mc_samples, mc_seed=mc_seed)
