"""The SpaceNet 2 layout: AOI names, image ids, tile and label paths, label readers.

Real downloads and the synthetic demo AOIs share one layout (see DESIGN.md)::

    AOI_2_Vegas_Train/RGB-PanSharpen/RGB-PanSharpen_AOI_2_Vegas_img{N}.tif
    AOI_2_Vegas_Train/geojson/buildings/buildings_AOI_2_Vegas_img{N}.geojson
    AOI_2_Vegas_Train/summaryData/AOI_2_Vegas_Train_Building_Solutions.csv

Labels come back as GeoDataFrames, either in the tile's CRS or in pixel coordinates
(x = column, y = row, origin at the top-left corner of the top-left pixel), which is the
convention of ``PolygonWKT_Pix`` and of the SpaceNet metric. The readers of label files
(:func:`read_geojson`, :func:`read_summary_csv`) live in :mod:`aerialsam.data.labels` and are
importable from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import CRS

from aerialsam.data.labels import (
    MAX_DEGREES,
    WGS84,
    first_row,
    read_geojson,
    read_summary_csv,
)
from aerialsam.errors import InputError
from aerialsam.io import open_raster

__all__ = ["AOI_NAMES", "CITY_NAMES", "MAX_DEGREES", "WGS84", "Tile", "aoi_summary",
           "building_table", "find_aoi_dirs", "find_tiles", "first_row", "image_id",
           "parse_image_id", "pixel_size_m", "read_geojson", "read_summary_csv",
           "read_tile_labels", "resolve_aoi", "summary_csv_path", "tile_at", "to_geo",
           "to_pixel"]

AOI_NAMES: dict[str, str] = {
    "vegas": "AOI_2_Vegas",
    "paris": "AOI_3_Paris",
    "shanghai": "AOI_4_Shanghai",
    "khartoum": "AOI_5_Khartoum",
}
"""Short alias -> full AOI name, in AOI order."""

CITY_NAMES: dict[str, str] = {
    "AOI_2_Vegas": "Las Vegas",
    "AOI_3_Paris": "Paris",
    "AOI_4_Shanghai": "Shanghai",
    "AOI_5_Khartoum": "Khartoum",
}

IMAGE_DIR = "RGB-PanSharpen"
GEOJSON_DIR = Path("geojson") / "buildings"
SUMMARY_DIR = "summaryData"

_IMAGE_ID = re.compile(r"(AOI_\d+_[A-Za-z]+)_(?:[A-Za-z0-9-]+_)*img(\d+)")
_AOI_DIR = re.compile(r"^(AOI_\d+_[A-Za-z]+)_(Train|Test_public|Test)$")


@dataclass(frozen=True)
class Tile:
    """One SpaceNet tile: its image and, for training tiles, its label file (buildings or roads)."""

    aoi: str
    number: int
    image_path: Path
    geojson_path: Path | None

    @property
    def image_id(self) -> str:
        """The competition's image id, e.g. ``AOI_2_Vegas_img1010``."""
        return f"{self.aoi}_img{self.number}"


def resolve_aoi(name: str) -> str:
    """Full AOI name for an alias (``vegas``), a full name or an AOI folder name.

    Raises:
        InputError: the name is none of the four SpaceNet 2 AOIs.
    """
    key = name.strip()
    if key.lower() in AOI_NAMES:
        return AOI_NAMES[key.lower()]
    for full in AOI_NAMES.values():
        if key == full or key.startswith(full + "_"):
            return full
    raise InputError("aoi", f"unknown AOI {name!r}; use one of {', '.join(AOI_NAMES)}")


def parse_image_id(name: str | Path) -> tuple[str, int]:
    """Split a file name or image id into ``(aoi, tile number)``.

    Accepts ``RGB-PanSharpen_AOI_2_Vegas_img1010.tif``, ``buildings_AOI_2_Vegas_img1010.geojson``,
    ``SN2_buildings_train_AOI_2_Vegas_PS-RGB_img1010.tif`` and ``AOI_2_Vegas_img1010``.

    Raises:
        InputError: no SpaceNet image id in the name.
    """
    match = _IMAGE_ID.search(Path(name).name)
    if match is None:
        raise InputError(name, "no SpaceNet image id (AOI_<n>_<City>_img<N>) in the name")
    return match.group(1), int(match.group(2))


