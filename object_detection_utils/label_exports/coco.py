"""COCO instances: `folder/annotations.json`, ground-truth style (ids, `iscrowd` 0) so that CVAT's "COCO 1.0"
import and any COCO tool take it, with each instance's `score` kept. Segmentations are RLE (masks) or polygons."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..coco_format import encode_mask
from ..io.coco import write_coco_dataset
from .common import ExportOptions, LabelledPicture, instance_polygons, number

ANNOTATIONS_FILE = "annotations.json"


def write_coco(folder: Path, pictures: Iterable[LabelledPicture], categories: list[dict[str, Any]],
               options: ExportOptions) -> None:
    """`folder/annotations.json`: images numbered from 1 in the order given, `file_name` their relative path."""
    annotations: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for image_id, picture in enumerate(pictures, start=1):
        detections = picture.detections
        height, width = detections.image_size
        images.append({"id": image_id, "file_name": picture.name, "width": width, "height": height})
        polygons = instance_polygons(detections, options.tolerance) \
            if options.shapes == "polygons" or detections.box_masks is None else None
        for i, (instance, area) in enumerate(zip(detections, detections.areas)):
            if detections.box_masks is not None and not area:
                continue  # no pixel over the mask threshold: nothing to correct (every format leaves it out)
            x1, y1, x2, y2 = (float(v) for v in instance.box)
            if polygons is not None:
                segmentation: Any = [[number(v) for v in polygon.ravel()] for polygon in polygons[i]]
            else:
                segmentation = encode_mask(instance.mask)
            annotations.append({"image_id": image_id, "category_id": instance.class_id,
                                "segmentation": segmentation, "area": float(area),
                                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                                "iscrowd": 0, "score": round(instance.score, 5)})
    write_coco_dataset(folder / ANNOTATIONS_FILE, lambda: images, lambda: annotations,
                       [{"id": int(c["id"]), "name": str(c["name"]), "supercategory": "object"} for c in categories],
                       description="instance-segmentation pre-annotations")
