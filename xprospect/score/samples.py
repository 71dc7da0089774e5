"""Scoring of point tables: a per-cell model over samples, and its scores gridded to a map.

The stack engine (:func:`xprospect.score.score`) scores gridded cells; these score the samples
themselves (:func:`score_samples`) and grid those scores (:func:`points_score_map`). They were
``xprospect.train.score_samples`` / ``points_score_map`` before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from xprospect._dims import SAMPLE_DIM, get_crs, write_crs
from xprospect._torch import import_torch
from xprospect.exceptions import ModelCardError
from xprospect.grid import grid_idw
from xprospect.points import sample_table

__all__ = ["points_score_map", "sample_table", "score_samples"]


def score_samples(model: Any, samples: xr.Dataset, *, name: str = "anomaly") -> xr.DataArray:
    """Score each sample of a point table with a per-cell model (VAE).

    The card's elements are read in order and normalised with its mean/std. Samples missing
    any element score NaN (there is nothing to score); how many is in ``attrs["n_missing"]``.

    Parameters
    ----------
    model : ProspectModel
        A trained per-cell model (``ndim`` None, with ``score_vectors``) with a card.
    samples : xarray.Dataset
        Point table holding the card's elements.
    name : str
        Name of the result.

    Returns
    -------
    xarray.DataArray
        Along ``sample``, with the samples' coordinates.
    """
    if model.ndim is not None or not hasattr(model, "score_vectors"):
        raise ModelCardError(
            f"{type(model).__name__} is not a per-cell model; score it on a "
            "gridded stack with xprospect.score.score"
        )
    card = model.card or {}
    names = card.get("elements")
    if names is None:
        raise ModelCardError("the model has no card with its elements; train it with fit_anomaly")
    names, values = sample_table(samples, model.in_channels, names)
    mean = np.asarray(card.get("mean") or [0.0] * len(names))
    std = np.asarray(card.get("std") or [1.0] * len(names))
    ok = np.isfinite(values).all(axis=1)
    out = np.full(len(values), np.nan, dtype="float32")
    z = ((values[ok] - mean) / std).astype("float32")
    torch = import_torch()
    model.eval()
    with torch.no_grad():
        out[ok] = model.score_vectors(torch.from_numpy(z)).numpy()
    res = xr.DataArray(out, dims=SAMPLE_DIM, coords=samples[names[0]].coords, name=name)
    res.attrs = {"n_missing": int((~ok).sum())}
    return res


def points_score_map(
    model: Any, samples: xr.Dataset, like: xr.Dataset | xr.DataArray, **idw_kwargs: Any
) -> xr.DataArray:
    """Score samples with a per-cell model, then grid the scores by IDW onto ``like``.

    Parameters
    ----------
    model : VAE
        Trained per-cell model with a card.
    samples : xarray.Dataset
        Point table with the card's elements.
    like : xarray.Dataset or DataArray
        Grid template (see :func:`xprospect.grid_idw`).
    **idw_kwargs
        Passed to :func:`xprospect.grid_idw` (``k``, ``power``, ``radius``, ...).

    Returns
    -------
    xarray.DataArray
        ``anomaly`` on ``like``'s grid, with its CRS.
    """
    scores = score_samples(model, samples)
    keep = np.isfinite(scores.values)
    table = scores.to_dataset().isel({SAMPLE_DIM: np.flatnonzero(keep)})
    crs = get_crs(samples)
    if crs is not None:
        table = write_crs(table, crs)
    return grid_idw(table, like=like, elements=["anomaly"], **idw_kwargs)["anomaly"]
