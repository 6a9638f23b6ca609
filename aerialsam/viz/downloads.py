"""Figures about the dataset on S3, drawn from the data manifest (real SpaceNet 2 counts)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from aerialsam.data.manifest import Manifest


def plot_manifest_counts(manifest: Manifest) -> Figure:
    """Three bar charts per AOI: tiles, buildings, and buildings per tile."""
    cities = [record.city for record in manifest.aois]
    tiles = [record.tiles for record in manifest.aois]
    buildings = [record.buildings for record in manifest.aois]
    density = [b / t for b, t in zip(buildings, tiles, strict=True)]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, values, title in ((axes[0], tiles, "training tiles (650 x 650 px)"),
                              (axes[1], buildings, "labelled buildings"),
                              (axes[2], density, "buildings per tile")):
        bars = ax.bar(cities, values, color="#4c72b0")
        ax.bar_label(bars, labels=[f"{v:,.0f}" if v >= 100 else f"{v:.1f}" for v in values],
                     fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(f"{manifest.dataset}: counts from the data manifest", fontsize=11)
    fig.tight_layout()
    return fig
