"""The book's answer (chapter 12): buildings and roads side by side, city by city.

Chapter 09 scores the building models with the SpaceNet 2 F1 and chapter 11 the road models
with the SpaceNet 3 APLS. :func:`building_result` and :func:`road_result` make (or reuse) the
same evaluations: the same runs, trained first when missing, and the same predictions, reused
when those chapters ran before. :func:`side_by_side` then lines up the same kinds of model for
both tasks, with the 2017 winners below as reference rows and the oracles kept apart (upper
bounds, never results).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aerialsam.book import road_models, studies
from aerialsam.config import AOIS, Profile
from aerialsam.evaluation import analysis
from aerialsam.evaluation.competition import CITY, COMPETITION, ROADS_COMPETITION
from aerialsam.evaluation.per_city import model_label
from aerialsam.training.runs import read_run

ZERO_SHOT = "SAM 2 zero-shot"
FINE_TUNED = "SAM 2 fine-tuned"
UNET = "U-Net"
WINNER = "2017 winner"
FAMILIES = (ZERO_SHOT, FINE_TUNED, UNET)
"""The kinds of model both tasks have, in the table's order."""

ORACLE = "sam2-oracle"
OVERALL = "overall"


@dataclass(frozen=True)
class TaskResult:
    """One task's evaluation: its summary (one row per model) and the models, in order.

    Attributes:
        task: ``buildings`` or ``roads``.
        metric: the summary's score column prefix, ``f1`` or ``apls``.
        summary: :func:`aerialsam.evaluation.per_city.evaluate`'s or
            :func:`aerialsam.evaluation.roads.evaluate_roads`'s summary.
        models: what was evaluated: run folders, ``sam2-auto``, ``sam2-oracle``.
        names: readable names by report label.
    """

    task: str
    metric: str
    summary: pd.DataFrame
    models: tuple[str, ...]
    names: dict[str, str]

    @property
    def column(self) -> str:
        """The task's heading in the tables: ``buildings (F1)`` or ``roads (APLS)``."""
        return f"{self.task} ({self.metric.upper()})"

    @property
    def winner(self) -> pd.Series:
        """The 2017 winner's published scores, by city and ``overall``."""
        board = COMPETITION if self.task == "buildings" else ROADS_COMPETITION
        return board.iloc[0].rename(board.index[0])

    def scores(self, model: str) -> pd.Series:
        """A model's score per city (``NaN``: nothing scored there) and overall."""
        row = self.summary.set_index("model").loc[model_label(model)]
        values = {CITY[a]: row.get(f"{self.metric}_{a}", np.nan) for a in AOIS}
        return pd.Series({**values, OVERALL: row[f"overall_{self.metric}"]}, dtype=float)


def building_result(cfg: Profile, data_dir: str | Path) -> TaskResult:
    """Chapter 09's headline evaluation (its runs trained first when missing)."""
    models = studies.headline_models(cfg, data_dir)
    summary = studies.evaluate_headline(cfg, data_dir, models)
    return TaskResult("buildings", "f1", summary, tuple(models),
                      analysis.model_names(models))


def road_result(cfg: Profile, data_dir: str | Path) -> TaskResult:
    """Chapter 11's evaluation (its runs trained first when missing)."""
    runs = {run: road_models.road_run(cfg, data_dir, run) for run in road_models.ROAD_RUNS}
    summary = road_models.evaluate(cfg, data_dir, runs)
    models = ("sam2-auto", *(str(path) for path in runs.values()), ORACLE)
    return TaskResult("roads", "apls", summary, models, road_models.model_names(models))


def family(model: str) -> str | None:
    """The kind of model a run folder or zero-shot name is; ``None`` for the oracle."""
    if model == ORACLE:
        return None
    if model == "sam2-auto":
        return ZERO_SHOT
    return FINE_TUNED if read_run(model)["config"].model == "sam2" else UNET


