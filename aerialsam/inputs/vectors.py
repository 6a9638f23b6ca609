"""Vector labels from users: GeoJSON features and WKT checked before GDAL or GEOS see them.

GDAL and GEOS meet a malformed geometry with an exception deep in their call (an unclosed
ring, a line of one point) or quietly with NaN that poisons every later step. Here every
geometry is checked first, and the first bad one is refused with one line naming the file and
the feature (its index, and its ``id`` when it has one) or the CSV line:

- GeoJSON (:func:`read_feature_collection`): a FeatureCollection of Features whose geometries
  have a known type, coordinates nested as deep as that type wants, positions of two or three
  finite numbers, lines of at least two positions, rings of at least four that end where
  they start;
- WKT (:func:`parse_wkt`): text GEOS parses, with finite coordinates.

No coordinate may exceed :data:`COORDINATE_LIMIT` in magnitude: no CRS (degrees, metres) or
image (pixels) has such values, and products of them overflow later arithmetic.

Polygons that are closed but self-intersecting pass: the stages repair those
(``make_valid``), as the SpaceNet scorer does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import shapely

from aerialsam.errors import InputError
from aerialsam.inputs.text import read_json

# Nesting depth of "coordinates" per type: 1 is one position [x, y].
_DEPTH = {"Point": 1, "MultiPoint": 2, "LineString": 2, "MultiLineString": 3, "Polygon": 3,
          "MultiPolygon": 4}
_MAX_SHOWN = 80
COORDINATE_LIMIT = 1e9
"""The largest absolute coordinate accepted (metres, degrees or pixels)."""


def read_feature_collection(path: str | Path) -> dict:
    """A GeoJSON FeatureCollection whose every feature and geometry passed the checks above.

    Features with a ``null`` geometry pass (they hold nothing).

    Raises:
        InputError: the file is missing, not text, not JSON, not a FeatureCollection, or has a
            malformed feature (named by index and id).
    """
    document = read_json(path, what="GeoJSON")
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise InputError(path, "not a GeoJSON FeatureCollection")
    features = document.get("features", [])
    if not isinstance(features, list):
        raise InputError(path, "'features' is not a list")
    for index, feature in enumerate(features):
        problem = feature_problem(feature)
        if problem is not None:
            raise InputError(path, f"{feature_name(index, feature)}: {problem}")
    return document


def feature_name(index: int, feature: object) -> str:
    """``feature 3``, or ``feature 3 (id 'b17')`` when the feature has an id."""
    ident = feature.get("id") if isinstance(feature, dict) else None
    return f"feature {index}" + (f" (id {ident!r})" if ident is not None else "")


def feature_problem(feature: object) -> str | None:
    """What is wrong with a GeoJSON Feature, or None when nothing is."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return "not a GeoJSON Feature"
    properties = feature.get("properties")
    if properties is not None and not isinstance(properties, dict):
        return "'properties' is not an object"
    geometry = feature.get("geometry")
    return None if geometry is None else geometry_problem(geometry)


def geometry_problem(geometry: object) -> str | None:
    """What is wrong with a GeoJSON geometry object, or None when nothing is."""
    if not isinstance(geometry, dict):
        return "geometry is not an object"
    kind = geometry.get("type")
    if kind == "GeometryCollection":
        parts = geometry.get("geometries")
        if not isinstance(parts, list):
            return "GeometryCollection without a 'geometries' list"
        for i, part in enumerate(parts):
            problem = geometry_problem(part)
            if problem is not None:
                return f"geometry {i} of the collection: {problem}"
        return None
    if kind not in _DEPTH:
        return f"unknown geometry type {_shown(kind)}"
    return _coordinates_problem(kind, geometry.get("coordinates"))


