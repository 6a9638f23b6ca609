"""Cut rasters into georeferenced uint8 RGB chips on a regular overlapping grid.

The grid: chips of ``size`` x ``size`` pixels, neighbours overlapping by ``overlap`` pixels
(stride ``size - overlap``), covering the whole raster. The last chip of each row and column is
shifted inward so that it ends exactly on the raster edge (650 px with 256/32 gives offsets
0, 224, 394). A raster narrower (or shorter) than a chip gets one chip in that direction,
padded on the right (bottom) with nodata; the padding is recorded in the index.

Rasters are read in windows only: full-width strips holding as many chip rows as fit in
:data:`STRIP_BYTES` (at least one), so a small tile is read once and a 20,000 x 20,000
orthomosaic chips in bounded memory. Pixels are stretched to uint8 with the per-AOI
percentile bounds of :mod:`aerialsam.prep.stretch` (``stretch.json`` beside the chips), never per
chip: valid pixels become 1..255 and 0 is the chips' nodata (source nodata and padding);
uint8 sources pass through unchanged with their own nodata. Chips are written atomically
(:func:`aerialsam.io.write_raster`), so a rerun skips the chips already there, whole, and
writes the others; a full disk stops the run with one error naming the chip, and the rerun
resumes.

Output folder::

    OUT_DIR/chips.csv                   the chip index (columns below)
    OUT_DIR/stretch.json                per-AOI stretch bounds, reused by later runs
    OUT_DIR/<AOI>/<chip_id>.tif         uint8 RGB GeoTIFF, source CRS, its window's transform

``chips.csv`` columns (stable: later stages read them):

- ``chip_id``: ``<image_id>_r<row_off>_c<col_off>``, unique in the folder.
- ``path``: the chip GeoTIFF, relative to the folder holding ``chips.csv``.
- ``source``: absolute path of the source raster.
- ``aoi``: the AOI (``AOI_2_Vegas``, from the SpaceNet 2 or 3 file name; for non-SpaceNet
  files the source's folder name).
- ``image_id``: ``AOI_2_Vegas_img1010`` for SpaceNet tiles, else the source file's stem.
- ``row_off``, ``col_off``: the chip's top-left pixel in the source raster.
- ``size``, ``overlap``: the grid the chip belongs to (one grid per folder).
- ``pad_right``, ``pad_bottom``: columns / rows of nodata padding (0 unless the raster is
  smaller than a chip); the chip's valid part is ``size - pad_*`` wide / high.
- ``crs``: the source CRS (``EPSG:4326``, or WKT when it has no EPSG code).
- ``minx``, ``miny``, ``maxx``, ``maxy``: the bounds of the whole chip (padding included)
  in ``crs`` units.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window, bounds, transform

from aerialsam.data import spacenet, spacenet3
from aerialsam.errors import InputError
from aerialsam.io import (
    OutputError,
    check_output_folder,
    open_raster,
    progress_bar,
    raster_complete,
    remove_temporaries,
    write_raster,
)
from aerialsam.prep.chip_index import (
    CHIP_COLUMNS,
    INDEX_FILE,
    merge_index,
    previous_index,
    read_index,
    write_index,
)
from aerialsam.prep.stretch import (
    OUT_NODATA,
    STRETCH_FILE,
    Stretch,
    apply_stretch,
    compute_stretch,
    load_stretches,
    save_stretches,
    source_bands,
)

log = logging.getLogger(__name__)

__all__ = ["CHIP_COLUMNS", "INDEX_FILE", "ChipReport", "Source", "check_aoi_name", "check_grid",
           "chip_offsets", "chip_sources", "chip_summary", "chip_tile", "chip_windows",
           "find_sources", "read_index", "resolve_stretches", "saved_stretches"]

RASTER_SUFFIXES = (".tif", ".tiff")
GDAL_CACHE_MB = 64
"""GDAL's block cache per process; its default (5 % of RAM) would grow with a large raster."""
STRIP_BYTES = 64 * 2**20
"""Budget of one windowed read; a strip still holds one chip row when that is larger."""
_AOI_NAME = re.compile(r"[A-Za-z0-9_.-]+")
"""An AOI name given by the user: a plain folder name (see :func:`check_aoi_name`)."""


@dataclass(frozen=True)
class Source:
    """One raster to chip, with the AOI whose stretch it uses and its image id."""

    path: Path
    aoi: str
    image_id: str


