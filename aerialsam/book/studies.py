"""The studies of chapter 09 as the book runs them in each profile.

Which split is scored, how zero-shot SAM 2 runs, the book's shared runs and the one-city
U-Nets of the cross-city matrix (trained first when missing), and the input sizes of the
size study; the profile's :class:`~aerialsam.config.BookSettings` says what differs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from aerialsam.book.chapter_runs import book_overrides, ensure_run
from aerialsam.book.zero_shot import auto_settings
from aerialsam.config import Profile
from aerialsam.data import spacenet
from aerialsam.device import pick_device
from aerialsam.evaluation.per_city import ZeroShot


def eval_split(cfg: Profile) -> str:
    """The split the book evaluates on: the profile's ``book.eval_split``.

    ``test``, but ``val`` in ``smoke``, which has too few tiles for a test split.
    """
    return cfg.book.eval_split


def zero_shot(cfg: Profile, image_size: int | None = None) -> ZeroShot:
    """How the profile runs zero-shot SAM 2 (its variant, weights, input size, point grid).

    It runs on the profile's device, resolved (``auto`` would put fine-tuned runs on the CPU).
    """
    auto = auto_settings(cfg)
    points = cfg.book.eval_points_per_side or auto.points_per_side
    return ZeroShot(cfg.sam_variant, cfg.sam_checkpoint, image_size or cfg.sam_image_size,
                    dataclasses.replace(auto, points_per_side=points),
                    str(pick_device(cfg.device)))


def book_run(cfg: Profile, data_dir: str | Path, model: str, **changes: object) -> Path:
    """The run folder of the book's ``model`` run, trained first if unfinished.

    Chapters 07 and 08 train it with the same settings; ``changes`` alter those settings.
    """
    return ensure_run(cfg, data_dir, **{**book_overrides(cfg, model), **changes})


def city_run(cfg: Profile, data_dir: str | Path, city: str) -> Path:
    """A U-Net trained on one city only, trained first if unfinished.

    It has the book's settings, a short schedule, and is validated once at the end.
    """
    steps = cfg.book.cross_city_steps or cfg.train_steps
    return book_run(cfg, data_dir, "unet", name=f"unet_{city}", aois=(city,), steps=steps,
                    val_every=steps)


def cross_city_aois(cfg: Profile) -> tuple[str, ...]:
    """The cities of the profile's cross-city matrix."""
    return cfg.book.cross_city_aois or cfg.aois


def study_overlap(cfg: Profile, size: int) -> int:
    """Chip overlap at another chip side, in the profile's proportion (1/8 of the side)."""
    return size * cfg.chip_overlap // cfg.chip_size


def tiles_by_id(raw: str | Path) -> dict[str, spacenet.Tile]:
    """Every tile under a raw folder, by image id."""
    return {tile.image_id: tile for tile in spacenet.find_tiles(raw)}


def size_study_sizes(cfg: Profile) -> tuple[int, ...]:
    """SAM 2 input sides of the input-size study (the chip side equals the input side)."""
    return cfg.book.size_study_sizes or (cfg.sam_image_size,)