def image_id(name: str | Path) -> str:
    """The image id (``AOI_2_Vegas_img1010``) of a tile file name or id."""
    aoi, number = parse_image_id(name)
    return f"{aoi}_img{number}"


def find_aoi_dirs(root: str | Path) -> list[Path]:
    """AOI folders (``AOI_2_Vegas_Train`` …) at ``root`` or directly below it, in AOI order.

    Raises:
        InputError: ``root`` does not exist.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "folder not found")
    if _AOI_DIR.match(root.name):
        return [root]
    return sorted((p for p in root.iterdir() if p.is_dir() and _AOI_DIR.match(p.name)),
                  key=lambda p: p.name)


def find_tiles(root: str | Path, aoi: str | None = None) -> list[Tile]:
    """All tiles under ``root`` (an AOI folder or a folder of them), sorted by AOI and number.

    Args:
        root: a data folder in the SpaceNet 2 layout.
        aoi: keep only this AOI (alias or full name).

    Raises:
        InputError: ``root`` is missing or holds no SpaceNet 2 AOI folder.
    """
    aoi_dirs = find_aoi_dirs(root)
    if not aoi_dirs:
        raise InputError(root, "no SpaceNet 2 AOI folder (e.g. AOI_2_Vegas_Train) found here")
    wanted = resolve_aoi(aoi) if aoi else None
    tiles = []
    for aoi_dir in aoi_dirs:
        aoi_name = _AOI_DIR.match(aoi_dir.name).group(1)
        if wanted and aoi_name != wanted:
            continue
        tiles.extend(tile_at(image) for image in (aoi_dir / IMAGE_DIR).glob("*.tif"))
    return sorted(tiles, key=lambda t: (t.aoi, t.number))


def tile_at(image_path: str | Path) -> Tile:
    """The tile of one image of an AOI folder (``<AOI folder>/RGB-PanSharpen/<image>.tif``).

    Its label file comes with it when there is one; the folder is not listed.

    Raises:
        InputError: no SpaceNet image id in the file name.
    """
    image_path = Path(image_path)
    name, number = parse_image_id(image_path)
    label = image_path.parents[1] / GEOJSON_DIR / f"buildings_{name}_img{number}.geojson"
    return Tile(name, number, image_path, label if label.exists() else None)


def summary_csv_path(aoi_dir: str | Path) -> Path:
    """The summary CSV of an AOI folder: ``summaryData/<folder>_Building_Solutions.csv``."""
    aoi_dir = Path(aoi_dir)
    return aoi_dir / SUMMARY_DIR / f"{aoi_dir.name}_Building_Solutions.csv"


def to_pixel(frame: gpd.GeoDataFrame, transform: Affine) -> gpd.GeoDataFrame:
    """Map geometries from map coordinates to pixel coordinates with a raster's transform."""
    inverse = ~transform
    matrix = np.array([[inverse.a, inverse.b], [inverse.d, inverse.e]])
    offset = np.array([inverse.c, inverse.f])
    pixel = frame.copy()
    pixel.geometry = shapely.transform(frame.geometry.values, lambda xy: xy @ matrix.T + offset)
    return pixel.set_crs(None, allow_override=True)


def to_geo(frame: gpd.GeoDataFrame, transform: Affine, crs: CRS | str) -> gpd.GeoDataFrame:
    """Map geometries from pixel to map coordinates (the inverse of :func:`to_pixel`)."""
    matrix = np.array([[transform.a, transform.b], [transform.d, transform.e]])
    offset = np.array([transform.c, transform.f])
    geo = frame.copy()
    geo.geometry = shapely.transform(frame.geometry.values, lambda xy: xy @ matrix.T + offset)
    return geo.set_crs(crs, allow_override=True)


