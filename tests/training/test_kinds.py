"""The model-kind table: every model the configuration accepts has one kind, and each kind
gives what the stages ask of it."""

from __future__ import annotations

import torch

from aerialsam.training import kinds
from aerialsam.training.train_config import MODELS
from tests.training_helpers import tiny_config


def test_every_configurable_model_has_exactly_one_kind() -> None:
    assert set(kinds.KINDS) == set(MODELS)
    assert all(kind.name == name for name, kind in kinds.KINDS.items())


def test_own_fields_are_configuration_fields_of_one_kind_only() -> None:
    fields = set(tiny_config().to_dict())
    own = [set(kind.own_fields) for kind in kinds.KINDS.values()]
    assert all(o <= fields for o in own)
    assert not set.intersection(*own)


def test_only_prompt_trained_sam2_needs_prompts() -> None:
    assert not kinds.kind_of(tiny_config(model="unet", prompt="box")).needs_prompts(
        tiny_config(model="unet", prompt="box"))
    for prompt, needed in (("none", False), ("box", True), ("point", True)):
        config = tiny_config(prompt=prompt)
        assert kinds.kind_of(config).needs_prompts(config) is needed


def test_input_size_is_sam2_input_or_unet_chip_side() -> None:
    sam, unet = tiny_config(), tiny_config(model="unet")
    assert kinds.kind_of(sam).input_size(sam, {"chip_size": 256}) == sam.image_size
    assert kinds.kind_of(unet).input_size(unet, {"chip_size": 256}) == 256


def test_unet_round_trip_through_final_state_and_rebuild() -> None:
    config = tiny_config(model="unet")
    kind = kinds.kind_of(config)
    model = kind.build(config)
    state = kind.final_state(model, config)
    rebuilt = kind.rebuild(config, state, "model.pt")
    rebuilt.load_state_dict(state)
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in state.items())
    assert kind.label(config) == "U-Net"


def test_chip_models_give_footprint_and_contact() -> None:
    chips = torch.zeros(2, 64, 64, 3, dtype=torch.uint8).numpy()
    for model in ("unet", "sam2"):
        config = tiny_config(model=model)
        kind = kinds.kind_of(config)
        net = kind.build(config).eval()
        probs = kind.chip_model(net, config, None)(chips, [None, None])
        assert probs.shape == (2, 2, 64, 64)
        assert ((probs >= 0) & (probs <= 1)).all()


def test_a_unet_with_an_input_size_sees_chips_at_it_and_answers_at_chip_size() -> None:
    config = tiny_config(model="unet", unet_input_size=32)
    kind = kinds.kind_of(config)
    net = kind.build(config).eval()
    seen = []
    net.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[-2:]))
    chips = torch.randint(0, 255, (2, 64, 64, 3), dtype=torch.uint8).numpy()
    probs = kind.chip_model(net, config, None)(chips, [None, None])
    assert probs.shape == (2, 2, 64, 64) and seen == [(32, 32)]
    batch = {"image": torch.rand(2, 3, 64, 64), "footprint": torch.zeros(2, 1, 64, 64),
             "contact": torch.zeros(2, 1, 64, 64)}
    loss, _ = kind.task(net.train(), config, None)(batch)
    assert seen[-1] == (32, 32) and torch.isfinite(loss)
