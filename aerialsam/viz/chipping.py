"""Figures of the chipping stage: the chip grid, the stretch, and chips meeting on a seam."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shapely
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from rasterio.windows import Window

from aerialsam.data import spacenet
from aerialsam.io import open_raster
from aerialsam.prep import chips
from aerialsam.prep.stretch import Stretch, apply_stretch
from aerialsam.viz import imagery

GRID_COLOURS = ("#ff4d4d", "#ffd24d", "#4dff88", "#4dc3ff", "#c34dff")


def plot_chip_grid(tile: spacenet.Tile, stretch: Stretch, size: int, overlap: int) -> Figure:
    """A tile with its chip windows drawn over it, and how many chips cover each pixel."""
    with open_raster(tile.image_path) as src:
        width, height = src.width, src.height
    windows = chips.chip_windows(width, height, size, overlap)
    coverage = np.zeros((height, width), dtype=int)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.2))
    imagery.show_tile(left, tile, stretch)
    for i, window in enumerate(windows):
        colour = GRID_COLOURS[i % len(GRID_COLOURS)]
        left.add_patch(Rectangle((window.col_off, window.row_off), size, size, fill=False,
                                 edgecolor=colour, linewidth=1.6))
        left.text(window.col_off + 6, window.row_off + 18, f"{window.row_off},{window.col_off}",
                  color=colour, fontsize=7)
        coverage[window.row_off:window.row_off + size, window.col_off:window.col_off + size] += 1
    left.set_xlim(-5, width + 5)
    left.set_ylim(height + 5, -5)
    shown = right.imshow(coverage, cmap="viridis", vmin=0.5, vmax=coverage.max() + 0.5)
    fig.colorbar(shown, ax=right, ticks=range(1, coverage.max() + 1), shrink=0.8,
                 label="chips covering the pixel")
    right.set_title(f"{len(windows)} chips of {size} px, overlap {overlap} px", fontsize=9)
    right.set_axis_off()
    fig.tight_layout()
    return fig


def plot_stretch_histograms(tile: spacenet.Tile, stretch: Stretch) -> Figure:
    """Before / after the per-AOI stretch: the image and its per-band histogram."""
    with open_raster(tile.image_path) as src:
        raw = src.read(list(stretch.bands))
    after = apply_stretch(raw, stretch)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), gridspec_kw={"width_ratios": [1, 1.4]})
    axes[0, 0].imshow(np.clip(np.moveaxis(raw, 0, -1) / 2047.0, 0, 1))
    axes[0, 0].set_title("before: raw 11-bit values / 2047", fontsize=10)
    axes[1, 0].imshow(np.moveaxis(after, 0, -1))
    axes[1, 0].set_title("after: per-AOI 2-98 % stretch to uint8", fontsize=10)
    imagery.plot_band_histograms(axes[0, 1], raw, stretch)
    for band, colour in enumerate(("red", "green", "blue")):
        axes[1, 1].hist(after[band].ravel(), bins=64, range=(0, 256), histtype="step",
                        color=colour)
    axes[0, 1].set_title("raw histogram; dotted / dashed: the AOI's low / high bound",
                         fontsize=10)
    axes[1, 1].set_title("stretched histogram (clipped tails pile up at 1 and 255)", fontsize=10)
    axes[1, 1].set_xlabel("uint8 value")
    for ax in axes[:, 0]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def seam_building(tile: spacenet.Tile, size: int, overlap: int) -> tuple[int, int, int] | None:
    """A chip row and two horizontal neighbours whose shared strip cuts the largest building.

    Returns:
        ``(row_off, left_col_off, right_col_off)``, or ``None`` when no building crosses the
        left edge of a chip while lying within one chip row.
    """
    with open_raster(tile.image_path) as src:
        width, height = src.width, src.height
    labels = spacenet.read_tile_labels(tile, pixel=True) if tile.geojson_path else None
    if labels is None or labels.empty:
        return None
    cols = chips.chip_offsets(width, size, overlap)
    best, found = 0.0, None
    for row_off in chips.chip_offsets(height, size, overlap):
        for left, right in zip(cols, cols[1:], strict=False):
            seam = shapely.LineString([(right, row_off), (right, row_off + size)])
            band = shapely.box(0, row_off, width, row_off + size)
            for polygon in labels.geometry:
                if polygon.intersects(seam) and band.contains(polygon) and polygon.area > best:
                    best, found = polygon.area, (row_off, left, right)
    return found


def _per_chip_stretch(data: np.ndarray) -> np.ndarray:
    """The mistake this stage avoids: 2-98 % bounds of the chip's own pixels."""
    low, high = np.percentile(data.reshape(data.shape[0], -1), [2, 98], axis=1)
    return apply_stretch(data, Stretch(tuple(low), tuple(np.maximum(high, low + 1))))


