"""Fine-tuning as the book runs it (chapters 07 and 08): settings, runs, examples, costs.

The notebooks train one SAM 2 run and one U-Net run per profile, under fixed names shared by
both chapters, so chapter 08 reuses chapter 07's SAM 2 run (and trains it when it runs alone).
A finished run is loaded, never retrained, so the book can be rebuilt at no cost.

The figures of these runs are in :mod:`aerialsam.viz_train`.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rasterio.windows import Window
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from aerialsam import runs
from aerialsam.chips import chip_windows
from aerialsam.config import Profile
from aerialsam.datasets import ChipDataset, collate_sam2
from aerialsam.embedding_cache import EmbeddingCache
from aerialsam.errors import InputError
from aerialsam.models.lora import add_lora
from aerialsam.models.sam2 import build_model as build_sam2
from aerialsam.models.sam2 import feature_sizes
from aerialsam.models.sam2_batch import Features, decode_semantic
from aerialsam.predict import Sam2Semantic
from aerialsam.splits import DEFAULT_FRACTIONS
from aerialsam.train import RunResult, TrainData, train
from aerialsam.train_config import TrainConfig
from aerialsam.train_tasks import Sam2Task
from aerialsam.validate import UNetChips

log = logging.getLogger(__name__)

BOOK_OVERRIDES: dict[str, dict[str, Any]] = {
    # two cities (each smoke city has one train or val tile without buildings) and a 128 px
    # SAM 2 input keep the smoke notebooks within seconds
    "smoke": {"aois": ("AOI_2_Vegas", "AOI_4_Shanghai"), "image_size": 128},
    # 256 px instead of the profile's 512 px (a quarter of the encoder's cost) and 100 steps
    # instead of 200: a few minutes per model on a CPU
    "demo": {"image_size": 256, "steps": 100, "val_every": 25},
    "full": {"val_every": 1000},
}
"""What the book's runs change in each profile's training configuration, and why."""

ENCODER_GFLOP_1024 = 207.0
"""Forward GFLOP of SAM 2.1 tiny's image encoder on one 1024 px image."""
H100_BF16_TFLOPS = 989.0
"""An H100 SXM's dense bf16 tensor-core peak (NVIDIA's datasheet), TFLOP/s."""


def book_overrides(profile: Profile, model: str = "sam2") -> dict[str, Any]:
    """The ``from_profile`` overrides of the book's run of ``model`` (``sam2`` or ``unet``)."""
    name = "book_sam2" if model == "sam2" else "book_unet"
    return {"model": model, "name": name, **BOOK_OVERRIDES.get(profile.name, {})}


def config_table(config: TrainConfig) -> pd.DataFrame:
    """The configuration as a one-column table (the U-Net's SAM-only fields left out)."""
    values = config.to_dict()
    values.pop("extra")
    if config.model == "unet":
        for key in ("regime", "prompt", "variant", "checkpoint", "image_size", "max_prompts",
                    "box_jitter", "lora_rank", "lora_alpha", "iou_loss_weight",
                    "encoder_lr_scale", "embedding_cache"):
            values.pop(key)
    else:
        values.pop("unet_features")
    return pd.DataFrame({"value": [str(v) for v in values.values()]},
                        index=pd.Index(list(values), name=config.run_name))


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


def read_metrics(run_dir: str | Path) -> pd.DataFrame:
    """A run's ``metrics.csv`` (one row per logged step and split)."""
    return pd.read_csv(Path(run_dir) / runs.METRICS_FILE)


def final_scores(run_dirs: dict[str, Path]) -> pd.DataFrame:
    """Final validation numbers of finished runs, from their ``run.json``."""
    rows = {}
    for label, run_dir in run_dirs.items():
        run = runs.read_run(run_dir)
        metrics = read_metrics(run_dir)
        rows[label] = {"steps": run["step"], "val pixel IoU": run["metrics"]["val_pixel_iou"],
                       "val SpaceNet F1": run["metrics"]["val_f1"],
                       "threshold": run["threshold"], "val loss": run["metrics"]["val_loss"],
                       "train seconds": metrics.loc[metrics["split"] == "train",
                                                    "seconds"].max()}
    return pd.DataFrame(rows).T.rename_axis("run")


