"""Box and point prompts: map or pixel coordinates, any CRS, per-chip clipping, flips, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.windows import Window

from aerialsam.data import spacenet
from aerialsam.errors import InputError
from aerialsam.inference.prompts import (
    MIN_BOX_SIDE,
    Prompts,
    oracle_prompts,
    raster_prompts,
    read_prompt_file,
    require_prompts,
)


@pytest.fixture(scope="module")
def grid(tile: spacenet.Tile) -> dict:
    """The tile's grid as :func:`raster_prompts` takes it."""
    with rasterio.open(tile.image_path) as src:
        return {"transform": src.transform, "crs": src.crs, "width": src.width,
                "height": src.height}


def test_boxes_from_another_crs_equal_the_pixel_boxes(tile: spacenet.Tile, grid: dict) -> None:
    pixel = spacenet.read_tile_labels(tile, pixel=True)
    mercator = spacenet.read_geojson(tile.geojson_path).to_crs("EPSG:3857")
    assert len(pixel) > 3
    from_mercator = raster_prompts(mercator, "box", **grid)
    from_pixels = raster_prompts(pixel, "box", **grid)
    assert from_mercator.kind == "box" and from_mercator.xy.shape == (len(pixel), 4)
    np.testing.assert_allclose(from_mercator.xy, from_pixels.xy, atol=1e-3)
    np.testing.assert_allclose(from_pixels.xy, shapely.bounds(np.asarray(pixel.geometry.array)),
                               atol=1e-4)
    # The summary CSV's PolygonWKT_Pix is an independent record of the same buildings.
    truth = spacenet.read_summary_csv(spacenet.summary_csv_path(tile.image_path.parents[1]))
    truth = truth[truth["ImageId"] == tile.image_id]
    np.testing.assert_allclose(np.sort(from_mercator.xy, axis=0),
                               np.sort(shapely.bounds(np.asarray(truth.geometry.array)), axis=0),
                               atol=1e-3)


def test_points_lie_inside_their_polygons(tile: spacenet.Tile, grid: dict) -> None:
    mercator = spacenet.read_geojson(tile.geojson_path).to_crs("EPSG:3857")
    points = raster_prompts(mercator, "point", **grid)
    pixel = np.asarray(spacenet.read_tile_labels(tile, pixel=True).geometry.array)
    assert points.xy.shape == (len(pixel), 2)
    inside = shapely.contains(shapely.buffer(pixel, 1e-6), shapely.points(points.xy))
    assert inside.all()


def test_point_geometries_in_point_mode(grid: dict) -> None:
    frame = gpd.GeoDataFrame(geometry=[shapely.Point(10.5, 20.25), shapely.Point(600, 5)])
    prompts = raster_prompts(frame, "point", **grid)
    np.testing.assert_array_equal(prompts.xy, [[10.5, 20.25], [600, 5]])


def test_prompts_off_the_raster_are_left_out(grid: dict) -> None:
    frame = gpd.GeoDataFrame(geometry=[shapely.box(10, 10, 40, 30),
                                       shapely.box(700, 10, 760, 40),  # right of the tile
                                       shapely.box(640, 640, 700, 700)])  # over its corner
    prompts = raster_prompts(frame, "box", **grid)
    np.testing.assert_array_equal(prompts.xy, [[10, 10, 40, 30], [640, 640, 700, 700]])


def test_boxes_cut_to_chip_windows() -> None:
    prompts = Prompts("box", [[10, 10, 50, 50],     # crosses the chip's left edge
                              [100, 100, 101, 150],  # 1 px wide: a sliver
                              [41, 5, 60, 20],       # inside
                              [103, 0, 200, 30],     # 1 px of it on the chip
                              [102, 0, 200, 30],     # 2 px of it on the chip
                              [0, 70, 30, 90]])      # below the chip
    local = prompts.in_chip(Window(40, 0, 64, 64))
    assert MIN_BOX_SIDE == 2.0
    np.testing.assert_array_equal(local, [[0, 10, 10, 50], [1, 5, 20, 20], [62, 0, 64, 30]])
    assert local.dtype == np.float32


