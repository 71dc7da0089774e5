"""STOAD: student-teacher ore-induced anomaly detection by three-depth feature distillation.

After Yu et al. (2022), Minerals 12, 1382, section 3.2: a teacher convolutional autoencoder
(:class:`~xprospect.models.autoencoder.ConvAutoencoder`) is trained on all cells; a student
shaped like the teacher's encoder is trained on normal cells only to reproduce the teacher
encoder's outputs at three depths (Eq. 11-12); the anomaly score of a cell is the weighted sum
over the depths of the squared teacher-student difference (Eq. 19), min-max scaled to [0, 1]
on the whole map afterwards (Eq. 20; not done here, since a chunk cannot know the map's range).

Normalisation used here: at depth ``i`` with ``C_i`` channels the per-cell difference is
``mean_c (t_ic - s_ic) ** 2`` (the paper's "MSE" over channels), not the raw squared norm,
so that the wide shallow layer does not outweigh the narrow bottleneck by its channel count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError
from xprospect.models._context_norm import ContextNorm, context_share
from xprospect.models.autoencoder import (
    ConvAutoencoder,
    ConvEncoder,
    crop_valid,
    masked_mean,
    valid_mask,
)
from xprospect.models.base import ProspectModel
from xprospect.models.registry import from_config, register

torch = import_torch()
nn = torch.nn

__all__ = ["STOAD", "STOADStudent"]


@register("stoad_student")
class STOADStudent(ConvEncoder):
    """Student network: the teacher's encoder architecture, trained separately.

    Build it with :meth:`like` to copy a teacher's shape. Parameters as
    :class:`~xprospect.models.autoencoder.ConvEncoder`.
    """

    registry_name = "stoad_student"

    @classmethod
    def like(cls, teacher: ConvAutoencoder) -> STOADStudent:
        """Build a freshly initialised student shaped like ``teacher``'s encoder."""
        kw = teacher.config["kwargs"]
        return cls(kw["in_channels"], kw["ndim"], kw["widths"], kw["kernel_size"], kw["activation"])


def _as_model(m: Any, what: str) -> Any:
    if isinstance(m, Mapping):
        return from_config(m)
    if not isinstance(m, nn.Module):
        raise ModelCardError(f"{what} must be a model or a model config; got {type(m)}")
    return m


