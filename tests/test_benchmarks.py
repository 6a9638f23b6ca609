"""The benchmark scripts still import what they measure (they run outside the tests), and
the road cases run their quick paths on small inputs: figures are never asserted, only that
they are there and add up."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from rasterio.windows import Window

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(script: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import a benchmark script as the scripts run (their folder on ``sys.path``)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"_bench_{script.stem}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bench_train(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return _load(BENCHMARKS / "bench_train.py", monkeypatch)


@pytest.fixture
def bench_roads(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return _load(BENCHMARKS / "bench_roads.py", monkeypatch)


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("bench_*.py")), ids=lambda p: p.stem)
def test_benchmark_imports(script: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert callable(_load(script, monkeypatch).main)


def test_road_train_cases_differ_from_their_building_case_only_in_the_task(
        bench_train: ModuleType) -> None:
    configs = {case: bench_train._run_config(case, 256) for case in bench_train.CASES}
    for building, road in bench_train.ROAD_PAIRS.items():
        assert configs[road].task == "roads" and configs[building].task == "buildings"
        as_building = dataclasses.replace(configs[road], task="buildings", name=building)
        assert as_building == configs[building]
    cldice = configs["road_unet_cldice"]
    assert cldice.cldice_weight > 0
    assert dataclasses.replace(cldice, cldice_weight=0.0, name="road_unet") == configs["road_unet"]
    assert bench_train._steps("road_unet_cldice", "full") == bench_train._steps("unet", "full")


def test_a_road_case_takes_its_quick_steps_on_road_chips(
        bench_train: ModuleType, smoke_road_data_dir: Path, tmp_path: Path) -> None:
    out = bench_train.child("road_unet", smoke_road_data_dir, tmp_path, "quick", 256)
    assert out["task"] == "roads" and out["train_chips"] > 0
    assert out["steps"] == bench_train.STEPS["quick"]["unet"]
    assert 0 < out["s_per_step"] <= out["median_s_per_step"]
    assert np.isfinite(out["last_loss"])


def test_an_interleaved_group_steps_building_and_road_runs_in_turn(
        bench_train: ModuleType, smoke_data_dir: Path, smoke_road_data_dir: Path,
        tmp_path: Path) -> None:
    roots = {"buildings": smoke_data_dir, "roads": smoke_road_data_dir}
    out = bench_train.interleaved("unet", roots, tmp_path, "quick", 256)
    runs = out["runs"]
    assert list(runs) == ["unet", "road_unet", "road_unet_cldice"]
    assert [r["task"] for r in runs.values()] == ["buildings", "roads", "roads"]
    assert all(r["steps"] == bench_train.STEPS["quick"]["unet"] for r in runs.values())
    ratios = bench_train._road_ratios({**runs, "decoder_nocache": runs["unet"],
                                       "road_decoder_nocache": runs["road_unet"]})
    assert ratios["road_vs_building"]["unet"]["road_over_building_steps_per_s"] > 0
    assert ratios["cldice_cost"]["s_per_step_ratio"] > 0


def test_road_ratios_are_building_time_over_road_time(bench_train: ModuleType) -> None:
    def figures(seconds: float) -> dict[str, float]:
        return {"s_per_step": seconds, "cpu_s_per_step": 2 * seconds,
                "median_s_per_step": seconds, "peak_rss_mb": 100.0}

    cases = {"decoder_nocache": figures(1.0), "road_decoder_nocache": figures(0.5),
             "unet": figures(0.2), "road_unet": figures(0.4), "road_unet_cldice": figures(0.6)}
    ratios = bench_train._road_ratios(cases)
    assert ratios["road_vs_building"]["decoder"]["road_over_building_steps_per_s"] == 2.0
    assert ratios["road_vs_building"]["unet"]["road_over_building_steps_per_s"] == 0.5
    assert ratios["cldice_cost"]["s_per_step_ratio"] == 1.5


def test_road_inference_quick_path_splits_its_time(
        bench_roads: ModuleType, smoke_road_data_dir: Path) -> None:
    line = bench_roads.main(["--quick", "--crop", "256", "--size", "256", "--overlap", "32",
                             "--batch-size", "1", "--data", str(smoke_road_data_dir)])
    assert line["tiles"] == 1 and line["tile_px"] == "256x256"
    for path in ("road", "building"):
        figures = line[path]
        assert 0 < figures["chip_model_s"] <= figures["predict_raster_s"]
        assert figures["predict_raster_s"] + figures["extract_s"] <= figures["total_s"]
    assert line["road"]["sections"] >= 0 and line["building"]["polygons"] >= 0
    assert line["road_over_building_tiles_per_s"] > 0
    realistic = line["realistic"]
    assert realistic["read_road_graph_s"] > 0 and realistic["extract_s"] > 0
    assert realistic["estimated_road_tiles_per_s"] > 0


def test_the_sam2_road_model_gives_two_channels(bench_roads: ModuleType) -> None:
    model = bench_roads.make_model("sam2", 256)
    probs = model(np.zeros((1, 256, 256, 3), np.uint8), [Window(0, 0, 256, 256)])
    assert probs.shape == (1, 2, 256, 256)


def test_the_book_benchmark_lists_each_notebooks_slowest_cells(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import nbformat
    bench_book = _load(BENCHMARKS / "bench_book.py", monkeypatch)
    book = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# title"),
        *(nbformat.v4.new_code_cell(f"step_{i}()\nmore()") for i in range(5))])
    for i, seconds in zip(range(1, 6), [0.5, 30.04, None, 12.0, 2.0], strict=True):
        book.cells[i].metadata["papermill"] = {"duration": seconds}
    path = tmp_path / "executed.ipynb"
    nbformat.write(book, path)
    cells = bench_book.cell_times(path)
    assert [(c["cell"], c["s"], c["code"]) for c in cells] == [
        (2, 30.0, "step_1()"), (4, 12.0, "step_3()"), (5, 2.0, "step_4()")]
    assert bench_book.BUDGET_S == 35 * 60
    assert bench_book.reference_seconds(steps=1) > 0


def test_the_gpu_suite_runs_every_case_in_its_smoke_mode(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    suite = _load(BENCHMARKS / "gpu_suite.py", monkeypatch)
    line = suite.main(["--smoke", "--out", str(tmp_path)])
    rows = line["results"]
    assert [r for r in rows if "error" in r] == []
    cases = [(r["case"], r.get("mode") or r.get("regime") or r.get("memory") or "")
             for r in rows]
    assert ("ceiling", "") in cases and ("boxes", "") in cases and ("tile", "") in cases
    assert {m for c, m in cases if c == "train"} == {"decoder", "lora", "full", "",
                                                     "channels_last"}
    assert {m.split(" ")[0] for c, m in cases if c == "encoder"} == {"eager", "compile"}
    encoder = next(r for r in rows if r["case"] == "encoder")
    assert 0 < encoder["fraction_of_ceiling"] and encoder["gflop_per_image"] > 0
    assert (tmp_path / "gpu_suite.json").exists()
    assert "| encoder | tiny |" in (tmp_path / "gpu_suite.md").read_text()


def test_the_gpu_suite_reports_a_failing_case_and_runs_the_rest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    suite = _load(BENCHMARKS / "gpu_suite.py", monkeypatch)
    run = suite.Suite(torch.device("cpu"), suite.SMOKE, budget_s=60.0,
                      started=time.perf_counter(), results=[])

    def out_of_memory() -> dict:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20 GiB\nmore")

    run.case("encoder", out_of_memory, variant="large")
    run.case("boxes", lambda: {"boxes_per_s": 1.0})
    run.budget_s = -1.0
    run.case("tile", lambda: {"tiles_per_s": 1.0})
    assert run.results[0]["error"] == ("OutOfMemoryError: CUDA out of memory. Tried to "
                                       "allocate 20 GiB")
    assert run.results[1] == {"case": "boxes", "boxes_per_s": 1.0}
    assert "budget ran out" in run.results[2]["error"]
