"""The SpaceNet 2 building metric (official scorer v2.0 rules), fast enough for all of SpaceNet 2.

Rules, as DESIGN.md states them:

- polygons are in pixel coordinates (``PolygonWKT_Pix``);
- truth and proposal polygons with an area below 20 px² are dropped;
- in each image, proposals are taken by ``Confidence``, highest first (ties keep file order),
  and each one matches the still-unmatched truth polygon of highest IoU; the pair is a true
  positive when that IoU is strictly above 0.5, otherwise the proposal is a false positive and
  no truth polygon is used up;
- TP, FP and FN are summed per AOI; the overall score is the mean of the AOI F1 scores;
- an image with neither truth nor proposals is not scored; proposals for an image absent from
  the truth are all false positives (and a warning lists those images).

Invalid proposal (and truth) polygons are repaired with :func:`shapely.make_valid`, keeping
the polygonal part. When a proposal has two unmatched truth polygons of exactly equal IoU, the
one earlier in the truth file wins. IoU is ``intersection / (area_a + area_b - intersection)``.

Speed comes from one STRtree over the bounding boxes of every polygon of every image at once
(the images are laid out side by side on a grid so that boxes of two images never meet), an
IoU upper bound from box overlap and areas that discards most candidate pairs before any
polygon overlay, and vectorised shapely intersections for the rest. Only pairs with IoU above
0.5 can ever match, so the greedy matching runs over those few pairs only. The GEOS overlays of
the pairs that remain (about 1.2 per true positive) are most of the cost.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from aerialsam.data.spacenet import first_row, parse_image_id, read_summary_csv
from aerialsam.errors import InputError
from aerialsam.inputs import read_text
from aerialsam.metrics.pixel import pixel_scores

log = logging.getLogger(__name__)

__all__ = ["MIN_AREA", "IOU_THRESHOLD", "ScoreResult", "score", "score_csv",
           "read_proposals_csv", "read_truth_csv", "make_valid_polygons", "pixel_scores"]

MIN_AREA = 20.0
"""Truth and proposal polygons below this area (px²) are dropped, as the official scorer does."""
IOU_THRESHOLD = 0.5
"""A match is a true positive when its IoU is strictly above this."""
COUNT_COLUMNS = ["tp", "fp", "fn", "precision", "recall", "f1"]
_AOI_IN_ID = re.compile(r"AOI_\d+_[A-Za-z]+_(?:[A-Za-z0-9-]+_)?img\d+")


@dataclass
class ScoreResult:
    """The SpaceNet 2 score of a set of proposals against the truth.

    Attributes:
        per_image: one row per scored image: ``image_id, aoi, tp, fp, fn, precision, recall, f1``.
        per_aoi: one row per AOI (indexed by AOI name): ``tp, fp, fn, precision, recall, f1``.
        overall_f1: mean of the per-AOI F1 scores (0.0 when nothing was scored).
        matches: every true positive: ``image_id, truth_id, proposal_id, iou``.
        truth: kept and dropped truth polygons with ``status`` (``matched``, ``missed``,
            ``dropped`` below the area floor) and ``iou`` of their match (NaN otherwise).
        proposals: proposals with ``status`` (``matched``, ``false``, ``dropped``) and ``iou``.
        unknown_images: proposal image ids absent from the truth (scored as all FP).
    """

    per_image: pd.DataFrame
    per_aoi: pd.DataFrame
    overall_f1: float
    matches: pd.DataFrame
    truth: gpd.GeoDataFrame = field(repr=False)
    proposals: gpd.GeoDataFrame = field(repr=False)
    unknown_images: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict:
        """The ``aerialsam score --json`` shape, with plain Python numbers.

        ``{"per_aoi": {AOI: {tp, fp, fn, precision, recall, f1}}, "overall_f1": x}``.
        """
        per_aoi = {
            str(aoi): {"tp": int(row.tp), "fp": int(row.fp), "fn": int(row.fn),
                       "precision": float(row.precision), "recall": float(row.recall),
                       "f1": float(row.f1)}
            for aoi, row in self.per_aoi.iterrows()
        }
        return {"per_aoi": per_aoi, "overall_f1": float(self.overall_f1)}


def read_truth_csv(path: str | Path) -> gpd.GeoDataFrame:
    """Read a SpaceNet truth CSV (``ImageId,BuildingId,PolygonWKT_Pix[,PolygonWKT_Geo]``).

    Raises:
        InputError: missing file or column, unparsable WKT (with file and line number).
    """
    return read_summary_csv(path, column="PolygonWKT_Pix")


def read_proposals_csv(path: str | Path) -> gpd.GeoDataFrame:
    """Read a SpaceNet proposal CSV (``ImageId,BuildingId,PolygonWKT_Pix,Confidence``).

    An empty file (0 bytes or header only) gives no proposals. ``Confidence`` becomes float.

    Raises:
        InputError: missing file or column, unparsable WKT, a non-finite coordinate, or a
            non-numeric (or NaN, infinite) confidence, naming the file and line number.
    """
    path = Path(path)
    if path.is_file() and not read_text(path).strip():
        log.warning("%s: empty proposal file: every truth building is a false negative", path)
        frame = gpd.GeoDataFrame({"ImageId": pd.Series([], dtype=str),
                                  "BuildingId": pd.Series([], dtype=np.int64),
                                  "Confidence": pd.Series([], dtype=float)},
                                 geometry=gpd.GeoSeries([]))
        frame.attrs["image_ids"] = []
        return frame
    return read_summary_csv(path, column="PolygonWKT_Pix", confidence=True)


def score_csv(truth_path: str | Path, proposals_path: str | Path) -> ScoreResult:
    """Score a SpaceNet proposal CSV against a truth CSV with the SpaceNet 2 rules.

    Raises:
        InputError: either file is missing or malformed (file, line number and problem).
    """
    truth = read_truth_csv(truth_path)
    proposals = read_proposals_csv(proposals_path)
    for path, frame in ((truth_path, truth), (proposals_path, proposals)):
        _check_image_ids(Path(path), frame.attrs.get("image_ids", []))
    return score(truth, proposals)


def _check_image_ids(path: Path, image_ids: list[str]) -> None:
    """Fail with file and line number on the first ImageId that names no SpaceNet AOI."""
    bad = [i for i in image_ids if not _AOI_IN_ID.search(i)]
    if not bad:
        return
    line, _ = first_row(path, lambda row: row.get("ImageId") == bad[0])
    raise InputError(f"{path}, line {line}",
                     f"ImageId {bad[0]!r} names no SpaceNet image (AOI_<n>_<City>_img<N>)")


def make_valid_polygons(geoms: np.ndarray) -> np.ndarray:
    """Make polygons valid (:func:`shapely.make_valid`), keeping only their polygonal part.

    Valid polygons are returned unchanged; a geometry with no polygonal part becomes empty.
    """
    geoms = np.asarray(geoms, dtype=object).copy()
    bad = np.flatnonzero(~shapely.is_valid(geoms))
    for i in bad:
        fixed = shapely.make_valid(geoms[i])
        parts = [p for p in shapely.get_parts(fixed) if p.geom_type in ("Polygon", "MultiPolygon")]
        geoms[i] = shapely.union_all(parts) if parts else shapely.Polygon()
    if len(bad):
        log.debug("repaired %d invalid polygons", len(bad))
    return geoms


def aoi_of(image_ids: pd.Series) -> pd.Series:
    """AOI name (``AOI_2_Vegas``) of each image id.

    Raises:
        InputError: an image id holds no SpaceNet AOI name.
    """
    unique = pd.unique(image_ids)
    mapping = {i: parse_image_id(i)[0] for i in unique}
    return image_ids.map(mapping)


def score(truth: gpd.GeoDataFrame, proposals: gpd.GeoDataFrame,
          truth_image_ids: list[str] | None = None) -> ScoreResult:
    """Score proposals against truth (pixel-coordinate GeoDataFrames) with the SpaceNet 2 rules.

    Args:
        truth: columns ``ImageId``, ``geometry`` and optionally ``BuildingId``.
        proposals: columns ``ImageId``, ``geometry``, ``Confidence`` and optionally
            ``BuildingId``. Proposals are taken by ``Confidence``, highest first; equal
            confidences keep the frame's row order (a stable sort). Without a ``Confidence``
            column, row order decides.
        truth_image_ids: every truth image, including those without buildings (default:
            ``truth.attrs["image_ids"]`` as :func:`aerialsam.data.spacenet.read_summary_csv`
            sets it, else the ids in ``truth``). Proposals for other images are all false
            positives.

    Returns:
        The :class:`ScoreResult`.
    """
    t, t_geoms = _prepare(truth, "truth")
    p, p_geoms = _prepare(proposals, "proposal")
    known = truth_image_ids or truth.attrs.get("image_ids") or list(pd.unique(t["image_id"]))
    unknown = sorted(set(pd.unique(p["image_id"])) - set(known) - set(pd.unique(t["image_id"])))
    if unknown:
        log.warning("proposals name %d image(s) absent from the truth, scored as all false "
                    "positives: %s", len(unknown), ", ".join(unknown))
    codes = pd.Index(pd.unique(np.concatenate([t["image_id"].values, p["image_id"].values])))
    t_img = codes.get_indexer(t["image_id"])
    p_img = codes.get_indexer(p["image_id"])
    t_keep = t["area"].values >= MIN_AREA
    p_keep = p["area"].values >= MIN_AREA
    t_sel, p_sel = np.flatnonzero(t_keep), np.flatnonzero(p_keep)
    confidence = p["confidence"].values[p_sel]
    rank = np.empty(len(p_sel), dtype=np.int64)
    rank[np.argsort(-confidence, kind="stable")] = np.arange(len(p_sel))
    pairs_p, pairs_t, ious = _match(t_geoms[t_sel], t_img[t_sel], p_geoms[p_sel], p_img[p_sel],
                                    rank)
    pairs_p, pairs_t = p_sel[pairs_p], t_sel[pairs_t]
    t["status"] = np.where(t_keep, "missed", "dropped")
    p["status"] = np.where(p_keep, "false", "dropped")
    t.loc[pairs_t, "status"] = "matched"
    p.loc[pairs_p, "status"] = "matched"
    t["iou"], p["iou"] = np.nan, np.nan
    t.loc[pairs_t, "iou"] = ious
    p.loc[pairs_p, "iou"] = ious
    matches = pd.DataFrame({"image_id": t["image_id"].values[pairs_t],
                            "truth_id": t["building_id"].values[pairs_t],
                            "proposal_id": p["building_id"].values[pairs_p], "iou": ious})
    matches = matches.sort_values("image_id", kind="stable").reset_index(drop=True)
    per_image = _per_image(codes, t_img[t_sel], p_img[p_sel], t_img[pairs_t])
    per_aoi = _per_aoi(per_image)
    overall = float(per_aoi["f1"].mean()) if len(per_aoi) else 0.0
    return ScoreResult(per_image, per_aoi, overall, matches, t, p, unknown)


def _prepare(frame: gpd.GeoDataFrame, kind: str) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Normalise a truth or proposal frame; also return its geometries as a numpy array.

    The frame gets image_id, building_id, confidence, repaired geometry and area; empty
    geometries are removed.
    """
    for needed in ("ImageId", "geometry"):
        if needed not in frame.columns:
            raise ValueError(f"{kind} frame has no {needed!r} column (found {list(frame.columns)})")
    geoms = np.asarray(frame.geometry.array)  # a plain object array: no pandas ufunc layer
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    frame = frame.loc[present]
    geoms = geoms[present]
    if shapely.has_z(geoms).any():
        geoms = shapely.force_2d(geoms)
    geoms = make_valid_polygons(geoms)
    out = gpd.GeoDataFrame({
        "image_id": frame["ImageId"].astype(str).values,
        "building_id": (frame["BuildingId"].values if "BuildingId" in frame.columns
                        else np.arange(len(frame))),
        "confidence": (frame["Confidence"].astype(float).values if "Confidence" in frame.columns
                       else np.zeros(len(frame))),
        "area": shapely.area(geoms),
    }, geometry=gpd.GeoSeries(geoms))
    return out, geoms


