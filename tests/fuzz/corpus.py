"""A corpus of bad inputs for every command, generated in the test: each must fail in one line.

A case writes its bad files into a fresh folder and returns the command line and the outputs
that must not exist afterwards (nothing may look finished after a failure). The families:

- text faults of every file a command reads (Latin-1, UTF-16 without a byte-order mark,
  binary, empty, truncated, a NUL byte): :data:`TEXT_FAULTS`;
- content faults per kind of file (NaN and infinite numbers, unclosed rings, wrong types,
  missing columns, a wrong CRS, deep nesting);
- option faults (out of range, NaN, absurd sizes).

``xfail`` marks a case whose failure is a defect in a file owned elsewhere (the reason says
which); ``run=False`` ones are not even run (they would exhaust the machine).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from aerialsam.data.manifest import default_manifest_path


@dataclass(frozen=True)
class Base:
    """Good inputs every case starts from (made once per session)."""

    root: Path
    image: Path  # a SpaceNet 2 demo tile: 650 x 650 uint16, EPSG:4326
    west: float
    north: float


@dataclass(frozen=True)
class Env:
    """Where a case runs: the good inputs, and a fresh folder of its own."""

    base: Base
    tmp: Path


Build = Callable[[Env], tuple[list[str], list[Path]]]


@dataclass(frozen=True)
class Case:
    """One bad input of one command."""

    command: str
    name: str
    build: Build
    xfail: str | None = None
    run: bool = True
    no_sleep: bool = False  # retries would wait; the case patches time.sleep

    @property
    def id(self) -> str:
        """The pytest id: ``command-name``."""
        return f"{self.command}-{self.name}"


CASES: list[Case] = []


def case(command: str, name: str, xfail: str | None = None, run: bool = True,
         no_sleep: bool = False) -> Callable[[Build], Build]:
    """Register a case builder."""
    def register(build: Build) -> Build:
        CASES.append(Case(command, name, build, xfail, run, no_sleep))
        return build
    return register


# ---- text faults: the same for every kind of text file -----------------------------------------

def _latin1(good: str) -> bytes:
    text = good.replace("Cafe", "Café") if "Cafe" in good else good + "é"
    return text.encode("latin-1")


def _truncated(good: str) -> bytes:
    data = good.encode()
    return data[: max(1, len(data) * 3 // 5)]


def _binary(good: str) -> bytes:
    rng = random.Random(len(good))
    return bytes(rng.randrange(256) for _ in range(700)) + b"\x00\x89PNG\r\n"


TEXT_FAULTS: dict[str, Callable[[str], bytes]] = {
    "latin1": _latin1,
    "utf16-no-bom": lambda good: good.encode("utf-16-le"),
    "binary": _binary,
    "empty": lambda good: b"",
    "truncated": _truncated,
    "nul-byte": lambda good: good[: len(good) // 2].encode() + b"\x00" + good[len(good) // 2:]
    .encode(),
}
"""Fault name -> the bad bytes made from a good text."""


def text_fault_cases(command: str, what: str, good: Callable[[Env], str], filename: str,
                     argv: Callable[[Env, Path], tuple[list[str], list[Path]]],
                     skip: tuple[str, ...] = (), xfail: dict[str, str] | None = None) -> None:
    """Register one case per text fault of one input file of ``command``."""
    for fault, make in TEXT_FAULTS.items():
        if fault in skip:
            continue

        def build(env: Env, make: Callable[[str], bytes] = make) -> tuple[list[str], list[Path]]:
            path = write(env.tmp / filename, make(good(env)))
            return argv(env, path)

        CASES.append(Case(command, f"{what}-{fault}", build, (xfail or {}).get(fault)))


def write(path: Path, text: str | bytes) -> Path:
    """Write text (UTF-8) or bytes; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def write_raster(path: Path, data: np.ndarray, crs: str | None = "EPSG:4326",
                 west: float = -115.3, north: float = 36.2) -> Path:
    """A small GeoTIFF of ``data`` (bands x rows x cols)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype, crs=crs,
                       transform=from_origin(west, north, 2.7e-6, 2.7e-6)) as dst:
        dst.write(data)
    return path


# ---- good texts ---------------------------------------------------------------------------------

def square(env: Env, side: float = 20 * 2.7e-6, dx: float = 0.0) -> list[list[float]]:
    """A closed square ring inside the base image, in WGS84."""
    x0, y0 = env.base.west + 10 * 2.7e-6 + dx, env.base.north - 10 * 2.7e-6
    return [[x0, y0], [x0 + side, y0], [x0 + side, y0 - side], [x0, y0 - side], [x0, y0]]


def feature_collection(geometries: list[object], extra: dict | None = None) -> str:
    """A GeoJSON FeatureCollection of the geometries, each with a ``note`` property."""
    features = [{"type": "Feature", "properties": {"note": "Cafe"}, "geometry": g}
                for g in geometries]
    return json.dumps({"type": "FeatureCollection", "features": features, **(extra or {})})


def good_geojson(env: Env) -> str:
    """One building square on the base image."""
    return feature_collection([{"type": "Polygon", "coordinates": [square(env)]}])


BUILDING_HEADER = "ImageId,BuildingId,PolygonWKT_Pix,Confidence,Note\n"
ROAD_HEADER = "ImageId,WKT_Pix,Note\n"


def building_csv(*rows: str) -> str:
    """A proposal CSV: a good row, then ``rows``."""
    good = 'AOI_2_Vegas_img1,0,"POLYGON ((10 10, 40 10, 40 40, 10 40, 10 10))",0.9,Cafe\n'
    return BUILDING_HEADER + good + "".join(r + "\n" for r in rows)


def road_csv(*rows: str) -> str:
    """A road CSV: a good row, then ``rows``."""
    return ROAD_HEADER + 'AOI_2_Vegas_img1,"LINESTRING (0 0, 100 0, 100 80)",Cafe\n' + \
        "".join(r + "\n" for r in rows)


CHIP_HEADER = ("chip_id,path,source,aoi,image_id,row_off,col_off,size,overlap,pad_right,"
               "pad_bottom,crs,minx,miny,maxx,maxy\n")


def chip_row(**values: str) -> str:
    """One chips.csv row; ``values`` replace fields by name."""
    fields = {"chip_id": "AOI_2_Vegas_img1_r0_c0", "path": "AOI_2_Vegas/Cafe.tif",
              "source": "/nowhere/Cafe.tif", "aoi": "AOI_2_Vegas", "image_id": "AOI_2_Vegas_img1",
              "row_off": "0", "col_off": "0", "size": "256", "overlap": "32", "pad_right": "0",
              "pad_bottom": "0", "crs": "EPSG:4326", "minx": "-115.3", "miny": "36.19",
              "maxx": "-115.29", "maxy": "36.2"}
    fields.update(values)
    return ",".join(fields.values())


def good_chips(env: Env) -> str:
    """A chips.csv of one chip."""
    return CHIP_HEADER + chip_row() + "\n"


SPLITS_HEADER = "aoi,image_id,source,split,block\n"


def good_splits(env: Env) -> str:
    """A splits.csv of one test tile."""
    return SPLITS_HEADER + f"AOI_2_Vegas,AOI_2_Vegas_img1,{env.base.image},test,Cafe\n"


def good_manifest(env: Env) -> str:
    """The packaged data manifest."""
    return default_manifest_path().read_text().replace("SpaceNet", "SpaceNet Cafe", 1)


GOOD_YAML = "model: unet\nsteps: 2\nname: Cafe\n"
