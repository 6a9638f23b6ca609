"""Predict a folder of rasters: probability GeoTIFFs, polygons, SpaceNet proposal CSVs.

Output folder::

    OUT_DIR/predict.json              the parameters (a rerun must match them)
    OUT_DIR/stretch.json              the per-AOI stretch the rasters were read with
    OUT_DIR/prob/<image_id>.tif       float32 building probability on the image's grid
    OUT_DIR/polygons/<image_id>.gpkg  georeferenced building polygons (QGIS, GDAL)
    OUT_DIR/csv/<image_id>.csv        SpaceNet proposals of the image (pixel coordinates)
    OUT_DIR/proposals.csv             all images of the run, ready for ``aerialsam score``
    OUT_DIR/seconds.json              how long each image took (read, infer, stitch, vectorize)

An image is named by its SpaceNet image id (``AOI_2_Vegas_img1010``) when its file name has
one, else by the file name's stem (``myortho.tif`` gives ``myortho``); names and output paths
are checked before any model runs. An image whose three files exist is skipped, so an
interrupted run picks up where it stopped; its time is read from ``seconds.json``, so the
run's speed stays the speed of the prediction, not of the skipping. Large rasters are
vectorized in strips of rows with a margin, so that neither the probabilities nor the labels
of a whole orthomosaic are held at once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from aerialsam.errors import InputError
from aerialsam.inference.tiling import ChipModel, check_image, predict_raster
from aerialsam.inference.vectorize import (
    MIN_AREA,
    georeference,
    vectorize,
    write_proposals_csv,
    write_vector,
)
from aerialsam.io import atomic_path, check_output_folder, open_raster, progress_bar, record_params
from aerialsam.prep.chips import Source, find_sources, resolve_stretches
from aerialsam.prep.stretch import STRETCH_FILE, Stretch, load_stretches, save_stretches

log = logging.getLogger(__name__)

PARAMS_FILE = "predict.json"
PROPOSALS_FILE = "proposals.csv"
TIMES_FILE = "seconds.json"
STRIP_ROWS = 4096
"""Rasters taller than this are vectorized in strips of this many rows."""
STRIP_MARGIN = 256
"""Rows read above and below each strip, so that buildings across its edges stay whole."""

ChipModelFactory = Callable[[Source, rasterio.DatasetReader], ChipModel]
"""Makes the chip model of one raster (prompted models need that raster's prompts)."""


@dataclass(frozen=True)
class VectorizeOptions:
    """How probabilities become polygons (see :func:`aerialsam.inference.vectorize.vectorize`)."""

    threshold: float = 0.5
    watershed: bool = True
    simplify: float = 1.0
    min_area: float = MIN_AREA


@dataclass(frozen=True)
class TileOptions:
    """The chip grid of tiled inference (see :func:`aerialsam.inference.tiling.predict_raster`)."""

    size: int = 512
    overlap: int = 64
    batch_size: int = 4
    tta: bool = False


class Outputs(Protocol):
    """What a prediction writes of each image besides its probabilities, and how.

    :class:`BuildingOutputs` (polygons and SpaceNet 2 proposals) and
    :class:`aerialsam.inference.road_prediction.RoadOutputs` (a road graph and SpaceNet 3
    roads) share the rest of the run: checks, stretch, skipping, timing.
    """

    combined: str
    """The file name of the run's combined CSV (``proposals.csv``, ``roads.csv``)."""

    def paths(self, out_dir: Path, image: str) -> dict[str, Path]:
        """The files of one image, ``prob`` (the probability GeoTIFF) among them."""

    def params(self) -> dict[str, Any]:
        """The options recorded in ``predict.json`` (a rerun must match)."""

    def write(self, source: Source, paths: dict[str, Path], transform: Affine,
              crs: CRS | None) -> None:
        """Write the image's files other than ``prob`` from ``paths["prob"]``."""

    def combine(self, out_dir: Path, image_ids: list[str]) -> None:
        """Write the combined CSV of ``image_ids`` from their own CSVs."""


@dataclass(frozen=True)
class BuildingOutputs:
    """Building polygons (GeoPackage) and SpaceNet 2 proposals (CSV) of each image."""

    vector: VectorizeOptions = VectorizeOptions()
    combined: str = PROPOSALS_FILE

    def paths(self, out_dir: Path, image: str) -> dict[str, Path]:
        """See :func:`output_paths`."""
        return output_paths(out_dir, image)

    def params(self) -> dict[str, Any]:
        """The vectorizing options."""
        return {"vectorize": self.vector.__dict__}

    def write(self, source: Source, paths: dict[str, Path], transform: Affine,
              crs: CRS | None) -> None:
        """Polygons from the probabilities; the image's proposal CSV and GeoPackage."""
        polygons = vectorize_raster(paths["prob"], self.vector)
        write_proposals_csv(image_proposals(source.image_id, polygons), paths["csv"])
        write_vector(georeference(polygons, transform, crs), paths["polygons"])

    def combine(self, out_dir: Path, image_ids: list[str]) -> None:
        """Write ``proposals.csv``."""
        combine_csvs(out_dir, [self.paths(out_dir, i)["csv"] for i in image_ids],
                     self.combined)


@dataclass
class PredictReport:
    """What a prediction run did: its folder, images, written and skipped counts, and times.

    The times are the seconds each image took when it was predicted (this run or the one that
    wrote it).
    """

    out_dir: Path
    image_ids: list[str] = field(default_factory=list)
    written: int = 0
    skipped: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    combined: str = PROPOSALS_FILE

    @property
    def total_seconds(self) -> float:
        """Seconds the images took to predict; NaN when an image has no recorded time.

        An image has none when its folder was written before times were kept.
        """
        if any(image not in self.seconds for image in self.image_ids):
            return float("nan")
        return sum(self.seconds[image] for image in self.image_ids)

    @property
    def proposals_path(self) -> Path:
        """The run's combined CSV: SpaceNet 2 proposals, or SpaceNet 3 roads."""
        return self.out_dir / self.combined


def output_paths(out_dir: Path, image: str) -> dict[str, Path]:
    """The probability, polygon and CSV files of one image in a prediction folder."""
    return {"prob": out_dir / "prob" / f"{image}.tif",
            "polygons": out_dir / "polygons" / f"{image}.gpkg",
            "csv": out_dir / "csv" / f"{image}.csv"}


def check_sources(sources: list[Source], out_dir: str | Path | None = None,
                  paths: Callable[[Path, str], dict[str, Path]] = output_paths) -> None:
    """Refuse, before any model is loaded, inputs that no prediction could finish.

    Every image must pass :func:`aerialsam.inference.tiling.check_image` (readable, with
    pixels, grey or RGB bands, some valid data); no two images may share an image id (their
    outputs would overwrite each other); and with ``out_dir``, the output folder and each
    image's output files must be writable names (no file in the way of the folder, no
    folder in the way of a file; ``paths`` names them).

    Raises:
        InputError: naming the first file at fault.
    """
    seen: dict[str, Path] = {}
    for source in sources:
        check_image(source.path)
        if source.image_id in seen:
            raise InputError(source.path, f"has the image id {source.image_id!r} of "
                                          f"{seen[source.image_id]}: their predictions would "
                                          "overwrite each other; predict them separately")
        seen[source.image_id] = source.path
    if out_dir is None:
        return
    out_dir = check_output_folder(out_dir)
    for source in sources:
        for path in paths(out_dir, source.image_id).values():
            if path.is_dir():
                raise InputError(path, f"is a folder: the prediction of {source.path.name} "
                                       "cannot be written there")


def image_proposals(image_id: str, polygons: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One image's polygons as SpaceNet proposals, under its image id whatever its name.

    Columns ``ImageId``, ``BuildingId`` (0..), ``Confidence``, ``geometry`` (pixels);
    ``attrs["image_ids"]`` lists the image, so an image without polygons still gets a row.
    """
    frame = gpd.GeoDataFrame(
        {"ImageId": [image_id] * len(polygons), "BuildingId": np.arange(len(polygons)),
         "Confidence": polygons["confidence"].to_numpy(dtype=float)},
        geometry=np.asarray(polygons.geometry.array))
    frame.attrs["image_ids"] = [image_id]
    return frame


def vectorize_raster(prob_path: str | Path, options: VectorizeOptions = VectorizeOptions(),
                     strip_rows: int = STRIP_ROWS, margin: int = STRIP_MARGIN
                     ) -> gpd.GeoDataFrame:
    """Polygons (pixel coordinates) of a probability GeoTIFF, strip by strip.

    Band 1 is the building probability; a band 2 (contact between buildings, from models
    trained on it) splits touching buildings, else a watershed does (``options.watershed``).
    A polygon belongs to the strip holding its centroid; each strip is read with ``margin``
    extra rows on both sides, so only buildings taller than the margin can be cut.
    """
    with open_raster(prob_path, require_crs=False) as src:
        parts = []
        for top in range(0, src.height, strip_rows):
            start = max(0, top - margin)
            stop = min(src.height, top + strip_rows + margin)
            window = Window(0, start, src.width, stop - start)
            prob = src.read(1, window=window)
            contact = src.read(2, window=window) if src.count > 1 else None
            polys = vectorize(prob, options.threshold, contact=contact,
                              watershed=options.watershed and contact is None,
                              simplify=options.simplify, min_area=options.min_area)
            polys["geometry"] = shapely.transform(np.asarray(polys.geometry.array),
                                                  lambda xy, s=start: xy + [0.0, s])
            centre = shapely.get_y(shapely.centroid(np.asarray(polys.geometry.array)))
            parts.append(polys[(centre >= top) & (centre < top + strip_rows)])
    frame = pd.concat(parts, ignore_index=True)
    frame["label"] = np.arange(1, len(frame) + 1, dtype=np.int32)
    return gpd.GeoDataFrame(frame, geometry="geometry")


def predict_images(src: str | Path | list[Source], out_dir: str | Path,
                   make_model: ChipModelFactory, params: dict, tile: TileOptions = TileOptions(),
                   vector: VectorizeOptions = VectorizeOptions(),
                   stretch_path: str | Path | None = None,
                   outputs: Outputs | None = None) -> PredictReport:
    """Predict every raster of ``src`` (a GeoTIFF, a folder, SpaceNet AOI folders).

    Args:
        src: what :func:`aerialsam.prep.chips.find_sources` accepts, or its result.
        out_dir: the prediction folder (layout in the module docstring).
        make_model: the chip model of each raster.
        params: what the model is (name, variant, checkpoint, mode, …), recorded with the
            grid and vectorizing options in ``predict.json``; a rerun must match.
        tile: chip grid and batching.
        vector: polygon options.
        stretch_path: per-AOI stretch bounds (the chips' ``stretch.json``) for uint16
            imagery; AOIs without saved bounds get bounds sampled from their rasters.
        outputs: what is written of each image (default: buildings, with ``vector``).

    Raises:
        InputError: no rasters, a folder holding other predictions, or inputs
            :func:`check_sources` refuses.
    """
    out_dir = Path(out_dir)
    sources = src if isinstance(src, list) else find_sources(src)
    outputs = outputs or BuildingOutputs(vector)
    check_sources(sources, out_dir, outputs.paths)  # before the folder is claimed
    record_params(out_dir, PARAMS_FILE, {**params, "tile": tile.__dict__, **outputs.params()},
                  "predictions")
    stretches = resolve_stretches(sources, out_dir, stretch_path)
    if stretches != load_stretches(out_dir / STRETCH_FILE):
        save_stretches(out_dir / STRETCH_FILE, stretches)
    report = PredictReport(out_dir, combined=outputs.combined)
    times = _read_times(out_dir / TIMES_FILE)
    for source in progress_bar(sources, desc="predicting", unit="image"):
        image = source.image_id
        report.image_ids.append(image)
        paths = outputs.paths(out_dir, image)
        if all(p.exists() for p in paths.values()):
            report.skipped += 1
        else:
            started = time.perf_counter()
            predict_one(source, paths, make_model, stretches[source.aoi], tile, outputs)
            times[image] = time.perf_counter() - started
            with atomic_path(out_dir / TIMES_FILE) as tmp:
                tmp.write_text(json.dumps(times, indent=1) + "\n")
            report.written += 1
        if image in times:
            report.seconds[image] = times[image]
    outputs.combine(out_dir, report.image_ids)
    log.info("predictions: %d images written, %d already there; combined in %s",
             report.written, report.skipped, report.proposals_path)
    return report


def _read_times(path: Path) -> dict[str, float]:
    """The recorded seconds per image of a prediction folder (none yet: empty).

    Raises:
        InputError: the file is not a JSON object of numbers.
    """
    if not path.exists():
        return {}
    try:
        times = json.loads(path.read_text())
        return {str(image): float(seconds) for image, seconds in times.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise InputError(path, f"not a JSON object of seconds per image ({exc}); delete the "
                               "prediction folder to predict and time its images again") from exc


def predict_one(source: Source, paths: dict[str, Path], make_model: ChipModelFactory,
                stretch: Stretch, tile: TileOptions, outputs: Outputs) -> None:
    """Probabilities and the other outputs of one raster (each written atomically)."""
    with open_raster(source.path) as src:
        model = make_model(source, src)
        transform, crs = src.transform, src.crs
    predict_raster(source.path, model, paths["prob"], tile.size, tile.overlap, tile.batch_size,
                   stretch=stretch, tta=tile.tta)
    outputs.write(source, paths, transform, crs)


def combine_csvs(out_dir: Path, csvs: list[Path], name: str) -> None:
    """Write ``out_dir/name``: the per-image CSVs, in order."""
    # an image id such as "0012" (from a file name) stays text
    tables = [pd.read_csv(path, dtype={"ImageId": str}) for path in csvs]
    if not tables:
        raise InputError(out_dir, "no image was predicted")
    with atomic_path(out_dir / name) as tmp:
        pd.concat(tables, ignore_index=True).to_csv(tmp, index=False)
