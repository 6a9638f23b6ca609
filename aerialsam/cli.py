"""The ``aerialsam`` command: a thin layer over the modules.

Each subcommand has an ``_add_<name>`` function that declares its arguments and sets
``handler``; the handler calls into the library and returns an exit code. A user error
(:class:`aerialsam.errors.AerialSamError`, a missing or unwritable path) is printed as one
line on stderr with exit code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from rasterio.errors import NotGeoreferencedWarning

from aerialsam import __version__, chips, demo, download, masks, masks_batch, metrics
from aerialsam.cli_args import add_evaluate, add_finetune, add_predict
from aerialsam.errors import AerialSamError
from aerialsam.io import atomic_path

log = logging.getLogger("aerialsam")


def _add_demo(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo", help="write synthetic SpaceNet 2 AOIs in the real layout",
        description="Write synthetic SpaceNet 2 AOIs (Vegas, Paris, Shanghai, Khartoum) "
                    "in the exact SpaceNet 2 layout.")
    parser.add_argument("out_dir", type=Path, help="destination folder")
    parser.add_argument("--tiles-per-aoi", type=int, default=10, metavar="N",
                        help="tiles per AOI (default 10)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("--aoi", default="vegas,paris,shanghai,khartoum",
                        help="comma-separated AOIs (default: all four)")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    aois = [a for a in args.aoi.split(",") if a]
    written = demo.make_demo(args.out_dir, tiles_per_aoi=args.tiles_per_aoi, seed=args.seed,
                             aois=aois)
    for aoi_dir in written:
        print(aoi_dir)
    return 0


def _add_rasterize(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "rasterize", help="burn building labels into a mask on an image's grid",
        description="Rasterize building labels (GeoJSON in any CRS, or a SpaceNet CSV with "
                    "PolygonWKT_Pix) onto IMAGE's grid: uint8 {0,255}, float32 for distance.")
    parser.add_argument("image", type=Path, help="the raster whose grid the mask takes")
    parser.add_argument("labels", type=Path, help="GeoJSON or SpaceNet CSV of building polygons")
    parser.add_argument("out", type=Path, help="output GeoTIFF")
    parser.add_argument("--kind", choices=masks.MASK_KINDS, default="footprint",
                        help="mask kind (default footprint)")
    parser.add_argument("--boundary-width", type=int, default=3, metavar="W",
                        help="side of the square eroding the footprint (default 3: 1-px ring)")
    parser.add_argument("--boundary-side", choices=("inner", "outer"), default="inner",
                        help="boundary inside (default) or outside the footprint")
    parser.add_argument("--contact-spacing", type=float, default=10, metavar="PX",
                        help="contact spacing in pixels (default 10)")
    parser.set_defaults(handler=_run_rasterize)


def _run_rasterize(args: argparse.Namespace) -> int:
    out = masks.rasterize_file(args.image, args.labels, args.out, kind=args.kind,
                               boundary_width=args.boundary_width,
                               boundary_side=args.boundary_side,
                               contact_spacing=args.contact_spacing)
    print(out)
    return 0


def _add_chip(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "chip", help="cut rasters into georeferenced uint8 RGB chips",
        description="Cut a GeoTIFF, a folder of them, or SpaceNet 2 AOI folder(s) into "
                    "overlapping uint8 RGB chips (per-AOI percentile stretch), with chips.csv.")
    parser.add_argument("src", type=Path, help="a GeoTIFF, a folder of them, or an AOI folder")
    parser.add_argument("out_dir", type=Path, help="chip folder (chips.csv, stretch.json)")
    parser.add_argument("--size", type=int, default=512, help="chip edge in pixels (default 512)")
    parser.add_argument("--overlap", type=int, default=64,
                        help="pixels shared by neighbouring chips (default 64)")
    parser.add_argument("--workers", type=int, default=1, metavar="K",
                        help="tiles chipped in parallel (default 1)")
    parser.add_argument("--stretch", type=Path, default=None, metavar="JSON",
                        help="reuse the per-AOI bounds of this stretch.json")
    parser.add_argument("--aoi", default=None, help="AOI name of every source (default: "
                        "from the SpaceNet file name, else the folder name)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stretch sample")
    parser.set_defaults(handler=_run_chip)


def _run_chip(args: argparse.Namespace) -> int:
    report = chips.chip_sources(args.src, args.out_dir, size=args.size, overlap=args.overlap,
                                workers=args.workers, seed=args.seed, stretch_path=args.stretch,
                                aoi=args.aoi)
    if report.tiles == 1 and report.failures:
        raise AerialSamError(": ".join(report.failures[0]))
    print(chips.chip_summary(report))
    return _report_failures("chip", report.failures, report.tiles,
                            "could not be chipped (listed above); the others were")


def _report_failures(command: str, failures: list[tuple[str, str]], tiles: int,
                     outcome: str) -> int:
    """Print a batch's failed tiles, one line each, then their count; return the exit code."""
    for source, problem in failures:
        print(f"aerialsam {command}: error: {source}: {problem}", file=sys.stderr)
    if not failures:
        return 0
    if len(failures) == tiles:
        outcome = "failed (logged above); nothing was written"
    print(f"aerialsam {command}: error: {len(failures)} of {tiles} tiles {outcome}",
          file=sys.stderr)
    return 2


