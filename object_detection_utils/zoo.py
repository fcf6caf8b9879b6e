"""Finding a model by zoo name in the models folders (or taking a path as it is)."""

from __future__ import annotations

from pathlib import Path

from .archive import ARCHIVE_SUFFIXES
from .cache import MODELS_DIR_ENV, default_models_dir
from .errors import ModelLoadError

DEFAULT_MODEL = "mask_rcnn_inception_v2_coco_2018_01_28"
ZOO_URL = "http://download.tensorflow.org/models/object_detection/{name}.tar.gz"


def models_dirs(models_dir: str | Path | None = None) -> list[Path]:
    """The folders searched for models by name: `models_dir` if given, else the default models folder."""
    return [Path(models_dir).expanduser()] if models_dir else [default_models_dir()]


def find_model(spec: str | Path, models_dir: str | Path | None = None) -> Path:
    """A local path for `spec`: the path itself if it exists, else `<models dir>/<name>[.tar.gz]`."""
    path = Path(spec).expanduser()
    if path.exists():
        return path
    name = str(spec)
    if "/" in name or "\\" in name or name.lower().endswith((*ARCHIVE_SUFFIXES, ".pb")):
        raise ModelLoadError(f"{spec}: no such model file or folder")
    searched = models_dirs(models_dir)
    for folder in searched:
        for candidate in (folder / name, *(folder / f"{name}{suffix}" for suffix in ARCHIVE_SUFFIXES)):
            if candidate.exists():
                return candidate
    where = searched[0]
    raise ModelLoadError(
        f"model {name!r} not found in {', '.join(map(str, searched))}: download {ZOO_URL.format(name=name)} "
        f"and unpack it into {where}/ (or set {MODELS_DIR_ENV}, pass --models-dir, or --model PATH)"
    )
