"""Masks: solaris' reference masks reproduced pixel for pixel, and each rule on tiny data."""

from __future__ import annotations

import itertools
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import CRS
from rasterio.errors import NotGeoreferencedWarning
from shapely.geometry import MultiPolygon, Polygon, box

from aerialsam import cli
from aerialsam.data import spacenet
from aerialsam.errors import InputError
from aerialsam.prep import chip_masks, chips, masks


def _read(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # the oracles have no georef
        with rasterio.open(path) as src:
            return src.read(1)


@pytest.fixture(scope="module")
def atlanta(samples_dir: Path) -> Path:
    return samples_dir / "atlanta_solaris"


# -- the oracles ------------------------------------------------------------------------------

ORACLES = [
    ("geotiff_labels.geojson", "footprint", {}, "sample_fp_mask_from_geojson.tif"),
    ("sample.csv", "footprint", {}, "sample_fp_mask.tif"),
    ("sample.csv", "boundary", {"boundary_side": "inner"}, "sample_b_mask_inner.tif"),
    ("sample.csv", "boundary", {"boundary_side": "outer"}, "sample_b_mask_outer.tif"),
    ("sample.csv", "contact", {"contact_spacing": 10}, "sample_c_mask.tif"),
]


@pytest.mark.parametrize(("labels", "kind", "options", "expected"), ORACLES,
                         ids=[o[3] for o in ORACLES])
def test_reference_masks_match_pixel_for_pixel(atlanta: Path, tmp_path: Path, labels: str,
                                               kind: str, options: dict, expected: str) -> None:
    out = masks.rasterize_file(atlanta / "sample_geotiff.tif", atlanta / labels,
                               tmp_path / "mask.tif", kind=kind, **options)
    truth = _read(atlanta / expected)
    mask = _read(out)
    assert mask.dtype == np.uint8 and mask.shape == truth.shape == (900, 900)
    assert int((mask != truth).sum()) == 0
    assert set(np.unique(mask)) == {0, 255}


def test_cli_writes_contact_oracle_on_the_image_grid(atlanta: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "c.tif"
    code = cli.main(["rasterize", str(atlanta / "sample_geotiff.tif"), str(atlanta / "sample.csv"),
                     str(out), "--kind", "contact", "--contact-spacing", "10"])
    assert code == 0 and capsys.readouterr().out.strip() == str(out)
    assert np.array_equal(_read(out), _read(atlanta / "sample_c_mask.tif"))
    with rasterio.open(out) as dst, rasterio.open(atlanta / "sample_geotiff.tif") as src:
        assert dst.crs == src.crs and dst.transform == src.transform
    assert [p.name for p in tmp_path.iterdir()] == ["c.tif"]  # no temporary left behind


def test_cli_distance_is_float32(atlanta: Path, tmp_path: Path) -> None:
    out = tmp_path / "d.tif"
    assert cli.main(["rasterize", str(atlanta / "sample_geotiff.tif"),
                     str(atlanta / "sample.csv"), str(out), "--kind", "distance"]) == 0
    distance = _read(out)
    footprint = _read(atlanta / "sample_fp_mask.tif") > 0
    assert distance.dtype == np.float32
    assert (distance[footprint] >= 1).all() and (distance[~footprint] <= -1).all()


# -- each rule on tiny data ---------------------------------------------------------------------

def test_footprint_uses_pixel_centres() -> None:
    mask = masks.footprint_mask([box(1, 1, 3, 3), box(3.6, 0.6, 4.4, 1.4)], (5, 5))
    expected = np.zeros((5, 5), bool)
    expected[1:3, 1:3] = True  # the small box covers no pixel centre: no pixel
    assert np.array_equal(mask, expected)


def test_holes_and_multipolygons() -> None:
    ring = Polygon([(0, 0), (6, 0), (6, 6), (0, 6)], [[(2, 2), (4, 2), (4, 4), (2, 4)]])
    two = MultiPolygon([box(7, 0, 8, 1), box(9, 0, 10, 1)])
    mask = masks.footprint_mask([ring, two], (6, 10))
    assert mask[:, :6].sum() == 32 and not mask[2:4, 2:4].any()
    assert mask[0, 7] and mask[0, 9] and not mask[0, 8]
    # Parts of one building are never in contact with each other.
    assert not masks.contact_mask([two], (6, 10), spacing=4).any()


def test_empty_labels_give_zero_masks() -> None:
    for kind in masks.MASK_KINDS:
        mask = masks.make_mask([], (4, 4), kind)
        assert mask.shape == (4, 4) and not mask.any()
    assert masks.make_mask([], (4, 4), "distance").dtype == np.float32


def test_inner_and_outer_boundary_of_a_square() -> None:
    footprint = np.zeros((9, 9), bool)
    footprint[2:7, 2:7] = True
    inner = masks.boundary_mask(footprint, 3, "inner")
    assert inner.sum() == 16 and not inner[3:6, 3:6].any()
    assert masks.boundary_mask(footprint, 5, "inner").sum() == 24  # width 5: 2-px ring
    outer = masks.boundary_mask(footprint, 3, "outer")
    assert outer.sum() == 7 * 7 - 5 * 5 and not (outer & footprint).any()


def test_inner_boundary_ignores_the_image_edge() -> None:
    footprint = np.zeros((6, 6), bool)
    footprint[:3, :3] = True  # a building cut by the top-left corner of the image
    inner = masks.boundary_mask(footprint, 3)
    assert inner.sum() == 5 and inner[2, :3].all() and inner[:3, 2].all()


def test_bad_parameters_are_input_errors() -> None:
    with pytest.raises(InputError, match="boundary-width"):
        masks.boundary_mask(np.ones((3, 3), bool), 1)
    with pytest.raises(InputError, match="contact-spacing"):
        masks.contact_mask([box(0, 0, 1, 1)], (3, 3), spacing=0)
    with pytest.raises(InputError, match="kind"):
        masks.make_mask([], (3, 3), "edges")


def test_contact_between_close_buildings_only() -> None:
    near = [box(2, 2, 10, 10), box(14, 2, 22, 10)]  # 4 px apart
    contact = masks.contact_mask(near, (12, 40), spacing=10)
    assert contact[2:10, 10:14].all()  # the whole gap between the facing walls
    assert not contact[:, :9].any() and not contact[:, 15:].any()
    assert not (contact & masks.footprint_mask(near, (12, 40))).any()
    far = [box(2, 2, 10, 10), box(21, 2, 29, 10)]  # 11 px apart, more than the spacing
    assert not masks.contact_mask(far, (12, 40), spacing=10).any()


def test_contact_spatial_index_equals_all_pairs(demo_root: Path) -> None:
    tile = next(t for t in spacenet.find_tiles(demo_root, "paris") if t.number == 1)
    grid = masks.read_grid(tile.image_path)
    polygons = masks.read_labels(tile.geojson_path, grid)
    grown = [p.buffer(5) for p in polygons]
    pieces = [grown[i].intersection(grown[j])
              for i, j in itertools.combinations(range(len(grown)), 2)
              if grown[i].intersects(grown[j])]
    naive = masks.footprint_mask([masks.polygonal(p) for p in pieces], grid.shape)
    naive &= ~masks.footprint_mask(polygons, grid.shape)
    fast = masks.contact_mask(polygons, grid.shape, spacing=10)
    assert fast.sum() > 1000 and np.array_equal(fast, naive)


def test_signed_distance_values() -> None:
    footprint = np.zeros((5, 5), bool)
    footprint[1:4, 1:4] = True
    distance = masks.distance_map(footprint)
    assert distance.dtype == np.float32
    assert distance[2, 2] == 2 and distance[1, 1] == 1
    assert distance[0, 0] == pytest.approx(-np.sqrt(2)) and distance[0, 2] == -1
    assert not masks.distance_map(np.ones((3, 3), bool)).any()


def test_invalid_polygons_are_repaired_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    bowtie = Polygon([(0, 0), (4, 4), (4, 0), (0, 4)])
    with caplog.at_level(logging.INFO, logger="aerialsam.prep.masks"):
        repaired = masks.repair_polygons([bowtie, box(5, 0, 6, 1), Polygon()], "x.geojson")
    assert len(repaired) == 2 and shapely.is_valid(repaired).all()
    assert repaired[0].area == pytest.approx(8)
    assert "x.geojson: repaired 1 invalid polygon(s)" in caplog.text


# -- labels onto grids ----------------------------------------------------------------------------

def test_geojson_csv_and_reprojected_labels_agree(demo_root: Path, tmp_path: Path) -> None:
    tile = spacenet.find_tiles(demo_root, "khartoum")[0]
    grid = masks.read_grid(tile.image_path)
    from_geojson = masks.make_mask(masks.read_labels(tile.geojson_path, grid), grid.shape)
    summary = spacenet.summary_csv_path(tile.image_path.parents[1])
    from_csv = masks.make_mask(masks.read_labels(summary, grid, tile.image_path), grid.shape)
    mercator = tmp_path / "mercator.geojson"
    spacenet.read_geojson(tile.geojson_path).to_crs(3857).to_file(mercator, engine="pyogrio")
    from_mercator = masks.make_mask(masks.read_labels(mercator, grid), grid.shape)
    assert from_geojson.any()
    assert np.array_equal(from_geojson, from_csv) and np.array_equal(from_geojson, from_mercator)


def test_empty_label_file_gives_zero_mask(demo_root: Path, tmp_path: Path) -> None:
    tile = next(t for t in spacenet.find_tiles(demo_root, "vegas") if t.number == 3)
    out = masks.rasterize_file(tile.image_path, tile.geojson_path, tmp_path / "m.tif", "contact")
    assert _read(out).shape == (650, 650) and not _read(out).any()


def test_labels_off_the_image_are_refused(samples_dir: Path, atlanta: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    vegas = samples_dir / "vegas_sn2_rgb" / "RGB-PanSharpen_AOI_2_Vegas_img1010.tif"
    out = tmp_path / "m.tif"
    code = cli.main(["rasterize", str(vegas), str(atlanta / "geotiff_labels.geojson"), str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "overlaps the image" in err
    assert "geotiff_labels.geojson" in err and not list(tmp_path.iterdir())


def test_csv_of_several_images_is_filtered_by_image_id(samples_dir: Path, tmp_path: Path) -> None:
    truth = samples_dir / "sn2_truth_csv" / "SN2_sample_truth.csv"
    image = tmp_path / "AOI_2_Vegas_img3457.tif"
    grid = masks.Grid((650, 650), CRS.from_epsg(4326), Affine(2.7e-6, 0, -115, 0, -2.7e-6, 36))
    masks.write_mask(image, np.zeros((650, 650), np.uint8), grid)
    polygons = masks.read_labels(truth, masks.read_grid(image), image)
    rows = spacenet.read_summary_csv(truth)
    assert len(polygons) == (rows["ImageId"] == "AOI_2_Vegas_img3457").sum() > 0
    with pytest.raises(InputError, match="none matches"):
        masks.read_labels(truth, grid, tmp_path / "other.tif")


def test_missing_image_is_one_line_error(atlanta: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    code = cli.main(["rasterize", str(tmp_path / "nope.tif"), str(atlanta / "sample.csv"),
                     str(tmp_path / "m.tif")])
    assert code == 2 and "nope.tif: file not found" in capsys.readouterr().err


# -- batch: every chip of a chip index -------------------------------------------------------------

@pytest.fixture(scope="module")
def chip_dir(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chips")
    chips.chip_sources(demo_root / "AOI_3_Paris_Train", out, size=256, overlap=32)
    return out


def test_batch_masks_are_the_tile_masks_cut_at_each_chip(chip_dir: Path, tmp_path: Path) -> None:
    report = chip_masks.write_chip_masks(chip_dir, tmp_path, kinds=masks.MASK_KINDS)
    index = chips.read_index(chip_dir / chips.INDEX_FILE)
    assert report.written == 4 * len(index) == 4 * 27 and not report.failures
    for source, rows in index.groupby("source"):
        grid = masks.read_grid(source)
        labels = chip_masks.spacenet_labels(source, rows["image_id"].iloc[0])
        polygons = masks.read_labels(labels, grid)
        for kind in masks.MASK_KINDS:
            tile = masks.make_mask(polygons, grid.shape, kind)
            for _, row in rows.iterrows():
                path = chip_masks.mask_path(tmp_path, row, kind)
                with rasterio.open(path) as mask, rasterio.open(chip_dir / row["path"]) as chip:
                    assert mask.transform == chip.transform and mask.crs == chip.crs
                    window = tile[row["row_off"]:row["row_off"] + 256,
                                  row["col_off"]:row["col_off"] + 256]
                    assert np.array_equal(mask.read(1), window), (path, kind)
    table = pd.read_csv(tmp_path / chip_masks.MASK_INDEX, keep_default_na=False)
    assert len(table) == 27 and (tmp_path / table["contact"].iloc[0]).exists()


def test_batch_is_idempotent_and_keeps_its_parameters(chip_dir: Path, tmp_path: Path) -> None:
    first = chip_masks.write_chip_masks(chip_dir, tmp_path)
    again = chip_masks.write_chip_masks(chip_dir, tmp_path)
    assert (first.written, again.written, again.skipped) == (81, 0, 81)
    with pytest.raises(InputError, match="holds masks made with"):
        chip_masks.write_chip_masks(chip_dir, tmp_path,
                                     params=chip_masks.MaskParams(contact_spacing=6))


def test_chip_windows_of_real_labels_match_the_oracles(atlanta: Path) -> None:
    polygons = masks.read_labels(atlanta / "sample.csv", masks.Grid((900, 900), None,
                                                                    Affine.identity()))
    tree = shapely.STRtree(polygons)
    params = chip_masks.MaskParams()
    for kind, oracle in [("boundary", "sample_b_mask_inner.tif"), ("contact", "sample_c_mask.tif")]:
        truth = _read(atlanta / oracle)
        for row_off, col_off in itertools.product(chips.chip_offsets(900, 256, 32), repeat=2):
            row = {"row_off": row_off, "col_off": col_off, "size": 256}
            mask = chip_masks.chip_mask(polygons, tree, (900, 900), row, kind, params)
            assert np.array_equal(mask, truth[row_off:row_off + 256, col_off:col_off + 256])


def test_batch_reports_bad_tiles_and_does_the_rest(chip_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / "chips"
    copy.mkdir()
    index = chips.read_index(chip_dir / chips.INDEX_FILE)
    lost = index["source"].iloc[0]
    index.loc[index["source"] == lost, "source"] = str(tmp_path / "gone" / Path(lost).name)
    index.to_csv(copy / chips.INDEX_FILE, index=False)
    code = cli.main(["masks", str(copy), str(tmp_path / "masks"), "--kinds", "footprint"])
    captured = capsys.readouterr()
    assert code == 2 and "1 of 3 tiles have no masks" in captured.err
    assert "18 masks written" in captured.out
    assert len(list((tmp_path / "masks" / "footprint").rglob("*.tif"))) == 18
