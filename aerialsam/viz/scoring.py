"""Figures that explain the SpaceNet 2 metric (book chapter 05).

What an IoU of 0.33, 0.5 or 0.7 looks like, and the matched, missed and false polygons of a
scored tile over its image (the colours every later chapter reuses). The simulated proposals
behind chapter 05's figures are made by :mod:`aerialsam.book.metric`.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import shapely
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from shapely.geometry import box

from aerialsam.metrics.building_f1 import ScoreResult

STYLE = {
    "matched truth": {"facecolor": "none", "edgecolor": "#1b9e77", "linewidth": 2.0},
    "missed truth": {"facecolor": "#e31a1c", "edgecolor": "#e31a1c", "alpha": 0.5},
    "matched proposal": {"facecolor": "none", "edgecolor": "#7570b3", "linewidth": 1.0,
                         "linestyle": "--"},
    "false proposal": {"facecolor": "none", "edgecolor": "#e7298a", "linewidth": 2.0,
                       "linestyle": ":"},
}


def plot_iou_examples(ious: Sequence[float] = (0.33, 0.5, 0.7)) -> Figure:
    """A 40 px square building and a proposal shifted so that their IoU is each value."""
    fig, axes = plt.subplots(1, len(ious), figsize=(3.2 * len(ious), 3.2))
    side = 40.0
    truth = box(0, 0, side, side)
    for ax, iou in zip(np.atleast_1d(axes), ious, strict=True):
        shift = side * (1 - iou) / (1 + iou)  # (s - d) / (s + d) = IoU for a sideways shift
        proposal = box(shift, 0, side + shift, side)
        _draw(ax, [truth], STYLE["matched truth"])
        _draw(ax, [proposal], STYLE["false proposal"])
        inter = shapely.intersection(truth, proposal)
        _draw(ax, [inter], {"facecolor": "#999999", "alpha": 0.4, "edgecolor": "none"})
        verdict = "true positive" if iou > 0.5 else "false positive + missed"
        ax.set_title(f"IoU {iou:.2f}: {verdict}", fontsize=10)
        ax.set_xlim(-5, 2 * side)
        ax.set_ylim(side + 5, -5)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.tight_layout()
    return fig


def _draw(ax: plt.Axes, geoms: Sequence[shapely.Geometry], style: dict) -> None:
    """Draw polygons on ``ax`` (pixel coordinates, y down is handled by the axis limits)."""
    if len(geoms):
        gpd.GeoSeries(list(geoms)).plot(ax=ax, **style)


def plot_outcomes(ax: plt.Axes, result: ScoreResult, image_id: str,
                  rgb: np.ndarray | None = None, title: str | None = None) -> None:
    """Matched, missed and false polygons of one scored image, over its picture if given."""
    if rgb is not None:
        ax.imshow(rgb)
    truth = result.truth[result.truth["image_id"] == image_id]
    props = result.proposals[result.proposals["image_id"] == image_id]
    _draw(ax, truth.geometry[truth["status"] == "matched"], STYLE["matched truth"])
    _draw(ax, truth.geometry[truth["status"] == "missed"], STYLE["missed truth"])
    _draw(ax, props.geometry[props["status"] == "matched"], STYLE["matched proposal"])
    _draw(ax, props.geometry[props["status"] == "false"], STYLE["false proposal"])
    row = result.per_image.set_index("image_id").loc[image_id]
    ax.set_title(title or f"{image_id}\nTP {row.tp}  FP {row.fp}  FN {row.fn}  F1 {row.f1:.3f}",
                 fontsize=10)
    ax.set_xlim(0, 650)
    ax.set_ylim(650, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")


def outcome_legend(fig: Figure) -> None:
    """One legend for the outcome colours, below the figure."""
    handles = [Patch(label=name, **{k: v for k, v in style.items() if k != "linewidth"})
               for name, style in STYLE.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)


def plot_outcome_panels(results: Sequence[ScoreResult], image_id: str,
                        titles: Sequence[str], rgb: np.ndarray | None = None) -> Figure:
    """Side-by-side outcome maps of several scorings of the same image."""
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 6.0))
    for ax, result, title in zip(np.atleast_1d(axes), results, titles, strict=True):
        row = result.per_image.set_index("image_id").loc[image_id]
        plot_outcomes(ax, result, image_id, rgb,
                      f"{title}\nTP {row.tp}  FP {row.fp}  FN {row.fn}  F1 {row.f1:.3f}")
    outcome_legend(fig)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
