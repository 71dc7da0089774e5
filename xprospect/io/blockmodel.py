"""Voxel block models out: CSV for mining software, PNG slices, VTK.

:func:`to_block_csv` writes ``x, y, z, <variables>`` rows slab by slab; :func:`plot_slices`
and :func:`plot_section` draw plan slices and a vertical section as PNG; :func:`to_vtk` writes
a VTK image through pyvista (the optional ``vtk`` extra). Every file is written under a
temporary name and renamed on success, so a failure (a full disk, a read-only target) leaves
nothing behind (see :mod:`xprospect.io._atomic`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from xprospect._dims import GRID_DIMS_3D, GridGeometry, get_crs, grid_geometry
from xprospect._figures import map_axis_labels, style_map_axes
from xprospect.exceptions import DataError, GridError
from xprospect.io._atomic import atomic_path

__all__ = [
    "plot_section",
    "plot_slices",
    "to_block_csv",
    "to_vtk",
]

# ----------------------------------------------------------------------------- CSV


def _numeric_vars(block: xr.Dataset | xr.DataArray, variables, dims) -> list[xr.DataArray]:
    if isinstance(block, xr.DataArray):
        if tuple(block.dims) != tuple(dims):
            raise GridError(f"the block must be on dims {dims}; got {tuple(block.dims)}")
        return [block.rename(block.name or "value")]
    if variables is None:
        names = [
            n
            for n, v in block.data_vars.items()
            if tuple(v.dims) == tuple(dims)
            and np.issubdtype(v.dtype, np.number)
            and v.dtype != bool
        ]
        if not names:
            raise GridError(f"the block has no numeric variables on {dims} to write")
    else:
        names = [variables] if isinstance(variables, str) else list(variables)
        for n in names:
            if n not in block.data_vars:
                raise DataError(
                    f"variable {n!r} is not in the block; it has {list(block.data_vars)}"
                )
            if tuple(block[n].dims) != tuple(dims):
                raise GridError(f"variable {n!r} is on {block[n].dims}, not {dims}")
    return [block[n] for n in names]


def _cell_sizes(block: xr.Dataset | xr.DataArray, geom: GridGeometry) -> tuple[float, ...]:
    """Positive cell sizes in dims order; a single-cell axis needs a recorded resolution."""
    out = []
    for d, step in zip(geom.dims, geom.step, strict=True):
        if step == 0:
            res = block[d].attrs.get("resolution")
            try:
                step = float(res) if res is not None else 0.0
            except (TypeError, ValueError):
                step = 0.0
            if not (np.isfinite(step) and step > 0):
                raise GridError(
                    f"the block has a single cell along {d!r} and no recorded "
                    f"resolution (a 'resolution' attr on coordinate {d!r}), so its "
                    "cell size is unknown"
                )
        out.append(abs(float(step)))
    return tuple(out)


def _check_target(path: str | os.PathLike, overwrite: bool) -> Path:
    p = Path(path)
    if p.exists() and not overwrite:
        raise DataError(f"{p} already exists; pass overwrite=True to replace it")
    if not p.parent.is_dir():
        raise DataError(f"cannot write {p}: folder {p.parent} does not exist")
    return p


def to_block_csv(
    block: xr.Dataset | xr.DataArray,
    path: str | os.PathLike,
    *,
    variables: str | Sequence[str] | None = None,
    dropna: bool = True,
    sizes: bool = False,
    float_format: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a voxel block model as a CSV of ``x, y, z, <variables>`` rows.

    Parameters
    ----------
    block : xarray.Dataset or DataArray
        Voxels (z, y, x); numpy or dask backed.
    path : path
        The CSV to write; an existing file is an error unless ``overwrite=True``.
    variables : str or list of str, optional
        Variables to write (default every numeric, non-boolean variable on (z, y, x)).
    dropna : bool
        Leave out voxels where every written variable is NaN (masked or not estimated).
    sizes : bool
        Add ``dx, dy, dz`` columns (block sizes), as some mining packages expect.
    float_format : str, optional
        printf-style format of the variables' values (for example ``"%.4f"``). By default
        each value is written with the shortest text that reads back to the same value of
        its own dtype (9 significant digits at most for float32, 17 for float64).
        Coordinates and sizes are always written exactly, whatever this says.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    DataError
        When the file exists (``overwrite=False``), its folder does not, or the write fails
        (disk full, read-only target): nothing is left behind.

    Notes
    -----
    Rows are voxel centres in storage order (z, then y, then x fastest). The block is
    computed one z-slab (dask chunk row) at a time, so a large block never sits in memory.
    Missing values are written as ``nan``.
    """
    dims = GRID_DIMS_3D
    vars_ = _numeric_vars(block, variables, dims)
    geom = grid_geometry(vars_[0])
    steps = _cell_sizes(vars_[0], geom) if sizes else ()
    p = _check_target(path, overwrite)
    names = [str(v.name) for v in vars_]
    clash = [n for n in names if n in ("x", "y", "z", "dx", "dy", "dz")]
    if clash:
        raise DataError(
            f"variables {clash} would clash with the CSV's coordinate columns; rename them"
        )
    zc, yc, xc = (np.asarray(block[d].values, dtype="float64") for d in dims)
    chunks = vars_[0].chunks[0] if vars_[0].chunks is not None else ()
    if not chunks:
        step = max(1, 2_000_000 // max(1, yc.size * xc.size))
        chunks = tuple(min(step, zc.size - i) for i in range(0, zc.size, step))
    with atomic_path(p) as tmp, open(tmp, "w", newline="") as f:
        header = True
        z0 = 0
        for cz in chunks:
            sl = slice(z0, z0 + cz)
            z0 += cz
            slabs = [np.asarray(a) for a in dask.compute(*[v.isel(z=sl).data for v in vars_])]
            zz, yy, xx = np.meshgrid(zc[sl], yc, xc, indexing="ij")
            cols: dict[str, Any] = {"x": xx.ravel(), "y": yy.ravel(), "z": zz.ravel()}
            if sizes:
                cols.update(
                    {
                        "dx": np.full(xx.size, steps[2]),
                        "dy": np.full(xx.size, steps[1]),
                        "dz": np.full(xx.size, steps[0]),
                    }
                )
            values = {n: a.ravel() for n, a in zip(names, slabs, strict=True)}
            if dropna:
                empty = np.ones(xx.size, dtype=bool)
                for a in values.values():
                    empty &= np.isnan(a) if a.dtype.kind == "f" else False
                keep = ~empty
                cols = {k: a[keep] for k, a in cols.items()}
                values = {k: a[keep] for k, a in values.items()}
            if float_format is not None:
                values = {k: _formatted(a, float_format) for k, a in values.items()}
            frame = pd.DataFrame({**cols, **values})
            # float_format=None: pandas writes the shortest repr that round-trips each dtype
            frame.to_csv(f, index=False, header=header, na_rep="nan", lineterminator="\n")
            header = False
    return p


def _formatted(a: np.ndarray, fmt: str) -> np.ndarray:
    if a.dtype.kind != "f":
        return a
    try:
        out = np.char.mod(fmt, a)
    except (TypeError, ValueError) as err:
        raise DataError(f"float_format={fmt!r} is not a printf-style float format: {err}") from err
    return np.where(np.isnan(a), "nan", out)


# ----------------------------------------------------------------------------- figures


def _figure(n: int, ncols: int | None):
    from matplotlib.figure import Figure  # heavy: loaded only when a figure is drawn

    ncols = ncols or min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.2 * ncols + 0.8, 3.8 * nrows), constrained_layout=True)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    return fig, axes


