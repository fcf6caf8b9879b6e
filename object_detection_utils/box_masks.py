"""Compact instance masks: each mask as the crop around its set pixels and where that crop sits in the picture.

A full-picture (N, H, W) bool array grows with the picture times the instance count (2,000 instances in a
10,000 x 10,000 picture would be 200 GB); `BoxMasks` grows with the objects only. Full-picture arrays are made
only on request (`to_dense`, `dense`), and COCO RLE is written straight from the crops (`rle`).

    masks = BoxMasks.from_dense(dense)               # (N, H, W) bool -> compact
    masks.crops[i], masks.offsets[i]                 # (h, w) bool crop, its (y0, x0) in the picture
    masks.to_dense()                                 # back to (N, H, W) bool
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

_EMPTY_CROP = np.zeros((0, 0), bool)


def _tight(crop: np.ndarray, y0: int, x0: int) -> tuple[np.ndarray, int, int]:
    """The smallest sub-crop holding every set pixel of `crop` (placed at y0, x0) and its own placement;
    an empty (0, 0) crop at (0, 0) when nothing is set."""
    rows = np.flatnonzero(crop.any(axis=1))
    if rows.size == 0:
        return _EMPTY_CROP, 0, 0
    cols = np.flatnonzero(crop[rows[0] : rows[-1] + 1].any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    if (top, left, bottom, right) == (0, 0, *crop.shape):
        return crop, y0, x0
    return crop[top:bottom, left:right], y0 + top, x0 + left


class BoxMasks:
    """N boolean masks of a picture of `image_size` = (height, width), each kept as a tight crop.

    `crops[i]` is an (h, w) bool array placed with its top-left corner at `offsets[i]` = (y0, x0); an empty
    mask is a (0, 0) crop. Crops are cut down to their set pixels when built (the parts outside the picture
    are dropped), so two `BoxMasks` of the same masks hold the same crops and offsets.
    """

    __slots__ = ("crops", "image_size", "offsets")

    def __init__(self, crops: Sequence[np.ndarray], offsets: Any, image_size: tuple[int, int]) -> None:
        height, width = int(image_size[0]), int(image_size[1])
        offsets = np.asarray(offsets, np.int64).reshape(len(crops), 2)
        tight, placed = [], np.zeros((len(crops), 2), np.int64)
        for i, (crop, (y0, x0)) in enumerate(zip(crops, offsets.tolist())):
            crop = np.asarray(crop, bool)
            if crop.ndim != 2:
                raise ValueError(f"mask crop {i} has shape {crop.shape}, not (h, w)")
            # Clip to the picture, then shrink to the set pixels.
            top, left = max(0, -y0), max(0, -x0)
            bottom, right = min(crop.shape[0], height - y0), min(crop.shape[1], width - x0)
            crop = crop[top:bottom, left:right] if bottom > top and right > left else _EMPTY_CROP
            crop, y, x = _tight(crop, y0 + top, x0 + left)
            tight.append(crop)
            placed[i] = (y, x)
        self.crops: tuple[np.ndarray, ...] = tuple(tight)
        self.offsets: np.ndarray = placed
        self.image_size: tuple[int, int] = (height, width)

    @classmethod
    def from_dense(cls, masks: np.ndarray) -> BoxMasks:
        """Compact masks from (N, H, W) bool full-picture masks."""
        masks = np.asarray(masks, bool)
        if masks.ndim != 3:
            raise ValueError(f"expected (N, H, W) masks, got shape {masks.shape}")
        return cls(list(masks), np.zeros((len(masks), 2), np.int64), masks.shape[1:])

    @classmethod
    def from_each(cls, masks: Iterable[np.ndarray], image_size: tuple[int, int]) -> BoxMasks:
        """Compact masks from (H, W) bool full-picture masks given one at a time: only one is held at once (a
        picture's 2,000 masks decoded from RLE need not all exist together)."""
        crops, offsets = [], []
        for mask in masks:
            crop, y, x = _tight(np.asarray(mask, bool), 0, 0)
            crops.append(crop.copy())  # a copy: a view would keep the whole picture's mask alive
            offsets.append((y, x))
        return cls(crops, np.asarray(offsets, np.int64).reshape(-1, 2), image_size)

    @classmethod
    def empty(cls, image_size: tuple[int, int]) -> BoxMasks:
        return cls([], np.zeros((0, 2), np.int64), image_size)

    def __len__(self) -> int:
        return len(self.crops)

    def __repr__(self) -> str:
        return f"BoxMasks({len(self)} masks, image_size={self.image_size}, {self.nbytes} bytes)"

    @property
    def shape(self) -> tuple[int, int, int]:
        """The (N, H, W) shape of the full-picture array these masks stand for."""
        return (len(self), *self.image_size)

    @property
    def nbytes(self) -> int:
        return sum(crop.nbytes for crop in self.crops) + self.offsets.nbytes

    def subset(self, positions: Sequence[int] | np.ndarray) -> BoxMasks:
        """The masks at `positions` (an index array), in that order."""
        positions = np.asarray(positions, np.int64).reshape(-1)
        picked = object.__new__(BoxMasks)  # crops are tight already: no need to cut them again
        picked.crops = tuple(self.crops[i] for i in positions.tolist())
        picked.offsets = self.offsets[positions]
        picked.image_size = self.image_size
        return picked

    def bounds(self) -> np.ndarray:
        """(N, 4) int64 tight boxes [x1, y1, x2, y2] (x2, y2 exclusive); zeros for empty masks."""
        boxes = np.zeros((len(self), 4), np.int64)
        for i, crop in enumerate(self.crops):
            if crop.size:
                y0, x0 = self.offsets[i]
                boxes[i] = (x0, y0, x0 + crop.shape[1], y0 + crop.shape[0])
        return boxes

    def areas(self) -> np.ndarray:
        """(N,) int64 set pixels of each mask."""
        return np.array([np.count_nonzero(crop) for crop in self.crops], np.int64)

    def dense(self, index: int) -> np.ndarray:
        """Mask `index` as an (H, W) bool full-picture array."""
        out = np.zeros(self.image_size, bool)
        crop = self.crops[index]
        y0, x0 = (int(v) for v in self.offsets[index])
        out[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
        return out

    def to_dense(self) -> np.ndarray:
        """All masks as an (N, H, W) bool full-picture array: memory grows with the picture, so on request only."""
        out = np.zeros(self.shape, bool)
        for i, crop in enumerate(self.crops):
            y0, x0 = (int(v) for v in self.offsets[i])
            out[i, y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
        return out

    def window(self, index: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
        """Mask `index` inside the picture window rows y0..y1-1, columns x0..x1-1, as a (y1-y0, x1-x0) array."""
        out = np.zeros((y1 - y0, x1 - x0), bool)
        crop = self.crops[index]
        cy, cx = (int(v) for v in self.offsets[index])
        top, left = max(cy, y0), max(cx, x0)
        bottom, right = min(cy + crop.shape[0], y1), min(cx + crop.shape[1], x1)
        if bottom > top and right > left:
            out[top - y0 : bottom - y0, left - x0 : right - x0] = crop[top - cy : bottom - cy, left - cx : right - cx]
        return out

    def equals(self, other: BoxMasks) -> bool:
        """Whether `other` holds the same masks of the same picture size."""
        return (
            self.image_size == other.image_size
            and len(self) == len(other)
            and np.array_equal(self.offsets, other.offsets)
            and all(np.array_equal(a, b) for a, b in zip(self.crops, other.crops))
        )

    def rle(self, index: int) -> dict[str, Any]:
        """COCO RLE of mask `index` in the full picture (`counts` as text), made from the crop alone.

        COCO runs go down each column in turn (Fortran order), starting with a run of zeros: the columns left of
        the crop are one long zero run, each crop column adds its own runs between zero runs above and below it.
        """
        height, width = self.image_size
        crop = self.crops[index]
        y0, x0 = (int(v) for v in self.offsets[index])
        if crop.size == 0:
            counts = [height * width]
        else:
            block = np.zeros((height, crop.shape[1]), np.uint8)  # the crop's columns, full height
            block[y0 : y0 + crop.shape[0]] = crop
            flat = block.ravel(order="F")
            changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
            runs = np.diff(np.concatenate(([0], changes, [flat.size]))).tolist()
            if flat[0]:
                runs.insert(0, 0)
            runs[0] += x0 * height
            trailing = (width - x0 - crop.shape[1]) * height
            if not flat[-1]:
                runs[-1] += trailing
            elif trailing:
                runs.append(trailing)
            counts = runs
        encoded = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        encoded["counts"] = encoded["counts"].decode("ascii")
        return encoded


def placed_overlap(a: np.ndarray, a_at: tuple[int, int], b: np.ndarray, b_at: tuple[int, int]) -> int:
    """The pixels set in both of two (h, w) bool crops placed with their top-left corners at (y, x) in one picture."""
    (ay, ax), (by, bx) = a_at, b_at
    y0, x0 = max(ay, by), max(ax, bx)
    y1, x1 = min(ay + a.shape[0], by + b.shape[0]), min(ax + a.shape[1], bx + b.shape[1])
    if y1 <= y0 or x1 <= x0:
        return 0
    return int(np.count_nonzero(a[y0 - ay : y1 - ay, x0 - ax : x1 - ax] & b[y0 - by : y1 - by, x0 - bx : x1 - bx]))


def as_box_masks(masks: np.ndarray | BoxMasks) -> BoxMasks:
    """`masks` as `BoxMasks`: compact ones as they are, (N, H, W) bool arrays cut into crops."""
    return masks if isinstance(masks, BoxMasks) else BoxMasks.from_dense(masks)
