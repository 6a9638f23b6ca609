"""Synthetic SpaceNet 2 AOIs in the real layout: the embedded data when there is no network.

:func:`make_demo` writes, for each of Vegas, Paris, Shanghai and Khartoum, tiles exactly like
the SpaceNet 2 training release: 650 x 650 three-band uint16 GeoTIFFs with 11-bit values in
EPSG:4326 at 2.7e-6 degree pixels, one building GeoJSON per tile with ``[lon, lat, 0]``
coordinates, and the AOI's summary CSV whose ``PolygonWKT_Pix`` is the GeoJSON in pixels.
Tiles sit next to each other on a grid inside the real city, so spatial splits make sense.

Everything is a function of ``(seed, AOI, tile index)``: a folder made with fewer tiles is a
prefix of one made with more, and a rerun skips the tiles already written. Tiles whose index
is 2 modulo 7 have no building, as some real tiles have none.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from scipy import ndimage
from shapely.geometry import Polygon, box

from aerialsam.config import Profile, stage_paths
from aerialsam.data import spacenet
from aerialsam.data.demo_layouts import LAYOUTS, TILE, Building, Road
from aerialsam.errors import InputError
from aerialsam.io import atomic_path, record_params, write_raster

log = logging.getLogger(__name__)

RESOLUTION = 2.7e-6
"""SpaceNet 2 pixel size in degrees (square in degrees, not in metres)."""
GRID_COLUMNS = 8
PARAMS_FILE = ".aerialsam-demo.json"
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class CityStyle:
    """Ground and land-cover colours (11-bit DN) and where the city's tile grid starts."""

    origin: tuple[float, float]
    ground: tuple[float, float, float]
    vegetation: tuple[float, float, float]
    road: tuple[float, float, float]
    green_fraction: float
    trees: int
    pitched: float


CITIES: dict[str, CityStyle] = {
    "AOI_2_Vegas": CityStyle((-115.2794, 36.1950), (600, 560, 480), (230, 300, 200),
                             (340, 330, 320), 0.12, 70, 0.8),
    "AOI_3_Paris": CityStyle((2.2530, 48.8730), (450, 450, 440), (200, 290, 190),
                             (330, 330, 340), 0.15, 40, 0.3),
    "AOI_4_Shanghai": CityStyle((121.4350, 31.2250), (420, 440, 420), (170, 260, 170),
                                (300, 300, 310), 0.45, 90, 0.0),
    "AOI_5_Khartoum": CityStyle((32.5350, 15.5650), (700, 600, 470), (330, 360, 250),
                                (780, 680, 540), 0.04, 15, 0.1),
}
"""Colours are in a visual RGB scale; :data:`SENSOR_GAIN` and :data:`SENSOR_OFFSET` map them
to WorldView-2 pan-sharpened DN, whose dark floor is high in green and blue (haze) as in the
real Vegas tiles (2-98 % of img1010: R 159-731, G 282-834, B 252-575)."""

SENSOR_GAIN = np.array([0.55, 0.55, 0.38])[:, None, None]
SENSOR_OFFSET = np.array([110.0, 240.0, 230.0])[:, None, None]


def make_demo(out_dir: str | Path, tiles_per_aoi: int = 10, seed: int = 0,
              aois: list[str] | tuple[str, ...] | None = None) -> list[Path]:
    """Write synthetic AOIs in the SpaceNet 2 layout; return the AOI folders.

    Args:
        out_dir: destination; AOI folders ``AOI_2_Vegas_Train`` … are made inside it.
        tiles_per_aoi: tiles per AOI (a folder that already holds more keeps them).
        seed: the seed every tile derives from.
        aois: AOIs to make (aliases or full names); all four by default.

    Raises:
        InputError: ``tiles_per_aoi`` < 1, or ``out_dir`` was made with another seed.
    """
    if tiles_per_aoi < 1:
        raise InputError("--tiles-per-aoi", f"must be at least 1, got {tiles_per_aoi}")
    names = [spacenet.resolve_aoi(a) for a in (aois or list(spacenet.AOI_NAMES))]
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a folder")
    _check_params(out_dir, seed)
    return [_make_aoi(out_dir, aoi, tiles_per_aoi, seed) for aoi in names]


