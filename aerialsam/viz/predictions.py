"""Figures of SAM 2's predictions (book chapter 06).

Automatic masks and the building candidates among them on chips, the chip grid of tiled
inference with its blend weights, and a stitched probability map. In the synthetic ``smoke``
and ``demo`` profiles the weights are random: the pictures describe the pipeline, never SAM
2's quality.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from aerialsam.inference.auto_masks import AutoResult
from aerialsam.inference.tiling import blend_weights
from aerialsam.io import open_raster
from aerialsam.prep.chips import chip_offsets

MASK_STYLE = {"facecolor": "#ff7f00", "edgecolor": "#ff7f00", "alpha": 0.25, "linewidth": 1.0}
CANDIDATE_STYLE = {"facecolor": "none", "edgecolor": "#00e5ff", "linewidth": 1.5}


def plot_auto_masks(chips: Sequence[np.ndarray], results: Sequence[AutoResult],
                    titles: Sequence[str]) -> Figure:
    """One panel per chip: the generator's masks shaded, building candidates outlined."""
    fig, axes = plt.subplots(1, len(chips), figsize=(3.2 * len(chips), 3.6), squeeze=False)
    for ax, chip, result, title in zip(axes[0], chips, results, titles, strict=True):
        ax.imshow(chip)
        if len(result.masks):
            result.masks.plot(ax=ax, **MASK_STYLE)
        if len(result.candidates):
            result.candidates.boundary.plot(ax=ax, color=CANDIDATE_STYLE["edgecolor"],
                                            linewidth=CANDIDATE_STYLE["linewidth"])
        ax.set_title(f"{title}\n{_plural(len(result.masks), 'mask')}, "
                     f"{_plural(len(result.candidates), 'candidate')}", fontsize=9)
        ax.set_xlim(0, chip.shape[1])
        ax.set_ylim(chip.shape[0], 0)
        ax.set_axis_off()
    fig.legend(handles=[Patch(**MASK_STYLE, label="automatic mask"),
                        Patch(**CANDIDATE_STYLE, label="building candidate")],
               loc="lower center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def plot_chip_grid(rgb: np.ndarray, size: int, overlap: int) -> Figure:
    """The chip grid over one tile (overlaps shaded) and a chip's blend weights."""
    fig, (ax_grid, ax_weights, ax_profile) = plt.subplots(1, 3, figsize=(12, 4))
    height, width = rgb.shape[:2]
    ax_grid.imshow(rgb)
    colours = plt.cm.tab10.colors
    windows = [(r, c) for r in chip_offsets(height, size, overlap)
               for c in chip_offsets(width, size, overlap)]
    for i, (row, col) in enumerate(windows):
        ax_grid.add_patch(Rectangle((col, row), size, size, fill=False, linewidth=2,
                                    edgecolor=colours[i % len(colours)]))
    ax_grid.set_title(f"{len(windows)} chips of {size} px, {overlap} px overlap", fontsize=9)
    ax_grid.set_axis_off()
    weights = blend_weights(size, overlap)
    shown = ax_weights.imshow(weights, cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(shown, ax=ax_weights, fraction=0.046)
    ax_weights.set_title("blend weights of one chip", fontsize=9)
    ax_weights.set_axis_off()
    cols = chip_offsets(width, size, overlap)
    ramps = np.zeros((len(cols), width))
    for i, col in enumerate(cols):
        ramp = weights[size // 2, :min(size, width - col)]
        ramps[i, col:col + len(ramp)] = ramp
    shares = ramps / ramps.sum(axis=0)
    for i, col in enumerate(cols):
        ax_profile.plot(shares[i], color=colours[i % len(colours)],
                        label=f"chip at column {col}")
    ax_profile.set_xlabel("column (px)")
    ax_profile.set_ylabel("share of the blended result")
    ax_profile.set_title("each chip's share along one row", fontsize=9)
    ax_profile.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_probability(prob_path: str | Path, rgb: np.ndarray, size: int, overlap: int,
                     title: str) -> Figure:
    """A stitched probability map next to its tile, every chip border drawn on both.

    The colour scale spans the map's 1-99 % range, so that a seam would show even in a
    nearly uniform map (untrained weights).
    """
    with open_raster(prob_path, require_crs=False) as src:
        prob = src.read(1)
    low, high = np.percentile(prob, [1, 99])
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
    axes[0].imshow(rgb)
    shown = axes[1].imshow(prob, cmap="magma", vmin=low, vmax=max(high, low + 1e-6))
    fig.colorbar(shown, ax=axes[1], fraction=0.046, label="probability (1-99 % range)")
    for ax in axes:
        for row in chip_offsets(prob.shape[0], size, overlap):
            for col in chip_offsets(prob.shape[1], size, overlap):
                ax.add_patch(Rectangle((col, row), size, size, fill=False, linewidth=0.8,
                                       linestyle="--", edgecolor="white"))
        ax.set_axis_off()
    axes[0].set_title("tile and chip borders", fontsize=9)
    axes[1].set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
