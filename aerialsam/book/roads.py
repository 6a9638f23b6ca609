"""The roads chapter (10): SpaceNet 3 tiles, masks in metres, mask to graph, APLS explained.

The chapter shows a real SpaceNet 3 tile shipped with the book (``book/samples``) beside the
synthetic road cities of the profile. Its "model output" is a stand-in made from the truth
(the road mask blurred, with noise and breaks): it exercises mask to graph and APLS before
any road model exists, and its numbers describe that simulation, never a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy import ndimage

from aerialsam.data import spacenet, spacenet3
from aerialsam.data.demo_roads import prepare_road_raw as prepare_road_raw  # the chapter's
from aerialsam.inference import road_graph, road_vectorize
from aerialsam.io import open_raster
from aerialsam.metrics import apls
from aerialsam.prep import road_masks
from aerialsam.prep.masks import Grid, read_grid
from aerialsam.prep.stretch import Stretch, apply_stretch, compute_stretch

SNAP_PX = 4 / 0.31
"""APLS snaps a node onto the other graph within 4 m, taken as 4/0.31 px by the scorer."""


@dataclass(frozen=True)
class RoadScene:
    """One road tile as the chapter shows it.

    Attributes:
        image_id: the competition's image id.
        rgb: the image as uint8 RGB (rows, columns, 3); 11-bit tiles are stretched.
        lines: the road centre lines in pixel coordinates, with their attributes.
        labels: the label file (GeoJSON).
        grid: the tile's raster grid.
    """

    image_id: str
    rgb: np.ndarray
    lines: gpd.GeoDataFrame
    labels: Path
    grid: Grid


def load_scene(image: str | Path, labels: str | Path, stretch: Stretch | None = None
               ) -> RoadScene:
    """A tile and its road labels (a GeoJSON beside it), ready to draw.

    Args:
        image: the tile's GeoTIFF (its first three bands are shown).
        labels: its road GeoJSON.
        stretch: the AOI's stretch for 11-bit imagery (default: computed from this tile
            alone); uint8 images are shown as they are.

    Raises:
        InputError: a missing or unreadable image or label file.
    """
    image, labels = Path(image), Path(labels)
    with open_raster(image) as src:
        pixels = src.read([1, 2, 3])
    if pixels.dtype != np.uint8:
        pixels = apply_stretch(pixels, stretch or compute_stretch([image]))
    grid = read_grid(image)
    lines = spacenet.to_pixel(spacenet3.read_road_geojson(labels), grid.transform)
    return RoadScene(spacenet.image_id(labels), np.moveaxis(pixels, 0, -1), lines, labels, grid)


def city_scenes(raw: str | Path, seed: int = 0) -> dict[str, RoadScene]:
    """The first tile with roads of each city under a raw folder, by city name.

    Each is stretched with its AOI's bounds (2-98 % over a seeded sample of its tiles).
    """
    tiles = spacenet3.find_road_tiles(raw)
    stretches = {aoi: compute_stretch([t.image_path for t in tiles if t.aoi == aoi], seed=seed)
                 for aoi in dict.fromkeys(t.aoi for t in tiles)}
    scenes: dict[str, RoadScene] = {}
    for tile in tiles:
        city = spacenet.CITY_NAMES[tile.aoi]
        if city in scenes or tile.geojson_path is None:
            continue
        scene = load_scene(tile.image_path, tile.geojson_path, stretches[tile.aoi])
        if len(scene.lines):
            scenes[city] = scene
    return scenes


def xy_pixel_size(scene: RoadScene) -> road_graph.PixelSize:
    """The ground size of the tile's pixels in metres as the graph code takes it: (x, y)."""
    north_south, east_west = road_masks.pixel_size_m(scene.grid)
    return east_west, north_south


def attribute_table(scene: RoadScene) -> pd.DataFrame:
    """Lines and kilometres of road per road type, lane count and surface."""
    lines = scene.lines
    codes = spacenet3.road_codes(lines)
    size = xy_pixel_size(scene)
    length_km = [road_graph.length_m(shapely.get_coordinates(g), size) / 1000
                 for g in lines.geometry.array]
    frame = pd.DataFrame({
        "road type": [f"{c} {spacenet3.ROAD_TYPES.get(int(c), '?')}" if pd.notna(c) else "—"
                      for c in codes["road_type"]],
        "lanes": codes["lane_number"].astype("Int64"),
        "surface": codes["paved"].map({1: "paved", 2: "unpaved"}).fillna("—"),
        "km": length_km})
    table = frame.groupby(["road type", "lanes", "surface"], dropna=False).agg(
        lines=("km", "size"), km=("km", "sum"))
    return table.round({"km": 2})


