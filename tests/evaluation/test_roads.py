"""Per-city road evaluation: APLS per city, pixel IoU, the oracle apart, wrong tasks refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import rasterio

from aerialsam.data.spacenet3 import road_tile_at
from aerialsam.errors import InputError
from aerialsam.evaluation.per_city import ZeroShot, evaluate, held_out
from aerialsam.evaluation.roads import ROAD_ORACLE_NOTE, evaluate_roads, road_pixel_iou
from aerialsam.inference.auto_masks import AutoSettings
from aerialsam.prep import chip_masks, road_masks
from aerialsam.prep.masks import read_grid
from aerialsam.prep.road_masks import RoadParams
from aerialsam.training import loop
from tests.training_helpers import fake_validation_row, tiny_config

RANDOM_SAM = ZeroShot(checkpoint="random", image_size=64, device="cpu",
                      auto=AutoSettings(points_per_side=2))


def _run(data: loop.TrainData, run_dir: Path, **overrides: object) -> Path:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "validation_row", fake_validation_row)
        loop.train(tiny_config(model="unet", steps=1, warmup_steps=1, **overrides), data,
                   run_dir)
    return run_dir


@pytest.fixture(scope="module")
def road_run(smoke_road_data: loop.TrainData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(smoke_road_data, tmp_path_factory.mktemp("eval") / "roads_unet", task="roads")


def test_road_models_are_scored_per_city_with_the_oracle_apart(
        road_run: Path, smoke_road_data: loop.TrainData, tmp_path: Path) -> None:
    summary = evaluate_roads([str(road_run), "sam2-oracle"], smoke_road_data.splits,
                             tmp_path / "report", split="test", zero_shot=RANDOM_SAM,
                             stretch_path=smoke_road_data.chips / "stretch.json")
    assert summary["model"].tolist() == ["roads_unet", "sam2-oracle"]
    assert {"apls_AOI_2_Vegas", "overall_apls", "pixel_iou", "images_per_s"} <= set(summary)
    assert summary["overall_apls"].between(0, 1).all()
    assert summary["note"].tolist() == ["", ROAD_ORACLE_NOTE]
    for name in ("roads_unet", "sam2-oracle"):
        assert (tmp_path / "report" / name / "predictions" / "roads.csv").exists()
        assert (tmp_path / "report" / name / "per_image.csv").exists()
    assert (tmp_path / "report" / "summary.json").exists()


def test_a_building_run_is_refused_on_roads_and_a_road_run_on_buildings(
        road_run: Path, smoke_road_data: loop.TrainData, smoke_train_data: loop.TrainData,
        tmp_path: Path) -> None:
    building_run = _run(smoke_train_data, tmp_path / "unet")
    with pytest.raises(InputError, match="trained for buildings, not roads"):
        evaluate_roads([str(building_run)], smoke_road_data.splits, tmp_path / "r1",
                       split="test", zero_shot=RANDOM_SAM)
    with pytest.raises(InputError, match="trained for roads, not buildings"):
        evaluate([str(road_run)], smoke_train_data.splits, tmp_path / "r2", split="val",
                 zero_shot=RANDOM_SAM)
    with pytest.raises(InputError, match="not a SpaceNet 3 road tile"):
        evaluate_roads(["sam2-auto"], smoke_train_data.splits, tmp_path / "r3", split="val",
                       zero_shot=RANDOM_SAM)


def test_pixel_iou_draws_the_truth_at_the_widths_the_masks_were_made_with(
        smoke_road_data: loop.TrainData, tmp_path: Path) -> None:
    wide = RoadParams(radius_m=4.0)
    source = held_out(smoke_road_data.splits, "test")[0]
    grid = read_grid(source.path)
    roads = road_masks.read_road_labels(road_tile_at(source.path).geojson_path, grid,
                                        source.path, wide)
    prob = tmp_path / "prob.tif"
    with rasterio.open(source.path) as src:
        profile = {**src.profile, "count": 1, "dtype": "float32"}
    with rasterio.open(prob, "w", **profile) as dst:  # a perfect model of the 4 m roads
        dst.write((road_masks.road_mask(roads, grid.shape, params=wide) > 0)
                  .astype("float32"), 1)
    probs = {source.image_id: prob}
    assert road_pixel_iou([source], probs, 0.5, wide) == pytest.approx(1.0)
    assert road_pixel_iou([source], probs, 0.5) < 0.8  # drawn 2 m wide: half of it is "false"
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / chip_masks.ROAD_PARAMS_FILE).write_text('{"radius_m": 4.0}')
    assert chip_masks.read_road_params(tmp_path / "masks") == wide
    assert chip_masks.read_road_params(tmp_path) == RoadParams()  # no file: the defaults


@pytest.mark.parametrize(("text", "problem"), [("[1, 2]", "JSON object"),
                                               ('{"radius_m": -1}', "positive length"),
                                               ('{"width": 3}', "width")])
def test_a_bad_road_params_file_is_one_line_naming_it(tmp_path: Path, text: str,
                                                      problem: str) -> None:
    (tmp_path / chip_masks.ROAD_PARAMS_FILE).write_text(text)
    with pytest.raises(InputError, match=problem) as caught:
        chip_masks.read_road_params(tmp_path)
    assert caught.value.source.endswith(chip_masks.ROAD_PARAMS_FILE)
