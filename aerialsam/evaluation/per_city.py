"""Per-city evaluation: every model on the same held-out tiles, the same metric, timed.

A model is a fine-tuned run folder, or a zero-shot SAM 2: ``sam2-auto`` (automatic masks)
or ``sam2-oracle`` (box prompts from the ground truth: an UPPER BOUND, reported apart).
Each is run through ``aerialsam predict``'s path on the held-out tiles of each city,
vectorized with its validation-tuned threshold and scored with the SpaceNet 2 metric.

Output ``reports/<name>/``::

    summary.csv / summary.json    one row per model: F1 per city, overall (mean of cities),
                                  precision, recall, tiles, seconds, images per second
                                  (seconds: each tile's prediction, timed when it was made)
    <model>/per_image.csv         SpaceNet counts and F1 per tile
    <model>/per_aoi.json          ``aerialsam score --json`` shape
    <model>/predictions/          probability GeoTIFFs, GeoPackages, proposals.csv
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
from sam2.modeling.sam2_base import SAM2Base
from torch import nn

from aerialsam.config import AOIS
from aerialsam.data.spacenet import resolve_aoi
from aerialsam.device import pick_device
from aerialsam.errors import InputError
from aerialsam.inference.auto_masks import AutoSettings, BuildingFilter
from aerialsam.inference.chip_models import sam2_factory
from aerialsam.inference.prediction import (
    BuildingOutputs,
    ChipModelFactory,
    Outputs,
    PredictReport,
    TileOptions,
    VectorizeOptions,
    predict_images,
)
from aerialsam.inference.prompts import ORACLE_WARNING
from aerialsam.io import atomic_path
from aerialsam.metrics.building_f1 import ScoreResult, read_proposals_csv, score
from aerialsam.models.sam2 import load_sam2
from aerialsam.prep.chips import Source
from aerialsam.prep.splits import SPLITS, read_splits
from aerialsam.training.kinds import kind_of
from aerialsam.training.runs import load_run_model
from aerialsam.training.validation import chip_model_for, truth_of, val_sources

log = logging.getLogger(__name__)

ZERO_SHOT = ("sam2-auto", "sam2-oracle")
ORACLE_NOTE = "upper bound: prompted with ground-truth boxes"


@dataclass(frozen=True)
class ZeroShot:
    """How zero-shot SAM 2 runs: variant, weights, input size, automatic-mask settings."""

    variant: str = "tiny"
    checkpoint: str | None = None
    image_size: int = 1024
    auto: AutoSettings = field(default_factory=AutoSettings)
    device: str = "auto"


@dataclass
class ModelScore:
    """One model's evaluation: its score, timing and where its files are."""

    name: str
    result: ScoreResult
    tiles: int
    seconds: float
    oracle: bool
    folder: Path

    def row(self) -> dict[str, object]:
        """The model's row of the summary table."""
        per_aoi = self.result.per_aoi
        row: dict[str, object] = {"model": self.name}
        for aoi in per_aoi.index:
            row[f"f1_{aoi}"] = float(per_aoi.loc[aoi, "f1"])
        tp, fp, fn = (int(per_aoi[c].sum()) for c in ("tp", "fp", "fn"))
        row.update(overall_f1=self.result.overall_f1,
                   precision=tp / (tp + fp) if tp + fp else 0.0,
                   recall=tp / (tp + fn) if tp + fn else 0.0, tiles=self.tiles,
                   seconds=self.seconds, images_per_s=self.tiles / self.seconds,
                   note=ORACLE_NOTE if self.oracle else "")
        return row


