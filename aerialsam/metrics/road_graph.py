"""Road graphs exactly as the official SpaceNet 3 scorer builds them, control points included.

The scorer (``../shared/oracles/sn3_scorer``, Java) reads each image's LineStrings in pixel
coordinates and makes a graph in four steps, which this module reproduces number for number:

1. **Nodes.** Every vertex becomes a node; vertices whose coordinates round to the same 0.1 px
   cell (the scorer's point hash, :func:`~aerialsam.metrics.road_numerics.point_hash`) are
   one node, at the coordinates of the first such vertex in file order. Consecutive vertices
   make a section (two in one cell make a loop of length 0, which still counts).
2. **Simplification.** Nodes with exactly two sections (*simple* nodes) are dissolved into
   the edges through them, keeping the geometry. A chain of simple nodes becomes one edge
   from whichever end node the scorer visits first; a ring of simple nodes alone stays as
   it is. A chain that reaches a simple node whose other section is a loop stops there, and
   that node leaves the node set while ending the edge (a *ghost*: a dead end that no route
   starts from or is counted to).
3. **Control points.** Every edge at least 0.75 x 50/0.31 px long is cut into ``n + 1``
   equal pieces (``n = floor(L / (50/0.31))``, at least 1), each cut a new node; each cut is
   measured along what remains, in the scorer's floating-point order. A cut in the 0.1 px
   cell of a node and within 0.1 px of it is refused by the node set (a ghost).
4. **Node order.** The scorer keeps nodes in a ``java.util.HashSet``; its iteration order
   decides which end of a chain an edge starts from, the order in which nodes are snapped
   onto the other graph, and the order of the sums;
   :class:`~aerialsam.metrics.road_numerics.HashSetReplay` replays the set's insertions and
   removals to know it.

Lengths are the scorer's: ``Math.hypot`` as fdlibm computes it, summed left to right.

Where the scorer itself follows Java object hash codes (in effect, chance, though a given run
repeats): a chain that leaves a junction and comes back to it is walked in either direction
(here, along its first section in file order); its control points then differ in the last
bits, and when one of them lies within 0.1 px of a vertex the snapping around it can differ
(1 tile in 1,000 generated ones, by 0.002). Control points that share a hash-set bin are
visited in either order, and the edges of one node too; that decides between exactly equal
distances, common only when truth and proposal both have whole-pixel coordinates: on such
tiles the scorer's own numbers change with unrelated allocations before them (by up to
0.001). SpaceNet truth has fractional coordinates. A section under 0.1 px between two
distinct nodes is one-way for the scorer's tolerant point equality, and its simplification
follows hash codes too; it is built here in the plain way, with a warning.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aerialsam.metrics.road_numerics import (
    SAME_POINT_SQ,
    HashSetReplay,
    hypot1,
    java_hypot,
    point_hash,
    point_hash1,
    polyline_lengths,
)

log = logging.getLogger(__name__)

__all__ = ["CONTROL_POINT_SPACING", "MIN_SECTION", "SNAP_DISTANCE", "Pieces", "RoadGraph",
           "build_road_graph", "road_problem"]

CONTROL_POINT_SPACING = 50 / 0.31
"""Spacing of control points along an edge, in pixels (50 m at 0.31 m per pixel)."""
SNAP_DISTANCE = 4 / 0.31
"""A node snaps onto the other graph within this distance, in pixels (4 m)."""
MIN_SECTION = 0.01
"""The scorer refuses sections shorter than this, in pixels."""


@dataclass(frozen=True)
class Pieces:
    """Edges as the scorer's LineStrings, for routing.

    The scorer moves from a node that holds a piece to the piece's last vertex when the node
    is (within 0.1 px) its first vertex, else to its first vertex; a move ends nowhere when
    that vertex is not a routable node. Normal pieces are held by their end nodes.

    Attributes:
        start: node holding the piece at its start.
        end: node holding it at its end.
        first: node that is the piece's first vertex (-1: a plain vertex).
        last: node that is its last vertex (-1: a plain vertex).
        p1: ``(k, 2)`` coordinates of the first vertex.
        lengths: piece lengths.
    """

    start: np.ndarray
    end: np.ndarray
    first: np.ndarray
    last: np.ndarray
    p1: np.ndarray
    lengths: np.ndarray

    @classmethod
    def concat(cls, parts: list[Pieces]) -> Pieces:
        """All pieces of ``parts``, in order."""
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("start", "end", "first", "last", "p1", "lengths")))


@dataclass(frozen=True)
class RoadGraph:
    """A road network as the SpaceNet 3 scorer sees it, control points included.

    Attributes:
        xy: ``(n, 2)`` node coordinates in pixels. The first ``n_nodes`` rows are the graph's
            nodes in the scorer's iteration order; the rest are *ghost* ends: edge ends that
            the scorer dropped from its node set (see :func:`build_road_graph`).
        n_nodes: number of real nodes.
        hashes: the scorer's hash of each node (:func:`point_hash`).
        edge_nodes: ``(e, 2)`` start and end node of each edge.
        edge_ptr: ``(e + 1,)`` offsets: edge ``i`` is ``points[edge_ptr[i]:edge_ptr[i + 1]]``.
        points: polyline vertices of every edge, both ends included.
        lengths: length of each edge (left-to-right sum of its segment lengths).
    """

    xy: np.ndarray
    n_nodes: int
    hashes: np.ndarray
    edge_nodes: np.ndarray
    edge_ptr: np.ndarray
    points: np.ndarray
    lengths: np.ndarray

    @property
    def empty(self) -> bool:
        """True for an image without roads."""
        return self.n_nodes == 0

    def edge_points(self, edge: int) -> np.ndarray:
        """Vertices of one edge, from its start node to its end node."""
        return self.points[self.edge_ptr[edge]:self.edge_ptr[edge + 1]]

    def pieces(self) -> Pieces:
        """The edges as :class:`Pieces` (each held by, and starting and ending at, its nodes)."""
        start, end = self.edge_nodes[:, 0], self.edge_nodes[:, 1]
        return Pieces(start, end, start, end, self.points[self.edge_ptr[:-1]], self.lengths)


def road_problem(roads: Sequence[np.ndarray]) -> tuple[int, str] | None:
    """The scorer's refusal of one image's roads, or None when it scores them.

    Args:
        roads: each road's ``(k, 2)`` vertices in file order; ``LINESTRING EMPTY`` is ``k = 0``.

    Returns:
        ``(index of the road at fault, problem)``, the checks in the scorer's order: EMPTY
        beside other rows, a lone point, a section shorter than 0.01 px, a repeated section
        (both ends in the same 0.1 px cells, either direction).
    """
    sizes = np.array([len(r) for r in roads], dtype=np.int64)
    if len(roads) > 1 and (sizes == 0).any():
        return int(np.argmax(sizes == 0)), \
            "LINESTRING EMPTY beside other rows (EMPTY must be alone)"
    if (sizes == 1).any():
        i = int(np.argmax(sizes == 1))
        x, y = np.asarray(roads[i], dtype=float).reshape(-1).tolist()
        return i, f"lone point ({x!r} {y!r}): a road needs two points"
    if sizes.sum() == 0:
        return None
    vertices = np.concatenate([np.asarray(r, dtype=float).reshape(-1, 2) for r in roads if len(r)])
    road_of = np.repeat(np.arange(len(roads)), sizes)
    inside = road_of[1:] == road_of[:-1]  # sections: consecutive vertices of one road
    step = np.diff(vertices, axis=0)
    short = np.flatnonzero(inside & (java_hypot(step[:, 0], step[:, 1]) < MIN_SECTION))
    if len(short):
        x, y = vertices[short[0] + 1].tolist()
        return int(road_of[short[0]]), \
            f"zero-length section at ({x!r} {y!r}) (under {MIN_SECTION} px)"
    hashes = point_hash(vertices) + 2**31  # as unsigned 32-bit numbers
    first = np.flatnonzero(inside)
    lo = np.minimum(hashes[first], hashes[first + 1]).astype(np.uint64)
    hi = np.maximum(hashes[first], hashes[first + 1]).astype(np.uint64)
    _, seen_first = np.unique((lo << np.uint64(32)) | hi, return_index=True)
    repeated = np.setdiff1d(np.arange(len(first)), seen_first)
    if len(repeated):
        k = first[repeated.min()]
        (x0, y0), (x1, y1) = vertices[k].tolist(), vertices[k + 1].tolist()
        return int(road_of[k]), f"duplicate section ({x0!r} {y0!r}) - ({x1!r} {y1!r})"
    return None


def _merge_vertices(roads: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes (coordinates, hashes, in first-seen order) and sections ``(k, 2)`` of node ids."""
    roads = [np.asarray(r, dtype=float).reshape(-1, 2) for r in roads if len(r)]
    if not roads:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64), np.zeros((0, 2), dtype=np.int64)
    vertices = np.concatenate(roads)
    hashes = point_hash(vertices)
    unique, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    by_first = np.argsort(first, kind="stable")
    node_of_unique = np.empty(len(unique), dtype=np.int64)
    node_of_unique[by_first] = np.arange(len(unique))
    node_of_vertex = node_of_unique[inverse.ravel()]
    ends = np.cumsum([len(r) for r in roads])
    inside = np.ones(len(vertices) - 1, dtype=bool)
    inside[ends[:-1] - 1] = False  # no section from one road's last vertex to the next road
    sections = np.stack([node_of_vertex[:-1][inside], node_of_vertex[1:][inside]], axis=1)
    return vertices[first[by_first]], unique[by_first], sections


def _dissolve_simple_nodes(n_nodes: int, sections: np.ndarray, rank: np.ndarray
                           ) -> tuple[list[list[int]], np.ndarray]:
    """Merge chains of two-section nodes into edges, as the scorer's simplification does.

    Args:
        n_nodes: number of nodes.
        sections: ``(k, 2)`` node ids of every section, in file order.
        rank: each node's position in the scorer's iteration order.

    Returns:
        The edges as node-id sequences, and which nodes the chains swallowed. A chain runs from
        the end node visited first; a chain that reaches a simple node whose other section
        loops back on itself stops there (the scorer then drops that end from its node set).
    """
    incident: list[list[int]] = [[] for _ in range(n_nodes)]
    for s, (a, b) in enumerate(sections.tolist()):
        incident[a].append(s)
        if b != a:
            incident[b].append(s)
    simple = np.array([len(x) == 2 for x in incident], dtype=bool)
    swallowed = np.zeros(n_nodes, dtype=bool)
    pairs = sections.tolist()

    def other(s: int, node: int) -> int:
        a, b = pairs[s]
        return b if a == node else a

    edges: list[list[int]] = []
    for start in np.argsort(rank, kind="stable").tolist():
        if simple[start]:
            continue
        for first in incident[start]:
            node = other(first, start)
            if swallowed[node] or not simple[node]:
                continue
            chain, came = [start, node], first
            swallowed[node] = True
            while True:
                step = incident[node][0] if incident[node][1] == came else incident[node][1]
                after = other(step, node)
                chain.append(after)
                if not simple[after] or swallowed[after]:
                    break
                swallowed[after] = True
                node, came = after, step
            edges.append(chain)
    kept = ~(swallowed[sections[:, 0]] | swallowed[sections[:, 1]])
    edges.extend(sections[kept].tolist())
    return edges, swallowed


