"""Synthetic SpaceNet 3 AOIs in the real layout: road imagery and labels without a network.

:func:`make_road_demo` writes, for each of Vegas, Paris, Shanghai and Khartoum, tiles like the
SpaceNet 3 training release, in the layout of :mod:`aerialsam.data.spacenet3`: 1300 x 1300
three-band uint16 GeoTIFFs with 11-bit values in EPSG:4326 at 2.7e-6 degree pixels; per tile a
GeoJSON of road centre lines (``[lon, lat]``, WGS84) with ``road_type``, ``lane_number``,
``paved`` and ``bridge_type`` (strings, as in the real files), and the same lines with
``inferred_speed_mph`` in ``geojson_roads_speed``. Lines are split at junctions (each is an
edge of the road graph, as in the real labels) and cut at the tile edge; an overpass crosses
the roads below it without a junction.

One road style per city (:mod:`aerialsam.data.demo_road_layouts`): a grid of residential
streets with cul-de-sacs and the odd arterial (Vegas), irregular streets radiating from a
square, joined by short arcs (Paris), wide arterials crossed by an elevated motorway,
``bridge_type`` 1 (Shanghai), and unpaved cart tracks on bare ground, ``paved`` 2 and
``road_type`` 7 (Khartoum).

A road is painted ``lane_number`` x 3.5 m wide
(:data:`~aerialsam.data.demo_road_layouts.LANE_WIDTH_M`): its centre line is buffered in
the tile's UTM zone (:func:`aerialsam.data.spacenet3.buffer_m`; pixels are about 0.30 m
north-south but 0.24 m east-west in Vegas) and burnt on the tile grid, pixel-centre rule. So
the painted roads are exactly the ``road`` mask of the labels with that lane width
(:mod:`aerialsam.prep.road_masks`), plus the turning circles of cul-de-sacs, which, as in the
real labels, are not labelled.

The imagery reuses the SpaceNet 2 generator (:mod:`aerialsam.data.demo`): a tile is four
650 px quadrants rendered by :func:`~aerialsam.data.demo.render_tile` (ground, vegetation,
the SpaceNet 2 city's buildings kept off the roads, shadows, the sensor model); the roads are
then painted in the same 11-bit scale. The ground tone of a quadrant can differ slightly from
its neighbour's, so faint seams may show at rows and columns 650.

Everything is a function of ``(seed, AOI, tile index)``: a folder made with fewer tiles is a
prefix of one made with more, and a rerun skips the tiles already written. Tiles whose index
is 3 modulo 7 have no road (bare ground). The tiles abut on a grid of 4 columns, south of the
SpaceNet 2 demo tiles of the same city (they do not overlap).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from scipy import ndimage
from shapely.geometry import Polygon, box

from aerialsam.config import Profile, stage_paths
from aerialsam.data import demo, spacenet, spacenet3
from aerialsam.data.demo_layouts import LAYOUTS, Building
from aerialsam.data.demo_road_layouts import (
    ROAD_LAYOUTS,
    RoadSegment,
    split_at_junctions,
)
from aerialsam.errors import InputError
from aerialsam.io import progress_bar, record_params

log = logging.getLogger(__name__)

TILE = spacenet3.TILE_SIDE
"""Side of a SpaceNet 3 tile in pixels."""
QUADRANT = TILE // 2
"""Side of the SpaceNet 2 renders a tile is made of."""
GRID_COLUMNS = demo.GRID_COLUMNS // 2
SOUTH_OF_SN2_DEG = 0.05
"""How far south of the SpaceNet 2 demo grid the road tiles start (degrees)."""
PARAMS_FILE = ".aerialsam-road-demo.json"
GENERATOR_VERSION = 2
# tile 4 (not 3): the profiles make three road tiles a city, one each to train, validate and
# test on, and an empty one among them left a city training or validating on no road
EMPTY_EVERY, EMPTY_AT = 7, 3
"""Tiles whose index is ``EMPTY_AT`` modulo ``EMPTY_EVERY`` have no road."""
DECK_HEIGHT_M = 9.0
"""Height of an elevated road above the ground (for its shadow)."""
SUN = np.array([-0.45, -0.75])
"""Shadow offset per pixel of height, the direction of the SpaceNet 2 demo's shadows."""
BLUR_SIGMA, NOISE_DN = 0.6, 8.0
"""Optical blur (pixels) and sensor noise (DN) of the painted roads, as in the SN2 render."""


