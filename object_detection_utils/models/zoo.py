"""The detection zoo's models by name: the catalogue, short aliases, and finding (or fetching) a model locally."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError
from .archive import ARCHIVE_SUFFIXES
from .cache import MODELS_DIR_ENV, default_models_dir
from .loading import locate_model

ZOO_BASE_URL = "http://download.tensorflow.org/models/object_detection"
ZOO_URL_ENV = "INSTANCE_SEGMENTATION_ZOO_URL"  # a mirror of ZOO_BASE_URL's tree (tests use a local server)
DEFAULT_MODEL = "mask_rcnn_inception_v2_coco_2018_01_28"


@dataclass(frozen=True)
class ZooModel:
    """One catalogued zoo model, with the figures the zoo publishes for it.

    `speed_ms` is the zoo's time per picture on its reference GPU (TF1: 600x600 on a Titan X; TF2: 1024x1024
    on a V100), and `box_map` / `mask_map` its COCO mAP[.5:.95]. The TF1 zoo publishes box mAP only, so
    `mask_map` is None there. `sha256` is the archive's digest when known; nobody has published them for the
    zoo, so they are None and the first download's digest is recorded instead (see download.py).
    """

    name: str
    alias: str
    archive_path: str  # under ZOO_BASE_URL
    kind: str  # "frozen_graph" (TF1) or "saved_model" (TF2)
    speed_ms: int
    box_map: float  # int where the zoo rounds to the nearest integer (TF1)
    mask_map: float | None
    has_masks: bool = True
    label_map: str = "mscoco_label_map.pbtxt"  # the built-in COCO map (LabelMap.coco())
    sha256: str | None = None

    @property
    def archive_name(self) -> str:
        return self.archive_path.rsplit("/", 1)[-1]

    @property
    def url(self) -> str:
        """The archive's URL, under $INSTANCE_SEGMENTATION_ZOO_URL when that names a mirror."""
        base = os.environ.get(ZOO_URL_ENV) or ZOO_BASE_URL
        return f"{base.rstrip('/')}/{self.archive_path}"


def _tf1(alias: str, date: str, speed_ms: int, box_map: float, has_masks: bool = True) -> ZooModel:
    name = f"{alias}_{date}"
    return ZooModel(name, alias, f"{name}.tar.gz", "frozen_graph", speed_ms, box_map, None, has_masks)


# Figures from research/object_detection/g3doc/tf1_detection_zoo.md and tf2_detection_zoo.md (tensorflow/models).
CATALOGUE: dict[str, ZooModel] = {model.name: model for model in (
    _tf1("mask_rcnn_inception_v2_coco", "2018_01_28", 79, 25),
    _tf1("mask_rcnn_resnet50_atrous_coco", "2018_01_28", 343, 29),
    _tf1("mask_rcnn_resnet101_atrous_coco", "2018_01_28", 470, 33),
    _tf1("mask_rcnn_inception_resnet_v2_atrous_coco", "2018_01_28", 771, 36),
    ZooModel("mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8", "mask_rcnn_inception_resnet_v2_1024x1024",
             "tf2/20200711/mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.tar.gz", "saved_model",
             301, 39.0, 34.6),
    # Boxes only: they run through the same code, the pictures just get no masks.
    _tf1("ssd_mobilenet_v2_coco", "2018_03_29", 31, 22, has_masks=False),
    _tf1("faster_rcnn_inception_v2_coco", "2018_01_28", 58, 28, has_masks=False),
    _tf1("faster_rcnn_resnet50_coco", "2018_01_28", 89, 30, has_masks=False),
)}
ALIASES: dict[str, str] = {model.alias: model.name for model in CATALOGUE.values()}


def catalogued(name: str) -> ZooModel | None:
    """The catalogue entry for a full zoo name or a short alias, else None."""
    return CATALOGUE.get(name) or CATALOGUE.get(ALIASES.get(name, ""))


def close_matches(name: str, count: int = 3) -> list[str]:
    """Catalogued names (full or alias) that look like `name`, best first."""
    return difflib.get_close_matches(name, [*CATALOGUE, *ALIASES], n=count, cutoff=0.6)


