"""Download SpaceNet 2 (buildings) or 3 (roads) from the public bucket: tiles or tarballs.

Two ways to get an AOI, both ending in the dataset's layout of DESIGN.md (the manifest names
it), so every later stage sees one layout whether the data came from ``demo``, a tarball or
tiles::

    <dest>/AOI_2_Vegas_Train/RGB-PanSharpen/RGB-PanSharpen_AOI_2_Vegas_img{N}.tif        buildings
    <dest>/AOI_2_Vegas_Train/geojson/buildings/buildings_AOI_2_Vegas_img{N}.geojson
    <dest>/SN3_roads_train_AOI_2_Vegas/PS-RGB/SN3_roads_train_AOI_2_Vegas_PS-RGB_img{N}.tif   roads
    <dest>/SN3_roads_train_AOI_2_Vegas/geojson_roads/…_geojson_roads_img{N}.geojson
    <dest>/SN3_roads_train_AOI_2_Vegas/geojson_roads_speed/…_geojson_roads_speed_img{N}.geojson

- :func:`download_tiles`: the first ``n`` tiles of an AOI. The tile ids come from listing the
  bucket prefix of the image key template (ListObjectsV2) and are taken in ascending numeric
  order of the tile number (``img2`` before ``img10``), keeping only ids that have both an image
  and a label GeoJSON. Image and GeoJSON are fetched concurrently by ``workers`` threads; each
  file is written under a temporary name and renamed when complete and verified (its md5
  against the ETag of a single-part upload; bytes that disagree are never kept). A rerun
  skips files present with their listed size; tiles are small, so an interrupted one starts
  again.
- :func:`download_tarball`: the tarballs of a split of an AOI (20+ GB for SpaceNet 2 Vegas;
  SpaceNet 3 ships its speed labels in a second tarball). Each streams to
  ``<dest>/.downloads/<name>.part``, resumes with HTTP Range after an interruption (also across
  runs), is checked against the md5 of the manifest (a mismatch deletes the partial, retries
  once, then fails giving both md5s), renamed to ``<name>`` only once verified, extracted safely
  (:mod:`aerialsam.data.extract`) into a staging folder, and the folder it fills (its
  ``holds``: the images, or ``geojson_roads_speed``) is moved into the AOI folder. A marker file
  in the AOI folder records each verified md5, so a rerun skips what is done.

Before a real download the free space at the destination is checked; :func:`plan_tarball`
(no network) and :func:`plan_tiles` (one listing) describe what a run would fetch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm.auto import tqdm

from aerialsam.data.download_plan import (
    NotEnoughSpaceError,
    Plan,
    PlannedObject,
    check_free_space,
    describe_plans,
)
from aerialsam.data.extract import find_aoi_folder, merge_into, safe_extract
from aerialsam.data.manifest import DEFAULT_DATASET, AoiRecord, Manifest, Tarball, load_manifest
from aerialsam.data.s3 import BucketClient, DownloadError, RetryPolicy
from aerialsam.errors import InputError
from aerialsam.io import check_output_folder, remove_temporaries, write_file

log = logging.getLogger(__name__)

DOWNLOADS_DIR = ".downloads"
COMPLETE_MARKER = ".aerialsam-download.json"
EXTRACT_FACTOR = 1.3
"""Extracted size / tarball size assumed by the free-space check (GeoTIFFs gzip poorly)."""


def resolve_manifest(manifest: Manifest | str | Path | None) -> Manifest:
    """A :class:`Manifest` as given, loaded from a path, or the default one."""
    return manifest if isinstance(manifest, Manifest) else load_manifest(manifest)


def plan_tarball(aoi: str, split: str, dest: str | Path,
                 manifest: Manifest | str | Path | None = None, *,
                 dataset: str = DEFAULT_DATASET) -> Plan:
    """What :func:`download_tarball` would fetch, from the manifest alone (no network)."""
    record = resolve_manifest(manifest).dataset(dataset).aoi(aoi)
    dest = Path(dest)
    plan = Plan(record.name, split, "tarball", dest / record.folder(split))
    verified = _verified_md5s(plan.folder)
    for tarball in _tarballs(record, split):
        archive = dest / DOWNLOADS_DIR / tarball.filename
        if tarball.md5 in verified:
            plan.present += 1
            plan.notes.append(f"{tarball.filename}: already downloaded and verified")
        elif archive.exists():
            plan.present += 1
            plan.notes.append(f"{archive} verified; would extract it")
        else:
            plan.objects.append(PlannedObject(tarball.key, archive, tarball.size,
                                              tarball.size_exact, tarball.md5))
            part = _part_path(archive)
            if part.exists():
                plan.notes.append(f"would resume after the {part.stat().st_size} bytes in {part}")
    return plan


def plan_tiles(aoi: str, n: int, dest: str | Path, split: str = "train",
               manifest: Manifest | str | Path | None = None, endpoint: str | None = None,
               retry: RetryPolicy | None = None, *, dataset: str = DEFAULT_DATASET) -> Plan:
    """What :func:`download_tiles` would fetch: lists the bucket, downloads nothing.

    Raises:
        InputError: ``n`` is not positive, or the manifest has no tile keys for ``split``.
        DownloadError: the listing fails.
    """
    if n < 1:
        raise InputError("--tiles", f"must be a positive number of tiles, not {n}")
    man = resolve_manifest(manifest)
    record = man.dataset(dataset).aoi(aoi)
    if split not in record.tile_keys:
        raise InputError(man.source, f"{record.name} has no per-tile keys for the {split} "
                                     f"split of {dataset}; use the tarball instead")
    client = BucketClient(endpoint or man.endpoint, retry)
    numbers, sizes = _list_tiles(client, record, split)
    if not numbers:
        prefix = record.tile_keys[split].image.replace("{aoi}", record.name).split("{n}")[0]
        raise DownloadError(f"{prefix}: no tiles listed under this prefix at {client.endpoint}; "
                            "check --endpoint and the manifest's tile_keys")
    if len(numbers) < n:
        log.warning("%s: only %d tiles with image and labels; taking all of them",
                    record.name, len(numbers))
    folder = Path(dest) / record.folder(split)
    plan = Plan(record.name, split, "tiles", folder)
    keys, layout = record.tile_keys[split], record.layout
    for number in numbers[:n]:
        pairs = ((keys.image_key(record.name, number), layout.image(folder, record.name, number)),
                 (keys.label_key(record.name, number), layout.label(folder, record.name, number)))
        for key, path in pairs:
            if _present(path, sizes.get(key)):
                plan.present += 1
            else:
                plan.objects.append(PlannedObject(key, path, sizes.get(key)))
    return plan


def _present(path: Path, size: int | None) -> bool:
    """A tile file counts as downloaded when it exists with the listed size.

    Files are renamed into place only when verified, so this catches what an older version
    or another tool left cut short, at the cost of one ``stat``.
    """
    try:
        return size is None or path.stat().st_size == size
    except OSError:
        return False


def plan_download(aois: list[str], split: str, dest: str | Path, tiles: int | None = None,
                  manifest: Manifest | str | Path | None = None,
                  endpoint: str | None = None, *, dataset: str = DEFAULT_DATASET) -> list[Plan]:
    """Plans for several AOIs: tarballs when ``tiles`` is ``None`` (no network), else tiles."""
    man = resolve_manifest(manifest)
    names = [man.dataset(dataset).aoi(a).name for a in aois]
    if tiles is None:
        return [plan_tarball(name, split, dest, man, dataset=dataset) for name in names]
    return [plan_tiles(name, tiles, dest, split, man, endpoint, dataset=dataset)
            for name in names]


def download_tiles(aoi: str, n: int, dest: str | Path, endpoint: str | None = None,
                   workers: int = 8, manifest: Manifest | str | Path | None = None, *,
                   dataset: str = DEFAULT_DATASET, split: str = "train",
                   retry: RetryPolicy | None = None, progress: bool = True) -> Path:
    """Download the first ``n`` tiles (image and label GeoJSON) of an AOI.

    Args:
        aoi: alias (``vegas``) or name (``AOI_2_Vegas``).
        n: how many tiles, in ascending tile-number order.
        dest: the raw data folder; the AOI folder is created inside it.
        endpoint: the bucket's base URL (default: the manifest's).
        workers: concurrent downloads.
        manifest: a :class:`Manifest`, a manifest path, or ``None`` for the default.
        dataset: ``buildings`` (SpaceNet 2) or ``roads`` (SpaceNet 3).
        split: ``train`` (the only split with per-tile keys in the packaged manifest).
        retry: retry policy for transient failures.
        progress: show a tqdm bar (files; on a terminal).

    Returns:
        The AOI folder (``<dest>/AOI_2_Vegas_Train``, ``<dest>/SN3_roads_train_AOI_2_Vegas``).

    Raises:
        DownloadError: a key is missing or forbidden, or retries are spent.
        NotEnoughSpaceError: the destination lacks room.
        OutputError: ``dest`` is a file, or a tile cannot be written (a full disk); the
            tiles written are whole and a rerun fetches only the others.
    """
    man = resolve_manifest(manifest)
    check_output_folder(dest)
    plan = plan_tiles(aoi, n, dest, split, man, endpoint, retry, dataset=dataset)
    remove_temporaries(plan.folder)
    check_free_space(Path(dest), plan.total_bytes)
    client = BucketClient(endpoint or man.endpoint, retry)
    total = len(plan.objects) + plan.present
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=total, initial=plan.present, unit="file", desc=f"{plan.aoi} tiles",
                 disable=None if progress else True) as bar:
        futures = [pool.submit(client.fetch, o.key, o.path) for o in plan.objects]
        _wait_all(futures, bar)
    log.info("%s: %d files in %s (%d were present)", plan.aoi, total, plan.folder, plan.present)
    return plan.folder


def download_tarball(aoi: str, split: str = "train", dest: str | Path = "data/raw",
                     endpoint: str | None = None,
                     manifest: Manifest | str | Path | None = None, *,
                     dataset: str = DEFAULT_DATASET, keep_archive: bool = False,
                     retry: RetryPolicy | None = None, progress: bool = True) -> Path:
    """Download, verify and extract the tarballs of one AOI and split into the dataset's layout.

    Args:
        aoi: alias (``vegas``) or name (``AOI_2_Vegas``).
        split: ``train`` or ``test``.
        dest: the raw data folder; the AOI folder is created inside it.
        endpoint: the bucket's base URL (default: the manifest's).
        manifest: a :class:`Manifest`, a manifest path, or ``None`` for the default.
        dataset: ``buildings`` (SpaceNet 2) or ``roads`` (SpaceNet 3: imagery and road labels,
            then the speed labels into ``geojson_roads_speed``; the test split is images only).
        keep_archive: keep the verified tarballs in ``<dest>/.downloads`` after extraction.
        retry: retry policy for transient failures.
        progress: show tqdm bars (bytes while downloading, files while extracting; on a
            terminal).

    Returns:
        The AOI folder (``<dest>/AOI_2_Vegas_Train``, ``<dest>/AOI_2_Vegas_Test_public``,
        ``<dest>/SN3_roads_train_AOI_2_Vegas``, ``<dest>/SN3_roads_test_public_AOI_2_Vegas``).

    Raises:
        DownloadError: missing or forbidden key, md5 mismatch twice, or retries spent.
        UnsafeArchiveError: a member would land outside the destination.
        NotEnoughSpaceError: the destination lacks room.
        OutputError: ``dest`` is a file, or a file cannot be written (a full disk); a rerun
            resumes the download from the bytes on disk.
    """
    man = resolve_manifest(manifest)
    record = man.dataset(dataset).aoi(aoi)
    tarballs = _tarballs(record, split)
    dest = check_output_folder(dest)
    folder = dest / record.folder(split)
    client = BucketClient(endpoint or man.endpoint, retry)
    for tarball in tarballs:
        if tarball.md5 in _verified_md5s(folder):
            log.info("%s: %s already downloaded and verified, skipping", folder,
                     tarball.filename)
            continue
        archive = dest / DOWNLOADS_DIR / tarball.filename
        if not archive.exists():
            _fetch_verified(client, tarball, archive, progress)
        _extract_and_place(archive, folder, tarball, record.name, progress)
        if not keep_archive:
            archive.unlink()
    with contextlib.suppress(OSError):
        (dest / DOWNLOADS_DIR).rmdir()  # only when empty: other downloads may be in progress
    return folder


def _tarballs(record: AoiRecord, split: str) -> tuple[Tarball, ...]:
    if split not in record.tarballs:
        raise InputError("--split", f"{record.name} has no {split!r} tarball in the "
                                    f"{record.dataset} manifest (has {sorted(record.tarballs)})")
    return record.tarballs[split]


def _list_tiles(client: BucketClient, record: AoiRecord,
                split: str) -> tuple[list[int], dict[str, int]]:
    """Tile numbers with both image and label, ascending; and every listed key's size."""
    keys = record.tile_keys[split]
    found: dict[str, dict[int, int]] = {}
    sizes: dict[str, int] = {}
    for kind, template in (("image", keys.image), ("label", keys.label)):
        filled = template.replace("{aoi}", record.name)
        before, after = filled.split("{n}")
        pattern = re.compile(re.escape(before) + r"(\d+)" + re.escape(after) + "$")
        found[kind] = {}
        for obj in client.list_objects(before):
            match = pattern.match(obj.key)
            if match:
                found[kind][int(match.group(1))] = obj.size
                sizes[obj.key] = obj.size
    unlabelled = sorted(set(found["image"]) - set(found["label"]))
    if unlabelled:
        log.warning("%s: %d image(s) without a label GeoJSON left out (first: img%d)",
                    record.name, len(unlabelled), unlabelled[0])
    return sorted(set(found["image"]) & set(found["label"])), sizes


