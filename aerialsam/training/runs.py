"""Run folders of fine-tuning: the model a configuration builds, checkpoints, the saved result.

Layout of ``runs/<name>/``::

    run.json                  the configuration, then (at the end) threshold and final metrics
                              (roads: also the graph setting tuned on the val tiles)
    checkpoints/last.pt       everything to resume: model, optimiser, scheduler, scaler,
                              random states, step (also ``step_<N>.pt`` every N steps)
    metrics.csv               loss, pixel IoU, SpaceNet F1 (roads: APLS), learning rate per
                              logged step
    tb/                       the same as TensorBoard event files
    model.pt                  the final weights in SAM 2's official format ``{"model": …}``
                              (LoRA folded in), for ``aerialsam predict RUN_DIR``

Every file is written atomically (and checkpoints are synced to disk before the rename):
an interrupted run leaves the previous checkpoint whole. Resuming takes the newest checkpoint
that loads and holds a whole training state, ``last.pt`` or a ``step_<N>.pt`` (compared by
the step stored inside); a damaged one is named in a warning and skipped. A run that stopped
before its first checkpoint resumes from step 0 with its saved configuration.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aerialsam.errors import AerialSamError, InputError
from aerialsam.inputs import (
    AT_LEAST_ONE,
    FRACTION,
    NON_NEGATIVE,
    check_fields,
    field_types,
    read_json,
)
from aerialsam.io import atomic_path
from aerialsam.models.checkpoints import CheckpointError, load_torch_file, read_checkpoint
from aerialsam.training.kinds import kind_of
from aerialsam.training.train_config import TrainConfig, make_config

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"
LAST = "last.pt"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.csv"
STEP_FILE = re.compile(r"step_(\d+)\.pt")
"""The name of the checkpoint kept every ``checkpoint_every`` steps."""
STATE_KEYS = ("model", "optimizer", "scheduler", "scaler", "rng", "step")
"""What a checkpoint holds to resume exactly."""
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
"""The error numbers of a full disk (or an exhausted quota)."""
DAMAGED_REMEDY = "resuming skips it"
"""What to do about a damaged training checkpoint."""


@dataclass(frozen=True)
class RunResults:
    """The results in a ``run.json`` that later stages compute with, checked by :func:`read_run`.

    Attributes:
        chip_size: the chip side the run trained on (predictions use the same grid).
        overlap: the chip overlap of that grid.
        threshold: the probability threshold tuned on the validation tiles.
        step: the last step trained.
    """

    chip_size: int | None = None
    overlap: int | None = None
    threshold: float | None = None
    step: int | None = None


_RESULT_RANGES = {"chip_size": AT_LEAST_ONE, "overlap": NON_NEGATIVE, "threshold": FRACTION,
                  "step": NON_NEGATIVE}


class DiskFullError(AerialSamError):
    """The disk filled up while a run wrote its files; the run resumes from its last checkpoint.

    The message names the last good checkpoint (or says there is none yet) and the command
    that continues the run once space is freed.
    """

    def __init__(self, run_dir: str | Path, path: str | Path | None = None) -> None:
        """Name the run, the file being written and the checkpoint to resume from.

        Args:
            run_dir: the run folder.
            path: the file whose writing failed, when known.
        """
        newest = latest_checkpoint(run_dir)
        writing = f" while writing {path}" if path else ""
        resume = (f"continues from the last good checkpoint, {newest}" if newest is not None
                  else "starts it again from step 0 (no checkpoint was saved yet)")
        super().__init__(f"{run_dir}: the disk is full{writing}; free some space, then "
                         f"`aerialsam finetune --resume {run_dir}` {resume}")


def param_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """AdamW groups: the encoder at ``lr * encoder_lr_scale`` (``full``), the rest at ``lr``."""
    encoder, rest = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            is_encoder = name.startswith("image_encoder.") and config.regime == "full"
            (encoder if is_encoder else rest).append(param)
    groups = [{"params": rest, "lr": config.lr}]
    if encoder:
        groups.append({"params": encoder, "lr": config.lr * config.encoder_lr_scale})
    return groups


def rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's global random states (for an exact resume)."""
    np_state = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                      *np_state[2:]]}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (a crash leaves the previous file whole).

    torch writes through a Python file here, not a path: given a path, its writer reports a
    full disk as a bare ``RuntimeError``; given a Python file, the ``OSError(ENOSPC)`` of the
    write surfaces, itself or as the context of torch's ``RuntimeError``. The bytes are
    synced before the rename, so that a power cut cannot leave a renamed but empty file.

    Raises:
        OSError: the disk is full (``errno`` in :data:`DISK_FULL`), naming ``path``.
        InputError: another failed write (:func:`aerialsam.io.atomic_path`).
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            with tmp.open("wb") as handle:
                torch.save(state, handle)
                handle.flush()
                os.fsync(handle.fileno())
        except Exception as exc:
            code = _disk_full_errno(exc)
            if code is None:
                raise
            # one plain error naming the checkpoint (atomic_path passes an error that names
            # another file than its temporary as it is)
            raise OSError(code, os.strerror(code), str(path)) from None
    return path


def disk_full(exc: BaseException) -> bool:
    """Whether an error comes from a full disk or an exhausted quota.

    That is an ``OSError`` with ``errno`` in :data:`DISK_FULL`, itself or as the cause of
    the error that reports it (the output error of :func:`aerialsam.io.atomic_path`).
    """
    return _disk_full_errno(exc) is not None


