"""Footprint, boundary, contact and distance masks on any raster grid.

Every mask is computed from building polygons in *pixel coordinates* of the target grid
(x = column, y = row, origin at the top-left corner of the top-left pixel), the convention
of SpaceNet's ``PolygonWKT_Pix``. Labels in map coordinates (GeoJSON in any CRS) are
reprojected to the image CRS and mapped through its transform first (:func:`read_labels`).

The definitions reproduce solaris' reference masks exactly (see ``tests/prep/test_masks.py``):

- footprint: standard rasterization, pixel-centre rule (a pixel is in when its centre is).
- boundary, ``side="inner"``: footprint minus its erosion by a ``width`` x ``width`` square,
  pixels outside the image counting as foreground (a building cut by the image edge gets no
  boundary along the cut). ``width=3`` therefore gives a 1-pixel-thick ring: the "width" is the
  side of the structuring element, not the thickness, which is ``width // 2`` pixels.
- boundary, ``side="outer"``: dilation of the footprint by the same square minus the footprint.
- contact: pixels outside every footprint whose centre lies where at least two buildings,
  each grown by ``spacing / 2`` pixels (round joins, 16 segments per quarter circle), overlap.
- distance: signed Euclidean distance in pixels between pixel centres: inside a footprint the
  distance to the nearest background pixel (>= 1), outside minus the distance to the nearest
  footprint pixel (<= -1), as in the original SpaceNet tutorials.

Road masks (centre lines buffered in metres, the centre line, the distance to it) live in
:mod:`aerialsam.prep.road_masks`; :func:`rasterize_file` writes either family.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS
from rasterio import features
from scipy import ndimage

from aerialsam.data import spacenet
from aerialsam.errors import InputError
from aerialsam.io import open_raster, write_raster
from aerialsam.prep import road_masks
from aerialsam.prep.road_masks import ROAD_KINDS, RoadKind, RoadParams

log = logging.getLogger(__name__)

MASK_KINDS: tuple[str, ...] = ("footprint", "boundary", "contact", "distance")
"""Every mask kind :func:`make_mask` knows."""

MaskKind = Literal["footprint", "boundary", "contact", "distance"]
ALL_KINDS: tuple[str, ...] = MASK_KINDS + ROAD_KINDS
"""The building kinds, then the road kinds (:data:`aerialsam.prep.road_masks.ROAD_KINDS`)."""
_POLYGON = shapely.GeometryType.POLYGON
QUAD_SEGS = 16
"""Segments per quarter circle of the round joins when buildings are grown for contact."""


@dataclass(frozen=True)
class Grid:
    """A raster grid: shape (rows, columns), CRS (may be ``None``) and affine transform."""

    shape: tuple[int, int]
    crs: CRS | None
    transform: Affine


def read_grid(image: str | Path, require_crs: bool = True) -> Grid:
    """The grid of a raster file.

    Raises:
        InputError: the raster is missing, unreadable, or (with ``require_crs``) has no CRS.
    """
    with open_raster(image, require_crs=require_crs) as src:
        return Grid((src.height, src.width), src.crs, src.transform)


# ---------------------------------------------------------------------------------------------
# Polygons


def polygonal(geometry: shapely.Geometry) -> shapely.Geometry:
    """The polygonal part of ``geometry`` as a Polygon or MultiPolygon (empty if it has none)."""
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = shapely.get_parts(geometry)
    while any(p.geom_type.startswith("Multi") or p.geom_type == "GeometryCollection"
              for p in parts):
        parts = shapely.get_parts(parts)
    polygons = [p for p in parts if shapely.get_type_id(p) == _POLYGON and not p.is_empty]
    if len(polygons) == 1:
        return polygons[0]
    return shapely.MultiPolygon(polygons)


def repair_polygons(geometries: Sequence[shapely.Geometry], source: str | Path = "labels"
                    ) -> np.ndarray:
    """Drop empty geometries and repair invalid ones, one Polygon or MultiPolygon per building.

    Invalid polygons (self-intersections, bow ties) are fixed with ``shapely.make_valid`` and
    reduced to their polygonal part; how many were repaired is logged once.

    Args:
        geometries: building polygons (Polygon or MultiPolygon, holes allowed).
        source: the file the polygons came from, named in the log line.

    Returns:
        An object array of valid, non-empty polygonal geometries.
    """
    geoms = np.asarray(list(geometries), dtype=object)
    if geoms.size == 0:
        return geoms
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms[invalid] = [polygonal(g) for g in shapely.make_valid(geoms[invalid])]
        log.info("%s: repaired %d invalid polygon(s)", source, int(invalid.sum()))
        geoms = geoms[~shapely.is_empty(geoms)]
    return geoms


# ---------------------------------------------------------------------------------------------
# Masks (pixel-coordinate polygons in, numpy arrays out)


def footprint_mask(polygons: Sequence[shapely.Geometry], shape: tuple[int, int]) -> np.ndarray:
    """Boolean footprint mask: pixels whose centre lies inside a polygon.

    Args:
        polygons: buildings in pixel coordinates (holes and MultiPolygons allowed).
        shape: ``(rows, columns)`` of the mask.
    """
    polygons = [g for g in polygons if g is not None and not g.is_empty]
    if not polygons:
        return np.zeros(shape, dtype=bool)
    burnt = features.rasterize(((g, 1) for g in polygons), out_shape=shape, fill=0,
                               dtype="uint8", all_touched=False)
    return burnt.astype(bool)


def boundary_mask(footprint: np.ndarray, width: int = 3,
                  side: Literal["inner", "outer"] = "inner") -> np.ndarray:
    """Boolean boundary of a footprint mask.

    Args:
        footprint: boolean footprint mask.
        width: side of the square structuring element (3 gives a 1-pixel ring).
        side: ``"inner"``: footprint minus its erosion (pixels outside the image count as
            foreground); ``"outer"``: dilation minus footprint.

    Raises:
        InputError: ``width`` below 2 or an unknown ``side``.
    """
    if width < 2:
        raise InputError("--boundary-width", f"must be at least 2 pixels, got {width}")
    square = np.ones((width, width), dtype=bool)
    footprint = footprint.astype(bool)
    if side == "inner":
        return footprint & ~ndimage.binary_erosion(footprint, square, border_value=1)
    if side == "outer":
        return ndimage.binary_dilation(footprint, square) & ~footprint
    raise InputError("--boundary-side", f"must be 'inner' or 'outer', got {side!r}")


def contact_regions(polygons: Sequence[shapely.Geometry], spacing: float) -> np.ndarray:
    """Polygons where at least two buildings, each grown by ``spacing / 2``, overlap.

    Only neighbouring pairs are intersected: an STR-tree over the grown buildings yields the
    pairs whose grown shapes intersect, so a dense tile costs about O(n log n), not O(n^2).
    """
    # 16 segments per quarter circle, as the reference masks; note that shapely.buffer()
    # defaults to 8 while Geometry.buffer() defaults to 16.
    grown = shapely.buffer(np.asarray(list(polygons), dtype=object), spacing / 2,
                           quad_segs=QUAD_SEGS)
    if grown.size < 2:
        return np.empty(0, dtype=object)
    tree = shapely.STRtree(grown)
    left, right = tree.query(grown, predicate="intersects")
    pairs = left < right  # each unordered pair once, never a building with itself
    overlaps = shapely.intersection(grown[left[pairs]], grown[right[pairs]])
    # Two grown buildings that only touch meet in a line or point: no area, no pixel.
    parts = shapely.get_parts(overlaps)
    return parts[shapely.get_type_id(parts) == _POLYGON]


def contact_mask(polygons: Sequence[shapely.Geometry], shape: tuple[int, int],
                 spacing: float = 10, footprint: np.ndarray | None = None) -> np.ndarray:
    """Boolean contact mask: background pixels between buildings closer than ``spacing`` px.

    Args:
        polygons: buildings in pixel coordinates, one geometry per building.
        shape: ``(rows, columns)`` of the mask.
        spacing: buildings closer than this many pixels get contact pixels between them.
        footprint: the footprint mask of ``polygons`` if already computed.

    Raises:
        InputError: ``spacing`` is not positive.
    """
    if not spacing > 0:
        raise InputError("--contact-spacing", f"must be positive, got {spacing}")
    if footprint is None:
        footprint = footprint_mask(polygons, shape)
    return footprint_mask(contact_regions(polygons, spacing), shape) & ~footprint


def distance_map(footprint: np.ndarray) -> np.ndarray:
    """Signed distance (float32, pixels) to the footprint edge: positive inside, negative out.

    A mask with no footprint (or nothing but footprint) has no edge: its map is all zero.
    """
    footprint = footprint.astype(bool)
    if footprint.all() or not footprint.any():
        return np.zeros(footprint.shape, dtype=np.float32)
    inside = ndimage.distance_transform_edt(footprint)
    outside = ndimage.distance_transform_edt(~footprint)
    return (inside - outside).astype(np.float32)


def make_mask(polygons: Sequence[shapely.Geometry], shape: tuple[int, int],
              kind: MaskKind = "footprint", boundary_width: int = 3,
              boundary_side: Literal["inner", "outer"] = "inner",
              contact_spacing: float = 10) -> np.ndarray:
    """One mask as written to disk: uint8 {0, 255}, or float32 pixels for ``"distance"``.

    Args:
        polygons: buildings in pixel coordinates of the grid.
        shape: ``(rows, columns)`` of the grid.
        kind: ``footprint``, ``boundary``, ``contact`` or ``distance``.
        boundary_width: side of the square structuring element of the boundary.
        boundary_side: ``inner`` or ``outer`` boundary.
        contact_spacing: contact spacing in pixels.

    Raises:
        InputError: an unknown kind or a bad parameter.
    """
    if kind not in MASK_KINDS:
        raise InputError("--kind", f"unknown mask kind {kind!r}; choose one of {MASK_KINDS}")
    footprint = footprint_mask(polygons, shape)
    if kind == "distance":
        return distance_map(footprint)
    if kind == "boundary":
        footprint = boundary_mask(footprint, boundary_width, boundary_side)
    elif kind == "contact":
        footprint = contact_mask(polygons, shape, contact_spacing, footprint)
    return to_uint8(footprint)


def to_uint8(mask: np.ndarray) -> np.ndarray:
    """A boolean mask as uint8 {0, 255}."""
    return np.where(mask, np.uint8(255), np.uint8(0))


# ---------------------------------------------------------------------------------------------
# Labels onto a grid, files in and out


def read_labels(labels: str | Path, grid: Grid, image: str | Path | None = None) -> np.ndarray:
    """Building polygons of a label file in pixel coordinates of ``grid``, repaired.

    Args:
        labels: a GeoJSON in any CRS (reprojected to ``grid.crs``), or a SpaceNet CSV whose
            ``PolygonWKT_Pix`` is already in the image's pixel coordinates. A CSV holding several
            images is filtered to ``image``'s SpaceNet image id.
        grid: the target grid.
        image: the image file (its name selects the CSV rows).

    Raises:
        InputError: unreadable labels, a CSV without the image, or labels that do not overlap
            the image at all (usually a wrong CRS).
    """
    labels = Path(labels)
    if labels.suffix.lower() == ".csv":
        geoms = _csv_polygons(labels, image)
    else:
        geoms = _geojson_polygons(labels, grid)
    geoms = repair_polygons(geoms, labels)
    _check_overlap(labels, geoms, grid)
    return geoms


def _geojson_polygons(path: Path, grid: Grid) -> np.ndarray:
    if grid.crs is None:
        raise InputError(path, "GeoJSON labels need a georeferenced image (the image has no CRS)")
    frame = spacenet.read_geojson(path, crs=grid.crs)
    coords = shapely.get_coordinates(frame.geometry.values)
    if not np.isfinite(coords).all():
        raise InputError(path, f"labels cannot be reprojected to the image CRS "
                               f"({grid.crs.to_string()}): they lie outside its domain")
    return spacenet.to_pixel(frame, grid.transform).geometry.values


def _csv_polygons(path: Path, image: str | Path | None) -> np.ndarray:
    frame = spacenet.read_summary_csv(path)
    ids = frame.attrs["image_ids"]
    wanted = None
    if image is not None:
        try:
            wanted = spacenet.image_id(image)
        except InputError:
            wanted = None
    if len(ids) <= 1:
        # One image in the CSV: trust it unless both names are SpaceNet ids that differ.
        named = {_spacenet_id(i) for i in ids} - {None}
        if wanted is not None and named and wanted not in named:
            raise InputError(path, f"labels are for {ids[0]}, not for the image {wanted}")
        return frame.geometry.values
    if wanted is None or wanted not in ids:
        raise InputError(path, f"holds {len(ids)} images and none matches the image "
                               f"{Path(image).name if image else '?'}")
    return frame.geometry.values[(frame["ImageId"] == wanted).values]


def _spacenet_id(name: str) -> str | None:
    """The SpaceNet image id in ``name``, or None when it holds none."""
    try:
        return spacenet.image_id(name)
    except InputError:
        return None


def _check_overlap(path: Path, geoms: np.ndarray, grid: Grid) -> None:
    """Refuse labels of which not one polygon touches the image: almost always a CRS mix-up."""
    if geoms.size == 0:
        return
    rows, cols = grid.shape
    if not shapely.intersects(geoms, shapely.box(0, 0, cols, rows)).any():
        minx, miny, maxx, maxy = shapely.total_bounds(geoms)
        raise InputError(path, f"none of the {geoms.size} label polygons overlaps the image "
                               f"(label pixel bounds x {minx:.0f}..{maxx:.0f}, y {miny:.0f}.."
                               f"{maxy:.0f}; image {cols}x{rows}): wrong CRS or wrong image?")


def write_mask(path: str | Path, mask: np.ndarray, grid: Grid) -> Path:
    """Write a single-band mask GeoTIFF on ``grid`` atomically (deflate-compressed).

    Raises:
        OutputError: the mask cannot be written (a full disk, say), naming ``path``.
    """
    profile: dict[str, object] = {"driver": "GTiff", "dtype": mask.dtype.name,
                                  "compress": "deflate"}
    if grid.crs is not None:
        profile["crs"] = grid.crs
    if grid.crs is not None or grid.transform != Affine.identity():
        # A pixel-space grid is written without georeferencing (GDAL warns on identity).
        profile["transform"] = grid.transform
    return write_raster(path, mask, **profile)


def rasterize_file(image: str | Path, labels: str | Path, out: str | Path,
                   kind: MaskKind | RoadKind = "footprint", boundary_width: int = 3,
                   boundary_side: Literal["inner", "outer"] = "inner",
                   contact_spacing: float = 10, road: RoadParams | None = None) -> Path:
    """Rasterize a label file onto an image's grid and write the mask (``aerialsam rasterize``).

    Writes uint8 {0, 255} (float32 for ``distance`` and ``road_distance``) with the image's
    CRS and transform. Building kinds read polygons (see :func:`make_mask` for the parameters
    and :func:`read_labels` for the labels); road kinds read centre lines and need a
    georeferenced image (see :mod:`aerialsam.prep.road_masks`).

    Raises:
        InputError: bad image, bad labels, labels off the image, or a bad parameter.
    """
    if kind in ROAD_KINDS:
        grid = read_grid(image)
        roads = road_masks.read_road_labels(labels, grid, image, road)
        return write_mask(out, road_masks.road_mask(roads, grid.shape, kind, road), grid)
    is_csv = Path(labels).suffix.lower() == ".csv"
    grid = read_grid(image, require_crs=not is_csv)
    polygons = read_labels(labels, grid, image)
    mask = make_mask(polygons, grid.shape, kind, boundary_width, boundary_side, contact_spacing)
    return write_mask(out, mask, grid)
