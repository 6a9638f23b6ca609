"""Torch datasets over the chip index: image, target masks, building boxes and points.

A :class:`ChipDataset` reads one split (``train``, ``val`` or ``test``) of a chip folder
(``chips.csv``, :mod:`aerialsam.prep.chips`), its mask folder (``masks.csv``,
:mod:`aerialsam.prep.chip_masks`) and ``splits.csv`` (:mod:`aerialsam.prep.splits`).
Everything that can be wrong with those files is checked in the constructor, so a bad input
stops a run before training starts, with one line naming the file.

Prompts: the mask folder holds no instance labels, so buildings are the 4-connected
components of the footprint mask; the contact mask keeps buildings closer than the contact
spacing apart (their footprints do not touch), so components are buildings except where
footprints share an edge. ``boxes`` are ``x0, y0, x1, y1`` at pixel edges (a one-pixel building
at column 3, row 5 has box ``3, 5, 4, 6``); ``points`` are ``x, y`` at the centre of the pixel
farthest from the building's edge (the chip border counts as an edge). Both are recomputed
after augmentation, from the augmented footprint.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import torch
import torch.nn.functional as F
from rasterio.errors import RasterioIOError
from scipy import ndimage
from torch.utils.data import Dataset

from aerialsam.config import Profile, stage_paths
from aerialsam.data import demo, demo_roads, spacenet, spacenet3
from aerialsam.errors import InputError
from aerialsam.inputs import Column, read_table
from aerialsam.models.variants import SAM2_MEAN, SAM2_STD
from aerialsam.prep import chip_masks, chips, splits
from aerialsam.prep.chip_index import INDEX_FILE, read_index
from aerialsam.prep.chip_masks import MASK_INDEX
from aerialsam.training.augment import AugmentConfig, rng_for
from aerialsam.training.augment import augment as augment_sample

log = logging.getLogger(__name__)

TARGET_KINDS: tuple[str, ...] = ("footprint", "boundary", "contact")
"""Binary building mask kinds a dataset can return as targets."""
ROAD_TARGETS: tuple[str, ...] = ("road", "road_centerline")
"""Binary road mask kinds a dataset can return as targets (SpaceNet 3 chips)."""
ID_KEYS: tuple[str, ...] = ("chip_id", "image_id", "aoi")
PROMPT_KEYS: tuple[str, ...] = ("boxes", "points")
LIST_KEYS: tuple[str, ...] = (*ID_KEYS, *PROMPT_KEYS, "buildings")
"""Item keys a batch keeps as lists (their sizes vary, or they are strings)."""


class ChipDataset(Dataset):
    """Chips of one split with their target masks and building prompts.

    Each item is a dict: ``image`` float32 ``3 x H x W`` in 0..1, one float32 ``1 x H x W``
    {0, 1} tensor per target kind (``footprint`` always for buildings; roads have ``road``
    and ``road_centerline``), ``boxes`` float32 ``N x 4`` and ``points`` float32 ``N x 2``
    (N may be 0; see the module docstring; always 0 for roads, which have no per-object
    prompts), and the strings ``chip_id``, ``image_id``, ``aoi``. With prompts, also
    ``buildings``: the footprint's buildings labelled 1..N in the order of the prompts
    (``H x W`` int32 numpy, so it stays on the host when the batch moves to a GPU).
    """

    def __init__(self, chips_dir: str | Path, masks_dir: str | Path, splits_path: str | Path,
                 split: str = "train", aois: Sequence[str] | None = None,
                 targets: Sequence[str] = ("footprint",), augment: bool = False,
                 seed: int = 0, augment_config: AugmentConfig | None = None,
                 prompts: bool = True) -> None:
        """Select the chips of ``split`` (and ``aois``) and check every file they need.

        Args:
            chips_dir: chip folder holding ``chips.csv``.
            masks_dir: mask folder holding ``masks.csv``.
            splits_path: the ``splits.csv`` file.
            split: ``train``, ``val`` or ``test``.
            aois: AOI names or aliases (``vegas``, ``AOI_2_Vegas`` …) to keep; default all.
            targets: mask kinds to return: building kinds (``footprint``, ``boundary``,
                ``contact``) or road kinds (``road``, ``road_centerline``), not both.
            augment: apply seeded augmentations (meant for the train split).
            seed: seed of the augmentations (with the epoch and the item index).
            augment_config: augmentation strengths.
            prompts: compute each chip's building boxes and points (about 30 ms a chip);
                prompt-free runs read none, and get empty ones.

        Raises:
            InputError: an unknown split or target kind; a missing or malformed index, mask
                index or splits file; a split (or AOI) with no tiles; a chip file or a mask
                listed but not on disk.
        """
        self.chips_dir, self.masks_dir = Path(chips_dir), Path(masks_dir)
        self.targets = check_targets(targets)
        if split not in splits.SPLITS:
            raise InputError("split", f"unknown split {split!r}; choose one of {splits.SPLITS}")
        self.split, self.augment, self.seed, self.epoch = split, augment, seed, 0
        self.prompts = prompts
        self.augment_config = augment_config or AugmentConfig()
        index = read_index(self.chips_dir / INDEX_FILE)
        table = splits.chips_with_splits(index, splits.read_splits(splits_path))
        table = _select(table, split, aois, Path(splits_path))
        self.chips = _attach_masks(table, self.chips_dir, self.masks_dir, self.targets)
        log.info("%s split: %d chips of %d tiles", split, len(self.chips),
                 self.chips["image_id"].nunique())

    def __len__(self) -> int:
        """Number of chips in the split."""
        return len(self.chips)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch: augmentations are seeded by ``(seed, epoch, index)``.

        Call it before iterating a DataLoader; with ``persistent_workers=True`` the workers keep
        their own copy of the dataset and would not see the new epoch.
        """
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict:
        """The chip at ``index``: image, targets, boxes, points and ids (see the class)."""
        row = self.chips.iloc[index]
        image = read_band_stack(self.chips_dir / str(row["path"]))[:3]
        masks = {kind: read_band_stack(self.masks_dir / str(row[kind]))[0] > 0
                 for kind in self.targets}
        if self.augment:
            rng = rng_for(self.seed, self.epoch, index)
            image, masks = augment_sample(image, masks, rng, self.augment_config)
        item: dict = {"image": torch.from_numpy(image.astype(np.float32) / 255.0)}
        boxes, points = np.zeros((0, 4), np.float32), np.zeros((0, 2), np.float32)
        if self.prompts and "footprint" in masks:
            buildings = ndimage.label(masks["footprint"])[0].astype(np.int32)
            boxes, points = building_prompts(masks["footprint"], buildings)
            item["buildings"] = buildings
        for kind in self.targets:
            item[kind] = torch.from_numpy(masks[kind].astype(np.float32)[None])
        item.update(boxes=torch.from_numpy(boxes), points=torch.from_numpy(points),
                    chip_id=str(row["chip_id"]), image_id=str(row["image_id"]),
                    aoi=str(row["aoi"]))
        return item