def test_box_flips() -> None:
    prompts = Prompts("box", [[10, 20, 30, 60]])
    window = Window(0, 0, 100, 80)
    np.testing.assert_array_equal(prompts.in_chip(window), [[10, 20, 30, 60]])
    np.testing.assert_array_equal(prompts.in_chip(window, (True, False)), [[70, 20, 90, 60]])
    np.testing.assert_array_equal(prompts.in_chip(window, (False, True)), [[10, 20, 30, 60]])
    np.testing.assert_array_equal(prompts.in_chip(Window(0, 0, 100, 100), (False, True)),
                                  [[10, 40, 30, 80]])
    np.testing.assert_array_equal(prompts.in_chip(window, (True, True)), [[70, 20, 90, 60]])


def test_points_in_chips_and_flips() -> None:
    prompts = Prompts("point", [[5, 5], [70.5, 10], [130, 20], [90, 99]])
    window = Window(64, 0, 64, 64)
    np.testing.assert_array_equal(prompts.in_chip(window), [[6.5, 10]])
    np.testing.assert_array_equal(prompts.in_chip(window, (True, False)), [[57.5, 10]])
    np.testing.assert_array_equal(prompts.in_chip(window, (False, True)), [[6.5, 54]])
    assert prompts.in_chip(Window(200, 200, 64, 64)).shape == (0, 2)


def test_prompts_validate_their_kind() -> None:
    assert len(Prompts("point", np.zeros((0, 2)))) == 0
    assert Prompts("box", [1, 2, 3, 4]).xy.shape == (1, 4)
    with pytest.raises(ValueError, match="unknown prompt kind 'circle'"):
        Prompts("circle", [[1, 2]])


def test_points_refused_in_box_mode(grid: dict) -> None:
    frame = gpd.GeoDataFrame(geometry=[shapely.Point(3, 4), shapely.box(0, 0, 9, 9)])
    with pytest.raises(InputError) as info:
        raster_prompts(frame, "box", source="clicks.geojson", **grid)
    assert str(info.value) == ("clicks.geojson: 1 prompts are points; box mode needs polygons "
                               "or boxes (use --mode point)")


def test_unknown_mode_refused(grid: dict) -> None:
    frame = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 9, 9)])
    with pytest.raises(InputError, match="prompts need mode box or point, got 'auto'"):
        raster_prompts(frame, "auto", **grid)


def test_map_prompts_for_a_raster_without_crs(grid: dict) -> None:
    frame = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 9, 9)], crs="EPSG:4326")
    with pytest.raises(InputError, match="map coordinates but the image has no CRS"):
        raster_prompts(frame, "box", **{**grid, "crs": None})


def test_empty_prompt_file_refused(tmp_path: Path, grid: dict) -> None:
    empty = tmp_path / "empty.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(InputError) as info:
        read_prompt_file(empty)
    assert str(info.value) == f"{empty}: holds no prompt geometries (an empty prompt list)"
    with pytest.raises(InputError, match="an empty prompt list"):
        raster_prompts(gpd.GeoDataFrame(geometry=[]), "box", source=empty, **grid)


def test_prompt_file_not_found_or_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="prompt file not found"):
        read_prompt_file(tmp_path / "missing.geojson")
    bad = tmp_path / "bad.geojson"
    bad.write_text("this is not GeoJSON")
    with pytest.raises(InputError) as info:
        read_prompt_file(bad)
    assert str(info.value).startswith(f"{bad}: not valid GeoJSON (line 1, column 1")
    other = tmp_path / "bad.gpkg"
    other.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError) as info:
        read_prompt_file(other)
    assert str(info.value).startswith(f"{other}: not a readable vector file")


