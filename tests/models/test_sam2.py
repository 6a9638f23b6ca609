"""SAM 2.1 loading: checkpoint resolution, bad checkpoints, reduced input size end to end.

Every model here is SAM 2.1 tiny at 256 px on the CPU with random weights saved in the
official format; downloads go to a local HTTP server on 127.0.0.1, never to the internet.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import torch
from sam2.sam2_image_predictor import SAM2ImagePredictor

from aerialsam.data import demo, spacenet
from aerialsam.errors import InputError
from aerialsam.models import checkpoints, sam2_calls
from aerialsam.models import sam2 as sam2_model
from aerialsam.prep.stretch import apply_stretch, compute_stretch
from tests.models.weights import assert_weights

SIZE = 256
# SAM 2's own predictor (built directly by two tests) calls the deprecated torch.jit.script.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script:FutureWarning")


def test_explicit_path_round_trip(tiny_ckpt: Path, tiny_state: dict) -> None:
    model = sam2_model.load_sam2("tiny", tiny_ckpt, device="cpu", image_size=SIZE)
    assert_weights(model, tiny_state)
    assert not model.training
    assert model.image_size == SIZE
    assert model.sam_prompt_encoder.image_embedding_size == (SIZE // 16, SIZE // 16)
    # The saved weights are not the seed-0 ones a "random" model gets.
    assert not torch.equal(sam2_model.random_sam2("tiny", SIZE, seed=0).no_mem_embed,
                           tiny_state["no_mem_embed"])


def test_wrong_variant_checkpoint(tmp_path: Path) -> None:
    path = sam2_model.save_random_checkpoint("small", tmp_path / "s.pt", image_size=SIZE)
    with pytest.raises(checkpoints.CheckpointError) as info:
        sam2_model.load_sam2("tiny", path, device="cpu", image_size=SIZE)
    message = str(info.value)
    assert message.startswith(f"{path}: does not match SAM 2.1 'tiny'")
    assert "looks like a 'small' checkpoint, not 'tiny'" in message
    # small has 4 more blocks, so the stage boundaries (and some shapes) move too
    assert "2 missing keys, 50 unexpected keys, 22 shape mismatches" in message


def test_altered_and_sam20_checkpoints(tiny_state: dict, tmp_path: Path) -> None:
    model = sam2_model.random_sam2("tiny", SIZE)
    bent = dict(tiny_state, no_mem_embed=torch.zeros(1, 1, 128))
    with pytest.raises(checkpoints.CheckpointError, match="not a SAM 2.1 'tiny' checkpoint"):
        sam2_model.check_state_dict(model, bent, "tiny", "bent.pt")
    old = {k: v for k, v in tiny_state.items() if k not in sam2_model._SAM21_ONLY_KEYS}
    with pytest.raises(checkpoints.CheckpointError, match="looks like a SAM 2.0 checkpoint"):
        sam2_model.check_state_dict(model, old, "tiny", "old.pt")


def test_guess_variant_from_real_architectures(tiny_state: dict) -> None:
    assert sam2_model.guess_variant(tiny_state) == "tiny"
    assert sam2_model.guess_variant({"x": torch.zeros(1)}) is None


def test_random_mode_warns_and_is_reproducible(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aerialsam.models.sam2"):
        model = sam2_model.load_sam2("tiny", "random", device="cpu", image_size=SIZE)
    assert any(r.levelno == logging.WARNING and "RANDOM, UNTRAINED" in r.getMessage()
               for r in caplog.records)
    saved = sam2_model.save_random_checkpoint("tiny", tmp_path / "r.pt", image_size=SIZE)
    assert_weights(model, torch.load(saved, weights_only=True)["model"])
    assert not (tmp_path / "cache").exists()  # random mode neither reads nor fills the cache


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"variant": "huge"}, "unknown SAM 2 variant 'huge'"),
    ({"image_size": 300}, "multiple of 32"),
    ({"device": "quantum"}, "unknown device"),
])
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        sam2_model.load_sam2(**{"checkpoint": "random", "image_size": SIZE, **kwargs})


def test_feature_sizes_match_sam2_at_1024() -> None:
    model = sam2_model.random_sam2("tiny", SIZE)
    # SAM 2's own predictor hard-codes the 1024-px sizes: ours agree there.
    assert SAM2ImagePredictor(model)._bb_feat_sizes == sam2_model.feature_sizes(1024)
    assert sam2_model.feature_sizes(SIZE) == [(64, 64), (32, 32), (16, 16)]
    assert sam2_model.make_predictor(model)._bb_feat_sizes == [(64, 64), (32, 32), (16, 16)]


@pytest.fixture(scope="module")
def demo_chip(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """A 200 x 300 uint8 RGB chip of a demo Vegas tile and the pixel box of one building."""
    root = tmp_path_factory.mktemp("demo-sam2")
    demo.make_demo(root, tiles_per_aoi=1, aois=["vegas"])
    tile = spacenet.find_tiles(root)[0]
    with rasterio.open(tile.image_path) as src:
        pixels = src.read((1, 2, 3))
    rgb = apply_stretch(pixels, compute_stretch([tile.image_path])).transpose(1, 2, 0)
    chip = np.ascontiguousarray(rgb[100:300, 150:450])
    labels = spacenet.read_tile_labels(tile, pixel=True)
    bounds = labels.geometry.bounds
    inside = labels[(bounds.minx >= 150) & (bounds.maxx <= 450)
                    & (bounds.miny >= 100) & (bounds.maxy <= 300)]
    assert len(inside), "the demo tile should have a building inside the chip"
    x0, y0, x1, y1 = inside.geometry.iloc[0].bounds
    return chip, np.array([x0 - 150, y0 - 100, x1 - 150, y1 - 100])


def test_box_prompt_at_reduced_size(tiny_ckpt: Path, demo_chip: tuple) -> None:
    chip, box = demo_chip
    assert chip.dtype == np.uint8 and chip.shape == (200, 300, 3)
    model = sam2_model.load_sam2("tiny", tiny_ckpt, device="cpu", image_size=SIZE)
    # SAM 2's own predictor cannot embed at 256 px: its feature sizes are for 1024.
    with pytest.raises(RuntimeError):
        SAM2ImagePredictor(model).set_image(chip)
    predictor = sam2_model.make_predictor(model)
    predictor.set_image(chip)
    assert predictor._features["image_embed"].shape == (1, 256, 16, 16)
    masks, scores, low_res = predictor.predict(box=box, multimask_output=False)
    assert masks.shape == (1, 200, 300)
    assert scores.shape == (1,) and np.isfinite(scores).all()
    assert low_res.shape == (1, SIZE // 4, SIZE // 4)
    assert set(np.unique(masks)) <= {0.0, 1.0}
    multi, multi_scores, _ = predictor.predict(box=box, multimask_output=True)
    assert multi.shape == (3, 200, 300) and multi_scores.shape == (3,)


@pytest.mark.parametrize(("device", "image_size", "chunk"),
                         [("cpu", 256, 16), ("cpu", 512, 4), ("cpu", 1024, 1),
                          ("cpu", 128, 32), ("cuda", 1024, 32)])
def test_prompt_chunk_keeps_a_cpu_in_its_cache(device: str, image_size: int,
                                               chunk: int) -> None:
    model = SimpleNamespace(image_size=image_size)
    assert sam2_calls.prompt_chunk(model, device) == chunk
