"""``aerialsam score``: the official SpaceNet metric of a proposal CSV against a truth CSV.

The truth CSV's header chooses the metric: ``PolygonWKT_Pix`` scores buildings with the
SpaceNet 2 rules (F1), ``WKT_Pix`` scores roads with the SpaceNet 3 scorer's APLS.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from aerialsam.cli.arg_types import positive_int
from aerialsam.errors import InputError
from aerialsam.inputs import open_text
from aerialsam.io import atomic_path
from aerialsam.metrics import apls, building_f1

BUILDINGS, ROADS = "PolygonWKT_Pix", "WKT_Pix"


def add_score(commands: argparse._SubParsersAction) -> None:
    """Declare ``aerialsam score`` and its options."""
    parser = commands.add_parser(
        "score", help="SpaceNet 2 F1 (buildings) or SpaceNet 3 APLS (roads) of a proposal CSV",
        description="Score proposals against the truth with the official SpaceNet rules. The "
                    "truth CSV's header chooses the metric: PolygonWKT_Pix -> buildings, "
                    "SpaceNet 2 F1 (IoU > 0.5, polygons under 20 px² dropped, proposals by "
                    "confidence; overall = mean AOI F1); WKT_Pix -> roads, SpaceNet 3 APLS as "
                    "the official scorer (overall = mean AOI APLS).")
    parser.add_argument("truth", type=Path,
                        help="truth CSV: ImageId,BuildingId,PolygonWKT_Pix or ImageId,WKT_Pix")
    parser.add_argument("proposals", type=Path,
                        help="proposal CSV: ImageId,BuildingId,PolygonWKT_Pix,Confidence or "
                             "ImageId,WKT_Pix")
    parser.add_argument("--json", action="store_true",
                        help='print {"per_aoi": {AOI: {tp, fp, fn, precision, recall, f1}}, '
                             '"overall_f1": x} for buildings, {"per_aoi": {AOI: {apls, images}}, '
                             '"overall_apls": x} for roads')
    parser.add_argument("--per-image", type=Path, metavar="OUT.csv",
                        help="also write the per-image scores to this CSV")
    parser.add_argument("--workers", type=positive_int, metavar="N",
                        help="roads: processes scoring images side by side (default: one per "
                             "CPU); the scores do not depend on it")
    parser.set_defaults(handler=_run_score)


def metric_of(truth: Path) -> str:
    """``"buildings"`` or ``"roads"``, from the truth CSV's header.

    Raises:
        InputError: a missing file, or a header naming both kinds of labels or neither.
    """
    if not truth.is_file():
        raise InputError(truth, "file not found")
    try:
        with open_text(truth) as handle:
            header = [name.strip() for name in next(csv.reader(handle), [])]
    except csv.Error as exc:
        raise InputError(truth, f"not a readable CSV ({exc})") from None
    if BUILDINGS in header and ROADS in header:
        raise InputError(truth, f"mixes buildings ({BUILDINGS}) and roads ({ROADS}): "
                                "score them from separate files")
    if BUILDINGS in header:
        return "buildings"
    if ROADS in header:
        return "roads"
    raise InputError(truth, f"header {header} has neither {BUILDINGS} (buildings) nor "
                            f"{ROADS} (roads)")


def _run_score(args: argparse.Namespace) -> int:
    if metric_of(args.truth) == "roads":
        return _run_roads(args)
    result = building_f1.score_csv(args.truth, args.proposals)
    if _written(args, result):
        return 0
    table = result.per_aoi.astype(object)
    for column in ("precision", "recall", "f1"):
        table[column] = table[column].map(lambda x: f"{x:.6f}")
    table.loc["overall (mean AOI F1)"] = ["", "", "", "", "", f"{result.overall_f1:.6f}"]
    print(table.to_string())
    return 0


def _run_roads(args: argparse.Namespace) -> int:
    result = apls.score_roads_csv(args.truth, args.proposals, workers=args.workers)
    if _written(args, result):
        return 0
    table = result.per_aoi.astype(object)
    table["apls"] = table["apls"].map(lambda x: f"{x:.6f}")
    table.loc["overall (mean AOI APLS)"] = [f"{result.overall_apls:.6f}", ""]
    print(table.to_string())
    return 0


def _written(args: argparse.Namespace,
             result: building_f1.ScoreResult | apls.RoadScoreResult) -> bool:
    """Write ``--per-image``; print ``--json``. True when the JSON was the whole output."""
    if args.per_image:
        with atomic_path(args.per_image) as tmp:
            result.per_image.to_csv(tmp, index=False)
    if args.json:
        print(json.dumps(result.to_json_dict()))
    return bool(args.json)
