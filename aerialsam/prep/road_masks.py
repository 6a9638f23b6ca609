"""Road masks in metres on any raster grid: buffered centre lines, the centre line, distance.

Road labels are centre lines: a SpaceNet 3 GeoJSON in any CRS, or a competition CSV
(``ImageId,WKT_Pix``) in pixel coordinates of the image. A road's width is a length on the
ground, while SpaceNet pixels are square in degrees (about 0.30 m north-south but 0.24 m
east-west in Vegas), so every width is made in a metric CRS, the raster's own when it is
projected in metres, else the local UTM zone, and only then burnt on the raster's grid
(:func:`aerialsam.data.spacenet3.buffer_m`).

The kinds (what a road model trains on):

- ``road``: uint8 {0, 255}, the centre lines buffered by ``radius_m`` (2 m by default, the
  2017 winners' choice), or per road by ``lane_number`` x ``lane_width_m`` / 2; round ends;
  pixel-centre rule. The segmentation target of the SpaceNet 3 solutions.
- ``road_centerline``: uint8 {0, 255}, every pixel a centre line touches (all-touched). A
  connectivity target: skeleton losses (clDice) and graph extraction work on the centre line,
  and a 1-px line keeps junctions and thin tracks connected where a thresholded buffer may not.
- ``road_distance``: float32, the distance in metres from each pixel centre to the nearest
  centre-line pixel, capped at ``distance_cap_m`` (10 m by default; a tile without roads is
  the cap everywhere). A dense regression target whose ridges are the centre lines, for models
  that regress distance rather than classify pixels; metres (not pixels), so the target means
  the same in every city whatever the pixel shape.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from rasterio import features
from scipy import ndimage

from aerialsam.data import spacenet, spacenet3
from aerialsam.errors import InputError

if TYPE_CHECKING:
    from aerialsam.prep.masks import Grid

log = logging.getLogger(__name__)

ROAD_KINDS: tuple[str, ...] = ("road", "road_centerline", "road_distance")
"""Every road mask kind :func:`road_mask` knows."""

RoadKind = Literal["road", "road_centerline", "road_distance"]

MAX_ROAD_RADIUS_M = 100.0
"""The largest half road width (and lane width) accepted, in metres. The widest real roads,
motorways with their verges, are under 100 m across; a larger buffer is a typo, and an
absurd one (1e300 m) ends in GEOS arithmetic errors rather than a mask."""
MAX_DISTANCE_CAP_M = 1000.0
"""The largest ``road_distance`` cap accepted, in metres: no pixel of a SpaceNet tile (about
400 m across) with a road on it is 1 km from that road, so a larger cap changes nothing."""


@dataclass(frozen=True)
class RoadParams:
    """How road masks are made.

    Attributes:
        radius_m: half the road width in metres, for every road (and for roads without a
            usable ``lane_number`` when ``lane_width_m`` is set).
        lane_width_m: when set, each road is ``lane_number`` x this wide instead.
        distance_cap_m: the largest distance ``road_distance`` records, in metres.
    """

    radius_m: float = 2.0
    lane_width_m: float | None = None
    distance_cap_m: float = 10.0

    def check(self) -> None:
        """Refuse lengths that are not positive, or longer than any road needs.

        Raises:
            InputError: naming the command-line option of the bad value.
        """
        for option, value, most in (("--road-radius-m", self.radius_m, MAX_ROAD_RADIUS_M),
                                    ("--lane-width-m", self.lane_width_m, MAX_ROAD_RADIUS_M),
                                    ("--road-distance-cap-m", self.distance_cap_m,
                                     MAX_DISTANCE_CAP_M)):
            if value is None:
                continue
            if not (math.isfinite(value) and value > 0):
                raise InputError(option, f"must be a positive length in metres, got {value}")
            if value > most:
                raise InputError(option, f"must be at most {most:g} m, got {value:g}")


@dataclass(frozen=True)
class RoadLabels:
    """A raster's roads, ready to burn: pixel coordinates of its grid.

    Attributes:
        lines: the centre lines.
        areas: the roads buffered in metres, one polygon per line.
        pixel_m: the size of a pixel in metres, (rows, columns) = (north-south, east-west) for
            a north-up grid.
    """

    lines: np.ndarray
    areas: np.ndarray
    pixel_m: tuple[float, float]


def read_road_labels(labels: str | Path, grid: Grid, image: str | Path | None = None,
                     params: RoadParams | None = None) -> RoadLabels:
    """A label file's roads on ``grid``, buffered in metres.

    Args:
        labels: a road GeoJSON in any CRS, or a SpaceNet 3 CSV (``ImageId,WKT_Pix``) in the
            image's pixel coordinates; a CSV of several images is filtered to ``image``'s id.
        grid: the target grid; it must be georeferenced (metres need a CRS).
        image: the image file (its name selects the CSV rows and is named in errors).
        params: the road widths.

    Raises:
        InputError: a grid without CRS, unreadable labels, polygons where lines are expected,
            a CSV without the image, per-lane widths without ``lane_number``, or labels that
            do not overlap the image (usually a wrong CRS).
    """
    params = params or RoadParams()
    params.check()
    labels = Path(labels)
    if grid.crs is None:
        raise InputError(image or labels, "road masks are measured in metres: the image needs "
                                          "a CRS (georeferencing)")
    if labels.suffix.lower() == ".csv":
        frame = _csv_lines(labels, image)
        pixel_lines = frame.geometry.values
        lines = spacenet.to_geo(frame, grid.transform, grid.crs).geometry.values
    else:
        frame = spacenet3.read_road_geojson(labels, crs=grid.crs)
        lines = frame.geometry.values
        if not np.isfinite(shapely.get_coordinates(lines)).all():
            raise InputError(labels, f"labels cannot be reprojected to the image CRS "
                                     f"({CRS.from_user_input(grid.crs).to_string()})")
        pixel_lines = _to_pixel(lines, grid.transform)
    _check_overlap(labels, pixel_lines, grid.shape)
    metric = grid_metric_crs(grid)
    areas = spacenet3.buffer_m(lines, grid.crs, _radii(frame, params, labels), metric)
    return RoadLabels(np.asarray(pixel_lines, dtype=object), _to_pixel(areas, grid.transform),
                      pixel_size_m(grid, metric))


def _csv_lines(path: Path, image: str | Path | None) -> pd.DataFrame:
    """The CSV's lines of ``image`` (all of them when the CSV holds one image)."""
    frame = spacenet3.read_road_csv(path)
    ids = frame.attrs["image_ids"]
    wanted = _image_id(image) if image is not None else None
    if len(ids) <= 1:
        named = {_image_id(i) for i in ids} - {None}
        if wanted is not None and named and wanted not in named:
            raise InputError(path, f"labels are for {ids[0]}, not for the image {wanted}")
        return frame
    if wanted is None or wanted not in ids:
        raise InputError(path, f"holds {len(ids)} images and none matches the image "
                               f"{Path(image).name if image else '?'}")
    return frame[(frame["ImageId"] == wanted).values].reset_index(drop=True)


