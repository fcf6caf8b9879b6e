"""`Detections` as the JSON the server answers, with masks as COCO RLE, polygons or PNG pictures.

    {"model": "shapes-r18-128", "image_size": [480, 640], "mask_format": "rle",
     "instances": [{"class_id": 1, "class_name": "circle", "score": 0.98, "box": [x1, y1, x2, y2], "area": 1234,
                    "mask": {"size": [480, 640], "counts": "..."}}]}

`box` is in pixels of the picture; `area` is the mask's pixel count. `mask` is COCO's compressed RLE (`rle`,
what `pycocotools.mask.decode` takes), COCO polygons (`polygons`: [[x1, y1, x2, y2, ...], ...], the outer
outline of each part), or a base64 PNG of the full-picture mask, 255 inside (`png`).
"""

from __future__ import annotations

import base64
from typing import Any

import cv2
import numpy as np

from ...coco_format import encode_mask
from ...detections import Detections
from ...io.images import encode_image

MASK_FORMATS = ("rle", "polygons", "png")


def detections_to_json(detections: Detections, model: str, mask_format: str = "rle") -> dict[str, Any]:
    """The answer for one picture (see the module's docstring); `mask` is left out for a boxes-only model."""
    if mask_format not in MASK_FORMATS:
        raise ValueError(f"unknown mask format {mask_format!r}: one of {', '.join(MASK_FORMATS)}")
    encode = {"rle": encode_mask, "polygons": mask_polygons, "png": mask_png}[mask_format]
    instances = []
    for instance, area in zip(detections, detections.areas):
        entry: dict[str, Any] = {
            "class_id": instance.class_id,
            "class_name": instance.class_name,
            "score": round(instance.score, 5),
            "box": [round(float(v), 2) for v in instance.box],
            "area": int(area) if instance.mask is not None else round(float(area), 2),
        }
        if instance.mask is not None:
            entry["mask"] = encode(instance.mask)
        instances.append(entry)
    return {"model": model, "image_size": list(detections.image_size), "mask_format": mask_format,
            "instances": instances}


def mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons of an (H, W) bool mask: the outer outline of each part, [x1, y1, x2, y2, ...] in pixels;
    parts of fewer than 3 outline points (a pixel, a line) are left out, as COCO's polygons cannot hold them."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [contour.reshape(-1).astype(float).tolist() for contour in contours if len(contour) >= 3]


def mask_png(mask: np.ndarray) -> str:
    """An (H, W) bool mask as a base64 grayscale PNG, 255 inside and 0 outside."""
    return base64.b64encode(encode_image(mask.astype(np.uint8) * 255, ".png")).decode("ascii")
