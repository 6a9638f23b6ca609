"""Road probabilities to road graphs.

One array, in pixel coordinates as ``WKT_Pix`` (skeleton pixel at row r, column c: the point
(c + 0.5, r + 0.5)): :func:`road_mask` thresholds it, closes one-pixel cracks
(``closing_px``) and fills enclosed holes up to ``fill_holes_m2`` (a hole in a wide road
would become a loop); :func:`skeleton_pixels` thins it (:func:`skimage.morphology.skeletonize`);
:func:`skeleton_graph` has skan (:class:`skan.csr.PathGraph`) trace the pixel paths between
junctions and ends, one edge each; :func:`~aerialsam.inference.road_graph.clean_graph` cleans.

A raster (:func:`read_road_graph`) is thinned in strips of rows, each with ``margin`` extra
rows on both sides, keeping only the skeleton pixels of the strip's own rows. Thinning is
local: with a margin wider than the widest road (and the largest filled hole) these are the
pixels of the whole raster's skeleton. All strips' pixels are traced as one skeleton, so a
road crossing a strip edge is one path as in the whole raster (keeping edges by their
midpoint would fail for edges longer than the margin), and the clean-up sees the whole graph.

The graphs become SpaceNet 3 proposals (CSV, GeoPackage) in
:mod:`aerialsam.inference.road_sections`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import networkx as nx
import numpy as np
import rasterio
from rasterio.windows import Window
from scipy import ndimage, sparse
from scipy.sparse import csgraph
from shapely.geometry import LineString
from skan.csr import PathGraph
from skimage.morphology import skeletonize

from aerialsam.data.spacenet import pixel_size_m
from aerialsam.errors import InputError
from aerialsam.inference.road_graph import (
    DEFAULT_OPTIONS,
    NOMINAL_PIXEL_SIZE,
    PixelSize,
    RoadGraphOptions,
    add_edge,
    clean_graph,
    empty_graph,
)
from aerialsam.inference.vectorize import as_probability
from aerialsam.io import open_raster

log = logging.getLogger(__name__)

STRIP_ROWS = 4096
"""Rasters taller than this are skeletonized in strips of this many rows."""
STRIP_MARGIN = 256
"""Rows read above and below each strip: more than the widest road, in pixels."""
PROBABILITY_DTYPES = ("float16", "float32", "float64", "uint8")
_TENTHS = 10  # the scorer identifies points by their coordinates rounded to 0.1 px
_NEIGHBOURS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


MASK_OPTIONS = ("threshold", "closing_px", "fill_holes_m2", "min_blob_m2")
"""The fields of :class:`RoadGraphOptions` that :func:`road_mask` reads (the rest clean the
graph): two settings equal in these give the same mask and skeleton."""


def road_mask(prob: np.ndarray, options: RoadGraphOptions = DEFAULT_OPTIONS,
              pixel_size: PixelSize = NOMINAL_PIXEL_SIZE) -> np.ndarray:
    """The road mask of a probability map: thresholded, closed, small holes filled, specks gone.

    Args:
        prob: road probability (float 0-1), binary (bool) or ``uint8`` (0-255) map; NaN is
            no road.
        options: its :data:`MASK_OPTIONS` are used.
        pixel_size: (east-west, north-south) metres per pixel.
    """
    mask = as_probability(prob) > options.threshold
    if options.closing_px > 0:
        radius = int(options.closing_px)
        rows, cols = np.ogrid[-radius:radius + 1, -radius:radius + 1]
        disk = rows * rows + cols * cols <= radius * radius
        # outside the array counts as road for the erosion, so roads keep their edge pixels
        mask = ndimage.binary_erosion(ndimage.binary_dilation(mask, disk), disk, border_value=1)
    max_hole = options.fill_holes_m2 / (pixel_size[0] * pixel_size[1])
    if max_hole >= 1:
        holes, count = ndimage.label(~mask)
        if count:
            small = np.bincount(holes.ravel()) <= max_hole
            small[0] = False
            edges = np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]])
            small[edges] = False  # background reaching the array's edge is not a hole
            mask |= small[holes]
    max_blob = options.min_blob_m2 / (pixel_size[0] * pixel_size[1])
    if max_blob >= 1:
        blobs, count = ndimage.label(mask, structure=np.ones((3, 3)))
        if count:
            small = np.bincount(blobs.ravel()) <= max_blob
            small[0] = False
            mask &= ~small[blobs]
    return mask


def skeleton_pixels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the skeleton pixels of a road mask (Zhang-Suen thinning)."""
    rows, cols = np.nonzero(skeletonize(np.asarray(mask, dtype=bool)))
    return rows.astype(np.int64), cols.astype(np.int64)


