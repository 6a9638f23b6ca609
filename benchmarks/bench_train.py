"""Benchmark: training steps of SAM 2 tiny (decoder with and without the embedding cache,
full) and of the U-Net baseline on CPU; steps per second and peak memory.

Data: the ``smoke`` profile's synthetic chips (256 px, made once by
:func:`aerialsam.training.datasets.prepare_training_data` under ``--data`` and reused), Vegas only
(18 training chips: 9 steps per epoch at batch 2). SAM 2.1 tiny with random weights at
``--image-size`` (256: the chips' own size), fp32, batch 2, one process with torch's default
threads.

Each case runs in a fresh child process, so that its peak RSS (``ru_maxrss``) is its own:

- ``decoder_cache``: ``decoder`` regime with the embedding cache, starting from an empty
  cache: epoch 0 is cold (every chip encoded and written), epoch 1 warm (every chip read);
- ``decoder_nocache``: the same without the cache (the frozen encoder runs under no_grad at
  every step): the baseline of the ratios;
- ``full``: every SAM 2 weight trained (the encoder at ``lr * encoder_lr_scale``);
- ``unet``: the U-Net baseline (``small``) on the same chips at the same batch.

Why not ``loop.train``: its ``seconds`` column gives wall time only, and on a shared machine
wall time mostly measures the neighbours. The children build the run exactly as ``train``
does (``loop._setup``) and take exactly its steps (``loop._batches``,
``loop._micro_step``, ``loop._optimizer_step``: data loading, collate, forward, backward,
clipping, AdamW) without its logging, checkpoints and validation, timing each step in wall
and in process CPU seconds (all threads). Per case the first step is dropped (one-time
allocations); the shortest step is the figure (as ``_timing.best_time``: the machine is
shared), the median wall is shown beside it, and each child records the load average. The
final validation (val loss over the val chips, then tile F1 over the threshold sweep) is
timed once, separately, in the ``decoder_nocache`` child after its steps (its peak RSS is
taken before it; ``--quick`` skips it). Ratios: the baseline's time over the case's (above
1: faster than the baseline), and peak RSS over the baseline's.

``--demo-metrics`` also trains SAM 2 (decoder, prompt none) and the U-Net with the ``demo``
profile (synthetic AOIs, 512 px chips, SAM 2 at 512, batch 4, 200 steps; long: tens of
minutes on 2 cores) through ``loop.train`` and reports the validation pixel IoU and SpaceNet
F1 they reach (``--demo-profile smoke`` runs the same path in about a minute).

Run: ``.venv/bin/python benchmarks/bench_train.py [--quick] [--image-size 256]
[--data DIR] [--demo-metrics [--demo-steps N]]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from aerialsam import config as profiles
from aerialsam.training import datasets, loop, train_config
from aerialsam.training.logs import validation_row

CASES: dict[str, dict[str, Any]] = {
    "decoder_cache": {"model": "sam2", "regime": "decoder", "embedding_cache": True},
    "decoder_nocache": {"model": "sam2", "regime": "decoder", "embedding_cache": False},
    "full": {"model": "sam2", "regime": "full"},
    "unet": {"model": "unet"},
}
BASELINE = "decoder_nocache"
AOIS = ("AOI_2_Vegas",)
BATCH = 2
DEFAULT_DATA = Path(tempfile.gettempdir()) / "aerialsam_bench_train"
STEPS = {"full": {"decoder_nocache": 7, "full": 5, "unet": 7, "warm": 9},
         "quick": {"decoder_nocache": 3, "full": 3, "unet": 3, "warm": 3}}
"""Steps timed per case after the dropped first step; ``warm``: warm-cache steps (epoch 1).
The cache case's cold steps are the rest of epoch 0, whatever the mode."""


def _peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_config(case: str, image_size: int) -> train_config.TrainConfig:
    """The case's configuration: smoke sizes, Vegas, batch 2, CPU. The steps are driven
    here (``steps`` only shapes the learning-rate schedule, not a step's cost)."""
    return train_config.from_profile(
        "smoke", **CASES[case], aois=AOIS, image_size=image_size, batch_size=BATCH,
        steps=1000, val_every=10**6, checkpoint_every=10**6, device="cpu", amp="off",
        name=case)


