"""Element selection: which element maps separate known deposits from barren ground.

For each element the ROC AUC of its value at deposit cells against negative cells is
tested against chance with the standard error of Hanley & McNeil (1982),
``Z_AUC = (AUC - 0.5) / SE``, as in the Pangxidong ResNet-50 study (Table 1 there: eight of
16 elements kept at Z_AUC > 2.58, p < 0.01). Optionally a linear SVM ranks the elements
jointly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from xprospect._dims import ELEMENT_DIM, GRID_DIMS_2D, GRID_DIMS_3D
from xprospect.evaluate.metrics import hanley_mcneil_se, roc_auc, z_auc
from xprospect.evidence.oxides import analyte_element, analyte_groups
from xprospect.exceptions import DataError
from xprospect.points import negative_cells, point_cells

__all__ = ["element_arrays", "plot_selection", "select_elements"]

log = logging.getLogger(__name__)


def element_arrays(
    maps: xr.Dataset | xr.DataArray, elements: Sequence[str] | None = None
) -> tuple[list[str], xr.DataArray]:
    """Element names and a (element, [z,] y, x) DataArray from element maps or a stack.

    A Dataset contributes its variables on the grid dims (``mask`` excepted); a DataArray
    must be a stack with an ``element`` dimension. The map is not computed here.
    """
    if isinstance(maps, xr.DataArray):
        if ELEMENT_DIM not in maps.dims:
            msg = f"a stack needs an {ELEMENT_DIM!r} dimension; got dims {tuple(maps.dims)}"
            raise DataError(msg)
        names = [str(e) for e in maps[ELEMENT_DIM].values]
        if elements is not None:
            missing = [e for e in elements if e not in names]
            if missing:
                raise DataError(f"elements {missing} are not in the stack (has {names})")
            maps = maps.sel({ELEMENT_DIM: list(elements)})
            names = list(elements)
        grid = GRID_DIMS_3D if "z" in maps.dims else GRID_DIMS_2D
        return names, maps.transpose(ELEMENT_DIM, *grid)
    if not isinstance(maps, xr.Dataset):
        raise DataError(f"maps must be a Dataset or a stack DataArray; got {type(maps).__name__}")
    grid = GRID_DIMS_3D if "z" in maps.dims else GRID_DIMS_2D
    on_grid = [
        str(n) for n, v in maps.data_vars.items() if set(v.dims) == set(grid) and n != "mask"
    ]
    if elements is None:
        names = on_grid
    else:
        names = [str(e) for e in elements]
        missing = [e for e in names if e not in on_grid]
        if missing:
            msg = f"elements {missing} are not (y, x) maps in the Dataset (it has {on_grid})"
            raise DataError(msg)
    if not names:
        raise DataError(f"the Dataset holds no element map on {grid}")
    arr = xr.concat(
        [maps[n].transpose(*grid) for n in names],
        dim=ELEMENT_DIM,
        coords="minimal",
        compat="override",
    )
    return names, arr.assign_coords({ELEMENT_DIM: names})


def select_elements(
    maps: xr.Dataset | xr.DataArray,
    deposits: Any,
    *,
    negatives: Any = None,
    buffer: float | None = None,
    alpha: float = 0.01,
    elements: Sequence[str] | None = None,
    seed: int = 0,
    svm: bool = False,
    depleted: bool = False,
    oxides: str | None = "stronger",
) -> pd.DataFrame:
    """Rank elements by how well their values separate deposit cells from negative cells.

    Parameters
    ----------
    maps : Dataset of element maps, or stack DataArray (element, [z,] y, x)
        Gridded element values (e.g. IDW then z-scored).
    deposits : points
        Known deposits (:func:`xprospect.points.as_points`).
    negatives : None, int or points
        Barren cells to compare against. None: as many cells as usable deposits (the
        balanced design of the study, whose Table 1 matches n1 = n2 = 122), drawn at random
        farther than ``buffer`` from every deposit with
        :func:`xprospect.points.sample_negatives`; an int: that many; points: as given.
    buffer : float, optional
        Clearance around deposits (CRS units) when drawing negatives; default
        :func:`xprospect.points.default_buffer` (one cell width).
    alpha : float
        Significance level. The test is two-sided: an element is selected when
        ``|Z_AUC|`` exceeds ``Phi^-1(1 - alpha/2)`` (2.576 for 0.01, the study's 2.58) and
        its values are higher at deposits (or also lower, with ``depleted=True``).
    elements : list of str, optional
        Elements to test (default: every element map).
    seed : int
        Seed of the negative sampling (and of the SVM).
    svm : bool
        Also fit a linear SVM (scikit-learn ``LinearSVC``, balanced class weights) on the
        z-scored values of all elements at the same cells: ``svm_weight`` is each element's
        weight, ``svm_rank`` its rank by recursive feature elimination (1 = kept last).
    depleted : bool
        Also select elements significantly *lower* at deposits (AUC < 0.5).
    oxides : {"stronger", "element", "oxide"} or None
        What to do with an element reported both as itself and as its oxide (``Mg`` and
        ``MgO``, ``W`` and ``WO3``, ``Sr`` and ``SrO``; see
        :func:`xprospect.evidence.oxides.analyte_groups`; ``Fe``, ``Fe2O3`` and ``FeO``
        form one group), which measure one thing: keep only one name of the group in the
        selection. ``"stronger"`` (default) keeps the one with the largest ``|Z_AUC|`` (the
        element form on a tie), ``"element"`` or ``"oxide"`` keeps the first name of that
        form; the others are not selected and name the kept one in ``duplicate_of``. None
        keeps them all.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``element``, sorted by ``z_auc`` (highest first): ``auc`` (of the raw
        value; below 0.5 when the element is lower at deposits), ``se`` (Hanley & McNeil),
        ``z_auc`` (``(AUC - 0.5) / SE``; ``inf`` when every deposit outranks every
        negative, as SE is then 0), ``p_value`` (two-sided), ``direction`` (``"enriched"`` or
        ``"depleted"``), ``selected``, ``duplicate_of`` (the kept name of an element/oxide
        pair, else ``""``), ``n_pos``, ``n_neg`` (and ``svm_weight``, ``svm_rank``).
        ``attrs`` record ``alpha``, ``critical_value``, the negatives, the buffer, the
        deposits dropped and ``oxide_pairs`` (each pair, the policy and the name kept).

    Notes
    -----
    Hanley & McNeil's SE is not symmetric in A; it is evaluated at ``max(A, 1 - A)`` so
    that an element depleted at deposits gets the same ``|Z_AUC|`` as its mirror image
    (for AUC >= 0.5 this is the plain formula, as in the study).
    Cells are used only where every tested element is finite, so all elements are judged
    on the same cells; deposits elsewhere are dropped and counted in ``attrs``. Reading the
    values at the chosen cells computes those cells. Cells are treated as independent
    samples, as in the study; neighbouring cells of an IDW map are not, so the p-values are
    optimistic.

    Examples
    --------
    >>> import xprospect as xp
    >>> world = xp.synthetic.survey(seed=0, n_samples=300)
    >>> g = xp.make_grid(world.bounds, resolution=1000.0, crs=world.crs)
    >>> maps = world.truth(g, ["Au", "Ni"])
    >>> t = select_elements(maps, world.deposits, negatives=40, seed=0)
    >>> bool(t.loc["Au", "selected"]), bool(t.loc["Ni", "selected"])
    (True, False)
    """
    if not 0.0 < alpha < 1.0:
        raise DataError(f"alpha must lie strictly between 0 and 1; got {alpha!r}")
    if oxides not in OXIDE_POLICIES:
        raise DataError(f"oxides={oxides!r}; expected one of {OXIDE_POLICIES}")
    names, arr = element_arrays(maps, elements)
    like = arr.isel({ELEMENT_DIM: 0}, drop=True)
    valid = np.asarray(xr.apply_ufunc(np.isfinite, arr, dask="allowed").all(ELEMENT_DIM).values)
    if not valid.any():
        raise DataError(f"no cell has a finite value for every element of {names}")
    pos = point_cells(deposits, like, valid, "deposits")
    neg, neg_rec = negative_cells(
        like,
        valid,
        deposits,
        negatives,
        buffer=buffer,
        seed=seed,
        n_default=len(pos.flat) if negatives is None else None,
    )
    flat = np.concatenate([pos.flat, neg.flat])
    y = np.concatenate([np.ones(len(pos.flat), bool), np.zeros(len(neg.flat), bool)])
    idx = np.unravel_index(flat, valid.shape)
    grid_dims = tuple(like.dims)
    sel = {d: xr.DataArray(i, dims="cell") for d, i in zip(grid_dims, idx, strict=True)}
    x = np.asarray(arr.isel(sel).transpose("cell", ELEMENT_DIM).values, dtype="float64")
    crit = float(stats.norm.ppf(1.0 - alpha / 2.0))
    n1, n0 = int(y.sum()), int((~y).sum())
    rows = []
    for k, e in enumerate(names):
        a = roc_auc(y, x[:, k])
        # SE at max(A, 1 - A): an element and its mirror image get the same |Z|
        se = hanley_mcneil_se(max(a, 1.0 - a), n1, n0)
        z = z_auc(a, se)
        rows.append(
            {
                "element": e,
                "auc": a,
                "se": se,
                "z_auc": z,
                "p_value": float(2.0 * stats.norm.sf(abs(z))),
                "direction": "enriched" if a >= 0.5 else "depleted",
                "selected": bool(z > crit or (depleted and z < -crit)),
                "n_pos": n1,
                "n_neg": n0,
            }
        )
    table = pd.DataFrame(rows).set_index("element")
    if svm:
        w, rank = _svm_ranking(x, y, seed)
        table["svm_weight"] = w
        table["svm_rank"] = rank
    table = table.sort_values("z_auc", ascending=False, kind="stable")
    pairs = _drop_oxide_duplicates(table, oxides)
    table.attrs.update(
        oxide_pairs=pairs,
        alpha=float(alpha),
        critical_value=crit,
        test="two-sided normal",
        depleted=bool(depleted),
        **pos.info("deposits"),
        **neg_rec,
    )
    log.info(
        "select_elements: %d of %d elements selected at alpha=%g (|Z| > %.3f)",
        int(table["selected"].sum()),
        len(table),
        alpha,
        crit,
    )
    return table


#: Policies of :func:`select_elements` for an element reported also as its oxide.
OXIDE_POLICIES = ("stronger", "element", "oxide", None)


def _drop_oxide_duplicates(table: pd.DataFrame, policy: str | None) -> list[dict[str, Any]]:
    """Keep one name of each element measured as itself and as oxides; return what was done."""
    table["duplicate_of"] = ""
    done = []
    for sym, names in analyte_groups(table.index).items():
        plain = [n for n in names if not analyte_element(n)[1]]  # type: ignore[index]
        oxides = [n for n in names if n not in plain]
        z = table.loc[names, "z_auc"].abs()
        strongest = str(z.idxmax())
        if policy is None:
            keep = None
        elif policy == "element":
            keep = plain[0]
        elif policy == "oxide":
            keep = oxides[0]
        else:  # the larger |Z_AUC|; a tie goes to the element form (listed first)
            keep = strongest
        if keep is not None:
            for other in names:
                if other != keep:
                    table.loc[other, "selected"] = False
                    table.loc[other, "duplicate_of"] = keep
            log.info("select_elements: %s measure %s; kept %s", names, sym, keep)
        done.append(
            {
                "element": plain[0],
                "oxide": oxides[0],
                "names": names,
                "policy": policy,
                "kept": keep,
            }
        )
    return done


def _svm_ranking(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # scikit-learn is a heavy import needed only for the optional SVM ranking
    from sklearn.feature_selection import RFE
    from sklearn.svm import LinearSVC

    sd = x.std(axis=0)
    xs = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    clf = LinearSVC(C=1.0, class_weight="balanced", random_state=seed, max_iter=20000)
    w = clf.fit(xs, y).coef_[0].copy()
    if x.shape[1] == 1:
        return w, np.ones(1, dtype="int64")
    rfe = RFE(
        LinearSVC(C=1.0, class_weight="balanced", random_state=seed, max_iter=20000),
        n_features_to_select=1,
        step=1,
    ).fit(xs, y)
    return w, rfe.ranking_.astype("int64")


def plot_selection(table: pd.DataFrame, ax: Any = None) -> Any:
    """Draw a :func:`select_elements` table: Z_AUC per element against the critical value.

    Selected elements are drawn in red, the others in grey; dashed lines mark
    ``±critical_value``. Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt  # optional heavy dependency, only for figures

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.3 * len(table) + 1.5))
    t = table.iloc[::-1]
    colors = ["tab:red" if s else "tab:grey" for s in t["selected"]]
    z = t["z_auc"].to_numpy(dtype="float64")
    finite = z[np.isfinite(z)]
    cap = (
        max(
            float(np.abs(finite).max()) if finite.size else 1.0,
            float(table.attrs.get("critical_value", 1.0)),
        )
        * 1.2
    )
    z = np.clip(z, -cap, cap)  # infinite Z (SE = 0) drawn at the axis end
    from matplotlib.patches import Patch  # optional heavy dependency, only for figures

    ax.barh([str(e) for e in t.index], z, color=colors)
    handles: list[Any] = [
        Patch(color="tab:red", label="selected"),
        Patch(color="tab:grey", label="not selected"),
    ]
    crit = table.attrs.get("critical_value")
    if crit is not None:
        handles.append(ax.axvline(crit, ls="--", c="k", lw=0.8, label=f"critical {crit:.2f}"))
        if table.attrs.get("depleted"):
            ax.axvline(-crit, ls="--", c="k", lw=0.8)
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    for i, (zi, a) in enumerate(zip(z, t["auc"], strict=True)):
        ax.text(zi, i, f" {a:.3f}", va="center", fontsize=7)
    ax.set_xlabel("Z_AUC = (AUC - 0.5) / SE  (standard errors; labels: AUC)")
    ax.set_ylabel("element")
    ax.set_title("Element selection")
    return ax
