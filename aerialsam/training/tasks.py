"""One training step's loss, for SAM 2 (every regime and prompt mode) and for the U-Net.

A task is an ``nn.Module`` whose ``forward(batch)`` returns the loss and a few numbers to
log, so the training loop (and DistributedDataParallel around it) is the same for every model.

Losses: monai's Dice + binary cross-entropy on logits upsampled to the chip (targets are never
resampled), plus an optional focal term. Road runs learn the road mask and its centre line
(two dense channels, as buildings learn footprint and contact) and may add monai's soft
clDice on the road channel, a term that rewards connected, complete centre lines. SAM 2
also learns its IoU head (mean squared error between predicted and actual IoU). With box or
point prompts each prompted building has its three multimask outputs scored and only the
best one counts, as in SAM's own training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss, FocalLoss, SoftclDiceLoss
from sam2.modeling.sam2_base import SAM2Base
from torch import nn

from aerialsam.models.sam2_calls import Features, decode_prompts, decode_semantic, encode, upscale
from aerialsam.models.unet import resized_call
from aerialsam.training.embedding_cache import EmbeddingCache
from aerialsam.training.train_config import TrainConfig

Logs = dict[str, torch.Tensor]
"""What a task reports of a batch besides its loss: pixel counts or a mean IoU, as 0-d
tensors left on the device (reading one would make the host wait for the GPU; the training
loop reads several steps' at once)."""

DENSE_TARGETS = ("footprint", "contact")
"""Building targets of the dense outputs: SAM 2's multimask channels 0, 1, the U-Net's."""
ROAD_DENSE_TARGETS = ("road", "road_centerline")
"""Road targets of the same channels (SpaceNet 3 road runs)."""


CLDICE_ITERS = 16
"""Erosions of clDice's soft skeleton. A band keeps a skeleton only if it survives half its
width in erosions: monai's default 3 stops at 7 px, while a 4 m road is 13 to 20 px wide at
SpaceNet 3's 0.2-0.3 m pixels, and a multi-lane one wider (16 reach 32 px)."""


def dense_target_names(config: TrainConfig) -> tuple[str, ...]:
    """The targets of a run's dense channels, in channel order."""
    return ROAD_DENSE_TARGETS if config.task == "roads" else DENSE_TARGETS


class SegmentationLoss(nn.Module):
    """Dice + binary cross-entropy (+ focal) per sample and channel, on logits."""

    def __init__(self, focal_weight: float = 0.0, cldice_weight: float = 0.0) -> None:
        """Set up the terms.

        Args:
            focal_weight: the focal term's weight; 0 leaves it out.
            cldice_weight: the weight of soft clDice on channel 0; 0 leaves it out.
        """
        super().__init__()
        self.dice = DiceLoss(sigmoid=True, reduction="none")
        self.focal = FocalLoss(reduction="none") if focal_weight > 0 else None
        self.focal_weight = focal_weight
        self.cldice = (SoftclDiceLoss(iter_=CLDICE_ITERS, sigmoid=True, reduction="none")
                       if cldice_weight > 0 else None)
        self.cldice_weight = cldice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss per (sample, channel): shape (N, C)."""
        logits = logits.float()
        loss = self.dice(logits, target).flatten(1)
        loss = loss + F.binary_cross_entropy_with_logits(logits, target,
                                                         reduction="none").mean((2, 3))
        if self.focal is not None:
            loss = loss + self.focal_weight * self.focal(logits, target).mean((2, 3))
        if self.cldice is not None:
            # topology of the road channel only: the centre-line channel is a skeleton already
            extra = torch.zeros_like(loss)
            extra[:, 0] = self.cldice(logits[:, :1], target[:, :1]).flatten()
            loss = loss + self.cldice_weight * extra
        return loss


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of ``logits > 0`` with a binary target, per (sample, channel); 1 when both empty."""
    pred = logits.detach() > 0
    truth = target > 0.5
    inter = (pred & truth).sum((2, 3)).float()
    union = (pred | truth).sum((2, 3)).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def overlap_counts(logits: torch.Tensor, target: torch.Tensor) -> Logs:
    """Channel-0 pixels (footprint, or road) predicted and true, summed over the batch.

    The counts are ``inter`` and ``union``, 0-d tensors left on the device
    (:func:`~aerialsam.training.logs.summarize` divides them). Sums let a whole validation
    set be scored as one mask, so empty chips do not count as perfect.
    """
    pred = logits[:, :1].detach() > 0
    truth = target[:, :1] > 0.5
    return {"inter": (pred & truth).sum(), "union": (pred | truth).sum()}


def dense_targets(batch: dict, names: tuple[str, ...]) -> torch.Tensor:
    """The batch's target masks stacked as channels (N, len(names), H, W)."""
    return torch.cat([batch[name] for name in names], dim=1)


class UNetTask(nn.Module):
    """The U-Net's step: its two channels against their masks (buildings or roads)."""

    def __init__(self, unet: nn.Module, config: TrainConfig) -> None:
        """Wrap the U-Net with the run's loss.

        Args:
            unet: the U-Net being trained.
            config: the run's configuration (its task and loss weights).
        """
        super().__init__()
        self.model = unet
        self.names = dense_target_names(config)
        self.loss = SegmentationLoss(config.focal_weight, config.cldice_weight)
        self.input_size = config.unet_input_size

    def forward(self, batch: dict) -> tuple[torch.Tensor, Logs]:
        """Loss and :func:`overlap_counts` of a batch from ``collate_unet``.

        With an input size, the chips are resized to it and the logits back to the chip, so
        the targets are compared at chip size (never resampled), as SAM 2's are.
        """
        logits = resized_call(self.model, batch["image"], self.input_size)
        names = self.names[:logits.shape[1]]
        target = dense_targets(batch, names)
        loss = self.loss(logits, target).mean()
        return loss, overlap_counts(logits, target)


class Sam2Task(nn.Module):
    """SAM 2's step in any regime (decoder, full, lora) and prompt mode (none, box, point)."""

    def __init__(self, model: SAM2Base, config: TrainConfig,
                 cache: EmbeddingCache | None = None) -> None:
        """Wrap SAM 2 with the run's loss.

        Args:
            model: the SAM 2 model, with LoRA adapters already added for ``lora``.
            config: the run's configuration.
            cache: encoder features computed once per chip (``decoder`` regime only).
        """
        super().__init__()
        self.model = model
        self.config = config
        self.cache = cache
        self.names = dense_target_names(config)
        self.loss = SegmentationLoss(config.focal_weight, config.cldice_weight)

    def features(self, batch: dict) -> Features:
        """Encoder features of the batch: cached, frozen, or with gradients."""
        if self.config.regime != "decoder":
            return encode(self.model, batch["image"])
        if self.cache is not None:
            return self.cache.features(batch["chip_id"], batch["image"])
        with torch.no_grad():
            return encode(self.model, batch["image"])

    def forward(self, batch: dict) -> tuple[torch.Tensor, Logs]:
        """Loss and ``{"pixel_iou": …}`` of a batch from ``collate_sam2``."""
        feats = self.features(batch)
        if self.config.prompt == "none":
            return self._dense_step(feats, batch)
        return self._prompt_step(feats, batch)

    def _dense_step(self, feats: Features, batch: dict) -> tuple[torch.Tensor, Logs]:
        logits, iou_pred = decode_semantic(self.model, feats, multimask=True)
        target = dense_targets(batch, tuple(n for n in self.names if n in batch))
        logits = upscale(logits[:, :target.shape[1]], *target.shape[-2:])
        loss = self.loss(logits, target).mean()
        actual = mask_iou(logits[:, :1], target[:, :1])
        loss = loss + self.config.iou_loss_weight * F.mse_loss(iou_pred[:, :1].float(), actual)
        return loss, overlap_counts(logits, target)

    def _prompt_step(self, feats: Features, batch: dict) -> tuple[torch.Tensor, Logs]:
        generator = torch.Generator().manual_seed(int(batch["step_seed"]))
        losses, ious = [], []
        for i in range(len(feats)):
            prompts, targets = self._sample(batch, i, generator)
            if prompts is None:
                continue
            xy = prompts.to(feats.image_embed.device)
            if self.config.prompt == "box":
                logits, iou_pred = decode_prompts(self.model, feats.select(i), boxes=xy,
                                                  multimask=True)
            else:
                logits, iou_pred = decode_prompts(self.model, feats.select(i),
                                                  points=xy[:, None], multimask=True)
            logits = upscale(logits, *targets.shape[-2:])
            target = targets[:, None].expand_as(logits)
            per_mask = self.loss(logits, target)
            actual = mask_iou(logits, target)
            losses.append(per_mask.min(dim=1).values.mean() + self.config.iou_loss_weight
                          * F.mse_loss(iou_pred.float(), actual))
            ious.append(actual.gather(1, per_mask.argmin(dim=1, keepdim=True)).mean())
        if not losses:  # no building in the batch: a zero loss that still reaches every weight
            zero = sum(p.sum() * 0.0 for p in self.parameters() if p.requires_grad)
            return zero, {"pixel_iou": torch.full((), float("nan"), device=zero.device)}
        return torch.stack(losses).mean(), {"pixel_iou": torch.stack(ious).mean().detach()}

    def _sample(self, batch: dict, i: int, generator: torch.Generator
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Up to ``max_prompts`` jittered prompts of chip ``i`` and their building masks."""
        # the loader labelled the buildings on the host: counting them needs no GPU result,
        # and the copies below do not wait for the GPU's queue (non-blocking, staged by CUDA)
        labels = batch["buildings"][i]
        count = int(labels.max(initial=0))
        if count == 0:
            return None, None
        chosen = torch.randperm(count, generator=generator)[:self.config.max_prompts]
        targets = torch.from_numpy(labels[None] == (chosen.numpy()[:, None, None] + 1))
        device = batch["footprint"].device
        targets = targets.to(device, non_blocking=True).float()
        index = chosen.to(device, non_blocking=True)
        if self.config.prompt == "point":
            return batch["points"][i][index], targets
        boxes = batch["boxes"][i][index]
        side = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
        noise = (torch.rand(boxes.shape, generator=generator) * 2 - 1) * self.config.box_jitter
        return boxes + noise.to(device, non_blocking=True) * side, targets

