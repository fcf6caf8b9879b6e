"""How much a track's prediction and a detection agree: box IoU, and mask IoU on the masks' tight crops.

Masks are kept as the detections' compact crops (`MaskCrop`, from `Detections.box_masks`): a track's mask moves
with its predicted box by shifting the crop's corner, and two crops are compared only where their windows
overlap, so a pair costs a few thousand pixels at most however large the picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..box_masks import BoxMasks, placed_overlap


@dataclass(frozen=True)
class MaskCrop:
    """A mask as the pixels of a window of the picture: `pixels` (h, w) bool with its top-left corner at (x, y)."""

    x: int
    y: int
    pixels: np.ndarray
    area: int


def mask_crops(masks: BoxMasks) -> list[MaskCrop]:
    """Each of the detections' compact masks as a `MaskCrop` (its tight crop, where it sits, its area)."""
    areas = masks.areas().tolist()
    return [MaskCrop(x, y, pixels, area)
            for pixels, (y, x), area in zip(masks.crops, masks.offsets.tolist(), areas)]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of boxes (N, 4) and (M, 4), [x1, y1, x2, y2]."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def crop_iou(a: MaskCrop, b: MaskCrop, dx: int = 0, dy: int = 0) -> float:
    """IoU of two cropped masks placed in the same picture, `a` moved by (dx, dy) pixels first."""
    union = a.area + b.area
    if union == 0:
        return 0.0
    overlap = placed_overlap(a.pixels, (a.y + dy, a.x + dx), b.pixels, (b.y, b.x))
    return overlap / (union - overlap)


def mask_iou(tracks: list[MaskCrop], shifts: np.ndarray, detections: list[MaskCrop], candidates: np.ndarray
             ) -> np.ndarray:
    """(N, M) mask IoU of the tracks' crops moved by `shifts` (N, 2) [dx, dy] and the detections' crops, computed
    only where `candidates` (N, M) bool is set (elsewhere 0)."""
    result = np.zeros(candidates.shape)
    shifts = shifts.tolist()
    for i, j in zip(*np.nonzero(candidates)):
        dx, dy = shifts[i]
        result[i, j] = crop_iou(tracks[i], detections[j], dx, dy)
    return result
