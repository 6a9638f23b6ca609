"""``aerialsam predict``: SAM 2 (zero-shot or prompted) over GeoTIFFs, tiled and streamed.

Its options are declared in :mod:`aerialsam.cli.model_commands`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from sam2.modeling.sam2_base import SAM2Base

from aerialsam.device import pick_device
from aerialsam.errors import InputError
from aerialsam.inference.auto_masks import AutoSettings, BuildingFilter
from aerialsam.inference.chip_models import sam2_factory
from aerialsam.inference.prediction import (
    ChipModelFactory,
    TileOptions,
    VectorizeOptions,
    check_sources,
    output_paths,
    predict_images,
)
from aerialsam.inference.prompts import read_prompt_file
from aerialsam.inference.road_graph import DEFAULT_OPTIONS, RoadGraphOptions
from aerialsam.inference.road_oracle import sam2_road_factory
from aerialsam.inference.road_prediction import RoadOutputs, road_output_paths
from aerialsam.models.sam2 import compile_encoder, load_sam2
from aerialsam.models.variants import check_image_size
from aerialsam.prep.chips import find_sources, saved_stretches
from aerialsam.prep.stretch import STRETCH_FILE
from aerialsam.training.kinds import kind_of
from aerialsam.training.road_validation import saved_options
from aerialsam.training.runs import load_run_model, read_run

log = logging.getLogger(__name__)


def run_predict(args: argparse.Namespace) -> int:
    """Handle ``aerialsam predict``: print the combined CSV's path (proposals or roads)."""
    if args.batch_size < 1:
        raise InputError("--batch-size", f"must be at least 1, got {args.batch_size}")
    if args.task == "roads" and args.mode not in ("auto", "oracle"):
        raise InputError("--mode", f"roads take --mode auto or oracle, not {args.mode}: a "
                                   "road network has no boxes or points to prompt with")
    if args.compile and args.model != "sam2" and Path(args.model).is_dir() \
            and read_run(args.model)["config"].model != "sam2":
        raise InputError("--compile", "compiles SAM 2's image encoder; this run is a U-Net")
    if args.mode in ("box", "point") and args.prompts is None:
        raise InputError("--prompts", f"--mode {args.mode} needs a prompt file")
    # every input file is read and checked before a model loads (seconds, or a download,
    # and SAM 2 may log about its weights): a bad file is then the only line printed
    prompts = read_prompt_file(args.prompts) if args.mode in ("box", "point") else None
    sources = find_sources(args.src)
    roads = _road_options(args)
    check_sources(sources, args.out_dir, road_output_paths if roads is not None else output_paths)
    stretch = _stretch_path(args)
    saved_stretches(args.out_dir, stretch)
    if args.model == "sam2" and args.task == "roads":
        factory, params, image_size, threshold = _pretrained_roads(args, sources)
    elif args.model == "sam2":
        factory, params, image_size, threshold = _pretrained(args, sources, prompts)
    elif args.task is not None:
        raise InputError("--task", "a run folder draws what it was trained for; --task is for "
                                   "zero-shot sam2")
    elif Path(args.model).is_dir():
        factory, params, image_size, threshold = _from_run(args, sources, prompts)
    else:
        raise InputError(args.model, "unknown model; use 'sam2' or a run folder written by "
                                     "`aerialsam finetune`")
    size = args.size or image_size
    threshold = args.threshold if args.threshold is not None else threshold
    report = predict_images(sources, args.out_dir, factory, params,
                            TileOptions(size, args.overlap, args.batch_size, args.tta),
                            VectorizeOptions(threshold=threshold), stretch,
                            outputs=RoadOutputs(dataclasses.replace(roads, threshold=threshold))
                            if roads is not None else None)
    print(report.proposals_path)
    return 0


def _compiled(args: argparse.Namespace, model: SAM2Base) -> SAM2Base:
    """The SAM 2 model, its image encoder compiled when ``--compile`` asks for it."""
    if args.compile:
        log.info("--compile: the first batch of chips compiles SAM 2's image encoder")
        compile_encoder(model)
    return model


