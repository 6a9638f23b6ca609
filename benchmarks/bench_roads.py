"""Benchmark: road inference, graph extraction included, against building inference on the
same SpaceNet 3-like tiles with the same model; where a road tile's time goes.

Tiles: ``--tiles`` synthetic Vegas tiles of the road demo
(:func:`aerialsam.data.demo_roads.make_road_demo`: 1300 x 1300 px, 3-band uint16, made once
under ``--data`` and reused; tiles without roads are skipped), read with one per-AOI stretch
computed once and given to every run (so no run pays for sampling it). Model: a random-weight
U-Net (``small``, two outputs) or SAM 2.1 tiny (random weights, no prompt, two outputs, at
``--image-size``), chip grid ``--size`` / ``--overlap``, ``--batch-size`` chips per call, CPU,
torch's default threads.

Each path is :func:`aerialsam.inference.prediction.predict_images`, end to end, into a fresh
folder:

- ``road``: with :class:`~aerialsam.inference.road_prediction.RoadOutputs`: the probability
  GeoTIFF, then :func:`~aerialsam.inference.road_vectorize.read_road_graph` (mask, skeleton,
  clean graph), the SpaceNet 3 CSV rows and the GeoPackage of each tile;
- ``building``, the baseline: the default building outputs: the same probability GeoTIFF,
  then polygons (:func:`~aerialsam.inference.prediction.vectorize_raster`), the SpaceNet 2
  proposal CSV and the GeoPackage.

The model's output is identical in both paths, so their ratio is the price of the road
outputs. Each run is split, from inside the same run (the chip model and the outputs are
wrapped with stopwatches, nothing is run twice): ``predict_raster_s`` (reading, stretching,
chipping, the model, blending, writing the probability GeoTIFF), of which ``chip_model_s`` is
the model calls alone, and ``extract_s``, the outputs' ``write`` (graph or polygons, CSV,
GeoPackage); ``total_s`` is the whole ``predict_images`` call. The paths take turns within each
of ``--repeats`` rounds, swapping places every round (the machine is shared: a burst of load
then hits both); every figure is the shortest over the rounds, summed over the tiles.
``sections`` and ``polygons`` count what was written (SpaceNet 3 rows, SpaceNet 2 proposals).

Random weights give speckled probabilities (values scattered around 0.5), far from a trained
model's map: the road mask is then a maze of blobs and its skeleton thousands of short edges,
so ``extract_s`` of the ``road`` path measures a worst case. ``realistic`` therefore times the
same road outputs on a stand-in for a trained model's output, made from each tile's true road
mask by :func:`aerialsam.book.roads.simulated_probability` (blurred, smooth noise, six breaks;
written on the tile's grid as a float32 GeoTIFF): ``read_road_graph_s`` alone and
``extract_s`` (graph, CSV, GeoPackage), with the speckled ``extract_s`` over it, and an
estimate of a trained road model's tiles per second (this run's road ``predict_raster_s`` plus
the realistic ``extract_s``: an estimate, not a measured run). The building path has no
realistic counterpart here: SpaceNet 3 tiles carry no building labels.

The first mask-to-graph call of a process compiles skan's numba code; it is made, and timed
(``graph_first_call_s``), before anything else, and both paths then run once, untimed, on a
one-chip crop of the first tile (first model call, first GeoTIFF and GeoPackage writes), so
no one-time cost lands in the first timed run, whichever path that is.

Ratios: ``road_over_building_tiles_per_s`` (the building path's total time over the road
path's: below 1, road inference is slower), and the same for ``extract_s`` and
``predict_raster_s``.

Run: ``.venv/bin/python benchmarks/bench_roads.py [--quick] [--model unet|sam2]
[--tiles 2] [--repeats 2] [--data DIR]`` (``--crop N`` cuts each tile to its top-left N x N
pixels: a check of the code, not figures per 1300 px tile).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import torch
from _timing import best_time
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from aerialsam.book.roads import simulated_probability
from aerialsam.data import spacenet3
from aerialsam.data.demo_roads import make_road_demo
from aerialsam.inference.chip_models import Sam2Semantic, UNetChips
from aerialsam.inference.prediction import (
    BuildingOutputs,
    Outputs,
    TileOptions,
    predict_images,
)
from aerialsam.inference.road_graph import DEFAULT_OPTIONS
from aerialsam.inference.road_prediction import RoadOutputs, road_output_paths
from aerialsam.inference.road_vectorize import mask_to_graph, read_road_graph
from aerialsam.inference.tiling import ChipModel
from aerialsam.models.sam2 import load_sam2
from aerialsam.models.unet import build_unet
from aerialsam.prep import road_masks
from aerialsam.prep.chips import Source, find_sources
from aerialsam.prep.masks import read_grid
from aerialsam.prep.stretch import compute_stretch, save_stretches

DEFAULT_DATA = Path(tempfile.gettempdir()) / "aerialsam_bench_roads"
CITY = "AOI_2_Vegas"
SEED = 0
PATHS = ("building", "road")
"""The two paths; they swap places every round (the first run after a pause may be slower)."""
EMPTY = "LINESTRING EMPTY"


@dataclass(frozen=True)
class RoadTile:
    """A road tile to predict: its source (path, AOI, image id) and its road labels."""

    source: Source
    labels: Path


# ---------------------------------------------------------------- tiles

def road_tiles(raw: Path, count: int, crop: int | None = None,
               crop_dir: Path | None = None) -> list[RoadTile]:
    """``count`` Vegas demo tiles that have roads (made in the raw folder ``raw`` when
    missing), each cut to its top-left ``crop`` x ``crop`` pixels in ``crop_dir`` when
    ``crop`` is given."""
    made = count
    while True:
        make_road_demo(raw, tiles_per_aoi=made, seed=SEED, aois=[CITY])
        tiles = [t for t in spacenet3.find_road_tiles(raw, CITY)
                 if t.geojson_path is not None
                 and len(spacenet3.read_road_geojson(t.geojson_path))]
        if len(tiles) >= count:
            break
        made += count - len(tiles)  # every seventh demo tile is bare ground
    chosen = []
    for tile in tiles[:count]:
        path = tile.image_path
        if crop is not None:
            path = crop_tile(path, crop, (crop_dir or raw.parent / f"crop_{crop}") / path.name)
        chosen.append(RoadTile(find_sources(path)[0], tile.geojson_path))
    return chosen


def crop_tile(path: Path, side: int, out_path: Path) -> Path:
    """The top-left ``side`` x ``side`` pixels of ``path`` as a GeoTIFF of the same name
    (so the image id and the AOI stay those of the tile)."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    window = Window(0, 0, side, side)
    with rasterio.open(path) as src:
        profile = src.profile | {"width": side, "height": side,
                                 "transform": src.window_transform(window)}
        data = src.read(window=window)
    with rasterio.open(out_path, "w", **profile) as dst:
        dst.write(data)
    return out_path


