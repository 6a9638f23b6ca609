"""Road runs through the one training loop: targets, losses, APLS validation, resume.

The runs are tiny (the smoke road tiles of Vegas: one to train on, one to validate on,
batch 2, a few steps); what is checked is what a road run records and how it resumes, not
how good its roads are.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aerialsam.errors import InputError
from aerialsam.inference.road_graph import DEFAULT_OPTIONS, RoadGraphOptions
from aerialsam.training import datasets, logs, loop, road_validation, runs, tasks
from aerialsam.training.train_config import make_config
from tests.training_helpers import (
    assert_same_weights,
    fake_validation_row,
    final_weights,
    read_metrics,
    tiny_config,
)

ROADS = {"task": "roads", "model": "unet", "steps": 2, "checkpoint_every": 1, "warmup_steps": 1}
ONE_SETTING = (dataclasses.replace(DEFAULT_OPTIONS, threshold=0.5),)


@pytest.fixture(scope="module")
def road_run(smoke_road_data: loop.TrainData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A U-Net road run of 2 steps, validated by APLS under one graph setting."""
    run_dir = tmp_path_factory.mktemp("roads") / "unet"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logs, "SETTINGS", ONE_SETTING)
        result = loop.train(tiny_config(**ROADS), smoke_road_data, run_dir)
    assert result.step == 2
    return run_dir


def test_a_road_run_records_its_task_apls_and_graph_setting(road_run: Path) -> None:
    saved = json.loads((road_run / runs.RUN_FILE).read_text())
    assert saved["config"]["task"] == "roads"
    assert 0.0 <= saved["metrics"]["val_apls"] <= 1.0
    assert "val_f1" not in saved["metrics"]
    assert RoadGraphOptions(**saved["road_graph"]) == ONE_SETTING[0]
    assert saved["threshold"] == 0.5
    val = [row for row in read_metrics(road_run) if row["split"] == "val"]
    assert val and val[-1]["apls"] != "" and val[-1]["f1"] == ""


def test_a_road_run_reloads_as_the_model_it_trained(road_run: Path) -> None:
    model, run = runs.load_run_model(road_run)
    assert run["config"].task == "roads"
    out = model(torch.zeros(1, 3, 64, 64))
    assert out.shape[1] == 2  # road and centre line