def _add_download(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "download", help="download SpaceNet 2 from its public bucket (tiles or tarballs)",
        description="Download SpaceNet 2 anonymously over HTTPS (s3://spacenet-dataset) into the "
                    "SpaceNet 2 layout: the first N tiles of each AOI in ascending tile number "
                    "(--tiles N), or whole md5-verified, resumable tarballs (--tarball).")
    parser.add_argument("--aoi", default="vegas,paris,shanghai,khartoum",
                        help="comma-separated AOIs (default: all four)")
    parser.add_argument("--split", choices=("train", "test"), default="train",
                        help="train (labelled) or test (public test, no labels); default train")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--tiles", type=int, metavar="N",
                      help="the first N tiles (image + building GeoJSON) of each AOI")
    mode.add_argument("--tarball", action="store_true",
                      help="whole tarballs: streamed, resumed, md5-verified, extracted safely")
    parser.add_argument("--dest", type=Path, default=Path("data/raw"),
                        help="raw data folder (default data/raw)")
    parser.add_argument("--manifest", type=Path, default=None, metavar="PATH",
                        help="your own data manifest (default: the packaged data_manifest.yaml)")
    parser.add_argument("--endpoint", default=None, metavar="URL",
                        help="bucket base URL of a mirror or S3-compatible server "
                             "(default: the manifest's, https://spacenet-dataset.s3.amazonaws.com)")
    parser.add_argument("--workers", type=int, default=8, metavar="K",
                        help="concurrent tile downloads (default 8)")
    parser.add_argument("--keep-archive", action="store_true",
                        help="keep verified tarballs in DEST/.downloads after extraction")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be fetched and its size, download nothing "
                             "(tarballs: no network at all)")
    parser.set_defaults(handler=_run_download)


def _run_download(args: argparse.Namespace) -> int:
    manifest = download.resolve_manifest(args.manifest)
    aois = [manifest.aoi(a).name for a in args.aoi.split(",") if a.strip()]
    if args.dry_run:
        plans = download.plan_download(aois, args.split, args.dest, args.tiles, manifest,
                                       args.endpoint)
        print("\n".join(download.describe_plans(plans, args.dest)))
        return 0
    for aoi in aois:
        if args.tarball:
            folder = download.download_tarball(aoi, args.split, args.dest, args.endpoint,
                                               manifest, keep_archive=args.keep_archive)
        else:
            folder = download.download_tiles(aoi, args.tiles, args.dest, args.endpoint,
                                             args.workers, manifest, split=args.split)
        print(folder)
    return 0


