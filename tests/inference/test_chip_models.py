"""SAM 2 chip models: prompted prediction on a demo tile, batching, automatic-mask candidates.

The model is SAM 2.1 tiny at 256 px with random weights: its masks are meaningless, so the
tests check shapes, ranges, where the output must be zero, and agreement with SAM 2's own
``SAM2ImagePredictor``, never what the masks look like.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.windows import Window
from sam2.modeling.sam2_base import SAM2Base

from aerialsam.data import spacenet
from aerialsam.errors import InputError
from aerialsam.inference.auto_masks import (
    AutoSettings,
    BuildingFilter,
    Sam2Auto,
    building_candidates,
    paint,
)
from aerialsam.inference.chip_models import Sam2Prompted, sam2_factory
from aerialsam.inference.prompts import Prompts, oracle_prompts
from aerialsam.inference.tiling import predict_raster
from aerialsam.models.sam2 import load_sam2, make_predictor
from aerialsam.prep.chips import find_sources
from aerialsam.prep.stretch import apply_stretch, compute_stretch

SIZE = 256
# SAM 2's automatic generator and predictor call the deprecated torch.jit.script.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script:FutureWarning")


@pytest.fixture(scope="module")
def tiny() -> SAM2Base:
    """A random SAM 2.1 tiny at 256 px on the CPU."""
    return load_sam2("tiny", "random", device="cpu", image_size=SIZE)


@pytest.fixture(scope="module")
def rgb(tile: spacenet.Tile) -> np.ndarray:
    """The tile stretched to (650, 650, 3) uint8 with its own 2-98 % bounds."""
    with rasterio.open(tile.image_path) as src:
        pixels = src.read((1, 2, 3))
    return np.moveaxis(apply_stretch(pixels, compute_stretch([tile.image_path])), 0, -1)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def test_prompted_prediction_on_a_demo_tile(tmp_path: Path, tile: spacenet.Tile,
                                            rgb: np.ndarray, tiny: SAM2Base) -> None:
    labels = spacenet.read_tile_labels(tile, pixel=True).geometry.bounds
    corner = labels[(labels.maxx < 220) & (labels.maxy < 220)]
    box = corner.iloc[0].to_numpy() if len(corner) else np.array([20.0, 20.0, 60.0, 60.0])
    model = Sam2Prompted(tiny, Prompts("box", [box]))
    # One chip per call: chips without a prompt skip the encoder, so only one chip is encoded.
    out = predict_raster(tile.image_path, model, tmp_path / "prob.tif", size=SIZE, overlap=32,
                         batch_size=1)
    with rasterio.open(out) as src:
        prob = src.read(1)
    assert prob.shape == (650, 650) and prob.dtype == np.float32
    assert 0 <= prob.min() and prob.max() <= 1
    # Chips start at 0, 224 and 394: only the top-left chip holds the box.
    assert (prob[:, SIZE:] == 0).all() and (prob[SIZE:, :] == 0).all()
    chip = np.ascontiguousarray(rgb[None, :SIZE, :SIZE])
    alone = model(chip, [Window(0, 0, SIZE, SIZE)])[0]
    assert alone.max() > 0
    np.testing.assert_allclose(prob[:224, :224], alone[:224, :224], atol=1e-6)


WINDOWS = [Window(0, 0, SIZE, SIZE), Window(394, 224, SIZE, SIZE)]


@pytest.fixture(scope="module")
def reference(tile: spacenet.Tile, rgb: np.ndarray, tiny: SAM2Base) -> dict:
    """Two chips, and what SAM 2's own predictor gives for the tile's boxes and points.

    One chip at a time, as in a plain ``SAM2ImagePredictor`` loop: the image is set once per
    chip, then the chip's prompts are decoded together; points take the best of 3 masks.
    """
    chips = np.stack([rgb[w.row_off:w.row_off + SIZE, w.col_off:w.col_off + SIZE]
                      for w in WINDOWS])
    prompts = {kind: oracle_prompts(tile, kind) for kind in ("box", "point")}
    predictor = make_predictor(tiny)
    probs = {kind: np.zeros(chips.shape[:3]) for kind in prompts}
    for i, (chip, window) in enumerate(zip(chips, WINDOWS, strict=True)):
        predictor.set_image(chip)
        boxes = prompts["box"].in_chip(window)
        logits, _, _ = predictor.predict(box=boxes, multimask_output=False, return_logits=True)
        probs["box"][i] = sigmoid(logits.reshape(len(boxes), SIZE, SIZE)).max(axis=0)
        points = prompts["point"].in_chip(window)
        logits, iou, _ = predictor.predict(point_coords=points[:, None],
                                           point_labels=np.ones((len(points), 1)),
                                           multimask_output=True, return_logits=True)
        best = iou.reshape(len(points), 3).argmax(axis=1)
        logits = logits.reshape(len(points), 3, SIZE, SIZE)[np.arange(len(points)), best]
        probs["point"][i] = sigmoid(logits).max(axis=0)
    return {"chips": chips, "prompts": prompts, "probs": probs}


@pytest.mark.parametrize("kind", ["box", "point"])
def test_batched_prompts_equal_the_per_chip_predictor(reference: dict, tiny: SAM2Base,
                                                      kind: str) -> None:
    prompts = reference["prompts"][kind]
    assert all(len(prompts.in_chip(w)) > 1 for w in WINDOWS)
    model = Sam2Prompted(tiny, prompts)
    batched = model(reference["chips"], WINDOWS)
    assert batched.shape == (2, SIZE, SIZE) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, reference["probs"][kind], atol=1e-5)
    model.chunk = 1  # prompts decoded one by one: the same masks
    np.testing.assert_allclose(model(reference["chips"], WINDOWS), batched, atol=1e-5)


class CountingPrompted(Sam2Prompted):
    """Sam2Prompted that records every box it decodes, the chips' outputs and the masks it
    keeps after each batch."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.decoded = 0
        self.outputs: list[tuple[Window, np.ndarray]] = []
        self.kept: list[dict] = []

    def _masks(self, feats: object, xy: np.ndarray, height: int, width: int) -> np.ndarray:
        self.decoded += len(xy)
        return super()._masks(feats, xy, height, width)

    def __call__(self, chips: np.ndarray, windows: list, flip: tuple = (False, False)
                 ) -> np.ndarray:
        out = super().__call__(chips, windows, flip)
        self.outputs += list(zip(windows, out.copy(), strict=True))
        self.kept.append(dict(self._decoded))
        return out


