"""Run folders and rasters made by hand, for tests of what reads them (predict, evaluate).

A run folder here is what ``aerialsam finetune`` leaves when it finishes, without the
training: ``run.json`` and the untrained model's ``model.pt`` (seeded, so two folders of the
same seed hold the same weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from aerialsam.training import runs
from aerialsam.training.kinds import kind_of
from aerialsam.training.train_config import make_config


def unet_run(run_dir: Path, seed: int = 0, threshold: float = 0.5,
             **config: Any) -> Path:  # noqa: ANN401 (any TrainConfig field)
    """A finished U-Net run of untrained weights on the smoke grid (256 px chips)."""
    values = {"model": "unet", "seed": seed, "device": "cpu", "steps": 2, **config}
    settings = make_config(values)
    model = kind_of(settings).build(settings)
    runs.write_run_json(run_dir, settings, chip_size=256, overlap=32, threshold=threshold,
                        step=settings.steps)
    runs.save_final_model(run_dir, model, settings)
    return run_dir


def write_raster(path: Path, data: np.ndarray, nodata: float | None = None,
                 crs: str = "EPSG:4326") -> Path:
    """A GeoTIFF of ``data`` (bands, rows, cols) with small square pixels at (-115, 36)."""
    bands, height, width = data.shape
    transform = rasterio.transform.from_origin(-115.0, 36.0, 2.7e-6, 2.7e-6)
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=bands,
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(data)
    return path
