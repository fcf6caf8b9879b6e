"""`Detections`: the one result type that flows from a model to drawing, files and evaluation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Instance:
    """One detected object, as yielded when iterating over `Detections`."""

    box: np.ndarray  # (4,) float32 [x1, y1, x2, y2] in pixels
    class_id: int
    class_name: str
    score: float
    mask: np.ndarray | None  # (H, W) bool, or None for a boxes-only model


@dataclass(frozen=True)
class Detections:
    """Instances found in one picture of size `image_size` = (height, width).

    Attributes:
        boxes: (N, 4) float32, [x1, y1, x2, y2] in pixels of the picture.
        class_ids: (N,) int32, ids of the model's label map (COCO ids 1..90 for zoo models).
        class_names: N names from the label map.
        scores: (N,) float32 in [0, 1], highest first as the model returns them.
        masks: (N, H, W) bool full-picture masks, or None when the model has no mask head.
        image_size: (height, width) of the picture the boxes and masks refer to.
    """

    boxes: np.ndarray
    class_ids: np.ndarray
    class_names: tuple[str, ...]
    scores: np.ndarray
    masks: np.ndarray | None
    image_size: tuple[int, int]
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        n = len(self.scores)
        if self.boxes.shape != (n, 4) or self.class_ids.shape != (n,) or len(self.class_names) != n:
            raise ValueError(
                f"inconsistent detections: {n} scores, boxes {self.boxes.shape}, "
                f"class_ids {self.class_ids.shape}, {len(self.class_names)} names"
            )
        if self.masks is not None and self.masks.shape != (n, *self.image_size):
            raise ValueError(f"masks {self.masks.shape} do not match {n} instances of size {self.image_size}")

    @classmethod
    def empty(cls, image_size: tuple[int, int], with_masks: bool = True) -> Detections:
        """No instances, for a picture of `image_size` = (height, width)."""
        masks = np.zeros((0, *image_size), dtype=bool) if with_masks else None
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            class_ids=np.zeros((0,), np.int32),
            class_names=(),
            scores=np.zeros((0,), np.float32),
            masks=masks,
            image_size=(int(image_size[0]), int(image_size[1])),
        )

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self) -> Iterator[Instance]:
        for i in range(len(self)):
            yield Instance(
                box=self.boxes[i],
                class_id=int(self.class_ids[i]),
                class_name=self.class_names[i],
                score=float(self.scores[i]),
                mask=None if self.masks is None else self.masks[i],
            )

    def __getitem__(self, index: int | slice | np.ndarray | list[int]) -> Detections:
        """A subset, selected by a boolean mask, an index array, a slice or one index."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        positions = np.arange(len(self))[index]
        return Detections(
            boxes=self.boxes[positions],
            class_ids=self.class_ids[positions],
            class_names=tuple(self.class_names[i] for i in positions),
            scores=self.scores[positions],
            masks=None if self.masks is None else self.masks[positions],
            image_size=self.image_size,
            extra=self.extra,
        )

    @property
    def has_masks(self) -> bool:
        return self.masks is not None

    @property
    def areas(self) -> np.ndarray:
        """Mask areas in pixels, or box areas for a boxes-only model."""
        if self.masks is not None:
            return self.masks.sum(axis=(1, 2))
        widths = np.clip(self.boxes[:, 2] - self.boxes[:, 0], 0, None)
        heights = np.clip(self.boxes[:, 3] - self.boxes[:, 1], 0, None)
        return widths * heights

    def filter(self, min_score: float = 0.0, class_ids: Iterable[int] | None = None) -> Detections:
        """Keep instances scoring at least `min_score` and, if given, of one of `class_ids`."""
        keep = self.scores >= min_score
        if class_ids is not None:
            keep &= np.isin(self.class_ids, np.fromiter(class_ids, dtype=np.int64))
        return self[keep]

    def counts(self) -> dict[str, int]:
        """Instances per class name, in order of first appearance."""
        counts: dict[str, int] = {}
        for name in self.class_names:
            counts[name] = counts.get(name, 0) + 1
        return counts

    def to_matterport(self) -> dict[str, np.ndarray]:
        """The dict matterport Mask_RCNN's `model.detect()` returns for one picture.

        `rois` (N, 4) int32 [y1, x1, y2, x2], `masks` (H, W, N) bool, `class_ids` (N,) int32, `scores` (N,) float32.
        """
        rois = np.round(self.boxes[:, [1, 0, 3, 2]]).astype(np.int32)
        if self.masks is None:
            masks = np.zeros((*self.image_size, 0), dtype=bool)
        else:
            masks = np.transpose(self.masks, (1, 2, 0))
        return {"rois": rois, "masks": masks, "class_ids": self.class_ids.astype(np.int32), "scores": self.scores}
