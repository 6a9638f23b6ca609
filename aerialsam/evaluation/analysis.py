"""The tables behind the book's results, computed from evaluation reports.

The headline table (with the 2017 competition as reference rows), the cross-city matrix, the
input-size study, F1 by building size, merged buildings, the worst tiles of each city,
per-city scores of a prediction folder, and rescoring one tile at another threshold (for the
browser). Figures of these tables are in :mod:`aerialsam.viz.results`.

Definitions used in the error analysis:

- **F1 by building size**: true positives and missed buildings are binned by the area of
  the true building, false positives by the area of the false proposal; each bin's F1 is
  ``2 TP / (2 TP + FP + FN)``.
- **Merged buildings**: a proposal *merges* buildings when at least two true buildings of its
  tile each have half or more of their area inside it. Such a proposal can match at most one
  of them (usually none, its IoU with each being low): the others are false negatives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from aerialsam.config import AOIS
from aerialsam.data import spacenet
from aerialsam.evaluation.competition import CITY, COMPETITION
from aerialsam.evaluation.per_city import held_out, model_label
from aerialsam.inference.prediction import (
    PredictReport,
    VectorizeOptions,
    output_paths,
    vectorize_raster,
)
from aerialsam.inference.vectorize import proposals_frame
from aerialsam.metrics import building_f1
from aerialsam.metrics.building_f1 import ScoreResult, aoi_of, read_proposals_csv, score
from aerialsam.prep.chips import Source
from aerialsam.training.kinds import kind_of
from aerialsam.training.runs import read_run
from aerialsam.training.validation import truth_of

SIZE_BINS = (20.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, np.inf)
"""Building area bins in px² (a SpaceNet 2 pixel is about 0.3 m x 0.25 m: 100 px² ≈ 7.5 m²)."""


SCORED_HERE = "tiles here"
"""The ``scored on`` value of this run's rows, after the split's name (``test tiles here``)."""


SCORED_2017 = "2017 test set"
"""The ``scored on`` value of the 2017 rows: the competition's own test set."""


def model_names(models: Sequence[str]) -> dict[str, str]:
    """Readable row names of the evaluated models (report label -> name).

    Run folders are named by their configuration's model and regime.
    """
    names = {"sam2-auto": "SAM 2 zero-shot (automatic masks)",
             "sam2-oracle": "SAM 2 + true boxes (ORACLE: upper bound)"}
    out = {}
    for model in models:
        label = model_label(model)
        if label in names:
            out[label] = names[label]
            continue
        config = read_run(model)["config"]
        out[label] = f"{kind_of(config).label(config)} ({label})"
    return out


def headline_table(summary: pd.DataFrame, names: Mapping[str, str],
                   split: str = "test") -> pd.DataFrame:
    """The book's answer: F1 per city, overall (mean of cities), precision, recall and speed.

    One row per model, with the 2017 winners below as reference rows.
    """
    rows = summary.set_index("model").rename(index=dict(names))
    table = pd.DataFrame(index=rows.index)
    for aoi in AOIS:
        table[CITY[aoi]] = rows.get(f"f1_{aoi}", np.nan)
    table["overall"] = rows["overall_f1"]
    table["precision"] = rows["precision"]
    table["recall"] = rows["recall"]
    table["images/s"] = rows["images_per_s"]
    table["scored on"] = f"{split} {SCORED_HERE}"
    reference = COMPETITION.rename(columns={"Las Vegas": CITY["AOI_2_Vegas"]})
    reference = reference.reindex(columns=table.columns).assign(**{"scored on": SCORED_2017})
    reference.index = [f"2017: {name}" for name in reference.index]
    return pd.concat([table, reference]).rename_axis("model").round(3)


def best_honest(summary: pd.DataFrame) -> str:
    """The report label of the best model by overall F1 that is not an oracle."""
    honest = summary[summary["note"].fillna("") == ""]
    return str(honest.sort_values("overall_f1", ascending=False, kind="stable")["model"].iloc[0])


