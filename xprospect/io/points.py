"""Read point locations (known deposits, occurrences) into ``point`` Datasets.

The Dataset layout and everything done with points on grids is :mod:`xprospect.points`;
this module only reads tables (through the package's one table reader) and reprojects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr
from pyproj import Transformer

from xprospect._dims import get_crs, parse_crs, write_crs
from xprospect.exceptions import DataError
from xprospect.io._columns import check_columns, numbers, text_values
from xprospect.io._table import read_table
from xprospect.points import POINT_DIM, as_points, make_points

__all__ = ["read_points"]


def read_points(source: str | Path | pd.DataFrame | xr.Dataset, *, x: str = "x", y: str = "y",
                z: str | None = None, crs: Any = None, to_crs: Any = None,
                id: str | None = None, query: str | None = None) -> xr.Dataset:
    """Read point locations (known deposits, occurrences) into a ``point`` Dataset.

    Parameters
    ----------
    source : path, DataFrame or Dataset
        A CSV or Parquet file, a table, or an xarray Dataset with one dimension and ``x``/``y``
        coordinates (e.g. ``world.deposits``; its CRS is kept).
    x, y, z : str
        Coordinate column names (``z`` optional, elevation).
    crs : optional
        CRS of the coordinates (required for tables).
    to_crs : optional
        Reproject to this CRS.
    id : str, optional
        Column with point identifiers; ``point_id`` is ``P0, P1, ...`` otherwise.
    query : str, optional
        A :meth:`pandas.DataFrame.query` expression selecting rows
        (e.g. ``"SITE_TYPE_ != 'Occurrence'"``).

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
        If a column is missing or holds non-numeric coordinates, or a table has no CRS.

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
    if isinstance(source, pd.DataFrame) or not isinstance(source, str | Path):
        table = read_table(source, what="points table", frame_label="the points table",
                           allow_empty=True)
    else:
        table = read_table(source, what="points table", allow_empty=True,
                           dtype=lambda header: {id: str} if id in header else None)
    df, where = table.frame, table.label
    if query is not None:
        df = df.query(query)
    if crs is None:
        raise DataError(f"{where}: pass crs= for the point coordinates (e.g. crs='EPSG:4326')")
    roles = {"x": x, "y": y} | ({"z": z} if z is not None else {})
    check_columns(list(df.columns), roles, where)
    if id is not None and id not in df.columns:
        raise DataError(f"{where} has no id column {id!r}; columns are {list(df.columns)}")
    xyz = {r: numbers(df, c, r, where) for r, c in roles.items()}
    used = {x, y, z, id}
    data = {str(c): df[c].to_numpy() for c in df.columns if c not in used}
    ids = None if id is None else text_values(df[id])
    pts = make_points(xyz["x"], xyz["y"], xyz.get("z"), crs=crs, ids=ids, data=data,
                      source=where)
    return pts if to_crs is None else _reproject(pts, parse_crs(to_crs, "to_crs"))


def _reproject(pts: xr.Dataset, dst: Any) -> xr.Dataset:
    src = get_crs(pts)
    if src is None:
        raise DataError("the points have no CRS to reproject from")
    tr = Transformer.from_crs(src, dst, always_xy=True)
    xs, ys = tr.transform(pts["x"].values, pts["y"].values)
    out = pts.assign_coords(x=(POINT_DIM, xs), y=(POINT_DIM, ys))
    return write_crs(out, dst)
