"""The SpaceNet 2 layout and label readers, on the real sample files and on bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from aerialsam.data import spacenet
from aerialsam.errors import InputError


def test_image_ids_from_every_naming() -> None:
    assert spacenet.image_id("RGB-PanSharpen_AOI_2_Vegas_img1010.tif") == "AOI_2_Vegas_img1010"
    assert spacenet.image_id("buildings_AOI_5_Khartoum_img463.geojson") == "AOI_5_Khartoum_img463"
    assert spacenet.parse_image_id("SN2_buildings_train_AOI_3_Paris_PS-RGB_img12.tif") == (
        "AOI_3_Paris", 12)
    assert spacenet.resolve_aoi("shanghai") == "AOI_4_Shanghai"
    assert spacenet.resolve_aoi("AOI_2_Vegas_Train") == "AOI_2_Vegas"
    with pytest.raises(InputError, match="no SpaceNet image id"):
        spacenet.parse_image_id("holiday.tif")


def test_finds_real_vegas_tiles(samples_dir: Path, tmp_path: Path) -> None:
    aoi_dir = tmp_path / "AOI_2_Vegas_Train" / "RGB-PanSharpen"
    aoi_dir.mkdir(parents=True)
    for tif in (samples_dir / "vegas_sn2_rgb").glob("*.tif"):
        (aoi_dir / tif.name).symlink_to(tif)
    tiles = spacenet.find_tiles(tmp_path)
    assert [t.number for t in tiles] == [1010, 1015, 1016, 1017, 1018, 1021]
    assert tiles[0].image_id == "AOI_2_Vegas_img1010"
    assert tiles[0].geojson_path is None
    with pytest.raises(InputError, match="no building GeoJSON"):
        spacenet.read_tile_labels(tiles[0])


def test_reads_real_truth_csv(samples_dir: Path) -> None:
    truth = spacenet.read_summary_csv(samples_dir / "sn2_truth_csv" / "SN2_sample_truth.csv")
    assert len(truth.attrs["image_ids"]) == 6
    assert "AOI_5_Khartoum_img463" in truth.attrs["image_ids"]
    assert "AOI_5_Khartoum_img463" not in set(truth.ImageId), "POLYGON EMPTY gives no row"
    assert len(truth) == 171
    first = truth.geometry.iloc[0]
    assert not first.has_z
    assert first.bounds == pytest.approx((164.2, 541.94, 230.11, 613.3))
    geo = spacenet.read_summary_csv(samples_dir / "sn2_truth_csv" / "SN2_sample_truth.csv",
                                    column="PolygonWKT_Geo")
    assert geo.crs.to_epsg() == 4326
    assert -115.3 < geo.geometry.iloc[0].centroid.x < -115.1


def test_csv_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text('ImageId,BuildingId,PolygonWKT_Pix\nA_img1,1,"POLYGON ((0 0,1 0,1 1,0 0))"\n'
                   'A_img1,2,"POLYGON ((0 0, 1 1"\n')
    with pytest.raises(InputError, match=r"bad.csv, line 3: unparsable WKT"):
        spacenet.read_summary_csv(bad)
    missing_column = tmp_path / "cols.csv"
    missing_column.write_text("ImageId,BuildingId\nA_img1,1\n")
    with pytest.raises(InputError, match="missing column 'PolygonWKT_Pix'"):
        spacenet.read_summary_csv(missing_column)
    with pytest.raises(InputError, match="file not found"):
        spacenet.read_summary_csv(tmp_path / "absent.csv")


def _write_tile(root: Path, labels: dict | str | None) -> spacenet.Tile:
    aoi = root / "AOI_2_Vegas_Train"
    (aoi / "RGB-PanSharpen").mkdir(parents=True)
    (aoi / "geojson" / "buildings").mkdir(parents=True)
    image = aoi / "RGB-PanSharpen" / "RGB-PanSharpen_AOI_2_Vegas_img7.tif"
    transform = rasterio.transform.from_origin(-115.2, 36.2, 2.7e-6, 2.7e-6)
    with rasterio.open(image, "w", driver="GTiff", width=10, height=10, count=3, dtype="uint16",
                       crs="EPSG:4326", transform=transform) as dst:
        dst.write(np.full((3, 10, 10), 300, dtype="uint16"))
    if labels is not None:
        path = aoi / "geojson" / "buildings" / "buildings_AOI_2_Vegas_img7.geojson"
        path.write_text(labels if isinstance(labels, str) else json.dumps(labels))
    return spacenet.find_tiles(root)[0]


def test_empty_feature_collection_is_no_buildings(tmp_path: Path) -> None:
    tile = _write_tile(tmp_path, {"type": "FeatureCollection", "features": []})
    labels = spacenet.read_tile_labels(tile, pixel=True)
    assert len(labels) == 0


def test_geojson_in_another_crs_is_reprojected(tmp_path: Path) -> None:
    square = gpd.GeoDataFrame(geometry=[box(-115.2 + 2.7e-6, 36.2 - 4 * 2.7e-6,
                                            -115.2 + 3 * 2.7e-6, 36.2 - 2.7e-6)], crs=4326)
    utm = square.to_crs(32611)
    legacy = json.loads(utm.to_json())
    legacy["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32611"}}
    tile = _write_tile(tmp_path, legacy)
    pixel = spacenet.read_tile_labels(tile, pixel=True)
    assert pixel.geometry.iloc[0].bounds == pytest.approx((1, 1, 3, 4), abs=1e-3)


def test_unreadable_inputs_are_named(tmp_path: Path) -> None:
    tile = _write_tile(tmp_path, "{not json")
    with pytest.raises(InputError, match="not valid GeoJSON"):
        spacenet.read_tile_labels(tile)
    tile.image_path.write_bytes(b"II*\x00garbage")
    tile.geojson_path.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(InputError, match="RGB-PanSharpen_AOI_2_Vegas_img7.tif: not a readable"):
        spacenet.read_tile_labels(tile)
    shutil.rmtree(tmp_path / "AOI_2_Vegas_Train")
    with pytest.raises(InputError, match="no SpaceNet 2 AOI folder"):
        spacenet.find_tiles(tmp_path)
    with pytest.raises(InputError, match="folder not found"):
        spacenet.find_tiles(tmp_path / "nowhere")


def test_point_geometries_are_refused(tmp_path: Path) -> None:
    points = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {},
         "geometry": {"type": "Point", "coordinates": [-115.2, 36.2]}}]}
    tile = _write_tile(tmp_path, points)
    with pytest.raises(InputError, match="expected building polygons"):
        spacenet.read_tile_labels(tile)


def test_summary_without_csv_reads_geojson(demo_root: Path, tmp_path: Path) -> None:
    """A per-tile download has GeoJSONs but no summary CSV: the same table comes out."""
    copy = tmp_path / "AOI_5_Khartoum_Train"
    shutil.copytree(demo_root / "AOI_5_Khartoum_Train", copy)
    from_csv = spacenet.building_table(copy)
    spacenet.summary_csv_path(copy).unlink()
    from_geojson = spacenet.building_table(copy)
    assert len(from_geojson) == len(from_csv) > 0
    assert list(from_geojson.image_id) == list(from_csv.image_id)
    np.testing.assert_allclose(from_geojson.area_px, from_csv.area_px, rtol=1e-6)
    summary = spacenet.aoi_summary(copy)
    assert summary.loc["Khartoum", "empty tiles"] == 1
    assert 0.23 < spacenet.pixel_size_m(36.2)[0] < 0.25


def test_malformed_geojson_features_are_named(tmp_path: Path) -> None:
    ring = [[-115.2, 36.2], [-115.1, 36.2], [-115.1, 36.1], [-115.2, 36.2]]
    bad = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": 4, "properties": {},
         "geometry": {"type": "Polygon", "coordinates": [ring[:3]]}}]}
    path = tmp_path / "labels.geojson"
    path.write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"feature 0 \(id 4\): ring 0: a ring needs at least"):
        spacenet.read_geojson(path)
    path.write_text(json.dumps(bad).replace("-115.1, 36.1", "NaN, 36.1"))
    with pytest.raises(InputError, match="non-finite coordinate nan"):
        spacenet.read_geojson(path)
    bad["features"][0]["geometry"]["coordinates"] = [[[1e6, 36.2], *ring[1:3], [1e6, 36.2]]]
    path.write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"coordinate \(1e\+06, 36.2\) is no longitude"):
        spacenet.read_geojson(path)


def test_geojson_in_marked_utf16_is_read(tmp_path: Path) -> None:
    square = gpd.GeoDataFrame({"note": ["Café"]}, geometry=[box(0, 0, 1, 1)], crs=4326)
    path = tmp_path / "labels.geojson"
    path.write_bytes(square.to_json().encode("utf-16"))
    frame = spacenet.read_geojson(path)
    assert frame["note"].tolist() == ["Café"] and frame.geometry.iloc[0].equals(box(0, 0, 1, 1))
    path.write_bytes('{"type": "FeatureCollection", "name": "Café", "features": []}'
                     .encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8 text"):
        spacenet.read_geojson(path)


def test_summary_csv_values_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text('ImageId,BuildingId,PolygonWKT_Pix\nA_img1,x,"POLYGON ((0 0,1 0,1 1,0 0))"\n')
    with pytest.raises(InputError, match=r"bad.csv, line 2: column 'BuildingId': 'x' is not an "):
        spacenet.read_summary_csv(bad)
    bad.write_text('ImageId,BuildingId,PolygonWKT_Pix\nA_img1,1,"POLYGON ((0 0,1 nan,1 1,0 0))"\n')
    with pytest.raises(InputError, match=r"bad.csv, line 2: non-finite coordinate"):
        spacenet.read_summary_csv(bad)