def _add_masks(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "masks", help="write the masks of every chip of a chip folder",
        description="Write footprint/boundary/contact/distance masks for every chip listed in "
                    "CHIPS_DIR/chips.csv, on each chip's grid, with masks.csv.")
    parser.add_argument("chips_dir", type=Path, help="chip folder holding chips.csv")
    parser.add_argument("out_dir", type=Path, help="mask folder")
    parser.add_argument("--kinds", default=",".join(masks_batch.DEFAULT_KINDS),
                        help="comma-separated mask kinds (default footprint,boundary,contact)")
    parser.add_argument("--labels", type=Path, default=None, metavar="DIR",
                        help="folder of <image_id>.geojson (default: the SpaceNet 2 layout "
                             "beside each source tile)")
    parser.add_argument("--boundary-width", type=int, default=3, metavar="W",
                        help="side of the square eroding the footprint (default 3: 1-px ring)")
    parser.add_argument("--boundary-side", choices=("inner", "outer"), default="inner",
                        help="boundary inside (default) or outside the footprint")
    parser.add_argument("--contact-spacing", type=float, default=10, metavar="PX",
                        help="contact spacing in pixels (default 10)")
    parser.set_defaults(handler=_run_masks)


def _run_masks(args: argparse.Namespace) -> int:
    params = masks_batch.MaskParams(args.boundary_width, args.boundary_side,
                                    args.contact_spacing)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    report = masks_batch.write_chip_masks(args.chips_dir, args.out_dir, kinds=kinds,
                                          labels_dir=args.labels, params=params)
    print(masks_batch.mask_summary(report))
    return _report_failures("masks", report.failures, report.tiles,
                            "have no masks (listed above); the others were done")


def _add_score(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "score", help="SpaceNet 2 F1 of a proposal CSV against a truth CSV",
        description="Score building proposals with the SpaceNet 2 rules (IoU > 0.5, polygons "
                    "under 20 px² dropped, proposals by confidence; overall = mean AOI F1).")
    parser.add_argument("truth", type=Path, help="truth CSV (ImageId,BuildingId,PolygonWKT_Pix)")
    parser.add_argument("proposals", type=Path,
                        help="proposal CSV (ImageId,BuildingId,PolygonWKT_Pix,Confidence)")
    parser.add_argument("--json", action="store_true",
                        help='print {"per_aoi": {AOI: {tp, fp, fn, precision, recall, f1}}, '
                             '"overall_f1": x}')
    parser.add_argument("--per-image", type=Path, metavar="OUT.csv",
                        help="also write the per-image scores to this CSV")
    parser.set_defaults(handler=_run_score)


def _run_score(args: argparse.Namespace) -> int:
    result = metrics.score_csv(args.truth, args.proposals)
    if args.per_image:
        with atomic_path(args.per_image) as tmp:
            result.per_image.to_csv(tmp, index=False)
    if args.json:
        print(json.dumps(result.to_json_dict()))
        return 0
    table = result.per_aoi.astype(object)
    for column in ("precision", "recall", "f1"):
        table[column] = table[column].map(lambda x: f"{x:.6f}")
    table.loc["overall (mean AOI F1)"] = ["", "", "", "", "", f"{result.overall_f1:.6f}"]
    print(table.to_string())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aerialsam`` command with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="aerialsam",
        description="Building segmentation in SpaceNet 2 aerial imagery with SAM 2.")
    parser.add_argument("--version", action="version", version=f"aerialsam {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_demo, _add_rasterize, _add_chip, _add_download, _add_masks, _add_score,
                add_predict, add_finetune, add_evaluate):
        add(commands)
    return parser


def _handler(handler: Callable[[argparse.Namespace], int] | str
             ) -> Callable[[argparse.Namespace], int]:
    """A command's handler; ``"module:function"`` names one whose module loads only now."""
    if callable(handler):
        return handler
    module, name = handler.split(":")
    return getattr(importlib.import_module(module), name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = build_parser().parse_args(argv)
    # Progress messages only with -v: a failing command prints one line.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # GDAL's own messages reach Python logging through rasterio; the error line says enough.
    logging.getLogger("rasterio").setLevel(logging.WARNING)
    warnings.simplefilter("ignore", NotGeoreferencedWarning)
    try:
        return _handler(args.handler)(args)
    except AerialSamError as exc:
        print(f"aerialsam {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = exc.filename or "?"
        print(f"aerialsam {args.command}: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"aerialsam {args.command}: interrupted", file=sys.stderr)
        return 130