def true_road_mask(tile: RoadTile) -> np.ndarray:
    """The tile's road mask from its labels, on its own grid (``road`` kind, as training)."""
    grid = read_grid(tile.source.path)
    roads = road_masks.read_road_labels(tile.labels, grid, tile.source.path)
    return road_masks.road_mask(roads, grid.shape) > 0


# ---------------------------------------------------------------- models

def make_model(name: str, image_size: int) -> ChipModel:
    """A random-weight chip model with two outputs (road and centre line, or footprint and
    contact: the same numbers either way)."""
    if name == "unet":
        return UNetChips(build_unet(2, "small", seed=SEED).eval())
    if name == "sam2":
        return Sam2Semantic(load_sam2("tiny", "random", "cpu", image_size).eval(),
                            channels=(0, 1))
    raise ValueError(f"unknown model {name!r}; choose unet or sam2")


def model_label(name: str, image_size: int) -> str:
    """How the JSON line names the model."""
    return "unet small" if name == "unet" else f"sam2.1 tiny at {image_size}, no prompt"


# ---------------------------------------------------------------- stopwatches

@dataclass
class Stopwatch:
    """Seconds of one ``predict_images`` call, split (see the module docstring)."""

    chip_model_s: float = 0.0
    predict_raster_s: float = 0.0
    extract_s: float = 0.0
    raster_started: float = field(default=0.0, repr=False)
    """When the current image's ``predict_raster`` began (set by :func:`timed_factory`)."""


