"""One direction of APLS as the SpaceNet 3 scorer computes it: routes of A looked for in B.

Every node of A is snapped onto a copy of B (:mod:`~aerialsam.metrics.road_snap`). Then for
every ordered pair of distinct nodes of A joined by a route of length ``L``, the route between
their snapped nodes in B's copy has length ``L'`` and the pair costs ``min(1, |L - L'| / L)``:
1 when either node did not snap or the copy has no such route, 0 when both lengths are 0. A
start node that did not snap costs its number of reachable nodes, added at once. The
direction scores 1 minus the mean cost (1 when A has no pair). Costs are added one after the
other in the scorer's order (its node order, start by start), so that the sum agrees to the
last bit.

Routes are Dijkstra's from each start node (:func:`scipy.sparse.csgraph.dijkstra`), which adds
edge lengths from the source outwards as the scorer does: equal routes give equal sums. A node
of A may become a dead end of B's copy (a new node the scorer's set refused): no route starts
there, and a route to it has the length the scorer last stored on the node object, as the
scorer reads it (its snap distance, lowered when a route reached it with less).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from aerialsam.metrics.road_copy import Snapped
from aerialsam.metrics.road_graph import Pieces, RoadGraph
from aerialsam.metrics.road_numerics import SAME_POINT_SQ
from aerialsam.metrics.road_snap import snap_nodes

__all__ = ["one_way_score"]

_ROW_BLOCK = 512  # rows of the pair matrices handled at a time (memory stays ~ n x 512)


def _moves(xy: np.ndarray, routable: np.ndarray, pieces: Pieces
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scorer's moves along pieces (see :class:`~aerialsam.metrics.road_graph.Pieces`).

    A normal piece is two-way, except backwards over a section under 0.1 px (the scorer's
    point equality is tolerant) and out of a loop; nothing moves out of a dead end.

    Returns:
        Source node, target node and length of every move, the shortest of parallel ones.
    """
    sources, targets, weights = [], [], []
    for holder in (pieces.start, pieces.end):
        d = xy[holder] - pieces.p1
        onto = np.where(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] < SAME_POINT_SQ,
                        pieces.last, pieces.first)
        ok = routable[holder] & (onto >= 0) & (onto != holder)
        sources.append(holder[ok])
        targets.append(onto[ok])
        weights.append(pieces.lengths[ok])
    src, dst, weight = np.concatenate(sources), np.concatenate(targets), np.concatenate(weights)
    order = np.lexsort((weight, dst, src))
    src, dst, weight = src[order], dst[order], weight[order]
    first = np.r_[True, (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])]
    return src[first], dst[first], weight[first]


def one_way_score(a: RoadGraph, b: RoadGraph) -> float:
    """One direction of APLS: how well ``b`` keeps the routes between ``a``'s nodes.

    Args:
        a: the graph whose routes are measured (truth for ``gt_to_prop``); not empty.
        b: the graph they are looked for in; not empty.

    Returns:
        1 minus the mean route cost (see the module notes).
    """
    n = a.n_nodes
    src, dst, weight = _moves(a.xy, np.arange(len(a.xy)) < n, a.pieces())
    keep = dst < n  # routes end nowhere else
    m = len(a.xy)
    d1_all = dijkstra(csr_matrix((weight[keep], (src[keep], dst[keep])), shape=(m, m)),
                      directed=True, indices=np.arange(n))[:, :n]
    snapped = snap_nodes(a, b)
    routes = _Routes(snapped, n)
    total, count = 0.0, 0
    for lo in range(0, n, _ROW_BLOCK):
        rows = np.arange(lo, min(n, lo + _ROW_BLOCK))
        d1 = d1_all[rows]
        reach = np.isfinite(d1)
        reach[np.arange(len(rows)), rows] = False
        count += int(reach.sum())
        cost = np.where(reach, _route_costs(d1, routes.lengths(rows)), 0.0)
        missed = snapped.target[rows] < 0
        cost[missed] = 0.0
        cost[missed, 0] = reach[missed].sum(axis=1)  # the scorer adds a lost start's count at once
        total = float(np.cumsum(np.concatenate([[total], cost.ravel()]))[-1])
    return 1 - (total / count if count > 0 else 0.0)


class _Routes:
    """Route lengths in B's copy between the nodes A's nodes became, row by row in A's order.

    From a routable node: Dijkstra's. From a dead end (a node outside the scorer's set):
    nowhere. To a dead end: the distance the scorer last stored on it: its ``stale``
    value, lowered whenever a route from an earlier start reached it with less.
    """

    def __init__(self, snapped: Snapped, n: int) -> None:
        """Run Dijkstra from every routable node that A's nodes became."""
        self.target = target = snapped.target
        src, dst, weight = _moves(snapped.xy, snapped.routable, snapped.pieces)
        into = snapped.routable[dst]
        size = len(snapped.xy)
        matrix = csr_matrix((weight[into], (src[into], dst[into])), shape=(size, size))
        found = target >= 0
        self.live = found & snapped.routable[np.maximum(target, 0)]
        sources = np.unique(target[self.live])
        self.row_of = np.full(size, -1, dtype=np.int64)
        self.row_of[sources] = np.arange(len(sources))
        self.dist = dijkstra(matrix, directed=True, indices=sources) if len(sources) \
            else np.zeros((0, size))
        self.dead = np.unique(target[found & ~self.live])  # dead ends A's nodes became
        self.dead_col = {int(g): i for i, g in enumerate(self.dead.tolist())}
        self.stored = snapped.stale[self.dead].copy()
        ghost = np.isin(dst, self.dead) & ~into
        self.into_dead = (src[ghost], np.array([self.dead_col[int(g)] for g in dst[ghost]],
                                               dtype=np.int64), weight[ghost])

    def lengths(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), n)`` route lengths from each row's node to every node of A's."""
        target, n = self.target, len(self.target)
        start = target[rows]
        live_rows = np.flatnonzero(self.live[rows])
        d2 = np.full((len(rows), n), np.inf)
        live_cols = np.flatnonzero(self.live)
        if len(live_rows) and len(live_cols):
            d2[np.ix_(live_rows, live_cols)] = self.dist[np.ix_(self.row_of[start[live_rows]],
                                                                 target[live_cols])]
        if len(self.dead):
            stored = self._stored_after(start, live_rows)
            dead_cols = np.flatnonzero((target >= 0) & ~self.live)
            d2[:, dead_cols] = stored[:, [self.dead_col[int(g)] for g in target[dead_cols]]]
        return d2

    def _stored_after(self, start: np.ndarray, live_rows: np.ndarray) -> np.ndarray:
        """The distance stored on each dead end after each row's routes were searched."""
        reach = np.full((len(start), len(self.dead)), np.inf)
        src, col, weight = self.into_dead
        from_rows = self.dist[self.row_of[start[live_rows]]]
        for s, c, w in zip(src.tolist(), col.tolist(), weight.tolist(), strict=True):
            reach[live_rows, c] = np.minimum(reach[live_rows, c], from_rows[:, s] + w)
        stored = np.minimum.accumulate(np.vstack([self.stored, reach]), axis=0)
        self.stored = stored[-1]
        return stored[1:]


def _route_costs(d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """The scorer's cost of routes of lengths ``d1`` in A and ``d2`` in B's copy."""
    with np.errstate(invalid="ignore", divide="ignore"):
        cost = np.minimum(1.0, np.abs(d1 - d2) / d1)
    cost = np.where((d1 == 0) | (d2 == 0), np.where((d1 == 0) & (d2 == 0), 0.0, 1.0), cost)
    return np.where(np.isfinite(d2), cost, 1.0)
