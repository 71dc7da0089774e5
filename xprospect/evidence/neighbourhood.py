"""Spatial context on the samples themselves: each sample beside its neighbours.

A per-sample detector (GMM, isolation forest, VAE) sees one element vector at a time and
knows nothing of where it lies; a gridded detector sees context only after interpolation.
:func:`neighbourhood_features` gives a sample table its own spatial context: for each sample
and element, robust statistics (median and median absolute deviation) of its ``k`` nearest
other samples within ``radius``, and the sample's departure from that local median. Fed to
any per-sample model, these make "high for its neighbourhood" and "in a high neighbourhood"
learnable without gridding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from xprospect._dims import SAMPLE_DIM, sample_coords
from xprospect.exceptions import DataError
from xprospect.points import sample_table

__all__ = ["neighbourhood_features"]

_STATS = ("median", "mad", "local")
_DEFAULT_STATS = ("median", "mad")


def neighbourhood_features(
    samples: xr.Dataset,
    *,
    k: int = 8,
    radius: float | None = None,
    elements: Sequence[str] | None = None,
    stats: Sequence[str] = _DEFAULT_STATS,
    min_neighbours: int = 2,
) -> xr.Dataset:
    """Add robust statistics of each sample's nearest neighbours to a samples table.

    Parameters
    ----------
    samples : xarray.Dataset
        Samples along ``sample`` with ``x`` and ``y`` coordinates (CRS units).
    k : int
        Neighbours per sample (the sample itself excluded).
    radius : float, optional
        Only neighbours within this distance count (default: no limit).
    elements : list of str, optional
        Variables to describe (default every numeric one along ``sample``), e.g. log or
        ilr coordinates.
    stats : sequence of {"median", "mad", "local"}
        Per element ``e``: ``e_nb_median`` (median of the neighbours), ``e_nb_mad`` (their
        median absolute deviation) and ``e_local`` (the sample minus ``e_nb_median``).
        Default median and mad: ``local`` is the sample minus the median, so the three
        together are linearly dependent (singular for a covariance model).
    min_neighbours : int
        Samples with fewer finite neighbours within ``radius`` get NaN features (isolated
        samples have no neighbourhood to speak of).

    Returns
    -------
    xarray.Dataset
        ``samples[elements]`` plus the new variables, same coordinates and attrs;
        ``attrs["neighbourhood"]`` records ``k`` and ``radius``.

    Examples
    --------
    >>> import xprospect as xp
    >>> w = xp.synthetic.survey(seed=0, n_samples=200, elements=["Cu", "Zn"])
    >>> f = neighbourhood_features(w.samples.prospect.log10(), k=6)
    >>> sorted(f.data_vars)[:3]
    ['Cu', 'Cu_nb_mad', 'Cu_nb_median']
    """
    from scipy.spatial import cKDTree  # heavy: lazy, loaded when features are built

    if int(k) < 1 or int(min_neighbours) < 1 or int(min_neighbours) > int(k):
        raise DataError(
            f"need 1 <= min_neighbours <= k; got k={k}, min_neighbours={min_neighbours}"
        )
    bad = [s for s in stats if s not in _STATS]
    if bad or not stats:
        raise DataError(f"stats {bad or list(stats)} unknown; choose from {list(_STATS)}")
    if radius is not None and not float(radius) > 0:
        raise DataError(f"radius must be positive; got {radius!r}")
    names, x = sample_table(samples, None, elements)
    xy_map = sample_coords(samples)
    xy = np.column_stack([np.asarray(xy_map["x"], "float64"), np.asarray(xy_map["y"], "float64")])
    if not np.isfinite(xy).all():
        row = int(np.flatnonzero(~np.isfinite(xy).all(axis=1))[0])
        raise DataError(f"sample {row} has a non-finite x or y coordinate")
    n = len(x)
    kk = min(int(k) + 1, n)
    dist, idx = cKDTree(xy).query(
        xy, k=kk, distance_upper_bound=np.inf if radius is None else float(radius)
    )
    dist, idx = np.atleast_2d(dist)[:, 1:], np.atleast_2d(idx)[:, 1:]  # drop the sample itself
    gone = ~np.isfinite(dist)
    idx = np.where(gone, 0, idx)
    out = samples[names].copy()
    for j, name in enumerate(names):
        vals = x[idx, j]  # (n, k) neighbour values
        vals[gone] = np.nan
        enough = np.isfinite(vals).sum(axis=1) >= int(min_neighbours)
        med = np.full(n, np.nan)
        mad = np.full(n, np.nan)
        if enough.any():
            med[enough] = np.nanmedian(vals[enough], axis=1)
            mad[enough] = np.nanmedian(np.abs(vals[enough] - med[enough, None]), axis=1)
        feats = {
            "median": ("nb_median", med),
            "mad": ("nb_mad", mad),
            "local": ("local", x[:, j] - med),
        }
        for st in stats:
            suffix, v = feats[st]
            out[f"{name}_{suffix}"] = xr.DataArray(v, dims=SAMPLE_DIM, coords=samples[name].coords)
    out.attrs = {**samples.attrs, "neighbourhood": {"k": int(k), "radius": radius}}
    return out
