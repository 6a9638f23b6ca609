"""``aerialsam evaluate``: every model on the held-out tiles of each city, one table.

Its options are declared in :mod:`aerialsam.cli.model_commands`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aerialsam.cli.options import ALL_AOIS, selected_aois
from aerialsam.config import stage_paths
from aerialsam.errors import InputError
from aerialsam.evaluation.per_city import ZERO_SHOT, ZeroShot, evaluate, held_out
from aerialsam.evaluation.roads import evaluate_roads
from aerialsam.inference.auto_masks import AutoSettings
from aerialsam.inference.prediction import check_sources
from aerialsam.models.variants import RANDOM, check_image_size
from aerialsam.prep.chip_masks import read_road_params
from aerialsam.prep.stretch import STRETCH_FILE
from aerialsam.training.kinds import kind_of
from aerialsam.training.runs import read_run


def _check_models(models: list[str], image_size: int | None) -> None:
    """Refuse unknown models and runs trained at another input size, before any work."""
    for model in models:
        if model in ZERO_SHOT:
            continue
        if not Path(model).is_dir():
            raise InputError(model, f"not a run folder, nor one of {', '.join(ZERO_SHOT)}")
        config = read_run(model)["config"]
        fixed_size = "image_size" in kind_of(config).own_fields
        if image_size is not None and fixed_size and config.image_size != image_size:
            raise InputError(model, f"was trained at {config.image_size} px input, not "
                                    f"--image-size {image_size}; evaluate it at its own size")


def _task(models: list[str], asked: str | None) -> str:
    """The task to score: ``--task``, else the runs' own (one for all), else buildings.

    Raises:
        InputError: a run trained for another task than the others or than ``--task``.
    """
    tasks = {model: read_run(model)["config"].task for model in models if model not in ZERO_SHOT}
    task = asked or next(iter(tasks.values()), "buildings")
    for model, trained in tasks.items():
        if trained != task:
            raise InputError(model, f"was trained for {trained}, not {task}: evaluate building "
                                    "and road runs separately (--task)")
    return task


def run_evaluate(args: argparse.Namespace) -> int:
    """Handle ``aerialsam evaluate``: print the summary table."""
    _check_models(args.models, args.image_size)
    task = _task(args.models, args.task)
    paths = stage_paths(args.data)
    chips, _, splits = paths.training_data(task)
    aois = None if args.aoi == ALL_AOIS else selected_aois(args.aoi)
    # the held-out tiles, checked as `predict` checks its images, before any model loads
    check_sources(held_out(splits, args.split, aois))
    image_size = check_image_size(args.image_size or 1024)
    zero_shot = ZeroShot(args.variant, args.checkpoint, image_size,
                         AutoSettings(points_per_side=args.points_per_side), args.device)
    if args.checkpoint == RANDOM:
        print("note: zero-shot SAM 2 with random weights: its scores mean nothing")
    stretch = chips / STRETCH_FILE
    stretch = stretch if stretch.exists() else None
    if task == "roads":
        summary = evaluate_roads(args.models, splits, paths.reports / args.name, args.split,
                                 aois, zero_shot, stretch, args.overlap,
                                 road_params=read_road_params(paths.road_masks))
    else:
        summary = evaluate(args.models, splits, paths.reports / args.name, args.split, aois,
                           zero_shot, stretch, args.overlap)
    print(summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(paths.reports / args.name / "summary.csv")
    return 0
