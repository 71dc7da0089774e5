"""Maps that say how sure they are: ensemble and Monte Carlo dropout spread, risk-return figure.

Every member map comes from :func:`xprospect.score.score`, the one verb that applies a fitted
model (networks and :mod:`xprospect.baselines` alike), so the mean and standard deviation maps
are lazy over the stack's dask chunks and georeferenced like a single score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from xprospect._dims import get_crs, grid_geometry, write_crs
from xprospect._figures import finish_figure
from xprospect.exceptions import DataError
from xprospect.points import point_cells
from xprospect.score import score

__all__ = ["ensemble_map", "mc_dropout_map", "plot_risk_return"]

MEMBER_DIM = "member"


def _moments(maps: Sequence[xr.DataArray], names: Sequence[str], keep: bool) -> xr.Dataset:
    """Mean and standard deviation over member maps, lazily, on the first map's grid."""
    first = maps[0]
    dims = tuple(first.dims)
    parts = []
    for name, m in zip(names, maps, strict=True):
        if tuple(m.dims) != dims or m.shape != first.shape:
            raise DataError(
                f"ensemble member {name!r} scored a map of dims {m.dims} and shape {m.shape}; "
                f"the first member's is {dims} {first.shape}"
            )
        parts.append(m.drop_vars([c for c in m.coords if c not in m.dims]).rename(None))
    members = xr.concat(
        parts, dim=MEMBER_DIM, coords="minimal", compat="override", join="override"
    ).assign_coords({MEMBER_DIM: list(names)})
    mean = members.mean(MEMBER_DIM, skipna=False)
    # the spread between members: sample standard deviation (n - 1), 0 for a single member
    std = members.std(MEMBER_DIM, ddof=1 if len(maps) > 1 else 0, skipna=False)
    coords = {k: v for k, v in first.coords.items() if k not in dims}
    out = xr.Dataset({"mean": mean, "std": std}).assign_coords(coords)
    if keep:
        out["members"] = members
    out["mean"].attrs = {"long_name": "ensemble mean score", "n_members": len(maps)}
    out["std"].attrs = {
        "long_name": "ensemble standard deviation of the score (ddof=1)",
        "n_members": len(maps),
    }
    crs = get_crs(first)
    return write_crs(out, crs) if crs is not None else out


def ensemble_map(
    stack: xr.DataArray,
    models: Sequence[Any],
    *,
    names: Sequence[str] | None = None,
    keep_members: bool = False,
    **score_kwargs: Any,
) -> xr.Dataset:
    """Mean and standard-deviation maps of an ensemble of fitted models.

    Each member is scored by :func:`xprospect.score.score` (networks of any kind, or fitted
    :mod:`xprospect.baselines` models: whatever ``score`` accepts), so the maps are lazy over
    the stack's dask chunks and georeferenced like one score map.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(element, y, x)`` or ``(element, z, y, x)`` evidence stack.
    models : sequence of fitted models
        The members (e.g. networks trained with different seeds: a deep ensemble).
    names : sequence of str, optional
        Member names (default ``"0"``, ``"1"``...).
    keep_members : bool
        Also return the member maps as ``members`` (``member`` first).
    **score_kwargs
        Passed to :func:`~xprospect.score.score` for every network member (``window``,
        ``stride``, ``device``...); baselines take none.

    Returns
    -------
    xarray.Dataset
        ``mean`` and ``std`` (sample standard deviation, ``ddof=1``) on the stack's grid and
        CRS, lazy when the stack is dask backed; ``members`` when asked.

    Raises
    ------
    DataError
        For an empty ensemble, mismatched names, or members giving maps of different grids.

    Examples
    --------
    >>> import numpy as np
    >>> import xprospect as xp
    >>> world = xp.synthetic.survey(seed=0, n_samples=300)
    >>> grid = xp.make_grid(like=world.samples, resolution=2000.0)
    >>> stack = world.samples.prospect.idw(like=grid, k=8).prospect.stack(["Au", "Cu"])
    >>> members = [xp.baselines.LogisticModel(seed=s).fit(stack, world.deposits, seed=s)
    ...            for s in range(3)]
    >>> out = ensemble_map(stack, members)
    >>> sorted(out.data_vars), bool((out["std"] >= 0).all())
    (['mean', 'std'], True)
    """
    models = list(models)
    if not models:
        raise DataError("ensemble_map needs at least one fitted model")
    labels = [str(i) for i in range(len(models))] if names is None else [str(n) for n in names]
    if len(labels) != len(models) or len(set(labels)) != len(labels):
        raise DataError(f"names must be {len(models)} distinct labels; got {names!r}")
    maps = [_score_member(stack, m, score_kwargs) for m in models]
    out = _moments(maps, labels, keep_members)
    out.attrs = {"method": "ensemble", "members": labels}
    return out


def _score_member(stack: xr.DataArray, model: Any, score_kwargs: dict[str, Any]) -> xr.DataArray:
    """Score one member; options that only apply to networks are left out for baselines."""
    if hasattr(model, "predict") and not hasattr(model, "score_windows"):
        return score(stack, model)
    return score(stack, model, **score_kwargs)