def _image_id(name: str | Path) -> str | None:
    """The SpaceNet image id in ``name``, or None when it holds none."""
    try:
        return spacenet.image_id(name)
    except InputError:
        return None


def _radii(frame: pd.DataFrame, params: RoadParams, path: Path) -> np.ndarray:
    """Each road's buffer radius in metres: fixed, or from its lane count."""
    radii = np.full(len(frame), params.radius_m, dtype=float)
    if params.lane_width_m is None or not len(frame):
        return radii
    if "lane_number" not in frame:
        raise InputError(path, "per-lane widths (--lane-width-m) need labels with a "
                               "lane_number attribute (a SpaceNet 3 GeoJSON); this has none")
    lanes = spacenet3.road_codes(frame)["lane_number"].to_numpy(dtype=float, na_value=np.nan)
    usable = np.isfinite(lanes) & (lanes > 0)
    if not usable.all():
        log.info("%s: %d road(s) without a usable lane_number get %s m", path,
                 int((~usable).sum()), params.radius_m)
    radii[usable] = lanes[usable] * params.lane_width_m / 2
    return radii


def _to_pixel(geometries: np.ndarray, transform: Affine) -> np.ndarray:
    """Map coordinates to pixel coordinates of a grid (an object array)."""
    inverse = ~transform
    matrix = np.array([[inverse.a, inverse.b], [inverse.d, inverse.e]])
    offset = np.array([inverse.c, inverse.f])
    return np.asarray(shapely.transform(np.asarray(geometries, dtype=object),
                                        lambda xy: xy @ matrix.T + offset), dtype=object)


def _check_overlap(path: Path, lines: np.ndarray, shape: tuple[int, int]) -> None:
    """Refuse labels of which not one line touches the image: almost always a CRS mix-up."""
    lines = np.asarray(lines, dtype=object)
    if lines.size == 0:
        return
    rows, cols = shape
    if not shapely.intersects(lines, shapely.box(0, 0, cols, rows)).any():
        minx, miny, maxx, maxy = shapely.total_bounds(lines)
        raise InputError(path, f"none of the {lines.size} road lines crosses the image (label "
                               f"pixel bounds x {minx:.0f}..{maxx:.0f}, y {miny:.0f}..{maxy:.0f}; "
                               f"image {cols}x{rows}): wrong CRS or wrong image?")


def grid_metric_crs(grid: Grid) -> CRS:
    """The CRS a grid's roads are buffered in: its own if in metres, else its centre's UTM zone."""
    rows, cols = grid.shape
    return spacenet3.metric_crs(grid.crs, *(grid.transform * (cols / 2, rows / 2)))


