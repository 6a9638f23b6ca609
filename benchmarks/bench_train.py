"""Benchmark: training steps of SAM 2 tiny (decoder with and without the embedding cache,
full) and of the U-Net baseline on CPU, for building and road runs; steps per second and peak
memory.

Data: the ``smoke`` profile's synthetic chips (256 px, made once by
:func:`aerialsam.training.datasets.prepare_training_data` under ``--data`` and reused), Vegas only.
Building chips come from its SpaceNet 2 tiles (650 px; 18 training chips: 9 steps per epoch at
batch 2), road chips from its SpaceNet 3 tiles (1300 px, the profile cut to Vegas; one
training tile, 36 chips) chipped at the same 256 px, so a road step and a building step see
tensors of the same shape. SAM 2.1 tiny with random weights at ``--image-size`` (256: the
chips' own size), fp32, batch 2, one process with torch's default threads.

Each case runs in a fresh child process, so that its peak RSS (``ru_maxrss``) is its own:

- ``decoder_cache``: ``decoder`` regime with the embedding cache, starting from an empty
  cache: epoch 0 is cold (every chip encoded and written), epoch 1 warm (every chip read);
- ``decoder_nocache``: the same without the cache (the frozen encoder runs under no_grad at
  every step): the baseline of the ratios;
- ``full``: every SAM 2 weight trained (the encoder at ``lr * encoder_lr_scale``);
- ``unet``: the U-Net baseline (``small``) on the same chips at the same batch;
- ``road_decoder_nocache``, ``road_unet``: ``decoder_nocache`` and ``unet`` as road runs
  (``task: roads``: road and centre-line targets instead of footprint and contact). Model,
  loss and tensor shapes are those of the building run; only the data differ: a building item
  also gets its buildings' box and point prompts (labelling and a distance transform of the
  footprint, done even for prompt-free runs), a road item has none;
- ``road_unet_cldice``: ``road_unet`` with the soft clDice term (``cldice_weight`` 0.5), whose
  soft skeletons (iterated min/max pooling of prediction and target) are the one thing a road
  step computes that a building step does not.

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

Road against building: the cases above run one after the other, minutes apart, and on a
shared machine the load drifts over minutes (one quick run measured a U-Net step at 1.9 s
under load, and the clDice U-Net, three minutes later, at 0.3 s), so a ratio of two cases
would mostly measure the drift. The ratios come instead from ``interleaved`` groups: one child
per model sets up the building run and its road runs side by side (``decoder``:
``decoder_nocache`` and ``road_decoder_nocache``; ``unet``: ``unet``, ``road_unet`` and
``road_unet_cldice``) and takes their steps in turn, the order rotating every round, so a burst
of load hits each of them alike; figures as above (first step of each dropped, shortest
step). ``road_vs_building`` gives, per model, the building run's seconds per step over the
road run's (road steps per second over building steps per second: below 1, a road step is
slower; a road run must not be slower per step than a building run of the same size), wall
and CPU; ``cldice_cost`` is the clDice run's seconds per step over ``road_unet``'s (the
term's price per step, above 1). The separate road cases give each road run's own figures and
peak RSS beside the other cases.

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
from collections.abc import Iterator
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
    "road_decoder_nocache": {"task": "roads", "model": "sam2", "regime": "decoder",
                             "embedding_cache": False},
    "road_unet": {"task": "roads", "model": "unet"},
    "road_unet_cldice": {"task": "roads", "model": "unet", "cldice_weight": 0.5},
}
BASELINE = "decoder_nocache"
ROAD_PAIRS = {"decoder_nocache": "road_decoder_nocache", "unet": "road_unet"}
"""Each building case and the road case of the same model, regime and size."""
GROUPS = {"decoder": ("decoder_nocache", "road_decoder_nocache"),
          "unet": ("unet", "road_unet", "road_unet_cldice")}
"""The runs whose steps an ``interleaved`` child takes in turn (the road ratios' source)."""
AOIS = ("AOI_2_Vegas",)
BATCH = 2
DEFAULT_DATA = Path(tempfile.gettempdir()) / "aerialsam_bench_train"
STEPS = {"full": {"decoder_nocache": 7, "full": 5, "unet": 7, "warm": 9},
         "quick": {"decoder_nocache": 3, "full": 3, "unet": 3, "warm": 3}}
"""Steps timed per case after the dropped first step; ``warm``: warm-cache steps (epoch 1).
The cache case's cold steps are the rest of epoch 0, whatever the mode. A road case takes
the steps of its building counterpart (``road_unet_cldice`` those of ``unet``), so that the
shortest of as many draws is compared."""


def _peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _steps(case: str, mode: str) -> int:
    """Steps timed for ``case`` (not the cache case) in ``mode``."""
    base = case.removeprefix("road_").removesuffix("_cldice")
    return STEPS[mode][base]


def _task(case: str) -> str:
    """``buildings`` or ``roads``: which chips the case trains on."""
    return CASES[case].get("task", "buildings")


def _run_config(case: str, image_size: int) -> train_config.TrainConfig:
    """The case's configuration: smoke sizes, Vegas, batch 2, CPU. The steps are driven
    here (``steps`` only shapes the learning-rate schedule, not a step's cost)."""
    return train_config.from_profile(
        "smoke", **CASES[case], aois=AOIS, image_size=image_size, batch_size=BATCH,
        steps=1000, val_every=10**6, checkpoint_every=10**6, device="cpu", amp="off",
        name=case)


def _train_data(data_root: Path, case: str) -> loop.TrainData:
    """The case's chips, masks and splits: the building or the road stages of ``data_root``."""
    return loop.TrainData(*profiles.stage_paths(data_root).training_data(_task(case)))


def _one_step(ctx: Any, batches: Iterator[tuple[int, dict]], step: int) -> dict[str, float]:
    """One training step as ``loop.train`` takes it; its wall and CPU time."""
    wall, cpu = time.perf_counter(), time.process_time()
    epoch, batch = next(batches)
    loss, _ = loop._micro_step(ctx, batch, step, sync=True)
    loop._optimizer_step(ctx)
    loss = float(loss)  # the loop reads losses every few steps; a timed step must finish
    return {"epoch": epoch, "wall": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu, "loss": loss}


def _timed_steps(ctx: Any, count: int) -> list[dict[str, float]]:
    """Take ``count`` training steps as ``loop.train`` does; wall and CPU time of each."""
    batches = loop._batches(ctx, 0)
    return [_one_step(ctx, batches, step) for step in range(count)]


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
    baseline outside quick mode, the final validation's time). ``data_root`` holds the
    building and road stages (``stage_paths``)."""
    data = _train_data(data_root, case)
    start_rss = _peak_rss_mb()
    ctx = loop._setup(_run_config(case, image_size), data, runs_dir / case)
    per_epoch = len(ctx.train) // BATCH
    count = (per_epoch + STEPS[mode]["warm"] if case == "decoder_cache"
             else _steps(case, mode) + 1)
    records = _timed_steps(ctx, count)
    out: dict[str, Any] = {"case": case, "task": _task(case), "train_chips": len(ctx.train),
                           "params_trained": sum(p.numel() for p in ctx.model.parameters()
                                                 if p.requires_grad),
                           "peak_rss_mb": round(_peak_rss_mb(), 1),
                           "rss_over_imports_mb": round(_peak_rss_mb() - start_rss, 1),
                           "first_loss": round(records[0]["loss"], 4),
                           "last_loss": round(records[-1]["loss"], 4),
                           "load_avg_1min": round(os.getloadavg()[0], 1)}
    if case == "decoder_cache":
        out.update(_cache_figures(ctx, records, per_epoch, STEPS[mode]["warm"]))
    else:
        out.update(_summary(records[1:]))
    if case == BASELINE and mode != "quick":
        started = time.perf_counter()
        row = validation_row(ctx, count, records[-1]["epoch"], final=True)
        out["final_validation"] = {"seconds": round(time.perf_counter() - started, 2),
                                   "val_chips": len(ctx.val),
                                   "thresholds": len(row["f1_per_threshold"])}
    return out


def interleaved(group: str, roots: dict[str, Path], runs_dir: Path, mode: str,
                image_size: int) -> dict[str, Any]:
    """The runs of ``group`` (:data:`GROUPS`) in this process, their steps taken in turn (the
    first of the round rotating); each run's figures (first step dropped) and the load.
    ``roots``: the data folder of each task (``buildings``, ``roads``)."""
    cases = GROUPS[group]
    contexts = {case: loop._setup(_run_config(case, image_size),
                                  _train_data(roots[_task(case)], case),
                                  runs_dir / f"interleaved_{case}") for case in cases}
    batches = {case: loop._batches(ctx, 0) for case, ctx in contexts.items()}
    records: dict[str, list[dict[str, float]]] = {case: [] for case in cases}
    for step in range(_steps(cases[0], mode) + 1):
        shift = step % len(cases)
        for case in cases[shift:] + cases[:shift]:
            records[case].append(_one_step(contexts[case], batches[case], step))
    return {"group": group, "load_avg_1min": round(os.getloadavg()[0], 1),
            "runs": {case: {"task": _task(case), **_summary(records[case][1:])}
                     for case in cases}}


def _spawn(case: str, args: argparse.Namespace, runs_dir: Path,
           option: str = "--child") -> dict:
    """Run ``case`` (or, with ``option`` ``--group``, a group) in a child process; its JSON
    line."""
    command = [sys.executable, __file__, option, case, "--data", str(args.data),
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


def _road_ratios(runs: dict[str, dict]) -> dict[str, Any]:
    """From the interleaved runs' figures: per model, the building run's seconds per step
    over its road run's (road steps per second over building steps per second: at least 1
    when a road step is no slower), shortest and median wall and shortest CPU; and the
    clDice term's cost (the clDice run's seconds per step over ``road_unet``'s)."""
    pairs = {}
    for building, road in ROAD_PAIRS.items():
        b, r = runs[building], runs[road]
        pairs[building.removesuffix("_nocache")] = {
            "building_run": building, "road_run": road,
            "road_over_building_steps_per_s": round(b["s_per_step"] / r["s_per_step"], 2),
            "road_over_building_cpu_steps_per_s": round(b["cpu_s_per_step"]
                                                        / r["cpu_s_per_step"], 2),
            "road_over_building_median": round(b["median_s_per_step"]
                                               / r["median_s_per_step"], 2)}
    cldice, plain = runs["road_unet_cldice"], runs["road_unet"]
    return {"road_vs_building": pairs,
            "cldice_cost": {"s_per_step_ratio": round(cldice["s_per_step"]
                                                      / plain["s_per_step"], 2),
                            "cpu_s_per_step_ratio": round(cldice["cpu_s_per_step"]
                                                          / plain["cpu_s_per_step"], 2),
                            "cldice_weight": CASES["road_unet_cldice"]["cldice_weight"]}}


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
    parser.add_argument("--group", choices=sorted(GROUPS), help=argparse.SUPPRESS)
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
    if args.group:
        torch.set_num_threads(args.threads)
        roots = dict.fromkeys(train_config.TASKS, args.data / "smoke")
        print(json.dumps(interleaved(args.group, roots, args.runs, mode, args.image_size)))
        return
    smoke = profiles.load_profile("smoke")
    datasets.prepare_training_data(smoke, args.data / "smoke")
    # the road stages of Vegas only: its three 1300 px tiles give train, val and test
    datasets.prepare_training_data(profiles.load_profile("smoke", aois=AOIS),
                                   args.data / "smoke", task="roads")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        cases = {case: _spawn(case, args, Path(tmp)) for case in CASES}
        groups = {group: _spawn(group, args, Path(tmp), "--group") for group in GROUPS}
        runs = {case: figures for group in groups.values()
                for case, figures in group["runs"].items()}
        line: dict[str, Any] = {
            "benchmark": "train", "baseline": f"{BASELINE} (frozen encoder run every step)",
            "device": "cpu", "torch_threads": args.threads, "mode": mode,
            "variant": "tiny", "weights": "random", "image_size": args.image_size,
            "chip_size": smoke.chip_size, "batch_size": BATCH, "aois": list(AOIS),
            "cases": cases, **_ratios(cases), "interleaved": groups, **_road_ratios(runs),
            "bench_seconds": round(time.perf_counter() - started, 1)}
        if args.demo_metrics:
            line[args.demo_profile] = demo_metrics(args.data, Path(tmp) / "demo_runs",
                                                   args.demo_steps, args.demo_profile)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
