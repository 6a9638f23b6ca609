"""B's copy as the SpaceNet 3 scorer holds it while it snaps A's nodes: pieces and queries.

The pieces of B's edges (:class:`Piece`, :class:`CopiedEdges`), the scorer's projection of a
point on a segment (:func:`project`, :func:`project1`), the vectorised nearest-segment and
nearby-node queries on the unchanged copy, which placements may wait to be made at once
(:func:`quiet_nodes`), and the pieces of edges cut at many points at once
(:func:`reproject_shared`, :func:`split_edges`). :mod:`~aerialsam.metrics.road_snap` runs
the placements.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import cKDTree

from aerialsam.metrics.road_graph import SNAP_DISTANCE, Pieces, RoadGraph
from aerialsam.metrics.road_numerics import (
    SAME_POINT_SQ,
    hypot1,
    java_hypot,
    point_hash,
    polyline_lengths,
    same_point,
)

__all__ = ["MARGIN", "CopiedEdges", "Hit", "Nearest", "Piece", "Snapped", "nearest_segments",
           "nodes_within_tolerance", "project", "project1", "quiet_nodes", "reproject_shared",
           "segments", "split_edges"]

MARGIN = 0.5
"""Pixels beyond the snap distance within which a changed geometry may still matter."""


@dataclass
class Snapped:
    """B's copy after the nodes of A were placed on it.

    Attributes:
        target: ``(a.n_nodes,)`` node of the copy each node of A became (-1: none).
        xy: ``(m, 2)`` node coordinates of the copy (B's nodes first, then new ones).
        routable: ``(m,)`` whether each node is in the scorer's node set. The others (ghost
            ends, new nodes the set refused, plain vertices an alias points to) are dead
            ends that no route starts from; the scorer still reads the distance it last
            stored on them (``stale``), which a route may lower.
        stale: ``(m,)`` that stored distance: the snap distance of a refused new node, else 0.
        pieces: the copy's edges.
    """

    target: np.ndarray
    xy: np.ndarray
    routable: np.ndarray
    stale: np.ndarray
    pieces: Pieces


def project(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The scorer's projection of points ``(x, y)`` on segments ``a -> b`` (``(k, 2)`` arrays).

    Returns:
        Projected x and y, the distance (0 within 0.1 px of an end, whose copy is the
        projection; NaN on a zero-length segment, which never wins) and the parameter along
        the segment, clipped to [0, 1].
    """
    ax, ay, bx, by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    dx, dy = bx - ax, by - ay
    with np.errstate(invalid="ignore", divide="ignore"):
        u = ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)
        px = np.where(u > 1, bx, np.where(u < 0, ax, ax + u * dx))
        py = np.where(u > 1, by, np.where(u < 0, ay, ay + u * dy))
    dist = java_hypot(x - px, y - py)
    on_a, on_b = same_point(x, y, ax, ay), same_point(x, y, bx, by)
    px, py = np.where(on_a, ax, np.where(on_b, bx, px)), np.where(on_a, ay, np.where(on_b, by, py))
    u = np.where(on_a, 0.0, np.where(on_b, 1.0, np.clip(u, 0.0, 1.0)))
    return px, py, np.where(on_a | on_b, 0.0, dist), u


def project1(x: float, y: float, a: tuple[float, float], b: tuple[float, float]
             ) -> tuple[float, float, float, float]:
    """:func:`project` for one point and one segment, in plain floats."""
    (ax, ay), (bx, by) = a, b
    if (x - ax) * (x - ax) + (y - ay) * (y - ay) < SAME_POINT_SQ:
        return ax, ay, 0.0, 0.0
    if (x - bx) * (x - bx) + (y - by) * (y - by) < SAME_POINT_SQ:
        return bx, by, 0.0, 1.0
    dx, dy = bx - ax, by - ay
    if dx * dx + dy * dy == 0:
        return math.nan, math.nan, math.nan, 0.0
    u = ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)
    px, py = (bx, by) if u > 1 else (ax, ay) if u < 0 else (ax + u * dx, ay + u * dy)
    dist = math.hypot(x - px, y - py)  # within an ulp of Java's, which only the test below needs
    if abs(dist - SNAP_DISTANCE) < 1e-9:
        dist = hypot1(x - px, y - py)
    return px, py, dist, min(max(u, 0.0), 1.0)


