"""COCO instances JSON, as CVAT ("COCO 1.0": annotations/instances_<subset>.json beside images/<subset>/) and Label
Studio (result.json beside images/) export it, or any other tool.

Category ids are kept when all are 1 or more, else (Label Studio counts from 0) renumbered 1.. in id order.
Polygon and RLE (compressed or not) segmentations are read; one with neither is its `bbox` as a rectangle. CVAT
writes every mask as an uncompressed RLE with `iscrowd` 1 (its `attributes` extension present): such masks are
read as ordinary instances, or training would ignore them as crowds. An annotation's `score` (pre-annotations)
is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pycocotools import mask as mask_utils

from ...coco_format import decode_mask
from ...errors import DatasetError
from ...io.json_files import read_json
from .builder import DatasetBuilder, Part, pick_images_folder, rectangle


def coco_file(path: Path) -> Path:
    """The COCO .json of `path`: itself, or the one .json of a folder or of its annotations/ folder."""
    if path.is_file():
        return path
    found = sorted(path.glob("*.json")) or sorted((path / "annotations").glob("*.json"))
    if len(found) != 1:
        raise DatasetError(f"{path}: {'no' if not found else 'several'} COCO .json files here: name the file")
    return found[0]


def read_coco(path: Path, images: Path | None, categories: list[dict[str, Any]] | None) -> DatasetBuilder:
    """Read a COCO instances file (or the folder of one, see `coco_file`)."""
    file = coco_file(path)
    document = read_json(file, DatasetError, "COCO annotations")
    if not isinstance(document, dict) or not all(isinstance(document.get(k), list)
                                                 for k in ("images", "annotations", "categories")):
        raise DatasetError(f"{file}: not COCO instances (expected lists images, annotations and categories)")

    names = _category_names(document["categories"], file)
    if categories is None:
        ids = sorted(names)
        renumber = min(ids, default=1) < 1
        categories = [{"id": i if renumber else old, "name": names[old]} for i, old in enumerate(ids, start=1)]
    if images is None:
        subset = file.stem.removeprefix("instances_")
        file_names = [str(i.get("file_name", "")) for i in document["images"] if isinstance(i, dict)]
        images = pick_images_folder([file.parent, file.parent / "images", file.parent.parent / "images" / subset,
                                     file.parent.parent / "images", file.parent.parent], file_names)
    builder = DatasetBuilder(images, categories)

    pictures: dict[Any, int] = {}
    for index, image in enumerate(document["images"]):
        where = f"{file}: images[{index}]"
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            builder.problem(where, "an image without id or file_name: skipped")
            continue
        size = (image.get("width"), image.get("height"))
        picture = builder.add_picture(image["file_name"], where,
                                      size if all(isinstance(v, int) for v in size) else None)
        if picture is not None:
            pictures[image["id"]] = picture
    known_ids = {image.get("id") for image in document["images"] if isinstance(image, dict)}
    for index, annotation in enumerate(document["annotations"]):
        where = f"{file}: annotations[{index}]"
        if not isinstance(annotation, dict):
            builder.problem(where, "not an object: skipped")
            continue
        if annotation.get("image_id") not in pictures:
            if annotation.get("image_id") not in known_ids:
                builder.problem(where, f"image_id {annotation.get('image_id')!r} is not in images: skipped")
            continue  # its picture was reported already
        category = annotation.get("category_id")
        if category not in names:
            builder.problem(where, f"unknown class (category_id {category!r} is not in categories): skipped")
            continue
        picture = pictures[annotation["image_id"]]
        parts = _parts(annotation, picture, builder, where)
        crowd = int(bool(annotation.get("iscrowd", 0)))
        if crowd and isinstance(annotation.get("segmentation"), dict) and "attributes" in annotation:
            crowd = 0  # CVAT's (datumaro's) way of writing any mask
        builder.add_instance(picture, names[category], parts, where, crowd, annotation.get("score"))
    return builder


def _category_names(categories: list[Any], file: Path) -> dict[int, str]:
    names: dict[int, str] = {}
    for index, category in enumerate(categories):
        if not isinstance(category, dict) or not isinstance(category.get("id"), int) \
                or not isinstance(category.get("name"), str):
            raise DatasetError(f"{file}: categories[{index}] needs an integer id and a name")
        if category["id"] in names or category["name"] in names.values():
            raise DatasetError(f"{file}: categories[{index}] repeats the id or name of another category")
        names[category["id"]] = category["name"]
    return names


def _parts(annotation: dict[str, Any], picture: int, builder: DatasetBuilder, where: str) -> list[Part]:
    """The parts of one annotation: its polygons, its RLE mask, or its box; those with a problem left out."""
    segmentation = annotation.get("segmentation")
    width, height = builder.size(picture)
    if isinstance(segmentation, dict):
        if list(segmentation.get("size", [])) != [height, width]:
            builder.problem(where, f"RLE size {segmentation.get('size')} is not the picture's [{height}, {width}]: "
                                   "skipped")
            return []
        try:
            if isinstance(segmentation.get("counts"), list):  # uncompressed, as CVAT writes it
                mask = mask_utils.decode(mask_utils.frPyObjects(segmentation, height, width)).astype(bool)
            else:
                mask = decode_mask(segmentation)
        except (TypeError, ValueError, KeyError) as error:
            builder.problem(where, f"unreadable RLE ({error}): skipped")
            return []
        part = builder.mask(mask, 0, 0, picture, where)
        return [part] if part is not None else []
    if isinstance(segmentation, list) and segmentation:
        parts = [builder.polygon(polygon, picture, f"{where}.segmentation[{i}]" if len(segmentation) > 1 else where)
                 for i, polygon in enumerate(segmentation)]
        return [part for part in parts if part is not None]
    bbox = annotation.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox):
        x, y, w, h = bbox
        part = builder.polygon(rectangle(x, y, x + w, y + h), picture, where, box=True)
        return [part] if part is not None else []
    builder.problem(where, "no segmentation and no bbox: skipped")
    return []
