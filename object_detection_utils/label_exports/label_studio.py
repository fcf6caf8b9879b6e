"""Label Studio: one JSON list of tasks, each `{"data": {"image": URL}, "predictions": [...]}`, imported as
pre-annotations (Import in the project, or the ML backend's `/predict` answer, which is one such prediction).

A prediction is `{"model_version", "score", "result"}`; each instance is one result: `polygonlabels` (points in
percent of the picture) or `brushlabels` (`format: "rle"`, Label Studio's own bit-packed RLE of the RGBA
picture, as label-studio-converter's `brush.mask2rle` writes it), with `original_width`, `original_height`,
`image_rotation` 0 and its `score`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..detections import Detections
from ..io.atomic import atomic_file
from .common import ExportOptions, LabelledPicture, instance_polygons, number
from .polygons import join_polygons

TASKS_FILE = "tasks.json"
_RUN_SIZES = ((3, "00"), (4, "01"), (8, "10"), (16, "11"))  # label-studio-converter's rle_sizes, and their index


def brush_rle(mask: np.ndarray) -> list[int]:
    """Label Studio's brush RLE of an (H, W) bool mask: every pixel as 4 RGBA bytes (255 where set), bit-packed.

    The stream: 32 bits of value count, 5 bits word size - 1 (8 bits), four 4-bit run-length sizes - 1 (3, 4, 8,
    16); then per run of equal bytes `1`, the size's index, length - 1, the byte (a lone byte: `0 00 000` and the
    byte); zero bits up to the next byte, a whole zero byte when none are needed. Byte for byte what
    label-studio-converter's `brush.encode_rle` writes (its `decode_rle` reads it).
    """
    flat = np.repeat(mask.reshape(-1).astype(np.uint8) * 255, 4)
    total = len(flat)
    ends = np.append(np.flatnonzero(flat[1:] != flat[:-1]), total - 1)
    lengths = np.diff(np.append(-1, ends))
    chunks = [f"{total:032b}", f"{7:05b}", "".join(f"{size - 1:04b}" for size, _ in _RUN_SIZES)]
    for length, value in zip(lengths.tolist(), flat[ends].tolist()):
        byte = f"{value:08b}"
        if length == 1:
            chunks.append("000000" + byte)
            continue
        while length > 2 ** 16:
            chunks.append("111" + "1" * 16 + byte)
            length -= 2 ** 16
        size, index = next((s, i) for s, i in _RUN_SIZES if length <= 2 ** s)
        chunks.append(f"1{index}{length - 1:0{size}b}{byte}")
    bits = "".join(chunks)
    bits += "0" * (8 - len(bits) % 8)
    return np.packbits(np.frombuffer(bits.encode(), np.uint8) - ord("0")).tolist()


def prediction(detections: Detections, options: ExportOptions) -> dict[str, Any]:
    """One Label Studio prediction of a picture's detections: what a task's `predictions` and `/predict` hold."""
    height, width = detections.image_size
    polygons = instance_polygons(detections, options.tolerance) if options.shapes == "polygons" \
        or detections.box_masks is None else None
    results = []
    for i, instance in enumerate(detections):
        if polygons is not None:
            if not polygons[i]:
                continue
            points = join_polygons(polygons[i]) * (100 / width, 100 / height)
            kind, value = "polygonlabels", {"points": [[number(x), number(y)] for x, y in points], "closed": True}
        else:
            if not instance.mask.any():
                continue
            kind, value = "brushlabels", {"format": "rle", "rle": brush_rle(instance.mask)}
        value[kind] = [instance.class_name]
        results.append({"id": f"r{i}", "from_name": options.from_name, "to_name": options.to_name, "type": kind,
                        "original_width": width, "original_height": height, "image_rotation": 0,
                        "value": value, "score": round(instance.score, 5)})
    score = round(float(np.mean([r["score"] for r in results])), 5) if results else 0.0  # of what it holds
    return {"model_version": options.model_version, "score": score, "result": results}


def write_label_studio(folder: Path, pictures: Iterable[LabelledPicture], categories: list[dict[str, Any]],
                       options: ExportOptions) -> None:
    """`folder/tasks.json`: one task per picture, with its prediction (none found: an empty result)."""
    with atomic_file(folder / TASKS_FILE, "w") as file:
        file.write("[")
        for i, picture in enumerate(pictures):
            task = {"data": {"image": options.image_url.format(name=picture.name)},
                    "predictions": [prediction(picture.detections, options)]}
            file.write(("," if i else "") + "\n" + json.dumps(task))
        file.write("\n]\n")