def held_out(splits_path: str | Path, split: str = "test",
             aois: Sequence[str] | None = None) -> list[Source]:
    """The tiles of ``split`` for each AOI, as prediction sources.

    Raises:
        InputError: an unknown split, or an AOI with no tile in it.
    """
    if split not in SPLITS:
        raise InputError("--split", f"unknown split {split!r}; choose one of {SPLITS}")
    table = read_splits(splits_path)
    wanted = [resolve_aoi(a) for a in aois] if aois else sorted(table["aoi"].unique())
    chosen = table[(table["split"] == split) & table["aoi"].isin(wanted)]
    empty = [a for a in wanted if a not in set(chosen["aoi"])]
    if empty:
        raise InputError(splits_path, f"{', '.join(empty)} has no {split} tiles; choose "
                                      "another --split or --aoi")
    return val_sources(chosen)


def model_label(model: str) -> str:
    """A folder-safe name for a model argument (a run folder's name, or ``sam2-auto``)."""
    name = model if model in ZERO_SHOT else Path(model).name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


SPLITS_OF_TASK = {"buildings": "SpaceNet 2 tiles (the building splits)",
                  "roads": "SpaceNet 3 tiles (the road splits)"}
"""Where a run of each task is evaluated, as the refusal of a wrong task says."""


def zero_shot_sam2(model: str, zero_shot: ZeroShot) -> tuple[SAM2Base, str, dict]:
    """Zero-shot SAM 2 for ``sam2-auto`` or ``sam2-oracle``: the model, its mode, its params."""
    sam = load_sam2(zero_shot.variant, zero_shot.checkpoint, zero_shot.device,
                    zero_shot.image_size)
    mode = "auto" if model == "sam2-auto" else "oracle"
    params = {"model": "sam2", "mode": mode, "variant": zero_shot.variant,
              "checkpoint": zero_shot.checkpoint or "official",
              "image_size": zero_shot.image_size}
    return sam, mode, params


def trained_model(model: str, device: str, task: str) -> tuple[nn.Module, dict]:
    """A run's final model and its ``run.json``, refused when trained for another ``task``.

    Raises:
        InputError: a run of the other task (or an unreadable run folder).
    """
    net, run = load_run_model(model, pick_device(device))
    trained = run["config"].task
    if trained != task:
        raise InputError(model, f"was trained for {trained}, not {task}: evaluate it on "
                                f"{SPLITS_OF_TASK[trained]}")
    return net, run


def _factory(model: str, sources: list[Source], zero_shot: ZeroShot
             ) -> tuple[ChipModelFactory, dict, int, int | None, float, int | None]:
    """Chip models, recorded parameters, input size, chip size, threshold and overlap."""
    if model in ZERO_SHOT:
        sam, mode, params = zero_shot_sam2(model, zero_shot)
        factory = sam2_factory(sam, mode, sources, auto=zero_shot.auto, building=BuildingFilter())
        return factory, params, zero_shot.image_size, None, 0.5, None
    net, run = trained_model(model, zero_shot.device, "buildings")
    config = run["config"]
    # the same chip model that validated the run (oracle prompts for prompt-trained SAM 2)
    factory: ChipModelFactory = lambda source, src: chip_model_for(net, config, source)  # noqa: E731
    params = {"model": str(Path(model).resolve()), "step": run.get("step"),
              "mode": "oracle" if kind_of(config).needs_prompts(config) else "dense"}
    if params["mode"] == "oracle":
        log.warning(ORACLE_WARNING, len(sources))
    size = kind_of(config).input_size(config, run)
    return (factory, params, size, run.get("chip_size"), float(run.get("threshold", 0.5)),
            run.get("overlap"))


def evaluate_model(model: str, sources: list[Source], truth: gpd.GeoDataFrame, out_dir: Path,
                   zero_shot: ZeroShot, overlap: int | None = None, batch_size: int = 4,
                   stretch_path: str | Path | None = None) -> ModelScore:
    """Predict, vectorize and score one model on ``sources``; write its report files.

    It is scored against ``truth``, the sources' buildings
    (:func:`aerialsam.training.validation.truth_of`).

    ``overlap`` defaults to the run's training grid, else an eighth of the chip.
    """
    label = model_label(model)
    factory, params, image_size, chip_size, threshold, run_overlap = _factory(model, sources,
                                                                              zero_shot)
    folder = out_dir / label
    tile = grid(chip_size or image_size, overlap, run_overlap, batch_size)
    report, seconds = timed_predictions(label, sources, folder, factory, params, tile,
                                        stretch_path, BuildingOutputs(VectorizeOptions(
                                            threshold=threshold)))
    result = score(truth, read_proposals_csv(report.proposals_path))
    write_scores(folder, result.per_image, result.to_json_dict())
    return ModelScore(label, result, len(sources), seconds, params["mode"] == "oracle", folder)


