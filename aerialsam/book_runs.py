"""The fine-tuning runs the book's notebooks share: trained once, then reused.

Notebooks 07, 08 and 09 each need the profile's SAM 2 and U-Net runs, and each must also run
alone on an empty data folder. :func:`ensure_run` trains a run when its folder has no final
model, resumes one that was interrupted, and otherwise just returns it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from aerialsam.config import Profile, load_profile, stage_paths
from aerialsam.datasets import prepare_training_data
from aerialsam.runs import CHECKPOINTS, LAST, MODEL_FILE, RUN_FILE
from aerialsam.train import TrainData, train
from aerialsam.train_config import TrainConfig, from_profile

log = logging.getLogger(__name__)


def book_config(profile: str | Profile, model: str = "sam2", **overrides: Any) -> TrainConfig:
    """The training configuration of the book's ``model`` run in ``profile``.

    The profile's ``extra["train"]`` (e.g. a shorter demo schedule) applies to both models.
    """
    return from_profile(profile, model=model, **overrides)


def ensure_run(profile: str | Profile, data_dir: str | Path, model: str = "sam2",
               **overrides: Any) -> Path:
    """The run folder of the book's ``model`` run: trained (or resumed) only if unfinished.

    Returns:
        ``data_dir/runs/<run name>`` holding ``model.pt`` and ``run.json``.
    """
    profile = load_profile(profile)
    config = book_config(profile, model, **overrides)
    run_dir = stage_paths(data_dir).runs / config.run_name
    if (run_dir / MODEL_FILE).exists():
        log.info("reusing the finished run %s", run_dir)
        return run_dir
    data = TrainData(*prepare_training_data(profile, data_dir))
    resume = (run_dir / CHECKPOINTS / LAST).exists()
    if (run_dir / RUN_FILE).exists() and not resume:
        log.warning("%s stopped before its first checkpoint: starting it again", run_dir)
        shutil.rmtree(run_dir)
    train(config, data, run_dir, resume=resume)
    return run_dir
