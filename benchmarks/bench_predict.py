"""Benchmark: whole-tile SAM 2 inference (batched) against a per-chip predictor loop; memory.

Part 1, speed (CPU, SAM 2.1 tiny, random weights, input ``--image-size`` 512): synthetic demo
tiles (650 x 650, uint16, stretched with their AOI's 2-98 percentile bounds) are predicted with
box prompts from their ground truth (oracle boxes) by

- ours: :func:`aerialsam.inference.tiling.predict_raster` with
  :class:`aerialsam.inference.chip_models.Sam2Prompted` (one image-encoder pass per batch of
  chips), at each of ``--batch-sizes``;
- the baseline: a plain loop written here over the same chip grid with the same stretch and
  the same boxes per chip: ``SAM2ImagePredictor.set_image(chip)``, ``predict(box=boxes,
  multimask_output=False)``, the highest probability over the masks, the same blending
  weights, and the same float32 deflate GeoTIFF written at the end.

Both must agree (max abs difference of the probabilities below 1e-3) before anything is timed.
Figures: tiles (images) per second, best of ``--repeats``, and the ratio to the baseline. Then
``reuse`` (at the largest batch size): each box decoded once, in a chip that shows it with
context to spare, and its mask reused in the other chips that show it; its probabilities are
no longer the loop's (a chip shows a mask decoded with its neighbour's context), so
``reuse_vs_loop`` says how far: the largest and mean absolute difference and the IoU of the
pixels above 0.5.

Part 2, memory: a 20,000 x 20,000 3-band uint8 GeoTIFF (tiled, deflate; made once in /tmp
from a repeating synthetic pattern and reused) is predicted in a subprocess with a cheap
stand-in chip model (3 x 3 mean of the red band: the pipeline's own memory), and a
20,000 x 512 strip of it with SAM 2 tiny at 512, batch 4, with box prompts (one full-width
row of chips: memory does not grow with more rows). Each child reports its peak RSS
(``VmHWM``); figures are compared with the raster's in-memory size and the 4 GB aim.

Run: ``.venv/bin/python benchmarks/bench_predict.py [--quick]`` (``--profile`` adds a
torch.profiler table of one tile for each path on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import rasterio
import torch
from _timing import best_time
from rasterio.windows import Window
from scipy import ndimage

from aerialsam.data import demo
from aerialsam.data.spacenet import Tile, find_tiles
from aerialsam.inference.chip_models import Sam2Prompted
from aerialsam.inference.prompts import Prompts, oracle_prompts
from aerialsam.inference.tiling import MIN_WEIGHT, blend_weights, predict_raster
from aerialsam.models.sam2 import load_sam2, make_predictor
from aerialsam.prep.chips import chip_windows
from aerialsam.prep.stretch import Stretch, apply_stretch, compute_stretch

MAX_DIFF = 1e-3
AIM_BYTES = 4 * 10**9
BIG_RASTER = Path(tempfile.gettempdir()) / "aerialsam_bench_{side}.tif"
PATTERN = 512
"""Side of the synthetic pattern block the big raster repeats (also its GeoTIFF tile)."""
PROMPT_SPACING = 128
"""Pixels between the synthetic box prompts of the SAM 2 memory strip."""


# ---------------------------------------------------------------- part 1: speed

def bench_tiles(count: int, data_dir: Path) -> list[tuple[Tile, Stretch, Prompts]]:
    """``count`` demo tiles with buildings (round robin over the AOIs), each with its AOI's
    stretch and its oracle box prompts."""
    per_aoi = -(-count // 4) + 1  # one spare per AOI in case a tile has no building
    demo.make_demo(data_dir, tiles_per_aoi=per_aoi, seed=0)
    tiles = find_tiles(data_dir)
    stretches = {aoi: compute_stretch([t.image_path for t in tiles if t.aoi == aoi])
                 for aoi in {t.aoi for t in tiles}}
    chosen: list[tuple[Tile, Stretch, Prompts]] = []
    by_aoi = [[t for t in tiles if t.aoi == aoi] for aoi in sorted(stretches)]
    for rank in range(per_aoi):
        for group in by_aoi:
            if rank < len(group) and len(chosen) < count:
                prompts = oracle_prompts(group[rank])
                if len(prompts):
                    chosen.append((group[rank], stretches[group[rank].aoi], prompts))
    return chosen


def loop_predict(predictor: object, path: Path, stretch: Stretch, prompts: Prompts,
                 size: int, overlap: int, out_path: Path) -> np.ndarray:
    """The baseline: one ``set_image`` + ``predict`` per chip, blended, written as GeoTIFF."""
    with rasterio.open(path) as src:
        data = src.read(list(stretch.bands))
        rgb = apply_stretch(data, stretch, [src.nodatavals[b - 1] for b in stretch.bands])
        rgb = rgb.transpose(1, 2, 0)
        profile = {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1,
                   "dtype": "float32", "crs": src.crs, "transform": src.transform,
                   "blockysize": 16, "compress": "deflate", "predictor": 3}
    height, width = rgb.shape[:2]
    weights = blend_weights(size, overlap)
    total = np.zeros((height, width), np.float32)
    weight = np.zeros_like(total)
    for window in chip_windows(width, height, size, overlap):
        row, col = window.row_off, window.col_off
        chip = np.zeros((size, size, 3), np.uint8)
        piece = rgb[row:row + size, col:col + size]
        chip[:piece.shape[0], :piece.shape[1]] = piece
        boxes = prompts.in_chip(window)
        prob = np.zeros((size, size), np.float32)
        if len(boxes):
            predictor.set_image(chip)
            logits, _, _ = predictor.predict(box=boxes, multimask_output=False,
                                             return_logits=True)
            logits = torch.from_numpy(logits.reshape(-1, size, size))
            prob = torch.sigmoid(logits).amax(dim=0).numpy()
        rows, cols = piece.shape[:2]
        total[row:row + rows, col:col + cols] += prob[:rows, :cols] * weights[:rows, :cols]
        weight[row:row + rows, col:col + cols] += weights[:rows, :cols]
    out = total / np.maximum(weight, MIN_WEIGHT ** 2)
    with rasterio.open(out_path, "w", **profile) as dst:
        dst.write(out, 1)
    return out


def run_ours(model: torch.nn.Module, cases: list, size: int, overlap: int, batch_size: int,
             out_dir: Path, reuse: bool = False) -> list[Path]:
    """Predict every case with the batched path; the probability GeoTIFFs.

    ``reuse``: each box decoded about once and its mask reused in the other chips that show it
    (:class:`~aerialsam.inference.chip_models.Sam2Prompted`); without it, every chip decodes
    every box it shows, as the loop does.
    """
    paths = []
    for tile, stretch, prompts in cases:
        with rasterio.open(tile.image_path) as src:
            shape = src.shape
        chip_model = Sam2Prompted(model, prompts, reuse=reuse, raster_shape=shape)
        paths.append(predict_raster(tile.image_path, chip_model,
                                    out_dir / f"ours_{tile.image_id}.tif", size, overlap,
                                    batch_size, stretch))
    return paths


def run_loop(predictor: object, cases: list, size: int, overlap: int,
             out_dir: Path) -> list[np.ndarray]:
    """Predict every case with the per-chip predictor loop; the probability arrays."""
    return [loop_predict(predictor, tile.image_path, stretch, prompts, size, overlap,
                         out_dir / f"loop_{tile.image_id}.tif")
            for tile, stretch, prompts in cases]


def agreement(ours: list[Path], loop: list[np.ndarray]) -> dict:
    """How far the reusing path's probabilities are from the loop's: largest and mean absolute
    difference, and the IoU of the pixels above 0.5 (the masks that become polygons)."""
    diffs, inter, union = [], 0, 0
    for path, theirs in zip(ours, loop, strict=True):
        with rasterio.open(path) as src:
            mine = src.read(1)
        diffs.append(np.abs(mine - theirs))
        inter += int(((mine > 0.5) & (theirs > 0.5)).sum())
        union += int(((mine > 0.5) | (theirs > 0.5)).sum())
    return {"max_abs_diff": round(float(max(d.max() for d in diffs)), 4),
            "mean_abs_diff": round(float(np.mean([d.mean() for d in diffs])), 5),
            "iou_above_half": round(inter / union, 4) if union else None}


def max_difference(ours: list[Path], loop: list[np.ndarray]) -> float:
    """Largest absolute difference between our GeoTIFFs and the loop's arrays."""
    diffs = []
    for path, theirs in zip(ours, loop, strict=True):
        with rasterio.open(path) as src:
            diffs.append(float(np.abs(src.read(1) - theirs).max()))
    return max(diffs)


