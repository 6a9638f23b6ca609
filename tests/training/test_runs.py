"""Reading a run folder's ``run.json``: every bad file is one line naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aerialsam.errors import InputError
from aerialsam.training import runs
from aerialsam.training.train_config import TrainConfig


def _run(tmp_path: Path, content: bytes) -> Path:
    (tmp_path / runs.RUN_FILE).write_bytes(content)
    return tmp_path


def test_a_run_json_is_read_with_its_config(tmp_path: Path) -> None:
    run = runs.read_run(_run(tmp_path, json.dumps({
        "config": {"model": "unet", "steps": 2}, "step": 2, "chip_size": 256.0, "overlap": 32,
        "threshold": 0.4, "metrics": {"val_f1": 0.5}}).encode()))
    assert isinstance(run["config"], TrainConfig) and run["config"].steps == 2
    assert (run["step"], run["chip_size"], run["overlap"], run["threshold"]) == (2, 256, 32, 0.4)
    assert isinstance(run["chip_size"], int) and run["metrics"] == {"val_f1": 0.5}


@pytest.mark.parametrize(("content", "problem"), [
    (bytes(range(256)), "not UTF-8 text: NUL byte at byte offset 0"),
    ('{"config": {"name": "Café"}}'.encode("latin-1"), "not UTF-8 text: byte 0xe9"),
    (b'{"config": {"model": "unet"', "not valid JSON (line 1"),
    (b"[" * 20000 + b"]" * 20000, "not valid JSON: nested too deeply"),
    (b"[1, 2]", "not a readable run file (expected a JSON object with a 'config' object)"),
    (b'{"config": [1]}', "not a readable run file (expected a JSON object"),
    (b'{"step": 3}', "not a readable run file (expected a JSON object"),
    (b'{"config": {"model": "unet", "lr": NaN}}', "lr: must be a finite number"),
    (b'{"config": {"model": "unet", "steps": "abc"}}', "steps: expected an integer"),
    (b'{"config": {"model": "unet"}, "threshold": "high"}', "threshold: expected a number"),
    (b'{"config": {"model": "unet"}, "threshold": 2}', "threshold: must be between 0 and 1"),
    (b'{"config": {"model": "unet"}, "chip_size": 0}', "chip_size: must be at least 1"),
    (b'{"config": {"model": "unet"}, "overlap": 1.5}', "overlap: expected an integer"),
    (b'{"config": {"model": "unet"}, "step": -1}', "step: must be at least 0"),
])
def test_a_bad_run_json_is_one_line_naming_it(tmp_path: Path, content: bytes,
                                              problem: str) -> None:
    with pytest.raises(InputError) as caught:
        runs.read_run(_run(tmp_path, content))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / runs.RUN_FILE}: {problem}"), message
    assert "\n" not in message


def test_a_folder_without_run_json_is_no_run(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"not a fine-tuning run folder \(no run.json\)"):
        runs.read_run(tmp_path)
