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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import torch
from rasterio.windows import Window
from torch import nn

from aerialsam import spacenet
from aerialsam.chips import Source
from aerialsam.metrics import score
from aerialsam.predict import Sam2Prompted, Sam2Semantic
from aerialsam.prompts import oracle_prompts
from aerialsam.stretch import Stretch
from aerialsam.tiling import NO_FLIP, ChipModel, Flip, predict_raster
from aerialsam.train_config import TrainConfig
from aerialsam.vectorize import proposals_frame, vectorize

log = logging.getLogger(__name__)

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


class UNetChips:
    """The U-Net as a :class:`~aerialsam.tiling.ChipModel` (footprint and contact channels)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.device = next(model.parameters()).device

    def __call__(self, chips: np.ndarray, windows: Sequence[Window],
                 flip: Flip = NO_FLIP) -> np.ndarray:
        """(B, 2, H, W) footprint and contact probabilities of uint8 chips (B, H, W, 3)."""
        images = torch.from_numpy(np.ascontiguousarray(chips)).to(self.device)
        images = images.permute(0, 3, 1, 2).float() / 255.0
        with torch.inference_mode():
            logits = self.model(images)
        return torch.sigmoid(logits.float()).cpu().numpy()


def chip_model_for(model: nn.Module, config: TrainConfig, source: Source) -> ChipModel:
    """The chip model that predicts one tile with a trained model (oracle prompts for
    prompt-trained SAM 2)."""
    if config.model == "unet":
        return UNetChips(model)
    if config.prompt == "none":
        return Sam2Semantic(model, channels=(0, 1))
    return Sam2Prompted(model, oracle_prompts(spacenet.tile_at(source.path), config.prompt))


def val_sources(chips: pd.DataFrame) -> list[Source]:
    """The source tiles of a table of chips or tiles (``ChipDataset.chips``, the splits
    table), once each."""
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


def tile_f1(model: nn.Module, config: TrainConfig, sources: Sequence[Source],
            stretches: dict[str, Stretch], size: int, overlap: int,
            thresholds: Sequence[float] = THRESHOLDS) -> TileScore:
    """Predict the tiles, vectorize at each threshold, keep the best SpaceNet F1."""
    probs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            out = Path(tmp) / f"{source.image_id}.tif"
            predict_raster(source.path, chip_model_for(model, config, source), out, size,
                           overlap, config.batch_size, stretch=stretches[source.aoi])
            probs[source.image_id] = _read(out)
    truth = truth_of(sources)
    results = {t: score(truth, _proposals(probs, t)) for t in thresholds}
    best = max(thresholds, key=lambda t: (results[t].overall_f1, -abs(t - 0.5)))
    return TileScore(best, results[best].overall_f1,
                     {t: r.overall_f1 for t, r in results.items()}, results[best].per_aoi,
                     oracle=config.model == "sam2" and config.prompt != "none")


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def _proposals(probs: dict[str, np.ndarray], threshold: float) -> gpd.GeoDataFrame:
    return proposals_frame({image: vectorize(prob[0], threshold,
                                             contact=prob[1] if len(prob) > 1 else None,
                                             watershed=len(prob) == 1)
                            for image, prob in probs.items()})
