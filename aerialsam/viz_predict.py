"""Figures and tables of zero-shot SAM 2 (book chapter 06).

Helpers for the notebook that runs SAM 2 without training: the variant table (parameters,
measured encoder throughput, the SAM 2 release figures), automatic masks on one chip per
city, scoring a prediction folder against its AOIs' truth, and pictures of tiled inference
(chip grid, blend weights, a stitched probability map).

In the synthetic ``smoke`` and ``demo`` profiles the weights are random: every mask and
score these helpers show describes the pipeline, never SAM 2's quality.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from sam2.modeling.sam2_base import SAM2Base

from aerialsam import metrics, spacenet
from aerialsam.chips import Source, chip_offsets, find_sources
from aerialsam.config import Profile
from aerialsam.io import open_raster
from aerialsam.models.sam2 import RANDOM, VARIANTS, autocast, build_model
from aerialsam.models.sam2_batch import encode, prepare_images
from aerialsam.predict import AutoSettings, BuildingFilter, Sam2Auto, building_candidates
from aerialsam.predict_run import PredictReport
from aerialsam.stretch import Stretch, load_stretches, save_stretches
from aerialsam.tiling import blend_weights, raster_stretch, read_strip, strip_chips
from aerialsam.viz import aoi_stretches

RELEASE_FPS = {"tiny": 91.2, "small": 84.8, "base_plus": 64.1, "large": 39.5}
"""SAM 2.1 release table: frames per second on one A100 at 1024 px (Meta's figures)."""
POINTS_PER_SIDE = {"smoke": 4, "demo": 8}
"""Automatic-mask point grid per profile; other profiles keep SAM 2's default (32)."""
AUTO_TILES_PER_AOI = {"smoke": 1, "demo": 2, "full": 25}
"""Tiles per city the automatic generator runs on (it is the slow mode)."""
ORACLE_TILES_PER_AOI = {"smoke": 1, "demo": 3}
"""Tiles per city for the oracle; profiles not listed use all their tiles."""
COUNT_ONLY_PROFILE_VARIANT = ("smoke",)
"""Profiles whose variant table counts the parameters of their own variant only: building
the large variant costs seconds that a smoke run does not have."""
MASK_STYLE = {"facecolor": "#ff7f00", "edgecolor": "#ff7f00", "alpha": 0.25, "linewidth": 1.0}
CANDIDATE_STYLE = {"facecolor": "none", "edgecolor": "#00e5ff", "linewidth": 1.5}
_KEEP_ALL = BuildingFilter(**{f.name: 0.0 if f.name.startswith("min_") else float("inf")
                              for f in fields(BuildingFilter)})
"""A filter every mask passes: its bounds are open whatever rules BuildingFilter has."""


def auto_settings(cfg: Profile) -> AutoSettings:
    """The automatic generator's settings for a profile.

    With random weights (``smoke``, ``demo``) predicted IoU and stability mean nothing, so
    both thresholds are 0 (every mask passes) and the point grid is small, for speed. With a
    real checkpoint SAM 2's defaults apply (32 points per side, thresholds 0.8 and 0.95).
    """
    points = POINTS_PER_SIDE.get(cfg.name, AutoSettings.points_per_side)
    if cfg.sam_checkpoint == RANDOM:
        return AutoSettings(points_per_side=points, pred_iou_thresh=0.0,
                            stability_score_thresh=0.0)
    return AutoSettings(points_per_side=points)


def count_parameters(variant: str, image_size: int) -> int:
    """Number of parameters of a SAM 2.1 variant (built with random weights, then dropped)."""
    return sum(p.numel() for p in build_model(variant, image_size).parameters())


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
    """Parameters of every variant, this machine's throughput for ``cfg``'s variant, and the
    release figures (A100, 1024 px) as a labelled reference column.

    Missing values were not measured (see :data:`COUNT_ONLY_PROFILE_VARIANT`)."""
    here = f"images/s here ({device}, {cfg.sam_image_size} px, encoder)"
    counted = ((cfg.sam_variant,) if cfg.name in COUNT_ONLY_PROFILE_VARIANT else tuple(VARIANTS))
    rows = [{"variant": name,
             "parameters (M)": (round(count_parameters(name, cfg.sam_image_size) / 1e6, 1)
                                if name in counted else np.nan),
             here: round(measured, 1) if name == cfg.sam_variant else np.nan,
             "release FPS (A100, 1024 px)": RELEASE_FPS[name]} for name in VARIANTS]
    return pd.DataFrame(rows).set_index("variant")


def save_aoi_stretches(tiles: Sequence[spacenet.Tile], path: str | Path,
                       seed: int = 0) -> dict[str, Stretch]:
    """Compute each AOI's stretch once (2-98 %, seeded sample) and save it as a stretch.json,
    so that every run of the chapter and every figure reads the tiles alike."""
    stretches = aoi_stretches(tiles, seed=seed)
    if load_stretches(path) != stretches:
        save_stretches(path, stretches)
    return stretches


def run_params(cfg: Profile, mode: str, auto: AutoSettings | None = None) -> dict:
    """What a zero-shot run is, as ``predict_images`` records it (as ``aerialsam predict``)."""
    return {"model": "sam2", "variant": cfg.sam_variant,
            "checkpoint": cfg.sam_checkpoint or "official", "image_size": cfg.sam_image_size,
            "mode": mode, "prompts": None, "auto": asdict(auto) if auto is not None else None}


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


def read_chip(tile: spacenet.Tile, stretch: Stretch, size: int, row: int = 0,
              col: int = 0) -> np.ndarray:
    """One (size, size, 3) uint8 chip of a tile, read as tiled inference reads it."""
    with open_raster(tile.image_path) as src:
        strip = read_strip(src, raster_stretch(src, tile.image_path, stretch), row, size)
    return strip_chips(strip, [col], size)[0]


@dataclass
class AutoResult:
    """The automatic generator's masks on one chip and the building candidates among them.

    Attributes:
        masks: every mask as a polygon (its largest part) with ``confidence``, ``stability``,
            ``area``, ``rectangularity`` and ``kept`` (passes the building filter).
        candidates: the masks that pass the building filter.
    """

    masks: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame


def auto_masks(auto: Sam2Auto, chip: np.ndarray) -> AutoResult:
    """Run the automatic generator once on a chip; split its masks by the building filter."""
    with torch.inference_mode(), autocast(auto.device):
        raw = auto.generator.generate(chip)
    masks = building_candidates(raw, chip.shape[:2], _KEEP_ALL)
    masks["kept"] = auto.building.keep(masks, float(chip.shape[0] * chip.shape[1]))
    return AutoResult(masks, masks[masks["kept"]].drop(columns="kept"))


def plot_auto_masks(chips: Sequence[np.ndarray], results: Sequence[AutoResult],
                    titles: Sequence[str]) -> Figure:
    """One panel per chip: the generator's masks shaded, building candidates outlined."""
    fig, axes = plt.subplots(1, len(chips), figsize=(3.2 * len(chips), 3.6), squeeze=False)
    for ax, chip, result, title in zip(axes[0], chips, results, titles, strict=True):
        ax.imshow(chip)
        if len(result.masks):
            result.masks.plot(ax=ax, **MASK_STYLE)
        if len(result.candidates):
            result.candidates.boundary.plot(ax=ax, color=CANDIDATE_STYLE["edgecolor"],
                                            linewidth=CANDIDATE_STYLE["linewidth"])
        ax.set_title(f"{title}\n{_plural(len(result.masks), 'mask')}, "
                     f"{_plural(len(result.candidates), 'candidate')}", fontsize=9)
        ax.set_xlim(0, chip.shape[1])
        ax.set_ylim(chip.shape[0], 0)
        ax.set_axis_off()
    fig.legend(handles=[Patch(**MASK_STYLE, label="automatic mask"),
                        Patch(**CANDIDATE_STYLE, label="building candidate")],
               loc="lower center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def tile_truth(tiles: Sequence[spacenet.Tile]) -> gpd.GeoDataFrame:
    """The buildings of some tiles in pixel coordinates, with ``ImageId``, from their GeoJSON
    (present in both the summary-CSV and the per-tile download layouts)."""
    frames = [spacenet.read_tile_labels(tile, pixel=True).assign(ImageId=tile.image_id)
              for tile in tiles if tile.geojson_path is not None]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def score_run(report: PredictReport, tiles: Sequence[spacenet.Tile]) -> metrics.ScoreResult:
    """Score a prediction folder's ``proposals.csv`` against the truth of the tiles it holds.

    Only the predicted tiles count as truth, so tiles the run skipped are not missed buildings.
    """
    predicted = set(report.image_ids)
    truth = tile_truth([t for t in tiles if t.image_id in predicted])
    proposals = metrics.read_proposals_csv(report.proposals_path)
    return metrics.score(truth, proposals, truth_image_ids=list(report.image_ids))


def city_table(results: dict[str, metrics.ScoreResult]) -> pd.DataFrame:
    """Per-city F1, precision, recall and counts of several runs, one block of rows per run."""
    frames = []
    for name, result in results.items():
        per_aoi = result.per_aoi[["f1", "precision", "recall", "tp", "fp", "fn"]].copy()
        per_aoi["tiles"] = result.per_image.groupby("aoi").size().reindex(per_aoi.index)
        per_aoi.loc["overall (mean F1)"] = [result.overall_f1] + [np.nan] * 6
        frames.append(per_aoi.round(3).assign(run=name))
    table = pd.concat(frames).reset_index(names="city").set_index(["run", "city"])
    counts = ["tp", "fp", "fn", "tiles"]
    return table.astype(dict.fromkeys(counts, "Int64"))


def plot_chip_grid(rgb: np.ndarray, size: int, overlap: int) -> Figure:
    """The chip grid over one tile (overlaps shaded) and a chip's blend weights."""
    fig, (ax_grid, ax_weights, ax_profile) = plt.subplots(1, 3, figsize=(12, 4))
    height, width = rgb.shape[:2]
    ax_grid.imshow(rgb)
    colours = plt.cm.tab10.colors
    windows = [(r, c) for r in chip_offsets(height, size, overlap)
               for c in chip_offsets(width, size, overlap)]
    for i, (row, col) in enumerate(windows):
        ax_grid.add_patch(Rectangle((col, row), size, size, fill=False, linewidth=2,
                                    edgecolor=colours[i % len(colours)]))
    ax_grid.set_title(f"{len(windows)} chips of {size} px, {overlap} px overlap", fontsize=9)
    ax_grid.set_axis_off()
    weights = blend_weights(size, overlap)
    shown = ax_weights.imshow(weights, cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(shown, ax=ax_weights, fraction=0.046)
    ax_weights.set_title("blend weights of one chip", fontsize=9)
    ax_weights.set_axis_off()
    cols = chip_offsets(width, size, overlap)
    ramps = np.zeros((len(cols), width))
    for i, col in enumerate(cols):
        ramp = weights[size // 2, :min(size, width - col)]
        ramps[i, col:col + len(ramp)] = ramp
    shares = ramps / ramps.sum(axis=0)
    for i, col in enumerate(cols):
        ax_profile.plot(shares[i], color=colours[i % len(colours)],
                        label=f"chip at column {col}")
    ax_profile.set_xlabel("column (px)")
    ax_profile.set_ylabel("share of the blended result")
    ax_profile.set_title("each chip's share along one row", fontsize=9)
    ax_profile.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_probability(prob_path: str | Path, rgb: np.ndarray, size: int, overlap: int,
                     title: str) -> Figure:
    """A stitched probability map next to its tile, every chip border drawn on both.

    The colour scale spans the map's 1-99 % range, so that a seam would show even in a
    nearly uniform map (untrained weights).
    """
    with open_raster(prob_path, require_crs=False) as src:
        prob = src.read(1)
    low, high = np.percentile(prob, [1, 99])
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
    axes[0].imshow(rgb)
    shown = axes[1].imshow(prob, cmap="magma", vmin=low, vmax=max(high, low + 1e-6))
    fig.colorbar(shown, ax=axes[1], fraction=0.046, label="probability (1-99 % range)")
    for ax in axes:
        for row in chip_offsets(prob.shape[0], size, overlap):
            for col in chip_offsets(prob.shape[1], size, overlap):
                ax.add_patch(Rectangle((col, row), size, size, fill=False, linewidth=0.8,
                                       linestyle="--", edgecolor="white"))
        ax.set_axis_off()
    axes[0].set_title("tile and chip borders", fontsize=9)
    axes[1].set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