def mc_dropout_map(
    stack: xr.DataArray,
    model: Any,
    *,
    passes: int = 20,
    seed: int = 0,
    rate: float | None = None,
    keep_members: bool = False,
    **score_kwargs: Any,
) -> xr.Dataset:
    """Mean and standard-deviation maps of Monte Carlo dropout passes of one network.

    Each pass is a copy of the network whose dropout layers stay active during scoring with
    one mask over the features per layer, drawn from ``(seed, pass, layer)`` and the same at
    every cell: a pass is one thinned network sampled from the dropout posterior (Gal &
    Ghahramani, 2016), scored by :func:`xprospect.score.score` like the network itself. The
    maps are therefore reproducible, lazy and independent of chunking and batching. Score it
    on the threaded scheduler or a thread-based cluster (the passes are live modules).

    Parameters
    ----------
    stack : xarray.DataArray
        ``(element, y, x)`` or ``(element, z, y, x)`` evidence stack.
    model : ProspectModel
        A trained network holding dropout layers (e.g. ``SmallCNN(dropout=0.2)``).
    passes : int
        Number of Monte Carlo passes ``T`` (at least 2).
    seed : int
        Seed of the dropout masks: the same seed gives the same maps.
    rate : float, optional
        Drop probability used in every dropout layer (default: each layer's own).
    keep_members : bool
        Also return the pass maps as ``members``.
    **score_kwargs
        Passed to :func:`~xprospect.score.score` (``window``, ``stride``, ``device``...).

    Returns
    -------
    xarray.Dataset
        ``mean`` and ``std`` over the passes (``ddof=1``) on the stack's grid and CRS.

    Raises
    ------
    DataError
        If ``passes < 2``.
    ModelCardError
        If the network holds no dropout layer with ``p > 0`` (and no ``rate`` is given).
    """
    if int(passes) != passes or passes < 2:
        raise DataError(f"passes must be an integer >= 2; got {passes!r}")
    # lazy: torch (the dropout passes are torch modules), loaded when a network is used
    from xprospect.evaluate._torchwrap import dropout_pass

    members = [dropout_pass(model, seed=seed, index=t, rate=rate) for t in range(int(passes))]
    maps = [score(stack, m, **score_kwargs) for m in members]
    out = _moments(maps, [str(t) for t in range(int(passes))], keep_members)
    out.attrs = {"method": "mc_dropout", "passes": int(passes), "seed": int(seed)}
    if rate is not None:
        out.attrs["rate"] = float(rate)
    return out


def plot_risk_return(
    mean: xr.DataArray | xr.Dataset,
    std: xr.DataArray | None = None,
    *,
    deposits: Any = None,
    path: Any = None,
    ax: Any = None,
    max_cells: int = 50_000,
    seed: int = 0,
) -> Any:
    """Risk-return figure: each cell's mean score against its standard deviation.

    Cells with a high mean and a low spread are safe targets; a high mean with a high spread
    is a risky one. Cells holding known deposits are marked.

    Parameters
    ----------
    mean : xarray.DataArray or Dataset
        The mean map, or the Dataset of :func:`ensemble_map` / :func:`mc_dropout_map`
        (then ``std`` is read from it).
    std : xarray.DataArray, optional
        The standard-deviation map (same grid).
    deposits : points, optional
        Known deposits, marked at their cells.
    path : str or path, optional
        Write the figure there (PNG, SVG...).
    ax : matplotlib Axes, optional
        Draw into it instead of a new figure.
    max_cells : int
        At most this many cells are drawn (a random subset, ``seed``), so the figure stays
        light on large grids; deposits are always drawn.
    seed : int
        Seed of that subset.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt  # lazy: optional heavy dependency, only for figures

    if isinstance(mean, xr.Dataset):
        std = mean["std"] if std is None else std
        mean = mean["mean"]
    if std is None:
        raise DataError("plot_risk_return needs the std map (or the Dataset holding both)")
    if mean.shape != std.shape:
        raise DataError(f"mean {mean.shape} and std {std.shape} maps differ in shape")
    m = np.asarray(mean.values, dtype="float64").ravel()
    s = np.asarray(std.values, dtype="float64").ravel()
    ok = np.isfinite(m) & np.isfinite(s)
    if not ok.any():
        raise DataError("the mean and std maps share no finite cell")
    cells = np.flatnonzero(ok)
    if cells.size > max_cells:
        cells = np.sort(np.random.default_rng(seed).choice(cells, max_cells, replace=False))
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5))
    else:
        fig = ax.figure
    ax.scatter(s[cells], m[cells], s=4, c="0.6", alpha=0.5, lw=0, label=f"cells ({ok.sum()})")
    if deposits is not None:
        valid = ok.reshape(grid_geometry(mean).shape)
        pc = point_cells(deposits, mean, valid, "deposits", require=False)
        if len(pc.flat):
            ax.scatter(
                s[pc.flat],
                m[pc.flat],
                s=40,
                marker="*",
                c="crimson",
                edgecolors="k",
                linewidths=0.4,
                label=f"deposits ({len(pc.flat)})",
                zorder=3,
            )
    unit = mean.attrs.get("units") or "score units"
    ax.set_xlabel(f"standard deviation of the score (risk, {unit})")
    ax.set_ylabel(f"mean score (return, {unit})")
    ax.set_title("Risk-return of every cell")
    ax.legend(loc="best")
    return finish_figure(fig, path)
