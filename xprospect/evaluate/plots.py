"""Figures: score map with deposits and blocks, ROC curves, success-rate curves.

Every figure has a title, axis labels with units (map axes in km and the CRS named, by
:func:`xprospect._figures.style_map_axes`) and a legend entry for every mark. matplotlib is
imported inside each function, so importing xprospect never needs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xprospect._dims import get_crs
from xprospect._figures import style_map_axes
from xprospect.evaluate._common import as_score_map
from xprospect.points import as_points

__all__ = ["plot_blocks", "plot_map", "plot_roc", "plot_success_rate"]


def _axes(ax: Any):
    import matplotlib.pyplot as plt  # optional heavy dependency, only for figures

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    return ax


def plot_map(
    score_map: xr.DataArray,
    deposits: Any = None,
    *,
    ax: Any = None,
    cmap: str = "viridis",
    title: str | None = None,
) -> Any:
    """Draw a score map (voxels: the maximum over ``z``) with deposits as red triangles.

    The axes are easting and northing in km for a projected CRS, with the CRS named
    (:func:`xprospect._figures.style_map_axes`); the colour bar names the score and its
    unit (``attrs["units"]``, else "unitless"). Returns the matplotlib Axes.
    """
    ax = _axes(ax)
    m = as_score_map(score_map)
    label = "max over z" if "z" in m.dims else None
    if "z" in m.dims:
        m = m.max("z", skipna=True)
    x, y = m["x"].values, m["y"].values
    dx = abs(x[1] - x[0]) if len(x) > 1 else 1.0
    dy = abs(y[1] - y[0]) if len(y) > 1 else 1.0
    extent = (x.min() - dx / 2, x.max() + dx / 2, y.min() - dy / 2, y.max() + dy / 2)
    vals = np.asarray(m.transpose("y", "x").values, dtype="float64")
    if y[0] < y[-1]:
        vals = vals[::-1]
    im = ax.imshow(vals, extent=extent, cmap=cmap, origin="upper", interpolation="nearest")
    unit = m.attrs.get("units") or "unitless"
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label=f"{m.name or 'score'} ({unit})")
    if deposits is not None:
        pts = as_points(deposits)
        ax.scatter(
            pts["x"].values,
            pts["y"].values,
            marker="^",
            s=40,
            c="red",
            edgecolors="white",
            linewidths=0.7,
            label="deposits",
        )
        ax.legend(loc="lower right", fontsize=8)
    style_map_axes(
        ax,
        get_crs(m),
        title=title or " ".join(s for s in (str(m.name or "score"), label) if s),
    )
    return ax


def plot_blocks(table: pd.DataFrame, *, ax: Any, numbers: bool = True) -> Any:
    """Overlay a :func:`block_grid` table on a map Axes: outlines, numbers, predictions.

    Predicted blocks are outlined in orange, blocks holding deposits (when known) hatched;
    the legend gains an entry for each kind drawn (beside the map's own entries).
    """
    from matplotlib.patches import Rectangle  # optional heavy dependency, only for figures

    for b, r in table.iterrows():
        pred = bool(r["predicted"])
        ax.add_patch(
            Rectangle(
                (r["xmin"], r["ymin"]),
                r["xmax"] - r["xmin"],
                r["ymax"] - r["ymin"],
                fill=False,
                edgecolor="orange" if pred else "white",
                linewidth=1.4 if pred else 0.4,
                hatch="//" if bool(r.get("truth", False)) else None,
            )
        )
        if numbers:
            ax.text(
                (r["xmin"] + r["xmax"]) / 2,
                (r["ymin"] + r["ymax"]) / 2,
                str(b),
                ha="center",
                va="center",
                fontsize=5,
                color="white",
            )
    kinds = [
        (table["predicted"].astype(bool).any(), "block called prospective", "orange", None),
        ((~table["predicted"].astype(bool)).any(), "block", "0.4", None),
        (
            "truth" in table and table["truth"].astype(bool).any(),
            "block with deposits",
            "0.4",
            "//",
        ),
    ]
    handles, labels = ax.get_legend_handles_labels()
    for shown, lab, colour, hatch in kinds:
        if shown:
            handles.append(Rectangle((0, 0), 1, 1, fill=False, edgecolor=colour, hatch=hatch))
            labels.append(lab)
    ax.legend(handles, labels, loc="lower right", fontsize=8)
    return ax


def plot_roc(curves: pd.DataFrame | dict[str, pd.DataFrame], *, ax: Any = None) -> Any:
    """Draw one ROC curve (a :func:`roc_curve` table) or several (a dict by label)."""
    ax = _axes(ax)
    if isinstance(curves, pd.DataFrame):
        curves = {"": curves}
    for name, c in curves.items():
        auc = c.attrs.get("auc")
        lab = f"{name} AUC={auc:.3f}".strip() if auc is not None else name
        ax.plot(c["fpr"], c["tpr"], label=lab or "ROC curve")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8, label="random ranking (AUC 0.5)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate (fraction of negative cells)")
    ax.set_ylabel("true positive rate (fraction of deposits)")
    ax.set_title("ROC curve")
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_success_rate(curves: pd.DataFrame | dict[str, pd.DataFrame], *, ax: Any = None) -> Any:
    """Draw one success-rate curve (a :func:`success_rate_curve` table) or several."""
    ax = _axes(ax)
    if isinstance(curves, pd.DataFrame):
        curves = {"": curves}
    for name, c in curves.items():
        auc = c.attrs.get("auc")
        lab = f"{name} area={auc:.3f}".strip() if auc is not None else name
        ax.plot(
            c["area_fraction"],
            c["deposit_fraction"],
            label=lab or "success rate",
            drawstyle="default",
        )
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8, label="random ranking")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("fraction of the area (cells ranked by score)")
    ax.set_ylabel("fraction of deposits captured")
    ax.set_title("Success-rate curve")
    ax.legend(loc="lower right", fontsize=8)
    return ax
