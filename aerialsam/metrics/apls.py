"""The SpaceNet 3 road metric, APLS, exactly as the official Java scorer computed it.

One image (:func:`apls_graphs`): the truth and the proposal become the scorer's graphs
(:mod:`~aerialsam.metrics.road_graph`: nodes, simplified edges, control points every
50/0.31 px); each direction snaps one graph's nodes onto the other within 4/0.31 px
(:mod:`~aerialsam.metrics.road_snap`) and compares the lengths of the routes between every
pair of connected nodes (:mod:`~aerialsam.metrics.road_routes`). APLS is the harmonic mean
``2 s1 s2 / (s1 + s2)`` of truth to proposal (``gt_to_prop``) and proposal to truth
(``prop_to_gt``), 0 when both are 0; 1 when both images are empty, 0 when one is.

A pair of competition CSVs (:func:`score_roads_csv`; ``ImageId,WKT_Pix`` in pixels,
``LINESTRING EMPTY`` for an image without roads; read and checked by
:func:`~aerialsam.metrics.road_csv.read_roads_csv`), aggregated as the scorer's tester does:

- an image is scored when both files list it; an image in one file only is not scored (a
  warning names them), but its city still counts;
- a city scores the mean over its scored images (0 with none), added in image-id order; the
  overall score is the mean over every city either file names (an image's city is the AOI
  in its id, ``AOI_2_Vegas_img0`` -> ``AOI_2_Vegas``).

The numbers are the scorer's to the last bit or two (1e-15), except where the scorer itself
follows Java object hash codes (see :mod:`~aerialsam.metrics.road_graph`): a road that loops
back to the junction it left, and exact ties between whole-pixel truth and proposals.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely

from aerialsam.data.spacenet import parse_image_id
from aerialsam.io import progress_bar
from aerialsam.metrics.road_csv import read_roads_csv
from aerialsam.metrics.road_graph import RoadGraph, build_road_graph, road_problem
from aerialsam.metrics.road_routes import one_way_score

if TYPE_CHECKING:
    import networkx as nx

log = logging.getLogger(__name__)

__all__ = ["AplsResult", "RoadScoreResult", "apls_graphs", "read_roads_csv", "road_graph_of",
           "score_roads", "score_roads_csv"]

PER_IMAGE_COLUMNS = ["image_id", "aoi", "apls", "gt_to_prop", "prop_to_gt"]


@dataclass(frozen=True)
class AplsResult:
    """APLS of one image.

    Attributes:
        apls: harmonic mean of the two directions.
        gt_to_prop: truth to proposal: the truth's routes found in the proposal.
        prop_to_gt: proposal to truth: the proposal's routes found in the truth.
    """

    apls: float
    gt_to_prop: float
    prop_to_gt: float


def road_graph_of(roads: RoadGraph | nx.Graph | Sequence[Any]) -> RoadGraph:
    """The scorer's graph of roads given as a graph or as LineStrings, in pixels.

    Args:
        roads: a :class:`RoadGraph` (returned as is); a sequence of shapely LineStrings or of
            ``(k, 2)`` vertex arrays (pixel ``x`` = column, ``y`` = row), in file order; or a
            networkx graph whose nodes carry pixel coordinates in an ``"xy"`` attribute
            (``(x, y)``; ``"x"`` and ``"y"`` attributes also work) and whose edges may carry
            their full polyline as a shapely LineString in ``"geometry"`` (else a straight
            section). Each graph edge becomes one road, in edge order.

    Returns:
        The graph with control points, ready for :func:`apls_graphs`.

    Raises:
        ValueError: roads the official scorer refuses
            (:func:`~aerialsam.metrics.road_graph.road_problem`).
    """
    if isinstance(roads, RoadGraph):
        return roads
    if hasattr(roads, "edges") and hasattr(roads, "nodes"):
        lines = _networkx_roads(roads)
    else:
        lines = [shapely.get_coordinates(r) if isinstance(r, shapely.Geometry)
                 else np.asarray(r, dtype=float).reshape(-1, 2) for r in roads]
    problem = road_problem(lines)
    if problem is not None:
        raise ValueError(f"road {problem[0]}: {problem[1]}")
    return build_road_graph(lines)


def _networkx_roads(graph: nx.Graph) -> list[np.ndarray]:
    """One ``(k, 2)`` road per edge of a networkx graph (see :func:`road_graph_of`)."""
    def xy(node: object) -> np.ndarray:
        data = graph.nodes[node]
        if "xy" in data:
            return np.asarray(data["xy"], dtype=float)
        if "x" in data and "y" in data:
            return np.array([data["x"], data["y"]], dtype=float)
        raise ValueError(f"graph node {node!r} has no 'xy' (or 'x', 'y') pixel coordinates")

    roads = []
    for u, v, data in graph.edges(data=True):
        geometry = data.get("geometry")
        if geometry is not None:
            line = shapely.get_coordinates(geometry)
            if np.allclose(line[-1], xy(u)) and not np.allclose(line[0], xy(u)):
                line = line[::-1]
            roads.append(line)
        else:
            roads.append(np.stack([xy(u), xy(v)]))
    return roads


def apls_graphs(truth: RoadGraph | nx.Graph | Sequence[Any],
                proposal: RoadGraph | nx.Graph | Sequence[Any]) -> AplsResult:
    """APLS of one image from its truth and proposal roads, in pixel coordinates.

    Args:
        truth: the truth roads, in any form :func:`road_graph_of` takes (an empty sequence
            for an image without roads).
        proposal: the proposed roads, likewise.

    Returns:
        The :class:`AplsResult`: both directions and their harmonic mean.
    """
    t, p = road_graph_of(truth), road_graph_of(proposal)
    if t.empty and p.empty:
        return AplsResult(1.0, 1.0, 1.0)
    if t.empty or p.empty:
        return AplsResult(0.0, 0.0, 0.0)
    s1, s2 = one_way_score(t, p), one_way_score(p, t)
    s = 2 * s1 * s2 / (s1 + s2) if s1 + s2 > 0 else 0.0
    return AplsResult(float(s), float(s1), float(s2))


@dataclass
class RoadScoreResult:
    """APLS of a proposal CSV against a truth CSV.

    Attributes:
        per_image: one row per scored image, by AOI then image id: ``image_id, aoi, apls,
            gt_to_prop, prop_to_gt``.
        per_aoi: one row per AOI named in either file (index ``aoi``): ``apls`` (mean over its
            scored images, 0 with none) and ``images`` (how many were scored).
        overall_apls: mean of the per-AOI scores.
        unscored: images listed in only one of the two files.
    """

    per_image: pd.DataFrame
    per_aoi: pd.DataFrame
    overall_apls: float
    unscored: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict:
        """The ``aerialsam score --json`` shape for roads, with plain Python numbers.

        ``{"per_aoi": {AOI: {"apls": x, "images": n}}, "overall_apls": x}``.
        """
        per_aoi = {str(aoi): {"apls": float(row.apls), "images": int(row.images)}
                   for aoi, row in self.per_aoi.iterrows()}
        return {"per_aoi": per_aoi, "overall_apls": float(self.overall_apls)}


def score_roads(truth: dict[str, list[Any]], proposals: dict[str, list[Any]],
                workers: int | None = None) -> RoadScoreResult:
    """APLS of every image both sides list, per AOI and overall, as the official tester.

    Args:
        truth: image id -> its truth roads (anything :func:`road_graph_of` takes; an empty
            list for an image without roads).
        proposals: image id -> its proposed roads, likewise.
        workers: processes scoring images side by side (default: one per CPU; one for a
            few images). Results do not depend on it.

    Returns:
        The :class:`RoadScoreResult`.
    """
    ids = sorted(set(truth) | set(proposals))
    unscored = [i for i in ids if i not in truth or i not in proposals]
    if unscored:
        names = ", ".join(unscored[:10]) + (" ..." if len(unscored) > 10 else "")
        log.warning("%d image(s) in only one of the two files are not scored: %s",
                    len(unscored), names)
    scored = [i for i in ids if i in truth and i in proposals]
    scores = _score_images([(truth[i], proposals[i]) for i in scored], workers)
    rows = [(i, parse_image_id(i)[0], *s) for i, s in zip(scored, scores, strict=True)]
    per_image = pd.DataFrame(rows, columns=PER_IMAGE_COLUMNS)
    aois = sorted({parse_image_id(i)[0] for i in ids})
    per_aoi = pd.DataFrame({"apls": 0.0, "images": 0}, index=pd.Index(aois, name="aoi"))
    for aoi, group in per_image.groupby("aoi", sort=True):
        total = 0.0
        for value in group["apls"].tolist():  # in image-id order, one after the other
            total += value
        per_aoi.loc[aoi] = [total / len(group), len(group)]
    per_aoi["images"] = per_aoi["images"].astype(int)
    empty = [aoi for aoi in aois if per_aoi.loc[aoi, "images"] == 0]
    if empty:
        log.warning("no scored image in %s: each counts as 0 in the overall score",
                    ", ".join(empty))
    total = 0.0
    for value in per_aoi["apls"].tolist():
        total += value
    overall = total / len(aois) if total > 0 else 0.0
    per_image = per_image.sort_values(["aoi", "image_id"], kind="stable").reset_index(drop=True)
    return RoadScoreResult(per_image, per_aoi, overall, unscored)


_CHUNK = 25  # images per task when several processes score


def _score_chunk(pairs: list[tuple[list[Any], list[Any]]]) -> list[tuple[float, float, float]]:
    """``(apls, gt_to_prop, prop_to_gt)`` of each ``(truth, proposal)`` pair."""
    return [astuple(apls_graphs(t, p)) for t, p in pairs]


def _score_images(pairs: list[tuple[list[Any], list[Any]]], workers: int | None
                  ) -> list[tuple[float, float, float]]:
    """Score image pairs in order, in ``workers`` processes when there are enough images."""
    chunks = [pairs[i:i + _CHUNK] for i in range(0, len(pairs), _CHUNK)]
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count() or 1
    workers = min(workers, len(chunks))
    bar = progress_bar(total=len(pairs), desc="APLS", unit="image")
    out: list[tuple[float, float, float]] = []
    if workers <= 1:
        for chunk in chunks:
            out.extend(_score_chunk(chunk))
            bar.update(len(chunk))
    else:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for chunk, scores in zip(chunks, pool.map(_score_chunk, chunks), strict=True):
                out.extend(scores)
                bar.update(len(chunk))
    bar.close()
    return out


def score_roads_csv(truth_csv: str | Path, proposals_csv: str | Path,
                    workers: int | None = None) -> RoadScoreResult:
    """APLS of a SpaceNet 3 proposal CSV against a truth CSV (``ImageId,WKT_Pix``).

    ``workers``: as in :func:`score_roads`.

    Raises:
        InputError: either file is missing or malformed, or holds roads the official scorer
            refuses (one line: file, line, image and problem).
    """
    truth = read_roads_csv(truth_csv)
    proposals = read_roads_csv(proposals_csv)
    if not truth or not proposals:
        log.warning("%s has no rows: nothing to score", truth_csv if not truth else proposals_csv)
    return score_roads(truth, proposals, workers)
