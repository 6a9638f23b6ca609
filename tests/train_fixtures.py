"""The prepared smoke data and tiny configurations shared by the training tests.

Preparing the smoke data (demo AOIs, chips, masks, splits) takes a few seconds; it is done
once per test session whichever training test module asks first. Import the helpers, not
fixtures: each module wraps ``prepared_data`` in its own fixture.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch

from aerialsam import config
from aerialsam.training import datasets, loop, runs, train_config

VEGAS = ("AOI_2_Vegas",)
_PREPARED: dict[str, Path] = {}


def prepared_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, loop.TrainData]:
    """The smoke profile's data folder and its training stages, made once per session."""
    if "data_dir" not in _PREPARED:
        data_dir = tmp_path_factory.mktemp("train_data")
        datasets.prepare_training_data(config.load_profile("smoke"), data_dir)
        _PREPARED["data_dir"] = data_dir
    data_dir = _PREPARED["data_dir"]
    paths = config.stage_paths(data_dir)
    return data_dir, loop.TrainData(paths.chips, paths.masks, paths.splits)


def tiny_config(**overrides: Any) -> train_config.TrainConfig:
    """The smoke profile's run, cut to Vegas, batch 2, SAM 2 at 64 px, CPU."""
    values: dict[str, Any] = {"aois": VEGAS, "batch_size": 2, "image_size": 64,
                              "device": "cpu", "amp": "off"}
    return train_config.from_profile("smoke", **{**values, **overrides})


def fake_validation_row(ctx: Any, step: int, epoch: int, final: bool) -> dict[str, Any]:
    """A stand-in for ``logs.validation_row`` (tile F1 costs seconds; tests that do not look
    at it skip it): a fixed row of the same shape."""
    row: dict[str, Any] = {"step": step, "epoch": epoch, "split": "val", "loss": 0.25,
                           "pixel_iou": 0.5, "f1": 0.0, "threshold": 0.5}
    if final:
        row.update(oracle=False, f1_per_threshold={"0.5": 0.0})
    return row


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    """The rows of a run's metrics.csv."""
    with (run_dir / runs.METRICS_FILE).open(newline="") as handle:
        return list(csv.DictReader(handle))


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The state dict in a finished run's model.pt."""
    return torch.load(run_dir / runs.MODEL_FILE, map_location="cpu", weights_only=True)["model"]


def checkpoint_weights(run_dir: Path, name: str = runs.LAST) -> dict[str, torch.Tensor]:
    """The model state dict of one of a run's checkpoints."""
    return runs.load_checkpoint(run_dir / runs.CHECKPOINTS / name)["model"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Bit-identical state dicts (same keys, ``torch.equal`` values)."""
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
