"""Helpers of the training tests: tiny configurations, a stand-in validation, run readers.

The prepared smoke data are session fixtures in ``conftest.py`` (``smoke_data_dir``,
``smoke_train_data``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch

from aerialsam.training import runs, train_config

VEGAS = ("AOI_2_Vegas",)


def tiny_config(**overrides: Any) -> train_config.TrainConfig:
    """The smoke profile's run, cut to Vegas, batch 2, SAM 2 at 64 px, CPU."""
    values: dict[str, Any] = {"aois": VEGAS, "batch_size": 2, "image_size": 64,
                              "device": "cpu", "amp": "off"}
    return train_config.from_profile("smoke", **{**values, **overrides})


def fake_validation_row(ctx: Any, step: int, epoch: int, final: bool) -> dict[str, Any]:
    """A stand-in for ``logs.validation_row`` (tile F1 costs seconds; tests that do not look
    at it skip it): a fixed row of the same shape."""
    row: dict[str, Any] = {"step": step, "epoch": epoch, "split": "val", "loss": 0.25,
                           "pixel_iou": 0.5, "f1": 0.0, "apls": 0.0, "threshold": 0.5}
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
