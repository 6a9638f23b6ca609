"""ChipDataset over a tiny demo run: split sizes, targets, prompts, augmentation, bad input."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from scipy import ndimage
from torch.utils.data import DataLoader

from aerialsam import config
from aerialsam.errors import InputError
from aerialsam.prep import chips, splits
from aerialsam.training import augment, datasets
from aerialsam.training.augment import AugmentConfig

CHIPS_PER_TILE = 9  # 650 px tiles, 256 px chips overlapping by 32: offsets 0, 224, 448


@dataclass(frozen=True)
class Run:
    """The folders of a prepared smoke run, plus tile-by-tile splits (1/1/1 tiles per AOI)."""

    data_dir: Path
    chips: Path
    masks: Path
    splits: Path
    by_tile: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Demo AOIs of 3 tiles each, chipped at 256 px (overlap 32), masks, two splits files."""
    data_dir = tmp_path_factory.mktemp("train_data")
    profile = config.load_profile("smoke")
    assert (profile.tiles_per_aoi, profile.chip_size, profile.chip_overlap) == (3, 256, 32)
    chips_dir, masks_dir, splits_path = datasets.prepare_training_data(profile, data_dir)
    by_tile = data_dir / "splits_by_tile.csv"
    splits.make_splits(chips.read_index(chips_dir / "chips.csv"), by_tile, seed=0)
    return Run(data_dir, chips_dir, masks_dir, splits_path, by_tile)


def dataset(run: Run, split: str = "train", **kwargs: object) -> datasets.ChipDataset:
    return datasets.ChipDataset(run.chips, run.masks, run.by_tile, split, **kwargs)


def test_split_lengths(run: Run) -> None:
    table = splits.read_splits(run.by_tile)
    sizes = {}
    for split in splits.SPLITS:
        ds = dataset(run, split)
        sizes[split] = len(ds)
        tiles = set(table.loc[table["split"] == split, "image_id"])
        assert set(ds.chips["image_id"]) == tiles
    assert sizes == {"train": 4 * CHIPS_PER_TILE, "val": 4 * CHIPS_PER_TILE,
                     "test": 4 * CHIPS_PER_TILE}
    assert len(dataset(run, "val", aois=["vegas", "AOI_3_Paris"])) == 2 * CHIPS_PER_TILE


def test_item_contents_match_files(run: Run) -> None:
    ds = dataset(run, "val", targets=("contact",))
    item = ds[4]
    row = ds.chips.iloc[4]
    with rasterio.open(run.chips / row["path"]) as src:
        pixels = src.read()
    with rasterio.open(run.masks / row["contact"]) as src:
        contact = src.read(1)
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 256, 256)
    assert torch.allclose(item["image"], torch.from_numpy(pixels[:3] / 255).float())
    assert set(item) >= {"footprint", "contact", "boxes", "points", "chip_id", "image_id", "aoi"}
    assert item["footprint"].shape == (1, 256, 256)
    assert torch.equal(item["contact"][0], torch.from_numpy((contact > 0).astype(np.float32)))
    assert (item["chip_id"], item["image_id"], item["aoi"]) == (
        row["chip_id"], row["image_id"], row["aoi"])


def test_boxes_and_points_match_footprint_instances(run: Run) -> None:
    ds = dataset(run, "train")
    counts = []
    for index in range(0, len(ds), 4):
        item = ds[index]
        footprint = item["footprint"][0].numpy() > 0
        labels, count = ndimage.label(footprint)
        counts.append(count)
        assert item["boxes"].shape == (count, 4) and item["points"].shape == (count, 2)
        for n, (box, point) in enumerate(zip(item["boxes"], item["points"], strict=True), 1):
            rows, cols = np.nonzero(labels == n)
            assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
            col, row = int(point[0]), int(point[1])
            assert labels[row, col] == n  # the point lies inside its own building
    assert 0 in counts and max(counts) >= 5  # empty chips and dense chips were both seen


def test_a_prompt_free_dataset_skips_the_prompts_and_nothing_else(run: Run) -> None:
    with_prompts = dataset(run, "train")
    without = dataset(run, "train", prompts=False)
    for index in (0, len(without) - 1):
        a, b = with_prompts[index], without[index]
        assert b["boxes"].shape == (0, 4) and b["points"].shape == (0, 2)
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["footprint"], b["footprint"])