def verdict(table: pd.DataFrame, synthetic: bool, random_sam: bool) -> str:
    """A few sentences (Markdown) read off the headline table: what it says and what not."""
    ours = table[~table.index.str.startswith("2017")]
    honest = ours[~ours.index.str.contains("ORACLE")]
    best, best_f1 = honest["overall"].idxmax(), honest["overall"].max()
    oracle = ours[ours.index.str.contains("ORACLE")]["overall"]
    lines = [f"- Best model without ground-truth help: **{best}**, overall F1 "
             f"**{best_f1:.3f}** (the 2017 winner scored 0.688 on its own test set)."]
    if len(oracle):
        lines.append(f"- The oracle (true boxes) reaches {oracle.iloc[0]:.3f}: an upper bound "
                     "for prompted SAM 2, not a result.")
    fastest = honest["images/s"].idxmax()
    lines.append(f"- Fastest: {fastest} at {honest.loc[fastest, 'images/s']:.2f} tiles per "
                 "second, on this machine.")
    if synthetic:
        lines.append("- These tiles are **synthetic**: the scores test the pipeline, not the "
                     "models on real cities, and are not comparable with the 2017 rows.")
    if random_sam:
        lines.append("- SAM 2 started from **random weights** here: its zero-shot rows are "
                     "meaningless, and its fine-tuned row was trained for minutes from those "
                     "random weights: not what fine-tuning the pretrained SAM 2 gives.")
    return "\n".join(lines)


def cross_city_matrix(summaries: Mapping[str, pd.DataFrame], metric: str = "f1"
                      ) -> pd.DataFrame:
    """The score of each one-city model (rows: trained on) on each city (columns: tested on).

    Built from one evaluation summary per training city
    (:func:`aerialsam.evaluation.per_city.evaluate`, ``metric`` ``f1``, or
    :func:`aerialsam.evaluation.roads.evaluate_roads`, ``apls``).
    """
    rows = {}
    for trained, summary in summaries.items():
        row = summary.iloc[0]
        rows[CITY[trained]] = {CITY[a]: float(row.get(f"{metric}_{a}", np.nan))
                               for a in summaries}
    matrix = pd.DataFrame(rows).T
    return matrix.rename_axis(index="trained on", columns="tested on")


