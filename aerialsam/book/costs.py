"""What fine-tuning costs, measured here and projected to a GPU (book chapter 07).

Seconds per training step with and without the embedding cache (measured on this machine),
what the cache saves over a whole run, the mask decoder's FLOPs (counted by torch), the
training chips a profile makes, and the compute time of a 1024 px run on an H100 at a stated
fraction of its bf16 peak.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from aerialsam.config import Profile
from aerialsam.models.sam2 import feature_sizes, random_sam2
from aerialsam.models.sam2_calls import Features, decode_semantic
from aerialsam.prep.chips import chip_windows
from aerialsam.prep.splits import DEFAULT_FRACTIONS
from aerialsam.training.datasets import ChipDataset, collate_sam2
from aerialsam.training.embedding_cache import EmbeddingCache
from aerialsam.training.kinds import kind_of
from aerialsam.training.loop import TrainData
from aerialsam.training.tasks import Sam2Task
from aerialsam.training.train_config import TrainConfig

ENCODER_GFLOP_1024 = 207.0
"""Forward GFLOP of SAM 2.1 tiny's image encoder on one 1024 px image."""


H100_BF16_TFLOPS = 989.0
"""An H100 SXM's dense bf16 tensor-core peak (NVIDIA's datasheet), TFLOP/s."""


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
    model = kind_of(config).build(dataclasses.replace(config, regime="decoder"))
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
    model = random_sam2(config.variant, image_size)  # random weights: FLOPs do not depend on them
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
    """Training chips a profile makes (an estimate before the data exist).

    SpaceNet 2 tiles (650 px) per AOI, chips per tile, and the train fraction of the splits.
    """
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