def test_building_prompts_exact() -> None:
    footprint = np.zeros((20, 30), np.uint8)
    footprint[2:7, 3:8] = 1  # a 5 x 5 square: centre pixel (row 4, column 5)
    footprint[15:20, 20:30] = 1  # cut by the bottom-right corner
    boxes, points = datasets.building_prompts(footprint)
    assert boxes.tolist() == [[3, 2, 8, 7], [20, 15, 30, 20]]
    assert points[0].tolist() == [5.5, 4.5]
    assert points[1][1] == 17.5  # middle row of the cut building: the border is an edge
    empty_boxes, empty_points = datasets.building_prompts(np.zeros((5, 5)))
    assert empty_boxes.shape == (0, 4) and empty_points.shape == (0, 2)


def test_augmentation_is_seeded_and_aligned(run: Run) -> None:
    plain = dataset(run, "train", targets=("contact",))
    augmented = dataset(run, "train", targets=("contact",), augment=True, seed=3)
    index = int(np.argmax([len(plain[i]["boxes"]) for i in range(0, len(plain), 3)])) * 3
    first, again = augmented[index], augmented[index]
    assert torch.equal(first["image"], again["image"])
    assert torch.equal(first["footprint"], again["footprint"])
    assert not torch.equal(first["image"], plain[index]["image"])
    boxes, points = datasets.building_prompts(first["footprint"][0].numpy())
    assert torch.equal(first["boxes"], torch.from_numpy(boxes))
    assert torch.equal(first["points"], torch.from_numpy(points))
    # the labelled buildings, on the host, in the prompts' order: label k has box k - 1
    buildings = first["buildings"]
    assert isinstance(buildings, np.ndarray) and buildings.max() == len(boxes) > 0
    rows, cols = np.nonzero(buildings == 1)
    assert boxes[0].tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
    batch = datasets.collate_unet([first, again])
    assert isinstance(batch["buildings"], list) and len(batch["buildings"]) == 2
    assert not (first["footprint"].bool() & first["contact"].bool()).any()
    augmented.set_epoch(1)
    assert not torch.equal(augmented[index]["image"], first["image"])


def test_dihedral_augmentation_moves_image_masks_and_prompts_together(run: Run) -> None:
    plain = dataset(run, "train", targets=("contact",))
    geometry = AugmentConfig(brightness=0, contrast=0, saturation=0, scale=(1.0, 1.0))
    turned = dataset(run, "train", targets=("contact",), augment=True, augment_config=geometry)
    index = int(np.argmax([len(plain[i]["boxes"]) for i in range(len(plain))]))
    before, after = plain[index], turned[index]
    for k in range(8):
        image = augment.dihedral(before["image"].numpy(), k, axes=(1, 2))
        if np.array_equal(image, after["image"].numpy()):
            break
    else:
        pytest.fail("the augmented image is no dihedral transform of the chip")
    assert k != 0  # this sample is really turned or flipped
    for kind in ("footprint", "contact"):
        expected = augment.dihedral(before[kind].numpy(), k, axes=(1, 2))
        assert np.array_equal(after[kind].numpy(), expected)
    assert len(after["boxes"]) == len(before["boxes"])
    areas = [sorted(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).tolist())
             for b in (before["boxes"], after["boxes"])]
    assert areas[0] == areas[1]  # the same buildings, turned


def test_collate_unet(run: Run) -> None:
    ds = dataset(run, "test", targets=("contact",))
    batch = datasets.collate_unet([ds[0], ds[1], ds[2]])
    assert batch["image"].shape == (3, 3, 256, 256)
    assert batch["footprint"].shape == (3, 1, 256, 256)
    assert batch["contact"].shape == (3, 1, 256, 256)
    assert batch["chip_id"] == [ds[i]["chip_id"] for i in range(3)]
    assert [len(b) for b in batch["boxes"]] == [len(ds[i]["boxes"]) for i in range(3)]
    loader = DataLoader(ds, batch_size=4, collate_fn=datasets.collate_unet)
    assert [len(b["chip_id"]) for b in loader] == [4] * (len(ds) // 4) + [len(ds) % 4] * (
        len(ds) % 4 > 0)


