"""Shared fixtures: the real SpaceNet sample files, synthetic cities, prepared training data."""

from __future__ import annotations

from pathlib import Path

import pytest

from aerialsam import config
from aerialsam.data import demo, spacenet
from aerialsam.training import datasets
from aerialsam.training.loop import TrainData

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "spacenet_samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real SpaceNet sample files beside the checkout (see their PROVENANCE.md).

    They are oracles, not decoration: a checkout without ``../shared`` fails the tests that
    need them, with this line, rather than skipping them.
    """
    if not SAMPLES.is_dir():
        pytest.fail(f"{SAMPLES} is missing: the tests need ../shared beside the repository")
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


@pytest.fixture(scope="session")
def smoke_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke profile's data folder with every stage training needs (demo AOIs, chips,
    masks, splits), made once per test session: a few seconds."""
    data_dir = tmp_path_factory.mktemp("train_data")
    datasets.prepare_training_data(config.load_profile("smoke"), data_dir)
    return data_dir


@pytest.fixture(scope="session")
def smoke_train_data(smoke_data_dir: Path) -> TrainData:
    """The training stages of :func:`smoke_data_dir`."""
    paths = config.stage_paths(smoke_data_dir)
    return TrainData(paths.chips, paths.masks, paths.splits)


@pytest.fixture(scope="session")
def smoke_road_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke profile's road stages for Vegas (three SpaceNet 3 tiles: train, val, test)."""
    data_dir = tmp_path_factory.mktemp("road_data")
    profile = config.load_profile("smoke", aois=("AOI_2_Vegas",))
    datasets.prepare_training_data(profile, data_dir, task="roads")
    return data_dir


@pytest.fixture(scope="session")
def smoke_road_data(smoke_road_data_dir: Path) -> TrainData:
    """The road training stages of :func:`smoke_road_data_dir`."""
    return TrainData(*config.stage_paths(smoke_road_data_dir).training_data("roads"))
