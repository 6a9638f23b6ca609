"""The road models chapter's helpers: its runs and its tables.

The tables are built from summaries shaped like ``evaluate_roads``'s; the split table reads
the smoke road data of Vegas.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import shapely

from aerialsam import config
from aerialsam.book import road_models
from aerialsam.errors import InputError
from aerialsam.evaluation.roads import ROAD_ORACLE_NOTE
from aerialsam.training import loop, runs
from aerialsam.training.train_config import from_profile

LINE = shapely.LineString


@pytest.mark.parametrize("profile", ["smoke", "demo", "full"])
def test_every_run_of_every_profile_is_a_valid_road_configuration(profile: str) -> None:
    cfg = config.load_profile(profile)
    made = {run: from_profile(cfg, **road_models.run_overrides(cfg, run))
            for run in road_models.ROAD_RUNS}
    assert {c.task for c in made.values()} == {"roads"}
    assert made["sam2"].model == "sam2" and made["sam2"].regime == "decoder"
    plain, topo = (dataclasses.asdict(made[r]) for r in ("unet", "unet_cldice"))
    # the clDice run differs from the plain U-Net in its loss term and its name only
    assert {k for k in plain if plain[k] != topo[k]} == {"name", "cldice_weight"}
    assert topo["cldice_weight"] > 0 == plain["cldice_weight"]
    assert len({c.run_name for c in made.values()}) == 3


def test_demo_runs_validate_once_at_the_end_and_full_runs_as_the_profile_trains() -> None:
    demo = road_models.run_overrides(config.load_profile("demo"), "unet")
    assert demo["val_every"] == demo["steps"] == config.load_profile("demo").book.roads.unet_steps
    full = road_models.run_overrides(config.load_profile("full"), "sam2")
    assert full["steps"] == config.load_profile("full").train_steps
    assert full["val_every"] == 1000 and "image_size" not in full


def test_unknown_runs_are_refused_and_any_profile_has_road_settings() -> None:
    with pytest.raises(InputError, match="unknown road run"):
        road_models.run_overrides(config.load_profile("smoke"), "resnet")
    other = dataclasses.replace(config.load_profile("demo"), name="laptop")
    assert road_models.chapter_settings(other) == config.load_profile("demo").book.roads


def _summary() -> pd.DataFrame:
    """A summary as ``evaluate_roads`` writes it: zero-shot, one run, the oracle."""
    return pd.DataFrame({
        "model": ["sam2-auto", "book_roads_unet", "sam2-oracle"],
        "apls_AOI_2_Vegas": [0.0, 0.4, 0.9], "apls_AOI_3_Paris": [0.0, 0.2, 0.7],
        "overall_apls": [0.0, 0.3, 0.8], "pixel_iou": [0.01, 0.3, 0.5], "tiles": [2, 2, 2],
        "seconds": [4.0, 1.0, 2.0], "images_per_s": [0.5, 2.0, 1.0],
        "note": ["", "", ROAD_ORACLE_NOTE]})


def test_the_apls_table_keeps_the_oracle_apart_and_the_2017_rows_as_reference() -> None:
    names = {"sam2-auto": "zero-shot", "book_roads_unet": "U-Net",
             "sam2-oracle": "ORACLE"}
    table = road_models.apls_table(_summary(), names)
    assert table.index.tolist()[:2] == ["zero-shot", "U-Net"]
    assert "ORACLE" not in table.index
    assert list(table.columns) == ["Las Vegas", "Paris", "overall", "pixel IoU", "tiles/s",
                                   "scored on"]  # only the cities scored here
    albu = table.loc["2017: albu (1st)"]
    assert (albu["Las Vegas"], albu["Paris"], albu["overall"]) == (0.798, 0.604, 0.666)
    assert pd.isna(albu["pixel IoU"]) and albu["scored on"] == road_models.SCORED_2017
    assert table.loc["U-Net", "scored on"] == "test tiles here"
    oracle = road_models.apls_table(_summary(), names, oracle=True)
    assert oracle.index.tolist() == ["ORACLE"] and oracle.loc["ORACLE", "overall"] == 0.8


def test_the_verdict_names_the_best_honest_model_and_the_caveats() -> None:
    names = {"sam2-auto": "zero-shot", "book_roads_unet": "U-Net", "sam2-oracle": "ORACLE"}
    table = road_models.apls_table(_summary(), names)
    oracle = road_models.apls_table(_summary(), names, oracle=True)
    text = road_models.verdict(table, oracle, synthetic=True, random_sam=True)
    assert "**U-Net**, overall APLS **0.300**" in text and "0.666" in text
    assert "upper bound" in text and "synthetic" in text and "random weights" in text
    assert "synthetic" not in road_models.verdict(table, oracle, False, False)


def test_best_model_and_example_tile_break_ties_by_order() -> None:
    summary = _summary().assign(overall_apls=[0.3, 0.3, 0.9])
    assert road_models.best_model(summary, ["book_roads_unet", "sam2-auto"]) == \
        "book_roads_unet"
    per_image = pd.DataFrame({"image_id": ["AOI_3_Paris_img1", "AOI_2_Vegas_img2",
                                           "AOI_2_Vegas_img1"], "apls": [0.5, 0.7, 0.7]})
    assert road_models.example_tile(per_image) == "AOI_2_Vegas_img1"
    with pytest.raises(InputError, match="no scored tile"):
        road_models.example_tile(per_image.iloc[:0])


def _run(folder: Path, cldice: float, val_apls: float) -> Path:
    cfg = config.load_profile("smoke")
    overrides = road_models.run_overrides(cfg, "unet_cldice" if cldice else "unet")
    run_config = from_profile(cfg, **{**overrides, "cldice_weight": cldice})
    folder.mkdir()
    runs.write_run_json(folder, run_config, step=run_config.steps,
                        metrics={"val_apls": val_apls},
                        road_graph={"threshold": 0.5, "gap_m": 6.0})
    return folder


def test_cldice_comparison_reports_both_runs_and_their_difference(tmp_path: Path) -> None:
    plain = _run(tmp_path / "book_roads_unet", 0.0, 0.25)
    topo = _run(tmp_path / "book_roads_unet_cldice", 0.5, 0.5)
    summary = pd.DataFrame({"model": [plain.name, topo.name], "overall_apls": [0.2, 0.1],
                            "pixel_iou": [0.3, 0.35], "note": ["", ""]})
    names = road_models.model_names([str(plain), str(topo), "sam2-auto"])
    assert names[plain.name] == "U-Net, 4 steps"
    assert names[topo.name] == "U-Net + clDice (0.5), 4 steps"
    table = road_models.cldice_comparison({"plain": plain, "clDice": topo}, summary)
    assert table.loc["clDice - plain", "val APLS"] == 0.25
    assert table.loc["clDice - plain", "test APLS"] == -0.1
    assert table.loc["clDice - plain", "test pixel IoU"] == 0.05
    assert pd.isna(table.loc["clDice - plain", "steps"])
    assert table.loc["clDice", "clDice weight"] == 0.5
    assert pd.isna(table.loc["clDice", "train seconds"])  # no metrics.csv in these folders


def test_the_split_table_measures_the_road_of_each_split(smoke_road_data: loop.TrainData
                                                         ) -> None:
    table = road_models.split_table(smoke_road_data.splits)
    assert table.index.tolist() == ["Las Vegas"]
    assert [table[(s, "tiles")].iloc[0] for s in ("train", "val", "test")] == [1, 1, 1]
    for split in ("train", "val", "test"):
        empty = table[(split, "without roads")].iloc[0] == 1
        assert empty == (table[(split, "road km")].iloc[0] == 0)
    assert table[("test", "road km")].iloc[0] > 1.0  # a 1300 px tile holds km of road


def test_split_warnings_name_the_cities_without_roads_to_learn_or_validate() -> None:
    columns = pd.MultiIndex.from_product([["train", "val"], ["tiles", "road km"]])
    table = pd.DataFrame([[1, 0.0, 1, 2.0], [1, 3.0, 1, 0.0], [1, 1.0, 1, 1.0]],
                         index=["Paris", "Las Vegas", "Shanghai"], columns=columns)
    text = road_models.split_warnings(table).splitlines()
    assert text == ["- Paris: train on no road of their own.",
                    "- Las Vegas: validate on tiles without roads, where drawing nothing "
                    "scores APLS 1."]
    assert "Every city" in road_models.split_warnings(table.iloc[2:])
