"""Training configurations: from a profile, from YAML, refused before any data is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from aerialsam.errors import InputError
from aerialsam.inputs import field_types
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


def _fields_of(kind: type) -> list[str]:
    return [name for name, hint in field_types(TrainConfig).items() if hint is kind]


@pytest.mark.parametrize(("kind", "value", "problem"), [
    (int, '"abc"', "expected an integer, found string 'abc'"),
    (int, "2.5", "expected an integer, found float 2.5"),
    (float, ".nan", "must be a finite number, found nan"),
    (float, "-.inf", "must be a finite number, found -inf"),
    (bool, '"yes"', "expected true or false, found string 'yes'"),
    (bool, "1", "expected true or false, found integer 1"),
    (str, "[a]", "expected a string"),
])
def test_every_field_is_typed_from_its_annotation(tmp_path: Path, kind: type, value: str,
                                                  problem: str) -> None:
    # every field of the kind, those added later included: the schema comes from the class
    names = _fields_of(kind)
    assert names, kind
    for name in names:
        path = write(tmp_path / "run.yaml", f"{name}: {value}\n")
        with pytest.raises(InputError) as caught:
            load_config(path)
        assert caught.value.source == str(path), name
        assert caught.value.problem.startswith(f"{name}: {problem}"), caught.value.problem


def test_numbers_as_people_write_them(tmp_path: Path) -> None:
    path = write(tmp_path / "run.yaml", "lr: 3e-4\nsteps: 1.0e+3\naugment: no\nbox_jitter: 0\n")
    config = load_config(path)
    assert (config.lr, config.steps, config.augment, config.box_jitter) == (3e-4, 1000, False, 0.0)
    assert isinstance(config.steps, int) and isinstance(config.box_jitter, float)


@pytest.mark.parametrize(("text", "problem"), [
    ("seed: -1\n", "seed: must be at least 0, got -1"),
    ("box_jitter: 1.5\n", "box_jitter: must be between 0 and 1, got 1.5"),
    ("clip_grad: 0\n", "clip_grad: must be positive, got 0.0"),
    ("image_size: 100\n", "image_size: must be a positive multiple of 32"),
    ("unet_input_size: 40\n", "unet_input_size: must be a multiple of 16"),
    ("model: cnn\n", "model: unknown value 'cnn'"),
    ("profile: huge\n", "profile: unknown profile 'huge'"),
    ("profile: [smoke]\n", "profile: unknown profile ['smoke']"),
    ("aois: AOI_2_Vegas\n", "aois: expected a list or null"),
])
def test_bounds_and_choices_name_the_file(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path / "run.yaml", text)
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert caught.value.source == str(path) and problem in caught.value.problem


def test_binary_and_non_utf8_files_are_refused(tmp_path: Path) -> None:
    binary = tmp_path / "run.yaml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(InputError, match="not UTF-8 text"):
        load_config(binary)


def test_objects_made_in_code_are_bounded_too() -> None:
    with pytest.raises(InputError, match="must be a finite number, got nan") as caught:
        TrainConfig(lr=float("nan"))
    assert caught.value.source == "lr"
    with pytest.raises(InputError, match="workers: must be at least 0"):
        make_config({"workers": -1}, source="runs/x/run.json")
