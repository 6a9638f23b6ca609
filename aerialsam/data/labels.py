"""Label files of both datasets read and checked: GeoJSON features and SpaceNet CSVs.

:func:`read_geojson` reads building polygons or road lines from GeoJSON in any CRS;
:func:`read_summary_csv` reads the competition's CSVs (``PolygonWKT_Pix``, pixel coordinates).
Both go through :mod:`aerialsam.inputs` first (the encoding rule, the feature and WKT checks,
the typed table), so that a bad label file is refused with one line naming the file and the
feature or line. :mod:`aerialsam.data.spacenet` re-exports them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from aerialsam.errors import InputError
from aerialsam.inputs import (
    Column,
    open_text,
    parse_wkt,
    read_feature_collection,
    read_table,
    row_source,
)

WGS84 = CRS.from_epsg(4326)
MAX_DEGREES = 360.0
"""The largest absolute coordinate a label in a geographic CRS may have."""

_SHAPES = {"polygons": (("Polygon", "MultiPolygon"), "building polygons"),
           "lines": (("LineString", "MultiLineString"), "road LineStrings")}


def read_geojson(path: str | Path, crs: CRS | str | None = None,
                 shapes: str = "polygons") -> gpd.GeoDataFrame:
    """Read a label GeoJSON as 2-D geometries, reprojected to ``crs`` when given.

    A GeoJSON without a ``crs`` member is WGS84 (RFC 7946); one with a legacy ``crs`` member
    in another CRS is reprojected. An empty FeatureCollection gives an empty GeoDataFrame.
    Every feature is checked before GDAL reads it (:func:`aerialsam.inputs.read_feature_collection`:
    encoding, finite coordinates, closed rings, lines of two positions or more).

    Args:
        path: the GeoJSON file.
        crs: the CRS to reproject to (default: keep the file's).
        shapes: ``polygons`` (buildings) or ``lines`` (road centre lines): the geometry types
            the file may hold.

    Raises:
        InputError: the file is missing, not GeoJSON, holds a malformed geometry, or holds
            geometries of another kind (the message names the first such feature).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    document = read_feature_collection(path)
    source_crs = _geojson_crs(path, document)
    if document.get("features"):
        frame = _read_checked_geojson(path, document)
        frame = frame.set_crs(source_crs, allow_override=True)
    else:
        frame = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=source_crs))
    frame = frame[~(frame.geometry.isna() | frame.geometry.is_empty)].copy()
    allowed, what = _SHAPES[shapes]
    wrong = ~frame.geometry.geom_type.isin(allowed).to_numpy()
    if wrong.any():
        first = int(np.flatnonzero(wrong)[0])
        raise InputError(path, f"expected {what}, found {sorted(set(frame.geom_type[wrong]))} "
                               f"(feature {frame.index[first]})")
    frame.geometry = shapely.force_2d(frame.geometry.values)
    _check_degrees(path, frame)
    if crs is not None and not CRS.from_user_input(crs).equals(frame.crs):
        frame = _reprojected(path, frame, crs)
    return frame.reset_index(drop=True)


def _read_checked_geojson(path: Path, document: dict) -> gpd.GeoDataFrame:
    """GDAL's reading of a checked document (as UTF-8 bytes: the file may be UTF-16)."""
    # imported here: pyogrio (33 MB, its own GDAL) is needed only to read vector files,
    # and the GPU machine's carried wheels must stay under 64 MiB (benchmarks/GPU.md)
    import pyogrio

    try:
        return gpd.read_file(io.BytesIO(json.dumps(document).encode()), engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
            pyogrio.errors.FieldError, pyogrio.errors.GeometryError,
            shapely.errors.GEOSException) as exc:
        # what the feature checks let through and GDAL still refuses: a data problem
        raise InputError(path, f"unreadable GeoJSON ({str(exc).strip().splitlines()[0]})"
                         ) from None


