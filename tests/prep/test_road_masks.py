"""Road masks in metres: widths on non-square pixels, CSV = GeoJSON, targets, chips, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from pyproj import CRS

from aerialsam import cli
from aerialsam.data import demo, demo_roads, spacenet, spacenet3
from aerialsam.errors import InputError
from aerialsam.prep import chip_masks, chips, masks, road_masks

VEGAS = Affine(2.7e-6, 0, -115.2, 0, -2.7e-6, 36.2)
"""A SpaceNet pixel grid at Vegas latitude: 0.30 m north-south, 0.24 m east-west."""


def write_lines(path: Path, lines: list[list[tuple[float, float]]], crs: str | None = None,
                **props: object) -> Path:
    document: dict = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": dict(props),
         "geometry": {"type": "LineString", "coordinates": [list(p) for p in line]}}
        for line in lines]}
    if crs:
        document["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(document))
    return path


def geo(transform: Affine, col: float, row: float) -> tuple[float, float]:
    return transform * (col, row)


def cross(tmp_path: Path, grid: masks.Grid, crs: str | None = None, **props: object) -> Path:
    """A north-south road through column 100.5 and an east-west one through row 60.5."""
    t = grid.transform
    return write_lines(tmp_path / "cross.geojson",
                       [[geo(t, 100.5, -5), geo(t, 100.5, 205)],
                        [geo(t, -5, 60.5), geo(t, 205, 60.5)]], crs=crs, **props)


def widths(mask: np.ndarray) -> tuple[int, int]:
    """Road pixels across the N-S road (row 150) and across the E-W road (column 20)."""
    return int((mask[150] > 0).sum()), int((mask[:, 20] > 0).sum())


# ---- widths in metres ----------------------------------------------------------------------------

@pytest.mark.parametrize("radius", [2.0, 3.5])
def test_width_in_metres_on_degree_pixels_at_vegas_latitude(tmp_path: Path,
                                                            radius: float) -> None:
    grid = masks.Grid((200, 200), CRS.from_epsg(4326), VEGAS)
    labels = cross(tmp_path, grid)
    roads = road_masks.read_road_labels(labels, grid, params=road_masks.RoadParams(radius))
    east_west, north_south = spacenet.pixel_size_m(36.2)
    across_ns_road, across_ew_road = widths(road_masks.road_mask(roads, grid.shape, "road"))
    # The same 2 x radius metres are more pixels east-west (0.24 m) than north-south (0.30 m).
    assert abs(across_ns_road - 2 * radius / east_west) <= 1
    assert abs(across_ew_road - 2 * radius / north_south) <= 1
    assert across_ns_road > across_ew_road
    assert roads.pixel_m == pytest.approx((north_south, east_west), rel=0.005)


def test_width_in_metres_on_a_projected_grid(tmp_path: Path) -> None:
    grid = masks.Grid((200, 200), CRS.from_epsg(32611), Affine(0.3, 0, 660000, 0, -0.3, 4e6))
    labels = cross(tmp_path, grid, crs="EPSG:32611", lane_number="2")
    fixed = road_masks.read_road_labels(labels, grid)
    assert widths(road_masks.road_mask(fixed, grid.shape)) == (13, 13)  # 4 m / 0.3 m
    lanes = road_masks.read_road_labels(labels, grid, params=road_masks.RoadParams(
        lane_width_m=3.7))
    ns, ew = widths(road_masks.road_mask(lanes, grid.shape))
    assert abs(ns - 7.4 / 0.3) <= 1 and ns == ew
    assert fixed.pixel_m == pytest.approx((0.3, 0.3))


def test_labels_in_another_crs_are_buffered_the_same(tmp_path: Path) -> None:
    grid = masks.Grid((200, 200), CRS.from_epsg(4326), VEGAS)
    wgs84 = road_masks.read_road_labels(cross(tmp_path, grid), grid)
    frame = spacenet3.read_road_geojson(tmp_path / "cross.geojson").to_crs(3857)
    frame.to_file(tmp_path / "mercator.geojson", driver="GeoJSON")
    mercator = road_masks.read_road_labels(tmp_path / "mercator.geojson", grid)
    assert np.array_equal(road_masks.road_mask(wgs84, grid.shape),
                          road_masks.road_mask(mercator, grid.shape))


def test_per_lane_widths_fall_back_for_roads_without_lanes(tmp_path: Path) -> None:
    grid = masks.Grid((200, 200), CRS.from_epsg(32611), Affine(0.3, 0, 660000, 0, -0.3, 4e6))
    t = grid.transform
    path = tmp_path / "lanes.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": {
        "type": "name", "properties": {"name": "EPSG:32611"}}, "features": [
        {"type": "Feature", "properties": {"lane_number": "4"},
         "geometry": {"type": "LineString", "coordinates": [geo(t, 100.5, -5),
                                                            geo(t, 100.5, 205)]}},
        {"type": "Feature", "properties": {"lane_number": ""},
         "geometry": {"type": "LineString", "coordinates": [geo(t, -5, 60.5),
                                                            geo(t, 205, 60.5)]}}]}))
    roads = road_masks.read_road_labels(path, grid, params=road_masks.RoadParams(
        radius_m=1.5, lane_width_m=3.0))
    ns, ew = widths(road_masks.road_mask(roads, grid.shape))
    assert (abs(ns - 12 / 0.3) <= 1, abs(ew - 3 / 0.3) <= 1) == (True, True)


# ---- CSV, empty labels, the other targets ------------------------------------------------------

def test_real_csv_equals_real_geojson_on_the_same_tile(samples_dir: Path) -> None:
    folder = samples_dir / "sn3_roads"
    image = folder / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    grid = masks.read_grid(image)
    from_json = road_masks.read_road_labels(folder / "AOI_2_Vegas_img0.geojson", grid, image)
    from_csv = road_masks.read_road_labels(folder / "truth_AOI_2_Vegas_img0.csv", grid, image)
    road = road_masks.road_mask(from_json, grid.shape)
    assert 0.1 < (road > 0).mean() < 0.2
    # The CSV holds the same roads as deduplicated segments; float noise may flip a pixel.
    assert (road != road_masks.road_mask(from_csv, grid.shape)).sum() <= 5
    for kind in ("road_centerline", "road_distance"):
        assert np.array_equal(road_masks.road_mask(from_json, grid.shape, kind),
                              road_masks.road_mask(from_csv, grid.shape, kind)), kind


def test_csv_of_several_images_is_filtered_by_image_id(tmp_path: Path) -> None:
    grid = masks.Grid((100, 100), CRS.from_epsg(4326), VEGAS)
    path = tmp_path / "roads.csv"
    path.write_text('ImageId,WKT_Pix\nAOI_2_Vegas_img1,"LINESTRING (50.5 0, 50.5 100)"\n'
                    'AOI_2_Vegas_img2,"LINESTRING (0 50.5, 100 50.5)"\n'
                    'AOI_2_Vegas_img3,LINESTRING EMPTY\n')
    one = road_masks.read_road_labels(path, grid, "x_AOI_2_Vegas_PS-RGB_img1.tif")
    mask = road_masks.road_mask(one, grid.shape, "road_centerline")
    assert (mask[:, 50] == 255).all() and mask.sum() == 255 * 100
    empty = road_masks.read_road_labels(path, grid, "AOI_2_Vegas_img3.tif")
    assert not road_masks.road_mask(empty, grid.shape).any()
    with pytest.raises(InputError, match="holds 3 images and none matches"):
        road_masks.read_road_labels(path, grid, "AOI_2_Vegas_img9.tif")
    with pytest.raises(InputError, match="per-lane widths .* need labels with a lane_number"):
        road_masks.read_road_labels(path, grid, "AOI_2_Vegas_img1.tif",
                                    road_masks.RoadParams(lane_width_m=3.5))


def test_empty_labels_give_empty_masks_and_the_capped_distance(tmp_path: Path) -> None:
    grid = masks.Grid((50, 60), CRS.from_epsg(4326), VEGAS)
    roads = road_masks.read_road_labels(write_lines(tmp_path / "e.geojson", []), grid)
    for kind in ("road", "road_centerline"):
        mask = road_masks.road_mask(roads, grid.shape, kind)
        assert mask.dtype == np.uint8 and mask.shape == (50, 60) and not mask.any()
    distance = road_masks.road_mask(roads, grid.shape, "road_distance",
                                    road_masks.RoadParams(distance_cap_m=7))
    assert distance.dtype == np.float32 and (distance == 7).all()


def test_centre_line_and_distance_values_on_a_simple_case(tmp_path: Path) -> None:
    # 0.5 m pixels; a road along the middle of column 10, another along the middle of row 30.
    grid = masks.Grid((40, 40), CRS.from_epsg(32611), Affine(0.5, 0, 660000, 0, -0.5, 4e6))
    t = grid.transform
    labels = write_lines(tmp_path / "l.geojson", [[geo(t, 10.5, 0), geo(t, 10.5, 20)],
                                                  [geo(t, 25, 30.5), geo(t, 40, 30.5)]],
                         crs="EPSG:32611")
    roads = road_masks.read_road_labels(labels, grid)
    centre = road_masks.road_mask(roads, grid.shape, "road_centerline")
    assert set(np.unique(centre)) == {0, 255}
    assert np.array_equal(np.flatnonzero(centre[5]), [10])  # one pixel per row, all-touched
    assert (centre[:20, 10] == 255).all() and (centre[30, 25:] == 255).all()
    assert centre.sum() == 255 * (20 + 15)
    distance = road_masks.road_mask(roads, grid.shape, "road_distance",
                                    road_masks.RoadParams(distance_cap_m=5))
    assert distance[5, 10] == 0 and distance[5, 14] == pytest.approx(2.0)  # 4 px x 0.5 m
    assert distance[5, 0] == pytest.approx(5.0)  # 10 px = 5 m, the cap
    assert distance[35, 25] == pytest.approx(2.5) and distance.max() == 5.0
    assert distance[25, 10] == pytest.approx(3.0)  # 6 px below the last centre pixel (row 19)
    assert distance[22, 13] == pytest.approx(np.hypot(3, 3) * 0.5)


def test_distance_is_in_metres_on_non_square_pixels(tmp_path: Path) -> None:
    grid = masks.Grid((100, 100), CRS.from_epsg(4326), VEGAS)
    t = grid.transform
    labels = write_lines(tmp_path / "l.geojson", [[geo(t, 50.5, -1), geo(t, 50.5, 101)]])
    roads = road_masks.read_road_labels(labels, grid)
    distance = road_masks.road_mask(roads, grid.shape, "road_distance")
    east_west = spacenet.pixel_size_m(36.2)[0]
    assert distance[40, 60] == pytest.approx(10 * east_west, rel=0.005)


# ---- bad input ----------------------------------------------------------------------------------

def test_building_polygons_given_as_roads_are_refused(tmp_path: Path, samples_dir: Path) -> None:
    grid = masks.Grid((900, 900), CRS.from_epsg(32616), Affine.identity())
    buildings = samples_dir / "atlanta_solaris" / "geotiff_labels.geojson"
    with pytest.raises(InputError) as error:
        road_masks.read_road_labels(buildings, grid)
    assert error.value.source == str(buildings) and "expected road LineStrings" in str(error.value)
    assert "(feature 0)" in str(error.value)


def test_roads_need_a_georeferenced_image_and_labels_on_it(tmp_path: Path) -> None:
    labels = write_lines(tmp_path / "far.geojson", [[(2.25, 48.87), (2.26, 48.87)]])
    with pytest.raises(InputError, match="measured in metres: the image needs a CRS"):
        road_masks.read_road_labels(labels, masks.Grid((10, 10), None, Affine.identity()))
    with pytest.raises(InputError, match="none of the 1 road lines crosses the image"):
        road_masks.read_road_labels(labels, masks.Grid((10, 10), CRS.from_epsg(4326), VEGAS))
    with pytest.raises(InputError, match="--road-radius-m: must be a positive length"):
        road_masks.RoadParams(radius_m=0).check()
    with pytest.raises(InputError, match="unknown road mask kind"):
        road_masks.road_mask(road_masks.RoadLabels(np.empty(0, object), np.empty(0, object),
                                                   (1.0, 1.0)), (2, 2), "footprint")


@pytest.mark.parametrize(("params", "message"), [
    (road_masks.RoadParams(radius_m=1e300), "--road-radius-m: must be at most 100 m, got 1e+300"),
    (road_masks.RoadParams(radius_m=100.5), "--road-radius-m: must be at most 100 m, got 100.5"),
    (road_masks.RoadParams(lane_width_m=1e6), "--lane-width-m: must be at most 100 m, got 1e+06"),
    (road_masks.RoadParams(distance_cap_m=1e9),
     "--road-distance-cap-m: must be at most 1000 m, got 1e+09"),
    (road_masks.RoadParams(lane_width_m=float("nan")),
     "--lane-width-m: must be a positive length in metres, got nan"),
])
def test_road_lengths_beyond_any_road_are_refused(params: road_masks.RoadParams,
                                                  message: str) -> None:
    with pytest.raises(InputError) as caught:
        params.check()
    assert str(caught.value) == message


def test_the_largest_road_lengths_pass() -> None:
    road_masks.RoadParams(road_masks.MAX_ROAD_RADIUS_M, road_masks.MAX_ROAD_RADIUS_M,
                          road_masks.MAX_DISTANCE_CAP_M).check()


# ---- chips of a synthetic SpaceNet 3 AOI --------------------------------------------------------

@pytest.fixture(scope="module")
def road_chips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic Vegas road tile chipped at 512 px with 64 px overlap (9 chips)."""
    raw = tmp_path_factory.mktemp("raw")
    aoi_dir, = demo_roads.make_road_demo(raw, tiles_per_aoi=1, aois=["vegas"])
    out = tmp_path_factory.mktemp("chips")
    chips.chip_sources(aoi_dir, out, size=512, overlap=64)
    return out


