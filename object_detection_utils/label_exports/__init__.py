"""Detections -> pre-annotations a labelling tool imports: Label Studio, CVAT, labelme, YOLO-seg and COCO.

    pictures = [LabelledPicture("a.jpg", Path("photos/a.jpg"), detections), ...]
    write_labels("label-studio", "exports/ls", pictures, categories, ExportOptions(shapes="polygons"))

Each format is written as its tool's own import reads it (one module each), and read back by
`training.labels.load_labels` into the same pixels (masks) or the same pixels within the polygon tolerance
(polygons), class names and scores included where the format has a place for them (YOLO has none). An instance
whose mask has no pixel (a box whose mask stayed under the threshold) is left out. Every file is written
atomically; the folder is created.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import InstanceSegmentationError
from ..io.atomic import check_writable
from .coco import write_coco
from .common import SHAPES, ExportOptions, LabelledPicture
from .cvat import write_cvat
from .label_studio import write_label_studio
from .labelme import write_labelme
from .polygons import DEFAULT_TOLERANCE, mask_to_polygons
from .yolo import write_yolo

__all__ = ["DEFAULT_TOLERANCE", "FORMATS", "SHAPES", "ExportOptions", "LabelExportError", "LabelledPicture",
           "check_export", "mask_to_polygons", "write_labels"]

_WRITERS: dict[str, Callable[..., None]] = {
    "label-studio": write_label_studio, "cvat": write_cvat, "labelme": write_labelme, "yolo": write_yolo,
    "coco": write_coco}
FORMATS = tuple(_WRITERS)


class LabelExportError(InstanceSegmentationError):
    """An unknown export format, or an export folder that cannot be written."""


def check_export(format: str, folder: str | Path) -> None:
    """LabelExportError, one line, when `format` is unknown or `folder` cannot be created or written."""
    if format not in _WRITERS:
        raise LabelExportError(f"unknown label format {format!r} (one of: {', '.join(FORMATS)})")
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        check_writable(folder)
    except OSError as error:
        raise LabelExportError(f"{folder}: cannot write labels there ({error.strerror or error})") from None


def write_labels(format: str, folder: str | Path, pictures: Iterable[LabelledPicture],
                 categories: list[dict[str, Any]], options: ExportOptions = ExportOptions()) -> None:
    """Write `pictures` (name, source file, Detections) into `folder` as `format` (one of FORMATS).

    `categories` ([{"id", "name"}]) are the model's classes, all declared to the tool even when not found.
    """
    check_export(format, folder)
    _WRITERS[format](Path(folder), pictures, categories, options)