def _disk_full_errno(exc: BaseException) -> int | None:
    seen: BaseException | None = exc
    for _ in range(8):  # a chain of causes is short; a cycle must not hang
        if seen is None:
            return None
        if isinstance(seen, OSError) and seen.errno in DISK_FULL:
            return seen.errno
        seen = seen.__cause__ or seen.__context__
    return None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint`, checked to hold a whole state.

    Raises:
        InputError: missing, unreadable, truncated, corrupt, or not a training state.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no checkpoint here: nothing to resume")
    state = load_torch_file(path, DAMAGED_REMEDY)
    missing = ([k for k in STATE_KEYS if k not in state] if isinstance(state, dict)
               else list(STATE_KEYS))
    if missing:
        raise CheckpointError(path, f"not a training checkpoint (no {', '.join(missing)}); "
                                    f"{DAMAGED_REMEDY}")
    if not isinstance(state["step"], int) or state["step"] < 0:
        raise CheckpointError(path, f"not a training checkpoint (step {state['step']!r}); "
                                    f"{DAMAGED_REMEDY}")
    return state


def step_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """The run's ``step_<N>.pt`` files as ``(N, path)``, newest (highest N) first."""
    folder = Path(run_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STEP_FILE.fullmatch(p.name))]
    return sorted(found, reverse=True)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The run's newest checkpoint by name, unread (for messages); ``None`` when none.

    That is the highest ``step_<N>.pt``, else ``last.pt``: each checkpoint is saved as
    ``step_<N>.pt``, then as ``last.pt``, so the highest ``N`` is the newest unless the step
    files were deleted.
    """
    steps = step_checkpoints(run_dir)
    if steps:
        return steps[0][1]
    last = Path(run_dir) / CHECKPOINTS / LAST
    return last if last.is_file() else None


def resume_checkpoint(run_dir: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads whole, and its state; ``None`` when none does.

    ``last.pt`` and every ``step_<N>.pt`` are candidates, compared by the step stored
    inside. A run killed between writing ``step_<N>.pt`` and ``last.pt``, or whose
    ``last.pt`` is damaged, continues from the newest step file. Step files are read newest
    first and only while they could beat the best so far (a step file holds the step of its
    name), so a healthy run reads one or two files. Each damaged file is named in a warning.
    """
    best: tuple[Path, dict[str, Any]] | None = None
    last = Path(run_dir) / CHECKPOINTS / LAST
    if last.is_file():
        best = _loaded_or_none(last)
    for number, path in step_checkpoints(run_dir):
        if best is not None and number <= best[1]["step"]:
            break
        found = _loaded_or_none(path)
        if found is not None and (best is None or found[1]["step"] > best[1]["step"]):
            best = found
    return best


def _loaded_or_none(path: Path) -> tuple[Path, dict[str, Any]] | None:
    try:
        return path, load_checkpoint(path)
    except InputError as exc:
        log.warning("skipping a damaged checkpoint: %s", exc)
        return None


def write_run_json(run_dir: Path, config: TrainConfig, **results: object) -> None:
    """Write ``run.json``: the configuration and any results (threshold, metrics)."""
    document = {"config": config.to_dict(), **results}
    with atomic_path(run_dir / RUN_FILE) as tmp:
        tmp.write_text(json.dumps(document, indent=1) + "\n")


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``run.json`` with its ``config`` as a :class:`TrainConfig`.

    The file is read by :func:`aerialsam.inputs.read_json` (the encoding rule), the config
    checked by :func:`make_config` and the :class:`RunResults` numbers against their types
    and bounds; other keys (metrics, curves) pass as they are.

    Raises:
        InputError: not a run folder, or a run.json this version cannot read (one line naming
            the file, and the key at fault).
    """
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise InputError(run_dir, f"not a fine-tuning run folder (no {RUN_FILE})")
    # the encoding rule and JSON errors with their line: a binary, Latin-1 or cut-short
    # run.json is one line naming the file
    document = read_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise InputError(path, "not a readable run file (expected a JSON object with a "
                               "'config' object)")
    try:
        document["config"] = make_config(document["config"], source=str(path))
    except (ValueError, TypeError) as exc:
        raise InputError(path, f"not a readable run file ({exc})") from None
    # the numbers prediction and evaluation compute with: refused here, not after a model load
    results = {key: document[key] for key in field_types(RunResults) if key in document}
    document.update(check_fields(RunResults, results, path, _RESULT_RANGES))
    return document


def save_final_model(run_dir: Path, model: nn.Module, config: TrainConfig) -> Path:
    """Write ``model.pt`` (LoRA folded into the encoder, so a plain SAM 2 loads it)."""
    state = kind_of(config).final_state(model, config)
    return save_checkpoint(Path(run_dir) / MODEL_FILE, {"model": state})


def load_run_model(run_dir: str | Path, device: str | torch.device = "cpu"
                   ) -> tuple[nn.Module, dict[str, Any]]:
    """A finished run's model (eval mode, on ``device``) and its ``run.json``.

    Raises:
        InputError: not a run folder, or a run with no final model (not finished).
    """
    run = read_run(run_dir)
    config: TrainConfig = run["config"]
    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        raise InputError(run_dir, f"the run has no {MODEL_FILE}: it has not finished "
                                  "(resume it with `aerialsam finetune --resume`)")
    state = read_checkpoint(path, remedy=f"delete it and resume the run (`aerialsam finetune "
                                         f"--resume {run_dir}`) to write it again")
    model = kind_of(config).rebuild(config, state, str(path))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise CheckpointError(path, f"does not hold the weights of this run's "
                                    f"{config.model} ({first})") from None
    return model.to(device).eval(), run
