"""Snapping the nodes of one road graph onto another, exactly as the SpaceNet 3 scorer does.

Before it compares routes from graph A to graph B, the scorer places every node of A (in its
iteration order) on a copy of B, one after the other, each placement changing the copy that
the next one sees. Copying already changes B a little: a vertex of an edge within 0.1 px of
a node with the same point hash becomes that node (a control point next to a vertex, say).
Then, for each node of A:

1. A node of A within 0.1 px of a node of the copy *is* that node (the first one in the
   copy's iteration order).
2. Otherwise it goes to the nearest point of the copy's edges, visiting them in the copy's
   order and keeping the first of equal distances; a node within 0.1 px of a segment's end
   vertex counts as lying on that vertex (distance 0).
3. Nearest further than 4/0.31 px: the node has no match.
4. A nearest point within 0.1 px of an end of its edge piece is that end node.
5. Otherwise a new node splits the piece there. The vertex the scorer splits at is the end
   of the segment when the new node is within 0.1 px of it, else its start; the piece is
   cut at the *first* of its vertices within 0.1 px of that one, and that vertex is replaced
   by the new node when within 0.1 px of it. When an earlier vertex is that close (a control
   point next to a vertex, say), the scorer's pieces skip or repeat vertices, and a piece
   whose first vertex is no longer a node becomes one-way and invisible to later snapping;
   :class:`~aerialsam.metrics.road_graph.Pieces` keeps those quirks. A new node in the 0.1 px
   cell of a node and within 0.1 px of it is refused by the node set: a dead end.

:func:`snap_nodes` finds every node's nearest segment of the unchanged copy at once (an
STR-tree and vectorised projections). Most placements then meet no other: they only split a
segment where nothing else lies within 0.11 px
(:func:`~aerialsam.metrics.road_copy.quiet_nodes`). Those wait, and are made all at once at
the end, or when a placement that does meet others needs their edge. The others run one by
one, in order, projecting again on the piece of segment that holds the point now, or, near
an edge that a placement bent, searching the current pieces again. Both ways give the same
pieces and the same numbers, bit for bit.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

from aerialsam.metrics.road_copy import (
    CopiedEdges,
    Hit,
    Nearest,
    Piece,
    Snapped,
    nearest_segments,
    nodes_within_tolerance,
    project,
    project1,
    quiet_nodes,
    reproject_shared,
    segments,
    split_edges,
)
from aerialsam.metrics.road_graph import SNAP_DISTANCE, Pieces, RoadGraph
from aerialsam.metrics.road_numerics import (
    HashSetReplay,
    hypot1,
    point_hash,
    point_hash1,
    polyline_lengths,
    same_point,
)

__all__ = ["NO_MATCH", "Snapped", "snap_nodes"]

NO_MATCH = -1
"""Target of a node that did not snap (nothing within the snap distance)."""


@dataclass
class _Copy:
    """B's copy while nodes are placed on it: its new nodes and the pieces of cut edges.

    The node that A's node ``k`` may become has the id ``first_new + k``, so that ids follow
    the order of creation. A placement that cannot meet any other (see
    :func:`~aerialsam.metrics.road_copy.quiet_nodes`) is deferred: it waits in ``pending``
    until its edge is needed, or to the end.

    A node of A that *is* a node of the copy (rules 1 and 4) becomes an alias: the scorer
    keeps a map from a key point (the node's coordinates, or the landing point) to the
    node, with its tolerant point equality: a later alias whose key equals an earlier key
    overwrites that key's node, and any node of A whose point equals a key ends up as that
    key's node (:meth:`resolve`).
    """

    b: RoadGraph
    copied: CopiedEdges
    first_new: int
    xy: list[tuple[float, float]]
    routable: list[bool]
    node_set: HashSetReplay
    members: dict[int, list[int]]
    target: np.ndarray
    a_xy: list[tuple[float, float]]
    cut: dict[int, list[Piece]] = field(default_factory=dict)  # by copied edge
    bent: set[int] = field(default_factory=set)  # edges no longer along their first segments
    grid: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    pending: dict[int, list[tuple[int, int, float, float, float]]] = field(default_factory=dict)
    aliases: dict[int, list[list]] = field(default_factory=dict)  # hash: [x, y, node] keys
    key_of: dict[int, tuple[float, float]] = field(default_factory=dict)  # A's node: its key
    stale: dict[int, float] = field(default_factory=dict)  # dead ends' stored distances

    @classmethod
    def of(cls, b: RoadGraph, a: RoadGraph) -> _Copy:
        """A fresh copy: the scorer copies B's nodes, in B's order, into a new set."""
        node_set = HashSetReplay()
        node_set.add_many(b.hashes[:b.n_nodes])
        members: dict[int, list[int]] = {}
        for i, h in enumerate(b.hashes[:b.n_nodes].tolist()):
            members.setdefault(h, []).append(i)
        n_new = a.n_nodes
        return cls(b, CopiedEdges.copy_of(b), len(b.xy),
                   list(map(tuple, b.xy.tolist())) + [(math.nan, math.nan)] * n_new,
                   [i < b.n_nodes for i in range(len(b.xy))] + [False] * n_new, node_set,
                   members, np.full(n_new, NO_MATCH, dtype=np.int64),
                   list(map(tuple, a.xy[:n_new].tolist())))

    def order_key(self, node: int) -> tuple[int, int]:
        """The node's place in the copy's iteration order now: bin, then insertion."""
        unsigned = self._hash(node) & 0xFFFFFFFF
        return (unsigned ^ (unsigned >> 16)) & (self.node_set.capacity - 1), node

    def _hash(self, node: int) -> int:
        if node < self.first_new:
            return int(self.b.hashes[node])
        return point_hash1(*self.xy[node])

    def new_nodes_near(self, x: float, y: float) -> list[int]:
        """New nodes within 0.1 px of ``(x, y)`` (the grid holds them by 1 px cell)."""
        if not self.grid:
            return []
        cells = {(math.floor(x + dx), math.floor(y + dy)) for dx in (-0.1, 0.1)
                 for dy in (-0.1, 0.1)}
        return [n for c in cells for n in self.grid.get(c, ()) if same_point(x, y, *self.xy[n])]

    def add_node(self, k: int, x: float, y: float, counted: bool = False) -> int:
        """The node A's node ``k`` creates to split a piece.

        The scorer's set refuses it when a node of the same hash lies within 0.1 px (it is
        then a dead end). ``counted``: a deferred node, counted in the set when its turn came.
        """
        node = self.first_new + k
        self.xy[node] = (x, y)
        h = self._hash(node)
        refused = any(same_point(x, y, *self.xy[n]) for n in self.members.get(h, ()))
        self.routable[node] = not refused
        if not refused:
            self.members.setdefault(h, []).append(node)
            self.grid.setdefault((math.floor(x), math.floor(y)), []).append(node)
            if not counted:
                self.node_set.add(h)
        return node

    def alias(self, k: int, x: float, y: float, node: int) -> int:
        """A's node ``k`` is ``node``, under the key point ``(x, y)``; returns ``node``."""
        self.key_of[k] = (x, y)
        entries = self.aliases.setdefault(point_hash1(x, y), [])
        for entry in entries:
            if same_point(x, y, entry[0], entry[1]):
                entry[2] = node  # the key stays, its node changes
                return node
        entries.append([x, y, node])
        return node

    def dead_end(self, x: float, y: float, stale: float) -> int:
        """A node outside the set (a plain vertex an alias points to): no route starts there."""
        self.xy.append((x, y))
        self.routable.append(False)
        self.stale[len(self.xy) - 1] = stale
        return len(self.xy) - 1

    def resolve(self, k: int, node: int) -> int:
        """The node that A's node ``k`` (which became ``node``) is when routes are measured.

        That is the node of the first alias key equal to its own key (or to ``node``'s point).
        """
        if node < 0:
            return node
        x, y = self.key_of.get(k, self.xy[node])
        for entry in self.aliases.get(point_hash1(x, y), ()):
            if same_point(x, y, entry[0], entry[1]):
                return entry[2]
        return node

    def pieces(self, edge: int) -> list[Piece]:
        """The current pieces of copied edge ``edge``, in order along it.

        Deferred nodes waiting for the edge are placed first, in their order.
        """
        if edge not in self.cut:
            self.cut[edge] = [self.copied.piece(edge)]
            for k, seg, u, x, y in self.pending.pop(edge, []):
                self.target[k] = _place(self, _locate(self, edge, seg, u, x, y), k, counted=True)
        return self.cut[edge]

    def visible(self, piece: Piece) -> bool:
        """Whether the scorer's search sees a piece: from its first vertex, a node holding it."""
        first = piece.ids[0]
        return first >= 0 and first in (piece.start, piece.end) and self.routable[first]


