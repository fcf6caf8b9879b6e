"""Mask maths: box-relative model masks to picture masks (full or compact), and masks to boxes.

`reframe_box_masks` reproduces the TF Object Detection API's `reframe_box_masks_to_image_masks` (a
`tf.image.crop_and_resize` of each box mask with the picture expressed in the box's coordinates, bilinear,
zero outside the box) followed by its 0.5 threshold. It computes only the rows and columns each box covers,
interpolating along x on the small mask first and then along y over the picture, in float32 and in
crop_and_resize's order of operations, so the pixels match TensorFlow's. It uses gathers rather than matrix
products on purpose: BLAS threads fighting TensorFlow's for the cores made the same work 50x slower.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .box_masks import BoxMasks

_MIN_BOX_SIDE = 1e-4  # the TF OD API clamps box sides to this to avoid dividing by zero


class _Samples(NamedTuple):
    """Where output pixels first..last-1 sample a mask axis: between `low` and `high`, `frac` of the way."""

    first: int
    last: int
    low: np.ndarray
    high: np.ndarray
    frac: np.ndarray


def _sample_positions(lo: float, hi: float, out_size: int, mask_size: int) -> _Samples:
    """Bilinear sample positions of the `out_size` picture pixels on a `mask_size` mask axis.

    The picture axis spans [0, 1] in normalised coordinates and the box spans [lo, hi] on it. Only pixels
    whose sample falls inside the mask are returned; all others are zero (crop_and_resize extrapolation).
    """
    f32 = np.float32
    side = f32(max(hi - lo, _MIN_BOX_SIDE))
    start, end = (f32(0.0) - f32(lo)) / side, (f32(1.0) - f32(lo)) / side  # the picture in box coordinates
    extent = f32(mask_size - 1)
    if out_size > 1:
        scale = (end - start) * extent / f32(out_size - 1)
        positions = start * extent + np.arange(out_size, dtype=f32) * scale
    else:
        positions = np.array([f32(0.5) * (start + end) * extent], dtype=f32)
    inside = np.flatnonzero((positions >= 0) & (positions <= extent))
    if inside.size == 0:
        empty = np.zeros(0, np.int64)
        return _Samples(0, 0, empty, empty, np.zeros(0, f32))
    first, last = int(inside[0]), int(inside[-1]) + 1
    pos = positions[first:last]
    low = np.floor(pos).astype(np.int64)
    high = np.ceil(pos).astype(np.int64)
    return _Samples(first, last, low, high, pos - low.astype(f32))


def reframe_box_masks(
    box_masks: np.ndarray,
    boxes: np.ndarray,
    image_height: int,
    image_width: int,
    threshold: float = 0.5,
) -> np.ndarray:
    """Paste box-relative soft masks into full-picture boolean masks.

    Args:
        box_masks: (N, mh, mw) float masks in [0, 1], each covering its box.
        boxes: (N, 4) boxes [ymin, xmin, ymax, xmax] normalised to [0, 1] (the zoo's `detection_boxes`).
        image_height, image_width: size of the picture the masks are pasted into.
        threshold: a pixel is in the mask when the resampled value is strictly greater than this.

    Returns:
        (N, image_height, image_width) bool masks; `reframe_box_masks_compact` gives the same as `BoxMasks`.
    """
    return reframe_box_masks_compact(box_masks, boxes, image_height, image_width, threshold).to_dense()


def reframe_box_masks_compact(
    box_masks: np.ndarray,
    boxes: np.ndarray,
    image_height: int,
    image_width: int,
    threshold: float = 0.5,
) -> BoxMasks:
    """`reframe_box_masks` as compact `BoxMasks`: the same pixels, without a full-picture array per instance."""
    box_masks = np.asarray(box_masks, dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float32)
    count = len(box_masks)
    if boxes.shape != (count, 4):
        raise ValueError(f"expected {count} boxes of 4 numbers, got shape {boxes.shape}")
    crops = [np.zeros((0, 0), bool)] * count
    offsets = np.zeros((count, 2), np.int64)
    if count == 0:
        return BoxMasks(crops, offsets, (image_height, image_width))
    mask_h, mask_w = box_masks.shape[1:]
    for i in range(count):
        ymin, xmin, ymax, xmax = (float(v) for v in boxes[i])
        ys = _sample_positions(ymin, ymax, image_height, mask_h)
        xs = _sample_positions(xmin, xmax, image_width, mask_w)
        if ys.last == ys.first or xs.last == xs.first:
            continue
        mask = box_masks[i]
        left, right = mask[:, xs.low], mask[:, xs.high]
        columns = left + (right - left) * xs.frac  # (mh, box width): x first, as crop_and_resize does
        top, bottom = columns[ys.low], columns[ys.high]
        values = top + (bottom - top) * ys.frac[:, None]
        crops[i] = values > threshold
        offsets[i] = (ys.first, xs.first)
    return BoxMasks(crops, offsets, (image_height, image_width))


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight [x1, y1, x2, y2] boxes (x2, y2 exclusive) around (N, H, W) boolean masks; zeros for empty masks."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for i, mask in enumerate(masks):
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size:
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes
