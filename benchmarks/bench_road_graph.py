"""Benchmark: road probability tile to clean road graph, against skeletonizing alone.

Draws ``--tiles`` SpaceNet 3-like probability tiles (1300 x 1300 px, 0.3 m pixels): a jittered
street grid of 6 + 6 roads 8-24 px wide, three curved roads, a few breaks, blurred noise (so
the mask has ragged edges and small holes) and 30 specks (false alarms), as a model's output
has. For each tile it times, best of ``--repeats``:

- ``skeletonize``: threshold and :func:`skimage.morphology.skeletonize` alone: the floor;
- ``mask``: :func:`road_mask` (threshold, closing, holes) and the skeleton;
- ``trace``: the skeleton's pixels traced into the raw graph with skan
  (:func:`skeleton_graph`);
- ``clean``: :func:`clean_graph` of the raw graph;
- ``graph``: the whole :func:`mask_to_graph` (the above and the clean-up).

The first call of a process compiles skan's numba code; it is timed apart (``first_call_s``).
Prints one JSON line. Usage: ``python benchmarks/bench_road_graph.py [--tiles 4] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _timing import best_time
from rasterio import features
from scipy import ndimage
from shapely.geometry import LineString
from skimage.morphology import skeletonize

from aerialsam.inference.road_graph import DEFAULT_OPTIONS, clean_graph
from aerialsam.inference.road_vectorize import (
    mask_to_graph,
    road_mask,
    skeleton_graph,
    skeleton_pixels,
)

SIDE = 1300
PIXEL = (0.3, 0.3)


def _road(rng: np.random.Generator, vertical: bool) -> LineString:
    """A road across the tile, wandering a little."""
    along = np.linspace(-40, SIDE + 40, 14)
    across = rng.uniform(40, SIDE - 40) + np.cumsum(rng.normal(0, 6, along.size))
    return LineString(np.column_stack([across, along] if vertical else [along, across]))


def synthetic_tile(seed: int) -> np.ndarray:
    """A float32 road probability tile (see the module docstring)."""
    rng = np.random.default_rng(seed)
    roads = [_road(rng, vertical) for vertical in (False, True) for _ in range(6)]
    for _ in range(3):
        centre, radius = rng.uniform(200, SIDE - 200, 2), rng.uniform(150, 400)
        angles = np.linspace(rng.uniform(0, np.pi), rng.uniform(np.pi, 2 * np.pi), 40)
        roads.append(LineString(centre + radius * np.column_stack([np.cos(angles),
                                                                   np.sin(angles)])))
    shapes = [(road.buffer(rng.uniform(4, 12), cap_style="flat"), 1) for road in roads]
    mask = features.rasterize(shapes, out_shape=(SIDE, SIDE), dtype="uint8").astype(np.float32)
    for x, y in rng.uniform(50, SIDE - 50, (6, 2)).astype(int):
        mask[y - 3:y + 3, x - 3:x + 3] = 0  # breaks under cars and trees
    rows, cols = np.ogrid[:SIDE, :SIDE]
    for x, y, r in zip(*rng.uniform(0, SIDE, (2, 30)), rng.uniform(2, 8, 30), strict=True):
        mask[(rows - y) ** 2 + (cols - x) ** 2 < r * r] = 1  # false alarms: specks
    noisy = mask * 0.8 + rng.normal(0.1, 0.2, mask.shape)
    return np.clip(ndimage.gaussian_filter(noisy, 1.5), 0, 1).astype(np.float32)


def main() -> None:
    """Time each stage on the tiles and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=4, help="tiles to draw (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="best of N (default 3)")
    args = parser.parse_args()
    tiles = [synthetic_tile(seed) for seed in range(args.tiles)]
    started = time.perf_counter()
    mask_to_graph(tiles[0][:64, :64] + 0.0, pixel_size=PIXEL)  # compiles skan's numba code
    first_call = time.perf_counter() - started
    masks = [road_mask(t, DEFAULT_OPTIONS, PIXEL) for t in tiles]
    pixels = [skeleton_pixels(m) for m in masks]
    raws = [skeleton_graph(*p, PIXEL, (SIDE, SIDE)) for p in pixels]
    floor_s, _ = best_time(lambda: [skeletonize(t > DEFAULT_OPTIONS.threshold) for t in tiles],
                           args.repeats)
    mask_s, _ = best_time(lambda: [skeleton_pixels(road_mask(t, DEFAULT_OPTIONS, PIXEL))
                                   for t in tiles], args.repeats)
    trace_s, _ = best_time(lambda: [skeleton_graph(*p, PIXEL, (SIDE, SIDE)) for p in pixels],
                           args.repeats)
    clean_s, _ = best_time(lambda: [clean_graph(g, DEFAULT_OPTIONS) for g in raws],
                           args.repeats)
    graph_s, graphs = best_time(lambda: [mask_to_graph(t, pixel_size=PIXEL) for t in tiles],
                                args.repeats)
    n = len(tiles)
    print(json.dumps({
        "benchmark": "road_graph", "tiles": n, "tile_px": SIDE,
        "first_call_s": round(first_call, 3),
        "skeletonize_s_per_tile": round(floor_s / n, 4),
        "mask_and_skeleton_s_per_tile": round(mask_s / n, 4),
        "trace_s_per_tile": round(trace_s / n, 4),
        "clean_s_per_tile": round(clean_s / n, 4),
        "graph_s_per_tile": round(graph_s / n, 4),
        "graph_vs_skeletonize": round(graph_s / floor_s, 2),
        "clean_share_of_graph": round(clean_s / graph_s, 2),
        "raw_edges_per_tile": round(float(np.mean([g.number_of_edges() for g in raws])), 1),
        "edges_per_tile": round(float(np.mean([g.number_of_edges() for g in graphs])), 1),
    }))


if __name__ == "__main__":
    main()
