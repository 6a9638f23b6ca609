"""Masks to polygons: labelling and splitting, polygonizing, writers, and the round trip
rasterize truth -> vectorize -> score on demo tiles."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from rasterio import features
from scipy import ndimage
from shapely.geometry import box

from aerialsam.data import spacenet
from aerialsam.errors import InputError
from aerialsam.inference import vectorize
from aerialsam.metrics import building_f1


def two_touching_squares() -> tuple[np.ndarray, np.ndarray]:
    """A 40 x 60 mask with two 20 x 20 squares sharing a side, and their contact column."""
    mask = np.zeros((40, 60), dtype=bool)
    mask[10:30, 10:50] = True
    contact = np.zeros_like(mask)
    contact[10:30, 29:31] = True
    return mask, contact


def test_label_buildings_splits_only_when_asked() -> None:
    mask, contact = two_touching_squares()
    assert vectorize.label_buildings(mask).max() == 1
    split = vectorize.label_buildings(mask, contact=contact)
    assert split.max() == 2
    assert (split > 0).sum() == mask.sum()  # contact pixels go back to a building
    assert set(np.unique(split[:, :30][mask[:, :30]])) == {split[20, 15]}
    assert np.count_nonzero(split == split[20, 15]) == 400


def test_watershed_splits_blobs_at_a_neck() -> None:
    mask = np.zeros((40, 70), dtype=bool)
    mask[5:35, 5:30] = True
    mask[5:35, 40:65] = True
    mask[18:22, 30:40] = True  # a 4 px wide neck
    assert vectorize.label_buildings(mask).max() == 1
    labels = vectorize.label_buildings(mask, watershed=True, seed_distance=4)
    assert labels.max() == 2
    assert labels[20, 10] != labels[20, 60]


def test_blob_without_seed_keeps_its_own_label() -> None:
    mask, contact = two_touching_squares()
    mask[0:3, 0:3] = True
    contact[0:3, 0:3] = True  # entirely contact: no seed, still a building
    labels = vectorize.label_buildings(mask, contact=contact)
    assert labels.max() == 3 and labels[1, 1] > 0


def test_polygonize_pixel_coordinates_confidence_and_min_area() -> None:
    prob = np.zeros((30, 40), dtype=np.float32)
    prob[5:15, 20:30] = 0.8
    prob[5:10, 20:30] = 0.6
    prob[25:28, 2:5] = 0.9  # 9 px²: under the floor
    polys = vectorize.vectorize(prob)
    assert len(polys) == 1
    assert polys.geometry.iloc[0].bounds == (20.0, 5.0, 30.0, 15.0)
    assert polys["area"].iloc[0] == pytest.approx(100)
    assert polys["confidence"].iloc[0] == pytest.approx(0.7)
    assert len(vectorize.vectorize(prob, min_area=5)) == 2
    assert len(vectorize.vectorize(np.zeros((8, 8)))) == 0


def test_instances_are_used_as_given() -> None:
    mask, _ = two_touching_squares()
    instances = np.where(mask, 1, 0)
    instances[:, 30:] *= 2
    polys = vectorize.vectorize(mask, instances=instances)
    assert polys["label"].tolist() == [1, 2]
    assert polys["area"].tolist() == pytest.approx([400, 400])


def test_instance_in_two_pieces_becomes_one_multipolygon() -> None:
    instances = np.zeros((20, 40), dtype=np.int32)
    instances[2:8, 2:8] = 1
    instances[10:16, 20:30] = 1
    polys = vectorize.polygonize(instances, simplify=0)
    assert len(polys) == 1
    assert polys.geometry.iloc[0].geom_type == "MultiPolygon"
    assert polys["area"].iloc[0] == pytest.approx(36 + 60)


def test_georeference_uses_the_transform() -> None:
    transform = Affine(2.7e-6, 0, -115.0, 0, -2.7e-6, 36.0)
    pixel = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 20)])
    geo = vectorize.georeference(pixel, transform, "EPSG:4326")
    assert geo.crs.to_epsg() == 4326
    assert geo.total_bounds == pytest.approx([-115.0, 36.0 - 20 * 2.7e-6, -115.0 + 10 * 2.7e-6,
                                              36.0], abs=1e-12)


def test_proposal_csv_round_trip(tmp_path: Path) -> None:
    mask, contact = two_touching_squares()
    tiles = {"RGB-PanSharpen_AOI_2_Vegas_img5.tif": vectorize.vectorize(mask, contact=contact),
             "AOI_2_Vegas_img6": vectorize.vectorize(np.zeros((40, 60), dtype=bool))}
    proposals = vectorize.proposals_frame(tiles)
    path = vectorize.write_proposals_csv(proposals, tmp_path / "proposals.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "ImageId,BuildingId,PolygonWKT_Pix,Confidence"
    assert lines[-1] == "AOI_2_Vegas_img6,-1,POLYGON EMPTY,1.0"
    back = building_f1.read_proposals_csv(path)
    assert back.attrs["image_ids"] == ["AOI_2_Vegas_img5", "AOI_2_Vegas_img6"]
    assert back["BuildingId"].tolist() == [0, 1]
    truth = gpd.GeoDataFrame({"ImageId": ["AOI_2_Vegas_img5"] * 2, "BuildingId": [1, 2]},
                             geometry=[box(10, 10, 30, 30), box(30, 10, 50, 30)])
    assert building_f1.score(truth, back).overall_f1 == 1.0


def test_write_vector_gpkg_and_geojson(tmp_path: Path) -> None:
    geo = gpd.GeoDataFrame({"confidence": [0.9]}, geometry=[box(-115, 36, -114.9999, 36.0001)],
                           crs="EPSG:4326")
    for name in ("b.gpkg", "b.geojson"):
        path = vectorize.write_vector(geo, tmp_path / name)
        back = gpd.read_file(path)
        assert len(back) == 1 and back.crs.to_epsg() == 4326
        vectorize.write_vector(geo, path)  # overwriting works
    with pytest.raises(InputError, match="unknown vector format"):
        vectorize.write_vector(geo, tmp_path / "b.shp")
    with pytest.raises(InputError, match="no CRS"):
        vectorize.write_vector(geo.set_crs(None, allow_override=True), tmp_path / "c.gpkg")


def _tile_with_labels(demo_root: Path, aoi: str) -> tuple[spacenet.Tile, gpd.GeoDataFrame]:
    tile = spacenet.find_tiles(demo_root, aoi=aoi)[0]
    labels = spacenet.read_tile_labels(tile, pixel=True).assign(ImageId=tile.image_id)
    assert len(labels) > 10
    return tile, labels


def _score(labels: gpd.GeoDataFrame, polys: gpd.GeoDataFrame, image: str) -> float:
    proposals = polys.assign(ImageId=image, Confidence=polys["confidence"])
    return building_f1.score(labels, proposals).overall_f1


def test_round_trip_on_a_demo_tile(demo_root: Path) -> None:
    tile, labels = _tile_with_labels(demo_root, "vegas")
    mask = features.rasterize(labels.geometry, out_shape=(650, 650), dtype="uint8") > 0
    assert _score(labels, vectorize.vectorize(mask), tile.image_id) >= 0.95


def test_round_trip_splits_attached_buildings_with_contact(demo_root: Path) -> None:
    tile, labels = _tile_with_labels(demo_root, "paris")
    instances = vectorize.rasterize_instances(labels.geometry, (650, 650))
    assert instances.max() == len(labels)
    mask = instances > 0
    # contact: building pixels next to a pixel of another building
    high = ndimage.maximum_filter(instances, 3)
    low = ndimage.minimum_filter(np.where(mask, instances, np.iinfo(np.int32).max), 3)
    contact = mask & (high != low)
    merged = _score(labels, vectorize.vectorize(mask), tile.image_id)
    split = _score(labels, vectorize.vectorize(mask, contact=contact), tile.image_id)
    assert merged < 0.5 < 0.95 <= split  # Paris blocks share walls: a plain mask merges them
    assert _score(labels, vectorize.vectorize(mask, instances=instances), tile.image_id) >= 0.95
