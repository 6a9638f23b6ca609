"""Tiled inference: blend weights, stitching without seams, TTA, bands, stretch, memory bound.

Most chip models here are cheap numpy functions of the pixels, so the stitched map can be
checked exactly; one test runs a random SAM 2.1 tiny at 256 px on a raster of one chip.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from aerialsam.errors import InputError
from aerialsam.inference.chip_models import Sam2Prompted
from aerialsam.inference.prompts import Prompts
from aerialsam.inference.tiling import NO_FLIP, Flip, blend_weights, predict_raster
from aerialsam.models.sam2 import load_sam2
from aerialsam.prep.stretch import Stretch, apply_stretch, compute_stretch

TRANSFORM = Affine(0.3, 0.0, 500_000.0, 0.0, -0.3, 4_000_000.0)
CRS = "EPSG:32611"
WEIGHTS = np.array([1.0, 2.0, 4.0], np.float32) / (7.0 * 255.0)
"""A pointwise model mixing R, G, B with distinct weights: tells the bands apart."""


def write_raster(path: Path, data: np.ndarray, nodata: float | None = None,
                 block: int = 0) -> Path:
    """Write (bands, rows, cols) ``data`` as a GeoTIFF; ``block`` > 0 writes it tiled, in strips."""
    profile = {"driver": "GTiff", "width": data.shape[2], "height": data.shape[1],
               "count": data.shape[0], "dtype": data.dtype.name, "crs": CRS,
               "transform": TRANSFORM, "nodata": nodata}
    if block:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def mix(chips: np.ndarray, windows: Sequence[Window], flip: Flip = NO_FLIP) -> np.ndarray:
    """A pointwise, flip-equivariant chip model: a weighted sum of R, G, B in 0..1."""
    return chips.astype(np.float32) @ WEIGHTS


def read_prob(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    """A (3, 300, 420) uint8 image of random pixels (seed 0)."""
    return np.random.default_rng(0).integers(0, 256, (3, 300, 420), dtype=np.uint8)


def test_blend_weights_ramp_and_symmetry() -> None:
    w = blend_weights(8, 2)
    ramp = np.array([0.25, 0.75, 1, 1, 1, 1, 0.75, 0.25], np.float32)
    np.testing.assert_array_equal(w, np.outer(ramp, ramp))
    assert w.dtype == np.float32 and w.shape == (8, 8)
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_array_equal(w, w[::-1])
    np.testing.assert_array_equal(w, w[:, ::-1])
    assert (w[2:6, 2:6] == 1).all()
    np.testing.assert_array_equal(blend_weights(5, 0), np.ones((5, 5), np.float32))
    # Where two chips overlap by exactly `overlap`, their ramps add up to 1.
    edge = blend_weights(64, 16)[32]
    np.testing.assert_allclose(edge[:16] + edge[-16:], 1.0, rtol=1e-6)
    assert blend_weights(64, 16).min() > 0  # the raster's border pixels still count


def test_pointwise_model_gives_the_image_back(tmp_path: Path, rgb: np.ndarray) -> None:
    src = write_raster(tmp_path / "rgb.tif", rgb)
    out = predict_raster(src, mix, tmp_path / "prob.tif", size=64, overlap=16, batch_size=5)
    expected = np.moveaxis(rgb, 0, -1).astype(np.float32) @ WEIGHTS
    prob = read_prob(out)
    assert prob.shape == (300, 420) and prob.dtype == np.float32
    # 7 x 9 chips, edges shifted inward: blending equal values changes nothing (no seams).
    np.testing.assert_allclose(prob, expected, atol=1e-6)


def test_output_georeferencing(tmp_path: Path, rgb: np.ndarray) -> None:
    src = write_raster(tmp_path / "rgb.tif", rgb, block=64)
    out = predict_raster(src, mix, tmp_path / "sub" / "prob.tif", size=128, overlap=32)
    with rasterio.open(src) as a, rasterio.open(out) as b:
        assert b.transform == a.transform and b.crs == a.crs
        assert (b.width, b.height, b.count, b.dtypes[0]) == (a.width, a.height, 1, "float32")
    assert sorted(p.name for p in out.parent.iterdir()) == ["prob.tif"]  # no temporary left


def test_nodata_pixels_get_zero(tmp_path: Path, rgb: np.ndarray) -> None:
    data = np.maximum(rgb, 1)  # 0 only where nodata
    data[:, :40, :50] = 0
    src = write_raster(tmp_path / "nd.tif", data, nodata=0)
    prob = read_prob(predict_raster(src, mix, tmp_path / "p.tif", size=128, overlap=32))
    assert (prob[:40, :50] == 0).all()
    assert (prob[40:] > 0).all()


class Recorder:
    """A pointwise chip model that keeps every chip it sees with its window."""

    def __init__(self) -> None:
        self.seen: list[tuple[np.ndarray, Window]] = []

    def __call__(self, chips: np.ndarray, windows: Sequence[Window],
                 flip: Flip = NO_FLIP) -> np.ndarray:
        self.seen += [(chip.copy(), window) for chip, window in zip(chips, windows, strict=True)]
        return mix(chips, windows, flip)


def test_overlapping_windows_agree(tmp_path: Path, rgb: np.ndarray) -> None:
    src = write_raster(tmp_path / "rgb.tif", rgb)
    recorder = Recorder()
    predict_raster(src, recorder, tmp_path / "p.tif", size=128, overlap=40, batch_size=3)
    image = np.moveaxis(rgb, 0, -1)
    windows = {(w.col_off, w.row_off) for _, w in recorder.seen}
    assert windows == {(c, r) for r in (0, 88, 172) for c in (0, 88, 176, 264, 292)}
    for chip, w in recorder.seen:
        # Every chip is the raster under its window: where two chips overlap they agree.
        np.testing.assert_array_equal(chip, image[w.row_off:w.row_off + 128,
                                                  w.col_off:w.col_off + 128])


def test_padded_chip_of_a_small_raster(tmp_path: Path, rgb: np.ndarray) -> None:
    src = write_raster(tmp_path / "small.tif", rgb[:, :50, :60])
    recorder = Recorder()
    prob = read_prob(predict_raster(src, recorder, tmp_path / "p.tif", size=64, overlap=8))
    (chip, window), = recorder.seen
    assert (window.col_off, window.row_off) == (0, 0)
    assert (chip[50:] == 0).all() and (chip[:, 60:] == 0).all()
    np.testing.assert_allclose(prob, mix(np.moveaxis(rgb[:, :50, :60], 0, -1), []), atol=1e-6)


def constant_per_chip(chips: np.ndarray, windows: Sequence[Window],
                      flip: Flip = NO_FLIP) -> np.ndarray:
    """Each chip's output is one value in 0..1, different from chip to chip."""
    values = [np.random.default_rng([int(w.col_off), int(w.row_off)]).random() for w in windows]
    return np.broadcast_to(np.array(values, np.float32)[:, None, None], chips.shape[:3]).copy()


