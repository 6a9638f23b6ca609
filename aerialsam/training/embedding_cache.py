"""Image-encoder features computed once per chip and reused across epochs (``decoder`` regime).

With a frozen encoder, a chip's features never change, yet the encoder is about 90 % of
SAM 2's compute: caching them makes each later epoch a decoder-only pass. Entries live on
disk under a folder keyed by the model (variant, input size, checkpoint contents), and each
entry records the chip file's size and modification time, so a changed chip, model or
checkpoint is recomputed, never silently reused. Features are stored in float16 (half the
disk, well within the decoder's tolerance); writes are atomic.

The cache only holds features of un-augmented chips, so training with it turns image
augmentations off (the loop says so).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from sam2.modeling.sam2_base import SAM2Base

from aerialsam.io import atomic_path
from aerialsam.models.sam2_calls import Features, encode

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_HASH_CHUNK = 1 << 22


def checkpoint_identity(checkpoint: str | Path | None, seed: int = 0) -> str:
    """What the weights are: a hash of the checkpoint file, or ``random-<seed>``."""
    if checkpoint in (None, "random"):
        return f"random-{seed}" if checkpoint == "random" else "official"
    digest = hashlib.sha256()
    with Path(checkpoint).open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def model_key(variant: str, image_size: int, weights: str) -> str:
    """The cache folder name of a model: variant, size and a hash of everything else."""
    text = json.dumps({"variant": variant, "image_size": image_size, "weights": weights,
                       "format": FORMAT_VERSION}, sort_keys=True)
    return f"{variant}_{image_size}_{hashlib.sha256(text.encode()).hexdigest()[:12]}"


class EmbeddingCache:
    """Encoder features per chip, on disk."""

    def __init__(self, folder: str | Path, model: SAM2Base, chip_files: dict[str, Path]) -> None:
        """Open a cache; nothing is read or written until features are asked for.

        Args:
            folder: the cache folder of one model (see :func:`model_key`).
            model: the SAM 2 model whose frozen encoder fills the cache.
            chip_files: chip id -> chip file, to tell a changed chip by its size and mtime.
        """
        self.folder = Path(folder)
        self.model = model
        self.chip_files = chip_files
        self.hits = 0
        self.misses = 0

    def _signature(self, chip_id: str) -> list[int]:
        stat = self.chip_files[chip_id].stat()
        return [stat.st_size, stat.st_mtime_ns]

    def _path(self, chip_id: str) -> Path:
        return self.folder / f"{chip_id}.pt"

    def _load(self, chip_id: str) -> Features | None:
        path = self._path(chip_id)
        if not path.exists():
            return None
        entry = torch.load(path, map_location="cpu", weights_only=True)
        if entry.get("signature") != self._signature(chip_id):
            return None
        return Features(entry["image_embed"][None], [f[None] for f in entry["high_res"]])

    def _store(self, chip_id: str, feats: Features) -> Features:
        """Write one chip's features; return them as stored (float16).

        So a batch computes with the same values whether its features were cached or not.
        """
        entry = {"signature": self._signature(chip_id),
                 "image_embed": feats.image_embed[0].half().cpu(),
                 "high_res": [f[0].half().cpu() for f in feats.high_res]}
        with atomic_path(self._path(chip_id)) as tmp:
            torch.save(entry, tmp)
        return Features(entry["image_embed"][None], [f[None] for f in entry["high_res"]])

    def features(self, chip_ids: Sequence[str], images: torch.Tensor) -> Features:
        """Features of a batch: from disk where valid, else encoded (no gradients) and stored.

        Args:
            chip_ids: the batch's chip ids.
            images: the batch, prepared for the model (used only for missing chips).
        """
        found = [self._load(chip_id) for chip_id in chip_ids]
        missing = [i for i, f in enumerate(found) if f is None]
        self.hits += len(chip_ids) - len(missing)
        self.misses += len(missing)
        if missing:
            with torch.no_grad():
                fresh = encode(self.model, images[missing])
            for j, i in enumerate(missing):
                found[i] = self._store(chip_ids[i], fresh.select(j))
        device = images.device
        return Features(torch.cat([f.image_embed for f in found]).to(device, torch.float32),
                        [torch.cat(level).to(device, torch.float32)
                         for level in zip(*(f.high_res for f in found), strict=True)])