def resolve_models_dir(models_dir: str | Path | None = None) -> Path:
    """The folder holding models by name: `models_dir` if given, else the default models folder."""
    return Path(models_dir).expanduser() if models_dir else default_models_dir()


def is_model_folder(path: Path) -> bool:
    """Whether `path` is a folder that model.load_model can run (a TF1 or TF2 zoo layout)."""
    try:
        locate_model(path)
    except (ModelLoadError, OSError):
        return False
    return path.is_dir()


def local_copy(name: str, folder: Path) -> Path | None:
    """`<folder>/<name>/` or `<folder>/<name>.tar.gz` (or .tgz, .tar) when one is there."""
    for candidate in (folder / name, *(folder / f"{name}{suffix}" for suffix in ARCHIVE_SUFFIXES)):
        if candidate.exists():
            return candidate
    return None


def find_model(spec: str | Path, models_dir: str | Path | None = None, download: bool = True) -> Path:
    """A local path for `spec`, downloading a catalogued zoo model the first time it is asked for.

    `spec` is a path (returned as it is), or a model name looked up in the models folder as `<name>/` or
    `<name>.tar.gz`. Aliases resolve to the full zoo name. A catalogued model that is not there is downloaded
    into the models folder (unless `download` is False); a model found locally never touches the network.
    """
    path = Path(spec).expanduser()
    if path.exists():
        return path
    name = str(spec)
    if "/" in name or "\\" in name or name.lower().endswith((*ARCHIVE_SUFFIXES, ".pb")):
        raise ModelLoadError(f"{spec}: no such model file or folder")
    entry = catalogued(name)
    where = resolve_models_dir(models_dir)
    for candidate_name in dict.fromkeys([entry.name if entry else name, name]):
        found = local_copy(candidate_name, where)
        if found is not None:
            return found
    if entry is None:
        suggestions = close_matches(name)
        hint = f"did you mean {', '.join(suggestions)}? " if suggestions else ""
        raise ModelLoadError(
            f"unknown model {name!r}: {hint}(--list-models lists the zoo models; "
            f"a model of your own goes into {where}/{name}/, or pass --model PATH)"
        )
    if not download:
        raise ModelLoadError(
            f"model {entry.name!r} is not in {where}: download {entry.url} and put it (or the folder it unpacks "
            f"to) into {where}/ (or set {MODELS_DIR_ENV}, pass --models-dir, or --model PATH)"
        )
    from .download import fetch_model

    return fetch_model(entry, where)


@dataclass(frozen=True)
class CachedModel:
    """A catalogue entry and what the models folder holds of it."""

    model: ZooModel
    path: Path | None  # the unpacked folder or archive, None when not there
    size_bytes: int

    @property
    def state(self) -> str:
        if self.path is None:
            return "no"
        return "yes" if self.path.is_dir() else "archive"


def list_models(models_dir: str | Path | None = None) -> list[CachedModel]:
    """Every catalogued model with its cache state in the models folder, in catalogue order."""
    folder = resolve_models_dir(models_dir)
    rows = []
    for model in CATALOGUE.values():
        path = local_copy(model.name, folder)
        rows.append(CachedModel(model, path, _size_on_disk(path) if path else 0))
    return rows


def _size_on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def format_size(size_bytes: int) -> str:
    """1234567 -> '1.2 MB' (decimal units, as download sizes are usually quoted)."""
    size = float(size_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def format_model_table(rows: list[CachedModel], models_dir: Path) -> str:
    """The --list-models table: one line per model, then where the cache is."""
    header = ("name", "alias", "format", "outputs", "speed", "box mAP", "mask mAP", "cached", "on disk")
    lines = [header]
    for row in rows:
        model = row.model
        lines.append((
            model.name,
            model.alias,
            "TF1 graph" if model.kind == "frozen_graph" else "TF2 saved",
            "masks" if model.has_masks else "boxes only",
            f"{model.speed_ms} ms",
            str(model.box_map),
            "-" if model.mask_map is None else str(model.mask_map),
            row.state,
            format_size(row.size_bytes) if row.path else "-",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    text.append(f"models folder: {models_dir} (speed and mAP as published by the zoo; TF1 publishes box mAP only)")
    return "\n".join(text)
