"""``aerialsam predict``: SAM 2 (zero-shot or prompted) over GeoTIFFs, tiled and streamed."""

from __future__ import annotations

import argparse
from pathlib import Path

from aerialsam.chips import find_sources
from aerialsam.errors import InputError
from aerialsam.models.sam2 import VARIANTS, check_image_size, load_sam2, pick_device
from aerialsam.predict import AutoSettings, BuildingFilter, sam2_factory
from aerialsam.predict_run import ChipModelFactory, TileOptions, VectorizeOptions, predict_images
from aerialsam.prompts import read_prompt_file
from aerialsam.runs import load_run_model
from aerialsam.stretch import STRETCH_FILE
from aerialsam.validate import UNetChips

MODES = ("auto", "box", "point", "oracle")


def add_predict(commands: argparse._SubParsersAction) -> None:
    """Declare ``aerialsam predict`` and its options."""
    parser = commands.add_parser(
        "predict", help="segment buildings in GeoTIFFs with SAM 2",
        description="Predict building probabilities (GeoTIFF), polygons (GeoPackage) and "
                    "SpaceNet proposals (CSV) for every image of IMAGE_OR_DIR, chip by chip "
                    "with overlap, streaming large rasters.")
    parser.add_argument("model", help="'sam2' (pretrained, or random with --checkpoint random), "
                                      "or a run folder written by `aerialsam finetune`")
    parser.add_argument("src", type=Path, metavar="IMAGE_OR_DIR",
                        help="a GeoTIFF, a folder of them, or SpaceNet 2 AOI folder(s)")
    parser.add_argument("out_dir", type=Path, help="prediction folder")
    parser.add_argument("--variant", choices=tuple(VARIANTS), default="tiny",
                        help="SAM 2.1 size (default tiny)")
    parser.add_argument("--checkpoint", default=None, metavar="PATH|random",
                        help="checkpoint file, or 'random' for untrained weights (default: "
                             "the official file from the cache, downloaded if needed)")
    parser.add_argument("--mode", choices=MODES, default="auto",
                        help="auto: automatic masks; box/point: --prompts; oracle: boxes of the "
                             "ground truth (an upper bound, SpaceNet tiles only)")
    parser.add_argument("--prompts", type=Path, metavar="FILE",
                        help="vector file of boxes/polygons (box) or points (point), any CRS")
    parser.add_argument("--image-size", type=int, default=1024, metavar="N",
                        help="SAM 2 input side (multiple of 32; default 1024)")
    parser.add_argument("--size", type=int, default=None, metavar="CHIP",
                        help="chip side in image pixels (default: the image size)")
    parser.add_argument("--overlap", type=int, default=64, metavar="PX",
                        help="pixels shared by neighbouring chips (default 64)")
    parser.add_argument("--batch-size", type=int, default=4, metavar="B",
                        help="chips per encoder pass (default 4)")
    parser.add_argument("--tta", action="store_true", help="average the four flips of each chip")
    parser.add_argument("--threshold", type=float, default=None,
                        help="probability above which a pixel is building (default: the "
                             "run's validation-tuned threshold, else 0.5)")
    parser.add_argument("--stretch", type=Path, metavar="FILE",
                        help="stretch.json of the chips, for uint16 imagery")
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")
    parser.add_argument("--points-per-side", type=int, default=32, metavar="N",
                        help="auto mode: point grid per chip side (default 32)")
    parser.add_argument("--pred-iou-thresh", type=float, default=0.8,
                        help="auto mode: minimum predicted IoU (default 0.8)")
    parser.add_argument("--stability-thresh", type=float, default=0.95,
                        help="auto mode: minimum stability score (default 0.95)")
    parser.set_defaults(handler=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    """Handle ``aerialsam predict``: print the proposal CSV's path."""
    if args.batch_size < 1:
        raise InputError("--batch-size", f"must be at least 1, got {args.batch_size}")
    if args.mode in ("box", "point") and args.prompts is None:
        raise InputError("--prompts", f"--mode {args.mode} needs a prompt file")
    prompts = read_prompt_file(args.prompts) if args.mode in ("box", "point") else None
    sources = find_sources(args.src)
    if args.model == "sam2":
        factory, params, image_size, threshold = _pretrained(args, sources, prompts)
    elif Path(args.model).is_dir():
        factory, params, image_size, threshold = _from_run(args, sources, prompts)
    else:
        raise InputError(args.model, "unknown model; use 'sam2' or a run folder written by "
                                     "`aerialsam finetune`")
    size = args.size or image_size
    threshold = args.threshold if args.threshold is not None else threshold
    stretch = args.stretch
    if stretch is None and args.model != "sam2" and (Path(args.model) / STRETCH_FILE).exists():
        stretch = Path(args.model) / STRETCH_FILE  # read imagery as the run's chips were
    report = predict_images(sources, args.out_dir, factory, params,
                            TileOptions(size, args.overlap, args.batch_size, args.tta),
                            VectorizeOptions(threshold=threshold), stretch)
    print(report.proposals_path)
    return 0


def _auto(args: argparse.Namespace) -> AutoSettings:
    return AutoSettings(points_per_side=args.points_per_side,
                        pred_iou_thresh=args.pred_iou_thresh,
                        stability_score_thresh=args.stability_thresh)


def _pretrained(args: argparse.Namespace, sources: list, prompts: object
                ) -> tuple[ChipModelFactory, dict, int, float]:
    """Zero-shot SAM 2: the chip models, the recorded parameters, input size, threshold."""
    image_size = check_image_size(args.image_size)
    model = load_sam2(args.variant, args.checkpoint, args.device, image_size)
    factory = sam2_factory(model, args.mode, sources, prompts, args.prompts or "prompts",
                           _auto(args), BuildingFilter())
    params = {"model": "sam2", "variant": args.variant,
              "checkpoint": args.checkpoint or "official", "image_size": image_size,
              "mode": args.mode, "prompts": str(args.prompts) if prompts is not None else None,
              "auto": _auto(args).__dict__ if args.mode == "auto" else None}
    return factory, params, image_size, 0.5


def _from_run(args: argparse.Namespace, sources: list, prompts: object
              ) -> tuple[ChipModelFactory, dict, int, float]:
    """A fine-tuned run: U-Net, SAM 2 in ``none`` mode, or prompt-trained SAM 2 (``--mode``)."""
    model, run = load_run_model(args.model, pick_device(args.device))
    config = run["config"]
    if config.model == "unet":
        chips = UNetChips(model)
        factory: ChipModelFactory = lambda source, src: chips  # noqa: E731
        mode = "dense"
    elif config.prompt == "none":
        factory = sam2_factory(model, "none", sources)
        mode = "none"
    else:
        factory = sam2_factory(model, args.mode, sources, prompts, args.prompts or "prompts",
                               _auto(args), BuildingFilter())
        mode = args.mode
    image_size = config.image_size if config.model == "sam2" else run.get("chip_size", 512)
    params = {"model": str(Path(args.model).resolve()), "mode": mode,
              "step": run.get("step"), "image_size": image_size}
    return factory, params, image_size, float(run.get("threshold", 0.5))
