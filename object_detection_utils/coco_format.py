"""COCO's formats, without files: RLE masks, result entries, ground-truth annotations and image ids.

Result entries (`detections_to_coco`) are what `COCO.loadRes` takes; annotations (`annotations_from_masks`) go
into a dataset file, which `io.coco.write_coco_dataset` writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pycocotools import mask as mask_utils

from .masks import masks_to_boxes

if TYPE_CHECKING:  # detections.py imports this module: no import back at run time
    from .detections import Detections


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """COCO RLE of one (H, W) bool mask, with `counts` as text so it serialises to JSON."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def decode_mask(rle: dict[str, Any]) -> np.ndarray:
    """The (H, W) bool mask of a COCO RLE (`counts` as text or bytes)."""
    counts = rle["counts"]
    rle = {"size": rle["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(rle).astype(bool)


def detections_to_coco(detections: Detections, image_id: int | None) -> list[dict[str, Any]]:
    """COCO result entries for one picture, in instance order.

    Each has `category_id`, `bbox` [x, y, w, h] (pixels, 2 decimals), `score` (5 decimals), `segmentation` (RLE)
    when there are masks, and `area`: mask pixels (int) with masks, else the box area (float). `image_id` is
    left out when None, for entries stored before the picture's id is known.
    """
    entries = []
    masks = detections.box_masks
    for i, area in enumerate(detections.areas):
        x1, y1, x2, y2 = (float(v) for v in detections.boxes[i])
        entry: dict[str, Any] = {} if image_id is None else {"image_id": int(image_id)}
        entry["category_id"] = int(detections.class_ids[i])
        entry["bbox"] = [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]
        entry["score"] = round(float(detections.scores[i]), 5)
        if masks is not None:
            entry["segmentation"] = masks.rle(i)  # straight from the compact mask: no full-picture array
        entry["area"] = int(area) if masks is not None else float(area)
        entries.append(entry)
    return entries


def annotations_from_masks(
    masks: np.ndarray, class_ids: Iterable[int], image_id: int, first_id: int
) -> list[dict[str, Any]]:
    """Ground-truth annotations of one picture from its (N, H, W) bool masks, with ids `first_id`, `first_id + 1`...

    `bbox` is the tight box around each mask as [x, y, w, h], `area` its pixel count, `iscrowd` 0.
    """
    annotations = []
    for offset, (mask, class_id, box) in enumerate(zip(masks, class_ids, masks_to_boxes(masks))):
        x1, y1, x2, y2 = (float(v) for v in box)
        annotations.append({
            "id": first_id + offset,
            "image_id": int(image_id),
            "category_id": int(class_id),
            "segmentation": encode_mask(mask),
            "area": float(mask.sum()),
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "iscrowd": 0,
        })
    return annotations


def coco_image_ids(names: Iterable[str]) -> dict[str, int]:
    """Stable COCO image ids: the number of a numeric file stem (COCO's `000000123456.jpg` -> 123456) when no
    other file claims it, else a running index (from 1) that skips the ids taken by numeric stems."""
    names = sorted(names)
    ids: dict[str, int] = {}
    for name in names:
        stem = Path(name).stem
        if stem.isdigit() and int(stem) > 0 and int(stem) not in ids.values():
            ids[name] = int(stem)
    taken = set(ids.values())
    counter = 0
    for name in names:
        if name not in ids:
            counter += 1
            while counter in taken:
                counter += 1
            ids[name] = counter
    return ids
