"""The road graph and its clean-up: merge junctions, prune spurs, close gaps, simplify.

A road graph is a :class:`networkx.MultiGraph` in pixel coordinates (x = column, y = row,
origin at the top-left corner of the top-left pixel, as SpaceNet's ``WKT_Pix``), made from
a skeleton by :mod:`~aerialsam.inference.road_vectorize`:

- nodes (junctions and dead ends) carry ``x``, ``y``;
- edges carry ``geometry``, a LineString whose ends are exactly its nodes' positions,
  ``length`` (px) and ``length_m`` (metres on the ground);
- ``graph.graph["pixel_size"]`` is the (east-west, north-south) ground size of a pixel in
  metres. The clean-up distances are given in metres and measured with it: SpaceNet pixels
  are square in degrees, not in metres (:func:`aerialsam.data.spacenet.pixel_size_m`).

:func:`clean_graph` applies the rules of :class:`RoadGraphOptions`, each a function that edits
the graph in place.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import defaultdict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass

import networkx as nx
import numpy as np
import shapely
from shapely import ops
from shapely.geometry import LineString, Point

log = logging.getLogger(__name__)

PixelSize = tuple[float, float]
"""Ground size of a pixel in metres: (east-west, north-south)."""
NOMINAL_PIXEL_SIZE: PixelSize = (0.3, 0.3)
"""SpaceNet 3's nominal 0.3 m pixels, for arrays without georeferencing."""
SNAP_PX = 1.0
"""A gap join that lands this close to a node (px) ends on that node."""
_DIRECTION_M = 3.0  # a dead end's direction: from this far back along its edge to its tip
_SHORTCUT = 3.0  # a join must save more than this factor on the path along the graph


@dataclass(frozen=True)
class RoadGraphOptions:
    """How a road probability map becomes a clean road graph.

    Distances are in metres on the ground (SpaceNet 3 pixels are about 0.3 m; in metres they
    are not square: 0.30 m north-south, 0.24 m east-west in Vegas), converted with the
    raster's pixel size; the closing radius and the simplification tolerance are pixel
    operations and stay in pixels.

    Attributes:
        threshold: road pixels have a probability strictly above this.
        closing_px: radius (px) of the closing of the road mask; 0 for none.
        fill_holes_m2: enclosed holes of the road mask up to this area are filled (10 m²:
            about 110 px, far smaller than a block between roads).
        min_blob_m2: separate pieces of the road mask up to this area are dropped before
            the skeleton is taken (10 m²: a 4 m road 2.5 m long; an untrained or unsure
            model's speckle would otherwise become thousands of dead ends).
        merge_m: junctions joined by an edge shorter than this become one node (3 m:
            skeletons split a crossing into two junctions a few pixels apart).
        spur_m: dangling edges (from a dead end to a junction) shorter than this are
            pruned, and self-loops shorter than this dropped (10 m: the forks and bumps
            of a skeleton at a road's ragged edge, which no road label has).
        gap_m: dead ends are joined to the graph across breaks up to this long (6 m: a
            car, a tree, a shadow over the road).
        gap_angle_deg: a join must leave its dead end within this angle of the end's
            direction (and face back, within it, when it reaches another dead end).
        min_component_m: connected pieces of less total length are dropped (10 m).
        simplify_px: Douglas-Peucker tolerance of the edge geometry (px); 0 keeps every
            skeleton pixel.
    """

    threshold: float = 0.5
    closing_px: int = 1
    fill_holes_m2: float = 10.0
    min_blob_m2: float = 10.0
    merge_m: float = 3.0
    spur_m: float = 10.0
    gap_m: float = 6.0
    gap_angle_deg: float = 40.0
    min_component_m: float = 10.0
    simplify_px: float = 2.0


DEFAULT_OPTIONS = RoadGraphOptions()
"""The default clean-up (SpaceNet 3 roads)."""


def empty_graph(pixel_size: PixelSize = NOMINAL_PIXEL_SIZE,
                shape: tuple[int, int] | None = None) -> nx.MultiGraph:
    """A road graph without roads, for a raster of ``shape`` (rows, columns) and pixel size."""
    graph = nx.MultiGraph(pixel_size=(float(pixel_size[0]), float(pixel_size[1])))
    if shape is not None:
        graph.graph["shape"] = (int(shape[0]), int(shape[1]))
    return graph