def test_no_step_at_chip_borders(tmp_path: Path, rgb: np.ndarray) -> None:
    src = write_raster(tmp_path / "rgb.tif", rgb)
    size, overlap = 64, 16
    prob = read_prob(predict_raster(src, constant_per_chip, tmp_path / "p.tif", size, overlap))
    steps = max(np.abs(np.diff(prob, axis=0)).max(), np.abs(np.diff(prob, axis=1)).max())
    # Linear ramps over the overlap: a jump of at most 1 spreads over `overlap` pixels.
    assert steps <= 1.0 / overlap + 1e-5
    spread = np.ptp(prob)
    assert spread > 0.5  # the chips really differ: a stitch without blending would jump
    # A pixel only one chip covers is exactly that chip's value.
    first = constant_per_chip(np.zeros((1, 1, 1, 3)), [Window(0, 0, size, size)])[0, 0, 0]
    np.testing.assert_allclose(prob[:size - overlap, :size - overlap], first, rtol=1e-6)


def test_tta_of_a_flip_equivariant_model_changes_nothing(tmp_path: Path,
                                                        rgb: np.ndarray) -> None:
    src = write_raster(tmp_path / "rgb.tif", rgb)
    plain = read_prob(predict_raster(src, mix, tmp_path / "a.tif", 64, 16))
    tta = read_prob(predict_raster(src, mix, tmp_path / "b.tif", 64, 16, tta=True))
    np.testing.assert_allclose(tta, plain, atol=1e-6)