def _var(block: xr.Dataset | xr.DataArray, var: str | None) -> xr.DataArray:
    if isinstance(block, xr.DataArray):
        return block
    if var is None or var not in block.data_vars:
        raise DataError(
            f"var={var!r} is not a variable of the block; it has {list(block.data_vars)}"
        )
    return block[var]


def _limits(values: np.ndarray, vmin, vmax) -> tuple[float, float]:
    fin = values[np.isfinite(values)]
    lo = float(np.min(fin)) if vmin is None and fin.size else vmin
    hi = float(np.max(fin)) if vmax is None and fin.size else vmax
    return (0.0 if lo is None else lo), (1.0 if hi is None else hi)


def plot_slices(
    block: xr.Dataset | xr.DataArray,
    var: str | None = None,
    *,
    elevations: Sequence[float],
    path: str | os.PathLike,
    ncols: int | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    overwrite: bool = False,
) -> Path:
    """Draw plan slices of a voxel variable at chosen elevations into one PNG.

    Parameters
    ----------
    block : xarray.Dataset or DataArray
        Voxels (z, y, x).
    var : str
        Variable to draw (ignored for a DataArray).
    elevations : sequence of float
        Elevations (CRS z units); each slice is the voxel layer containing it.
    path : path
        PNG to write; an existing file is an error unless ``overwrite=True``.
    ncols : int, optional
        Panels per row (default up to 3).
    cmap, vmin, vmax
        Colour map and limits (default: the range over the drawn slices).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The PNG written. Only the drawn layers are computed.
    """
    v = _var(block, var)
    geom = grid_geometry(v)
    if geom.dims != GRID_DIMS_3D:
        raise GridError(f"plot_slices needs voxels (z, y, x); got dims {geom.dims}")
    elevations = list(elevations)
    if not elevations:
        raise DataError("elevations= is empty; give at least one elevation")
    zlo, zhi = geom.bounds()["z"]
    idx = []
    for e in elevations:
        if not zlo <= float(e) <= zhi:
            raise GridError(f"elevation {e!r} is outside the block's z range [{zlo}, {zhi}]")
        idx.append(
            int(np.clip(round((float(e) - geom.origin[0]) / geom.step[0]), 0, geom.shape[0] - 1))
        )
    p = _check_target(path, overwrite)
    layers = np.asarray(v.isel(z=idx).values, dtype="float64")
    lo, hi = _limits(layers, vmin, vmax)
    b = geom.bounds()
    extent = (b["x"][0], b["x"][1], b["y"][0], b["y"][1])
    fig, axes = _figure(len(idx), ncols)
    im = None
    for ax, e, i, layer in zip(axes, elevations, idx, layers, strict=False):
        # y is descending (row 0 north): origin="upper" puts it at the top
        im = ax.imshow(
            layer,
            extent=extent,
            origin="upper",
            cmap=cmap,
            vmin=lo,
            vmax=hi,
            interpolation="nearest",
        )
        style_map_axes(
            ax, get_crs(v), title=f"{v.name}: z = {float(v['z'][i]):g} (asked {float(e):g})"
        )
        ax.set_aspect("equal")
    for ax in axes[len(idx) :]:
        ax.set_visible(False)
    fig.colorbar(im, ax=list(axes[: len(idx)]), label=_label(v))
    with atomic_path(p) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return p


