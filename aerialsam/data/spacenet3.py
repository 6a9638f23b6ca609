"""The SpaceNet 3 (roads) layout: AOI folders, tile and label paths, road label readers.

SpaceNet 3 cuts the same WorldView-3 imagery as SpaceNet 2 into 1300 x 1300 tiles. Real
downloads and the synthetic road cities share one layout (see DESIGN.md)::

    SN3_roads_train_AOI_2_Vegas/PS-RGB/SN3_roads_train_AOI_2_Vegas_PS-RGB_img{N}.tif
    SN3_roads_train_AOI_2_Vegas/geojson_roads/SN3_roads_train_AOI_2_Vegas_geojson_roads_img{N}.geojson
    SN3_roads_train_AOI_2_Vegas/geojson_roads_speed/…_geojson_roads_speed_img{N}.geojson

The public test folders (``SN3_roads_test_public_AOI_2_Vegas``) hold images only. Labels are
LineStrings in WGS84 with ``road_type`` (1 motorway … 7 cart track), ``lane_number``,
``paved`` (1 paved, 2 unpaved), ``bridge_type`` (1 bridge, 2 not) and, in the speed labels,
``inferred_speed_mph``. Image ids are the competition's: ``AOI_2_Vegas_img{N}``. The real files
store the four codes as strings (``"road_type": "5"``); :func:`road_codes` reads them as
integers. The competition CSVs (``ImageId,WKT_Pix``, pixel coordinates, ``LINESTRING EMPTY``
for a tile without roads) are read by :func:`read_road_csv`.

SpaceNet pixels are square in degrees, not in metres, so anything measured in metres (a road
width, a buffer) is made in a metric CRS: the data's own CRS when it is projected in metres,
else the local UTM zone (:func:`metric_crs`, :func:`buffer_m`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from aerialsam.data.spacenet import (
    AOI_NAMES,
    WGS84,
    Tile,
    read_geojson,
    resolve_aoi,
    to_pixel,
)
from aerialsam.errors import InputError
from aerialsam.inputs import Column, parse_wkt, read_table, row_source
from aerialsam.io import open_raster

TILE_SIDE = 1300
"""Side of a SpaceNet 3 tile in pixels (SpaceNet 2 tiles of the same imagery are 650)."""
IMAGE_DIR = "PS-RGB"
GEOJSON_DIR = "geojson_roads"
SPEED_DIR = "geojson_roads_speed"
SPLIT_PREFIX = {"train": "SN3_roads_train", "test": "SN3_roads_test_public"}
"""Folder and file prefix of each split."""
ROAD_TYPES: dict[int, str] = {1: "motorway", 2: "primary", 3: "secondary", 4: "tertiary",
                              5: "residential", 6: "unclassified", 7: "cart track"}
"""SpaceNet 3's ``road_type`` codes."""
ATTRIBUTES = ("road_type", "lane_number", "paved", "bridge_type", "inferred_speed_mph")
"""Road attributes the labels carry (the last only in the speed labels)."""
CODES = ("road_type", "lane_number", "paved", "bridge_type")
"""The integer codes among :data:`ATTRIBUTES` (strings in the real GeoJSON files)."""
CSV_COLUMN = "WKT_Pix"
"""The geometry column of the competition's road CSVs (pixel coordinates)."""
_LINES = ("LineString", "MultiLineString")
_TYPE_SPEED_MPH = {3: 30.0, 4: 25.0, 5: 25.0, 6: 20.0, 7: 15.0}

_AOI_DIR = re.compile(r"^(SN3_roads_train|SN3_roads_test_public)_(AOI_\d+_[A-Za-z]+)$")
_IMAGE = re.compile(r"_(AOI_\d+_[A-Za-z]+)_PS-RGB_img(\d+)\.tif$")


def aoi_dir_name(aoi: str, split: str = "train") -> str:
    """The folder of one AOI and split, e.g. ``SN3_roads_train_AOI_2_Vegas``.

    Raises:
        InputError: an unknown AOI or split.
    """
    if split not in SPLIT_PREFIX:
        raise InputError("--split", f"unknown split {split!r}; use train or test")
    return f"{SPLIT_PREFIX[split]}_{resolve_aoi(aoi)}"


def image_path(aoi_dir: Path, number: int) -> Path:
    """The image of tile ``number`` in an AOI folder."""
    return aoi_dir / IMAGE_DIR / f"{aoi_dir.name}_{IMAGE_DIR}_img{number}.tif"


def geojson_path(aoi_dir: Path, number: int, speed: bool = False) -> Path:
    """The road labels of tile ``number`` in an AOI folder (with speeds when ``speed``)."""
    folder = SPEED_DIR if speed else GEOJSON_DIR
    return aoi_dir / folder / f"{aoi_dir.name}_{folder}_img{number}.geojson"


