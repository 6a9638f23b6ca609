"""Fixtures of the model tests: a tiny official-format checkpoint, an isolated cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aerialsam.data.s3 import RetryPolicy
from aerialsam.models import checkpoints
from aerialsam.models import sam2 as sam2_model

SIZE = 256


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random SAM 2.1 tiny checkpoint (seed 1) under its official file name."""
    path = tmp_path_factory.mktemp("ckpt") / "sam2.1_hiera_tiny.pt"
    return sam2_model.save_random_checkpoint("tiny", path, image_size=SIZE, seed=1)


@pytest.fixture(scope="module")
def tiny_state(tiny_ckpt: Path) -> dict[str, torch.Tensor]:
    """The state dict inside ``tiny_ckpt``."""
    return torch.load(tiny_ckpt, map_location="cpu", weights_only=True)["model"]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An empty cache, no URL override, quick retries, no proxy between us and 127.0.0.1."""
    monkeypatch.setattr(checkpoints, "DEFAULT_RETRY", RetryPolicy(2, 0.01, 0.01, 10.0))
    monkeypatch.setenv(checkpoints.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(checkpoints.URL_ENV, raising=False)
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