def check_targets(targets: Sequence[str]) -> tuple[str, ...]:
    """The target kinds to load: building kinds, footprint first (prompts need it), or roads.

    Raises:
        InputError: a kind that is not a binary mask kind, or building and road kinds mixed.
    """
    unknown = [t for t in targets if t not in TARGET_KINDS + ROAD_TARGETS]
    if unknown or not targets:
        raise InputError("targets", f"unknown target kind(s) {unknown or 'none'}; choose "
                                    f"from {', '.join(TARGET_KINDS + ROAD_TARGETS)}")
    roads = [t for t in targets if t in ROAD_TARGETS]
    if roads and len(roads) < len(targets):
        raise InputError("targets", "building and road targets come from different chips; "
                                    f"choose one task, not {list(targets)}")
    if roads:
        return tuple(dict.fromkeys(targets))
    return tuple(dict.fromkeys(["footprint", *targets]))


def _select(table: pd.DataFrame, split: str, aois: Sequence[str] | None,
            splits_path: Path) -> pd.DataFrame:
    """The chips of one split (and AOIs); refuse an empty selection."""
    chosen = table[table["split"] == split]
    where = f"split {split!r}"
    if aois:
        names = [spacenet.resolve_aoi(a) for a in aois]
        chosen = chosen[chosen["aoi"].isin(names)]
        where += f" of {', '.join(names)}"
    if chosen.empty:
        raise InputError(splits_path, f"{where} has no tiles; remake the splits with other "
                                      "fractions or more tiles")
    return chosen.reset_index(drop=True)


