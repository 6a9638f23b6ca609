"""Shared options: the chip-size bound that keeps ``--size`` from ending in an allocation."""

from __future__ import annotations

import pytest

from aerialsam.cli.options import MAX_CHIP_SIDE, check_chip_size
from aerialsam.errors import InputError


@pytest.mark.parametrize("size", [1, 650, 1300, MAX_CHIP_SIDE])
def test_sane_chip_sizes_pass(size: int) -> None:
    assert check_chip_size(size) == size


@pytest.mark.parametrize(("size", "problem"), [
    (100_000, "--size: 100000 px chips would take 28 GiB each (uint8 RGB); use at most 16384"),
    (MAX_CHIP_SIDE + 1, "--size: 16385 px chips would take 1 GiB each (uint8 RGB); use at "
                        "most 16384"),
    (0, "--size: must be at least 1, got 0"),
    (-5, "--size: must be at least 1, got -5"),
])
def test_absurd_chip_sizes_are_one_line(size: int, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        check_chip_size(size)
    assert str(caught.value) == problem


def test_the_option_is_named_as_given() -> None:
    with pytest.raises(InputError, match=r"^--chip-size: "):
        check_chip_size(10**6, option="--chip-size")