def _stretch_path(args: argparse.Namespace) -> Path | None:
    """``--stretch``, else a run folder's ``stretch.json`` (imagery read as its chips were)."""
    if args.stretch is not None:
        return args.stretch
    saved = Path(args.model) / STRETCH_FILE
    return saved if args.model != "sam2" and saved.exists() else None


def _road_options(args: argparse.Namespace) -> RoadGraphOptions | None:
    """The graph setting of a road prediction (its threshold set later); None for buildings.

    A run records its task, so ``aerialsam predict RUN_DIR`` draws roads for a road run
    without being told, with its validated setting (checked here, before any model loads);
    zero-shot SAM 2 draws them with ``--task roads`` and the defaults.
    """
    if args.model == "sam2":
        return DEFAULT_OPTIONS if args.task == "roads" else None
    if not Path(args.model).is_dir():
        return None  # refused as an unknown model by the caller
    run = read_run(args.model)
    return saved_options(run, args.model) if run["config"].task == "roads" else None


def _auto(args: argparse.Namespace) -> AutoSettings:
    return AutoSettings(points_per_side=args.points_per_side,
                        pred_iou_thresh=args.pred_iou_thresh,
                        stability_score_thresh=args.stability_thresh)


def _pretrained(args: argparse.Namespace, sources: list, prompts: object
                ) -> tuple[ChipModelFactory, dict, int, float]:
    """Zero-shot SAM 2: the chip models, the recorded parameters, input size, threshold."""
    image_size = check_image_size(args.image_size)
    model = _compiled(args, load_sam2(args.variant, args.checkpoint, args.device, image_size))
    factory = sam2_factory(model, args.mode, sources, prompts, args.prompts or "prompts",
                           _auto(args), BuildingFilter())
    params = {"model": "sam2", "variant": args.variant,
              "checkpoint": args.checkpoint or "official", "image_size": image_size,
              "mode": args.mode, "prompts": str(args.prompts) if prompts is not None else None,
              "auto": _auto(args).recorded() if args.mode == "auto" else None}
    return factory, params, image_size, 0.5


def _pretrained_roads(args: argparse.Namespace, sources: list
                      ) -> tuple[ChipModelFactory, dict, int, float]:
    """Zero-shot SAM 2 on roads (``auto`` or ``oracle``): chip models, parameters, size."""
    image_size = check_image_size(args.image_size)
    model = _compiled(args, load_sam2(args.variant, args.checkpoint, args.device, image_size))
    factory = sam2_road_factory(model, args.mode, sources, _auto(args))
    params = {"model": "sam2", "task": "roads", "variant": args.variant,
              "checkpoint": args.checkpoint or "official", "image_size": image_size,
              "mode": args.mode,
              "auto": _auto(args).recorded() if args.mode == "auto" else None}
    return factory, params, image_size, 0.5


def _from_run(args: argparse.Namespace, sources: list, prompts: object
              ) -> tuple[ChipModelFactory, dict, int, float]:
    """A fine-tuned run: U-Net, SAM 2 in ``none`` mode, or prompt-trained SAM 2 (``--mode``)."""
    model, run = load_run_model(args.model, pick_device(args.device))
    config = run["config"]
    kind = kind_of(config)
    if config.model == "sam2":
        model = _compiled(args, model)
    if not kind.needs_prompts(config):
        chips = kind.chip_model(model, config, None)
        factory: ChipModelFactory = lambda source, src: chips  # noqa: E731
        mode = "dense"
    else:
        factory = sam2_factory(model, args.mode, sources, prompts, args.prompts or "prompts",
                               _auto(args), BuildingFilter())
        mode = args.mode
    image_size = kind.input_size(config, run)
    params = {"model": str(Path(args.model).resolve()), "mode": mode,
              "step": run.get("step"), "image_size": image_size}
    return factory, params, image_size, float(run.get("threshold", 0.5))
