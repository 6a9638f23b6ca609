"""Benchmark downloads against a local fake bucket (tests/fake_bucket.py) on 127.0.0.1.

Two figures, each against a baseline measured in the same run:

- ``--tiles``: many small objects with a per-request server latency (default 8 ms, like a
  nearby S3 region), downloaded with 1 and with 8 workers; the ratio is the speed-up.
- tarball streaming (ranged GET, md5 while writing, resumable partial file) against a plain
  file copy of the same bytes on the same disk; the ratio is stream / copy throughput.

Prints one JSON line. Usage: ``python benchmarks/bench_download.py [--tiles 150] [--mb 128]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aerialsam.data import download
from aerialsam.data.s3 import BucketClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_bucket import FakeBucket, tile_objects  # noqa: E402 - lives beside the tests


def time_tiles(bucket: FakeBucket, n: int, workers: int, root: Path) -> float:
    """Seconds to download ``n`` tiles (2n objects) into a fresh folder."""
    dest = Path(tempfile.mkdtemp(dir=root))
    start = time.perf_counter()
    download.download_tiles("vegas", n, dest, endpoint=bucket.url, workers=workers,
                            progress=False)
    elapsed = time.perf_counter() - start
    shutil.rmtree(dest)
    return elapsed


def time_stream(bucket: FakeBucket, key: str, size: int, root: Path) -> float:
    """Seconds to stream one object to disk with md5, as a tarball download does."""
    part = root / "stream.part"
    part.unlink(missing_ok=True)
    start = time.perf_counter()
    BucketClient(bucket.url).fetch_resumable(key, part, size)
    elapsed = time.perf_counter() - start
    part.unlink()
    return elapsed


def time_copy(source: Path, root: Path) -> float:
    """Seconds for a plain file copy of ``source`` (the baseline of the stream)."""
    target = root / "copy.bin"
    start = time.perf_counter()
    # No fsync on either side: both measure writing through the page cache.
    shutil.copyfile(source, target)
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


def main() -> None:
    """Run both measurements and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=150, help="tiles (2 objects each)")
    parser.add_argument("--tile-kb", type=int, default=32, help="image size in kB")
    parser.add_argument("--latency-ms", type=float, default=8.0, help="server latency")
    parser.add_argument("--mb", type=int, default=128, help="tarball size in MB")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    objects = tile_objects("AOI_2_Vegas", list(range(1, args.tiles + 1)),
                           image_bytes=args.tile_kb * 1024)
    key = "bench/tarball.tar.gz"
    payload = os.urandom(args.mb * 1024 * 1024)
    objects[key] = payload
    with tempfile.TemporaryDirectory() as tmp, \
            FakeBucket(objects=objects, latency_s=args.latency_ms / 1000) as bucket:
        root = Path(tmp)
        serial = statistics.median(time_tiles(bucket, args.tiles, 1, root)
                                   for _ in range(args.repeats))
        parallel = statistics.median(time_tiles(bucket, args.tiles, 8, root)
                                     for _ in range(args.repeats))
        bucket.latency_s = 0.0
        source = root / "source.bin"
        source.write_bytes(payload)
        stream = statistics.median(time_stream(bucket, key, len(payload), root)
                                   for _ in range(args.repeats))
        copy = statistics.median(time_copy(source, root) for _ in range(args.repeats))

    files = 2 * args.tiles
    mb = len(payload) / 1e6
    print(json.dumps({
        "bench": "download",
        "tiles": args.tiles, "objects": files, "tile_kb": args.tile_kb,
        "latency_ms": args.latency_ms,
        "workers1_files_per_s": round(files / serial, 1),
        "workers8_files_per_s": round(files / parallel, 1),
        "workers8_vs_workers1": round(serial / parallel, 2),
        "tarball_mb": round(mb, 1),
        "stream_mb_per_s": round(mb / stream, 1),
        "copy_mb_per_s": round(mb / copy, 1),
        "stream_vs_copy": round(copy / stream, 3),
    }))


if __name__ == "__main__":
    main()
