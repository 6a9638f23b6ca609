"""Validation during fine-tuning: chip loss and pixel IoU, and the SpaceNet F1 of whole tiles.

The F1 goes through exactly what ``aerialsam predict`` does (tiled inference on the source
tiles with the chips' stretch, vectorizing, the SpaceNet metric), so the number a run
reports is the number its predictions will score. The vectorizing threshold is tuned on the
validation tiles and saved with the model.

Models trained with box or point prompts need prompts at inference: they are validated
with prompts from the ground truth (the oracle), which makes their F1 an upper bound.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.windows import Window
from torch import nn

from aerialsam.data import spacenet
from aerialsam.errors import InputError
from aerialsam.inference.tiling import ChipModel, predict_raster
from aerialsam.inference.vectorize import proposals_frame, vectorize
from aerialsam.metrics.building_f1 import score
from aerialsam.prep.chips import Source
from aerialsam.prep.stretch import Stretch
from aerialsam.training.kinds import kind_of
from aerialsam.training.train_config import TrainConfig

log = logging.getLogger(__name__)

T = TypeVar("T")

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.8)
"""Vectorizing thresholds tried on the validation tiles (the seed report found 0.65)."""


@dataclass
class TileScore:
    """The SpaceNet F1 of the validation tiles at the best threshold."""

    threshold: float
    f1: float
    per_threshold: dict[float, float]
    per_aoi: pd.DataFrame
    oracle: bool


def chip_model_for(model: nn.Module, config: TrainConfig, source: Source) -> ChipModel:
    """The chip model that predicts one tile with a trained model.

    Prompt-trained SAM 2 gets oracle prompts.
    """
    return kind_of(config).chip_model(model, config, source)


def val_sources(chips: pd.DataFrame) -> list[Source]:
    """The source tiles of a table of chips or tiles, once each.

    The table is ``ChipDataset.chips`` or the splits table.
    """
    tiles = chips.drop_duplicates("image_id")
    return [Source(Path(p), a, i) for p, a, i in zip(tiles["source"], tiles["aoi"],
                                                     tiles["image_id"], strict=True)]


def truth_of(sources: Sequence[Source]) -> gpd.GeoDataFrame:
    """The buildings of the tiles in pixel coordinates, as the metric wants them."""
    parts = []
    for source in sources:
        labels = spacenet.read_tile_labels(spacenet.tile_at(source.path), pixel=True)
        parts.append(gpd.GeoDataFrame({"ImageId": source.image_id,
                                       "BuildingId": np.arange(len(labels))},
                                      geometry=np.asarray(labels.geometry.array)))
    truth = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry")
    truth.attrs["image_ids"] = [s.image_id for s in sources]
    return truth


def predict_tiles(model: nn.Module, config: TrainConfig, sources: Sequence[Source],
                  stretches: dict[str, Stretch], size: int, overlap: int,
                  read: Callable[[rasterio.DatasetReader], T]) -> dict[str, T]:
    """Predict whole tiles as ``aerialsam predict`` does; ``read`` what each prediction holds.

    The probability rasters live in a temporary folder: ``read`` takes what validation
    needs of each (by image id) before the folder goes.
    """
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            path = Path(tmp) / f"{source.image_id}.tif"
            predict_raster(source.path, chip_model_for(model, config, source), path, size,
                           overlap, config.batch_size, stretch=stretches[source.aoi])
            with rasterio.open(path) as src:
                out[source.image_id] = read(src)
    return out


def tile_f1(model: nn.Module, config: TrainConfig, sources: Sequence[Source],
            stretches: dict[str, Stretch], size: int, overlap: int,
            thresholds: Sequence[float] = THRESHOLDS) -> TileScore:
    """Predict the tiles, vectorize at each threshold, keep the best SpaceNet F1."""
    probs = predict_tiles(model, config, sources, stretches, size, overlap,
                          lambda src: src.read())
    truth = truth_of(sources)
    results = {t: score(truth, _proposals(probs, t)) for t in thresholds}
    best = max(thresholds, key=lambda t: (results[t].overall_f1, -abs(t - 0.5)))
    return TileScore(best, results[best].overall_f1,
                     {t: r.overall_f1 for t, r in results.items()}, results[best].per_aoi,
                     oracle=kind_of(config).needs_prompts(config))


def _proposals(probs: dict[str, np.ndarray], threshold: float) -> gpd.GeoDataFrame:
    return proposals_frame({image: vectorize(prob[0], threshold,
                                             contact=prob[1] if len(prob) > 1 else None,
                                             watershed=len(prob) == 1)
                            for image, prob in probs.items()})


@dataclass
class Examples:
    """A few validation chips: uint8 images (N, H, W, 3), footprints (N, H, W), ids."""

    images: np.ndarray
    truth: np.ndarray
    chip_ids: list[str]


def chip_probabilities(model: nn.Module, config: TrainConfig, images: np.ndarray) -> np.ndarray:
    """Footprint probabilities (N, H, W) of uint8 chips, as validation predicts them.

    Raises:
        InputError: a SAM 2 model trained with prompts (it needs prompts to predict).
    """
    kind = kind_of(config)
    if kind.needs_prompts(config):
        raise InputError(config.run_name, "prompt-trained models need prompts; the book's "
                                          "examples show the `none` mode")
    chip_model = kind.chip_model(model, config, None)
    windows = [Window(0, 0, images.shape[2], images.shape[1])] * len(images)
    probs = chip_model(images, windows)
    return probs[:, 0] if probs.ndim == 4 else probs


