"""From a model's raw outputs to `Detections`: score and class filtering, pixel boxes, picture masks.

Pure: arrays in, `Detections` out; `predictor.Segmenter` runs the model and calls this."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .detections import Detections
from .label_map import LabelMap
from .masks import reframe_box_masks_compact
from .model_contract import MASK_OUTPUT, KeptInstances, MaskPaster, RawOutputs

DEFAULT_MIN_SCORE = 0.5
DEFAULT_MASK_THRESHOLD = 0.5


def detections_from_outputs(
    outputs: RawOutputs,
    image_size: tuple[int, int],
    label_map: LabelMap,
    index: int = 0,
    class_ids: Iterable[int] | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    mask_threshold: float = DEFAULT_MASK_THRESHOLD,
    paste_masks: MaskPaster = reframe_box_masks_compact,
) -> Detections:
    """Build `Detections` for picture `index` of a batch of raw zoo outputs.

    Boxes come in as [ymin, xmin, ymax, xmax] normalised and leave as [x1, y1, x2, y2] pixels. Only the
    instances that pass the filters have their masks pasted (by the model's own rule, `paste_masks`), which is
    where the time goes.
    """
    height, width = image_size
    count = int(outputs["num_detections"][index])
    scores = outputs["detection_scores"][index, :count].astype(np.float32)
    classes = np.rint(outputs["detection_classes"][index, :count]).astype(np.int32)
    kept = KeptInstances(min_score, None if class_ids is None else tuple(int(c) for c in class_ids))
    keep_idx = np.flatnonzero(kept.keeps(scores, classes))
    boxes_normalised = np.clip(outputs["detection_boxes"][index, keep_idx].astype(np.float32), 0.0, 1.0)
    boxes = boxes_normalised[:, [1, 0, 3, 2]] * np.array([width, height, width, height], np.float32)
    masks = None
    if MASK_OUTPUT in outputs:
        box_masks = outputs[MASK_OUTPUT][index, keep_idx]
        # Masks reframe against the unclipped box, as the model predicted them.
        raw_boxes = outputs["detection_boxes"][index, keep_idx]
        masks = paste_masks(box_masks, raw_boxes, height, width, mask_threshold)
    class_ids_kept = classes[keep_idx]
    return Detections(
        boxes=boxes,
        class_ids=class_ids_kept,
        class_names=tuple(label_map.name(c) for c in class_ids_kept),
        scores=scores[keep_idx],
        masks=masks,
        image_size=(int(height), int(width)),
    )
