"""The studies of chapter 09 as the book runs them in each profile.

Which split is scored, how zero-shot SAM 2 runs, the book's shared runs and the one-city
U-Nets of the cross-city matrix (trained first when missing), and the input sizes of the
size study; the profile's :class:`~aerialsam.config.BookSettings` says what differs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from aerialsam.book.chapter_runs import book_overrides, ensure_run
from aerialsam.book.zero_shot import auto_settings
from aerialsam.config import Profile, stage_paths
from aerialsam.data import spacenet
from aerialsam.device import pick_device
from aerialsam.evaluation import per_city
from aerialsam.evaluation.per_city import ZeroShot
from aerialsam.prep.stretch import STRETCH_FILE


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


def headline_models(cfg: Profile, data_dir: str | Path) -> list[str]:
    """The models of the headline table: zero-shot SAM 2, its oracle, the book's two runs.

    The runs (fine-tuned SAM 2 and the U-Net of chapters 07 and 08) are trained first when
    unfinished.
    """
    return ["sam2-auto", "sam2-oracle", str(book_run(cfg, data_dir, "sam2")),
            str(book_run(cfg, data_dir, "unet"))]


def evaluate_headline(cfg: Profile, data_dir: str | Path, models: list[str]) -> pd.DataFrame:
    """:func:`aerialsam.evaluation.per_city.evaluate` as the book runs it, into ``reports/cities``.

    The profile's split, zero-shot settings, chip overlap and batch; predictions already in
    the report are reused (with the time recorded when they were made).
    """
    paths = stage_paths(data_dir)
    return per_city.evaluate(models, paths.splits, paths.reports / "cities", eval_split(cfg),
                             zero_shot=zero_shot(cfg), stretch_path=paths.chips / STRETCH_FILE,
                             overlap=cfg.chip_overlap, batch_size=cfg.batch_size)


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


def size_study(cfg: Profile, data_dir: str | Path, headline: pd.DataFrame
               ) -> dict[int, pd.DataFrame]:
    """The oracle evaluated at each input size of the study, by size (``reports/input_<px>``).

    At the profile's own input size, on a chip grid and cities the headline evaluation
    already used, the study would only repeat it: the headline's oracle row stands in.
    """
    paths = stage_paths(data_dir)
    study = {}
    for size in size_study_sizes(cfg):
        same_grid = size == cfg.sam_image_size == cfg.chip_size
        if same_grid and cfg.book.size_study_aois is None:
            study[size] = headline[headline["model"] == "sam2-oracle"]
            continue
        study[size] = per_city.evaluate(
            ["sam2-oracle"], paths.splits, paths.reports / f"input_{size}", eval_split(cfg),
            aois=cfg.book.size_study_aois, zero_shot=zero_shot(cfg, size),
            stretch_path=paths.chips / STRETCH_FILE, batch_size=cfg.batch_size,
            overlap=study_overlap(cfg, size))
    return study
