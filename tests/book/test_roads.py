"""The roads chapter's helpers on the real SpaceNet 3 tile and on the synthetic cities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aerialsam import config
from aerialsam.book import roads
from aerialsam.errors import InputError

SAMPLE = Path(__file__).resolve().parents[2] / "book" / "samples" / "sn3_vegas_img0"


@pytest.fixture(scope="module")
def scene() -> roads.RoadScene:
    return roads.load_scene(SAMPLE / "RGB-PanSharpen_AOI_2_Vegas_img0.tif",
                            SAMPLE / "AOI_2_Vegas_img0.geojson")


def test_the_real_tile_and_its_38_roads(scene: roads.RoadScene) -> None:
    assert scene.image_id == "AOI_2_Vegas_img0"
    assert scene.rgb.shape == (1300, 1300, 3) and scene.rgb.dtype == np.uint8
    assert len(scene.lines) == 38
    table = roads.attribute_table(scene)
    assert table["lines"].sum() == 38
    # ground lengths: a 1300 px east-west road is ~316 m at Vegas, not 390 m
    assert 4.0 < table["km"].sum() < 5.0


def test_pixels_are_narrower_east_west_at_vegas(scene: roads.RoadScene) -> None:
    sizes = roads.pixel_size_table(scene)
    assert sizes["pixel north-south (m)"] == pytest.approx(0.300, abs=0.002)
    assert sizes["pixel east-west (m)"] == pytest.approx(0.243, abs=0.002)
    assert roads.xy_pixel_size(scene) == pytest.approx((0.243, 0.300), abs=0.002)


def test_busiest_window_holds_the_most_road(scene: roads.RoadScene) -> None:
    mask = roads.road_target(scene)
    row, col, side = roads.busiest_window(mask, 100)
    best = (mask[row:row + side, col:col + side] > 0).mean()
    assert best >= (mask[:100, :100] > 0).mean()
    assert best > 0.3


def test_stand_in_probability_is_made_from_the_truth_and_broken(scene: roads.RoadScene) -> None:
    mask = roads.road_target(scene)
    probability = roads.simulated_probability(mask, seed=0, breaks=6)
    assert probability.dtype == np.float32 and 0 <= probability.min() <= probability.max() <= 1
    assert probability[mask > 0].mean() > 0.7 > probability[mask == 0].mean()
    assert np.array_equal(probability, roads.simulated_probability(mask, seed=0, breaks=6))


def test_synthetic_cities_one_scene_each(tmp_path: Path) -> None:
    raw = roads.prepare_road_raw(config.load_profile("smoke"), tmp_path)
    assert sorted(roads.city_scenes(raw)) == ["Khartoum", "Las Vegas", "Paris", "Shanghai"]


def test_full_profile_without_downloaded_roads_says_how(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="download --dataset roads"):
        roads.prepare_road_raw(config.load_profile("full"), tmp_path)


def test_control_points_are_the_scorers_nodes() -> None:
    truth, _ = roads.worked_example()
    # one 260 px road (over 50/0.31 px): its ends and one control point halfway
    assert sorted(map(tuple, roads.control_points(truth[:1]).tolist())) == \
        [(40.0, 300.0), (170.0, 300.0), (300.0, 300.0)]
    # the crossing: 4 ends, the junction and a midpoint on each of the 4 arms
    assert len(roads.control_points(truth)) == 9
