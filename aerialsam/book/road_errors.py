"""Where a road graph goes wrong, on one tile (chapter 11's picture of the errors).

Error analysis of one tile (:func:`graph_errors`), in pixels, with the APLS snapping
distance (4 m, :data:`~aerialsam.metrics.road_graph.SNAP_DISTANCE`) as the tolerance:

- **missed road**: a stretch of true road with no proposed road within the tolerance;
- **false road**: a stretch of proposed road with no true road within the tolerance;
- **missed junction**: a true junction (three or more sections meet) with no proposed
  junction within :data:`JUNCTION_PX`;
- **break**: a proposed dead end lying on a true road, farther than :data:`JUNCTION_PX`
  from any true dead end: the proposed road stops where the true road goes on;
- **spur**: a proposed dead end off the true roads: the tip of a spur or a false road.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from aerialsam.book.road_models import read_per_image, tile_pixel_size
from aerialsam.book.roads import load_scene
from aerialsam.data import spacenet3
from aerialsam.errors import InputError
from aerialsam.evaluation.per_city import model_label
from aerialsam.inference.road_graph import PixelSize, length_m
from aerialsam.inference.road_oracle import tile_roads
from aerialsam.inference.road_prediction import ROADS_FILE
from aerialsam.metrics.apls import read_roads_csv
from aerialsam.metrics.road_graph import SNAP_DISTANCE
from aerialsam.prep.splits import read_splits
from aerialsam.prep.stretch import load_stretches

JUNCTION_PX = 2 * SNAP_DISTANCE
"""A true junction counts as found with a proposed junction within this distance (8 m)."""


@dataclass(frozen=True)
class GraphErrors:
    """Where a proposed road graph differs from the truth on one tile (see the module).

    Attributes:
        truth: the true roads (pixel LineStrings).
        proposal: the proposed roads.
        missed: parts of true roads with no proposed road within the tolerance.
        false: parts of proposed roads with no true road within the tolerance.
        missed_junctions: ``(n, 2)`` true junctions with no proposed junction nearby.
        breaks: ``(n, 2)`` proposed dead ends on a true road that goes on.
        spurs: ``(n, 2)`` proposed dead ends off the true roads.
        tolerance_px: the distance within which a road counts as found.
    """

    truth: list[shapely.LineString]
    proposal: list[shapely.LineString]
    missed: list[shapely.LineString]
    false: list[shapely.LineString]
    missed_junctions: np.ndarray
    breaks: np.ndarray
    spurs: np.ndarray
    tolerance_px: float


def as_lines(roads: Sequence[Any]) -> list[shapely.LineString]:  # noqa: ANN401 (arrays or lines)
    """Roads as LineStrings (from ``(k, 2)`` arrays, as a roads CSV is read, or lines)."""
    return [r if isinstance(r, shapely.LineString) else shapely.LineString(np.asarray(r))
            for r in roads]


def node_degrees(lines: Sequence[shapely.LineString]) -> tuple[np.ndarray, np.ndarray]:
    """Every vertex of the roads (merged at 0.1 px, as the scorer merges them) and its degree.

    Returns:
        ``(xy, degree)``: ``(n, 2)`` positions and the number of sections meeting at each.
    """
    keys: dict[tuple[int, int], int] = {}
    xy: list[np.ndarray] = []
    degree: list[int] = []
    for line in lines:
        coords = shapely.get_coordinates(line)
        ids = []
        for point in coords:
            key = (int(round(point[0] * 10)), int(round(point[1] * 10)))
            if key not in keys:
                keys[key] = len(xy)
                xy.append(point)
                degree.append(0)
            ids.append(keys[key])
        for a, b in zip(ids[:-1], ids[1:], strict=True):
            if a != b:
                degree[a] += 1
                degree[b] += 1
    return (np.array(xy, dtype=float).reshape(-1, 2), np.array(degree, dtype=int))


def _parts(lines: Sequence[shapely.LineString], cover: shapely.Geometry,
           min_px: float) -> list[shapely.LineString]:
    """The pieces of ``lines`` outside ``cover`` at least ``min_px`` long."""
    out = []
    for line in lines:
        rest = shapely.difference(line, cover)
        for part in shapely.get_parts(shapely.line_merge(rest)
                                      if rest.geom_type == "MultiLineString" else rest):
            if part.geom_type == "LineString" and part.length >= min_px:
                out.append(part)
    return out


def _far_from(points: np.ndarray, others: np.ndarray, distance: float) -> np.ndarray:
    """Which ``points`` have none of ``others`` within ``distance``."""
    if not len(others):
        return np.ones(len(points), dtype=bool)
    gaps = np.hypot(*(points[:, None, :] - others[None, :, :]).transpose(2, 0, 1))
    return gaps.min(axis=1) > distance


def graph_errors(truth: Sequence[Any], proposal: Sequence[Any],  # noqa: ANN401 (roads)
                 tolerance_px: float = SNAP_DISTANCE,
                 junction_px: float = JUNCTION_PX) -> GraphErrors:
    """Missed and false roads, missed junctions, breaks and spurs of one tile's proposal.

    Args:
        truth: the tile's true roads in pixels (LineStrings or ``(k, 2)`` arrays).
        proposal: the proposed roads, likewise.
        tolerance_px: a road counts as found with the other within this distance (4 m).
        junction_px: how near a junction or a dead end of the other graph must be.

    Returns:
        The :class:`GraphErrors` (see the module docstring for the definitions).
    """
    truth, proposal = as_lines(truth), as_lines(proposal)
    truth_cover = shapely.union_all(truth).buffer(tolerance_px)
    proposal_cover = shapely.union_all(proposal).buffer(tolerance_px)
    min_px = tolerance_px / 2
    true_xy, true_degree = node_degrees(truth)
    prop_xy, prop_degree = node_degrees(proposal)
    junctions = true_xy[true_degree >= 3]
    missed_junctions = junctions[_far_from(junctions, prop_xy[prop_degree >= 3], junction_px)]
    ends = prop_xy[prop_degree == 1]
    on_truth = (shapely.contains_xy(truth_cover, ends[:, 0], ends[:, 1]) if len(ends)
                else np.zeros(0, dtype=bool))
    breaks = ends[on_truth & _far_from(ends, true_xy[true_degree == 1], junction_px)]
    return GraphErrors(truth, proposal, _parts(truth, proposal_cover, min_px),
                       _parts(proposal, truth_cover, min_px), missed_junctions.reshape(-1, 2),
                       breaks.reshape(-1, 2), ends[~on_truth].reshape(-1, 2), tolerance_px)


def error_table(errors: GraphErrors, pixel_size: PixelSize) -> pd.DataFrame:
    """How many of each error the tile has, and the road length involved in metres."""
    def metres(lines: Sequence[shapely.LineString]) -> float:
        return sum(length_m(shapely.get_coordinates(line), pixel_size) for line in lines)

    junctions = int((node_degrees(errors.truth)[1] >= 3).sum())
    rows = {
        "true roads": (len(errors.truth), metres(errors.truth)),
        "proposed roads": (len(errors.proposal), metres(errors.proposal)),
        "missed road stretches": (len(errors.missed), metres(errors.missed)),
        "false road stretches": (len(errors.false), metres(errors.false)),
        f"missed junctions (of {junctions})": (len(errors.missed_junctions), np.nan),
        "breaks (dead ends on a true road)": (len(errors.breaks), np.nan),
        "spurs (dead ends off the roads)": (len(errors.spurs), np.nan),
    }
    table = pd.DataFrame(rows, index=["count", "metres"]).T
    return table.astype({"count": int}).round({"metres": 0}).rename_axis("on this tile")


@dataclass(frozen=True)
class TileView:
    """One held-out tile, a model's graph of it and its errors, ready to draw.

    Attributes:
        image_id: the tile's image id.
        rgb: the tile as uint8 RGB, stretched with its city's stretch.
        errors: :func:`graph_errors` of the model's roads on it.
        pixel_size: (east-west, north-south) metres per pixel.
        apls: the model's APLS on the tile.
    """

    image_id: str
    rgb: np.ndarray
    errors: GraphErrors
    pixel_size: PixelSize
    apls: float


def tile_view(report_dir: str | Path, model: str, image_id: str, splits_path: str | Path,
              stretch_path: str | Path) -> TileView:
    """A model's roads on one evaluated tile (from its report), against the tile's truth.

    Raises:
        InputError: a tile the splits file or the model's report does not hold.
    """
    table = read_splits(splits_path)
    row = table[table["image_id"] == image_id]
    if row.empty:
        raise InputError(splits_path, f"no tile {image_id!r}")
    path = Path(row["source"].iloc[0])
    predictions = Path(report_dir) / model_label(model) / "predictions" / ROADS_FILE
    proposals = read_roads_csv(predictions)
    if image_id not in proposals:
        raise InputError(predictions, f"no roads of {image_id!r}: evaluate the model first")
    stretch = load_stretches(stretch_path).get(str(row["aoi"].iloc[0]))
    scene = load_scene(path, spacenet3.road_tile_at(path).geojson_path, stretch)
    scores = read_per_image(report_dir, model).set_index("image_id")
    return TileView(image_id, scene.rgb, graph_errors(tile_roads(path), proposals[image_id]),
                    tile_pixel_size(path), float(scores.loc[image_id, "apls"]))