def test_reuse_decodes_each_box_about_once_and_pastes_its_mask(
        tile: spacenet.Tile, tiny: SAM2Base, tmp_path: Path) -> None:
    boxes, chip = oracle_prompts(tile, "box"), 512  # the full profile's grid: 4 chips a tile
    runs = {}
    for name, reuse, batch in (("each", False, 2), ("once", True, 2), ("alone", True, 1)):
        model = CountingPrompted(tiny, boxes, reuse=reuse, raster_shape=(650, 650))
        predict_raster(tile.image_path, model, tmp_path / f"{name}.tif", size=chip,
                       overlap=64, batch_size=batch)
        runs[name] = model
    each, once, alone = runs["each"], runs["once"], runs["alone"]
    # chips at 0 and 138 both ways: most boxes are on all four chips
    shown = sum(len(boxes.on_chip(window)[0]) for window, _ in each.outputs)
    assert each.decoded == shown > 2 * len(boxes)
    assert once.decoded < 1.1 * len(boxes) and alone.decoded < 0.5 * shown
    # a chip alone in its batch, with no mask known yet, decodes every box itself
    np.testing.assert_array_equal(each.outputs[0][1], alone.outputs[0][1])
    # the next chip (138 px to the right) holds, where the two overlap, at least the masks
    # of the whole boxes the first chip kept
    (first_window, first), (window, later) = alone.outputs[:2]
    assert (window.col_off, window.row_off) == (138, 0)
    on_later = set(boxes.on_chip(window)[0].tolist())
    kept = np.zeros_like(first)
    for (j, part), (row, col, crop, _) in alone.kept[0].items():
        if j in on_later and part == tuple(boxes.xy[j].tolist()):
            region = kept[row:row + crop.shape[0], col:col + crop.shape[1]]
            np.maximum(region, crop, out=region)
    assert kept.max() > 0
    assert (later[:, :chip - 138] >= kept[:, 138:] - 1e-6).all()
    # and the mosaic hardly moves: a chip shows a mask decoded with its neighbour's context
    with rasterio.open(tmp_path / "each.tif") as a, rasterio.open(tmp_path / "once.tif") as b:
        assert np.abs(a.read(1) - b.read(1)).mean() < 0.01


