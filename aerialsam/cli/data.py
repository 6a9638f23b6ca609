"""``aerialsam demo`` and ``aerialsam download``: the ``raw/`` stage, synthetic or downloaded."""

from __future__ import annotations

import argparse
from pathlib import Path

from aerialsam.cli.arg_types import non_negative_int, positive_int
from aerialsam.cli.options import add_aoi, selected_aois
from aerialsam.data import demo, demo_roads, download
from aerialsam.data.manifest import DEFAULT_DATASET
from aerialsam.data.s3 import check_endpoint

DATASETS = ("buildings", "roads")
"""The datasets of the packaged manifest: SpaceNet 2 buildings and SpaceNet 3 roads."""


def add_demo(commands: argparse._SubParsersAction) -> None:
    """Declare ``aerialsam demo`` and its options."""
    parser = commands.add_parser(
        "demo", help="write synthetic SpaceNet AOIs in the real layout",
        description="Write synthetic AOIs (Vegas, Paris, Shanghai, Khartoum) in the exact "
                    "SpaceNet 2 layout (buildings) or SpaceNet 3 layout (roads).")
    parser.add_argument("out_dir", type=Path, help="destination folder")
    parser.add_argument("--dataset", choices=DATASETS, default=DEFAULT_DATASET,
                        help="buildings (SpaceNet 2, 650 px tiles; default) or roads "
                             "(SpaceNet 3, 1300 px tiles)")
    parser.add_argument("--tiles-per-aoi", type=positive_int, default=10, metavar="N",
                        help="tiles per AOI (default 10)")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                        help="random seed (default 0)")
    add_aoi(parser)
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    aois = selected_aois(args.aoi)
    if args.dataset == "roads":
        written = demo_roads.make_road_demo(args.out_dir, tiles_per_aoi=args.tiles_per_aoi,
                                            seed=args.seed, aois=aois)
    else:
        written = demo.make_demo(args.out_dir, tiles_per_aoi=args.tiles_per_aoi,
                                 seed=args.seed, aois=aois)
    for aoi_dir in written:
        print(aoi_dir)
    return 0


def add_download(commands: argparse._SubParsersAction) -> None:
    """Declare ``aerialsam download`` and its options."""
    parser = commands.add_parser(
        "download", help="download SpaceNet 2 or 3 from its public bucket (tiles or tarballs)",
        description="Download SpaceNet 2 (buildings) or SpaceNet 3 (roads) anonymously over "
                    "HTTPS (s3://spacenet-dataset) into the dataset's layout: the first N tiles "
                    "of each AOI in ascending tile number (--tiles N), or whole md5-verified, "
                    "resumable tarballs (--tarball; for roads also the speed labels).")
    parser.add_argument("--dataset", default=DEFAULT_DATASET, metavar="NAME",
                        help="buildings (SpaceNet 2; default) or roads (SpaceNet 3), or another "
                             "dataset of --manifest")
    add_aoi(parser)
    parser.add_argument("--split", choices=("train", "test"), default="train",
                        help="train (labelled) or test (public test, no labels); default train")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--tiles", type=positive_int, metavar="N",
                      help="the first N tiles (image + label GeoJSON) of each AOI")
    mode.add_argument("--tarball", action="store_true",
                      help="whole tarballs: streamed, resumed, md5-verified, extracted safely")
    parser.add_argument("--dest", type=Path, default=Path("data/raw"),
                        help="raw data folder (default data/raw)")
    parser.add_argument("--manifest", type=Path, default=None, metavar="PATH",
                        help="your own data manifest (default: the packaged data_manifest.yaml)")
    parser.add_argument("--endpoint", default=None, metavar="URL",
                        help="bucket base URL of a mirror or S3-compatible server "
                             "(default: the manifest's, https://spacenet-dataset.s3.amazonaws.com)")
    parser.add_argument("--workers", type=positive_int, default=8, metavar="K",
                        help="concurrent tile downloads (default 8)")
    parser.add_argument("--keep-archive", action="store_true",
                        help="keep verified tarballs in DEST/.downloads after extraction")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be fetched and its size, download nothing "
                             "(tarballs: no network at all)")
    parser.set_defaults(handler=_run_download)


def _run_download(args: argparse.Namespace) -> int:
    if args.endpoint is not None:
        check_endpoint(args.endpoint, "--endpoint")
    manifest = download.resolve_manifest(args.manifest)
    dataset = manifest.dataset(args.dataset)
    aois = [dataset.aoi(a).name for a in selected_aois(args.aoi)]
    if args.dry_run:
        plans = download.plan_download(aois, args.split, args.dest, args.tiles, manifest,
                                       args.endpoint, dataset=dataset.name)
        print("\n".join(download.describe_plans(plans, args.dest)))
        return 0
    for aoi in aois:
        if args.tarball:
            folder = download.download_tarball(aoi, args.split, args.dest, args.endpoint,
                                               manifest, dataset=dataset.name,
                                               keep_archive=args.keep_archive)
        else:
            folder = download.download_tiles(aoi, args.tiles, args.dest, args.endpoint,
                                             args.workers, manifest, dataset=dataset.name,
                                             split=args.split)
        print(folder)
    return 0
