"""Benchmark: SpaceNet 2 scoring with aerialsam.metrics.building_f1 against a plain per-image loop.

Generates SpaceNet-like cases (650 x 650 px images, about 45 buildings each in rows along
rotated street grids, about as dense as SpaceNet 2 Vegas: rectangles and L-shapes; proposals
are jittered copies, with misses, duplicates, false alarms and a few polygons under the
20 px² floor) of 1,500 and 15,000 images, scores each with
:func:`aerialsam.metrics.building_f1.score` and with a plain per-image double loop with bounding-box
pruning written here (IoU with a union overlay, as the SpaceNet utilities compute it, and a
lean variant with one overlay per pair), asserts identical TP/FP/FN per image, and prints one
JSON line with the times (best of 3 for the small case) and the speed-ups.

Run: ``.venv/bin/python benchmarks/bench_score.py [--sizes 1500,15000]``.
"""

from __future__ import annotations

import argparse
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from _timing import best_time

from aerialsam.metrics import building_f1

AOIS = ["AOI_2_Vegas", "AOI_3_Paris", "AOI_4_Shanghai", "AOI_5_Khartoum"]
TILE = 650
LATTICE = 9  # street-grid lattice half-width (lots and rows) around the tile centre


def _shapes(rng: np.random.Generator, centres: np.ndarray, size: np.ndarray,
            angle: np.ndarray) -> np.ndarray:
    """Rotated rectangles (even rows) and L-shapes (odd rows) as 7-vertex rings."""
    n = len(centres)
    rect = np.array([[-1, -1], [0, -1], [1, -1], [1, 1], [-1, 1], [-1, 0], [-1, -1]], float) / 2
    ell = np.array([[-1, -1], [1, -1], [1, 0], [0, 0], [0, 1], [-1, 1], [-1, -1]], float) / 2
    local = np.where((np.arange(n) % 2 == 0)[:, None, None], rect, ell) * size[:, None, :]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = local[..., 0] * cos - local[..., 1] * sin + centres[:, None, 0]
    y = local[..., 0] * sin + local[..., 1] * cos + centres[:, None, 1]
    return shapely.polygons(np.stack([x, y], axis=-1))


def _street_layout(rng: np.random.Generator, n_images: int) -> tuple[np.ndarray, ...]:
    """Building centres, sizes and angles along rotated street grids, about 45 per image
    (Vegas averages 39): whole rows of houses with gaps of 6-14 px."""
    i, j = np.meshgrid(np.arange(-LATTICE, LATTICE), np.arange(-LATTICE, LATTICE))
    i, j = i.ravel(), j.ravel()
    lot = rng.uniform(42, 58, (n_images, 1))
    row = rng.uniform(55, 75, (n_images, 1))
    theta = rng.uniform(0, np.pi, (n_images, 1))
    u, v = i * lot, j * row
    x = u * np.cos(theta) - v * np.sin(theta) + TILE / 2
    y = u * np.sin(theta) + v * np.cos(theta) + TILE / 2
    rows_kept = rng.random((n_images, 2 * LATTICE)) < 0.35
    keep = (x > 0) & (x < TILE) & (y > 0) & (y < TILE) & rows_kept[:, j + LATTICE]
    image, slot = np.nonzero(keep)
    n = len(image)
    size = np.stack([lot[image, 0] - rng.uniform(6, 14, n),
                     row[image, 0] * rng.uniform(0.45, 0.7, n)], axis=1)
    size[rng.random(n) < 0.03] = 3.0  # a few under the area floor
    angle = theta[image, 0] + rng.normal(0, 0.03, n)
    return image, np.stack([x[keep], y[keep]], axis=1), size, angle


