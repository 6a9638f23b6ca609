"""Read and validate ``data_manifest.yaml``: the bucket, the cities, and one entry per dataset.

The manifest says where SpaceNet lives (bucket, region, HTTPS endpoint, licence, citation),
which cities it covers (``aois``), and, per dataset (``buildings`` = SpaceNet 2, ``roads`` =
SpaceNet 3), how the dataset is laid out on disk, how its per-tile objects are named (key
templates with ``{aoi}`` and ``{n}``), and per AOI its tile count and the tarballs of each split
(key, size, md5, and the layout folder each one fills). Validation happens on load: an unknown
key, a missing field, a wrong type or a malformed md5 is an :class:`~aerialsam.errors.InputError`
naming the file and the entry (``datasets.roads.aois.AOI_2_Vegas.tarballs.train[1].md5``).

Which file is read when none is given: the copy shipped inside the package
(``aerialsam/data/data_manifest.yaml``, found with :mod:`importlib.resources`, so it works for any
install), else the top-level ``data_manifest.yaml`` of a source checkout. The two are kept
identical (a test checks it); the top-level one is the file to edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from aerialsam.data.download_plan import LAYOUTS, Layout
from aerialsam.errors import InputError
from aerialsam.inputs import load_yaml

MANIFEST_NAME = "data_manifest.yaml"
REPO_MANIFEST = Path(__file__).resolve().parents[2] / MANIFEST_NAME
SCHEMA_VERSION = 2
SPLITS = ("train", "test")
DEFAULT_DATASET = "buildings"
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_OLD_SCHEMA = (f"schema_version 1 is the SpaceNet 2-only manifest; version {SCHEMA_VERSION} "
               "lists the cities under `aois` and each dataset (buildings, roads) under "
               "`datasets` with its own tile_keys and per-AOI tarballs: start from the packaged "
               "data_manifest.yaml")


@dataclass(frozen=True)
class Tarball:
    """One tarball object: key, md5, size (exact, approximate or unknown), the folder it fills."""

    key: str
    md5: str
    size: int | None
    size_exact: bool
    holds: str

    @property
    def filename(self) -> str:
        """The object's file name, the last part of its key."""
        return self.key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class TileKeys:
    """Key templates of one split's per-tile objects (``{aoi}`` and ``{n}`` placeholders)."""

    image: str
    label: str

    def image_key(self, aoi: str, number: int) -> str:
        """The image key of tile ``number`` of ``aoi``."""
        return self.image.format(aoi=aoi, n=number)

    def label_key(self, aoi: str, number: int) -> str:
        """The label (GeoJSON) key of tile ``number`` of ``aoi``."""
        return self.label.format(aoi=aoi, n=number)


@dataclass(frozen=True)
class Aoi:
    """One city of the manifest's ``aois`` list."""

    name: str
    alias: str
    number: int
    city: str


@dataclass(frozen=True)
class AoiRecord:
    """One AOI of one dataset: names, tile count, tarballs and tile key templates per split."""

    name: str
    alias: str
    number: int
    city: str
    dataset: str
    layout: Layout
    tiles: int
    buildings: int | None
    tarballs: dict[str, tuple[Tarball, ...]]
    tile_keys: dict[str, TileKeys]

    def folder(self, split: str) -> str:
        """The AOI's folder in its dataset's layout (``AOI_2_Vegas_Train``, ``SN3_roads_…``)."""
        return self.layout.folder(self.name, split)


@dataclass(frozen=True)
class Dataset:
    """One dataset of the manifest (``buildings``, ``roads``) and its AOIs in city order."""

    source: Path
    name: str
    title: str
    layout: Layout
    aois: tuple[AoiRecord, ...]

    def aoi(self, name: str) -> AoiRecord:
        """The record of an AOI given by alias (``vegas``) or full name (``AOI_2_Vegas``).

        Raises:
            InputError: the dataset has no AOI of that name or alias.
        """
        key = name.strip()
        for record in self.aois:
            if key.lower() == record.alias.lower() or key == record.name:
                return record
        known = ", ".join(r.alias for r in self.aois)
        raise InputError("aoi", f"unknown AOI {name!r} in the {self.name} dataset of "
                                f"{self.source}; use one of {known}")


@dataclass(frozen=True)
class Manifest:
    """The whole manifest: bucket and licence facts, the cities, the datasets by name."""

    source: Path
    bucket: str
    region: str
    endpoint: str
    licence: str
    licence_url: str
    attribution: str
    citation: str
    aois: tuple[Aoi, ...]
    datasets: dict[str, Dataset]

    def aoi(self, name: str) -> Aoi:
        """The city given by alias (``vegas``) or full name (``AOI_2_Vegas``).

        Raises:
            InputError: no AOI of the manifest has that name or alias.
        """
        key = name.strip()
        for aoi in self.aois:
            if key.lower() == aoi.alias.lower() or key == aoi.name:
                return aoi
        known = ", ".join(a.alias for a in self.aois)
        raise InputError("aoi", f"unknown AOI {name!r} in {self.source}; use one of {known}")

    def dataset(self, name: str = DEFAULT_DATASET) -> Dataset:
        """The dataset called ``name`` (``buildings`` or ``roads``).

        Raises:
            InputError: the manifest has no such dataset.
        """
        if name not in self.datasets:
            raise InputError("--dataset", f"unknown dataset {name!r} in {self.source}; use "
                                          f"{' or '.join(self.datasets)}")
        return self.datasets[name]


