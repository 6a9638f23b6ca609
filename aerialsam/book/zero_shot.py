"""Zero-shot SAM 2 as chapter 06 runs it: settings, tiles, the variant table.

The automatic generator's settings per profile, the variant table (parameters, measured
encoder throughput, the SAM 2.1 release figures), the tiles and chips the chapter shows and
the parameters it records. In the synthetic ``smoke`` and ``demo`` profiles the weights are
random: everything measured here describes the pipeline, never SAM 2's quality.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sam2.modeling.sam2_base import SAM2Base

from aerialsam.config import Profile
from aerialsam.data import spacenet
from aerialsam.device import autocast
from aerialsam.inference.auto_masks import AutoSettings
from aerialsam.inference.tiling import raster_stretch, read_strip, strip_chips
from aerialsam.io import open_raster
from aerialsam.models.sam2 import random_sam2
from aerialsam.models.sam2_calls import encode, prepare_images
from aerialsam.models.variants import RANDOM, VARIANTS
from aerialsam.prep.chips import Source, find_sources
from aerialsam.prep.stretch import Stretch, load_stretches, save_stretches
from aerialsam.viz.imagery import aoi_stretches

RELEASE_FPS = {"tiny": 91.2, "small": 84.8, "base_plus": 64.1, "large": 39.5}
"""SAM 2.1 release table: frames per second on one A100 at 1024 px (Meta's figures)."""


def auto_settings(cfg: Profile) -> AutoSettings:
    """The automatic generator's settings for a profile.

    With random weights (``smoke``, ``demo``) predicted IoU and stability mean nothing, so
    both thresholds are 0 (every mask passes) and the point grid is small, for speed. With a
    real checkpoint SAM 2's defaults apply (32 points per side, thresholds 0.8 and 0.95).
    """
    points = cfg.book.auto_points_per_side
    if cfg.sam_checkpoint == RANDOM:
        return AutoSettings(points_per_side=points, pred_iou_thresh=0.0,
                            stability_score_thresh=0.0)
    return AutoSettings(points_per_side=points)


def count_parameters(variant: str, image_size: int) -> int:
    """Number of parameters of a SAM 2.1 variant (built with random weights, then dropped)."""
    return sum(p.numel() for p in random_sam2(variant, image_size).parameters())


def encoder_images_per_second(model: SAM2Base, chip_size: int, batch_size: int,
                              repeats: int = 3) -> float:
    """Images per second through the image encoder: best of ``repeats`` batched passes.

    One untimed pass first (allocations, lazy initialisation); the best of the timed ones
    is reported because the machine may be shared.
    """
    device = next(model.parameters()).device
    chips = np.random.default_rng(0).integers(0, 256, (batch_size, chip_size, chip_size, 3),
                                              dtype=np.uint8)
    best = float("inf")
    with torch.inference_mode(), autocast(device):
        batch = prepare_images(chips, model.image_size, device)
        encode(model, batch)
        for _ in range(repeats):
            start = time.perf_counter()
            encode(model, batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return batch_size / best


def variant_table(cfg: Profile, measured: float, device: str) -> pd.DataFrame:
    """Parameters of every variant and this machine's throughput for ``cfg``'s variant.

    The release figures (A100, 1024 px) come as a labelled reference column.

    Missing values were not measured (see ``BookSettings.count_all_variants``).
    """
    here = f"images/s here ({device}, {cfg.sam_image_size} px, encoder)"
    counted = tuple(VARIANTS) if cfg.book.count_all_variants else (cfg.sam_variant,)
    rows = [{"variant": name,
             "parameters (M)": (round(count_parameters(name, cfg.sam_image_size) / 1e6, 1)
                                if name in counted else np.nan),
             here: round(measured, 1) if name == cfg.sam_variant else np.nan,
             "release FPS (A100, 1024 px)": RELEASE_FPS[name]} for name in VARIANTS]
    return pd.DataFrame(rows).set_index("variant")


def save_aoi_stretches(tiles: Sequence[spacenet.Tile], path: str | Path,
                       seed: int = 0) -> dict[str, Stretch]:
    """Compute each AOI's stretch once (2-98 %, seeded sample) and save it as a stretch.json.

    Every run of the chapter and every figure then reads the tiles alike.
    """
    stretches = aoi_stretches(tiles, seed=seed)
    if load_stretches(path) != stretches:
        save_stretches(path, stretches)
    return stretches


def run_params(cfg: Profile, mode: str, auto: AutoSettings | None = None) -> dict:
    """What a zero-shot run is, as ``predict_images`` records it (as ``aerialsam predict``)."""
    return {"model": "sam2", "variant": cfg.sam_variant,
            "checkpoint": cfg.sam_checkpoint or "official", "image_size": cfg.sam_image_size,
            "mode": mode, "prompts": None, "auto": auto.recorded() if auto is not None else None}


def pick_tiles(tiles: Sequence[spacenet.Tile], per_aoi: int | None) -> list[spacenet.Tile]:
    """The first ``per_aoi`` tiles of each AOI (all of them for ``None``), in input order."""
    seen: dict[str, int] = {}
    picked = []
    for tile in tiles:
        seen[tile.aoi] = seen.get(tile.aoi, 0) + 1
        if per_aoi is None or seen[tile.aoi] <= per_aoi:
            picked.append(tile)
    return picked


def tile_sources(tiles: Sequence[spacenet.Tile]) -> list[Source]:
    """The prediction sources (path, AOI, image id) of some SpaceNet tiles."""
    return [find_sources(tile.image_path)[0] for tile in tiles]


def read_tile_chip(tile: spacenet.Tile, stretch: Stretch, size: int, row: int = 0,
              col: int = 0) -> np.ndarray:
    """One (size, size, 3) uint8 chip of a tile, read as tiled inference reads it."""
    with open_raster(tile.image_path) as src:
        strip = read_strip(src, raster_stretch(src, tile.image_path, stretch), row, size)
    return strip_chips(strip, [col], size)[0]


