"""Labels read back as `Detections`, to check an export against what was exported (tests, benchmarks/labels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...detections import Detections
from ...evaluation import ground_truth_from_dict
from ...masks import masks_to_boxes
from . import load_labels


def read_detections(path: str | Path, format: str, images: str | Path | None = None,
                    categories: list[dict[str, Any]] | None = None) -> dict[str, Detections]:
    """{file_name: Detections} of the labels at `path`, in the labels' order; scores NaN where none was kept.

    Raises AssertionError listing the problems if any label was skipped: an export must read back whole.
    """
    labels = load_labels(path, format, images, categories)
    assert not labels.problems, labels.problems
    coco = ground_truth_from_dict(labels.dataset)
    names = {c["id"]: c["name"] for c in labels.dataset["categories"]}
    found: dict[str, Detections] = {}
    for image in labels.dataset["images"]:
        annotations = [a for a in labels.dataset["annotations"] if a["image_id"] == image["id"]]
        size = (image["height"], image["width"])
        masks = np.array([coco.annToMask(a).astype(bool) for a in annotations]).reshape(-1, *size)
        found[image["file_name"]] = Detections(
            boxes=masks_to_boxes(masks).astype(np.float32).reshape(-1, 4),
            class_ids=np.array([a["category_id"] for a in annotations], np.int32),
            class_names=tuple(names[a["category_id"]] for a in annotations),
            scores=np.array([a.get("score", np.nan) for a in annotations], np.float32),
            masks=masks, image_size=size)
    return found


def mask_ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each pair of (N, H, W) bool masks, a[i] with b[i]."""
    union = (a | b).sum(axis=(1, 2))
    return np.where(union > 0, (a & b).sum(axis=(1, 2)) / np.maximum(union, 1), 1.0)
