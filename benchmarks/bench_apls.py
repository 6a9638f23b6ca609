"""Benchmark roads scoring: ``aerialsam score`` (APLS) against the official SpaceNet 3 scorer.

Generates SpaceNet 3-like cases of ``--sizes`` images (1300 x 1300 px tiles, seeded): truth
roads on a rotated, perturbed street grid 110-200 px apart with some blocks missing, each
block side a polyline with a vertex every 15-60 px like the real labels; proposals keep about
85 % of the roads, move and thin their vertices, round them to whole pixels (as the
competition's proposals did) and add a few false spurs. That is a few hundred control points
per tile. Both scorers run as whole processes on the same files: ``aerialsam score TRUTH
PROPOSALS --per-image OUT.csv`` (one process per CPU, the default; and ``--workers 1``) and
the Java scorer's ``score.sh --per-image`` (compiled before timing; one thread). The per-image
numbers are compared: ``max_abs_diff`` and the images that differ by more than 1e-9 (the
scorer walks a road that loops back to its junction in a direction Java's object hash codes
decide, which changes about one tile in a thousand; see ``aerialsam.metrics.road_graph``).
Without ``java`` (or the scorer) the Java side is skipped with a note.

Prints one JSON line. Usage: ``python benchmarks/bench_apls.py [--sizes 100,1000]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TILE = 1300.0
AOIS = ["AOI_2_Vegas", "AOI_3_Paris", "AOI_4_Shanghai", "AOI_5_Khartoum"]
SCORER = Path(__file__).resolve().parents[1] / ".." / "shared" / "oracles" / "sn3_scorer" \
    / "score.sh"


def _polyline(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, step: float,
              jitter: float) -> np.ndarray:
    n = max(1, int(np.hypot(*(b - a)) // step))
    t = np.linspace(0.0, 1.0, n + 1)[1:-1]
    return np.vstack([a, a + t[:, None] * (b - a) + rng.normal(0.0, jitter, (len(t), 2)), b])


def truth_tile(rng: np.random.Generator) -> list[np.ndarray]:
    """Truth roads of one tile: the sides of a perturbed, rotated grid of blocks."""
    spacing, theta = rng.uniform(110, 200), rng.uniform(0, np.pi / 2)
    k = int(TILE * 0.75 / spacing) + 2
    i, j = np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1), indexing="ij")
    u, v = i * spacing, j * spacing * rng.uniform(0.8, 1.25)
    x = u * np.cos(theta) - v * np.sin(theta) + TILE / 2 + rng.normal(0, 8, u.shape)
    y = u * np.sin(theta) + v * np.cos(theta) + TILE / 2 + rng.normal(0, 8, u.shape)
    pts = np.stack([x, y], axis=-1)
    inside = (x > 5) & (x < TILE - 5) & (y > 5) & (y < TILE - 5)
    roads = []
    for di, dj in ((1, 0), (0, 1)):
        both = inside[:inside.shape[0] - di, :inside.shape[1] - dj] & inside[di:, dj:]
        for p, q in zip(*np.nonzero(both), strict=True):
            if rng.random() >= 0.12:
                roads.append(_polyline(rng, pts[p, q], pts[p + di, q + dj],
                                       rng.uniform(15, 60), 1.5))
    return roads


def proposal_tile(rng: np.random.Generator, roads: list[np.ndarray]) -> list[np.ndarray]:
    """A proposal for a truth tile: most roads, moved, thinned, whole pixels, a few spurs."""
    shift = rng.normal(0, 2, 2)
    out = []
    for road in roads:
        if rng.random() < 0.15:
            continue
        moved = road + shift
        moved[1:-1] += rng.normal(0, 2.5, moved[1:-1].shape)
        out.append(np.vstack([moved[0], moved[1:-1:2], moved[-1]]))
    for _ in range(rng.integers(0, 6)):
        a = rng.uniform(50, TILE - 50, 2)
        out.append(_polyline(rng, a, np.clip(a + rng.normal(0, 120, 2), 1, TILE - 1), 40, 2))
    seen, kept = set(), []
    for road in (np.round(r) for r in out):
        road = road[np.r_[True, np.any(np.diff(road, axis=0) != 0, axis=1)]]
        keys = {tuple(sorted((tuple(road[i]), tuple(road[i + 1])))) for i in range(len(road) - 1)}
        if len(road) > 1 and not keys & seen:  # the scorer refuses repeated sections
            seen |= keys
            kept.append(road)
    return kept


def write_case(folder: Path, n_images: int, seed: int = 0) -> tuple[Path, Path]:
    """Truth and proposal CSVs (``ImageId,WKT_Pix``) of ``n_images`` generated tiles."""
    rng = np.random.default_rng(seed)
    truth_path, prop_path = folder / "truth.csv", folder / "proposals.csv"
    with truth_path.open("w", newline="") as t, prop_path.open("w", newline="") as p:
        truth, props = csv.writer(t), csv.writer(p)
        truth.writerow(["ImageId", "WKT_Pix"])
        props.writerow(["ImageId", "WKT_Pix"])
        for k in range(n_images):
            image = f"{AOIS[k % 4]}_img{k}"
            roads = truth_tile(rng)
            for writer, lines in ((truth, roads), (props, proposal_tile(rng, roads))):
                for line in lines or [None]:
                    writer.writerow([image, "LINESTRING EMPTY" if line is None else
                                     "LINESTRING (" + ", ".join(f"{x!r} {y!r}" for x, y in
                                                                line.tolist()) + ")"])
    return truth_path, prop_path


def run_ours(truth: Path, proposals: Path, out: Path, workers: int | None = None
             ) -> tuple[float, pd.DataFrame]:
    """Wall time of ``aerialsam score --per-image`` as a process, and its per-image table."""
    extra = [] if workers is None else ["--workers", str(workers)]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aerialsam", "score", str(truth), str(proposals),
                    "--per-image", str(out), *extra], check=True, capture_output=True)
    return time.perf_counter() - start, pd.read_csv(out).set_index("image_id")


def run_java(scorer: Path, truth: Path, proposals: Path) -> tuple[float, pd.DataFrame]:
    """Wall time of the official scorer (``score.sh --per-image``) and its per-image table."""
    start = time.perf_counter()
    done = subprocess.run([str(scorer), "--per-image", str(truth), str(proposals)], check=True,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    rows = [line.split()[1:] for line in done.stdout.splitlines()
            if line.startswith("IMAGE ") and not line.endswith("unscored")]
    table = pd.DataFrame(rows, columns=["image_id", "gt_to_prop", "prop_to_gt", "apls"])
    return seconds, table.set_index("image_id").astype(float)


def graph_sizes(truth: Path, proposals: Path, count: int = 20) -> float:
    """Mean number of nodes (control points included) per graph, over the first images."""
    from aerialsam.metrics import apls

    sizes = []
    for path in (truth, proposals):
        roads = apls.read_roads_csv(path)
        sizes += [apls.road_graph_of(r).n_nodes for r in list(roads.values())[:count]]
    return float(np.mean(sizes))


def run_size(n_images: int, scorer: Path | None, work: Path) -> dict:
    """Both scorers on one generated case; times, rates and the largest difference."""
    folder = work / f"case{n_images}"
    folder.mkdir()
    truth, proposals = write_case(folder, n_images)
    ours_s, ours = run_ours(truth, proposals, folder / "per_image.csv")
    one_s, one = run_ours(truth, proposals, folder / "per_image_1.csv", workers=1)
    assert one.equals(ours), "the scores depend on the number of processes"
    case = {"images": n_images, "nodes_per_graph": round(graph_sizes(truth, proposals), 1),
            "cpus": os.cpu_count(), "aerialsam_s": round(ours_s, 2),
            "aerialsam_images_per_s": round(n_images / ours_s, 1),
            "aerialsam_1_process_s": round(one_s, 2)}
    if scorer is None:
        return case
    java_s, java = run_java(scorer, truth, proposals)
    assert sorted(java.index) == sorted(ours.index), "the two scorers scored different images"
    diff = (ours.loc[java.index, ["gt_to_prop", "prop_to_gt", "apls"]] - java).abs().max(axis=1)
    case.update({"java_s": round(java_s, 2), "java_images_per_s": round(n_images / java_s, 1),
                 "speedup": round(java_s / ours_s, 2),
                 "speedup_1_process": round(java_s / one_s, 2),
                 "max_abs_diff": float(diff.max()),
                 "images_over_1e-9": sorted(diff.index[diff > 1e-9])})
    return case


def main() -> None:
    """Run the benchmark sizes and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="image counts, comma-separated")
    parser.add_argument("--scorer", type=Path, default=SCORER, help="the Java scorer's score.sh")
    args = parser.parse_args()
    scorer = args.scorer.resolve() if args.scorer.is_file() and shutil.which("java") and \
        shutil.which("javac") else None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if scorer is not None:  # compile the scorer before anything is timed
            warm = work / "warm"
            warm.mkdir()
            run_java(scorer, *write_case(warm, 4, seed=1))
        cases = [run_size(int(n), scorer, work) for n in args.sizes.split(",")]
    result = {"benchmark": "apls", "baseline": "official SpaceNet 3 scorer (Java), whole process",
              "cases": cases}
    if scorer is None:
        result["note"] = "java, javac or the scorer not found: the Java side was skipped"
    else:
        result["min_speedup"] = min(c["speedup"] for c in cases)
        result["identical_to_1e-9"] = all(not c["images_over_1e-9"] for c in cases)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