def column_ramp(chips: np.ndarray, windows: Sequence[Window], flip: Flip = NO_FLIP) -> np.ndarray:
    """Not flip-equivariant: each pixel's value is its column in the (flipped) chip."""
    size = chips.shape[2]
    return np.broadcast_to(np.arange(size, dtype=np.float32) / size, chips.shape[:3]).copy()


def test_tta_unflips_each_output(tmp_path: Path, rgb: np.ndarray) -> None:
    src = write_raster(tmp_path / "rgb.tif", rgb)
    size = 64
    prob = read_prob(predict_raster(src, column_ramp, tmp_path / "p.tif", size, 16, tta=True))
    # Column x and its mirror size - 1 - x average to the same value everywhere.
    np.testing.assert_allclose(prob, (size - 1) / (2 * size), atol=1e-6)


class BoxPainter:
    """A prompted chip model: 1 inside its boxes (mirrored with the chip), 0 elsewhere."""

    def __init__(self, prompts: Prompts) -> None:
        self.prompts = prompts

    def __call__(self, chips: np.ndarray, windows: Sequence[Window],
                 flip: Flip = NO_FLIP) -> np.ndarray:
        out = np.zeros(chips.shape[:3], np.float32)
        for i, window in enumerate(windows):
            for x0, y0, x1, y1 in self.prompts.in_chip(window, flip).astype(int):
                out[i, y0:y1, x0:x1] = 1.0
        return out


def test_tta_flips_prompts_with_the_chips(tmp_path: Path, rgb: np.ndarray) -> None:
    src = write_raster(tmp_path / "rgb.tif", rgb)
    boxes = np.array([[10, 20, 30, 25], [100, 40, 180, 130], [300, 250, 420, 300]])
    painter = BoxPainter(Prompts("box", boxes))
    plain = read_prob(predict_raster(src, painter, tmp_path / "a.tif", 96, 24))
    tta = read_prob(predict_raster(src, painter, tmp_path / "b.tif", 96, 24, tta=True))
    expected = np.zeros((300, 420), np.float32)
    for x0, y0, x1, y1 in boxes:
        expected[y0:y1, x0:x1] = 1.0
    np.testing.assert_allclose(plain, expected, atol=1e-6)
    np.testing.assert_allclose(tta, expected, atol=1e-6)


@pytest.fixture(scope="module")
def tiny() -> object:
    """A random SAM 2.1 tiny at 256 px on the CPU."""
    return load_sam2("tiny", "random", device="cpu", image_size=256)


def test_one_chip_raster_equals_a_single_pass(tmp_path: Path, rgb: np.ndarray,
                                              tiny: object) -> None:
    image = np.ascontiguousarray(rgb[:, :256, :256])
    src = write_raster(tmp_path / "one.tif", image)
    chip = np.moveaxis(image, 0, -1)[None]
    window = [Window(0, 0, 256, 256)]
    prompts = Prompts("box", [[30, 40, 90, 120], [150, 10, 250, 60]])
    model = Sam2Prompted(tiny, prompts)
    single = model(chip, window)[0]
    tiled = read_prob(predict_raster(src, model, tmp_path / "prob.tif", 256, 32))
    assert 0 < single.min() and single.max() < 1
    np.testing.assert_allclose(tiled, single, atol=1e-6)