def length_m(coords: np.ndarray, pixel_size: PixelSize) -> float:
    """Ground length in metres of a pixel-coordinate path."""
    steps = np.diff(np.asarray(coords, dtype=float), axis=0) * np.asarray(pixel_size)
    return float(np.hypot(steps[:, 0], steps[:, 1]).sum())


def add_edge(graph: nx.MultiGraph, u: Hashable, v: Hashable, coords: np.ndarray) -> None:
    """Add an edge from ``u`` to ``v`` along ``coords`` (pixels), with its lengths.

    Missing nodes are created at the path's ends; repeated consecutive points are dropped,
    and a path that is then a single point adds nothing.
    """
    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or len(coords) < 2:
        return
    coords = coords[np.r_[True, np.any(np.diff(coords[:, :2], axis=0) != 0, axis=1)], :2]
    if len(coords) < 2:
        return
    for node, (x, y) in ((u, coords[0]), (v, coords[-1])):
        if node not in graph:
            graph.add_node(node, x=float(x), y=float(y))
    line = LineString(coords)
    graph.add_edge(u, v, geometry=line, length=float(line.length),
                   length_m=length_m(coords, graph.graph.get("pixel_size", NOMINAL_PIXEL_SIZE)))


def position(graph: nx.MultiGraph, node: Hashable) -> np.ndarray:
    """The pixel coordinates (x, y) of a node."""
    attrs = graph.nodes[node]
    return np.array([attrs["x"], attrs["y"]], dtype=float)


def oriented(graph: nx.MultiGraph, u: Hashable, v: Hashable, data: dict) -> np.ndarray:
    """The coordinates of an edge's geometry, running from ``u`` to ``v``."""
    coords = np.asarray(data["geometry"].coords, dtype=float)
    if u != v:
        start = position(graph, u)
        if np.sum((coords[-1] - start) ** 2) < np.sum((coords[0] - start) ** 2):
            coords = coords[::-1]
    return coords


def _new_ids(graph: nx.MultiGraph) -> Iterator[int]:
    """Node ids not in use yet."""
    used = [n for n in graph if isinstance(n, int | np.integer)]
    return itertools.count(int(max(used, default=-1)) + 1)


def merge_junctions(graph: nx.MultiGraph, distance_m: float) -> int:
    """Merge junctions (degree 3 or more) joined by an edge shorter than ``distance_m``.

    Each cluster of such junctions becomes one node at their mean position; the edges
    inside a cluster shorter than the distance vanish (longer ones stay, as self-loops), and
    the edges leaving it start at the new node. Returns the number of nodes merged away.
    """
    short = [(u, v) for u, v, d in graph.edges(data=True)
             if u != v and d["length_m"] < distance_m
             and graph.degree(u) >= 3 and graph.degree(v) >= 3]
    ids, merged = _new_ids(graph), 0
    for cluster in list(nx.connected_components(nx.Graph(short))):
        new = next(ids)
        centre = np.mean([position(graph, n) for n in cluster], axis=0)
        moved = []
        for a, b, data in graph.edges(cluster, data=True):
            coords = oriented(graph, a, b, data).copy()
            inside = b in cluster
            if inside and data["length_m"] < distance_m:
                continue
            coords[0] = centre
            if inside:
                coords[-1] = centre
            moved.append((new if inside else b, coords))
        graph.remove_nodes_from(cluster)
        graph.add_node(new, x=float(centre[0]), y=float(centre[1]))
        for other, coords in moved:
            add_edge(graph, new, other, coords)
        merged += len(cluster) - 1
    return merged


def dissolve_degree_two(graph: nx.MultiGraph) -> int:
    """Join the two edges of every node of degree 2 into one edge; returns how many."""
    count = 0
    for node in list(graph.nodes):
        edges = list(graph.edges(node, data=True))
        if graph.degree(node) != 2 or len(edges) != 2:
            continue  # not degree 2, or a self-loop
        (_, a, first), (_, b, second) = edges
        path = np.vstack([oriented(graph, a, node, first), oriented(graph, node, b, second)[1:]])
        graph.remove_node(node)
        add_edge(graph, a, b, path)
        count += 1
    return count


