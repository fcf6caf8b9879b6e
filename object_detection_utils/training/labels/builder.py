"""One COCO dataset from any labelling tool's labels: pictures, instances made of parts, and the problems met.

Each reader turns its tool's shapes into `Part`s (a polygon in pixels, or a full-size mask) and hands them to a
`DatasetBuilder`, which checks them (at least 3 points, inside the picture, at least one pixel, a known class),
merges the parts of one instance and writes COCO entries: polygon `segmentation` when every part is a polygon,
else RLE; `bbox` and `area` from the rasterised instance, as pycocotools draws it. Anything wrong becomes one line
in `problems`, naming the file and the line or JSON element, and is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from ...coco_format import encode_mask

TOLERANCE = 1.0  # pixels a point may lie outside the picture (rounding, a click on the border) before it is an error
_ROTATED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class Part:
    """A piece of an instance: a polygon (N, 2) in pixels or an (H, W) bool mask. `box`: a rectangle label,
    which gives the mask only when its instance has no polygon or mask part."""

    polygon: np.ndarray | None = None
    mask: np.ndarray | None = None
    box: bool = False


def picture_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a picture as it is shown (EXIF orientation applied), or None if it cannot be read."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(0x0112, 1) in _ROTATED_ORIENTATIONS:
                width, height = height, width
            return width, height
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def rectangle(x1: float, y1: float, x2: float, y2: float, degrees: float = 0.0,
              centre: tuple[float, float] | None = None) -> np.ndarray:
    """The 4 corners of a box, turned `degrees` clockwise (on screen) about `centre` (default: its middle)."""
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64)
    if degrees:
        cx, cy = centre if centre is not None else ((x1 + x2) / 2, (y1 + y2) / 2)
        angle = np.radians(degrees)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        corners = (corners - (cx, cy)) @ rotation.T + (cx, cy)
    return corners


class DatasetBuilder:
    """Collects pictures and instances into one COCO dataset dict, and the problems met on the way.

    `categories` ([{"id", "name"}], ids >= 1) fixes the classes: any other label is an unknown class. Without it
    the classes are the labels met, numbered 1.. in name order.
    """

    def __init__(self, images: Path, categories: list[dict[str, Any]] | None = None):
        self.images = images
        self.problems: list[str] = []
        self._categories = categories
        self._ids = None if categories is None else {str(c["name"]): int(c["id"]) for c in categories}
        self._pictures: list[dict[str, Any]] = []
        self._file_names: set[str] = set()
        self._annotations: list[dict[str, Any]] = []  # "category_id" holds the label until build()

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def add_picture(self, file_name: str, where: str, size: tuple[int, int] | None = None) -> int | None:
        """Register the picture `images/file_name`; its index, or None (a problem) if missing, unreadable, labelled
        twice, or not of the labels' `size` (width, height)."""
        path = self.images / file_name
        if file_name in self._file_names:
            self.problem(where, f"picture {path} is labelled twice: these labels are skipped")
            return None
        if not path.is_file():
            self.problem(where, f"picture {path} is missing: skipped")
            return None
        actual = picture_size(path)
        if actual is None:
            self.problem(where, f"{path} is not a readable picture: skipped")
            return None
        if size is not None and tuple(size) != actual:
            self.problem(where, f"the labels are for a {size[0]}x{size[1]} picture but {path} is "
                                f"{actual[0]}x{actual[1]}: skipped")
            return None
        self._file_names.add(file_name)
        self._pictures.append({"file_name": file_name, "width": actual[0], "height": actual[1]})
        return len(self._pictures) - 1

    def size(self, picture: int) -> tuple[int, int]:
        """(width, height) of a registered picture."""
        info = self._pictures[picture]
        return info["width"], info["height"]

    def polygon(self, points: Any, picture: int, where: str, box: bool = False) -> Part | None:
        """A polygon part from (x, y) pixel points, or None (a problem) when it has < 3 points, is not numbers,
        or leaves the picture by more than TOLERANCE."""
        try:
            array = np.asarray(points, np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            self.problem(where, "points are not (x, y) numbers: skipped")
            return None
        if len(array) < 3:
            self.problem(where, f"polygon with {len(array)} point{'s' * (len(array) != 1)} (needs 3 or more): skipped")
            return None
        if not np.isfinite(array).all():
            self.problem(where, "points are not finite numbers: skipped")
            return None
        width, height = self.size(picture)
        low, high = array.min(axis=0), array.max(axis=0)
        if (low < -TOLERANCE).any() or high[0] > width + TOLERANCE or high[1] > height + TOLERANCE:
            self.problem(where, f"points reach ({low[0]:.1f}, {low[1]:.1f})-({high[0]:.1f}, {high[1]:.1f}), "
                                f"outside the {width}x{height} picture: skipped")
            return None
        return Part(polygon=np.clip(array, 0, (width, height)), box=box)

    def mask(self, mask: np.ndarray, left: int, top: int, picture: int, where: str) -> Part | None:
        """A mask part from a (h, w) bool mask whose top-left pixel is (left, top), or None (a problem) if it
        leaves the picture."""
        width, height = self.size(picture)
        h, w = mask.shape
        if left < 0 or top < 0 or left + w > width or top + h > height:
            self.problem(where, f"mask at ({left}, {top}) of {w}x{h} leaves the {width}x{height} picture: skipped")
            return None
        full = np.zeros((height, width), bool)
        full[top:top + h, left:left + w] = mask
        return Part(mask=full)

    def add_instance(self, picture: int, label: str, parts: list[Part], where: str, iscrowd: int = 0,
                     score: Any = None) -> None:
        """One instance of class `label` made of `parts` (their union). Parts already reported are left out
        by the caller; an instance with none left, of an unknown class, or covering no pixel is reported.
        `score`: a model's confidence, kept as the annotation's `score` when it is a number (pre-annotations)."""
        if self._ids is not None and label not in self._ids:
            self.problem(where, f"unknown class {label!r} (known: {', '.join(sorted(self._ids))}): skipped")
            return
        if not parts:
            return
        if not all(part.box for part in parts):
            parts = [part for part in parts if not part.box]
        width, height = self.size(picture)
        polygons = [part.polygon.ravel().tolist() for part in parts if part.polygon is not None]
        rles = mask_utils.frPyObjects(polygons, height, width) if polygons else []
        rles += [mask_utils.encode(np.asfortranarray(part.mask.astype(np.uint8))) for part in parts
                 if part.mask is not None]
        merged = mask_utils.merge(rles)
        area = int(mask_utils.area(merged))
        if area == 0:
            self.problem(where, "covers no pixel: skipped")
            return
        if len(polygons) == len(parts):
            segmentation: Any = [[round(v, 2) for v in polygon] for polygon in polygons]
        else:
            segmentation = encode_mask(mask_utils.decode(merged).astype(bool))
        self._annotations.append({
            "picture": picture, "category_id": label, "segmentation": segmentation, "area": area,
            "bbox": [round(float(v), 2) for v in mask_utils.toBbox(merged)], "iscrowd": int(bool(iscrowd)),
            **({"score": float(score)} if isinstance(score, (int, float)) and not isinstance(score, bool) else {})})

    def build(self) -> dict[str, Any]:
        """The COCO dataset dict: images and annotations numbered from 1 in the order they were added."""
        if self._categories is not None:
            categories = [{"id": int(c["id"]), "name": str(c["name"])} for c in self._categories]
        else:
            names = sorted({a["category_id"] for a in self._annotations})
            categories = [{"id": i, "name": name} for i, name in enumerate(names, start=1)]
        ids = {c["name"]: c["id"] for c in categories}
        images = [{"id": i, **picture} for i, picture in enumerate(self._pictures, start=1)]
        annotations = []
        for i, annotation in enumerate(self._annotations, start=1):
            entry = {"id": i, "image_id": annotation["picture"] + 1, "category_id": ids[annotation["category_id"]]}
            entry.update({k: v for k, v in annotation.items() if k not in ("picture", "category_id")})
            annotations.append(entry)
        return {"images": images, "annotations": annotations, "categories": categories}


def pick_images_folder(candidates: list[Path], file_names: list[str]) -> Path:
    """Of the candidate folders, the one holding the most of `file_names` (the first 50 checked); the first
    existing one, else the first, when none holds any."""
    sample = file_names[:50]
    best, best_count = None, 0
    for folder in candidates:
        count = sum((folder / name).is_file() for name in sample) if folder.is_dir() else 0
        if count > best_count:
            best, best_count = folder, count
    if best is not None:
        return best
    return next((folder for folder in candidates if folder.is_dir()), candidates[0])