@dataclass
class Piece:
    """One piece of an edge of B's copy while nodes are placed.

    As :class:`~aerialsam.metrics.road_graph.Pieces` describes pieces, with their vertices.

    ``ids`` tells which vertices are nodes (-1: a plain vertex); ``pos`` is each vertex's
    place along the original edge in vertex units (NaN once the scorer's quirks made the
    piece skip or repeat vertices).
    """

    start: int
    end: int
    pts: list[tuple[float, float]]
    ids: list[int]
    pos: list[float]


@dataclass
class Hit:
    """Where a node lands: piece ``piece`` of ``edge``, its segment ``seg``, at ``(x, y)``."""

    edge: int
    piece: int
    seg: int
    x: float
    y: float
    dist: float
    u: float


@dataclass
class CopiedEdges:
    """The edges of B's copy before any placement: vertices, node labels, lengths."""

    edges: np.ndarray  # B's edge of each copied edge
    ptr: np.ndarray
    points: np.ndarray
    ids: np.ndarray
    lengths: np.ndarray
    point_list: list[tuple[float, float]]
    id_list: list[int]
    ptr_list: list[int]

    @classmethod
    def copy_of(cls, b: RoadGraph) -> CopiedEdges:
        """The scorer's copy of B's edges.

        Edges that start at a ghost end are dropped, and every vertex within 0.1 px of a node
        with the same hash becomes that node.
        """
        edges = np.flatnonzero(b.edge_nodes[:, 0] < b.n_nodes)
        counts = np.diff(b.edge_ptr)[edges]
        at = np.repeat(b.edge_ptr[edges] - (np.cumsum(counts) - counts), counts) + \
            np.arange(counts.sum())
        points, ptr = b.points[at].copy(), np.concatenate([[0], np.cumsum(counts)])
        ids = np.full(len(points), -1, dtype=np.int64)
        ids[ptr[:-1]] = b.edge_nodes[edges, 0]
        ids[ptr[1:] - 1] = b.edge_nodes[edges, 1]
        hashes = point_hash(points)
        maybe = (ids < 0) | (ids >= b.n_nodes)  # inner vertices and ghost ends
        maybe[maybe] = np.isin(hashes[maybe], b.hashes[:b.n_nodes])
        if maybe.any():
            by_hash: dict[int, list[int]] = {}
            for node, h in enumerate(b.hashes[:b.n_nodes].tolist()):
                by_hash.setdefault(h, []).append(node)
            for i in np.flatnonzero(maybe).tolist():
                x, y = points[i]
                node = next((n for n in by_hash[int(hashes[i])]
                             if same_point(x, y, *b.xy[n])), None)
                if node is not None:
                    points[i], ids[i] = b.xy[node], node
        return cls(edges, ptr, points, ids, polyline_lengths(points, ptr),
                   list(map(tuple, points.tolist())), ids.tolist(), ptr.tolist())

    def piece(self, i: int) -> Piece:
        """Copied edge ``i`` as one piece."""
        lo, hi = self.ptr_list[i], self.ptr_list[i + 1]
        ids = self.id_list[lo:hi]
        return Piece(ids[0], ids[-1], self.point_list[lo:hi], ids, list(map(float, range(hi - lo))))


