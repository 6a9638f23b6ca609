"""Per-city evaluation of road models: the SpaceNet 3 APLS of every model on the same tiles.

A model is a road run folder (``task: roads``) or zero-shot SAM 2: ``sam2-auto`` (automatic
masks kept when long and narrow) or ``sam2-oracle`` (point prompts along the true roads: an
UPPER BOUND, reported apart). Each is run through ``aerialsam predict``'s road path on the
held-out SpaceNet 3 tiles of each city, its graph drawn with its validated setting, and
scored with the official APLS (city: mean over its tiles; overall: mean over the cities).
Pixel IoU of the road mask (probability above the threshold, against the truth buffered in
metres) is a secondary column: it ignores connectivity, which is what APLS is about.

Output ``reports/<name>/``::

    summary.csv / summary.json    one row per model: APLS per city, overall APLS, pixel IoU,
                                  tiles, seconds, images per second
    <model>/per_image.csv         APLS and both directions per tile
    <model>/per_aoi.json          ``aerialsam score --json`` shape
    <model>/predictions/          probability GeoTIFFs, road GeoPackages, roads.csv
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import shapely

from aerialsam.data import spacenet3
from aerialsam.errors import InputError
from aerialsam.evaluation.per_city import (
    ZERO_SHOT,
    ZeroShot,
    grid,
    held_out,
    model_label,
    timed_predictions,
    trained_model,
    write_scores,
    write_summary,
    zero_shot_sam2,
)
from aerialsam.inference.prediction import ChipModelFactory
from aerialsam.inference.road_graph import DEFAULT_OPTIONS, RoadGraphOptions
from aerialsam.inference.road_oracle import sam2_road_factory, tile_roads
from aerialsam.inference.road_prediction import RoadOutputs
from aerialsam.metrics.apls import RoadScoreResult, read_roads_csv, score_roads
from aerialsam.prep import road_masks
from aerialsam.prep.chips import Source
from aerialsam.prep.masks import read_grid
from aerialsam.training.kinds import kind_of
from aerialsam.training.road_validation import saved_options
from aerialsam.training.validation import chip_model_for

log = logging.getLogger(__name__)

ROAD_ORACLE_NOTE = "upper bound: prompted with points on the true roads"


@dataclass
class RoadModelScore:
    """One road model's evaluation: APLS, pixel IoU, timing and where its files are."""

    name: str
    result: RoadScoreResult
    pixel_iou: float
    tiles: int
    seconds: float
    oracle: bool
    folder: Path

    def row(self) -> dict[str, object]:
        """The model's row of the summary table."""
        row: dict[str, object] = {"model": self.name}
        for aoi in self.result.per_aoi.index:
            row[f"apls_{aoi}"] = float(self.result.per_aoi.loc[aoi, "apls"])
        row.update(overall_apls=self.result.overall_apls, pixel_iou=self.pixel_iou,
                   tiles=self.tiles, seconds=self.seconds,
                   images_per_s=self.tiles / self.seconds if self.seconds else float("nan"),
                   note=ROAD_ORACLE_NOTE if self.oracle else "")
        return row


def is_road_tile(source: Source) -> bool:
    """Whether a source is a SpaceNet 3 tile (named and laid out as one)."""
    try:
        spacenet3.road_tile_at(source.path)
    except InputError:
        return False
    return True


def _factory(model: str, sources: list[Source], zero_shot: ZeroShot
             ) -> tuple[ChipModelFactory, dict, int, int | None, RoadGraphOptions, int | None]:
    """Chip models, recorded parameters, input size, chip size, graph setting, overlap."""
    if model in ZERO_SHOT:
        sam, mode, params = zero_shot_sam2(model, zero_shot)
        factory = sam2_road_factory(sam, mode, sources, auto=zero_shot.auto)
        return (factory, {**params, "task": "roads"}, zero_shot.image_size, None,
                DEFAULT_OPTIONS, None)
    net, run = trained_model(model, zero_shot.device, "roads")
    config = run["config"]
    factory: ChipModelFactory = lambda source, src: chip_model_for(net, config, source)  # noqa: E731
    options = saved_options(run, model)
    params = {"model": str(Path(model).resolve()), "task": "roads", "step": run.get("step"),
              "mode": "dense"}
    size = kind_of(config).input_size(config, run)
    return factory, params, size, run.get("chip_size"), options, run.get("overlap")


