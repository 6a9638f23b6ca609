"""Box and point prompts for SAM 2, from map or pixel coordinates, cut per chip.

Prompts arrive as a GeoDataFrame (or a vector file) in any CRS, or in pixel coordinates of
the raster (a frame without a CRS, x = column, y = row, like ``PolygonWKT_Pix``). A polygon
prompts with its bounding box (box mode) or an interior point (point mode); a point only
works in point mode. :class:`Prompts` holds one raster's prompts in its pixel coordinates
and gives each chip the ones that fall on it, in the chip's own (optionally mirrored) frame.

The oracle (:func:`oracle_prompts`) prompts with the ground-truth buildings: an upper bound
on what box prompts can do, never a result to compare with models that see no labels.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from pyproj import CRS
from rasterio.windows import Window

from aerialsam.data.spacenet import Tile, read_tile_labels, to_pixel
from aerialsam.errors import InputError
from aerialsam.inputs import COORDINATE_LIMIT, read_feature_collection

log = logging.getLogger(__name__)

PROMPT_KINDS = ("box", "point")
GEOJSON_SUFFIXES = (".geojson", ".json")
"""Prompt files checked as GeoJSON before GDAL reads them."""
MIN_BOX_SIDE = 2.0
"""A box cut by a chip edge to less than this (px) would prompt for a sliver: dropped."""


@dataclass
class Prompts:
    """One raster's prompts in its pixel coordinates.

    Attributes:
        kind: ``box`` or ``point``.
        xy: (N, 4) boxes ``x0, y0, x1, y1`` or (N, 2) points ``x, y``, float32.
    """

    kind: str
    xy: np.ndarray

    def __post_init__(self) -> None:
        """Refuse an unknown kind; store ``xy`` as float32 rows of 4 (box) or 2 (point)."""
        if self.kind not in PROMPT_KINDS:
            raise ValueError(f"unknown prompt kind {self.kind!r}")
        width = 4 if self.kind == "box" else 2
        self.xy = np.asarray(self.xy, dtype=np.float32).reshape(-1, width)

    def __len__(self) -> int:
        """The number of prompts."""
        return len(self.xy)

    def on_chip(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """The indices of the prompts on a chip and their coordinates in its pixels.

        Boxes are clipped to the chip and kept if at least :data:`MIN_BOX_SIDE` px of them
        remain; points are kept if inside the chip.
        """
        x0, y0 = window.col_off, window.row_off
        w, h = window.width, window.height
        if self.kind == "box":
            local = self.xy - np.array([x0, y0, x0, y0], np.float32)
            local = np.clip(local, 0, [w, h, w, h]).astype(np.float32)
            keep = ((local[:, 2] - local[:, 0]) >= MIN_BOX_SIDE) & \
                   ((local[:, 3] - local[:, 1]) >= MIN_BOX_SIDE)
        else:
            local = self.xy - np.array([x0, y0], np.float32)
            keep = (local[:, 0] >= 0) & (local[:, 0] < w) & (local[:, 1] >= 0) & \
                   (local[:, 1] < h)
        return np.flatnonzero(keep), local[keep]

    def in_chip(self, window: Window, flip: tuple[bool, bool] = (False, False)) -> np.ndarray:
        """The prompts on a chip (:meth:`on_chip`), in its pixels mirrored as ``flip`` says."""
        local = self.on_chip(window)[1]
        w, h = window.width, window.height
        xs, ys = ([0, 2], [1, 3]) if self.kind == "box" else ([0], [1])
        if flip[0]:
            local[:, xs] = w - local[:, xs[::-1]]
        if flip[1]:
            local[:, ys] = h - local[:, ys[::-1]]
        return local


def read_prompt_file(path: str | Path) -> gpd.GeoDataFrame:
    """Prompt geometries from a vector file (GeoJSON, GeoPackage, Shapefile, …).

    A GeoJSON file is checked before GDAL reads it
    (:func:`aerialsam.inputs.read_feature_collection`: the encoding rule, finite coordinates,
    closed rings, lines of two positions or more); a file of any format must hold geometries
    with finite coordinates of at most :data:`~aerialsam.inputs.COORDINATE_LIMIT`.

    Raises:
        InputError: a missing, unreadable or malformed file, a table without geometries, or
            a file with no features.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "prompt file not found")
    source: Path | io.BytesIO = path
    if path.suffix.lower() in GEOJSON_SUFFIXES:
        document = read_feature_collection(path)
        # GDAL reads the checked document, as UTF-8 (the file may be UTF-16 with a mark)
        source = io.BytesIO(json.dumps(document).encode())
    # imported here: pyogrio (33 MB, its own GDAL) is needed only to read vector files,
    # and the GPU machine's carried wheels must stay under 64 MiB (benchmarks/GPU.md)
    import pyogrio

    try:
        frame = gpd.read_file(source, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
            pyogrio.errors.FieldError, pyogrio.errors.GeometryError,
            shapely.errors.GEOSException, ValueError) as exc:
        # what GDAL or GEOS refuse in a file of another format: a data problem
        raise InputError(path, f"not a readable vector file ({_first_line(exc)})") from None
    if not isinstance(frame, gpd.GeoDataFrame):
        raise InputError(path, "holds no geometries (a table without a geometry column)")
    frame = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
    if frame.empty:
        raise InputError(path, "holds no prompt geometries (an empty prompt list)")
    coords, owner = shapely.get_coordinates(frame.geometry.values, return_index=True)
    bad = ~(np.isfinite(coords) & (np.abs(coords) <= COORDINATE_LIMIT)).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(path, f"feature {frame.index[owner[first]]}: coordinate "
                               f"({coords[first, 0]:g}, {coords[first, 1]:g}) is not a finite "
                               f"number of at most {COORDINATE_LIMIT:g}")
    return frame