def snap_nodes(a: RoadGraph, b: RoadGraph) -> Snapped:
    """Place every node of ``a`` on a copy of ``b`` as the scorer does (see the module notes).

    Args:
        a: the graph whose nodes are placed, in its iteration order.
        b: the graph they are placed on; it is not modified.

    Returns:
        The copy of ``b`` after the placements, and the node each node of ``a`` became.
    """
    copy = _Copy.of(b, a)
    target, best = copy.target, None
    if a.n_nodes and len(copy.copied.edges):
        rank = np.full(len(b.xy), len(b.xy), dtype=np.int64)
        rank[copy.node_set.order(b.hashes[:b.n_nodes], np.arange(b.n_nodes))] = \
            np.arange(b.n_nodes)
        seg_edge, seg_index, seg_a, seg_b, visit = segments(copy.copied, rank)
        near = nodes_within_tolerance(a, b, rank)
        best, ptr, cand = nearest_segments(a, seg_a, seg_b, seg_edge, visit)
        quiet = quiet_nodes(a, b, copy.copied, best, seg_edge, seg_a, seg_b, near)
        new_hash = np.zeros(a.n_nodes, dtype=np.int64)
        new_hash[quiet] = point_hash(np.stack([best.x[quiet], best.y[quiet]], axis=1))
        new_hash = new_hash.tolist()
        xs, ys = a.xy[:a.n_nodes, 0].tolist(), a.xy[:a.n_nodes, 1].tolist()
        best_seg, best_u, ptr, tie = best.seg.tolist(), best.u.tolist(), ptr.tolist(), \
            best.tie.tolist()
        seg_edge_list, seg_index_list = seg_edge.tolist(), seg_index.tolist()
        for k in range(a.n_nodes):
            s = best_seg[k]
            near_edges, bent = None, tie[k]
            if copy.bent or bent:  # an edge near it no longer follows its first segments
                near_edges = seg_edge[cand[ptr[k]:ptr[k + 1]]]
                bent = bent or not copy.bent.isdisjoint(near_edges.tolist())
            if quiet[k] and seg_edge_list[s] not in copy.cut and not bent:
                copy.pending.setdefault(seg_edge_list[s], []).append(
                    (k, seg_index_list[s], best_u[k], xs[k], ys[k]))
                copy.node_set.add(new_hash[k])  # the scorer's set holds it from now on
                continue
            same = near.get(k, []) + copy.new_nodes_near(xs[k], ys[k])
            if same:
                node = min(same, key=copy.order_key)
                target[k] = copy.alias(k, *copy.xy[node], node)
                continue
            if ptr[k] == ptr[k + 1]:
                continue
            if bent:
                hit = _search(copy, xs[k], ys[k], np.unique(near_edges))
            else:
                hit = _locate(copy, seg_edge_list[s], seg_index_list[s], best_u[k], xs[k], ys[k])
            if hit is not None and hit.dist <= SNAP_DISTANCE:
                target[k] = _place(copy, hit, k)
    deferred = _place_deferred(copy, best)
    target = np.array([copy.resolve(k, n) for k, n in enumerate(target.tolist())],
                      dtype=np.int64)
    stale = np.zeros(len(copy.xy))
    stale[list(copy.stale)] = list(copy.stale.values())
    return Snapped(target, np.array(copy.xy, dtype=float).reshape(-1, 2),
                   np.array(copy.routable, dtype=bool), stale, _pack(copy, deferred))