@dataclass
class ChipReport:
    """What a chipping run did.

    Attributes:
        out_dir: the chip folder.
        index: the chip index as written to ``chips.csv`` (all tiles, earlier runs included).
        written: chips written by this run.
        skipped: chips already complete, left as they were.
        tiles: tiles this run was asked to chip.
        failures: ``(source, problem)`` for each tile that could not be chipped.
    """

    out_dir: Path
    index: pd.DataFrame
    tiles: int = 0
    written: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def index_path(self) -> Path:
        """The ``chips.csv`` of the folder."""
        return self.out_dir / INDEX_FILE


def check_grid(size: int, overlap: int) -> None:
    """Refuse a chip size below 1 or an overlap outside ``0 <= overlap < size``.

    Raises:
        InputError: naming ``--size`` or ``--overlap``.
    """
    if size < 1:
        raise InputError("--size", f"must be at least 1, got {size}")
    if not 0 <= overlap < size:
        raise InputError("--overlap", f"must be >= 0 and smaller than --size ({size}), "
                                      f"got {overlap}")


def chip_offsets(length: int, size: int, overlap: int) -> list[int]:
    """Chip start offsets along one axis of ``length`` pixels.

    Offsets step by ``size - overlap``; the last chip is shifted inward to end exactly at
    ``length``. A raster shorter than a chip gives the single offset 0 (the chip is padded).
    """
    check_grid(size, overlap)
    if length <= size:
        return [0]
    return [*range(0, length - size, size - overlap), length - size]


def chip_windows(width: int, height: int, size: int, overlap: int) -> list[Window]:
    """The chip windows of a ``width`` x ``height`` raster, row by row (each ``size`` square)."""
    return [Window(col, row, size, size)
            for row in chip_offsets(height, size, overlap)
            for col in chip_offsets(width, size, overlap)]


def check_aoi_name(aoi: str, option: str = "--aoi") -> str:
    """Refuse an AOI name that is not a plain folder name; return it.

    The name becomes the folder of the AOI's chips (``OUT_DIR/<AOI>/``), so ``../escape``
    would write chips outside the chip folder. Any plain name passes (``AOI_2_Vegas``,
    ``myarea``: a raster need not be SpaceNet's): letters, digits, ``_``, ``.`` and ``-``,
    not ``.`` or ``..``.

    Raises:
        InputError: naming ``option``.
    """
    if not _AOI_NAME.fullmatch(aoi) or aoi in (".", ".."):
        raise InputError(option, f"{aoi!r} is not a plain AOI name (letters, digits, _ . -; "
                                 "it names the chips' folder)")
    return aoi


def find_sources(src: str | Path, aoi: str | None = None) -> list[Source]:
    """The rasters to chip: one GeoTIFF, a folder of them, or SpaceNet 2 or 3 AOI folder(s).

    Args:
        src: a ``.tif`` file; a folder in the SpaceNet 2 layout or the SpaceNet 3 layout (an
            AOI folder, e.g. ``SN3_roads_train_AOI_2_Vegas``, or a folder of them: its
            ``PS-RGB`` images); or a folder of GeoTIFFs.
        aoi: the AOI of every source (default: from the SpaceNet name, else the folder name).

    Raises:
        InputError: ``aoi`` is not a plain name (:func:`check_aoi_name`), ``src`` is missing,
            holds no GeoTIFF, or holds AOI folders of both SpaceNet 2 and SpaceNet 3.
    """
    if aoi is not None:
        check_aoi_name(aoi)
    src = Path(src)
    if src.is_file():
        paths = [src]
    elif src.is_dir():
        buildings, roads = spacenet.find_aoi_dirs(src), spacenet3.find_aoi_dirs(src)
        if buildings and roads:
            raise InputError(src, "holds SpaceNet 2 and SpaceNet 3 AOI folders; chip one "
                                  "dataset at a time (give an AOI folder)")
        if buildings:
            paths = [tile.image_path for tile in spacenet.find_tiles(src)]
        elif roads:
            paths = [tile.image_path for tile in spacenet3.find_road_tiles(src)]
        else:
            # Hidden files are no sources: a killed writer's temporary is one.
            paths = sorted(p for p in src.iterdir()
                           if p.suffix.lower() in RASTER_SUFFIXES and not p.name.startswith("."))
    else:
        raise InputError(src, "not found")
    if not paths:
        raise InputError(src, "no GeoTIFF (*.tif) found here")
    return [_source(path.resolve(), aoi) for path in paths]


