"""Building layouts of the synthetic demo cities, in pixel coordinates of one 650 x 650 tile.

Each layout function takes a seeded generator and returns :class:`Building` records whose
polygons may extend past the tile; :mod:`aerialsam.data.demo` clips, renders and writes them. The
styles follow the four SpaceNet 2 cities: a regular suburban grid of detached houses (Vegas),
dense attached blocks around courtyards (Paris), large widely spaced slabs and towers
(Shanghai) and irregular low compounds on bare ground (Khartoum).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString, Polygon, box

TILE = 650
"""Edge of a SpaceNet 2 tile in pixels."""


@dataclass(frozen=True)
class Building:
    """One building: its footprint (pixels), roof colour (11-bit DN, RGB) and height (pixels)."""

    polygon: Polygon
    roof: tuple[float, float, float]
    height: float


@dataclass(frozen=True)
class Road:
    """A road centre line (pixels) and its width (pixels)."""

    line: LineString
    width: float


def _rect(cx: float, cy: float, w: float, h: float, angle: float) -> Polygon:
    """A w x h rectangle centred on (cx, cy), rotated by ``angle`` degrees."""
    return affinity.rotate(box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), angle,
                           origin=(cx, cy))


def _l_shape(cx: float, cy: float, w: float, h: float, angle: float,
             rng: np.random.Generator) -> Polygon:
    """An L-shaped footprint inside a w x h box: the box less one corner notch."""
    nw, nh = w * rng.uniform(0.35, 0.55), h * rng.uniform(0.35, 0.55)
    sx, sy = rng.choice([-1, 1], size=2)
    notch = box(cx + sx * (w / 2 - nw) if sx > 0 else cx - w / 2,
                cy + sy * (h / 2 - nh) if sy > 0 else cy - h / 2,
                cx + w / 2 if sx > 0 else cx - w / 2 + nw,
                cy + h / 2 if sy > 0 else cy - h / 2 + nh)
    shape = box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2).difference(notch)
    return affinity.rotate(shape, angle, origin=(cx, cy))


def _roof(rng: np.random.Generator, palette: list[tuple[float, float, float]]) -> tuple:
    """A palette colour with a per-building brightness change."""
    base = np.asarray(palette[rng.integers(len(palette))], dtype=float)
    return tuple(base * rng.uniform(0.85, 1.15))


def _grid_lines(spacing: float, angle: float, offset: float) -> list[LineString]:
    """Parallel lines across the tile (and beyond), ``spacing`` apart, rotated by ``angle``."""
    centre = TILE / 2
    lines = []
    for pos in np.arange(-TILE + offset, 2 * TILE, spacing):
        line = LineString([(-TILE, pos), (2 * TILE, pos)])
        lines.append(affinity.rotate(line, angle, origin=(centre, centre)))
    return lines


def vegas(rng: np.random.Generator) -> tuple[list[Building], list[Road]]:
    """Detached houses in two rows per block along a regular street grid."""
    angle = rng.uniform(-6, 6)
    block_w, block_h = rng.uniform(150, 175), rng.uniform(300, 360)
    street = rng.uniform(16, 22)
    palette = [(900, 520, 380), (850, 760, 600), (620, 620, 600), (1300, 1300, 1200),
               (600, 480, 380), (800, 640, 470)]
    u_streets = np.arange(-TILE + rng.uniform(0, block_w), 2 * TILE, block_w)
    v_streets = np.arange(-TILE + rng.uniform(0, block_h), 2 * TILE, block_h)
    roads = [Road(LineString([(u, -TILE), (u, 2 * TILE)]), street) for u in u_streets]
    roads += [Road(LineString([(-TILE, v), (2 * TILE, v)]), street) for v in v_streets]
    cross = shapely.union_all([r.line.buffer(street / 2 + 6) for r in roads[len(u_streets):]])
    buildings: list[Building] = []
    for u0 in u_streets[:-1]:
        for row in (0.27, 0.73):
            depth, lot = rng.uniform(38, 52), rng.uniform(48, 62)
            for v in np.arange(-TILE, 2 * TILE, lot):
                cu, cv = u0 + row * block_w, v + lot / 2
                if not (-120 < cu < TILE + 120 and -120 < cv < TILE + 120) or rng.random() < 0.12:
                    continue
                w, h = depth, lot - rng.uniform(10, 16)
                poly = (_l_shape(cu, cv, w, h, 0, rng) if rng.random() < 0.35
                        else _rect(cu, cv, w, h, 0))
                if poly.intersects(cross):
                    continue
                buildings.append(Building(poly, _roof(rng, palette), rng.uniform(3, 6)))
    return _rotate_all(buildings, roads, angle)


def _rotate_all(buildings: list[Building], roads: list[Road],
                angle: float) -> tuple[list[Building], list[Road]]:
    """Rotate a layout drawn in its street-aligned frame about the tile centre."""
    centre = (TILE / 2, TILE / 2)
    return ([Building(affinity.rotate(b.polygon, angle, origin=centre), b.roof, b.height)
             for b in buildings],
            [Road(affinity.rotate(r.line, angle, origin=centre), r.width) for r in roads])


def paris(rng: np.random.Generator) -> tuple[list[Building], list[Road]]:
    """Perimeter blocks split into attached buildings around inner courtyards."""
    angle = rng.uniform(-25, 25)
    street = rng.uniform(14, 24)
    palette = [(560, 580, 600), (380, 390, 410), (850, 560, 420), (820, 800, 770),
               (700, 520, 430)]
    buildings: list[Building] = []
    roads: list[Road] = []
    xs = np.cumsum(rng.uniform(140, 230, size=10)) - TILE
    ys = np.cumsum(rng.uniform(130, 220, size=10)) - TILE
    roads += [Road(affinity.rotate(LineString([(x, -TILE), (x, 2 * TILE)]), angle,
                                   origin=(TILE / 2, TILE / 2)), street) for x in xs]
    roads += [Road(affinity.rotate(LineString([(-TILE, y), (2 * TILE, y)]), angle,
                                   origin=(TILE / 2, TILE / 2)), street) for y in ys]
    for x0, x1 in zip(xs[:-1], xs[1:], strict=True):
        for y0, y1 in zip(ys[:-1], ys[1:], strict=True):
            block = box(x0 + street / 2, y0 + street / 2, x1 - street / 2, y1 - street / 2)
            block = affinity.rotate(block, angle, origin=(TILE / 2, TILE / 2))
            if not block.intersects(box(-20, -20, TILE + 20, TILE + 20)):
                continue
            buildings += _perimeter_block(block, angle, rng, palette)
    return buildings, roads


def _perimeter_block(block: Polygon, angle: float, rng: np.random.Generator,
                     palette: list) -> list[Building]:
    """A block ring (block less its courtyard) cut into 3-8 attached buildings."""
    depth = rng.uniform(32, 48)
    courtyard = block.buffer(-depth, join_style="mitre")
    ring = block.difference(courtyard) if not courtyard.is_empty else block
    height = rng.uniform(8, 14)
    if rng.random() < 0.15:
        return [Building(ring, _roof(rng, palette), height)]
    centre = block.centroid
    pieces = [ring]
    for _ in range(rng.integers(3, 9)):
        # Party walls run square to the street, as in a Haussmann block.
        cut_angle = 90.0 * rng.integers(2)
        cut = affinity.rotate(LineString([(centre.x - 400, centre.y), (centre.x + 400, centre.y)]),
                              cut_angle + angle, origin=centre)
        cut = affinity.translate(cut, *rng.uniform(-30, 30, size=2))
        half = cut.buffer(400, single_sided=True)
        pieces = [part for piece in pieces for part in _split(piece, half)]
    return [Building(p, _roof(rng, palette), height * rng.uniform(0.9, 1.1)) for p in pieces]


def _split(shape: Polygon, half_plane: Polygon) -> list[Polygon]:
    """Both sides of ``shape`` cut by ``half_plane``, as separate polygons of useful size."""
    parts = []
    for side in (shape.intersection(half_plane), shape.difference(half_plane)):
        parts += [g for g in shapely.get_parts(side) if g.geom_type == "Polygon" and g.area > 1]
    small = any(p.area < 250 for p in parts)
    return [shape] if small or not parts else parts


def shanghai(rng: np.random.Generator) -> tuple[list[Building], list[Road]]:
    """Large slabs and towers, widely spaced on a loose grid, with long shadows."""
    angle = rng.uniform(-15, 15)
    palette = [(800, 820, 830), (450, 520, 640), (1000, 1000, 980), (600, 620, 630),
               (760, 560, 520)]
    roads = [Road(line, rng.uniform(28, 40))
             for line in _grid_lines(rng.uniform(420, 520), angle, rng.uniform(0, 300))]
    buildings = []
    pitch_x, pitch_y = rng.uniform(170, 230), rng.uniform(190, 260)
    for gx in np.arange(-pitch_x, TILE + pitch_x, pitch_x):
        for gy in np.arange(-pitch_y, TILE + pitch_y, pitch_y):
            if rng.random() < 0.25:
                continue
            cx, cy = gx + rng.uniform(-20, 20), gy + rng.uniform(-20, 20)
            tower = rng.random() < 0.4
            w, h = (rng.uniform(60, 90), rng.uniform(60, 90)) if tower else \
                (rng.uniform(45, 70), rng.uniform(120, 190))
            poly = (_l_shape(cx, cy, w * 1.3, h, angle, rng) if rng.random() < 0.2
                    else _rect(cx, cy, w, h, angle))
            buildings.append(Building(poly, _roof(rng, palette),
                                      rng.uniform(25, 45) if tower else rng.uniform(12, 25)))
    return buildings, roads


def khartoum(rng: np.random.Generator) -> tuple[list[Building], list[Road]]:
    """Irregular low compounds: small houses at random angles scattered on bare ground."""
    palette = [(700, 600, 470), (850, 760, 600), (560, 470, 380), (950, 920, 860),
               (480, 430, 370)]
    roads = [Road(LineString([(-50, rng.uniform(0, TILE)), (TILE + 50, rng.uniform(0, TILE))]),
                  rng.uniform(10, 18)) for _ in range(rng.integers(1, 3))]
    buildings: list[Building] = []
    placed: list[Polygon] = []
    for _ in range(rng.integers(25, 45)):
        # Compounds: a loose cluster of 1-4 houses sharing one orientation.
        ccx, ccy = rng.uniform(-20, TILE + 20, size=2)
        angle = rng.uniform(0, 90)
        for _ in range(rng.integers(1, 5)):
            cx, cy = ccx + rng.uniform(-35, 35), ccy + rng.uniform(-35, 35)
            w, h = rng.uniform(18, 45), rng.uniform(18, 40)
            poly = (_l_shape(cx, cy, w, h, angle, rng) if rng.random() < 0.3
                    else _rect(cx, cy, w, h, angle))
            if any(poly.buffer(3).intersects(other) for other in placed):
                continue
            placed.append(poly)
            buildings.append(Building(poly, _roof(rng, palette), rng.uniform(2, 4)))
    return buildings, roads


CityLayout = Callable[[np.random.Generator], tuple[list[Building], list[Road]]]

LAYOUTS: dict[str, CityLayout] = {
    "AOI_2_Vegas": vegas,
    "AOI_3_Paris": paris,
    "AOI_4_Shanghai": shanghai,
    "AOI_5_Khartoum": khartoum,
}