@dataclass(frozen=True)
class RoadStyle:
    """Colours (visual RGB scale, as :data:`aerialsam.data.demo.CITIES`) of a city's roads."""

    paved: tuple[float, float, float]
    unpaved: tuple[float, float, float]
    deck: tuple[float, float, float]
    clip_buildings: bool
    """Cut buildings along the roads (attached blocks) instead of dropping those in the way."""


ROAD_STYLES: dict[str, RoadStyle] = {
    "AOI_2_Vegas": RoadStyle(demo.CITIES["AOI_2_Vegas"].road, (640, 580, 480), (520, 520, 520),
                             False),
    "AOI_3_Paris": RoadStyle(demo.CITIES["AOI_3_Paris"].road, (560, 520, 450), (480, 480, 490),
                             True),
    "AOI_4_Shanghai": RoadStyle(demo.CITIES["AOI_4_Shanghai"].road, (520, 480, 420),
                                (560, 560, 570), False),
    "AOI_5_Khartoum": RoadStyle((360, 350, 340), demo.CITIES["AOI_5_Khartoum"].road,
                                (520, 520, 520), False),
}
"""Paved roads take the SpaceNet 2 demo's road colour, Khartoum's tracks its sandy one."""


def make_road_demo(out_dir: str | Path, tiles_per_aoi: int = 4, seed: int = 0,
                   aois: Sequence[str] | None = None) -> list[Path]:
    """Write synthetic AOIs in the SpaceNet 3 layout; return the AOI folders.

    Args:
        out_dir: destination; AOI folders ``SN3_roads_train_AOI_2_Vegas`` … are made inside.
        tiles_per_aoi: tiles per AOI (a folder that already holds more keeps them).
        seed: the seed every tile derives from.
        aois: AOIs to make (aliases such as ``vegas`` or full names); all four by default.

    Raises:
        InputError: ``tiles_per_aoi`` < 1, an unknown AOI, or ``out_dir`` made with another
            seed or holding real SpaceNet 3 data.
    """
    if tiles_per_aoi < 1:
        raise InputError("--tiles-per-aoi", f"must be at least 1, got {tiles_per_aoi}")
    names = list(dict.fromkeys(spacenet.resolve_aoi(a) for a in (aois or spacenet.AOI_NAMES)))
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a folder")
    if not (out_dir / PARAMS_FILE).exists() and spacenet3.find_aoi_dirs(out_dir):
        raise InputError(out_dir, "holds SpaceNet 3 data not made by the road demo (real "
                                  "tiles?); write the demo AOIs to another folder")
    record_params(out_dir, PARAMS_FILE, {"seed": seed, "generator": GENERATOR_VERSION},
                  "road demo data")
    return [_make_aoi(out_dir, aoi, tiles_per_aoi, seed) for aoi in names]


def _make_aoi(out_dir: Path, aoi: str, tiles_per_aoi: int, seed: int) -> Path:
    aoi_dir = out_dir / spacenet3.aoi_dir_name(aoi)
    existing = len(list((aoi_dir / spacenet3.IMAGE_DIR).glob("*.tif")))
    count = max(tiles_per_aoi, existing)
    written = 0
    for index in progress_bar(range(count), desc=f"roads {aoi}", unit="tile"):
        number = index + 1
        paths = (spacenet3.image_path(aoi_dir, number), spacenet3.geojson_path(aoi_dir, number),
                 spacenet3.geojson_path(aoi_dir, number, speed=True))
        if all(p.exists() for p in paths):
            continue
        transform = tile_transform(aoi, index)
        roads = tile_roads(aoi, index, seed)
        demo.write_image(paths[0], render_road_tile(aoi, index, seed, roads), transform)
        _write_geojson(paths[1], roads, transform, speed=False)
        _write_geojson(paths[2], roads, transform, speed=True)
        written += 1
    log.info("road demo AOI %s: %d tiles (%d written) in %s", aoi, count, written, aoi_dir)
    return aoi_dir