def test_road_chip_masks_are_the_tile_masks_cut_at_each_chip(road_chips: Path,
                                                             tmp_path: Path) -> None:
    params = road_masks.RoadParams(radius_m=2.5, distance_cap_m=6)
    report = chip_masks.write_chip_masks(road_chips, tmp_path, kinds=road_masks.ROAD_KINDS,
                                         road_params=params)
    index = chips.read_index(road_chips / chips.INDEX_FILE)
    assert len(index) == 9 and report.written == 27 and not report.failures
    source = index["source"].iloc[0]
    grid = masks.read_grid(source)
    roads = road_masks.read_road_labels(chip_masks.spacenet3_labels(source), grid, source,
                                        params)
    for kind in road_masks.ROAD_KINDS:
        tile = road_masks.road_mask(roads, grid.shape, kind, params)
        assert tile.any()
        for _, row in index.iterrows():
            with rasterio.open(chip_masks.mask_path(tmp_path, row, kind)) as mask, \
                    rasterio.open(road_chips / row["path"]) as chip:
                assert mask.transform == chip.transform and mask.crs == chip.crs
                window = tile[row["row_off"]:row["row_off"] + 512,
                              row["col_off"]:row["col_off"] + 512]
                assert np.array_equal(mask.read(1), window), (kind, row["chip_id"])
    table = pd.read_csv(tmp_path / chip_masks.MASK_INDEX, keep_default_na=False)
    assert list(table.columns) == ["chip_id", "aoi", "image_id", "footprint", "boundary",
                                   "contact", "distance", *road_masks.ROAD_KINDS]
    assert (table["footprint"] == "").all() and all((tmp_path / p).exists() for p in table.road)
    assert json.loads((tmp_path / chip_masks.ROAD_PARAMS_FILE).read_text())["radius_m"] == 2.5
    assert not (tmp_path / chip_masks.PARAMS_FILE).exists()
    again = chip_masks.write_chip_masks(road_chips, tmp_path, kinds=["road"], road_params=params)
    assert (again.written, again.skipped) == (0, 9)
    with pytest.raises(InputError, match="holds road masks made with"):
        chip_masks.write_chip_masks(road_chips, tmp_path, kinds=["road"])


