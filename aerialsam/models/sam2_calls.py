"""SAM 2 on batches of chips: one image-encoder pass per batch, prompts decoded per chip.

``SAM2ImagePredictor`` embeds one image at a time and keeps it as state; tiled inference and
training need many chips at once, gradients through the decoder (and, when fine-tuning, the
encoder), and chips whose prompts differ in number. These functions expose SAM 2's three
stages as plain differentiable calls on tensors:

1. :func:`prepare_images`: uint8 chips (B, H, W, 3) or floats (B, 3, H, W) in 0..1 to the
   model's normalised square input;
2. :func:`encode`: the image encoder, giving :class:`Features` for the whole batch;
3. :func:`decode_semantic` (no prompt: one mask per chip, the fine-tuned ``none`` mode),
   :func:`decode_prompts` (boxes and/or points of one chip) and :func:`upscale` back to the
   chip's size.

Prompt coordinates are pixels of the model input (``image_size`` square); :func:`scale_xy`
maps chip pixels to it. They follow ``PolygonWKT_Pix``: x = column, y = row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sam2.modeling.sam2_base import SAM2Base

from aerialsam.models.sam2 import feature_sizes
from aerialsam.models.variants import SAM2_MEAN, SAM2_STD

"""ImageNet statistics SAM 2 was trained with (``SAM2Transforms``)."""
BOX_LABELS = (2, 3)
"""Prompt-encoder labels of a box's top-left and bottom-right corners."""
LOGIT_CLAMP = 32.0
PROMPT_CHUNK = 32
"""Prompts decoded at once on one chip on a GPU: bounds the (prompts x chip) logits in memory."""
CPU_PROMPT_TOKENS = 4096
"""On a CPU, prompts decoded at once x tokens of the image embedding (4 MB of float32)."""


@dataclass
class Features:
    """Image-encoder output of a batch, as SAM 2's mask decoder wants it.

    Attributes:
        image_embed: (B, 256, S/16, S/16) embedding, ``no_mem_embed`` added.
        high_res: the (B, 32, S/4, S/4) and (B, 64, S/8, S/8) maps of the decoder's skip path.
    """

    image_embed: torch.Tensor
    high_res: list[torch.Tensor]

    def __len__(self) -> int:
        """The number of chips in the batch."""
        return self.image_embed.shape[0]

    def select(self, index: int | slice) -> Features:
        """The features of one chip (kept as a batch of one) or of a slice of chips."""
        index = slice(index, index + 1) if isinstance(index, int) else index
        return Features(self.image_embed[index], [f[index] for f in self.high_res])


