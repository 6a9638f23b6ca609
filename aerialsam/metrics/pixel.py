"""Pixel-level IoU and F1 of building masks, per image and aggregated (for training curves).

Unlike the SpaceNet metric (:mod:`aerialsam.metrics.building_f1`) these count pixels, not
buildings: they are smooth, cheap, and say nothing about whether touching buildings were
separated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["pixel_counts", "pixel_scores"]


def _binary(masks: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean masks: boolean input as is, otherwise values strictly above ``threshold``."""
    masks = np.asarray(masks)
    return masks if masks.dtype == bool else masks > threshold


def pixel_counts(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> pd.DataFrame:
    """True/false positive and false negative pixel counts per image.

    Args:
        pred: predicted masks or probabilities, shape ``(H, W)`` or ``(N, H, W)``.
        truth: reference masks of the same shape (bool, or values above ``threshold``;
            ``uint8`` masks in {0, 255} work with any threshold in [0, 255)).
        threshold: a pixel is building when its value is strictly above this.

    Returns:
        One row per image with integer columns ``tp``, ``fp``, ``fn``.

    Raises:
        ValueError: the shapes differ.
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth shape {truth.shape}")
    if pred.ndim == 2:
        pred, truth = pred[None], truth[None]
    p = _binary(pred, threshold).reshape(len(pred), -1)
    t = _binary(truth, threshold).reshape(len(truth), -1)
    tp = np.count_nonzero(p & t, axis=1)
    return pd.DataFrame({"tp": tp, "fp": np.count_nonzero(p, axis=1) - tp,
                         "fn": np.count_nonzero(t, axis=1) - tp})


def _iou_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU and F1 from counts; both are 1.0 where prediction and truth are both empty."""
    tp, fp, fn = (np.asarray(x, dtype=float) for x in (tp, fp, fn))
    union = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, 1.0)
        f1 = np.where(union > 0, 2 * tp / (2 * tp + fp + fn), 1.0)
    return iou, f1


def pixel_scores(pred: np.ndarray, truth: np.ndarray,
                 threshold: float = 0.5) -> tuple[pd.DataFrame, dict[str, float]]:
    """Pixel IoU and F1 (Dice) per image and over all pixels of all images.

    An image where both masks are empty scores 1.0 (nothing to find, nothing found).
    The aggregate sums the counts over images first (a micro average), so large
    buildings weigh more than in a mean of per-image scores.

    Returns:
        ``(per_image, overall)``: a frame with ``tp, fp, fn, iou, f1`` per image, and a dict
        with the summed ``tp, fp, fn`` and the aggregate ``iou`` and ``f1``.
    """
    per_image = pixel_counts(pred, truth, threshold)
    iou, f1 = _iou_f1(per_image["tp"], per_image["fp"], per_image["fn"])
    per_image = per_image.assign(iou=iou, f1=f1)
    sums = {k: int(per_image[k].sum()) for k in ("tp", "fp", "fn")}
    total_iou, total_f1 = _iou_f1(sums["tp"], sums["fp"], sums["fn"])
    return per_image, {**sums, "iou": float(total_iou), "f1": float(total_f1)}
