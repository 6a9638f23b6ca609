"""Road graphs to SpaceNet 3 proposals: scorer-valid sections, CSV rows, GeoPackage.

:func:`road_sections` gives what the official SpaceNet 3 scorer accepts (no duplicate or
zero-length section, no lone point), :func:`write_roads_csv` writes ``ImageId,WKT_Pix`` for many
images (``LINESTRING EMPTY`` for an image without road), :func:`road_frame` and
:func:`write_roads_vector` the LineStrings in the map CRS with ``length_m`` and ``length_px``.
The graphs come from :mod:`aerialsam.inference.road_vectorize`.
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
import shapely
from affine import Affine
from pyproj import CRS
from shapely.geometry import LineString

from aerialsam.data.spacenet import image_id as to_image_id
from aerialsam.data.spacenet import to_geo
from aerialsam.errors import InputError
from aerialsam.inference.road_graph import (
    NOMINAL_PIXEL_SIZE,
    add_edge,
    empty_graph,
    split_loops,
)
from aerialsam.inference.road_vectorize import point_keys
from aerialsam.inference.vectorize import write_vector
from aerialsam.io import atomic_path

log = logging.getLogger(__name__)

EMPTY = "LINESTRING EMPTY"
"""The ``WKT_Pix`` of an image without road."""


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
        keys = point_keys(coords)
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
        keys = point_keys(coords)
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
