"""Read point locations (known deposits, occurrences) into ``point`` Datasets.

The Dataset layout and everything done with points on grids is :mod:`xprospect.points`;
this module only reads tables (through the package's one table reader) and reprojects.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Transformer

from xprospect._dims import check_area_of_use, check_same_crs, get_crs, parse_crs, write_crs
from xprospect.exceptions import DataError, XProspectWarning
from xprospect.io._columns import check_choice, check_columns, numbers, text_values
from xprospect.io._table import read_table
from xprospect.points import (
    POINT_DIM,
    as_points,
    geoframe_xy,
    is_geoframe,
    is_vector_path,
    make_points,
    read_vector,
)

__all__ = ["read_points"]

DUPLICATE_ID_POLICIES = ("error", "keep", "first")


def _from_geoframe(gdf: Any, crs: Any, x: str, y: str, z: str | None, where: str) -> tuple:
    """Return a GeoDataFrame as a table with its coordinates in columns ``x``, ``y`` (``z``)."""
    xs, ys, zs = geoframe_xy(gdf, where)
    own = None if gdf.crs is None else parse_crs(gdf.crs, "the GeoDataFrame's crs")
    if own is not None and crs is not None:
        check_same_crs(own, parse_crs(crs, "crs"), where, "crs=")
    df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    df[x], df[y] = xs, ys  # the geometry is the authority on coordinates
    if z is not None and zs is not None:
        df[z] = zs
    return df, (own if own is not None else crs)


def read_points(
    source: str | Path | pd.DataFrame | xr.Dataset | Any,
    *,
    x: str = "x",
    y: str = "y",
    z: str | None = None,
    crs: Any = None,
    to_crs: Any = None,
    id: str | None = None,
    query: str | None = None,
    duplicate_ids: str = "error",
    encoding: str | None = None,
) -> xr.Dataset:
    """Read point locations (known deposits, occurrences) into a ``point`` Dataset.

    Parameters
    ----------
    source : path, GeoDataFrame, DataFrame or Dataset
        A CSV or Parquet file; any vector file GDAL reads (GeoPackage, Shapefile, GeoJSON,
        FlatGeobuf: see :data:`xprospect.points.VECTOR_SUFFIXES`), read through geopandas and
        pyogrio with its CRS; a :class:`geopandas.GeoDataFrame` of points (its geometry and
        CRS); a table; or an xarray Dataset with one dimension and ``x``/``y`` coordinates
        (e.g. ``world.deposits``; its CRS is kept).
    x, y, z : str
        Coordinate column names (``z`` optional, elevation). For vector data the
        coordinates come from the geometry (``z`` names the column for a 3-D geometry's z).
    crs : optional
        CRS of the coordinates (required for tables; for vector data the file's CRS is used,
        and a different ``crs=`` is refused).
    to_crs : optional
        Reproject to this CRS.
    id : str, optional
        Column with point identifiers; ``point_id`` is ``P0, P1, ...`` otherwise.
    query : str, optional
        A :meth:`pandas.DataFrame.query` expression selecting rows
        (e.g. ``"SITE_TYPE_ != 'Occurrence'"``).
    duplicate_ids : {"error", "keep", "first"}
        What to do when two rows carry the same ``id``: raise naming both rows (default),
        keep every row (with an :class:`~xprospect.exceptions.XProspectWarning`), or keep the
        first row of each id (also warned). The count is in ``attrs["n_duplicate_ids"]``.
    encoding : str, optional
        Text encoding of a CSV file; by default UTF-8, then Windows-1252
        (``attrs["encoding"]`` says which was used).

    Returns
    -------
    xarray.Dataset
        Dimension ``point``; coordinates ``x``, ``y`` (``z``), ``point_id``; other columns as
        variables.

    Raises
    ------
    MissingFileError
        If the file does not exist.
    DataError
        If a column is missing or holds non-numeric coordinates, a table has no CRS, or an
        id repeats (``duplicate_ids="error"``).
    CRSError
        If a point lies outside the area of use of ``crs`` (or of ``to_crs``), naming the
        first such row and suggesting the swap when x and y look swapped.

    Notes
    -----
    Text columns are read verbatim: ``NA`` (Namibia), ``NULL`` or ``None`` stay text; only
    in a column of numbers are they missing values.

    Examples
    --------
    >>> import pandas as pd
    >>> pts = read_points(pd.DataFrame({"E": [500100.0], "N": [6.2e6]}), x="E", y="N",
    ...                   crs="EPSG:32750")
    >>> pts.sizes["point"], str(pts.point_id.values[0])
    (1, 'P0')
    """
    if isinstance(source, xr.Dataset):
        if query is not None:
            raise DataError("query= applies to tables; select on the Dataset instead")
        pts = as_points(source)
        return pts if to_crs is None else _reproject(pts, parse_crs(to_crs, "to_crs"))
    check_choice(duplicate_ids, DUPLICATE_ID_POLICIES, "duplicate_ids")
    geo_where = None
    if is_vector_path(source):
        geo_where = str(source)
        source = read_vector(source)
    if is_geoframe(source):
        geo_where = geo_where or "the points GeoDataFrame"
        source, crs = _from_geoframe(source, crs, x, y, z, geo_where)
    if isinstance(source, pd.DataFrame) or not isinstance(source, str | Path):
        table = read_table(
            source, what="points table", frame_label="the points table", allow_empty=True
        )
    else:
        table = read_table(
            source,
            what="points table",
            allow_empty=True,
            encoding=encoding,
            dtype=lambda header: {id: str} if id in header else None,
        )
    df, where = table.frame, geo_where or table.label
    df = df.reset_index(drop=True)  # rows named from 1 in messages, whatever the index
    if query is not None:
        try:
            df = df.query(query)
        except Exception as err:  # pandas raises SyntaxError, UndefinedVariableError, ...
            msg = (
                f"{where}: query={query!r} cannot select rows ({type(err).__name__}: {err}); "
                f"columns are {list(df.columns)}"
            )
            raise DataError(msg) from err
    if crs is None:
        raise DataError(f"{where}: pass crs= for the point coordinates (e.g. crs='EPSG:4326')")
    roles = {"x": x, "y": y} | ({"z": z} if z is not None else {})
    check_columns(list(df.columns), roles, where)
    if id is not None and id not in df.columns:
        raise DataError(f"{where} has no id column {id!r}; columns are {list(df.columns)}")
    rows = df.index.to_numpy()
    xyz = {r: numbers(df, c, r, where, rows=rows) for r, c in roles.items()}
    crs_in = parse_crs(crs, "crs")
    crs_out = None if to_crs is None else parse_crs(to_crs, "to_crs")
    check_area_of_use(
        crs_in, xyz["x"], xyz["y"], label=where, what="points", x_name=x, y_name=y, rows=rows + 1
    )
    if crs_out is not None:
        check_area_of_use(
            crs_out,
            xyz["x"],
            xyz["y"],
            label=where,
            what="points",
            x_name=x,
            y_name=y,
            rows=rows + 1,
            src=crs_in,
        )
    ids = None if id is None else text_values(df[id])
    n_dup = 0
    if ids is not None:
        dup = pd.Series(ids).duplicated(keep="first").to_numpy()
        n_dup = int(dup.sum())
        if n_dup:
            i = int(np.flatnonzero(dup)[0])
            j = int(np.flatnonzero(ids == ids[i])[0])
            msg = (
                f"{where} has {n_dup} rows repeating an earlier {id!r}: row {rows[i] + 1} "
                f"repeats {ids[i]!r} of row {rows[j] + 1}"
            )
            if duplicate_ids == "error":
                raise DataError(msg + "; pass duplicate_ids='keep' or 'first'")
            warnings.warn(
                msg
                + (
                    "; kept (duplicate_ids='keep')"
                    if duplicate_ids == "keep"
                    else "; only the first of each kept (duplicate_ids='first')"
                ),
                XProspectWarning,
                stacklevel=2,
            )
            if duplicate_ids == "first":
                df, ids = df[~dup], ids[~dup]
                xyz = {r: v[~dup] for r, v in xyz.items()}
    used = {x, y, z, id}
    data = {str(c): df[c].to_numpy() for c in df.columns if c not in used}
    pts = make_points(xyz["x"], xyz["y"], xyz.get("z"), crs=crs, ids=ids, data=data, source=where)
    pts.attrs["n_duplicate_ids"] = n_dup
    pts.attrs["duplicate_ids"] = duplicate_ids
    if table.encoding is not None:
        pts.attrs["encoding"] = table.encoding
    return pts if crs_out is None else _reproject(pts, crs_out)


def _reproject(pts: xr.Dataset, dst: Any) -> xr.Dataset:
    src = get_crs(pts)
    if src is None:
        raise DataError("the points have no CRS to reproject from")
    tr = Transformer.from_crs(src, dst, always_xy=True)
    xs, ys = tr.transform(pts["x"].values, pts["y"].values)
    out = pts.assign_coords(x=(POINT_DIM, xs), y=(POINT_DIM, ys))
    return write_crs(out, dst)
