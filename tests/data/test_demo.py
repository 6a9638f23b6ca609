"""The synthetic AOIs: real SpaceNet 2 layout, data properties, labels that agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio import features

from aerialsam.data import demo, spacenet
from aerialsam.errors import InputError

AOIS = ["AOI_2_Vegas", "AOI_3_Paris", "AOI_4_Shanghai", "AOI_5_Khartoum"]


def test_layout_matches_spacenet2(demo_root: Path) -> None:
    for aoi in AOIS:
        aoi_dir = demo_root / f"{aoi}_Train"
        for n in (1, 2, 3):
            assert (aoi_dir / "RGB-PanSharpen" / f"RGB-PanSharpen_{aoi}_img{n}.tif").is_file()
            assert (aoi_dir / "geojson" / "buildings" / f"buildings_{aoi}_img{n}.geojson").is_file()
        csv = aoi_dir / "summaryData" / f"{aoi}_Train_Building_Solutions.csv"
        assert csv.read_text().startswith("ImageId,BuildingId,PolygonWKT_Pix,PolygonWKT_Geo\n")


def test_image_properties(demo_root: Path) -> None:
    for tile in spacenet.find_tiles(demo_root):
        with rasterio.open(tile.image_path) as src:
            assert (src.width, src.height, src.count) == (650, 650, 3)
            assert src.dtypes == ("uint16",) * 3
            assert src.crs.to_epsg() == 4326
            assert src.res == pytest.approx((2.7e-6, 2.7e-6), rel=1e-9)
            pixels = src.read()
        assert pixels.max() <= 2047, "SpaceNet 2 imagery is 11-bit"
        assert pixels.std() > 50, "the tile must have texture, not a flat fill"


def test_tiles_lie_inside_their_city(demo_root: Path) -> None:
    boxes = {"AOI_2_Vegas": (-115.35, 36.10, -115.10, 36.30),
             "AOI_3_Paris": (2.20, 48.80, 2.45, 48.92),
             "AOI_4_Shanghai": (121.30, 31.10, 121.60, 31.35),
             "AOI_5_Khartoum": (32.45, 15.50, 32.65, 15.65)}
    for tile in spacenet.find_tiles(demo_root):
        with rasterio.open(tile.image_path) as src:
            left, bottom, right, top = src.bounds
        minx, miny, maxx, maxy = boxes[tile.aoi]
        assert minx < left < right < maxx and miny < bottom < top < maxy


def test_empty_tiles_and_city_styles(demo_root: Path) -> None:
    counts = {}
    for tile in spacenet.find_tiles(demo_root):
        counts[tile.image_id] = len(spacenet.read_tile_labels(tile))
    for aoi in AOIS:
        assert counts[f"{aoi}_img3"] == 0, "index 2 of every AOI is a tile without buildings"
        assert counts[f"{aoi}_img1"] > 0
    # Dense attached Paris blocks, few large Shanghai slabs.
    assert counts["AOI_3_Paris_img1"] > 3 * counts["AOI_4_Shanghai_img1"]
    empty_csv = (demo_root / "AOI_2_Vegas_Train" / "summaryData"
                 / "AOI_2_Vegas_Train_Building_Solutions.csv").read_text()
    assert "AOI_2_Vegas_img3,-1,POLYGON EMPTY,POLYGON EMPTY\n" in empty_csv


def test_geojson_coordinates_are_lon_lat_zero(demo_root: Path) -> None:
    path = (demo_root / "AOI_2_Vegas_Train" / "geojson" / "buildings"
            / "buildings_AOI_2_Vegas_img1.geojson")
    document = json.loads(path.read_text())
    point = document["features"][0]["geometry"]["coordinates"][0][0]
    assert len(point) == 3 and point[2] == 0
    assert -115.3 < point[0] < -115.2 and 36.1 < point[1] < 36.2


def test_geojson_and_csv_rasterize_identically(demo_root: Path) -> None:
    for tile in spacenet.find_tiles(demo_root):
        csv = spacenet.summary_csv_path(tile.image_path.parents[1])
        table = spacenet.read_summary_csv(csv)
        pixel = table[table.ImageId == tile.image_id]
        with rasterio.open(tile.image_path) as src:
            transform = src.transform
        geo = spacenet.read_geojson(tile.geojson_path, crs="EPSG:4326")
        assert len(geo) == len(pixel)
        from_geo = _burn(geo.geometry, transform)
        from_csv = _burn(pixel.geometry, rasterio.Affine.identity())
        np.testing.assert_array_equal(from_geo, from_csv)
        if len(geo):
            assert from_geo.sum() > 0


def _burn(geometries: pd.Series, transform: rasterio.Affine) -> np.ndarray:
    shapes = [(g, 1) for g in geometries]
    if not shapes:
        return np.zeros((650, 650), dtype=np.uint8)
    return features.rasterize(shapes, out_shape=(650, 650), transform=transform, dtype="uint8")


def test_roofs_are_where_the_labels_are(demo_root: Path) -> None:
    """Labels must describe the picture: building pixels differ from their surroundings."""
    tile = spacenet.find_tiles(demo_root, aoi="vegas")[0]
    labels = spacenet.read_tile_labels(tile, pixel=True)
    mask = _burn(labels.geometry, rasterio.Affine.identity()).astype(bool)
    with rasterio.open(tile.image_path) as src:
        pixels = src.read().astype(float)
    roof_brightness = pixels[:, mask].mean()
    ground_brightness = pixels[:, ~mask].mean()
    assert abs(roof_brightness - ground_brightness) > 40


def test_deterministic_and_prefix_stable(tmp_path: Path, demo_root: Path) -> None:
    demo.make_demo(tmp_path / "a", tiles_per_aoi=2, seed=0, aois=["vegas"])
    for n in (1, 2):
        name = f"RGB-PanSharpen/RGB-PanSharpen_AOI_2_Vegas_img{n}.tif"
        with rasterio.open(tmp_path / "a" / "AOI_2_Vegas_Train" / name) as a, \
                rasterio.open(demo_root / "AOI_2_Vegas_Train" / name) as b:
            np.testing.assert_array_equal(a.read(), b.read())
    demo.make_demo(tmp_path / "b", tiles_per_aoi=1, seed=1, aois=["vegas"])
    name = "RGB-PanSharpen/RGB-PanSharpen_AOI_2_Vegas_img1.tif"
    with rasterio.open(tmp_path / "b" / "AOI_2_Vegas_Train" / name) as c, \
            rasterio.open(demo_root / "AOI_2_Vegas_Train" / name) as d:
        assert not np.array_equal(c.read(), d.read())


def test_rerun_skips_finished_tiles(tmp_path: Path) -> None:
    demo.make_demo(tmp_path, tiles_per_aoi=2, aois=["khartoum"])
    image = (tmp_path / "AOI_5_Khartoum_Train" / "RGB-PanSharpen"
             / "RGB-PanSharpen_AOI_5_Khartoum_img1.tif")
    before = image.stat().st_mtime_ns
    demo.make_demo(tmp_path, tiles_per_aoi=3, aois=["khartoum"])
    assert image.stat().st_mtime_ns == before
    assert len(spacenet.find_tiles(tmp_path)) == 3
    assert not list(tmp_path.rglob("*.part*")), "no temporary file may be left behind"


def test_refuses_other_seed_and_real_data(tmp_path: Path) -> None:
    demo.make_demo(tmp_path / "d", tiles_per_aoi=1, seed=0, aois=["paris"])
    with pytest.raises(InputError, match="seed"):
        demo.make_demo(tmp_path / "d", tiles_per_aoi=1, seed=5, aois=["paris"])
    (tmp_path / "real" / "AOI_2_Vegas_Train").mkdir(parents=True)
    with pytest.raises(InputError, match="not made by"):
        demo.make_demo(tmp_path / "real", tiles_per_aoi=1)


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="tiles-per-aoi"):
        demo.make_demo("/tmp/never", tiles_per_aoi=0)
    with pytest.raises(InputError, match="unknown AOI"):
        demo.make_demo("/tmp/never", tiles_per_aoi=1, aois=["atlantis"])
