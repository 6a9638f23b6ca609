"""Training configurations: from a profile, from YAML, refused before any data is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from aerialsam.errors import InputError
from aerialsam.training.train_config import TrainConfig, from_profile, load_config, make_config


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_profile_sets_size_steps_batch_and_seed() -> None:
    config = load_config("smoke")
    assert (config.variant, config.checkpoint, config.image_size) == ("tiny", "random", 256)
    assert (config.steps, config.batch_size, config.seed) == (4, 2, 0)
    assert (config.checkpoint_every, config.warmup_steps) == (4, 1)
    assert config.run_name == "sam2_tiny_decoder_none" and config.uses_cache


def test_overrides_and_run_names() -> None:
    config = from_profile("smoke", model="unet", steps=2, aois=["AOI_2_Vegas"])
    assert config.steps == 2 and config.aois == ("AOI_2_Vegas",)
    assert config.run_name == "unet_small" and not config.uses_cache
    assert from_profile("smoke", regime="lora", prompt="box").run_name == "sam2_tiny_lora_box"
    assert not from_profile("smoke", regime="full").uses_cache
    assert from_profile("smoke", name="mine").run_name == "mine"


def test_round_trip_through_a_dictionary() -> None:
    config = from_profile("smoke", aois=("AOI_2_Vegas", "AOI_3_Paris"), lr=1e-3)
    values = config.to_dict()
    assert values["aois"] == ["AOI_2_Vegas", "AOI_3_Paris"]
    assert make_config(values) == config


def test_yaml_file_with_and_without_profile(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.yaml", "model: unet\nsteps: 7\nlr: 0.001\n")
    config = load_config(plain)
    assert (config.model, config.steps, config.lr) == ("unet", 7, 0.001)
    assert config.image_size == TrainConfig().image_size  # no profile: the class defaults
    based = write(tmp_path / "based.yaml", "profile: smoke\nmodel: unet\nsteps: 7\n")
    config = load_config(based, steps=3)  # command-line options beat the file
    assert (config.model, config.steps, config.image_size) == ("unet", 3, 256)


@pytest.mark.parametrize("text", ["model: unet\nlearning_rate: 0.1\n",
                                  "profile: smoke\nlearning_rate: 0.1\n"])
def test_unknown_key_names_the_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "run.yaml", text)
    with pytest.raises(InputError, match=r"unknown key\(s\) \['learning_rate'\]") as caught:
        load_config(path)
    assert caught.value.source == str(path)


@pytest.mark.parametrize(("text", "problem"), [
    ("model: [unet\n", "not valid YAML"),
    ("- model\n- unet\n", "expected a mapping"),
])
def test_malformed_yaml(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(InputError, match=problem) as caught:
        load_config(path)
    assert caught.value.source == str(path)


def test_missing_file_and_unknown_profile(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="config file not found") as caught:
        load_config(tmp_path / "missing.yaml")
    assert caught.value.source == str(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="smok"):
        load_config("smok")


@pytest.mark.parametrize(("key", "value"), [
    ("model", "cnn"), ("regime", "adapter"), ("prompt", "mask"), ("amp", "fp8"),
    ("variant", "huge"), ("image_size", 100), ("steps", 0), ("batch_size", 0),
    ("grad_accum", 0), ("lr", 0.0), ("lr", -1e-3),
])
def test_invalid_values(key: str, value: object) -> None:
    with pytest.raises(InputError) as caught:
        from_profile("smoke", **{key: value})
    assert str(value) in str(caught.value)


def test_make_config_names_its_source() -> None:
    with pytest.raises(InputError, match="unknown key") as caught:
        make_config({"model": "unet", "epochs": 3}, source="runs/x/run.json")
    assert caught.value.source == "runs/x/run.json"