def profile_paths(model: torch.nn.Module, predictor: object, case: list, size: int,
                  overlap: int, batch_size: int, out_dir: Path) -> None:
    """torch.profiler tables (top operators by CPU time) of one tile for each path, to stderr."""
    for name, run in (("loop", lambda: run_loop(predictor, case, size, overlap, out_dir)),
                      (f"ours_b{batch_size}",
                       lambda: run_ours(model, case, size, overlap, batch_size, out_dir))):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            run()
        table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=18)
        print(f"--- profile: {name}\n{table}", file=sys.stderr)


def interleaved_best(runs: dict, repeats: int) -> dict:
    """Best time of each run over ``repeats`` rounds, the runs taking turns within a round
    (the machine is shared: a burst of load then hits every contender, not just one)."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            best[name] = min(best[name], best_time(run, 1)[0])
    return best


def speed(args: argparse.Namespace, work: Path) -> dict:
    """Part 1: tiles per second of the batched path and of the per-chip loop."""
    cases = bench_tiles(args.tiles, work / "raw")
    chips = sum(len(chip_windows(650, 650, args.size, args.overlap)) for _ in cases)
    boxes = sum(len(p) for _, _, p in cases)
    model = load_sam2(args.variant, "random", "cpu", args.image_size)
    predictor = make_predictor(model)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    # first calls (allocator, kernels) out of the timings; and the fairness check
    loop_probs = run_loop(predictor, cases, args.size, args.overlap, work)
    diffs = {b: max_difference(run_ours(model, cases, args.size, args.overlap, b, work),
                               loop_probs) for b in sizes}
    assert max(diffs.values()) < MAX_DIFF, f"probabilities differ: {diffs}"
    if args.profile:
        profile_paths(model, predictor, cases[:1], args.size, args.overlap, max(sizes), work)
    runs = {"loop": lambda: run_loop(predictor, cases, args.size, args.overlap, work)}
    runs |= {b: lambda b=b: run_ours(model, cases, args.size, args.overlap, b, work)
             for b in sizes}
    largest = max(sizes)
    runs["reuse"] = lambda: run_ours(model, cases, args.size, args.overlap, largest, work,
                                     reuse=True)
    reused = agreement(run_ours(model, cases, args.size, args.overlap, largest, work,
                                reuse=True), loop_probs)
    times = interleaved_best(runs, args.repeats)
    loop_s = times["loop"]
    result = {"tiles": len(cases), "chips": chips, "boxes": boxes,
              "chip_size": args.size, "overlap": args.overlap, "image_size": args.image_size,
              "variant": args.variant, "torch_threads": torch.get_num_threads(),
              "max_abs_diff": max(diffs.values()),
              "loop_s": round(loop_s, 3), "loop_tiles_per_s": round(len(cases) / loop_s, 3)}
    for b in sizes:
        ours_s = times[b]
        result[f"ours_b{b}_s"] = round(ours_s, 3)
        result[f"ours_b{b}_tiles_per_s"] = round(len(cases) / ours_s, 3)
        result[f"speedup_b{b}"] = round(loop_s / ours_s, 2)
    result[f"ours_reuse_b{largest}_s"] = round(times["reuse"], 3)
    result[f"speedup_reuse_b{largest}"] = round(loop_s / times["reuse"], 2)
    result["reuse_vs_loop"] = reused
    return result


# ---------------------------------------------------------------- part 2: memory

def pattern_block(seed: int = 0) -> np.ndarray:
    """A (PATTERN, PATTERN, 3) uint8 block: smooth ground with bright rectangular roofs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:PATTERN, 0:PATTERN] / PATTERN
    ground = 90 + 30 * np.sin(6.28 * x) * np.cos(6.28 * y)
    block = np.repeat(ground[..., None], 3, axis=2) * np.array([1.0, 0.95, 0.8])
    for _ in range(25):
        r, c = rng.integers(0, PATTERN - 40, 2)
        h, w = rng.integers(12, 40, 2)
        block[r:r + h, c:c + w] = rng.uniform(150, 230, 3)
    return block.astype(np.uint8)