def prepare_raw(profile: Profile, data_dir: str | Path) -> Path:
    """The raw folder (SpaceNet layout) of a profile under ``data_dir``, made if synthetic.

    For the synthetic profiles (``smoke``, ``demo``) the demo AOIs are written there (a no-op
    when present). For ``full`` the real tiles must have been downloaded there first
    (``aerialsam download``, or the download notebook).

    Raises:
        InputError: a ``full`` profile whose raw folder holds no tiles.
    """
    raw = stage_paths(data_dir).raw
    if profile.synthetic:
        make_demo(raw, profile.tiles_per_aoi or 10, profile.seed, profile.aois)
    elif not raw.is_dir() or not spacenet.find_aoi_dirs(raw):
        raise InputError(raw, "no SpaceNet 2 tiles here; download them first "
                              f"(aerialsam download --tiles N --dest {raw})")
    return raw


def _check_params(out_dir: Path, seed: int) -> None:
    """Refuse to mix tiles of two seeds, or demo and real tiles, in one folder."""
    if not (out_dir / PARAMS_FILE).exists() and out_dir.is_dir() \
            and spacenet.find_aoi_dirs(out_dir):
        raise InputError(out_dir, "holds SpaceNet data not made by `aerialsam demo` (real "
                                  "tiles?); write the demo AOIs to another folder")
    record_params(out_dir, PARAMS_FILE, {"seed": seed, "generator": GENERATOR_VERSION},
                  "demo data")


def _make_aoi(out_dir: Path, aoi: str, tiles_per_aoi: int, seed: int) -> Path:
    aoi_dir = out_dir / f"{aoi}_Train"
    existing = len(list((aoi_dir / spacenet.IMAGE_DIR).glob("*.tif")))
    rows = []
    for index in range(max(tiles_per_aoi, existing)):
        number = index + 1
        image_id = f"{aoi}_img{number}"
        image = aoi_dir / spacenet.IMAGE_DIR / f"RGB-PanSharpen_{image_id}.tif"
        labels = aoi_dir / spacenet.GEOJSON_DIR / f"buildings_{image_id}.geojson"
        buildings, roads = tile_layout(aoi, index, seed)
        transform = tile_transform(aoi, index)
        if not (image.exists() and labels.exists()):
            pixels = render_tile(aoi, buildings, roads, _rng(seed, aoi, index, 1))
            write_image(image, pixels, transform)
            _write_geojson(labels, [b.polygon for b in buildings], transform)
        rows += _csv_rows(image_id, [b.polygon for b in buildings], transform)
    with atomic_path(spacenet.summary_csv_path(aoi_dir)) as tmp:
        tmp.write_text("ImageId,BuildingId,PolygonWKT_Pix,PolygonWKT_Geo\n" + "".join(rows))
    log.info("demo AOI %s: %d tiles in %s", aoi, max(tiles_per_aoi, existing), aoi_dir)
    return aoi_dir


def _rng(seed: int, aoi: str, index: int, stream: int) -> np.random.Generator:
    aoi_number = int(aoi.split("_")[1])
    return np.random.default_rng([seed, aoi_number, index, stream])


def tile_transform(aoi: str, index: int) -> Affine:
    """The geotransform of demo tile ``index`` of ``aoi`` (tiles abut on a grid of 8 columns)."""
    lon0, lat0 = CITIES[aoi].origin
    row, col = divmod(index, GRID_COLUMNS)
    return Affine(RESOLUTION, 0.0, lon0 + col * TILE * RESOLUTION,
                  0.0, -RESOLUTION, lat0 - row * TILE * RESOLUTION)


def tile_layout(aoi: str, index: int, seed: int) -> tuple[list[Building], list[Road]]:
    """Buildings (clipped to the tile, coordinates on a 0.01 px grid) and roads of one tile."""
    buildings, roads = LAYOUTS[aoi](_rng(seed, aoi, index, 0))
    if index % 7 == 2:
        buildings = []
    frame = box(0, 0, TILE, TILE)
    clipped = []
    for building in buildings:
        for part in shapely.get_parts(_snap(building.polygon.intersection(frame))):
            if part.geom_type == "Polygon" and part.area >= 1.0:
                clipped.append(Building(part, building.roof, building.height))
    return clipped, roads


