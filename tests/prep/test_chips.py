"""Chip grid, per-AOI stretch, chip GeoTIFFs and index, idempotence and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from aerialsam import cli
from aerialsam.data import spacenet3
from aerialsam.errors import InputError
from aerialsam.prep import chips
from aerialsam.prep.stretch import (
    STRETCH_FILE,
    Stretch,
    apply_stretch,
    compute_stretch,
    load_stretches,
    save_stretches,
)


@pytest.fixture(scope="module")
def vegas(samples_dir: Path) -> Path:
    """The real SpaceNet 2 Vegas tiles among the samples."""
    return samples_dir / "vegas_sn2_rgb"


@pytest.fixture(scope="module")
def img1010(vegas: Path) -> Path:
    """The real Vegas tile img1010 (11-bit RGB, 650 x 650)."""
    return vegas / "RGB-PanSharpen_AOI_2_Vegas_img1010.tif"


def write_raster(path: Path, data: np.ndarray, crs: str | None = "EPSG:32611",
                 nodata: float | None = None) -> Path:
    """A small GeoTIFF (bands, rows, cols) with 0.5 m pixels."""
    profile = {"driver": "GTiff", "dtype": data.dtype.name, "count": data.shape[0],
               "height": data.shape[1], "width": data.shape[2], "nodata": nodata,
               "transform": from_origin(500000, 4000000, 0.5, 0.5)}
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(), src.profile


# ---- grid -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("length", "size", "overlap", "expected"), [
    (650, 256, 32, [0, 224, 394]),
    (650, 512, 64, [0, 138]),
    (256, 256, 32, [0]),
    (100, 256, 32, [0]),
    (480, 256, 32, [0, 224]),
    (481, 256, 32, [0, 224, 225]),
    (1000, 100, 0, list(range(0, 1000, 100))),
])
def test_chip_offsets(length: int, size: int, overlap: int, expected: list[int]) -> None:
    assert chips.chip_offsets(length, size, overlap) == expected


@pytest.mark.parametrize(("length", "size", "overlap"),
                         [(650, 256, 32), (20000, 512, 64), (777, 100, 99), (513, 512, 0)])
def test_chip_offsets_cover_with_at_least_the_overlap(length: int, size: int,
                                                      overlap: int) -> None:
    offsets = chips.chip_offsets(length, size, overlap)
    assert offsets[0] == 0 and offsets[-1] + size == length
    steps = np.diff(offsets)
    assert (steps >= 1).all() and (steps <= size - overlap).all()


@pytest.mark.parametrize(("size", "overlap", "argument"),
                         [(256, 256, "--overlap"), (256, 300, "--overlap"), (256, -1, "--overlap"),
                          (0, 0, "--size")])
def test_bad_grid_names_the_argument(size: int, overlap: int, argument: str) -> None:
    with pytest.raises(InputError) as info:
        chips.check_grid(size, overlap)
    assert info.value.source == argument


# ---- the done-when check on the real Vegas tiles ---------------------------------------------

def test_vegas_cli_nine_chips_per_tile_agreeing_on_overlaps(vegas: Path, tmp_path: Path) -> None:
    out = tmp_path / "chips"
    assert cli.main(["chip", str(vegas), str(out), "--size", "256", "--overlap", "32"]) == 0
    index = chips.read_index(out / "chips.csv")
    assert list(index.columns) == list(chips.CHIP_COLUMNS)
    assert index.groupby("image_id").size().tolist() == [9] * 6
    assert sorted(set(index["row_off"])) == sorted(set(index["col_off"])) == [0, 224, 394]
    assert (index[["pad_right", "pad_bottom"]] == 0).all().all()
    for _, rows in index.groupby("image_id"):
        tile = {}
        for row in rows.itertuples():
            data, profile = read(out / row.path)
            assert data.shape == (3, 256, 256) and data.dtype == np.uint8
            assert profile["crs"].to_epsg() == 4326
            tile[row.row_off, row.col_off] = (data, profile)
        _assert_neighbours_agree(tile, 256)
        _assert_transforms_match_source(tile, rows.iloc[0].source)


def _assert_neighbours_agree(tile: dict, size: int) -> None:
    """Overlapping pixels of horizontal and vertical neighbours are identical."""
    pairs = 0
    for (r, c), (data, _) in tile.items():
        for (r2, c2), (other, _) in tile.items():
            if (r2, c2) in ((r, c + 224), (r, c + 170), (r + 224, c), (r + 170, c)):
                dr, dc = r2 - r, c2 - c
                np.testing.assert_array_equal(data[:, dr:, dc:], other[:, :size - dr, :size - dc])
                pairs += 1
    assert pairs == 12  # 6 horizontal and 6 vertical neighbour pairs in a 3 x 3 grid


def _assert_transforms_match_source(tile: dict, source: str) -> None:
    with rasterio.open(source) as src:
        for (r, c), (_, profile) in tile.items():
            assert profile["transform"] == window_transform(Window(c, r, 256, 256), src.transform)


def test_chips_are_the_aoi_stretch_of_the_source_window(vegas: Path, tmp_path: Path) -> None:
    report = chips.chip_sources(vegas, tmp_path, size=256, overlap=32)
    stretch = load_stretches(tmp_path / STRETCH_FILE)["AOI_2_Vegas"]
    row = report.index.iloc[4]  # an inner chip
    with rasterio.open(row.source) as src:
        window = src.read(window=Window(row.col_off, row.row_off, 256, 256))
    chip, profile = read(tmp_path / row.path)
    np.testing.assert_array_equal(chip, apply_stretch(window, stretch))
    assert profile["nodata"] == 0 and chip.min() >= 1
    left, bottom, right, top = rasterio.open(tmp_path / row.path).bounds
    assert (row.minx, row.miny, row.maxx, row.maxy) == pytest.approx((left, bottom, right, top),
                                                                     abs=1e-12)


def test_stretch_of_img1010_matches_its_known_percentiles(img1010: Path) -> None:
    stretch = compute_stretch([img1010], (2, 98))
    # PROVENANCE.md: typical 2-98 % of img1010 is R 159-731, G 282-834, B 252-575
    np.testing.assert_allclose(stretch.low, [159, 282, 252], atol=4)
    np.testing.assert_allclose(stretch.high, [731, 834, 575], atol=6)
    assert stretch.tiles_sampled == 1 and stretch.pixels_sampled > 40_000


def test_stretch_is_seeded_and_leaves_nodata_out(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    paths = []
    for i in range(6):
        data = rng.integers(100, 1100, size=(3, 80, 90), dtype=np.uint16)
        data[:, :20] = 0  # nodata rows must not pull the low percentile down
        paths.append(write_raster(tmp_path / f"t{i}.tif", data, nodata=0))
    first = compute_stretch(paths, sample_tiles=3, seed=5)
    assert first == compute_stretch(paths, sample_tiles=3, seed=5)
    assert first.tiles_sampled == 3
    assert all(110 < v < 140 for v in first.low) and all(1060 < v < 1090 for v in first.high)


def test_apply_stretch_maps_bounds_and_keeps_nodata() -> None:
    stretch = Stretch((100.0,), (354.0,))
    data = np.array([[[0, 50, 100, 227, 354, 2000]]], dtype=np.uint16)
    np.testing.assert_array_equal(apply_stretch(data, stretch, [0]), [[[0, 1, 1, 128, 255, 255]]])
    floats = data.astype(np.float32)
    floats[0, 0, 1] = np.nan
    np.testing.assert_array_equal(apply_stretch(floats, stretch, [0]), [[[0, 0, 1, 128, 255, 255]]])


# ---- stretch reuse, idempotence, parallel ------------------------------------------------------

def test_saved_stretch_is_reused_not_recomputed(img1010: Path, tmp_path: Path) -> None:
    save_stretches(tmp_path / STRETCH_FILE,
                   {"AOI_2_Vegas": Stretch((0.0, 0.0, 0.0), (2047.0, 2047.0, 2047.0))})
    report = chips.chip_sources([chips.find_sources(img1010)[0]], tmp_path, 256, 32)
    chip, _ = read(tmp_path / report.index.iloc[0].path)
    with rasterio.open(img1010) as src:
        raw = src.read(window=Window(0, 0, 256, 256)).astype(float)
    np.testing.assert_array_equal(chip, np.clip(np.rint(1 + raw * 254 / 2047), 1, 255))
    other = tmp_path / "other"
    chips.chip_sources(img1010, other, 256, 32, stretch_path=tmp_path / STRETCH_FILE)
    assert load_stretches(other / STRETCH_FILE)["AOI_2_Vegas"].high == (2047.0,) * 3
    save_stretches(tmp_path / "new.json",
                   {"AOI_2_Vegas": Stretch((1.0, 1.0, 1.0), (999.0, 999.0, 999.0))})
    with pytest.raises(InputError, match="differ from those the chips"):
        chips.chip_sources(img1010, other, 256, 32, stretch_path=tmp_path / "new.json")


def test_rerun_skips_complete_chips_and_redoes_missing_ones(vegas: Path, tmp_path: Path) -> None:
    first = chips.chip_sources(vegas, tmp_path, 256, 32)
    assert (first.written, first.skipped) == (54, 0)
    stamp = (tmp_path / first.index.iloc[0].path).stat().st_mtime_ns
    (tmp_path / first.index.iloc[5].path).unlink()
    second = chips.chip_sources(vegas, tmp_path, 256, 32)
    assert (second.written, second.skipped) == (1, 53)
    assert (tmp_path / first.index.iloc[0].path).stat().st_mtime_ns == stamp
    assert second.index.equals(first.index)
    with pytest.raises(InputError, match="size 256 overlap 32"):
        chips.chip_sources(vegas, tmp_path, 512, 64)


def test_two_workers_give_the_same_chips(vegas: Path, tmp_path: Path) -> None:
    one = chips.chip_sources(vegas, tmp_path / "one", 512, 64, workers=1)
    two = chips.chip_sources(vegas, tmp_path / "two", 512, 64, workers=2)
    assert one.index.drop(columns="path").equals(two.index.drop(columns="path"))
    for path in one.index["path"]:
        np.testing.assert_array_equal(read(tmp_path / "one" / path)[0],
                                      read(tmp_path / "two" / path)[0])


# ---- small rasters, nodata, uint8 ------------------------------------------------------------

def test_raster_smaller_than_a_chip_is_padded_with_nodata(tmp_path: Path) -> None:
    data = np.full((3, 300, 100), 500, dtype=np.uint16)
    data[:, 10:20, 10:20] = 0  # source nodata
    data[:, 50:60] = 1500
    src = write_raster(tmp_path / "small.tif", data, nodata=0)
    report = chips.chip_sources(src, tmp_path / "out", size=256, overlap=32)
    index = report.index
    assert index[["row_off", "col_off", "pad_right", "pad_bottom"]].values.tolist() == [
        [0, 0, 156, 0], [44, 0, 156, 0]]
    assert index.iloc[0].aoi == tmp_path.name and index.iloc[0].image_id == "small"
    chip, profile = read(tmp_path / "out" / index.iloc[0].path)
    assert chip.shape == (3, 256, 256) and profile["nodata"] == 0
    assert (chip[:, :, 100:] == 0).all()  # padding is nodata
    assert (chip[:, 10:20, 10:20] == 0).all()  # nodata stays nodata
    assert (chip[:, :10, :100] >= 1).all() and (chip[:, 50:60, :100] == 255).all()
    assert profile["transform"] == from_origin(500000, 4000000, 0.5, 0.5)


def test_uint8_passes_through_unchanged(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 256, size=(3, 300, 300), dtype=np.uint8)
    src = write_raster(tmp_path / "rgb8.tif", data)
    report = chips.chip_sources(src, tmp_path / "out", size=256, overlap=32)
    assert len(report.index) == 4
    assert load_stretches(tmp_path / "out" / STRETCH_FILE)[tmp_path.name].identity
    for row in report.index.itertuples():
        chip, _ = read(tmp_path / "out" / row.path)
        np.testing.assert_array_equal(chip, data[:, row.row_off:row.row_off + 256,
                                                 row.col_off:row.col_off + 256])


def test_uint8_with_nodata_small_both_ways_keeps_its_nodata(tmp_path: Path) -> None:
    data = np.full((3, 100, 120), 40, dtype=np.uint8)
    data[:, :5] = 255
    src = write_raster(tmp_path / "tiny.tif", data, nodata=255)
    report = chips.chip_sources(src, tmp_path / "out", size=128, overlap=16)
    assert report.index[["pad_right", "pad_bottom"]].values.tolist() == [[8, 28]]
    chip, profile = read(tmp_path / "out" / report.index.iloc[0].path)
    assert profile["nodata"] == 255
    np.testing.assert_array_equal(chip[:, :100, :120], data)
    assert (chip[:, 100:] == 255).all() and (chip[:, :, 120:] == 255).all()


def test_single_band_becomes_grey_rgb(tmp_path: Path) -> None:
    data = np.arange(64 * 64, dtype=np.uint16).reshape(1, 64, 64)
    src = write_raster(tmp_path / "pan.tif", data)
    report = chips.chip_sources(src, tmp_path / "out", size=64, overlap=8)
    chip, _ = read(tmp_path / "out" / report.index.iloc[0].path)
    assert (chip[0] == chip[1]).all() and (chip[1] == chip[2]).all() and chip[0].max() == 255


# ---- bad input -------------------------------------------------------------------------------

@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Two good tiles, a corrupt one, a truncated one and one without CRS."""
    folder = tmp_path / "tiles"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for name in ("a", "b"):
        write_raster(folder / f"{name}.tif",
                     rng.integers(100, 2000, size=(3, 300, 300), dtype=np.uint16))
    (folder / "corrupt.tif").write_bytes(b"II*\x00 definitely not a tiff" * 10)
    good = folder / "a.tif"
    (folder / "truncated.tif").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    write_raster(folder / "nocrs.tif", rng.integers(0, 2000, (3, 300, 300), dtype=np.uint16),
                 crs=None)
    return folder


