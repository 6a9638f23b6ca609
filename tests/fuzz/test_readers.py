"""Property tests of every reader of user files: a valid result or an InputError, nothing else.

Random bytes, random text, random CSV rows and random geometries (NaN and infinite coordinates
included) go to each reader; whatever it returns must hold what its contract promises (finite
coordinates, typed columns), and whatever it refuses must be an :class:`InputError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from aerialsam.cli.score import metric_of
from aerialsam.config import Profile
from aerialsam.data import spacenet, spacenet3
from aerialsam.data.manifest import default_manifest_path, load_manifest
from aerialsam.errors import InputError
from aerialsam.inputs import (
    Column,
    check_fields,
    decode_text,
    load_yaml_mapping,
    read_feature_collection,
    read_table,
)
from aerialsam.metrics import building_f1, road_csv
from aerialsam.prep import chip_index, splits
from aerialsam.training.train_config import TrainConfig, load_config

# ---- strategies ---------------------------------------------------------------------------------

NUMBERS = st.floats(allow_nan=True, allow_infinity=True, width=64)
CELL = st.one_of(
    st.integers(-10 ** 20, 10 ** 20).map(str), NUMBERS.map(repr), st.text(max_size=10),
    st.sampled_from(["", "nan", "NaN", "inf", "-inf", "1e999", "1.5", "-0", "0x10", " 7 ",
                     '"', "a,b", "\n", "é", "POLYGON EMPTY", "LINESTRING EMPTY"]))
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "utf-16-le"])


def encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    def quote(cell: str) -> str:
        return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\n') else cell
    return "\n".join(",".join(map(quote, row)) for row in [header, *rows]) + "\n"


@st.composite
def csv_files(draw: st.DrawFn, header: list[str]) -> bytes:
    """A CSV with ``header`` (sometimes a column less or more) and random rows, encoded."""
    names = list(header)
    if draw(st.booleans()) and len(names) > 1:
        names.pop(draw(st.integers(0, len(names) - 1)))
    if draw(st.booleans()):
        names.append(draw(st.sampled_from(["extra", names[0] if names else "x"])))
    width = st.integers(max(0, len(names) - 1), len(names) + 1)
    rows = draw(st.lists(width.flatmap(lambda n: st.lists(CELL, min_size=n, max_size=n)),
                         max_size=5))
    return encode(csv_text(names, rows), draw(ENCODINGS))


COORDINATE = st.one_of(st.floats(-200, 200), NUMBERS, st.sampled_from([0.0, 1e300]))
POSITION = st.lists(COORDINATE, min_size=1, max_size=4)


@st.composite
def geometries(draw: st.DrawFn) -> dict:
    """A GeoJSON geometry, sometimes malformed (short rings, open rings, wrong nesting)."""
    kind = draw(st.sampled_from(["Polygon", "LineString", "Point", "MultiPolygon", "Weird"]))
    ring = draw(st.lists(POSITION, min_size=0, max_size=6))
    if ring and draw(st.booleans()):
        ring = [*ring, ring[0]]  # mostly closed
    coordinates = {"Polygon": [ring], "LineString": ring, "MultiPolygon": [[ring]],
                   "Point": ring[0] if ring else [], "Weird": ring}[kind]
    if draw(st.booleans()):
        coordinates = draw(st.sampled_from([None, "x", 3, [coordinates]]))
    return {"type": kind, "coordinates": coordinates}


@st.composite
def wkt_geometries(draw: st.DrawFn, kind: str) -> str:
    """WKT of random coordinates (NaN and 1e999 included), polygons mostly closed."""
    points = draw(st.lists(st.tuples(COORDINATE, COORDINATE), min_size=1, max_size=6))
    if kind == "POLYGON" and draw(st.booleans()):
        points = [*points, points[0]]
    body = ", ".join(f"{x!r} {y!r}".replace("inf", "1e999") for x, y in points)
    return f"{kind} (({body}))" if kind == "POLYGON" else f"{kind} ({body})"


def wkt_texts(kind: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(f"{kind} EMPTY"), CELL, wkt_geometries(kind))


def returned_or_refused(call):  # noqa: ANN001, ANN201 (any reader)
    """The reader's result, or None when it refused with an InputError."""
    try:
        return call()
    except InputError as exc:
        assert "\n" not in str(exc), "an error message must be one line"
        return None