def _source(path: Path, aoi: str | None) -> Source:
    try:
        name, number = spacenet.parse_image_id(path)
        return Source(path, aoi or name, f"{name}_img{number}")
    except InputError:
        return Source(path, aoi or path.parent.name, path.stem)


def chip_sources(src: str | Path | list[Source], out_dir: str | Path, size: int = 512,
                 overlap: int = 64, workers: int = 1, percentiles: tuple[float, float] = (2, 98),
                 sample_tiles: int = 32, seed: int = 0, stretch_path: str | Path | None = None,
                 aoi: str | None = None) -> ChipReport:
    """Chip every raster of ``src`` into ``out_dir``; write ``chips.csv`` and ``stretch.json``.

    A tile that cannot be read is reported in :attr:`ChipReport.failures` (and logged) while
    the others are chipped; none of its chips is left behind.

    Args:
        src: what :func:`find_sources` accepts, or a list of :class:`Source`.
        out_dir: the chip folder (made if needed).
        size: chip edge in pixels.
        overlap: pixels shared by neighbouring chips.
        workers: processes chipping tiles in parallel.
        percentiles: stretch percentiles for AOIs without saved bounds.
        sample_tiles: tiles sampled per AOI to compute the stretch.
        seed: seed of that sample.
        stretch_path: a ``stretch.json`` to reuse (default: the one in ``out_dir``, if any).
        aoi: force the AOI of every source (to reuse a saved stretch for new imagery).

    Raises:
        InputError: bad grid, no sources, or ``out_dir`` holds chips of another grid.
        OutputError: ``out_dir`` is a file, or a chip cannot be written (a full disk); the
            chips written so far are whole and a rerun skips them.
    """
    check_grid(size, overlap)
    if workers < 1:
        raise InputError("--workers", f"must be at least 1, got {workers}")
    out_dir = check_output_folder(out_dir)
    remove_temporaries(out_dir)
    sources = src if isinstance(src, list) else find_sources(src, aoi)
    previous = previous_index(out_dir, size, overlap)
    stretches = resolve_stretches(sources, out_dir, stretch_path, percentiles, sample_tiles, seed)
    report = ChipReport(out_dir, previous, tiles=len(sources))
    rows = []
    for source, result in _run_jobs(sources, out_dir, stretches, size, overlap, workers):
        if isinstance(result, str):
            report.failures.append((str(source.path), result))
            continue
        tile_rows, written = result
        rows += tile_rows
        report.written += written
        report.skipped += len(tile_rows) - written
    report.index = merge_index(previous, rows, [str(s.path) for s in sources])
    if len(report.index):  # a run where every tile failed leaves nothing behind
        if stretches != load_stretches(out_dir / STRETCH_FILE):
            save_stretches(out_dir / STRETCH_FILE, stretches)
        write_index(out_dir / INDEX_FILE, report.index)
        log.info("chips: %d written, %d already there; index %s", report.written,
                 report.skipped, out_dir / INDEX_FILE)
    if report.failures:
        log.info("%d of %d tiles could not be chipped: %s", len(report.failures),
                 len(sources), "; ".join(f"{p}: {why}" for p, why in report.failures))
    return report


def saved_stretches(out_dir: str | Path, stretch_path: str | Path | None) -> dict[str, Stretch]:
    """The per-AOI bounds already decided: ``out_dir/stretch.json`` and ``stretch_path``.

    Reads files only (no raster), so a command can check them before its slow work (a model
    load) and fail on a bad stretch file first.

    Raises:
        InputError: a missing or invalid ``stretch_path`` or ``out_dir/stretch.json``, or a
            ``stretch_path`` whose bounds differ from those saved in ``out_dir``.
    """
    out_dir = Path(out_dir)
    saved = load_stretches(out_dir / STRETCH_FILE)
    given = {}
    if stretch_path is not None:
        if not Path(stretch_path).exists():
            raise InputError(stretch_path, "stretch file not found")
        given = load_stretches(stretch_path)
    clash = sorted(a for a in given if a in saved and given[a] != saved[a])
    if clash:
        raise InputError(stretch_path, f"bounds of {clash} differ from those the chips in "
                                       f"{out_dir} were made with; chip into another folder")
    return {**saved, **given}


