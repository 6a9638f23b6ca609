"""Fine-tuning as the book shows it (chapters 07 and 08): tables, examples, parameters.

The runs themselves are trained or reused by :mod:`aerialsam.book.chapter_runs` (one SAM 2
run and one U-Net run per profile, shared by the chapters); this module reads them: the
configuration as a table, the metrics and final scores, validation examples before and after
training, what each SAM 2 regime trains. What the runs cost is in :mod:`aerialsam.book.costs`,
the figures in :mod:`aerialsam.viz.curves`.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from aerialsam.models.lora import add_lora
from aerialsam.training import runs
from aerialsam.training.datasets import ChipDataset
from aerialsam.training.kinds import KINDS, kind_of
from aerialsam.training.loop import TrainData
from aerialsam.training.train_config import TrainConfig
from aerialsam.training.validation import Examples, chip_probabilities

log = logging.getLogger(__name__)


def config_table(config: TrainConfig) -> pd.DataFrame:
    """The configuration as a one-column table (the U-Net's SAM-only fields left out)."""
    values = config.to_dict()
    values.pop("extra")
    kind = kind_of(config)
    for other in KINDS.values():
        for key in set(other.own_fields) - set(kind.own_fields):
            values.pop(key, None)
    return pd.DataFrame({"value": [str(v) for v in values.values()]},
                        index=pd.Index(list(values), name=config.run_name))


def read_metrics(run_dir: str | Path) -> pd.DataFrame:
    """A run's ``metrics.csv`` (one row per logged step and split)."""
    return pd.read_csv(Path(run_dir) / runs.METRICS_FILE)


def final_scores(run_dirs: dict[str, Path]) -> pd.DataFrame:
    """Final validation numbers of finished runs, from their ``run.json``.

    The score is the task's: SpaceNet F1 for building runs, APLS for road runs (whose
    threshold is that of their tuned graph setting).
    """
    rows = {}
    for label, run_dir in run_dirs.items():
        run = runs.read_run(run_dir)
        metrics = read_metrics(run_dir)
        roads = run["config"].task == "roads"
        threshold = run.get("road_graph", {}).get("threshold") if roads else run["threshold"]
        rows[label] = {"steps": run["step"], "val pixel IoU": run["metrics"]["val_pixel_iou"],
                       "val APLS" if roads else "val SpaceNet F1":
                           run["metrics"]["val_apls" if roads else "val_f1"],
                       "threshold": threshold, "val loss": run["metrics"]["val_loss"],
                       "train seconds": metrics.loc[metrics["split"] == "train",
                                                    "seconds"].max()}
    return pd.DataFrame(rows).T.rename_axis("run")


def trainable_parameters(config: TrainConfig) -> pd.DataFrame:
    """Parameters each SAM 2 regime trains (counted on the model ``config`` builds)."""
    model = kind_of(config).build(dataclasses.replace(config, regime="full"))
    counts = {"image encoder": 0, "decoder and prompt encoder": 0}
    for name, param in model.named_parameters():
        if param.requires_grad:
            part = "image encoder" if name.startswith("image_encoder.") else \
                "decoder and prompt encoder"
            counts[part] += param.numel()
    add_lora(model.image_encoder, config.lora_rank, config.lora_alpha, config.seed)
    adapters = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    decoder = counts["decoder and prompt encoder"]
    table = pd.DataFrame({
        "image encoder": [0, counts["image encoder"], adapters],
        "decoder and prompt encoder": [decoder] * 3,
    }, index=pd.Index(["decoder", "full", "lora"], name="regime"))
    table["trained"] = table.sum(axis=1)
    return table


def curve_summary(metrics: pd.DataFrame) -> pd.DataFrame:
    """Where the curves start and end.

    Train loss (mean of the first and last tenth of the steps) and each validation number at
    its first and last evaluation.
    """
    train_rows = metrics[metrics["split"] == "train"]
    val_rows = metrics[metrics["split"] == "val"]
    tenth = max(1, len(train_rows) // 10)
    rows = {"train loss": (train_rows["loss"].head(tenth).mean(),
                           train_rows["loss"].tail(tenth).mean())}
    for column, label in (("loss", "val loss"), ("pixel_iou", "val pixel IoU"),
                          ("f1", "val SpaceNet F1"), ("apls", "val APLS")):
        if column in val_rows and val_rows[column].notna().any():
            rows[label] = (val_rows[column].iloc[0], val_rows[column].iloc[-1])
    table = pd.DataFrame(rows, index=["start", "end"]).T
    table.attrs["val_steps"] = val_rows["step"].tolist()
    return table.round(3)


def val_examples(data: TrainData, config: TrainConfig, count: int = 3) -> Examples:
    """The ``count`` validation chips with the most building pixels."""
    dataset = ChipDataset(data.chips, data.masks, data.splits, "val", config.aois)
    items = [dataset[i] for i in range(len(dataset))]
    order = np.argsort([-float(item["footprint"].sum()) for item in items])[:count]
    chosen = [items[i] for i in order]
    images = np.stack([(item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                       for item in chosen])
    truth = np.stack([item["footprint"][0].numpy() for item in chosen])
    return Examples(images, truth, [item["chip_id"] for item in chosen])


def before_after(config: TrainConfig, run_dir: str | Path,
                 examples: Examples) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of the run's starting weights and of its final model on the examples."""
    start = kind_of(config).build(config).eval()
    final, _ = runs.load_run_model(run_dir, "cpu")
    with torch.inference_mode():
        return (chip_probabilities(start, config, examples.images),
                chip_probabilities(final, config, examples.images))