def test_collate_sam2_resizes_image_and_scales_prompts(run: Run) -> None:
    ds = dataset(run, "train")
    items = [ds[i] for i in range(2)]
    batch = datasets.collate_sam2(items, image_size=512)
    assert batch["image"].shape == (2, 3, 512, 512)
    assert batch["footprint"].shape == (2, 1, 256, 256)  # targets stay at chip size
    mean = torch.tensor(datasets.SAM2_MEAN).view(3, 1, 1)
    std = torch.tensor(datasets.SAM2_STD).view(3, 1, 1)
    restored = batch["image"][0] * std + mean
    assert abs(restored.mean().item() - items[0]["image"].mean().item()) < 1e-2
    assert torch.equal(batch["boxes"][0], items[0]["boxes"] * 2)
    assert torch.equal(batch["points"][1], items[1]["points"] * 2)
    same = datasets.collate_sam2(items, image_size=256)
    expected = (items[0]["image"] - mean) / std
    assert torch.allclose(same["image"][0], expected)


def test_prepare_training_data_is_idempotent(run: Run) -> None:
    before = run.splits.stat().st_mtime_ns
    again = datasets.prepare_training_data(config.load_profile("smoke"), run.data_dir)
    assert again == (run.chips, run.masks, run.splits)
    assert run.splits.stat().st_mtime_ns == before
    masks = pd.read_csv(run.masks / "masks.csv", keep_default_na=False)
    assert (masks["contact"] != "").all() and len(masks) == 12 * CHIPS_PER_TILE


def copy_run(run: Run, tmp_path: Path) -> Run:
    shutil.copytree(run.chips, tmp_path / "chips")
    shutil.copytree(run.masks, tmp_path / "masks")
    return Run(tmp_path, tmp_path / "chips", tmp_path / "masks", run.splits, run.by_tile)


def test_missing_mask_names_chip_and_folder(run: Run, tmp_path: Path) -> None:
    copy = copy_run(run, tmp_path)
    chip = dataset(copy, "val").chips.iloc[3]
    (copy.masks / chip["footprint"]).unlink()
    with pytest.raises(InputError) as error:
        dataset(copy, "val")
    assert error.value.source == str(copy.masks) and chip["chip_id"] in error.value.problem
    dataset(copy, "train")  # other splits are still usable


def test_missing_contact_mask_only_matters_when_asked(run: Run, tmp_path: Path) -> None:
    copy = copy_run(run, tmp_path)
    chip = dataset(copy, "test").chips.iloc[0]
    (copy.masks / "contact" / chip["path"]).unlink()
    dataset(copy, "test")
    with pytest.raises(InputError, match=f"no contact mask for chip {chip['chip_id']}"):
        dataset(copy, "test", targets=("footprint", "contact"))


def test_deleted_chip_file_is_named(run: Run, tmp_path: Path) -> None:
    copy = copy_run(run, tmp_path)
    chip = dataset(copy, "train").chips.iloc[5]
    (copy.chips / chip["path"]).unlink()
    with pytest.raises(InputError, match="missing") as error:
        dataset(copy, "train")
    assert error.value.source == str(copy.chips / chip["path"])


def test_split_without_tiles(run: Run, tmp_path: Path) -> None:
    table = splits.read_splits(run.by_tile).assign(split="train")
    path = tmp_path / "splits.csv"
    table.to_csv(path, index=False)
    with pytest.raises(InputError, match="split 'val' has no tiles") as error:
        datasets.ChipDataset(run.chips, run.masks, path, "val")
    assert error.value.source == str(path)
    table.loc[table["aoi"] == "AOI_2_Vegas", "split"] = "test"
    table.to_csv(path, index=False)
    assert len(datasets.ChipDataset(run.chips, run.masks, path, "test")) == 3 * CHIPS_PER_TILE
    with pytest.raises(InputError, match="split 'test' of AOI_3_Paris has no tiles"):
        datasets.ChipDataset(run.chips, run.masks, path, "test", aois=["paris"])


@pytest.mark.parametrize(("kwargs", "match"), [({"targets": ("footprint", "roofs")}, "roofs"),
                                               ({"targets": ("distance",)}, "distance"),
                                               ({"split": "holdout"}, "holdout")])
def test_bad_arguments(run: Run, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        datasets.ChipDataset(run.chips, run.masks, run.by_tile, **kwargs)


def test_missing_index_files(run: Run, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="masks.csv"):
        datasets.ChipDataset(run.chips, tmp_path, run.by_tile)
    with pytest.raises(InputError, match="chips.csv"):
        datasets.ChipDataset(tmp_path, run.masks, run.by_tile)
    with pytest.raises(InputError, match="splits file not found"):
        datasets.ChipDataset(run.chips, run.masks, tmp_path / "none.csv")
