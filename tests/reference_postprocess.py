"""An independent reference for the post-processing path, written the way the TF Object Detection API does it.

Used only by tests and benchmarks, to show that the package's vectorised reframing (`masks.reframe_box_masks`)
and post-processing (`inference.detections_from_outputs`) give the same masks and the same AP.

`reframe_box_masks_to_image_masks` follows `object_detection/utils/ops.py`: the picture's unit box is expressed
in each detection box's coordinates and `tf.image.crop_and_resize` samples the box mask there (bilinear,
extrapolation value 0). The object detection tutorial then thresholds the result at 0.5.
"""

from __future__ import annotations

import numpy as np

from object_detection_utils.detections import Detections
from object_detection_utils.label_map import LabelMap


def reframe_box_masks_to_image_masks(
    box_masks: np.ndarray, boxes: np.ndarray, image_height: int, image_width: int
) -> np.ndarray:
    """(N, mh, mw) box masks and (N, 4) normalised [ymin, xmin, ymax, xmax] boxes -> (N, H, W) float masks."""
    import tensorflow as tf

    box_masks = tf.convert_to_tensor(box_masks, tf.float32)
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    num_boxes = tf.shape(box_masks)[0]
    if int(num_boxes) == 0:
        return np.zeros((0, image_height, image_width), np.float32)

    def transform_boxes_relative_to_boxes(boxes, reference_boxes):
        boxes = tf.reshape(boxes, [-1, 2, 2])
        min_corner = tf.expand_dims(reference_boxes[:, 0:2], 1)
        max_corner = tf.expand_dims(reference_boxes[:, 2:4], 1)
        denom = tf.math.maximum(max_corner - min_corner, 1e-4)  # prevents a division by zero
        return tf.reshape((boxes - min_corner) / denom, [-1, 4])

    unit_boxes = tf.concat([tf.zeros([num_boxes, 2]), tf.ones([num_boxes, 2])], axis=1)
    reverse_boxes = transform_boxes_relative_to_boxes(unit_boxes, boxes)
    resized = tf.image.crop_and_resize(
        image=tf.expand_dims(box_masks, axis=3),
        boxes=reverse_boxes,
        box_indices=tf.range(num_boxes),
        crop_size=[image_height, image_width],
        method="bilinear",
        extrapolation_value=0,
    )
    return tf.squeeze(resized, axis=3).numpy()


def reference_image_masks(
    box_masks: np.ndarray, boxes: np.ndarray, image_height: int, image_width: int, threshold: float = 0.5
) -> np.ndarray:
    """(N, H, W) bool masks: the reframed masks above `threshold`, as the TF OD API tutorial does."""
    return reframe_box_masks_to_image_masks(box_masks, boxes, image_height, image_width) > threshold


def reference_detections(
    outputs: dict[str, np.ndarray],
    image_size: tuple[int, int],
    label_map: LabelMap,
    index: int = 0,
    min_score: float = 0.5,
) -> Detections:
    """`Detections` of picture `index` of a batch of raw zoo outputs, the TF OD API tutorial's way.

    The first `num_detections` rows are kept; boxes are scaled to pixels after clipping; masks are reframed
    against the unclipped boxes with `crop_and_resize`.
    """
    height, width = image_size
    count = int(outputs["num_detections"][index])
    scores = np.asarray(outputs["detection_scores"][index][:count], np.float32)
    keep = [i for i in range(count) if scores[i] >= min_score]
    boxes = np.asarray(outputs["detection_boxes"][index][keep], np.float32).reshape(-1, 4)
    classes = [int(round(float(c))) for c in np.asarray(outputs["detection_classes"][index])[keep]]
    pixels = np.empty((len(keep), 4), np.float32)
    for row, (ymin, xmin, ymax, xmax) in enumerate(np.clip(boxes, 0.0, 1.0)):
        pixels[row] = (xmin * width, ymin * height, xmax * width, ymax * height)
    masks = None
    if "detection_masks" in outputs:
        masks = reference_image_masks(outputs["detection_masks"][index][keep], boxes, height, width)
    return Detections(
        boxes=pixels,
        class_ids=np.array(classes, np.int32),
        class_names=tuple(label_map.name(c) for c in classes),
        scores=scores[keep],
        masks=masks,
        image_size=(int(height), int(width)),
    )


def mask_ious(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per-instance IoU of two (N, H, W) bool mask stacks; 1.0 where both masks are empty."""
    first = first.reshape(len(first), -1)
    second = second.reshape(len(second), -1)
    intersection = (first & second).sum(axis=1)
    union = (first | second).sum(axis=1)
    return np.where(union > 0, intersection / np.maximum(union, 1), 1.0)


def random_reframe_case(
    rng: np.random.Generator, count: int, mask_size: int = 33
) -> tuple[np.ndarray, np.ndarray]:
    """`count` random soft box masks and boxes like a zoo model's: boxes mostly inside the picture, some
    reaching past its edges or only a few pixels wide, masks with many values near the 0.5 threshold."""
    centres = rng.uniform(-0.05, 1.05, size=(count, 2))
    sides = np.exp(rng.uniform(np.log(0.002), np.log(0.9), size=(count, 2)))
    boxes = np.concatenate([centres - sides / 2, centres + sides / 2], axis=1).astype(np.float32)
    coarse = rng.normal(size=(count, 5, 5)).astype(np.float32)
    # Smooth masks (upsampled noise through a sigmoid), like a mask head's output.
    grid = np.linspace(0, 4, mask_size)
    lo = np.floor(grid).astype(int).clip(0, 3)
    frac = (grid - lo).astype(np.float32)
    rows = coarse[:, lo] * (1 - frac)[None, :, None] + coarse[:, lo + 1] * frac[None, :, None]
    smooth = rows[:, :, lo] * (1 - frac)[None, None, :] + rows[:, :, lo + 1] * frac[None, None, :]
    return (1.0 / (1.0 + np.exp(-3.0 * smooth))).astype(np.float32), boxes