@register("stoad")
class STOAD(ContextNorm, ProspectModel):
    """Teacher autoencoder plus student encoder; anomaly = three-depth distillation gap.

    Parameters
    ----------
    teacher : ConvAutoencoder or dict
        The teacher (or its ``config``, to rebuild one from a checkpoint).
    student : STOADStudent or dict, optional
        The student (or its config); default a fresh :meth:`STOADStudent.like` the teacher.
    weights : sequence of 3 floats
        Weights ``(h1, h2, h3)`` of the three depths, shallow to deep (1/3 each in the study).

    Notes
    -----
    Per cell: ``score = sum_i h_i * mean_c (T_i - S_i) ** 2`` with ``T_i``, ``S_i`` the
    teacher encoder's and the student's outputs at depth ``i`` (after ReLU). The context is
    the encoder's receptive radius (3 with three 3x3 layers); :meth:`score_dense` runs the
    convolutions unpadded so whole-chunk scores equal window-centre scores. The teacher's
    parameters are frozen (``requires_grad=False``) inside a STOAD. A cell whose context is
    cut by missing data is scored against training cells with as much context
    (:meth:`set_context_norm`, set by :func:`~xprospect.train.fit_stoad`).

    Examples
    --------
    >>> import torch
    >>> st = STOAD(ConvAutoencoder(4))
    >>> st.context, st.score_dense(torch.zeros(1, 4, 10, 12)).shape
    ((3, 3), torch.Size([1, 4, 6]))
    """

    task = "anomaly"
    dense = True
    #: NaN cells are missing data (partial convolutions in both networks), not values
    nan_aware = True
    #: trained in two stages by :func:`xprospect.train.fit_stoad`, not by ``fit_anomaly``
    anomaly_samples = None

    def __init__(
        self, teacher: Any, student: Any = None, weights: Sequence[float] = (1 / 3, 1 / 3, 1 / 3)
    ) -> None:
        super().__init__()
        teacher = _as_model(teacher, "teacher")
        if not isinstance(teacher, ConvAutoencoder):
            msg = f"the STOAD teacher must be a ConvAutoencoder; got {type(teacher)}"
            raise ModelCardError(msg)
        student = STOADStudent.like(teacher) if student is None else _as_model(student, "student")
        if not isinstance(student, ConvEncoder):
            raise ModelCardError(f"the STOAD student must be a STOADStudent; got {type(student)}")
        tk, sk = teacher.config["kwargs"], student.config["kwargs"]
        for key in ("in_channels", "ndim", "widths", "kernel_size"):
            if tk[key] != sk[key]:
                msg = (
                    f"the student must be shaped like the teacher's encoder: {key} is "
                    f"{sk[key]!r} in the student and {tk[key]!r} in the teacher"
                )
                raise ModelCardError(msg)
        weights = [float(w) for w in weights]
        if len(weights) != 3 or any(w < 0 for w in weights) or sum(weights) == 0:
            raise ModelCardError(f"weights must be 3 non-negative floats, not all 0; got {weights}")
        self.teacher = teacher
        self.student = student
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.weights = weights
        self.ndim = teacher.ndim
        self.in_channels = teacher.in_channels
        self.window = None
        before, after = teacher.encoder.context
        self.context = (int(before), int(after))
        self.init_context_norm()
        self.config = {
            "name": "stoad",
            "kwargs": {"teacher": teacher.config, "student": student.config, "weights": weights},
        }

    def train(self, mode: bool = True) -> STOAD:
        """Set training mode on the student only; the frozen teacher stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def feature_gaps(self, x: Any, *, padding: str = "valid") -> list[Any]:
        """Per-cell ``mean_c (T_i - S_i) ** 2`` at the three depths, ``(B, *spatial')`` each."""
        return self._gaps(x, padding=padding)[0]

    def teacher_features(self, x: Any, *, padding: str = "valid") -> list[Any]:
        """Return the frozen teacher encoder's three-depth features of ``x`` (no gradient).

        With ``padding="valid"`` a cell's features depend only on the input within the
        receptive radius, so features of a whole grid, cropped, are those of any tile of it:
        :func:`xprospect.train.fit_stoad` computes them once instead of at every step.
        """
        with torch.no_grad():
            return self.teacher.encoder.features_masked(*valid_mask(x), padding=padding)[0]

    def _gaps(
        self, x: Any, *, padding: str = "valid", teacher: Sequence[Any] | None = None
    ) -> tuple[list[Any], Any, Any]:
        """Gaps at the three depths, the cells' own validity (bool) and the input's mask.

        The validity and the mask (``(B, 1, *spatial)`` float, :func:`valid_mask`) are None
        when every input cell is valid.
        """
        x0, mask = valid_mask(x)
        if teacher is None:
            with torch.no_grad():
                teacher = self.teacher.encoder.features_masked(x0, mask, padding=padding)[0]
        s = self.student.features_masked(x0, mask, padding=padding)[0]
        gaps = [((a - b) ** 2).mean(dim=1) for a, b in zip(teacher, s, strict=True)]
        own = None
        if mask is not None:
            cut = self.context[0] if padding == "valid" else 0
            own = crop_valid(mask, cut)[:, 0] > 0
        return gaps, own, mask

    def loss(
        self, x: Any, target: Any = None, *, teacher: Sequence[Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Student loss on tiles ``x`` (Eq. 11): mean over valid cells of ``sum_i h_i/2 gap_i``.

        ``target`` (optional, bool, the valid cells' shape) restricts the mean to those cells;
        cells holding NaN never count. ``teacher`` (optional) gives the teacher's valid
        features of ``x`` (:meth:`teacher_features`) when they are already known.
        """
        gaps, own, _ = self._gaps(x, padding="valid", teacher=teacher)
        if own is not None:
            target = own if target is None else own & target.to(torch.bool)
        parts = {f"depth{i + 1}": masked_mean(g, target) for i, g in enumerate(gaps)}
        total = sum(0.5 * w * g for w, g in zip(self.weights, parts.values(), strict=True))
        return total, parts

    @property
    def loss_scale(self) -> float:
        """``1 / 2``: :meth:`loss` weighs each depth by ``h_i / 2`` where the score uses ``h_i``."""
        return 0.5

    def error_and_context(self, x: Any) -> tuple[Any, Any]:
        """Raw per-cell score (Eq. 19) and the valid-context share, valid pass.

        Both ``(B, *(spatial - 2 r))``; the score is NaN at cells whose own input holds NaN
        and is not normalised by :attr:`context_norm`; the share is that of
        :func:`~xprospect.models.autoencoder.context_share` (1 everywhere when the input
        holds no NaN).
        """
        r = self.context[0]
        if min(x.shape[2:]) < 2 * r + 1:
            msg = (
                f"STOAD inputs need at least {2 * r + 1} cells per spatial axis; got "
                f"{tuple(x.shape[2:])}"
            )
            raise ModelCardError(msg)
        gaps, own, mask = self._gaps(x, padding="valid")
        out = self.weights[0] * gaps[0]
        for w, g in zip(self.weights[1:], gaps[1:], strict=True):
            out = out + w * g
        if own is None:
            return out, torch.ones_like(out)
        nan = torch.full((), float("nan"), dtype=out.dtype, device=out.device)
        return torch.where(own, out, nan), context_share(mask, r)

    def score_dense(self, x: Any) -> Any:
        """Per-cell score, valid pass: ``(B, *(spatial - 2 r))``.

        NaN at cells whose own input holds NaN; their neighbours are scored from the valid
        cells around them only (partial convolutions in both networks), and their score is
        read against the scores of training cells with as much valid context (set by
        :func:`~xprospect.train.fit_stoad`, see :meth:`set_context_norm`; whole contexts
        keep their score, so an input without NaN is scored by Eq. 19 itself).
        """
        return self.normalise_context(*self.error_and_context(x))

    def score_windows(self, x: Any) -> Any:
        """Score at the centre of windows ``(B, C, *window)`` (each at least ``2 r + 1`` wide)."""
        r = self.context[0]
        centre = tuple(s // 2 - r for s in x.shape[2:])
        return self.score_dense(x)[(slice(None), *centre)]
