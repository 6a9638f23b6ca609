"""Masks for every chip of a chip index (``chips.csv`` written by :mod:`aerialsam.prep.chips`).

Labels are read once per source tile, in the tile's pixel coordinates; each chip's masks are
then computed on the chip's window grown by a margin (clipped to the tile), and cropped. So a
chip's masks are exactly the tile's masks cut at the chip window: neighbouring chips agree on
their overlap, a building cut by a chip edge gets no boundary along the cut, and buildings
just outside the chip still make contact pixels inside it. Padding (beyond the tile) is 0.

Road kinds (:data:`aerialsam.prep.road_masks.ROAD_KINDS`) read the tile's road centre lines
once, buffered in metres on the tile's grid, and cut each chip's mask from them the same way;
by default the labels are the SpaceNet 3 layout beside each source tile
(``geojson_roads/<AOI folder>_geojson_roads_img{N}.geojson``), building labels the SpaceNet 2
layout.

Output folder::

    OUT_DIR/masks.json                          building mask parameters (a rerun must match)
    OUT_DIR/road_masks.json                     road mask parameters (when road kinds are made)
    OUT_DIR/masks.csv                           chip_id, aoi, image_id, one path column per kind
    OUT_DIR/<kind>/<AOI>/<chip_id>.tif          one GeoTIFF per chip and kind, on the chip's grid

Masks are uint8 {0, 255}; ``distance`` is float32 pixels, exact within ``size`` pixels of the
chip (the whole tile for SpaceNet 2 tiles chipped at 512); ``road_distance`` float32 metres,
exact (it is capped). Masks already there, whole, are skipped: every mask is written atomically
(:func:`aerialsam.io.write_raster`), and one that an older version left cut short is written
again. A full disk stops the run with one error naming the mask; the rerun resumes.
``masks.csv`` has a column per building kind, and one per road kind once the folder holds road
masks.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from rasterio.errors import RasterioError
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from aerialsam.data import spacenet, spacenet3
from aerialsam.errors import InputError
from aerialsam.inputs import check_fields, read_json
from aerialsam.io import (
    OutputError,
    check_output_folder,
    progress_bar,
    raster_complete,
    record_params,
    remove_temporaries,
    write_file,
)
from aerialsam.prep import chips, masks, road_masks
from aerialsam.prep.road_masks import ROAD_KINDS, RoadParams

log = logging.getLogger(__name__)

PARAMS_FILE = "masks.json"
ROAD_PARAMS_FILE = "road_masks.json"
MASK_INDEX = "masks.csv"
DEFAULT_KINDS: tuple[str, ...] = ("footprint", "boundary", "contact")


def read_road_params(masks_dir: str | Path) -> RoadParams:
    """The road widths a mask folder was made with (its ``road_masks.json``).

    A folder without the file (no road masks made there yet) has the defaults.

    Raises:
        InputError: an unreadable file, or one whose values :class:`RoadParams` refuses.
    """
    path = Path(masks_dir) / ROAD_PARAMS_FILE
    if not path.is_file():
        return RoadParams()
    values = read_json(path)
    if not isinstance(values, dict):
        raise InputError(path, "expected a JSON object of road mask parameters")
    params = RoadParams(**check_fields(RoadParams, values, path))
    try:
        params.check()
    except InputError as exc:
        raise InputError(path, exc.problem) from None
    return params


@dataclass(frozen=True)
class MaskParams:
    """How the masks of a folder were made (saved as ``masks.json``)."""

    boundary_width: int = 3
    boundary_side: str = "inner"
    contact_spacing: float = 10


@dataclass
class MaskReport:
    """What a batch run did: masks written and skipped, and ``(source, problem)`` failures."""

    out_dir: Path
    tiles: int = 0
    written: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


def mask_path(out_dir: str | Path, chip: pd.Series | dict, kind: str) -> Path:
    """Where the ``kind`` mask of a chip index row lives: ``out_dir/<kind>/<chip path>``."""
    return Path(out_dir) / kind / str(chip["path"])


def spacenet_labels(source: str | Path, image_id: str) -> Path:
    """The building GeoJSON of a SpaceNet 2 tile: ``<AOI folder>/geojson/buildings/…``."""
    aoi_dir = Path(source).parent.parent
    return aoi_dir / spacenet.GEOJSON_DIR / f"buildings_{image_id}.geojson"


def spacenet3_labels(source: str | Path) -> Path:
    """The road GeoJSON of a SpaceNet 3 tile: ``<AOI folder>/geojson_roads/…_img{N}.geojson``.

    Raises:
        InputError: the source is not named like a SpaceNet 3 image.
    """
    tile = spacenet3.road_tile_at(source)
    return tile.geojson_path or spacenet3.geojson_path(Path(source).parent.parent, tile.number)


def write_chip_masks(chips_dir: str | Path, out_dir: str | Path,
                     kinds: Sequence[str] = DEFAULT_KINDS, labels_dir: str | Path | None = None,
                     params: MaskParams | None = None,
                     road_params: RoadParams | None = None) -> MaskReport:
    """Write the masks of every chip in ``chips_dir/chips.csv`` into ``out_dir``.

    A tile whose image or labels cannot be read is reported in :attr:`MaskReport.failures`
    (and logged) and none of its masks is left behind; the other tiles are processed.

    Args:
        chips_dir: the chip folder (holding ``chips.csv``).
        out_dir: the mask folder (made if needed).
        kinds: mask kinds to write (see :data:`aerialsam.prep.masks.ALL_KINDS`).
        labels_dir: a folder of ``<image_id>.geojson`` label files; by default the SpaceNet 2
            layout beside each source tile (``geojson/buildings/buildings_<image_id>.geojson``)
            for building kinds, the SpaceNet 3 layout (:func:`spacenet3_labels`) for road
            kinds.
        params: boundary and contact parameters.
        road_params: road widths and distance cap.

    Raises:
        InputError: no chip index, an unknown kind, bad parameters, or ``out_dir`` holding
            masks made with other parameters.
        OutputError: ``out_dir`` is a file, or a mask cannot be written (a full disk); the
            masks written so far are whole and a rerun skips them.
    """
    params = params or MaskParams()
    road_params = road_params or RoadParams()
    kinds = _check_kinds(kinds, params, road_params)
    index = chips.read_index(Path(chips_dir) / chips.INDEX_FILE)
    out_dir = check_output_folder(out_dir)
    remove_temporaries(out_dir)
    _check_params_file(out_dir, params, road_params, kinds)
    report = MaskReport(out_dir, tiles=index["source"].nunique())
    done: set[Path] = set()
    groups = index.groupby("source", sort=False)
    for source, rows in progress_bar(groups, total=report.tiles, desc="masks", unit="tile"):
        todo = []
        for (_, row), kind in itertools.product(rows.iterrows(), kinds):
            path = mask_path(out_dir, row, kind)
            if raster_complete(path):
                done.add(path)
            else:
                todo.append((row, kind))
        report.skipped += len(rows) * len(kinds) - len(todo)
        if not todo:
            continue
        image_id = str(rows["image_id"].iloc[0])
        try:
            written = _tile_masks(Path(source), image_id, labels_dir, todo, out_dir, params,
                                  road_params)
        except OutputError:
            raise  # the folder's fault, not the tile's: every other tile would fail too
        except (InputError, RasterioError) as exc:
            problem = exc.problem if isinstance(exc, InputError) else str(exc).splitlines()[0]
            where = exc.source if isinstance(exc, InputError) else source
            report.failures.append((str(where), problem))
            log.info("%s: %s", where, problem)
            continue
        report.written += len(written)
        done.update(written)
    _write_mask_index(out_dir, index, kinds, done)
    log.info("masks: %d written, %d already there, %d of %d tiles failed", report.written,
             report.skipped, len(report.failures), report.tiles)
    return report


def _check_kinds(kinds: Sequence[str], params: MaskParams,
                 road_params: RoadParams) -> list[str]:
    unknown = [k for k in kinds if k not in masks.ALL_KINDS]
    if unknown or not kinds:
        raise InputError("--kinds", f"unknown mask kind(s) {unknown}; choose from "
                                    f"{', '.join(masks.ALL_KINDS)}")
    # Validate parameters once, before any tile is read.
    masks.boundary_mask(np.zeros((1, 1), bool), params.boundary_width, params.boundary_side)
    masks.contact_mask([], (1, 1), params.contact_spacing)
    road_params.check()
    return list(dict.fromkeys(kinds))


def _check_params_file(out_dir: Path, params: MaskParams, road_params: RoadParams,
                       kinds: list[str]) -> None:
    """Save the parameters of each family made; refuse a folder made with others."""
    if any(k in masks.MASK_KINDS for k in kinds):
        record_params(out_dir, PARAMS_FILE, asdict(params), "masks")
    if any(k in ROAD_KINDS for k in kinds):
        record_params(out_dir, ROAD_PARAMS_FILE, asdict(road_params), "road masks")


def _labels_path(source: Path, image_id: str, labels_dir: str | Path | None,
                 roads: bool) -> Path:
    """A tile's label file: ``labels_dir/<image_id>.geojson``, else beside the tile."""
    if labels_dir:
        return Path(labels_dir) / f"{image_id}.geojson"
    return spacenet3_labels(source) if roads else spacenet_labels(source, image_id)