def _label(v: xr.DataArray) -> str:
    units = v.attrs.get("units")
    return f"{v.name} ({units})" if units else str(v.name)


def section_profile(
    block: xr.Dataset | xr.DataArray,
    var: str | None = None,
    *,
    start: tuple[float, float],
    end: tuple[float, float],
    spacing: float | None = None,
) -> xr.DataArray:
    """Sample a voxel variable on the vertical plane through ``start`` and ``end``.

    Parameters
    ----------
    block : xarray.Dataset or DataArray
        Voxels (z, y, x).
    var : str
        Variable (ignored for a DataArray).
    start, end : (x, y)
        Ends of the section line in CRS units.
    spacing : float, optional
        Step along the line (default the smaller horizontal voxel size).

    Returns
    -------
    xarray.DataArray
        (z, distance) values of the voxel containing each point (NaN outside the block), with
        coordinates ``distance`` (from ``start``), ``x`` and ``y`` along the line.
    """
    v = _var(block, var)
    geom = grid_geometry(v)
    if geom.dims != GRID_DIMS_3D:
        raise GridError(f"a section needs voxels (z, y, x); got dims {geom.dims}")
    (x0, y0), (x1, y1) = (tuple(map(float, start)), tuple(map(float, end)))
    length = math.hypot(x1 - x0, y1 - y0)
    if length == 0:
        raise GridError(f"start {start!r} and end {end!r} are the same point")
    step = float(spacing) if spacing is not None else min(abs(geom.step[1]), abs(geom.step[2]))
    n = max(2, math.floor(length / step) + 1)
    dist = np.linspace(0.0, length, n)
    xs, ys = x0 + dist / length * (x1 - x0), y0 + dist / length * (y1 - y0)
    prof = v.sel(
        x=xr.DataArray(xs, dims="distance"), y=xr.DataArray(ys, dims="distance"), method="nearest"
    )
    b = geom.bounds()
    inside = (xs >= b["x"][0]) & (xs <= b["x"][1]) & (ys >= b["y"][0]) & (ys <= b["y"][1])
    prof = prof.where(xr.DataArray(inside, dims="distance"))
    return prof.assign_coords(distance=dist, x=("distance", xs), y=("distance", ys))


