"""Run folders of fine-tuning: the model a configuration builds, checkpoints, the saved result.

Layout of ``runs/<name>/``::

    run.json                  the configuration, then (at the end) threshold and final metrics
    checkpoints/last.pt       everything to resume: model, optimiser, scheduler, scaler,
                              random states, step (also ``step_<N>.pt`` every N steps)
    metrics.csv               loss, pixel IoU, SpaceNet F1, learning rate per logged step
    tb/                       the same as TensorBoard event files
    model.pt                  the final weights in SAM 2's official format ``{"model": …}``
                              (LoRA folded in), for ``aerialsam predict RUN_DIR``

Every file is written atomically: an interrupted run leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aerialsam.errors import InputError
from aerialsam.io import atomic_path
from aerialsam.models.checkpoints import read_checkpoint
from aerialsam.training.kinds import kind_of
from aerialsam.training.train_config import TrainConfig, make_config

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"
LAST = "last.pt"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.csv"


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
    """Write a checkpoint atomically (a crash leaves the previous file whole)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint`.

    Raises:
        InputError: missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no checkpoint here: nothing to resume")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(path, f"unreadable checkpoint ({first[:120]})") from None


def write_run_json(run_dir: Path, config: TrainConfig, **results: object) -> None:
    """Write ``run.json``: the configuration and any results (threshold, metrics)."""
    document = {"config": config.to_dict(), **results}
    with atomic_path(run_dir / RUN_FILE) as tmp:
        tmp.write_text(json.dumps(document, indent=1) + "\n")


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``run.json`` with its ``config`` as a :class:`TrainConfig`.

    Raises:
        InputError: not a run folder, or a run.json this version cannot read.
    """
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise InputError(run_dir, f"not a fine-tuning run folder (no {RUN_FILE})")
    try:
        document = json.loads(path.read_text())
        document["config"] = make_config(document["config"], source=str(path))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"not a readable run file ({exc})") from None
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
    state = read_checkpoint(path)
    model = kind_of(config).rebuild(config, state, str(path))
    model.load_state_dict(state)
    return model.to(device).eval(), run