def _tile_masks(source: Path, image_id: str, labels_dir: str | Path | None,
                todo: list[tuple[pd.Series, str]], out_dir: Path, params: MaskParams,
                road_params: RoadParams) -> list[Path]:
    """Write the masks of one tile's chips; return their paths.

    When the tile is bad, the masks this call wrote are removed; when a mask cannot be
    written (a full disk), those written are whole and stay for the rerun.
    """
    grid = masks.read_grid(source)
    makers = {}
    for roads in (False, True):
        if not any((kind in ROAD_KINDS) == roads for _, kind in todo):
            continue
        labels = _labels_path(source, image_id, labels_dir, roads)
        if not labels.exists():
            raise InputError(labels, f"label file of {source.name} not found")
        makers[roads] = (_road_maker(labels, grid, source, road_params) if roads
                         else _building_maker(labels, grid, source, params))
    written: list[Path] = []
    try:
        for row, kind in todo:
            mask = makers[kind in ROAD_KINDS](row, kind)
            chip_grid = masks.Grid(mask.shape, grid.crs,
                                   window_transform(_window(row), grid.transform))
            written.append(masks.write_mask(mask_path(out_dir, row, kind), mask, chip_grid))
    except OutputError:
        raise
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


ChipMaker = Callable[[pd.Series, str], np.ndarray]