def test_bad_tiles_are_reported_and_the_rest_is_chipped(mixed_folder: Path) -> None:
    out = mixed_folder.parent / "out"
    report = chips.chip_sources(mixed_folder, out, size=256, overlap=32)
    failed = {Path(path).name: problem for path, problem in report.failures}
    assert sorted(failed) == ["corrupt.tif", "nocrs.tif", "truncated.tif"]
    assert "no CRS" in failed["nocrs.tif"]
    assert sorted(report.index["image_id"].unique()) == ["a", "b"]
    written = sorted(p.name for p in (out / "tiles").iterdir())
    assert written == sorted(f"{t}_r{r}_c{c}.tif" for t in "ab" for r in (0, 44) for c in (0, 44))


def test_cli_reports_bad_tiles_at_the_end_with_a_count(mixed_folder: Path, capsys) -> None:
    out = mixed_folder.parent / "out"
    assert cli.main(["chip", str(mixed_folder), str(out), "--size", "256", "--overlap", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and err[-1].startswith("aerialsam chip: error: 3 of 5 tiles")
    assert {Path(line.split(": ")[2]).name for line in err[:3]} == {
        "corrupt.tif", "truncated.tif", "nocrs.tif"}


@pytest.mark.parametrize("name", ["corrupt.tif", "truncated.tif", "nocrs.tif"])
def test_cli_one_bad_file_gives_one_line_and_writes_nothing(mixed_folder: Path, name: str,
                                                           capsys) -> None:
    out = mixed_folder.parent / "out"
    assert cli.main(["chip", str(mixed_folder / name), str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and name in err[0] and "Traceback" not in err[0]
    assert not list(out.rglob("*.tif")) and not list(out.rglob(".*part*"))
    assert not (out / "chips.csv").exists()


def test_cli_truncated_tile_with_a_given_stretch_leaves_no_chip(img1010: Path, tmp_path: Path,
                                                                 capsys) -> None:
    truncated = tmp_path / "RGB-PanSharpen_AOI_2_Vegas_img1010.tif"
    truncated.write_bytes(img1010.read_bytes()[:2_200_000])  # the last chip row is cut short
    save_stretches(tmp_path / "s.json", {"AOI_2_Vegas": compute_stretch([img1010])})
    out = tmp_path / "out"
    assert cli.main(["chip", str(truncated), str(out), "--size", "256", "--overlap", "32",
                     "--stretch", str(tmp_path / "s.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and truncated.name in err[0] and "cannot read" in err[0]
    assert not [p for p in out.rglob("*")]  # no chip, index, stretch or empty AOI folder


def test_cli_overlap_not_below_size_is_one_line(tmp_path: Path, capsys) -> None:
    src = write_raster(tmp_path / "t.tif", np.ones((3, 50, 50), np.uint16))
    assert cli.main(["chip", str(src), str(tmp_path / "out"), "--size", "64",
                     "--overlap", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overlap" in err[0]
    assert not (tmp_path / "out").exists()


def test_stretch_file_round_trip_and_bad_file(tmp_path: Path) -> None:
    stretch = Stretch((1.0, 2.0, 3.0), (10.0, 20.0, 30.0), tiles_sampled=4, seed=7)
    save_stretches(tmp_path / STRETCH_FILE, {"X": stretch})
    assert load_stretches(tmp_path / STRETCH_FILE) == {"X": stretch}
    (tmp_path / "bad.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(InputError, match="not a valid stretch file"):
        load_stretches(tmp_path / "bad.json")


_GOOD_ENTRY = Stretch((1.0, 2.0, 3.0), (10.0, 20.0, 30.0)).to_dict()


@pytest.mark.parametrize(("document", "problem"), [
    ({**_GOOD_ENTRY, "low": [float("nan"), 2, 3]}, "A: low: item 0: must be a finite number"),
    ({**_GOOD_ENTRY, "high": [10, 20, float("inf")]}, "A: high: item 2: must be a finite number"),
    ({**_GOOD_ENTRY, "low": [10, 2, 3]}, "A: band 1: low bound 10 is not below the high bound 10"),
    ({**_GOOD_ENTRY, "low": [1, 2], "high": [9, 9]},
     "A: low: expected 3 values (R, G, B), found 2"),
    ({**_GOOD_ENTRY, "bands": [0, 1, 2]}, "A: bands: band numbers start at 1"),
    ({**_GOOD_ENTRY, "percentiles": [98, 2]}, "A: percentiles: need 0 <= low < high <= 100"),
    ({**_GOOD_ENTRY, "dtype": "wibble"}, "A: dtype: 'wibble' is not a data type"),
    ({**_GOOD_ENTRY, "colour": "red"}, "A: unknown key(s) ['colour']"),
    ({"low": [1, 2, 3]}, "A: not a valid stretch entry (no high)"),
    ([1, 2], "A: not a valid stretch entry (expected an object)"),
])
def test_a_stretch_file_with_bad_bounds_is_refused_naming_the_aoi(tmp_path: Path, document: object,
                                                                  problem: str) -> None:
    path = tmp_path / STRETCH_FILE
    path.write_text(json.dumps({"version": 1, "aois": {"A": document}}))
    with pytest.raises(InputError) as caught:
        load_stretches(path)
    assert str(caught.value).startswith(f"{path}: {problem}")


@pytest.mark.parametrize(("content", "problem"), [
    (bytes(range(256)), "not UTF-8 text: NUL byte"),
    ("{\"version\": 1, \"aois\": {\"Café\": {}}}".encode("latin-1"), "not UTF-8 text: byte 0xe9"),
    (b'{"version": 1, "ao', "not valid stretch file (JSON) (line 1"),
    (b"[1, 2]", "not a valid stretch file (expected a JSON object"),
    (b'{"version": 1, "aois": [1]}', "not a valid stretch file ('aois' is not an object"),
])
def test_an_unreadable_stretch_file_is_one_line(tmp_path: Path, content: bytes,
                                                problem: str) -> None:
    path = tmp_path / STRETCH_FILE
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_stretches(path)
    assert str(caught.value).startswith(f"{path}: {problem}")


def test_stretch_bounds_of_huge_constant_values_stay_ordered(tmp_path: Path) -> None:
    # 1e-6 is below the float spacing at 1e12: the high bound must still be above the low one
    src = write_raster(tmp_path / "flat.tif", np.full((3, 20, 20), 1e12, np.float64))
    stretch = compute_stretch([src])
    assert all(low < high for low, high in zip(stretch.low, stretch.high, strict=True))
    save_stretches(tmp_path / STRETCH_FILE, {"X": stretch})
    assert load_stretches(tmp_path / STRETCH_FILE) == {"X": stretch}


@pytest.mark.parametrize("name", ["AOI_2_Vegas", "myarea", "area-2.v1", "..."])
def test_plain_aoi_names_pass(name: str) -> None:
    assert chips.check_aoi_name(name) == name


@pytest.mark.parametrize("name", ["../escape", "..", ".", "", "a/b", "/abs", "a\\b", "my area"])
def test_an_aoi_that_is_no_plain_folder_name_is_refused(tmp_path: Path, name: str) -> None:
    src = write_raster(tmp_path / "t.tif", np.ones((3, 40, 40), np.uint16))
    with pytest.raises(InputError, match=r"^--aoi: .* is not a plain AOI name"):
        chips.chip_sources(src, tmp_path / "out", size=32, overlap=0, aoi=name)
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape").exists()


def test_a_custom_aoi_name_names_the_chip_folder(tmp_path: Path) -> None:
    src = write_raster(tmp_path / "t.tif", np.ones((3, 40, 40), np.uint16))
    report = chips.chip_sources(src, tmp_path / "out", size=32, overlap=0, aoi="myarea")
    assert set(report.index["aoi"]) == {"myarea"}
    assert (tmp_path / "out" / "myarea").is_dir()


def test_a_killed_writers_temporary_is_no_source(tmp_path: Path) -> None:
    data = np.ones((3, 40, 40), np.uint16)
    write_raster(tmp_path / "a.tif", data)
    (tmp_path / ".a.4242-abcdefgh.part.tif").write_bytes(b"II*\x00 cut short")
    assert [s.path.name for s in chips.find_sources(tmp_path)] == ["a.tif"]


def test_spacenet_aoi_folder_is_a_source(img1010: Path, tmp_path: Path) -> None:
    aoi_dir = tmp_path / "AOI_2_Vegas_Train" / "RGB-PanSharpen"
    aoi_dir.mkdir(parents=True)
    shutil.copy(img1010, aoi_dir)
    sources = chips.find_sources(tmp_path / "AOI_2_Vegas_Train")
    assert [(s.aoi, s.image_id) for s in sources] == [("AOI_2_Vegas", "AOI_2_Vegas_img1010")]


def test_strip_budget_does_not_change_the_chips(img1010: Path, tmp_path: Path, monkeypatch) -> None:
    whole = chips.chip_sources(img1010, tmp_path / "whole", 256, 32)
    with rasterio.open(img1010) as src:
        assert [len(s) for s in chips._strips(src, [0, 224, 394], 256)] == [3]
        monkeypatch.setattr(chips, "STRIP_BYTES", 1)  # one chip row per read, as for huge rasters
        assert [len(s) for s in chips._strips(src, [0, 224, 394], 256)] == [1, 1, 1]
    strips = chips.chip_sources(img1010, tmp_path / "strips", 256, 32)
    assert strips.index.drop(columns="path").equals(whole.index.drop(columns="path"))
    for path in whole.index["path"]:
        np.testing.assert_array_equal(read(tmp_path / "whole" / path)[0],
                                      read(tmp_path / "strips" / path)[0])


# ---- SpaceNet 3 (roads) sources --------------------------------------------------------------

def sn3_tile(root: Path, aoi: str, number: int, source: Path) -> Path:
    """A copy of ``source`` named and placed as a SpaceNet 3 PS-RGB image."""
    path = spacenet3.image_path(root / spacenet3.aoi_dir_name(aoi), number)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, path)
    return path


def test_spacenet3_aoi_folders_are_sources(img1010: Path, tmp_path: Path) -> None:
    sn3_tile(tmp_path, "paris", 4, img1010)
    sn3_tile(tmp_path, "vegas", 12, img1010)
    sn3_tile(tmp_path, "vegas", 3, img1010)
    pairs = [(s.aoi, s.image_id) for s in chips.find_sources(tmp_path)]
    assert pairs == [("AOI_2_Vegas", "AOI_2_Vegas_img3"), ("AOI_2_Vegas", "AOI_2_Vegas_img12"),
                     ("AOI_3_Paris", "AOI_3_Paris_img4")]
    vegas = tmp_path / "SN3_roads_train_AOI_2_Vegas"
    assert [s.image_id for s in chips.find_sources(vegas)] == ["AOI_2_Vegas_img3",
                                                              "AOI_2_Vegas_img12"]
    report = chips.chip_sources(vegas, tmp_path / "chips", 512, 64)
    assert report.written == 8 and not report.failures
    assert list(report.index["chip_id"][:2]) == ["AOI_2_Vegas_img12_r0_c0",
                                                 "AOI_2_Vegas_img12_r0_c138"]
    assert set(report.index["path"].str.split("/").str[0]) == {"AOI_2_Vegas"}


def test_spacenet2_and_3_folders_in_one_source_are_refused(img1010: Path, tmp_path: Path) -> None:
    sn3_tile(tmp_path, "vegas", 1, img1010)
    (tmp_path / "AOI_2_Vegas_Train" / "RGB-PanSharpen").mkdir(parents=True)
    shutil.copy(img1010, tmp_path / "AOI_2_Vegas_Train" / "RGB-PanSharpen")
    with pytest.raises(InputError, match="holds SpaceNet 2 and SpaceNet 3 AOI folders"):
        chips.find_sources(tmp_path)
    assert [s.image_id for s in chips.find_sources(tmp_path / "AOI_2_Vegas_Train")] == \
        ["AOI_2_Vegas_img1010"]


def test_chip_command_takes_a_spacenet3_aoi_folder(img1010: Path, tmp_path: Path,
                                                  capsys) -> None:
    sn3_tile(tmp_path, "khartoum", 7, img1010)
    aoi_dir = tmp_path / "SN3_roads_train_AOI_5_Khartoum"
    assert cli.main(["chip", str(aoi_dir), str(tmp_path / "chips"), "--size", "650"]) == 0
    assert "1 chips from 1 tiles" in capsys.readouterr().out
    index = chips.read_index(tmp_path / "chips" / chips.INDEX_FILE)
    assert list(index[["aoi", "image_id"]].iloc[0]) == ["AOI_5_Khartoum", "AOI_5_Khartoum_img7"]