def prepare_images(images: np.ndarray | torch.Tensor, image_size: int,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Chips to SAM 2's input: (B, 3, S, S) float32, resized (bilinear) and normalised.

    Args:
        images: uint8 (B, H, W, 3) in 0..255, or a float tensor (B, 3, H, W) in 0..1.
        image_size: the model's input side ``S``.
        device: where the result lives.
    """
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 chips of shape (B, H, W, 3), got {images.shape}")
        batch = torch.from_numpy(np.ascontiguousarray(images)).to(device)
        batch = batch.permute(0, 3, 1, 2).float().div_(255.0)
    else:
        batch = images.to(device=device, dtype=torch.float32)
    if batch.shape[-2:] != (image_size, image_size):
        batch = F.interpolate(batch, size=(image_size, image_size), mode="bilinear",
                              align_corners=False, antialias=True)
    mean = torch.tensor(SAM2_MEAN, device=batch.device).view(1, 3, 1, 1)
    std = torch.tensor(SAM2_STD, device=batch.device).view(1, 3, 1, 1)
    return (batch - mean) / std


def encode(model: SAM2Base, batch: torch.Tensor) -> Features:
    """Run the image encoder on a prepared batch (see :func:`prepare_images`).

    Gradients flow when enabled, so the same call serves inference and full fine-tuning.
    """
    backbone = model.forward_image(batch)
    _, vision_feats, _, _ = model._prepare_backbone_features(backbone)
    if model.directly_add_no_mem_embed:
        # a still image is a video frame with no memory: SAM 2 adds this learned embedding
        vision_feats[-1] = vision_feats[-1] + model.no_mem_embed
    size = batch.shape[0]
    sizes = feature_sizes(model.image_size)
    maps = [feat.permute(1, 2, 0).reshape(size, -1, rows, cols)
            for feat, (rows, cols) in zip(vision_feats, sizes, strict=True)]
    return Features(image_embed=maps[-1], high_res=maps[:-1])


def decode_semantic(model: SAM2Base, features: Features,
                    multimask: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense masks per chip with no prompt (the ``none`` mode of fine-tuned models).

    With ``multimask`` the decoder's three multimask outputs are used as channels:
    fine-tuning makes channel 0 the footprint and channel 1 the contact between buildings
    (channel 2 is left free). Without, the single-mask output.

    Returns:
        Low-resolution logits (B, 3 or 1, S/4, S/4) and the predicted IoUs (B, 3 or 1).
    """
    encoder = model.sam_prompt_encoder
    sparse, dense = encoder(points=None, boxes=None, masks=None)
    size = len(features)
    sparse = sparse.expand(size, -1, -1)
    dense = dense.expand(size, -1, -1, -1)
    logits, iou, _, _ = model.sam_mask_decoder(
        image_embeddings=features.image_embed, image_pe=encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
        multimask_output=multimask, repeat_image=False, high_res_features=features.high_res)
    return logits, iou


def decode_prompts(model: SAM2Base, features: Features, boxes: torch.Tensor | None = None,
                   points: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                   multimask: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks for N prompts on ONE chip (``features`` of a batch of one).

    Args:
        model: the SAM 2 model.
        features: one chip's features (``Features.select(i)``).
        boxes: (N, 4) ``x0, y0, x1, y1`` in model-input pixels, one object each.
        points: (N, K, 2) ``x, y`` in model-input pixels, K points per object.
        labels: (N, K) point labels (1 foreground, 0 background); default all 1.
        multimask: three masks per prompt (for ambiguous single points) instead of one.

    Returns:
        Low-resolution logits (N, C, S/4, S/4) and predicted IoUs (N, C), C = 3 or 1.
    """
    coords, codes = _prompt_points(boxes, points, labels)
    if coords is None:
        raise ValueError("decode_prompts needs boxes or points")
    encoder = model.sam_prompt_encoder
    sparse, dense = encoder(points=(coords, codes), boxes=None, masks=None)
    logits, iou, _, _ = model.sam_mask_decoder(
        image_embeddings=features.image_embed, image_pe=encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
        multimask_output=multimask, repeat_image=coords.shape[0] > 1,
        high_res_features=features.high_res)
    return logits, iou


def prompt_chunk(model: SAM2Base, device: torch.device | str) -> int:
    """How many prompts of one chip to decode at once on ``device``.

    The mask decoder copies the chip's image embedding for every prompt and runs its
    two-way transformer on each copy. On a CPU that is fastest while the copies stay in the
    cache: :data:`CPU_PROMPT_TOKENS` embedding tokens in all (measured with 2 threads, tiny:
    14 ms a box in chunks of 4 at 512 px, 26 ms in chunks of 32; at 1024 px, 59 ms singly,
    99 ms in 32s; the automatic generator's 64 points on a 512 px chip: 2.3 s in one batch,
    1.4 s in batches of 4). A GPU takes :data:`PROMPT_CHUNK` at once.
    """
    if torch.device(device).type != "cpu":
        return PROMPT_CHUNK
    rows, cols = feature_sizes(model.image_size)[-1]
    tokens = rows * cols
    return max(1, min(PROMPT_CHUNK, CPU_PROMPT_TOKENS // tokens))


def _prompt_points(boxes: torch.Tensor | None, points: torch.Tensor | None,
                   labels: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Boxes and points as the prompt encoder's one list of labelled points (boxes first)."""
    parts, codes = [], []
    if boxes is not None:
        parts.append(boxes.reshape(-1, 2, 2).float())
        codes.append(torch.tensor(BOX_LABELS, device=boxes.device).expand(len(boxes), 2))
    if points is not None:
        parts.append(points.float())
        codes.append(labels if labels is not None else
                     torch.ones(points.shape[:2], dtype=torch.int, device=points.device))
    if not parts:
        return None, None
    return torch.cat(parts, dim=1), torch.cat(codes, dim=1).int()


def upscale(logits: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Low-resolution logits (N, C, h, w) to (N, C, height, width), bilinear, clamped.

    The clamp keeps sigmoid and blending finite in half precision.
    """
    up = F.interpolate(logits.float(), size=(height, width), mode="bilinear",
                       align_corners=False)
    return up.clamp_(-LOGIT_CLAMP, LOGIT_CLAMP)


def scale_xy(xy: np.ndarray, height: int, width: int, image_size: int) -> np.ndarray:
    """Chip pixel coordinates (..., 2k) of x, y pairs to model-input pixels."""
    xy = np.asarray(xy, dtype=np.float32)
    factor = np.tile(np.array([image_size / width, image_size / height], np.float32),
                     xy.shape[-1] // 2)
    return xy * factor