class TimedChips:
    """A chip model that adds the seconds of its calls to a stopwatch."""

    def __init__(self, model: ChipModel, watch: Stopwatch) -> None:
        """Wrap ``model``; its calls are timed into ``watch``."""
        self.model, self.watch = model, watch

    def __call__(self, chips: np.ndarray, windows: Sequence[Window],
                 flip: tuple[bool, bool] = (False, False)) -> np.ndarray:
        """The wrapped model's probabilities."""
        started = time.perf_counter()
        probs = self.model(chips, windows, flip)
        self.watch.chip_model_s += time.perf_counter() - started
        return probs


class TimedOutputs:
    """Outputs (building or road) whose ``write`` is timed; the time from the chip model's
    creation to ``write`` is ``predict_raster`` (``predict_one`` does nothing else between)."""

    def __init__(self, outputs: Outputs, watch: Stopwatch) -> None:
        """Wrap ``outputs``; its writes are timed into ``watch``."""
        self.outputs, self.watch = outputs, watch
        self.combined = outputs.combined

    def paths(self, out_dir: Path, image: str) -> dict[str, Path]:
        """The wrapped outputs' paths."""
        return self.outputs.paths(out_dir, image)

    def params(self) -> dict[str, Any]:
        """The wrapped outputs' parameters."""
        return self.outputs.params()

    def write(self, source: Source, paths: dict[str, Path], transform: Affine,
              crs: CRS | None) -> None:
        """Write the wrapped outputs, timing them (and ``predict_raster`` before them)."""
        started = time.perf_counter()
        self.watch.predict_raster_s += started - self.watch.raster_started
        self.outputs.write(source, paths, transform, crs)
        self.watch.extract_s += time.perf_counter() - started

    def combine(self, out_dir: Path, image_ids: list[str]) -> None:
        """The wrapped outputs' combined CSV."""
        self.outputs.combine(out_dir, image_ids)


def timed_factory(model: ChipModel, watch: Stopwatch
                  ) -> Callable[[Source, rasterio.DatasetReader], ChipModel]:
    """A model factory for ``predict_images`` that starts ``predict_raster``'s clock."""
    chips = TimedChips(model, watch)

    def make(source: Source, src: rasterio.DatasetReader) -> ChipModel:
        watch.raster_started = time.perf_counter()
        return chips
    return make


# ---------------------------------------------------------------- runs