def _polygon_file(path: Path, ring: list) -> Path:
    feature = {"type": "Feature", "properties": {},
               "geometry": {"type": "Polygon", "coordinates": [ring]}}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return path


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("binary.geojson", bytes(range(256)), "not UTF-8 text: NUL byte at byte offset 0"),
    ("latin1.geojson", '{"type": "FeatureCollection", "name": "Café"}'.encode("latin-1"),
     "not UTF-8 text: byte 0xe9"),
    ("cut.geojson", b'{"type": "FeatureCollection", "feat', "not valid GeoJSON (line 1"),
    ("deep.geojson", b"[" * 20000 + b"]" * 20000, "not valid GeoJSON: nested too deeply"),
    ("list.geojson", b"[1, 2]", "not a GeoJSON FeatureCollection"),
    ("table.csv", b"a,b\n1,2\n", "holds no geometries (a table without a geometry column)"),
])
def test_a_binary_or_malformed_prompt_file_is_one_line(tmp_path: Path, name: str,
                                                        content: bytes, problem: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_prompt_file(path)
    assert str(info.value).startswith(f"{path}: {problem}")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("ring", "problem"), [
    ([[0, 0], [9, 0], [9, 9], [0, 9]], "feature 0: ring 0: ring not closed"),
    ([[float("nan"), 0], [9, 0], [9, 9], [0, 0]], "feature 0: ring 0: position 0: non-finite"),
    ([[1e300, 0], [9, 0], [9, 9], [1e300, 0]], "feature 0: ring 0: position 0: coordinate"),
])
def test_malformed_prompt_geometries_are_refused_before_gdal(tmp_path: Path, ring: list,
                                                             problem: str) -> None:
    path = _polygon_file(tmp_path / "prompts.geojson", ring)
    with pytest.raises(InputError) as info:
        read_prompt_file(path)
    assert str(info.value).startswith(f"{path}: {problem}")


def test_prompt_coordinates_of_other_formats_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "prompts.gpkg"
    frame = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 9, 9), shapely.box(0, 0, 1e300, 9)],
                             crs="EPSG:32611")
    frame.to_file(path, engine="pyogrio")
    with pytest.raises(InputError, match=r"prompts.gpkg: feature 1: coordinate \(1e\+300, 0\) "
                                         r"is not a finite number of at most 1e\+09"):
        read_prompt_file(path)


def test_a_utf16_prompt_file_with_its_mark_reads_like_utf8(tmp_path: Path) -> None:
    utf8 = _polygon_file(tmp_path / "a.geojson", [[0, 0], [9, 0], [9, 9], [0, 9], [0, 0]])
    utf16 = tmp_path / "b.geojson"
    utf16.write_bytes(b"\xff\xfe" + utf8.read_text().encode("utf-16-le"))
    assert read_prompt_file(utf16).geometry.equals(read_prompt_file(utf8).geometry)


def test_prompt_file_round_trip_in_another_crs(tmp_path: Path, tile: spacenet.Tile,
                                               grid: dict) -> None:
    path = tmp_path / "boxes.gpkg"
    labels = spacenet.read_geojson(tile.geojson_path)
    labels.to_crs("EPSG:32611").to_file(path, engine="pyogrio")
    frame = read_prompt_file(path)
    assert frame.crs == "EPSG:32611"
    expected = raster_prompts(spacenet.read_tile_labels(tile, pixel=True), "box", **grid)
    # UTM is not a linear map of lon/lat: a polygon's bounds move by well under a pixel.
    np.testing.assert_allclose(raster_prompts(frame, "box", **grid).xy, expected.xy, atol=0.1)


def test_prompts_outside_the_image_refused(tile: spacenet.Tile, grid: dict) -> None:
    far = spacenet.read_geojson(tile.geojson_path).to_crs("EPSG:3857")
    far.geometry = far.geometry.translate(50_000, 0)  # 50 km east
    prompts = raster_prompts(far, "box", source="far.geojson", **grid)
    assert len(prompts) == 0
    with pytest.raises(InputError) as info:
        require_prompts(prompts, len(far), "far.geojson", tile.image_path)
    message = str(info.value)
    assert message == (f"far.geojson: none of its {len(far)} prompts falls inside "
                       f"{tile.image_path.name} (another area, or a wrong CRS?)")
    assert "\n" not in message


def test_oracle_prompts_are_the_ground_truth_boxes(tile: spacenet.Tile,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="aerialsam.inference.prompts"):
        boxes = oracle_prompts(tile)
    assert "from the ground truth" in caplog.text
    labels = np.asarray(spacenet.read_tile_labels(tile, pixel=True).geometry.array)
    np.testing.assert_allclose(boxes.xy, shapely.bounds(labels), atol=1e-4)
    points = oracle_prompts(tile, "point")
    assert points.xy.shape == (len(labels), 2)
