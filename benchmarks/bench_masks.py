"""Benchmark masks: footprint + boundary + contact per second, spatial index against all pairs.

1. Demo tiles (``aerialsam.data.demo``, ``--tiles`` per AOI, seed 0) of the densest city (most
   buildings per tile): the three masks of every tile with :mod:`aerialsam.prep.masks` (contact from
   an STR-tree over neighbouring pairs) against the same masks with a naive contact that tests
   and intersects every pair of grown buildings in Python. Labels are read before timing;
   best of ``--repeats``. The two must give identical masks.
2. The same pair on synthetic dense tiles of ``g`` x ``g`` small buildings 4 px apart, for each
   ``g`` of ``--grids``: the all-pairs cost grows as n^2 / 2 pairs, the index's as n log n.

Prints one JSON line. Usage: ``python benchmarks/bench_masks.py [--tiles 10] [--grids 20,40,80]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import numpy as np
import shapely
from _timing import best_time

from aerialsam.data import demo, spacenet
from aerialsam.prep import masks

SPACING = 10.0


def naive_contact(polygons: np.ndarray, shape: tuple[int, int], footprint: np.ndarray
                  ) -> np.ndarray:
    """The baseline: grow every building, then test and intersect every pair in Python."""
    grown = [p.buffer(SPACING / 2, quad_segs=masks.QUAD_SEGS) for p in polygons]
    pieces = [grown[i].intersection(grown[j])
              for i, j in itertools.combinations(range(len(grown)), 2)
              if grown[i].intersects(grown[j])]
    overlaps = masks.footprint_mask([masks.polygonal(p) for p in pieces], shape)
    return overlaps & ~footprint


def three_masks(polygons: np.ndarray, shape: tuple[int, int], naive: bool) -> list[np.ndarray]:
    """Footprint, inner boundary and contact of one tile."""
    footprint = masks.footprint_mask(polygons, shape)
    boundary = masks.boundary_mask(footprint, 3)
    if naive:
        contact = naive_contact(polygons, shape, footprint)
    else:
        contact = masks.contact_mask(polygons, shape, SPACING, footprint)
    return [footprint, boundary, contact]


def densest_city(root: Path) -> tuple[str, list[tuple[np.ndarray, tuple[int, int]]]]:
    """The AOI with the most buildings per tile, with each tile's pixel polygons and shape."""
    by_aoi: dict[str, list] = {}
    for tile in spacenet.find_tiles(root):
        grid = masks.read_grid(tile.image_path)
        polygons = masks.read_labels(tile.geojson_path, grid, tile.image_path)
        by_aoi.setdefault(tile.aoi, []).append((polygons, grid.shape))
    aoi = max(by_aoi, key=lambda a: np.mean([len(p) for p, _ in by_aoi[a]]))
    return aoi, by_aoi[aoi]


def dense_tile(grid: int) -> tuple[np.ndarray, tuple[int, int]]:
    """``grid`` x ``grid`` 12 x 12 px buildings, 4 px apart: every neighbour is in contact."""
    pitch = 16
    polygons = np.array([shapely.box(4 + c * pitch, 4 + r * pitch, 16 + c * pitch, 16 + r * pitch)
                         for r in range(grid) for c in range(grid)], dtype=object)
    side = grid * pitch + 8
    return polygons, (side, side)


def compare(tiles: list[tuple[np.ndarray, tuple[int, int]]], repeats: int) -> dict:
    """Times and masks per second of both contact methods over ``tiles``; checks equality."""
    fast_s, fast = best_time(lambda: [three_masks(p, s, False) for p, s in tiles], repeats)
    naive_s, naive = best_time(lambda: [three_masks(p, s, True) for p, s in tiles], 1)
    identical = all(np.array_equal(a, b) for fa, na in zip(fast, naive, strict=True)
                    for a, b in zip(fa, na, strict=True))
    count = 3 * len(tiles)
    return {"masks": count, "buildings": int(sum(len(p) for p, _ in tiles)),
            "index_s": round(fast_s, 4), "all_pairs_s": round(naive_s, 4),
            "index_masks_per_s": round(count / fast_s, 1),
            "all_pairs_masks_per_s": round(count / naive_s, 1),
            "speedup": round(naive_s / fast_s, 2), "identical": identical}


def main() -> None:
    """Run both comparisons and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=10, help="demo tiles per AOI (default 10)")
    parser.add_argument("--grids", default="20,40,80",
                        help="buildings per side of the dense synthetic tiles (default 20,40,80)")
    parser.add_argument("--repeats", type=int, default=3, help="best of N (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo.make_demo(tmp, tiles_per_aoi=args.tiles, seed=0)
        aoi, tiles = densest_city(Path(tmp))
    city = compare(tiles, args.repeats)
    dense = [{"grid": g, **compare([dense_tile(g)], args.repeats)}
             for g in (int(v) for v in args.grids.split(","))]
    print(json.dumps({"benchmark": "masks", "contact_spacing_px": SPACING,
                      "demo_city": {"aoi": aoi, "tiles": len(tiles), **city},
                      "dense_tiles": dense}))


if __name__ == "__main__":
    main()
