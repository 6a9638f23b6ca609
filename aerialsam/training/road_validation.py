"""Validation of road runs: APLS of whole validation tiles, as ``aerialsam predict`` draws them.

Each validation tile is predicted once (tiled inference with the chips' stretch, as for
buildings); its road probabilities then become a graph under every setting of
:data:`SETTINGS` (the probability threshold and the longest gap the clean-up bridges) and
each graph is scored with the official APLS against the tile's true roads. The best setting
is saved in the run, so that ``aerialsam predict RUN_DIR`` draws the graph the run was
validated with.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import shapely
from torch import nn

from aerialsam.errors import InputError
from aerialsam.inference.road_graph import (
    DEFAULT_OPTIONS,
    PixelSize,
    RoadGraphOptions,
    clean_graph,
)
from aerialsam.inference.road_oracle import tile_roads
from aerialsam.inference.road_sections import road_sections
from aerialsam.inference.road_vectorize import (
    MASK_OPTIONS,
    raster_pixel_size,
    road_mask,
    skeleton_graph,
    skeleton_pixels,
)
from aerialsam.inputs.schema import check_fields
from aerialsam.metrics.apls import score_roads
from aerialsam.prep.chips import Source
from aerialsam.prep.stretch import Stretch
from aerialsam.training.train_config import TrainConfig
from aerialsam.training.validation import predict_tiles

ROAD_THRESHOLDS = (0.3, 0.5, 0.7)
"""Probability thresholds tried on the validation tiles."""
GAPS_M = (6.0, 12.0)
"""Longest breaks (m) the graph clean-up bridges, tried with each threshold."""
SETTINGS: tuple[RoadGraphOptions, ...] = tuple(
    dataclasses.replace(DEFAULT_OPTIONS, threshold=t, gap_m=g)
    for t, g in itertools.product(ROAD_THRESHOLDS, GAPS_M))
"""Every graph setting a final validation scores."""


@dataclass
class RoadTileScore:
    """The APLS of the validation tiles under the best graph setting.

    Attributes:
        options: the best setting (threshold and clean-up).
        apls: its overall APLS (mean over the cities of the mean over their tiles).
        per_setting: APLS of every setting tried, by :func:`setting_name`.
        per_aoi: the best setting's ``apls`` and ``images`` per AOI.
    """

    options: RoadGraphOptions
    apls: float
    per_setting: dict[str, float]
    per_aoi: pd.DataFrame


def setting_name(options: RoadGraphOptions) -> str:
    """A short name of a graph setting, e.g. ``t=0.5 gap=6m``."""
    return f"t={options.threshold:g} gap={options.gap_m:g}m"


def road_probabilities(model: nn.Module, config: TrainConfig, sources: Sequence[Source],
                       stretches: dict[str, Stretch], size: int, overlap: int
                       ) -> dict[str, tuple[np.ndarray, PixelSize]]:
    """Each tile's road probability (band 1 of the prediction) and its pixel size."""
    return predict_tiles(model, config, sources, stretches, size, overlap,
                         lambda src: (src.read(1), raster_pixel_size(src)))


def score_settings(probs: dict[str, tuple[np.ndarray, PixelSize]],
                   truth: dict[str, list[shapely.LineString]],
                   settings: Sequence[RoadGraphOptions] = SETTINGS) -> RoadTileScore:
    """APLS of the tiles' graphs under every setting; the best one.

    Ties (an untrained model scores 0 everywhere) go to the setting closest to
    ``DEFAULT_OPTIONS`` (threshold first), as building runs' ties go to 0.5.

    The skeleton depends only on the mask options, so it is taken once per threshold and
    cleaned once per setting.
    """
    if not settings:
        raise InputError("settings", "no graph setting to score")
    skeletons: dict[tuple, dict[str, nx.MultiGraph]] = {}
    best: tuple[tuple, RoadGraphOptions, pd.DataFrame] | None = None
    per_setting = {}
    for options in settings:
        mask_key = tuple(getattr(options, name) for name in MASK_OPTIONS)
        if mask_key not in skeletons:
            skeletons[mask_key] = {image: _skeleton(prob, options, pixel_size)
                                   for image, (prob, pixel_size) in probs.items()}
        proposals = {image: road_sections(clean_graph(raw, options))
                     for image, raw in skeletons[mask_key].items()}
        result = score_roads(truth, proposals, workers=1)
        per_setting[setting_name(options)] = result.overall_apls
        rank = (result.overall_apls, *(-d for d in _distance_to_default(options)))
        if best is None or rank > best[0]:
            best = (rank, options, result.per_aoi)
    return RoadTileScore(best[1], best[0][0], per_setting, best[2])


def _distance_to_default(options: RoadGraphOptions) -> tuple[float, float]:
    """How far a setting is from the default one: ties go to the setting closest to it."""
    return (abs(options.threshold - DEFAULT_OPTIONS.threshold),
            abs(options.gap_m - DEFAULT_OPTIONS.gap_m))


def _skeleton(prob: np.ndarray, options: RoadGraphOptions, pixel_size: PixelSize
              ) -> nx.MultiGraph:
    """The raw skeleton graph of a probability map under ``options``' mask settings."""
    mask = road_mask(prob, options, pixel_size)
    return skeleton_graph(*skeleton_pixels(mask), pixel_size, mask.shape)


def tile_apls(model: nn.Module, config: TrainConfig, sources: Sequence[Source],
              stretches: dict[str, Stretch], size: int, overlap: int,
              settings: Sequence[RoadGraphOptions] = SETTINGS) -> RoadTileScore:
    """Predict the road tiles, draw their graphs under each setting, keep the best APLS."""
    probs = road_probabilities(model, config, sources, stretches, size, overlap)
    truth = {source.image_id: tile_roads(source.path) for source in sources}
    return score_settings(probs, truth, settings)


def saved_options(run: dict, run_dir: str | Path) -> RoadGraphOptions:
    """The graph setting a road run saved (``road_graph`` in its ``run.json``), checked.

    A run without one (validated before settings were saved) draws with the defaults.

    Raises:
        InputError: a ``road_graph`` with unknown keys or values of the wrong type.
    """
    values = run.get("road_graph", {})
    source = Path(run_dir) / "run.json"
    if not isinstance(values, dict):
        raise InputError(source, f"road_graph: expected a mapping, got {type(values).__name__}")
    checked = check_fields(RoadGraphOptions, values, f"{source}: road_graph")
    return dataclasses.replace(DEFAULT_OPTIONS, **checked)