def finite_coordinates(frame) -> bool:  # noqa: ANN001
    return bool(np.isfinite(shapely.get_coordinates(frame.geometry.values)).all())


@pytest.fixture()
def file(tmp_path: Path) -> Path:
    return tmp_path / "input"


# ---- the kernel readers -------------------------------------------------------------------------


@given(data=st.binary(max_size=300))
def test_decode_text_of_random_bytes(data: bytes) -> None:
    text = returned_or_refused(lambda: decode_text(data, "f"))
    assert text is None or "\x00" not in text


@given(text=st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                   max_size=200),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32"]))
def test_decode_text_reads_utf8_and_marked_unicode(text: str, encoding: str) -> None:
    assume(not text.startswith("\ufeff"))
    assert decode_text(text.encode(encoding), "f") == text


@given(data=csv_files(["id", "n", "x"]))
def test_read_table_types_or_refuses(file: Path, data: bytes) -> None:
    file.write_bytes(data)
    schema = [Column("id"), Column("n", "int", minimum=0), Column("x", "float", nullable=True)]
    table = returned_or_refused(lambda: read_table(file, schema))
    if table is not None:
        assert table["n"].dtype == np.int64 and (table["n"] >= 0).all()
        assert table["x"].dtype == np.float64 and not np.isinf(table["x"]).any()
        assert (table["id"].str.strip() != "").all()


@given(features=st.lists(st.one_of(geometries(), st.none()), max_size=4),
       data=st.one_of(st.none(), st.binary(max_size=100)))
def test_read_feature_collection(file: Path, features: list, data: bytes | None) -> None:
    text = json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": g} for g in features]})
    file.write_bytes(data if data is not None else text.encode())
    returned_or_refused(lambda: read_feature_collection(file))


@given(text=st.one_of(st.text(max_size=200), st.builds(
    lambda d: yaml.safe_dump(d), st.dictionaries(st.text(max_size=5), CELL, max_size=4))))
def test_load_yaml_mapping_of_random_text(file: Path, text: str) -> None:
    file.write_text(text)
    mapping = returned_or_refused(lambda: load_yaml_mapping(file))
    assert mapping is None or all(isinstance(k, str) for k in mapping)


# ---- labels: GeoJSON and the SpaceNet CSVs ------------------------------------------------------


@given(features=st.lists(geometries(), min_size=1, max_size=3),
       shapes=st.sampled_from(["polygons", "lines"]))
def test_read_geojson_gives_finite_geometries_or_refuses(file: Path, features: list,
                                                         shapes: str) -> None:
    file.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"n": 1}, "geometry": g} for g in features]}))
    frame = returned_or_refused(lambda: spacenet.read_geojson(file, crs="EPSG:3857",
                                                              shapes=shapes))
    if frame is not None:
        assert finite_coordinates(frame)


BUILDING_ROW = st.tuples(st.sampled_from(["AOI_2_Vegas_img1", "x", ""]), CELL,
                         wkt_texts("POLYGON"), CELL).map(list)
ROAD_ROW = st.tuples(st.sampled_from(["AOI_2_Vegas_img1", "AOI_3_Paris_img2", "q"]),
                     wkt_texts("LINESTRING")).map(list)


@given(rows=st.lists(BUILDING_ROW, max_size=4), encoding=ENCODINGS)
def test_building_csvs_give_finite_polygons_or_refuse(file: Path, rows: list,
                                                      encoding: str) -> None:
    header = ["ImageId", "BuildingId", "PolygonWKT_Pix", "Confidence"]
    file.write_bytes(encode(csv_text(header, rows), encoding))
    for reader in (spacenet.read_summary_csv, building_f1.read_proposals_csv,
                   building_f1.read_truth_csv):
        frame = returned_or_refused(lambda reader=reader: reader(file))
        if frame is not None:
            assert finite_coordinates(frame)
            if reader is building_f1.read_proposals_csv:
                assert np.isfinite(frame["Confidence"].to_numpy(float)).all()