def test_reuse_needs_context_only_where_a_chip_cuts_into_the_raster(tiny: SAM2Base) -> None:
    prompts = Prompts("box", [[600, 10, 645, 40],   # 5 px from the raster's right edge
                              [500, 10, 540, 40],   # cut by the first chip's right edge
                              [140, 10, 180, 40]])  # 2 px from the second chip's left edge
    first, second = Window(0, 0, 512, 512), Window(138, 0, 512, 512)
    known = Sam2Prompted(tiny, prompts, raster_shape=(650, 650))
    index, _, parts, fits = known._shown(second)
    assert index.tolist() == [0, 1, 2] and fits.tolist() == [True, True, False]
    # without the raster's size its right edge might be a cut with more raster beyond
    assert Sam2Prompted(tiny, prompts)._shown(second)[3].tolist() == [False, True, False]
    index, _, parts, fits = known._shown(first)
    assert index.tolist() == [1, 2] and fits.tolist() == [True, True]
    assert parts[0] == (500, 10, 512, 40)  # the part shown: only chips cut at 512 share it
    # in one batch: box 2 is decoded whole in the first chip, box 1 whole in the second
    # (not cut in the first), box 0 in the second; each chip gets the other's masks pasted
    (decode, keep), (decode_2, keep_2) = known._plan([known._shown(first),
                                                      known._shown(second)])
    assert decode.tolist() == [False, True] and keep.tolist() == [False, True]
    assert decode_2.tolist() == [True, True, False] and keep_2.tolist() == [True, True, False]


def test_kept_masks_last_while_their_box_does(tiny: SAM2Base) -> None:
    model = Sam2Prompted(tiny, Prompts("box", [[10, 10, 30, 300], [40, 10, 60, 40]]),
                         raster_shape=(650, 650))
    tall, small = (0, (10.0, 10.0, 30.0, 300.0)), (1, (40.0, 10.0, 60.0, 40.0))
    window = Window(0, 0, 512, 512)
    top_only = np.zeros((512, 512), np.float32)
    top_only[10:40, 10:30] = 0.9  # a mask that stops long before its box does
    model._keep(tall, window, top_only)
    model._keep(small, window, np.zeros((512, 512), np.float32))  # an empty mask
    model._forget(0)
    assert model._decoded.keys() == {tall, small}  # the same strip: both still shown
    model._forget(138)
    assert model._decoded.keys() == {tall}  # the small box ended at row 40; the tall one goes on
    model._forget(300)
    assert not model._decoded


def test_reuse_is_off_for_points_and_flipped_chips(tile: spacenet.Tile, rgb: np.ndarray,
                                                   tiny: SAM2Base) -> None:
    assert not Sam2Prompted(tiny, oracle_prompts(tile, "point")).reuse
    model = CountingPrompted(tiny, oracle_prompts(tile, "box"))
    chips = np.stack([rgb[w.row_off:w.row_off + SIZE, w.col_off:w.col_off + SIZE]
                      for w in WINDOWS])
    model(chips, WINDOWS, (True, False))
    model(chips, WINDOWS, (True, False))
    assert model.decoded == 2 * sum(len(model.prompts.on_chip(w)[0]) for w in WINDOWS)


def test_chips_without_prompts_are_zero(tiny: SAM2Base) -> None:
    model = Sam2Prompted(tiny, Prompts("box", [[600, 600, 640, 640]]))
    chips = np.full((2, SIZE, SIZE, 3), 128, np.uint8)
    out = model(chips, [Window(0, 0, SIZE, SIZE), Window(224, 0, SIZE, SIZE)])
    np.testing.assert_array_equal(out, np.zeros((2, SIZE, SIZE), np.float32))


