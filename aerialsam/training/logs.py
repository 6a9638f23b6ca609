"""Validation and logging of the fine-tuning loop (first process only).

Each logged row goes to ``metrics.csv`` and to TensorBoard event files under ``tb/``. The
train steps' numbers stay on the device until :func:`log_steps` reads several steps' at once,
and stops the run at a non-finite loss (:class:`TrainingError`).
"""

from __future__ import annotations

import csv
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter

from aerialsam.errors import AerialSamError
from aerialsam.inference.road_graph import DEFAULT_OPTIONS
from aerialsam.io import atomic_path
from aerialsam.prep.chips import STRETCH_FILE
from aerialsam.prep.stretch import load_stretches
from aerialsam.training import runs
from aerialsam.training.road_validation import SETTINGS, setting_name, tile_apls
from aerialsam.training.tasks import Logs
from aerialsam.training.validation import tile_f1, val_sources


class TrainingError(AerialSamError):
    """Training cannot go on (a non-finite loss); the last good checkpoint is kept."""

    def __init__(self, run_dir: str | Path, problem: str) -> None:
        """Name the run and what stopped it; the message reads ``run_dir: problem``.

        Args:
            run_dir: the run folder.
            problem: why training cannot go on.
        """
        super().__init__(f"{run_dir}: {problem}")


def to_device(batch: dict, device: torch.device) -> dict:
    """A collated batch with its tensors (and lists of tensors) moved to ``device``.

    The copies do not block: from the loader's pinned memory the next batch's copy overlaps
    the GPU's work on this one (CUDA orders them before any kernel that reads them).
    """
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else
            [x.to(device, non_blocking=True) for x in v] if isinstance(v, list) and v and
            isinstance(v[0], torch.Tensor) else v for k, v in batch.items()}


def to_host(batches: list[tuple[list[torch.Tensor], list[Logs]]]
            ) -> list[tuple[list[float], list[dict[str, float]]]]:
    """The losses and logs of several steps (or batches) as numbers, in one transfer.

    Args:
        batches: per step, its micro-batches' losses and logs (0-d tensors, or numbers).
    """
    flat = [value for losses, logs in batches
            for value in [*losses, *(entry[key] for entry in logs for key in sorted(entry))]]
    device = next((v.device for v in flat if isinstance(v, torch.Tensor)), torch.device("cpu"))
    # float64: a batch's pixel counts pass 2**24, where float32 stops counting exactly (Apple's
    # GPUs have no float64: float32 there)
    dtype = torch.float32 if device.type == "mps" else torch.float64
    tensors = [torch.as_tensor(value).to(device, dtype).detach().reshape(()) for value in flat]
    values = iter(torch.stack(tensors).cpu().tolist() if tensors else [])
    out = []
    for losses, logs in batches:
        numbers = [next(values) for _ in losses]
        entries = [{key: next(values) for key in sorted(entry)} for entry in logs]
        out.append((numbers, entries))
    return out


METRIC_COLUMNS = ("step", "epoch", "split", "loss", "pixel_iou", "f1", "apls", "threshold",
                  "lr", "seconds")


def val_losses(ctx: Any) -> tuple[float, float]:  # noqa: ANN401 (loop's _Context, duck-typed)
    """Loss and pixel IoU over the validation chips (no augmentation, no gradients)."""
    ctx.model.eval()
    task = ctx.task.module if isinstance(ctx.task, DistributedDataParallel) else ctx.task
    losses, logs = [], []
    loader = DataLoader(ctx.val, batch_size=ctx.config.batch_size, collate_fn=ctx.collate,
                        num_workers=ctx.config.workers, pin_memory=ctx.device.type == "cuda")
    with torch.no_grad():
        for i, batch in enumerate(loader):
            batch = to_device(batch, ctx.device)
            batch["step_seed"] = ctx.config.seed + i
            with torch.autocast(ctx.device.type, dtype=ctx.amp_dtype,
                                enabled=ctx.amp_dtype is not None):
                loss, batch_logs = _uncached(task, batch)
            losses.append(loss)
            logs.append(batch_logs)
    ctx.model.train()
    return summarize(*to_host([(losses, logs)])[0])


