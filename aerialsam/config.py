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
from aerialsam.inputs import check_fields

AOIS: tuple[str, ...] = ("AOI_2_Vegas", "AOI_3_Paris", "AOI_4_Shanghai", "AOI_5_Khartoum")


@dataclass(frozen=True)
class RoadBookSettings:
    """What chapter 11 (road models) trains and evaluates; ``None``: as the profile says.

    Attributes:
        aois: cities the runs train on and are scored on.
        unet_steps: optimiser steps of both U-Net runs (with and without clDice alike, so
            that the loss term is the only difference).
        sam2_steps: optimiser steps of the SAM 2 run.
        image_size: input side of the runs, SAM 2's and the U-Nets' alike (the models see
            chips at one resolution), and of zero-shot SAM 2 (``None``: SAM 2 at the
            profile's size, the U-Nets at the chip's).
        batch_size: chips per step.
        lr: the runs' learning rate (``None``: the configuration's default).
        val_every: steps between validations (``None``: once, at the end).
        cldice_weight: weight of the clDice term of the ``unet_cldice`` run.
        auto_points_per_side: zero-shot SAM 2's automatic point grid per chip side.
        cross_city: whether the chapter draws the cross-city matrix (one U-Net per city,
            each scored on every city); a profile that cannot afford it says ``False``.
        cross_city_steps: optimiser steps of each one-city U-Net (``None``: ``unet_steps``).
    """

    aois: tuple[str, ...] | None = None
    unet_steps: int | None = None
    sam2_steps: int | None = None
    image_size: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    val_every: int | None = None
    cldice_weight: float = 0.5
    auto_points_per_side: int = 32
    cross_city: bool = True
    cross_city_steps: int | None = None


@dataclass(frozen=True)
class BookSettings:
    """What the book's chapters do in a profile beyond its data and model sizes, and why.

    ``None`` means "as the profile says" (its steps, its cities, its input size).

    Attributes:
        eval_split: the split chapter 09 scores on (``smoke`` has too few tiles for a test
            split and scores its validation tiles).
        run_aois: cities of the chapters' shared fine-tuning runs (chapters 07 to 09).
        run_image_size: input side of those runs: SAM 2's, and the U-Net's too (both see
            the chips at the same resolution; ``None``: SAM 2 at the profile's size, the U-Net
            at the chip's).
        run_steps: their optimisation steps.
        run_val_every: their validation interval in steps.
        auto_points_per_side: chapter 06's automatic-mask point grid per chip side.
        auto_tiles_per_aoi: tiles per city chapter 06's automatic generator runs on (its
            slowest mode).
        oracle_tiles_per_aoi: tiles per city of chapter 06's oracle (``None``: all).
        count_all_variants: whether chapter 06's variant table counts every SAM 2.1 size
            (building the large one costs seconds a smoke run does not have).
        eval_points_per_side: chapter 09's automatic-mask point grid, where it differs from
            chapter 06's (every held-out tile of every city goes through the generator there).
        cross_city_aois: cities of chapter 09's cross-city matrix.
        cross_city_steps: training steps of each one-city U-Net of that matrix.
        size_study_sizes: SAM 2 input sides of chapter 09's input-size study (``()``: the
            profile's own input size only).
        size_study_aois: cities of the input-size study.
        roads: what chapter 11 (road models) trains and evaluates.
    """

    eval_split: str = "test"
    run_aois: tuple[str, ...] | None = None
    run_image_size: int | None = None
    run_steps: int | None = None
    run_val_every: int | None = None
    auto_points_per_side: int = 32
    auto_tiles_per_aoi: int | None = None
    oracle_tiles_per_aoi: int | None = None
    count_all_variants: bool = True
    eval_points_per_side: int | None = None
    cross_city_aois: tuple[str, ...] | None = None
    cross_city_steps: int | None = None
    size_study_sizes: tuple[int, ...] = ()
    size_study_aois: tuple[str, ...] | None = None
    roads: RoadBookSettings = field(default_factory=RoadBookSettings)

    def run_overrides(self, model: str = "sam2") -> dict[str, Any]:
        """What the chapters' shared ``model`` runs change in the profile's configuration."""
        size = "unet_input_size" if model == "unet" else "image_size"
        keys = {"aois": self.run_aois, size: self.run_image_size,
                "steps": self.run_steps, "val_every": self.run_val_every}
        return {key: value for key, value in keys.items() if value is not None}


