r"""Weights of evidence (Bonham-Carter et al. 1989; Bonham-Carter 1994; Agterberg & Cheng 2002).

Every element of the stack is one evidence layer, cut into classes: quantile classes of a
continuous layer, or the codes of a categorical one (geology units). Each class ``B`` gets
the weights

.. math::
    W^+ = \ln\frac{N(B \cap D) / N(D)}{N(B \cap \bar D) / N(\bar D)},\qquad
    W^- = \ln\frac{N(\bar B \cap D) / N(D)}{N(\bar B \cap \bar D) / N(\bar D)}

with variances ``1/N(B∩D) + 1/N(B∩D̄)`` and ``1/N(B̄∩D) + 1/N(B̄∩D̄)`` (counts in unit cells),
the contrast ``C = W+ - W-`` and the studentized contrast ``C / s(C)``. A continuous layer is
*generalised* to a binary pattern by cumulative contrast: of every cut ``value >= t`` (or
``value <= t``) the one of largest studentized contrast is chosen, and it enters the
posterior only when that studentized contrast reaches ``min_studentized`` (2 by default, the
usual rough test that the contrast differs from zero: Bonham-Carter 1994 ch. 9; Carranza
2004; ArcSDM's "confidence of contrast"); otherwise the layer adds no evidence. Classes of a
multi-class layer (categorical codes, or ``generalize="none"``) whose studentized contrast
is below ``min_studentized`` in magnitude are pooled into one "other" class weighted from
their summed counts, as ArcSDM's categorical weights do. Without the test, a handful of
deposits always yields some cut of large ``|W-|`` from a zero count (the continuity correction
below), which is noise, not evidence: with random "deposits" it ranked held-out cells below
chance. The posterior logit of a cell is the prior logit plus the weight of each layer's
class at the cell; its variance (the weights' part, Bonham-Carter 1994 eq. 9-16) is
``P² (1/N(D) + Σ var W)``. Conditional independence is checked by the omnibus ratio
``N(D) / ΣP`` and the Agterberg-Cheng test of ``ΣP - N(D)``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from xprospect.baselines._table import check_stack
from xprospect.baselines.base import SupervisedModel
from xprospect.exceptions import DataError, XProspectWarning

__all__ = ["WeightsOfEvidence", "weights_table"]

#: Counts of zero are replaced by this (a continuity correction) so weights stay finite.
_ZERO = 0.5


def weights_table(in_class_dep: Any, in_class_cells: Any, n_dep: int, n_cells: int) -> pd.DataFrame:
    """W+, W-, their variances, contrast and studentized contrast of classes.

    Parameters
    ----------
    in_class_dep : array-like of int
        Deposit cells inside each class, ``N(B ∩ D)``.
    in_class_cells : array-like of int
        Cells inside each class, ``N(B)`` (deposit cells included).
    n_dep, n_cells : int
        Deposit cells ``N(D)`` and cells ``N(T)`` of the study area.

    Returns
    -------
    pandas.DataFrame
        Columns ``n_deposits``, ``n_cells``, ``w_plus``, ``w_minus``, ``var_w_plus``,
        ``var_w_minus``, ``contrast``, ``s_contrast``, ``studentized_contrast``. Zero counts
        are replaced by 0.5 (a continuity correction) before the logarithms.

    Examples
    --------
    >>> t = weights_table([3], [10], 4, 100)
    >>> round(float(t["w_plus"][0]), 4), round(float(t["contrast"][0]), 4)
    (2.3308, 3.6413)
    """
    bd = np.asarray(in_class_dep, dtype="float64")
    b = np.asarray(in_class_cells, dtype="float64")
    if bd.shape != b.shape or (bd > b).any() or (bd < 0).any():
        raise DataError(
            f"class counts are inconsistent: deposits {bd.tolist()} in cells {b.tolist()}"
        )
    if not 0 < n_dep < n_cells:
        raise DataError(f"need 0 < N(D) < N(T); got N(D)={n_dep}, N(T)={n_cells}")
    nd, nnd = float(n_dep), float(n_cells - n_dep)

    def fix(v: np.ndarray) -> np.ndarray:
        return np.where(v <= 0, _ZERO, v)

    b_d = fix(bd)
    b_nd = fix(b - bd)
    nb_d = fix(nd - bd)
    nb_nd = fix(nnd - (b - bd))
    w_plus = np.log((b_d / nd) / (b_nd / nnd))
    w_minus = np.log((nb_d / nd) / (nb_nd / nnd))
    v_plus = 1.0 / b_d + 1.0 / b_nd
    v_minus = 1.0 / nb_d + 1.0 / nb_nd
    c = w_plus - w_minus
    s_c = np.sqrt(v_plus + v_minus)
    return pd.DataFrame(
        {
            "n_deposits": bd,
            "n_cells": b,
            "w_plus": w_plus,
            "w_minus": w_minus,
            "var_w_plus": v_plus,
            "var_w_minus": v_minus,
            "contrast": c,
            "s_contrast": s_c,
            "studentized_contrast": c / s_c,
        }
    )


class WeightsOfEvidence(SupervisedModel):
    """Weights-of-evidence posterior probability of a deposit in a unit cell.

    Fitted on every valid cell of the study area (restricted by ``fit(normal=)``): deposit
    cells against all the others, as the method counts them (no negative sampling).

    Parameters
    ----------
    n_classes : int
        Quantile classes of each continuous layer (of the study area's cells).
    generalize : {"binary", "none"}
        ``"binary"``: each continuous layer becomes the one cumulative pattern
        (``value >= t`` or ``value <= t``) of largest studentized contrast, weighted by
        W+ / W-. ``"none"``: multi-class weights, each class weighted by its own
        ``ln(P(B_k|D) / P(B_k|D̄))``.
    categorical : sequence of str
        Elements whose values are class codes (one class per code, never generalised).
    min_studentized : float
        Significance test of the evidence. A generalised binary pattern enters the
        posterior only when its studentized contrast is at least this (else the layer
        adds no evidence: weight 0); a class of a multi-class layer keeps its own weight
        only when the magnitude of its studentized contrast is at least this, the other
        classes are pooled into one class weighted from their summed counts (weight 0 when
        that is every class). ``0`` keeps every pattern and class (no test). When no layer
        is significant the posterior is the prior everywhere (a flat map) and a
        :class:`~xprospect.exceptions.XProspectWarning` says so.
    positive_buffer : float
        Cells within this distance of a deposit count as deposit cells.
    seed : int
        Unused by the counts; kept for the common API.

    Attributes
    ----------
    table_ : pandas.DataFrame
        One row per class of every layer: ``element``, ``class``, ``lower``, ``upper``
        (or ``code``), the counts and :func:`weights_table`'s columns, ``weight`` and
        ``var_weight`` (what a class adds to the posterior logit, and its variance),
        ``significant`` (the row passes ``min_studentized``), ``pattern`` (``"class"``,
        ``"other"`` for a pooled class, or the binary pattern ``"value >= t"``) and
        ``used`` (the rows that enter the posterior: a binary pattern only when
        significant).
    prior_ : float
        ``N(D) / N(T)``.
    ci_test_ : dict
        ``n_deposits``, ``predicted`` (ΣP over the study area), ``omnibus_ratio``
        (``N(D) / ΣP``; below 0.85 suggests conditional dependence), ``z`` and ``p_value``
        of the one-sided Agterberg-Cheng test of ``ΣP > N(D)``.
    """

    _sampling = "background"

    def __init__(
        self,
        n_classes: int = 10,
        *,
        generalize: str = "binary",
        categorical: Sequence[str] = (),
        min_studentized: float = 2.0,
        positive_buffer: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.n_classes = n_classes
        self.generalize = generalize
        self.categorical = categorical
        self.min_studentized = min_studentized
        self.positive_buffer = positive_buffer
        self.seed = seed

    output_name = "posterior"
    output_meaning = "posterior probability of a deposit in a unit cell"

    @property
    def buffer(self) -> None:
        """Weights of evidence counts every cell: no exclusion buffer."""
        return None

    @property
    def n_negatives(self) -> int:
        """Every valid cell of the study area enters the counts."""
        return np.iinfo(np.int64).max

    # -- fitting -----------------------------------------------------------------------
    def _layer_classes(self, col: np.ndarray, name: str) -> tuple[np.ndarray, list[dict]]:
        """Class index of each value and the class descriptions of one layer."""
        if name in set(self.categorical):
            codes = np.unique(col)
            return np.searchsorted(codes, col), [{"code": float(c)} for c in codes]
        edges = np.unique(np.quantile(col, np.linspace(0, 1, int(self.n_classes) + 1)))
        if edges.size < 2:
            edges = np.array([col.min(), col.max()])
        inner = edges[1:-1]
        idx = np.searchsorted(inner, col, side="right")
        desc = [{"lower": float(lo), "upper": float(hi)} for lo, hi in itertools.pairwise(edges)]
        return idx, desc

    def _fit_table(self, x: np.ndarray, y: np.ndarray | None, seed: int) -> None:
        if self.generalize not in ("binary", "none"):
            raise DataError(f"generalize must be 'binary' or 'none'; got {self.generalize!r}")
        if int(self.n_classes) < 2:
            raise DataError(f"n_classes must be >= 2; got {self.n_classes!r}")
        if not np.isfinite(self.min_studentized) or self.min_studentized < 0:
            raise DataError(f"min_studentized must be a number >= 0; got {self.min_studentized!r}")
        unknown = [c for c in self.categorical if c not in self.elements_]
        if unknown:
            raise DataError(f"categorical elements {unknown} are not in the stack {self.elements_}")
        assert y is not None
        # rows: deposit cells (y = 1) then every cell of the study area (y = 0)
        area = x[y == 0]
        dep = x[y == 1]
        n_cells, n_dep = area.shape[0], dep.shape[0]
        if n_dep >= n_cells:
            raise DataError(f"{n_dep} deposit cells in a study area of {n_cells} cells")
        rows: list[pd.DataFrame] = []
        for j, name in enumerate(self.elements_):
            idx_area, desc = self._layer_classes(area[:, j], name)
            idx_dep = self._classify(dep[:, j], j, desc, name)
            k = len(desc)
            n_b = np.bincount(idx_area, minlength=k)
            n_bd = np.bincount(idx_dep, minlength=k)
            t = weights_table(n_bd, n_b, n_dep, n_cells)
            t.insert(0, "class", np.arange(k))
            t.insert(0, "element", name)
            for key in ("lower", "upper", "code"):
                t[key] = [d.get(key, np.nan) for d in desc]
            if self.generalize == "binary" and name not in set(self.categorical) and k > 1:
                t["weight"] = t["w_plus"]
                t["var_weight"] = t["var_w_plus"]
                t["significant"] = False
                t["pattern"] = "class"
                t["used"] = False
                gen = self._generalise(n_bd, n_b, n_dep, n_cells, name, desc)
                rows.append(t)
                rows.append(gen)
                continue
            rows.append(self._multiclass_weights(t, n_dep, n_cells))
        self.table_ = pd.DataFrame(pd.concat(rows, ignore_index=True))
        if not self._has_evidence():
            warnings.warn(
                f"weights of evidence: no evidence layer of {self.elements_} is significant "
                f"(studentized contrast >= min_studentized={self.min_studentized:g}) with "
                f"{n_dep} deposit cells; the posterior is the prior {n_dep / n_cells:.4g} "
                "everywhere (a flat map)",
                XProspectWarning,
                stacklevel=4,
            )
        self.prior_ = n_dep / n_cells
        self.n_deposits_ = n_dep
        self.n_cells_ = n_cells
        p, v = self._posterior(area)
        predicted = float(p.sum())
        sd = float(np.sqrt(v.sum()))
        z = (predicted - n_dep) / sd if sd > 0 else 0.0
        self.ci_test_ = {
            "n_deposits": int(n_dep),
            "predicted": predicted,
            "omnibus_ratio": float(n_dep / predicted) if predicted > 0 else np.inf,
            "z": float(z),
            "p_value": float(stats.norm.sf(z)),
        }

    def _multiclass_weights(self, t: pd.DataFrame, n_dep: int, n_cells: int) -> pd.DataFrame:
        """Weight each class by its own W+ if significant; pool the others into one class."""
        # multi-class weight of a class against the rest: ln P(B_k|D) / P(B_k|not D)
        sig = np.abs(t["studentized_contrast"].to_numpy()) >= float(self.min_studentized)
        t["weight"] = t["w_plus"]
        t["var_weight"] = t["var_w_plus"]
        t["significant"] = sig
        t["pattern"] = np.where(sig, "class", "other")
        t["used"] = True
        if (~sig).any():
            other_d = float(t.loc[~sig, "n_deposits"].sum())
            other_b = float(t.loc[~sig, "n_cells"].sum())
            if other_b >= n_cells:  # every class pooled: the layer adds nothing
                w, vw = 0.0, 0.0
            else:
                o = weights_table([other_d], [other_b], n_dep, n_cells)
                w, vw = float(o["w_plus"].iloc[0]), float(o["var_w_plus"].iloc[0])
            t.loc[~sig, "weight"] = w
            t.loc[~sig, "var_weight"] = vw
        return t

    def _has_evidence(self) -> bool:
        """Whether any row that enters the posterior adds a non-zero weight."""
        used = self.table_[self.table_["used"]]
        binary = used["class"] == -1
        return bool(binary.any() or (used.loc[~binary, "weight"] != 0).any())

    def _classify(self, col: np.ndarray, j: int, desc: list[dict], name: str) -> np.ndarray:
        if name in set(self.categorical):
            codes = np.array([d["code"] for d in desc])
            pos = np.searchsorted(codes, col)
            pos = np.clip(pos, 0, len(codes) - 1)
            return np.where(codes[pos] == col, pos, -1)
        inner = np.array([d["lower"] for d in desc[1:]])
        return np.searchsorted(inner, col, side="right")

    def _generalise(
        self,
        n_bd: np.ndarray,
        n_b: np.ndarray,
        n_dep: int,
        n_cells: int,
        name: str,
        desc: list[dict],
    ) -> pd.DataFrame:
        """Return the cumulative pattern (high or low values) of largest studentized contrast."""
        best = None
        k = len(n_b)
        for direction in ("ge", "le"):
            if direction == "ge":  # classes k..K-1: value >= lower of class k
                cum_d, cum_b = np.cumsum(n_bd[::-1])[::-1], np.cumsum(n_b[::-1])[::-1]
                cuts = range(1, k)
            else:  # classes 0..k: value <= upper of class k
                cum_d, cum_b = np.cumsum(n_bd), np.cumsum(n_b)
                cuts = range(0, k - 1)
            idx = np.array(list(cuts))
            t = weights_table(cum_d[idx], cum_b[idx], n_dep, n_cells)
            i = int(np.argmax(t["studentized_contrast"].values))
            sc = float(t["studentized_contrast"].iloc[i])
            if best is None or sc > best[0]:
                cut = idx[i]
                thr = desc[cut]["lower"] if direction == "ge" else desc[cut]["upper"]
                best = (sc, direction, thr, t.iloc[[i]].reset_index(drop=True))
        assert best is not None
        sc, direction, thr, row = best
        row.insert(0, "class", -1)
        row.insert(0, "element", name)
        row["lower"] = thr if direction == "ge" else np.nan
        row["upper"] = thr if direction == "le" else np.nan
        row["code"] = np.nan
        row["weight"] = row["w_plus"]
        row["var_weight"] = row["var_w_plus"]
        row["pattern"] = f"value {'>=' if direction == 'ge' else '<='} {thr:.6g}"
        # a pattern enters the posterior only when its contrast is significant
        row["significant"] = sc >= float(self.min_studentized)
        row["used"] = row["significant"]
        return row

    # -- the posterior ------------------------------------------------------------------
    def _posterior(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior probability and its variance (weights' part) of every row of ``x``."""
        logit = np.full(x.shape[0], np.log(self.prior_ / (1.0 - self.prior_)))
        var = np.full(x.shape[0], 1.0 / self.n_deposits_)
        used = self.table_[self.table_["used"]]
        for j, name in enumerate(self.elements_):
            t = used[used["element"] == name]
            col = x[:, j]
            if len(t) == 0:  # no significant pattern: the layer adds no evidence
                continue
            if len(t) == 1 and int(t["class"].iloc[0]) == -1:
                r = t.iloc[0]
                inside = col >= r["lower"] if np.isfinite(r["lower"]) else col <= r["upper"]
                logit += np.where(inside, r["w_plus"], r["w_minus"])
                var += np.where(inside, r["var_w_plus"], r["var_w_minus"])
                continue
            desc = [
                {"lower": lo, "upper": hi, "code": c}
                for lo, hi, c in zip(t["lower"], t["upper"], t["code"], strict=True)
            ]
            idx = self._classify(col, j, desc, name)
            w = t["weight"].to_numpy()
            vw = t["var_weight"].to_numpy()
            known = idx >= 0  # a code never seen in training: no evidence (weight 0)
            logit[known] += w[idx[known]]
            var[known] += vw[idx[known]]
        p = 1.0 / (1.0 + np.exp(-logit))
        return p, p * p * var

    def _score_table(self, x: np.ndarray) -> np.ndarray:
        return self._posterior(x)[0]

    def _std_table(self, x: np.ndarray) -> np.ndarray:
        return np.sqrt(self._posterior(x)[1])

    def predict_std(self, stack: xr.DataArray) -> xr.DataArray:
        """Map the standard deviation of the posterior probability (the weights' uncertainty).

        Parameters
        ----------
        stack : xarray.DataArray
            As :meth:`predict`.

        Returns
        -------
        xarray.DataArray
            ``posterior_std`` on the stack's grid; NaN where any element is NaN.
        """
        self._check_fitted()
        spatial = check_stack(stack, f"{type(self).__name__}.predict_std")
        stack = stack.sel(element=self.elements_) if "element" in stack.coords else stack
        return self._predict_map(
            stack,
            spatial,
            self._std_table,
            "posterior_std",
            "standard deviation of the posterior probability",
        )