def _attach_masks(table: pd.DataFrame, chips_dir: Path, masks_dir: Path,
                  targets: tuple[str, ...]) -> pd.DataFrame:
    """Add each chip's mask paths (relative to ``masks_dir``); check every file exists."""
    mask_index = read_mask_index(masks_dir)
    absent = [kind for kind in targets if kind not in mask_index.columns]
    if absent:
        raise InputError(masks_dir / MASK_INDEX, f"holds no {', '.join(absent)} masks; write "
                                                 f"them (aerialsam masks --kinds {absent[0]})")
    merged = table.merge(mask_index[["chip_id", *targets]], on="chip_id", how="left")
    for path in merged["path"]:
        if not (chips_dir / str(path)).exists():
            raise InputError(chips_dir / str(path), f"chip listed in {INDEX_FILE} is missing; "
                                                    "rechip (aerialsam chip)")
    for kind in targets:
        for chip_id, rel in zip(merged["chip_id"], merged[kind].fillna(""), strict=True):
            if not rel or not (masks_dir / rel).exists():
                raise InputError(masks_dir, f"no {kind} mask for chip {chip_id}; write the "
                                            f"masks (chip_masks.write_chip_masks, kind {kind})")
    return merged


def read_mask_index(masks_dir: str | Path) -> pd.DataFrame:
    """Read a mask folder's ``masks.csv`` (empty strings for absent masks).

    Raises:
        InputError: missing or empty file, missing columns, a chip without an id, or a file
            that is not UTF-8 CSV (see :func:`aerialsam.inputs.read_table`).
    """
    path = Path(masks_dir) / MASK_INDEX
    if not path.exists():
        raise InputError(path, "mask index not found; write the masks first "
                               "(chip_masks.write_chip_masks)")
    schema = [Column("chip_id"), *(Column(kind, nullable=True) for kind in TARGET_KINDS)]
    return read_table(path, schema, what="mask index")


def read_band_stack(path: Path) -> np.ndarray:
    """All bands of a small raster as a ``bands x H x W`` array.

    Raises:
        InputError: a file that cannot be read (deleted or corrupt after the checks).
    """
    try:
        with rasterio.open(path) as src:
            return src.read()
    except RasterioIOError as exc:
        raise InputError(path, f"cannot read raster: {str(exc).splitlines()[0]}") from exc


