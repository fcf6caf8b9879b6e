"""The parts of matterport's `mrcnn.utils` that inference scripts call: picture resizing, boxes from masks, mask
overlaps, the COCO weights download, and `Dataset` (how matterport's samples list the pictures they run on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NoConnection
from ..io.images import read_image
from ..masks import masks_to_boxes
from ..models.download import download
from ..models.matterport.preprocessing import resize_image as _resize_image

COCO_MODEL_URL = "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5"


def resize_image(image: np.ndarray, min_dim: int | None = None, max_dim: int | None = None,
                 min_scale: float | None = None, mode: str = "square"):
    """Matterport's resize_image: (image, window, scale, padding, crop), pixel for pixel (our numpy port of its
    scikit-image resize)."""
    resized = _resize_image(np.asarray(image), mode, min_dim, max_dim, min_scale)
    return resized.image, resized.window, resized.scale, [tuple(pad) for pad in resized.padding], resized.crop


def extract_bboxes(mask: np.ndarray) -> np.ndarray:
    """(N, 4) int32 boxes [y1, x1, y2, x2] (y2, x2 excluded) around the (H, W, N) masks; zeros for an empty one."""
    xyxy = masks_to_boxes(np.moveaxis(np.asarray(mask), -1, 0))
    return xyxy[:, [1, 0, 3, 2]].astype(np.int32)


def compute_overlaps_masks(masks1: np.ndarray, masks2: np.ndarray) -> np.ndarray:
    """IoU of every mask in masks1 (H, W, N1) with every mask in masks2 (H, W, N2): (N1, N2), values > 0.5 set."""
    if masks1.shape[-1] == 0 or masks2.shape[-1] == 0:
        return np.zeros((masks1.shape[-1], masks2.shape[-1]))
    first = (masks1.reshape(-1, masks1.shape[-1]) > 0.5).astype(np.float32)
    second = (masks2.reshape(-1, masks2.shape[-1]) > 0.5).astype(np.float32)
    inter = first.T @ second
    union = first.sum(axis=0)[:, None] + second.sum(axis=0)[None, :] - inter
    return inter / union


def download_trained_weights(coco_model_path: str | Path, verbose: int = 1) -> None:
    """Fetch matterport's COCO weights (its v2.0 release) to `coco_model_path`; offline, one line (NoConnection)
    says where to get the file instead."""
    target = Path(coco_model_path)
    part = target.with_name(target.name + ".part")
    if verbose:
        print(f"Downloading pretrained model to {target} ...")
    try:
        download(COCO_MODEL_URL, part, desc=target.name, progress=bool(verbose))
    except NoConnection as error:
        raise NoConnection(f"{error}; offline? download it on a connected machine and put it at {target}") from None
    part.replace(target)
    if verbose:
        print("... done downloading pretrained model!")


class Dataset:
    """Matterport's Dataset as its samples use it to go through pictures: classes and pictures by source, then
    `prepare()` numbers them; `load_image` reads RGB. Subclasses add `load_<name>` and `load_mask`."""

    def __init__(self, class_map: Any = None) -> None:
        self._image_ids: np.ndarray = np.zeros(0, np.int64)
        self.image_info: list[dict[str, Any]] = []
        self.class_info: list[dict[str, Any]] = [{"source": "", "id": 0, "name": "BG"}]
        self.source_class_ids: dict[str, list[int]] = {}

    def add_class(self, source: str, class_id: int, class_name: str) -> None:
        if "." in source:
            raise ValueError(f"a dataset source name cannot contain a dot: {source!r}")
        if not any(info["source"] == source and info["id"] == class_id for info in self.class_info):
            self.class_info.append({"source": source, "id": class_id, "name": class_name})

    def add_image(self, source: str, image_id: Any, path: str, **kwargs: Any) -> None:
        self.image_info.append({"id": image_id, "source": source, "path": path, **kwargs})

    def image_reference(self, image_id: int) -> str:
        """A link or name for the picture, for debugging; empty unless a subclass says more."""
        return ""

    def prepare(self, class_map: Any = None) -> None:
        """Number the classes and pictures added so far (class names are cut at their first comma)."""
        self.num_classes = len(self.class_info)
        self.class_ids = np.arange(self.num_classes)
        self.class_names = [info["name"].split(",")[0] for info in self.class_info]
        self.num_images = len(self.image_info)
        self._image_ids = np.arange(self.num_images)
        self.class_from_source_map = {f"{info['source']}.{info['id']}": i for i, info in enumerate(self.class_info)}
        self.image_from_source_map = {f"{info['source']}.{info['id']}": i for i, info in enumerate(self.image_info)}
        self.sources = sorted({info["source"] for info in self.class_info})
        self.source_class_ids = {
            source: [i for i, info in enumerate(self.class_info) if i == 0 or info["source"] == source]
            for source in self.sources
        }

    def map_source_class_id(self, source_class_id: str) -> int:
        """Our class id of a "source.id" class."""
        return self.class_from_source_map[source_class_id]

    def get_source_class_id(self, class_id: int, source: str) -> int:
        info = self.class_info[class_id]
        if info["source"] != source:
            raise ValueError(f"class {class_id} is from source {info['source']!r}, not {source!r}")
        return info["id"]

    @property
    def image_ids(self) -> np.ndarray:
        return self._image_ids

    def source_image_link(self, image_id: int) -> str:
        return self.image_info[image_id]["path"]

    def load_image(self, image_id: int) -> np.ndarray:
        """The picture as (H, W, 3) RGB uint8 (grey made RGB, alpha dropped)."""
        return read_image(self.image_info[image_id]["path"])

    def load_mask(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """No instances; a subclass reads its own masks."""
        return np.empty((0, 0, 0), bool), np.empty(0, np.int32)
