"""What a fine-tuning run does: one dataclass, from a profile or a YAML file, checked up front.

Everything is validated when the configuration is made, so an unknown key or an impossible
combination stops the run before any data is read, not an hour into training. The types come
from :class:`TrainConfig`'s annotations (:func:`aerialsam.inputs.check_fields`: a field added
there is checked without more code; ``steps: "abc"``, ``augment: "yes"`` and ``lr: .nan`` are
refused by name), the bounds of numeric fields from :data:`RANGES`, the choices and the
combinations from ``TrainConfig.__post_init__``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aerialsam.config import PROFILES, Profile, load_profile
from aerialsam.errors import InputError
from aerialsam.inputs import (
    AT_LEAST_ONE,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    Range,
    check_fields,
    check_ranges,
    load_yaml_mapping,
)
from aerialsam.models.unet_sizes import check_input_size
from aerialsam.models.variants import VARIANT_NAMES, check_image_size

TASKS = ("buildings", "roads")
MODELS = ("sam2", "unet")
REGIMES = ("decoder", "full", "lora")
PROMPTS = ("none", "box", "point")
AMP_MODES = ("auto", "bf16", "fp16", "off")
RANGES: dict[str, Range] = {
    **dict.fromkeys(("steps", "batch_size", "grad_accum", "checkpoint_every", "max_prompts",
                     "lora_rank", "image_size", "unet_input_size"), AT_LEAST_ONE),
    **dict.fromkeys(("lr", "clip_grad", "lora_alpha"), POSITIVE),
    **dict.fromkeys(("encoder_lr_scale", "weight_decay", "warmup_steps", "focal_weight",
                     "cldice_weight", "iou_loss_weight", "val_every", "seed", "workers"),
                    NON_NEGATIVE),
    "box_jitter": FRACTION,
}
"""Bounds of the numeric fields of :class:`TrainConfig`; every float field must be finite.

