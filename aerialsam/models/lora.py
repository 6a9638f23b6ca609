"""Low-rank adapters (LoRA) on the attention of SAM 2's image encoder.

Each ``qkv`` projection ``W`` of the Hiera blocks becomes ``W x + (alpha / r) B A x`` with
``A`` (r x in) small random and ``B`` (out x r) zero, so training starts from the pretrained
model exactly and only ``A`` and ``B`` (a fraction of a percent of the encoder) learn.
:func:`merge_lora` folds the adapters back into plain ``Linear`` layers for inference, so a
LoRA run's saved weights load into an ordinary SAM 2.
"""

from __future__ import annotations

import math

import torch
from sam2.modeling.backbones.hieradet import MultiScaleAttention
from torch import nn


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int = 4, alpha: float = 8.0) -> None:
        """Freeze ``base`` and add a zero-initialised update (the layer starts as ``base``).

        Args:
            base: the linear layer to adapt; its weights are frozen in place.
            rank: the rank of the update.
            alpha: the update's scale is ``alpha / rank``.
        """
        super().__init__()
        self.base = base
        self.base.requires_grad_(False)
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The base projection plus the scaled low-rank update."""
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale

    def merged(self) -> nn.Linear:
        """A plain ``Linear`` equal to this layer (adapters folded into the weight)."""
        linear = nn.Linear(self.base.in_features, self.base.out_features,
                           bias=self.base.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(self.base.weight + self.scale * self.lora_b @ self.lora_a)
            if self.base.bias is not None:
                linear.bias.copy_(self.base.bias)
        return linear.to(self.base.weight.device)


def add_lora(encoder: nn.Module, rank: int = 4, alpha: float = 8.0, seed: int = 0) -> int:
    """Freeze ``encoder`` and put adapters on every attention ``qkv``; returns their count.

    The adapters' initial weights depend only on ``seed``.
    """
    encoder.requires_grad_(False)
    count = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in encoder.modules():
            if isinstance(module, MultiScaleAttention) and isinstance(module.qkv, nn.Linear):
                module.qkv = LoRALinear(module.qkv, rank, alpha)
                count += 1
    return count


def merge_lora(module: nn.Module) -> int:
    """Replace every :class:`LoRALinear` inside ``module`` by its merged ``Linear``."""
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                setattr(parent, name, child.merged())
                count += 1
    return count
