"""Matterport Mask R-CNN's picture preparation and result unmolding, in numpy, pixel for pixel.

Matterport (Mask_RCNN, MIT licence, Copyright (c) 2017 Matterport, Inc.) resizes pictures and masks with
`skimage.transform.resize(order=1, mode="constant", cval=0, clip=True, anti_aliasing=False)`, which runs
`scipy.ndimage.zoom(order=1, mode="grid-constant", grid_mode=True)` and clips to the input's range.
`resize_bilinear` reproduces that computation in numpy, in the same float64 order of operations, so
matterport's truncation of the result (`.astype(uint8)`) and its 0.5 mask threshold land on the same pixels.
Checked against scikit-image 0.26.0 with SciPy 1.17.1 (tests/models/matterport/test_preprocessing.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from .config import RESIZE_MODES

MASK_THRESHOLD = 0.5  # matterport's unmold_mask keeps mask values >= this


def _axis_taps(in_len: int, out_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First source index (may be -1) and the two linear weights of every output position along one axis.

    grid_mode: output pixel k samples the input at (k + 0.5) * in/out - 0.5; the weights are computed as
    SciPy's spline code does (w0 = 1 - frac, then w1 = 1 - w0, which is not always frac in floating point).
    """
    zoom = in_len / out_len
    position = (np.arange(out_len, dtype=np.float64) + 0.5) * zoom - 0.5
    start = np.floor(position)
    w0 = 1.0 - (position - start)
    w1 = 1.0 - w0
    return start.astype(np.intp), w0, w1


