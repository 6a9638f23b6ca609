"""SAM 2's automatic masks as building or road candidates: settings, filters, a chip model.

SAM 2's automatic mask generator prompts a chip with a grid of points and keeps the masks of
high predicted IoU and stability. :func:`building_candidates` turns them into polygons with
their confidence, area and shape; :class:`BuildingFilter` keeps the building-like ones and
:class:`RoadFilter` the long, narrow ones. :class:`Sam2Auto` is the
:class:`~aerialsam.inference.tiling.ChipModel` that paints each candidate with its predicted
IoU; :func:`auto_masks` shows one chip's masks, kept or not (book chapter 06).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import geopandas as gpd
import numpy as np
import shapely
import torch
from rasterio import features
from rasterio.windows import Window
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
from sam2.modeling.sam2_base import SAM2Base

from aerialsam.device import autocast
from aerialsam.inference.tiling import NO_FLIP, Flip
from aerialsam.inference.vectorize import MIN_AREA, polygonize
from aerialsam.models.sam2 import fit_feature_sizes
from aerialsam.models.sam2_calls import prompt_chunk

SAM2_POINTS_PER_BATCH = 64
"""SAM 2's own number of points its automatic generator decodes at once."""


@dataclass(frozen=True)
class AutoSettings:
    """Parameters of SAM 2's automatic mask generator (its defaults, except the grid).

    Attributes:
        points_per_side: the point grid is this many points per side of the chip.
        points_per_batch: prompts decoded at once; ``None``: SAM 2's 64 on a GPU, on a CPU
            as many as stay in the cache (:func:`~aerialsam.models.sam2_calls.prompt_chunk`).
        pred_iou_thresh: keep masks whose predicted IoU is at least this.
        stability_score_thresh: keep masks stable under a changed logit threshold.
        box_nms_thresh: box IoU above which duplicate masks are suppressed.
    """

    points_per_side: int = 32
    points_per_batch: int | None = None
    pred_iou_thresh: float = 0.8
    stability_score_thresh: float = 0.95
    box_nms_thresh: float = 0.7

    def recorded(self) -> dict[str, float | int]:
        """The settings a prediction folder records: all but ``points_per_batch``.

        It changes the speed, not the masks, so a folder made at SAM 2's 64 stays valid.
        """
        return {k: v for k, v in asdict(self).items() if k != "points_per_batch"}


@dataclass(frozen=True)
class BuildingFilter:
    """Which automatic masks count as buildings (the generator segments everything).

    Attributes:
        min_area: smallest building in px² (SpaceNet ignores polygons under 20 px²).
        max_area: largest building in px²; whole blocks, fields and roads are larger.
        min_rectangularity: area over the area of the minimum rotated rectangle; roofs
            are compact (near 1), roads and tree rows are not.
        max_fraction: drop masks covering more than this fraction of the chip (background).
        max_elongation: long over short side of the minimum rotated rectangle; road
            segments and field edges are long and thin (rectangular, yet no buildings).
    """

    min_area: float = MIN_AREA
    max_area: float = 20_000.0
    min_rectangularity: float = 0.6
    max_fraction: float = 0.25
    max_elongation: float = 6.0

    def keep(self, frame: gpd.GeoDataFrame, chip_area: float) -> np.ndarray:
        """A boolean mask of the candidates in ``frame`` that pass every filter."""
        area = frame["area"].to_numpy()
        return ((area >= self.min_area) & (area <= self.max_area)
                & (area <= self.max_fraction * chip_area)
                & (frame["rectangularity"].to_numpy() >= self.min_rectangularity)
                & (frame["elongation"].to_numpy() <= self.max_elongation))


@dataclass(frozen=True)
class RoadFilter:
    """Which automatic masks count as roads: long, narrow pieces, straight or branching.

    A mask's mean width is ``2 * area / perimeter`` (exact for a long strip) and its length
    half its perimeter, so a crossing or a bend measures like the roads it joins, where the
    elongation of its rotated rectangle would not.

    Attributes:
        min_area: smallest road piece in px².
        max_width: widest mean width in px (40 px: 8 to 12 m at SpaceNet 3's 0.2-0.3 m
            pixels, a four-lane road).
        min_length: shortest road piece in px (60 px: about 18 m).
        max_fraction: drop masks covering more than this fraction of the chip (background).
    """

    min_area: float = 200.0
    max_width: float = 40.0
    min_length: float = 60.0
    max_fraction: float = 0.5

    def keep(self, frame: gpd.GeoDataFrame, chip_area: float) -> np.ndarray:
        """A boolean mask of the candidates in ``frame`` that pass every filter."""
        area = frame["area"].to_numpy()
        return ((area >= self.min_area) & (area <= self.max_fraction * chip_area)
                & (frame["width"].to_numpy() <= self.max_width)
                & (frame["length"].to_numpy() >= self.min_length))


MaskFilter = BuildingFilter | RoadFilter
"""What keeps some of the automatic generator's masks (buildings or roads)."""


def make_mask_generator(model: SAM2Base, settings: AutoSettings = AutoSettings()
                        ) -> SAM2AutomaticMaskGenerator:
    """SAM 2's automatic mask generator at the model's image size.

    Small-region removal is left to :class:`BuildingFilter` (SAM 2's needs OpenCV).
    """
    with warnings.catch_warnings():
        # sam2's transforms call torch.jit.script, which this torch deprecates: not ours to fix.
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        options = asdict(settings)
        if options["points_per_batch"] is None:
            device = next(model.parameters()).device
            options["points_per_batch"] = (SAM2_POINTS_PER_BATCH if device.type != "cpu"
                                           else prompt_chunk(model, device))
        generator = SAM2AutomaticMaskGenerator(model, min_mask_region_area=0,
                                               output_mode="binary_mask", **options)
    fit_feature_sizes(generator.predictor)
    return generator


