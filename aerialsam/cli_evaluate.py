"""``aerialsam evaluate``: every model on the held-out tiles of each city, one table."""

from __future__ import annotations

import argparse
from pathlib import Path

from aerialsam.config import stage_paths
from aerialsam.errors import InputError
from aerialsam.evaluate import ZERO_SHOT, ZeroShot, evaluate
from aerialsam.models.sam2 import RANDOM, VARIANTS, check_image_size
from aerialsam.predict import AutoSettings
from aerialsam.runs import read_run
from aerialsam.stretch import STRETCH_FILE


def add_evaluate(commands: argparse._SubParsersAction) -> None:
    """Declare ``aerialsam evaluate`` and its options."""
    parser = commands.add_parser(
        "evaluate", help="score models per city on the held-out tiles",
        description="Predict the held-out tiles of each city with each model, vectorize with "
                    "the validation-tuned threshold, score with the SpaceNet 2 metric; write "
                    "reports/<name>/ and print the summary table. MODEL is a run folder, "
                    "sam2-auto (zero-shot automatic masks) or sam2-oracle (ground-truth box "
                    "prompts: an upper bound).")
    parser.add_argument("models", nargs="+", metavar="RUN_OR_MODEL",
                        help="run folders, sam2-auto, sam2-oracle")
    parser.add_argument("--data", type=Path, default=Path("data"), metavar="DIR",
                        help="data folder holding splits.csv and chips/ (default ./data)")
    parser.add_argument("--split", default="test", help="split to score (default test)")
    parser.add_argument("--aoi", default="all", help="comma-separated AOIs, or all")
    parser.add_argument("--name", default="evaluation", help="report folder name")
    parser.add_argument("--variant", choices=tuple(VARIANTS), default="tiny",
                        help="zero-shot SAM 2 variant (default tiny)")
    parser.add_argument("--checkpoint", metavar="PATH|random",
                        help="zero-shot SAM 2 weights (default: the official checkpoint)")
    parser.add_argument("--image-size", type=int, default=None, metavar="N",
                        help="zero-shot SAM 2 input side (default 1024); runs use their own")
    parser.add_argument("--points-per-side", type=int, default=32, metavar="N",
                        help="sam2-auto point grid per chip side (default 32)")
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    parser.set_defaults(handler=run_evaluate)


def _check_models(models: list[str], image_size: int | None) -> None:
    """Refuse unknown models and runs trained at another input size, before any work."""
    for model in models:
        if model in ZERO_SHOT:
            continue
        if not Path(model).is_dir():
            raise InputError(model, f"not a run folder, nor one of {', '.join(ZERO_SHOT)}")
        config = read_run(model)["config"]
        if image_size is not None and config.model == "sam2" and config.image_size != image_size:
            raise InputError(model, f"was trained at {config.image_size} px input, not "
                                    f"--image-size {image_size}; evaluate it at its own size")


def run_evaluate(args: argparse.Namespace) -> int:
    """Handle ``aerialsam evaluate``: print the summary table."""
    _check_models(args.models, args.image_size)
    paths = stage_paths(args.data)
    aois = None if args.aoi == "all" else [a for a in args.aoi.split(",") if a]
    image_size = check_image_size(args.image_size or 1024)
    zero_shot = ZeroShot(args.variant, args.checkpoint, image_size,
                         AutoSettings(points_per_side=args.points_per_side), args.device)
    if args.checkpoint == RANDOM:
        print("note: zero-shot SAM 2 with random weights: its scores mean nothing")
    stretch = paths.chips / STRETCH_FILE
    summary = evaluate(args.models, paths.splits, paths.reports / args.name, args.split, aois,
                       zero_shot, stretch if stretch.exists() else None)
    print(summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(paths.reports / args.name / "summary.csv")
    return 0