@dataclass(frozen=True)
class Profile:
    """Every parameter that differs between the smoke, demo and full runs.

    Attributes:
        name: the profile's name.
        data_source: ``"demo"`` for synthetic AOIs made by :mod:`aerialsam.data.demo`,
            ``"spacenet"`` for the real SpaceNet 2 download.
        tiles_per_aoi: how many tiles of each AOI to make or download (``None``: all of them).
        road_tiles_per_aoi: the same for SpaceNet 3 road tiles (1300 px, four times the area
            of a SpaceNet 2 tile).
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
        book: what the book's chapters do in this profile (:class:`BookSettings`).
        synthetic: whether the numbers this profile produces come from synthetic data.
    """

    name: str
    data_source: Literal["demo", "spacenet"]
    tiles_per_aoi: int | None
    road_tiles_per_aoi: int | None = None
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
    book: BookSettings = field(default_factory=BookSettings)

    @property
    def synthetic(self) -> bool:
        """True when the profile's data are the synthetic demo AOIs."""
        return self.data_source == "demo"


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        data_source="demo",
        tiles_per_aoi=3,
        # three road tiles per city: one each to train on, to validate and to test
        road_tiles_per_aoi=3,
        chip_size=256,
        chip_overlap=32,
        sam_image_size=256,
        batch_size=2,
        train_steps=4,
        book=BookSettings(
            # three tiles per city leave no test tile: evaluate on the validation tiles
            eval_split="val",
            # two cities (each smoke city has one train or val tile without buildings) and a
            # 128 px SAM 2 input keep the smoke notebooks within seconds
            run_aois=("AOI_2_Vegas", "AOI_4_Shanghai"), run_image_size=128,
            auto_points_per_side=4, auto_tiles_per_aoi=1, oracle_tiles_per_aoi=1,
            count_all_variants=False, eval_points_per_side=2,
            # the other two cities' validation tiles hold no building: a 2 x 2 matrix says
            # as much, faster
            cross_city_aois=("AOI_3_Paris", "AOI_4_Shanghai"), cross_city_steps=2,
            size_study_sizes=(128, 256), size_study_aois=("AOI_3_Paris",),
            # one city, 4 steps, a 128 px SAM 2: seconds of training; the final validations
            # and the evaluation (graphs of whole 1300 px tiles) are most of chapter 11's time
            roads=RoadBookSettings(aois=("AOI_2_Vegas",), unet_steps=4, sam2_steps=4,
                                   image_size=128, batch_size=2, auto_points_per_side=2)),
    ),
    "demo": Profile(
        name="demo",
        data_source="demo",
        tiles_per_aoi=10,
        road_tiles_per_aoi=3,
        chip_size=512,
        chip_overlap=64,
        sam_image_size=512,
        batch_size=4,
        train_steps=200,
        book=BookSettings(
            # 256 px input instead of the profile's 512 px chips (a quarter of SAM 2's encoder
            # cost and of the U-Net's) and 100 steps instead of 200: a few minutes per model
            # on a CPU
            run_image_size=256, run_steps=100, run_val_every=25,
            # random weights: the automatic masks cannot find buildings; a 4 x 4 point grid
            # (16 prompts a chip, not 64) on one tile per city shows the generator at work
            auto_points_per_side=4, auto_tiles_per_aoi=1, oracle_tiles_per_aoi=3,
            cross_city_steps=60, size_study_sizes=(128, 256, 512),
            # four cities, one training tile each (36 chips of 512 px), a higher rate for runs
            # this short. Measured on one CPU core: a U-Net step of 2 chips about 2.6 s, 4.3 s
            # with clDice; a cached SAM 2 decoder step 0.2 s; each run's final validation
            # about 45 s
            roads=RoadBookSettings(unet_steps=20, sam2_steps=60, image_size=256,
                                   batch_size=2, lr=1e-3, auto_points_per_side=2)),
    ),
    "full": Profile(
        name="full",
        data_source="spacenet",
        tiles_per_aoi=200,
        road_tiles_per_aoi=50,
        chip_size=512,
        chip_overlap=64,
        sam_checkpoint=None,
        sam_image_size=1024,
        batch_size=16,
        train_steps=20000,
        book=BookSettings(run_val_every=1000, auto_tiles_per_aoi=25,
                          size_study_sizes=(256, 512, 1024),
                          # real SpaceNet 3 tiles on a GPU: the profile's steps and input
                          roads=RoadBookSettings(val_every=1000)),
    ),
}


def load_profile(name: str | Profile,
                 **overrides: Any) -> Profile:  # noqa: ANN401 (any Profile field)
    """Return the profile called ``name``, with ``overrides`` replacing some of its fields.

    Args:
        name: ``"smoke"``, ``"demo"`` or ``"full"``, or a :class:`Profile` to copy.
        **overrides: field values to replace, e.g. ``tiles_per_aoi=5``.

    Raises:
        InputError: for an unknown profile name, an unknown field, or an override whose type
            the field's annotation refuses (:func:`aerialsam.inputs.check_fields`).
    """
    if isinstance(name, Profile):
        base = name
    elif isinstance(name, str) and name in PROFILES:
        base = PROFILES[name]
    else:
        raise InputError("profile", f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    known = {f.name for f in dataclasses.fields(Profile)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError("profile", f"unknown setting(s) {unknown}; known: {sorted(known)}")
    return dataclasses.replace(base, **check_fields(Profile, overrides, "profile"))


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
    def road_chips(self) -> Path:
        """Chips of the SpaceNet 3 road tiles (their own grid and index)."""
        return self.root / "road_chips"

    @property
    def road_masks(self) -> Path:
        """Road masks on the road chips' grids."""
        return self.root / "road_masks"

    @property
    def road_splits(self) -> Path:
        """Train/val/test assignment of the road tiles."""
        return self.root / "road_splits.csv"

    def training_data(self, task: str) -> tuple[Path, Path, Path]:
        """``(chips, masks, splits)`` of a task: ``buildings`` or ``roads``.

        Raises:
            InputError: another task name.
        """
        if task == "roads":
            return self.road_chips, self.road_masks, self.road_splits
        if task == "buildings":
            return self.chips, self.masks, self.splits
        raise InputError("task", f"unknown task {task!r}; choose buildings or roads")

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
