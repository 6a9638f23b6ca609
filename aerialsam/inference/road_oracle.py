"""Zero-shot SAM 2 on roads, and the true roads of a SpaceNet 3 tile it is scored against.

:func:`tile_roads` reads a tile's road labels in its pixel coordinates, made valid for the
APLS scorer. :func:`road_oracle_prompts` places point prompts along them, every
``spacing_m`` metres: zero-shot SAM 2 prompted with them shows what SAM 2 could draw if it
knew where the roads were. That is an UPPER BOUND, never a result: the prompts come from
the ground truth. :func:`sam2_road_factory` makes the chip models of both zero-shot modes:
automatic masks kept when they are long and narrow, and the oracle.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import shapely
from sam2.modeling.sam2_base import SAM2Base

from aerialsam.data import spacenet3
from aerialsam.errors import InputError
from aerialsam.inference.auto_masks import AutoSettings, RoadFilter, Sam2Auto
from aerialsam.inference.chip_models import Sam2Prompted
from aerialsam.inference.prediction import ChipModelFactory
from aerialsam.inference.prompts import Prompts
from aerialsam.inference.road_sections import road_sections
from aerialsam.inference.road_vectorize import lines_graph, raster_pixel_size
from aerialsam.io import open_raster
from aerialsam.prep.chips import Source

log = logging.getLogger(__name__)

ROAD_ORACLE_WARNING = ("road oracle prompts are points on the true centre lines: the scores of "
                       "%d image(s) are an upper bound for point prompting, not a result")
"""What a prediction with road oracle prompts logs once (``%d``: its number of images)."""
SPACING_M = 20.0
"""Metres between two oracle points along a road (about 65 px at 0.3 m)."""


def tile_roads(path: str | Path) -> list[shapely.LineString]:
    """A SpaceNet 3 tile's true roads in pixel coordinates, valid for the scorer.

    The labels are the GeoJSON of the SpaceNet 3 layout beside the image; repeated sections
    (some label files have them, and the scorer refuses them) are kept once.

    Raises:
        InputError: not a SpaceNet 3 tile, or a tile without its label file.
    """
    tile = spacenet3.road_tile_at(path)
    lines = spacenet3.read_road_labels(tile, pixel=True)
    with open_raster(path) as src:
        size = raster_pixel_size(src)
    return road_sections(lines_graph(list(lines.geometry.array), size), precision=None,
                         source=tile.geojson_path)


def points_along(lines: list[shapely.LineString], spacing: float,
                 pixel_size: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """``length // spacing`` points ``spacing`` apart along each line, centred on it.

    Lengths are measured on the ground: a pixel is ``pixel_size`` (east-west, north-south)
    wide and tall, so with non-square pixels the points stay evenly spaced in metres (the
    default measures in pixels). A line shorter than the spacing gets its midpoint.

    Returns:
        ``(n, 2)`` pixel x, y.
    """
    scale = np.asarray(pixel_size, dtype=float)
    points = []
    for line in lines:
        ground = shapely.LineString(shapely.get_coordinates(line) * scale)
        count = max(1, int(ground.length // spacing))
        start = (ground.length - (count - 1) * spacing) / 2
        along = start + spacing * np.arange(count)
        points.append(shapely.get_coordinates(shapely.line_interpolate_point(ground, along))
                      / scale)
    return np.concatenate(points) if points else np.zeros((0, 2))


def road_oracle_prompts(path: str | Path, spacing_m: float = SPACING_M) -> Prompts:
    """Point prompts along a tile's true roads, ``spacing_m`` apart: an UPPER BOUND.

    Raises:
        InputError: not a labelled SpaceNet 3 tile.
    """
    with open_raster(path) as src:
        pixel_size = raster_pixel_size(src)
    log.info("road oracle prompts for %s come from the ground truth", Path(path).name)
    return Prompts("point", points_along(tile_roads(path), spacing_m, pixel_size))


def sam2_road_factory(model: SAM2Base, mode: str, sources: Sequence[Source],
                      auto: AutoSettings | None = None,
                      roads: RoadFilter | None = None) -> ChipModelFactory:
    """The chip model of each raster for zero-shot SAM 2 on roads.

    Args:
        model: the SAM 2 model.
        mode: ``auto`` (automatic masks kept when long and narrow, :class:`RoadFilter`) or
            ``oracle`` (point prompts along each tile's true roads: an upper bound).
        sources: the rasters of the run.
        auto: the automatic mask generator's settings (default :class:`AutoSettings`).
        roads: the filter that keeps road candidates of the automatic masks (default
            :class:`RoadFilter`).

    Raises:
        InputError: an unknown mode, or ``oracle`` for rasters without SpaceNet 3 labels.
    """
    if mode == "auto":
        chip_model = Sam2Auto(model, auto or AutoSettings(), roads or RoadFilter())
        return lambda source, src: chip_model
    if mode != "oracle":
        raise InputError("--mode", f"unknown road mode {mode!r}; use auto or oracle")
    prompts = {source.path: road_oracle_prompts(source.path) for source in sources}
    log.warning(ROAD_ORACLE_WARNING, len(sources))
    return lambda source, src: Sam2Prompted(model, prompts[source.path])