def run_path(path: str, tiles: list[RoadTile], model: ChipModel, out_dir: Path,
             tile_options: TileOptions, stretch_path: Path) -> dict[str, float]:
    """One ``predict_images`` call of ``path`` (``road`` or ``building``) over ``tiles`` into
    a fresh ``out_dir``; its split seconds and what it wrote (sections or polygons)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    watch = Stopwatch()
    outputs = TimedOutputs(RoadOutputs(DEFAULT_OPTIONS) if path == "road"
                           else BuildingOutputs(), watch)
    started = time.perf_counter()
    report = predict_images([t.source for t in tiles], out_dir, timed_factory(model, watch),
                            {"model": "bench"}, tile_options, stretch_path=stretch_path,
                            outputs=outputs)
    total = time.perf_counter() - started
    written = (_sections(report.proposals_path) if path == "road"
               else int(pd.read_csv(report.proposals_path)["BuildingId"].notna().sum()))
    return {"total_s": total, "predict_raster_s": watch.predict_raster_s,
            "chip_model_s": watch.chip_model_s, "extract_s": watch.extract_s,
            ("sections" if path == "road" else "polygons"): written}


def _sections(csv: Path) -> int:
    """Road sections in a SpaceNet 3 CSV (an image without roads has one empty row)."""
    return int((pd.read_csv(csv)["WKT_Pix"] != EMPTY).sum())


def compare_paths(tiles: list[RoadTile], model: ChipModel, work: Path,
                  tile_options: TileOptions, stretch_path: Path, repeats: int
                  ) -> dict[str, dict[str, float]]:
    """Both paths, taking turns over ``repeats`` rounds; the shortest of each figure."""
    best: dict[str, dict[str, float]] = {p: {} for p in PATHS}
    for round_ in range(repeats):
        for path in PATHS if round_ % 2 == 0 else PATHS[::-1]:
            figures = run_path(path, tiles, model, work / path, tile_options, stretch_path)
            for key, value in figures.items():
                seconds = key.endswith("_s")
                if key not in best[path] or (seconds and value < best[path][key]):
                    best[path][key] = value
    return best


def write_probability(prob: np.ndarray, like: Path, out_path: Path) -> Path:
    """``prob`` as a one-band float32 GeoTIFF on the grid of ``like``."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(like) as src:
        profile = {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1,
                   "dtype": "float32", "crs": src.crs, "transform": src.transform,
                   "compress": "deflate", "predictor": 3}
    with rasterio.open(out_path, "w", **profile) as dst:
        dst.write(prob, 1)
    return out_path


def realistic(tiles: list[RoadTile], work: Path, repeats: int) -> dict[str, float]:
    """Road outputs on each tile's simulated trained-model probability (see the module
    docstring): read_road_graph alone, and the whole write; shortest of ``repeats``,
    summed over the tiles."""
    outputs = RoadOutputs(DEFAULT_OPTIONS)
    graph_s = extract_s = 0.0
    sections = 0
    for tile in tiles:
        image = tile.source.image_id
        paths = road_output_paths(work / "realistic", image)
        write_probability(simulated_probability(true_road_mask(tile), seed=SEED),
                          tile.source.path, paths["prob"])
        with rasterio.open(tile.source.path) as src:
            transform, crs = src.transform, src.crs
        graph_s += best_time(partial(read_road_graph, paths["prob"], DEFAULT_OPTIONS),
                             repeats)[0]
        extract_s += best_time(partial(outputs.write, tile.source, paths, transform, crs),
                               repeats)[0]
        sections += _sections(paths["csv"])
    return {"read_road_graph_s": graph_s, "extract_s": extract_s, "sections": sections}


def warm_up(tiles: list[RoadTile], model: ChipModel, work: Path, tile_options: TileOptions,
            stretch_path: Path) -> float:
    """Compile skan's numba code (a small cross through mask to graph), then run both paths
    once, untimed, on one chip's worth of the first tile (first model call, first GeoTIFF and
    GeoPackage writes); the seconds of the graph's first call."""
    cross = np.zeros((96, 96), np.float32)
    cross[44:52, :] = cross[:, 44:52] = 1.0
    started = time.perf_counter()
    mask_to_graph(cross)
    first = time.perf_counter() - started
    path = tiles[0].source.path
    with rasterio.open(path) as src:
        side = min(tile_options.size, src.width, src.height)
    small = crop_tile(path, side, work / "warm_tile" / path.name)
    warm = [RoadTile(find_sources(small)[0], tiles[0].labels)]
    for name in PATHS:
        run_path(name, warm, model, work / "warm" / name, tile_options, stretch_path)
    return first


def _round(figures: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}


