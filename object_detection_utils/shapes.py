"""A synthetic instance-segmentation dataset in the manner of matterport's "shapes" sample.

Each picture has a random plain background and a few circles, squares and triangles of random colours and
sizes, some overlapping. Annotations are exact: every painted pixel of a shape belongs to its instance mask,
and a shape that a later one would hide too much is placed elsewhere (or left out) so no instance is a sliver.
Everything follows from the seed.

Other kinds (stars, crosses, rings) make a different task with its own classes, e.g. to fine-tune a shapes
model on: `classes=("star", "cross", "ring")`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .coco_format import annotations_from_masks
from .errors import InstanceSegmentationError
from .io.coco import write_coco_dataset
from .io.images import write_image

SHAPE_CLASSES: dict[int, str] = {1: "circle", 2: "square", 3: "triangle"}
SHAPE_KINDS = ("circle", "square", "triangle", "star", "cross", "ring")
MIN_VISIBLE_FRACTION = 0.6  # an instance keeps at least this much of its own area visible
MIN_COLOR_DISTANCE = 80.0  # shapes stand out from the background by at least this (RGB Euclidean)
PLACEMENT_TRIES = 10


@dataclass(frozen=True)
class ShapesPicture:
    """One generated picture and its instances, in drawing order (later shapes lie on top)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    masks: np.ndarray  # (N, H, W) bool, visible parts only
    class_ids: np.ndarray  # (N,) int32, keys of the class map it was drawn with (default SHAPE_CLASSES)


def shape_classes(kinds: tuple[str, ...] | list[str]) -> dict[int, str]:
    """The class map {1: kinds[0], 2: kinds[1], ...}, checking that each kind is one the generator draws."""
    unknown = [kind for kind in kinds if kind not in SHAPE_KINDS]
    if unknown or not kinds or len(set(kinds)) != len(kinds):
        raise InstanceSegmentationError(
            f"shape kinds must be distinct names among {', '.join(SHAPE_KINDS)}; got {', '.join(kinds) or 'none'}")
    return {index: kind for index, kind in enumerate(kinds, start=1)}


def _polygon(x: int, y: int, radii: np.ndarray, angle: float) -> np.ndarray:
    """Corners at `radii` around (x, y), evenly spaced in angle from `angle`, as cv2.fillPoly points."""
    angles = angle + np.arange(len(radii)) * 2 * np.pi / len(radii)
    return np.round(np.stack([x + radii * np.cos(angles), y + radii * np.sin(angles)], axis=1)).astype(np.int32)


def _shape_mask(kind: str, centre: tuple[int, int], radius: int, angle: float, size: tuple[int, int]) -> np.ndarray:
    canvas = np.zeros(size, np.uint8)
    x, y = centre
    if kind == "circle":
        cv2.circle(canvas, (x, y), radius, 1, thickness=-1)
    elif kind == "ring":
        cv2.circle(canvas, (x, y), radius, 1, thickness=-1)
        cv2.circle(canvas, (x, y), radius // 2, 0, thickness=-1)
    elif kind in ("square", "triangle"):
        cv2.fillPoly(canvas, [_polygon(x, y, np.full(4 if kind == "square" else 3, float(radius)), angle)], 1)
    elif kind == "star":  # five points, the inner corners at 0.45 of the radius
        cv2.fillPoly(canvas, [_polygon(x, y, np.tile([radius, 0.45 * radius], 5), angle)], 1)
    elif kind == "cross":  # a plus sign whose arms are two thirds of the radius wide
        r, w = radius, radius / 3
        local = np.array([(r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w),
                          (-r, w), (-r, -w), (-w, -w), (-w, -r), (w, -r), (w, -w)])
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        cv2.fillPoly(canvas, [np.round(local @ turn.T + (x, y)).astype(np.int32)], 1)
    else:
        raise ValueError(f"unknown shape kind {kind!r}")
    return canvas.astype(bool)


def _distinct_color(rng: np.random.Generator, avoid: np.ndarray) -> np.ndarray:
    for _ in range(100):
        color = rng.integers(0, 256, 3)
        if np.linalg.norm(color - avoid.astype(np.float64)) >= MIN_COLOR_DISTANCE:
            return color.astype(np.uint8)
    return (255 - avoid).astype(np.uint8)


def random_shapes_picture(
    rng: np.random.Generator, size: tuple[int, int] = (128, 128), max_shapes: int = 4,
    classes: dict[int, str] = SHAPE_CLASSES,
) -> ShapesPicture:
    """One picture of `size` = (height, width) with 1..`max_shapes` shapes of the kinds `classes` names."""
    height, width = size
    background = rng.integers(0, 256, 3).astype(np.uint8)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = background
    masks: list[np.ndarray] = []
    class_ids: list[int] = []
    short_side = min(height, width)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        class_id = int(rng.integers(1, len(classes) + 1))
        for _ in range(PLACEMENT_TRIES):
            radius = int(rng.integers(max(4, short_side // 12), max(5, short_side // 4)))
            centre = (int(rng.integers(radius // 2, width - radius // 2)), int(rng.integers(radius // 2, height - radius // 2)))
            mask = _shape_mask(classes[class_id], centre, radius, float(rng.uniform(0, 2 * np.pi)), size)
            area = mask.sum()
            if area < 16:
                continue
            # The new shape must keep most of each earlier instance visible.
            if all((m & ~mask).sum() >= MIN_VISIBLE_FRACTION * m.sum() for m in masks):
                break
        else:
            continue
        masks = [m & ~mask for m in masks]
        masks.append(mask)
        class_ids.append(class_id)
        image[mask] = _distinct_color(rng, background)
    stacked = np.stack(masks) if masks else np.zeros((0, height, width), bool)
    return ShapesPicture(image=image, masks=stacked, class_ids=np.array(class_ids, np.int32))


def coco_annotations(
    pictures: list[tuple[str, ShapesPicture]], categories: dict[int, str] = SHAPE_CLASSES
) -> dict:
    """A COCO instances document for (file name, picture) pairs; masks as RLE, boxes [x, y, w, h]."""
    images, annotations = [], []
    for image_id, (file_name, picture) in enumerate(pictures, start=1):
        height, width = picture.image.shape[:2]
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        annotations += annotations_from_masks(picture.masks, picture.class_ids, image_id, len(annotations) + 1)
    return {
        "info": {"description": "synthetic shapes"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name, "supercategory": "shape"} for i, name in categories.items()],
    }


def write_shapes_dataset(
    folder: str | Path, count: int, seed: int = 0, size: tuple[int, int] = (128, 128), max_shapes: int = 4,
    progress: bool = True, classes: dict[int, str] = SHAPE_CLASSES,
) -> Path:
    """Write `count` pictures to `folder/images/` and their annotations to `folder/annotations.json`.

    Returns the annotations path. The same seed (and classes) always gives the same pictures.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    pictures = []
    for index in tqdm(range(count), desc="shapes", unit="picture", disable=not progress):
        picture = random_shapes_picture(rng, size, max_shapes, classes)
        file_name = f"shapes_{seed}_{index:05d}.png"
        write_image(folder / "images" / file_name, picture.image)
        pictures.append((file_name, picture))
    annotations_path = folder / "annotations.json"
    document = coco_annotations(pictures, classes)
    write_coco_dataset(annotations_path, lambda: document["images"], lambda: document["annotations"],
                       document["categories"], document["info"]["description"])
    return annotations_path
