"""The final chapter's side-by-side table: kinds of model per task, winners, oracles apart.

Summaries are shaped like ``per_city.evaluate``'s and ``evaluate_roads``'s; the runs are
run folders holding only their ``run.json``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aerialsam import config
from aerialsam.book import answer
from aerialsam.training import runs
from aerialsam.training.train_config import from_profile


def _run(root: Path, name: str, model: str, task: str) -> str:
    folder = root / name
    folder.mkdir()
    run_config = from_profile(config.load_profile("smoke"), model=model, task=task, name=name)
    runs.write_run_json(folder, run_config, step=run_config.steps, metrics={})
    return str(folder)


def _result(task: str, metric: str, models: list[str], scores: list[list[float]]
            ) -> answer.TaskResult:
    """A task whose models scored ``scores`` (Vegas, Paris; overall is their mean)."""
    values = np.array(scores, dtype=float)
    summary = pd.DataFrame({"model": [Path(m).name for m in models],
                            f"{metric}_AOI_2_Vegas": values[:, 0],
                            f"{metric}_AOI_3_Paris": values[:, 1],
                            f"overall_{metric}": np.nanmean(values, axis=1)})
    names = {Path(m).name: f"{task} {Path(m).name}" for m in models}
    return answer.TaskResult(task, metric, summary, tuple(models), names)


@pytest.fixture
def results(tmp_path: Path) -> list[answer.TaskResult]:
    sam = _run(tmp_path, "book_sam2", "sam2", "buildings")
    unet = _run(tmp_path, "book_unet", "unet", "buildings")
    road_sam = _run(tmp_path, "road_sam2", "sam2", "roads")
    plain = _run(tmp_path, "road_unet", "unet", "roads")
    cldice = _run(tmp_path, "road_unet_cldice", "unet", "roads")
    buildings = _result("buildings", "f1", ["sam2-auto", "sam2-oracle", sam, unet],
                        [[0.0, 0.0], [0.9, 0.7], [0.6, 0.2], [0.3, 0.5]])
    roads = _result("roads", "apls", ["sam2-auto", road_sam, plain, cldice, "sam2-oracle"],
                    [[0.0, 0.1], [0.2, 0.2], [0.4, np.nan], [0.6, 0.4], [0.8, 0.6]])
    return [buildings, roads]


def test_each_kind_stands_with_its_best_model_and_the_winners_below(
        results: list[answer.TaskResult]) -> None:
    table = answer.side_by_side(results)
    assert table.index.tolist() == [*answer.FAMILIES, answer.WINNER]
    buildings, roads = table["buildings (F1)"], table["roads (APLS)"]
    assert buildings.loc[answer.FINE_TUNED, "overall"] == 0.4
    assert buildings.loc[answer.UNET, "Paris"] == 0.5
    # the U-Net with clDice (overall 0.5) stands for the U-Nets, not the plain one (0.4)
    assert roads.loc[answer.UNET, "Paris"] == 0.4
    assert (roads.loc[answer.WINNER, "overall"], buildings.loc[answer.WINNER, "Las Vegas"]) \
        == (0.666, 0.885)
    assert pd.isna(roads.loc[answer.ZERO_SHOT, "Shanghai"])  # not scored there
    assert 0.8 not in roads.to_numpy()  # the oracle bounds, it does not compete


def test_ties_go_to_the_first_model_evaluated(results: list[answer.TaskResult]) -> None:
    assert Path(answer.picks(results[1])[answer.UNET]).name == "road_unet_cldice"
    summary = results[1].summary.copy()
    summary.loc[summary["model"] == "road_unet_cldice", "overall_apls"] = 0.4
    tied = dataclasses.replace(results[1], summary=summary)
    assert Path(answer.picks(tied)[answer.UNET]).name == "road_unet"
    picked = answer.picked_models([results[0], tied])
    assert picked.loc[answer.UNET, "roads (APLS)"] == "roads road_unet"
    assert picked.loc[answer.WINNER, "roads (APLS)"] == "albu (1st)"
    assert picked.loc[answer.FINE_TUNED, "buildings (F1)"] == "buildings book_sam2"


def test_the_oracles_stand_apart_per_task(results: list[answer.TaskResult]) -> None:
    oracle = answer.oracle_table(results)
    assert oracle.index.tolist() == ["buildings (F1)", "roads (APLS)"]
    assert oracle.loc["roads (APLS)", "overall"] == 0.7
    assert oracle.loc["buildings (F1)", "Las Vegas"] == 0.9


def test_the_answer_says_who_leads_where_and_what_it_rests_on(
        results: list[answer.TaskResult]) -> None:
    text = answer.answer(answer.side_by_side(results), synthetic=True, random_sam=True)
    lines = text.splitlines()
    assert lines[0].startswith("- **buildings (F1)**: fine-tuned SAM 2 does not beat the U-Net")
    assert "SAM 2 ahead in Las Vegas" in lines[0] and "0.688" in lines[0]
    assert "does not beat" in lines[1] and "ahead in no city" in lines[1]
    assert "synthetic" in text and "random weights" in text
    assert "synthetic" not in answer.answer(answer.side_by_side(results), False, False)