def pixel_size_m(grid: Grid, metric: CRS | None = None) -> tuple[float, float]:
    """The ground size of a grid's central pixel in metres: (rows, columns) steps."""
    metric = metric or grid_metric_crs(grid)
    rows, cols = grid.shape
    centre = np.array([cols / 2, rows / 2])
    points = np.array([grid.transform * tuple(centre + step)
                       for step in ((0, 0), (1, 0), (0, 1))])
    to_metric = Transformer.from_crs(CRS.from_user_input(grid.crs), metric, always_xy=True)
    x, y = to_metric.transform(points[:, 0], points[:, 1])
    column_step = math.hypot(x[1] - x[0], y[1] - y[0])
    row_step = math.hypot(x[2] - x[0], y[2] - y[0])
    return row_step, column_step


# ---------------------------------------------------------------------------------------------
# Masks


def road_mask(roads: RoadLabels, shape: tuple[int, int], kind: RoadKind = "road",
              params: RoadParams | None = None, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """One road mask on a window of the grid, as written to disk.

    Args:
        roads: the grid's roads (:func:`read_road_labels`).
        shape: ``(rows, columns)`` of the window.
        kind: ``road``, ``road_centerline`` or ``road_distance``.
        params: the distance cap (the widths are in ``roads`` already).
        offset: ``(row, column)`` of the window's top-left pixel in the grid. The window must
            lie inside the grid for ``road_distance`` (:func:`chip_road_mask` pads).

    Returns:
        uint8 {0, 255}, or float32 metres for ``road_distance``.

    Raises:
        InputError: an unknown kind.
    """
    params = params or RoadParams()
    if kind not in ROAD_KINDS:
        raise InputError("--kind", f"unknown road mask kind {kind!r}; choose one of "
                                   f"{ROAD_KINDS}")
    if kind == "road":
        burnt = _burn(roads.areas, shape, offset, all_touched=False)
        return np.where(burnt, np.uint8(255), np.uint8(0))
    if kind == "road_centerline":
        burnt = _burn(roads.lines, shape, offset, all_touched=True)
        return np.where(burnt, np.uint8(255), np.uint8(0))
    return _distance(roads, shape, offset, params.distance_cap_m)


def _burn(geometries: np.ndarray, shape: tuple[int, int], offset: tuple[int, int],
          all_touched: bool) -> np.ndarray:
    """Rasterize pixel-coordinate geometries on a window of the grid (a boolean mask)."""
    row, col = offset
    window = shapely.box(col - 1, row - 1, col + shape[1] + 1, row + shape[0] + 1)
    near = geometries[shapely.intersects(geometries, window)] if geometries.size else geometries
    if near.size == 0:
        return np.zeros(shape, dtype=bool)
    shifted = shapely.transform(near, lambda xy: xy - np.array([col, row], dtype=float))
    burnt = features.rasterize(((g, 1) for g in shifted), out_shape=shape, fill=0,
                               dtype="uint8", all_touched=all_touched)
    return burnt.astype(bool)


def _distance(roads: RoadLabels, shape: tuple[int, int], offset: tuple[int, int],
              cap_m: float) -> np.ndarray:
    """Capped distance in metres to the nearest centre-line pixel, on a window.

    The centre lines are burnt on the window grown by the cap (in pixels), so the result is
    the whole grid's distance map cut at the window (centre lines beyond the grid count).
    """
    reach = int(math.ceil(cap_m / min(roads.pixel_m))) + 1
    row, col = offset
    grown = (shape[0] + 2 * reach, shape[1] + 2 * reach)
    centre = _burn(roads.lines, grown, (row - reach, col - reach), all_touched=True)
    out = np.full(shape, cap_m, dtype=np.float32)
    if not centre.any():
        return out
    distance = ndimage.distance_transform_edt(~centre, sampling=roads.pixel_m)
    cut = distance[reach:reach + shape[0], reach:reach + shape[1]]
    return np.minimum(cut, cap_m).astype(np.float32)


def chip_road_mask(roads: RoadLabels, tile_shape: tuple[int, int], row: pd.Series | dict,
                   kind: RoadKind, params: RoadParams | None = None) -> np.ndarray:
    """One chip's road mask, equal to the tile's mask cut at the chip window.

    Padding (beyond the tile) is 0, or the cap for ``road_distance``.

    Args:
        roads: the tile's roads (:func:`read_road_labels` on the tile's grid).
        tile_shape: ``(rows, columns)`` of the tile.
        row: the chip's index row (``row_off``, ``col_off``, ``size``).
        kind: the road mask kind.
        params: the distance cap.
    """
    params = params or RoadParams()
    size, row_off, col_off = int(row["size"]), int(row["row_off"]), int(row["col_off"])
    rows = min(size, tile_shape[0] - row_off)
    cols = min(size, tile_shape[1] - col_off)
    valid = road_mask(roads, (rows, cols), kind, params, (row_off, col_off))
    fill = params.distance_cap_m if kind == "road_distance" else 0
    out = np.full((size, size), fill, dtype=valid.dtype)
    out[:rows, :cols] = valid
    return out
