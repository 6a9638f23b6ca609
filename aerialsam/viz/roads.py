"""Figures of SpaceNet 3 roads: labels and their attributes, masks in metres, road graphs.

Chapter 10 draws the data, masks and graphs; chapter 11 the road models: their training
losses, APLS per city against the 2017 winner, and a proposed graph's errors on one tile.

Everything here draws in pixel coordinates of a tile (x = column, y = row, origin top-left),
the convention of ``WKT_Pix`` and of the APLS metric; the images are uint8 RGB arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import geopandas as gpd
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from pandas.io.formats.style import Styler
from shapely import LineString

from aerialsam.data.spacenet3 import ROAD_TYPES
from aerialsam.evaluation.competition import CITY
from aerialsam.viz.curves import RUN_COLOURS, smoothed
from aerialsam.viz.results import plot_city_bars

ROAD_TYPE_COLOURS = {1: "#e41a1c", 2: "#ff7f00", 3: "#ffff33", 4: "#4daf4a", 5: "#00e5ff",
                     6: "#984ea3", 7: "#f781bf"}
"""A colour per SpaceNet 3 ``road_type`` (1 motorway … 7 cart track)."""
GRAPH_EDGE = "#00e5ff"
GRAPH_NODE = "#ff7f00"


def draw_lines(ax: Axes, lines: gpd.GeoDataFrame, column: str | None = "road_type",
               width: float = 1.5) -> None:
    """Draw road centre lines (pixel coordinates), coloured by ``road_type`` when present."""
    for row in lines.itertuples():
        code = getattr(row, column, None) if column else None
        colour = ROAD_TYPE_COLOURS.get(int(code), GRAPH_EDGE) if _is_code(code) else GRAPH_EDGE
        for part in getattr(row.geometry, "geoms", [row.geometry]):
            x, y = part.xy
            ax.plot(x, y, color=colour, linewidth=width, solid_capstyle="round")


def _is_code(value: object) -> bool:
    try:
        return int(value) in ROAD_TYPE_COLOURS  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


def road_type_legend(ax: Axes, codes: Sequence[int]) -> None:
    """A legend of the road types among ``codes``, below the axes."""
    handles = [Line2D([], [], color=ROAD_TYPE_COLOURS[c], linewidth=3,
                      label=f"{c} {ROAD_TYPES[c]}") for c in sorted(set(codes))
               if c in ROAD_TYPE_COLOURS]
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02),
                  ncol=min(4, len(handles)), fontsize=8, frameon=False)


def plot_road_tile(rgb: np.ndarray, lines: gpd.GeoDataFrame, title: str = "") -> Figure:
    """A tile with its road centre lines coloured by road type."""
    fig, ax = plt.subplots(figsize=(7, 7.6))
    ax.imshow(rgb)
    draw_lines(ax, lines)
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    codes = lines["road_type"].dropna().astype(int).tolist() if "road_type" in lines else []
    road_type_legend(ax, codes)
    fig.tight_layout()
    return fig


def plot_road_cities(images: Mapping[str, np.ndarray],
                     lines: Mapping[str, gpd.GeoDataFrame]) -> Figure:
    """One tile per city with its labelled roads (keys: the panels' titles)."""
    count = max(1, len(images))
    fig, axes = plt.subplots(1, count, figsize=(4.2 * count, 4.9), squeeze=False)
    codes: list[int] = []
    for ax, (name, rgb) in zip(axes[0], images.items(), strict=False):
        ax.imshow(rgb)
        draw_lines(ax, lines[name], width=1.0)
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
        if "road_type" in lines[name]:
            codes += lines[name]["road_type"].dropna().astype(int).tolist()
    for ax in axes[0][len(images):]:
        ax.set_axis_off()
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    handles = [Line2D([], [], color=ROAD_TYPE_COLOURS[c], linewidth=3,
                      label=f"{c} {ROAD_TYPES[c]}") for c in sorted(set(codes))]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
                   frameon=False)
    return fig


