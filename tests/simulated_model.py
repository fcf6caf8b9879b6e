"""Predictions made from COCO ground truth, for tests and benchmarks that need a model which knows the answer.

`ground_truth_detections` gives the truth itself as `Detections` (a perfect model: AP 1.0), and
`simulated_outputs` gives what a Mask R-CNN would output for it: normalised boxes and small box-relative soft
masks, which go through mask reframing like a real model's.
"""

from __future__ import annotations

import cv2
import numpy as np
from pycocotools.coco import COCO

from object_detection_utils.detections import Detections
from object_detection_utils.label_map import LabelMap


def _instances(ground_truth: COCO, image_id: int) -> list[dict]:
    """The picture's annotations that are objects, not crowd regions, in annotation-id order."""
    annotations = ground_truth.loadAnns(ground_truth.getAnnIds(imgIds=image_id, iscrowd=False))
    return sorted(annotations, key=lambda a: a["id"])


def _scores(count: int) -> np.ndarray:
    """Distinct descending scores, so that ranking is deterministic."""
    return np.linspace(0.99, 0.60, count).astype(np.float32) if count > 1 else np.full(count, 0.99, np.float32)


def ground_truth_detections(ground_truth: COCO, image_id: int, label_map: LabelMap | None = None) -> Detections:
    """The picture's ground truth as `Detections`: exact boxes and masks, descending scores."""
    label_map = label_map or LabelMap.coco()
    info = ground_truth.imgs[image_id]
    size = (info["height"], info["width"])
    annotations = _instances(ground_truth, image_id)
    if not annotations:
        return Detections.empty(size)
    class_ids = np.array([a["category_id"] for a in annotations], np.int32)
    return Detections(
        boxes=np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in annotations)], np.float32),
        class_ids=class_ids,
        class_names=tuple(label_map.name(c) for c in class_ids),
        scores=_scores(len(annotations)),
        masks=np.stack([ground_truth.annToMask(a).astype(bool) for a in annotations]),
        image_size=size,
    )


def simulated_outputs(ground_truth: COCO, image_id: int, mask_size: int = 33, slots: int = 100) -> dict:
    """Raw zoo outputs (batch of 1) of a model that finds every instance, with `mask_size` square box masks."""
    info = ground_truth.imgs[image_id]
    height, width = info["height"], info["width"]
    annotations = _instances(ground_truth, image_id)[:slots]
    boxes = np.zeros((1, slots, 4), np.float32)
    masks = np.zeros((1, slots, mask_size, mask_size), np.float32)
    classes = np.zeros((1, slots), np.float32)
    scores = np.zeros((1, slots), np.float32)
    scores[0, : len(annotations)] = _scores(len(annotations))
    for row, annotation in enumerate(annotations):
        x, y, w, h = annotation["bbox"]
        boxes[0, row] = (y / height, x / width, (y + h) / height, (x + w) / width)
        classes[0, row] = annotation["category_id"]
        full = ground_truth.annToMask(annotation).astype(np.float32)
        top, left = int(np.floor(y)), int(np.floor(x))
        crop = full[top : max(int(np.ceil(y + h)), top + 1), left : max(int(np.ceil(x + w)), left + 1)]
        masks[0, row] = cv2.resize(crop, (mask_size, mask_size), interpolation=cv2.INTER_LINEAR)
    return {
        "detection_boxes": boxes,
        "detection_scores": scores,
        "detection_classes": classes,
        "num_detections": np.array([len(annotations)], np.float32),
        "detection_masks": masks,
    }
