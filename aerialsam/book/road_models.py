"""The road models chapter (11): road runs trained, scored per city with APLS, errors drawn.

Three road runs share the one training loop (:mod:`aerialsam.training.loop`): the U-Net,
the same U-Net with monai's soft clDice added to its loss, and SAM 2 fine-tuned prompt-free
(decoder regime). They are trained once per data folder (:func:`road_run`, through
:func:`aerialsam.book.chapter_runs.ensure_run`), then scored on the held-out road tiles with
zero-shot SAM 2 (:func:`evaluate`). The tables put the 2017 SpaceNet 3 winners below as
reference rows and keep the oracle (SAM 2 prompted with points on the true roads) in a table
of its own.

Error analysis of one tile (:func:`graph_errors`), in pixels, with the APLS snapping
distance (4 m, :data:`~aerialsam.metrics.road_graph.SNAP_DISTANCE`) as the tolerance:

- **missed road**: a stretch of true road with no proposed road within the tolerance;
- **false road**: a stretch of proposed road with no true road within the tolerance;
- **missed junction**: a true junction (three or more sections meet) with no proposed
  junction within :data:`JUNCTION_PX`;
- **break**: a proposed dead end lying on a true road, farther than :data:`JUNCTION_PX`
  from any true dead end: the proposed road stops where the true road goes on;
- **spur**: a proposed dead end off the true roads: the tip of a spur or a false road.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import shapely

from aerialsam.book.chapter_runs import ensure_run
from aerialsam.book.roads import load_scene
from aerialsam.book.zero_shot import auto_settings
from aerialsam.config import AOIS, Profile, RoadBookSettings, stage_paths
from aerialsam.data import spacenet3
from aerialsam.device import pick_device
from aerialsam.errors import InputError
from aerialsam.evaluation.competition import CITY, ROADS_COMPETITION
from aerialsam.evaluation.per_city import ZERO_SHOT, ZeroShot, model_label
from aerialsam.evaluation.roads import evaluate_roads
from aerialsam.inference.road_graph import PixelSize, length_m
from aerialsam.inference.road_oracle import tile_roads
from aerialsam.inference.road_prediction import ROADS_FILE
from aerialsam.inference.road_vectorize import raster_pixel_size
from aerialsam.metrics.apls import read_roads_csv
from aerialsam.metrics.road_graph import SNAP_DISTANCE
from aerialsam.prep.splits import SPLITS, read_splits
from aerialsam.prep.stretch import STRETCH_FILE, load_stretches
from aerialsam.training.kinds import kind_of
from aerialsam.training.runs import METRICS_FILE, read_run

ROAD_RUNS = ("sam2", "unet", "unet_cldice")
"""The chapter's runs: SAM 2 fine-tuned (decoder), the U-Net, the U-Net with clDice."""