def find_aoi_dirs(root: str | Path) -> list[Path]:
    """The SpaceNet 3 AOI folders under ``root`` (or ``root`` itself), in AOI order."""
    root = Path(root)
    candidates = [root] if _AOI_DIR.match(root.name) else sorted(root.iterdir()) \
        if root.is_dir() else []
    found = [p for p in candidates if p.is_dir() and _AOI_DIR.match(p.name)]
    order = list(AOI_NAMES.values())
    return sorted(found, key=lambda p: (order.index(_AOI_DIR.match(p.name).group(2))
                                        if _AOI_DIR.match(p.name).group(2) in order else 99,
                                        p.name))


def find_road_tiles(root: str | Path, aoi: str | None = None) -> list[Tile]:
    """Every SpaceNet 3 tile under ``root``, by AOI then tile number.

    Args:
        root: a folder of AOI folders, or one AOI folder.
        aoi: keep one AOI only (alias or full name).

    Raises:
        InputError: ``root`` holds no SpaceNet 3 AOI folder.
    """
    dirs = find_aoi_dirs(root)
    if not dirs:
        raise InputError(root, "no SpaceNet 3 AOI folder (SN3_roads_train_AOI_*) here")
    wanted = resolve_aoi(aoi) if aoi else None
    tiles = []
    for aoi_dir in dirs:
        tiles.extend(t for t in (road_tile_at(p) for p in (aoi_dir / IMAGE_DIR).glob("*.tif"))
                     if wanted is None or t.aoi == wanted)
    return sorted(tiles, key=lambda t: (list(AOI_NAMES.values()).index(t.aoi), t.number))


def road_tile_at(path: str | Path) -> Tile:
    """The tile of an image in the SpaceNet 3 layout; its labels when the folder has them.

    Raises:
        InputError: the file is not named like a SpaceNet 3 image.
    """
    path = Path(path)
    match = _IMAGE.search(path.name)
    if match is None:
        raise InputError(path, "not a SpaceNet 3 image name (…_AOI_N_City_PS-RGB_img{N}.tif)")
    number = int(match.group(2))
    labels = geojson_path(path.parent.parent, number)
    return Tile(match.group(1), number, path, labels if labels.exists() else None)


def read_road_geojson(path: str | Path, crs: CRS | str | None = WGS84) -> gpd.GeoDataFrame:
    """Road centre lines of a GeoJSON as single LineStrings in WGS84, with their attributes.

    MultiLineStrings are split into their parts (each keeps the feature's attributes); an
    empty file gives an empty frame.

    Args:
        path: the GeoJSON file (WGS84, or any CRS named by a legacy ``crs`` member).
        crs: the CRS to return the lines in (WGS84 by default; ``None`` keeps the file's).

    Raises:
        InputError: a feature that is not a line (a polygon where roads are expected), or an
            unreadable file; the message names the file and the feature.
    """
    frame = read_geojson(path, crs=crs, shapes="lines")
    if frame.empty:
        return frame
    lines = frame.explode(index_parts=False, ignore_index=True)
    return lines[shapely.length(lines.geometry.array) > 0].reset_index(drop=True)


def read_road_labels(tile: Tile, pixel: bool = False) -> gpd.GeoDataFrame:
    """A tile's road centre lines, in WGS84 or in pixel coordinates of its image.

    Raises:
        InputError: a tile without labels (a test tile) or an unreadable label file.
    """
    if tile.geojson_path is None:
        raise InputError(tile.image_path, "no road labels beside this image (a test tile?)")
    lines = read_road_geojson(tile.geojson_path)
    if not pixel:
        return lines
    with open_raster(tile.image_path) as src:
        return to_pixel(lines, src.transform)