def _locate(copy: _Copy, edge: int, seg: int, u: float, x: float, y: float) -> Hit | None:
    """The hit on segment ``seg`` of an edge whose pieces still follow its segments.

    The point at ``u`` along the segment is projected again on the part of the segment that
    holds it now (the part that ends there when ``u`` is 1).
    """
    pieces, pos = copy.pieces(edge), seg + u
    find = bisect.bisect_left if u >= 1 else bisect.bisect_right
    k = max(find([p.pos[0] for p in pieces], pos) - 1, 0)
    piece = pieces[k]
    i = min(max(find(piece.pos, pos) - 1, 0), len(piece.pts) - 2)
    px, py, dist, u = project1(x, y, piece.pts[i], piece.pts[i + 1])
    return None if math.isnan(dist) else Hit(edge, k, i, px, py, dist, u)


def _search(copy: _Copy, x: float, y: float, edges: np.ndarray) -> Hit | None:
    """The nearest point among the current visible pieces of ``edges``."""
    rows, a, b = [], [], []
    for edge in edges.tolist():
        for k, piece in enumerate(copy.pieces(edge)):
            if copy.visible(piece):
                key = copy.order_key(piece.ids[0])
                for i in range(len(piece.pts) - 1):
                    rows.append((key, edge, k, i))
                    a.append(piece.pts[i])
                    b.append(piece.pts[i + 1])
    if not rows:
        return None
    px, py, dist, u = project(np.full(len(rows), x), np.full(len(rows), y), np.array(a),
                               np.array(b))
    dist = np.where(np.isnan(dist), np.inf, dist)
    j = min(range(len(rows)), key=lambda r: (dist[r], rows[r]))
    if not np.isfinite(dist[j]):
        return None
    _, edge, k, i = rows[j]
    return Hit(edge, k, i, float(px[j]), float(py[j]), float(dist[j]), float(u[j]))


