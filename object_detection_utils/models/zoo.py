"""Zoo models by name: finding (or fetching) one locally, the default model, and the --list-models table."""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from ..label_map import LabelMap
from ..model_contract import LoadedModel
from .archive import ARCHIVE_SUFFIXES
from .backends import accelerate, check_backend
from .cache import MODELS_DIR_ENV, default_models_dir
from .catalogue import CATALOGUE, ZooModel, catalogued, close_matches
from .dispatch import MATTERPORT_SUFFIXES
from .download import fetch_model
from .loading import load_local_model

DEFAULT_MODEL = "mask_rcnn_inception_v2_coco_2018_01_28"


def resolve_models_dir(models_dir: str | Path | None = None) -> Path:
    """The folder holding models by name: `models_dir` if given, else the default models folder."""
    return Path(models_dir).expanduser() if models_dir else default_models_dir()


def models_dir_copy(name: str, folder: Path) -> Path | None:
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
    if "/" in name or "\\" in name or name.lower().endswith((*ARCHIVE_SUFFIXES, ".pb", *MATTERPORT_SUFFIXES)):
        raise ModelLoadError(f"{spec}: no such model file or folder")
    entry = catalogued(name)
    where = resolve_models_dir(models_dir)
    for candidate_name in dict.fromkeys([entry.name if entry else name, name]):
        found = models_dir_copy(candidate_name, where)
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
    return fetch_model(entry, where)


def load_model(
    spec: str | Path = DEFAULT_MODEL,
    models_dir: str | Path | None = None,
    label_map: LabelMap | str | Path | None = None,
    warm_up: bool = True,
    backend: str = "tensorflow",
    matterport_config: Any = None,
    calibration: str | Path | None = None,
) -> LoadedModel:
    """Load a model by zoo name (downloaded once into the models folder) or by path (folder, `.pb`, `.tar.gz`,
    or a matterport `.h5` with its `matterport_config`: preset name, file, mapping or None to infer it).

    `backend` picks the engine (models/backends): "tensorflow", "openvino", "openvino-bf16" or "auto"; a model
    OpenVINO cannot run, or runs differently, runs on TensorFlow after one logged line. `calibration` is a
    folder of pictures that bf16 and int8 are judged (int8 also calibrated) on, in place of generated ones.

    A zoo model whose copy in the models folder no longer loads (a truncated archive or graph, a missing
    variables shard) is moved aside, so the next connected run downloads it again instead of failing the same
    way; a model given by path is the user's and is left alone.
    """
    check_backend(backend)  # before loading: a refused back end must not pass for a damaged model below
    if calibration is not None and not Path(calibration).is_dir():
        raise ModelLoadError(f"--calibration {calibration}: not a folder of pictures")
    engine = None if backend == "tensorflow" else functools.partial(
        accelerate, backend=backend, calibration=None if calibration is None else Path(calibration))
    path = find_model(spec, models_dir)
    try:
        return load_local_model(path, label_map=label_map, warm_up=warm_up, engine=engine,
                          matterport_config=matterport_config)
    except ModelLoadError as error:
        entry = catalogued(str(spec))
        if entry is None or Path(spec).expanduser().exists():
            raise
        aside = path.with_name(f".{path.name}.damaged")
        if aside.is_dir():
            shutil.rmtree(aside)
        path.replace(aside)  # an older damaged file in the way is replaced
        raise ModelLoadError(f"{error} [the models folder's copy of {entry.name} is damaged: moved to {aside}; "
                             "run again to download it again]") from None


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
        path = models_dir_copy(model.name, folder)
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
