"""GPU figures in one prepared run: SAM 2's speed against the FLOP ceiling, inference, training.

Made for the few minutes of GPU a task may be lent (``benchmarks/GPU.md`` says how to carry the
wheels and the one command). In at most ``--budget-s`` seconds (default 480) it measures, with
random weights (speed does not depend on them; the output says so):

- ``ceiling``: the bf16 matrix-multiply rate of this GPU (an 8192^3 GEMM), TFLOP/s, measured in
  the same run: the ceiling the other figures are a fraction of;
- ``encoder``: SAM 2.1's image encoder, images/s at 1024 px for each variant, batch 1, 8, 32,
  bf16 autocast, eager and ``torch.compile`` (inductor, default mode; its warm-up seconds
  reported), with its GFLOP per image (counted by torch's FlopCounterMode) and the fraction of
  the ceiling reached;
- ``tile``: whole-tile inference as ``aerialsam predict`` runs it
  (:func:`aerialsam.inference.tiling.predict_raster` with the semantic decoder: read, chip,
  encode, decode, blend, write), 650 px tiles/s at the ``full`` profile's settings (512 px
  chips, 64 px overlap, batch 16, 1024 px input), tiny and large;
- ``boxes``: prompted decoding of many boxes on one encoded chip, boxes/s;
- ``train``: training steps/s at 1024 px, batch 16: SAM 2 tiny in the decoder regime with the
  encoder features precomputed (what a warm embedding cache gives, without its disk reads),
  LoRA and full, and the U-Net on the same chips, in NCHW and in channels-last memory order;
  AdamW, bf16 autocast;
- the peak GPU memory of every case.

Every case fails soft: one that does not fit in memory, does not compile or runs out of the
time budget is reported with its reason, and the rest still run. The figures go to
``--out``/``gpu_suite.json`` and ``gpu_suite.md`` (a table), and one JSON line is printed.

``--smoke`` runs the same code on the CPU at tiny sizes (128 px, batch 1-2, tiny only, the
``eager`` compile backend) in under a minute: the tests run it, so the script cannot rot.

Run: ``python benchmarks/gpu_suite.py --out DIR [--smoke] [--budget-s 480]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin
from torch.utils.flop_counter import FlopCounterMode

from aerialsam.device import autocast, pick_device
from aerialsam.inference.chip_models import Sam2Semantic
from aerialsam.inference.tiling import predict_raster
from aerialsam.models.sam2 import compile_encoder, random_sam2
from aerialsam.models.sam2_calls import Features, decode_prompts, encode, prepare_images
from aerialsam.models.variants import VARIANT_NAMES
from aerialsam.training.kinds import kind_of
from aerialsam.training.tasks import Sam2Task, UNetTask
from aerialsam.training.train_config import make_config

WEIGHTS = "random (speed does not depend on the weights)"


@dataclass(frozen=True)
class Sizes:
    """What one run measures: the GPU run's sizes, or the smoke run's."""

    image_size: int
    batches: tuple[int, ...]
    variants: tuple[str, ...]
    tile_variants: tuple[str, ...]
    tile: int
    chip: int
    overlap: int
    tile_batch: int
    boxes: int
    train_batch: int
    train_steps: int
    repeats: int
    gemm: int
    compile_backend: str


GPU = Sizes(image_size=1024, batches=(1, 8, 32), variants=VARIANT_NAMES,
            tile_variants=("tiny", "large"), tile=650, chip=512, overlap=64, tile_batch=16,
            boxes=256, train_batch=16, train_steps=10, repeats=5, gemm=8192,
            compile_backend="inductor")
SMOKE = Sizes(image_size=128, batches=(1, 2), variants=("tiny",), tile_variants=("tiny",),
              tile=200, chip=128, overlap=16, tile_batch=2, boxes=8, train_batch=2,
              train_steps=2, repeats=1, gemm=256, compile_backend="eager")


class OutOfTime(Exception):
    """The time budget ran out before this case."""


@dataclass
class Suite:
    """The run's device, sizes, time budget and results."""

    device: torch.device
    sizes: Sizes
    budget_s: float
    started: float
    results: list[dict[str, Any]]
    ceiling_tflops: float = float("nan")

    def case(self, name: str, measure: Callable[[], dict[str, Any]], **labels: Any) -> None:  # noqa: ANN401
        """Run one measurement, fail soft: record its figures, or why it has none."""
        row: dict[str, Any] = {"case": name, **labels}
        try:
            if time.perf_counter() - self.started > self.budget_s:
                raise OutOfTime(f"skipped: the {self.budget_s:.0f} s budget ran out")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            row.update(measure())
            if self.device.type == "cuda":
                row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        except Exception as exc:  # noqa: BLE001 (fail soft: report it, measure the rest)
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        logging.info("%s", row)
        self.results.append(row)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (timings must include it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_seconds(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Shortest of ``repeats`` timed calls, after one untimed warm-up call."""
    run()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def measure_ceiling(suite: Suite) -> dict[str, Any]:
    """The matrix-multiply rate of the device: bf16 on a GPU, float32 on a CPU."""
    dtype = torch.bfloat16 if suite.device.type == "cuda" else torch.float32
    n = suite.sizes.gemm
    a = torch.randn(n, n, device=suite.device, dtype=dtype)
    b = torch.randn(n, n, device=suite.device, dtype=dtype)
    seconds = best_seconds(lambda: a @ b, suite.device, max(3, suite.sizes.repeats))
    suite.ceiling_tflops = 2 * n**3 / seconds / 1e12
    return {"tflops": round(suite.ceiling_tflops, 1), "dtype": str(dtype).split(".")[-1]}


def encoder_gflop(model: torch.nn.Module, images: torch.Tensor) -> float:
    """Forward GFLOP of the image encoder per image, counted by torch."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        encode(model, images[:1])
    return counter.get_total_flops() / 1e9


def measure_encoder(suite: Suite, variant: str, batch: int, compiled: bool) -> dict[str, Any]:
    """Images/s of one variant's encoder at one batch size, eager or compiled."""
    size = suite.sizes.image_size
    model = random_sam2(variant, size).to(suite.device).eval()
    images = torch.randn(batch, 3, size, size, device=suite.device)
    gflop = encoder_gflop(model, images)
    warm_up = 0.0
    if compiled:
        compile_encoder(model, suite.sizes.compile_backend)  # as `predict --compile` does

    def run() -> Features:
        with torch.inference_mode(), autocast(suite.device):
            return encode(model, images)

    if compiled:
        start = time.perf_counter()
        run()
        sync(suite.device)
        warm_up = time.perf_counter() - start
    seconds = best_seconds(run, suite.device, suite.sizes.repeats)
    rate = batch / seconds
    ceiling = suite.ceiling_tflops * 1e3 / gflop
    return {"images_per_s": round(rate, 2), "gflop_per_image": round(gflop, 1),
            "ceiling_images_per_s": round(ceiling, 1),
            "fraction_of_ceiling": round(rate / ceiling, 3),
            **({"compile_warm_up_s": round(warm_up, 1)} if compiled else {})}


def synthetic_tile(folder: Path, side: int) -> Path:
    """A 3-band uint8 GeoTIFF of smooth random colour, ``side`` pixels square."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (3, side, side), dtype=np.uint8)
    path = folder / "tile.tif"
    with rasterio.open(path, "w", driver="GTiff", width=side, height=side, count=3,
                       dtype="uint8", crs="EPSG:32611",
                       transform=from_origin(600000, 4000000, 0.3, 0.3)) as dst:
        dst.write(pixels)
    return path


def measure_tile(suite: Suite, variant: str, folder: Path) -> dict[str, Any]:
    """Tiles/s of whole-tile semantic inference, as ``aerialsam predict`` runs it."""
    s = suite.sizes
    model = random_sam2(variant, s.image_size).to(suite.device).eval()
    chips = Sam2Semantic(model, channels=(0, 1))
    tile = synthetic_tile(folder, s.tile)
    seconds = best_seconds(lambda: predict_raster(tile, chips, folder / "prob.tif", s.chip,
                                                  s.overlap, s.tile_batch),
                           suite.device, max(1, s.repeats // 2))
    return {"tiles_per_s": round(1 / seconds, 2), "tile_px": s.tile, "chip_px": s.chip,
            "overlap_px": s.overlap, "chip_batch": s.tile_batch}


def measure_boxes(suite: Suite) -> dict[str, Any]:
    """Boxes/s of prompted decoding on one encoded chip (SAM 2 tiny)."""
    s = suite.sizes
    model = random_sam2("tiny", s.image_size).to(suite.device).eval()
    with torch.inference_mode(), autocast(suite.device):
        feats = encode(model, torch.randn(1, 3, s.image_size, s.image_size,
                                          device=suite.device))
    corner = torch.rand(s.boxes, 2, device=suite.device) * s.image_size * 0.8
    boxes = torch.cat([corner, corner + s.image_size * 0.1], dim=1)

    def run() -> object:
        with torch.inference_mode(), autocast(suite.device):
            return decode_prompts(model, feats, boxes=boxes)

    seconds = best_seconds(run, suite.device, s.repeats)
    return {"boxes_per_s": round(s.boxes / seconds, 1), "boxes": s.boxes}


class WarmCache:
    """Encoder features computed once and returned for every step: a warm embedding cache."""

    def __init__(self, model: torch.nn.Module, images: torch.Tensor) -> None:
        """Encode ``images`` once, without gradients."""
        with torch.no_grad():
            self.feats = encode(model, images)

    def features(self, chip_ids: list[str], images: torch.Tensor) -> Features:
        """The stored features (the ids and images are those of the one timed batch)."""
        return self.feats


def measure_train(suite: Suite, model_name: str, regime: str | None,
                  channels_last: bool = False) -> dict[str, Any]:
    """Training steps/s at the run's input size: forward, backward, AdamW step, bf16 autocast.

    ``channels_last`` (the U-Net only): weights and images in NHWC memory order, which cuDNN's
    bf16 convolutions prefer; on this project's CPU it was 0-13 % slower, so the package
    leaves it off until this figure says otherwise.
    """
    s = suite.sizes
    values = {"model": model_name, "image_size": s.image_size, "batch_size": s.train_batch,
              "device": str(suite.device), **({"regime": regime} if regime else {})}
    config = make_config(values, source="gpu suite")
    model = kind_of(config).build(config).to(suite.device).train()
    images = torch.rand(s.train_batch, 3, s.image_size, s.image_size, device=suite.device)
    masks = (torch.rand(s.train_batch, 1, s.image_size, s.image_size,
                        device=suite.device) > 0.7).float()
    batch: dict[str, Any] = {"footprint": masks, "contact": masks * 0,
                             "chip_id": [str(i) for i in range(s.train_batch)]}
    if model_name == "unet":
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            images = images.contiguous(memory_format=torch.channels_last)
        task: torch.nn.Module = UNetTask(model, config)
        batch["image"] = images
    else:
        batch["image"] = prepare_images(images, s.image_size)
        cache = WarmCache(model, batch["image"]) if regime == "decoder" else None
        task = Sam2Task(model, config, cache)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    dtype = torch.bfloat16 if suite.device.type == "cuda" else None

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast(suite.device.type, dtype=dtype, enabled=dtype is not None):
            loss, _ = task(batch)
        loss.backward()
        optimiser.step()

    seconds = best_seconds(lambda: [step() for _ in range(s.train_steps)], suite.device, 1)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"steps_per_s": round(s.train_steps / seconds, 2),
            "chips_per_s": round(s.train_steps * s.train_batch / seconds, 1),
            "trained_parameters": trained}


def run_suite(sizes: Sizes, device: torch.device, budget_s: float) -> Suite:
    """Every case in order, the cheap and most wanted first."""
    suite = Suite(device, sizes, budget_s, time.perf_counter(), [])
    suite.case("ceiling", lambda: measure_ceiling(suite))
    for variant in sizes.variants:
        for batch in sizes.batches:
            suite.case("encoder", partial(measure_encoder, suite, variant, batch, False),
                       variant=variant, batch=batch, mode="eager")
    with tempfile.TemporaryDirectory(prefix="gpu_suite_") as tmp:
        for variant in sizes.tile_variants:
            suite.case("tile", partial(measure_tile, suite, variant, Path(tmp)), variant=variant)
    suite.case("boxes", lambda: measure_boxes(suite), variant="tiny")
    for regime in ("decoder", "lora", "full"):
        suite.case("train", partial(measure_train, suite, "sam2", regime), variant="tiny",
                   regime=regime)
    suite.case("train", lambda: measure_train(suite, "unet", None), variant="unet")
    suite.case("train", lambda: measure_train(suite, "unet", None, channels_last=True),
               variant="unet", memory="channels_last")
    # compiling costs warm-up minutes: last, at the largest batch, so a short budget keeps
    # every eager figure
    for variant in sizes.variants:
        batch = sizes.batches[-1]
        suite.case("encoder", partial(measure_encoder, suite, variant, batch, True),
                   variant=variant, batch=batch,
                   mode=f"compile ({sizes.compile_backend}, default mode)")
    return suite


def markdown(suite: Suite, device_name: str) -> str:
    """The results as a Markdown table."""
    lines = [f"GPU suite on {device_name}, {time.strftime('%Y-%m-%d')}; weights: {WEIGHTS}; "
             f"ceiling {suite.ceiling_tflops:.3g} TFLOP/s (matmul, this run).", "",
             "| case | variant | batch | mode | figure | of the ceiling | peak GiB | note |",
             "|---|---|---|---|---|---|---|---|"]
    figures = ("images_per_s", "tiles_per_s", "boxes_per_s", "steps_per_s", "tflops")
    for row in suite.results:
        figure = next((f"{row[k]} {k.replace('_per_s', '/s')}" for k in figures if k in row),
                      "")
        note = row.get("error") or (f"compile warm-up {row['compile_warm_up_s']} s"
                                    if "compile_warm_up_s" in row else "")
        lines.append(f"| {row['case']} | {row.get('variant', '')} | {row.get('batch', '')} | "
                     f"{row.get('mode', row.get('regime', row.get('memory', '')))} | {figure} | "
                     f"{row.get('fraction_of_ceiling', '')} | {row.get('peak_gib', '')} | "
                     f"{note} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure, write ``gpu_suite.json`` and ``gpu_suite.md`` under ``--out``, print one line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_results"))
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, under a minute")
    parser.add_argument("--budget-s", type=float, default=480.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.getLogger("aerialsam").setLevel(logging.ERROR)  # random-weight warnings expected
    device = torch.device("cpu") if args.smoke else pick_device("auto")
    sizes = SMOKE if args.smoke else GPU
    suite = run_suite(sizes, device, args.budget_s)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    line = {"benchmark": "gpu_suite", "device": name, "torch": torch.__version__,
            "smoke": args.smoke, "weights": WEIGHTS, "sizes": asdict(sizes),
            "seconds": round(time.perf_counter() - suite.started, 1),
            "results": suite.results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_suite.json").write_text(json.dumps(line, indent=1) + "\n")
    (args.out / "gpu_suite.md").write_text(markdown(suite, name))
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