def _snap(geometry: Polygon) -> Polygon:
    """Round vertices to 0.01 px (as in the real CSVs), off pixel centres, and keep it valid.

    A vertex exactly on a pixel centre (x.50) could flip under the pixel-centre rule between
    the pixel and the geographic copy of a polygon; 0.51 keeps both rasterizations identical.
    """
    def snap(xy: np.ndarray) -> np.ndarray:
        rounded = np.round(xy, 2)
        centre = np.isclose(rounded % 1.0, 0.5)
        return np.where(centre, np.round(rounded + 0.01, 2), rounded)

    snapped = shapely.transform(geometry, snap)
    return snapped if snapped.is_valid else shapely.make_valid(snapped)


def render_tile(aoi: str, buildings: list[Building], roads: list[Road],
                rng: np.random.Generator) -> np.ndarray:
    """Render a tile as a (3, 650, 650) uint16 array of 11-bit values."""
    style = CITIES[aoi]
    image = _ground(style, rng)
    road_mask = _burn([r.line.buffer(r.width / 2, cap_style="flat") for r in roads])
    image = np.where(road_mask > 0, _tint(style.road, rng, 0.05), image)
    if buildings:
        image = _draw_buildings(image, buildings, style, rng)
    image = ndimage.gaussian_filter(image * SENSOR_GAIN + SENSOR_OFFSET, sigma=(0, 0.6, 0.6))
    image += rng.normal(0, 8, size=image.shape)
    return np.clip(image, 0, 2047).astype(np.uint16)


def _smooth_noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    """Zero-mean, unit-variance noise varying over roughly TILE / cells pixels."""
    coarse = rng.normal(size=(cells, cells))
    field = ndimage.zoom(coarse, TILE / cells, order=3)[:TILE, :TILE]
    return (field - field.mean()) / (field.std() + 1e-9)


def _tint(colour: tuple[float, float, float], rng: np.random.Generator,
          spread: float) -> np.ndarray:
    return (np.asarray(colour) * rng.uniform(1 - spread, 1 + spread))[:, None, None]


def _ground(style: CityStyle, rng: np.random.Generator) -> np.ndarray:
    """Bare ground with low-frequency tone changes, vegetation patches and trees."""
    tone = 1 + 0.06 * _smooth_noise(rng, 9) + 0.04 * rng.normal(size=(TILE, TILE))
    image = _tint(style.ground, rng, 0.06) * tone
    field = _smooth_noise(rng, 14)
    green = field > np.quantile(field, 1 - style.green_fraction)
    trees = [shapely.Point(rng.uniform(0, TILE, 2)).buffer(rng.uniform(3, 9))
             for _ in range(style.trees)]
    green |= _burn(trees).astype(bool)
    leaf = _tint(style.vegetation, rng, 0.08) * (1 + 0.12 * rng.normal(size=(TILE, TILE)))
    return np.where(green, leaf, image)


def _burn(geometries: list, values: list[float] | None = None,
          dtype: str = "uint8") -> np.ndarray:
    """Rasterize pixel-coordinate geometries on the tile grid (pixel-centre rule)."""
    if not geometries:
        return np.zeros((TILE, TILE), dtype=dtype)
    shapes = zip(geometries, values or [1] * len(geometries), strict=True)
    return features.rasterize(shapes, out_shape=(TILE, TILE), dtype=dtype)


def _draw_buildings(image: np.ndarray, buildings: list[Building], style: CityStyle,
                    rng: np.random.Generator) -> np.ndarray:
    """Shadows cast to the north-west, then roofs (pitched ones lit on one side), then eaves."""
    # A prism's shadow is its footprint swept along the sun direction up to its height.
    sun = np.array([-0.45, -0.75])
    shadow = np.zeros((TILE, TILE), dtype=bool)
    for step in np.linspace(0.15, 1.0, 7):
        shadow |= _burn([shapely.affinity.translate(b.polygon, *(sun * b.height * step))
                         for b in buildings]).astype(bool)
    image = image * np.where(shadow, 0.45, 1.0)
    ids = _burn([b.polygon for b in buildings], list(range(1, len(buildings) + 1)), "int32")
    colours = np.vstack([np.zeros(3)] + [np.asarray(b.roof) for b in buildings])
    roofs = np.moveaxis(colours[ids], -1, 0)
    pitched = [b for b in buildings if rng.random() < style.pitched]
    lit = _burn([_sunlit_half(b.polygon) for b in pitched])
    roofs *= np.where(lit, 1.12, 1.0) * (1 + 0.03 * rng.normal(size=(TILE, TILE)))
    image = np.where(ids > 0, roofs, image)
    eaves = _burn([b.polygon.exterior for b in buildings])
    return image * np.where((eaves > 0) & (ids > 0), 0.85, 1.0)