def road_target(scene: RoadScene, kind: road_masks.RoadKind = "road",
                params: road_masks.RoadParams | None = None) -> np.ndarray:
    """A road mask of the scene's tile, in metres (see :mod:`aerialsam.prep.road_masks`)."""
    roads = road_masks.read_road_labels(scene.labels, scene.grid, params=params)
    return road_masks.road_mask(roads, scene.grid.shape, kind, params)


def pixel_size_table(scene: RoadScene) -> pd.Series:
    """The ground size of the tile's pixels and what a 4 m wide road spans in pixels."""
    north_south, east_west = road_masks.pixel_size_m(scene.grid)
    return pd.Series({"pixel north-south (m)": round(north_south, 3),
                      "pixel east-west (m)": round(east_west, 3),
                      "4 m road across, N-S road (px)": round(4 / east_west, 1),
                      "4 m road across, E-W road (px)": round(4 / north_south, 1)},
                     name=scene.image_id)


def busiest_window(mask: np.ndarray, side: int = 200) -> tuple[int, int, int]:
    """The ``side`` x ``side`` window (row, column, side) with the most road pixels."""
    density = ndimage.uniform_filter((mask > 0).astype(float), side, mode="constant")
    rows, cols = mask.shape
    half = side // 2
    inner = density[half:rows - half, half:cols - half]
    row, col = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return int(row), int(col), side


