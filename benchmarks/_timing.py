"""Timing helper shared by the benchmarks (run as `python benchmarks/bench_x.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_time(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Shortest wall time of ``repeats`` calls (the machine is shared) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result
