"""The fine-tuning runs the book's notebooks share: trained once, then reused.

Notebooks 07, 08 and 09 each need the profile's SAM 2 and U-Net runs, and each must also run
alone on an empty data folder. :func:`ensure_run` trains a run when its folder has no final
model, resumes one that was interrupted, and otherwise just returns it (see
:func:`aerialsam.train_book.train_or_load`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aerialsam.config import Profile, load_profile, stage_paths
from aerialsam.datasets import prepare_training_data
from aerialsam.train import TrainData
from aerialsam.train_book import train_or_load
from aerialsam.train_config import from_profile

log = logging.getLogger(__name__)


def ensure_run(profile: str | Profile, data_dir: str | Path, model: str = "sam2",
               **overrides: Any) -> Path:
    """The run folder of a ``model`` run of ``profile``: trained, resumed or reused.

    Args:
        profile: the run profile (its size, steps, batch and seed).
        data_dir: the data folder; the run goes to ``data_dir/runs/<run name>``.
        model: ``sam2`` or ``unet``.
        **overrides: :class:`~aerialsam.train_config.TrainConfig` keys (``name``, ``aois``, …).

    Raises:
        InputError: the folder holds a run with other settings.
    """
    profile = load_profile(profile)
    config = from_profile(profile, model=model, **overrides)
    data = TrainData(*prepare_training_data(profile, data_dir))
    return train_or_load(config, data, stage_paths(data_dir).runs).run_dir