def test_an_interrupted_road_run_resumes_to_the_same_weights(
        smoke_road_data: loop.TrainData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "validation_row", fake_validation_row)
    config = tiny_config(**{**ROADS, "steps": 3})
    loop.train(config, smoke_road_data, tmp_path / "straight")
    loop.train(config, smoke_road_data, tmp_path / "resumed", stop_after=1)
    loop.train(config, smoke_road_data, tmp_path / "resumed", resume=True)
    assert_same_weights(final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed"))


def test_road_chips_carry_road_targets_and_no_prompts(smoke_road_data: loop.TrainData) -> None:
    data = datasets.ChipDataset(smoke_road_data.chips, smoke_road_data.masks,
                                smoke_road_data.splits, "train",
                                targets=("road", "road_centerline"))
    item = data[0]
    assert set(item) >= {"image", "road", "road_centerline"} and "footprint" not in item
    assert item["boxes"].shape == (0, 4) and item["points"].shape == (0, 2)
    totals = sum(float(data[i]["road"].sum()) for i in range(len(data)))
    assert totals > 0  # the demo city has roads on its chips


def test_building_targets_on_road_chips_are_refused(smoke_road_data: loop.TrainData) -> None:
    with pytest.raises(InputError, match="footprint"):
        datasets.ChipDataset(smoke_road_data.chips, smoke_road_data.masks,
                             smoke_road_data.splits, "train", targets=("footprint",))
    with pytest.raises(InputError, match="one task"):
        datasets.check_targets(("footprint", "road"))


def test_road_configs_refuse_prompts_and_building_runs_refuse_cldice() -> None:
    with pytest.raises(InputError, match="prompt-free"):
        make_config({"task": "roads", "prompt": "box"})
    with pytest.raises(InputError, match="only road runs"):
        make_config({"task": "buildings", "cldice_weight": 0.5})
    assert make_config({"task": "roads", "model": "unet"}).run_name == "roads_unet_small"


def test_cldice_adds_a_topology_term_that_reaches_the_weights() -> None:
    torch.manual_seed(0)
    target = torch.zeros(2, 2, 64, 64)
    target[:, 0, 22:42, :] = 1.0  # a 20 px road across the chip: 4 m at 0.2 m pixels
    target[:, 1, 32, :] = 1.0  # its centre line
    logits = torch.randn(2, 2, 64, 64, requires_grad=True)
    plain = tasks.SegmentationLoss()(logits, target)
    topo = tasks.SegmentationLoss(cldice_weight=1.0)(logits, target)
    assert torch.equal(plain[:, 1], topo[:, 1])  # the centre-line channel is unchanged
    assert (topo[:, 0] > plain[:, 0] + 0.1).all()  # the road's skeleton is not eroded away
    topo.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_cldice_sees_a_break_in_a_road_as_wide_as_a_real_one() -> None:
    road = torch.zeros(1, 2, 64, 64)
    road[:, 0, 22:42, :] = 1.0  # 20 px: a 4 m road at 0.2 m pixels
    complete = road * 20 - 10
    broken = complete.clone()
    broken[..., 28:36] = -10.0  # an 8 px gap across the road
    loss = tasks.SegmentationLoss(cldice_weight=1.0)
    dice_only = tasks.SegmentationLoss()
    gain = (loss(broken, road) - dice_only(broken, road))[0, 0]
    # with too few erosions the true skeleton of so wide a road is empty and the break is free
    assert gain > 0.05
    assert (loss(complete, road) - dice_only(complete, road))[0, 0] < 1e-3


def test_the_best_graph_setting_wins_and_ties_go_to_the_default() -> None:
    truth = {"AOI_2_Vegas_img1": [np.array([[10.0, 100.0], [290.0, 100.0]])]}
    road = np.zeros((200, 300), np.float32)
    road[95:106, 5:295] = 0.45  # above 0.3, not above 0.5: only the low threshold finds it
    probs = {"AOI_2_Vegas_img1": (road, (0.3, 0.3))}
    settings = tuple(dataclasses.replace(DEFAULT_OPTIONS, threshold=t) for t in (0.5, 0.3, 0.2))
    best = road_validation.score_settings(probs, truth, settings)
    assert best.options.threshold == 0.3
    assert best.apls > 0.9
    assert best.per_setting["t=0.5 gap=6m"] == 0.0
    assert best.per_setting["t=0.2 gap=6m"] == best.apls  # a tie: 0.3 is nearer 0.5
    nothing = {"AOI_2_Vegas_img1": (np.zeros((200, 300), np.float32), (0.3, 0.3))}
    tied = road_validation.score_settings(nothing, truth, settings[::-1])
    assert tied.apls == 0.0 and tied.options.threshold == 0.5  # all 0: the default setting


def test_a_sam2_decoder_road_run_uses_the_embedding_cache_and_resumes_exactly(
        smoke_road_data: loop.TrainData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "validation_row", fake_validation_row)
    config = tiny_config(task="roads", model="sam2", regime="decoder", steps=2,
                         checkpoint_every=1, warmup_steps=1, cldice_weight=0.5)
    assert config.uses_cache
    loop.train(config, smoke_road_data, tmp_path / "straight")
    cached = list((tmp_path / ".embedding_cache").iterdir())
    assert len(cached) == 1 and len(list(cached[0].glob("*.pt"))) == 4  # 2 chips a step
    loop.train(config, smoke_road_data, tmp_path / "split", stop_after=1)
    loop.train(config, smoke_road_data, tmp_path / "split", resume=True)
    assert_same_weights(final_weights(tmp_path / "straight"), final_weights(tmp_path / "split"))
