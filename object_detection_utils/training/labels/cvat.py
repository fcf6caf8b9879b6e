"""CVAT for images 1.1: one annotations.xml with `<image id name width height>` elements holding the shapes.

`polygon` (points "x,y;x,y"), `box` (xtl ytl xbr ybr, optional rotation about its centre), `mask` (CVAT's RLE:
alternating runs of 0s and 1s, 0s first, over its `width` x `height` box read row by row from `left`, `top`) and
`ellipse` (drawn as CVAT draws it when exporting masks) are areas. Shapes of one label sharing a `group_id` form
one instance, boxes in a group giving way to its polygons and masks (as CVAT's COCO export does). Polylines,
points, cuboids, skeletons and tags are not areas: they are counted in one problem. The classes are the
`<meta>` labels, in their order. A shape's `<attribute name="score">` (our pre-annotations) is kept.
"""

from __future__ import annotations

import os
import xml.parsers.expat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...errors import DatasetError
from .builder import DatasetBuilder, Part, pick_images_folder, rectangle

_AREAS = ("polygon", "box", "mask", "ellipse")
_NOT_AREAS = ("polyline", "points", "cuboid", "skeleton", "tag")


@dataclass
class _Element:
    tag: str
    attributes: dict[str, str]
    line: int
    children: list[_Element] = field(default_factory=list)
    text: str = ""


def _parse(path: Path) -> _Element:
    """The XML tree with the line of every element (expat, which ElementTree does not expose)."""
    parser = xml.parsers.expat.ParserCreate()
    root = _Element("", {}, 0)
    stack = [root]

    def start(tag: str, attributes: dict[str, str]) -> None:
        element = _Element(tag, attributes, parser.CurrentLineNumber)
        stack[-1].children.append(element)
        stack.append(element)

    def end(_tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        stack[-1].text += data

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
    try:
        with open(path, "rb") as file:
            parser.ParseFile(file)
    except xml.parsers.expat.ExpatError as error:
        raise DatasetError(f"{path}: line {error.lineno}: not valid XML ({xml.parsers.expat.ErrorString(error.code)})"
                           ) from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot be read ({error.strerror or error})") from None
    if len(root.children) != 1 or root.children[0].tag != "annotations":
        raise DatasetError(f"{path}: not a CVAT for images XML file (no <annotations> root)")
    return root.children[0]


def _meta_labels(annotations: _Element) -> list[str]:
    """Label names of <meta>/<task|project|job>/<labels>, skeleton points (labels with a <parent>) left out."""
    names: list[str] = []
    for meta in (e for e in annotations.children if e.tag == "meta"):
        for owner in meta.children:
            for labels in (e for e in owner.children if e.tag == "labels"):
                for label in (e for e in labels.children if e.tag == "label"):
                    fields = {e.tag: e.text.strip() for e in label.children}
                    if fields.get("name") and not fields.get("parent") and fields["name"] not in names:
                        names.append(fields["name"])
    return names


def read_cvat(path: Path, images: Path | None, categories: list[dict[str, Any]] | None) -> DatasetBuilder:
    """Read a CVAT for images export: its annotations.xml, or the folder holding it (and images/)."""
    file = path / "annotations.xml" if path.is_dir() else path
    annotations = _parse(file)
    pictures = [e for e in annotations.children if e.tag == "image"]
    if categories is None:
        names = _meta_labels(annotations)
        categories = [{"id": i, "name": name} for i, name in enumerate(names, start=1)] or None
    if images is None:
        names = [p.attributes.get("name", "") for p in pictures]
        images = pick_images_folder([file.parent / "images", file.parent], names)
    builder = DatasetBuilder(images, categories)

    not_areas: Counter[str] = Counter()
    for element in annotations.children:
        if element.tag == "track":
            not_areas["track"] += 1
    for element in pictures:
        _read_picture(element, file, builder, not_areas)
    if not_areas:
        counts = ", ".join(f"{count} {tag}" for tag, count in sorted(not_areas.items()))
        builder.problem(str(file), f"not areas, not read: {counts}"
                        + (" (tracks: export as 'CVAT for images 1.1')" if "track" in not_areas else ""))
    return builder


def _read_picture(element: _Element, file: Path, builder: DatasetBuilder, not_areas: Counter[str]) -> None:
    where = f"{file}: line {element.line}"
    name = element.attributes.get("name", "")
    subset = element.attributes.get("subset")
    if subset and not (builder.images / name).is_file() and (builder.images / subset / name).is_file():
        name = f"{subset}/{name}"
    try:
        size = (int(element.attributes["width"]), int(element.attributes["height"]))
    except (KeyError, ValueError):
        size = None
    picture = builder.add_picture(Path(os.path.normpath(name)).as_posix(), where, size)
    if picture is None:
        return
    instances: dict[Any, tuple[str, str, list[Part]]] = {}
    scores: dict[Any, float | None] = {}
    for index, shape in enumerate(element.children):
        if shape.tag in _NOT_AREAS:
            not_areas[shape.tag] += 1
            continue
        if shape.tag not in _AREAS:
            continue
        where = f"{file}: line {shape.line}"
        label = shape.attributes.get("label", "")
        group = shape.attributes.get("group_id", "0")
        key = index if group in ("", "0") else (label, group)
        _, _, parts = instances.setdefault(key, (where, label, []))
        scores.setdefault(key, _score(shape))
        try:
            part = _part(shape, picture, builder, where)
        except (KeyError, ValueError) as error:
            builder.problem(where, f"<{shape.tag}> with a missing or malformed attribute ({error}): skipped")
            part = None
        if part is not None:
            parts.append(part)
    for key, (where, label, parts) in instances.items():
        builder.add_instance(picture, label, parts, where, score=scores[key])


def _score(shape: _Element) -> float | None:
    """The number in a shape's `<attribute name="score">`, if it has one."""
    for child in shape.children:
        if child.tag == "attribute" and child.attributes.get("name") == "score":
            try:
                return float(child.text)
            except ValueError:
                return None
    return None


def _part(shape: _Element, picture: int, builder: DatasetBuilder, where: str) -> Part | None:
    a = shape.attributes
    if shape.tag == "polygon":
        points = [pair.split(",") for pair in a["points"].split(";")]
        return builder.polygon(np.array(points, np.float64), picture, where)
    if shape.tag == "box":
        corners = rectangle(float(a["xtl"]), float(a["ytl"]), float(a["xbr"]), float(a["ybr"]),
                            float(a.get("rotation", 0)))
        return builder.polygon(corners, picture, where, box=True)
    if shape.tag == "ellipse":
        width, height = builder.size(picture)
        canvas = np.zeros((height, width), np.uint8)
        centre = (round(float(a["cx"])), round(float(a["cy"])))
        cv2.ellipse(canvas, centre, (round(float(a["rx"])), round(float(a["ry"]))), float(a.get("rotation", 0)),
                    0, 360, 1, thickness=-1)
        return builder.mask(canvas.astype(bool), 0, 0, picture, where)
    width, height = int(a["width"]), int(a["height"])
    runs = [int(v) for v in a["rle"].split(",")]
    if sum(runs) != width * height or min(runs, default=0) < 0:
        builder.problem(where, f"mask RLE covers {sum(runs)} pixels, not its {width}x{height}: skipped")
        return None
    flat = np.repeat(np.arange(len(runs)) % 2 == 1, runs)
    return builder.mask(flat.reshape(height, width), int(a["left"]), int(a["top"]), picture, where)
