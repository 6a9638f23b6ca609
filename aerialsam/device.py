"""Where to run and in which precision: the device choice and mixed precision, in one place.

``auto`` means the best device here (cuda, then mps, then cpu) and, for precision, bfloat16 on
a GPU that has it (Ampere, Hopper) and float32 anywhere else: CPU autocast is slower than
float32 for these models, and float16 needs loss scaling that inference does not have.
"""

from __future__ import annotations

import contextlib

import torch

from aerialsam.errors import InputError


def pick_device(preference: str | torch.device = "auto") -> torch.device:
    """The device to run on: ``auto`` picks cuda, then mps, then cpu.

    Raises:
        InputError: a named device that is not available here.
    """
    if isinstance(preference, torch.device):
        return preference
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    try:
        device = torch.device(preference)
    except RuntimeError:
        raise InputError("--device", f"unknown device {preference!r}; use auto, cuda, mps "
                                     "or cpu") from None
    if (device.type == "cuda" and not torch.cuda.is_available()) or \
            (device.type == "mps" and not _mps_available()):
        raise InputError("--device", f"{preference!r} is not available on this machine")
    return device


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def autocast_dtype(device: str | torch.device) -> torch.dtype | None:
    """bfloat16 on a CUDA GPU that supports it; ``None`` (stay in float32) anywhere else."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: str | torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision for inference on ``device`` (see :func:`autocast_dtype`), else a no-op."""
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The training autocast dtype of an ``amp`` mode on ``device``.

    The modes are those of ``TrainConfig.amp``: auto, bf16, fp16, off. ``auto`` gives
    bfloat16 on a CUDA GPU that has it, float16 on an older one and ``None`` (float32)
    elsewhere; ``off`` always ``None``.
    """
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "fp16":
        return torch.float16
    if mode == "auto" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16
