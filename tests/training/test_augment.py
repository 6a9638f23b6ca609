"""Aligned, seeded augmentations: dihedral group, zoom alignment, colour jitter on images only."""

from __future__ import annotations

import numpy as np
import pytest

from aerialsam.errors import InputError
from aerialsam.training import augment
from aerialsam.training.augment import AugmentConfig

GEOMETRY_ONLY = AugmentConfig(brightness=0, contrast=0, saturation=0, scale=(1.0, 1.0))
COLOUR_ONLY = AugmentConfig(dihedral=False, scale=(1.0, 1.0))


def asymmetric_image(size: int = 16) -> np.ndarray:
    """An H x W x 3 uint8 image with no symmetry: every pixel value distinct."""
    values = np.arange(size * size * 3, dtype=np.int64).reshape(size, size, 3)
    return (values % 251).astype(np.uint8)


def marked(size: int, row: int, col: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A black image with one white pixel, and a mask marking the same pixel."""
    image = np.zeros((size, size, 3), np.uint8)
    image[row, col] = 255
    mask = np.zeros((size, size), np.uint8)
    mask[row, col] = 1
    return image, {"footprint": mask}


def test_dihedral_transforms_are_eight_distinct_and_a_group() -> None:
    image = asymmetric_image()
    results = [augment.dihedral(image, k) for k in range(8)]
    assert len({r.tobytes() for r in results}) == 8
    assert np.array_equal(results[0], image)
    keys = {r.tobytes(): k for k, r in enumerate(results)}
    for a in range(8):
        for b in range(8):  # closed under composition: every composite is one of the eight
            assert augment.dihedral(results[a], b).tobytes() in keys


def test_dihedral_refuses_bad_index() -> None:
    with pytest.raises(InputError, match="0-7"):
        augment.dihedral(asymmetric_image(), 8)


@pytest.mark.parametrize("seed", range(8))
def test_marked_pixel_moves_with_mask(seed: int) -> None:
    image, masks = marked(12, 2, 7)
    out, out_masks = augment.augment(image, masks, augment.rng_for(seed, 0, 0), GEOMETRY_ONLY)
    white = np.argwhere(out[..., 0] == 255)
    assert white.tolist() == np.argwhere(out_masks["footprint"] == 1).tolist()
    assert len(white) == 1


def test_eight_seeds_reach_all_dihedral_positions() -> None:
    image, masks = marked(12, 2, 7)
    positions = set()
    for seed in range(40):
        _, out = augment.augment(image, masks, augment.rng_for(seed, 0, 0), GEOMETRY_ONLY)
        positions.add(tuple(np.argwhere(out["footprint"])[0]))
    expected = {tuple(np.argwhere(augment.dihedral(masks["footprint"], k))[0]) for k in range(8)}
    assert len(expected) == 8 and positions == expected


@pytest.mark.parametrize("factor", [0.9, 1.1, 0.95, 1.07])
def test_zoom_keeps_image_and_mask_aligned(factor: float) -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    image[20:36, 24:44] = 200
    mask = np.zeros((64, 64), np.uint8)
    mask[20:36, 24:44] = 255
    out, out_masks = augment.zoom(image, {"m": mask}, factor, np.random.default_rng(3))
    bright = out[..., 1] >= 100
    labelled = out_masks["m"] == 255
    assert set(np.unique(out_masks["m"])) <= {0, 255}  # nearest: no new mask values
    assert abs(labelled.sum() - 320 * factor**2) < 40
    iou = (bright & labelled).sum() / (bright | labelled).sum()
    assert iou > 0.9
    centre = np.argwhere(bright).mean(0) - np.argwhere(labelled).mean(0)
    assert np.abs(centre).max() < 0.6


@pytest.mark.parametrize("factor", [0.8, 0.9, 1.1])
def test_zoom_never_cuts_a_one_pixel_line_into_dashes(factor: float) -> None:
    line = np.zeros((64, 64), np.uint8)
    line[10:54, 31] = 255  # a road centre line
    line[40, 5:60] = 255  # and one across it
    _, out = augment.zoom(np.zeros((64, 64, 3), np.uint8), {"road_centerline": line}, factor,
                          np.random.default_rng(1))
    rows, cols = np.nonzero(out["road_centerline"])
    # each line stays one unbroken run of pixels
    vertical = np.unique(rows[cols == np.bincount(cols).argmax()])
    horizontal = np.unique(cols[rows == np.bincount(rows).argmax()])
    for run in (vertical, horizontal):
        assert len(run) > 30 and (np.diff(run) == 1).all()


def test_zoom_out_pads_with_zeros() -> None:
    image = np.full((50, 50, 3), 90, np.uint8)
    out, out_masks = augment.zoom(image, {"m": np.ones((50, 50), bool)}, 0.9,
                                  np.random.default_rng(0))
    assert out.shape == (50, 50, 3) and out_masks["m"].dtype == bool
    assert out_masks["m"].sum() == 45 * 45
    assert (out[..., 0] == 0).sum() == 50 * 50 - 45 * 45


def test_same_seed_same_output_other_seed_differs() -> None:
    image = asymmetric_image(32)
    masks = {"footprint": (asymmetric_image(32)[..., 0] > 120).astype(np.uint8)}
    first = augment.augment(image, masks, augment.rng_for(5, 2, 17))
    again = augment.augment(image, masks, augment.rng_for(5, 2, 17))
    other = augment.augment(image, masks, augment.rng_for(5, 3, 17))
    assert np.array_equal(first[0], again[0])
    assert np.array_equal(first[1]["footprint"], again[1]["footprint"])
    assert not np.array_equal(first[0], other[0])


def test_colour_jitter_changes_image_never_masks() -> None:
    image = asymmetric_image(32)
    masks = {"footprint": np.eye(32, dtype=np.uint8) * 255, "contact": np.tri(32, dtype=bool)}
    out, out_masks = augment.augment(image, masks, augment.rng_for(0, 0, 1), COLOUR_ONLY)
    assert out.dtype == np.uint8 and not np.array_equal(out, image)
    for kind, mask in masks.items():
        assert np.array_equal(out_masks[kind], mask) and out_masks[kind].dtype == mask.dtype


def test_colour_jitter_values() -> None:
    grey = np.full((4, 4, 3), 100, np.uint8)
    config = AugmentConfig(brightness=0.5, contrast=0, saturation=0)
    rng = np.random.default_rng(0)
    factor = np.random.default_rng(0).uniform(0.5, 1.5)
    out = augment.color_jitter(grey, rng, config)
    assert np.all(out == min(255, round(100 * factor)))


def test_channels_first_layout_matches_channels_last() -> None:
    image = asymmetric_image(24)
    masks = {"footprint": (image[..., 1] > 100).astype(np.uint8)}
    hwc, hwc_masks = augment.augment(image, masks, augment.rng_for(1, 1, 1))
    chw, chw_masks = augment.augment(image.transpose(2, 0, 1), masks, augment.rng_for(1, 1, 1))
    assert chw.shape == (3, 24, 24)
    assert np.array_equal(chw.transpose(1, 2, 0), hwc)
    assert np.array_equal(chw_masks["footprint"], hwc_masks["footprint"])


def test_float_images_stay_float_in_range() -> None:
    image = asymmetric_image(16).astype(np.float32) / 255
    out, _ = augment.augment(image, {}, augment.rng_for(0, 0, 0))
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize(("field", "value"), [("brightness", 1.5), ("contrast", -0.1),
                                              ("scale", (1.1, 0.9)), ("scale", (0.0, 1.0))])
def test_bad_config_is_refused(field: str, value: object) -> None:
    with pytest.raises(InputError, match=field):
        AugmentConfig(**{field: value})


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(InputError, match="H x W x 3"):
        augment.augment(np.zeros((8, 8), np.uint8), {}, augment.rng_for(0, 0, 0))
    with pytest.raises(InputError, match="differs"):
        augment.augment(np.zeros((8, 8, 3), np.uint8), {"footprint": np.zeros((8, 9))},
                        augment.rng_for(0, 0, 0))
