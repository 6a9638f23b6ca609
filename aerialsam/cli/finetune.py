"""``aerialsam finetune``: fine-tune SAM 2 or train the U-Net baseline on prepared chips.

Its options are declared in :mod:`aerialsam.cli.model_commands`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aerialsam import config as profiles
from aerialsam.errors import InputError
from aerialsam.training.datasets import prepare_training_data
from aerialsam.training.loop import TrainData, train
from aerialsam.training.runs import DiskFullError, disk_full, read_run
from aerialsam.training.train_config import load_config


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = {"task": "task", "model": "model", "regime": "regime", "prompt": "prompt",
            "variant": "variant",
            "checkpoint": "checkpoint", "steps": "steps", "batch_size": "batch_size",
            "lr": "lr", "name": "name"}
    return {key: getattr(args, attr) for attr, key in keys.items()
            if getattr(args, attr) is not None}


def run_finetune(args: argparse.Namespace) -> int:
    """Handle ``aerialsam finetune``: print the run folder."""
    if args.resume is not None:
        config = read_run(args.resume)["config"]
        run_dir = args.resume
        if args.config is not None or _overrides(args):
            raise InputError("--resume", "a resumed run keeps its saved settings; give only "
                                         "--resume RUN_DIR (and --data)")
    elif args.config is None:
        raise InputError("CONFIG_OR_PROFILE", "give a profile (smoke, demo, full) or a YAML "
                                              "file, or --resume RUN_DIR")
    else:
        config = load_config(args.config, **_overrides(args))
        run_dir = profiles.stage_paths(args.data).runs / config.run_name
    data = _data(args.data, args.config if args.resume is None else None, config.task)
    try:
        result = train(config, data, run_dir, resume=args.resume is not None)
    except DiskFullError:
        raise
    except Exception as exc:
        # checkpoints say so themselves; this catches metrics.csv, run.json, model.pt, tb/
        # (torch's writer may report ENOSPC as a RuntimeError caused by it)
        if not disk_full(exc):
            raise
        written = getattr(exc, "filename", None) or getattr(exc, "source", None)
        raise DiskFullError(run_dir, written) from None
    print(result.run_dir)
    return 0


def _data(data_dir: Path, config: str | None, task: str) -> TrainData:
    """The prepared stages of ``task``; for a profile name, made first when missing."""
    if config in profiles.PROFILES:
        return TrainData(*prepare_training_data(profiles.load_profile(config), data_dir,
                                                task=task))
    stages = profiles.stage_paths(data_dir).training_data(task)
    missing = [p for p in stages if not p.exists()]
    if missing:
        raise InputError(missing[0], "not found: prepare the data first (aerialsam chip, "
                                     "masks and splits, or run finetune with a profile name)")
    return TrainData(*stages)
