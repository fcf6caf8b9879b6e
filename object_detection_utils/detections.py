"""`Detections`: the one result type that flows from a model to drawing, files and evaluation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .box_masks import BoxMasks, as_box_masks
from .coco_format import detections_to_coco
from .label_map import LabelMap

if TYPE_CHECKING:  # an optional extra, imported only by the methods that need it
    import supervision as sv

SUPERVISION_CLASS_NAME = "class_name"  # the `data` key where supervision keeps class names
TRACK_ID = "track_id"  # the `data` key of track ids (tracking.MaskTracker), 1, 2, ... for confirmed tracks only


@dataclass(frozen=True, eq=False)
class Instance:
    """One detected object, as yielded when iterating over `Detections`; `==` is identity, as for `Detections`."""

    box: np.ndarray  # (4,) float32 [x1, y1, x2, y2] in pixels
    class_id: int
    class_name: str
    score: float
    mask: np.ndarray | None  # (H, W) bool, or None for a boxes-only model
    data: dict[str, Any] = field(default_factory=dict)  # this instance's entry of each `Detections.data` array


@dataclass(frozen=True, eq=False, init=False)
class Detections:
    """Instances found in one picture of size `image_size` = (height, width).

    `==` and `hash()` are those of the object (identity), so detections can be dict keys and set members;
    `same_as` compares values, field by field.

    Attributes:
        boxes: (N, 4) float32, [x1, y1, x2, y2] in pixels of the picture.
        class_ids: (N,) int32, ids of the model's label map (COCO ids 1..90 for zoo models).
        class_names: N names from the label map.
        scores: (N,) float32 in [0, 1], highest first as the model returns them.
        box_masks: the masks in compact form (`BoxMasks`: a tight crop per instance and where it sits), or None
            when the model has no mask head. Memory grows with the objects, not with the picture.
        masks: (N, H, W) bool full-picture masks, or None: made from `box_masks` on first use and then kept, so
            code that needs no full-picture array should read `box_masks`.
        image_size: (height, width) of the picture the boxes and masks refer to.
        data: per-instance extra arrays of length N (e.g. `{"track_id": ...}`), indexed and filtered with the
            instances, as supervision's `Detections.data`.

    The `masks` argument takes either form: an (N, H, W) bool array or `BoxMasks`.

    Example:
        >>> tracked = Detections(boxes, class_ids, names, scores, masks, (480, 640), data={"track_id": ids})
        >>> tracked.filter(min_score=0.7).data["track_id"]   # the ids of the instances kept
    """

    boxes: np.ndarray
    class_ids: np.ndarray
    class_names: tuple[str, ...]
    scores: np.ndarray
    box_masks: BoxMasks | None
    image_size: tuple[int, int]
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __init__(
        self,
        boxes: np.ndarray,
        class_ids: np.ndarray,
        class_names: tuple[str, ...],
        scores: np.ndarray,
        masks: np.ndarray | BoxMasks | None,
        image_size: tuple[int, int],
        data: Mapping[str, Any] | None = None,
    ) -> None:
        n = len(scores)
        if boxes.shape != (n, 4) or class_ids.shape != (n,) or len(class_names) != n:
            raise ValueError(
                f"inconsistent detections: {n} scores, boxes {boxes.shape}, "
                f"class_ids {class_ids.shape}, {len(class_names)} names"
            )
        image_size = (int(image_size[0]), int(image_size[1]))
        if masks is not None and tuple(masks.shape) != (n, *image_size):
            raise ValueError(f"masks {tuple(masks.shape)} do not match {n} instances of size {image_size}")
        arrays = {key: np.asarray(value) for key, value in (data or {}).items()}
        for key, value in arrays.items():
            if value.ndim == 0 or len(value) != n:
                length = "a scalar" if value.ndim == 0 else f"{len(value)} entries"
                raise ValueError(f"detections data[{key!r}] has {length}, not one per instance ({n})")
        for name, value in (("boxes", boxes), ("class_ids", class_ids), ("class_names", tuple(class_names)),
                            ("scores", scores), ("image_size", image_size), ("data", arrays)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "box_masks", None if masks is None else as_box_masks(masks))
        if isinstance(masks, np.ndarray):  # the caller's full-picture array is kept: `masks` gives it back
            self.__dict__["_dense_masks"] = masks

    @property
    def masks(self) -> np.ndarray | None:
        """(N, H, W) bool full-picture masks, or None without masks; made once, on first use."""
        if self.box_masks is None:
            return None
        if "_dense_masks" not in self.__dict__:
            self.__dict__["_dense_masks"] = self.box_masks.to_dense()
        return self.__dict__["_dense_masks"]

    @classmethod
    def empty(
        cls, image_size: tuple[int, int], with_masks: bool = True, data_dtypes: Mapping[str, Any] | None = None
    ) -> Detections:
        """No instances, for a picture of `image_size` = (height, width); `data_dtypes` (key -> dtype) gives
        `data` its keys, as empty arrays."""
        masks = BoxMasks.empty(image_size) if with_masks else None
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            class_ids=np.zeros((0,), np.int32),
            class_names=(),
            scores=np.zeros((0,), np.float32),
            masks=masks,
            image_size=(int(image_size[0]), int(image_size[1])),
            data={key: np.zeros((0,), dtype) for key, dtype in (data_dtypes or {}).items()},
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
                mask=None if self.box_masks is None else self.box_masks.dense(i),
                data={key: value[i] for key, value in self.data.items()},
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
            masks=None if self.box_masks is None else self.box_masks.subset(positions),
            image_size=self.image_size,
            data={key: value[positions] for key, value in self.data.items()},
        )

    def same_as(self, other: Detections) -> bool:
        """Whether `other` holds the same values in every field, masks and `data` included (dtypes may differ)."""
        if not isinstance(other, Detections) or self.data.keys() != other.data.keys():
            return False
        if self.box_masks is None or other.box_masks is None:
            same_masks = self.box_masks is None and other.box_masks is None
        else:
            same_masks = self.box_masks.equals(other.box_masks)
        return (
            same_masks
            and tuple(self.image_size) == tuple(other.image_size)
            and tuple(self.class_names) == tuple(other.class_names)
            and np.array_equal(self.boxes, other.boxes)
            and np.array_equal(self.class_ids, other.class_ids)
            and np.array_equal(self.scores, other.scores)
            and all(np.array_equal(value, other.data[key]) for key, value in self.data.items())
        )

    @property
    def has_masks(self) -> bool:
        return self.box_masks is not None

    @property
    def areas(self) -> np.ndarray:
        """Mask areas in pixels, or box areas for a boxes-only model."""
        if self.box_masks is not None:
            return self.box_masks.areas()
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

    def to_coco(self, image_id: int | None) -> list[dict[str, Any]]:
        """COCO result entries, one per instance (see `coco_format.detections_to_coco`); no `image_id` when None."""
        return detections_to_coco(self, image_id)

    def to_supervision(self) -> sv.Detections:
        """These detections as a `supervision.Detections`, masks included.

        `xyxy` <- boxes, `mask` <- masks, `confidence` <- scores, `class_id` <- class_ids, and `data` <- our
        `data` plus the class names under `data["class_name"]`, where supervision's own converters put them.
        """
        return _import_supervision().Detections(
            xyxy=self.boxes,
            mask=self.masks,
            confidence=self.scores,
            class_id=self.class_ids,
            data={**self.data, SUPERVISION_CLASS_NAME: np.array(self.class_names, dtype=str)},
        )

    @classmethod
    def from_supervision(
        cls,
        detections: sv.Detections,
        class_names: Mapping[int, str] | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> Detections:
        """`Detections` from a `supervision.Detections`, masks included (dense or `CompactMask`).

        Class names come from `class_names` (a `LabelMap` or any id -> name mapping) when given, else from
        `data["class_name"]`; the other `data` arrays are kept. `image_size` = (height, width) is read from the
        masks when there are masks and must be given when there are none. `tracker_id` and `metadata` are not
        carried over.
        """
        if not isinstance(detections, _import_supervision().Detections):
            raise TypeError(f"expected supervision.Detections, got {type(detections).__name__}")
        if detections.confidence is None or detections.class_id is None:
            missing = "confidence" if detections.confidence is None else "class_id"
            raise ValueError(f"supervision Detections without {missing}: both scores and class ids are needed")
        masks = None if detections.mask is None else np.asarray(detections.mask, dtype=bool)
        if masks is not None:
            image_size = masks.shape[1:]
        elif image_size is None:
            raise ValueError("supervision Detections without masks: pass image_size=(height, width)")
        class_ids = np.asarray(detections.class_id).astype(np.int32)
        data = {key: np.asarray(value) for key, value in detections.data.items() if key != SUPERVISION_CLASS_NAME}
        if class_names is not None:
            label_map = class_names if isinstance(class_names, LabelMap) else LabelMap(class_names)
            names = tuple(label_map.name(class_id) for class_id in class_ids)
        elif SUPERVISION_CLASS_NAME in detections.data:
            names = tuple(str(name) for name in detections.data[SUPERVISION_CLASS_NAME])
        else:
            raise ValueError('supervision Detections without data["class_name"]: pass class_names (e.g. a LabelMap)')
        return cls(
            boxes=np.asarray(detections.xyxy, np.float32),
            class_ids=class_ids,
            class_names=names,
            scores=np.asarray(detections.confidence).astype(np.float32),
            masks=masks,
            image_size=(int(image_size[0]), int(image_size[1])),
            data=data,
        )


def _import_supervision() -> Any:
    try:
        import supervision
    except ImportError:
        raise ImportError('supervision is not installed: pip install "instance-segmentation[supervision]"') from None
    return supervision