def make_case(n_images: int, seed: int = 0) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Truth and proposal frames for ``n_images`` generated images."""
    rng = np.random.default_rng(seed)
    image, centres, size, angle = _street_layout(rng, n_images)
    n = len(image)
    truth = _shapes(rng, centres, size, angle)
    # proposals: jittered copies of most buildings, some twice, some badly off
    found = rng.random(n) < 0.85
    copies = np.flatnonzero(found)
    copies = np.concatenate([copies, copies[rng.random(len(copies)) < 0.04]])
    wild = rng.random(len(copies)) < 0.1
    shift = rng.normal(0, np.where(wild, 12, 2.5)[:, None], (len(copies), 2))
    scale = rng.uniform(0.85, 1.15, (len(copies), 2))
    proposal = _shapes(rng, centres[copies] + shift, size[copies] * scale,
                       angle[copies] + rng.normal(0, 0.08, len(copies)))
    false_image = rng.integers(0, n_images, n_images * 2)
    n_false = len(false_image)
    false = _shapes(rng, rng.uniform(20, TILE - 20, (n_false, 2)),
                    rng.uniform(10, 60, (n_false, 2)), rng.uniform(0, np.pi, n_false))
    names = np.array([f"{AOIS[i % 4]}_img{i}" for i in range(n_images)])
    truth_frame = gpd.GeoDataFrame({"ImageId": names[image], "BuildingId": np.arange(n)},
                                   geometry=truth)
    truth_frame.attrs["image_ids"] = list(names)
    prop_image = np.concatenate([image[copies], false_image])
    props = gpd.GeoDataFrame({"ImageId": names[prop_image],
                              "BuildingId": np.arange(len(prop_image)),
                              "Confidence": rng.integers(0, 10, len(prop_image)).astype(float)},
                             geometry=np.concatenate([proposal, false]))
    return truth_frame, props.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _group(frame: gpd.GeoDataFrame) -> dict[str, list]:
    """Image id -> its geometries in frame order (one pass, no per-group frames)."""
    groups: dict[str, list] = {}
    for image_id, geom in zip(frame["ImageId"], frame.geometry.array, strict=True):
        groups.setdefault(image_id, []).append(geom)
    return groups


def loop_score(truth: gpd.GeoDataFrame, props: gpd.GeoDataFrame,
               union_overlay: bool = True) -> pd.DataFrame:
    """The plain scorer: per image, proposals by confidence, each against every unmatched
    truth polygon whose box overlaps its box; TP/FP/FN per image.

    With ``union_overlay`` the IoU is ``intersection.area / union.area`` with two polygon
    overlays, as the SpaceNet utilities and solaris compute it; without, the union area is
    ``a + b - intersection`` (the lean variant, one overlay per pair)."""
    truth = truth[truth.geometry.area >= building_f1.MIN_AREA]
    props = props[props.geometry.area >= building_f1.MIN_AREA]
    props = props.iloc[np.argsort(-props["Confidence"].values, kind="stable")]
    t_groups = _group(truth)
    p_groups = _group(props)
    rows = []
    for image_id in set(t_groups) | set(p_groups):
        t_geoms = t_groups.get(image_id, [])
        p_geoms = p_groups.get(image_id, [])
        t_boxes = [g.bounds for g in t_geoms]
        t_areas = [g.area for g in t_geoms]
        used = [False] * len(t_geoms)
        tp = 0
        for proposal in p_geoms:
            x0, y0, x1, y1 = proposal.bounds
            area = proposal.area
            best, best_j = building_f1.IOU_THRESHOLD, -1
            for j, (a0, b0, a1, b1) in enumerate(t_boxes):
                if used[j] or a0 > x1 or a1 < x0 or b0 > y1 or b1 < y0:
                    continue
                inter = proposal.intersection(t_geoms[j]).area
                union = (proposal.union(t_geoms[j]).area if union_overlay
                         else area + t_areas[j] - inter)
                iou = inter / union
                if iou > best:
                    best, best_j = iou, j
            if best_j >= 0:
                used[best_j] = True
                tp += 1
        rows.append((image_id, tp, len(p_geoms) - tp, len(t_geoms) - tp))
    return pd.DataFrame(rows, columns=["image_id", "tp", "fp", "fn"])


def run_size(n_images: int) -> dict:
    """Time both scorers on one generated case and check they agree."""
    truth, props = make_case(n_images)
    repeats = 3 if n_images <= 2000 else 1
    fast, result = best_time(lambda: building_f1.score(truth, props), repeats)
    ours = result.per_image.set_index("image_id")[["tp", "fp", "fn"]].sort_index()
    times = {}
    for name, union_overlay in (("loop", True), ("lean_loop", False)):
        times[name], plain = best_time(lambda u=union_overlay: loop_score(truth, props, u),
                                        repeats)
        theirs = plain.set_index("image_id")[["tp", "fp", "fn"]].sort_index()
        assert ours.equals(theirs.astype(ours.dtypes)), f"TP/FP/FN differ from the {name}"
    totals = ours.sum()
    return {"images": n_images, "truth": len(truth), "proposals": len(props),
            "tp": int(totals.tp), "fp": int(totals.fp), "fn": int(totals.fn),
            "aerialsam_s": round(fast, 3), "loop_s": round(times["loop"], 3),
            "speedup": round(times["loop"] / fast, 2),
            "lean_loop_s": round(times["lean_loop"], 3),
            "speedup_vs_lean": round(times["lean_loop"] / fast, 2),
            "aerialsam_us_per_image": round(fast / n_images * 1e6, 1)}


def main() -> None:
    """Run the benchmark sizes and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1500,15000", help="image counts, comma-separated")
    args = parser.parse_args()
    warm_truth, warm_props = make_case(20, seed=1)  # first-call costs out of the timings
    building_f1.score(warm_truth, warm_props)
    cases = [run_size(int(n)) for n in args.sizes.split(",")]
    print(json.dumps({"benchmark": "score", "baseline": "per-image double loop, bbox pruning",
                      "cases": cases,
                      "min_speedup": min(c["speedup"] for c in cases),
                      "identical_counts": True}))


if __name__ == "__main__":
    main()
