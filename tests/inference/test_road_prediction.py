"""Road prediction: probabilities, road graph, SpaceNet 3 CSV of each tile, and their score.

A stand-in chip model that answers with a tile's true road mask checks the path from chips
to APLS: it must score near 1, and a tile without roads must come out as ``LINESTRING
EMPTY``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.windows import Window

from aerialsam.data import spacenet3
from aerialsam.inference import road_oracle
from aerialsam.inference.auto_masks import RoadFilter
from aerialsam.inference.prediction import TileOptions, predict_images
from aerialsam.inference.road_prediction import ROADS_FILE, RoadOutputs
from aerialsam.metrics.apls import read_roads_csv, score_roads
from aerialsam.prep import road_masks
from aerialsam.prep.chips import find_sources
from aerialsam.prep.masks import read_grid


class TruthChips:
    """A chip model answering each window with the tile's true road mask (0 or 1)."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask.astype(np.float32)

    def __call__(self, chips: np.ndarray, windows: Sequence[Window], flip=(False, False)):
        out = np.zeros(chips.shape[:3], np.float32)
        for i, w in enumerate(windows):
            part = self.mask[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width]
            out[i, :part.shape[0], :part.shape[1]] = part
        return out


def _truth_mask(path: Path) -> np.ndarray:
    tile = spacenet3.road_tile_at(path)
    grid = read_grid(path)
    return road_masks.road_mask(road_masks.read_road_labels(tile.geojson_path, grid, path),
                                grid.shape) > 0


@pytest.fixture(scope="module")
def vegas_tile(smoke_road_data_dir: Path) -> Path:
    return spacenet3.find_road_tiles(smoke_road_data_dir / "raw", "vegas")[0].image_path


def test_the_true_road_mask_predicts_roads_that_score_near_one(vegas_tile: Path,
                                                                tmp_path: Path) -> None:
    sources = find_sources(vegas_tile)
    model = TruthChips(_truth_mask(vegas_tile))
    report = predict_images(sources, tmp_path / "pred", lambda s, src: model, {"model": "truth"},
                            TileOptions(512, 64, 2), outputs=RoadOutputs())
    image = sources[0].image_id
    assert report.proposals_path.name == ROADS_FILE
    roads = gpd.read_file(tmp_path / "pred" / "roads" / f"{image}.gpkg")
    assert len(roads) > 0 and (roads["length_m"] > 0).all()
    assert roads.crs is not None
    truth = {image: road_oracle.tile_roads(vegas_tile)}
    result = score_roads(truth, read_roads_csv(report.proposals_path), workers=1)
    assert result.overall_apls > 0.85


def test_a_rerun_skips_finished_tiles_and_keeps_the_csv(vegas_tile: Path, tmp_path: Path) -> None:
    sources = find_sources(vegas_tile)
    model = TruthChips(_truth_mask(vegas_tile))
    args = (sources, tmp_path / "pred", lambda s, src: model, {"model": "truth"},
            TileOptions(512, 64, 2))
    predict_images(*args, outputs=RoadOutputs())
    first = (tmp_path / "pred" / ROADS_FILE).read_bytes()
    again = predict_images(*args, outputs=RoadOutputs())
    assert again.skipped == 1 and again.written == 0
    assert (tmp_path / "pred" / ROADS_FILE).read_bytes() == first


def test_a_tile_without_roads_gives_linestring_empty(vegas_tile: Path, tmp_path: Path) -> None:
    named = tmp_path / "myortho.tif"  # any GeoTIFF name: the image id is the file's stem
    shutil.copy(vegas_tile, named)
    zeros = TruthChips(np.zeros((1300, 1300), bool))
    report = predict_images(find_sources(named), tmp_path / "pred", lambda s, src: zeros,
                            {"model": "nothing"}, TileOptions(512, 64, 2),
                            outputs=RoadOutputs())
    table = pd.read_csv(report.proposals_path)
    assert table.to_dict("records") == [{"ImageId": "myortho", "WKT_Pix": "LINESTRING EMPTY"}]


def test_oracle_points_lie_on_the_true_roads_every_spacing(vegas_tile: Path) -> None:
    prompts = road_oracle.road_oracle_prompts(vegas_tile, spacing_m=20.0)
    mask = _truth_mask(vegas_tile)
    cols, rows = prompts.xy[:, 0].astype(int), prompts.xy[:, 1].astype(int)
    assert prompts.kind == "point" and len(prompts) > 10
    assert mask[rows, cols].mean() > 0.95
    with rasterio.open(vegas_tile) as src:
        assert src.width == 1300


def test_points_along_space_lines_evenly_and_give_short_lines_their_middle() -> None:
    points = road_oracle.points_along([shapely.LineString([(0, 0), (100, 0)]),
                                       shapely.LineString([(0, 10), (4, 10)])], 30.0)
    assert points.tolist() == [[20.0, 0.0], [50.0, 0.0], [80.0, 0.0], [2.0, 10.0]]


def test_points_along_are_spaced_on_the_ground_with_non_square_pixels() -> None:
    # pixels 0.5 m wide and 1 m tall: 100 px east is 50 m, 50 px north is 50 m
    east, north = shapely.LineString([(0, 0), (100, 0)]), shapely.LineString([(0, 0), (0, 50)])
    points = road_oracle.points_along([east, north], 20.0, (0.5, 1.0))
    # both 50 m long: two points each, 15 m and 35 m along
    assert points.tolist() == [[30.0, 0.0], [70.0, 0.0], [0.0, 15.0], [0.0, 35.0]]


def test_the_road_filter_keeps_long_narrow_masks_only() -> None:
    frame = pd.DataFrame({"area": [3000.0, 3000.0, 50.0, 300_000.0],
                          "width": [12.0, 60.0, 5.0, 20.0],
                          "length": [250.0, 50.0, 10.0, 15_000.0]})
    keep = RoadFilter().keep(frame, chip_area=512 * 512)
    assert keep.tolist() == [True, False, False, False]


def test_a_tile_without_roads_scores_by_the_official_rule(vegas_tile: Path,
                                                          tmp_path: Path) -> None:
    aoi_dir = tmp_path / spacenet3.aoi_dir_name("AOI_2_Vegas")
    image = spacenet3.image_path(aoi_dir, 7)
    labels = spacenet3.geojson_path(aoi_dir, 7)
    image.parent.mkdir(parents=True)
    labels.parent.mkdir(parents=True)
    shutil.copy(vegas_tile, image)
    labels.write_text('{"type": "FeatureCollection", "features": []}')
    assert road_oracle.tile_roads(image) == []
    assert len(road_oracle.road_oracle_prompts(image)) == 0
    truth = {"AOI_2_Vegas_img7": []}
    assert score_roads(truth, {"AOI_2_Vegas_img7": []}, workers=1).overall_apls == 1.0
    found = {"AOI_2_Vegas_img7": [np.array([[10.0, 10.0], [200.0, 10.0]])]}
    assert score_roads(truth, found, workers=1).overall_apls == 0.0
