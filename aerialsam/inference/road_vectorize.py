"""Road probabilities to road graphs and SpaceNet 3 proposals (CSV, GeoPackage).

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

Outputs: :func:`road_sections` (what the official SpaceNet 3 scorer accepts: no duplicate or
zero-length section, no lone point), :func:`write_roads_csv` (``ImageId,WKT_Pix`` for many
images, ``LINESTRING EMPTY`` for an image without road), :func:`road_frame` and
:func:`write_roads_vector` (LineStrings in the map CRS with ``length_m`` and ``length_px``).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import rasterio
import shapely
from affine import Affine
from pyproj import CRS
from rasterio.windows import Window
from scipy import ndimage, sparse
from scipy.sparse import csgraph
from shapely.geometry import LineString
from skan.csr import PathGraph
from skimage.morphology import skeletonize

from aerialsam.data.spacenet import image_id as to_image_id
from aerialsam.data.spacenet import pixel_size_m, to_geo
from aerialsam.errors import InputError
from aerialsam.inference.road_graph import (
    DEFAULT_OPTIONS,
    NOMINAL_PIXEL_SIZE,
    PixelSize,
    RoadGraphOptions,
    add_edge,
    clean_graph,
    empty_graph,
    split_loops,
)
from aerialsam.inference.vectorize import as_probability, write_vector
from aerialsam.io import atomic_path, open_raster

log = logging.getLogger(__name__)

STRIP_ROWS = 4096
"""Rasters taller than this are skeletonized in strips of this many rows."""
STRIP_MARGIN = 256
"""Rows read above and below each strip: more than the widest road, in pixels."""
EMPTY = "LINESTRING EMPTY"
"""The ``WKT_Pix`` of an image without road."""
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
        u, v = _point_keys(coords[[0, -1]])
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


def _edge_paths(graph: nx.MultiGraph, source: str | Path) -> nx.MultiGraph:
    """A copy of a road graph with a geometry on every edge, without zero-length edges.

    Self-loops are split (:func:`~aerialsam.inference.road_graph.split_loops`).

    Raises:
        InputError: an edge without a LineString geometry whose nodes have no ``x``, ``y``.
    """
    out = empty_graph(graph.graph.get("pixel_size", NOMINAL_PIXEL_SIZE))
    for u, v, data in graph.edges(data=True):
        line = data.get("geometry")
        if line is None:
            try:
                line = LineString([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in (u, v)])
            except KeyError:
                raise InputError(source, f"road edge {u}-{v} has no geometry and its nodes "
                                         "no x, y") from None
        if not isinstance(line, LineString):
            raise InputError(source, f"road edge {u}-{v} is a "
                                     f"{getattr(line, 'geom_type', type(line).__name__)}, "
                                     "not a LineString")
        if not line.is_empty and line.length > 0:
            add_edge(out, u, v, line.coords)
    split_loops(out)
    return out


def _point_keys(coords: np.ndarray) -> list[tuple[int, int]]:
    """The scorer's identity of points: coordinates rounded to 0.1 px."""
    return [tuple(k) for k in np.round(np.asarray(coords) * _TENTHS).astype(np.int64).tolist()]


def road_sections(graph: nx.MultiGraph, precision: int | None = 1,
                  source: str | Path = "road graph") -> list[LineString]:
    """The LineStrings (pixel coordinates) of a road graph, valid for the SpaceNet scorer.

    One section per edge, coordinates rounded to ``precision`` decimals (None: kept), then
    by construction: no zero-length step (repeated points dropped, edges of no length and
    self-loops handled as in :func:`_edge_paths`), no lone point, and no section repeated
    in either direction (a line is cut where it would repeat one; the scorer identifies
    points to 0.1 px, and so does this).
    """
    seen: set[tuple] = set()
    sections = []
    for _, _, data in _edge_paths(graph, source).edges(data=True):
        coords = np.asarray(data["geometry"].coords, dtype=float)
        if precision is not None:
            coords = np.round(coords, precision)
        keys = _point_keys(coords)
        run = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
        piece = [run[0]]
        for i, j in itertools.pairwise(run):
            step = (min(keys[i], keys[j]), max(keys[i], keys[j]))
            if step in seen:
                if len(piece) > 1:
                    sections.append(LineString(coords[piece]))
                piece = [j]
            else:
                seen.add(step)
                piece.append(j)
        if len(piece) > 1:
            sections.append(LineString(coords[piece]))
    return sections


