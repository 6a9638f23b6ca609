"""Shared options: the chip-size bound that keeps ``--size`` from ending in an allocation,
and ``--aoi`` selections."""

from __future__ import annotations

import argparse

import pytest

from aerialsam import cli
from aerialsam.cli.options import MAX_CHIP_SIDE, check_chip_size, chip_side, selected_aois
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


def test_the_parser_type_applies_the_same_bound() -> None:
    assert chip_side("512") == 512
    with pytest.raises(argparse.ArgumentTypeError, match="use at most 16384"):
        chip_side(str(MAX_CHIP_SIDE + 1))
    with pytest.raises(argparse.ArgumentTypeError, match="must be at least 1, got 0"):
        chip_side("0")
    with pytest.raises(argparse.ArgumentTypeError, match="'big' is not an integer"):
        chip_side("big")


@pytest.mark.parametrize("command", [["chip", "a.tif", "out"], ["predict", "sam2", "a.tif", "out"]])
def test_chip_and_predict_refuse_an_absurd_size_in_the_parser(command: list[str], capsys) -> None:
    assert cli.main([*command, "--size", "100000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --size: 100000 px chips would take 28 GiB" in err[0]


def test_aoi_selections() -> None:
    assert selected_aois("all") == ["vegas", "paris", "shanghai", "khartoum"]
    assert selected_aois(" vegas, AOI_3_Paris ,") == ["vegas", "AOI_3_Paris"]


@pytest.mark.parametrize("value", [",", "", " , ,"])
def test_an_aoi_selection_of_no_aoi_is_refused(value: str) -> None:
    # read as "nothing chosen", it would select all four cities
    with pytest.raises(InputError, match=r"^--aoi: .* names no AOI"):
        selected_aois(value)
