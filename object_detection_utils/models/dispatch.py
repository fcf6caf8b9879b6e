"""Which model a path is: the one place that decides (kind, the file an engine loads, label map, mask pasting).

`describe_model` reads no weights and imports no TensorFlow, so a driver (the Ray job's, a server's) knows how to
read a model's outputs without loading it; `loading.load_local_model` runs what it describes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from ..label_map import LabelMap, find_label_map_file
from ..model_contract import FROZEN_GRAPH_NAME, ModelDescription
from .archive import ARCHIVE_SUFFIXES, extract_archive_cached

MATTERPORT_SUFFIXES = (".h5", ".hdf5")


def describe_model(
    path: str | Path,
    label_map: LabelMap | str | Path | None = None,
    matterport_config: Any = None,
    name: str | None = None,
) -> ModelDescription:
    """What `path` is: a TF1 zoo folder or bare frozen `.pb`, a TF2 zoo or SavedModel folder, a zoo `.tar.gz`
    (extracted once into the cache), or a matterport Mask_RCNN `.h5` (`matterport_config`: a preset name, a
    config file, a mapping or a `MatterportConfig`; None: the weights decide the architecture when loaded).

    The label map is `label_map` if given, else a `.pbtxt` inside the model folder, else the COCO map
    (matterport: else its config's class names, else a label map beside the `.h5`).
    """
    source = Path(path).expanduser()
    if not source.exists():
        raise ModelLoadError(f"{source}: no such model file or folder")
    name = name or model_name(source)
    if source.is_file() and source.name.lower().endswith(MATTERPORT_SUFFIXES):
        from .matterport.model import resolve_config
        from .matterport.preprocessing import paste_masks

        config = resolve_config(matterport_config)
        labels = matterport_label_map(label_map, source, config and config.CLASS_NAMES)
        return ModelDescription(name, source, "matterport_h5", source, labels, paste_masks)
    if source.is_file() and source.name.lower().endswith(ARCHIVE_SUFFIXES):
        source = extract_archive_cached(source)
    try:
        kind, target = locate_model(source)
    except OSError as error:
        raise ModelLoadError(f"{error.filename or source}: cannot read model ({error.strerror})") from None
    return ModelDescription(name, source, kind, target, resolve_label_map(label_map, source))


def model_name(source: Path) -> str:
    """The name a model goes by: its folder's, or its file's without the suffix."""
    if source.name in (FROZEN_GRAPH_NAME, "saved_model.pb", "saved_model"):
        return source.parent.name
    for suffix in (*ARCHIVE_SUFFIXES, ".pb", *MATTERPORT_SUFFIXES):
        if source.name.lower().endswith(suffix):
            return source.name[: -len(suffix)]
    return source.name


def locate_model(source: Path) -> tuple[str, Path]:
    """("frozen_graph", file) or ("saved_model", folder) for a model path."""
    if source.is_file():
        if source.name == "saved_model.pb":
            return "saved_model", source.parent
        return "frozen_graph", source
    candidates = [
        ("frozen_graph", source / FROZEN_GRAPH_NAME),
        ("saved_model", source / "saved_model" / "saved_model.pb"),
        ("saved_model", source / "saved_model.pb"),
    ]
    # A zoo archive unpacks to one folder; look one level down too.
    subfolders = [p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(subfolders) == 1:
        inner = subfolders[0]
        candidates += [
            ("frozen_graph", inner / FROZEN_GRAPH_NAME),
            ("saved_model", inner / "saved_model" / "saved_model.pb"),
        ]
    for kind, candidate in candidates:
        if candidate.is_file():
            return kind, candidate if kind == "frozen_graph" else candidate.parent
    raise ModelLoadError(
        f"{source}: not a model folder (expected {FROZEN_GRAPH_NAME}, saved_model/saved_model.pb or saved_model.pb)"
    )


def is_model_folder(path: Path) -> bool:
    """Whether `path` is a folder that `load_local_model` can run (a TF1 or TF2 zoo layout)."""
    try:
        locate_model(path)
    except (ModelLoadError, OSError):
        return False
    return path.is_dir()


def resolve_label_map(label_map: LabelMap | str | Path | None, source: Path) -> LabelMap:
    """`label_map` as given (or read), else the label map in the model's folder, else the COCO map."""
    if isinstance(label_map, LabelMap):
        return label_map
    if label_map is not None:
        return LabelMap.from_pbtxt(label_map)
    found = find_label_map_file(source if source.is_dir() else source.parent)
    return LabelMap.from_pbtxt(found) if found else LabelMap.coco()


def matterport_label_map(
    label_map: LabelMap | str | Path | None, source: Path, class_names: tuple[str, ...] | None
) -> LabelMap:
    """A matterport model's label map: `label_map` as given, else its config's CLASS_NAMES (id = index, "BG" at
    0 left out), else a label map beside the `.h5`, else an empty map whose names are "class <id>"."""
    if label_map is not None:
        return resolve_label_map(label_map, source)
    if class_names is not None:
        return LabelMap(dict(enumerate(class_names[1:], start=1)))
    found = find_label_map_file(source.parent)
    return LabelMap.from_pbtxt(found) if found else LabelMap({})
