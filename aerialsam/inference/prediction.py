"""Predict a folder of rasters: probability GeoTIFFs, polygons, SpaceNet proposal CSVs.

Output folder::

    OUT_DIR/predict.json              the parameters (a rerun must match them)
    OUT_DIR/stretch.json              the per-AOI stretch the rasters were read with
    OUT_DIR/prob/<image_id>.tif       float32 building probability on the image's grid
    OUT_DIR/polygons/<image_id>.gpkg  georeferenced building polygons (QGIS, GDAL)
    OUT_DIR/csv/<image_id>.csv        SpaceNet proposals of the image (pixel coordinates)
    OUT_DIR/proposals.csv             all images of the run, ready for ``aerialsam score``
    OUT_DIR/seconds.json              how long each image took (read, infer, stitch, vectorize)

An image whose three files exist is skipped, so an interrupted run picks up where it
stopped; its time is read from ``seconds.json``, so the run's speed stays the speed of the
prediction, not of the skipping. Large rasters are vectorized in strips of rows with a
margin, so that neither the probabilities nor the labels of a whole orthomosaic are held at
once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from rasterio.windows import Window
from tqdm.auto import tqdm

from aerialsam.errors import InputError
from aerialsam.inference.tiling import ChipModel, predict_raster
from aerialsam.inference.vectorize import (
    MIN_AREA,
    georeference,
    proposals_frame,
    vectorize,
    write_proposals_csv,
    write_vector,
)
from aerialsam.io import atomic_path, open_raster, record_params
from aerialsam.prep.chips import Source, find_sources, resolve_stretches
from aerialsam.prep.stretch import (
    STRETCH_FILE,
    Stretch,
    load_stretches,
    save_stretches,
    source_bands,
)

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
        """The run's combined SpaceNet proposal CSV."""
        return self.out_dir / PROPOSALS_FILE


def output_paths(out_dir: Path, image: str) -> dict[str, Path]:
    """The probability, polygon and CSV files of one image in a prediction folder."""
    return {"prob": out_dir / "prob" / f"{image}.tif",
            "polygons": out_dir / "polygons" / f"{image}.gpkg",
            "csv": out_dir / "csv" / f"{image}.csv"}


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
                   stretch_path: str | Path | None = None) -> PredictReport:
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

    Raises:
        InputError: no rasters, a folder holding other predictions, or a bad raster.
    """
    out_dir = Path(out_dir)
    sources = src if isinstance(src, list) else find_sources(src)
    for source in sources:  # refuse unreadable rasters before the folder is claimed
        with open_raster(source.path) as raster:
            source_bands(raster.count, source.path)
    record_params(out_dir, PARAMS_FILE, {**params, "tile": tile.__dict__,
                                         "vectorize": vector.__dict__}, "predictions")
    stretches = resolve_stretches(sources, out_dir, stretch_path)
    if stretches != load_stretches(out_dir / STRETCH_FILE):
        save_stretches(out_dir / STRETCH_FILE, stretches)
    report = PredictReport(out_dir)
    times = _read_times(out_dir / TIMES_FILE)
    for source in tqdm(sources, desc="predicting", unit="image", disable=None):
        image = source.image_id
        report.image_ids.append(image)
        paths = output_paths(out_dir, image)
        if all(p.exists() for p in paths.values()):
            report.skipped += 1
        else:
            started = time.perf_counter()
            predict_one(source, paths, make_model, stretches[source.aoi], tile, vector)
            times[image] = time.perf_counter() - started
            with atomic_path(out_dir / TIMES_FILE) as tmp:
                tmp.write_text(json.dumps(times, indent=1) + "\n")
            report.written += 1
        if image in times:
            report.seconds[image] = times[image]
    _combine_csvs(out_dir, report.image_ids)
    log.info("predictions: %d images written, %d already there; proposals %s",
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
                stretch: Stretch, tile: TileOptions, vector: VectorizeOptions) -> None:
    """Probabilities, polygons and proposal CSV of one raster (each written atomically)."""
    with open_raster(source.path) as src:
        model = make_model(source, src)
        transform, crs = src.transform, src.crs
    predict_raster(source.path, model, paths["prob"], tile.size, tile.overlap, tile.batch_size,
                   stretch=stretch, tta=tile.tta)
    polygons = vectorize_raster(paths["prob"], vector)
    write_proposals_csv(proposals_frame({source.image_id: polygons}), paths["csv"])
    write_vector(georeference(polygons, transform, crs), paths["polygons"])


def _combine_csvs(out_dir: Path, image_ids: list[str]) -> None:
    """Write ``proposals.csv``: the per-image CSVs of ``image_ids``, in order."""
    tables = [pd.read_csv(output_paths(out_dir, image)["csv"]) for image in image_ids]
    if not tables:
        raise InputError(out_dir, "no image was predicted")
    with atomic_path(out_dir / PROPOSALS_FILE) as tmp:
        pd.concat(tables, ignore_index=True).to_csv(tmp, index=False)