def road_pixel_iou(sources: Sequence[Source], prob_paths: dict[str, Path],
                   threshold: float, road_params: road_masks.RoadParams | None = None) -> float:
    """IoU of the predicted road pixels with the true road masks, over all tiles together.

    The true masks are drawn with ``road_params``, the widths the models were trained on
    (:func:`aerialsam.prep.chip_masks.read_road_params`; default: 2 m either side).
    """
    inter = union = 0
    for source in sources:
        tile = spacenet3.road_tile_at(source.path)
        grid = read_grid(source.path)
        roads = road_masks.read_road_labels(tile.geojson_path, grid, source.path, road_params)
        truth = road_masks.road_mask(roads, grid.shape, params=road_params) > 0
        with rasterio.open(prob_paths[source.image_id]) as src:
            pred = np.nan_to_num(src.read(1)) > threshold
        inter += int((pred & truth).sum())
        union += int((pred | truth).sum())
    return inter / union if union else float("nan")


def evaluate_road_model(model: str, sources: list[Source],
                        truth: dict[str, list[shapely.LineString]], out_dir: Path,
                        zero_shot: ZeroShot, overlap: int | None = None, batch_size: int = 4,
                        stretch_path: str | Path | None = None,
                        road_params: road_masks.RoadParams | None = None) -> RoadModelScore:
    """Predict, draw and score one road model on ``sources``; write its report files.

    ``overlap`` defaults to the run's training grid, else an eighth of the chip;
    ``road_params`` are the widths of the true masks of the pixel IoU.
    """
    label = model_label(model)
    factory, params, image_size, chip_size, options, run_overlap = _factory(model, sources,
                                                                            zero_shot)
    folder = out_dir / label
    outputs = RoadOutputs(options)
    tile = grid(chip_size or image_size, overlap, run_overlap, batch_size)
    report, seconds = timed_predictions(label, sources, folder, factory, params, tile,
                                        stretch_path, outputs)
    result = score_roads(truth, read_roads_csv(report.proposals_path), workers=1)
    probs = {s.image_id: outputs.paths(report.out_dir, s.image_id)["prob"] for s in sources}
    iou = road_pixel_iou(sources, probs, options.threshold, road_params)
    write_scores(folder, result.per_image, result.to_json_dict())
    return RoadModelScore(label, result, iou, len(sources), seconds,
                          params["mode"] == "oracle", folder)


def evaluate_roads(models: Sequence[str], splits_path: str | Path, out_dir: str | Path,
                   split: str = "test", aois: Sequence[str] | None = None,
                   zero_shot: ZeroShot | None = None, stretch_path: str | Path | None = None,
                   overlap: int | None = None, batch_size: int = 4,
                   road_params: road_masks.RoadParams | None = None) -> pd.DataFrame:
    """Evaluate each road model on the held-out road tiles of each city; write the summary.

    The arguments are those of :func:`aerialsam.evaluation.per_city.evaluate`, and the road
    widths the pixel IoU's true masks are drawn with (those of the training masks:
    :func:`aerialsam.prep.chip_masks.read_road_params`).

    Raises:
        InputError: a splits file of SpaceNet 2 tiles, a tile without road labels, or a run
            trained for buildings.

    Returns:
        The summary (one row per model), also written as ``summary.csv`` and ``summary.json``.
    """
    out_dir = Path(out_dir)
    zero_shot = zero_shot or ZeroShot()
    sources = held_out(splits_path, split, aois)
    not_roads = [s for s in sources if not is_road_tile(s)]
    if not_roads:
        raise InputError(splits_path, f"{not_roads[0].path.name} is not a SpaceNet 3 road tile: "
                                      "road models are evaluated on the road splits")
    truth = {s.image_id: tile_roads(s.path) for s in sources}  # read once for every model
    rows = []
    for model in models:
        scored = evaluate_road_model(model, sources, truth, out_dir, zero_shot, overlap,
                                     batch_size, stretch_path, road_params)
        log.info("%s: overall APLS %.3f on %d tiles in %.1f s", scored.name,
                 scored.result.overall_apls, scored.tiles, scored.seconds)
        rows.append(scored.row())
    return write_summary(rows, "apls", out_dir)
