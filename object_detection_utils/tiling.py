"""Tiles of a large picture: the options (size, overlap, full pass) and the grid of windows they give.

A model resizes every picture to its input size, so in a large picture small objects shrink to a few pixels.
Running it on overlapping tiles as well keeps them at their own size; `stitching` merges the results back.

    options = TileOptions(size=512, overlap=0.2)
    windows = tile_windows(3000, 4000, options.size, options.overlap)   # [Window(y0, x0, y1, x1), ...]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from .errors import InstanceSegmentationError

DEFAULT_OVERLAP = 0.2
MAX_OVERLAP = 0.9  # overlaps in [0, 0.9): more would run the model ten times or more on every pixel
MIN_TILE = 32  # no model finds much in fewer pixels
# The full pass sees the picture shrunk to this longest side: every model resizes it further anyway, and a
# 10,000 px picture handed over whole costs TensorFlow gigabytes of float copies before its own resize.
FULL_PASS_MAX_SIDE = 2048
AUTO = "auto"


class Window(NamedTuple):
    """A rectangle of the picture: rows y0..y1-1, columns x0..x1-1."""

    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    def intersection(self, other: Window) -> Window | None:
        """The rectangle both cover, or None when they do not overlap."""
        y0, x0 = max(self.y0, other.y0), max(self.x0, other.x0)
        y1, x1 = min(self.y1, other.y1), min(self.x1, other.x1)
        return Window(y0, x0, y1, x1) if y1 > y0 and x1 > x0 else None


@dataclass(frozen=True)
class TileOptions:
    """How a picture is cut into tiles.

    Args:
        size: the tile side in pixels, or None for `auto`: the model's input size (`tile_size_for`).
        overlap: the fraction of a tile shared with its neighbour, in [0, 0.9).
        full_pass: also run the whole picture once, for the objects larger than a tile.
        batch: tiles per model call, for models that take batches.
    """

    size: int | None = None
    overlap: float = DEFAULT_OVERLAP
    full_pass: bool = True
    batch: int = 8

    def __post_init__(self) -> None:
        if not 0.0 <= self.overlap < MAX_OVERLAP:
            raise InstanceSegmentationError(f"tile overlap must be in [0, {MAX_OVERLAP}), not {self.overlap}")
        if self.size is not None and self.size < MIN_TILE:
            raise InstanceSegmentationError(f"tile size {self.size} px is below the smallest tile, {MIN_TILE} px")
        if self.batch < 1:
            raise InstanceSegmentationError(f"tiles per batch must be at least 1, not {self.batch}")

    def describe(self, size: int) -> str:
        """E.g. "tiles 128 px, overlap 0.2, plus a full-picture pass"."""
        full = ", plus a full-picture pass" if self.full_pass else ""
        return f"tiles {size} px, overlap {self.overlap:g}{full}"


def parse_tile_size(text: str) -> int | None:
    """`--tile` on the command line: a size in pixels, or "auto" (None: the model's input size)."""
    if text.strip().lower() == AUTO:
        return None
    try:
        return int(text)
    except ValueError:
        raise InstanceSegmentationError(f"--tile must be a size in pixels or 'auto', not {text!r}") from None


def min_tile_size(input_size: int | None) -> int:
    """The smallest tile a model takes: a quarter of its input size (a tile blown up more than four times holds
    too little to find), and never under `MIN_TILE`."""
    return max(MIN_TILE, (input_size or 0) // 4)


def tile_size_for(options: TileOptions, input_size: int | None, default: int = 640) -> int:
    """The tile side: `options.size`, or the model's input size for `auto` (`default` when it is unknown).

    Raises `InstanceSegmentationError` for a tile smaller than the model's minimum (`min_tile_size`).
    """
    size = options.size if options.size is not None else (input_size or default)
    smallest = min_tile_size(input_size)
    if size < smallest:
        raise InstanceSegmentationError(
            f"tile size {size} px is below this model's minimum, {smallest} px (a quarter of its {input_size} px input)"
        )
    return size


def _starts(length: int, tile: int, overlap: float) -> list[int]:
    """Where tiles start along one axis: evenly spread from 0 to length - tile, neighbours sharing at least
    `overlap` of a tile."""
    if length <= tile:
        return [0]
    step = max(1, math.floor(tile * (1.0 - overlap)))
    count = math.ceil((length - tile) / step) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_windows(height: int, width: int, size: int, overlap: float = DEFAULT_OVERLAP) -> list[Window]:
    """The tiles of a `height` x `width` picture, row by row: `size` squares (cut to the picture when it is
    smaller) covering it, neighbours sharing at least `overlap` of a tile, the last ones flush with its edges."""
    return [
        Window(y, x, min(y + size, height), min(x + size, width))
        for y in _starts(height, size, overlap)
        for x in _starts(width, size, overlap)
    ]


def full_pass_picture(image: np.ndarray, max_side: int = FULL_PASS_MAX_SIDE) -> np.ndarray:
    """The picture for the full pass: as it is, or shrunk (area-averaged, aspect kept) to `max_side` at most.

    Boxes come back normalised, so the masks paste into the picture at its own size either way."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
