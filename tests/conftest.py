"""Shared fixtures: the real SpaceNet sample files and a small synthetic demo dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from aerialsam.data import demo, spacenet

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "spacenet_samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real SpaceNet sample files beside the checkout (see their PROVENANCE.md)."""
    assert SAMPLES.is_dir(), f"{SAMPLES} is missing: the tests need ../shared beside the repo"
    return SAMPLES


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four synthetic AOIs of three tiles each (seed 0); tile index 2 has no building."""
    root = tmp_path_factory.mktemp("demo")
    demo.make_demo(root, tiles_per_aoi=3, seed=0)
    return root


@pytest.fixture(scope="session")
def tile(tmp_path_factory: pytest.TempPathFactory) -> spacenet.Tile:
    """The first synthetic Vegas tile: 650 x 650 uint16, EPSG:4326, with buildings."""
    root = tmp_path_factory.mktemp("demo-tile")
    demo.make_demo(root, tiles_per_aoi=1, aois=["vegas"])
    return spacenet.find_tiles(root)[0]
