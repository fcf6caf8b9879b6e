"""What every export takes: the pictures with their detections, the options, and each instance's outline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..detections import Detections
from .polygons import DEFAULT_TOLERANCE, mask_to_polygons

SHAPES = ("masks", "polygons")


class LabelledPicture(NamedTuple):
    """One picture to export: `name` its relative path (POSIX), `source` the file, and what was found in it."""

    name: str
    source: Path
    detections: Detections


@dataclass(frozen=True)
class ExportOptions:
    """How instances are written.

    shapes: "masks" (pixel-exact RLE where the format has masks: Label Studio brush, CVAT mask, labelme mask,
        COCO RLE) or "polygons" (editable; YOLO always). tolerance: polygon simplification in pixels.
    model_version: Label Studio's `model_version` of the predictions.
    image_url: Label Studio's `data.image`, `{name}` being the picture's relative path (the default is the
        local-files storage URL). from_name / to_name: the names of the labelling config's tags.
    """

    shapes: str = "masks"
    tolerance: float = DEFAULT_TOLERANCE
    model_version: str = "instance-segmentation"
    image_url: str = "/data/local-files/?d={name}"
    from_name: str = "label"
    to_name: str = "image"

    def __post_init__(self) -> None:
        if self.shapes not in SHAPES:
            raise ValueError(f"shapes must be one of {SHAPES}, not {self.shapes!r}")
        if self.tolerance < 0:
            raise ValueError(f"tolerance must be 0 or more pixels, not {self.tolerance}")


def instance_polygons(detections: Detections, tolerance: float) -> list[list[np.ndarray]]:
    """The polygons of each instance (see `polygons.mask_to_polygons`); the box for a boxes-only model."""
    masks = detections.box_masks
    if masks is None:
        return [[np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64)]
                for x1, y1, x2, y2 in detections.boxes.astype(np.float64)]
    # Traced on each compact crop and moved into place: no full-picture mask per instance.
    return [[polygon + offset[::-1] for polygon in mask_to_polygons(crop, tolerance)]
            for crop, offset in zip(masks.crops, masks.offsets)]


def mask_box(mask: np.ndarray) -> tuple[int, int, np.ndarray]:
    """(left, top, crop): a mask's tight box and the mask inside it; (0, 0, a 0x0 crop) for an empty mask."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return 0, 0, np.zeros((0, 0), bool)
    left, top = int(xs.min()), int(ys.min())
    return left, top, mask[top:ys.max() + 1, left:xs.max() + 1]


def number(value: float) -> float | int:
    """A coordinate as short as it is exact: 12 rather than 12.0 (the polygons' points are on half pixels)."""
    value = float(value)
    return int(value) if value.is_integer() else round(value, 6)