JUNCTION_PX = 2 * SNAP_DISTANCE
"""A true junction counts as found with a proposed junction within this distance (8 m)."""

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
              "image_size": settings.sam2_image_size if model == "sam2" else None,
              "regime": "decoder" if model == "sam2" else None,
              "cldice_weight": settings.cldice_weight if run == "unet_cldice" else None}
    return {"task": "roads", "model": model, "name": f"book_roads_{run}", "steps": steps,
            "val_every": settings.val_every or steps, "warmup_steps": max(1, steps // 20),
            "checkpoint_every": min(50, steps),
            **{key: value for key, value in values.items() if value is not None}}


def road_run(cfg: Profile, data_dir: str | Path, run: str) -> Path:
    """The folder of one of the chapter's runs, trained (or resumed) first when unfinished."""
    return ensure_run(cfg, data_dir, **run_overrides(cfg, run))


def zero_shot(cfg: Profile) -> ZeroShot:
    """How the chapter runs zero-shot SAM 2: the profile's weights at the chapter's input."""
    settings = chapter_settings(cfg)
    auto = dataclasses.replace(auto_settings(cfg),
                               points_per_side=settings.auto_points_per_side)
    return ZeroShot(cfg.sam_variant, cfg.sam_checkpoint,
                    settings.sam2_image_size or cfg.sam_image_size, auto,
                    str(pick_device(cfg.device)))


def evaluate(cfg: Profile, data_dir: str | Path, runs: Mapping[str, Path],
             split: str = "test") -> pd.DataFrame:
    """Score zero-shot SAM 2 (automatic masks), the runs and the oracle per city.

    The report goes to ``reports/roads`` under the data folder (see
    :func:`aerialsam.evaluation.roads.evaluate_roads`).

    Returns:
        The summary: one row per model, zero-shot first and the oracle last.
    """
    paths = stage_paths(data_dir)
    models = ["sam2-auto", *(str(path) for path in runs.values()), "sam2-oracle"]
    return evaluate_roads(models, paths.road_splits, paths.reports / "roads", split,
                          chapter_aois(cfg), zero_shot(cfg), paths.road_chips / STRETCH_FILE,
                          batch_size=cfg.batch_size)


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


@dataclass(frozen=True)
class GraphErrors:
    """Where a proposed road graph differs from the truth on one tile (see the module).

    Attributes:
        truth: the true roads (pixel LineStrings).
        proposal: the proposed roads.
        missed: parts of true roads with no proposed road within the tolerance.
        false: parts of proposed roads with no true road within the tolerance.
        missed_junctions: ``(n, 2)`` true junctions with no proposed junction nearby.
        breaks: ``(n, 2)`` proposed dead ends on a true road that goes on.
        spurs: ``(n, 2)`` proposed dead ends off the true roads.
        tolerance_px: the distance within which a road counts as found.
    """

    truth: list[shapely.LineString]
    proposal: list[shapely.LineString]
    missed: list[shapely.LineString]
    false: list[shapely.LineString]
    missed_junctions: np.ndarray
    breaks: np.ndarray
    spurs: np.ndarray
    tolerance_px: float


def as_lines(roads: Sequence[Any]) -> list[shapely.LineString]:  # noqa: ANN401 (arrays or lines)
    """Roads as LineStrings (from ``(k, 2)`` arrays, as a roads CSV is read, or lines)."""
    return [r if isinstance(r, shapely.LineString) else shapely.LineString(np.asarray(r))
            for r in roads]


def node_degrees(lines: Sequence[shapely.LineString]) -> tuple[np.ndarray, np.ndarray]:
    """Every vertex of the roads (merged at 0.1 px, as the scorer merges them) and its degree.

    Returns:
        ``(xy, degree)``: ``(n, 2)`` positions and the number of sections meeting at each.
    """
    keys: dict[tuple[int, int], int] = {}
    xy: list[np.ndarray] = []
    degree: list[int] = []
    for line in lines:
        coords = shapely.get_coordinates(line)
        ids = []
        for point in coords:
            key = (int(round(point[0] * 10)), int(round(point[1] * 10)))
            if key not in keys:
                keys[key] = len(xy)
                xy.append(point)
                degree.append(0)
            ids.append(keys[key])
        for a, b in zip(ids[:-1], ids[1:], strict=True):
            if a != b:
                degree[a] += 1
                degree[b] += 1
    return (np.array(xy, dtype=float).reshape(-1, 2), np.array(degree, dtype=int))


def _parts(lines: Sequence[shapely.LineString], cover: shapely.Geometry,
           min_px: float) -> list[shapely.LineString]:
    """The pieces of ``lines`` outside ``cover`` at least ``min_px`` long."""
    out = []
    for line in lines:
        rest = shapely.difference(line, cover)
        for part in shapely.get_parts(shapely.line_merge(rest)
                                      if rest.geom_type == "MultiLineString" else rest):
            if part.geom_type == "LineString" and part.length >= min_px:
                out.append(part)
    return out


def _far_from(points: np.ndarray, others: np.ndarray, distance: float) -> np.ndarray:
    """Which ``points`` have none of ``others`` within ``distance``."""
    if not len(others):
        return np.ones(len(points), dtype=bool)
    gaps = np.hypot(*(points[:, None, :] - others[None, :, :]).transpose(2, 0, 1))
    return gaps.min(axis=1) > distance


def graph_errors(truth: Sequence[Any], proposal: Sequence[Any],  # noqa: ANN401 (roads)
                 tolerance_px: float = SNAP_DISTANCE,
                 junction_px: float = JUNCTION_PX) -> GraphErrors:
    """Missed and false roads, missed junctions, breaks and spurs of one tile's proposal.

    Args:
        truth: the tile's true roads in pixels (LineStrings or ``(k, 2)`` arrays).
        proposal: the proposed roads, likewise.
        tolerance_px: a road counts as found with the other within this distance (4 m).
        junction_px: how near a junction or a dead end of the other graph must be.

    Returns:
        The :class:`GraphErrors` (see the module docstring for the definitions).
    """
    truth, proposal = as_lines(truth), as_lines(proposal)
    truth_cover = shapely.union_all(truth).buffer(tolerance_px)
    proposal_cover = shapely.union_all(proposal).buffer(tolerance_px)
    min_px = tolerance_px / 2
    true_xy, true_degree = node_degrees(truth)
    prop_xy, prop_degree = node_degrees(proposal)
    junctions = true_xy[true_degree >= 3]
    missed_junctions = junctions[_far_from(junctions, prop_xy[prop_degree >= 3], junction_px)]
    ends = prop_xy[prop_degree == 1]
    on_truth = (shapely.contains_xy(truth_cover, ends[:, 0], ends[:, 1]) if len(ends)
                else np.zeros(0, dtype=bool))
    breaks = ends[on_truth & _far_from(ends, true_xy[true_degree == 1], junction_px)]
    return GraphErrors(truth, proposal, _parts(truth, proposal_cover, min_px),
                       _parts(proposal, truth_cover, min_px), missed_junctions.reshape(-1, 2),
                       breaks.reshape(-1, 2), ends[~on_truth].reshape(-1, 2), tolerance_px)


def error_table(errors: GraphErrors, pixel_size: PixelSize) -> pd.DataFrame:
    """How many of each error the tile has, and the road length involved in metres."""
    def metres(lines: Sequence[shapely.LineString]) -> float:
        return sum(length_m(shapely.get_coordinates(line), pixel_size) for line in lines)

    junctions = int((node_degrees(errors.truth)[1] >= 3).sum())
    rows = {
        "true roads": (len(errors.truth), metres(errors.truth)),
        "proposed roads": (len(errors.proposal), metres(errors.proposal)),
        "missed road stretches": (len(errors.missed), metres(errors.missed)),
        "false road stretches": (len(errors.false), metres(errors.false)),
        f"missed junctions (of {junctions})": (len(errors.missed_junctions), np.nan),
        "breaks (dead ends on a true road)": (len(errors.breaks), np.nan),
        "spurs (dead ends off the roads)": (len(errors.spurs), np.nan),
    }
    table = pd.DataFrame(rows, index=["count", "metres"]).T
    return table.astype({"count": int}).round({"metres": 0}).rename_axis("on this tile")


@dataclass(frozen=True)
class TileView:
    """One held-out tile, a model's graph of it and its errors, ready to draw.

    Attributes:
        image_id: the tile's image id.
        rgb: the tile as uint8 RGB, stretched with its city's stretch.
        errors: :func:`graph_errors` of the model's roads on it.
        pixel_size: (east-west, north-south) metres per pixel.
        apls: the model's APLS on the tile.
    """

    image_id: str
    rgb: np.ndarray
    errors: GraphErrors
    pixel_size: PixelSize
    apls: float


def tile_view(report_dir: str | Path, model: str, image_id: str, splits_path: str | Path,
              stretch_path: str | Path) -> TileView:
    """A model's roads on one evaluated tile (from its report), against the tile's truth.

    Raises:
        InputError: a tile the splits file or the model's report does not hold.
    """
    table = read_splits(splits_path)
    row = table[table["image_id"] == image_id]
    if row.empty:
        raise InputError(splits_path, f"no tile {image_id!r}")
    path = Path(row["source"].iloc[0])
    predictions = Path(report_dir) / model_label(model) / "predictions" / ROADS_FILE
    proposals = read_roads_csv(predictions)
    if image_id not in proposals:
        raise InputError(predictions, f"no roads of {image_id!r}: evaluate the model first")
    stretch = load_stretches(stretch_path).get(str(row["aoi"].iloc[0]))
    scene = load_scene(path, spacenet3.road_tile_at(path).geojson_path, stretch)
    scores = read_per_image(report_dir, model).set_index("image_id")
    return TileView(image_id, scene.rgb, graph_errors(tile_roads(path), proposals[image_id]),
                    tile_pixel_size(path), float(scores.loc[image_id, "apls"]))
