"""The one home of how map figures show their coordinates: axis units, the CRS, km ticks.

Every matplotlib figure the package draws over map coordinates (score maps, block grids,
block-model slices, the demo's and the harness's maps) calls :func:`style_map_axes`, so
each says what its axes are: easting and northing in kilometres for a projected CRS (the
data stay in the CRS's own units; only the tick labels are scaled, so overlays drawn in
CRS coordinates still line up), longitude and latitude in degrees for a geographic one,
and the CRS's name. matplotlib is imported inside the functions, so importing xprospect
never needs it.
"""

from __future__ import annotations

from typing import Any

from pyproj import CRS

from xprospect._dims import parse_crs

__all__ = ["finish_figure", "map_axis_labels", "style_map_axes"]


def map_axis_labels(crs: Any) -> tuple[str, str, float | None]:
    """Return the x label, the y label and the metres per CRS unit of a map's axes.

    Parameters
    ----------
    crs : any CRS spec or None
        The map's CRS.

    Returns
    -------
    (str, str, float or None)
        Labels naming the unit and (on x) the CRS; the factor from CRS units to metres for
        a projected CRS (None otherwise: no km ticks).

    Examples
    --------
    >>> map_axis_labels("EPSG:32750")[:2]
    ('easting (km), WGS 84 / UTM zone 50S', 'northing (km)')
    >>> map_axis_labels(None)[:2]
    ('x (no CRS: units unknown)', 'y (no CRS: units unknown)')
    """
    if crs is None:
        return "x (no CRS: units unknown)", "y (no CRS: units unknown)", None
    c = crs if isinstance(crs, CRS) else parse_crs(crs)
    if c.is_geographic:
        return f"longitude (°), {c.name}", "latitude (°)", None
    axis = c.axis_info[0] if c.axis_info else None
    factor = getattr(axis, "unit_conversion_factor", None)
    if axis is None or factor is None or axis.unit_name in ("unknown", ""):
        return f"x ({c.name} units)", "y", None
    return f"easting (km), {c.name}", "northing (km)", float(factor)


def style_map_axes(ax: Any, crs: Any, *, title: str | None = None) -> Any:
    """Label a map Axes with its units and CRS, and show projected coordinates in km.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes whose data coordinates are the CRS's x and y.
    crs : any CRS spec or None
        The map's CRS.
    title : str, optional
        Set as the Axes' title when given.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from matplotlib import ticker  # lazy: optional heavy dependency, only for figures

    xlabel, ylabel, factor = map_axis_labels(crs)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if factor is not None:
        km = ticker.FuncFormatter(lambda v, _pos: f"{v * factor / 1000.0:g}")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(ticker.MaxNLocator(5))
            axis.set_major_formatter(km)
    if title is not None:
        ax.set_title(title)
    return ax


def finish_figure(fig: Any, path: Any = None) -> Any:
    """Lay out ``fig`` and save it to ``path`` when given (120 dpi, format by suffix).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or Path, optional
        Where to save it.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig``, so that a plotting function can end with ``return finish_figure(fig, path)``.
    """
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
