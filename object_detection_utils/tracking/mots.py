"""MOTS text (KITTI MOTS / MOTSChallenge): one line per tracked mask, `frame id class_id height width rle`.

`rle` is COCO's compressed run-length string of the mask (pycocotools' `counts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..coco_format import decode_mask
from ..detections import TRACK_ID, Detections
from ..errors import InstanceSegmentationError


@dataclass(frozen=True)
class MotsObject:
    """One line of a MOTS file."""

    frame: int
    track_id: int
    class_id: int
    height: int
    width: int
    counts: str  # COCO compressed RLE

    @property
    def rle(self) -> dict:
        return {"size": [self.height, self.width], "counts": self.counts}

    def mask(self) -> np.ndarray:
        return decode_mask(self.rle)


def mots_lines(frame: int, detections: Detections) -> list[str]:
    """The MOTS lines of one frame's tracked detections (masks and `data["track_id"]` needed)."""
    masks = detections.box_masks
    if masks is None:
        raise InstanceSegmentationError("MOTS needs masks: this model gives boxes only")
    height, width = detections.image_size
    return [f"{frame} {int(track_id)} {int(class_id)} {height} {width} {masks.rle(i)['counts']}"
            for i, (track_id, class_id) in enumerate(zip(detections.data[TRACK_ID], detections.class_ids))]


def parse_mots(text: str, name: str = "MOTS text") -> list[MotsObject]:
    """The objects of a MOTS file's text; a malformed line raises a one-line error naming it."""
    objects = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            if len(fields) != 6:
                raise ValueError
            objects.append(MotsObject(int(fields[0]), int(fields[1]), int(fields[2]), int(fields[3]),
                                      int(fields[4]), fields[5]))
        except ValueError:
            raise InstanceSegmentationError(
                f"{name}:{number}: not a MOTS line (frame id class_id height width rle)") from None
    return objects


def read_mots(path: str | Path) -> list[MotsObject]:
    """The objects of a MOTS file."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise InstanceSegmentationError(f"{path}: {(error.strerror or str(error)).lower()}") from None
    return parse_mots(text, str(path))
