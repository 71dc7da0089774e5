"""Log-ratios of compositions: clr and ilr transforms, balances and halo ratios.

Concentrations are closed data (parts of a whole), so their raw values and their
correlations are distorted by the constant sum. Log-ratios (Aitchison, 1986) move
compositions to real space: ``clr`` keeps one variable per element (they sum to
zero), ``ilr`` gives ``D - 1`` orthonormal coordinates in which Euclidean distance
equals Aitchison distance. Both are scale invariant, so units need not agree
(ppb and ppm give the same result up to a constant in clr that cancels).

:func:`balance` contrasts two groups of elements (one ilr coordinate of a sequential
binary partition) and :func:`halo_ratio` the front and tail halos of primary-halo zoning;
both keep the dims, coordinates and CRS of their input and stay lazy on dask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from xprospect._dims import get_crs, write_crs
from xprospect.exceptions import DataError
from xprospect.preprocess.scaling import (
    HISTORY_ATTR,
    _as_dataset,
    _checked_log,
    _finish,
    _new_attrs,
    _select,
)

__all__ = [
    "FRONT_HALO",
    "NEAR_ORE_HALO",
    "TAIL_HALO",
    "balance",
    "clr",
    "halo_ratio",
    "ilr",
    "pivot_basis",
]

_BASES = ("pivot",)


def _parts(ds: xr.Dataset | xr.DataArray, elements, func: str) -> tuple[xr.Dataset, list[str]]:
    data, was_da = _as_dataset(ds, func)
    if was_da:
        msg = (
            f"{func}() works across the element variables of a Dataset (at least two); "
            "got a single DataArray"
        )
        raise DataError(msg)
    names = _select(data, elements, func)
    if len(names) < 2:
        raise DataError(
            f"{func}() needs at least 2 elements (parts of the composition); got {names}"
        )
    dims = {data[n].dims for n in names}
    if len(dims) > 1:
        raise DataError(
            f"{func}() needs every element on the same dims; got "
            f"{ {n: data[n].dims for n in names} }"
        )
    return data, names


def clr(ds: xr.Dataset, *, elements: str | Sequence[str] | None = None) -> xr.Dataset:
    """Centred log-ratio: ``ln(x_i) - mean_j ln(x_j)`` in each cell or sample.

    Parameters
    ----------
    ds : xarray.Dataset
        Grid (y, x), voxels (z, y, x) or samples (``sample``) with at least two
        element variables, numpy or dask backed.
    elements : list of str, optional
        The parts of the composition; default every numeric (non-boolean) variable
        on the data dims. The result depends on this set.

    Returns
    -------
    xarray.Dataset
        Same variables, coordinates, CRS and attrs; each part becomes its clr
        (natural log) with ``units = "clr"``. In every cell the parts sum to 0. A
        cell missing any part is NaN for all parts. Lazy when the input is.

    Raises
    ------
    DataError
        Fewer than two parts, or a zero or negative value (naming the element; at
        once on numpy data, when computed on dask data).

    Examples
    --------
    >>> import xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu", "As"])
    >>> c = xp.preprocess.clr(w.samples)
    >>> bool(abs(c["Au"] + c["Cu"] + c["As"]).max() < 1e-12)
    True
    """
    data, names = _parts(ds, elements, "clr")
    logs = [_checked_log(data[n], n) for n in names]
    centre = sum(logs[1:], logs[0]) / len(logs)
    new = {}
    for n, lg in zip(names, logs, strict=True):
        var = data[n]
        new[n] = _finish(lg - centre, var, _new_attrs(var, "clr", "clr"))
    return data.assign(new)


def pivot_basis(n_parts: int) -> np.ndarray:
    """Contrast matrix of the pivot (Helmert-like) ilr balances.

    Row ``i`` (0-based) contrasts part ``i`` with the geometric mean of parts
    ``i+1 .. D-1``: ``ilr_i = sqrt((D-i-1)/(D-i)) * ln(x_i / g(x_{i+1..}))``.

    Parameters
    ----------
    n_parts : int
        Number of parts ``D`` (>= 2).

    Returns
    -------
    numpy.ndarray
        ``(D - 1, D)`` matrix ``V`` with orthonormal rows summing to zero, so that
        ``ilr = V @ clr = V @ ln(x)``.

    Examples
    --------
    >>> import numpy as np
    >>> from xprospect.preprocess import pivot_basis
    >>> v = pivot_basis(4)
    >>> np.allclose(v @ v.T, np.eye(3)), np.allclose(v.sum(axis=1), 0)
    (True, True)
    """
    d = int(n_parts)
    if d < 2:
        raise DataError(f"an ilr basis needs at least 2 parts; got {n_parts!r}")
    v = np.zeros((d - 1, d))
    for i in range(d - 1):
        rest = d - i - 1
        coef = np.sqrt(rest / (rest + 1.0))
        v[i, i] = coef
        v[i, i + 1 :] = -coef / rest
    return v


def ilr(
    ds: xr.Dataset, *, elements: str | Sequence[str] | None = None, basis: str = "pivot"
) -> xr.Dataset:
    """Isometric log-ratio coordinates with pivot balances.

    With parts ``x_1 .. x_D`` in the order of ``elements``, balance ``k`` is
    ``sqrt((D-k)/(D-k+1)) * ln(x_k / g(x_{k+1}, ..., x_D))`` where ``g`` is the
    geometric mean (see :func:`pivot_basis`). The coordinates are orthonormal:
    Euclidean distances between ilr vectors equal Aitchison distances between
    the compositions.

    Parameters
    ----------
    ds : xarray.Dataset
        Grid, voxels or samples with at least two element variables, numpy or
        dask backed.
    elements : list of str, optional
        The parts, in pivot order (the first part is isolated first); default
        every numeric (non-boolean) variable on the data dims, in Dataset order.
    basis : {"pivot"}
        The sequential binary partition; only pivot balances for now.

    Returns
    -------
    xarray.Dataset
        The parts are replaced by ``D - 1`` variables ``ilr1 .. ilr{D-1}`` with
        ``units = "ilr"`` and attrs ``numerator`` and ``denominator`` (lists of
        elements) and ``long_name``; other variables, coordinates, CRS and attrs
        are kept. Lazy when the input is.

    Raises
    ------
    DataError
        Unknown basis, fewer than two parts, a name clash with an existing
        ``ilr<k>`` variable, or a zero or negative value (naming the element).

    Examples
    --------
    >>> import xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=50, elements=["Au", "Cu", "As"])
    >>> z = xp.preprocess.ilr(w.samples)
    >>> sorted(z.data_vars), z["ilr1"].attrs["denominator"]
    (['ilr1', 'ilr2'], ['Cu', 'As'])
    """
    if basis not in _BASES:
        raise DataError(f"ilr basis {basis!r} is not known; valid bases: {list(_BASES)}")
    data, names = _parts(ds, elements, "ilr")
    d = len(names)
    out_names = [f"ilr{k + 1}" for k in range(d - 1)]
    clash = [n for n in out_names if n in data.variables and n not in names]
    if clash:
        raise DataError(f"ilr() would overwrite existing variables {clash}; rename them first")
    logs = [_checked_log(data[n], n) for n in names]
    v = pivot_basis(d)
    first = data[names[0]]
    new = {}
    # suffix sums of the logs: tails[k] = log x_k + ... + log x_{D-1}
    tails = [logs[-1]]
    for lg in reversed(logs[1:-1]):
        tails.insert(0, lg + tails[0])
    for k in range(d - 1):
        rest = d - k - 1
        # pivot row k: coef * (log x_k - mean(log x_{k+1..})); a python float keeps float32
        bal = float(v[k, k]) * (logs[k] - tails[k] / rest)
        num, den = [names[k]], list(names[k + 1 :])
        attrs = {
            "units": "ilr",
            HISTORY_ATTR: "ilr",
            "basis": basis,
            "numerator": num,
            "denominator": den,
            "long_name": f"ilr balance {names[k]} vs {'-'.join(den)}",
        }
        new[out_names[k]] = _finish(bal, first, attrs)
    return data.drop_vars(names).assign(new)


# -- balances and halo ratios of element groups --------------------------------------

#: Front (head) halo elements of hydrothermal gold deposits (Zaozigou B1).
FRONT_HALO: tuple[str, ...] = ("As", "Sb", "Hg")
#: Near-ore halo elements (Zaozigou B2).
NEAR_ORE_HALO: tuple[str, ...] = ("Au", "Ag", "Cu", "Pb", "Zn")
#: Tail halo elements (Zaozigou B3).
TAIL_HALO: tuple[str, ...] = ("W", "Bi", "Co", "Mo")

_RATIO_KINDS = ("ratio", "log", "balance")


def _group(ds: xr.Dataset, names: Sequence[str] | str, what: str, func: str) -> list[str]:
    names = [names] if isinstance(names, str) else [str(n) for n in names]
    if not names:
        raise DataError(f"{func}(): the {what} group is empty")
    missing = [n for n in names if n not in ds.data_vars]
    if missing:
        raise DataError(
            f"{func}(): {what} elements {missing} are not variables of the Dataset; "
            f"it holds {sorted(map(str, ds.data_vars))}"
        )
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"{func}(): {what} elements {dup} are repeated")
    return names


def _sum_logs(ds: xr.Dataset, names: list[str]) -> xr.DataArray:
    logs = [_checked_log(ds[n], n) for n in names]
    return sum(logs[1:], logs[0])


def _as_result(new: xr.DataArray, ds: xr.Dataset, name: str, attrs: dict[str, Any]) -> xr.DataArray:
    out = new.rename(name)
    out.attrs = attrs
    keep = {
        c: ds.coords[c]
        for c in ds.coords
        if c not in out.coords and set(ds.coords[c].dims) <= set(out.dims)
    }
    out = out.assign_coords(keep)
    crs = get_crs(ds)
    return write_crs(out, crs) if crs is not None else out


def balance(
    ds: xr.Dataset, numerator: Sequence[str], denominator: Sequence[str], *, name: str | None = None
) -> xr.DataArray:
    """Isometric log-ratio balance between two groups of elements.

    ``b = sqrt(r s / (r + s)) * ln(g(num) / g(den))`` with ``g`` the geometric mean and
    ``r``, ``s`` the group sizes (Egozcue and Pawlowsky-Glahn, 2005): the coordinate
    of a sequential binary partition, positive where the numerator group dominates.
    Scale invariant (units cancel up to a constant).

    Parameters
    ----------
    ds : xarray.Dataset
        Samples, grid or voxels with the element variables, numpy or dask backed.
    numerator, denominator : list of str
        Disjoint, non-empty groups of element variables.
    name : str, optional
        Result name (default ``"balance_<num>_vs_<den>"``).

    Returns
    -------
    xarray.DataArray
        On ``ds``'s dims, coordinates and CRS; NaN where any part is missing; lazy on dask.

    Raises
    ------
    DataError
        Missing, repeated or overlapping elements, or non-positive values (at once on
        numpy data, when computed on dask data).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"Au": ("sample", [4.0]), "Ag": ("sample", [1.0]),
    ...                  "Co": ("sample", [2.0])})
    >>> b = balance(ds, ["Au", "Ag"], ["Co"])  # sqrt(2/3) * ln(sqrt(4 * 1) / 2) = 0
    >>> float(b[0])
    0.0
    """
    if not isinstance(ds, xr.Dataset):
        raise DataError(f"balance() needs a Dataset of element variables; got {type(ds).__name__}")
    num = _group(ds, numerator, "numerator", "balance")
    den = _group(ds, denominator, "denominator", "balance")
    both = sorted(set(num) & set(den))
    if both:
        raise DataError(f"balance(): elements {both} are in both the numerator and denominator")
    r, s = len(num), len(den)
    coef = float(np.sqrt(r * s / (r + s)))
    new = coef * (_sum_logs(ds, num) / r - _sum_logs(ds, den) / s)
    name = name or f"balance_{'_'.join(num)}_vs_{'_'.join(den)}"
    attrs = {
        "long_name": f"balance {'-'.join(num)} / {'-'.join(den)}",
        "units": "ilr",
        "numerator": num,
        "denominator": den,
        "formula": f"sqrt({r}*{s}/({r}+{s})) * ln(gmean({','.join(num)}) / gmean({','.join(den)}))",
    }
    return _as_result(new, ds, name, attrs)


def halo_ratio(
    ds: xr.Dataset,
    front: Sequence[str] = FRONT_HALO,
    tail: Sequence[str] = TAIL_HALO,
    *,
    kind: str = "ratio",
    name: str = "halo_ratio",
) -> xr.DataArray:
    """Front-halo / tail-halo parameter of primary-halo zoning, e.g. (As Sb Hg)/(W Bi Co Mo).

    Above a blind orebody the front (head) halo elements dominate and below it the tail
    halo elements, so the ratio rises upwards through an ore-forming system and stays
    high above blind ore. The products follow the primary-halo literature (e.g.
    ``(As*Sb*Hg)/(W*Bi*Co*Mo)``); they are computed through logarithms, so no product
    overflows.

    Parameters
    ----------
    ds : xarray.Dataset
        Samples, grid or voxels with the element variables (concentrations > 0).
    front, tail : list of str
        Front- and tail-halo elements (defaults :data:`FRONT_HALO`, :data:`TAIL_HALO`).
    kind : {"ratio", "log", "balance"}
        ``"ratio"``: ``prod(front) / prod(tail)`` in the data's units;
        ``"log"``: its log10, ``sum log10 front - sum log10 tail``;
        ``"balance"``: the ilr balance of the two groups, ``sqrt(rs/(r+s)) ln(g(front) /
        g(tail))``, which does not depend on units or group sizes. Yu et al. (2022) use
        the quotient of two balances, B1/B3, each of a group against the remaining
        parts; that quotient changes sign and diverges where B3 crosses 0, so it is not
        offered: ``"balance"`` contrasts the two groups directly.
    name : str
        Result name.

    Returns
    -------
    xarray.DataArray
        On ``ds``'s dims, coordinates and CRS; lazy on dask.

    Raises
    ------
    DataError
        Missing or overlapping elements, an unknown ``kind``, non-positive values.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset({e: ("sample", [v]) for e, v in
    ...                  {"As": 2.0, "Sb": 3.0, "Hg": 1.0, "W": 1.0, "Mo": 2.0}.items()})
    >>> round(float(halo_ratio(ds, ["As", "Sb", "Hg"], ["W", "Mo"])[0]), 9)
    3.0
    """
    if kind not in _RATIO_KINDS:
        raise DataError(f"halo_ratio(kind={kind!r}) is unknown; valid kinds: {list(_RATIO_KINDS)}")
    if not isinstance(ds, xr.Dataset):
        raise DataError(f"halo_ratio() needs a Dataset of elements; got {type(ds).__name__}")
    fr = _group(ds, front, "front", "halo_ratio")
    tl = _group(ds, tail, "tail", "halo_ratio")
    both = sorted(set(fr) & set(tl))
    if both:
        raise DataError(f"halo_ratio(): elements {both} are in both the front and tail groups")
    if kind == "balance":
        out = balance(ds, fr, tl, name=name)
        out.attrs["long_name"] = f"front/tail halo balance ({'-'.join(fr)})/({'-'.join(tl)})"
        out.attrs["kind"] = kind
        return out
    lnr = _sum_logs(ds, fr) - _sum_logs(ds, tl)
    prod = f"({'*'.join(fr)})/({'*'.join(tl)})"
    new: xr.DataArray
    attrs: dict[str, Any]
    if kind == "ratio":
        new = xr.apply_ufunc(np.exp, lnr, dask="allowed")
        attrs = {"formula": prod, "units": "ratio of products of concentrations"}
    else:
        new = lnr / float(np.log(10.0))
        attrs = {"formula": f"log10({prod})", "units": "log10"}
    attrs.update(
        {
            "long_name": f"front/tail halo ratio ({'-'.join(fr)})/({'-'.join(tl)})",
            "front": fr,
            "tail": tl,
            "kind": kind,
        }
    )
    return _as_result(new, ds, name, attrs)
