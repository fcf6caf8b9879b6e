"""labelme: one JSON per picture (`imagePath`, `imageWidth`, `imageHeight`, `shapes`), in a folder tree.

Shapes of one label sharing a `group_id` form one instance (labelme's own convention); `polygon`, `rectangle`,
`circle` (a polygon of labelme2coco's point count) and `mask` (a base64 PNG over the box of its two points) are
areas; `line`, `linestrip`, `point` and `points` are not and are reported. `imageData`, the picture embedded in
the JSON, is not used: the picture file must be there. A shape's `score` (our pre-annotations) is kept.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...errors import DatasetError
from .builder import DatasetBuilder, Part, rectangle


def read_labelme(path: Path, images: Path | None, categories: list[dict[str, Any]] | None) -> DatasetBuilder:
    """Read a labelme folder (every .json under it) or one labelme .json."""
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    if not files:
        raise DatasetError(f"{path}: no labelme .json files")
    root = path if path.is_dir() else path.parent
    builder = DatasetBuilder(images or root, categories)
    for file in files:
        _read_file(file, builder, images is not None)
    return builder


def _read_file(file: Path, builder: DatasetBuilder, images_given: bool) -> None:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        builder.problem(str(file), f"cannot be read ({error}): skipped")
        return
    if not text.strip():
        builder.problem(str(file), "empty file: skipped")
        return
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        builder.problem(f"{file}: line {error.lineno}", f"not valid JSON ({error.msg}): skipped")
        return
    if not isinstance(document, dict) or not isinstance(document.get("shapes"), list) \
            or not isinstance(document.get("imagePath"), str):
        builder.problem(str(file), "not a labelme file (no shapes and imagePath): skipped")
        return

    picture_path = file.parent / document["imagePath"].replace("\\", "/")
    if images_given and not picture_path.is_file():
        picture_path = builder.images / picture_path.name
    file_name = Path(os.path.relpath(picture_path, builder.images)).as_posix()
    size = (document.get("imageWidth"), document.get("imageHeight"))
    picture = builder.add_picture(file_name, str(file), size if all(isinstance(v, int) for v in size) else None)
    if picture is None:
        return

    instances: dict[Any, tuple[str, str, list[Part]]] = {}
    scores: dict[Any, Any] = {}
    for index, shape in enumerate(document["shapes"]):
        where = f"{file}: shapes[{index}]"
        label = shape.get("label") if isinstance(shape, dict) else None
        if not isinstance(label, str) or not label:
            builder.problem(where, "no label: skipped")
            continue
        part = _part(shape, picture, builder, where)
        group = shape.get("group_id")
        key = index if group is None else (label, group)
        _, _, parts = instances.setdefault(key, (where, label, []))
        scores.setdefault(key, shape.get("score"))
        if part is not None:
            parts.append(part)
    for key, (where, label, parts) in instances.items():
        builder.add_instance(picture, label, parts, where, score=scores[key])


def _part(shape: dict[str, Any], picture: int, builder: DatasetBuilder, where: str) -> Part | None:
    kind = shape.get("shape_type") or "polygon"
    points = shape.get("points")
    if kind == "polygon":
        return builder.polygon(points, picture, where)
    if kind not in ("rectangle", "circle", "mask"):
        builder.problem(where, f"a {kind!r} shape is not an area: skipped")
        return None
    try:
        (x1, y1), (x2, y2) = np.asarray(points, np.float64)
    except (TypeError, ValueError):
        builder.problem(where, f"a {kind} needs 2 points, not {points!r}: skipped")
        return None
    if kind == "rectangle":
        return builder.polygon(rectangle(x1, y1, x2, y2), picture, where, box=True)
    if kind == "circle":
        radius = float(np.hypot(x2 - x1, y2 - y1))
        # labelme2coco's point count: the arc strays at most a pixel from each side
        count = max(int(np.pi / np.arccos(1 - 1 / radius)), 12) if radius > 1 else 12
        angles = 2 * np.pi * np.arange(count) / count
        return builder.polygon(np.stack([x1 + radius * np.sin(angles), y1 + radius * np.cos(angles)], 1),
                               picture, where)
    try:
        data = np.frombuffer(base64.b64decode(shape.get("mask") or "", validate=True), np.uint8)
        mask = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    except (binascii.Error, ValueError, cv2.error):
        mask = None
    if mask is None:
        builder.problem(where, "a mask shape without a readable base64 PNG in 'mask': skipped")
        return None
    return builder.mask(mask > 0, int(x1), int(y1), picture, where)