def resolve_stretches(sources: list[Source], out_dir: Path, stretch_path: str | Path | None,
                      percentiles: tuple[float, float] = (2, 98), sample_tiles: int = 32,
                      seed: int = 0) -> dict[str, Stretch]:
    """Per-AOI stretches: saved bounds for known AOIs, sampled bounds for the others.

    Saved bounds come from ``out_dir/stretch.json`` or ``stretch_path``
    (:func:`saved_stretches`); the others are computed from a sample of the sources.

    Raises:
        InputError: as :func:`saved_stretches`, or no readable tile to sample.
    """
    stretches = saved_stretches(out_dir, stretch_path)
    by_aoi: dict[str, list[Path]] = {}
    for source in sources:
        by_aoi.setdefault(source.aoi, []).append(source.path)
    missing = [name for name in by_aoi if name not in stretches]
    for name in missing:
        stretches[name] = compute_stretch(by_aoi[name], percentiles, sample_tiles, seed)
        log.info("stretch %s: low %s high %s from %d tiles", name,
                 [round(v) for v in stretches[name].low],
                 [round(v) for v in stretches[name].high], stretches[name].tiles_sampled)
    return stretches


def _run_jobs(sources: list[Source], out_dir: Path, stretches: dict[str, Stretch], size: int,
              overlap: int, workers: int) -> Iterator[tuple[Source, tuple[list[dict], int] | str]]:
    """Yield ``(source, (rows, written) or problem)`` for each tile, in parallel if asked."""
    bar = progress_bar(total=len(sources), desc="chipping", unit="tile")
    if workers == 1:
        for source in sources:
            yield source, _chip_job(source, out_dir, stretches[source.aoi], size, overlap)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_chip_job, s, out_dir, stretches[s.aoi], size, overlap): s
                       for s in sources}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
                    bar.update()
            except BaseException:
                # A full disk fails every tile still queued: stop them rather than wait.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    bar.close()


def _chip_job(source: Source, out_dir: Path, stretch: Stretch, size: int,
              overlap: int) -> tuple[list[dict], int] | str:
    """Chip one tile; a bad tile gives its problem as a string (so that others go on)."""
    try:
        return chip_tile(source, out_dir, stretch, size, overlap)
    except OutputError:
        raise  # the output's fault, not the tile's: every other tile would fail the same way
    except InputError as exc:
        return exc.problem


def chip_tile(source: Source, out_dir: str | Path, stretch: Stretch, size: int = 512,
              overlap: int = 64) -> tuple[list[dict], int]:
    """Chip one raster; return its index rows and how many chips were written (not skipped).

    Reads one strip of ``size`` rows at a time. When the tile is bad the chips written by
    this call are removed, so a bad tile leaves nothing behind; when a chip cannot be written
    (a full disk) those written are whole and stay for the rerun.

    Raises:
        InputError: the raster is missing, corrupt, truncated, has no CRS, or does not match
            the AOI's stretch (data type, bands).
        OutputError: a chip cannot be written, naming the chip.
    """
    out_dir = Path(out_dir)
    written: list[Path] = []
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), open_raster(source.path) as src:
            bands = _check_source(src, source, stretch)
            rows = []
            for strip in _strips(src, chip_offsets(src.height, size, overlap), size):
                rows += _chip_strip(src, source, out_dir, stretch, bands, strip, size,
                                    overlap, written)
    except RasterioError as exc:
        _remove(written)
        detail = str(exc.__cause__ or exc).strip()  # GDAL's own message is the cause
        first = detail.splitlines()[0] if detail else type(exc).__name__
        raise InputError(source.path, f"cannot read the raster, truncated or corrupt "
                                      f"({first})") from None
    except OutputError:
        raise
    except BaseException:
        _remove(written)
        raise
    return rows, len(written)


def _check_source(src: rasterio.DatasetReader, source: Source, stretch: Stretch) -> list[int]:
    bands = list(source_bands(src.count, source.path))
    if src.dtypes[0] != stretch.dtype:
        raise InputError(source.path, f"data type {src.dtypes[0]} differs from the {source.aoi} "
                                      f"stretch's {stretch.dtype}")
    return bands