def _wait_all(futures: list[Future], bar: tqdm) -> None:
    """Wait for every download; on the first failure cancel the rest and raise it."""
    try:
        for future in as_completed(futures):
            future.result()
            bar.update(1)
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def _part_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".part")


def _fetch_verified(client: BucketClient, tarball: Tarball, archive: Path,
                    progress: bool) -> None:
    """Download (resuming any partial) and md5-check a tarball; rename it into place."""
    part = _part_path(archive)
    part.parent.mkdir(parents=True, exist_ok=True)
    size = client.head(tarball.key).size
    if tarball.size_exact and size != tarball.size:
        raise DownloadError(f"{tarball.key}: the server has {size} bytes, the manifest says "
                            f"{tarball.size}; is the manifest or the mirror out of date?")
    for attempt in (1, 2):
        have = part.stat().st_size if part.exists() else 0
        check_free_space(archive.parent, size - min(have, size) + int(size * EXTRACT_FACTOR))
        with tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=tarball.filename, disable=None if progress else True) as bar:
            actual = client.fetch_resumable(tarball.key, part, size, bar.update)
        if actual == tarball.md5:
            os.replace(part, archive)
            return
        part.unlink(missing_ok=True)
        log.warning("%s: md5 mismatch (the manifest's %s, got %s); partial deleted%s", tarball.key,
                    tarball.md5, actual, ", downloading again" if attempt == 1 else "")
    raise DownloadError(f"{tarball.key}: md5 mismatch after a retry: the manifest's md5 is "
                        f"{tarball.md5}, the download's {actual}; the download was deleted")