def simulated_probability(mask: np.ndarray, seed: int = 0, breaks: int = 6,
                          break_px: int = 12) -> np.ndarray:
    """A stand-in for a road model's output, made from the truth: blurred, noisy, broken.

    The road mask is blurred, speckled with smooth noise and cut by ``breaks`` square gaps of
    ``break_px`` on road pixels, so that mask to graph has spurs, holes and breaks to handle.
    """
    rng = np.random.default_rng(seed)
    prob = ndimage.gaussian_filter((mask > 0).astype(float), 2.0)
    prob += ndimage.gaussian_filter(rng.normal(0, 0.6, mask.shape), 3.0)
    road = np.argwhere(mask > 0)
    for row, col in road[rng.choice(len(road), min(breaks, len(road)), replace=False)]:
        prob[max(0, row - break_px // 2):row + break_px // 2,
             max(0, col - break_px // 2):col + break_px // 2] = 0.0
    return np.clip(prob, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class GraphSteps:
    """Each step of mask to graph, for the figure.

    Attributes:
        binary: the thresholded, closed road mask.
        skeleton: its 1-px skeleton.
        raw: the graph of the skeleton.
        cleaned: the graph after junction merging, spur pruning, gap closing, simplification.
    """

    binary: np.ndarray
    skeleton: np.ndarray
    raw: nx.MultiGraph
    cleaned: nx.MultiGraph


def graph_steps(prob: np.ndarray, pixel_size: tuple[float, float],
                options: road_graph.RoadGraphOptions = road_graph.DEFAULT_OPTIONS
                ) -> GraphSteps:
    """Run mask to graph on a probability array one step at a time."""
    binary = road_vectorize.road_mask(prob, options, pixel_size)
    rows, cols = road_vectorize.skeleton_pixels(binary)
    skeleton = np.zeros(binary.shape, dtype=bool)
    skeleton[rows, cols] = True
    raw = road_vectorize.skeleton_graph(rows, cols, pixel_size, binary.shape)
    return GraphSteps(binary, skeleton, raw, road_graph.clean_graph(raw, options))


def control_points(lines: list[shapely.LineString]) -> np.ndarray:
    """The nodes APLS scores on, as the official scorer places them (``(n, 2)`` pixels).

    They are the roads' ends and junctions, and the control points it inserts along edges of
    at least 3/4 of 50 m: evenly, one per 50 m (one midpoint for an edge under 50 m).
    """
    graph = apls.road_graph_of(lines)
    return graph.xy[:graph.n_nodes]


def worked_example() -> tuple[list[shapely.LineString], list[shapely.LineString]]:
    """A small crossing of two roads (truth) and a proposal that breaks one of them.

    The proposal finds the east-west road, slightly bent, but the north-south road only in
    two pieces that stop short of the junction, and it adds a short false road.
    """
    truth = [shapely.LineString([(40, 300), (300, 300)]),
             shapely.LineString([(300, 300), (560, 300)]),
             shapely.LineString([(300, 40), (300, 300)]),
             shapely.LineString([(300, 300), (300, 560)])]
    proposal = [shapely.LineString([(44, 302), (170, 312), (300, 302)]),
                shapely.LineString([(300, 302), (556, 298)]),
                shapely.LineString([(302, 44), (301, 240)]),
                shapely.LineString([(299, 360), (298, 556)]),
                shapely.LineString([(420, 298), (470, 420)])]
    return truth, proposal


def plain_graph(lines: list[shapely.LineString]) -> nx.Graph:
    """A graph whose nodes are the lines' ends (``x``, ``y``) and edges weighted by length."""
    graph = nx.Graph()
    for line in lines:
        ends = [tuple(np.round(line.coords[i], 6)) for i in (0, -1)]
        for end in ends:
            graph.add_node(end, x=end[0], y=end[1])
        graph.add_edge(*ends, weight=line.length, geometry=line)
    return graph


def path_differences(truth: nx.Graph, proposal: nx.Graph,
                     pairs: list[tuple[tuple[float, float], tuple[float, float]]]
                     ) -> pd.DataFrame:
    """The idea of APLS on a few truth node pairs, one row per pair (A, B, ...).

    Each row holds the route length in the truth (L), the one between the snapped nodes in
    the proposal (L') and the pair's cost min(1, |L - L'| / L); ``attrs["routes"]`` holds the
    two routes as LineStrings (``None`` where the proposal has none). A truth node snaps to
    the nearest proposal node within :data:`SNAP_PX`; a missing node or route costs 1. This
    illustrates the rule on plain graphs; the exact score (control points, both directions,
    the scorer's tie rules) is :func:`aerialsam.metrics.apls.apls_graphs`.
    """
    nodes = np.array(list(proposal.nodes))
    rows, routes = [], []
    for a, b in pairs:
        length = nx.shortest_path_length(truth, a, b, weight="weight")
        snapped = [_snap(nodes, end) for end in (a, b)]
        found_route = None
        if None in snapped or not nx.has_path(proposal, *snapped):
            found, cost = np.nan, 1.0
        else:
            found = nx.shortest_path_length(proposal, *snapped, weight="weight")
            cost = min(1.0, abs(length - found) / length)
            found_route = _route(proposal, nx.shortest_path(proposal, *snapped, "weight"))
        routes.append((_route(truth, nx.shortest_path(truth, a, b, "weight")), found_route))
        rows.append({"from": a, "to": b, "L (truth)": round(length, 1),
                     "L' (proposal)": round(found, 1), "cost": round(cost, 3)})
    table = pd.DataFrame(rows, index=pd.Index([chr(65 + i) for i in range(len(rows))],
                                              name="pair"))
    table.attrs["routes"] = routes
    return table


def _route(graph: nx.Graph, nodes: list) -> shapely.LineString:
    """The route through ``nodes`` along the edges' own geometries."""
    coords: list[tuple[float, float]] = []
    for u, v in zip(nodes[:-1], nodes[1:], strict=True):
        line = np.asarray(graph.edges[u, v]["geometry"].coords)
        if np.hypot(*(line[0] - np.asarray(u))) > np.hypot(*(line[-1] - np.asarray(u))):
            line = line[::-1]
        coords.extend(map(tuple, line if not coords else line[1:]))
    return shapely.LineString(coords)


def _snap(nodes: np.ndarray, point: tuple[float, float]) -> tuple[float, float] | None:
    """The nearest of ``nodes`` within :data:`SNAP_PX` of ``point``, or ``None``."""
    distance = np.hypot(*(nodes - np.asarray(point)).T)
    best = int(np.argmin(distance))
    return tuple(nodes[best]) if distance[best] <= SNAP_PX else None