def _rng(seed: int, aoi: str, index: int, stream: int) -> np.random.Generator:
    """The generator of one stream of one tile (3 tells these streams from SpaceNet 2's)."""
    return np.random.default_rng([seed, 3, int(aoi.split("_")[1]), index, stream])


def tile_transform(aoi: str, index: int) -> Affine:
    """The geotransform of road tile ``index`` of ``aoi`` (tiles abut on a grid of 4 columns)."""
    lon0, lat0 = demo.CITIES[aoi].origin
    row, col = divmod(index, GRID_COLUMNS)
    return Affine(demo.RESOLUTION, 0.0, lon0 + col * TILE * demo.RESOLUTION,
                  0.0, -demo.RESOLUTION, lat0 - SOUTH_OF_SN2_DEG - row * TILE * demo.RESOLUTION)


# ---------------------------------------------------------------------------------------------
# From a layout in metres to the labelled edges of one tile, in pixels


def _pixel_scale(aoi: str, index: int) -> tuple[float, float]:
    """Metres per pixel east-west and north-south at the tile's latitude."""
    transform = tile_transform(aoi, index)
    return spacenet.pixel_size_m(transform.f - TILE * demo.RESOLUTION / 2, demo.RESOLUTION)


def _layout_px(aoi: str, index: int, seed: int) -> tuple[list[RoadSegment], list[Polygon]]:
    """The city's roads and turning circles of one tile, in its pixel coordinates."""
    east_west, north_south = _pixel_scale(aoi, index)
    width, height = TILE * east_west, TILE * north_south
    segments, bulbs = ROAD_LAYOUTS[aoi](_rng(seed, aoi, index, 0), width, height)

    def to_px(geometry: shapely.Geometry) -> shapely.Geometry:
        return shapely.transform(geometry, lambda xy: xy / np.array([east_west, north_south]))

    return ([RoadSegment(to_px(s.line), s.road_type, s.lanes, s.paved, s.bridge_type)
             for s in segments], [to_px(b) for b in bulbs])


def tile_roads(aoi: str, index: int, seed: int) -> list[RoadSegment]:
    """The labelled roads of one tile: edges between junctions, cut at the tile edge, pixels.

    Empty for tiles without roads (index 3 modulo 7).
    """
    if index % EMPTY_EVERY == EMPTY_AT:
        return []
    segments, _ = _layout_px(aoi, index, seed)
    frame = box(0, 0, TILE, TILE)
    edges = []
    for segment in split_at_junctions(segments):
        for part in shapely.get_parts(segment.line.intersection(frame)):
            if part.geom_type == "LineString" and part.length >= 1.0:
                edges.append(RoadSegment(part, segment.road_type, segment.lanes, segment.paved,
                                         segment.bridge_type))
    return edges


# ---------------------------------------------------------------------------------------------
# Rendering


