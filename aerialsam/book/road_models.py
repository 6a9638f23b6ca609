"""The road models chapter (11): road runs trained, scored per city with APLS, errors drawn.

Three road runs share the one training loop (:mod:`aerialsam.training.loop`): the U-Net,
the same U-Net with monai's soft clDice added to its loss, and SAM 2 fine-tuned prompt-free
(decoder regime). They are trained once per data folder (:func:`road_run`, through
:func:`aerialsam.book.chapter_runs.ensure_run`), then scored on the held-out road tiles with
zero-shot SAM 2 (:func:`evaluate`); :func:`cross_city` trains a U-Net on each city alone and
scores it on every city. The tables put the 2017 SpaceNet 3 winners below as
reference rows and keep the oracle (SAM 2 prompted with points on the true roads) in a table
of its own.

Error analysis of one tile is :mod:`aerialsam.book.road_errors`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import shapely

from aerialsam.book.chapter_runs import ensure_run
from aerialsam.book.zero_shot import auto_settings
from aerialsam.config import AOIS, Profile, RoadBookSettings, stage_paths
from aerialsam.device import pick_device
from aerialsam.errors import InputError
from aerialsam.evaluation.competition import CITY, ROADS_COMPETITION
from aerialsam.evaluation.per_city import ZERO_SHOT, ZeroShot, model_label
from aerialsam.evaluation.roads import evaluate_roads
from aerialsam.inference.road_graph import PixelSize, length_m
from aerialsam.inference.road_oracle import tile_roads
from aerialsam.inference.road_vectorize import raster_pixel_size
from aerialsam.prep.chip_masks import read_road_params
from aerialsam.prep.splits import SPLITS, read_splits
from aerialsam.prep.stretch import STRETCH_FILE
from aerialsam.training.kinds import kind_of
from aerialsam.training.runs import METRICS_FILE, read_run

ROAD_RUNS = ("sam2", "unet", "unet_cldice")
"""The chapter's runs: SAM 2 fine-tuned (decoder), the U-Net, the U-Net with clDice."""

SCORED_2017 = "2017 test set"
"""The ``scored on`` value of the 2017 rows: the competition's own test set."""


def chapter_settings(cfg: Profile) -> RoadBookSettings:
    """The chapter's settings for a profile (``cfg.book.roads``)."""
    return cfg.book.roads


def chapter_aois(cfg: Profile) -> tuple[str, ...]:
    """The cities the chapter trains on and scores."""
    return chapter_settings(cfg).aois or cfg.aois


def road_km(path: str | Path) -> float:
    """Kilometres of true road on a SpaceNet 3 tile (on the ground, from its labels)."""
    size = tile_pixel_size(path)
    return sum(length_m(shapely.get_coordinates(line), size) for line in tile_roads(path)) / 1000


def split_table(splits_path: str | Path, aois: Sequence[str] | None = None) -> pd.DataFrame:
    """Per city and split: tiles, tiles without any road, and kilometres of road.

    Tiles without roads exist in SpaceNet 3 and in the synthetic cities; on one, an empty
    proposal scores APLS 1 and any road 0.
    """
    table = read_splits(splits_path)
    if aois:
        table = table[table["aoi"].isin(aois)]
    km = [road_km(path) for path in table["source"]]
    frame = pd.DataFrame({"city": table["aoi"].map(CITY).to_numpy(),
                          "split": table["split"].to_numpy(), "km": km})
    grouped = frame.groupby(["city", "split"]).agg(
        tiles=("km", "size"), without_roads=("km", lambda k: int((k == 0).sum())),
        road_km=("km", "sum"))
    wide = grouped.unstack("split").swaplevel(axis=1)
    order = [(s, c) for s in SPLITS for c in ("tiles", "without_roads", "road_km")
             if (s, c) in wide.columns]
    wide = wide[order].rename(columns={"without_roads": "without roads", "road_km": "road km"})
    cities = [CITY[a] for a in AOIS if CITY[a] in wide.index]
    return wide.loc[cities].round(2)


