"""GeoJSON features and WKT checked before GDAL and GEOS: the bad feature or line is named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aerialsam.errors import InputError
from aerialsam.inputs import geometry_problem, parse_wkt, read_feature_collection

RING = [[0, 0], [1, 0], [1, 1], [0, 0]]


@pytest.mark.parametrize(("geometry", "problem"), [
    ({"type": "Polygon", "coordinates": [RING]}, None),
    ({"type": "Polygon", "coordinates": [RING[:3]]}, "ring 0: a ring needs at least four"),
    ({"type": "Polygon", "coordinates": [RING[:3] + [[0, 1]]]}, "ring 0: ring not closed"),
    ({"type": "Polygon", "coordinates": [[[0, float("nan")], *RING[1:]]]},
     "ring 0: position 0: non-finite coordinate nan"),
    ({"type": "LineString", "coordinates": [[0, 0]]}, "at least two positions"),
    ({"type": "LineString", "coordinates": [[0, 0], [1e12, 0]]}, "beyond"),
    ({"type": "Point", "coordinates": [0, 0, 0, 0]}, "a position is two or three numbers"),
    ({"type": "Point", "coordinates": [True, 0]}, "a coordinate is a number, found True"),
    ({"type": "MultiPolygon", "coordinates": [[RING], [RING[:2]]]}, "polygon 1: ring 0"),
    ({"type": "GeometryCollection", "geometries": [{"type": "Point"}]}, "geometry 0 of the"),
    ({"type": "Circle", "coordinates": [0, 0]}, "unknown geometry type 'Circle'"),
])
def test_geometry_problems(geometry: dict, problem: str | None) -> None:
    found = geometry_problem(geometry)
    assert found is None if problem is None else problem in found


def test_feature_collection_names_the_feature_and_its_id(tmp_path: Path) -> None:
    path = tmp_path / "labels.geojson"
    features = [{"type": "Feature", "properties": {}, "geometry": None},
                {"type": "Feature", "id": "b17", "properties": {},
                 "geometry": {"type": "Polygon", "coordinates": [RING[:3]]}}]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(InputError, match=r"labels.geojson: feature 1 \(id 'b17'\): ring 0"):
        read_feature_collection(path)


def test_parse_wkt_names_the_line() -> None:
    where = lambda i: f"labels.csv, line {i + 2}"  # noqa: E731
    good = parse_wkt(["POINT (1 2)", "LINESTRING (0 0, 1 1)"], "WKT", where)
    assert [g.geom_type for g in good] == ["Point", "LineString"]
    assert parse_wkt(np.array([], dtype=object), "WKT", where).size == 0
    for texts, message in ((["POINT (1 2)", "POINT (nan 2)"], "line 3: non-finite coordinate"),
                           (["POLYGON ((0 0, 1 0, 1 1))"], "line 2: unparsable WKT in WKT (Points "
                                                           "of LinearRing do not form a closed"),
                           (["POINT (1e999 0)"], "line 2: non-finite"),
                           (["POINT (1e10 0)"], "line 2: coordinate beyond +-1e+09")):
        with pytest.raises(InputError, match=None) as caught:
            parse_wkt(texts, "WKT", where)
        assert message in str(caught.value)
