"""The files that cover a whole run, written at its end from the journal: one COCO JSON, a summary, and the
detections as a labelling tool's pre-annotations."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...box_masks import BoxMasks
from ...coco_format import coco_image_ids, decode_mask
from ...detections import Detections
from ...io.atomic import atomic_file
from ...io.coco import write_coco_dataset
from ...label_exports import ExportOptions, LabelledPicture, write_labels
from ...label_map import LabelMap

Records = Callable[[], Iterable[dict[str, Any]]]  # a fresh stream of journal records on each call


def write_coco_json(path: Path, records: Records, label_map: LabelMap) -> None:
    """One COCO file for the run, in the dataset layout that `pycocotools.coco.COCO(path)` loads.

    `images` lists file_name, width and height under stable ids; `annotations` are the results (bbox
    [x, y, w, h], score, RLE segmentation, area), so `coco_gt.loadRes(data["annotations"])` evaluates them
    against ground truth under the same image ids. Records are streamed, never all held at once.
    """
    names: list[str] = []
    seen_classes: set[int] = set()
    for record in records():
        names.append(record["file"])
        seen_classes.update(entry["category_id"] for entry in record["coco"])
    ids = coco_image_ids(names)
    categories = [{"id": class_id, "name": label_map.name(class_id), "supercategory": "object"}
                  for class_id in sorted(set(label_map) | seen_classes)]

    def images() -> Iterable[dict[str, Any]]:
        for record in records():
            yield {"id": ids[record["file"]], "file_name": record["file"],
                   "width": record["width"], "height": record["height"]}

    def annotations() -> Iterable[dict[str, Any]]:
        for record in records():
            for entry in record["coco"]:
                yield {"image_id": ids[record["file"]], **entry}

    write_coco_dataset(path, images, annotations, categories, description="instance-segmentation batch results")


def write_summary(path: Path, records: Records, failures: Sequence[tuple[str, str]] = ()) -> None:
    """One line per picture: file, size, instances (in all and per class), seconds; failures with their reason.

    `.csv` gets one column per class found (`n_<class>`); any other suffix gets JSON lines.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        classes: dict[str, None] = {}
        for record in records():
            classes.update(dict.fromkeys(record["counts"]))
        columns = ["file", "width", "height", "instances", *(f"n_{name}" for name in classes),
                   "inference_seconds", "postprocess_seconds", "error"]
        with atomic_file(path, "w") as file:
            writer = csv.writer(file)
            writer.writerow(columns)
            for record in records():
                counts = [record["counts"].get(name, 0) for name in classes]
                writer.writerow([record["file"], record["width"], record["height"], record["instances"], *counts,
                                 record["inference_seconds"], record["postprocess_seconds"], ""])
            for name, reason in failures:
                writer.writerow([name, "", "", "", *([""] * len(classes)), "", "", reason])
        return
    keys = ("file", "width", "height", "instances", "counts", "inference_seconds", "postprocess_seconds")
    with atomic_file(path, "w") as file:
        for record in records():
            file.write(json.dumps({key: record[key] for key in keys}) + "\n")
        for name, reason in failures:
            file.write(json.dumps({"file": name, "error": reason}) + "\n")


def write_label_export(format: str, folder: Path, records: Records, sources: dict[str, Path], label_map: LabelMap,
                       options: ExportOptions) -> None:
    """The run's detections as `format` pre-annotations in `folder` (`label_exports.write_labels`), one picture
    at a time from the journal; `sources` gives each picture's file by name."""
    found = {entry["category_id"] for record in records() for entry in record["coco"]}
    categories = [{"id": class_id, "name": label_map.name(class_id)} for class_id in sorted(set(label_map) | found)]

    def pictures() -> Iterable[LabelledPicture]:
        for record in records():
            yield LabelledPicture(record["file"], sources[record["file"]], record_detections(record, label_map))

    write_labels(format, folder, pictures(), categories, options)


def record_detections(record: dict[str, Any], label_map: LabelMap) -> Detections:
    """A journal record's detections again: its COCO entries (boxes, classes, scores rounded as stored, masks)."""
    entries = record["coco"]
    size = (record["height"], record["width"])
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (e["bbox"] for e in entries)], np.float32)
    with_masks = all("segmentation" in e for e in entries)
    return Detections(
        boxes=boxes.reshape(-1, 4),
        class_ids=np.array([e["category_id"] for e in entries], np.int32),
        class_names=tuple(label_map.name(e["category_id"]) for e in entries),
        scores=np.array([e["score"] for e in entries], np.float32),
        # decoded one at a time into compact masks: never all of a large picture's full-size masks at once
        masks=BoxMasks.from_each((decode_mask(e["segmentation"]) for e in entries), size) if with_masks else None,
        image_size=size)