def _pixel_adjacency(rows: np.ndarray, cols: np.ndarray) -> sparse.csr_matrix:
    """8-neighbour adjacency of pixels sorted by (row, column), weighted by distance.

    As skan does for an image, links between junction pixels (3 or more neighbours) are
    kept only along their minimum spanning tree, so a clump of junction pixels traces no
    tiny cycles.
    """
    width = int(cols.max()) + 3
    keys = rows * width + cols + 1  # a column of padding on both sides: no wrapping
    src, dst, dist = [], [], []
    for dr, dc in _NEIGHBOURS:
        target = keys + dr * width + dc
        pos = np.minimum(np.searchsorted(keys, target), len(keys) - 1)
        hit = keys[pos] == target
        src.append(np.flatnonzero(hit))
        dst.append(pos[hit])
        dist.append(np.full(int(hit.sum()), math.hypot(dr, dc)))
    src, dst, dist = np.concatenate(src), np.concatenate(dst), np.concatenate(dist)
    n = len(keys)
    junction = np.bincount(src, minlength=n) >= 3
    links = np.flatnonzero(junction[src] & junction[dst])
    if links.size:
        tree = csgraph.minimum_spanning_tree(sparse.csr_matrix(
            (dist[links], (src[links], dst[links])), shape=(n, n)))
        tree = (tree + tree.T).tocsr()
        keep = np.ones(len(src), dtype=bool)
        keep[links] = np.asarray(tree[src[links], dst[links]]).ravel() > 0
        src, dst, dist = src[keep], dst[keep], dist[keep]
    return sparse.csr_matrix((dist, (src, dst)), shape=(n, n))


def skeleton_graph(rows: np.ndarray, cols: np.ndarray,
                   pixel_size: PixelSize = NOMINAL_PIXEL_SIZE,
                   shape: tuple[int, int] | None = None) -> nx.MultiGraph:
    """The raw road graph of skeleton pixels: one edge per skan path.

    Pixels without a neighbour are dropped (a lone pixel is no road); a closed ring without
    junction becomes a self-loop. Node ids are pixel indices in (row, column) order;
    ``shape`` (rows, columns of the raster) lets the clean-up reach the raster's edges.
    """
    graph = empty_graph(pixel_size, shape)
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    if rows.size == 0:
        return graph
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    adjacency = _pixel_adjacency(rows, cols)
    linked = np.diff(adjacency.indptr) > 0
    if not linked.any():
        return graph
    if not linked.all():
        rows, cols = rows[linked], cols[linked]
        adjacency = _pixel_adjacency(rows, cols)
    coords = np.column_stack([cols + 0.5, rows + 0.5])
    paths = PathGraph.from_graph(adj=adjacency, node_coordinates=coords).paths
    for i in range(paths.shape[0]):
        ids = paths.indices[paths.indptr[i]:paths.indptr[i + 1]]
        add_edge(graph, int(ids[0]), int(ids[-1]), coords[ids])
    return graph


def mask_to_graph(prob: np.ndarray, options: RoadGraphOptions = DEFAULT_OPTIONS,
                  pixel_size: PixelSize = NOMINAL_PIXEL_SIZE) -> nx.MultiGraph:
    """The clean road graph (pixel coordinates) of one probability or binary map.

    Args:
        prob: road probability (float 0-1), binary (bool) or ``uint8`` (0-255) map.
        options: threshold and clean-up rules.
        pixel_size: (east-west, north-south) metres per pixel, for the options in metres.
    """
    mask = road_mask(prob, options, pixel_size)
    return clean_graph(skeleton_graph(*skeleton_pixels(mask), pixel_size, mask.shape), options)


def point_keys(coords: np.ndarray) -> list[tuple[int, int]]:
    """The scorer's identity of points: their coordinates rounded to 0.1 px."""
    return [tuple(k) for k in np.round(np.asarray(coords) * _TENTHS).astype(np.int64).tolist()]