def building_prompts(footprint: np.ndarray, labels: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and interior points of a footprint mask's 4-connected buildings, in label order.

    Boxes are ``N x 4`` xyxy at pixel edges, points ``N x 2`` xy at pixel centres.

    The point of a building is its pixel farthest from the building's edge, the chip border
    counting as an edge (so a building cut by the border gets a point inside the chip).

    Args:
        footprint: the footprint mask.
        labels: its buildings labelled by ``scipy.ndimage.label``, if done already.
    """
    if labels is None:
        labels = ndimage.label(footprint > 0)[0]
    count = int(labels.max(initial=0))
    if count == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0, 2), np.float32)
    slices = ndimage.find_objects(labels)
    boxes = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in slices],
                     dtype=np.float32)
    inside = np.pad(labels > 0, 1)  # background all round: the border is an edge
    distance = ndimage.distance_transform_edt(inside)[1:-1, 1:-1]
    peaks = ndimage.maximum_position(distance, labels, index=np.arange(1, count + 1))
    points = np.array([[col + 0.5, row + 0.5] for row, col in peaks], dtype=np.float32)
    return boxes, points


def collate_unet(batch: Sequence[dict]) -> dict:
    """Stack a list of items for the U-Net.

    Images (``B x 3 x H x W`` in 0..1) and each target (``B x 1 x H x W``) become tensors;
    ids, ``boxes``, ``points`` and ``buildings`` stay lists (see :data:`LIST_KEYS`).
    """
    tensors = [k for k in batch[0] if k not in LIST_KEYS]
    out: dict = {k: torch.stack([item[k] for item in batch]) for k in tensors}
    out.update({k: [item[k] for item in batch] for k in LIST_KEYS if k in batch[0]})
    return out


def collate_sam2(batch: Sequence[dict], image_size: int) -> dict:
    """Stack a list of items for SAM 2: images resized to ``image_size`` and normalised.

    The resize is bilinear and antialiased; the normalisation uses :data:`SAM2_MEAN` and
    :data:`SAM2_STD`.

    Targets stay at chip size: the loss compares them with SAM 2's masks upsampled to the
    chip, so no label is blurred or resampled. ``boxes`` and ``points`` are in SAM 2's input
    coordinates (scaled by ``image_size / chip size``), as its prompt encoder expects; the
    factor is given as ``prompt_scale`` (divide by it to return to chip pixels).
    """
    out = collate_unet(batch)
    height, width = out["image"].shape[-2:]
    image = out["image"]
    if (height, width) != (image_size, image_size):
        image = F.interpolate(image, size=(image_size, image_size), mode="bilinear",
                              align_corners=False, antialias=True)
    mean = torch.tensor(SAM2_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(SAM2_STD).view(1, 3, 1, 1)
    out["image"] = (image - mean) / std
    scale = torch.tensor([image_size / width, image_size / height])
    out["boxes"] = [b * scale.repeat(2) for b in out["boxes"]]
    out["points"] = [p * scale for p in out["points"]]
    out["prompt_scale"] = scale
    return out


def prepare_training_data(profile: Profile, data_dir: str | Path,
                          kinds: Sequence[str] | None = None, block_tiles: int | None = None,
                          task: str = "buildings") -> tuple[Path, Path, Path]:
    """Run the stages a training run needs, skipping finished work.

    The stages are raw tiles, chips, masks (``kinds``) and the splits (made once, as
    book/04_masks.ipynb makes them; an existing splits file is kept unless a chipped tile
    is missing from it). Buildings chip the SpaceNet 2 AOIs of the raw folder; roads chip
    its SpaceNet 3 AOIs into their own folders (``road_chips``, ``road_masks``,
    ``road_splits.csv``) at the same chip size.

    Args:
        profile: the profile (tiles, chip grid, seed).
        data_dir: the data folder holding the stage folders.
        kinds: mask kinds to write (default: the building kinds, or ``road`` and
            ``road_centerline`` for roads).
        block_tiles: tiles per block side of the splits (see ``splits.make_splits``; default
            2 for the 650 px building tiles, 1 for the 1300 px road tiles, which are as wide
            as a block of 2 x 2 building tiles).
        task: ``buildings`` or ``roads``.

    Returns:
        ``(chips_dir, masks_dir, splits_path)`` under ``data_dir``.

    Raises:
        InputError: no raw tiles (``full`` profile not downloaded), or a tile whose chips or
            masks could not be made (the first failure is named).
    """
    chips_dir, masks_dir, splits_path = stage_paths(data_dir).training_data(task)
    if task == "roads":
        raw = demo_roads.prepare_road_raw(profile, data_dir)
        aoi_dirs = spacenet3.find_aoi_dirs(raw)
        kinds = ROAD_TARGETS if kinds is None else kinds
        block_tiles = 1 if block_tiles is None else block_tiles
    else:
        raw = demo.prepare_raw(profile, data_dir)
        aoi_dirs = spacenet.find_aoi_dirs(raw)
        kinds = chip_masks.DEFAULT_KINDS if kinds is None else kinds
        block_tiles = 2 if block_tiles is None else block_tiles
    # each dataset's own AOI folders: the raw folder may hold both datasets
    sources = [s for folder in aoi_dirs for s in chips.find_sources(folder)]
    report = chips.chip_sources(sources, chips_dir, size=profile.chip_size,
                                overlap=profile.chip_overlap, seed=profile.seed)
    failures = list(report.failures)
    failures += chip_masks.write_chip_masks(chips_dir, masks_dir, kinds=kinds).failures
    if failures:
        raise InputError(failures[0][0], f"{failures[0][1]} ({len(failures)} failure(s))")
    index = read_index(chips_dir / INDEX_FILE)
    if not _splits_cover(splits_path, index):
        splits.make_splits(index, splits_path, seed=profile.seed, block_tiles=block_tiles)
    return chips_dir, masks_dir, splits_path


def _splits_cover(path: Path, index: pd.DataFrame) -> bool:
    """Whether an existing splits file assigns every tile of the chip index."""
    if not path.exists():
        return False
    table = splits.read_splits(path)
    known = set(zip(table["aoi"], table["image_id"], strict=True))
    return set(zip(index["aoi"], index["image_id"], strict=True)) <= known
