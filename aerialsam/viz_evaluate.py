"""Tables, figures and error analysis of the per-city evaluation (book chapter 09).

The numbers come from :func:`aerialsam.evaluate.evaluate` (``reports/<name>/``); this module
turns them into the headline table (with the 2017 competition as reference rows), the
cross-city matrix, the input-size study, F1 by building size, the worst tiles of each city
and a count of merged buildings.

Definitions used in the error analysis:

- **F1 by building size**: true positives and missed buildings are binned by the area of
  the true building, false positives by the area of the false proposal; each bin's F1 is
  ``2 TP / (2 TP + FP + FN)``.
- **Merged buildings**: a proposal *merges* buildings when at least two true buildings of its
  tile each have half or more of their area inside it. Such a proposal can match at most one
  of them (usually none, its IoU with each being low): the others are false negatives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shapely
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler

from aerialsam import spacenet
from aerialsam.book_runs import ensure_run
from aerialsam.config import AOIS, Profile
from aerialsam.evaluate import ZeroShot, held_out, model_label
from aerialsam.metrics import ScoreResult, aoi_of, read_proposals_csv, score
from aerialsam.models.sam2 import pick_device
from aerialsam.runs import read_run
from aerialsam.stretch import Stretch
from aerialsam.train_book import book_overrides
from aerialsam.validate import truth_of
from aerialsam.viz import read_rgb
from aerialsam.viz_metric import COMPETITION, outcome_legend, plot_outcomes
from aerialsam.viz_predict import auto_settings

CITY = {"AOI_2_Vegas": "Las Vegas", "AOI_3_Paris": "Paris", "AOI_4_Shanghai": "Shanghai",
        "AOI_5_Khartoum": "Khartoum"}
"""Column names of the tables (the competition's)."""
CROSS_CITY_AOIS = {"smoke": ("AOI_3_Paris", "AOI_4_Shanghai")}
"""Cities of the cross-city matrix; profiles not listed use all four. In ``smoke`` the other
two cities' validation tiles hold no building, so a 2 x 2 matrix says as much, faster."""
CROSS_CITY_STEPS = {"smoke": 2, "demo": 60}
"""Training steps of each one-city U-Net; profiles not listed use their ``train_steps``."""
INPUT_SIZES = {"smoke": (128, 256), "demo": (128, 256, 512), "full": (256, 512, 1024)}
"""SAM 2 input sizes of the input-size study (the chip side equals the input side)."""
STUDY_AOIS = {"smoke": ("AOI_3_Paris",)}
"""Cities of the input-size study; profiles not listed use all four."""
AUTO_POINTS_PER_SIDE = {"smoke": 2}
"""Automatic-mask point grid of the evaluation, where it differs from chapter 06's: every
held-out tile of every city goes through the generator here, its slowest mode."""
SIZE_BINS = (20.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, np.inf)
"""Building area bins in px² (a SpaceNet 2 pixel is about 0.3 m x 0.25 m: 100 px² ≈ 7.5 m²)."""
SCORED_HERE = "tiles here"
"""The ``scored on`` value of this run's rows, after the split's name (``test tiles here``)."""
SCORED_2017 = "2017 test set"
"""The ``scored on`` value of the 2017 rows: the competition's own test set."""


def eval_split(cfg: Profile) -> str:
    """The split the book evaluates on: ``test``, or the profile's ``extra["eval_split"]``
    (``smoke`` has too few tiles for a test split)."""
    return str(cfg.extra.get("eval_split", "test"))


def zero_shot(cfg: Profile, image_size: int | None = None) -> ZeroShot:
    """How the profile runs zero-shot SAM 2 (its variant, weights, input size, point grid),
    on the profile's device resolved (``auto`` would put fine-tuned runs on the CPU)."""
    auto = auto_settings(cfg)
    points = AUTO_POINTS_PER_SIDE.get(cfg.name, auto.points_per_side)
    return ZeroShot(cfg.sam_variant, cfg.sam_checkpoint, image_size or cfg.sam_image_size,
                    dataclasses.replace(auto, points_per_side=points),
                    str(pick_device(cfg.device)))


def book_run(cfg: Profile, data_dir: str | Path, model: str, **changes: object) -> Path:
    """The run folder of the book's ``model`` run (chapters 07 and 08 train it with the same
    settings), trained first if unfinished; ``changes`` alter those settings."""
    return ensure_run(cfg, data_dir, **{**book_overrides(cfg, model), **changes})


def city_run(cfg: Profile, data_dir: str | Path, city: str) -> Path:
    """A U-Net trained on one city only (the book's settings, a short schedule, validated
    once at the end), trained first if unfinished."""
    steps = CROSS_CITY_STEPS.get(cfg.name, cfg.train_steps)
    return book_run(cfg, data_dir, "unet", name=f"unet_{city}", aois=(city,), steps=steps,
                    val_every=steps)


def model_names(models: Sequence[str]) -> dict[str, str]:
    """Readable row names of the evaluated models (report label -> name); run folders are
    named by their configuration's model and regime."""
    names = {"sam2-auto": "SAM 2 zero-shot (automatic masks)",
             "sam2-oracle": "SAM 2 + true boxes (ORACLE: upper bound)"}
    out = {}
    for model in models:
        label = model_label(model)
        if label in names:
            out[label] = names[label]
            continue
        config = read_run(model)["config"]
        out[label] = (f"U-Net ({label})" if config.model == "unet" else
                      f"fine-tuned SAM 2, {config.regime} ({label})")
    return out


def headline_table(summary: pd.DataFrame, names: Mapping[str, str],
                   split: str = "test") -> pd.DataFrame:
    """The book's answer: F1 per city, overall (mean of cities), precision, recall and speed
    of each model, with the 2017 winners below as reference rows."""
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


def show_headline(table: pd.DataFrame, split: str = "test") -> Styler:
    """The headline table as the book shows it: three decimals, a dash where nothing was
    published or measured, and the ``scored on`` column said once in the caption instead of
    on every row (the table must fit the page)."""
    numbers = table.columns.drop("scored on")
    return (table.style.format("{:.2f}", subset=["images/s"], na_rep="—")
            .format("{:.3f}", subset=numbers.drop("images/s"), na_rep="—")
            .hide(["scored on"], axis="columns").hide(axis="index", names=True)
            .set_caption("SpaceNet F1 (IoU > 0.5) per city; overall = mean of the cities. "
                         f"Models scored on this run's {split} tiles; 2017 rows: the "
                         "competition's winners, scored by the SpaceNet team on its own test "
                         "set (no precision, recall or speed published).")
            .set_table_attributes('class="dataframe"'))


def plot_headline(table: pd.DataFrame) -> Figure:
    """F1 per city of each evaluated model, with the 2017 winner's scores as black ticks."""
    cities = [CITY[a] for a in AOIS] + ["overall"]
    ours = table[~table.index.str.startswith("2017")]
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(1, len(ours))
    x = np.arange(len(cities))
    for i, (name, row) in enumerate(ours.iterrows()):
        values = row[cities].astype(float).fillna(0.0).to_numpy()
        ax.bar(x + (i - (len(ours) - 1) / 2) * width, values, width, label=name,
               hatch="//" if "ORACLE" in name else None, edgecolor="white")
    winner = table.loc["2017: XD_XD (1st)", cities].astype(float)
    ax.scatter(x, winner, marker="_", s=900, color="black", zorder=3,
               label="2017 winner XD_XD (its own test set)")
    ax.set_xticks(x, cities)
    ax.set_ylim(0, 1)
    ax.set_ylabel("SpaceNet F1 (IoU > 0.5)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


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


def cross_city_aois(cfg: Profile) -> tuple[str, ...]:
    """The cities of the profile's cross-city matrix."""
    return CROSS_CITY_AOIS.get(cfg.name, cfg.aois)


def cross_city_matrix(summaries: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """F1 of each one-city model (rows: trained on) on each city (columns: tested on),
    from one :func:`aerialsam.evaluate.evaluate` summary per training city."""
    rows = {}
    for trained, summary in summaries.items():
        row = summary.iloc[0]
        rows[CITY[trained]] = {CITY[a]: float(row.get(f"f1_{a}", np.nan))
                               for a in summaries}
    matrix = pd.DataFrame(rows).T
    return matrix.rename_axis(index="trained on", columns="tested on")


def plot_cross_city(matrix: pd.DataFrame, title: str) -> Figure:
    """The cross-city matrix as a heat map (diagonal: trained and tested on one city)."""
    side = 1.1 * len(matrix) + 2.5
    fig, ax = plt.subplots(figsize=(side, side - 1.0))
    image = ax.imshow(matrix.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(matrix.to_numpy(dtype=float)):
        text = "n/a" if np.isnan(value) else f"{value:.2f}"
        ax.text(j, i, text, ha="center", va="center",
                color="white" if np.isnan(value) or value < 0.5 else "black",
                fontweight="bold" if i == j else None)
    ax.set_xticks(range(len(matrix.columns)), matrix.columns)
    ax.set_yticks(range(len(matrix.index)), matrix.index)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="SpaceNet F1", shrink=0.8)
    fig.tight_layout()
    return fig


def size_study_table(summaries: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """F1 and seconds per tile of one model at several input sizes."""
    rows = {}
    for size, summary in summaries.items():
        row = summary.iloc[0]
        rows[size] = {"overall F1": row["overall_f1"], "precision": row["precision"],
                      "recall": row["recall"], "tiles": int(row["tiles"]),
                      "seconds per tile": row["seconds"] / row["tiles"]}
    return pd.DataFrame(rows).T.rename_axis("input px").astype({"tiles": int}).round(3)


def plot_size_study(table: pd.DataFrame, title: str) -> Figure:
    """F1 and seconds per tile against SAM 2's input size."""
    fig, (ax_f1, ax_time) = plt.subplots(1, 2, figsize=(9, 3.2))
    sizes = table.index.to_numpy()
    ax_f1.plot(sizes, table["overall F1"], marker="o")
    ax_f1.set_ylim(0, 1)
    ax_f1.set_ylabel("overall F1")
    ax_time.plot(sizes, table["seconds per tile"], marker="o", color="tab:red")
    ax_time.set_ylim(0, None)
    ax_time.set_ylabel("seconds per 650 px tile")
    for ax in (ax_f1, ax_time):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("SAM 2 input (= chip) side, px")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def load_result(report_dir: str | Path, model: str, splits_path: str | Path,
                split: str = "test", aois: Sequence[str] | None = None) -> ScoreResult:
    """Re-score one model of an evaluation report (its proposals against the held-out truth),
    keeping the matched / missed / false status of every polygon."""
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


def plot_f1_by_size(tables: Mapping[str, pd.DataFrame]) -> Figure:
    """F1 per building-area bin, one line per model."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for name, table in tables.items():
        ax.plot(table.index.astype(str), table["f1"], marker="o", label=name)
    ax.set_ylim(0, 1)
    ax.set_xlabel("building area, px² (true buildings for TP/FN, proposals for FP)")
    ax.set_ylabel("F1 in the bin")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def merged_buildings(result: ScoreResult, cover: float = 0.5) -> pd.DataFrame:
    """Per city: proposals, proposals that merge two or more buildings (each with at least
    ``cover`` of its area inside the proposal) and the buildings they swallow."""
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
    """The image ids of each city's lowest-F1 tiles among those with buildings (most missed
    buildings first among equal F1)."""
    images = result.per_image[result.per_image["tp"] + result.per_image["fn"] > 0]
    ordered = images.sort_values(["f1", "fn"], ascending=[True, False], kind="stable")
    return ordered.groupby("aoi", sort=False).head(per_city).sort_values("aoi")["image_id"].tolist()


def plot_worst_tiles(result: ScoreResult, image_ids: Sequence[str],
                     tiles: Mapping[str, spacenet.Tile], stretches: Mapping[str, Stretch],
                     title: str) -> Figure:
    """Matched, missed and false polygons over each of the tiles (see viz_metric's colours)."""
    count = max(1, len(image_ids))
    fig, axes = plt.subplots(1, count, figsize=(4.2 * count, 5.4), squeeze=False)
    for ax, image in zip(axes[0], image_ids, strict=False):
        tile = tiles[image]
        plot_outcomes(ax, result, image, read_rgb(tile, stretches[tile.aoi]))
    fig.suptitle(title, fontsize=11)
    outcome_legend(fig)
    fig.tight_layout(rect=(0, 0.07, 1, 0.93))
    return fig


def study_overlap(cfg: Profile, size: int) -> int:
    """Chip overlap at another chip side, in the profile's proportion (1/8 of the side)."""
    return size * cfg.chip_overlap // cfg.chip_size


def tiles_by_id(raw: str | Path) -> dict[str, spacenet.Tile]:
    """Every tile under a raw folder, by image id."""
    return {tile.image_id: tile for tile in spacenet.find_tiles(raw)}
