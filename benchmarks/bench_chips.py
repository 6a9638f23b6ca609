"""Benchmark chipping: speed against an I/O floor, two workers against one, bounded memory.

1. 50 tiles of real SpaceNet 2 format (650 x 650 x 3 uint16; copies of the real Vegas samples
   in the SN2 layout, or demo tiles when the samples are absent) chipped at 512 / 64
   (4 chips per tile) against the floor of reading every tile whole with rasterio and writing
   the same number of uint8 bytes as uncompressed GeoTIFFs (the same chip files, no stretch,
   no index), also with the floor's files written atomically (temporary name + rename, which
   chipping needs to be idempotent); best of ``--repeats``.
2. The same chipping with ``--workers 2`` against ``--workers 1``.
3. Peak resident memory of chipping a 20,000 x 20,000 x 3 uint8 tiled GeoTIFF (written block
   by block), measured in a subprocess; it must stay under 1 GB.

Prints one JSON line. Usage: ``python benchmarks/bench_chips.py [--big-side 20000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from aerialsam.data import demo
from aerialsam.io import atomic_path
from aerialsam.prep import chips

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "spacenet_samples" \
    / "vegas_sn2_rgb"
SIZE, OVERLAP = 512, 64
# VmHWM (this process's peak RSS) rather than ru_maxrss, which Linux carries over from the
# parent across fork + exec and would report the benchmark's own footprint.
PEAK_CHILD = """
import json, re, sys
from pathlib import Path
from aerialsam.prep import chips
report = chips.chip_sources(sys.argv[1], sys.argv[2], size=512, overlap=64)
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))
print(json.dumps({"chips": len(report.index), "peak_rss_mb": peak_kb / 1024}))
"""


def make_tiles(root: Path, count: int) -> Path:
    """``count`` SN2 tiles in the SN2 layout: copies of the real Vegas samples (or demo tiles)."""
    samples = sorted(SAMPLES.glob("*.tif"))
    if not samples:
        return demo.make_demo(root, tiles_per_aoi=count, aois=["vegas"])[0]
    folder = root / "AOI_2_Vegas_Train" / "RGB-PanSharpen"
    folder.mkdir(parents=True)
    for n in range(count):
        name = f"RGB-PanSharpen_AOI_2_Vegas_img{n + 1}.tif"
        shutil.copy(samples[n % len(samples)], folder / name)
    return root / "AOI_2_Vegas_Train"


def floor_run(tiles: list[Path], out: Path, atomic: bool = False) -> float:
    """Read each tile whole; write its chips' worth of uint8 bytes as uncompressed GeoTIFFs.

    With ``atomic`` each file is written through :func:`aerialsam.io.atomic_path` (temporary
    name, then rename), as chipping does for idempotence.
    """
    start = time.perf_counter()
    for n, path in enumerate(tiles):
        with rasterio.open(path) as src:
            data, crs, transform = src.read(), src.crs, src.transform
            offsets = [(r, c) for r in chips.chip_offsets(src.height, SIZE, OVERLAP)
                       for c in chips.chip_offsets(src.width, SIZE, OVERLAP)]
        pixels = (data >> 3).astype(np.uint8)
        for r, c in offsets:
            profile = {"driver": "GTiff", "dtype": "uint8", "count": 3, "height": SIZE,
                       "width": SIZE, "crs": crs, "transform": transform}
            target = out / f"{n}_{r}_{c}.tif"
            with (atomic_path(target) if atomic else nullcontext(target)) as path, \
                    rasterio.open(path, "w", **profile) as dst:
                dst.write(pixels[:, r:r + SIZE, c:c + SIZE])
    return time.perf_counter() - start


def best_of(repeats: int, run) -> float:
    """The fastest of ``repeats`` timed runs (each in a fresh folder)."""
    times = []
    for _ in range(repeats):
        out = Path(tempfile.mkdtemp(prefix="bench_chips_"))
        try:
            times.append(run(out))
        finally:
            shutil.rmtree(out)
    return min(times)


def chip_run(raw: Path, workers: int, stretch: Path):
    """A timed chipping run (the AOI stretch given, as in a rerun on new imagery)."""
    def run(out: Path) -> float:
        start = time.perf_counter()
        chips.chip_sources(raw, out, SIZE, OVERLAP, workers=workers, stretch_path=stretch)
        return time.perf_counter() - start
    return run


def write_big_raster(path: Path, side: int, block: int = 512) -> None:
    """A ``side`` x ``side`` x 3 uint8 tiled GeoTIFF, written one strip of blocks at a time."""
    profile = {"driver": "GTiff", "dtype": "uint8", "count": 3, "height": side, "width": side,
               "crs": "EPSG:32611", "transform": from_origin(500000, 4000000, 0.3, 0.3),
               "tiled": True, "blockxsize": 256, "blockysize": 256}
    cols = np.arange(side, dtype=np.int32)[None, :]
    with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(path, "w", **profile) as dst:
        for row in range(0, side, block):
            height = min(block, side - row)
            rows = np.arange(row, row + height, dtype=np.int32)[:, None]
            strip = np.stack([(cols + rows) % 251, (cols * 3 + rows) % 241,
                              (rows * 5 + 0 * cols) % 233])
            dst.write(strip.astype(np.uint8), window=Window(0, row, side, height))


def peak_memory(side: int) -> dict:
    """Chip a large synthetic raster in a subprocess; its peak RSS, time and chip count."""
    work = Path(tempfile.mkdtemp(prefix="bench_big_"))
    try:
        raster = work / "big" / "ortho.tif"
        raster.parent.mkdir()
        start = time.perf_counter()
        write_big_raster(raster, side)
        made = time.perf_counter() - start
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PEAK_CHILD, str(raster), str(work / "out")],
                              check=True, capture_output=True, text=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result.update(side=side, raster_mb=round(raster.stat().st_size / 2**20),
                      write_raster_s=round(made, 1),
                      chip_s=round(time.perf_counter() - start, 1))
        result["peak_rss_mb"] = round(result["peak_rss_mb"])
        result["under_1gb"] = result["peak_rss_mb"] < 1024
        result["peak_vs_whole_raster"] = round(result["peak_rss_mb"] / result["raster_mb"], 3)
        return result
    finally:
        shutil.rmtree(work)


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big-side", type=int, default=20000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_tiles_"))
    try:
        raw = make_tiles(work / "raw", args.tiles)
        tiles = [s.path for s in chips.find_sources(raw)]
        start = time.perf_counter()
        first = chips.chip_sources(raw, work / "first", SIZE, OVERLAP)  # computes the stretch
        first_s = time.perf_counter() - start
        stretch = work / "first" / "stretch.json"
        floor_s = best_of(args.repeats, lambda out: floor_run(tiles, out))
        atomic_s = best_of(args.repeats, lambda out: floor_run(tiles, out, atomic=True))
        one_s = best_of(args.repeats, chip_run(raw, 1, stretch))
        two_s = best_of(args.repeats, chip_run(raw, 2, stretch))
    finally:
        shutil.rmtree(work)
    big = peak_memory(args.big_side)
    print(json.dumps({
        "tiles": len(tiles), "chips": len(first.index), "size": SIZE, "overlap": OVERLAP,
        "cpus": os.cpu_count(), "floor_s": round(floor_s, 3), "chip_w1_s": round(one_s, 3),
        "chip_w2_s": round(two_s, 3), "chip_vs_floor": round(one_s / floor_s, 2),
        "floor_atomic_s": round(atomic_s, 3), "chip_vs_floor_atomic": round(one_s / atomic_s, 2),
        "w2_speedup": round(one_s / two_s, 2),
        "first_run_with_stretch_s": round(first_s, 3), "big_raster": big}))


if __name__ == "__main__":
    main()
