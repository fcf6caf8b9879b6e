"""How much a track's prediction and a detection agree: box IoU, and mask IoU on the boxes' crops.

Masks are kept as crops of their box (`MaskCrop`): a track's mask moves with its predicted box by shifting
the crop's corner, and two crops are compared only where their windows overlap, so a pair costs a few
thousand pixels at most however large the picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MaskCrop:
    """A mask as the pixels of a window of the picture: `pixels` (h, w) bool with its top-left corner at (x, y)."""

    x: int
    y: int
    pixels: np.ndarray
    area: int

    def moved(self, dx: int, dy: int) -> MaskCrop:
        return MaskCrop(self.x + dx, self.y + dy, self.pixels, self.area)


def mask_crops(masks: np.ndarray, boxes: np.ndarray) -> list[MaskCrop]:
    """The parts of full-picture masks (N, H, W) inside their `boxes` (N, 4) [x1, y1, x2, y2], rounded outwards."""
    height, width = masks.shape[1:]
    corners = np.clip(np.floor(boxes[:, :2]), 0, None).astype(int)
    ends = np.minimum(np.ceil(boxes[:, 2:]), [width, height]).astype(int)
    crops = []
    for mask, (x1, y1), (x2, y2) in zip(masks, corners.tolist(), ends.tolist()):
        pixels = mask[y1:max(y2, y1), x1:max(x2, x1)]
        crops.append(MaskCrop(x1, y1, pixels, int(np.count_nonzero(pixels))))
    return crops


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


def crop_iou(a: MaskCrop, b: MaskCrop) -> float:
    """IoU of two cropped masks placed in the same picture."""
    x1, y1 = max(a.x, b.x), max(a.y, b.y)
    x2 = min(a.x + a.pixels.shape[1], b.x + b.pixels.shape[1])
    y2 = min(a.y + a.pixels.shape[0], b.y + b.pixels.shape[0])
    union = a.area + b.area
    if x2 <= x1 or y2 <= y1 or union == 0:
        return 0.0
    overlap = np.count_nonzero(a.pixels[y1 - a.y:y2 - a.y, x1 - a.x:x2 - a.x]
                               & b.pixels[y1 - b.y:y2 - b.y, x1 - b.x:x2 - b.x])
    return overlap / (union - overlap)


def mask_iou(tracks: list[MaskCrop], detections: list[MaskCrop], candidates: np.ndarray) -> np.ndarray:
    """(N, M) mask IoU, computed only where `candidates` (N, M) bool is set (elsewhere 0)."""
    result = np.zeros(candidates.shape)
    for i, j in zip(*np.nonzero(candidates)):
        result[i, j] = crop_iou(tracks[i], detections[j])
    return result
