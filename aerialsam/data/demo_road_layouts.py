"""Road networks of the synthetic SpaceNet 3 cities, drawn in metres, split at junctions.

Each layout function takes a seeded generator and the tile's size in metres (x east, y south
of its north-west corner) and returns :class:`RoadSegment` records that may run past the tile,
with the paved turning circles of cul-de-sacs; :mod:`aerialsam.data.demo_roads` maps them to
pixels, cuts them at the tile edge, paints and writes them. The styles follow the four
SpaceNet 3 cities: a north-south / east-west grid of residential streets with cul-de-sacs
(Vegas), irregular streets radiating from a square (Paris), wide arterials crossed by an
elevated motorway (Shanghai) and meandering unpaved cart tracks (Khartoum).

:func:`split_at_junctions` cuts roads into edges between junctions, as the real labels are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from aerialsam.data import spacenet3

LANE_WIDTH_M = 3.5
"""Width of one painted lane in metres."""
BULB_RADIUS_M = 9.0
"""Radius of a cul-de-sac's turning circle."""


@dataclass(frozen=True)
class RoadSegment:
    """A road centre line and its SpaceNet 3 attributes.

    The line is in metres in a layout, in pixels of the tile once placed on it.
    """

    line: LineString
    road_type: int
    lanes: int
    paved: int = 1
    bridge_type: int = 2

    @property
    def radius_m(self) -> float:
        """Half the painted width, in metres."""
        return self.lanes * LANE_WIDTH_M / 2

    def properties(self, road_id: int, speed: bool = False) -> dict:
        """GeoJSON properties as in the real files (codes as strings), with speeds if asked."""
        props: dict[str, object] = {
            "road_id": road_id, "road_type": str(self.road_type),
            "lane_number": str(self.lanes), "paved": str(self.paved),
            "bridge_type": str(self.bridge_type),
            "one_way_ty": "1" if self.lanes == 1 and self.paved == 1 else "2"}
        if speed:
            mph = spacenet3.inferred_speed_mph(self.road_type, self.lanes, self.paved,
                                               self.bridge_type)
            props |= {"inferred_speed_mph": mph, "inferred_speed_mps": round(mph * 0.44704, 4)}
        return props


Layout = Callable[[np.random.Generator, float, float],
                  tuple[list[RoadSegment], list[Polygon]]]


def vegas(rng: np.random.Generator, width: float,
          height: float) -> tuple[list[RoadSegment], list[Polygon]]:
    """A north-south / east-west grid of two-lane streets, cul-de-sacs, maybe an arterial."""
    xs = np.arange(-rng.uniform(0, 120), width + 130, rng.uniform(95, 130))
    ys = np.arange(-rng.uniform(0, 160), height + 170, rng.uniform(110, 160))
    roads = [RoadSegment(LineString([(x, ys[0]), (x, ys[-1])]), 5, 2) for x in xs]
    roads += [RoadSegment(LineString([(xs[0], y), (xs[-1], y)]), 5, 2) for y in ys]
    if rng.random() < 0.6:
        major = int(rng.integers(1, len(roads) - 1))
        big = rng.random() < 0.3
        roads[major] = RoadSegment(roads[major].line, 2 if big else 3, 6 if big else 4)
    bulbs = []
    for x0, x1 in zip(xs[:-1], xs[1:], strict=True):
        for y0, y1 in zip(ys[:-1], ys[1:], strict=True):
            if rng.random() < 0.3:
                continue
            # One dead end per block, from the middle of one side 45 % of the way in.
            xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
            start, tip = [((xm, y0), (xm, y0 + 0.45 * (y1 - y0))),
                          ((xm, y1), (xm, y1 - 0.45 * (y1 - y0))),
                          ((x0, ym), (x0 + 0.45 * (x1 - x0), ym)),
                          ((x1, ym), (x1 - 0.45 * (x1 - x0), ym))][int(rng.integers(4))]
            roads.append(RoadSegment(LineString([start, tip]), 5, 2))
            bulbs.append(Point(tip).buffer(BULB_RADIUS_M))
    return roads, bulbs