def plot_road_mask(rgb: np.ndarray, mask: np.ndarray, lines: gpd.GeoDataFrame,
                   window: tuple[int, int, int] | None = None, title: str = "") -> Figure:
    """The road mask over the image, whole and zoomed on ``window`` (row, col, side).

    The zoom shows the width in pixels along each axis: a buffer in metres is wider in
    pixels across a north-south road than across an east-west one, since SpaceNet pixels are
    about 0.30 m north-south but narrower east-west.
    """
    fig, (whole, zoom) = plt.subplots(1, 2, figsize=(11, 5.6))
    for ax in (whole, zoom):
        ax.imshow(rgb)
        ax.imshow(np.ma.masked_equal(mask > 0, False), cmap="autumn", alpha=0.45,
                  interpolation="nearest")
        draw_lines(ax, lines, column=None, width=0.8)
        ax.set_axis_off()
    whole.set_title(title, fontsize=10)
    if window is not None:
        row, col, side = window
        zoom.set_xlim(col, col + side)
        zoom.set_ylim(row + side, row)
        whole.add_patch(plt.Rectangle((col, row), side, side, fill=False, color="white",
                                      linewidth=1.2))
        zoom.set_title(f"zoom: {side} x {side} px", fontsize=10)
    fig.tight_layout()
    return fig


def draw_graph(ax: Axes, graph: nx.Graph, node_size: float = 12.0,
               edge_colour: str = GRAPH_EDGE, node_colour: str = GRAPH_NODE) -> None:
    """Draw a road graph: edges along their pixel paths, nodes as dots.

    An edge with a ``geometry`` (a LineString in pixels) follows it, others are straight;
    nodes carry their pixel position as ``x`` and ``y``.
    """
    for u, v, data in graph.edges(data=True):
        geometry = data.get("geometry")
        if geometry is not None:
            x, y = geometry.xy
        else:
            x = [graph.nodes[u]["x"], graph.nodes[v]["x"]]
            y = [graph.nodes[u]["y"], graph.nodes[v]["y"]]
        ax.plot(x, y, color=edge_colour, linewidth=1.4)
    if graph.number_of_nodes():
        xy = np.array([[d["x"], d["y"]] for _, d in graph.nodes(data=True)])
        ax.scatter(xy[:, 0], xy[:, 1], s=node_size, color=node_colour, zorder=3)


def plot_graph_steps(probability: np.ndarray, binary: np.ndarray, skeleton: np.ndarray,
                     raw: nx.Graph, cleaned: nx.Graph, threshold: float) -> Figure:
    """Mask to graph step by step: probabilities, threshold, skeleton, graph, cleaned graph."""
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.9))
    axes[0].imshow(probability, cmap="magma", vmin=0, vmax=1)
    axes[0].set_title("road probability", fontsize=10)
    axes[1].imshow(binary, cmap="gray")
    axes[1].set_title(f"above {threshold:g}", fontsize=10)
    axes[2].imshow(skeleton, cmap="gray", interpolation="nearest")
    axes[2].set_title("skeleton (1 px wide)", fontsize=10)
    for ax, graph, name in ((axes[3], raw, "graph"), (axes[4], cleaned, "cleaned graph")):
        ax.imshow(np.zeros_like(binary, dtype=float), cmap="gray", vmin=0, vmax=1)
        draw_graph(ax, graph)
        ax.set_title(f"{name}: {graph.number_of_nodes()} nodes, "
                     f"{graph.number_of_edges()} edges", fontsize=10)
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


PAIR_COLOURS = ("#e41a1c", "#4daf4a", "#984ea3", "#ff7f00", "#377eb8")