def read_tile_labels(tile: Tile, pixel: bool = False) -> gpd.GeoDataFrame:
    """A tile's buildings from its GeoJSON, in the tile's CRS or in pixel coordinates.

    Raises:
        InputError: the tile has no label file, or the image or labels cannot be read.
    """
    if tile.geojson_path is None:
        raise InputError(tile.image_path, "no building GeoJSON for this tile (a test tile?)")
    with open_raster(tile.image_path) as src:
        crs, transform = src.crs, src.transform
    labels = read_geojson(tile.geojson_path, crs=crs)
    return to_pixel(labels, transform) if pixel else labels


def pixel_size_m(latitude: float, resolution_deg: float = 2.7e-6) -> tuple[float, float]:
    """Ground size (east-west, north-south) in metres of a pixel square in degrees.

    SpaceNet 2 pixels are 2.7e-6 degrees on both axes: about 0.30 m north-south everywhere,
    and 0.30 m times cos(latitude) east-west (0.24 m in Vegas, 0.20 m in Paris).
    """
    metres_per_degree = 111_320.0
    north_south = resolution_deg * metres_per_degree
    return north_south * float(np.cos(np.radians(latitude))), north_south


def building_table(root: str | Path) -> pd.DataFrame:
    """One row per building of every AOI under ``root``.

    Labels come from each AOI's summary CSV, or from the tiles' GeoJSON files where there is
    none (a per-tile download). Columns: ``aoi``, ``image_id``, ``area_px`` and ``area_m2``
    (with the pixel size at the AOI's latitude). Tiles without buildings give no row;
    :func:`aoi_summary` counts them.
    """
    frames = []
    for aoi_dir in find_aoi_dirs(root):
        tiles = find_tiles(aoi_dir)
        if not tiles:
            continue
        with open_raster(tiles[0].image_path) as src:
            east_west, north_south = pixel_size_m((src.bounds.bottom + src.bounds.top) / 2)
        ids, areas = _pixel_areas(aoi_dir, tiles)
        frames.append(pd.DataFrame({"aoi": tiles[0].aoi, "image_id": ids, "area_px": areas,
                                    "area_m2": areas * east_west * north_south}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["aoi", "image_id", "area_px", "area_m2"])


def _pixel_areas(aoi_dir: Path, tiles: list[Tile]) -> tuple[np.ndarray, np.ndarray]:
    """Image id and pixel area of every building of an AOI (summary CSV, else GeoJSONs)."""
    csv_path = summary_csv_path(aoi_dir)
    if csv_path.exists():
        labels = read_summary_csv(csv_path)
        return labels.ImageId.to_numpy(), labels.geometry.area.to_numpy()
    ids: list[str] = []
    areas: list[float] = []
    for tile in tiles:
        if tile.geojson_path is not None:
            frame = read_tile_labels(tile, pixel=True)
            ids += [tile.image_id] * len(frame)
            areas += frame.geometry.area.tolist()
    return np.array(ids, dtype=object), np.array(areas, dtype=float)


def aoi_summary(root: str | Path) -> pd.DataFrame:
    """Per-AOI table: tiles, tiles without buildings, buildings, building-size quantiles (m²)."""
    buildings = building_table(root)
    rows = []
    for aoi_dir in find_aoi_dirs(root):
        aoi = _AOI_DIR.match(aoi_dir.name).group(1)
        tiles = find_tiles(aoi_dir)
        areas = buildings.loc[buildings.aoi == aoi, "area_m2"]
        with_buildings = set(buildings.loc[buildings.aoi == aoi, "image_id"])
        rows.append({"city": CITY_NAMES.get(aoi, aoi), "aoi": aoi, "tiles": len(tiles),
                     "empty tiles": sum(t.image_id not in with_buildings for t in tiles),
                     "buildings": len(areas),
                     "buildings per tile": round(len(areas) / max(len(tiles), 1), 1),
                     "area p10 (m²)": round(float(areas.quantile(0.1)), 1) if len(areas) else 0.0,
                     "median area (m²)": round(float(areas.median()), 1) if len(areas) else 0.0,
                     "area p90 (m²)": round(float(areas.quantile(0.9)), 1) if len(areas) else 0.0})
    return pd.DataFrame(rows).set_index("city")