def prune_spurs(graph: nx.MultiGraph, spur_m: float) -> int:
    """Remove dangling edges (a dead end to a junction) shorter than ``spur_m``.

    Repeated, with degree-2 nodes dissolved in between, until none is left: a fork at a
    road's end loses both prongs, then its stem is judged as a whole. Returns the count.
    """
    pruned = 0
    while True:
        tips = []
        for u, v, data in graph.edges(data=True):
            degrees = sorted((graph.degree(u), graph.degree(v)))
            if u != v and degrees[0] == 1 and degrees[1] >= 3 and data["length_m"] < spur_m:
                tips.append(u if graph.degree(u) == 1 else v)
        if not tips:
            return pruned
        graph.remove_nodes_from(tips)
        pruned += len(tips)
        dissolve_degree_two(graph)


def _end_direction(graph: nx.MultiGraph, node: Hashable, scale: np.ndarray) -> np.ndarray | None:
    """Unit vector (metric) pointing out of a dead end along its edge; None if degenerate."""
    _, other, data = next(iter(graph.edges(node, data=True)))
    coords = oriented(graph, node, other, data) * scale
    steps = np.hypot(*np.diff(coords, axis=0).T)
    back = min(int(np.searchsorted(np.cumsum(steps), _DIRECTION_M)) + 1, len(coords) - 1)
    vector = coords[0] - coords[back]
    norm = float(np.hypot(*vector))
    return vector / norm if norm > 0 else None


_Join = tuple[float, Hashable, Hashable | None, int, np.ndarray]
"""A gap join: metres, dead end, target node (None: a point inside the edge), edge, pixel."""


def _best_join(graph: nx.MultiGraph, end: Hashable, edges: list, trees: tuple,
               scale: np.ndarray, distance_m: float, cos_max: float) -> _Join | None:
    """The nearest valid target of one dead end (rules in :func:`close_gaps`)."""
    direction = _end_direction(graph, end, scale)
    if direction is None:
        return None
    origin = position(graph, end) * scale
    reach = nx.single_source_dijkstra_path_length(graph, end, cutoff=_SHORTCUT * distance_m,
                                                  weight="length_m")
    nodes, node_tree, edge_tree = trees
    candidates = [(np.asarray(node_tree.geometries[i].coords[0]), nodes[i], -1, 0.0)
                  for i in node_tree.query(Point(origin), "dwithin", distance=distance_m)]
    for i in edge_tree.query(Point(origin), predicate="dwithin", distance=distance_m):
        along = edges[i][2].project(Point(origin))  # the edge's nearest point
        candidates.append((np.asarray(edges[i][2].interpolate(along).coords[0]), None, i, along))
    best = None
    for target, node, index, along in candidates:
        gap = float(np.hypot(*(target - origin)))
        if gap <= 1e-6 or (best is not None and gap >= best[0]):
            continue
        if np.dot((target - origin) / gap, direction) < cos_max:
            continue
        if node is None:
            a, b, line = edges[index]
            node = next((n for n in (a, b) if np.hypot(*(target / scale - position(graph, n)))
                         <= SNAP_PX), None)
            path = min(reach.get(a, math.inf) + along, reach.get(b, math.inf) + line.length - along)
        if node is not None:
            target, path = position(graph, node) * scale, reach.get(node, math.inf)
        if node == end or path <= _SHORTCUT * gap:
            continue
        if node is not None and graph.degree(node) == 1:
            facing = _end_direction(graph, node, scale)
            if facing is None or np.dot(facing, (origin - target) / gap) < cos_max:
                continue
        best = (gap, end, node, int(index), target / scale)
    return best


