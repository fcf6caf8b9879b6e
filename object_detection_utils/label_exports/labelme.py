"""labelme: one JSON per picture, `<name>.json` in the export folder, whose `imagePath` leads to the picture (made
relative to the JSON) and whose `imageData` is null, so labelme opens the picture from disk.

Each instance is one `mask` shape (labelme 5.3+: `points` the top-left and bottom-right pixels of its box, `mask` a
base64 PNG of the box) or one `polygon` per part, the parts of one instance sharing a `group_id`. Its score is
the shape's `score` key, which labelme keeps (unknown shape keys stay in `other_data` and are saved back).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..io.atomic import write_text_atomic
from ..io.images import encode_image
from .common import ExportOptions, LabelledPicture, instance_polygons, mask_box, number

LABELME_VERSION = "5.5.0"


def labelme_document(picture: LabelledPicture, json_path: Path, options: ExportOptions) -> dict[str, Any]:
    """The labelme JSON of one picture, to be saved at `json_path`."""
    detections = picture.detections
    height, width = detections.image_size
    polygons = instance_polygons(detections, options.tolerance) \
        if options.shapes == "polygons" or detections.box_masks is None else None
    shapes: list[dict[str, Any]] = []
    for i, instance in enumerate(detections):
        common = {"description": "", "flags": {}, "score": round(instance.score, 5)}
        if polygons is not None:
            group = i + 1 if len(polygons[i]) > 1 else None
            shapes += [{"label": instance.class_name, "points": [[number(x), number(y)] for x, y in polygon],
                        "group_id": group, "shape_type": "polygon", "mask": None, **common}
                       for polygon in polygons[i]]
            continue
        left, top, crop = mask_box(instance.mask)
        if not crop.size:
            continue
        png = base64.b64encode(encode_image(crop.astype(np.uint8) * 255, ".png")).decode("ascii")
        shapes.append({"label": instance.class_name,
                       "points": [[left, top], [left + crop.shape[1] - 1, top + crop.shape[0] - 1]],
                       "group_id": None, "shape_type": "mask", "mask": png, **common})
    image_path = os.path.relpath(picture.source.resolve(), json_path.parent.resolve())
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": Path(image_path).as_posix(),
            "imageData": None, "imageHeight": height, "imageWidth": width}


def write_labelme(folder: Path, pictures: Iterable[LabelledPicture], categories: list[dict[str, Any]],
                  options: ExportOptions) -> None:
    """`folder/<name without suffix>.json` for each picture (subfolders as in the names)."""
    for picture in pictures:
        path = folder / Path(picture.name).with_suffix(".json")
        document = labelme_document(picture, path, options)
        write_text_atomic(path, json.dumps(document, indent=2, ensure_ascii=False))
