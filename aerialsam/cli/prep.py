"""``aerialsam rasterize``, ``chip`` and ``masks``: tiles made into chips and masks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aerialsam.cli.arg_types import int_range, non_negative_int, positive_float, positive_int
from aerialsam.cli.options import MAX_CHIP_SIDE, chip_side
from aerialsam.errors import AerialSamError
from aerialsam.prep import chip_masks, chips, masks, road_masks


def _add_mask_options(parser: argparse.ArgumentParser) -> None:
    """The shape options of the building and road masks, shared by rasterize and masks."""
    parser.add_argument("--boundary-width", type=int_range(2), default=3, metavar="W",
                        help="side of the square eroding the footprint (default 3: 1-px ring)")
    parser.add_argument("--boundary-side", choices=("inner", "outer"), default="inner",
                        help="boundary inside (default) or outside the footprint")
    parser.add_argument("--contact-spacing", type=positive_float, default=10, metavar="PX",
                        help="contact spacing in pixels (default 10)")
    parser.add_argument("--road-radius-m", type=positive_float, default=2.0, metavar="M",
                        help="road kinds: half the road width in metres (default 2)")
    parser.add_argument("--lane-width-m", type=positive_float, default=None, metavar="M",
                        help="road kinds: make each road lane_number x M metres wide instead")
    parser.add_argument("--road-distance-cap-m", type=positive_float, default=10.0, metavar="M",
                        help="road_distance: the largest distance recorded (default 10 m)")


def _road_params(args: argparse.Namespace) -> road_masks.RoadParams:
    return road_masks.RoadParams(args.road_radius_m, args.lane_width_m,
                                 args.road_distance_cap_m)


def add_rasterize(commands: argparse._SubParsersAction) -> None:
    """Declare ``aerialsam rasterize`` and its options."""
    parser = commands.add_parser(
        "rasterize", help="burn building or road labels into a mask on an image's grid",
        description="Rasterize building labels (GeoJSON in any CRS, or a SpaceNet CSV with "
                    "PolygonWKT_Pix) or, with a road kind, road centre lines (GeoJSON in any "
                    "CRS, or a SpaceNet 3 CSV with WKT_Pix) buffered in metres onto IMAGE's "
                    "grid: uint8 {0,255}, float32 for distance and road_distance.")
    parser.add_argument("image", type=Path, help="the raster whose grid the mask takes")
    parser.add_argument("labels", type=Path,
                        help="GeoJSON or SpaceNet CSV of building polygons or road lines")
    parser.add_argument("out", type=Path, help="output GeoTIFF")
    parser.add_argument("--kind", choices=masks.ALL_KINDS, default="footprint",
                        help="mask kind (default footprint)")
    _add_mask_options(parser)
    parser.set_defaults(handler=_run_rasterize)


def _run_rasterize(args: argparse.Namespace) -> int:
    out = masks.rasterize_file(args.image, args.labels, args.out, kind=args.kind,
                               boundary_width=args.boundary_width,
                               boundary_side=args.boundary_side,
                               contact_spacing=args.contact_spacing,
                               road=_road_params(args))
    print(out)
    return 0


def add_chip(commands: argparse._SubParsersAction) -> None:
    """Declare ``aerialsam chip`` and its options."""
    parser = commands.add_parser(
        "chip", help="cut rasters into georeferenced uint8 RGB chips",
        description="Cut a GeoTIFF, a folder of them, or SpaceNet 2 or 3 AOI folder(s) into "
                    "overlapping uint8 RGB chips (per-AOI percentile stretch), with chips.csv.")
    parser.add_argument("src", type=Path, help="a GeoTIFF, a folder of them, or an AOI folder")
    parser.add_argument("out_dir", type=Path, help="chip folder (chips.csv, stretch.json)")
    parser.add_argument("--size", type=chip_side, default=512,
                        help=f"chip edge in pixels, at most {MAX_CHIP_SIDE} (default 512)")
    parser.add_argument("--overlap", type=non_negative_int, default=64,
                        help="pixels shared by neighbouring chips (default 64)")
    parser.add_argument("--workers", type=positive_int, default=1, metavar="K",
                        help="tiles chipped in parallel (default 1)")
    parser.add_argument("--stretch", type=Path, default=None, metavar="JSON",
                        help="reuse the per-AOI bounds of this stretch.json")
    parser.add_argument("--aoi", default=None, help="AOI name of every source (default: "
                        "from the SpaceNet file name, else the folder name)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the stretch sample (default 0)")
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


def add_masks(commands: argparse._SubParsersAction) -> None:
    """Declare ``aerialsam masks`` and its options."""
    parser = commands.add_parser(
        "masks", help="write the masks of every chip of a chip folder",
        description="Write building (footprint/boundary/contact/distance) or road "
                    "(road/road_centerline/road_distance) masks for every chip listed in "
                    "CHIPS_DIR/chips.csv, on each chip's grid, with masks.csv.")
    parser.add_argument("chips_dir", type=Path, help="chip folder holding chips.csv")
    parser.add_argument("out_dir", type=Path, help="mask folder")
    parser.add_argument("--kinds", default=",".join(chip_masks.DEFAULT_KINDS),
                        help="comma-separated mask kinds (default footprint,boundary,contact; "
                             "roads: road,road_centerline,road_distance)")
    parser.add_argument("--labels", type=Path, default=None, metavar="DIR",
                        help="folder of <image_id>.geojson (default: the SpaceNet 2 layout "
                             "beside each source tile, SpaceNet 3 for road kinds)")
    _add_mask_options(parser)
    parser.set_defaults(handler=_run_masks)


def _run_masks(args: argparse.Namespace) -> int:
    params = chip_masks.MaskParams(args.boundary_width, args.boundary_side,
                                    args.contact_spacing)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    report = chip_masks.write_chip_masks(args.chips_dir, args.out_dir, kinds=kinds,
                                          labels_dir=args.labels, params=params,
                                          road_params=_road_params(args))
    print(chip_masks.mask_summary(report))
    return _report_failures("masks", report.failures, report.tiles,
                            "have no masks (listed above); the others were done")
