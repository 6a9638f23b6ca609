"""An ipywidgets browser of an evaluation: pick a city, a tile, a model and a threshold.

For readers running the notebook: the chosen model's probability map of the chosen tile is
turned into polygons at the chosen threshold and scored against the tile's buildings, and
the matched, missed and false polygons are drawn over the image.

A rendered book cannot run Python behind a slider, so when the notebook is executed in a
batch (papermill, ``make book``, the tests) :func:`show` draws a static figure in the
widget's place: the same tile for every model at a few thresholds. :func:`live_session`
decides; set ``AERIALSAM_WIDGETS=1`` (or ``0``) to force either.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import ipywidgets
import matplotlib.pyplot as plt
from IPython import get_ipython
from IPython.display import clear_output, display
from matplotlib.figure import Figure

from aerialsam.data import spacenet
from aerialsam.evaluation.analysis import BrowsedModel, tile_result
from aerialsam.prep.stretch import Stretch
from aerialsam.viz.imagery import read_rgb
from aerialsam.viz.scoring import outcome_legend, plot_outcomes

log = logging.getLogger(__name__)

FORCE_ENV = "AERIALSAM_WIDGETS"
"""``1``: always show the live browser; ``0``: always the static figure."""
BATCH_RUNNERS = ("papermill", "nbclient", "nbconvert", "pytest", "aerialsam.book.notebooks",
                 "jupyter-execute", "jupyter-book")
"""Programs that execute notebooks without a reader: a kernel they started shows no widget."""
STATIC_THRESHOLDS = (0.3, 0.5, 0.7)


@dataclass(frozen=True)
class BrowserData:
    """What the browser shows: tiles by image id, per-city stretches, the models."""

    tiles: Mapping[str, spacenet.Tile]
    stretches: Mapping[str, Stretch]
    models: Mapping[str, BrowsedModel]
    image_ids: Sequence[str]


def draw_tile(ax: plt.Axes, data: BrowserData, model: str, image_id: str,
              threshold: float) -> None:
    """One model's outcome on one tile at one threshold, over the image."""
    tile = data.tiles[image_id]
    result = tile_result(data.models[model], tile, threshold)
    rgb = read_rgb(tile, data.stretches[tile.aoi])
    if result.per_image.empty:  # neither buildings nor proposals: nothing is scored
        ax.imshow(rgb)
        ax.set_title(f"{model}\nthreshold {threshold:.2f}: nothing to score", fontsize=9)
        ax.set_axis_off()
        return
    row = result.per_image.iloc[0]
    plot_outcomes(ax, result, image_id, rgb,
                  f"{model}\nthreshold {threshold:.2f}: TP {row.tp}  FP {row.fp}  FN {row.fn}"
                  f"  F1 {row.f1:.2f}")


def static_view(data: BrowserData, image_id: str,
                thresholds: Sequence[float] = STATIC_THRESHOLDS) -> Figure:
    """The browser's stand-in: one tile, every model (rows) at a few thresholds (columns)."""
    names = list(data.models)
    fig, axes = plt.subplots(len(names), len(thresholds), squeeze=False,
                             figsize=(3.6 * len(thresholds), 3.9 * len(names)))
    for row, name in zip(axes, names, strict=True):
        for ax, threshold in zip(row, thresholds, strict=True):
            draw_tile(ax, data, name, image_id, threshold)
            ax.title.set_fontsize(8)
    fig.suptitle(f"{image_id}: each model at thresholds {', '.join(map(str, thresholds))}",
                 fontsize=11)
    outcome_legend(fig)
    fig.tight_layout(rect=(0, 0.04, 1, 0.98))
    return fig


def browser(data: BrowserData) -> ipywidgets.Widget:
    """The live browser: city, tile, model and threshold controls above the tile's map."""
    by_city: dict[str, list[str]] = {}
    for image in data.image_ids:
        by_city.setdefault(data.tiles[image].aoi, []).append(image)
    city = ipywidgets.Dropdown(options=sorted(by_city), description="city")
    tile = ipywidgets.Dropdown(options=by_city[city.value], description="tile")
    model = ipywidgets.Dropdown(options=list(data.models), description="model",
                                layout=ipywidgets.Layout(width="32em"))
    first = data.models[model.value].threshold
    threshold = ipywidgets.FloatSlider(value=first, min=0.05, max=0.95, step=0.05,
                                       description="threshold", continuous_update=False)
    out = ipywidgets.Output()

    def redraw(_: object = None) -> None:
        with out:
            clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(6.5, 6.5))
            draw_tile(ax, data, model.value, tile.value, threshold.value)
            display(fig)
            plt.close(fig)

    def new_city(_: object) -> None:
        tile.options = by_city[city.value]  # also fires tile's observer

    def new_model(_: object) -> None:
        wanted = data.models[model.value].threshold
        if threshold.value != wanted:
            threshold.value = wanted  # its observer redraws
        else:
            redraw()

    city.observe(new_city, names="value")
    model.observe(new_model, names="value")
    for control in (tile, threshold):
        control.observe(redraw, names="value")
    redraw()
    return ipywidgets.VBox([ipywidgets.HBox([city, tile]),
                            ipywidgets.HBox([model, threshold]), out])


def live_session() -> bool:
    """Whether a reader is at the notebook; ``$AERIALSAM_WIDGETS`` overrides.

    A reader is there when an IPython kernel was not started by a batch runner (papermill,
    nbclient, the tests, ``make book``).
    """
    forced = os.environ.get(FORCE_ENV, "")
    if forced in ("0", "1"):
        return forced == "1"
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return False
    return not any(runner in command for command in _ancestor_commands()
                   for runner in BATCH_RUNNERS)


def _ancestor_commands(depth: int = 4) -> list[str]:
    """Command lines of this process's parent, grandparent, … (Linux ``/proc``).

    Elsewhere none, and the browser is shown: under a batch runner it renders as text,
    harmlessly.
    """
    commands, pid = [], os.getppid()
    for _ in range(depth):
        proc = Path("/proc") / str(pid)
        try:
            commands.append(proc.joinpath("cmdline").read_bytes().replace(b"\0", b" ")
                            .decode(errors="replace"))
            pid = int(proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if pid <= 1:
            break
    return commands


def show(data: BrowserData, image_id: str) -> None:
    """Display the live browser for a reader, or :func:`static_view` of ``image_id``.

    The static view is for a batch run (the rendered book).
    """
    if live_session():
        display(browser(data))
        return
    log.info("batch run: a static figure stands in for the browser")
    fig = static_view(data, image_id)
    display(fig)
    plt.close(fig)