def summarize(losses: list[float], logs: list[dict[str, float]]) -> tuple[float, float]:
    """Mean loss and pixel IoU of several batches.

    Dense outputs report pixel counts: the IoU is that of all the batches' pixels together.
    Prompted batches report a mean IoU over their prompts and, without any building, a NaN
    IoU and a zero loss: those are left out.
    """
    if logs and all("inter" in entry for entry in logs):
        union = sum(entry["union"] for entry in logs)
        iou = sum(entry["inter"] for entry in logs) / union if union else float("nan")
        return sum(losses) / len(losses), iou
    scored = [(loss, entry["pixel_iou"]) for loss, entry in zip(losses, logs, strict=True)
              if not math.isnan(entry["pixel_iou"])]
    if not scored:
        return float("nan"), float("nan")
    return (sum(loss for loss, _ in scored) / len(scored),
            sum(iou for _, iou in scored) / len(scored))


def _uncached(task: nn.Module, batch: dict) -> tuple[torch.Tensor, Logs]:
    """A task's loss without its embedding cache (validation chips are not cached)."""
    cache = getattr(task, "cache", None)
    if cache is not None:
        task.cache = None
    try:
        return task(batch)
    finally:
        if cache is not None:
            task.cache = cache


def validation_row(ctx: Any, step: int, epoch: int,  # noqa: ANN401 (loop's _Context, duck-typed)
                   final: bool) -> dict[str, Any]:
    """The ``val`` row of ``metrics.csv`` at ``step``: loss, pixel IoU, tile score, threshold.

    The tile score is the SpaceNet F1 of building runs and the APLS of road runs. A ``final``
    row tries every threshold of ``validation.THRESHOLDS`` (roads: every graph setting of
    ``road_validation.SETTINGS``) and adds what the run saves: the oracle flag and the F1
    per threshold (roads: the best graph setting and the APLS per setting); the others score
    at 0.5 only (roads: the default setting).
    """
    loss, iou = val_losses(ctx)
    row: dict[str, Any] = {"step": step, "epoch": epoch, "split": "val", "loss": loss,
                           "pixel_iou": iou}
    ctx.model.eval()
    stretches = load_stretches(ctx.data.chips / STRETCH_FILE)
    size = int(ctx.val.chips["size"].iloc[0])
    overlap = int(ctx.val.chips["overlap"].iloc[0])
    sources = val_sources(ctx.val.chips)
    if ctx.config.task == "roads":
        settings = SETTINGS if final else (DEFAULT_OPTIONS,)
        roads = tile_apls(ctx.model, ctx.config, sources, stretches, size, overlap, settings)
        row.update(apls=roads.apls, threshold=roads.options.threshold)
        if final:
            row["oracle"] = False
            row["road_graph"] = dataclasses.asdict(roads.options)
            row["apls_per_setting"] = roads.per_setting
            row["setting"] = setting_name(roads.options)
    else:
        thresholds = None if final else (0.5,)
        scored = tile_f1(ctx.model, ctx.config, sources, stretches, size, overlap,
                         **({} if thresholds is None else {"thresholds": thresholds}))
        row.update(f1=scored.f1, threshold=scored.threshold)
        if final:
            row["oracle"] = scored.oracle
            row["f1_per_threshold"] = {str(k): v for k, v in scored.per_threshold.items()}
    ctx.model.train()
    return row