def make_big_raster(path: Path, width: int, height: int) -> Path:
    """A tiled, deflate-compressed 3-band uint8 GeoTIFF repeating :func:`pattern_block`
    (reused when it exists with the right size)."""
    if path.exists():
        with rasterio.open(path) as src:
            if (src.width, src.height, src.count) == (width, height, 3):
                return path
    block = pattern_block()
    strip = np.tile(block.transpose(2, 0, 1), (1, 1, -(-width // PATTERN)))[:, :, :width]
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 3,
               "dtype": "uint8", "crs": "EPSG:32611", "tiled": True, "blockxsize": PATTERN,
               "blockysize": PATTERN, "compress": "deflate",
               "transform": rasterio.transform.from_origin(600_000, 4_000_000, 0.3, 0.3)}
    tmp = path.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for row in range(0, height, PATTERN):
            rows = min(PATTERN, height - row)
            dst.write(strip[:, :rows], window=Window(0, row, width, rows))
    tmp.rename(path)
    return path


def crop_rows(path: Path, rows: int, out_path: Path) -> Path:
    """The first ``rows`` rows of ``path`` as their own GeoTIFF (same profile)."""
    with rasterio.open(path) as src:
        profile = src.profile | {"height": rows,
                                 "transform": src.window_transform(Window(0, 0, src.width, rows))}
        with rasterio.open(out_path, "w", **profile) as dst:
            dst.write(src.read(window=Window(0, 0, src.width, rows)))
    return out_path


class RedMean:
    """The stand-in chip model: a 3 x 3 mean of the red band, scaled to 0..1."""

    def __call__(self, chips: np.ndarray, windows: list, flip: tuple = (False, False)
                 ) -> np.ndarray:
        """Probabilities of each chip (see :class:`~aerialsam.inference.tiling.ChipModel`)."""
        red = chips[..., 0].astype(np.float32) / 255.0
        return ndimage.uniform_filter(red, size=(1, 3, 3))


def grid_boxes(width: int, height: int, spacing: int) -> Prompts:
    """Box prompts of 24 x 24 px every ``spacing`` px (stand-ins for buildings)."""
    y, x = np.mgrid[8:height - 24:spacing, 8:width - 24:spacing]
    xy = np.stack([x.ravel(), y.ravel(), x.ravel() + 24, y.ravel() + 24], axis=1)
    return Prompts("box", xy)


def rss_mb(field: str) -> float:
    """This process's ``VmRSS`` (now) or ``VmHWM`` (peak) in MiB, from /proc/self/status.

    Not ``ru_maxrss``: Linux carries a parent's peak over fork and exec, so a child started
    by a big parent would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def child(kind: str, path: str, out_path: str, image_size: int, batch_size: int) -> None:
    """Run one memory measurement in this process and print its figures as JSON."""
    base = rss_mb("VmRSS")
    start = time.perf_counter()
    if kind == "pipeline":
        model = RedMean()
    else:
        with rasterio.open(path) as src:
            prompts = grid_boxes(src.width, src.height, PROMPT_SPACING)
        model = Sam2Prompted(load_sam2("tiny", "random", "cpu", image_size), prompts)
    before = rss_mb("VmRSS")
    predict_raster(path, model, out_path, 512, 64, batch_size)
    peak = rss_mb("VmHWM")
    print(json.dumps({"rss_after_imports_mb": base, "rss_before_predict_mb": before,
                      "peak_rss_mb": peak, "predict_added_mb": round(peak - before, 1),
                      "seconds": round(time.perf_counter() - start, 1)}))


def measure(kind: str, path: Path, out_path: Path, image_size: int, batch_size: int) -> dict:
    """Run :func:`child` in a fresh interpreter; its figures and the output's file size."""
    done = subprocess.run([sys.executable, __file__, "--child", kind, str(path), str(out_path),
                           "--image-size", str(image_size), "--batch-size", str(batch_size)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{kind} child failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["prob_tif_mb"] = round(out_path.stat().st_size / 2**20, 1)
    return figures


def memory(args: argparse.Namespace, work: Path) -> dict:
    """Part 2: peak RSS of tiled inference over a big raster (stand-in model and SAM 2)."""
    side = args.raster_side
    start = time.perf_counter()
    big = make_big_raster(Path(str(BIG_RASTER).format(side=side)), side, side)
    made_s = time.perf_counter() - start
    strip = crop_rows(big, args.strip_rows, work / "strip.tif")
    in_memory = side * side * 3
    pipeline = measure("pipeline", big, work / "big_prob.tif", args.image_size, 4)
    sam2 = measure("sam2", strip, work / "strip_prob.tif", args.image_size, 4)
    return {"raster": f"{side}x{side}x3 uint8", "raster_path": str(big),
            "raster_file_mb": round(big.stat().st_size / 2**20, 1),
            "raster_make_s": round(made_s, 1),
            "raster_in_memory_mb": round(in_memory / 2**20, 1),
            "pipeline": pipeline,
            "pipeline_peak_vs_raster": round(pipeline["peak_rss_mb"] * 2**20 / in_memory, 3),
            "sam2_strip": f"{side}x{args.strip_rows}, tiny @ {args.image_size}, batch 4, "
                          f"box prompts every {PROMPT_SPACING} px",
            "sam2": sam2,
            "sam2_peak_vs_raster": round(sam2["peak_rss_mb"] * 2**20 / in_memory, 3),
            "under_4gb": max(pipeline["peak_rss_mb"], sam2["peak_rss_mb"]) * 2**20 < AIM_BYTES}


def main() -> None:
    """Run both parts and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a fast check: 2 tiles, 1 repeat, a 4,096 px raster")
    parser.add_argument("--tiles", type=int, default=2, help="demo tiles timed")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--batch-sizes", default="1,2,4", help="our batch sizes, comma-separated")
    parser.add_argument("--variant", default="tiny")
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--size", type=int, default=512, help="chip size")
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--raster-side", type=int, default=20_000)
    parser.add_argument("--strip-rows", type=int, default=512,
                        help="rows of the SAM 2 memory strip (512: one row of chips)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile one tile (stderr)")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "SRC", "OUT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # oracle and random-weight warnings are expected
    warnings.filterwarnings("ignore", category=UserWarning)
    if args.child:
        child(*args.child, args.image_size, args.batch_size)
        return
    if args.quick:
        args.tiles, args.repeats, args.raster_side = 2, 1, 4096
    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        work = Path(tmp)
        report = {"benchmark": "predict", "baseline": "per-chip SAM2ImagePredictor loop",
                  "weights": "random (timings only; masks meaningless)"}
        if not args.skip_speed:
            report["speed"] = speed(args, work)
        if not args.skip_memory:
            report["memory"] = memory(args, work)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