def plot_path_differences(truth: Sequence[LineString], proposal: Sequence[LineString],
                          table: pd.DataFrame, control: np.ndarray | None = None,
                          side: float = 600) -> Figure:
    """APLS's idea drawn: each pair's route in the truth and its counterpart in the proposal.

    ``table`` is :func:`aerialsam.book.roads.path_differences` (its ``attrs["routes"]``);
    ``control`` the truth's control points, drawn as small dots.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 5.4))
    for ax, lines, name in ((left, truth, "truth"), (right, proposal, "proposal")):
        for line in lines:
            ax.plot(*line.xy, color="0.75", linewidth=6, solid_capstyle="round", zorder=1)
        ax.set_title(name, fontsize=11)
        ax.set_xlim(0, side)
        ax.set_ylim(side, 0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    if control is not None and len(control):
        left.scatter(control[:, 0], control[:, 1], s=10, color="black", zorder=2,
                     label="control points")
    for i, (pair, row) in enumerate(table.iterrows()):
        colour = PAIR_COLOURS[i % len(PAIR_COLOURS)]
        route, found = table.attrs["routes"][i]
        offset = 6 * (i - (len(table) - 1) / 2)
        left.plot(*shapely.offset_curve(route, offset).xy, color=colour, linewidth=2.2,
                  zorder=3, label=f"{pair}: L = {row['L (truth)']:.0f} px")
        if found is not None:
            found_px = row["L' (proposal)"]
            right.plot(*shapely.offset_curve(found, offset).xy, color=colour, linewidth=2.2,
                       zorder=3, label=f"{pair}: L' = {found_px:.0f} px, cost {row['cost']:.3f}")
        else:
            right.plot([], [], color=colour, linewidth=2.2,
                       label=f"{pair}: no route, cost {row['cost']:.0f}")
    for ax in (left, right):
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), fontsize=8, frameon=False,
                  ncol=1)
    fig.tight_layout()
    return fig


class GraphErrors(Protocol):
    """A tile's road errors, as :func:`aerialsam.book.road_errors.graph_errors` finds them.

    Lines are shapely LineStrings, points ``(n, 2)`` arrays, all in the tile's pixels.
    """

    truth: Sequence[LineString]
    proposal: Sequence[LineString]
    missed: Sequence[LineString]
    false: Sequence[LineString]
    missed_junctions: np.ndarray
    breaks: np.ndarray
    spurs: np.ndarray


ERROR_COLOURS = {"truth": "#ffffff", "missed": "#e41a1c", "proposal": GRAPH_EDGE,
                 "false": "#ff00ff", "junction": "#ffff33", "break": "#ffff33",
                 "spur": "#ff00ff"}
"""Colours of :func:`plot_graph_errors`."""


def _plot_lines(ax: Axes, lines: Sequence[LineString], colour: str, width: float,
                style: str = "-", zorder: int = 2) -> None:
    for line in lines:
        x, y = line.xy
        ax.plot(x, y, color=colour, linewidth=width, linestyle=style,
                solid_capstyle="round", zorder=zorder)


def _plot_points(ax: Axes, points: np.ndarray, marker: str, colour: str, size: float,
                 hollow: bool = False) -> None:
    if len(points):
        ax.scatter(points[:, 0], points[:, 1], s=size, marker=marker, zorder=5,
                   facecolors="none" if hollow else colour, edgecolors=colour,
                   linewidths=1.8)


def plot_graph_errors(rgb: np.ndarray, errors: GraphErrors, title: str = "") -> Figure:
    """A tile's true roads and a model's proposed graph side by side, errors marked.

    Left, the truth: missed stretches in red, missed junctions as yellow circles. Right, the
    proposal: its roads in cyan over the truth (thin, dashed white), false stretches in
    magenta, breaks (dead ends on a true road) as yellow crosses, spurs (dead ends off the
    roads) as magenta triangles. ``errors`` is
    :func:`aerialsam.book.road_errors.graph_errors` of the tile.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 6.6))
    for ax in (left, right):
        ax.imshow(rgb)
        ax.set_axis_off()
    _plot_lines(left, errors.truth, ERROR_COLOURS["truth"], 1.2)
    _plot_lines(left, errors.missed, ERROR_COLOURS["missed"], 3.0, zorder=3)
    _plot_points(left, errors.missed_junctions, "o", ERROR_COLOURS["junction"], 160,
                 hollow=True)
    _plot_lines(right, errors.truth, ERROR_COLOURS["truth"], 0.8, "--")
    _plot_lines(right, errors.proposal, ERROR_COLOURS["proposal"], 1.6)
    _plot_lines(right, errors.false, ERROR_COLOURS["false"], 3.0, zorder=3)
    _plot_points(right, errors.breaks, "X", ERROR_COLOURS["break"], 90)
    _plot_points(right, errors.spurs, "^", ERROR_COLOURS["spur"], 60)
    left.set_title(f"truth: {_count(errors.missed, 'missed stretch')}, "
                   f"{_count(errors.missed_junctions, 'missed junction')}", fontsize=10)
    right.set_title(f"proposal: {_count(errors.false, 'false stretch')}, "
                    f"{_count(errors.breaks, 'break')}, {_count(errors.spurs, 'spur')}",
                    fontsize=10)
    legends = (
        (left, [("true road", ERROR_COLOURS["truth"], "-"),
                ("missed (no proposal within 4 m)", ERROR_COLOURS["missed"], "-"),
                ("missed junction", ERROR_COLOURS["junction"], "o")]),
        (right, [("proposed road", ERROR_COLOURS["proposal"], "-"),
                 ("false (no true road within 4 m)", ERROR_COLOURS["false"], "-"),
                 ("break", ERROR_COLOURS["break"], "X"),
                 ("spur", ERROR_COLOURS["spur"], "^")]))
    for ax, entries in legends:
        handles = [Line2D([], [], color=c, linewidth=3 if m == "-" else 0, marker=None
                          if m == "-" else m, markersize=9, label=name,
                          markerfacecolor="none" if m == "o" else c)
                   for name, c, m in entries]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01),
                  ncol=2, fontsize=8, facecolor="0.3", edgecolor="0.3", labelcolor="white")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96 if title else 1))
    return fig