def _float_type(dtype: np.dtype) -> type:
    """The dtype scikit-image resizes in: float32 stays float32 (float16 becomes it), anything else float64."""
    return np.float32 if dtype in (np.float16, np.float32) else np.float64


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (H, W) or (H, W, C) to (height, width[, C]) exactly as matterport's skimage call does.

    Values keep their range (preserve_range; float input is never rescaled anyway). The result is float32 for
    float16/float32 input and float64 otherwise, as scikit-image returns it. Outside the picture counts as 0,
    and the result is clipped to the input's [min, max] (so edge pixels darkened by that 0 come back up).
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"resize_bilinear expects an (H, W) or (H, W, C) array, got shape {image.shape}")
    if height < 1 or width < 1 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"resize_bilinear cannot resize {image.shape[:2]} to ({height}, {width})")
    out_type = _float_type(image.dtype)
    source = image.astype(out_type, copy=False)
    values = source.astype(np.float64, copy=False)
    # One zero row/column on each side stands for SciPy's constant 0 outside the picture (grid-constant).
    padding = [(1, 1), (1, 1)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(values, padding)
    rows, wy0, wy1 = _axis_taps(image.shape[0], height)
    cols, wx0, wx1 = _axis_taps(image.shape[1], width)
    channels = (None,) * (image.ndim - 2)
    along_y, along_x = (slice(None), None, *channels), (None, slice(None), *channels)
    top = padded[rows + 1] * wy0[along_y]
    bottom = padded[rows + 2] * wy1[along_y]
    wx0, wx1 = wx0[along_x], wx1[along_x]
    # SciPy sums (value * wy) * wx over the taps y0x0, y0x1, y1x0, y1x1 in that order.
    result = top[:, cols + 1] * wx0
    result += top[:, cols + 2] * wx1
    result += bottom[:, cols + 1] * wx0
    result += bottom[:, cols + 2] * wx1
    result = result.astype(out_type, copy=False)
    # scikit-image widens this range to the 0 outside the picture only when the result holds an exact 0, which
    # positive weights on same-signed values never give
    np.clip(result, source.min(), source.max(), out=result)
    return result


@dataclass(frozen=True)
class ResizedImage:
    """`resize_image`'s result: the network-sized picture and where the original lies in it."""

    image: np.ndarray
    window: tuple[int, int, int, int]  # (y1, x1, y2, x2) of the picture inside the padding, y2/x2 excluded
    scale: float
    padding: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
    crop: tuple[int, int, int, int] | None  # (y, x, height, width) taken in "crop" mode


def _centred(size: int, target: int) -> tuple[int, int]:
    before = (target - size) // 2
    return before, target - size - before


def resize_image(
    image: np.ndarray,
    mode: str,
    min_dim: int | None,
    max_dim: int | None,
    min_scale: float | None,
    rng: random.Random | None = None,
) -> ResizedImage:
    """Matterport's resize_image: scale (keeping the aspect ratio), then pad or crop per `mode`.

    square: scale up so the short side reaches min_dim, but keep the long side within max_dim, then pad to
    max_dim x max_dim. pad64: scale up to min_dim (max_dim ignored), pad each side to a multiple of 64.
    crop: scale up to min_dim, then a random min_dim x min_dim crop drawn from `rng` (the `random` module's
    shared generator when None, as matterport draws it). none: unchanged. The picture keeps its dtype (a
    resized uint8 picture is truncated, not rounded, as matterport's `.astype` does).
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown IMAGE_RESIZE_MODE {mode!r}: expected one of {', '.join(RESIZE_MODES)}")
    dtype = image.dtype
    h, w = image.shape[:2]
    no_padding = ((0, 0), (0, 0), (0, 0))
    if mode == "none":
        return ResizedImage(image, (0, 0, h, w), 1, no_padding, None)

    scale: float = 1
    if min_dim:
        scale = max(1, min_dim / min(h, w))
    if min_scale and scale < min_scale:
        scale = min_scale
    if max_dim and mode == "square" and round(max(h, w) * scale) > max_dim:
        scale = max_dim / max(h, w)
    if scale != 1:
        image = resize_bilinear(image, round(h * scale), round(w * scale))
    h, w = image.shape[:2]

    crop = None
    padding = no_padding
    if mode == "square":
        if not max_dim:
            raise ValueError("IMAGE_RESIZE_MODE 'square' needs IMAGE_MAX_DIM")
        padding = (_centred(h, max_dim), _centred(w, max_dim), (0, 0))
    elif mode == "pad64":
        if not min_dim or min_dim % 64:
            raise ValueError(f"IMAGE_RESIZE_MODE 'pad64' needs IMAGE_MIN_DIM a multiple of 64, got {min_dim}")
        padding = (_centred(h, -(-h // 64) * 64), _centred(w, -(-w // 64) * 64), (0, 0))
    else:  # crop
        if not min_dim or h < min_dim or w < min_dim:
            raise ValueError(f"IMAGE_RESIZE_MODE 'crop' needs IMAGE_MIN_DIM within the scaled picture "
                             f"({h}x{w}), got {min_dim}")
        draw = rng if rng is not None else random
        y = draw.randint(0, h - min_dim)
        x = draw.randint(0, w - min_dim)
        crop = (y, x, min_dim, min_dim)
        image = image[y:y + min_dim, x:x + min_dim]
        return ResizedImage(image.astype(dtype, copy=False), (0, 0, min_dim, min_dim), scale, no_padding, crop)

    (top, _), (left, _), _ = padding
    image = np.pad(image, padding[: image.ndim])
    return ResizedImage(image.astype(dtype, copy=False), (top, left, top + h, left + w), scale, padding, None)


def mold_image(image: np.ndarray, mean_pixel: tuple[float, ...]) -> np.ndarray:
    """Subtract the mean pixel as matterport does (in float64), as the network's float32 input."""
    return (image.astype(np.float64) - np.asarray(mean_pixel, dtype=np.float64)).astype(np.float32)


def norm_boxes(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixel boxes (y2/x2 excluded) to matterport's normalised boxes (y2/x2 included), float32."""
    h, w = shape
    scale = np.array([h - 1, w - 1, h - 1, w - 1])
    return ((np.asarray(boxes) - np.array([0, 0, 1, 1])) / scale).astype(np.float32)


def denorm_boxes(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Normalised boxes back to int32 pixel boxes, rounding half to even as matterport's np.around does."""
    h, w = shape
    scale = np.array([h - 1, w - 1, h - 1, w - 1])
    return np.around(np.multiply(boxes, scale) + np.array([0, 0, 1, 1])).astype(np.int32)


@dataclass(frozen=True)
class Unmolded:
    """Detections on the original picture: int32 pixel boxes, class ids, scores and their 28x28 box masks."""

    rois: np.ndarray  # (N, 4) int32 [y1, x1, y2, x2], y2/x2 excluded
    class_ids: np.ndarray  # (N,) int32
    scores: np.ndarray  # (N,) float32
    box_masks: np.ndarray  # (N, mask_h, mask_w) float32, the detected class's mask


def unmold_detections(
    detections: np.ndarray,
    box_masks: np.ndarray,
    original_shape: tuple[int, int],
    molded_shape: tuple[int, int],
    window: tuple[int, int, int, int],
) -> Unmolded:
    """Matterport's unmold_detections without the mask pasting.

    `detections` is the network's (D, 6) float32 [y1, x1, y2, x2, class_id, score] (normalised on the molded
    picture, zero rows after the last detection), `box_masks` the (D, mh, mw) mask of each row's class.
    Boxes go from the window to the original picture; boxes that end up with no area are dropped.
    """
    zero_rows = np.flatnonzero(detections[:, 4] == 0)
    count = int(zero_rows[0]) if zero_rows.size else detections.shape[0]
    boxes = detections[:count, :4]
    class_ids = detections[:count, 4].astype(np.int32)
    scores = detections[:count, 5]
    masks = box_masks[:count]

    wy1, wx1, wy2, wx2 = norm_boxes(np.array(window), molded_shape)
    shift = np.array([wy1, wx1, wy1, wx1])
    height, width = wy2 - wy1, wx2 - wx1
    boxes = np.divide(boxes - shift, np.array([height, width, height, width]))
    rois = denorm_boxes(boxes, original_shape)

    keep = (rois[:, 2] - rois[:, 0]) * (rois[:, 3] - rois[:, 1]) > 0
    return Unmolded(rois[keep], class_ids[keep], scores[keep], masks[keep])


def paste_pixel_masks(
    box_masks: np.ndarray, pixel_boxes: np.ndarray, height: int, width: int, threshold: float = MASK_THRESHOLD
) -> np.ndarray:
    """Matterport's unmold_mask for each instance: (N, mh, mw) box masks resized onto their (N, 4) int pixel boxes
    [y1, x1, y2, x2], values >= threshold set; (N, H, W) bool, empty where a box has no area."""
    masks = np.zeros((len(pixel_boxes), height, width), dtype=bool)
    for index, (box_mask, box) in enumerate(zip(box_masks, pixel_boxes)):
        y1, x1, y2, x2 = (int(v) for v in box)
        if y2 > y1 and x2 > x1:
            masks[index, y1:y2, x1:x2] = resize_bilinear(box_mask, y2 - y1, x2 - x1) >= threshold
    return masks


def paste_masks(
    box_masks: np.ndarray, boxes: np.ndarray, height: int, width: int, threshold: float = MASK_THRESHOLD
) -> np.ndarray:
    """(N, H, W) bool picture masks from (N, mh, mw) box masks and (N, 4) normalised boxes, as matterport's
    unmold_mask on the pixel boxes round(box * (H, W, H, W)).

    The `LoadedModel.paste_masks` of matterport models (models/dispatch.py)."""
    pixel_boxes = np.round(np.asarray(boxes, np.float64) * [height, width, height, width]).astype(np.int64)
    return paste_pixel_masks(box_masks, pixel_boxes, height, width, threshold)