def size_study_table(summaries: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """F1 and seconds per tile of one model at several input sizes."""
    rows = {}
    for size, summary in summaries.items():
        row = summary.iloc[0]
        rows[size] = {"overall F1": row["overall_f1"], "precision": row["precision"],
                      "recall": row["recall"], "tiles": int(row["tiles"]),
                      "seconds per tile": row["seconds"] / row["tiles"]}
    return pd.DataFrame(rows).T.rename_axis("input px").astype({"tiles": int}).round(3)


def load_result(report_dir: str | Path, model: str, splits_path: str | Path,
                split: str = "test", aois: Sequence[str] | None = None) -> ScoreResult:
    """Re-score one model of an evaluation report (its proposals against the held-out truth).

    The matched / missed / false status of every polygon is kept.
    """
    sources = held_out(splits_path, split, aois)
    proposals = Path(report_dir) / model_label(model) / "predictions" / "proposals.csv"
    return score(truth_of(sources), read_proposals_csv(proposals),
                 truth_image_ids=[s.image_id for s in sources])


def f1_by_size(result: ScoreResult, bins: Sequence[float] = SIZE_BINS) -> pd.DataFrame:
    """TP, FP, FN and F1 per building-area bin (see the module docstring)."""
    truth = result.truth[result.truth["status"] != "dropped"]
    props = result.proposals[result.proposals["status"] == "false"]
    labels = [f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">{lo:g}"
              for lo, hi in zip(bins[:-1], bins[1:], strict=True)]
    t_bin = pd.cut(truth["area"], bins, labels=labels, right=False)
    p_bin = pd.cut(props["area"], bins, labels=labels, right=False)
    table = pd.DataFrame({
        "tp": (truth["status"] == "matched").groupby(t_bin, observed=False).sum(),
        "fn": (truth["status"] == "missed").groupby(t_bin, observed=False).sum(),
        "fp": p_bin.value_counts().reindex(labels, fill_value=0)}).fillna(0).astype(int)
    denominator = 2 * table["tp"] + table["fp"] + table["fn"]
    table["f1"] = (2 * table["tp"] / denominator.where(denominator > 0)).round(3)
    return table.rename_axis("area px²")


def merged_buildings(result: ScoreResult, cover: float = 0.5) -> pd.DataFrame:
    """Per city: proposals, those that merge two or more buildings, and the buildings swallowed.

    A proposal merges a building when at least ``cover`` of the building's area is inside it.
    """
    truth = result.truth[result.truth["status"] != "dropped"]
    props = result.proposals[result.proposals["status"] != "dropped"]
    counts = np.zeros(len(props), dtype=int)
    position = {label: i for i, label in enumerate(props.index)}
    for image, p_group in props.groupby("image_id"):
        t_group = truth[truth["image_id"] == image]
        if t_group.empty:
            continue
        t_geoms = np.asarray(t_group.geometry.array)
        p_geoms = np.asarray(p_group.geometry.array)
        p_idx, t_idx = shapely.STRtree(t_geoms).query(p_geoms, predicate="intersects")
        inside = shapely.area(shapely.intersection(p_geoms[p_idx], t_geoms[t_idx]))
        covered = inside >= cover * shapely.area(t_geoms[t_idx])
        per_prop = np.bincount(p_idx[covered], minlength=len(p_geoms))
        for label, n in zip(p_group.index, per_prop, strict=True):
            counts[position[label]] = n
    frame = pd.DataFrame({"aoi": aoi_of(props["image_id"]).to_numpy(), "covered": counts})
    table = frame.groupby("aoi").agg(
        proposals=("covered", "size"),
        merging=("covered", lambda c: int((c >= 2).sum())),
        buildings_merged=("covered", lambda c: int(c[c >= 2].sum())))
    buildings = truth.groupby(aoi_of(truth["image_id"]).to_numpy()).size().rename("buildings")
    table = table.join(buildings, how="outer").fillna(0).astype(int)
    return table.rename(index=CITY).rename_axis("city")


def worst_tiles(result: ScoreResult, per_city: int = 1) -> list[str]:
    """The image ids of each city's lowest-F1 tiles among those with buildings.

    Among equal F1, the tiles with the most missed buildings come first.
    """
    images = result.per_image[result.per_image["tp"] + result.per_image["fn"] > 0]
    ordered = images.sort_values(["f1", "fn"], ascending=[True, False], kind="stable")
    return ordered.groupby("aoi", sort=False).head(per_city).sort_values("aoi")["image_id"].tolist()


def tile_truth(tiles: Sequence[spacenet.Tile]) -> gpd.GeoDataFrame:
    """The buildings of some tiles in pixel coordinates, with ``ImageId``, from their GeoJSON.

    The GeoJSON is present in both the summary-CSV and the per-tile download layouts.
    """
    frames = [spacenet.read_tile_labels(tile, pixel=True).assign(ImageId=tile.image_id)
              for tile in tiles if tile.geojson_path is not None]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry")


def score_run(report: PredictReport, tiles: Sequence[spacenet.Tile]) -> building_f1.ScoreResult:
    """Score a prediction folder's ``proposals.csv`` against the truth of the tiles it holds.

    Only the predicted tiles count as truth, so tiles the run skipped are not missed buildings.
    """
    predicted = set(report.image_ids)
    truth = tile_truth([t for t in tiles if t.image_id in predicted])
    proposals = building_f1.read_proposals_csv(report.proposals_path)
    return building_f1.score(truth, proposals, truth_image_ids=list(report.image_ids))


def city_table(results: dict[str, building_f1.ScoreResult]) -> pd.DataFrame:
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


@dataclass(frozen=True)
class BrowsedModel:
    """One evaluated model: its prediction folder and its (validation-tuned) threshold."""

    name: str
    predictions: Path
    threshold: float


def browsed_models(report_dir: str | Path, names: Mapping[str, str]) -> dict[str, BrowsedModel]:
    """The models of an evaluation report (report label -> readable name).

    Each comes with the threshold its predictions were vectorized at (from its
    ``predict.json``).
    """
    models = {}
    for label, name in names.items():
        folder = Path(report_dir) / model_label(label) / "predictions"
        params = json.loads((folder / "predict.json").read_text())
        models[name] = BrowsedModel(name, folder, float(params["vectorize"]["threshold"]))
    return models


def tile_result(model: BrowsedModel, tile: spacenet.Tile, threshold: float) -> ScoreResult:
    """Score one tile's polygons at ``threshold`` (from the model's probability map)."""
    polygons = vectorize_raster(output_paths(model.predictions, tile.image_id)["prob"],
                                VectorizeOptions(threshold=threshold))
    truth = truth_of([Source(tile.image_path, tile.aoi, tile.image_id)])
    return score(truth, proposals_frame({tile.image_id: polygons}),
                 truth_image_ids=[tile.image_id])