def split_warnings(table: pd.DataFrame) -> str:
    """What :func:`split_table` says about training and validating, in Markdown bullets.

    Cities whose training tiles hold no road learn no road of their own; cities whose
    validation tiles hold none tune their graph setting on empty tiles.
    """
    lines = []
    for split, problem in (("train", "train on no road of their own"),
                           ("val", "validate on tiles without roads, where drawing nothing "
                                   "scores APLS 1")):
        if (split, "road km") in table:
            cities = table.index[table[(split, "road km")] == 0].tolist()
            if cities:
                lines.append(f"- {', '.join(cities)}: {problem}.")
    return "\n".join(lines) or "- Every city has roads in every split."


def run_overrides(cfg: Profile, run: str) -> dict[str, Any]:
    """The ``from_profile`` overrides of one of the chapter's runs (:data:`ROAD_RUNS`).

    Raises:
        InputError: an unknown run.
    """
    if run not in ROAD_RUNS:
        raise InputError("run", f"unknown road run {run!r}; choose one of {ROAD_RUNS}")
    settings = chapter_settings(cfg)
    model = "sam2" if run == "sam2" else "unet"
    steps = (settings.sam2_steps if model == "sam2" else settings.unet_steps) or cfg.train_steps
    values = {"aois": settings.aois, "batch_size": settings.batch_size, "lr": settings.lr,
              "image_size" if model == "sam2" else "unet_input_size": settings.image_size,
              "regime": "decoder" if model == "sam2" else None,
              "cldice_weight": settings.cldice_weight if run == "unet_cldice" else None}
    return {"task": "roads", "model": model, "name": f"book_roads_{run}", "steps": steps,
            "val_every": settings.val_every or steps, "warmup_steps": max(1, steps // 20),
            "checkpoint_every": min(50, steps),
            **{key: value for key, value in values.items() if value is not None}}


def road_run(cfg: Profile, data_dir: str | Path, run: str) -> Path:
    """The folder of one of the chapter's runs, trained (or resumed) first when unfinished."""
    return ensure_run(cfg, data_dir, **run_overrides(cfg, run))


def cross_city_steps(cfg: Profile) -> int:
    """Optimiser steps of each one-city U-Net: ``cross_city_steps``, else the U-Nets'."""
    settings = chapter_settings(cfg)
    return settings.cross_city_steps or settings.unet_steps or cfg.train_steps


def city_run(cfg: Profile, data_dir: str | Path, city: str) -> Path:
    """A road U-Net trained on one city only (trained first when unfinished).

    The chapter's U-Net settings, ``cross_city_steps`` steps, one validation at the end.
    """
    steps = cross_city_steps(cfg)
    return ensure_run(cfg, data_dir, **{
        **run_overrides(cfg, "unet"), "name": f"book_roads_unet_{city}", "aois": (city,),
        "steps": steps, "val_every": steps, "warmup_steps": max(1, steps // 20),
        "checkpoint_every": min(50, steps)})


def cross_city(cfg: Profile, data_dir: str | Path, split: str = "test"
               ) -> dict[str, pd.DataFrame]:
    """Each city's one-city U-Net scored on every city: its summary, by training city.

    Reports go to ``reports/roads_cross_city/<city>``; an empty dictionary when the profile
    does not draw the matrix (``cfg.book.roads.cross_city``).
    """
    if not chapter_settings(cfg).cross_city:
        return {}
    return {city: _evaluate(cfg, data_dir, [str(city_run(cfg, data_dir, city))],
                            Path("roads_cross_city") / city, split)
            for city in chapter_aois(cfg)}


def zero_shot(cfg: Profile) -> ZeroShot:
    """How the chapter runs zero-shot SAM 2: the profile's weights at the chapter's input."""
    settings = chapter_settings(cfg)
    auto = dataclasses.replace(auto_settings(cfg),
                               points_per_side=settings.auto_points_per_side)
    return ZeroShot(cfg.sam_variant, cfg.sam_checkpoint,
                    settings.image_size or cfg.sam_image_size, auto,
                    str(pick_device(cfg.device)))


def evaluate(cfg: Profile, data_dir: str | Path, runs: Mapping[str, Path],
             split: str = "test") -> pd.DataFrame:
    """Score zero-shot SAM 2 (automatic masks), the runs and the oracle per city.

    The report goes to ``reports/roads`` under the data folder (see
    :func:`aerialsam.evaluation.roads.evaluate_roads`).

    Returns:
        The summary: one row per model, zero-shot first and the oracle last.
    """
    models = ["sam2-auto", *(str(path) for path in runs.values()), "sam2-oracle"]
    return _evaluate(cfg, data_dir, models, Path("roads"), split)


def _evaluate(cfg: Profile, data_dir: str | Path, models: list[str], report: Path,
              split: str) -> pd.DataFrame:
    """``evaluate_roads`` on the chapter's cities, with its zero-shot SAM 2, into ``report``.

    The true masks of the pixel IoU have the widths the runs were trained on.
    """
    paths = stage_paths(data_dir)
    return evaluate_roads(models, paths.road_splits, paths.reports / report, split,
                          chapter_aois(cfg), zero_shot(cfg), paths.road_chips / STRETCH_FILE,
                          batch_size=cfg.batch_size,
                          road_params=read_road_params(paths.road_masks))


def run_name(run_dir: str | Path) -> str:
    """A readable name of a road run: its model, clDice when it has it, its steps."""
    config = read_run(run_dir)["config"]
    label = kind_of(config).label(config)
    cldice = f" + clDice ({config.cldice_weight:g})" if config.cldice_weight else ""
    return f"{label}{cldice}, {config.steps} steps"


def model_names(models: Sequence[str]) -> dict[str, str]:
    """Readable row names of the evaluated models (report label -> name)."""
    names = {"sam2-auto": "SAM 2 zero-shot (automatic masks)",
             "sam2-oracle": "SAM 2 + points on the true roads (ORACLE: upper bound)"}
    return {model_label(m): names[m] if m in ZERO_SHOT else run_name(m) for m in models}


def apls_table(summary: pd.DataFrame, names: Mapping[str, str], split: str = "test",
               oracle: bool = False) -> pd.DataFrame:
    """APLS per city and overall, pixel IoU and tiles per second of each evaluated model.

    Without ``oracle``: the honest rows, then the 2017 SpaceNet 3 winners as reference rows
    (scored on the competition's own test set; no pixel IoU or speed published). With it:
    the oracle rows alone, an upper bound never mixed with the others. Only the cities the
    summary scored have a column.
    """
    flagged = summary["note"].fillna("").astype(str) != ""
    rows = summary[flagged if oracle else ~flagged].set_index("model")
    scored = [a for a in AOIS if f"apls_{a}" in rows]
    table = pd.DataFrame({CITY[a]: rows[f"apls_{a}"] for a in scored})
    table["overall"] = rows["overall_apls"]
    table["pixel IoU"] = rows["pixel_iou"]
    table["tiles/s"] = rows["images_per_s"]
    table["scored on"] = f"{split} tiles here"
    table.index = pd.Index([names.get(m, m) for m in rows.index], name="model")
    if not oracle:
        reference = ROADS_COMPETITION.rename(columns={"Las Vegas": CITY["AOI_2_Vegas"]})
        reference = reference.reindex(columns=table.columns).assign(
            **{"scored on": SCORED_2017})
        reference.index = pd.Index([f"2017: {n}" for n in reference.index], name="model")
        table = pd.concat([table, reference])
    return table.round(3)


def cldice_comparison(runs: Mapping[str, Path], summary: pd.DataFrame) -> pd.DataFrame:
    """The U-Net with and without clDice: APLS, pixel IoU, graph setting, training time.

    Args:
        runs: name -> run folder of the two U-Net runs (without clDice first).
        summary: the evaluation summary holding both runs.

    Returns:
        One row per run and a last row ``clDice - plain`` of the differences.
    """
    rows = summary.set_index("model")
    table = {}
    for name, run_dir in runs.items():
        run = read_run(run_dir)
        scored = rows.loc[model_label(str(run_dir))]
        graph = run.get("road_graph", {})
        table[name] = {"clDice weight": run["config"].cldice_weight, "steps": run["step"],
                       "val APLS": run["metrics"]["val_apls"],
                       "test APLS": scored["overall_apls"],
                       "test pixel IoU": scored["pixel_iou"],
                       "graph threshold": graph.get("threshold", np.nan),
                       "graph gap (m)": graph.get("gap_m", np.nan),
                       "train seconds": _train_seconds(Path(run_dir))}
    frame = pd.DataFrame(table).T
    if len(frame) == 2:
        difference = frame.iloc[1] - frame.iloc[0]
        keep = ["val APLS", "test APLS", "test pixel IoU"]
        frame.loc["clDice - plain"] = difference.where(difference.index.isin(keep))
    return frame.rename_axis("run").astype(float).round(3)


def _train_seconds(run_dir: Path) -> float:
    """The training time a run logged (its last training step), NaN without a log."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return float("nan")
    metrics = pd.read_csv(path)
    return float(metrics.loc[metrics["split"] == "train", "seconds"].max())


def verdict(table: pd.DataFrame, oracle: pd.DataFrame, synthetic: bool,
            random_sam: bool) -> str:
    """A few sentences (Markdown) read off the chapter's tables: what they say and what not."""
    ours = table[~table.index.str.startswith("2017")]
    best, best_apls = ours["overall"].idxmax(), ours["overall"].max()
    winner = ROADS_COMPETITION.index[0].split(" (")[0]
    lines = [f"- Best model without ground-truth help: **{best}**, overall APLS "
             f"**{best_apls:.3f}** (the 2017 winner, {winner}, scored "
             f"{ROADS_COMPETITION['overall'].iloc[0]:.3f} on the competition's own test set)."]
    if len(oracle):
        lines.append(f"- The oracle (points on the true roads) reaches "
                     f"{oracle['overall'].iloc[0]:.3f}: an upper bound for prompted SAM 2, "
                     "not a result.")
    fastest = ours["tiles/s"].idxmax()
    lines.append(f"- Fastest: {fastest} at {ours.loc[fastest, 'tiles/s']:.2f} tiles per "
                 "second (1300 px tiles, this machine).")
    if synthetic:
        lines.append("- These tiles are **synthetic**: the scores test the pipeline, not the "
                     "models on real cities, and are not comparable with the 2017 rows.")
    if random_sam:
        lines.append("- SAM 2 started from **random weights** here: its zero-shot and oracle "
                     "rows are meaningless, and its fine-tuned row trained a decoder on the "
                     "features of an untrained encoder.")
    return "\n".join(lines)


def best_model(summary: pd.DataFrame, models: Sequence[str]) -> str:
    """The one of ``models`` with the highest overall APLS (ties: the first given)."""
    rows = summary.set_index("model")["overall_apls"]
    labels = [model_label(m) for m in models]
    return models[int(np.argmax([rows[label] for label in labels]))]


def example_tile(per_image: pd.DataFrame) -> str:
    """The tile to draw: the one where the model does best (ties: the first by image id).

    Its remaining errors are the ones training has not fixed.

    Raises:
        InputError: a per-image table without rows.
    """
    if per_image.empty:
        raise InputError("per_image.csv", "no scored tile to draw")
    ordered = per_image.sort_values(["apls", "image_id"], ascending=[False, True],
                                    kind="stable")
    return str(ordered["image_id"].iloc[0])


def read_per_image(report_dir: str | Path, model: str) -> pd.DataFrame:
    """One model's per-tile APLS from an evaluation report."""
    return pd.read_csv(Path(report_dir) / model_label(model) / "per_image.csv")


def tile_pixel_size(path: str | Path) -> PixelSize:
    """(east-west, north-south) ground size in metres of a tile's pixels."""
    with rasterio.open(path) as src:
        return raster_pixel_size(src)
