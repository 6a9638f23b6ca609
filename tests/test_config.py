"""Run profiles."""

from __future__ import annotations

import pytest

from aerialsam import config
from aerialsam.errors import InputError


def test_profiles_by_name() -> None:
    smoke, demo, full = (config.load_profile(n) for n in ("smoke", "demo", "full"))
    assert smoke.synthetic and demo.synthetic and not full.synthetic
    assert smoke.tiles_per_aoi < demo.tiles_per_aoi
    assert smoke.sam_image_size < full.sam_image_size == 1024
    assert full.sam_checkpoint is None and demo.sam_checkpoint == "random"


def test_overrides_and_errors() -> None:
    assert config.load_profile("smoke", tiles_per_aoi=5).tiles_per_aoi == 5
    with pytest.raises(InputError, match="unknown profile"):
        config.load_profile("huge")
    with pytest.raises(InputError, match="unknown setting"):
        config.load_profile("demo", tiles=3)


def test_stage_paths() -> None:
    paths = config.stage_paths("/data")
    assert str(paths.chips) == "/data/chips" and str(paths.splits) == "/data/splits.csv"