def _timed_steps(ctx: Any, count: int) -> list[dict[str, float]]:
    """Take ``count`` training steps as ``loop.train`` does; wall and CPU time of each."""
    batches = loop._batches(ctx, 0)
    records = []
    for step in range(count):
        wall, cpu = time.perf_counter(), time.process_time()
        epoch, batch = next(batches)
        loss, _ = loop._micro_step(ctx, batch, step, sync=True)
        loop._optimizer_step(ctx)
        records.append({"epoch": epoch, "wall": time.perf_counter() - wall,
                        "cpu": time.process_time() - cpu, "loss": loss})
    return records


def _summary(records: list[dict[str, float]]) -> dict[str, float]:
    """Shortest wall and CPU seconds per step over ``records`` (the machine is shared: the
    shortest is the least disturbed), the median wall, and steps per second."""
    wall = min(r["wall"] for r in records)
    return {"steps": len(records), "s_per_step": round(wall, 4),
            "median_s_per_step": round(statistics.median(r["wall"] for r in records), 4),
            "cpu_s_per_step": round(min(r["cpu"] for r in records), 4),
            "steps_per_s": round(1 / wall, 3)}


def _cache_figures(ctx: Any, records: list[dict[str, float]], per_epoch: int,
                   warm: int) -> dict[str, Any]:
    """Cold (epoch 0 but its first step) and warm (epoch 1) figures of the cache case."""
    cache = ctx.task.cache
    entries = list(cache.folder.glob("*.pt"))
    cold = [r for r in records[1:] if r["epoch"] == 0]
    warm_records = [r for r in records if r["epoch"] == 1]
    if cache.misses != per_epoch * BATCH or cache.hits != warm * BATCH:
        raise RuntimeError(f"unexpected cache use: {cache.misses} misses, {cache.hits} hits")
    return {"cold": _summary(cold), "warm": _summary(warm_records),
            "cache_entries": len(entries),
            "cache_kib_per_chip": round(sum(p.stat().st_size for p in entries)
                                        / max(1, len(entries)) / 1024, 1)}


def child(case: str, data_root: Path, runs_dir: Path, mode: str, image_size: int) -> dict:
    """One case in this (fresh) process: its step timings and peak RSS (and, for the
    baseline outside quick mode, the final validation's time)."""
    data = loop.TrainData(*(data_root / name for name in ("chips", "masks", "splits.csv")))
    steps = STEPS[mode]
    start_rss = _peak_rss_mb()
    ctx = loop._setup(_run_config(case, image_size), data, runs_dir / case)
    per_epoch = len(ctx.train) // BATCH
    count = per_epoch + steps["warm"] if case == "decoder_cache" else steps[case] + 1
    records = _timed_steps(ctx, count)
    out: dict[str, Any] = {"case": case, "train_chips": len(ctx.train),
                           "params_trained": sum(p.numel() for p in ctx.model.parameters()
                                                 if p.requires_grad),
                           "peak_rss_mb": round(_peak_rss_mb(), 1),
                           "rss_over_imports_mb": round(_peak_rss_mb() - start_rss, 1),
                           "first_loss": round(records[0]["loss"], 4),
                           "last_loss": round(records[-1]["loss"], 4),
                           "load_avg_1min": round(os.getloadavg()[0], 1)}
    if case == "decoder_cache":
        out.update(_cache_figures(ctx, records, per_epoch, steps["warm"]))
    else:
        out.update(_summary(records[1:]))
    if case == BASELINE and mode != "quick":
        started = time.perf_counter()
        row = validation_row(ctx, count, records[-1]["epoch"], final=True)
        out["final_validation"] = {"seconds": round(time.perf_counter() - started, 2),
                                   "val_chips": len(ctx.val),
                                   "thresholds": len(row["f1_per_threshold"])}
    return out