def _cut_edge(pts: list[list[float]], seg: list[float], length: float
              ) -> tuple[list[list[tuple[float, float]]], list[tuple[float, float]]]:
    """Cut one edge into equal pieces as the scorer's ``insertMidpoints`` does.

    Each cut is measured from the previous one along what remains of the edge, summing segment
    lengths left to right; a cut that lands exactly on a vertex takes that vertex.

    Returns:
        The pieces (vertex lists, in edge order) and the new nodes' coordinates.
    """
    if length < CONTROL_POINT_SPACING:
        count, step = 1, length / 2
    else:
        count = int(math.floor(length / CONTROL_POINT_SPACING))
        step = length / (count + 1)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    pieces, cuts = [], []
    piece = [(xs[0], ys[0])]
    cx, cy, at_vertex, j = xs[0], ys[0], True, 1  # last cut, and the next vertex after it
    for _ in range(count):
        total, (px, py) = 0.0, (cx, cy)
        d = seg[j - 1] if at_vertex else hypot1(cx - xs[j], cy - ys[j])
        while total + d < step and j + 1 < len(xs):
            total += d
            piece.append((xs[j], ys[j]))
            px, py, j = xs[j], ys[j], j + 1
            d = seg[j - 1]
        if total + d == step:
            cx, cy, at_vertex, j = xs[j], ys[j], True, j + 1
        else:
            r = (step - total) / d
            cx, cy, at_vertex = px + r * (xs[j] - px), py + r * (ys[j] - py), False
        piece.append((cx, cy))
        pieces.append(piece)
        cuts.append((cx, cy))
        piece = [(cx, cy)]
    pieces.append(piece + list(zip(xs[j:], ys[j:], strict=True)))
    return pieces, cuts


