"""``aerialsam finetune``: fine-tune SAM 2 or train the U-Net baseline on prepared chips."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aerialsam import config as profiles
from aerialsam.datasets import prepare_training_data
from aerialsam.errors import InputError
from aerialsam.models.sam2 import VARIANTS
from aerialsam.runs import read_run
from aerialsam.train import TrainData, train
from aerialsam.train_config import MODELS, PROMPTS, REGIMES, load_config


def add_finetune(commands: argparse._SubParsersAction) -> None:
    """Declare ``aerialsam finetune`` and its options."""
    parser = commands.add_parser(
        "finetune", help="fine-tune SAM 2 or train the U-Net baseline",
        description="Train on the chips, masks and splits under --data (made first, for a "
                    "profile, when missing); write runs/<name>/ with checkpoints, metrics and "
                    "the final model.")
    parser.add_argument("config", nargs="?", default=None, metavar="CONFIG_OR_PROFILE",
                        help="smoke, demo, full, or a YAML file of training keys")
    parser.add_argument("--data", type=Path, default=Path("data"), metavar="DIR",
                        help="data folder holding chips/, masks/, splits.csv (default ./data)")
    parser.add_argument("--model", choices=MODELS, help="sam2 or unet")
    parser.add_argument("--regime", choices=REGIMES, help="SAM 2: decoder, full or lora")
    parser.add_argument("--prompt", choices=PROMPTS, help="SAM 2: none, box or point")
    parser.add_argument("--variant", choices=tuple(VARIANTS), help="SAM 2.1 size")
    parser.add_argument("--checkpoint", metavar="PATH|random", help="SAM 2 starting weights")
    parser.add_argument("--steps", type=int, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, help="chips per step per process")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--name", help="run name (default: from model, regime, prompt)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue this run from its last checkpoint")
    parser.set_defaults(handler=run_finetune)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = {"model": "model", "regime": "regime", "prompt": "prompt", "variant": "variant",
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
    data = _data(args.data, args.config if args.resume is None else None)
    result = train(config, data, run_dir, resume=args.resume is not None)
    print(result.run_dir)
    return 0


def _data(data_dir: Path, config: str | None) -> TrainData:
    """The prepared stages; for a profile name, made first when missing."""
    paths = profiles.stage_paths(data_dir)
    if config in profiles.PROFILES:
        return TrainData(*prepare_training_data(profiles.load_profile(config), data_dir))
    missing = [p for p in (paths.chips, paths.masks, paths.splits) if not p.exists()]
    if missing:
        raise InputError(missing[0], "not found: prepare the data first (aerialsam chip, "
                                     "masks and splits, or run finetune with a profile name)")
    return TrainData(paths.chips, paths.masks, paths.splits)