def paris(rng: np.random.Generator, width: float,
          height: float) -> tuple[list[RoadSegment], list[Polygon]]:
    """Irregular streets radiating from a square, joined by short arcs at a few radii."""
    cx, cy = rng.uniform(-0.3 * width, 1.3 * width), rng.uniform(-0.3 * height, 1.3 * height)
    count = int(rng.integers(5, 9))
    angles = (np.arange(count) + rng.uniform(-0.3, 0.3, count)) * 2 * np.pi / count
    angles += rng.uniform(0, 2 * np.pi)
    ring = rng.uniform(18, 28)
    radii = ring + np.cumsum(rng.uniform(70, 120, size=14))
    # Each radial passes through one vertex per radius, so the arcs meet it exactly there.
    drift = np.cumsum(rng.normal(0, 0.05, size=(count, len(radii))), axis=1)
    stations = np.concatenate([[ring], radii])
    vertices = [[(cx + r * np.cos(a + d), cy + r * np.sin(a + d))
                 for r, d in zip(stations, np.concatenate([[0.0], drift[i]]), strict=True)]
                for i, a in enumerate(angles)]
    boulevard = int(rng.integers(count))
    roads = [RoadSegment(LineString(v), 3 if i == boulevard else 4, 4 if i == boulevard else 2)
             for i, v in enumerate(vertices)]
    circle = np.sort(np.concatenate([angles % (2 * np.pi), np.linspace(0, 2 * np.pi, 24,
                                                                       endpoint=False)]))
    place = [(cx + ring * np.cos(a), cy + ring * np.sin(a)) for a in circle]
    roads.append(RoadSegment(LineString([*place, place[0]]), 4, 2))
    roads[-1] = RoadSegment(_ring_through(roads[-1].line, [v[0] for v in vertices]), 4, 2)
    frame = box(-100, -100, width + 100, height + 100)
    for k in range(1, len(stations)):
        for i in range(count):
            j = (i + 1) % count
            if rng.random() < 0.55:
                continue
            arc = _arc(vertices[i][k], vertices[j][k], (cx, cy), rng)
            if arc.intersects(frame):
                roads.append(RoadSegment(arc, 5, int(rng.choice([1, 2]))))
    return roads, []


def _ring_through(ring: LineString, points: list[tuple[float, float]]) -> LineString:
    """The closed ring with the radials' first vertices as exact vertices (shared nodes)."""
    coords = np.asarray(ring.coords)[:-1]
    for point in points:
        nearest = int(np.argmin(np.hypot(*(coords - point).T)))
        coords[nearest] = point
    return LineString([*map(tuple, coords), tuple(coords[0])])


def _arc(start: tuple[float, float], end: tuple[float, float], centre: tuple[float, float],
         rng: np.random.Generator) -> LineString:
    """A slightly wobbly arc about ``centre`` from ``start`` to ``end`` (exact end points)."""
    a0 = np.arctan2(start[1] - centre[1], start[0] - centre[0])
    a1 = np.arctan2(end[1] - centre[1], end[0] - centre[0])
    a1 = a0 + (a1 - a0 + np.pi) % (2 * np.pi) - np.pi
    r0, r1 = np.hypot(start[0] - centre[0], start[1] - centre[1]), \
        np.hypot(end[0] - centre[0], end[1] - centre[1])
    t = np.linspace(0, 1, 7)[1:-1]
    radius = r0 + (r1 - r0) * t + rng.normal(0, 3, size=t.size)
    angle = a0 + (a1 - a0) * t
    inner = [(centre[0] + r * np.cos(a), centre[1] + r * np.sin(a))
             for r, a in zip(radius, angle, strict=True)]
    return LineString([start, *inner, end])


def shanghai(rng: np.random.Generator, width: float,
             height: float) -> tuple[list[RoadSegment], list[Polygon]]:
    """Wide arterials and secondary roads on a loose grid, crossed by an elevated motorway."""
    angle = np.radians(rng.uniform(-15, 15))
    centre = np.array([width / 2, height / 2])
    u = np.array([np.cos(angle), np.sin(angle)])
    v = np.array([-u[1], u[0]])
    span = 1.5 * max(width, height)
    roads = []
    for axis, across in ((u, v), (v, u)):
        offsets = np.arange(-span, span, rng.uniform(130, 180)) + rng.uniform(0, 130)
        for k, offset in enumerate(offsets):
            kind = (2, int(rng.choice([6, 8]))) if k % 2 == 0 else (3, 4)
            if rng.random() < 0.2:
                kind = (5, 2)
            mid = centre + across * offset
            roads.append(RoadSegment(LineString([mid - axis * span, mid + axis * span]), *kind))
    # The elevated motorway: a diagonal through the middle half of the tile.
    heading = angle + np.radians(rng.choice([45.0, -45.0]) + rng.uniform(-10, 10))
    d = np.array([np.cos(heading), np.sin(heading)])
    through = centre + rng.uniform(-0.25, 0.25, 2) * np.array([width, height])
    roads.append(RoadSegment(LineString([through - d * span, through + d * span]), 1, 6,
                             bridge_type=1))
    return roads, []


