"""Figures and tables of the mask kinds (footprint, boundary, contact, distance) for the book."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from aerialsam.data import spacenet
from aerialsam.prep import masks
from aerialsam.prep.chip_masks import MaskParams
from aerialsam.prep.stretch import Stretch
from aerialsam.viz.imagery import read_rgb

KIND_TITLES = {"footprint": "footprint", "boundary": "boundary (inner, 3x3)",
               "contact": "contact (spacing 10 px)", "distance": "signed distance (px)"}


def tile_polygons(tile: spacenet.Tile) -> tuple[np.ndarray, tuple[int, int]]:
    """A tile's repaired building polygons in pixel coordinates, and its grid shape."""
    grid = masks.read_grid(tile.image_path)
    if tile.geojson_path is None:
        return np.empty(0, dtype=object), grid.shape
    return masks.read_labels(tile.geojson_path, grid, tile.image_path), grid.shape


def tile_masks(tile: spacenet.Tile, params: MaskParams | None = None) -> dict[str, np.ndarray]:
    """Every mask kind of one tile on its own grid (uint8 {0, 255}; float32 for distance)."""
    params = params or MaskParams()
    polygons, shape = tile_polygons(tile)
    return {kind: masks.make_mask(polygons, shape, kind, params.boundary_width,
                                  params.boundary_side, params.contact_spacing)
            for kind in masks.MASK_KINDS}


def densest_tiles(tiles: Sequence[spacenet.Tile]) -> list[spacenet.Tile]:
    """For each AOI, in order, the labelled tile with the most buildings."""
    best: dict[str, tuple[int, spacenet.Tile]] = {}
    for tile in tiles:
        count = len(tile_polygons(tile)[0])
        if tile.aoi not in best or count > best[tile.aoi][0]:
            best[tile.aoi] = (count, tile)
    return [tile for _, tile in best.values()]


def plot_mask_kinds(tiles: Sequence[spacenet.Tile], stretches: dict[str, Stretch],
                    params: MaskParams | None = None) -> Figure:
    """One row per tile: the stretched image, then its four mask kinds side by side."""
    fig, axes = plt.subplots(len(tiles), 5, figsize=(16, 3.3 * len(tiles)), squeeze=False)
    for row, tile in enumerate(tiles):
        axes[row, 0].imshow(read_rgb(tile, stretches[tile.aoi]))
        axes[row, 0].set_title(spacenet.CITY_NAMES.get(tile.aoi, tile.aoi) + f"\n{tile.image_id}",
                               fontsize=9)
        for col, (kind, mask) in enumerate(tile_masks(tile, params).items(), start=1):
            if kind == "distance":
                limit = max(float(np.abs(mask).max()), 1.0)
                shown = axes[row, col].imshow(mask, cmap="RdBu_r", vmin=-limit, vmax=limit)
                fig.colorbar(shown, ax=axes[row, col], fraction=0.046, pad=0.02)
            else:
                axes[row, col].imshow(mask, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            axes[row, col].set_title(KIND_TITLES[kind], fontsize=9)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_target_zoom(tile: spacenet.Tile, stretch: Stretch, size: int = 160,
                     params: MaskParams | None = None) -> Figure:
    """A ``size`` px crop around the tile's densest contact area: image and 3-class target."""
    found = tile_masks(tile, params)
    row, col = _busiest_window(found["contact"] > 0, size)
    crop = (slice(row, row + size), slice(col, col + size))
    target = np.zeros((size, size, 3))
    target[found["footprint"][crop] > 0] = (0.55, 0.55, 0.55)
    target[found["boundary"][crop] > 0] = (0.2, 0.6, 1.0)
    target[found["contact"][crop] > 0] = (1.0, 0.25, 0.1)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
    axes[0].imshow(read_rgb(tile, stretch)[crop], interpolation="nearest")
    axes[0].set_title(f"{tile.image_id}, rows {row}-{row + size}, cols {col}-{col + size}",
                      fontsize=9)
    axes[1].imshow(target, interpolation="nearest")
    axes[1].set_title("grey footprint, blue boundary, red contact", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def _busiest_window(mask: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` window (on a size/4 lattice) holding most of ``mask``."""
    step = max(1, size // 4)
    rows = range(0, max(1, mask.shape[0] - size + 1), step)
    cols = range(0, max(1, mask.shape[1] - size + 1), step)
    scores = {(r, c): int(mask[r:r + size, c:c + size].sum()) for r in rows for c in cols}
    return max(scores, key=scores.get)


def mask_table(tiles: Sequence[spacenet.Tile], params: MaskParams | None = None) -> pd.DataFrame:
    """Per tile: buildings, the share of pixels in each binary mask, the deepest interior pixel."""
    records = []
    for tile in tiles:
        found = tile_masks(tile, params)
        records.append({
            "city": spacenet.CITY_NAMES.get(tile.aoi, tile.aoi), "tile": tile.image_id,
            "buildings": len(tile_polygons(tile)[0]),
            **{f"{kind} %": round(100 * float((found[kind] > 0).mean()), 2)
               for kind in ("footprint", "boundary", "contact")},
            "max inside distance (px)": round(float(found["distance"].max()), 1)})
    return pd.DataFrame.from_records(records)
