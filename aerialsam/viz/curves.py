"""Figures of fine-tuning runs (book chapters 07 and 08): curves, predictions, the cache.

The runs and the numbers behind these figures come from :mod:`aerialsam.book.finetune`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from aerialsam.training.validation import Examples

TRAIN_COLOUR = "#7f7f7f"
RUN_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a")


def smoothed(values: pd.Series, window: int | None = None) -> pd.Series:
    """A centred running mean over about a tenth of the points (noisy per-step losses)."""
    window = window or max(1, len(values) // 10)
    return values.rolling(window, center=True, min_periods=1).mean()


def _plot_split(ax: plt.Axes, rows: pd.DataFrame, column: str, colour: str,
                label: str, train: bool) -> None:
    """One metric of one run: train steps (faint, smoothed on top) or val points."""
    if rows.empty or rows[column].isna().all():
        return
    if train:
        ax.plot(rows["step"], rows[column], color=colour, alpha=0.3, linewidth=0.8)
        ax.plot(rows["step"], smoothed(rows[column]), color=colour, label=f"{label} train")
    else:
        ax.plot(rows["step"], rows[column], marker="o", color=colour, markersize=4,
                label=f"{label} val", linestyle="--" if len(rows) > 1 else "none")


def plot_curves(metrics: dict[str, pd.DataFrame], title: str = "") -> Figure:
    """Loss, pixel IoU and SpaceNet F1 against the step, for one or more runs.

    Args:
        metrics: run label -> its ``metrics.csv`` (:func:`aerialsam.book.finetune.read_metrics`).
        title: the figure's title.
    """
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharex=True, constrained_layout=True)
    for (label, table), colour in zip(metrics.items(), RUN_COLOURS, strict=False):
        train = table[table["split"] == "train"]
        val = table[table["split"] == "val"]
        for ax, column in zip(axes[:2], ("loss", "pixel_iou"), strict=True):
            _plot_split(ax, train, column, colour if len(metrics) > 1 else TRAIN_COLOUR,
                        label, train=True)
            _plot_split(ax, val, column, colour, label, train=False)
        _plot_split(axes[2], val, "f1", colour, label, train=False)
    labels = ("loss (Dice + BCE)", "footprint pixel IoU", "SpaceNet F1 (val tiles)")
    for ax, ylabel in zip(axes, labels, strict=True):
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for ax in axes[1:]:
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def _overlay(ax: plt.Axes, image: np.ndarray, mask: np.ndarray | None, title: str) -> None:
    ax.imshow(image)
    if mask is not None:
        ax.contour((mask > 0.5).astype(float), levels=[0.5], colors="#00e5ff", linewidths=0.8)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def plot_before_after(examples: Examples, before: np.ndarray, after: np.ndarray,
                      labels: Sequence[str] = ("before training", "after training")) -> Figure:
    """Validation chips: image with truth, then the two models' probabilities.

    Probabilities are shown from 0 (dark) to 1 (bright), the true footprint outlined in cyan.
    """
    rows = len(examples.images)
    fig, axes = plt.subplots(rows, 3, figsize=(9.5, 3.2 * rows), squeeze=False,
                             constrained_layout=True)
    for row, (image, truth) in enumerate(zip(examples.images, examples.truth, strict=True)):
        _overlay(axes[row, 0], image, truth, f"{examples.chip_ids[row]}\ntruth (cyan)")
        for col, (probs, label) in enumerate(zip((before, after), labels, strict=True), 1):
            ax = axes[row, col]
            shown = ax.imshow(probs[row], vmin=0, vmax=1, cmap="magma")
            ax.contour((truth > 0.5).astype(float), levels=[0.5], colors="#00e5ff",
                       linewidths=0.6)
            ax.set_title(f"{label}\nfootprint probability", fontsize=9)
            ax.set_axis_off()
    fig.colorbar(shown, ax=axes[:, -1], shrink=0.6, label="footprint probability")
    return fig


def plot_cache_timing(table: pd.DataFrame, device: str = "CPU") -> Figure:
    """Seconds per ``decoder`` step without and with the embedding cache (measured)."""
    fig, ax = plt.subplots(figsize=(8, 2.4), constrained_layout=True)
    seconds = table["seconds per step"]
    ax.barh(range(len(seconds)), seconds, color=["#7f7f7f", "#d95f02", "#1b9e77"][:len(seconds)])
    ax.set_yticks(range(len(seconds)), list(seconds.index))
    ax.invert_yaxis()
    for i, (value, ratio) in enumerate(zip(seconds, table["speed-up"], strict=True)):
        ax.text(value, i, f" {value:.3f} s ({ratio:.1f}x)", va="center", fontsize=9)
    ax.set_xlim(0, seconds.max() * 1.35)
    ax.set_xlabel(f"seconds per training step (forward + backward, {device}, measured)")
    return fig
