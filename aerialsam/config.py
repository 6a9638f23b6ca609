"""Run profiles shared by the notebooks and the command line.

Three profiles run the same notebooks with different parameters:

- ``smoke``: every notebook in seconds on 2 CPU cores; what the tests execute.
- ``demo``: what ``make book`` executes and the rendered book shows: synthetic AOIs, CPU only,
  SAM 2 at a reduced input size with random or briefly trained weights.
- ``full``: real SpaceNet 2, pretrained SAM 2.1 checkpoints, a GPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aerialsam.errors import InputError

AOIS: tuple[str, ...] = ("AOI_2_Vegas", "AOI_3_Paris", "AOI_4_Shanghai", "AOI_5_Khartoum")


@dataclass(frozen=True)
class Profile:
    """Every parameter that differs between the smoke, demo and full runs.

    Attributes:
        name: the profile's name.
        data_source: ``"demo"`` for synthetic AOIs made by :mod:`aerialsam.demo`,
            ``"spacenet"`` for the real SpaceNet 2 download.
        tiles_per_aoi: how many tiles of each AOI to make or download (``None``: all of them).
        seed: the one seed behind data generation, splits and training.
        aois: the AOI names to use.
        chip_size: chip edge in pixels.
        chip_overlap: overlap between neighbouring chips in pixels.
        sam_variant: SAM 2.1 variant (``tiny``, ``small``, ``base_plus``, ``large``).
        sam_checkpoint: ``"random"`` for untrained weights, ``None`` to resolve the official
            pretrained checkpoint, or a path.
        sam_image_size: SAM 2 input size in pixels (1024 is the model's native size).
        device: ``"auto"`` (cuda, then mps, then cpu) or a torch device string.
        batch_size: images per batch for training and inference.
        train_steps: optimisation steps of a fine-tuning run.
        synthetic: whether the numbers this profile produces come from synthetic data.
    """

    name: str
    data_source: Literal["demo", "spacenet"]
    tiles_per_aoi: int | None
    seed: int = 0
    aois: tuple[str, ...] = AOIS
    chip_size: int = 512
    chip_overlap: int = 64
    sam_variant: str = "tiny"
    sam_checkpoint: str | None = "random"
    sam_image_size: int = 1024
    device: str = "auto"
    batch_size: int = 4
    train_steps: int = 1000
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        """True when the profile's data are the synthetic demo AOIs."""
        return self.data_source == "demo"


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        data_source="demo",
        tiles_per_aoi=3,
        chip_size=256,
        chip_overlap=32,
        sam_image_size=256,
        batch_size=2,
        train_steps=4,
        # three tiles per city leave no test tile: evaluate on the validation tiles
        extra={"eval_split": "val"},
    ),
    "demo": Profile(
        name="demo",
        data_source="demo",
        tiles_per_aoi=10,
        chip_size=512,
        chip_overlap=64,
        sam_image_size=512,
        batch_size=4,
        train_steps=200,
    ),
    "full": Profile(
        name="full",
        data_source="spacenet",
        tiles_per_aoi=200,
        chip_size=512,
        chip_overlap=64,
        sam_checkpoint=None,
        sam_image_size=1024,
        batch_size=16,
        train_steps=20000,
    ),
}


def load_profile(name: str | Profile, **overrides: Any) -> Profile:
    """Return the profile called ``name``, with ``overrides`` replacing some of its fields.

    Args:
        name: ``"smoke"``, ``"demo"`` or ``"full"``, or a :class:`Profile` to copy.
        **overrides: field values to replace, e.g. ``tiles_per_aoi=5``.

    Raises:
        InputError: for an unknown profile name or an unknown field.
    """
    if isinstance(name, Profile):
        base = name
    elif name in PROFILES:
        base = PROFILES[name]
    else:
        raise InputError("profile", f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    known = {f.name for f in dataclasses.fields(Profile)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError("profile", f"unknown setting(s) {unknown}; known: {sorted(known)}")
    return dataclasses.replace(base, **overrides)


@dataclass(frozen=True)
class StagePaths:
    """The folder-per-stage layout under one data folder (see DESIGN.md)."""

    root: Path

    @property
    def raw(self) -> Path:
        """SpaceNet 2 layout: AOI folders with images and labels."""
        return self.root / "raw"

    @property
    def chips(self) -> Path:
        """Chips (GeoTIFF) and their index ``chips.csv``."""
        return self.root / "chips"

    @property
    def masks(self) -> Path:
        """Masks on the chip grids."""
        return self.root / "masks"

    @property
    def splits(self) -> Path:
        """Train/val/test assignment of source tiles."""
        return self.root / "splits.csv"

    @property
    def runs(self) -> Path:
        """Training runs: checkpoints, logs, metrics."""
        return self.root / "runs"

    @property
    def predictions(self) -> Path:
        """Probabilities, polygons and proposal CSVs."""
        return self.root / "predictions"

    @property
    def reports(self) -> Path:
        """Evaluation reports."""
        return self.root / "reports"


def stage_paths(data_dir: str | Path) -> StagePaths:
    """The stage folders under ``data_dir`` (nothing is created)."""
    return StagePaths(Path(data_dir))