def lines_graph(lines: Sequence[LineString | np.ndarray],
                pixel_size: PixelSize = NOMINAL_PIXEL_SIZE) -> nx.MultiGraph:
    """A road graph of LineStrings in pixel coordinates (labels, or a CSV's roads).

    Ends that fall on the same 0.1 px (the scorer's identity of points) become one node, so
    :func:`road_sections` of it are valid for the scorer even when the lines are not (a
    label file that repeats a section, a line with a repeated point).
    """
    graph = empty_graph(pixel_size)
    for line in lines:
        coords = np.asarray(line.coords if isinstance(line, LineString) else line,
                            dtype=float)
        coords = coords.reshape(len(coords), -1)[:, :2]  # a Z coordinate is dropped
        if len(coords) < 2:
            continue
        u, v = point_keys(coords[[0, -1]])
        add_edge(graph, u, v, coords)
    return graph


def raster_pixel_size(src: rasterio.DatasetReader) -> PixelSize:
    """(east-west, north-south) ground size in metres of a raster's pixels.

    Degrees become metres at the raster's central latitude
    (:func:`aerialsam.data.spacenet.pixel_size_m`); a raster without CRS is taken to have
    :data:`~aerialsam.inference.road_graph.NOMINAL_PIXEL_SIZE` pixels (with a warning).
    """
    t = src.transform
    x_size, y_size = math.hypot(t.a, t.d), math.hypot(t.b, t.e)
    if src.crs is None:
        log.warning("%s has no CRS: taking %s m pixels", src.name, NOMINAL_PIXEL_SIZE)
        return NOMINAL_PIXEL_SIZE
    if src.crs.is_geographic:
        latitude = t.d * src.width / 2 + t.e * src.height / 2 + t.f
        return pixel_size_m(latitude, x_size)[0], pixel_size_m(latitude, y_size)[1]
    factor = src.crs.linear_units_factor[1]
    return x_size * factor, y_size * factor


def _check_raster(src: rasterio.DatasetReader, path: str | Path, band: int) -> None:
    """Refuse a raster whose ``band`` is not road probabilities."""
    if not 1 <= band <= src.count or src.dtypes[band - 1] not in PROBABILITY_DTYPES:
        raise InputError(path, f"not a road probability raster: band {band} of {src.count} "
                               f"band(s) of {src.dtypes[0]} (expected float 0-1 or uint8 "
                               "0-255)")


def _read_strip(src: rasterio.DatasetReader, path: str | Path, window: Window,
                band: int = 1) -> np.ndarray:
    """One strip of probabilities; NaN becomes 0, floats outside 0-1 are refused."""
    prob = src.read(band, window=window)
    if prob.dtype.kind == "f":
        prob = np.nan_to_num(prob, nan=0.0)
        if prob.size and (prob.min() < -1e-3 or prob.max() > 1 + 1e-3):
            raise InputError(path, f"values from {prob.min():g} to {prob.max():g} are not "
                                   "road probabilities (expected 0-1)")
    return prob


def read_road_graph(prob_path: str | Path, options: RoadGraphOptions = DEFAULT_OPTIONS,
                    strip_rows: int = STRIP_ROWS, margin: int = STRIP_MARGIN,
                    band: int = 1) -> nx.MultiGraph:
    """The clean road graph (pixel coordinates) of a road probability GeoTIFF.

    Read in strips of ``strip_rows`` rows with ``margin`` rows of overlap (see the module
    docstring). The graph's attributes add ``transform``, ``crs`` and ``source`` to
    ``pixel_size`` (from the raster's georeferencing).

    Args:
        prob_path: the probability GeoTIFF (``aerialsam predict`` of a road run writes the
            road probability in band 1, the centre line's in band 2).
        options: threshold and clean-up rules.
        strip_rows: rows read at a time.
        margin: rows of overlap between strips.
        band: the band holding road probabilities.

    Raises:
        InputError: the file is missing, unreadable, or ``band`` is not probabilities.
    """
    with open_raster(prob_path, require_crs=False) as src:
        _check_raster(src, prob_path, band)
        size = raster_pixel_size(src)
        rows, cols = [], []
        for top in range(0, src.height, strip_rows):
            start = max(0, top - margin)
            stop = min(src.height, top + strip_rows + margin)
            prob = _read_strip(src, prob_path, Window(0, start, src.width, stop - start), band)
            r, c = skeleton_pixels(road_mask(prob, options, size))
            core = (r + start >= top) & (r + start < top + strip_rows)
            rows.append(r[core] + start)
            cols.append(c[core])
        transform, crs, shape = src.transform, src.crs, (src.height, src.width)
    graph = clean_graph(skeleton_graph(np.concatenate(rows), np.concatenate(cols), size, shape),
                        options)
    graph.graph.update(transform=transform, crs=crs, source=str(prob_path))
    return graph
