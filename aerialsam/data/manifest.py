"""Read and validate ``data_manifest.yaml`` into typed AOI records.

The manifest says where SpaceNet 2 lives (bucket, region, HTTPS endpoint), which tarball holds
each AOI's train and test split (key, size, md5), how per-tile objects are named (key templates
with ``{aoi}`` and ``{n}``), and how many tiles and buildings each AOI has, with the licence and
citation. Validation happens on load: an unknown key, a missing field, a wrong type or a
malformed md5 is an :class:`~aerialsam.errors.InputError` naming the file and the field.

Which file is read when none is given: the copy shipped inside the package
(``aerialsam/data/data_manifest.yaml``, found with :mod:`importlib.resources`, so it works for any
install), else the top-level ``data_manifest.yaml`` of a source checkout. The two are kept
identical (a test checks it); the top-level one is the file to edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from aerialsam.errors import InputError

MANIFEST_NAME = "data_manifest.yaml"
REPO_MANIFEST = Path(__file__).resolve().parents[2] / MANIFEST_NAME
SPLITS = ("train", "test")
_MD5 = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Tarball:
    """One tarball object: its key, md5 and size (exact, approximate, or unknown)."""

    key: str
    md5: str
    size: int | None
    size_exact: bool

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
        """The building GeoJSON key of tile ``number`` of ``aoi``."""
        return self.label.format(aoi=aoi, n=number)


@dataclass(frozen=True)
class AoiRecord:
    """One area of interest: names, counts, tarballs per split, tile key templates per split."""

    name: str
    alias: str
    number: int
    city: str
    tiles: int
    buildings: int
    tarballs: dict[str, Tarball]
    tile_keys: dict[str, TileKeys]

    def folder(self, split: str) -> str:
        """The AOI's folder name in the SpaceNet 2 layout (``AOI_2_Vegas_Train``)."""
        return f"{self.name}_Train" if split == "train" else f"{self.name}_Test_public"


@dataclass(frozen=True)
class Manifest:
    """The whole manifest: dataset facts and the AOI records in file order."""

    source: Path
    dataset: str
    bucket: str
    region: str
    endpoint: str
    licence: str
    licence_url: str
    attribution: str
    citation: str
    aois: tuple[AoiRecord, ...]

    def aoi(self, name: str) -> AoiRecord:
        """The record of an AOI given by alias (``vegas``) or full name (``AOI_2_Vegas``).

        Raises:
            InputError: no AOI of the manifest has that name or alias.
        """
        key = name.strip()
        for record in self.aois:
            if key.lower() == record.alias.lower() or key == record.name:
                return record
        known = ", ".join(r.alias for r in self.aois)
        raise InputError("aoi", f"unknown AOI {name!r} in {self.source}; use one of {known}")


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
        InputError: the file is missing, is not YAML, or breaks the schema (unknown key,
            missing field, wrong type, malformed md5, bad key template, duplicate AOI).
    """
    source = Path(path) if path is not None else default_manifest_path()
    if not source.is_file():
        raise InputError(source, "manifest file not found")
    try:
        document = yaml.safe_load(source.read_text())
    except yaml.YAMLError as exc:
        raise InputError(source, f"not valid YAML ({str(exc).splitlines()[0]})") from None
    return _parse_manifest(source, document)


def manifest_table(manifest: Manifest, split: str = "train") -> pd.DataFrame:
    """One row per AOI: alias, city, tiles, buildings, tarball key, size in GB and md5."""
    rows = []
    for record in manifest.aois:
        tarball = record.tarballs.get(split)
        size = tarball.size if tarball else None
        rows.append({
            "aoi": record.name, "alias": record.alias, "city": record.city,
            "tiles": record.tiles, "buildings": record.buildings,
            "tarball": tarball.key if tarball else None,
            "size_gb": round(size / 1e9, 1) if size else None,
            "size_exact": tarball.size_exact if tarball else None,
            "md5": tarball.md5 if tarball else None,
        })
    return pd.DataFrame(rows)


def _parse_manifest(source: Path, document: object) -> Manifest:
    top = _fields(source, "manifest", document,
                  required={"schema_version": int, "dataset": str, "bucket": str, "region": str,
                            "endpoint": str, "licence": str, "citation": str, "aois": list},
                  optional={"licence_url": str, "attribution": str, "tile_keys": dict})
    if top["schema_version"] != 1:
        raise InputError(source, f"schema_version {top['schema_version']} is not supported (1)")
    if not re.match(r"^https?://", top["endpoint"]):
        raise InputError(source, f"endpoint {top['endpoint']!r} is not an http(s) URL")
    tile_keys = _parse_tile_keys(source, "tile_keys", top.get("tile_keys") or {})
    aois = tuple(_parse_aoi(source, f"aois[{i}]", item, tile_keys)
                 for i, item in enumerate(top["aois"]))
    if not aois:
        raise InputError(source, "aois: the list is empty")
    for attribute in ("name", "alias"):
        values = [getattr(a, attribute) for a in aois]
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            raise InputError(source, f"aois: duplicate {attribute} {duplicates}")
    return Manifest(source=source, dataset=top["dataset"], bucket=top["bucket"],
                    region=top["region"], endpoint=top["endpoint"].rstrip("/"),
                    licence=top["licence"], licence_url=top.get("licence_url", ""),
                    attribution=top.get("attribution", ""), citation=" ".join(
                        top["citation"].split()), aois=aois)


def _parse_aoi(source: Path, where: str, item: object,
               shared_keys: dict[str, TileKeys]) -> AoiRecord:
    raw = _fields(source, where, item,
                  required={"name": str, "alias": str, "number": int, "city": str,
                            "tiles": int, "buildings": int, "tarballs": dict},
                  optional={"tile_keys": dict})
    if not re.match(r"^AOI_\d+_[A-Za-z]+$", raw["name"]):
        raise InputError(source, f"{where}.name: {raw['name']!r} is not like AOI_2_Vegas")
    tarballs = {}
    for split, value in raw["tarballs"].items():
        _check_split(source, f"{where}.tarballs", split)
        tarballs[split] = _parse_tarball(source, f"{where}.tarballs.{split}", value)
    own_keys = _parse_tile_keys(source, f"{where}.tile_keys", raw.get("tile_keys") or {})
    raw_fields = {k: raw[k] for k in ("name", "alias", "number", "city", "tiles", "buildings")}
    return AoiRecord(**raw_fields, tarballs=tarballs, tile_keys={**shared_keys, **own_keys})


def _parse_tarball(source: Path, where: str, item: object) -> Tarball:
    raw = _fields(source, where, item, required={"key": str, "md5": str},
                  optional={"size": (int, type(None)), "size_exact": bool})
    if not _MD5.match(raw["md5"]):
        raise InputError(source, f"{where}.md5: {raw['md5']!r} is not 32 lowercase hex digits")
    size = raw.get("size")
    if size is not None and size <= 0:
        raise InputError(source, f"{where}.size: must be a positive number of bytes")
    return Tarball(key=raw["key"].lstrip("/"), md5=raw["md5"], size=size,
                   size_exact=raw.get("size_exact", False) and size is not None)


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
    unknown = sorted(set(item) - set(required) - set(optional))
    if unknown:
        raise InputError(source, f"{where}: unknown key(s) {unknown}; "
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
