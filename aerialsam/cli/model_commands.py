"""The model commands (``predict``, ``finetune``, ``evaluate``) and their options.

Declaring them needs no deep-learning stack: each sets its handler as
``"module:function"``, which :func:`aerialsam.cli.app.main` imports only when that command runs,
so ``aerialsam score`` or ``aerialsam demo`` start without loading torch and SAM 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aerialsam.cli.arg_types import non_negative_int, positive_float, positive_int, probability
from aerialsam.cli.options import (
    MAX_CHIP_SIDE,
    add_aoi,
    add_data,
    add_device,
    add_variant,
    chip_side,
)
from aerialsam.training.train_config import MODELS, PROMPTS, REGIMES, TASKS

MODES = ("auto", "box", "point", "oracle")


def add_predict(commands: argparse._SubParsersAction) -> None:
    """Declare ``aerialsam predict`` and its options."""
    parser = commands.add_parser(
        "predict", help="segment buildings or roads in GeoTIFFs with SAM 2",
        description="Predict building probabilities (GeoTIFF), polygons (GeoPackage) and "
                    "SpaceNet proposals (CSV) for every image of IMAGE_OR_DIR, chip by chip "
                    "with overlap, streaming large rasters; for roads, road probabilities, "
                    "the road graph (GeoPackage of LineStrings with lengths) and SpaceNet 3 "
                    "roads (CSV).")
    parser.add_argument("model", help="'sam2' (pretrained, or random with --checkpoint random), "
                                      "or a run folder written by `aerialsam finetune`")
    parser.add_argument("src", type=Path, metavar="IMAGE_OR_DIR",
                        help="a GeoTIFF, a folder of them, or SpaceNet 2 or 3 AOI folder(s)")
    parser.add_argument("out_dir", type=Path, help="prediction folder")
    add_variant(parser, "tiny", "SAM 2.1 size (default tiny)")
    parser.add_argument("--checkpoint", default=None, metavar="PATH|random",
                        help="checkpoint file, or 'random' for untrained weights (default: "
                             "the official file from the cache, downloaded if needed)")
    parser.add_argument("--mode", choices=MODES, default="auto",
                        help="auto: automatic masks; box/point: --prompts; oracle: boxes (roads: "
                             "points) of the ground truth (an upper bound, SpaceNet tiles only)")
    parser.add_argument("--task", choices=TASKS, default=None,
                        help="zero-shot sam2: buildings (default) or roads (auto: long, narrow "
                             "masks; oracle: points on the true roads of SpaceNet 3 tiles); a "
                             "run folder draws what it was trained for")
    parser.add_argument("--prompts", type=Path, metavar="FILE",
                        help="vector file of boxes/polygons (box) or points (point), any CRS")
    parser.add_argument("--image-size", type=positive_int, default=1024, metavar="N",
                        help="SAM 2 input side (multiple of 32; default 1024)")
    parser.add_argument("--size", type=chip_side, default=None, metavar="CHIP",
                        help=f"chip side in image pixels, at most {MAX_CHIP_SIDE} (default: the "
                             "image size)")
    parser.add_argument("--overlap", type=non_negative_int, default=64, metavar="PX",
                        help="pixels shared by neighbouring chips (default 64)")
    parser.add_argument("--batch-size", type=positive_int, default=4, metavar="B",
                        help="chips per encoder pass (default 4)")
    parser.add_argument("--tta", action="store_true", help="average the four flips of each chip")
    parser.add_argument("--compile", action="store_true",
                        help="SAM 2: compile its image encoder with torch.compile (a GPU and "
                             "many tiles: the first batch pays a minute or more of warm-up)")
    parser.add_argument("--threshold", type=probability, default=None,
                        help="probability above which a pixel is building or road (default: the "
                             "run's validation-tuned threshold, else 0.5)")
    parser.add_argument("--stretch", type=Path, metavar="FILE",
                        help="stretch.json of the chips, for uint16 imagery")
    add_device(parser)
    parser.add_argument("--points-per-side", type=positive_int, default=32, metavar="N",
                        help="auto mode: point grid per chip side (default 32)")
    parser.add_argument("--pred-iou-thresh", type=probability, default=0.8,
                        help="auto mode: minimum predicted IoU (default 0.8)")
    parser.add_argument("--stability-thresh", type=probability, default=0.95,
                        help="auto mode: minimum stability score (default 0.95)")
    parser.set_defaults(handler="aerialsam.cli.predict:run_predict")


def add_finetune(commands: argparse._SubParsersAction) -> None:
    """Declare ``aerialsam finetune`` and its options."""
    parser = commands.add_parser(
        "finetune", help="fine-tune SAM 2 or train the U-Net baseline",
        description="Train on the chips, masks and splits under --data (made first, for a "
                    "profile, when missing); write runs/<name>/ with checkpoints, metrics and "
                    "the final model.")
    parser.add_argument("config", nargs="?", default=None, metavar="CONFIG_OR_PROFILE",
                        help="smoke, demo, full, or a YAML file of training keys")
    add_data(parser, "chips/, masks/, splits.csv")
    parser.add_argument("--task", choices=TASKS,
                        help="buildings (SpaceNet 2, default) or roads (SpaceNet 3: road_chips/, "
                             "road_masks/, road_splits.csv)")
    parser.add_argument("--model", choices=MODELS, help="sam2 or unet")
    parser.add_argument("--regime", choices=REGIMES, help="SAM 2: decoder, full or lora")
    parser.add_argument("--prompt", choices=PROMPTS, help="SAM 2: none, box or point")
    add_variant(parser, None, "SAM 2.1 size")
    parser.add_argument("--checkpoint", metavar="PATH|random", help="SAM 2 starting weights")
    parser.add_argument("--steps", type=positive_int, help="optimiser steps")
    parser.add_argument("--batch-size", type=positive_int, help="chips per step per process")
    parser.add_argument("--lr", type=positive_float, help="learning rate")
    parser.add_argument("--name", help="run name (default: from model, regime, prompt)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue this run from its last checkpoint")
    parser.set_defaults(handler="aerialsam.cli.finetune:run_finetune")


def add_evaluate(commands: argparse._SubParsersAction) -> None:
    """Declare ``aerialsam evaluate`` and its options."""
    parser = commands.add_parser(
        "evaluate", help="score models per city on the held-out tiles",
        description="Predict the held-out tiles of each city with each model, vectorize with "
                    "the validation-tuned threshold, score with the SpaceNet 2 metric (roads: "
                    "draw the graph, score with APLS); write "
                    "reports/<name>/ and print the summary table. MODEL is a run folder, "
                    "sam2-auto (zero-shot automatic masks) or sam2-oracle (ground-truth box "
                    "prompts: an upper bound).")
    parser.add_argument("models", nargs="+", metavar="RUN_OR_MODEL",
                        help="run folders, sam2-auto, sam2-oracle")
    add_data(parser, "splits.csv and chips/")
    parser.add_argument("--split", default="test", help="split to score (default test)")
    parser.add_argument("--task", choices=TASKS, default=None,
                        help="buildings (SpaceNet 2 F1) or roads (SpaceNet 3 APLS, on "
                             "road_splits.csv); default: the runs' task, else buildings")
    add_aoi(parser)
    parser.add_argument("--name", default="evaluation", help="report folder name")
    add_variant(parser, "tiny", "zero-shot SAM 2 variant (default tiny)")
    parser.add_argument("--checkpoint", metavar="PATH|random",
                        help="zero-shot SAM 2 weights (default: the official checkpoint)")
    parser.add_argument("--image-size", type=positive_int, default=None, metavar="N",
                        help="zero-shot SAM 2 input side (default 1024); runs use their own")
    parser.add_argument("--points-per-side", type=positive_int, default=32, metavar="N",
                        help="sam2-auto point grid per chip side (default 32)")
    parser.add_argument("--overlap", type=non_negative_int, default=None, metavar="PX",
                        help="chip overlap (default: a run's training grid, else 1/8 chip)")
    add_device(parser)
    parser.set_defaults(handler="aerialsam.cli.evaluate:run_evaluate")
