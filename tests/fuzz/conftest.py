"""Fuzz suite fixtures: hypothesis settings, the good inputs of the CLI corpus, its tally.

The tally prints, at the end of the session, how many bad inputs each command was given and
how each came out (one line, expected failure of a defect elsewhere, failure).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict

import pytest
from hypothesis import HealthCheck, settings

from aerialsam.data import demo, spacenet
from aerialsam.io import open_raster
from tests.fuzz.corpus import Base

# Small, reproducible example counts keep the suite within a minute on two cores;
# AERIALSAM_FUZZ=deep runs a random, ten times longer search.
_QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("aerialsam", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=_QUIET)
settings.register_profile("deep", max_examples=400, deadline=None, suppress_health_check=_QUIET)
settings.load_profile("deep" if os.environ.get("AERIALSAM_FUZZ") == "deep" else "aerialsam")

_OUTCOMES: dict[str, Counter] = defaultdict(Counter)


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    """One synthetic SpaceNet 2 Vegas tile (650 x 650 uint16, EPSG:4326) and its corner."""
    root = tmp_path_factory.mktemp("corpus")
    demo.make_demo(root / "raw", tiles_per_aoi=1, aois=["vegas"])
    image = spacenet.find_tiles(root / "raw")[0].image_path
    with open_raster(image) as src:
        west, north = src.bounds.left, src.bounds.top
    return Base(root, image, west, north)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Tally the corpus cases by command and outcome."""
    if "test_cli_corpus.py::test_bad_input_fails_in_one_line[" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        command = report.nodeid.split("[", 1)[1].split("-", 1)[0]
        if hasattr(report, "wasxfail"):
            outcome = "xfail (defect elsewhere)" if report.skipped else "xpass"
        else:
            outcome = {"passed": "one line", "failed": "FAILED"}.get(report.outcome,
                                                                     report.outcome)
        _OUTCOMES[command][outcome] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the bad inputs tried per command and their outcomes."""
    if not _OUTCOMES:
        return
    terminalreporter.section("CLI corpus: bad inputs tried per command")
    total = Counter()
    for command in sorted(_OUTCOMES):
        counts = _OUTCOMES[command]
        total.update(counts)
        detail = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        terminalreporter.write_line(f"{command:10} {sum(counts.values()):4} tried: {detail}")
    detail = ", ".join(f"{n} {outcome}" for outcome, n in sorted(total.items()))
    terminalreporter.write_line(f"{'all':10} {sum(total.values()):4} tried: {detail}")
