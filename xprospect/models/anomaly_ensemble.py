"""Seed ensembles of anomaly detectors: the mean score of N members trained from N seeds.

One trained detector depends on its seed (weights, batches, noise and, with a held-out split,
which blocks were held out); averaging members trained from several seeds gives a map that
does not hang on one draw. :func:`xprospect.train.fit_anomaly` and
:func:`~xprospect.train.fit_stoad` build one with ``seeds=N``. Every member must carry the
same card normalisation (they are fitted on the same ground), so the ensemble scores the
normalised stack once and averages the members' raw scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError
from xprospect.models.base import ProspectModel
from xprospect.models.registry import from_config, register

torch = import_torch()

__all__ = ["AnomalyEnsemble"]


def _member(m: Any) -> Any:
    if isinstance(m, torch.nn.Module):
        return m
    if isinstance(m, dict):
        return from_config(m)
    raise ModelCardError(f"an ensemble member must be a model or its config; got {type(m)}")


@register("anomaly_ensemble")
class AnomalyEnsemble(ProspectModel):
    """Mean anomaly score of several detectors of one architecture (a seed ensemble).

    Parameters
    ----------
    members : sequence of ProspectModel or dict
        Trained detectors (or their configs, to rebuild from a checkpoint), all with the same
        ``ndim``, ``in_channels``, ``context`` and ``dense`` flag.

    Notes
    -----
    ``score_dense``, ``score_windows`` and ``score_vectors`` are the means of the members'
    (those a member lacks are absent from the ensemble too). ``loss_scale`` is the members'.

    Examples
    --------
    >>> import torch
    >>> from xprospect.models import VAE
    >>> ens = AnomalyEnsemble([VAE(3), VAE(3)])
    >>> ens.score_vectors(torch.zeros(4, 3)).shape
    torch.Size([4])
    """

    task = "anomaly"
    anomaly_samples = None

    def __init__(self, members: Sequence[Any]) -> None:
        super().__init__()
        built = [_member(m) for m in members]
        if len(built) < 1:
            raise ModelCardError("an anomaly ensemble needs at least one member")
        first = built[0]
        for i, m in enumerate(built[1:], start=1):
            for key in ("ndim", "in_channels", "context", "dense"):
                a, b = getattr(first, key, None), getattr(m, key, None)
                if (tuple(a) if isinstance(a, list | tuple) else a) != (
                    tuple(b) if isinstance(b, list | tuple) else b
                ):
                    msg = f"ensemble member {i} has {key}={b!r}; member 0 has {a!r}"
                    raise ModelCardError(msg)
        self.members = torch.nn.ModuleList(built)
        self.ndim = first.ndim
        self.in_channels = first.in_channels
        self.window = getattr(first, "window", None)
        self.context = tuple(getattr(first, "context", (0, 0)))
        self.dense = bool(getattr(first, "dense", False))
        self.nan_aware = all(bool(getattr(m, "nan_aware", False)) for m in built)
        self.config = {
            "name": "anomaly_ensemble",
            "kwargs": {"members": [dict(m.config) for m in built]},
        }

    @property
    def loss_scale(self) -> float:
        """The members' score scale (see :attr:`ProspectModel.loss_scale`)."""
        return float(getattr(self.members[0], "loss_scale", 1.0))

    def _mean(self, method: str, x: Any) -> Any:
        if not all(hasattr(m, method) for m in self.members):
            raise ModelCardError(f"the ensemble's members have no {method}")
        return torch.stack([getattr(m, method)(x) for m in self.members]).mean(dim=0)

    def score_dense(self, x: Any) -> Any:
        """Mean of the members' dense scores."""
        return self._mean("score_dense", x)

    def score_windows(self, x: Any) -> Any:
        """Mean of the members' window scores."""
        return self._mean("score_windows", x)

    def score_vectors(self, x: Any) -> Any:
        """Mean of the members' per-vector scores (per-cell models)."""
        return self._mean("score_vectors", x)

    def forward(self, x: Any) -> Any:
        """Mean score (dense when the members are dense, else per window)."""
        return self.score_dense(x) if self.dense else self.score_windows(x)
