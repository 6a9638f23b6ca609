"""The SpaceNet 3 layout: names, tiles, road GeoJSON and CSV readers, codes, speeds, metres."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from pyproj import CRS, Transformer
from rasterio.transform import from_origin

from aerialsam.data import spacenet3
from aerialsam.errors import InputError


@pytest.fixture(scope="module")
def sn3(samples_dir: Path) -> Path:
    """The real SpaceNet 3 sample: a Vegas tile, its roads, their pixel CSV."""
    return samples_dir / "sn3_roads"


def write_tile(aoi_dir: Path, number: int, side: int = 20) -> Path:
    """A small uint16 GeoTIFF named and placed like a SpaceNet 3 PS-RGB image."""
    path = spacenet3.image_path(aoi_dir, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "dtype": "uint16", "count": 3, "width": side,
               "height": side, "crs": "EPSG:4326",
               "transform": from_origin(-115.2, 36.2, 2.7e-6, 2.7e-6)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((3, side, side), 300, dtype=np.uint16))
    return path


def write_geojson(path: Path, features: list[dict], crs: str | None = None) -> Path:
    document: dict = {"type": "FeatureCollection", "features": features}
    if crs:
        document["crs"] = {"type": "name", "properties": {"name": crs}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def line(coords: list, **props: object) -> dict:
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "LineString", "coordinates": coords}}


# ---- names and tiles -----------------------------------------------------------------------------

def test_folder_and_file_names_follow_the_release() -> None:
    aoi_dir = Path("root") / spacenet3.aoi_dir_name("vegas")
    assert aoi_dir.name == "SN3_roads_train_AOI_2_Vegas"
    assert spacenet3.aoi_dir_name("AOI_5_Khartoum", "test") == \
        "SN3_roads_test_public_AOI_5_Khartoum"
    assert spacenet3.image_path(aoi_dir, 7) == \
        aoi_dir / "PS-RGB" / "SN3_roads_train_AOI_2_Vegas_PS-RGB_img7.tif"
    assert spacenet3.geojson_path(aoi_dir, 7) == aoi_dir / "geojson_roads" / \
        "SN3_roads_train_AOI_2_Vegas_geojson_roads_img7.geojson"
    assert spacenet3.geojson_path(aoi_dir, 7, speed=True) == aoi_dir / "geojson_roads_speed" / \
        "SN3_roads_train_AOI_2_Vegas_geojson_roads_speed_img7.geojson"
    with pytest.raises(InputError, match="unknown split"):
        spacenet3.aoi_dir_name("vegas", "val")
    with pytest.raises(InputError, match="unknown AOI"):
        spacenet3.aoi_dir_name("atlanta")


def test_find_tiles_in_aoi_order_with_their_labels(tmp_path: Path) -> None:
    khartoum = tmp_path / spacenet3.aoi_dir_name("khartoum")
    vegas = tmp_path / spacenet3.aoi_dir_name("vegas")
    test = tmp_path / spacenet3.aoi_dir_name("paris", "test")
    for number in (10, 2):
        write_tile(vegas, number)
        write_geojson(spacenet3.geojson_path(vegas, number), [])
    write_tile(khartoum, 1)
    write_tile(test, 5)
    (tmp_path / "AOI_2_Vegas_Train").mkdir()  # a SpaceNet 2 folder is not an SN3 AOI
    tiles = spacenet3.find_road_tiles(tmp_path)
    assert [t.image_id for t in tiles] == ["AOI_2_Vegas_img2", "AOI_2_Vegas_img10",
                                           "AOI_3_Paris_img5", "AOI_5_Khartoum_img1"]
    assert tiles[0].geojson_path == spacenet3.geojson_path(vegas, 2)
    assert tiles[2].geojson_path is None and tiles[3].geojson_path is None
    assert [t.number for t in spacenet3.find_road_tiles(vegas)] == [2, 10]
    assert [t.aoi for t in spacenet3.find_road_tiles(tmp_path, aoi="khartoum")] == \
        ["AOI_5_Khartoum"]
    with pytest.raises(InputError, match="no road labels beside this image"):
        spacenet3.read_road_labels(tiles[2])
    with pytest.raises(InputError, match="no SpaceNet 3 AOI folder"):
        spacenet3.find_road_tiles(tmp_path / "AOI_2_Vegas_Train")
    with pytest.raises(InputError, match="not a SpaceNet 3 image name"):
        spacenet3.road_tile_at(tmp_path / "RGB-PanSharpen_AOI_2_Vegas_img1.tif")


def test_labels_in_pixels_use_the_tiles_transform(sn3: Path, tmp_path: Path) -> None:
    aoi_dir = tmp_path / spacenet3.aoi_dir_name("vegas")
    image = spacenet3.image_path(aoi_dir, 0)
    image.parent.mkdir(parents=True)
    image.write_bytes((sn3 / "RGB-PanSharpen_AOI_2_Vegas_img0.tif").read_bytes())
    labels = spacenet3.geojson_path(aoi_dir, 0)
    labels.parent.mkdir(parents=True)
    labels.write_bytes((sn3 / "AOI_2_Vegas_img0.geojson").read_bytes())
    tile = spacenet3.road_tile_at(image)
    pixel = spacenet3.read_road_labels(tile, pixel=True)
    csv = spacenet3.read_road_csv(sn3 / "truth_AOI_2_Vegas_img0.csv")
    # The sample CSV is the same roads as unique 2-point segments, in pixels.
    assert len(pixel) == 38
    ours, theirs = (shapely.union_all(f.geometry.values) for f in (pixel, csv))
    assert ours.buffer(0.01).contains(theirs) and theirs.buffer(0.01).contains(ours)
    assert abs(ours.length - theirs.length) < 0.1


# ---- road GeoJSON --------------------------------------------------------------------------------

def test_multilinestrings_are_split_and_keep_their_attributes(tmp_path: Path) -> None:
    feature = {"type": "Feature", "properties": {"road_type": "5", "lane_number": "2"},
               "geometry": {"type": "MultiLineString",
                            "coordinates": [[[-115.2, 36.2, 0], [-115.199, 36.2, 0]],
                                            [[-115.1, 36.1, 0], [-115.1, 36.099, 0]]]}}
    path = write_geojson(tmp_path / "r.geojson", [feature, line([[1.0, 2.0], [1.0, 2.0]])])
    frame = spacenet3.read_road_geojson(path)
    assert len(frame) == 2  # the zero-length line is dropped
    assert list(frame.road_type) == ["5", "5"] and frame.crs.equals(CRS.from_epsg(4326))
    assert shapely.get_coordinates(frame.geometry.values, include_z=True).shape[1] == 3
    assert not frame.geometry.has_z.any()


def test_polygons_in_a_road_file_are_refused(tmp_path: Path) -> None:
    polygon = {"type": "Feature", "properties": {},
               "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1],
                                                                [0, 0]]]}}
    path = write_geojson(tmp_path / "buildings.geojson", [line([[0, 0], [1, 1]]), polygon])
    with pytest.raises(InputError) as error:
        spacenet3.read_road_geojson(path)
    assert error.value.source == str(path)
    assert "expected road LineStrings, found ['Polygon'] (feature 1)" in error.value.problem


def test_an_empty_file_gives_an_empty_frame(tmp_path: Path) -> None:
    frame = spacenet3.read_road_geojson(write_geojson(tmp_path / "e.geojson", []))
    assert frame.empty


def test_a_legacy_crs_is_reprojected_to_wgs84_unless_told(tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "utm.geojson", [line([[660000.0, 4000000.0],
                                                          [660100.0, 4000000.0]])],
                         crs="EPSG:32611")
    wgs84 = spacenet3.read_road_geojson(path)
    lon, lat = Transformer.from_crs(32611, 4326, always_xy=True).transform(660000.0, 4000000.0)
    assert np.allclose(shapely.get_coordinates(wgs84.geometry.values)[0], [lon, lat])
    kept = spacenet3.read_road_geojson(path, crs=None)
    assert kept.crs.to_epsg() == 32611


def test_codes_are_read_as_integers(sn3: Path) -> None:
    frame = spacenet3.read_road_geojson(sn3 / "AOI_2_Vegas_img0.geojson")
    assert frame.road_type.iloc[0] == "6"  # the real files hold strings
    codes = spacenet3.road_codes(frame)
    assert set(codes.road_type) == {2, 6} and set(codes.paved) == {1}
    assert set(codes.bridge_type) == {2} and set(codes.lane_number) == {1, 2, 3}
    missing = spacenet3.road_codes(frame.drop(columns=["paved"]))
    assert missing.paved.isna().all()


def test_inferred_speeds_match_the_real_speed_labels(sn3: Path) -> None:
    frame = spacenet3.read_road_geojson(sn3 / "AOI_2_Vegas_img0.geojson")
    codes = spacenet3.road_codes(frame)
    inferred = [spacenet3.inferred_speed_mph(*row) for row in codes.itertuples(index=False)]
    assert inferred == list(frame.speed_mph.astype(float))
    assert spacenet3.inferred_speed_mph(1, 6, 1, 1) == pytest.approx(52.0)  # bridge: x 0.8
    assert spacenet3.inferred_speed_mph(7, 1, 2) == 7.5  # unpaved: halved
    assert spacenet3.inferred_speed_mph(5, 2) == 25.0


# ---- competition CSV -----------------------------------------------------------------------------

def test_the_real_truth_csv_reads_as_pixel_lines(sn3: Path) -> None:
    frame = spacenet3.read_road_csv(sn3 / "truth_AOI_2_Vegas_img0.csv")
    assert len(frame) == 114 and frame.attrs["image_ids"] == ["AOI_2_Vegas_img0"]
    assert set(frame.geom_type) == {"LineString"} and frame.crs is None
    assert 0 <= shapely.total_bounds(frame.geometry.values).min()
    assert shapely.total_bounds(frame.geometry.values).max() < 1305  # lines run just past the edge


def test_empty_rows_and_multilines_in_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "roads.csv"
    path.write_text('ImageId,WKT_Pix\nAOI_2_Vegas_img1,LINESTRING EMPTY\n'
                    'AOI_2_Vegas_img2,"MULTILINESTRING ((0 0, 10 0), (5 5, 5 9))"\n'
                    'AOI_2_Vegas_img2,"LINESTRING (1 1 0, 2 2 0)"\n')
    frame = spacenet3.read_road_csv(path)
    assert frame.attrs["image_ids"] == ["AOI_2_Vegas_img1", "AOI_2_Vegas_img2"]
    assert list(frame.ImageId) == ["AOI_2_Vegas_img2"] * 3
    assert not frame.geometry.has_z.any()


def test_bad_road_csvs_name_the_file_and_line(tmp_path: Path, samples_dir: Path) -> None:
    polygons = tmp_path / "polygons.csv"
    polygons.write_text('ImageId,WKT_Pix\nAOI_2_Vegas_img1,"LINESTRING (0 0, 1 1)"\n'
                        'AOI_2_Vegas_img1,"POLYGON ((0 0, 0 1, 1 1, 0 0))"\n')
    with pytest.raises(InputError, match=r"polygons.csv, line 3: expected road LineStrings, "
                                         r"found Polygon"):
        spacenet3.read_road_csv(polygons)
    broken = tmp_path / "broken.csv"
    broken.write_text('ImageId,WKT_Pix\nAOI_2_Vegas_img1,"LINESTRING (0 0, 1 1)"\n'
                      'AOI_2_Vegas_img1,"LINESTRING (0 0,"\n')
    with pytest.raises(InputError, match="broken.csv, line 3: unparsable WKT"):
        spacenet3.read_road_csv(broken)
    buildings = samples_dir / "sn2_truth_csv" / "SN2_sample_truth.csv"
    with pytest.raises(InputError, match="missing column 'WKT_Pix'.*building polygons, not "
                                         "roads"):
        spacenet3.read_road_csv(buildings)


# ---- metres ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("lon", "lat", "epsg"), [(-115.28, 36.19, 32611), (2.25, 48.87, 32631),
                                                  (121.43, 31.22, 32651), (32.53, 15.56, 32636),
                                                  (-43.2, -22.9, 32723)])
def test_utm_zone_of_each_city(lon: float, lat: float, epsg: int) -> None:
    assert spacenet3.utm_crs(lon, lat).to_epsg() == epsg
    assert spacenet3.metric_crs("EPSG:4326", lon, lat).to_epsg() == epsg


def test_a_projected_crs_in_metres_is_kept() -> None:
    assert spacenet3.metric_crs("EPSG:32611", 660000, 4000000).to_epsg() == 32611
    assert spacenet3.is_metric("EPSG:3857") and not spacenet3.is_metric("EPSG:4326")
    assert not spacenet3.is_metric("EPSG:2263")  # US survey feet: buffered in UTM instead
    assert spacenet3.metric_crs("EPSG:2263", 1000000, 200000).to_epsg() == 32618


def test_buffer_in_metres_is_as_wide_east_west_as_north_south() -> None:
    # A 100 m cross at Vegas latitude, in degrees: pixels there are not square in metres.
    lon, lat = -115.2, 36.2
    north_south = shapely.LineString([(lon, lat), (lon, lat + 100 / 111_000)])
    east_west = shapely.LineString([(lon, lat), (lon + 100 / 89_600, lat)])
    grown = spacenet3.buffer_m([north_south, east_west], "EPSG:4326", 2.0)
    to_utm = Transformer.from_crs(4326, 32611, always_xy=True)

    def utm(geometry: shapely.Geometry) -> shapely.Geometry:
        return shapely.transform(geometry, lambda xy: np.column_stack(to_utm.transform(*xy.T)))

    for road, polygon in zip((north_south, east_west), grown, strict=True):
        # Every point of the outline is 2 m from the centre line, on the ground.
        assert utm(road).hausdorff_distance(utm(polygon.exterior)) == pytest.approx(2.0, abs=1e-3)
    # In degrees the two roads differ: 4 m is more degrees of longitude than of latitude.
    lon_width = np.ptp(shapely.get_coordinates(grown[0])[:, 0])
    lat_width = np.ptp(shapely.get_coordinates(grown[1])[:, 1])
    assert lon_width / lat_width == pytest.approx(1 / np.cos(np.radians(lat)), rel=0.01)
    # Per-geometry radii; the result is back in degrees.
    two = spacenet3.buffer_m([north_south, north_south], "EPSG:4326", [1.0, 3.0])
    assert two[1].area > 2.5 * two[0].area and two[0].bounds[0] < lon < two[0].bounds[2]