def _building_maker(labels: Path, grid: masks.Grid, source: Path,
                    params: MaskParams) -> ChipMaker:
    """Read a tile's buildings once; return the function making each chip's mask."""
    polygons = masks.read_labels(labels, grid, source)
    tree = shapely.STRtree(polygons)
    return lambda row, kind: chip_mask(polygons, tree, grid.shape, row, kind, params)


def _road_maker(labels: Path, grid: masks.Grid, source: Path,
                road_params: RoadParams) -> ChipMaker:
    """Read a tile's roads once (buffered in metres); return the chip mask function."""
    roads = road_masks.read_road_labels(labels, grid, source, road_params)
    return lambda row, kind: road_masks.chip_road_mask(roads, grid.shape, row, kind,
                                                       road_params)


def _window(row: pd.Series | dict) -> Window:
    return Window(int(row["col_off"]), int(row["row_off"]), int(row["size"]), int(row["size"]))


def chip_mask(polygons: np.ndarray, tree: shapely.STRtree, tile_shape: tuple[int, int],
              row: pd.Series | dict, kind: str, params: MaskParams) -> np.ndarray:
    """One chip's mask, equal to the tile's mask cut at the chip window (padding is 0).

    Args:
        polygons: the tile's buildings in tile pixel coordinates.
        tree: an STR-tree over ``polygons``.
        tile_shape: ``(rows, columns)`` of the tile.
        row: the chip's index row (``row_off``, ``col_off``, ``size``).
        kind: the mask kind.
        params: boundary and contact parameters.
    """
    size, row_off, col_off = int(row["size"]), int(row["row_off"]), int(row["col_off"])
    # Context around the chip: the boundary looks width // 2 px out; distance up to `size`.
    margin = size if kind == "distance" else params.boundary_width
    r0, c0 = max(0, row_off - margin), max(0, col_off - margin)
    r1 = min(tile_shape[0], row_off + size + margin)
    c1 = min(tile_shape[1], col_off + size + margin)
    reach = params.contact_spacing  # buildings this close to the window can make contact in it
    near = polygons[tree.query(shapely.box(c0 - reach, r0 - reach, c1 + reach, r1 + reach))]
    shifted = shapely.transform(near, lambda xy: xy - np.array([c0, r0], dtype=float))
    window = masks.make_mask(shifted, (r1 - r0, c1 - c0), kind, params.boundary_width,
                             params.boundary_side, params.contact_spacing)
    out = np.zeros((size, size), dtype=window.dtype)
    valid_rows = min(size, tile_shape[0] - row_off)
    valid_cols = min(size, tile_shape[1] - col_off)
    out[:valid_rows, :valid_cols] = window[row_off - r0:row_off - r0 + valid_rows,
                                           col_off - c0:col_off - c0 + valid_cols]
    return out


def _write_mask_index(out_dir: Path, index: pd.DataFrame, kinds: list[str],
                      done: set[Path]) -> None:
    """``masks.csv``: each chip with the relative path of each of its masks ('' if absent).

    A mask of this run's ``kinds`` counts when it is whole (``done``); one of another kind,
    when its file exists.
    """
    table = index[["chip_id", "aoi", "image_id"]].copy()
    roads = [k for k in ROAD_KINDS if (out_dir / k).is_dir()]
    for kind in (*masks.MASK_KINDS, *roads):
        paths = [Path(kind) / str(p) for p in index["path"]]
        there = [out_dir / p in done if kind in kinds else (out_dir / p).exists()
                 for p in paths]
        table[kind] = [str(p) if ok else "" for p, ok in zip(paths, there, strict=True)]
    write_file(out_dir / MASK_INDEX, table.to_csv(index=False).encode())


def mask_summary(report: MaskReport) -> str:
    """One line describing a batch run, for the command line."""
    return (f"{report.written} masks written, {report.skipped} already there, "
            f"{len(report.failures)} of {report.tiles} tiles failed; in {report.out_dir}")
