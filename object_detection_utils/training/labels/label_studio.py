"""Label Studio's JSON export: a list of tasks, each with `data` (the picture's URL or path) and `annotations`,
whose `result` regions carry `original_width`, `original_height` and a `value`:

- `polygonlabels`: `points` as [x, y] in percent of the picture;
- `rectanglelabels`: `x`, `y`, `width`, `height` in percent, turned `rotation` degrees about the top-left corner;
- `brushlabels`: `rle`, Label Studio's bit-packed RLE of the RGBA picture (`decode_brush_rle`).

Each region is one instance. Of a task's annotations, a ground-truth one is used, else the first not cancelled;
a task with none uses its first prediction (pre-annotations, a region's `score` kept).
The picture is looked up by the URL's file name in the images folder, also without the 8-hex-digit prefix Label
Studio gives uploaded files (`/data/upload/1/0a1b2c3d-cat.jpg` -> `cat.jpg`). Label Studio's COCO export is
read as COCO.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np

from ...errors import DatasetError
from ...io.json_files import read_json
from .builder import DatasetBuilder, Part, pick_images_folder, rectangle

UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")
_AREA_TYPES = ("polygonlabels", "rectanglelabels", "brushlabels")


def decode_brush_rle(rle: list[int], width: int, height: int) -> np.ndarray:
    """The (height, width) bool mask of a `brushlabels` RLE: the alpha channel of the RGBA picture it encodes.

    The bytes form a bit stream: 32 bits of value count, 5 bits word size - 1, four 4-bit run-length sizes - 1;
    then blocks of 1 bit (run or not), 2 bits (which run-length size), that many bits of length - 1, and one
    word (a run) or length words (literal values). As label-studio-converter's `brush.decode_rle`.
    """
    try:
        bits = "".join(f"{byte:08b}" for byte in rle)
    except (TypeError, ValueError):
        raise ValueError("the RLE is not a list of bytes") from None
    position = 0

    def read(count: int) -> int:
        nonlocal position
        if position + count > len(bits):
            raise ValueError("the RLE ends early")
        position += count
        return int(bits[position - count:position], 2)

    total = read(32)
    if total != width * height * 4:
        raise ValueError(f"the RLE holds {total} values, not 4 x {width}x{height}")
    word_size = read(5) + 1
    run_sizes = [read(4) + 1 for _ in range(4)]
    out = np.zeros(total, np.uint8)
    i = 0
    while i < total:
        is_run = read(1)
        j = min(i + 1 + read(run_sizes[read(2)]), total)
        if is_run:
            out[i:j] = read(word_size)
            i = j
        else:
            while i < j:
                out[i] = read(word_size)
                i += 1
    return out.reshape(height, width, 4)[:, :, 3] > 0


def picture_name(task: dict[str, Any]) -> str | None:
    data = task.get("data")
    if not isinstance(data, dict):
        return None
    value = data.get("image")
    if not isinstance(value, str):
        value = next((v for v in data.values() if isinstance(v, str)), None)
    if value is None:
        return None
    url = urlparse(value)
    local = parse_qs(url.query).get("d")  # /data/local-files/?d=folder/picture.jpg
    return PurePosixPath(unquote(local[0] if local else url.path)).name or None


def _chosen_annotation(task: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(where in the task, the annotation): a ground-truth one, else the first not cancelled, else (a task not
    yet labelled: pre-annotations) the first prediction."""
    annotations = [(f"annotations[{i}]", a) for i, a in enumerate(task.get("annotations") or [])
                   if isinstance(a, dict) and not a.get("was_cancelled")]
    ground_truth = [(i, a) for i, a in annotations if a.get("ground_truth")]
    predictions = [(f"predictions[{i}]", p) for i, p in enumerate(task.get("predictions") or [])
                   if isinstance(p, dict)]
    return (ground_truth or annotations or predictions or [None])[0]


def read_label_studio(path: Path, images: Path | None, categories: list[dict[str, Any]] | None) -> DatasetBuilder:
    """Read a Label Studio JSON export (a .json list of tasks)."""
    tasks = read_json(path, DatasetError, "Label Studio export")
    if not isinstance(tasks, list):
        raise DatasetError(f"{path}: not a Label Studio JSON export (expected a list of tasks)")
    names = [picture_name(t) or "" for t in tasks if isinstance(t, dict)]
    if images is None:
        images = pick_images_folder([path.parent / "images", path.parent],
                                    names + [UPLOAD_PREFIX.sub("", n) for n in names])
    builder = DatasetBuilder(images, categories)
    for index, task in enumerate(tasks):
        _read_task(index, task, path, builder)
    return builder


def _read_task(index: int, task: Any, path: Path, builder: DatasetBuilder) -> None:
    where = f"{path}: [{index}]"
    name = picture_name(task) if isinstance(task, dict) else None
    if name is None:
        builder.problem(where, "a task without a picture in 'data': skipped")
        return
    chosen = _chosen_annotation(task)
    if chosen is None:
        builder.problem(where, f"{name} has no annotation (or only cancelled ones) and no prediction: skipped")
        return
    if not (builder.images / name).is_file() and (builder.images / UPLOAD_PREFIX.sub("", name)).is_file():
        name = UPLOAD_PREFIX.sub("", name)
    place, annotation = chosen
    results = [r for r in annotation.get("result") or [] if isinstance(r, dict)]
    sized = [r for r in results if isinstance(r.get("original_width"), int)
             and isinstance(r.get("original_height"), int)]
    size = (sized[0]["original_width"], sized[0]["original_height"]) if sized else None
    picture = builder.add_picture(name, where, size)
    if picture is None:
        return
    for r, result in enumerate(annotation.get("result") or []):
        _read_result(result, picture, builder, f"{path}: [{index}].{place}.result[{r}]")


def _read_result(result: Any, picture: int, builder: DatasetBuilder, where: str) -> None:
    kind = result.get("type") if isinstance(result, dict) else None
    value = result.get("value") if isinstance(result, dict) else None
    if not isinstance(kind, str) or not kind.endswith("labels") or not isinstance(value, dict):
        return  # choices, text areas, relations: not regions
    if kind not in _AREA_TYPES:
        builder.problem(where, f"a {kind!r} region is not an area: skipped")
        return
    labels = value.get(kind)
    if not isinstance(labels, list) or not labels or not isinstance(labels[0], str):
        builder.problem(where, "a region without a label: skipped")
        return
    width, height = builder.size(picture)
    if (result.get("original_width"), result.get("original_height")) != (width, height):
        builder.problem(where, f"original size {result.get('original_width')}x{result.get('original_height')} "
                               f"differs from the picture's {width}x{height}: skipped")
        return
    part: Part | None
    try:
        if kind == "polygonlabels":
            points = np.asarray(value["points"], np.float64).reshape(-1, 2) * (width / 100, height / 100)
            part = builder.polygon(points, picture, where)
        elif kind == "rectanglelabels":
            x, y = value["x"] * width / 100, value["y"] * height / 100
            corners = rectangle(x, y, x + value["width"] * width / 100, y + value["height"] * height / 100,
                                float(value.get("rotation", 0)), centre=(x, y))
            part = builder.polygon(corners, picture, where, box=True)
        else:
            part = builder.mask(decode_brush_rle(value["rle"], width, height), 0, 0, picture, where)
    except (KeyError, TypeError, ValueError) as error:
        builder.problem(where, f"a malformed {kind} region ({type(error).__name__}: {error}): skipped")
        return
    if part is not None:
        builder.add_instance(picture, labels[0], [part], where, score=result.get("score"))