def _extract_and_place(archive: Path, folder: Path, tarball: Tarball, aoi: str,
                       progress: bool) -> None:
    """Extract into a staging folder, move what the tarball holds into place, record it."""
    staging = folder.parent / f".extract-{folder.name}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        members = safe_extract(archive, staging, progress=progress)
        merge_into(find_aoi_folder(staging, folder.name, tarball.holds, aoi), folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    entries = [e for e in _marker_entries(folder) if e.get("key") != tarball.key]
    entries.append({"key": tarball.key, "md5": tarball.md5, "members": members})
    write_file(folder / COMPLETE_MARKER, json.dumps({"tarballs": entries}, indent=2).encode())


def _marker_entries(folder: Path) -> list[dict]:
    """The verified tarballs the AOI folder's marker records (none when unreadable)."""
    marker = folder / COMPLETE_MARKER
    if not marker.exists():
        return []
    try:
        document = json.loads(marker.read_text())
        # A marker written when an AOI had one tarball is that tarball's entry itself.
        entries = document.get("tarballs", [document])
    except (json.JSONDecodeError, AttributeError):
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _verified_md5s(folder: Path) -> set[str]:
    return {e.get("md5") for e in _marker_entries(folder)}


__all__ = ["DownloadError", "NotEnoughSpaceError", "Plan", "PlannedObject", "RetryPolicy",
           "check_free_space", "describe_plans", "download_tarball", "download_tiles",
           "plan_download", "plan_tarball", "plan_tiles", "resolve_manifest"]