def read_road_csv(path: str | Path) -> gpd.GeoDataFrame:
    """Road centre lines of a competition CSV (``ImageId,WKT_Pix``), in pixel coordinates.

    One row per LineString (MultiLineStrings are split, zero-length lines dropped); rows
    ``ImageId,LINESTRING EMPTY`` give no row, but every image id of the file, with roads or
    not, is listed in ``frame.attrs["image_ids"]``. Z coordinates are dropped.

    Raises:
        InputError: a missing file or column, an unparsable WKT, or a geometry that is not a
            line (a building CSV given as roads); the message names the file and the line.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    table = read_table(path, [Column("ImageId"), Column(CSV_COLUMN, required=False,
                                                        nullable=True)])
    if CSV_COLUMN not in table.columns:
        hint = "; building polygons, not roads?" if "PolygonWKT_Pix" in table.columns else ""
        raise InputError(path, f"missing column {CSV_COLUMN!r} (found {list(table.columns)})"
                               f"{hint}")
    wkt = table[CSV_COLUMN].str.strip()
    empty = (wkt.str.upper().str.endswith("EMPTY") | (wkt == "")).to_numpy()
    rows = np.flatnonzero(~empty)
    geoms = parse_wkt(wkt.to_numpy()[rows], CSV_COLUMN, lambda i: row_source(path, int(rows[i])))
    kinds = shapely.get_type_id(geoms)
    if not np.isin(kinds, [1, 5]).all():  # LineString, MultiLineString
        first = int(np.flatnonzero(~np.isin(kinds, [1, 5]))[0])
        raise InputError(row_source(path, int(rows[first])), f"expected road LineStrings, "
                                                             f"found {geoms[first].geom_type}")
    frame = gpd.GeoDataFrame({"ImageId": table["ImageId"].to_numpy()[rows]},
                             geometry=gpd.GeoSeries(shapely.force_2d(geoms)))
    frame = frame.explode(index_parts=False, ignore_index=True)
    frame = frame[shapely.length(frame.geometry.array) > 0].reset_index(drop=True)
    frame.attrs["image_ids"] = list(dict.fromkeys(table["ImageId"]))
    return frame


def road_codes(frame: pd.DataFrame) -> pd.DataFrame:
    """The integer codes (:data:`CODES`) of road labels; missing or unreadable values are <NA>.

    The real GeoJSON files store the codes as strings (``"5"``); this reads either form.
    Columns the labels lack are all <NA>.
    """
    codes = {}
    for name in CODES:
        values = frame[name] if name in frame else pd.Series(pd.NA, index=frame.index)
        codes[name] = pd.to_numeric(values, errors="coerce").round().astype("Int64")
    return pd.DataFrame(codes, index=frame.index)


def inferred_speed_mph(road_type: int, lanes: int, paved: int = 1, bridge_type: int = 2) -> float:
    """The speed SpaceNet's speed labels infer for a road (``inferred_speed_mph``).

    A speed per road type, by lane count for motorways (45, 50, 55, then 65 mph from four
    lanes) and primary roads (35, 40, then 45 mph), halved on unpaved roads and times 0.8 on
    bridges: the inference of CRESI, which made SpaceNet's speed labels.
    """
    lanes = max(int(lanes), 1)
    if road_type == 1:
        speed = (45.0, 50.0, 55.0, 65.0)[min(lanes, 4) - 1]
    elif road_type == 2:
        speed = (35.0, 40.0, 45.0)[min(lanes, 3) - 1]
    else:
        speed = _TYPE_SPEED_MPH.get(int(road_type), 20.0)
    return speed * (0.5 if paved == 2 else 1.0) * (0.8 if bridge_type == 1 else 1.0)


# ---------------------------------------------------------------------------------------------
# Metres: road widths and buffers are made in a metric CRS


def is_metric(crs: CRS | str) -> bool:
    """Whether ``crs`` is projected with both axes in metres."""
    crs = CRS.from_user_input(crs)
    return crs.is_projected and all(axis.unit_name in ("metre", "meter")
                                    for axis in crs.axis_info[:2])


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 UTM zone holding a point (EPSG:326NN north of the equator, 327NN south)."""
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def metric_crs(crs: CRS | str, x: float, y: float) -> CRS:
    """A CRS in metres for data in ``crs`` around ``(x, y)``.

    ``crs`` itself when it is projected in metres, else the UTM zone of the point.

    Raises:
        InputError: the point has no WGS84 position (it lies outside the CRS's domain).
    """
    crs = CRS.from_user_input(crs)
    if is_metric(crs):
        return crs
    lon, lat = Transformer.from_crs(crs, WGS84, always_xy=True).transform(x, y)
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise InputError(crs.to_string(), f"point ({x}, {y}) has no WGS84 position")
    return utm_crs(float(lon), float(lat))


def reproject(geometries: Sequence[shapely.Geometry] | np.ndarray, source: CRS | str,
              target: CRS | str) -> np.ndarray:
    """Geometries mapped vertex by vertex from ``source`` to ``target`` (an object array)."""
    geoms = np.asarray(geometries, dtype=object)
    source, target = CRS.from_user_input(source), CRS.from_user_input(target)
    if geoms.size == 0 or source.equals(target):
        return geoms
    transformer = Transformer.from_crs(source, target, always_xy=True)

    def move(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(geoms, move)


def buffer_m(lines: Sequence[shapely.Geometry] | np.ndarray, crs: CRS | str,
             radius_m: float | Sequence[float] | np.ndarray, metric: CRS | None = None,
             quad_segs: int = 8) -> np.ndarray:
    """Lines of ``crs`` grown by ``radius_m`` metres on each side (round ends), back in ``crs``.

    The buffer is made in ``metric`` (default: :func:`metric_crs` at the centre of the
    lines), so that a road is as wide east-west as north-south on the ground whatever the
    pixels of ``crs`` measure.

    Args:
        lines: geometries in ``crs`` (road centre lines).
        crs: their CRS.
        radius_m: the radius in metres, one for all or one per geometry.
        metric: the metric CRS to buffer in.
        quad_segs: segments per quarter circle of the round ends and joins.

    Returns:
        An object array of polygons in ``crs``, one per line.
    """
    geoms = np.asarray(lines, dtype=object)
    if geoms.size == 0:
        return geoms
    if metric is None:
        minx, miny, maxx, maxy = shapely.total_bounds(geoms)
        metric = metric_crs(crs, (minx + maxx) / 2, (miny + maxy) / 2)
    grown = shapely.buffer(reproject(geoms, crs, metric), np.asarray(radius_m, dtype=float),
                           quad_segs=quad_segs)
    return reproject(grown, metric, crs)