def _candidate_pairs(t_geoms: np.ndarray, t_img: np.ndarray, p_geoms: np.ndarray,
                     p_img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Proposal/truth pairs of the same image whose boxes overlap, and that box overlap area."""
    if len(t_geoms) == 0 or len(p_geoms) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    tb, pb = shapely.bounds(t_geoms), shapely.bounds(p_geoms)
    both = np.concatenate([tb, pb])
    stride = (both[:, 2:].max(axis=0) - both[:, :2].min(axis=0)).max() + 1.0
    columns = int(np.ceil(np.sqrt(max(t_img.max(), p_img.max()) + 1)))
    # All images share one pixel frame: lay the images out on a square grid of cells one
    # image wide, so that one tree serves every image and boxes of two images never meet.
    tree = shapely.STRtree(_shifted_boxes(tb, t_img, columns, stride))
    pi, ti = tree.query(_shifted_boxes(pb, p_img, columns, stride))
    width = np.minimum(tb[ti, 2], pb[pi, 2]) - np.maximum(tb[ti, 0], pb[pi, 0])
    height = np.minimum(tb[ti, 3], pb[pi, 3]) - np.maximum(tb[ti, 1], pb[pi, 1])
    return pi, ti, np.clip(width, 0, None) * np.clip(height, 0, None)


def _shifted_boxes(bounds: np.ndarray, image: np.ndarray, columns: int,
                   stride: float) -> np.ndarray:
    """Boxes moved to their image's cell of a ``columns``-wide grid of ``stride``-sized cells."""
    dx, dy = (image % columns) * stride, (image // columns) * stride
    return shapely.box(bounds[:, 0] + dx, bounds[:, 1] + dy, bounds[:, 2] + dx, bounds[:, 3] + dy)


def _intersection_areas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Area of ``a[i] ∩ b[i]``, vectorised.

    Pairs that make GEOS fail are retried one by one on a fine precision grid.
    """
    try:
        return shapely.area(shapely.intersection(a, b))
    except shapely.errors.GEOSException:
        areas = np.empty(len(a))
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            try:
                areas[i] = shapely.intersection(x, y).area
            except shapely.errors.GEOSException:
                areas[i] = shapely.intersection(x, y, grid_size=1e-6).area
        return areas


def _match(t_geoms: np.ndarray, t_img: np.ndarray, p_geoms: np.ndarray, p_img: np.ndarray,
           rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy SpaceNet matching; returns the matched (proposal, truth) indices and their IoU."""
    pi, ti, box_overlap = _candidate_pairs(t_geoms, t_img, p_geoms, p_img)
    t_area, p_area = shapely.area(t_geoms), shapely.area(p_geoms)
    # IoU grows with the intersection, which the box overlap and both areas bound: pairs
    # whose bound cannot pass 0.5 are dropped before any polygon overlay.
    bound = np.minimum(box_overlap, np.minimum(t_area[ti], p_area[pi]))
    keep = bound > IOU_THRESHOLD * (t_area[ti] + p_area[pi] - bound)
    pi, ti = pi[keep], ti[keep]
    inter = _intersection_areas(p_geoms[pi], t_geoms[ti])
    iou = inter / (t_area[ti] + p_area[pi] - inter)
    keep = iou > IOU_THRESHOLD
    pi, ti, iou = pi[keep], ti[keep], iou[keep]
    # Only pairs above 0.5 can match: a proposal whose best unmatched truth is below uses none.
    order = np.lexsort((ti, -iou, rank[pi]))
    pi, ti, iou = pi[order], ti[order], iou[order]
    lone = (np.bincount(pi, minlength=len(p_geoms))[pi] == 1) & \
           (np.bincount(ti, minlength=len(t_geoms))[ti] == 1)
    chosen = lone.copy()
    used_p = np.zeros(len(p_geoms), dtype=bool)
    used_t = np.zeros(len(t_geoms), dtype=bool)
    for k in np.flatnonzero(~lone):  # pairs in contention, in proposal order, best IoU first
        if not used_p[pi[k]] and not used_t[ti[k]]:
            used_p[pi[k]] = used_t[ti[k]] = True
            chosen[k] = True
    return pi[chosen], ti[chosen], iou[chosen]


def _ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Add precision, recall and F1 (0 where undefined) to a frame with tp, fp, fn."""
    tp, fp, fn = (frame[c].to_numpy(dtype=float) for c in ("tp", "fp", "fn"))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(precision + recall > 0,
                      2 * precision * recall / (precision + recall), 0.0)
    return frame.assign(precision=precision, recall=recall, f1=f1)


def _per_image(codes: pd.Index, t_img: np.ndarray, p_img: np.ndarray,
               matched_img: np.ndarray) -> pd.DataFrame:
    """TP/FP/FN per scored image (an image with neither truth nor proposals is not scored)."""
    n = len(codes)
    n_truth, n_prop = np.bincount(t_img, minlength=n), np.bincount(p_img, minlength=n)
    tp = np.bincount(matched_img, minlength=n)
    frame = pd.DataFrame({"image_id": codes.astype(str), "tp": tp, "fp": n_prop - tp,
                          "fn": n_truth - tp})
    frame = frame[(n_truth + n_prop) > 0].reset_index(drop=True)
    frame.insert(1, "aoi", aoi_of(frame["image_id"]) if len(frame) else pd.Series(dtype=str))
    return _ratios(frame).sort_values(["aoi", "image_id"], kind="stable").reset_index(drop=True)


def _per_aoi(per_image: pd.DataFrame) -> pd.DataFrame:
    """Sum TP/FP/FN per AOI and recompute the ratios."""
    sums = per_image.groupby("aoi", sort=True)[["tp", "fp", "fn"]].sum()
    sums.index.name = "aoi"
    return _ratios(sums)[COUNT_COLUMNS]
