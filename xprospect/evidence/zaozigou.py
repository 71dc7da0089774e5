"""The Zaozigou study's evidence layers: a recipe assembling five layers of a block model.

:func:`zaozigou_layers` builds the five evidence layers of the Zaozigou 3-D study
(Yu et al., 2022, *Minerals* 12, 1382; section 4.1, Table 1) from a geochemical block model:

1. a buffer around ore-controlling structures (30 m around fractures);
2. a factor-analysis association (the Sb-Hg factor F4, tracing fractures);
3. the Au anomaly class from concentration-volume (C-V) fractal thresholds;
4. the near-ore halo association Au-Ag-Cu-Pb-Zn (balance B2 of a knowledge-driven
   compositional data analysis);
5. the front-halo / tail-halo parameter (As-Sb-Hg)/(W-Bi-Co-Mo).

Its building blocks live where they belong: balances and halo ratios in
:mod:`xprospect.preprocess.compositional`, structure buffers in
:mod:`xprospect.evidence.proximity`, factor analysis and fractal thresholds in
:mod:`xprospect.preprocess`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd
import xarray as xr

from xprospect._dims import element_vars, get_crs, grid_geometry, write_crs
from xprospect.evidence.proximity import buffer_structures
from xprospect.exceptions import DataError
from xprospect.preprocess import compositional
from xprospect.preprocess.compositional import (
    FRONT_HALO,
    NEAR_ORE_HALO,
    TAIL_HALO,
    _group,
    halo_ratio,
)
from xprospect.preprocess.factors import factor_analysis
from xprospect.preprocess.fractal import classify_fractal, fractal_thresholds

__all__ = ["zaozigou_layers"]

log = logging.getLogger(__name__)


def _valid_mask(ds: xr.Dataset, names: list[str]) -> xr.DataArray:
    ok = ds[names[0]].notnull()
    for n in names[1:]:
        ok = ok & ds[n].notnull()
    return ok


def _pick_factor(
    scores: xr.DataArray, loadings: pd.DataFrame, keep: Sequence[str]
) -> tuple[xr.DataArray, str, float]:
    keep = list(keep)
    missing = [e for e in keep if e not in loadings.index]
    if missing:
        raise DataError(
            f"factor_keep elements {missing} were not in the factor analysis "
            f"(elements {list(loadings.index)})"
        )
    fac = [c for c in loadings.columns if c.startswith("F")]
    sums = loadings.loc[keep, fac].sum(axis=0)
    best = str(sums.abs().idxmax())
    sign = 1.0 if sums[best] >= 0 else -1.0
    return scores.sel(factor=best, drop=True) * sign, best, sign


def zaozigou_layers(
    block: xr.Dataset,
    *,
    ratio: tuple[Sequence[str], Sequence[str]] | None = (FRONT_HALO, TAIL_HALO),
    ratio_kind: str = "log",
    factors: int | None = 4,
    factor_elements: Sequence[str] | None = None,
    factor_keep: Sequence[str] | None = ("Sb", "Hg"),
    balance: tuple[Sequence[str], Sequence[str] | None] | None = (NEAR_ORE_HALO, None),
    cv_element: str | None = "Au",
    cv_breaks: int = 2,
    structures: Any = None,
    buffer: float = 30.0,
    seed: int = 0,
) -> xr.Dataset:
    """Evidence layers of a geochemical block model (Yu et al., 2022, Table 1).

    Each layer is optional; the defaults reproduce the Zaozigou set for a block with
    the twelve elements Ag, As, Au, Cu, Hg, Pb, Zn, Sb, W, Bi, Co, Mo:

    ``structure_buffer``
        1 within ``buffer`` of ``structures`` (surfaces, lines or points), else 0;
        see :func:`buffer_structures`.
    ``factor_<elements>`` (or ``F1`` ... ``Fn``)
        Scores of a varimax factor analysis of log10 standardised elements
        (:func:`xprospect.preprocess.factor_analysis`); with ``factor_keep`` only the
        factor whose loadings on those elements sum highest (e.g. the Sb-Hg factor),
        signed so that they load positively.
    ``cv_<element>``
        Class of ``cv_element`` from concentration-volume fractal thresholds
        (:func:`xprospect.preprocess.fractal_thresholds`, ``cv_breaks`` breaks): 0
        background, 1 anomaly, 2 high anomaly.
    ``balance_<elements>``
        The ilr balance of the near-ore group against the remaining elements of the
        block (or the group given), :func:`~xprospect.preprocess.balance`.
    ``halo_ratio``
        Front/tail halo parameter, :func:`~xprospect.preprocess.halo_ratio` with
        ``kind=ratio_kind`` (default log10 of the product ratio: the same ranking, a tamer
        scale for models).

    Factor analysis and the C-V thresholds are global (they compute the data they
    need); the other layers stay lazy. Every geochemical layer is NaN where one of its
    elements is; the buffer layer is NaN wherever all geochemical layers are, so the
    layers share one footprint.

    Parameters
    ----------
    block : xarray.Dataset
        Voxel model (or 2-D grid) with one variable per element, concentrations > 0.
    ratio : (front, tail) or None
        Halo groups for ``halo_ratio``.
    ratio_kind : {"log", "ratio", "balance"}
        See :func:`~xprospect.preprocess.halo_ratio`.
    factors : int or None
        Number of factors.
    factor_elements : list of str, optional
        Elements in the factor analysis (default every numeric element variable).
    factor_keep : list of str or None
        Keep only the factor of this association (None keeps every factor).
    balance : (numerator, denominator or None) or None
        Groups of the balance layer; a None denominator means every other element
        variable of the block.
    cv_element : str or None
        Element of the C-V fractal class layer.
    cv_breaks : int
        Number of C-V thresholds.
    structures : optional
        Structures for the buffer layer (see :func:`distance_to_structures`).
    buffer : float
        Buffer width in CRS units.
    seed : int
        Seed of the factor analysis.

    Returns
    -------
    xarray.Dataset
        One float32 variable per layer on the block's grid and CRS, each with attrs
        saying how it was made (``long_name``, ``formula`` or ``method``, elements),
        plus the block's ``mask`` when it has one. ``attrs["layers"]`` lists them.

    Raises
    ------
    DataError
        A layer needs elements the block does not hold (named), or nothing to build.

    Examples
    --------
    >>> import xprospect as xp
    >>> import xarray as xr, numpy as np
    >>> rng = np.random.default_rng(0)
    >>> vox = xp.make_voxels((0, 0, 0, 50, 50, 50), resolution=10, crs="EPSG:28350")
    >>> block = vox.assign({e: (("z", "y", "x"), rng.lognormal(size=(5, 5, 5)))
    ...                     for e in ["As", "Sb", "Hg", "W", "Mo"]})
    >>> layers = xp.evidence.zaozigou_layers(block, ratio=(["As", "Sb", "Hg"], ["W", "Mo"]),
    ...                                      factors=None, balance=None, cv_element=None)
    >>> list(layers.data_vars)
    ['mask', 'halo_ratio']
    """
    if not isinstance(block, xr.Dataset):
        msg = f"zaozigou_layers() needs a Dataset block model; got {type(block).__name__}"
        raise DataError(msg)
    geom = grid_geometry(block)
    elements = [n for n in element_vars(block, geom.dims) if block[n].dtype != bool]
    out = xr.Dataset(coords={d: block[d] for d in geom.dims})
    layers: dict[str, xr.DataArray] = {}
    used: set[str] = set()

    if ratio is not None:
        front, tail = ratio
        layers["halo_ratio"] = halo_ratio(block, front, tail, kind=ratio_kind)
        used |= set(front) | set(tail)

    if balance is not None:
        num, den = balance
        num = _group(block, num, "balance numerator", "zaozigou_layers")
        if den is None:
            den = [e for e in elements if e not in num]
            if not den:
                raise DataError(
                    f"zaozigou_layers(): no elements left for the balance denominator after {num}"
                )
        nm = f"balance_{'_'.join(num)}"
        layers[nm] = compositional.balance(block, num, den, name=nm)
        used |= set(num) | set(den)

    if cv_element is not None:
        _group(block, [cv_element], "C-V", "zaozigou_layers")
        var = block[cv_element]
        thr = fractal_thresholds(
            var, n_breaks=int(cv_breaks), kind="volume" if "z" in geom.dims else "area"
        )
        cls = classify_fractal(var, thr)
        lay = cls.where(cls >= 0).astype("float32")
        lay.attrs = {
            "long_name": f"{cv_element} {'C-V' if 'z' in geom.dims else 'C-A'} "
            "fractal anomaly class",
            "class_names": cls.attrs["class_names"],
            "thresholds": [float(t) for t in thr.thresholds],
            "units": "class",
            "element": cv_element,
            "method": f"piecewise log-log fit, {int(cv_breaks)} breaks",
        }
        layers[f"cv_{cv_element}"] = lay
        used.add(cv_element)

    if factors is not None:
        fel = list(factor_elements) if factor_elements is not None else elements
        scores, loadings = factor_analysis(block, n_factors=int(factors), elements=fel, seed=seed)
        used |= set(fel)
        base = {
            "method": scores.attrs["method"],
            "units": "1",
            "loadings": {
                f: {e: round(float(v), 4) for e, v in loadings[f].items()}
                for f in loadings.columns
                if f.startswith("F")
            },
        }
        if factor_keep is not None:
            lay, fname, sign = _pick_factor(scores, loadings, factor_keep)
            label = loadings.attrs["labels"][fname]
            nm = f"factor_{'_'.join(factor_keep)}"
            lay.attrs = {
                **base,
                "long_name": f"factor scores {label}" + (" (sign flipped)" if sign < 0 else ""),
                "factor": fname,
            }
            layers[nm] = lay
        else:
            for f, label in loadings.attrs["labels"].items():
                lay = scores.sel(factor=f, drop=True)
                lay.attrs = {**base, "long_name": f"factor scores {label}", "factor": f}
                layers[f] = lay

    geo_valid = _valid_mask(block, sorted(used)) if used else None
    if structures is not None:
        buf = buffer_structures(block, structures, buffer)
        lay = buf.astype("float32")
        if geo_valid is not None:
            lay = lay.where(geo_valid)
        lay.attrs = {
            **buf.attrs,
            "units": "1 inside, 0 outside",
            "long_name": f"{float(buffer):g} buffer around structures",
        }
        layers = {"structure_buffer": lay, **layers}

    if not layers:
        raise DataError("zaozigou_layers(): every layer is switched off; nothing to build")
    if "mask" in block.data_vars:
        out["mask"] = block["mask"]
    for nm, lay in layers.items():
        lay = lay.astype("float32", keep_attrs=True).reset_coords(drop=True)
        out[nm] = (geom.dims, lay.transpose(*geom.dims).data, lay.attrs)
    out.attrs["layers"] = list(layers)
    out.attrs["source"] = "xprospect.evidence.zaozigou_layers"
    crs = get_crs(block)
    return write_crs(out, crs) if crs is not None else out