def measure(tiles: list[RoadTile], model: ChipModel, work: Path, tile_options: TileOptions,
            repeats: int) -> dict[str, Any]:
    """Both paths, the realistic graph extraction and the ratios (the JSON line's body)."""
    work.mkdir(parents=True, exist_ok=True)
    stretch_path = work / "stretch.json"
    save_stretches(stretch_path, {CITY: compute_stretch([t.source.path for t in tiles])})
    first_call = warm_up(tiles, model, work, tile_options, stretch_path)
    best = compare_paths(tiles, model, work, tile_options, stretch_path, repeats)
    road, building = best["road"], best["building"]
    count = len(tiles)
    for figures in best.values():
        figures["tiles_per_s"] = count / figures["total_s"]
        figures["extract_share"] = figures["extract_s"] / figures["total_s"]
    real = realistic(tiles, work, repeats)
    estimate = road["predict_raster_s"] + real["extract_s"]
    real.update({"probability": "simulated: the true road mask blurred, smooth noise, six "
                                "breaks (aerialsam.book.roads.simulated_probability)",
                 "speckled_over_realistic_extract": round(road["extract_s"]
                                                          / real["extract_s"], 2),
                 "estimated_road_tiles_per_s": count / estimate,
                 "estimated_extract_share": real["extract_s"] / estimate})
    with rasterio.open(tiles[0].source.path) as src:
        side = f"{src.width}x{src.height}"
    return {"tiles": count, "tile_px": side, "chip_size": tile_options.size,
            "overlap": tile_options.overlap, "batch_size": tile_options.batch_size,
            "repeats": repeats, "torch_threads": torch.get_num_threads(),
            "graph_first_call_s": round(first_call, 2),
            "probabilities": "road, building: the random-weight model's (speckle); realistic: "
                             "simulated from the true road mask",
            "road": _round(road), "building": _round(building),
            "road_over_building_tiles_per_s": round(building["total_s"] / road["total_s"], 2),
            "road_over_building_extract": round(building["extract_s"] / road["extract_s"], 2),
            "road_over_building_predict_raster": round(building["predict_raster_s"]
                                                       / road["predict_raster_s"], 2),
            "realistic": _round(real)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a fast check: 1 tile, 1 round")
    parser.add_argument("--model", choices=("unet", "sam2"), default="unet")
    parser.add_argument("--tiles", type=int, default=2, help="tiles timed")
    parser.add_argument("--repeats", type=int, default=2, help="rounds (shortest kept)")
    parser.add_argument("--image-size", type=int, default=512, help="SAM 2 input size")
    parser.add_argument("--size", type=int, default=512, help="chip size")
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, default=None,
                        help="cut each tile to its top-left N x N px (a code check)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder of the demo tiles (made once, reused)")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Make the tiles, time both paths and the realistic extraction, print one JSON line
    (also returned)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # random-weight warnings are expected
    warnings.filterwarnings("ignore", category=UserWarning)
    if args.quick:
        args.tiles, args.repeats = 1, 1
    started = time.perf_counter()
    model = make_model(args.model, args.image_size)
    tile_options = TileOptions(args.size, args.overlap, args.batch_size)
    with tempfile.TemporaryDirectory(prefix="bench_roads_") as tmp:
        # crops go to the temporary folder: --data may be a folder other code reads
        tiles = road_tiles(args.data / "raw", args.tiles, args.crop, Path(tmp) / "crops")
        body = measure(tiles, model, Path(tmp) / "work", tile_options, args.repeats)
    line = {"benchmark": "roads",
            "baseline": "building path (probabilities, then polygons, SpaceNet 2 CSV, "
                        "GeoPackage) on the same tiles with the same model",
            "mode": "quick" if args.quick else "full", "device": "cpu",
            "model": model_label(args.model, args.image_size),
            "weights": "random (timings only; probabilities meaningless)", **body,
            "bench_seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
