"""The contract every xprospect network follows, so training, scoring and checkpoints fit all.

A network is a :class:`ProspectModel` (a ``torch.nn.Module``) that declares:

``task``
    ``"classifier"`` (output: logits over classes, class 1 = prospective) or ``"anomaly"``
    (output: a per-cell anomaly score, larger = more anomalous).
``ndim``
    Number of spatial axes it convolves over: 2 (``y, x``), 3 (``z, y, x``) or ``None`` for
    per-cell models (element vectors) that work on any grid.
``in_channels``
    Number of input elements (channels).
``window``
    For window classifiers, the patch edge (cells) it is trained and scored on; ``None`` if any.
``dense``
    True when :meth:`score_dense` gives, at every cell, exactly what :meth:`score_windows` gives
    for the window centred on that cell (fully convolutional, stride 1).
``context``
    ``(before, after)``: cells of context the score at one cell needs on each side along every
    spatial axis. A window of ``w`` cells attributed to cell ``i`` covers
    ``[i - before, i + after]`` with ``before = w // 2`` and ``after = w - 1 - w // 2``.
``config``
    ``{"name": <registry name>, "kwargs": {...}}``: enough to rebuild the architecture.
``card``
    Metadata written by training (element order, normalisation, resolution, CRS, ...) or ``{}``.

Training contract of anomaly models (what :func:`xprospect.train.fit_anomaly` asks):

``anomaly_samples``
    How the model is trained, declared on the class: ``"vectors"`` (element vectors of single
    cells or samples: ``loss(x)`` on ``(N, C)`` returns ``(total, parts)`` and
    ``score_vectors(x)`` scores them), ``"tiles"`` (tiles of cells: ``loss(x, target)`` on
    ``(B, C, *tile)`` with a boolean ``target`` over the tile's valid core returns
    ``(total, parts)``), or ``None`` (``fit_anomaly`` does not train it, e.g. STOAD, which
    :func:`xprospect.train.fit_stoad` trains in two stages). A new anomaly model plugs in by
    declaring it; nothing in :mod:`xprospect.train` names model classes. Every parameter
    must receive a gradient from every ``loss``: the anomaly trainers step all parameters
    at once (:class:`~xprospect.train._flat_adam.FlatAdam`), which reads a missing gradient
    as zero and keeps moving that parameter on its Adam moments, where ``torch.optim``
    would skip it.
``loss_scale``
    For ``"tiles"`` models: the per-cell training loss is ``loss_scale * score_dense(x)``
    (used for the held-out loss map).

Scoring contract (what :func:`xprospect.score.score` calls):

``score_windows(x)``
    ``x``: float tensor ``(B, C, *window)``; returns ``(B,)``: the probability of class 1
    for classifiers, the anomaly score at the window's centre cell for anomaly models.
``score_dense(x)``
    Only when ``dense``. ``x``: ``(B, C, *spatial)``; returns ``(B, *out)`` with
    ``out = spatial - before - after`` along each axis (a "valid" pass): the value at output
    index ``j`` belongs to input cell ``j + before``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError

torch = import_torch()
nn = torch.nn

__all__ = ["ProspectModel"]


class ProspectModel(nn.Module):
    """Base class of xprospect networks; see the module docstring for the contract."""

    task: ClassVar[str] = "classifier"
    dense: bool = False
    #: How :func:`xprospect.train.fit_anomaly` trains the model: "vectors", "tiles" or None.
    anomaly_samples: ClassVar[str | None] = None

    @property
    def loss_scale(self) -> float:
        """Factor turning :meth:`score_dense` into the per-cell training loss (1 unless said)."""
        return 1.0

    def __init__(self) -> None:
        super().__init__()
        self.ndim: int | None = 2
        self.in_channels: int = 0
        self.window: int | None = None
        self.context: tuple[int, int] = (0, 0)
        self.config: dict[str, Any] = {}
        self.card: dict[str, Any] = {}

    def score_windows(self, x: Any) -> Any:
        """Score windows ``(B, C, *window)`` -> ``(B,)``."""
        if self.task == "classifier":
            logits = self(x)
            if logits.shape[-1] == 1:
                return torch.sigmoid(logits[..., 0])
            return torch.softmax(logits, dim=-1)[..., 1]
        raise ModelCardError(
            f"{type(self).__name__} is a {self.task!r} model and defines no "
            "score_windows: it cannot be scored window by window"
        )

    def score_dense(self, x: Any) -> Any:
        """Score every cell of ``(B, C, *spatial)`` in one valid pass."""
        raise ModelCardError(
            f"{type(self).__name__} is not fully convolutional: score it by "
            "windows (score(..., method='windows'))"
        )