def check_sections(lines: Sequence[LineString], source: str | Path, image: str) -> None:
    """Refuse what the official SpaceNet 3 scorer refuses in one image's LineStrings.

    Raises:
        InputError: ``LINESTRING EMPTY`` with roads, a lone point, a zero-length section or
            a duplicate section (either direction); the first one found.
    """
    seen: set[tuple] = set()
    for line in lines:
        if not isinstance(line, LineString):
            kind = getattr(line, "geom_type", type(line).__name__)
            raise InputError(source, f"image {image}: a {kind} is not a LineString")
        if line.is_empty:
            raise InputError(source, f"image {image}: {EMPTY} mixed with roads")
        coords = np.asarray(line.coords)[:, :2]
        keys = _point_keys(coords)
        if len(coords) < 2:
            raise InputError(source, f"image {image}: lone point at {tuple(coords[0])}")
        for i in range(1, len(coords)):
            step = (min(keys[i - 1], keys[i]), max(keys[i - 1], keys[i]))
            if keys[i] == keys[i - 1] or math.dist(coords[i - 1], coords[i]) < 0.01:
                raise InputError(source, f"image {image}: zero-length section at "
                                         f"{tuple(coords[i])}")
            if step in seen:
                raise InputError(source, f"image {image}: duplicate section "
                                         f"{tuple(coords[i - 1])}-{tuple(coords[i])}")
            seen.add(step)


def _image_lines(roads: nx.MultiGraph | Sequence[LineString], precision: int,
                 source: Path, image: str) -> list[LineString]:
    """The checked sections of one image: a graph's made valid, given lines only rounded."""
    if isinstance(roads, nx.Graph):
        lines = road_sections(roads, precision, source)
    else:
        lines = list(roads)
        if len(lines) == 1 and isinstance(lines[0], LineString) and lines[0].is_empty:
            lines = []
        lines = [LineString(np.round(np.asarray(line.coords)[:, :2], precision))
                 if isinstance(line, LineString) and not line.is_empty else line
                 for line in lines]
    check_sections(lines, source, image)
    return lines


def road_rows(image: str, roads: nx.MultiGraph | Sequence[LineString], source: str | Path,
              precision: int = 1) -> list[tuple[str, str]]:
    """The ``(ImageId, WKT_Pix)`` rows of one image, under ``image`` as given.

    A graph is made valid (:func:`road_sections`), LineStrings only rounded and checked
    (:func:`check_sections`, naming ``source``); an image without roads gets one
    ``LINESTRING EMPTY`` row.
    """
    lines = _image_lines(roads, precision, Path(source), image)
    wkts = (shapely.to_wkt(lines, rounding_precision=precision, trim=True).tolist()
            if lines else [EMPTY])
    return [(image, wkt) for wkt in wkts]


def write_roads_csv(roads: Mapping[str, nx.MultiGraph | Sequence[LineString]],
                    path: str | Path, precision: int = 1) -> Path:
    """Write a SpaceNet 3 proposal CSV, ``ImageId,WKT_Pix``, for many images (atomically).

    Args:
        roads: tile file name or image id -> its road graph or its LineStrings (pixel
            coordinates). A graph is made valid (:func:`road_sections`); LineStrings are
            only rounded, and refused when the scorer would refuse them.
        path: the CSV to write.
        precision: decimals of the coordinates.

    Raises:
        InputError: no SpaceNet image id in a name, an image twice, or invalid LineStrings
            (:func:`check_sections`).
    """
    path = Path(path)
    rows = []
    done: set[str] = set()
    for name, image_roads in roads.items():
        image = to_image_id(name)
        if image in done:
            raise InputError(path, f"image {image} is given twice")
        done.add(image)
        rows.extend(road_rows(image, image_roads, path, precision))
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=["ImageId", "WKT_Pix"]).to_csv(tmp, index=False)
    log.info("wrote %d road sections of %d images to %s", len(rows), len(done), path)
    return path


def road_frame(graph: nx.MultiGraph, transform: Affine | None = None,
               crs: CRS | str | None = None) -> gpd.GeoDataFrame:
    """The road sections of a graph as LineStrings in the map CRS, with their lengths.

    Args:
        graph: a road graph in pixel coordinates.
        transform: the raster's transform (default: the graph's, from
            :func:`read_road_graph`).
        crs: the raster's CRS (default: the graph's).

    Returns:
        Columns ``length_m`` (geodesic on the ellipsoid for a geographic CRS, else in the
        CRS's unit converted to metres), ``length_px`` and ``geometry``.

    Raises:
        InputError: no transform or CRS to place the roads with.
    """
    transform = transform if transform is not None else graph.graph.get("transform")
    crs = crs if crs is not None else graph.graph.get("crs")
    source = graph.graph.get("source", "road graph")
    if transform is None or crs is None:
        raise InputError(source, "no transform or CRS: the roads cannot be placed on a map")
    lines = road_sections(graph, None, source)
    pixel = gpd.GeoDataFrame({"length_px": [line.length for line in lines]},
                             geometry=gpd.GeoSeries(lines))
    frame = to_geo(pixel, transform, crs)
    map_crs = CRS.from_user_input(crs)
    geoms = np.asarray(frame.geometry.array)
    if map_crs.is_geographic:
        geod = map_crs.get_geod()
        frame["length_m"] = [geod.geometry_length(g) for g in geoms]
    else:
        frame["length_m"] = shapely.length(geoms) * map_crs.axis_info[0].unit_conversion_factor
    return frame[["length_m", "length_px", "geometry"]]


def write_roads_vector(frame: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write :func:`road_frame`'s LineStrings as a GeoPackage (or GeoJSON), atomically."""
    return write_vector(frame, path, layer="roads")