def _spawn(case: str, args: argparse.Namespace, runs_dir: Path) -> dict:
    """Run ``case`` in a child process; its JSON line."""
    command = [sys.executable, __file__, "--child", case, "--data", str(args.data),
               "--runs", str(runs_dir), "--image-size", str(args.image_size),
               "--threads", str(args.threads),
               *(["--quick"] if args.quick else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"case {case} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def demo_metrics(data_root: Path, runs_dir: Path, steps: int | None,
                 profile_name: str = "demo") -> dict[str, Any]:
    """Train SAM 2 (decoder, none) and the U-Net with a profile (``demo``) through
    ``loop.train``; the validation metrics they reach and their wall time."""
    profile = profiles.load_profile(profile_name)
    data = loop.TrainData(*datasets.prepare_training_data(profile, data_root / profile_name))
    results = {}
    for name, overrides in (("sam2_decoder_none", {"model": "sam2", "regime": "decoder",
                                                   "prompt": "none"}),
                            ("unet", {"model": "unet"})):
        config = train_config.from_profile(profile, **overrides, device="cpu",
                                           **({"steps": steps} if steps else {}))
        started = time.perf_counter()
        result = loop.train(config, data, runs_dir / name)
        results[name] = {"steps": result.step, "seconds": round(time.perf_counter() - started, 1),
                         **{k: round(v, 4) for k, v in result.metrics.items()}}
    return results


def _ratios(cases: dict[str, dict]) -> dict[str, float]:
    """Speed-ups against the baseline (wall and CPU seconds per step) and memory ratios."""
    base = cases[BASELINE]
    timed = {"decoder_cache_cold": cases["decoder_cache"]["cold"],
             "decoder_cache_warm": cases["decoder_cache"]["warm"],
             "full": cases["full"], "unet": cases["unet"]}
    ratios = {}
    for name, figures in timed.items():
        ratios[f"{name}_speedup"] = round(base["s_per_step"] / figures["s_per_step"], 2)
        ratios[f"{name}_cpu_speedup"] = round(base["cpu_s_per_step"] / figures["cpu_s_per_step"],
                                              2)
    for name in ("decoder_cache", "full", "unet"):
        ratios[f"{name}_peak_rss_ratio"] = round(cases[name]["peak_rss_mb"]
                                                 / base["peak_rss_mb"], 2)
    return ratios


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed steps")
    parser.add_argument("--image-size", type=int, default=256, help="SAM 2 input size")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="data folder (made once, reused)")
    parser.add_argument("--demo-metrics", action="store_true",
                        help="also train SAM 2 and the U-Net with the demo profile (long)")
    parser.add_argument("--demo-steps", type=int, default=None,
                        help="steps of the demo runs (default: the profile's)")
    parser.add_argument("--demo-profile", default="demo",
                        help="profile of --demo-metrics (smoke: a quick check of that path)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads of each case (default: torch's)")
    parser.add_argument("--child", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=Path, help=argparse.SUPPRESS)
    return parser


def main() -> None:
    """Prepare the data, run every case in its own process, print one JSON line."""
    args = _parser().parse_args()
    logging.basicConfig(level=logging.ERROR)
    warnings.filterwarnings("ignore")
    mode = "quick" if args.quick else "full"
    if args.child:
        torch.set_num_threads(args.threads)
        print(json.dumps(child(args.child, args.data / "smoke", args.runs, mode,
                               args.image_size)))
        return
    smoke = profiles.load_profile("smoke")
    datasets.prepare_training_data(smoke, args.data / "smoke")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        cases = {case: _spawn(case, args, Path(tmp)) for case in CASES}
        line: dict[str, Any] = {
            "benchmark": "train", "baseline": f"{BASELINE} (frozen encoder run every step)",
            "device": "cpu", "torch_threads": args.threads, "mode": mode,
            "variant": "tiny", "weights": "random", "image_size": args.image_size,
            "chip_size": smoke.chip_size, "batch_size": BATCH, "aois": list(AOIS),
            "cases": cases, **_ratios(cases),
            "bench_seconds": round(time.perf_counter() - started, 1)}
        if args.demo_metrics:
            line[args.demo_profile] = demo_metrics(args.data, Path(tmp) / "demo_runs",
                                                   args.demo_steps, args.demo_profile)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