def _coordinates_problem(kind: str, coordinates: object) -> str | None:
    """Check nesting, positions and the part sizes of one geometry's coordinates."""
    if kind == "Point":
        return _position_problem(coordinates)
    if not isinstance(coordinates, list):
        return f"{kind} coordinates are not a list"
    if kind in ("MultiPoint", "LineString"):
        problem = _positions_problem(coordinates)
        if problem is None and kind == "LineString" and len(coordinates) == 1:
            problem = "a LineString needs at least two positions"
        return problem
    if kind in ("MultiLineString", "Polygon"):
        for i, part in enumerate(coordinates):
            problem = _part_problem(kind, part)
            if problem is not None:
                return f"{'line' if kind == 'MultiLineString' else 'ring'} {i}: {problem}"
        return None
    for i, polygon in enumerate(coordinates):  # MultiPolygon
        problem = _coordinates_problem("Polygon", polygon)
        if problem is not None:
            return f"polygon {i}: {problem}"
    return None


def _part_problem(kind: str, part: object) -> str | None:
    """A line of a MultiLineString or a ring of a Polygon."""
    if not isinstance(part, list):
        return "not a list of positions"
    problem = _positions_problem(part)
    if problem is not None:
        return problem
    if kind == "MultiLineString":
        return "needs at least two positions" if len(part) == 1 else None
    if len(part) < 4:
        return f"a ring needs at least four positions, found {len(part)}"
    if part[0][:2] != part[-1][:2]:
        return "ring not closed (its last position is not its first)"
    return None


def _positions_problem(positions: list) -> str | None:
    for i, position in enumerate(positions):
        problem = _position_problem(position)
        if problem is not None:
            return f"position {i}: {problem}"
    return None


def _position_problem(position: object) -> str | None:
    if not isinstance(position, list) or not 2 <= len(position) <= 3:
        return f"a position is two or three numbers, found {_shown(position)}"
    for value in position:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"a coordinate is a number, found {_shown(value)}"
        if not math.isfinite(value):
            return f"non-finite coordinate {value}"
        if abs(value) > COORDINATE_LIMIT:
            return f"coordinate {value:g} is beyond +-{COORDINATE_LIMIT:g}"
    return None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


def parse_wkt(texts: Sequence[str] | np.ndarray, column: str,
              where: Callable[[int], str]) -> np.ndarray:
    """Parse WKT strings into geometries, refusing unparsable text and non-finite coordinates.

    Args:
        texts: the WKT strings (no empty ones: callers drop ``EMPTY`` rows first).
        column: the column they come from, named in errors.
        where: the source of item ``i`` for an error, e.g. ``"labels.csv, line 7"``.

    Returns:
        An object array of shapely geometries, one per text.

    Raises:
        InputError: the first text GEOS cannot parse (with its reason), or whose coordinates
            are not all finite or beyond :data:`COORDINATE_LIMIT`.
    """
    texts = np.asarray(texts, dtype=object)
    if texts.size == 0:
        return np.empty(0, dtype=object)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN and 1e999 are refused below
        geoms = shapely.from_wkt(texts, on_invalid="ignore")
    failed = np.flatnonzero(shapely.is_missing(geoms))
    if failed.size:
        row = int(failed[0])
        raise InputError(where(row), f"unparsable WKT in {column} ({_geos_reason(texts[row])}): "
                                     f"{_shown(texts[row][:_MAX_SHOWN])}")
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(coords) <= COORDINATE_LIMIT).all(axis=1)  # NaN fails too
    if bad.any():
        row = int(owner[np.flatnonzero(bad)[0]])
        finite = np.isfinite(coords[owner == row]).all()
        what = f"coordinate beyond +-{COORDINATE_LIMIT:g}" if finite else "non-finite coordinate"
        raise InputError(where(row), f"{what} in {column}: {_shown(texts[row][:_MAX_SHOWN])}")
    return geoms


def _geos_reason(text: str) -> str:
    """GEOS's reason for refusing one WKT string, without its exception class name."""
    try:
        with np.errstate(invalid="ignore", over="ignore"):
            shapely.from_wkt(text, on_invalid="raise")
    except shapely.errors.GEOSException as exc:
        return str(exc).split(": ", 1)[-1].strip() or "GEOS refused it"
    return "GEOS refused it"
