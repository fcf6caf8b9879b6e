"""YOLO segmentation (Ultralytics): `folder/images/<name>` (the picture, hard-linked or copied: Ultralytics finds
a label by swapping `images` for `labels` in the picture's path), `folder/labels/<name>.txt` with one instance a
line, `class x1 y1 x2 y2 ...` normalised to 0..1 (`%g`, as Ultralytics writes them), and `folder/data.yaml`.

Class index i is category id i + 1; `names` covers 0..the largest id - 1, a gap named `class_<id>`. Polygons
only, one per instance: parts and holes joined (as Ultralytics' own COCO converter joins parts). The format has
no place for a score.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_path, write_text_atomic
from .common import ExportOptions, LabelledPicture, instance_polygons
from .polygons import join_polygons


def write_yolo(folder: Path, pictures: Iterable[LabelledPicture], categories: list[dict[str, Any]],
               options: ExportOptions) -> None:
    """images/, labels/ and data.yaml under `folder`."""
    names = {int(c["id"]): str(c["name"]) for c in categories}
    for picture in pictures:
        detections = picture.detections
        height, width = detections.image_size
        lines = []
        for instance, polygons in zip(detections, instance_polygons(detections, options.tolerance)):
            if polygons:
                points = join_polygons(polygons) / (width, height)
                lines.append(" ".join([str(instance.class_id - 1), *(f"{v:g}" for v in points.ravel())]))
        write_text_atomic(folder / "labels" / Path(picture.name).with_suffix(".txt"), "".join(f"{line}\n"
                                                                                         for line in lines))
        _place_picture(picture.source, folder / "images" / picture.name)
    count = max(names, default=0)
    listed = "\n".join(f"  {i}: {_yaml_string(names.get(i + 1, f'class_{i + 1}'))}" for i in range(count))
    write_text_atomic(folder / "data.yaml", f"path: .\ntrain: images\nval: images\nnames:\n{listed}\n")


def _place_picture(source: Path, target: Path) -> None:
    """The picture at `target`: a hard link when the file system allows, else a copy; an up-to-date one kept."""
    if target.is_file() and target.stat().st_size == source.stat().st_size \
            and target.stat().st_mtime_ns >= source.stat().st_mtime_ns:
        return
    with atomic_path(target, keep_suffix=True) as temporary:
        temporary.unlink()  # an empty placeholder: the link takes its name
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copy2(source, temporary)


def _yaml_string(name: str) -> str:
    """A class name as a YAML double-quoted scalar (names like `yes`, `1` or `a: b` stay strings)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
