"""Log-ratio transforms of compositions: centred (clr) and isometric (ilr) log-ratios.

Concentrations are closed data (parts of a whole), so their raw values and their
correlations are distorted by the constant sum. Log-ratios (Aitchison, 1986) move
compositions to real space: ``clr`` keeps one variable per element (they sum to
zero), ``ilr`` gives ``D - 1`` orthonormal coordinates in which Euclidean distance
equals Aitchison distance. Both are scale invariant, so units need not agree
(ppb and ppm give the same result up to a constant in clr that cancels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from xprospect.exceptions import DataError
from xprospect.preprocess.scaling import _as_dataset, _checked_log, _finish, _new_attrs, _select

__all__ = ["clr", "ilr", "pivot_basis"]

_BASES = ("pivot",)


def _parts(ds: xr.Dataset | xr.DataArray, elements, func: str) -> tuple[xr.Dataset, list[str]]:
    data, was_da = _as_dataset(ds, func)
    if was_da:
        msg = (f"{func}() works across the element variables of a Dataset (at least two); "
               "got a single DataArray")
        raise DataError(msg)
    names = _select(data, elements, func)
    if len(names) < 2:
        raise DataError(f"{func}() needs at least 2 elements (parts of the composition); "
                        f"got {names}")
    dims = {data[n].dims for n in names}
    if len(dims) > 1:
        raise DataError(f"{func}() needs every element on the same dims; got "
                        f"{ {n: data[n].dims for n in names} }")
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
        v[i, i + 1:] = -coef / rest
    return v


def ilr(ds: xr.Dataset, *, elements: str | Sequence[str] | None = None,
        basis: str = "pivot") -> xr.Dataset:
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
        num, den = [names[k]], list(names[k + 1:])
        attrs = {
            "units": "ilr",
            "transform": "ilr",
            "basis": basis,
            "numerator": num,
            "denominator": den,
            "long_name": f"ilr balance {names[k]} vs {'-'.join(den)}",
        }
        new[out_names[k]] = _finish(bal, first, attrs)
    return data.drop_vars(names).assign(new)
