"""The fine-tuning runs the book's notebooks share: trained once, then reused.

Notebooks 07, 08 and 09 each need the profile's SAM 2 and U-Net runs, and each must also run
alone on an empty data folder; the road chapter (11) trains its road runs the same way
(``task="roads"``, on the SpaceNet 3 chips). :func:`ensure_run` trains a run when its folder
has no final model, resumes one that was interrupted, and otherwise just returns it (see
:func:`train_or_load`).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from aerialsam.config import Profile, load_profile, stage_paths
from aerialsam.errors import InputError
from aerialsam.training import runs
from aerialsam.training.datasets import prepare_training_data
from aerialsam.training.loop import RunResult, TrainData, train
from aerialsam.training.train_config import TrainConfig, from_profile

log = logging.getLogger(__name__)


def ensure_run(profile: str | Profile, data_dir: str | Path, model: str = "sam2",
               **overrides: Any) -> Path:  # noqa: ANN401 (any TrainConfig field)
    """The run folder of a ``model`` run of ``profile``: trained, resumed or reused.

    Args:
        profile: the run profile (its size, steps, batch and seed).
        data_dir: the data folder; the run goes to ``data_dir/runs/<run name>``.
        model: ``sam2`` or ``unet``.
        **overrides: :class:`~aerialsam.training.train_config.TrainConfig` keys (``name``,
            ``aois``, ``task``, …); a ``roads`` run trains on the road chips.

    Raises:
        InputError: the folder holds a run with other settings.
    """
    profile = load_profile(profile)
    config = from_profile(profile, model=model, **overrides)
    data = TrainData(*prepare_training_data(profile, data_dir, task=config.task))
    return train_or_load(config, data, stage_paths(data_dir).runs).run_dir


def book_overrides(profile: Profile, model: str = "sam2") -> dict[str, Any]:
    """The ``from_profile`` overrides of the book's run of ``model`` (``sam2`` or ``unet``).

    Its name and the profile's :meth:`~aerialsam.config.BookSettings.run_overrides`.
    """
    return {"model": model, "name": f"book_{model}", **profile.book.run_overrides(model)}


def train_or_load(config: TrainConfig, data: TrainData, runs_dir: str | Path) -> RunResult:
    """Train ``config`` into ``runs_dir/<run_name>``, or load the run when it has finished.

    An interrupted run (a checkpoint but no ``model.pt``) is resumed; a folder whose run
    never reached its first checkpoint is started again.

    Raises:
        InputError: the folder holds a run with other settings (delete it to retrain).
    """
    run_dir = Path(runs_dir) / config.run_name
    if (run_dir / runs.RUN_FILE).is_file():
        saved = runs.read_run(run_dir)
        if saved["config"].to_dict() != config.to_dict():
            changed = sorted(k for k, v in config.to_dict().items()
                             if saved["config"].to_dict()[k] != v)
            raise InputError(run_dir, f"holds a run with other settings ({', '.join(changed)});"
                                      " delete the folder to train this configuration")
        if (run_dir / runs.MODEL_FILE).is_file():
            log.info("%s has finished already: loading it", run_dir)
            return RunResult(run_dir, int(saved["step"]), saved["metrics"])
        if (run_dir / runs.CHECKPOINTS / runs.LAST).is_file():
            return train(config, data, run_dir, resume=True)
        log.warning("%s stopped before its first checkpoint: starting it again", run_dir)
        shutil.rmtree(run_dir)
    return train(config, data, run_dir)