def test_masks_command_on_road_chips(road_chips: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "masks"
    assert cli.main(["masks", str(road_chips), str(out), "--kinds", "road"]) == 0
    assert "9 masks written" in capsys.readouterr().out
    table = pd.read_csv(out / chip_masks.MASK_INDEX, keep_default_na=False)
    assert len(table) == 9 and len(list((out / "road").rglob("*.tif"))) == 9
    assert list(table.columns[-1:]) == ["road"] and (table.aoi == "AOI_2_Vegas").all()
    for path in table.road:
        with rasterio.open(out / path) as mask:
            assert mask.dtypes == ("uint8",) and set(np.unique(mask.read(1))) <= {0, 255}


def test_road_kinds_on_building_tiles_fail_per_tile(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    raw = tmp_path / "raw"
    demo.make_demo(raw, tiles_per_aoi=1, aois=["vegas"])
    chips.chip_sources(raw, tmp_path / "chips", size=650, overlap=0)
    code = cli.main(["masks", str(tmp_path / "chips"), str(tmp_path / "m"), "--kinds", "road"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "not a SpaceNet 3 image name" in err[0] and len(err) == 2
    # Building masks of the same chips: masks.csv and masks.json exactly as before.
    assert cli.main(["masks", str(tmp_path / "chips"), str(tmp_path / "b")]) == 0
    header = (tmp_path / "b" / chip_masks.MASK_INDEX).read_text().splitlines()[0]
    assert header == "chip_id,aoi,image_id,footprint,boundary,contact,distance"
    assert json.loads((tmp_path / "b" / chip_masks.PARAMS_FILE).read_text()) == {
        "boundary_width": 3, "boundary_side": "inner", "contact_spacing": 10}
    assert not (tmp_path / "b" / chip_masks.ROAD_PARAMS_FILE).exists()
