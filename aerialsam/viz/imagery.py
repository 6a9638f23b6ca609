"""Matplotlib figures of tiles, labels and datasets for the book.

Imagery is always shown through the per-AOI stretch of :mod:`aerialsam.prep.stretch`, so
neighbouring tiles of a city share one colour scale, as the chips the models see do.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from aerialsam.data import spacenet
from aerialsam.io import open_raster
from aerialsam.prep.stretch import Stretch, apply_stretch, compute_stretch

OUTLINE = "#00e5ff"


def aoi_stretches(tiles: Sequence[spacenet.Tile], seed: int = 0) -> dict[str, Stretch]:
    """The 2-98 % stretch of each AOI among ``tiles``, computed from a seeded tile sample."""
    by_aoi: dict[str, list] = {}
    for tile in tiles:
        by_aoi.setdefault(tile.aoi, []).append(tile.image_path)
    return {aoi: compute_stretch(paths, seed=seed) for aoi, paths in by_aoi.items()}


def read_rgb(tile: spacenet.Tile, stretch: Stretch) -> np.ndarray:
    """A tile as a (rows, cols, 3) uint8 RGB array, stretched with its AOI's bounds."""
    with open_raster(tile.image_path) as src:
        pixels = src.read(list(stretch.bands))
    return np.moveaxis(apply_stretch(pixels, stretch), 0, -1)


def show_tile(ax: plt.Axes, tile: spacenet.Tile, stretch: Stretch, outlines: bool = True) -> None:
    """Draw a stretched tile on ``ax`` with its building outlines (pixel coordinates)."""
    ax.imshow(read_rgb(tile, stretch))
    if outlines and tile.geojson_path is not None:
        labels = spacenet.read_tile_labels(tile, pixel=True)
        if len(labels):
            labels.boundary.plot(ax=ax, color=OUTLINE, linewidth=0.6)
        ax.set_title(f"{tile.image_id}\n{len(labels)} buildings", fontsize=9)
    else:
        ax.set_title(tile.image_id, fontsize=9)
    ax.set_xlim(0, 650)
    ax.set_ylim(650, 0)
    ax.set_axis_off()


def plot_band_histograms(ax: plt.Axes, raw: np.ndarray, stretch: Stretch) -> None:
    """Per-band histograms of 11-bit (bands, rows, cols) pixels with the AOI's stretch bounds.

    The low bound is dotted, the high one dashed.
    """
    for band, colour in enumerate(("red", "green", "blue")):
        ax.hist(raw[band].ravel(), bins=128, range=(0, 2048), histtype="step", color=colour,
                label=f"band {stretch.bands[band]}")
        ax.axvline(stretch.low[band], color=colour, linestyle=":", linewidth=1)
        ax.axvline(stretch.high[band], color=colour, linestyle="--", linewidth=1)
    ax.set_xlabel("digital number (11-bit)")


def plot_city_tiles(tiles: Sequence[spacenet.Tile], stretches: dict[str, Stretch],
                    per_city: int = 3) -> Figure:
    """A grid with one row per AOI and ``per_city`` tiles each, footprints outlined."""
    aois = list(dict.fromkeys(t.aoi for t in tiles))
    fig, axes = plt.subplots(len(aois), per_city, figsize=(3.2 * per_city, 3.4 * len(aois)),
                             squeeze=False)
    for row, aoi in enumerate(aois):
        chosen = [t for t in tiles if t.aoi == aoi][:per_city]
        for col in range(per_city):
            ax = axes[row, col]
            if col < len(chosen):
                show_tile(ax, chosen[col], stretches[aoi])
            else:
                ax.set_axis_off()
        axes[row, 0].text(-0.08, 0.5, spacenet.CITY_NAMES.get(aoi, aoi), rotation=90,
                          transform=axes[row, 0].transAxes, va="center", ha="right", fontsize=11)
    fig.tight_layout()
    return fig


def plot_stretch_comparison(tile: spacenet.Tile, stretch: Stretch) -> Figure:
    """The same 11-bit tile shown three ways: scaled by the uint16 range, by 11 bits, stretched."""
    with open_raster(tile.image_path) as src:
        raw = np.moveaxis(src.read(list(stretch.bands)).astype(float), 0, -1)
    views = {"raw / 65535 (uint16 range)": raw / 65535.0,
             "raw / 2047 (11-bit range)": np.clip(raw / 2047.0, 0, 1),
             "per-AOI 2-98 % stretch": read_rgb(tile, stretch)}
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8),
                             gridspec_kw={"width_ratios": [1, 1, 1, 1.3]})
    for ax, (title, image) in zip(axes, views.items(), strict=False):
        ax.imshow(image)
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    plot_band_histograms(axes[3], np.moveaxis(raw, -1, 0), stretch)
    axes[3].set_title("histograms; dotted/dashed: 2 % / 98 % bounds", fontsize=10)
    axes[3].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_building_sizes(buildings: pd.DataFrame) -> Figure:
    """Building footprint area per city (log scale), from :func:`spacenet.building_table`."""
    aois = list(dict.fromkeys(buildings["aoi"]))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    data = [buildings.loc[buildings.aoi == aoi, "area_m2"].clip(lower=0.1) for aoi in aois]
    ax.boxplot(data, orientation="horizontal", whis=(5, 95), showfliers=False)
    ax.set_yticks(range(1, len(aois) + 1), [spacenet.CITY_NAMES.get(a, a) for a in aois])
    ax.set_xscale("log")
    ax.set_xlabel("footprint area (m², log scale; whiskers 5-95 %)")
    ax.axvline(20 * 0.3 * 0.3, color="grey", linestyle=":", linewidth=1)
    ax.text(20 * 0.3 * 0.3, len(aois) + 0.4, " 20 px² metric floor", fontsize=8, color="grey")
    fig.tight_layout()
    return fig


SPLIT_COLOURS = {"train": "#4c72b0", "val": "#dd8452", "test": "#55a868"}


def plot_split_map(splits: pd.DataFrame) -> Figure:
    """Each AOI's tiles at their place on the ground, coloured by split (``splits.csv`` rows)."""
    aois = list(dict.fromkeys(splits["aoi"]))
    fig, axes = plt.subplots(1, len(aois), figsize=(3.6 * len(aois), 3.4), squeeze=False)
    for ax, aoi in zip(axes[0], aois, strict=True):
        for row in splits[splits.aoi == aoi].itertuples():
            with open_raster(row.source) as src:
                left, bottom, right, top = src.bounds
            ax.add_patch(plt.Rectangle((left, bottom), right - left, top - bottom,
                                       facecolor=SPLIT_COLOURS[row.split], edgecolor="white"))
            ax.text((left + right) / 2, (bottom + top) / 2, row.image_id.rsplit("_", 1)[-1],
                    ha="center", va="center", fontsize=7, color="white")
        ax.autoscale_view()
        ax.set_aspect("equal")
        ax.set_title(spacenet.CITY_NAMES.get(aoi, aoi), fontsize=10)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(useOffset=False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in SPLIT_COLOURS.values()]
    fig.legend(handles, list(SPLIT_COLOURS), loc="lower center", ncol=3, fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