def default_manifest_path() -> Path:
    """The manifest read when none is given: the packaged copy, else the repository's."""
    packaged = resources.files("aerialsam.data").joinpath(MANIFEST_NAME)
    if packaged.is_file():
        return Path(str(packaged))
    return REPO_MANIFEST


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read and validate a data manifest.

    Args:
        path: a manifest file; ``None`` reads the default (see :func:`default_manifest_path`).

    Raises:
        InputError: the file is missing, is not UTF-8 text (a binary file) or not YAML
            (:func:`aerialsam.inputs.load_yaml`), is of another schema version, or breaks
            the schema (unknown key, missing field, wrong type, malformed md5, bad key
            template, duplicate or unknown AOI, unknown layout).
    """
    source = Path(path) if path is not None else default_manifest_path()
    if not source.is_file():
        raise InputError(source, "manifest file not found")
    return _parse_manifest(source, load_yaml(source))


def manifest_table(manifest: Manifest, split: str = "train",
                   dataset: str = DEFAULT_DATASET) -> pd.DataFrame:
    """One row per tarball of ``split`` in one dataset (one per AOI for SpaceNet 2).

    Columns: aoi, alias, city, tiles, buildings (when the dataset counts them), tarball, size
    in GB (``None`` when unknown), size_exact and md5.
    """
    records = manifest.dataset(dataset).aois
    with_buildings = any(r.buildings is not None for r in records)
    rows = []
    for record in records:
        for tarball in record.tarballs.get(split, ()):
            rows.append({
                "aoi": record.name, "alias": record.alias, "city": record.city,
                "tiles": record.tiles,
                **({"buildings": record.buildings} if with_buildings else {}),
                "tarball": tarball.key,
                "size_gb": round(tarball.size / 1e9, 1) if tarball.size else None,
                "size_exact": tarball.size_exact, "md5": tarball.md5,
            })
    return pd.DataFrame(rows)


def _parse_manifest(source: Path, document: object) -> Manifest:
    if isinstance(document, dict) and type(document.get("schema_version")) is int \
            and document["schema_version"] == 1:
        raise InputError(source, _OLD_SCHEMA)
    top = _fields(source, "manifest", document,
                  required={"schema_version": int, "bucket": str, "region": str,
                            "endpoint": str, "licence": str, "citation": str, "aois": list,
                            "datasets": dict},
                  optional={"licence_url": str, "attribution": str})
    if top["schema_version"] != SCHEMA_VERSION:
        raise InputError(source, f"schema_version {top['schema_version']} is not supported "
                                 f"({SCHEMA_VERSION})")
    if not re.match(r"^https?://", top["endpoint"]):
        raise InputError(source, f"endpoint {top['endpoint']!r} is not an http(s) URL")
    cities = tuple(_parse_city(source, f"aois[{i}]", item) for i, item in enumerate(top["aois"]))
    if not cities:
        raise InputError(source, "aois: the list is empty")
    for attribute in ("name", "alias"):
        values = [getattr(a, attribute) for a in cities]
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            raise InputError(source, f"aois: duplicate {attribute} {duplicates}")
    if not top["datasets"]:
        raise InputError(source, "datasets: no dataset")
    datasets = {str(name): _parse_dataset(source, str(name), item, cities)
                for name, item in top["datasets"].items()}
    return Manifest(source=source, bucket=top["bucket"], region=top["region"],
                    endpoint=top["endpoint"].rstrip("/"), licence=top["licence"],
                    licence_url=top.get("licence_url", ""),
                    attribution=top.get("attribution", ""),
                    citation=" ".join(top["citation"].split()), aois=cities, datasets=datasets)


def _parse_city(source: Path, where: str, item: object) -> Aoi:
    raw = _fields(source, where, item,
                  required={"name": str, "alias": str, "number": int, "city": str})
    if not re.match(r"^AOI_\d+_[A-Za-z]+$", raw["name"]):
        raise InputError(source, f"{where}.name: {raw['name']!r} is not like AOI_2_Vegas")
    return Aoi(raw["name"], raw["alias"], raw["number"], raw["city"])


def _parse_dataset(source: Path, name: str, item: object, cities: tuple[Aoi, ...]) -> Dataset:
    where = f"datasets.{name}"
    if not re.match(r"^[a-z][a-z0-9_]*$", name):
        raise InputError(source, f"{where}: a dataset name is one lowercase word (roads)")
    raw = _fields(source, where, item, required={"title": str, "layout": str, "aois": dict},
                  optional={"tile_keys": dict})
    layout = LAYOUTS.get(raw["layout"])
    if layout is None:
        raise InputError(source, f"{where}.layout: unknown layout {raw['layout']!r}; use "
                                 f"{' or '.join(LAYOUTS)}")
    shared = _parse_tile_keys(source, f"{where}.tile_keys", raw.get("tile_keys") or {})
    known = [c.name for c in cities]
    for aoi in raw["aois"]:
        if aoi not in known:
            raise InputError(source, f"{where}.aois.{aoi}: not a city of the top-level aois "
                                     f"list ({', '.join(known)})")
    if not raw["aois"]:
        raise InputError(source, f"{where}.aois: no AOI")
    records = tuple(_parse_record(source, f"{where}.aois.{c.name}", raw["aois"][c.name], c,
                                  name, layout, shared)
                    for c in cities if c.name in raw["aois"])
    return Dataset(source=source, name=name, title=raw["title"], layout=layout, aois=records)


def _parse_record(source: Path, where: str, item: object, city: Aoi, dataset: str,
                  layout: Layout, shared_keys: dict[str, TileKeys]) -> AoiRecord:
    raw = _fields(source, where, item, required={"tiles": int, "tarballs": dict},
                  optional={"buildings": int, "tile_keys": dict})
    tarballs = {}
    for split, value in raw["tarballs"].items():
        _check_split(source, f"{where}.tarballs", split)
        place = f"{where}.tarballs.{split}"
        if not isinstance(value, list) or not value:
            raise InputError(source, f"{place}: expected a non-empty list of tarballs, found "
                                     f"{type(value).__name__}")
        tarballs[split] = tuple(_parse_tarball(source, f"{place}[{i}]", entry, layout)
                                for i, entry in enumerate(value))
    own_keys = _parse_tile_keys(source, f"{where}.tile_keys", raw.get("tile_keys") or {})
    return AoiRecord(name=city.name, alias=city.alias, number=city.number, city=city.city,
                     dataset=dataset, layout=layout, tiles=raw["tiles"],
                     buildings=raw.get("buildings"), tarballs=tarballs,
                     tile_keys={**shared_keys, **own_keys})


def _parse_tarball(source: Path, where: str, item: object, layout: Layout) -> Tarball:
    raw = _fields(source, where, item, required={"key": str, "md5": str},
                  optional={"size": (int, type(None)), "size_exact": bool, "holds": str})
    if not _MD5.match(raw["md5"]):
        raise InputError(source, f"{where}.md5: {raw['md5']!r} is not 32 lowercase hex digits")
    size = raw.get("size")
    if size is not None and size <= 0:
        raise InputError(source, f"{where}.size: must be a positive number of bytes")
    holds = raw.get("holds", layout.image_dir)
    if not holds or PurePosixPath(holds).is_absolute() or ".." in PurePosixPath(holds).parts:
        raise InputError(source, f"{where}.holds: {holds!r} must be a folder inside the AOI "
                                 "folder (geojson_roads_speed)")
    return Tarball(key=raw["key"].lstrip("/"), md5=raw["md5"], size=size,
                   size_exact=raw.get("size_exact", False) and size is not None, holds=holds)


def _parse_tile_keys(source: Path, where: str, item: dict) -> dict[str, TileKeys]:
    parsed = {}
    for split, value in item.items():
        _check_split(source, where, split)
        raw = _fields(source, f"{where}.{split}", value, required={"image": str, "label": str})
        for kind in ("image", "label"):
            template = raw[kind]
            if template.count("{n}") != 1 or set(re.findall(r"{(\w*)}", template)) - {"aoi", "n"}:
                raise InputError(source, f"{where}.{split}.{kind}: {template!r} must hold "
                                         "{n} once and no placeholder other than {aoi}")
        parsed[split] = TileKeys(image=raw["image"].lstrip("/"), label=raw["label"].lstrip("/"))
    return parsed


def _check_split(source: Path, where: str, split: object) -> None:
    if split not in SPLITS:
        raise InputError(source, f"{where}: unknown split {split!r}; use {' or '.join(SPLITS)}")


def _fields(source: Path, where: str, item: object, required: dict[str, Any],
            optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check a mapping's keys and value types; return it. ``bool`` never passes as ``int``."""
    optional = optional or {}
    if not isinstance(item, dict):
        raise InputError(source, f"{where}: expected a mapping, found {type(item).__name__}")
    unknown = sorted(map(repr, set(item) - set(required) - set(optional)))
    if unknown:
        raise InputError(source, f"{where}: unknown key(s) [{', '.join(unknown)}]; "
                                 f"known: {sorted({**required, **optional})}")
    missing = sorted(set(required) - set(item))
    if missing:
        raise InputError(source, f"{where}: missing field(s) {missing}")
    for name, kind in {**required, **optional}.items():
        if name not in item:
            continue
        value = item[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise InputError(source, f"{where}.{name}: expected {names}, "
                                     f"found {type(value).__name__} {value!r}")
    return item