def build_road_graph(roads: Sequence[np.ndarray]) -> RoadGraph:
    """The scorer's graph of one image's roads, with control points.

    Args:
        roads: each road's ``(k, 2)`` vertices in pixels, in file order (the order decides
            which vertex gives a merged node its coordinates, and the node order). Check them
            with :func:`road_problem` first; empty arrays (``LINESTRING EMPTY``) are skipped.

    Returns:
        The :class:`RoadGraph`; an image without roads gives an empty one.
    """
    node_xy, node_hash, sections = _merge_vertices(roads)
    nodes = HashSetReplay()
    nodes.add_many(node_hash)
    rank = np.empty(len(node_hash), dtype=np.int64)
    rank[nodes.order(node_hash, np.arange(len(node_hash)))] = np.arange(len(node_hash))
    chains, swallowed = _dissolve_simple_nodes(len(node_xy), sections, rank)
    _warn_if_tolerant_sections(node_xy, sections)
    nodes.remove(node_hash[swallowed])
    ends = np.array([[c[0], c[-1]] for c in chains], dtype=np.int64).reshape(-1, 2)
    ptr = np.concatenate([[0], np.cumsum([len(c) for c in chains])]).astype(np.int64)
    points = node_xy[np.concatenate(chains)] if chains else np.zeros((0, 2))
    lengths = polyline_lengths(points, ptr)
    xy, hashes = list(map(tuple, node_xy.tolist())), node_hash.tolist()
    in_set = (~swallowed).tolist()
    members: dict[int, list[int]] = {}
    for i in np.flatnonzero(~swallowed).tolist():
        members.setdefault(hashes[i], []).append(i)
    pieces: list[list] = []
    piece_ends: list[tuple[int, int]] = []
    seg = (java_hypot(np.diff(points[:, 0]), np.diff(points[:, 1])) if len(points) else points)
    seg, flat, ptr = seg.tolist(), points.tolist(), ptr.tolist()
    for e, (start, end) in enumerate(ends.tolist()):
        lo, hi = ptr[e], ptr[e + 1]
        if not lengths[e] >= 0.75 * CONTROL_POINT_SPACING:  # NaN-proof, as the scorer's test
            pieces.append(flat[lo:hi])
            piece_ends.append((start, end))
            continue
        cut_pieces, cuts = _cut_edge(flat[lo:hi], seg[lo:hi - 1], float(lengths[e]))
        ids = [start]
        for cx, cy in cuts:
            ids.append(_add_node(cx, cy, xy, hashes, in_set, members, nodes))
        ids.append(end)
        pieces.extend(cut_pieces)
        piece_ends.extend(zip(ids[:-1], ids[1:], strict=True))
    return _ordered_graph(xy, hashes, in_set, nodes, pieces, piece_ends)


def _add_node(x: float, y: float, xy: list, hashes: list, in_set: list,
              members: dict[int, list[int]], nodes: HashSetReplay) -> int:
    """A new node (a control point).

    The scorer's set refuses it (a ghost) when a node of the same hash lies within 0.1 px.
    """
    h = point_hash1(x, y)
    clash = any((x - xy[i][0]) * (x - xy[i][0]) + (y - xy[i][1]) * (y - xy[i][1]) < SAME_POINT_SQ
                for i in members.get(h, ()))
    xy.append((x, y))
    hashes.append(h)
    in_set.append(not clash)
    if not clash:
        members.setdefault(h, []).append(len(xy) - 1)
        nodes.add(h)
    return len(xy) - 1


def _ordered_graph(xy: list, hashes: list, in_set: list, nodes: HashSetReplay,
                   pieces: list[list], piece_ends: list[tuple[int, int]]) -> RoadGraph:
    """Renumber nodes into the scorer's iteration order (ghost ends last) and pack the edges."""
    hashes_arr = np.array(hashes, dtype=np.int64)
    live = np.flatnonzero(np.array(in_set, dtype=bool))
    ghosts = np.flatnonzero(~np.array(in_set, dtype=bool))
    used = np.zeros(len(xy), dtype=bool)
    ends = np.array(piece_ends, dtype=np.int64).reshape(-1, 2)
    used[ends.ravel()] = True
    order = np.concatenate([live[nodes.order(hashes_arr[live], live)], ghosts[used[ghosts]]])
    new_id = np.full(len(xy), -1, dtype=np.int64)
    new_id[order] = np.arange(len(order))
    ptr = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
    points = np.array([p for piece in pieces for p in piece], dtype=float).reshape(-1, 2)
    return RoadGraph(xy=np.array(xy, dtype=float).reshape(-1, 2)[order], n_nodes=len(live),
                     hashes=hashes_arr[order], edge_nodes=new_id[ends], edge_ptr=ptr,
                     points=points, lengths=polyline_lengths(points, ptr))


def _warn_if_tolerant_sections(node_xy: np.ndarray, sections: np.ndarray) -> None:
    """Log sections under 0.1 px between two different nodes (see the module notes)."""
    a, b = node_xy[sections[:, 0]], node_xy[sections[:, 1]]
    d2 = (a[:, 0] - b[:, 0]) * (a[:, 0] - b[:, 0]) + (a[:, 1] - b[:, 1]) * (a[:, 1] - b[:, 1])
    bad = (sections[:, 0] != sections[:, 1]) & (d2 < SAME_POINT_SQ)
    if bad.any():
        x, y = a[np.flatnonzero(bad)[0]]
        log.warning("%d section(s) under 0.1 px between distinct nodes, first at (%r %r): the "
                    "official scorer's own result is not reproducible there", bad.sum(), x, y)