def close_gaps(graph: nx.MultiGraph, distance_m: float, max_angle_deg: float = 40.0) -> int:
    """Join dead ends to the graph across breaks shorter than ``distance_m``.

    The rule: for each dead end (degree-1 node) the candidate targets are the nodes and the
    nearest points of the edges within ``distance_m`` (a point within :data:`SNAP_PX` of a
    node is that node). A target is valid when (1) it lies within ``max_angle_deg`` of the
    end's direction (from 3 m back along its edge to its tip), (2) a target that is another
    dead end faces back the same way, and (3) the join saves more than three times its
    length on the way along the graph (no shortcut across a bend, no road joined to itself
    nearby; a ring broken once closes). The nearest valid target wins; joins are made
    shortest first, each dead end joined at most once, with a straight edge (splitting the
    target edge when the target is inside it). Returns the number of joins.
    """
    scale = np.asarray(graph.graph.get("pixel_size", NOMINAL_PIXEL_SIZE), dtype=float)
    ends = [n for n in graph if graph.degree(n) == 1]
    if not ends or distance_m <= 0:
        return 0
    items = list(graph.edges(keys=True, data=True))
    edges = [(a, b, LineString(oriented(graph, a, b, d) * scale)) for a, b, _, d in items]
    nodes = list(graph)
    trees = (nodes, shapely.STRtree([Point(position(graph, n) * scale) for n in nodes]),
             shapely.STRtree([line for *_, line in edges]))
    cos_max = math.cos(math.radians(max_angle_deg))
    joins = [j for j in (_best_join(graph, end, edges, trees, scale, distance_m, cos_max)
                         for end in ends) if j is not None]
    done: set = set()
    splits: dict[int, list[tuple[np.ndarray, Hashable]]] = defaultdict(list)
    made = []
    ids = _new_ids(graph)
    for _, end, target, index, point in sorted(joins, key=lambda j: j[0]):
        if end in done:
            continue
        if target is None:
            target = next((n for p, n in splits[index] if np.hypot(*(p - point)) <= SNAP_PX),
                          None)
            if target is None:
                target = next(ids)
                graph.add_node(target, x=float(point[0]), y=float(point[1]))
                splits[index].append((point, target))
        done.update((end, target))
        made.append((end, target))
    for index, points in splits.items():
        a, b, key, _ = items[index]
        _split_edge(graph, (a, b, key), [n for _, n in points])
    for end, target in made:
        add_edge(graph, end, target, [position(graph, end), position(graph, target)])
    return len(made)


def _split_edge(graph: nx.MultiGraph, key: tuple, nodes: list) -> None:
    """Cut an edge at the (already added) nodes lying on it, in order along it."""
    a, b, _ = key
    line = LineString(oriented(graph, a, b, graph.edges[key]))
    graph.remove_edge(*key)
    cuts = sorted((line.project(Point(position(graph, n))), n) for n in nodes)
    chain = [(0.0, a), *cuts, (line.length, b)]
    for (start, u), (stop, v) in itertools.pairwise(chain):
        coords = np.asarray(ops.substring(line, start, stop).coords, dtype=float)
        coords[0], coords[-1] = position(graph, u), position(graph, v)
        add_edge(graph, u, v, coords)


def extend_to_edges(graph: nx.MultiGraph, distance_m: float) -> int:
    """Extend dead ends that head for the raster's edge, within ``distance_m``, to it.

    Thinning stops a road about half its width short of the raster's edge; the road goes
    on beyond it. The extension follows the end's direction (as in :func:`close_gaps`) to
    where it meets the edge of ``graph.graph["shape"]`` (rows, columns); a graph without a
    shape is left alone. Returns the number of ends extended.
    """
    if "shape" not in graph.graph or distance_m <= 0:
        return 0
    scale = np.asarray(graph.graph.get("pixel_size", NOMINAL_PIXEL_SIZE), dtype=float)
    high = np.asarray(graph.graph["shape"][::-1], dtype=float)  # (width, height)
    ids, count = _new_ids(graph), 0
    for end in [n for n in graph if graph.degree(n) == 1]:
        direction = _end_direction(graph, end, scale)
        if direction is None:
            continue
        step, start = direction / scale, position(graph, end)  # a metre's step, in pixels
        with np.errstate(divide="ignore", invalid="ignore"):
            metres = float(np.fmax(-start / step, (high - start) / step).min())
        if 0 < metres <= distance_m:
            add_edge(graph, end, next(ids), [start, np.clip(start + metres * step, 0, high)])
            count += 1
    return count