def render_road_tile(aoi: str, index: int, seed: int,
                     roads: list[RoadSegment] | None = None) -> np.ndarray:
    """Render one road tile as a (3, 1300, 1300) uint16 array of 11-bit values.

    Args:
        aoi: the full AOI name.
        index: the tile index (0-based).
        seed: the seed.
        roads: the tile's roads if already computed (:func:`tile_roads`).
    """
    roads = tile_roads(aoi, index, seed) if roads is None else roads
    transform = tile_transform(aoi, index)
    areas = road_areas(roads, transform)
    bulbs = [] if not roads else [b for b in _layout_px(aoi, index, seed)[1]
                                  if b.intersects(box(0, 0, TILE, TILE))]
    corridor = shapely.union_all([*areas, *bulbs]).buffer(6) if roads else Polygon()
    buildings = [] if not roads else _buildings(aoi, index, seed, corridor)
    image = _quadrants(aoi, index, seed, buildings)
    style = ROAD_STYLES[aoi]
    rng = _rng(seed, aoi, index, 2)
    ground = [i for i, r in enumerate(roads) if r.bridge_type != 1]
    for paved, colour in ((2, style.unpaved), (1, style.paved)):
        chosen = [areas[i] for i in ground if roads[i].paved == paved]
        chosen += bulbs if paved == 1 else []
        image = _paint(image, _burn(chosen), colour, rng)
    decks = [areas[i] for i, r in enumerate(roads) if r.bridge_type == 1]
    if decks:
        height_px = DECK_HEIGHT_M / _pixel_scale(aoi, index)[1]
        shadow = _burn([shapely.affinity.translate(d, *(SUN * height_px)) for d in decks])
        offset = demo.SENSOR_OFFSET
        image = np.where(shadow > 0, (image - offset) * 0.45 + offset, image)
        image = _paint(image, _burn(decks), style.deck, rng)
    return np.clip(image, 0, 2047).astype(np.uint16)


def road_areas(roads: list[RoadSegment], transform: Affine) -> list[shapely.Geometry]:
    """Each road's painted area in tile pixels: its centre line buffered in metres (UTM)."""
    if not roads:
        return []
    lines = np.array([_apply(transform, r.line) for r in roads], dtype=object)
    centre = transform * (TILE / 2, TILE / 2)
    metric = spacenet3.metric_crs(spacenet.WGS84, *centre)
    polygons = spacenet3.buffer_m(lines, spacenet.WGS84, [r.radius_m for r in roads], metric)
    return list(shapely.transform(polygons, lambda xy: _inverse(transform, xy)))


def _apply(transform: Affine, geometry: shapely.Geometry) -> shapely.Geometry:
    """Pixel to map coordinates, the arithmetic of the GeoJSON writer (exact node sharing)."""
    a, _, c, _, e, f = transform[:6]
    return shapely.transform(geometry, lambda xy: np.column_stack([c + a * xy[:, 0],
                                                                   f + e * xy[:, 1]]))


def _inverse(transform: Affine, xy: np.ndarray) -> np.ndarray:
    a, _, c, _, e, f = transform[:6]
    return np.column_stack([(xy[:, 0] - c) / a, (xy[:, 1] - f) / e])


def _burn(geometries: list) -> np.ndarray:
    """Rasterize pixel-coordinate geometries on the tile grid (pixel-centre rule)."""
    if not geometries:
        return np.zeros((TILE, TILE), dtype=np.uint8)
    return features.rasterize(((g, 1) for g in geometries), out_shape=(TILE, TILE),
                              dtype="uint8")


def _paint(image: np.ndarray, mask: np.ndarray, colour: tuple[float, float, float],
           rng: np.random.Generator) -> np.ndarray:
    """Paint a surface into an 11-bit image through the SN2 demo's sensor model (in place).

    The surface gets a per-surface tint, a 3 % texture, the optical blur at its edges and
    the sensor noise; only the pixels it reaches are touched.
    """
    if not mask.any():
        return image
    alpha = ndimage.gaussian_filter(mask.astype(np.float32), BLUR_SIGMA)
    rows, cols = np.nonzero(alpha > 1e-3)
    weight = alpha[rows, cols]
    visual = np.asarray(colour)[:, None] * rng.uniform(0.95, 1.05)
    texture = 1 + 0.03 * rng.normal(size=rows.size)
    surface = visual * texture * demo.SENSOR_GAIN[:, :, 0] + demo.SENSOR_OFFSET[:, :, 0]
    surface += rng.normal(0, NOISE_DN, size=surface.shape)
    image[:, rows, cols] = image[:, rows, cols] * (1 - weight) + surface * weight
    return image


