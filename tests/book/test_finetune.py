"""The book's fine-tuning helpers (chapters 07 and 08): settings, loading runs, cost figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from aerialsam import config
from aerialsam.book import chapter_runs, costs, finetune
from aerialsam.errors import InputError
from aerialsam.training import runs, train_config
from aerialsam.training.loop import TrainData
from aerialsam.viz import curves

matplotlib.use("Agg")


@pytest.mark.parametrize("profile", sorted(config.PROFILES))
@pytest.mark.parametrize("model", ["sam2", "unet"])
def test_book_overrides_make_valid_configs(profile: str, model: str) -> None:
    cfg = config.load_profile(profile)
    made = train_config.from_profile(cfg, **chapter_runs.book_overrides(cfg, model))
    assert made.model == model
    assert made.run_name == f"book_{model}"
    assert made.batch_size == cfg.batch_size
    halved = profile == "demo"
    assert made.steps == (cfg.train_steps // 2 if halved else cfg.train_steps)


def test_smoke_runs_two_cities_at_128_px() -> None:
    cfg = config.load_profile("smoke")
    made = train_config.from_profile(cfg, **chapter_runs.book_overrides(cfg))
    assert made.aois == ("AOI_2_Vegas", "AOI_4_Shanghai")
    assert made.image_size == 128


def test_profile_train_chips() -> None:
    # full: 650 px tiles, 512 px chips with 64 px overlap: 2 x 2 chips; 70 % of 800 tiles
    assert costs.profile_train_chips(config.load_profile("full")) == 2240
    # smoke: 256 px chips with 32 px overlap: offsets 0, 224, 394 -> 9 chips; 70 % of 12 tiles
    assert costs.profile_train_chips(config.load_profile("smoke")) == 76


def test_gpu_estimate_figures() -> None:
    table = costs.gpu_estimate(20_000, 16, decoder_gflops=3.0, train_chips=1000)
    # full: 3 x (207 + 3) GFLOP x 320,000 images = 201.6 PFLOP, at 30 % of 989 TFLOP/s
    assert table.loc["full", "PFLOP"] == pytest.approx(201.6)
    assert table.loc["full", "minutes"] == pytest.approx(201.6e15 / (0.3 * 989e12) / 60, abs=0.01)
    # decoder: 207 GFLOP x 1000 chips once + 3 x 3 GFLOP x 320,000 = 3.087 PFLOP
    assert table.loc["decoder (cached encoder)", "PFLOP"] == pytest.approx(3.09, abs=0.01)


def _metrics() -> pd.DataFrame:
    rows = [{"step": s, "epoch": 0, "split": "train", "loss": 2.0 - 0.1 * s, "pixel_iou": 0.05 * s,
             "f1": float("nan"), "seconds": float(s)} for s in range(1, 11)]
    rows += [{"step": 5, "epoch": 0, "split": "val", "loss": 1.5, "pixel_iou": 0.2, "f1": 0.1},
             {"step": 10, "epoch": 1, "split": "val", "loss": 1.2, "pixel_iou": 0.4, "f1": 0.3}]
    return pd.DataFrame(rows)


def test_curve_summary_start_and_end() -> None:
    table = finetune.curve_summary(_metrics())
    assert table.loc["train loss"].tolist() == [1.9, 1.0]
    assert table.loc["val loss"].tolist() == [1.5, 1.2]
    assert table.loc["val SpaceNet F1"].tolist() == [0.1, 0.3]
    assert table.attrs["val_steps"] == [5, 10]


def test_run_cache_savings_projects_the_step_times() -> None:
    cfg = train_config.make_config({"steps": 10, "batch_size": 2})
    timing = pd.DataFrame({"seconds per step": [4.0, 5.0, 1.0]})
    saved = costs.run_cache_savings(timing, cfg, train_chips=8)
    # 4 steps per epoch: 4 x 5 s, then 6 x 1 s; against 10 x 4 s
    assert saved["seconds with cache"] == 26.0
    assert saved["seconds without cache"] == 40.0
    assert saved["speed-up"] == pytest.approx(1.54)


def _finished_run(runs_dir: Path, made: train_config.TrainConfig) -> Path:
    run_dir = runs_dir / made.run_name
    run_dir.mkdir(parents=True)
    runs.write_run_json(run_dir, made, threshold=0.5, step=made.steps,
                        metrics={"val_f1": 0.25, "val_pixel_iou": 0.5, "val_loss": 1.0,
                                 "threshold": 0.5})
    (run_dir / runs.MODEL_FILE).write_bytes(b"weights")
    return run_dir


def test_train_or_load_loads_a_finished_run(tmp_path: Path) -> None:
    made = train_config.make_config({"name": "book_unet", "model": "unet", "steps": 3})
    run_dir = _finished_run(tmp_path, made)
    nowhere = TrainData(tmp_path / "no_chips", tmp_path / "no_masks", tmp_path / "no.csv")
    result = chapter_runs.train_or_load(made, nowhere, tmp_path)
    assert result.run_dir == run_dir and result.step == 3
    assert result.metrics["val_f1"] == 0.25


def test_train_or_load_refuses_a_run_with_other_settings(tmp_path: Path) -> None:
    made = train_config.make_config({"name": "book_unet", "model": "unet", "steps": 3})
    _finished_run(tmp_path, made)
    other = train_config.make_config({"name": "book_unet", "model": "unet", "steps": 5})
    nowhere = TrainData(tmp_path / "no_chips", tmp_path / "no_masks", tmp_path / "no.csv")
    with pytest.raises(InputError, match="steps"):
        chapter_runs.train_or_load(other, nowhere, tmp_path)


def test_figures_draw() -> None:
    fig = curves.plot_curves({"a": _metrics(), "b": _metrics()}, "two runs")
    assert len(fig.axes) == 3
    assert len(fig.axes[2].lines) == 2  # one validation F1 line per run
    timing = pd.DataFrame({"seconds per step": [4.0, 5.0, 1.0], "speed-up": [1.0, 0.8, 4.0]},
                          index=["none", "first", "later"])
    assert len(curves.plot_cache_timing(timing).axes[0].patches) == 3


def test_book_runs_see_chips_at_one_input_size() -> None:
    demo = config.load_profile("demo")
    sam, unet = (train_config.from_profile(demo, **chapter_runs.book_overrides(demo, m))
                 for m in ("sam2", "unet"))
    assert sam.image_size == unet.unet_input_size == demo.book.run_image_size == 256
    full = config.load_profile("full")
    assert train_config.from_profile(full, **chapter_runs.book_overrides(full, "unet")) \
        .unet_input_size is None  # the chips as they are


def test_final_scores_report_each_task_by_its_own_metric(tmp_path: Path) -> None:
    building = _finished_run(tmp_path, train_config.make_config(
        {"name": "book_unet", "model": "unet", "steps": 3}))
    road = tmp_path / "roads"
    road.mkdir()
    runs.write_run_json(road, train_config.make_config(
        {"name": "roads", "model": "unet", "task": "roads", "steps": 3}), step=3,
        metrics={"val_apls": 0.4, "val_pixel_iou": 0.3, "val_loss": 1.1},
        road_graph={"threshold": 0.7, "gap_m": 6.0})
    for folder in (building, road):
        pd.DataFrame({"split": ["train"], "seconds": [2.0]}).to_csv(folder / runs.METRICS_FILE)
    table = finetune.final_scores({"buildings": building, "roads": road})
    assert table.loc["buildings", "val SpaceNet F1"] == 0.25
    assert table.loc["roads", "val APLS"] == 0.4
    assert table.loc["roads", "threshold"] == 0.7
    assert pd.isna(table.loc["roads", "val SpaceNet F1"])
    metrics = _metrics().assign(f1=float("nan"), apls=[float("nan")] * 10 + [0.2, 0.5])
    summary = finetune.curve_summary(metrics)
    assert summary.loc["val APLS"].tolist() == [0.2, 0.5]
    assert "val SpaceNet F1" not in summary.index
