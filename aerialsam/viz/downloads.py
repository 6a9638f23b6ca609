"""Figures about the datasets on S3, drawn from the data manifest (real SpaceNet counts)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from aerialsam.data.manifest import DEFAULT_DATASET, Manifest


def plot_manifest_counts(manifest: Manifest, dataset: str = DEFAULT_DATASET) -> Figure:
    """Bar charts per AOI of one dataset: tiles, and buildings and their density if counted.

    The manifest counts buildings for SpaceNet 2 only, so roads get the tiles chart alone.

    Args:
        manifest: the data manifest.
        dataset: ``buildings`` (SpaceNet 2, three charts) or ``roads`` (SpaceNet 3, tiles).
    """
    records = manifest.dataset(dataset).aois
    side = manifest.dataset(dataset).layout.tile_side
    tiles = [record.tiles for record in records]
    panels = [(tiles, f"training tiles ({side} x {side} px)")]
    if all(record.buildings is not None for record in records):
        buildings = [record.buildings for record in records]
        panels += [(buildings, "labelled buildings"),
                   ([b / t for b, t in zip(buildings, tiles, strict=True)], "buildings per tile")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (values, title) in zip(axes[0], panels, strict=True):
        bars = ax.bar([record.city for record in records], values, color="#4c72b0")
        ax.bar_label(bars, labels=[f"{v:,.0f}" if v >= 100 else f"{v:.1f}" for v in values],
                     fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(f"{manifest.dataset(dataset).title}: counts from the data manifest",
                 fontsize=11)
    fig.tight_layout()
    return fig