def picks(result: TaskResult) -> dict[str, str]:
    """The model standing for each family in a task: its best by overall score.

    A family with several models (the road U-Nets with and without clDice) is represented
    by its best; ties go to the first evaluated.
    """
    best: dict[str, str] = {}
    for model in result.models:
        kind = family(model)
        if kind is not None and (kind not in best or result.scores(model)[OVERALL]
                                 > result.scores(best[kind])[OVERALL]):
            best[kind] = model
    return best


def side_by_side(results: Sequence[TaskResult]) -> pd.DataFrame:
    """Score per city and overall of each kind of model, one column block per task.

    Rows: zero-shot SAM 2, fine-tuned SAM 2, the U-Net (each its best model in that task,
    :func:`picks`), then the 2017 winner of each task as a reference row (scored on the
    competition's own test set). A kind a task did not evaluate is left empty.
    """
    blocks = {}
    for result in results:
        chosen = picks(result)
        rows = {kind: result.scores(chosen[kind]) for kind in FAMILIES if kind in chosen}
        rows[WINNER] = result.winner.reindex([*(CITY[a] for a in AOIS), OVERALL])
        blocks[result.column] = pd.DataFrame(rows).T
    table = pd.concat(blocks, axis=1).reindex([*FAMILIES, WINNER])
    return table.rename_axis("model").astype(float).round(3)


def picked_models(results: Sequence[TaskResult]) -> pd.DataFrame:
    """Which model each cell of :func:`side_by_side` comes from, by kind and task."""
    table = {}
    for result in results:
        chosen = picks(result)
        names = {kind: result.names[model_label(model)] for kind, model in chosen.items()}
        names[WINNER] = str(result.winner.name)
        table[result.column] = names
    return pd.DataFrame(table).reindex([*FAMILIES, WINNER]).rename_axis("model").fillna("—")


def oracle_table(results: Sequence[TaskResult]) -> pd.DataFrame:
    """The oracles (SAM 2 prompted from the ground truth) per task: upper bounds, apart."""
    rows = {result.column: result.scores(ORACLE) for result in results
            if ORACLE in result.models}
    return pd.DataFrame(rows).T.rename_axis("oracle (UPPER BOUND)").round(3)


def answer(table: pd.DataFrame, synthetic: bool, random_sam: bool) -> str:
    """The answer read off :func:`side_by_side`, per task, with what it rests on (Markdown)."""
    lines = []
    for task in table.columns.levels[0]:
        block = table[task]
        sam, unet = block.loc[FINE_TUNED], block.loc[UNET]
        if sam.isna().all() or unet.isna().all():
            continue
        lead = FINE_TUNED if sam[OVERALL] > unet[OVERALL] else UNET
        verb = "beats" if lead == FINE_TUNED else "does not beat"
        cities = [c for c in block.columns if c != OVERALL
                  and np.isfinite(sam[c]) and np.isfinite(unet[c]) and sam[c] > unet[c]]
        where = f"ahead in {', '.join(cities)}" if cities else "ahead in no city"
        best = block.drop(index=WINNER)[OVERALL].max()
        lines.append(f"- **{task}**: fine-tuned SAM 2 {verb} the U-Net overall "
                     f"({sam[OVERALL]:.3f} against {unet[OVERALL]:.3f}; SAM 2 {where}); the "
                     f"best model here scores {best:.3f}, the 2017 winner "
                     f"{block.loc[WINNER, OVERALL]:.3f} on its own test set.")
    if synthetic:
        lines.append("- The tiles are **synthetic** and every run trained for minutes on a CPU: "
                     "these lines say the comparison runs end to end and how to read it, not "
                     "which model wins on real cities.")
    if random_sam:
        lines.append("- SAM 2 started from **random weights**: no pretrained encoder, which is "
                     "the whole argument for SAM 2. Its rows say nothing about the foundation "
                     "model.")
    return "\n".join(lines)
