"""Synthetic SpaceNet 3 cities: layout, labels, city styles, roads painted where labelled."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from scipy import ndimage

from aerialsam.data import demo, demo_road_layouts, demo_roads, spacenet, spacenet3
from aerialsam.errors import InputError
from aerialsam.prep import masks, road_masks

AOIS = ("AOI_2_Vegas", "AOI_3_Paris", "AOI_4_Shanghai", "AOI_5_Khartoum")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One road tile per city (seed 0): what the smoke profile makes."""
    root = tmp_path_factory.mktemp("roads")
    demo_roads.make_road_demo(root, tiles_per_aoi=1, seed=0)
    return root


@pytest.fixture(scope="module")
def tiles(root: Path) -> dict[str, spacenet.Tile]:
    return {t.aoi: t for t in spacenet3.find_road_tiles(root)}


def luminance(tile: spacenet.Tile) -> np.ndarray:
    with rasterio.open(tile.image_path) as src:
        return src.read().astype(float).mean(axis=0)


def lines_of(tile: spacenet.Tile) -> tuple[list[shapely.LineString], dict]:
    frame = spacenet3.read_road_labels(tile, pixel=True)
    return list(frame.geometry), spacenet3.road_codes(frame)


@pytest.fixture
def cheap_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the imagery (seconds per tile) where a test only looks at files and labels."""
    def render(aoi: str, index: int, seed: int, roads: list | None = None) -> np.ndarray:
        return np.full((3, 1300, 1300), 100 + index + seed, dtype=np.uint16)

    monkeypatch.setattr(demo_roads, "render_road_tile", render)


# ---- layout and formats --------------------------------------------------------------------------

def test_layout_and_names_are_those_spacenet3_expects(root: Path, tiles: dict) -> None:
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == \
        [f"SN3_roads_train_{aoi}" for aoi in AOIS]
    for aoi, tile in tiles.items():
        aoi_dir = root / spacenet3.aoi_dir_name(aoi)
        assert tile.number == 1 and tile.image_path == spacenet3.image_path(aoi_dir, 1)
        assert tile.geojson_path == spacenet3.geojson_path(aoi_dir, 1)
        assert spacenet3.geojson_path(aoi_dir, 1, speed=True).exists()


def test_images_are_11_bit_1300_px_tiles_at_spacenet_resolution(tiles: dict) -> None:
    for tile in tiles.values():
        with rasterio.open(tile.image_path) as src:
            assert (src.count, src.height, src.width) == (3, 1300, 1300)
            assert src.dtypes == ("uint16",) * 3 and src.crs.to_epsg() == 4326
            assert src.res == pytest.approx((2.7e-6, 2.7e-6), rel=1e-9)
            pixels = src.read()
        assert pixels.max() < 2048 and pixels.min() > 0


def test_labels_are_lon_lat_lines_with_valid_codes(tiles: dict) -> None:
    for tile in tiles.values():
        document = json.loads(tile.geojson_path.read_text())
        speeds = json.loads(spacenet3.geojson_path(tile.image_path.parents[1], 1,
                                                   speed=True).read_text())
        assert document["features"], tile.image_id
        with rasterio.open(tile.image_path) as src:
            left, bottom, right, top = src.bounds
        for feature, fast in zip(document["features"], speeds["features"], strict=True):
            assert feature["geometry"] == fast["geometry"]
            assert feature["geometry"]["type"] == "LineString"
            for lon, lat in feature["geometry"]["coordinates"]:  # [lon, lat], no z
                assert left - 1e-9 <= lon <= right + 1e-9 and bottom - 1e-9 <= lat <= top + 1e-9
            props = feature["properties"]
            assert all(isinstance(props[k], str) for k in spacenet3.CODES)  # as the real files
            codes = {k: int(props[k]) for k in spacenet3.CODES}
            assert 1 <= codes["road_type"] <= 7 and 1 <= codes["lane_number"] <= 8
            assert codes["paved"] in (1, 2) and codes["bridge_type"] in (1, 2)
            assert fast["properties"]["inferred_speed_mph"] == spacenet3.inferred_speed_mph(
                *codes.values())


def test_edges_meet_at_shared_nodes_and_overpasses_do_not(tiles: dict) -> None:
    for aoi, tile in tiles.items():
        lines, codes = lines_of(tile)
        ends = Counter(tuple(np.round(c, 6)) for g in lines
                       for c in (g.coords[0], g.coords[-1]))
        assert any(degree >= 3 for degree in ends.values()), aoi  # junctions are shared nodes
        ground = [g for g, b in zip(lines, codes.bridge_type, strict=True) if b == 2]
        for i, a in enumerate(ground):
            for b in ground[i + 1:]:
                for part in shapely.get_parts(a.intersection(b)):
                    if part.is_empty:
                        continue
                    # Two roads at one level only meet at a node of both (the pixel round
                    # trip can turn a shared node of two collinear edges into a 1e-9 px line).
                    assert part.length < 1e-6, (aoi, part)
                    point = part.centroid
                    on_ends = [min(point.distance(shapely.Point(g.coords[k])) for k in (0, -1))
                               for g in (a, b)]
                    assert max(on_ends) < 1e-6, (aoi, point)
    lines, codes = lines_of(tiles["AOI_4_Shanghai"])
    decks = [g for g, b in zip(lines, codes.bridge_type, strict=True) if b == 1]
    under = [g for g, b in zip(lines, codes.bridge_type, strict=True) if b == 2]
    crossings = [p for d in decks for g in under for p in shapely.get_parts(d.intersection(g))
                 if not p.is_empty]
    assert crossings and all(min(p.distance(shapely.Point(d.coords[k])) for d in decks
                                 for k in (0, -1)) > 1 for p in crossings)


# ---- one style per city --------------------------------------------------------------------------

def test_vegas_is_an_axis_aligned_grid_with_cul_de_sacs(tiles: dict) -> None:
    lines, codes = lines_of(tiles["AOI_2_Vegas"])
    for line in lines:
        steps = np.diff(np.asarray(line.coords), axis=0)
        assert (np.abs(steps).min(axis=1) < 1e-6).all()  # every segment N-S or E-W
    ends = Counter(tuple(np.round(c, 6)) for g in lines for c in (g.coords[0], g.coords[-1]))
    inside = [xy for xy, degree in ends.items() if degree == 1 and 1 < min(xy) and
              max(xy) < 1299]
    assert len(inside) >= 2  # dead ends inside the tile: the cul-de-sacs
    assert set(codes.road_type) <= {2, 3, 5} and set(codes.paved) == {1}


def test_paris_streets_are_irregular_and_radial(tiles: dict) -> None:
    lines, _ = lines_of(tiles["AOI_3_Paris"])
    steps = np.vstack([np.diff(np.asarray(g.coords), axis=0) for g in lines])
    headings = np.degrees(np.arctan2(steps[:, 1], steps[:, 0])) % 180
    off_axis = np.minimum(headings % 90, 90 - headings % 90) > 2
    assert off_axis.mean() > 0.9
    assert len(np.unique(np.round(headings / 20))) >= 4
    assert sum(len(g.coords) > 2 for g in lines) >= len(lines) / 2  # curved, not straight


def test_shanghai_has_wide_arterials_and_elevated_roads(tiles: dict) -> None:
    _, codes = lines_of(tiles["AOI_4_Shanghai"])
    assert (codes.bridge_type == 1).any() and set(codes.road_type[codes.bridge_type == 1]) == {1}
    assert codes.lane_number.max() >= 6


def test_khartoum_is_mostly_unpaved_cart_tracks(tiles: dict) -> None:
    lines, codes = lines_of(tiles["AOI_5_Khartoum"])
    length = np.array([g.length for g in lines])
    assert length[(codes.paved == 2).to_numpy()].sum() > 0.6 * length.sum()
    assert Counter(codes.road_type).most_common(1)[0][0] == 7


# ---- the image shows the labelled roads ----------------------------------------------------------

def test_painted_roads_are_the_lane_width_masks_of_the_labels(tiles: dict) -> None:
    params = road_masks.RoadParams(lane_width_m=demo_road_layouts.LANE_WIDTH_M)
    for aoi, tile in tiles.items():
        grid = masks.read_grid(tile.image_path)
        roads = road_masks.read_road_labels(tile.geojson_path, grid, tile.image_path, params)
        from_labels = road_masks.road_mask(roads, grid.shape, "road", params) > 0
        painted = demo_roads._burn(demo_roads.road_areas(
            demo_roads.tile_roads(aoi, 0, 0), demo_roads.tile_transform(aoi, 0))) > 0
        assert np.array_equal(from_labels, painted), aoi


def test_image_is_road_coloured_along_the_labelled_centre_lines(tiles: dict) -> None:
    for aoi, tile in tiles.items():
        style = demo_roads.ROAD_STYLES[aoi]
        image = luminance(tile)
        grid = masks.read_grid(tile.image_path)
        frame = spacenet3.read_road_geojson(tile.geojson_path)
        codes = spacenet3.road_codes(frame)
        decks = _centre(frame[(codes.bridge_type == 1).values], grid, tile, wide=True)
        for paved, colour in ((1, style.paved), (2, style.unpaved)):
            chosen = frame[((codes.paved == paved) & (codes.bridge_type == 2)).values]
            if chosen.empty:
                continue
            centre = _centre(chosen, grid, tile) & ~decks
            expected = float(np.mean(np.asarray(colour) * demo.SENSOR_GAIN.ravel()
                                     + demo.SENSOR_OFFSET.ravel()))
            low, mid, high = np.percentile(image[centre], [10, 50, 90])
            assert abs(mid - expected) < 0.08 * expected, (aoi, paved, mid, expected)
            assert high - low < 45, (aoi, paved)
            # The same lines 25 m off land on ground, buildings and trees instead.
            shifted = np.roll(centre, int(25 / 0.3), axis=0)
            s_low, _, s_high = np.percentile(image[shifted], [10, 50, 90])
            assert s_high - s_low > 2 * (high - low), aoi


def _centre(frame: object, grid: masks.Grid, tile: spacenet.Tile,
            wide: bool = False) -> np.ndarray:
    """Centre-line pixels of some roads (or, ``wide``, the roads at their painted width)."""
    path = tile.geojson_path.with_name("subset.geojson")
    frame.to_file(path, driver="GeoJSON")
    params = road_masks.RoadParams(lane_width_m=demo_road_layouts.LANE_WIDTH_M)
    roads = road_masks.read_road_labels(path, grid, tile.image_path, params)
    path.unlink()
    return road_masks.road_mask(roads, grid.shape, "road" if wide else "road_centerline") > 0


def test_elevated_roads_cast_a_shadow(tiles: dict) -> None:
    tile = tiles["AOI_4_Shanghai"]
    image = luminance(tile)
    grid = masks.read_grid(tile.image_path)
    frame = spacenet3.read_road_geojson(tile.geojson_path)
    deck = _centre(frame[(spacenet3.road_codes(frame).bridge_type == 1).values], grid, tile,
                   wide=True)
    # The shadow falls north-west: just beyond the deck's north-west edge it is dark.
    beside = ndimage.shift(deck, (-12, -8), order=0) & ~deck
    assert np.median(image[beside]) < 0.8 * np.median(image[~deck])


# ---- seeds, reruns, empty tiles ----------------------------------------------------------------

def test_same_seed_same_bytes_and_a_rerun_writes_nothing(root: Path, tmp_path: Path) -> None:
    again = demo_roads.make_road_demo(tmp_path, tiles_per_aoi=1, seed=0, aois=["khartoum"])
    ours = root / "SN3_roads_train_AOI_5_Khartoum"
    assert again == [tmp_path / ours.name]
    files = sorted(p.relative_to(ours) for p in ours.rglob("*") if p.is_file())
    assert len(files) == 3
    for name in files:
        assert (ours / name).read_bytes() == (again[0] / name).read_bytes(), name
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    demo_roads.make_road_demo(tmp_path, tiles_per_aoi=1, seed=0, aois=["AOI_5_Khartoum"])
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == stamps


def test_another_seed_makes_another_city(root: Path) -> None:
    ours = demo_roads.tile_roads("AOI_2_Vegas", 0, 0)
    other = demo_roads.tile_roads("AOI_2_Vegas", 0, 1)
    assert [r.line.wkt for r in ours] != [r.line.wkt for r in other]
    assert [r.line.wkt for r in ours] == [r.line.wkt for r in demo_roads.tile_roads(
        "AOI_2_Vegas", 0, 0)]


def test_empty_tiles_and_a_prefix_property(tmp_path: Path, cheap_render: None) -> None:
    small, = demo_roads.make_road_demo(tmp_path / "a", tiles_per_aoi=2, seed=4, aois=["paris"])
    big, = demo_roads.make_road_demo(tmp_path / "b", tiles_per_aoi=9, seed=4, aois=["paris"])
    for number in (1, 2):
        assert spacenet3.geojson_path(small, number).read_bytes() == \
            spacenet3.geojson_path(big, number).read_bytes()
    empty = [t.number for t in spacenet3.find_road_tiles(big)
             if not json.loads(t.geojson_path.read_text())["features"]]
    assert empty == [4]  # index 3 (tile 4) of every 7 has no road
    assert spacenet3.read_road_geojson(spacenet3.geojson_path(big, 4, speed=True)).empty
    demo_roads.make_road_demo(tmp_path / "a", tiles_per_aoi=1, seed=4, aois=["paris"])
    assert len(spacenet3.find_road_tiles(small)) == 2  # a folder keeps the tiles it has


def test_tiles_abut_south_of_the_building_demo() -> None:
    first, right, below = (demo_roads.tile_transform("AOI_2_Vegas", i) for i in (0, 1, 4))
    assert right.c == pytest.approx(first.c + 1300 * 2.7e-6)
    assert below.f == pytest.approx(first.f - 1300 * 2.7e-6) and below.c == first.c
    assert first.f < demo.tile_transform("AOI_2_Vegas", 0).f - 0.04


def test_bad_requests_are_refused(tmp_path: Path, cheap_render: None) -> None:
    with pytest.raises(InputError, match="--tiles-per-aoi: must be at least 1"):
        demo_roads.make_road_demo(tmp_path, tiles_per_aoi=0)
    with pytest.raises(InputError, match="unknown AOI 'atlanta'"):
        demo_roads.make_road_demo(tmp_path, aois=["atlanta"])
    demo_roads.make_road_demo(tmp_path / "d", tiles_per_aoi=1, seed=1, aois=["vegas"])
    with pytest.raises(InputError, match="holds road demo data made with"):
        demo_roads.make_road_demo(tmp_path / "d", tiles_per_aoi=1, seed=2, aois=["vegas"])
    real = tmp_path / "real"
    (real / "SN3_roads_train_AOI_2_Vegas" / "PS-RGB").mkdir(parents=True)
    with pytest.raises(InputError, match="not made by the road demo"):
        demo_roads.make_road_demo(real, tiles_per_aoi=1)
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(InputError, match="exists and is not a folder"):
        demo_roads.make_road_demo(afile)