@given(rows=st.lists(ROAD_ROW, max_size=4), encoding=ENCODINGS)
def test_road_csvs_give_finite_lines_or_refuse(file: Path, rows: list, encoding: str) -> None:
    file.write_bytes(encode(csv_text(["ImageId", "WKT_Pix"], rows), encoding))
    frame = returned_or_refused(lambda: spacenet3.read_road_csv(file))
    if frame is not None:
        assert finite_coordinates(frame)
    roads = returned_or_refused(lambda: road_csv.read_roads_csv(file))
    if roads is not None:
        assert all(np.isfinite(line).all() for lines in roads.values() for line in lines)
    returned_or_refused(lambda: metric_of(file))


# ---- stage tables -------------------------------------------------------------------------------


@given(data=csv_files(list(chip_index.CHIP_COLUMNS)))
def test_read_index_types_or_refuses(file: Path, data: bytes) -> None:
    file.write_bytes(data)
    index = returned_or_refused(lambda: chip_index.read_index(file))
    if index is not None:
        for column in ("row_off", "col_off", "size", "overlap", "pad_right", "pad_bottom"):
            assert index[column].dtype == np.int64 and (index[column] >= 0).all()
        assert np.isfinite(index[["minx", "miny", "maxx", "maxy"]].to_numpy(float)).all()


@given(data=csv_files(list(splits.SPLIT_COLUMNS)))
def test_read_splits_or_refuses(file: Path, data: bytes) -> None:
    file.write_bytes(data)
    table = returned_or_refused(lambda: splits.read_splits(file))
    if table is not None:
        assert set(table["split"]) <= set(splits.SPLITS)


@given(data=csv_files(["chip_id", "footprint", "boundary", "contact"]))
def test_read_mask_index_or_refuses(tmp_path: Path, data: bytes) -> None:
    from aerialsam.training.datasets import MASK_INDEX, read_mask_index
    (tmp_path / MASK_INDEX).write_bytes(data)
    returned_or_refused(lambda: read_mask_index(tmp_path))


# ---- YAML configurations ------------------------------------------------------------------------


@given(data=st.one_of(st.binary(max_size=200), st.builds(
    lambda text, cut: text[:cut].encode(), st.just(default_manifest_path().read_text()),
    st.integers(0, 6000))))
def test_load_manifest_or_refuses(file: Path, data: bytes) -> None:
    file.write_bytes(data)
    returned_or_refused(lambda: load_manifest(file))


YAML_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20), NUMBERS,
                       st.sampled_from(["abc", "yes", "3e-4", "1e4", "unet", "lora", "roads",
                                        "AOI_2_Vegas", "256", "smoke"]),
                       st.lists(st.sampled_from(["AOI_2_Vegas", "x"]), max_size=2),
                       st.lists(st.integers(), max_size=2),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]


@given(values=st.dictionaries(st.sampled_from([*FIELDS, "profile", "epochs"]), YAML_VALUE,
                              max_size=5))
def test_load_config_gives_a_typed_config_or_refuses(file: Path, values: dict) -> None:
    file.write_text(yaml.safe_dump(values))
    config = returned_or_refused(lambda: load_config(file))
    if config is not None:
        for field in dataclasses.fields(TrainConfig):
            value = getattr(config, field.name)
            if isinstance(value, float):
                assert math.isfinite(value), field.name
            if field.type in ("int", "bool"):
                assert type(value).__name__ == field.type, (field.name, value)
        assert config.steps >= 1 and config.lr > 0


@given(values=st.dictionaries(st.sampled_from([f.name for f in dataclasses.fields(Profile)]),
                              YAML_VALUE, max_size=4))
def test_profile_fields_are_checked_like_a_config(values: dict) -> None:
    checked = returned_or_refused(lambda: check_fields(Profile, values, "profile"))
    if checked is not None and "aois" in checked:
        assert isinstance(checked["aois"], tuple)
