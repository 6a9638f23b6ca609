"""Bad inputs of ``aerialsam rasterize``, ``chip`` and ``masks`` (registered in the corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.fuzz.corpus import (
    CHIP_HEADER,
    Env,
    building_csv,
    case,
    chip_row,
    feature_collection,
    good_chips,
    good_geojson,
    square,
    text_fault_cases,
    write,
    write_raster,
)

# ---- rasterize ----------------------------------------------------------------------------------


def _rasterize(env: Env, labels: Path, *options: str,
               image: Path | None = None) -> tuple[list[str], list[Path]]:
    out = env.tmp / "mask.tif"
    return [str(image or env.base.image), str(labels), str(out), *options], [out]


text_fault_cases("rasterize", "geojson", good_geojson, "labels.geojson",
                 lambda env, path: _rasterize(env, path))
text_fault_cases("rasterize", "csv", lambda env: building_csv(), "labels.csv",
                 lambda env, path: _rasterize(env, path))


def _geometry_case(name: str, geometry: object) -> None:
    @case("rasterize", f"geojson-{name}")
    def build(env: Env) -> tuple[list[str], list[Path]]:
        value = geometry(env) if callable(geometry) else geometry
        labels = write(env.tmp / "labels.geojson", feature_collection([value]))
        return _rasterize(env, labels)


def _ring(env: Env, index: int, value: object) -> list[list[object]]:
    ring = square(env)
    ring[index] = [value, ring[index][1]]
    return ring


for _name, _geometry in {
    "nan-coordinate": lambda env: {"type": "Polygon", "coordinates": [_ring(env, 1, float("nan"))]},
    "inf-coordinate": lambda env: {"type": "Polygon", "coordinates": [_ring(env, 2, float("inf"))]},
    "huge-coordinate": lambda env: {"type": "Polygon", "coordinates": [_ring(env, 2, 1e300)]},
    "string-coordinate": lambda env: {"type": "Polygon", "coordinates": [_ring(env, 1, "x")]},
    "unclosed-ring": lambda env: {"type": "Polygon", "coordinates": [square(env)[:4]]},
    "three-point-ring": lambda env: {"type": "Polygon",
                                     "coordinates": [square(env)[:2] + square(env)[:1]]},
    "one-point-line-in-polygons": lambda env: {"type": "LineString",
                                               "coordinates": [square(env)[0]]},
    "point-not-polygon": lambda env: {"type": "Point", "coordinates": square(env)[0]},
    "missing-coordinates": {"type": "Polygon"},
    "unknown-type": {"type": "Hexagon", "coordinates": []},
    "position-of-one-number": lambda env: {"type": "Polygon", "coordinates": [[[1.0]] * 4]},
    "flat-coordinates": lambda env: {"type": "Polygon", "coordinates": square(env)},
}.items():
    _geometry_case(_name, _geometry)


@case("rasterize", "geojson-not-a-feature-collection")
def _not_fc(env: Env) -> tuple[list[str], list[Path]]:
    labels = write(env.tmp / "labels.geojson", json.dumps([1, 2, 3]))
    return _rasterize(env, labels)


@case("rasterize", "geojson-features-not-a-list")
def _features_not_list(env: Env) -> tuple[list[str], list[Path]]:
    labels = write(env.tmp / "labels.geojson", '{"type": "FeatureCollection", "features": 7}')
    return _rasterize(env, labels)


@case("rasterize", "geojson-deep-nesting")
def _deep(env: Env) -> tuple[list[str], list[Path]]:
    labels = write(env.tmp / "labels.geojson", "[" * 100000 + "]" * 100000)
    return _rasterize(env, labels)


@case("rasterize", "geojson-garbage-crs")
def _garbage_crs(env: Env) -> tuple[list[str], list[Path]]:
    text = feature_collection([{"type": "Polygon", "coordinates": [square(env)]}],
                              {"crs": {"type": "name", "properties": {"name": "EPSG:999999"}}})
    return _rasterize(env, write(env.tmp / "labels.geojson", text))


@case("rasterize", "geojson-wrong-crs")
def _wrong_crs(env: Env) -> tuple[list[str], list[Path]]:
    # degrees labelled as UTM metres: the labels land a few metres from (0 N, 120 W)
    text = feature_collection([{"type": "Polygon", "coordinates": [square(env)]}],
                              {"crs": {"type": "name",
                                       "properties": {"name": "urn:ogc:def:crs:EPSG::32611"}}})
    return _rasterize(env, write(env.tmp / "labels.geojson", text))


for _name, _row in {
    "unparsable-wkt": 'AOI_2_Vegas_img1,1,"POLYGON ((0 0, 9",0.5,x',
    "nan-wkt": 'AOI_2_Vegas_img1,1,"POLYGON ((0 0, 10 nan, 10 10, 0 0))",0.5,x',
    "inf-wkt": 'AOI_2_Vegas_img1,1,"POLYGON ((0 0, 1e999 0, 10 10, 0 0))",0.5,x',
    "unclosed-wkt": 'AOI_2_Vegas_img1,1,"POLYGON ((0 0, 10 0, 10 10))",0.5,x',
    "building-id-text": 'AOI_2_Vegas_img1,one,"POLYGON ((0 0, 10 0, 10 10, 0 0))",0.5,x',
    "extra-fields": 'AOI_2_Vegas_img1,1,POLYGON ((0 0, 10 0, 10 10, 0 0)),0.5,x',
}.items():
    case("rasterize", f"csv-{_name}")(
        lambda env, row=_row: _rasterize(env, write(env.tmp / "labels.csv", building_csv(row))))


@case("rasterize", "csv-missing-column")
def _csv_missing(env: Env) -> tuple[list[str], list[Path]]:
    labels = write(env.tmp / "labels.csv", "ImageId,BuildingId\nAOI_2_Vegas_img1,1\n")
    return _rasterize(env, labels)


@case("rasterize", "image-missing")
def _image_missing(env: Env) -> tuple[list[str], list[Path]]:
    labels = write(env.tmp / "labels.geojson", good_geojson(env))
    return _rasterize(env, labels, image=env.tmp / "absent.tif")


@case("rasterize", "image-is-text")
def _image_text(env: Env) -> tuple[list[str], list[Path]]:
    labels = write(env.tmp / "labels.geojson", good_geojson(env))
    return _rasterize(env, labels, image=write(env.tmp / "image.tif", "not a raster"))


@case("rasterize", "image-truncated")
def _image_truncated(env: Env) -> tuple[list[str], list[Path]]:
    labels = write(env.tmp / "labels.geojson", good_geojson(env))
    image = write(env.tmp / "image.tif", env.base.image.read_bytes()[:200])
    return _rasterize(env, labels, image=image)


@case("rasterize", "image-without-crs")
def _image_no_crs(env: Env) -> tuple[list[str], list[Path]]:
    labels = write(env.tmp / "labels.geojson", good_geojson(env))
    image = write_raster(env.tmp / "image.tif", np.ones((3, 40, 40), np.uint16), crs=None)
    return _rasterize(env, labels, image=image)


@case("rasterize", "out-is-a-folder")
def _out_folder(env: Env) -> tuple[list[str], list[Path]]:
    labels = write(env.tmp / "labels.geojson", good_geojson(env))
    (env.tmp / "adir").mkdir()
    return [str(env.base.image), str(labels), str(env.tmp / "adir")], []


def _road_geojson(env: Env) -> str:
    return feature_collection([{"type": "LineString", "coordinates": square(env)[:3]}])


for _name, _options in {
    "contact-spacing-nan": ("--kind", "contact", "--contact-spacing", "nan"),
    "contact-spacing-negative": ("--kind", "contact", "--contact-spacing", "-3"),
    "boundary-width-zero": ("--kind", "boundary", "--boundary-width", "0"),
    "road-radius-nan": ("--kind", "road", "--road-radius-m", "nan"),
    "road-radius-huge": ("--kind", "road", "--road-radius-m", "1e300"),
    "road-radius-above-bound": ("--kind", "road", "--road-radius-m", "101"),
    "lane-width-negative": ("--kind", "road", "--lane-width-m", "-2"),
    "lane-width-huge": ("--kind", "road", "--lane-width-m", "1e6"),
    "distance-cap-huge": ("--kind", "road_distance", "--road-distance-cap-m", "1e9"),
    "contact-spacing-inf": ("--kind", "contact", "--contact-spacing", "inf"),
    "kind-unknown": ("--kind", "lake"),
}.items():
    case("rasterize", _name)(lambda env, options=_options: _rasterize(
        env, write(env.tmp / "labels.geojson",
                   _road_geojson(env) if any(o.startswith("road") for o in options)
                   else good_geojson(env)), *options))


@case("rasterize", "road-labels-given-polygons")
def _road_polygons(env: Env) -> tuple[list[str], list[Path]]:
    return _rasterize(env, write(env.tmp / "labels.geojson", good_geojson(env)), "--kind", "road")


# ---- chip ---------------------------------------------------------------------------------------


def _chip(env: Env, src: Path, *options: str) -> tuple[list[str], list[Path]]:
    out = env.tmp / "chips"
    return [str(src), str(out), *options], [out / "chips.csv"]


for _name, _make in {
    "src-missing": lambda env: env.tmp / "absent.tif",
    "src-is-text": lambda env: write(env.tmp / "image.tif", "hello"),
    "src-binary": lambda env: write(env.tmp / "image.tif", bytes(range(256)) * 20),
    "src-truncated": lambda env: write(env.tmp / "image.tif",
                                       env.base.image.read_bytes()[:5000]),
    "src-without-crs": lambda env: write_raster(env.tmp / "image.tif",
                                                np.ones((3, 40, 40), np.uint16), crs=None),
    "src-empty-folder": lambda env: (env.tmp / "empty").mkdir() or env.tmp / "empty",
    "src-all-nan": lambda env: write_raster(env.tmp / "image.tif",
                                            np.full((3, 40, 40), np.nan, np.float32)),
}.items():
    case("chip", _name)(lambda env, make=_make: _chip(env, make(env), "--size", "32",
                                                      "--overlap", "0"))

for _name, _options in {
    "size-zero": ("--size", "0"),
    "size-negative": ("--size", "-5"),
    "size-not-a-number": ("--size", "big"),
    "overlap-negative": ("--overlap", "-1"),
    "overlap-not-below-size": ("--size", "64", "--overlap", "64"),
    "workers-zero": ("--workers", "0"),
}.items():
    case("chip", _name)(lambda env, options=_options: _chip(env, env.base.image, *options))

# --aoi names the chips' folder: anything but a plain name could write outside OUT_DIR
for _name, _aoi in {"aoi-with-slash": lambda env: "../escape", "aoi-dot-dot": lambda env: "..",
                    "aoi-empty": lambda env: "",
                    "aoi-absolute": lambda env: str(env.tmp / "escape")}.items():
    case("chip", _name)(lambda env, aoi=_aoi: _chip(env, env.base.image, "--aoi", aoi(env)))

# refused by the bound of the parser's chip_side before any pixel is read (would be 30 GB)
case("chip", "size-absurd")(lambda env: _chip(env, env.base.image, "--size", "100000"))

text_fault_cases("chip", "stretch", lambda env: json.dumps({"version": 1, "note": "Cafe"}),
                 "stretch.json", lambda env, path: _chip(env, env.base.image, "--stretch",
                                                         str(path)))

for _name, _document in {
    "stretch-a-list": [1, 2],
    "stretch-nan-bounds": {"version": 1, "aois": {"AOI_2_Vegas": {"low": [float("nan")] * 3,
                                                                  "high": [1.0] * 3}}},
    "stretch-wrong-version": {"version": 99, "aois": {}},
    "stretch-inverted-bounds": {"version": 1, "aois": {"AOI_2_Vegas": {"low": [9.0] * 3,
                                                                       "high": [1.0] * 3}}},
    "stretch-two-bands": {"version": 1, "aois": {"AOI_2_Vegas": {"low": [1.0] * 2,
                                                                 "high": [9.0] * 2}}},
    "stretch-text-bounds": {"version": 1, "aois": {"AOI_2_Vegas": {"low": "low",
                                                                   "high": [9.0] * 3}}},
}.items():
    case("chip", _name)(lambda env, document=_document: _chip(
        env, env.base.image, "--stretch", str(write(env.tmp / "stretch.json",
                                                    json.dumps(document)))))


# ---- masks --------------------------------------------------------------------------------------


def _masks(env: Env, chips_dir: Path, *options: str) -> tuple[list[str], list[Path]]:
    out = env.tmp / "masks"
    return [str(chips_dir), str(out), *options], [out / "masks.csv"]


def _index_case(name: str, text: str) -> None:
    @case("masks", f"index-{name}")
    def build(env: Env) -> tuple[list[str], list[Path]]:
        write(env.tmp / "chips" / "chips.csv", text)
        return _masks(env, env.tmp / "chips")


text_fault_cases("masks", "index", good_chips, "chips/chips.csv",
                 lambda env, path: _masks(env, path.parent))

for _name, _text in {
    "nan-in-integer": CHIP_HEADER + chip_row(row_off="nan") + "\n",
    "empty-integer": CHIP_HEADER + chip_row(size="") + "\n",
    "text-in-integer": CHIP_HEADER + chip_row(col_off="abc") + "\n",
    "fraction-in-integer": CHIP_HEADER + chip_row(size="25.5") + "\n",
    "negative-size": CHIP_HEADER + chip_row(size="-256") + "\n",
    "inf-bound": CHIP_HEADER + chip_row(minx="inf") + "\n",
    "huge-integer": CHIP_HEADER + chip_row(row_off="9" * 40) + "\n",
    "missing-columns": "chip_id,path\nx,y\n",
    "extra-field": CHIP_HEADER + chip_row() + ",surplus\n",
    "duplicate-header": CHIP_HEADER.replace("path", "chip_id") + chip_row() + "\n",
    "empty-chip-id": CHIP_HEADER + chip_row(chip_id="") + "\n",
    "unterminated-quote": CHIP_HEADER + chip_row(source='"/nowhere') + "\n",
}.items():
    _index_case(_name, _text)


@case("masks", "chips-dir-missing")
def _no_chips(env: Env) -> tuple[list[str], list[Path]]:
    return _masks(env, env.tmp / "absent")


@case("masks", "index-is-a-folder")
def _index_folder(env: Env) -> tuple[list[str], list[Path]]:
    (env.tmp / "chips" / "chips.csv").mkdir(parents=True)
    return _masks(env, env.tmp / "chips")


for _name, _options in {
    "kinds-unknown": ("--kinds", "lake"),
    "kinds-empty": ("--kinds", ","),
    "boundary-width-zero": ("--boundary-width", "0"),
    "contact-spacing-nan": ("--contact-spacing", "nan"),
}.items():
    case("masks", _name)(lambda env, options=_options: _masks(
        env, write(env.tmp / "chips" / "chips.csv", good_chips(env)).parent, *options))