@dataclass
class Examples:
    """A few validation chips: uint8 images (N, H, W, 3), footprints (N, H, W), ids."""

    images: np.ndarray
    truth: np.ndarray
    chip_ids: list[str]


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


def chip_probabilities(model: nn.Module, config: TrainConfig, images: np.ndarray) -> np.ndarray:
    """Footprint probabilities (N, H, W) of uint8 chips, as validation predicts them.

    Raises:
        InputError: a SAM 2 model trained with prompts (it needs prompts to predict).
    """
    if config.model == "sam2" and config.prompt != "none":
        raise InputError(config.run_name, "prompt-trained models need prompts; the book's "
                                          "examples show the `none` mode")
    chip_model = UNetChips(model) if config.model == "unet" else Sam2Semantic(model)
    windows = [Window(0, 0, images.shape[2], images.shape[1])] * len(images)
    probs = chip_model(images, windows)
    return probs[:, 0] if probs.ndim == 4 else probs


def before_after(config: TrainConfig, run_dir: str | Path,
                 examples: Examples) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of the run's starting weights and of its final model on the examples."""
    start = runs.build_model(config).eval()
    final, _ = runs.load_run_model(run_dir, "cpu")
    with torch.inference_mode():
        return (chip_probabilities(start, config, examples.images),
                chip_probabilities(final, config, examples.images))


def trainable_parameters(config: TrainConfig) -> pd.DataFrame:
    """Parameters each SAM 2 regime trains (counted on the model ``config`` builds)."""
    model = runs.build_model(dataclasses.replace(config, regime="full"))
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


def _timed_steps(task: Sam2Task, batches: Sequence[dict]) -> float:
    """Seconds per training step (forward and backward) over ``batches``."""
    started = time.perf_counter()
    for batch in batches:
        loss, _ = task(batch)
        loss.backward()
    return (time.perf_counter() - started) / len(batches)


def cache_timing(config: TrainConfig, data: TrainData, batches: int = 2) -> pd.DataFrame:
    """Measured seconds per ``decoder`` training step without and with the embedding cache.

    The cache lives in a temporary folder: the first pass misses (encodes and writes), the
    second hits (reads). The run's own cache is left alone.
    """
    model = runs.build_model(dataclasses.replace(config, regime="decoder"))
    train_set = ChipDataset(data.chips, data.masks, data.splits, "train", config.aois,
                            ("footprint", "contact"))
    size = config.batch_size
    items = [train_set[i] for i in range(min(len(train_set), batches * size))]
    chunks = [collate_sam2(items[i:i + size], config.image_size)
              for i in range(0, len(items), size)]
    files = {str(c): data.chips / str(p) for c, p in zip(train_set.chips["chip_id"],
                                                         train_set.chips["path"], strict=True)}
    _timed_steps(Sam2Task(model, config), chunks[:1])  # warm-up, not counted
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(tmp, model, files)
        rows = {"no cache: encoder every step": _timed_steps(Sam2Task(model, config), chunks)}
        cached = Sam2Task(model, config, cache)
        rows["cache, first epoch (encode and write)"] = _timed_steps(cached, chunks)
        rows["cache, later epochs (read)"] = _timed_steps(cached, chunks)
        disk = sum(p.stat().st_size for p in Path(tmp).glob("*.pt")) / max(1, len(items))
    table = pd.DataFrame({"seconds per step": rows})
    table["speed-up"] = table["seconds per step"].iloc[0] / table["seconds per step"]
    table.attrs.update(hits=cache.hits, misses=cache.misses, kib_per_chip=disk / 1024)
    return table


