"""`Detections` to and from the COCO results format (boxes as [x, y, w, h], masks as RLE)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from ..detections import Detections
from ..label_map import LabelMap


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


def detections_to_coco(detections: Detections, image_id: int) -> list[dict[str, Any]]:
    """COCO result entries for one picture: image_id, category_id, bbox [x, y, w, h], score, segmentation."""
    results = []
    for instance in detections:
        x1, y1, x2, y2 = (float(v) for v in instance.box)
        entry: dict[str, Any] = {
            "image_id": int(image_id),
            "category_id": instance.class_id,
            "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
            "score": round(instance.score, 5),
        }
        if instance.mask is not None:
            entry["segmentation"] = encode_mask(instance.mask)
        results.append(entry)
    return results


def detections_from_coco(
    entries: list[dict[str, Any]], image_size: tuple[int, int], label_map: LabelMap | None = None
) -> Detections:
    """`Detections` of one picture back from its COCO result entries (masks decoded when present)."""
    label_map = label_map or LabelMap.coco()
    if not entries:
        return Detections.empty(image_size)
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (e["bbox"] for e in entries)], np.float32)
    class_ids = np.array([e["category_id"] for e in entries], np.int32)
    with_masks = all("segmentation" in e for e in entries)
    return Detections(
        boxes=boxes,
        class_ids=class_ids,
        class_names=tuple(label_map.name(c) for c in class_ids),
        scores=np.array([e["score"] for e in entries], np.float32),
        masks=np.stack([decode_mask(e["segmentation"]) for e in entries]) if with_masks else None,
        image_size=image_size,
    )