def _count(items: Sequence | np.ndarray, noun: str) -> str:
    """``"1 break"``, ``"2 breaks"``, ``"2 missed stretches"``."""
    plural = noun + ("es" if noun.endswith("ch") else "s")
    return f"{len(items)} {noun if len(items) == 1 else plural}"


def show_apls_table(table: pd.DataFrame, split: str = "test") -> Styler:
    """The road models' APLS table as the book shows it (chapter 11).

    Three decimals, a dash where nothing was published or measured, the ``scored on``
    column said once in the caption. ``table`` is
    :func:`aerialsam.book.road_models.apls_table` (or its oracle table).
    """
    numbers = table.columns.drop("scored on")
    caption = ("SpaceNet 3 APLS per city; overall = mean of the cities. Models scored on this "
               f"run's {split} tiles")
    if table.index.str.startswith("2017").any():
        caption += ("; 2017 rows: the competition's winners, scored by the SpaceNet team on "
                    "its own test set (per-city scores published for the winner only; no "
                    "pixel IoU or speed)")
    return (table.style.format("{:.2f}", subset=["tiles/s"], na_rep="—")
            .format("{:.3f}", subset=numbers.drop("tiles/s"), na_rep="—")
            .hide(["scored on"], axis="columns").hide(axis="index", names=True)
            .set_caption(caption + ".").set_table_attributes('class="dataframe"'))


def plot_apls_per_city(table: pd.DataFrame) -> Figure:
    """APLS per city of each model, with the 2017 winner's (albu's) scores as black ticks.

    ``table`` is :func:`aerialsam.book.road_models.apls_table`; its 2017 rows other than the
    winner's are not drawn (only their overall score was published).
    """
    cities = [c for c in table.columns if c in CITY.values()] + ["overall"]
    winners = table[table.index.str.startswith("2017")]
    first = winners.iloc[0][cities] if len(winners) else None
    label = f"{winners.index[0]} (its own test set)" if len(winners) else ""
    return plot_city_bars(table, cities, first, label, "APLS")


def plot_road_losses(metrics: Mapping[str, pd.DataFrame], title: str = "") -> Figure:
    """Training loss against the step of several road runs (per step, and a running mean).

    The runs' losses are comparable only between runs with the same terms: a clDice run's
    loss includes its clDice term.
    """
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for (label, table), colour in zip(metrics.items(), RUN_COLOURS, strict=False):
        train = table[table["split"] == "train"]
        ax.plot(train["step"], train["loss"], color=colour, alpha=0.3, linewidth=0.8)
        ax.plot(train["step"], smoothed(train["loss"]), color=colour, label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