def remove_small_components(graph: nx.MultiGraph, min_length_m: float) -> int:
    """Drop connected pieces shorter in total than ``min_length_m``; returns how many."""
    small = [piece for piece in nx.connected_components(graph)
             if sum(d["length_m"] for *_, d in graph.subgraph(piece).edges(data=True))
             < min_length_m]
    for piece in small:
        graph.remove_nodes_from(piece)
    return len(small)


def drop_loops(graph: nx.MultiGraph, shorter_than_m: float) -> int:
    """Remove self-loops shorter than ``shorter_than_m`` (a hole the mask kept); how many."""
    loops = [(u, k) for u, v, k, d in graph.edges(keys=True, data=True)
             if u == v and d["length_m"] < shorter_than_m]
    for node, key in loops:
        graph.remove_edge(node, node, key)
    graph.remove_nodes_from([n for n, _ in loops if n in graph and graph.degree(n) == 0])
    return len(loops)


def split_loops(graph: nx.MultiGraph) -> int:
    """Split every self-loop into three edges at thirds of its length; returns how many.

    A closed edge could otherwise be simplified into a repeated or an empty section, which
    the SpaceNet scorer refuses. A loop of no length is dropped.
    """
    loops = [(u, k, d["geometry"]) for u, v, k, d in graph.edges(keys=True, data=True)
             if u == v]
    ids = _new_ids(graph)
    for node, key, line in loops:
        graph.remove_edge(node, node, key)
        if line.length <= 0:
            continue
        chain = [(0.0, node)]
        for fraction in (1 / 3, 2 / 3):
            new = next(ids)
            x, y = line.interpolate(fraction, normalized=True).coords[0]
            graph.add_node(new, x=float(x), y=float(y))
            chain.append((fraction, new))
        chain.append((1.0, node))
        for (start, u), (stop, v) in itertools.pairwise(chain):
            coords = np.asarray(ops.substring(line, start, stop, normalized=True).coords)
            coords[0], coords[-1] = position(graph, u), position(graph, v)
            add_edge(graph, u, v, coords)
    graph.remove_nodes_from([n for n, *_ in loops if n in graph and graph.degree(n) == 0])
    return len(loops)


def simplify_edges(graph: nx.MultiGraph, tolerance_px: float) -> None:
    """Douglas-Peucker simplification of every edge (ends kept; self-loops left alone)."""
    if tolerance_px <= 0:
        return
    size = graph.graph.get("pixel_size", NOMINAL_PIXEL_SIZE)
    for u, v, data in graph.edges(data=True):
        if u != v:
            line = shapely.simplify(data["geometry"], tolerance_px, preserve_topology=False)
            data.update(geometry=line, length=float(line.length),
                        length_m=length_m(np.asarray(line.coords), size))


def clean_graph(graph: nx.MultiGraph, options: RoadGraphOptions = DEFAULT_OPTIONS
                ) -> nx.MultiGraph:
    """A cleaned copy of a raw skeleton graph (see :class:`RoadGraphOptions`).

    In order: merge junctions closer than ``merge_m``; prune spurs shorter than ``spur_m``;
    close gaps up to ``gap_m`` (:func:`close_gaps` has the rule) and extend dead ends
    heading for the raster's edge within it (:func:`extend_to_edges`); merge junctions again
    (a join may land beside one); drop self-loops shorter than ``spur_m``; join the two
    edges of every degree-2 node; drop pieces shorter than ``min_component_m``; split the
    remaining loops in three (:func:`split_loops`); simplify with ``simplify_px``.
    """
    graph = graph.copy()
    merged = merge_junctions(graph, options.merge_m)
    pruned = prune_spurs(graph, options.spur_m)
    joined = close_gaps(graph, options.gap_m, options.gap_angle_deg)
    extend_to_edges(graph, options.gap_m)
    merged += merge_junctions(graph, options.merge_m)
    dissolve_degree_two(graph)
    drop_loops(graph, options.spur_m)
    dissolve_degree_two(graph)
    dropped = remove_small_components(graph, options.min_component_m)
    split_loops(graph)
    simplify_edges(graph, options.simplify_px)
    log.debug("road graph: %d junctions merged, %d spurs pruned, %d gaps closed, %d pieces "
              "dropped; %d nodes, %d edges", merged, pruned, joined, dropped,
              graph.number_of_nodes(), graph.number_of_edges())
    return graph