def _buildings(aoi: str, index: int, seed: int, corridor: shapely.Geometry) -> list[Building]:
    """The SN2 city's buildings of the four quadrants, kept off the roads, in tile pixels.

    Each quadrant keeps the buildings whose centre lies in it; one that overlaps a building of
    an earlier quadrant (across a seam) is left out.
    """
    placed: list[Building] = []
    frame = box(0, 0, TILE, TILE)
    clip = ROAD_STYLES[aoi].clip_buildings
    for quadrant in range(4):
        row, col = divmod(quadrant, 2)
        earlier = shapely.STRtree([b.polygon for b in placed])
        home = box(0, 0, QUADRANT, QUADRANT)
        for building in LAYOUTS[aoi](_rng(seed, aoi, index, 10 + quadrant))[0]:
            if not home.contains(building.polygon.centroid):
                continue
            polygon = shapely.affinity.translate(building.polygon, col * QUADRANT,
                                                 row * QUADRANT).intersection(frame)
            if clip:
                polygon = polygon.difference(corridor)
            elif polygon.intersects(corridor):
                continue
            for part in shapely.get_parts(polygon):
                near = earlier.geometries.take(earlier.query(part, predicate="intersects"))
                if part.geom_type == "Polygon" and part.area >= 150 and \
                        not any(part.intersection(other).area > 1.0 for other in near):
                    placed.append(Building(part, building.roof, building.height))
    return placed


def _quadrants(aoi: str, index: int, seed: int, buildings: list[Building]) -> np.ndarray:
    """Ground, vegetation and buildings of the tile: four SN2 renders side by side (float)."""
    image = np.empty((3, TILE, TILE))
    for quadrant in range(4):
        row, col = divmod(quadrant, 2)
        reach = box(col * QUADRANT - 80, row * QUADRANT - 80, (col + 1) * QUADRANT + 80,
                    (row + 1) * QUADRANT + 80)
        local = [Building(shapely.affinity.translate(b.polygon, -col * QUADRANT,
                                                     -row * QUADRANT), b.roof, b.height)
                 for b in buildings if b.polygon.intersects(reach)]
        pixels = demo.render_tile(aoi, local, [], _rng(seed, aoi, index, 20 + quadrant))
        image[:, row * QUADRANT:(row + 1) * QUADRANT,
              col * QUADRANT:(col + 1) * QUADRANT] = pixels
    return image


# ---------------------------------------------------------------------------------------------
# Files


def _write_geojson(path: Path, roads: list[RoadSegment], transform: Affine,
                   speed: bool) -> None:
    """The tile's road labels: LineStrings in ``[lon, lat]``, attributes as in SpaceNet 3."""
    features_ = [{"type": "Feature", "properties": road.properties(i, speed),
                  "geometry": {"type": "LineString",
                               "coordinates": shapely.get_coordinates(
                                   _apply(transform, road.line)).tolist()}}
                 for i, road in enumerate(roads, start=1)]
    demo.write_feature_collection(path, features_)


def prepare_road_raw(profile: Profile, data_dir: str | Path) -> Path:
    """The raw folder with the profile's SpaceNet 3 AOIs under ``data_dir``: made if synthetic.

    The road AOIs share the raw folder with the SpaceNet 2 ones (their folder names differ).

    Raises:
        InputError: a ``full`` profile whose raw folder holds no SpaceNet 3 tiles.
    """
    raw = stage_paths(data_dir).raw
    if profile.synthetic:
        make_road_demo(raw, profile.road_tiles_per_aoi or 1, profile.seed, profile.aois)
    elif not raw.is_dir() or not spacenet3.find_aoi_dirs(raw):
        raise InputError(raw, "no SpaceNet 3 tiles here; download them first (aerialsam "
                              f"download --dataset roads --tiles N --dest {raw})")
    return raw