def building_candidates(masks: Sequence[dict], shape: tuple[int, int],
                        building: MaskFilter = BuildingFilter()) -> gpd.GeoDataFrame:
    """Building (or road) polygons (pixel coordinates) from the automatic generator's masks.

    Each mask becomes one polygon (its largest part); ``confidence`` is the predicted IoU.

    Returns:
        Columns ``confidence``, ``stability``, ``area``, ``rectangularity``, ``elongation``,
        ``width``, ``length``, ``geometry``: the candidates that pass ``building`` (a
        :class:`BuildingFilter` or a :class:`RoadFilter`), by decreasing confidence.
    """
    rows = []
    for mask in masks:
        polygons = polygonize(mask["segmentation"].astype(np.int32), simplify=0.5, min_area=0)
        if polygons.empty:
            continue
        geom = max(polygons.geometry, key=lambda g: g.area)
        rows.append({"confidence": float(mask["predicted_iou"]),
                     "stability": float(mask["stability_score"]), "geometry": geom})
    frame = gpd.GeoDataFrame(rows, columns=["confidence", "stability", "geometry"],
                             geometry="geometry")
    geoms = np.asarray(frame.geometry.array)
    frame["area"] = shapely.area(geoms)
    envelope = shapely.oriented_envelope(geoms)
    frame["rectangularity"] = _ratio(frame["area"].to_numpy(), shapely.area(envelope))
    frame["elongation"] = _elongation(envelope)
    perimeter = shapely.length(geoms)
    frame["width"] = _ratio(2 * frame["area"].to_numpy(), perimeter)
    frame["length"] = perimeter / 2
    kept = frame[building.keep(frame, float(shape[0] * shape[1]))]
    return kept.sort_values("confidence", ascending=False).reset_index(drop=True)[
        ["confidence", "stability", "area", "rectangularity", "elongation", "width", "length",
         "geometry"]]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


def _elongation(envelopes: np.ndarray) -> np.ndarray:
    """Long side over short side of each rotated rectangle (inf for a line or a point)."""
    out = np.full(len(envelopes), np.inf)
    for i, rect in enumerate(envelopes):
        corners = shapely.get_coordinates(rect)
        if len(corners) >= 4:
            sides = np.hypot(*(corners[1:3] - corners[0:2]).T)
            if sides.min() > 0:
                out[i] = sides.max() / sides.min()
    return out


def paint(candidates: gpd.GeoDataFrame, shape: tuple[int, int]) -> np.ndarray:
    """A (rows, cols) float32 map: each pixel the highest confidence of a candidate on it."""
    if candidates.empty:
        return np.zeros(shape, dtype=np.float32)
    ordered = candidates.sort_values("confidence")  # later shapes win: the highest last
    pairs = zip(ordered.geometry, ordered["confidence"].astype(float), strict=True)
    return features.rasterize(pairs, out_shape=shape, fill=0.0, dtype="float32")


class Sam2Auto:
    """A chip model painting the building (or road) candidates of SAM 2's automatic masks."""

    def __init__(self, model: SAM2Base, settings: AutoSettings = AutoSettings(),
                 building: MaskFilter = BuildingFilter()) -> None:
        """Build the automatic mask generator once, for all chips.

        Args:
            model: the SAM 2 model.
            settings: the automatic mask generator's settings.
            building: the filter that keeps candidates of the automatic masks: buildings,
                or roads with a :class:`RoadFilter`.
        """
        self.generator = make_mask_generator(model, settings)
        self.building = building
        self.device = next(model.parameters()).device

    def candidates(self, chip: np.ndarray) -> gpd.GeoDataFrame:
        """The building candidates of one (H, W, 3) uint8 chip, in its pixels."""
        with torch.inference_mode(), autocast(self.device):
            masks = self.generator.generate(chip)
        return building_candidates(masks, chip.shape[:2], self.building)

    def __call__(self, chips: np.ndarray, windows: Sequence[Window],
                 flip: Flip = NO_FLIP) -> np.ndarray:
        """Painted candidates of each chip (see :class:`~aerialsam.inference.tiling.ChipModel`)."""
        return np.stack([paint(self.candidates(chip), chip.shape[:2]) for chip in chips])


_KEEP_ALL = BuildingFilter(**{f.name: 0.0 if f.name.startswith("min_") else float("inf")
                              for f in fields(BuildingFilter)})
"""A filter every mask passes: its bounds are open whatever rules BuildingFilter has."""


@dataclass
class AutoResult:
    """The automatic generator's masks on one chip and the building candidates among them.

    Attributes:
        masks: every mask as a polygon (its largest part) with ``confidence``, ``stability``,
            ``area``, ``rectangularity`` and ``kept`` (passes the building filter).
        candidates: the masks that pass the building filter.
    """

    masks: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame


def auto_masks(auto: Sam2Auto, chip: np.ndarray) -> AutoResult:
    """Run the automatic generator once on a chip; split its masks by the building filter."""
    with torch.inference_mode(), autocast(auto.device):
        raw = auto.generator.generate(chip)
    masks = building_candidates(raw, chip.shape[:2], _KEEP_ALL)
    masks["kept"] = auto.building.keep(masks, float(chip.shape[0] * chip.shape[1]))
    return AutoResult(masks, masks[masks["kept"]].drop(columns="kept"))
