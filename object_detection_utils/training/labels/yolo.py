"""YOLO segmentation labels (Ultralytics): pictures under `images/`, and for each a `labels/` .txt of the same
relative path, one instance a line: `class x1 y1 x2 y2 ...`, the polygon's points normalised to 0..1.

The class names come from the dataset root's `data.yaml` (`names:` a list, or a dict of index: name; read with
PyYAML), else its `classes.txt` or `obj.names` (one a line); class index i becomes category id i + 1. A picture
without a label file, or with an empty one, has no objects (YOLO's background pictures). The path given is the
dataset root (holding images/ and labels/), its data.yaml, or one split's picture folder (`images/train`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DatasetError, first_line
from .builder import DatasetBuilder

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


def yolo_folders(path: Path) -> tuple[Path, Path, Path] | None:
    """(dataset root, picture folder, label folder) of a YOLO dataset path, or None if it is not one."""
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        path = path.parent
    if not path.is_dir():
        return None
    if (path / "images").is_dir() and (path / "labels").is_dir():
        return path, path / "images", path / "labels"
    parts = path.resolve().parts
    if "images" in parts:
        at = len(parts) - 1 - parts[::-1].index("images")
        root = Path(*parts[:at])
        labels = Path(*parts[:at], "labels", *parts[at + 1:])
        if labels.is_dir():
            return root, path, labels
    return None


def class_names(root: Path) -> list[str]:
    """The class names of the dataset at `root`, index order; a DatasetError naming what is wrong if none."""
    for name in ("data.yaml", "dataset.yaml"):
        if (root / name).is_file():
            return _yaml_names(root / name)
    for name in ("classes.txt", "obj.names"):
        if (root / name).is_file():
            names = [line.strip() for line in (root / name).read_text(encoding="utf-8").splitlines()]
            if not any(names):
                raise DatasetError(f"{root / name}: no class names")
            return names
    raise DatasetError(f"{root}: no data.yaml, classes.txt or obj.names to name the YOLO classes")


def _yaml_names(path: Path) -> list[str]:
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise DatasetError(f"{path}: not readable YAML ({first_line(error)})") from None
    names = document.get("names") if isinstance(document, dict) else None
    if isinstance(names, dict) and names and all(isinstance(k, int) for k in names):
        if sorted(names) != list(range(len(names))):
            raise DatasetError(f"{path}: names must be numbered 0..{len(names) - 1}")
        return [str(names[i]) for i in range(len(names))]
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    raise DatasetError(f"{path}: no 'names' list or dict of class names")


def read_yolo(path: Path, images: Path | None, categories: list[dict[str, Any]] | None) -> DatasetBuilder:
    """Read a YOLO segmentation dataset (see the module's description for `path`)."""
    folders = yolo_folders(path)
    if folders is None:
        raise DatasetError(f"{path}: not a YOLO dataset (no images/ and labels/ folders)")
    root, picture_folder, label_folder = folders
    names = class_names(root)
    if images is not None:
        picture_folder = images
    builder = DatasetBuilder(picture_folder, categories or [{"id": i + 1, "name": n} for i, n in enumerate(names)])

    pictures = {p.relative_to(picture_folder).with_suffix(""): p for p in sorted(picture_folder.rglob("*"))
                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}
    for stem, picture_path in pictures.items():
        label_file = label_folder / stem.with_suffix(".txt")
        picture = builder.add_picture(picture_path.relative_to(picture_folder).as_posix(), str(label_file))
        if picture is not None and label_file.is_file():
            _read_label_file(label_file, picture, names, builder)
    for label_file in sorted(label_folder.rglob("*.txt")):
        if label_file.relative_to(label_folder).with_suffix("") not in pictures:
            builder.problem(str(label_file), f"no picture of this name in {picture_folder}: skipped")
    return builder


def _read_label_file(file: Path, picture: int, names: list[str], builder: DatasetBuilder) -> None:
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        builder.problem(str(file), f"cannot be read ({error}): skipped")
        return
    width, height = builder.size(picture)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{file}: line {number}"
        fields = line.split()
        try:
            index = int(fields[0])
            values = np.array(fields[1:], np.float64)
        except ValueError:
            builder.problem(where, f"not 'class x1 y1 x2 y2 ...' numbers: {line.strip()[:60]!r}: skipped")
            continue
        if not 0 <= index < len(names):
            builder.problem(where, f"unknown class {index} (the dataset names {len(names)}: 0..{len(names) - 1}): "
                                   "skipped")
            continue
        if len(values) == 4:
            builder.problem(where, "4 coordinates: a detection box or a 2-point polygon, not an area: skipped")
            continue
        if len(values) % 2:
            builder.problem(where, f"an odd count of coordinates ({len(values)}): skipped")
            continue
        part = builder.polygon(values.reshape(-1, 2) * (width, height), picture, where)
        if part is not None:
            builder.add_instance(picture, names[index], [part], where)
