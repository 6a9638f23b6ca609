"""The model kinds a run can train, and everything that differs between them, in one table.

A :class:`ModelKind` says how to build a run's starting model, how to rebuild a finished one
for its saved weights, which task computes its loss, how its batches are collated, which chip
model predicts with it, at which input size it predicts and how to name it. The training loop,
validation, run folders, prediction and evaluation look the kind up in :data:`KINDS` instead of
testing the model's name, so adding a model is one entry here (and its name in
:data:`aerialsam.training.train_config.MODELS`, which the torch-free command line reads).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from aerialsam.data import spacenet
from aerialsam.errors import InputError
from aerialsam.inference.chip_models import Sam2Prompted, Sam2Semantic, UNetChips
from aerialsam.inference.prompts import oracle_prompts
from aerialsam.inference.tiling import ChipModel
from aerialsam.io import open_raster
from aerialsam.models.lora import add_lora, merge_lora
from aerialsam.models.sam2 import check_state_dict, load_sam2, random_sam2
from aerialsam.models.unet import OUTPUT_CHANNELS, build_unet
from aerialsam.prep.chips import Source
from aerialsam.training.datasets import collate_sam2, collate_unet
from aerialsam.training.embedding_cache import EmbeddingCache
from aerialsam.training.tasks import Sam2Task, UNetTask
from aerialsam.training.train_config import TrainConfig

log = logging.getLogger(__name__)

Collate = Callable[[Sequence[dict]], dict]

SAM2_ONLY_FIELDS = ("regime", "prompt", "variant", "checkpoint", "image_size", "max_prompts",
                    "box_jitter", "lora_rank", "lora_alpha", "iou_loss_weight",
                    "encoder_lr_scale", "embedding_cache")
"""Configuration fields that only SAM 2 runs read."""
UNET_ONLY_FIELDS = ("unet_features", "unet_input_size")
"""Configuration fields that only U-Net runs read."""
# SAM 2's video memory modules play no part in single images
_SAM2_VIDEO_MODULES = ("memory_attention", "memory_encoder", "obj_ptr_proj", "obj_ptr_tpos_proj",
                       "mask_downsample")
_SAM2_VIDEO_PARAMETERS = ("maskmem_tpos_enc", "no_mem_pos_enc", "no_obj_ptr",
                          "no_obj_embed_spatial", "no_mem_embed")


@dataclass(frozen=True)
class ModelKind:
    """What one kind of model needs from each stage.

    Attributes:
        name: the ``TrainConfig.model`` value.
        build: the starting model of a run, on the CPU, with only trained parameters trainable.
        rebuild: an untrained model ready for a finished run's state dict (checked against it).
        final_state: the state dict ``model.pt`` holds (adapters folded in where there are).
        task: the module whose forward returns the loss and logs of a batch.
        collate: the batch collation function of a configuration.
        chip_model: the chip model that predicts a source tile with a trained model.
        input_size: the side of the chips it predicts, from its configuration and ``run.json``.
        needs_prompts: whether a run of this configuration predicts only with prompts (which
            validation and evaluation then take from the ground truth: an upper bound).
        label: a readable name of a run, for tables.
        own_fields: configuration fields only this kind reads.
        unused_parameters: whether some trainable parameters may get no gradient in a step
            (DistributedDataParallel must then look for them).
    """

    name: str
    build: Callable[[TrainConfig], nn.Module]
    rebuild: Callable[[TrainConfig, Mapping[str, torch.Tensor], str], nn.Module]
    final_state: Callable[[nn.Module, TrainConfig], dict[str, torch.Tensor]]
    task: Callable[[nn.Module, TrainConfig, EmbeddingCache | None], nn.Module]
    collate: Callable[[TrainConfig], Collate]
    chip_model: Callable[[nn.Module, TrainConfig, Source | None], ChipModel]
    input_size: Callable[[TrainConfig, Mapping[str, Any]], int]
    needs_prompts: Callable[[TrainConfig], bool]
    label: Callable[[TrainConfig], str]
    own_fields: tuple[str, ...]
    unused_parameters: bool


def _build_sam2(config: TrainConfig) -> nn.Module:
    """SAM 2 as a run starts it, with the parts its regime trains.

    ``decoder`` freezes the image encoder, ``lora`` adds adapters to it (frozen otherwise),
    ``full`` trains everything but the video modules.
    """
    model = load_sam2(config.variant, config.checkpoint, "cpu", config.image_size)
    model.requires_grad_(True)
    if config.regime == "decoder":
        model.image_encoder.requires_grad_(False)
    elif config.regime == "lora":
        count = add_lora(model.image_encoder, config.lora_rank, config.lora_alpha, config.seed)
        log.info("LoRA: adapters on %d attention layers of the image encoder", count)
    for name in _SAM2_VIDEO_MODULES:
        if hasattr(model, name):
            getattr(model, name).requires_grad_(False)
    for name in _SAM2_VIDEO_PARAMETERS:
        if isinstance(getattr(model, name, None), nn.Parameter):
            getattr(model, name).requires_grad_(False)
    return model


def _rebuild_sam2(config: TrainConfig, state: Mapping[str, torch.Tensor], path: str
                  ) -> nn.Module:
    model = random_sam2(config.variant, config.image_size)
    check_state_dict(model, dict(state), config.variant, path)
    return model


def _final_sam2(model: nn.Module, config: TrainConfig) -> dict[str, torch.Tensor]:
    """The weights of a plain SAM 2: LoRA adapters are merged into the encoder."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if config.regime != "lora":
        return state
    merged = random_sam2(config.variant, config.image_size)
    add_lora(merged.image_encoder, config.lora_rank, config.lora_alpha, config.seed)
    merged.load_state_dict(state)
    merge_lora(merged)
    return merged.state_dict()


