"""Figures of the per-city evaluation (book chapters 09 and 12).

The headline table as shown, F1 per city against the 2017 winner, the cross-city matrix, the
input-size study, F1 by building size and the worst tiles of each city; the tables come from
:mod:`aerialsam.evaluation.analysis`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler

from aerialsam.config import AOIS
from aerialsam.data import spacenet
from aerialsam.evaluation.competition import CITY
from aerialsam.metrics.building_f1 import ScoreResult
from aerialsam.prep.stretch import Stretch
from aerialsam.viz.imagery import read_rgb
from aerialsam.viz.scoring import outcome_legend, plot_outcomes


def show_headline(table: pd.DataFrame, split: str = "test") -> Styler:
    """The headline table as the book shows it.

    Three decimals, a dash where nothing was published or measured, and the ``scored on``
    column said once in the caption instead of on every row (the table must fit the page).
    """
    numbers = table.columns.drop("scored on")
    return (table.style.format("{:.2f}", subset=["images/s"], na_rep="—")
            .format("{:.3f}", subset=numbers.drop("images/s"), na_rep="—")
            .hide(["scored on"], axis="columns").hide(axis="index", names=True)
            .set_caption("SpaceNet F1 (IoU > 0.5) per city; overall = mean of the cities. "
                         f"Models scored on this run's {split} tiles; 2017 rows: the "
                         "competition's winners, scored by the SpaceNet team on its own test "
                         "set (no precision, recall or speed published).")
            .set_table_attributes('class="dataframe"'))


def plot_headline(table: pd.DataFrame) -> Figure:
    """F1 per city of each evaluated model, with the 2017 winner's scores as black ticks."""
    cities = [CITY[a] for a in AOIS] + ["overall"]
    return plot_city_bars(table, cities, table.loc["2017: XD_XD (1st)", cities],
                          "2017 winner XD_XD (its own test set)", "SpaceNet F1 (IoU > 0.5)")


def plot_city_bars(table: pd.DataFrame, cities: list[str], winner: pd.Series | None,
                   winner_label: str, metric: str) -> Figure:
    """A score per city (and overall) of each model as bars, a reference row as black ticks.

    Args:
        table: one row per model (index: its name), one column per entry of ``cities``; rows
            whose name starts with ``2017`` are reference rows and are not drawn as bars;
            oracle rows (``ORACLE`` in the name) are hatched.
        cities: the columns to draw, in order.
        winner: the reference scores drawn as ticks (``None``: none).
        winner_label: its legend entry.
        metric: the y axis label.
    """
    fig, ax = plt.subplots(figsize=(10, 4))
    draw_city_bars(ax, table, cities, winner, winner_label, metric)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def draw_city_bars(ax: Axes, table: pd.DataFrame, cities: list[str], winner: pd.Series | None,
                   winner_label: str, metric: str) -> None:
    """:func:`plot_city_bars` on an existing axes, without its legend."""
    ours = table[~table.index.str.startswith("2017")]
    width = 0.8 / max(1, len(ours))
    x = np.arange(len(cities))
    for i, (name, row) in enumerate(ours.iterrows()):
        values = row[cities].astype(float).fillna(0.0).to_numpy()
        ax.bar(x + (i - (len(ours) - 1) / 2) * width, values, width, label=name,
               hatch="//" if "ORACLE" in name else None, edgecolor="white")
    if winner is not None:
        ax.scatter(x, winner.astype(float), marker="_", s=900, color="black", zorder=3,
                   label=winner_label)
    ax.set_xticks(x, cities)
    ax.set_ylim(0, 1)
    ax.set_ylabel(metric)


def show_answer(table: pd.DataFrame) -> Styler:
    """:func:`aerialsam.book.answer.side_by_side` as the book shows it: one block per task.

    Cities (and overall) down, kinds of model across, so the models a reader compares stand in
    one row and the table fits the page; three decimals, a dash where nothing was scored or
    published.
    """
    long = table.T.rename_axis(["task", "city"])
    return (long.style.format("{:.3f}", na_rep="—")
            .set_caption("Each kind of model per city (buildings: SpaceNet 2 F1; roads: "
                         "SpaceNet 3 APLS; overall = mean of the cities), its best run in "
                         "each task. 2017 winner: scored on the competition's own test set.")
            .set_table_attributes('class="dataframe"'))


