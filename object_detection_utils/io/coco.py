"""COCO dataset files, the one place they are written (the formats themselves are in `coco_format`).

A dataset file (`write_coco_dataset`) is the `{"info", "images", "annotations", "categories"}` document that
`pycocotools.coco.COCO(path)` loads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .atomic import atomic_file


def write_coco_dataset(
    path: str | Path,
    images: Callable[[], Iterable[dict[str, Any]]],
    annotations: Callable[[], Iterable[dict[str, Any]]],
    categories: list[dict[str, Any]],
    description: str,
) -> None:
    """Write a COCO dataset file that `pycocotools.coco.COCO(path)` loads, atomically.

    `images` and `annotations` are called once each and may be generators: entries are written as they come,
    so no more than one is held at a time. An annotation without `id` gets its position in the stream (from 1),
    one without `iscrowd` gets 0.
    """
    with atomic_file(path, "w") as file:
        file.write('{"info": ' + json.dumps({"description": description}) + ',\n"images": [')
        for i, image in enumerate(images()):
            file.write(("," if i else "") + "\n" + json.dumps(image))
        file.write('\n],\n"annotations": [')
        for i, annotation in enumerate(annotations()):
            annotation = {"id": i + 1, **annotation}
            annotation.setdefault("iscrowd", 0)
            file.write(("," if i else "") + "\n" + json.dumps(annotation))
        file.write('\n],\n"categories": ' + json.dumps(categories) + "}\n")