def _sam2_chips(model: nn.Module, config: TrainConfig, source: Source | None) -> ChipModel:
    """The chip model that predicts one tile (``source``) with a SAM 2 run's model.

    Prompt-free runs predict footprint and contact; prompt-trained ones are prompted with
    the tile's true buildings (an upper bound, see ``needs_prompts``).
    """
    if config.prompt == "none":
        return Sam2Semantic(model, channels=(0, 1))
    if source is None:
        raise InputError(config.run_name, "a prompt-trained SAM 2 predicts only with prompts: "
                                          "give the source tile its prompts come from")
    with open_raster(source.path, require_crs=False) as src:
        shape = src.shape
    return Sam2Prompted(model, oracle_prompts(spacenet.tile_at(source.path), config.prompt),
                        raster_shape=shape)


def _sam2_label(config: TrainConfig) -> str:
    return f"fine-tuned SAM 2, {config.regime}"


def _unet(config: TrainConfig) -> nn.Module:
    return build_unet(len(OUTPUT_CHANNELS), config.unet_features, seed=config.seed)


def _plain_state(model: nn.Module, config: TrainConfig) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


KINDS: dict[str, ModelKind] = {
    "sam2": ModelKind(
        name="sam2", build=_build_sam2, rebuild=_rebuild_sam2, final_state=_final_sam2,
        task=lambda model, config, cache: Sam2Task(model, config, cache),
        collate=lambda config: partial(collate_sam2, image_size=config.image_size),
        chip_model=_sam2_chips,
        input_size=lambda config, run: config.image_size,
        needs_prompts=lambda config: config.prompt != "none",
        label=_sam2_label, own_fields=SAM2_ONLY_FIELDS, unused_parameters=True),
    "unet": ModelKind(
        name="unet", build=_unet, rebuild=lambda config, state, path: _unet(config),
        final_state=_plain_state,
        task=lambda model, config, cache: UNetTask(model, config),
        collate=lambda config: collate_unet,
        chip_model=lambda model, config, source: UNetChips(model, config.unet_input_size),
        # the U-Net sees chips at their own size: the run's chip side
        input_size=lambda config, run: int(run.get("chip_size", 512)),
        needs_prompts=lambda config: False,
        label=lambda config: "U-Net", own_fields=UNET_ONLY_FIELDS, unused_parameters=False),
}
"""Every model kind, by ``TrainConfig.model``."""

def kind_of(config: TrainConfig) -> ModelKind:
    """The kind of a run's model.

    Raises:
        InputError: a model name with no kind (a configuration from another version).
    """
    if config.model not in KINDS:
        raise InputError(config.run_name, f"unknown model {config.model!r}; "
                                          f"known: {', '.join(KINDS)}")
    return KINDS[config.model]
