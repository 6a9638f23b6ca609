"""One fine-tuning loop for SAM 2 and the U-Net: AMP, checkpoints, exact resume, torchrun DDP.

The data order is a function of (seed, epoch) only and each augmentation of (seed, epoch,
chip), so a run interrupted after any checkpoint and resumed takes exactly the same steps as
an uninterrupted one. Under ``torchrun`` every process reads its share of each batch
(``DistributedSampler``) and DistributedDataParallel averages the gradients; one process
with ``world_size`` times the batch computes the same update.

Checkpoints, logs and validation happen on the first process only.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from torch.utils.tensorboard import SummaryWriter

from aerialsam.device import amp_dtype, pick_device
from aerialsam.errors import InputError
from aerialsam.io import remove_temporaries
from aerialsam.models.checkpoints import resolve_checkpoint
from aerialsam.prep.stretch import STRETCH_FILE
from aerialsam.training import runs
from aerialsam.training.datasets import ChipDataset
from aerialsam.training.embedding_cache import EmbeddingCache, checkpoint_identity, model_key
from aerialsam.training.kinds import kind_of
from aerialsam.training.logs import (
    PendingStep,
    log_row,
    log_steps,
    to_device,
    trim_metrics,
    validation_row,
)
from aerialsam.training.logs import (
    TrainingError as TrainingError,  # train() raises it: loop.TrainingError is its public name
)
from aerialsam.training.tasks import Logs, dense_target_names
from aerialsam.training.train_config import TrainConfig

log = logging.getLogger(__name__)

SYNC_EVERY = 10
"""Train steps whose losses are read (and logged) together: each read makes the host wait
for the GPU, which then idles until the next step is queued."""


@dataclass(frozen=True)
class TrainData:
    """The prepared data stages a run reads (see ``datasets.prepare_training_data``)."""

    chips: Path
    masks: Path
    splits: Path


@dataclass
class RunResult:
    """What a run reached: its folder, last step, and the final validation numbers."""

    run_dir: Path
    step: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class _Context:
    """Everything a step needs, built once."""

    config: TrainConfig
    run_dir: Path
    device: torch.device
    rank: int
    world: int
    model: nn.Module
    task: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    train: ChipDataset
    val: ChipDataset
    collate: Any
    data: TrainData


def distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without it."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def lr_lambda(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _setup(config: TrainConfig, data: TrainData, run_dir: Path) -> _Context:
    rank, world, local = distributed()
    if world > 1 and not dist.is_initialized():
        # the other ranks wait while rank 0 validates whole tiles (a road run's final
        # validation draws and scores every graph setting): far past the 10 min default
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo",
                                timeout=datetime.timedelta(hours=2))
    device = pick_device(config.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    targets = dense_target_names(config)
    augment = config.augment and not config.uses_cache
    if config.augment and config.uses_cache and rank == 0:
        log.info("embedding cache on: image augmentations are off (features are computed "
                 "once per chip)")
    kind = kind_of(config)
    # prompt-free runs never read boxes or points: not computing them saves ~30 ms a chip
    prompts = kind.needs_prompts(config)
    train = ChipDataset(data.chips, data.masks, data.splits, "train", config.aois, targets,
                        augment=augment, seed=config.seed, prompts=prompts)
    val = ChipDataset(data.chips, data.masks, data.splits, "val", config.aois, targets,
                      prompts=prompts)
    model = kind.build(config).to(device)
    task = kind.task(model, config, _cache(config, model, train, data, run_dir))
    collate = kind.collate(config)
    optimizer = torch.optim.AdamW(runs.param_groups(model, config),
                                  weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_lambda, warmup=config.warmup_steps, total=config.steps))
    dtype = amp_dtype(config.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    if world > 1:
        task = DistributedDataParallel(task, device_ids=[device.index] if device.type == "cuda"
                                       else None, find_unused_parameters=kind.unused_parameters)
    return _Context(config, run_dir, device, rank, world, model, task, optimizer, scheduler,
                    scaler, dtype, train, val, collate, data)


def _cache(config: TrainConfig, model: nn.Module, train: ChipDataset, data: TrainData,
           run_dir: Path) -> EmbeddingCache | None:
    if not config.uses_cache:
        return None
    # the file load_sam2 resolved (explicit, or the cached official one): its contents count
    source = config.checkpoint or resolve_checkpoint(config.variant)
    weights = checkpoint_identity(source, seed=0)
    # SpaceNet 2 and 3 chips share ids (AOI_2_Vegas_img1_…): one cache per chip folder
    key = model_key(config.variant, config.image_size, weights)
    folder = run_dir.parent / ".embedding_cache" / f"{data.chips.name}-{key}"
    files = {str(c): data.chips / str(p) for c, p in zip(train.chips["chip_id"],
                                                         train.chips["path"], strict=True)}
    return EmbeddingCache(folder, model, files)


def _batches(ctx: _Context, start: int) -> Iterator[tuple[int, dict]]:
    """(epoch, batch) from micro-batch number ``start`` on, epoch after epoch."""
    sampler = DistributedSampler(ctx.train, num_replicas=ctx.world, rank=ctx.rank, shuffle=True,
                                 seed=ctx.config.seed, drop_last=True)
    per_epoch = len(sampler) // ctx.config.batch_size
    if per_epoch == 0:
        raise InputError(ctx.data.splits, f"the train split has {len(ctx.train)} chips, fewer "
                                          f"than one batch of {ctx.config.batch_size} per process")
    epoch, offset = divmod(start, per_epoch)
    while True:
        sampler.set_epoch(epoch)
        ctx.train.set_epoch(epoch)
        order = list(sampler)
        chunks = [order[i * ctx.config.batch_size:(i + 1) * ctx.config.batch_size]
                  for i in range(offset, per_epoch)]
        for batch in DataLoader(ctx.train, batch_sampler=chunks, collate_fn=ctx.collate,
                                num_workers=ctx.config.workers,
                                pin_memory=ctx.device.type == "cuda"):
            yield epoch, batch
        epoch, offset = epoch + 1, 0


def _micro_step(ctx: _Context, batch: dict, step: int,
                sync: bool) -> tuple[torch.Tensor, Logs]:
    """Forward and backward of one micro-batch; its loss and logs stay on the device."""
    batch = to_device(batch, ctx.device)
    batch["step_seed"] = ctx.config.seed * 1_000_003 + step * 101 + ctx.rank
    sync_context = (ctx.task.no_sync() if isinstance(ctx.task, DistributedDataParallel)
                    and not sync else _null())
    with sync_context:
        with torch.autocast(ctx.device.type, dtype=ctx.amp_dtype,
                            enabled=ctx.amp_dtype is not None):
            loss, logs = ctx.task(batch)
        ctx.scaler.scale(loss / ctx.config.grad_accum).backward()
    return loss.detach(), logs


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _optimizer_step(ctx: _Context) -> None:
    ctx.scaler.unscale_(ctx.optimizer)
    params = [p for g in ctx.optimizer.param_groups for p in g["params"]]
    torch.nn.utils.clip_grad_norm_(params, ctx.config.clip_grad)
    ctx.scaler.step(ctx.optimizer)
    ctx.scaler.update()
    ctx.scheduler.step()
    ctx.optimizer.zero_grad(set_to_none=True)


def _state(ctx: _Context, step: int) -> dict[str, Any]:
    return {"model": ctx.model.state_dict(), "optimizer": ctx.optimizer.state_dict(),
            "scheduler": ctx.scheduler.state_dict(), "scaler": ctx.scaler.state_dict(),
            "rng": runs.rng_state(), "step": step, "config": ctx.config.to_dict()}


def _restore(ctx: _Context, state: dict[str, Any]) -> int:
    ctx.model.load_state_dict(state["model"])
    ctx.optimizer.load_state_dict(state["optimizer"])
    ctx.scheduler.load_state_dict(state["scheduler"])
    ctx.scaler.load_state_dict(state["scaler"])
    runs.set_rng_state(state["rng"])
    return int(state["step"])


def _checkpoint(ctx: _Context, step: int) -> None:
    if ctx.rank == 0:
        folder = ctx.run_dir / runs.CHECKPOINTS
        state = _state(ctx, step)
        # the step file first: a crash between the two leaves it as the newest whole one
        for path in (folder / f"step_{step:06d}.pt", folder / runs.LAST):
            try:
                runs.save_checkpoint(path, state)
            except Exception as exc:  # torch's writer may report ENOSPC as a RuntimeError
                if not runs.disk_full(exc):
                    raise
                raise runs.DiskFullError(ctx.run_dir, path) from None
    if ctx.world > 1:
        dist.barrier()


def train(config: TrainConfig, data: TrainData, run_dir: str | Path, resume: bool = False,
          stop_after: int | None = None) -> RunResult:
    """Fine-tune (or continue fine-tuning) one model; write the run folder.

    Args:
        config: the run's configuration.
        data: the chips, masks and splits to read.
        run_dir: the run folder (see :mod:`aerialsam.training.runs`).
        resume: continue exactly where the run stopped, with the saved configuration's data
            order, from its newest whole checkpoint (``last.pt`` or ``step_<N>.pt``; damaged
            ones are named in a warning and skipped); with none, from step 0.
        stop_after: end after this step (as an interruption would; a later ``resume``
            continues to ``config.steps``).

    Raises:
        InputError: bad data (before any step), a folder holding another run, or a
            finished run to resume.
        TrainingError: a non-finite loss.
        DiskFullError: the disk filled up while saving a checkpoint.
    """
    run_dir = Path(run_dir)
    _check_run_dir(run_dir, config, resume)
    ctx = _setup(config, data, run_dir)
    step = 0
    if resume:
        found = runs.resume_checkpoint(run_dir)
        if found is not None:
            step = _restore(ctx, found[1])
            log.info("resuming %s at step %d of %d from %s", run_dir.name, step, config.steps,
                     found[0].name)
        else:  # it died before its first checkpoint: run.json holds all it needs
            log.warning("%s: no whole checkpoint to resume from; starting again from step 0 "
                        "with the saved configuration", run_dir)
        del found  # the loaded state: as large as the model and its optimiser
        if ctx.rank == 0:
            trim_metrics(run_dir, step)
            remove_temporaries(run_dir)  # a killed run's half-written checkpoints
    if step == 0 and ctx.rank == 0:
        runs.write_run_json(run_dir, config, **_grid(ctx))
        # predictions with this run read imagery exactly as its training chips were made
        if (data.chips / STRETCH_FILE).exists():
            shutil.copy2(data.chips / STRETCH_FILE, run_dir / STRETCH_FILE)
    writer = SummaryWriter(str(run_dir / "tb"), purge_step=step) if ctx.rank == 0 else None
    end = min(config.steps, stop_after) if stop_after is not None else config.steps
    val_every = config.val_every or max(1, len(ctx.train) // (config.batch_size * ctx.world
                                                              * config.grad_accum))
    result = RunResult(run_dir, step)
    ctx.model.train()
    batches = _batches(ctx, step * config.grad_accum)
    started = time.perf_counter()
    epoch = step * config.grad_accum // max(1, len(ctx.train) // (config.batch_size * ctx.world))
    pending: list[PendingStep] = []
    while step < end:
        losses, logs = [], []
        for micro in range(config.grad_accum):
            epoch, batch = next(batches)
            loss, batch_logs = _micro_step(ctx, batch, step,
                                           sync=micro == config.grad_accum - 1)
            losses.append(loss)
            logs.append(batch_logs)
        _optimizer_step(ctx)
        step += 1
        pending.append(PendingStep(step, epoch, losses, logs, ctx.scheduler.get_last_lr()[0],
                             time.perf_counter() - started))
        checkpoint = step % config.checkpoint_every == 0 or step == end
        validate = step % val_every == 0 and step < config.steps
        if checkpoint or validate or step % SYNC_EVERY == 0:
            log_steps(ctx, writer, pending)
        if checkpoint:
            _checkpoint(ctx, step)
        if ctx.rank == 0 and validate:
            log_row(ctx, writer, validation_row(ctx, step, epoch, final=False))
    result.step = step
    if step == config.steps:
        result.metrics = _finish(ctx, writer, step, epoch)
    if writer is not None:
        writer.close()
    if ctx.world > 1:
        dist.barrier()
    return result


def _check_run_dir(run_dir: Path, config: TrainConfig, resume: bool) -> None:
    """Refuse to start over a run folder, or to resume another configuration or a done run.

    A run is done when its ``run.json`` records the final step (written last, after
    ``model.pt``).
    """
    if resume:
        run = runs.read_run(run_dir)
        saved = run["config"]
        if saved.to_dict() != config.to_dict():
            changed = sorted(k for k, v in config.to_dict().items() if saved.to_dict()[k] != v)
            raise InputError(run_dir, f"was trained with other settings ({', '.join(changed)}); "
                                      "resume with the saved configuration")
        done = run.get("step")
        if isinstance(done, int) and done >= config.steps and (run_dir / runs.MODEL_FILE).exists():
            raise InputError(run_dir, f"finished already ({done} of {config.steps} steps); "
                                      "nothing to resume")
        return
    if (run_dir / runs.RUN_FILE).exists():
        raise InputError(run_dir, "holds a run already; resume it (--resume) or choose "
                                  "another name")


def _grid(ctx: _Context) -> dict[str, int]:
    """The chip grid the run trains on (predictions use the same)."""
    return {"chip_size": int(ctx.train.chips["size"].iloc[0]),
            "overlap": int(ctx.train.chips["overlap"].iloc[0])}


def _finish(ctx: _Context, writer: SummaryWriter | None, step: int,
            epoch: int) -> dict[str, float]:
    """Final validation (threshold tuned on the val tiles), ``model.pt`` and ``run.json``."""
    if ctx.rank != 0:
        return {}
    row = validation_row(ctx, step, epoch, final=True)
    log_row(ctx, writer, row)
    runs.save_final_model(ctx.run_dir, ctx.model, ctx.config)
    score = "apls" if ctx.config.task == "roads" else "f1"
    metrics = {"val_loss": row["loss"], "val_pixel_iou": row["pixel_iou"],
               f"val_{score}": row[score], "threshold": row["threshold"]}
    saved = {key: row[key] for key in ("oracle", "f1_per_threshold", "road_graph",
                                       "apls_per_setting") if key in row}
    runs.write_run_json(ctx.run_dir, ctx.config, **_grid(ctx), threshold=row["threshold"],
                        step=step, metrics=metrics, **saved)
    log.info("%s: val %s %.3f at %s%s", ctx.run_dir.name, score.upper(), row[score],
             row.get("setting", f"threshold {row['threshold']:.2f}"),
             " (oracle prompts: an upper bound)" if row["oracle"] else "")
    return metrics
