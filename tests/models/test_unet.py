"""The U-Net baseline: shapes, seeded weights, size checks, one step that learns."""

from __future__ import annotations

import pytest
import torch

from aerialsam.errors import InputError
from aerialsam.models import unet, unet_sizes


def test_output_shape_and_channels() -> None:
    net = unet.build_unet()
    logits = net(torch.rand(2, 3, 64, 96))
    assert logits.shape == (2, len(unet.OUTPUT_CHANNELS), 64, 96)
    assert unet.OUTPUT_CHANNELS == ("footprint", "contact")
    assert sum(p.numel() for p in net.parameters()) < 1_000_000


def test_presets_and_explicit_widths() -> None:
    standard = unet.build_unet(3, "standard")
    assert standard(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    small = sum(p.numel() for p in unet.build_unet(features="small").parameters())
    assert sum(p.numel() for p in standard.parameters()) > 3 * small
    tiny = unet.build_unet(1, (4, 4, 8, 8, 16, 4))
    assert tiny(torch.rand(1, 3, 32, 48)).shape == (1, 1, 32, 48)


def test_same_seed_same_weights_global_rng_untouched() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = unet.build_unet(seed=1), unet.build_unet(seed=1), unet.build_unet(seed=2)
    assert torch.equal(torch.rand(3), expected)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(),
                                                         strict=True))
    images = torch.rand(1, 3, 32, 32)
    assert torch.equal(a(images), b(images))


@pytest.mark.parametrize("shape", [(1, 3, 70, 64), (1, 3, 64, 40), (1, 3, 16, 64), (1, 1, 64, 64),
                                   (3, 64, 64)])
def test_refuses_bad_input_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match="images"):
        unet.build_unet()(torch.rand(shape))


@pytest.mark.parametrize(("kwargs", "match"), [({"features": "huge"}, "huge"),
                                               ({"features": (8, 8, 8)}, "six"),
                                               ({"out_channels": 0}, "at least 1")])
def test_refuses_bad_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        unet.build_unet(**kwargs)


def test_one_step_lowers_the_loss() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 64, 64, generator=generator)
    targets = torch.zeros(2, 2, 64, 64)
    targets[:, 0, 16:40, 8:30] = 1  # a building; contact stays empty
    net = unet.build_unet(seed=0)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    before = loss_fn(net(images), targets)
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss_fn(net(images), targets)
    assert after.item() < before.item() - 1e-3


def test_resized_call_runs_the_unet_at_its_input_size_and_answers_at_the_chip() -> None:
    net = unet.build_unet()
    seen = []
    net.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[-1]))
    images = torch.rand(2, 3, 64, 64)
    logits = unet.resized_call(net, images, 32)
    assert seen == [32] and logits.shape == (2, 2, 64, 64)
    small = torch.nn.functional.interpolate(images, size=(32, 32), mode="bilinear",
                                            antialias=True)
    expected = torch.nn.functional.interpolate(net(small), size=(64, 64), mode="bilinear")
    assert torch.allclose(logits, expected)
    for same in (None, 64):
        assert torch.equal(unet.resized_call(net, images, same), net(images))


@pytest.mark.parametrize("size", [16, 40, 0])
def test_refuses_an_input_size_it_cannot_take(size: int) -> None:
    with pytest.raises(InputError, match="unet_input_size"):
        unet_sizes.check_input_size(size)
