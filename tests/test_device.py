"""Device and mixed-precision choice."""

from __future__ import annotations

import pytest
import torch

from aerialsam import device
from aerialsam.errors import InputError


def test_devices() -> None:
    assert device.pick_device("cpu") == torch.device("cpu")
    best = "cuda" if torch.cuda.is_available() else "mps" if device._mps_available() else "cpu"
    assert device.pick_device("auto").type == best
    assert device.pick_device(torch.device("cpu")) == torch.device("cpu")
    assert device.autocast_dtype("cpu") is None
    with device.autocast("cpu"):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="not available"):
            device.pick_device("cuda")


@pytest.mark.parametrize(("mode", "expected"), [("off", None), ("auto", None),
                                                ("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_amp_dtype_on_cpu(mode: str, expected: torch.dtype | None) -> None:
    assert device.amp_dtype(mode, torch.device("cpu")) is expected