A numeric field added to the class without an entry here is only required to be finite.
"""


@dataclass(frozen=True)
class TrainConfig:
    """A fine-tuning run of SAM 2 or of the U-Net baseline.

    Attributes:
        name: the run folder's name under ``runs/`` (default: task, model, regime, prompt).
        task: ``buildings`` (SpaceNet 2 footprints, scored by F1) or ``roads`` (SpaceNet 3
            road masks, scored by APLS); prediction and evaluation follow the saved task.
        model: ``sam2`` or ``unet``.
        regime: SAM 2 only. ``decoder`` (frozen image encoder, trains the mask decoder and
            prompt encoder), ``full`` (everything; the encoder at ``lr * encoder_lr_scale``)
            or ``lora`` (low-rank adapters on the encoder's attention, decoder trained).
        prompt: SAM 2 only. ``none`` (dense masks per chip: footprint and contact, or road
            and centre line),
            ``box`` or ``point`` (jittered ground-truth prompts per building).
        variant, checkpoint, image_size: the SAM 2 model (see ``load_sam2``).
        unet_features: U-Net width preset (``small`` or ``standard``).
        unet_input_size: U-Net only: the side chips are resized to before the U-Net sees
            them (its output is resized back to the chip); ``None``: the chip's own side.
        aois: AOIs to train on (default all).
        steps: optimiser steps; batch_size: chips per step per process; grad_accum:
            micro-batches summed into one step.
        lr, encoder_lr_scale, weight_decay, warmup_steps, clip_grad: AdamW with linear
            warm-up and cosine decay, gradient norm clipped.
        focal_weight: weight of a focal loss added to Dice + cross-entropy.
        cldice_weight: roads only: weight of monai's soft clDice term (topology of thin
            structures) added to the road channel's loss; 0 leaves it out.
        iou_loss_weight: weight of SAM 2's IoU-prediction loss.
        max_prompts: buildings prompted per chip (box/point), sampled when there are more.
        box_jitter: box corners move by up to this fraction of the box side.
        lora_rank, lora_alpha: the adapters' rank and scale.
        amp: ``auto`` (bf16 on GPUs that have it, else fp32), ``bf16``, ``fp16`` or ``off``.
        checkpoint_every: steps between checkpoints (one is always written at the end).
        val_every: steps between validations (0: once per epoch).
        augment: flips, rotations, colour and scale jitter on training chips.
        embedding_cache: ``decoder`` regime: compute each chip's encoder features once.
        seed: seeds weights' init, data order, augmentations and prompt sampling.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        workers: processes reading and augmenting chips (0: in the training process;
            on a GPU machine a few keep the GPU fed).
    """

    name: str = ""
    task: str = "buildings"
    model: str = "sam2"
    regime: str = "decoder"
    prompt: str = "none"
    variant: str = "tiny"
    checkpoint: str | None = "random"
    image_size: int = 1024
    unet_features: str = "small"
    unet_input_size: int | None = None
    aois: tuple[str, ...] | None = None
    steps: int = 200
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 3e-4
    encoder_lr_scale: float = 0.1
    weight_decay: float = 0.01
    warmup_steps: int = 10
    clip_grad: float = 1.0
    focal_weight: float = 0.0
    cldice_weight: float = 0.0
    iou_loss_weight: float = 1.0
    max_prompts: int = 16
    box_jitter: float = 0.1
    lora_rank: int = 4
    lora_alpha: float = 8.0
    amp: str = "auto"
    checkpoint_every: int = 50
    val_every: int = 0
    augment: bool = True
    embedding_cache: bool = True
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse unknown choices (model, regime, prompt, amp, variant) and a bad image size.

        Raises:
            InputError: the first bad value.
        """
        _check_choice("task", self.task, TASKS)
        _check_choice("model", self.model, MODELS)
        _check_choice("regime", self.regime, REGIMES)
        _check_choice("prompt", self.prompt, PROMPTS)
        _check_choice("amp", self.amp, AMP_MODES)
        _check_choice("variant", self.variant, VARIANT_NAMES)
        check_image_size(self.image_size)
        check_input_size(self.unet_input_size)
        for key in ("steps", "batch_size", "grad_accum", "checkpoint_every", "max_prompts"):
            if getattr(self, key) < 1:
                raise InputError(key, f"must be at least 1, got {getattr(self, key)}")
        if self.lr <= 0:
            raise InputError("lr", f"must be positive, got {self.lr}")
        if self.task == "roads" and self.prompt != "none":
            raise InputError("prompt", "road runs are prompt-free (prompt: none): a road "
                                       "network has no per-object prompts to train with")
        if self.cldice_weight and self.task != "roads":
            raise InputError("cldice_weight", "only road runs have a clDice term")
        check_ranges(self, RANGES)

    @property
    def run_name(self) -> str:
        """``name``, or e.g. ``sam2_tiny_decoder_none`` / ``unet_small`` / ``roads_unet_small``."""
        if self.name:
            return self.name
        prefix = "roads_" if self.task == "roads" else ""
        if self.model == "unet":
            return f"{prefix}unet_{self.unet_features}"
        return f"{prefix}sam2_{self.variant}_{self.regime}_{self.prompt}"

    @property
    def uses_cache(self) -> bool:
        """Whether encoder features come from the embedding cache."""
        return self.model == "sam2" and self.regime == "decoder" and self.embedding_cache

    def to_dict(self) -> dict[str, Any]:
        """A YAML/JSON-ready dictionary (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(key, f"unknown value {value!r}; choose one of {', '.join(choices)}")


def from_profile(profile: str | Profile,
                 **overrides: Any) -> TrainConfig:  # noqa: ANN401 (any TrainConfig field)
    """The training configuration a profile implies (its size, steps, batch and seed).

    Raises:
        InputError: an unknown profile or override key.
    """
    profile = load_profile(profile)
    base = {"variant": profile.sam_variant, "checkpoint": profile.sam_checkpoint,
            "image_size": profile.sam_image_size, "steps": profile.train_steps,
            "batch_size": profile.batch_size, "seed": profile.seed, "device": profile.device,
            "checkpoint_every": max(1, min(50, profile.train_steps)),
            "warmup_steps": max(1, profile.train_steps // 20)}
    return make_config({**base, **overrides}, source=f"profile {profile.name}")


def make_config(values: dict[str, Any], source: str = "config") -> TrainConfig:
    """A :class:`TrainConfig` from a dictionary (YAML, JSON, overrides), checked against its fields.

    Types come from the class's annotations, bounds from :data:`RANGES`; lists become tuples.

    Raises:
        InputError: unknown keys, a value of the wrong type or out of bounds, or a bad choice
            or combination; naming ``source`` and the key.
    """
    values = check_fields(TrainConfig, values, source, RANGES)
    try:
        return TrainConfig(**values)
    except InputError as exc:
        key = exc.source.lstrip("-").replace("-", "_")  # check_image_size names --image-size
        if key in values:  # a field's check: say where the value came from
            raise InputError(source, f"{key}: {exc.problem}") from None
        raise


def load_config(config: str | Path,
                **overrides: Any) -> TrainConfig:  # noqa: ANN401 (any TrainConfig field)
    """A profile name (``smoke``, ``demo``, ``full``) or a YAML file of :class:`TrainConfig` keys.

    A YAML file may name a ``profile`` to start from; its other keys override it.

    Raises:
        InputError: a missing, binary or malformed file, unknown keys, or values the fields
            refuse (naming the file and the key).
    """
    path = Path(config)
    if not path.suffix and not path.exists():
        return from_profile(str(config), **overrides)
    if not path.is_file():
        raise InputError(path, "config file not found (or give a profile: smoke, demo, full)")
    values = load_yaml_mapping(path, what="YAML")
    profile = values.pop("profile", None)
    values = check_fields(TrainConfig, values, path, RANGES)
    if profile is None:
        return make_config({**values, **overrides}, source=str(path))
    if not isinstance(profile, str) or profile not in PROFILES:
        raise InputError(path, f"profile: unknown profile {profile!r}; choose one of "
                               f"{', '.join(PROFILES)}")
    return from_profile(profile, **{**values, **overrides})
