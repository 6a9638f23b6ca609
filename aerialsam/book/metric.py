"""Simulated proposals that show the SpaceNet 2 metric before any model exists (chapter 05).

:func:`jittered_proposals` makes plausible proposals from truth polygons (shifted, resized,
some missed, some false alarms). Its numbers describe that simulation, not a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely import affinity
from shapely.geometry import box

from aerialsam.data import spacenet


def jittered_proposals(truth: gpd.GeoDataFrame, image_id: str, seed: int = 0,
                       miss: float = 0.15,
                       wild: float = 0.1, false_alarms: int = 4,
                       size: tuple[int, int] = (650, 650)) -> gpd.GeoDataFrame:
    """Simulated proposals for one image: its truth polygons jittered, some missed, some added.

    Each truth polygon is shifted by about 2 px and resized by up to 10 %, a fraction ``miss``
    left out, a fraction ``wild`` shifted by 10-20 px (below IoU 0.5 for small buildings),
    plus ``false_alarms`` random boxes.

    Args:
        truth: one image's truth polygons (pixels).
        image_id: the image's id, written to ``ImageId``.
        seed: seeds every random choice, so a proposal set can be made again.
        miss: the fraction of truth polygons left out.
        wild: the fraction of kept polygons shifted far (10-20 px).
        false_alarms: random boxes added where no building need be.
        size: the image's (height, width) in pixels, where the false alarms fall.

    Returns:
        Columns ``ImageId``, ``BuildingId``, ``Confidence``, ``geometry``.
    """
    rng = np.random.default_rng(seed)
    kept = truth[rng.random(len(truth)) >= miss]
    geoms = []
    for geom in kept.geometry:
        far = rng.random() < wild
        dx, dy = rng.normal(0, 15 if far else 2, 2)
        scaled = affinity.scale(geom, *rng.uniform(0.9, 1.1, 2))
        geoms.append(affinity.translate(scaled, dx, dy))
    for _ in range(false_alarms):
        x, y = rng.uniform(0, size[1] - 40), rng.uniform(0, size[0] - 40)
        geoms.append(box(x, y, x + rng.uniform(15, 40), y + rng.uniform(15, 40)))
    return gpd.GeoDataFrame({"ImageId": image_id, "BuildingId": np.arange(len(geoms)),
                             "Confidence": rng.uniform(0.3, 1.0, len(geoms))},
                            geometry=geoms)


def simulate_aoi_proposals(tiles: Sequence[spacenet.Tile], seed: int = 0) -> gpd.GeoDataFrame:
    """:func:`jittered_proposals` for every tile, in one proposal frame.

    Its ``attrs["image_ids"]`` lists every tile (ready for
    :func:`aerialsam.inference.vectorize.write_proposals_csv`).
    """
    frames = [jittered_proposals(spacenet.read_tile_labels(tile, pixel=True), tile.image_id,
                                 seed=seed + tile.number) for tile in tiles]
    out = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry")
    out.attrs["image_ids"] = [tile.image_id for tile in tiles]
    return out