def _place(copy: _Copy, hit: Hit, k: int, counted: bool = False) -> int:
    """Rules 4 and 5: the node that A's node ``k`` becomes at ``hit``; may split the piece."""
    pieces = copy.cut[hit.edge]
    piece = pieces[hit.piece]
    pts, ids, pos, x, y, i = piece.pts, piece.ids, piece.pos, hit.x, hit.y, hit.seg
    for end in (0, -1):
        if same_point(x, y, *pts[end]):
            node = ids[end] if ids[end] >= 0 else copy.dead_end(*pts[end], 0.0)
            return copy.alias(k, x, y, node)
    j = i + 1 if same_point(x, y, *pts[i + 1]) else i  # the vertex the scorer splits at
    (vx, vy), cut = pts[j], 0
    while not same_point(*pts[cut], vx, vy):  # the first vertex "equal" to it
        cut += 1
    keep = not same_point(x, y, *pts[j])
    node = copy.add_node(k, x, y, counted)
    if cut == j:
        at = pos[i] + hit.u * (pos[i + 1] - pos[i]) if keep else pos[j]
        pos1, pos2 = pos[:cut] + [pos[j]] * keep + [at], [at] + pos[cut + 1:]
    else:
        pos1, pos2 = [math.nan] * (cut + keep + 1), [math.nan] * (len(pts) - cut)
    if not copy.routable[node]:  # refused: it keeps the distance its projection stored
        ax, ay = copy.a_xy[k]
        copy.stale[node] = hypot1(ax - x, ay - y) if hit.dist else 0.0
    if cut != j or (not keep and (x, y) != pts[j]) or not copy.routable[node]:
        copy.bent.add(hit.edge)
    pieces[hit.piece:hit.piece + 1] = [
        Piece(ids[0], node, pts[:cut] + [pts[j]] * keep + [(x, y)],
               ids[:cut] + [ids[j]] * keep + [node], pos1),
        Piece(node, ids[-1], [(x, y)] + pts[cut + 1:], [node] + ids[cut + 1:], pos2)]
    return node


def _place_deferred(copy: _Copy, best: Nearest | None) -> Pieces | None:
    """Place the nodes still waiting, all at once: each splits its segment where it lands.

    A segment that several of them split is projected on again piece by piece, in their
    order, as the scorer does one after the other.
    """
    waiting = [(e, *w) for e, ws in copy.pending.items() for w in ws]
    if not waiting or best is None:
        return None
    edge, k, seg, u, ax, ay = (np.array([w[i] for w in waiting]) for i in range(6))
    order = np.lexsort((k, seg, edge))
    edge, k, seg, u, ax, ay = (v[order] for v in (edge, k, seg, u, ax, ay))
    x, y = best.x[k].copy(), best.y[k].copy()
    reproject_shared(copy.copied, edge, seg, u, ax, ay, x, y)
    node = copy.first_new + k
    for i, n in enumerate(node.tolist()):
        copy.xy[n] = (float(x[i]), float(y[i]))
        copy.routable[n] = True
    copy.target[k] = node
    return split_edges(copy.copied, edge, seg + u, x, y, node)


def _pack(copy: _Copy, deferred: Pieces | None) -> Pieces:
    """The copy's edges as :class:`~aerialsam.metrics.road_graph.Pieces`.

    Uncut edges as copied, the pieces that placements cut one by one, and the pieces that
    the deferred placements cut at once.
    """
    copied = copy.copied
    uncut = np.array([(e not in copy.cut or len(copy.cut[e]) == 1) and e not in copy.pending
                      for e in range(len(copied.edges))], dtype=bool)
    first, last = copied.ids[copied.ptr[:-1]], copied.ids[copied.ptr[1:] - 1]
    parts = [Pieces(first[uncut], last[uncut], first[uncut], last[uncut],
                    copied.points[copied.ptr[:-1]][uncut], copied.lengths[uncut])]
    cut = [p for e in np.flatnonzero(~uncut).tolist() if e not in copy.pending
           for p in copy.cut[e]]
    if cut:
        ptr = np.concatenate([[0], np.cumsum([len(p.pts) for p in cut])]).astype(np.int64)
        points = np.array([q for p in cut for q in p.pts], dtype=float)
        parts.append(Pieces(np.array([p.start for p in cut]), np.array([p.end for p in cut]),
                            np.array([p.ids[0] for p in cut]), np.array([p.ids[-1] for p in cut]),
                            points[ptr[:-1]], polyline_lengths(points, ptr)))
    if deferred is not None:
        parts.append(deferred)
    return Pieces.concat(parts)
