"""COCO-format annotations + a picture folder -> the TFRecord files Model Garden's Mask R-CNN reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import DatasetError, ImageReadError
from ..io.atomic import atomic_path
from ..io.images import read_image
from ..label_map import LabelMap


@dataclass(frozen=True)
class CocoDataset:
    """A COCO instances file and the folder its `file_name`s are relative to."""

    annotations: Path
    images: Path

    def load(self):
        """The pycocotools `COCO` index of the annotations, or a one-line error naming the file."""
        from ..evaluation import load_ground_truth

        return load_ground_truth(self.annotations)

    def label_map(self) -> LabelMap:
        coco = self.load()
        return LabelMap({int(c["id"]): str(c["name"]) for c in coco.dataset["categories"]})


def example_from_picture(image: np.ndarray, masks: np.ndarray, class_ids: np.ndarray, is_crowd: np.ndarray,
                         source_id: str) -> bytes:
    """One serialised tf.train.Example: PNG picture, normalised boxes from the masks, PNG masks, classes."""
    from official.vision.data.tf_example_builder import TfExampleBuilder

    from ..masks import masks_to_boxes

    height, width = image.shape[:2]
    boxes = masks_to_boxes(masks) / np.array([width, height, width, height], np.float32)
    builder = TfExampleBuilder()
    builder.add_image_matrix_feature(image, "PNG", image_source_id=source_id.encode("utf-8"))
    builder.add_boxes_feature(xmins=boxes[:, 0].tolist(), xmaxs=boxes[:, 2].tolist(), ymins=boxes[:, 1].tolist(),
                              ymaxs=boxes[:, 3].tolist(), labels=[int(c) for c in class_ids])
    builder.add_ints_feature("image/object/is_crowd", [int(c) for c in is_crowd])
    if len(masks):
        builder.add_instance_mask_matrices_feature(masks.astype(np.uint8))
    return builder.serialized_example


def write_tfrecord(dataset: CocoDataset, output: str | Path, image_ids: list[int] | None = None,
                   progress: bool = True) -> int:
    """Convert the pictures `image_ids` (default: all) of `dataset` into one TFRecord file; returns the count.

    Boxes come from the masks, so they always agree. A picture that cannot be read is reported and skipped;
    the file is written under a temporary name and renamed once complete.
    """
    import tensorflow as tf

    coco = dataset.load()
    image_ids = sorted(coco.getImgIds()) if image_ids is None else image_ids
    output = Path(output)
    written = 0
    with atomic_path(output) as temporary, tf.io.TFRecordWriter(str(temporary)) as writer:
        for image_id in tqdm(image_ids, desc=f"converting {output.name}", unit="picture", disable=not progress):
            info = coco.imgs[image_id]
            try:
                image = read_image(dataset.images / info["file_name"])
            except ImageReadError as error:
                tqdm.write(f"skipped: {error}")
                continue
            if image.shape[:2] != (info["height"], info["width"]):
                tqdm.write(f"skipped: {dataset.images / info['file_name']}: size {image.shape[1]}x{image.shape[0]} "
                           f"differs from the annotations' {info['width']}x{info['height']}")
                continue
            annotations = [a for a in coco.imgToAnns[image_id] if a.get("area", 1) > 0]
            masks = np.array([coco.annToMask(a) for a in annotations], bool).reshape(-1, *image.shape[:2])
            keep = masks.reshape(len(masks), -1).any(axis=1)
            class_ids = np.array([a["category_id"] for a in annotations], np.int64)[keep]
            is_crowd = np.array([a.get("iscrowd", 0) for a in annotations], np.int64)[keep]
            writer.write(example_from_picture(image, masks[keep], class_ids, is_crowd, str(image_id)))
            written += 1
        if written == 0:
            raise DatasetError(f"{dataset.annotations}: no readable pictures in {dataset.images}")
    return written
