"""CVAT for images 1.1: `folder/annotations.xml`, imported into a task with Upload annotations -> "CVAT 1.1".

`<meta>` declares the model's labels, each with a `score` number attribute; every `<image name width height>`
(name: the picture's relative path, as CVAT matches pictures) holds its instances with `source="auto"` and a
`<attribute name="score">`. An instance is a `<mask>` (CVAT's RLE: alternating runs of 0s and 1s, 0s first, over
its `width` x `height` box from `left`, `top`, row by row: box-local, unlike its API's) or one `<polygon>` per
part (points "x,y;x,y"), the parts sharing a `group_id`. CVAT drops an attribute its task's label does not
declare, so the score is kept only where the task has it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from ..io.atomic import atomic_file
from .common import ExportOptions, LabelledPicture, instance_polygons, mask_box, number

ANNOTATIONS_FILE = "annotations.xml"


def cvat_mask_rle(crop: np.ndarray) -> str:
    """CVAT's XML mask RLE of a box's (h, w) bool mask: run lengths row by row, 0s first (a leading 0 if set)."""
    flat = crop.reshape(-1)
    ends = np.append(np.flatnonzero(flat[1:] != flat[:-1]), len(flat) - 1)
    runs = np.diff(np.append(-1, ends)).tolist()
    return ", ".join(str(run) for run in ([0] if flat[0] else []) + runs)


def _meta(categories: list[dict[str, Any]]) -> str:
    labels = "".join(
        f"      <label>\n        <name>{escape(str(c['name']))}</name>\n        <type>any</type>\n"
        "        <attributes>\n          <attribute>\n            <name>score</name>\n"
        "            <mutable>False</mutable>\n            <input_type>number</input_type>\n"
        "            <default_value>0</default_value>\n            <values>0\n1\n0.00001</values>\n"
        "          </attribute>\n        </attributes>\n      </label>\n" for c in categories)
    return (f"  <meta>\n    <task>\n      <name>pre-annotations</name>\n      <mode>annotation</mode>\n"
            f"      <labels>\n{labels}      </labels>\n    </task>\n  </meta>\n")


def _image(index: int, picture: LabelledPicture, options: ExportOptions) -> str:
    detections = picture.detections
    height, width = detections.image_size
    polygons = instance_polygons(detections, options.tolerance) \
        if options.shapes == "polygons" or detections.box_masks is None else None
    lines = [f"  <image id=\"{index}\" name={quoteattr(picture.name)} width=\"{width}\" height=\"{height}\">"]
    for i, instance in enumerate(detections):
        label = quoteattr(instance.class_name)
        score = f"<attribute name=\"score\">{round(instance.score, 5)}</attribute>"
        if polygons is not None:
            group = f" group_id=\"{i + 1}\"" if len(polygons[i]) > 1 else ""
            for polygon in polygons[i]:
                points = ";".join(f"{number(x)},{number(y)}" for x, y in polygon)
                lines.append(f"    <polygon label={label} source=\"auto\" occluded=\"0\" points=\"{points}\" "
                             f"z_order=\"0\"{group}>\n      {score}\n    </polygon>")
            continue
        left, top, crop = mask_box(instance.mask)
        if crop.size:
            lines.append(f"    <mask label={label} source=\"auto\" occluded=\"0\" rle=\"{cvat_mask_rle(crop)}\" "
                         f"left=\"{left}\" top=\"{top}\" width=\"{crop.shape[1]}\" height=\"{crop.shape[0]}\" "
                         f"z_order=\"0\">\n      {score}\n    </mask>")
    lines.append("  </image>\n")
    return "\n".join(lines)


def write_cvat(folder: Path, pictures: Iterable[LabelledPicture], categories: list[dict[str, Any]],
               options: ExportOptions) -> None:
    """`folder/annotations.xml`, pictures numbered from 0 in the order given."""
    with atomic_file(folder / ANNOTATIONS_FILE, "w") as file:
        file.write('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n')
        file.write(_meta(categories))
        for index, picture in enumerate(pictures):
            file.write(_image(index, picture, options))
        file.write("</annotations>\n")