def square(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


def generator_masks(shape: tuple[int, int]) -> list[dict]:
    """Masks as SAM 2's automatic generator returns them: two roofs and three non-roofs."""
    line = np.zeros(shape, bool)  # an L-shaped thin line: a road corner
    line[200:202, 20:140] = True
    line[80:202, 138:140] = True
    masks = [(square(shape, slice(30, 50), slice(30, 50)), 0.7, 0.96),
             (line, 0.95, 0.99),
             (square(shape, slice(100, 130), slice(100, 130)), 0.9, 0.97),
             (square(shape, slice(20, 220), slice(20, 220)), 0.99, 0.99),  # huge
             (square(shape, slice(5, 8), slice(5, 8)), 0.99, 0.99)]  # 9 px²
    return [{"segmentation": m, "predicted_iou": iou, "stability_score": stab}
            for m, iou, stab in masks]


def test_building_candidates_filters_and_sorts() -> None:
    shape = (256, 256)
    frame = building_candidates(generator_masks(shape), shape)
    assert list(frame.columns) == ["confidence", "stability", "area", "rectangularity",
                                   "elongation", "width", "length", "geometry"]
    # 2 area / perimeter: a long strip's width, half a square's side
    assert frame["width"].tolist() == [15.0, 10.0]
    assert frame["confidence"].tolist() == [0.9, 0.7]
    assert frame["stability"].tolist() == [0.97, 0.96]
    assert frame["area"].tolist() == [900.0, 400.0]
    np.testing.assert_allclose(frame["rectangularity"], 1.0)
    assert frame.geometry.iloc[1].equals(shapely.box(30, 30, 50, 50))
    # Loosen every filter and all but the 9 px² speck (under the 20 px² minimum) come back.
    loose = BuildingFilter(max_area=1e9, min_rectangularity=0.0, max_fraction=1.0)
    kept = building_candidates(generator_masks(shape), shape, loose)
    assert kept["confidence"].tolist() == [0.99, 0.95, 0.9, 0.7]
    assert kept["rectangularity"].iloc[1] < 0.1  # the L: why the default filter drops it
    np.testing.assert_allclose(kept["elongation"].iloc[[2, 3]], 1.0)


def test_building_candidates_drop_long_thin_strips() -> None:
    shape = (256, 256)
    road = {"segmentation": square(shape, slice(100, 103), slice(20, 220)),
            "predicted_iou": 0.95, "stability_score": 0.99}  # rectangular, but 200 x 3 px
    assert building_candidates([road], shape).empty
    kept = building_candidates([road], shape, BuildingFilter(max_elongation=100.0))
    np.testing.assert_allclose(kept["elongation"], 200 / 3)
    empty = building_candidates([], shape)
    assert empty.empty and "confidence" in empty.columns


def test_max_fraction_drops_background(tmp_path: Path) -> None:
    shape = (64, 64)
    big = [{"segmentation": square(shape, slice(0, 40), slice(0, 40)), "predicted_iou": 0.9,
            "stability_score": 0.9}]
    assert building_candidates(big, shape).empty  # 1600 px² is 39 % of the chip
    assert len(building_candidates(big, shape, BuildingFilter(max_fraction=0.5))) == 1


def test_paint_takes_the_highest_confidence() -> None:
    frame = gpd.GeoDataFrame({"confidence": [0.3, 0.8]},
                             geometry=[shapely.box(0, 0, 10, 10), shapely.box(5, 5, 15, 15)])
    expected = np.zeros((20, 20), np.float32)
    expected[0:10, 0:10] = 0.3
    expected[5:15, 5:15] = 0.8
    for order in (frame, frame.iloc[::-1]):
        painted = paint(order, (20, 20))
        assert painted.dtype == np.float32
        np.testing.assert_array_equal(painted, expected)
    np.testing.assert_array_equal(paint(frame.iloc[:0], (4, 5)), np.zeros((4, 5)))


def test_automatic_masks_run_on_a_chip(rgb: np.ndarray, tiny: SAM2Base) -> None:
    settings = AutoSettings(points_per_side=2, points_per_batch=4, pred_iou_thresh=0.0,
                            stability_score_thresh=0.0)
    everything = BuildingFilter(min_area=0.0, max_area=1e12, min_rectangularity=0.0,
                                max_fraction=1.0)
    auto = Sam2Auto(tiny, settings, everything)
    assert auto.generator.predictor._bb_feat_sizes == [(64, 64), (32, 32), (16, 16)]
    assert auto.generator.points_per_batch == 4
    # by default a CPU decodes as many points at once as stay in its cache (16 at 256 px)
    assert Sam2Auto(tiny, AutoSettings(), everything).generator.points_per_batch == 16
    # which changes no mask: prediction folders do not record it
    assert AutoSettings(points_per_batch=64).recorded() == AutoSettings().recorded()
    assert "points_per_batch" not in AutoSettings().recorded()
    side = 128  # the generator resizes any chip; a small one keeps post-processing cheap
    chip = np.ascontiguousarray(rgb[:side, :side])
    candidates = auto.candidates(chip)
    assert len(candidates) > 0  # thresholds 0: random weights still give masks
    confidence = candidates["confidence"].to_numpy()
    assert (np.diff(confidence) <= 0).all() and (confidence >= 0).all()
    painted = auto(chip[None], [Window(0, 0, side, side)])
    assert painted.shape == (1, side, side) and painted.dtype == np.float32
    np.testing.assert_allclose(painted.max(), confidence.max(), rtol=1e-6)
    np.testing.assert_array_equal(painted[0], paint(candidates, (side, side)))


def test_factory_refusals(tmp_path: Path, tile: spacenet.Tile, tiny: SAM2Base) -> None:
    sources = find_sources(tile.image_path)
    with pytest.raises(InputError, match="--prompts: --mode box needs a prompt file"):
        sam2_factory(tiny, "box", sources)
    with pytest.raises(InputError, match="unknown mode 'lasso'"):
        sam2_factory(tiny, "lasso", sources)
    far = gpd.GeoDataFrame(geometry=[shapely.box(0.0, 0.0, 0.001, 0.001)], crs="EPSG:4326")
    with pytest.raises(InputError) as info:
        sam2_factory(tiny, "box", sources, far, "far.geojson")
    assert str(info.value) == (f"far.geojson: none of its 1 prompts falls inside "
                               f"{tile.image_path.name} (another area, or a wrong CRS?)")
    plain = tmp_path / "plain.tif"
    with rasterio.open(tile.image_path) as src:
        profile, pixels = src.profile, src.read()
    with rasterio.open(plain, "w", **profile) as dst:
        dst.write(pixels)
    with pytest.raises(InputError, match="--mode oracle needs SpaceNet 2 tiles"):
        sam2_factory(tiny, "oracle", find_sources(plain))


def test_factory_gives_each_raster_its_prompts(tile: spacenet.Tile, tiny: SAM2Base,
                                               caplog: pytest.LogCaptureFixture) -> None:
    sources = find_sources(tile.image_path)
    labels = spacenet.read_geojson(tile.geojson_path)
    factory = sam2_factory(tiny, "box", sources, labels.to_crs("EPSG:3857"))
    with rasterio.open(tile.image_path) as src:
        model = factory(sources[0], src)
    assert isinstance(model, Sam2Prompted)
    np.testing.assert_allclose(model.prompts.xy, oracle_prompts(tile).xy, atol=1e-3)
    assert model.raster_shape == (650, 650)  # its chips on the raster's edge need no margin
    with caplog.at_level("WARNING"), rasterio.open(tile.image_path) as src:
        oracle_factory = sam2_factory(tiny, "oracle", sources)
        oracle = oracle_factory(sources[0], src)
        oracle_factory(sources[0], src)
    np.testing.assert_allclose(oracle.prompts.xy, oracle_prompts(tile).xy, atol=1e-6)
    assert oracle.raster_shape == (650, 650)
    # one upper-bound warning for the run, not one per image
    assert [r.levelname for r in caplog.records].count("WARNING") == 1
    assert "upper bound" in caplog.text