def test_one_band_is_read_as_grey(tmp_path: Path, rgb: np.ndarray) -> None:
    src = write_raster(tmp_path / "grey.tif", rgb[:1])
    recorder = Recorder()
    prob = read_prob(predict_raster(src, recorder, tmp_path / "p.tif", 128, 32))
    for chip, _ in recorder.seen:
        assert (chip[..., 0] == chip[..., 1]).all() and (chip[..., 0] == chip[..., 2]).all()
    np.testing.assert_allclose(prob, rgb[0] / 255.0, atol=1e-6)


def test_two_bands_are_refused(tmp_path: Path, rgb: np.ndarray) -> None:
    src = write_raster(tmp_path / "two.tif", rgb[:2])
    with pytest.raises(InputError) as info:
        predict_raster(src, mix, tmp_path / "p.tif", 128, 32)
    assert str(info.value) == f"{src}: has 2 bands; expected 1 (grey) or at least 3 (R, G, B)"
    assert not (tmp_path / "p.tif").exists()


def test_a_raster_cut_short_is_one_line_naming_it(tmp_path: Path, rgb: np.ndarray) -> None:
    whole = write_raster(tmp_path / "whole.tif", rgb, block=64)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[:int(whole.stat().st_size * 0.6)])
    with pytest.raises(InputError) as info:  # the strips below the cut, read ahead
        predict_raster(cut, mix, tmp_path / "p.tif", 128, 32)
    message = str(info.value)
    assert message.startswith(f"{cut}: cannot read the raster, truncated or corrupt (")
    assert len(message.splitlines()) == 1
    assert not (tmp_path / "p.tif").exists()


def test_four_bands_use_bands_1_to_3(tmp_path: Path, rgb: np.ndarray) -> None:
    fourth = 255 - rgb[:1]
    src = write_raster(tmp_path / "four.tif", np.concatenate([rgb, fourth]))
    prob = read_prob(predict_raster(src, mix, tmp_path / "p.tif", 128, 32))
    np.testing.assert_allclose(prob, np.moveaxis(rgb, 0, -1).astype(np.float32) @ WEIGHTS,
                               atol=1e-6)


@pytest.fixture(scope="module")
def uint16_image() -> np.ndarray:
    """(3, 200, 300) uint16: a dark left half (100-400) and a bright right half (1000-2500)."""
    rng = np.random.default_rng(1)
    data = rng.integers(100, 400, (3, 200, 300)).astype(np.uint16)
    data[:, :, 150:] = rng.integers(1000, 2500, (3, 200, 150))
    return data


def test_uint16_uses_the_given_stretch(tmp_path: Path, uint16_image: np.ndarray) -> None:
    src = write_raster(tmp_path / "u16.tif", uint16_image)
    stretch = Stretch(low=(0.0, 0.0, 0.0), high=(2540.0, 2540.0, 2540.0))
    # Two chips side by side: a per-chip min-max would map the dark half to 1..255 too.
    prob = read_prob(predict_raster(src, mix, tmp_path / "p.tif", 200, 100, stretch=stretch))
    pixels = np.clip(np.rint(1 + uint16_image / 10.0), 1, 255)  # 1 + v * 254 / 2540
    expected = np.moveaxis(pixels, 0, -1).astype(np.float32) @ WEIGHTS
    np.testing.assert_allclose(prob, expected, atol=1e-6)
    assert prob[:, :150].max() < 0.2 and prob[:, 150:].min() > 0.35


def test_uint16_without_stretch_uses_percentiles_of_the_image(
        tmp_path: Path, uint16_image: np.ndarray) -> None:
    src = write_raster(tmp_path / "u16.tif", uint16_image)
    prob = read_prob(predict_raster(src, mix, tmp_path / "p.tif", 200, 100))
    stretched = apply_stretch(uint16_image, compute_stretch([src]))
    np.testing.assert_allclose(prob, np.moveaxis(stretched, 0, -1).astype(np.float32) @ WEIGHTS,
                               atol=1e-6)