def plot_section(
    block: xr.Dataset | xr.DataArray,
    var: str | None = None,
    *,
    start: tuple[float, float],
    end: tuple[float, float],
    path: str | os.PathLike,
    spacing: float | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    overwrite: bool = False,
) -> Path:
    """Draw a vertical section of a voxel variable along a line into a PNG.

    Parameters
    ----------
    block : xarray.Dataset or DataArray
        Voxels (z, y, x).
    var : str
        Variable to draw (ignored for a DataArray).
    start, end : (x, y)
        Ends of the section line (CRS units).
    path : path
        PNG to write; an existing file is an error unless ``overwrite=True``.
    spacing : float, optional
        Step along the line (default the smaller horizontal voxel size).
    cmap, vmin, vmax
        Colour map and limits.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The PNG written; see :func:`section_profile` for the values drawn.
    """
    prof = section_profile(block, var, start=start, end=end, spacing=spacing)
    p = _check_target(path, overwrite)
    vals = np.asarray(prof.transpose("z", "distance").values, dtype="float64")
    lo, hi = _limits(vals, vmin, vmax)
    geom = grid_geometry(_var(block, var))
    zlo, zhi = geom.bounds()["z"]
    d = prof["distance"].values
    half = (d[1] - d[0]) / 2
    fig, axes = _figure(1, 1)
    ax = axes[0]
    im = ax.imshow(
        vals,
        extent=(d[0] - half, d[-1] + half, zlo, zhi),
        origin="lower",
        cmap=cmap,
        vmin=lo,
        vmax=hi,
        aspect="auto",
        interpolation="nearest",
    )
    crs = get_crs(_var(block, var))
    _, _, factor = map_axis_labels(crs)
    where = f"from ({start[0]:g}, {start[1]:g}) towards ({end[0]:g}, {end[1]:g})"
    if factor is not None:
        from matplotlib import ticker  # lazy: optional heavy dependency, only for figures

        ax.xaxis.set_major_formatter(
            ticker.FuncFormatter(lambda v, _pos: f"{v * factor / 1000.0:g}")
        )
        ax.set_xlabel(f"distance (km) {where}, {crs.name}")  # type: ignore[union-attr]
        ax.set_ylabel(f"elevation z ({crs.axis_info[0].unit_name})")  # type: ignore[union-attr]
    else:
        ax.set_xlabel(f"distance {where} (CRS units)")
        ax.set_ylabel("elevation z (CRS units)")
    ax.set_title(f"{_label(_var(block, var))}: vertical section")
    fig.colorbar(im, ax=ax, label=_label(_var(block, var)))
    with atomic_path(p) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return p


# ----------------------------------------------------------------------------- VTK


def vtk_arrays(
    block: xr.Dataset | xr.DataArray,
    variables: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Geometry and cell arrays of a VTK image (``vtkImageData``) for a voxel block.

    Parameters
    ----------
    block : xarray.Dataset or DataArray
        Voxels (z, y, x).
    variables : str or list of str, optional
        As in :func:`to_block_csv`.

    Returns
    -------
    dict
        ``dimensions`` (point counts nx+1, ny+1, nz+1), ``spacing``, ``origin`` (the lower
        corner, south-west-bottom) and ``cell_data`` (name -> flat float array, x fastest,
        then y ascending, then z ascending), the layout VTK expects. Axes stored in
        descending order (y north-up, z running downward) are flipped so that no voxel is
        mirrored; an axis of a single cell takes its size from its coordinate's
        ``resolution`` attr.
    """
    vars_ = _numeric_vars(block, variables, GRID_DIMS_3D)
    geom = grid_geometry(vars_[0])
    sizes = _cell_sizes(vars_[0], geom)
    nz, ny, nx = geom.shape
    spacing = (sizes[2], sizes[1], sizes[0])
    lower = [
        min(o, o + (n - 1) * s) - size / 2
        for o, n, s, size in zip(geom.origin, geom.shape, geom.step, sizes, strict=True)
    ]
    cell = {}
    for v in vars_:
        a = np.asarray(v.transpose(*GRID_DIMS_3D).values, dtype="float64")
        if geom.step[0] < 0:
            a = a[::-1, :, :]  # VTK layers go up
        if geom.step[1] < 0:
            a = a[:, ::-1, :]  # VTK rows go north
        if geom.step[2] < 0:
            a = a[:, :, ::-1]  # VTK columns go east
        cell[str(v.name)] = np.ascontiguousarray(a).ravel(order="C")
    return {
        "dimensions": (nx + 1, ny + 1, nz + 1),
        "spacing": spacing,
        "origin": (lower[2], lower[1], lower[0]),
        "cell_data": cell,
    }


def to_vtk(
    block: xr.Dataset | xr.DataArray,
    path: str | os.PathLike,
    *,
    variables: str | Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a voxel block model as a VTK image (``.vti``) through pyvista.

    Parameters
    ----------
    block : xarray.Dataset or DataArray
        Voxels (z, y, x).
    path : path
        Target file (``.vti`` recommended); an existing file is an error unless
        ``overwrite=True``.
    variables : str or list of str, optional
        Variables to write as cell data (default every numeric variable on (z, y, x)).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ImportError
        When pyvista is not installed (``pip install xprospect[vtk]``).
    """
    try:
        import pyvista as pv  # the optional ``vtk`` extra
    except ImportError as err:
        raise ImportError(
            "to_vtk needs pyvista, an optional extra: pip install xprospect[vtk]"
        ) from err
    arrays = vtk_arrays(block, variables)
    p = _check_target(path, overwrite)
    img = pv.ImageData(
        dimensions=arrays["dimensions"], spacing=arrays["spacing"], origin=arrays["origin"]
    )
    for name, a in arrays["cell_data"].items():
        img.cell_data[name] = a
    with atomic_path(p) as tmp:
        img.save(str(tmp))
    return p