def _strips(src: rasterio.DatasetReader, row_offsets: list[int], size: int) -> list[list[int]]:
    """Group consecutive chip rows so that each strip read stays within :data:`STRIP_BYTES`."""
    row_bytes = src.width * src.count * np.dtype(src.dtypes[0]).itemsize
    strips: list[list[int]] = []
    for row_off in row_offsets:
        if strips and (row_off + size - strips[-1][0]) * row_bytes <= STRIP_BYTES:
            strips[-1].append(row_off)
        else:
            strips.append([row_off])
    return strips


def _chip_strip(src: rasterio.DatasetReader, source: Source, out_dir: Path, stretch: Stretch,
                bands: list[int], row_offs: list[int], size: int, overlap: int,
                written: list[Path]) -> list[dict]:
    """Chip the chip rows ``row_offs`` from a single windowed read (stretched once)."""
    rows = [_index_row(src, source, row_off, col_off, size, overlap)
            for row_off in row_offs for col_off in chip_offsets(src.width, size, overlap)]
    todo = [row for row in rows if not raster_complete(out_dir / row["path"])]
    if not todo:
        return rows
    top = row_offs[0]
    height = min(row_offs[-1] + size, src.height) - top
    nodata = [src.nodatavals[b - 1] for b in bands]
    pixels = apply_stretch(src.read(bands, window=Window(0, top, src.width, height)), stretch,
                           nodata)
    for row in todo:
        r, c = row["row_off"] - top, row["col_off"]
        chip = pixels[:, r:r + size, c:c + size]
        fill = _out_nodata(stretch, nodata, padded=bool(row["pad_right"] or row["pad_bottom"]))
        if chip.shape[1:] != (size, size):  # a raster smaller than a chip: pad with nodata
            padded = np.full((3, size, size), fill, dtype=np.uint8)
            padded[:, :chip.shape[1], :chip.shape[2]] = chip
            chip = padded
        path = out_dir / row["path"]
        _write_chip(path, chip, src.crs, transform(_window(row), src.transform), fill)
        written.append(path)
    return rows


def _out_nodata(stretch: Stretch, nodata: list[float | None], padded: bool) -> int | None:
    """Stretched chips use 0; uint8 chips keep the source's nodata, or 0 when padded."""
    if not stretch.identity:
        return OUT_NODATA
    if nodata[0] is not None:
        return int(nodata[0])
    return OUT_NODATA if padded else None


def _window(row: dict) -> Window:
    return Window(row["col_off"], row["row_off"], row["size"], row["size"])


def _index_row(src: rasterio.DatasetReader, source: Source, row_off: int, col_off: int,
               size: int, overlap: int) -> dict:
    chip_id = f"{source.image_id}_r{row_off}_c{col_off}"
    window = Window(col_off, row_off, size, size)
    left, bottom, right, top = bounds(window, src.transform)
    return {"chip_id": chip_id, "path": f"{source.aoi}/{chip_id}.tif", "source": str(source.path),
            "aoi": source.aoi, "image_id": source.image_id, "row_off": row_off,
            "col_off": col_off, "size": size, "overlap": overlap,
            "pad_right": max(0, col_off + size - src.width),
            "pad_bottom": max(0, row_off + size - src.height), "crs": src.crs.to_string(),
            "minx": min(left, right), "miny": min(bottom, top),
            "maxx": max(left, right), "maxy": max(bottom, top)}


def _write_chip(path: Path, chip: np.ndarray, crs: rasterio.crs.CRS,
                chip_transform: rasterio.Affine, nodata: int | None) -> None:
    write_raster(path, chip, driver="GTiff", dtype="uint8", crs=crs, transform=chip_transform,
                 nodata=nodata, photometric="RGB", interleave="pixel")


def _remove(paths: list[Path]) -> None:
    """Delete chips of a failed tile, and the AOI folders this leaves empty."""
    for path in paths:
        path.unlink(missing_ok=True)
    for folder in {path.parent for path in paths}:
        with contextlib.suppress(OSError):  # not empty: other tiles' chips live there
            folder.rmdir()


def chip_summary(report: ChipReport) -> str:
    """One line describing a run, for the command line."""
    tiles = report.index["source"].nunique() if len(report.index) else 0
    failed = f"; {len(report.failures)} bad tiles skipped" if report.failures else ""
    return (f"{report.written} chips written, {report.skipped} already there; "
            f"{len(report.index)} chips from {tiles} tiles in {report.index_path}{failed}")