def plot_seam(chips_dir: str | Path, index: pd.DataFrame, tile: spacenet.Tile,
              seam: tuple[int, int, int]) -> Figure:
    """Two neighbouring chips around a building on their seam: AOI stretch against per-chip.

    The top row shows the chip GeoTIFFs as written; the bottom row the same windows stretched
    chip by chip. Each panel's title gives the largest difference on the shared pixels.
    """
    row_off, left, right = seam
    rows = index[(index["image_id"] == tile.image_id) & (index["row_off"] == row_off)]
    pair = [rows[rows["col_off"] == c].iloc[0] for c in (left, right)]
    size = int(pair[0]["size"])
    written = [read_chip_file(Path(chips_dir) / r["path"]) for r in pair]
    with open_raster(tile.image_path) as src:
        raw = [src.read([1, 2, 3], window=Window(c, row_off, size, size)) for c in (left, right)]
    per_chip = [_per_chip_stretch(r) for r in raw]
    labels = spacenet.read_tile_labels(tile, pixel=True)
    fig, axes = plt.subplots(2, 2, figsize=(9, 9))
    for row, (name, images) in enumerate((("per-AOI stretch (as written)", written),
                                          ("per-chip stretch", per_chip))):
        shift = right - left
        gap = int(np.abs(images[0][:, :, shift:].astype(int)
                         - images[1][:, :, :size - shift]).max())
        for col, (image, col_off) in enumerate(zip(images, (left, right), strict=True)):
            ax = axes[row, col]
            ax.imshow(np.moveaxis(image, 0, -1))
            local = labels.translate(-col_off, -row_off)
            local.boundary.plot(ax=ax, color=imagery.OUTLINE, linewidth=0.7)
            start = shift if col == 0 else 0
            ax.add_patch(Rectangle((start, 0), size - shift, size, fill=False,
                                   edgecolor="white", linestyle="--", linewidth=1.2))
            ax.set_xlim(0, size)
            ax.set_ylim(size, 0)
            ax.set_title(f"{name}\nchip r{row_off} c{col_off}; max diff on shared pixels {gap}",
                         fontsize=9)
            ax.set_axis_off()
    fig.tight_layout()
    return fig


def read_chip_file(path: Path) -> np.ndarray:
    """A chip GeoTIFF as a (3, rows, cols) uint8 array."""
    with open_raster(path) as src:
        return src.read()


def busiest_tile(tiles: list[spacenet.Tile], aoi: str | None = None) -> spacenet.Tile:
    """The labelled tile with the most buildings (of ``aoi``, default the first tile's AOI)."""
    aoi = aoi or tiles[0].aoi
    labelled = [t for t in tiles if t.aoi == aoi and t.geojson_path is not None]
    return max(labelled, key=lambda t: len(spacenet.read_tile_labels(t)))


def find_seam(tiles: list[spacenet.Tile], size: int,
              overlap: int) -> tuple[spacenet.Tile, tuple[int, int, int]]:
    """The first tile with a building on a chip seam, and that seam (see :func:`seam_building`).

    Raises:
        ValueError: no tile has a building crossing a chip edge.
    """
    for tile in tiles:
        seam = seam_building(tile, size, overlap)
        if seam is not None:
            return tile, seam
    raise ValueError("no building crosses a chip seam in these tiles")