def plot_answer(table: pd.DataFrame) -> Figure:
    """Buildings and roads, one above the other: each kind of model per city, winners as ticks.

    ``table`` is :func:`aerialsam.book.answer.side_by_side`: one column block per task, its
    last row the 2017 winners.
    """
    tasks = list(dict.fromkeys(table.columns.get_level_values(0)))
    fig, axes = plt.subplots(len(tasks), 1, figsize=(9, 3.2 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks, strict=True):
        block = table[task]
        # every kind drawn in both panels (empty where missing): one colour per kind
        ours, winner = block.iloc[:-1], block.iloc[-1]
        draw_city_bars(ax, ours, list(block.columns), winner,
                       f"{block.index[-1]} (its own test set)", task)
        ax.set_title(task)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=9, loc="lower center", ncol=len(labels),
               frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def plot_cross_city(matrix: pd.DataFrame, title: str, metric: str = "SpaceNet F1") -> Figure:
    """The cross-city matrix as a heat map (diagonal: trained and tested on one city)."""
    side = 1.1 * len(matrix) + 2.5
    fig, ax = plt.subplots(figsize=(side, side - 1.0))
    image = ax.imshow(matrix.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(matrix.to_numpy(dtype=float)):
        text = "n/a" if np.isnan(value) else f"{value:.2f}"
        ax.text(j, i, text, ha="center", va="center",
                color="white" if np.isnan(value) or value < 0.5 else "black",
                fontweight="bold" if i == j else None)
    ax.set_xticks(range(len(matrix.columns)), matrix.columns)
    ax.set_yticks(range(len(matrix.index)), matrix.index)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label=metric, shrink=0.8)
    fig.tight_layout()
    return fig


def plot_size_study(table: pd.DataFrame, title: str) -> Figure:
    """F1 and seconds per tile against SAM 2's input size."""
    fig, (ax_f1, ax_time) = plt.subplots(1, 2, figsize=(9, 3.2))
    sizes = table.index.to_numpy()
    ax_f1.plot(sizes, table["overall F1"], marker="o")
    ax_f1.set_ylim(0, 1)
    ax_f1.set_ylabel("overall F1")
    ax_time.plot(sizes, table["seconds per tile"], marker="o", color="tab:red")
    ax_time.set_ylim(0, None)
    ax_time.set_ylabel("seconds per 650 px tile")
    for ax in (ax_f1, ax_time):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("SAM 2 input (= chip) side, px")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_f1_by_size(tables: Mapping[str, pd.DataFrame]) -> Figure:
    """F1 per building-area bin, one line per model."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for name, table in tables.items():
        ax.plot(table.index.astype(str), table["f1"], marker="o", label=name)
    ax.set_ylim(0, 1)
    ax.set_xlabel("building area, px² (true buildings for TP/FN, proposals for FP)")
    ax.set_ylabel("F1 in the bin")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def plot_worst_tiles(result: ScoreResult, image_ids: Sequence[str],
                     tiles: Mapping[str, spacenet.Tile], stretches: Mapping[str, Stretch],
                     title: str) -> Figure:
    """Matched, missed and false polygons over each of the tiles (colours of ``viz.scoring``)."""
    count = max(1, len(image_ids))
    fig, axes = plt.subplots(1, count, figsize=(4.2 * count, 5.4), squeeze=False)
    for ax, image in zip(axes[0], image_ids, strict=False):
        tile = tiles[image]
        plot_outcomes(ax, result, image, read_rgb(tile, stretches[tile.aoi]))
    fig.suptitle(title, fontsize=11)
    outcome_legend(fig)
    fig.tight_layout(rect=(0, 0.07, 1, 0.93))
    return fig