def _check_degrees(path: Path, frame: gpd.GeoDataFrame) -> None:
    """Refuse coordinates of a geographic CRS that no angle has (1e300 as a longitude).

    Both axes are held to 360 degrees, whatever their order: absurd values are refused, real
    ones never.
    """
    if frame.empty or not frame.crs.is_geographic:
        return
    coords, owner = shapely.get_coordinates(frame.geometry.values, return_index=True)
    bad = (np.abs(coords) > MAX_DEGREES).any(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(path, f"feature {frame.index[owner[first]]}: coordinate "
                               f"({coords[first, 0]:g}, {coords[first, 1]:g}) is no "
                               f"longitude/latitude (the file's CRS is "
                               f"{frame.crs.to_string()})")


def _reprojected(path: Path, frame: gpd.GeoDataFrame, crs: CRS | str) -> gpd.GeoDataFrame:
    """``frame`` in ``crs``; coordinates outside the source CRS's domain are refused."""
    moved = frame.to_crs(crs)
    coords, owner = shapely.get_coordinates(moved.geometry.values, return_index=True)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        raise InputError(path, f"feature {frame.index[owner[np.flatnonzero(bad)[0]]]} cannot "
                               f"be reprojected from {frame.crs.to_string()} to "
                               f"{CRS.from_user_input(crs).to_string()}: it lies outside "
                               "the CRS's domain")
    return moved


def _geojson_crs(path: Path, document: dict) -> CRS:
    legacy = document.get("crs")
    if not legacy:
        return WGS84
    name = legacy.get("properties", {}) if isinstance(legacy, dict) else None
    name = name.get("name") if isinstance(name, dict) else None
    try:
        if not isinstance(name, str):
            raise CRSError(f"no name in {legacy!r}")
        return CRS.from_user_input(name)
    except CRSError:
        raise InputError(path, f"unreadable 'crs' member {str(legacy)[:80]!r}") from None


def read_summary_csv(path: str | Path, column: str = "PolygonWKT_Pix",
                     confidence: bool = False) -> gpd.GeoDataFrame:
    """Read a SpaceNet summary or proposal CSV into a GeoDataFrame, one row per polygon.

    Rows ``ImageId,-1,POLYGON EMPTY,…`` mark tiles without buildings: they give no row, but
    every image id of the file, empty or not, is listed in ``frame.attrs["image_ids"]``.
    Other columns (``BuildingId``, ``Confidence``) are kept; Z coordinates are dropped. The
    file is read by :func:`aerialsam.inputs.read_table`: UTF-8 (or marked UTF-16), a whole
    number in ``BuildingId``, WKT that parses with finite coordinates.

    Args:
        path: the CSV file.
        column: the WKT column to read (``PolygonWKT_Pix`` or ``PolygonWKT_Geo``).
        confidence: proposals: require a ``Confidence`` column, a finite number on every row
            with a polygon, returned as float.

    Raises:
        InputError: missing file or column, an unparsable WKT, a non-finite coordinate or a
            bad number (each with its line number).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    schema = [Column("ImageId"), Column(column, nullable=True),
              Column("BuildingId", "int", required=False)]
    table = read_table(path, schema)
    if confidence and "Confidence" not in table.columns:
        raise InputError(path, "missing column 'Confidence' (proposals need "
                               "ImageId,BuildingId,PolygonWKT_Pix,Confidence)")
    wkt = table[column].astype(str).str.strip()
    empty = wkt.str.upper().str.endswith(" EMPTY").to_numpy() | (wkt == "").to_numpy()
    geoms = np.full(len(table), None, dtype=object)
    rows = np.flatnonzero(~empty)
    geoms[rows] = parse_wkt(wkt.to_numpy()[rows], column,
                            lambda i: row_source(path, int(rows[i])))
    if confidence:
        table["Confidence"] = _confidence(path, table["Confidence"], rows)
    image_ids = list(dict.fromkeys(table["ImageId"]))
    table = table.drop(columns=[c for c in ("PolygonWKT_Pix", "PolygonWKT_Geo") if c in table])
    frame = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(geoms))
    frame = frame[~empty].reset_index(drop=True)
    frame.geometry = shapely.force_2d(frame.geometry.values)
    if column == "PolygonWKT_Geo":
        frame = frame.set_crs(WGS84)
    frame.attrs["image_ids"] = image_ids
    return frame


def _confidence(path: Path, values: pd.Series, rows: np.ndarray) -> pd.Series:
    """Proposal confidences as floats; those of rows with a polygon must be finite numbers."""
    numbers = pd.to_numeric(values.str.strip(), errors="coerce").to_numpy(float)
    bad = rows[~np.isfinite(numbers[rows])]
    if bad.size:
        text = values.iloc[int(bad[0])].strip()
        try:
            float(text)
            kind = "non-finite"
        except ValueError:
            kind = "non-numeric"
        raise InputError(row_source(path, int(bad[0])), f"{kind} Confidence {text!r}")
    return pd.Series(numbers, index=values.index)


def first_row(path: Path, test: Callable[[dict[str, str]], bool]) -> tuple[int, dict[str, str]]:
    """Line number (1-based, header = 1) and fields of the first CSV row passing ``test``.

    ``(0, {})`` when none does. Error messages use it to point at the offending line.
    """
    with open_text(path) as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            if test(row):
                return reader.line_num, row
    return 0, {}