def khartoum(rng: np.random.Generator, width: float,
             height: float) -> tuple[list[RoadSegment], list[Polygon]]:
    """Meandering one-lane cart tracks with branches; sometimes one paved street."""
    roads = []
    for _ in range(int(rng.integers(2, 4))):
        start = np.array([rng.uniform(0, width), -30.0]) if rng.random() < 0.5 else \
            np.array([-30.0, rng.uniform(0, height)])
        heading = np.arctan2(height / 2 - start[1], width / 2 - start[0]) + rng.uniform(-0.5, 0.5)
        track = _meander(start, heading, 1.5 * max(width, height), rng)
        roads.append(RoadSegment(track, 7, 1, paved=2))
        for _ in range(int(rng.integers(1, 3))):
            coords = np.asarray(track.coords)
            at = int(rng.integers(3, len(coords) - 3))
            side = float(rng.choice([-1.0, 1.0]))
            forward = coords[at + 1] - coords[at]
            branch_heading = np.arctan2(forward[1], forward[0]) + side * rng.uniform(0.7, 1.3)
            branch = _meander(coords[at], branch_heading, rng.uniform(80, 250), rng)
            roads.append(RoadSegment(branch, 7, 1, paved=2))
    if rng.random() < 0.35:
        y = rng.uniform(0.2, 0.8) * height
        roads.append(RoadSegment(LineString([(-50, y), (width + 50, y + rng.uniform(-40, 40))]),
                                 5, 2))
    return roads, []


def _meander(start: np.ndarray, heading: float, length: float,
             rng: np.random.Generator) -> LineString:
    """A smooth random walk from ``start`` (kept as its exact first vertex), 25 m steps."""
    steps = max(int(length / 25), 2)
    turns = np.cumsum(rng.normal(0, 0.08, steps))
    headings = heading + turns - turns[0]
    moves = 25 * np.column_stack([np.cos(headings), np.sin(headings)])
    points = np.vstack([start, start + np.cumsum(moves, axis=0)])
    return LineString(points)


ROAD_LAYOUTS: dict[str, Layout] = {
    "AOI_2_Vegas": vegas,
    "AOI_3_Paris": paris,
    "AOI_4_Shanghai": shanghai,
    "AOI_5_Khartoum": khartoum,
}



def split_at_junctions(segments: list[RoadSegment]) -> list[RoadSegment]:
    """Split every road where another road at the same level meets or crosses it.

    Both roads get the same junction point as an end point, so the edges share their nodes
    exactly. A bridge and the road under it do not meet.
    """
    lines = np.array([s.line for s in segments], dtype=object)
    cuts: list[list[Point]] = [[] for _ in segments]
    left, right = shapely.STRtree(lines).query(lines, predicate="intersects")
    for i, j in zip(left, right, strict=True):
        if i >= j or segments[i].bridge_type != segments[j].bridge_type:
            continue
        meet = shapely.get_parts(lines[i].intersection(lines[j]))
        points = [p for p in meet if p.geom_type == "Point"]
        cuts[i] += points
        cuts[j] += points
    out = []
    for segment, points in zip(segments, cuts, strict=True):
        out += [RoadSegment(piece, segment.road_type, segment.lanes, segment.paved,
                            segment.bridge_type) for piece in _cut(segment.line, points)]
    return out


def _cut(line: LineString, points: list[Point]) -> list[LineString]:
    """``line`` cut at ``points`` (on it); each cut point becomes an exact end point."""
    coords = np.asarray(line.coords)
    along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(coords, axis=0).T))])
    stops = sorted({round(line.project(p), 9): (p.x, p.y) for p in points}.items())
    stops = [(d, xy) for d, xy in stops if 1e-6 < d < along[-1] - 1e-6]
    marks = [(0.0, tuple(coords[0])), *stops, (along[-1], tuple(coords[-1]))]
    pieces = []
    for (d0, p0), (d1, p1) in zip(marks[:-1], marks[1:], strict=True):
        inner = [tuple(c) for c, a in zip(coords, along, strict=True) if d0 + 1e-6 < a < d1 - 1e-6]
        if d1 - d0 > 1e-6:
            pieces.append(LineString([p0, *inner, p1]))
    return pieces