def _first_line(exc: BaseException) -> str:
    """An exception's message, first line only (GDAL's run on)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def raster_prompts(frame: gpd.GeoDataFrame, kind: str, transform: Affine, crs: CRS | str | None,
                   width: int, height: int, source: str | Path = "prompts") -> Prompts:
    """The prompts of ``frame`` that fall on a raster, in its pixel coordinates.

    Args:
        frame: polygons, boxes or points; in any CRS, or in pixels when ``frame.crs`` is None.
        kind: ``box`` (bounding boxes of polygons) or ``point`` (a point inside each polygon,
            or the points themselves).
        transform: the raster's pixel-to-map transform.
        crs: the raster's CRS (None for a raster without one).
        width: the raster's width in pixels.
        height: the raster's height in pixels.
        source: what to name in errors (the prompt file).

    Returns:
        The prompts; empty when none falls on the raster (see :func:`require_prompts`).

    Raises:
        InputError: an empty frame, points given for box mode, or a frame in map
            coordinates for a raster without a CRS.
    """
    if kind not in PROMPT_KINDS:
        raise InputError("--mode", f"prompts need mode box or point, got {kind!r}")
    frame = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
    if frame.empty:
        raise InputError(source, "holds no prompt geometries (an empty prompt list)")
    if frame.crs is not None:
        if crs is None:
            raise InputError(source, "prompts are in map coordinates but the image has no CRS")
        frame = to_pixel(frame.to_crs(crs), transform)
    geoms = np.asarray(frame.geometry.array)
    points = shapely.get_type_id(geoms) == shapely.GeometryType.POINT
    if kind == "box":
        if points.any():
            raise InputError(source, f"{int(points.sum())} prompts are points; box mode needs "
                                     "polygons or boxes (use --mode point)")
        xy = shapely.bounds(geoms)
    else:
        inner = np.where(points, geoms, shapely.point_on_surface(geoms))
        xy = shapely.get_coordinates(inner)
    on_raster = shapely.intersects(geoms, shapely.box(0, 0, width, height))
    return Prompts(kind, xy[on_raster])


def require_prompts(prompts: Prompts, total: int, source: str | Path, image: str | Path) -> Prompts:
    """``prompts`` if there are any; else refuse: none of the file's prompts is on the image.

    Raises:
        InputError: naming the prompt file and the image.
    """
    if len(prompts) == 0:
        raise InputError(source, f"none of its {total} prompts falls inside {Path(image).name} "
                                 "(another area, or a wrong CRS?)")
    return prompts


ORACLE_WARNING = ("oracle prompts come from the ground truth: the scores of %d image(s) are "
                  "an upper bound for box prompting, not a result")
"""What a prediction with oracle prompts logs once (``%d``: its number of images)."""


def oracle_prompts(tile: Tile, kind: str = "box") -> Prompts:
    """Prompts from a tile's ground-truth buildings: an UPPER BOUND, not a result.

    Returns:
        The prompts in the tile's pixel coordinates (empty for a tile without buildings).
    """
    # the run that asks for oracle prompts warns once (ORACLE_WARNING); a line per tile would
    # bury the rest of the log
    log.info("oracle prompts for %s come from the ground truth", tile.image_id)
    labels = read_tile_labels(tile, pixel=True)
    if labels.empty:
        return Prompts(kind, np.zeros((0, 4 if kind == "box" else 2)))
    geoms = np.asarray(labels.geometry.array)
    if kind == "box":
        return Prompts(kind, shapely.bounds(geoms))
    return Prompts(kind, shapely.get_coordinates(shapely.point_on_surface(geoms)))