def test_stretch_of_other_bands_is_refused(tmp_path: Path, uint16_image: np.ndarray) -> None:
    src = write_raster(tmp_path / "u16.tif", uint16_image)
    stretch = Stretch(low=(0.0,) * 3, high=(1.0,) * 3, bands=(1, 2, 5))
    with pytest.raises(InputError, match=r"reads bands \[1, 2, 5\] but the image has 3"):
        predict_raster(src, mix, tmp_path / "p.tif", 200, 100, stretch=stretch)


def pattern(row: int, rows: int, width: int) -> np.ndarray:
    """(3, rows, width) uint8 stripes of a synthetic raster, from its row ``row`` on."""
    y = np.arange(row, row + rows, dtype=np.int64)[:, None]
    x = np.arange(width, dtype=np.int64)[None]
    return np.stack([(y * 7 + x * 3) % 256, (y * 5 + x * 11) % 256,
                     (y * 2 + x * 13) % 256]).astype(np.uint8)


def write_striped(path: Path, width: int, height: int) -> Path:
    """A tiled uint8 RGB GeoTIFF written block row by block row (never whole in memory)."""
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 3,
               "dtype": "uint8", "crs": CRS, "transform": TRANSFORM, "tiled": True,
               "blockxsize": 256, "blockysize": 256}
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, height, 256):
            rows = min(256, height - row)
            dst.write(pattern(row, rows, width), window=Window(0, row, width, rows))
    return path


def traced_peak(path: Path, out: Path) -> int:
    """Peak bytes Python and numpy allocate while predicting ``path`` with ``mix``."""
    tracemalloc.start()
    try:
        predict_raster(path, mix, out, size=128, overlap=16, batch_size=8)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streaming_memory_bound(tmp_path: Path) -> None:
    width = 2000
    short = write_striped(tmp_path / "short.tif", width, 2000)
    tall = write_striped(tmp_path / "tall.tif", width, 8000)
    peak_short = traced_peak(short, tmp_path / "short_prob.tif")
    peak_tall = traced_peak(tall, tmp_path / "tall_prob.tif")
    in_memory = width * 8000 * 3  # the tall raster as one uint8 array: 48 MB
    assert peak_tall < 0.25 * in_memory, (peak_tall, in_memory)
    # Memory follows the raster's width and the chip size, not its height.
    assert peak_tall < 1.15 * peak_short, (peak_tall, peak_short)
    with rasterio.open(tmp_path / "tall_prob.tif") as prob:
        last = prob.read(1, window=Window(0, 7000, width, 1000))
    expected = np.moveaxis(pattern(7000, 1000, width), 0, -1).astype(np.float32) @ WEIGHTS
    np.testing.assert_allclose(last, expected, atol=1e-6)


def two_outputs(chips: np.ndarray, windows: Sequence[Window], flip: Flip = NO_FLIP) -> np.ndarray:
    """A pointwise model with two outputs (footprint, contact): red and blue in 0..1."""
    return np.moveaxis(chips[..., [0, 2]].astype(np.float32) / 255.0, -1, 1)


def test_models_with_two_outputs_write_two_bands(tmp_path: Path, rgb: np.ndarray) -> None:
    src = write_raster(tmp_path / "rgb.tif", rgb)
    out = predict_raster(src, two_outputs, tmp_path / "prob.tif", size=64, overlap=16,
                         tta=True)
    with rasterio.open(out) as dst:
        assert dst.count == 2
        np.testing.assert_allclose(dst.read(), rgb[[0, 2]] / 255.0, atol=1e-6)


def test_a_probability_raster_cut_short_never_becomes_final(tmp_path: Path, rgb: np.ndarray,
                                                            monkeypatch) -> None:
    from aerialsam.errors import InputError
    from aerialsam.inference import tiling

    src = write_raster(tmp_path / "img.tif", rgb)
    # what a full disk leaves: GDAL logs the failed writes and closes a short file
    monkeypatch.setattr(tiling, "raster_complete", lambda path: False)
    with pytest.raises(InputError, match="disk is full"):
        predict_raster(src, mix, tmp_path / "prob.tif", size=64, overlap=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.tif"]