def grid(size: int, overlap: int | None, run_overlap: int | None, batch_size: int
         ) -> TileOptions:
    """The chip grid of an evaluation: ``overlap``, else the run's, else an eighth of a chip."""
    overlap = overlap if overlap is not None else run_overlap or size // 8
    return TileOptions(size, min(overlap, size // 2), batch_size)


def timed_predictions(label: str, sources: list[Source], folder: Path,
                      factory: ChipModelFactory, params: dict, tile: TileOptions,
                      stretch_path: str | Path | None, outputs: Outputs
                      ) -> tuple[PredictReport, float]:
    """A model's predictions of the held-out tiles (``folder/predictions``) and their seconds.

    The seconds are those recorded when each tile was predicted: a rerun that reuses the
    predictions would otherwise report the speed of skipping them (NaN, with a warning, when
    some tile has no recorded time).
    """
    report = predict_images(sources, folder / "predictions", factory, params, tile,
                            stretch_path=stretch_path, outputs=outputs)
    seconds = report.total_seconds
    if math.isnan(seconds):
        log.warning("%s: some predictions in %s have no recorded time; speed unknown (delete "
                    "the folder to predict and time them again)", label, report.out_dir)
    return report, seconds


def write_scores(folder: Path, per_image: pd.DataFrame, per_aoi: dict) -> None:
    """A model's ``per_image.csv`` and ``per_aoi.json`` (the ``aerialsam score --json`` shape)."""
    with atomic_path(folder / "per_image.csv") as tmp:
        per_image.to_csv(tmp, index=False)
    with atomic_path(folder / "per_aoi.json") as tmp:
        tmp.write_text(json.dumps(per_aoi, indent=1) + "\n")


def evaluate(models: Sequence[str], splits_path: str | Path, out_dir: str | Path,
             split: str = "test", aois: Sequence[str] | None = None,
             zero_shot: ZeroShot = ZeroShot(), stretch_path: str | Path | None = None,
             overlap: int | None = None, batch_size: int = 4) -> pd.DataFrame:
    """Evaluate each model on the held-out tiles of each city; write the summary table.

    Returns:
        The summary (one row per model), also written as ``summary.csv`` and ``summary.json``.
    """
    out_dir = Path(out_dir)
    sources = held_out(splits_path, split, aois)
    truth = truth_of(sources)  # read once, shared by every model
    rows = []
    for model in models:
        scored = evaluate_model(model, sources, truth, out_dir, zero_shot, overlap,
                                batch_size, stretch_path)
        log.info("%s: overall F1 %.3f on %d tiles in %.1f s", scored.name,
                 scored.result.overall_f1, scored.tiles, scored.seconds)
        rows.append(scored.row())
    return write_summary(rows, "f1", out_dir)


def write_summary(rows: list[dict[str, object]], metric: str, out_dir: Path) -> pd.DataFrame:
    """The summary table of an evaluation, written as ``summary.csv`` and ``summary.json``.

    Columns: ``model``, then ``<metric>_<AOI>`` in AOI order, then the rest as the rows have
    them.
    """
    summary = pd.DataFrame(rows)
    order = [f"{metric}_{a}" for a in AOIS if f"{metric}_{a}" in summary.columns]
    summary = summary[["model", *order] + [c for c in summary.columns
                                           if c not in order and c != "model"]]
    with atomic_path(out_dir / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(summary.to_json(orient="records", indent=1) + "\n")
    return summary
