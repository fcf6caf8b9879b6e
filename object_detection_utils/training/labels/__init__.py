"""Labels as labelling tools export them -> one in-memory COCO dataset the training command can use.

    labels = load_labels("exports/labelme", format="auto")
    labels.dataset      # {"images", "annotations", "categories"}: file names relative to labels.images
    labels.problems     # one line per skipped label or picture, naming the file and line or JSON element

Formats: `labelme` (a folder of JSON files), `cvat` (CVAT for images 1.1 XML), `label-studio` (Label Studio's JSON
export), `yolo` (Ultralytics segmentation: images/ + labels/), and `coco` (any COCO instances file, which is
also what CVAT's "COCO 1.0" and Label Studio's COCO exports are). `auto` tells them apart by their content.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, NamedTuple

from ...errors import DatasetError
from .builder import DatasetBuilder
from .coco import read_coco
from .cvat import read_cvat
from .label_studio import read_label_studio
from .labelme import read_labelme
from .yolo import read_yolo, yolo_folders

FORMATS = ("coco", "labelme", "cvat", "label-studio", "yolo")
_READERS = {"coco": read_coco, "labelme": read_labelme, "cvat": read_cvat, "label-studio": read_label_studio,
            "yolo": read_yolo}
_log = logging.getLogger(__name__)


class Labels(NamedTuple):
    """A converted dataset: the COCO dict, the folder its file names are relative to, and what was skipped."""

    dataset: dict[str, Any]
    images: Path
    problems: list[str]


def load_labels(path: str | Path, format: str = "auto", images: str | Path | None = None,
                categories: list[dict[str, Any]] | None = None) -> Labels:
    """Read the labels at `path` as one COCO dataset, skipping (and logging) whatever is wrong.

    `images`: the picture folder, by default found beside the labels. `categories` ([{"id", "name"}]) fixes the
    classes, e.g. validation labels read with the training labels' categories; labels of other classes are then
    problems. A path that cannot be read at all raises DatasetError.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if format == "auto":
        format = detect_format(path)
    if format not in _READERS:
        raise DatasetError(f"unknown labels format {format!r} (one of: auto, {', '.join(FORMATS)})")
    builder: DatasetBuilder = _READERS[format](path, None if images is None else Path(images), categories)
    for problem in builder.problems:
        _log.warning("skipped: %s", problem)
    return Labels(builder.build(), builder.images, builder.problems)


def detect_format(path: Path) -> str:
    """Which of FORMATS the labels at `path` are, from their content; DatasetError if none."""
    if path.is_dir():
        if (path / "annotations.xml").is_file():
            return "cvat"
        if yolo_folders(path) is not None:
            return "yolo"
        for file in sorted(path.rglob("*.json")):
            kind = _json_kind(file)
            if kind is not None:
                return kind
    elif path.suffix.lower() == ".xml":
        return "cvat"
    elif path.suffix.lower() in (".yaml", ".yml"):
        return "yolo"
    elif path.suffix.lower() == ".json":
        kind = _json_kind(path)
        if kind is not None:
            return kind
    raise DatasetError(f"{path}: not labels of a known format (labelme JSON, CVAT annotations.xml, a Label Studio "
                       "or COCO .json, or a YOLO folder with images/ and labels/); give --labels-format")


def _json_kind(file: Path) -> str | None:
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(document, dict) and "shapes" in document and "imagePath" in document:
        return "labelme"
    if isinstance(document, dict) and "images" in document and "annotations" in document:
        return "coco"
    if isinstance(document, list) and document and all(isinstance(t, dict) and "data" in t for t in document):
        return "label-studio"
    return None
