"""``aerialsam score``: the official SpaceNet metric of a proposal CSV against a truth CSV."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aerialsam.io import atomic_path
from aerialsam.metrics import building_f1


def add_score(commands: argparse._SubParsersAction) -> None:
    """Declare ``aerialsam score`` and its options."""
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
    result = building_f1.score_csv(args.truth, args.proposals)
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