def run_cache_savings(table: pd.DataFrame, config: TrainConfig, train_chips: int) -> pd.Series:
    """What the cache saves over a whole run, from :func:`cache_timing`'s figures."""
    per_epoch = max(1, train_chips // config.batch_size)
    first = min(per_epoch, config.steps)
    seconds = table["seconds per step"]
    without = config.steps * seconds.iloc[0]
    with_cache = first * seconds.iloc[1] + (config.steps - first) * seconds.iloc[2]
    return pd.Series({"steps": config.steps, "steps per epoch": per_epoch,
                      "seconds without cache": round(without, 1),
                      "seconds with cache": round(with_cache, 1),
                      "speed-up": round(without / with_cache, 2)}, name="whole run (projected)")


def decoder_gflop(config: TrainConfig, image_size: int = 1024) -> float:
    """Forward GFLOP of SAM 2's mask decoder (no prompt) for one image, counted by torch."""
    model = build_sam2(config.variant, image_size)  # random weights: FLOPs do not depend on them
    sizes = feature_sizes(image_size)
    decoder = model.sam_mask_decoder
    dims = [decoder.conv_s0.out_channels, decoder.conv_s1.out_channels]
    feats = Features(torch.zeros(1, model.sam_prompt_encoder.embed_dim, *sizes[-1]),
                     [torch.zeros(1, d, *s) for d, s in zip(dims, sizes[:-1], strict=True)])
    model.requires_grad_(False)  # (FlopCounterMode's module hooks fail under no_grad)
    counter = FlopCounterMode(display=False)
    with counter:
        decode_semantic(model, feats)
    return counter.get_total_flops() / 1e9


def profile_train_chips(profile: Profile, tile_side: int = 650) -> int:
    """Training chips a profile makes: SpaceNet 2 tiles (650 px) per AOI, chips per tile, and
    the train fraction of the splits (an estimate before the data exist)."""
    per_tile = len(chip_windows(tile_side, tile_side, profile.chip_size, profile.chip_overlap))
    tiles = (profile.tiles_per_aoi or 0) * len(profile.aois)
    return round(tiles * per_tile * DEFAULT_FRACTIONS[0])


def gpu_estimate(steps: int, batch_size: int, decoder_gflops: float, train_chips: int,
                 efficiency: float = 0.3) -> pd.DataFrame:
    """Compute time of a 1024 px SAM 2 tiny run on one H100 at ``efficiency`` of its bf16 peak.

    A training step costs about three forward passes (forward, and a backward of twice its
    cost); a frozen encoder costs one forward per chip (cached) and nothing afterwards.
    """
    images = steps * batch_size
    full = 3 * (ENCODER_GFLOP_1024 + decoder_gflops) * images
    decoder = ENCODER_GFLOP_1024 * train_chips + 3 * decoder_gflops * images
    rate = H100_BF16_TFLOPS * 1e3 * efficiency
    return pd.DataFrame({"PFLOP": [full / 1e6, decoder / 1e6],
                         "minutes": [full / rate / 60, decoder / rate / 60]},
                        index=pd.Index(["full", "decoder (cached encoder)"], name="regime")
                        ).round(2)


def curve_summary(metrics: pd.DataFrame) -> pd.DataFrame:
    """Where the curves start and end: train loss (mean of the first and last tenth of the
    steps) and each validation number at its first and last evaluation."""
    train_rows = metrics[metrics["split"] == "train"]
    val_rows = metrics[metrics["split"] == "val"]
    tenth = max(1, len(train_rows) // 10)
    rows = {"train loss": (train_rows["loss"].head(tenth).mean(),
                           train_rows["loss"].tail(tenth).mean())}
    for column, label in (("loss", "val loss"), ("pixel_iou", "val pixel IoU"),
                          ("f1", "val SpaceNet F1")):
        if not val_rows.empty:
            rows[label] = (val_rows[column].iloc[0], val_rows[column].iloc[-1])
    table = pd.DataFrame(rows, index=["start", "end"]).T
    table.attrs["val_steps"] = val_rows["step"].tolist()
    return table.round(3)