def _sunlit_half(polygon: Polygon) -> Polygon:
    """The half of a roof on the south-east side of its long axis (a pitched roof's lit slope)."""
    rect = np.asarray(polygon.minimum_rotated_rectangle.exterior.coords)[:4]
    edges = np.diff(np.vstack([rect, rect[:1]]), axis=0)
    long_edge = edges[np.argmax(np.hypot(*edges.T))]
    normal = np.array([-long_edge[1], long_edge[0]])
    if normal @ np.array([1.0, 1.0]) < 0:
        normal = -normal
    centre = np.asarray(polygon.centroid.coords[0])
    far = 1e3 * long_edge / (np.hypot(*long_edge) + 1e-9)
    side = 1e3 * normal / (np.hypot(*normal) + 1e-9)
    plane = Polygon([centre - far, centre + far, centre + far + side, centre - far + side])
    return polygon.intersection(plane)


def write_image(path: Path, pixels: np.ndarray, transform: Affine) -> None:
    """Write a (3, rows, columns) uint16 tile as SpaceNet's GeoTIFFs are, atomically."""
    profile = {"driver": "GTiff", "dtype": "uint16", "count": 3, "width": pixels.shape[2],
               "height": pixels.shape[1], "crs": "EPSG:4326", "transform": transform,
               "interleave": "pixel"}
    write_raster(path, pixels, **profile)


def _apply(transform: Affine | None, coords: object) -> np.ndarray:
    """Coordinates (n, 2) mapped through an affine transform (unchanged when it is None)."""
    xy = np.asarray(coords, dtype=float)[:, :2]
    if transform is None:
        return xy
    a, b, c, d, e, f = transform[:6]
    return np.column_stack([a * xy[:, 0] + b * xy[:, 1] + c, d * xy[:, 0] + e * xy[:, 1] + f])


def _geo_rings(polygon: Polygon, transform: Affine) -> list[list[list[float]]]:
    rings = [polygon.exterior, *polygon.interiors]
    return [[[x, y, 0] for x, y in _apply(transform, ring.coords).tolist()] for ring in rings]


def _write_geojson(path: Path, polygons: list[Polygon], transform: Affine) -> None:
    features_ = [{"type": "Feature",
                  "properties": {"building_id": i, "partialBuilding": int(_touches_edge(p))},
                  "geometry": {"type": "Polygon", "coordinates": _geo_rings(p, transform)}}
                 for i, p in enumerate(polygons, start=1)]
    write_feature_collection(path, features_)


def write_feature_collection(path: Path, features_: list[dict]) -> None:
    """Write GeoJSON features in WGS84 as SpaceNet's label files are written, atomically."""
    document = {"type": "FeatureCollection", "name": path.stem,
                "crs": {"type": "name",
                        "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
                "features": features_}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document))


def _touches_edge(polygon: Polygon) -> bool:
    minx, miny, maxx, maxy = polygon.bounds
    return minx <= 0 or miny <= 0 or maxx >= TILE or maxy >= TILE


def _wkt(polygon: Polygon, transform: Affine | None) -> str:
    """WKT in the SpaceNet CSV style: ``POLYGON ((x y 0,x y 0,…))``."""
    rings = []
    for ring in [polygon.exterior, *polygon.interiors]:
        points = _apply(transform, ring.coords).tolist()
        rings.append("(" + ",".join(f"{x!r} {y!r} 0" for x, y in points) + ")")
    return "POLYGON (" + ",".join(rings) + ")"


def _csv_rows(image_id: str, polygons: list[Polygon], transform: Affine) -> list[str]:
    if not polygons:
        return [f"{image_id},-1,POLYGON EMPTY,POLYGON EMPTY\n"]
    return [f'{image_id},{i},"{_wkt(p, None)}","{_wkt(p, transform)}"\n'
            for i, p in enumerate(polygons, start=1)]