def segments(copied: CopiedEdges, rank: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every segment of the copied edges.

    Returns:
        Each segment's copied edge, index in the edge, start and end points, and its rank in
        the order the scorer visits segments (start node, edge, segment).
    """
    counts = np.diff(copied.ptr) - 1
    edge = np.repeat(np.arange(len(counts)), counts)
    at = np.repeat(copied.ptr[:-1] - (np.cumsum(counts) - counts), counts) + np.arange(len(edge))
    index = at - copied.ptr[edge]
    visit = np.empty(len(edge), dtype=np.int64)
    visit[np.lexsort((index, edge, rank[copied.ids[copied.ptr[edge]]]))] = np.arange(len(edge))
    return edge, index, copied.points[at], copied.points[at + 1], visit


def nodes_within_tolerance(a: RoadGraph, b: RoadGraph, rank: np.ndarray) -> dict[int, list[int]]:
    """For each node of A, B's nodes within 0.1 px of it (first in the copy's order first)."""
    tree = shapely.STRtree(shapely.points(b.xy[:b.n_nodes]))
    ai, bi = tree.query(shapely.points(a.xy[:a.n_nodes]), predicate="dwithin", distance=0.11)
    keep = same_point(a.xy[ai, 0], a.xy[ai, 1], b.xy[bi, 0], b.xy[bi, 1])
    out: dict[int, list[int]] = {}
    for i, j in sorted(zip(ai[keep].tolist(), bi[keep].tolist(), strict=True),
                       key=lambda p: (p[0], rank[p[1]])):
        out.setdefault(i, []).append(j)
    return out


@dataclass
class Nearest:
    """Each node's nearest segment of the unchanged copy.

    Attributes:
        seg: the segment (-1: none within reach).
        u: the parameter of the nearest point along it.
        x: the nearest point's x.
        y: the nearest point's y.
        dist: the scorer's distance to it.
        tie: another segment is as near (to 1e-9 px), at another point or on another edge:
            which one the scorer takes depends on the copy's order when the node's turn comes.
    """

    seg: np.ndarray
    u: np.ndarray
    x: np.ndarray
    y: np.ndarray
    dist: np.ndarray
    tie: np.ndarray


def nearest_segments(a: RoadGraph, seg_a: np.ndarray, seg_b: np.ndarray, seg_edge: np.ndarray,
                     visit: np.ndarray) -> tuple[Nearest, np.ndarray, np.ndarray]:
    """Each node's nearest segment of the unchanged copy, and its candidate segments.

    Returns:
        The :class:`Nearest` of every node, and the candidates of node ``k``,
        ``cand[ptr[k]:ptr[k + 1]]``: every segment whose box, grown by the snap distance and
        a margin, holds the node.
    """
    reach = SNAP_DISTANCE + MARGIN
    lo, hi = np.minimum(seg_a, seg_b) - reach, np.maximum(seg_a, seg_b) + reach
    tree = shapely.STRtree(shapely.box(lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1]))
    ai, si = tree.query(shapely.points(a.xy[:a.n_nodes]))
    px, py, dist, u = project(a.xy[ai, 0], a.xy[ai, 1], seg_a[si], seg_b[si])
    dist = np.where(np.isnan(dist), np.inf, dist)
    pick = np.lexsort((visit[si], dist, ai))
    first = pick[np.r_[True, ai[pick][1:] != ai[pick][:-1]]] if len(pick) else pick
    n = a.n_nodes
    best = Nearest(np.full(n, -1, dtype=np.int64), np.zeros(n), np.full(n, np.nan),
                   np.full(n, np.nan), np.full(n, np.inf), np.zeros(n, dtype=bool))
    rows = ai[first]
    best.seg[rows], best.u[rows], best.dist[rows] = si[first], u[first], dist[first]
    best.x[rows], best.y[rows] = px[first], py[first]
    # another segment as near, at another point or on another edge: which one the scorer
    # takes depends on the copy's order then (the two segments at a vertex give the same)
    b = np.maximum(best.seg[ai], 0)
    other = (si != b) & ((seg_edge[si] != seg_edge[b]) | (px != best.x[ai]) | (py != best.y[ai]))
    elsewhere = np.full(n, np.inf)
    np.minimum.at(elsewhere, ai[other], dist[other])
    with np.errstate(invalid="ignore"):
        best.tie[:] = np.abs(elsewhere - best.dist) <= 1e-9
    order = np.argsort(ai, kind="stable")
    return best, np.searchsorted(ai[order], np.arange(n + 1)), si[order]


def split_edges(copied: CopiedEdges, edge: np.ndarray, pos: np.ndarray, x: np.ndarray,
                y: np.ndarray, node: np.ndarray) -> Pieces:
    """The pieces of copied edges cut at many points at once.

    Args:
        copied: the copied edges.
        edge: the edge of each cut.
        pos: where along it, in vertex units (strictly between two vertices).
        x: the cut's x.
        y: the cut's y.
        node: the node the cut becomes.

    Returns:
        The pieces of every edge in ``edge``, each cut ending one piece and starting the next.
    """
    edges = np.unique(edge)
    counts = np.diff(copied.ptr)[edges]
    at = np.repeat(copied.ptr[edges] - (np.cumsum(counts) - counts), counts) + \
        np.arange(counts.sum())
    v_edge = np.repeat(edges, counts)
    v_pos = at - copied.ptr[v_edge]
    all_edge = np.concatenate([v_edge, edge])
    all_pos = np.concatenate([v_pos.astype(float), pos])
    all_x = np.concatenate([copied.points[at, 0], x])
    all_y = np.concatenate([copied.points[at, 1], y])
    all_id = np.concatenate([copied.ids[at], node])
    is_cut = np.concatenate([np.zeros(len(at), dtype=bool), np.ones(len(edge), dtype=bool)])
    order = np.lexsort((all_pos, all_edge))
    twice = np.repeat(order, 1 + is_cut[order])  # a cut ends one piece and starts the next
    ends = np.cumsum(1 + is_cut[order])
    last_of_edge = np.r_[all_edge[order][1:] != all_edge[order][:-1], True]
    breaks = np.sort(np.concatenate([ends[is_cut[order]] - 1, ends[last_of_edge]]))
    ptr = np.concatenate([[0], breaks]).astype(np.int64)
    points = np.stack([all_x[twice], all_y[twice]], axis=1)
    ids = all_id[twice]
    first, last = ids[ptr[:-1]], ids[ptr[1:] - 1]
    return Pieces(first, last, first, last, points[ptr[:-1]], polyline_lengths(points, ptr))


def quiet_nodes(a: RoadGraph, b: RoadGraph, copied: CopiedEdges, best: Nearest,
           seg_edge: np.ndarray, seg_a: np.ndarray, seg_b: np.ndarray,
           near: dict[int, list[int]]) -> np.ndarray:
    """Nodes whose placement can meet no other, and may wait to be made at once.

    Such a node snaps, clearly within the snap distance, to the inside of a segment: no node
    of either graph, no other node's landing point and no vertex of its edge within 0.11 px
    of it or of its landing point, on an edge with no two vertices that close. Placing it
    then only splits a piece where it lands, exactly as when its turn comes.
    """
    reach = 0.11
    n = a.n_nodes
    lands = (best.seg >= 0) & (best.dist <= SNAP_DISTANCE + 1e-9)
    ok = lands & (np.abs(best.dist - SNAP_DISTANCE) > 1e-9) & ~best.tie
    ok[list(near)] = False
    q = np.stack([best.x, best.y], axis=1)
    s = np.maximum(best.seg, 0)
    for end in (seg_a[s], seg_b[s]):
        d = q - end
        ok &= d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] >= reach * reach
    pinched = np.zeros(len(copied.edges), dtype=bool)
    owner = np.repeat(np.arange(len(copied.edges)), np.diff(copied.ptr))
    pairs = cKDTree(copied.points).query_pairs(reach, output_type="ndarray")
    pinched[owner[pairs[:, 0]][owner[pairs[:, 0]] == owner[pairs[:, 1]]]] = True
    ok &= ~pinched[seg_edge[s]]
    rows = np.flatnonzero(lands)
    if len(rows):
        tree = cKDTree(q[rows])
        ok[rows[tree.query_pairs(reach, output_type="ndarray").ravel()]] = False
        counts = tree.query_ball_point(a.xy[:n], reach, return_length=True)
        for k in np.flatnonzero(counts).tolist():  # a node next to a landing point: rule 1
            ok[k] = False
            ok[rows[tree.query_ball_point(a.xy[k], reach)]] = False
        if b.n_nodes:
            close = cKDTree(b.xy[:b.n_nodes]).query_ball_point(q[rows], reach, return_length=True)
            ok[rows[close > 0]] = False
    return ok


def reproject_shared(copied: CopiedEdges, edge: np.ndarray, seg: np.ndarray, u: np.ndarray,
                      ax: np.ndarray, ay: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    """Project again, in order, nodes of A that land on a segment an earlier one split.

    The arrays are sorted by edge, segment, then A's order; ``x``, ``y`` (the projections
    on whole segments) are updated in place: the scorer projects on the piece of segment
    between the cuts already there.
    """
    run = np.flatnonzero(np.r_[True, (edge[1:] != edge[:-1]) | (seg[1:] != seg[:-1]), True])
    for lo, hi in zip(run[:-1].tolist(), run[1:].tolist(), strict=True):
        if hi - lo < 2:
            continue
        base = copied.ptr[edge[lo]] + seg[lo]
        start, end = copied.points[base].tolist(), copied.points[base + 1].tolist()
        placed = [(0.0, *start), (1.0, *end)]  # (u, x, y) of the segment's cuts so far
        for i in range(lo, hi):
            j = bisect.bisect_left(placed, (u[i], -math.inf, -math.inf))
            before, after = placed[j - 1][1:], placed[j][1:]
            x[i], y[i], _, _ = project1(float(ax[i]), float(ay[i]), before, after)
            placed.insert(j, (u[i], x[i], y[i]))