def log_row(ctx: Any,  # noqa: ANN401 (loop's _Context, duck-typed)
            writer: SummaryWriter | None, row: dict[str, Any]) -> None:
    """Append ``row`` to ``metrics.csv``, and its numbers to ``writer`` (first process only)."""
    if ctx.rank != 0:
        return
    path = ctx.run_dir / runs.METRICS_FILE
    new = not path.exists()
    with path.open("a", newline="") as handle:
        out = csv.DictWriter(handle, METRIC_COLUMNS, extrasaction="ignore")
        if new:
            out.writeheader()
        out.writerow(row)
    if writer is not None:
        for key in ("loss", "pixel_iou", "f1", "apls", "lr"):
            if isinstance(row.get(key), float) and not math.isnan(row[key]):
                writer.add_scalar(f"{row['split']}/{key}", row[key], row["step"])


def trim_metrics(run_dir: Path, step: int) -> None:
    """Drop logged rows after ``step`` (a resumed run logs them again)."""
    path = run_dir / runs.METRICS_FILE
    if not path.exists():
        return
    with path.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= step]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        out = csv.DictWriter(handle, METRIC_COLUMNS)
        out.writeheader()
        out.writerows(rows)


@dataclass
class PendingStep:
    """A train step whose numbers are still on the device (see :func:`log_steps`)."""

    step: int
    epoch: int
    losses: list[torch.Tensor]
    logs: list[Logs]
    lr: float
    seconds: float
    """Since the run started, when the host queued the step: on a GPU that may be a step or
    two before the GPU finished it (each read of the losses catches up)."""


def log_steps(ctx: Any,  # noqa: ANN401 (loop's _Context, duck-typed)
              writer: SummaryWriter | None, pending: list[PendingStep]) -> None:
    """Log the steps taken since the last call, reading their numbers in one transfer.

    Reading a loss makes the host wait until the GPU has computed it, so the loop reads them
    every ``SYNC_EVERY`` steps and before a checkpoint or a validation, not every step.

    Raises:
        TrainingError: a step's loss was not finite (on any process); the steps before it
            are logged. No checkpoint has been written since: the loop checks first.
    """
    numbers = to_host([(s.losses, s.logs) for s in pending])
    rows = [(*summarize(losses, logs), sum(losses)) for losses, logs in numbers]
    for pending_step, (own, _), (loss, iou, total) in zip(
            pending, numbers, _across_ranks(ctx, rows), strict=True):
        if not math.isfinite(total):  # any process's loss: every process stops here
            bad = next((x for x in own if not math.isfinite(x)), total)
            raise TrainingError(ctx.run_dir, _diverged(ctx, bad, pending_step.step))
        log_row(ctx, writer, {"step": pending_step.step, "epoch": pending_step.epoch,
                              "split": "train", "loss": loss, "pixel_iou": iou,
                              "lr": pending_step.lr, "seconds": pending_step.seconds})
    pending.clear()


def _across_ranks(ctx: Any,  # noqa: ANN401 (loop's _Context, duck-typed)
                  rows: list[tuple[float, ...]]) -> list[tuple[float, ...]]:
    """Means of logged numbers over the processes (each saw its share of the batch)."""
    if ctx.world == 1 or not rows:
        return rows
    tensor = torch.tensor(rows, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor)
    return [tuple(row) for row in (tensor / ctx.world).tolist()]


def _diverged(ctx: Any, loss: float, step: int) -> str:  # noqa: ANN401 (loop's _Context)
    """Why training stopped at a non-finite loss, and what can be done about it.

    An exact resume takes the same steps again, so it diverges again: the way on is a new
    run with other settings. ``amp`` is a configuration key (YAML), not a command option.
    """
    newest = runs.latest_checkpoint(ctx.run_dir)
    kept = (f"the newest checkpoint is {newest}" if newest is not None
            else "no checkpoint was saved yet")
    amp = (f", or with `amp: off` in its YAML configuration (this run used {ctx.config.amp})"
           if ctx.amp_dtype is not None else "")
    return (f"loss is {loss} at step {step}; training stopped, {kept}. Resuming repeats the "
            f"same steps: start a new run (another --name) with a lower --lr (this run used "
            f"{ctx.config.lr:g}){amp}")
