"""Loading detection-zoo models (TF1 frozen graphs, TF2 SavedModels, zoo archives) as one persistent callable."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelLoadError, first_line
from ..label_map import LabelMap, find_label_map_file
from ..masks import reframe_box_masks
from .archive import ARCHIVE_SUFFIXES, extract_archive_cached
from .tensorflow_runtime import import_tensorflow

log = logging.getLogger(__name__)

REQUIRED_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
MASK_OUTPUT = "detection_masks"
FROZEN_GRAPH_NAME = "frozen_inference_graph.pb"
FROZEN_INPUT = "image_tensor"

MATTERPORT_SUFFIXES = (".h5", ".hdf5")

RawOutputs = dict[str, np.ndarray]
MaskPaster = Callable[[np.ndarray, np.ndarray, int, int, float], np.ndarray]
REPLACE_HINT = "download or export the model again, or pass --model PATH to a good copy"


@dataclass
class SegmentationModel:
    """A loaded model: RGB uint8 pictures in, the zoo's raw output arrays out.

    The graph is imported once; every call goes through the same TensorFlow function, so a picture costs
    one graph execution and nothing else. Outputs keep the batch axis: `detection_boxes` is (B, N, 4).
    `paste_masks(box_masks, boxes, height, width, threshold)` turns `detection_masks` into full-picture masks
    the way the model's own code does (the zoo's reframing; matterport's unmolding for its `.h5` models).
    """

    name: str
    source: Path
    kind: str  # "frozen_graph", "saved_model" or "matterport_h5"
    label_map: LabelMap
    has_masks: bool
    _run: Callable[[np.ndarray], RawOutputs] = field(repr=False)
    backend: str = "tensorflow"  # the engine that runs it: "tensorflow", "openvino f32" or "openvino bf16"
    paste_masks: MaskPaster = field(default=reframe_box_masks, repr=False)
    load_seconds: float = 0.0
    warmup_seconds: float = 0.0

    def predict_batch(self, images: np.ndarray) -> RawOutputs:
        """Run a (B, H, W, 3) uint8 batch of same-size RGB pictures; returns numpy outputs with a batch axis."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected a (B, H, W, 3) uint8 RGB batch, got {images.shape} {images.dtype}")
        return self._run(images)

    def predict(self, image: np.ndarray) -> RawOutputs:
        """Run one (H, W, 3) uint8 RGB picture; outputs keep a batch axis of 1."""
        return self.predict_batch(np.asarray(image)[None])

    def warm_up(self, size: tuple[int, int] = (320, 320)) -> float:
        """One call on a blank picture, so the first real picture does not pay for TensorFlow's start-up."""
        start = time.perf_counter()
        self.predict(np.full((*size, 3), 128, np.uint8))
        self.warmup_seconds = time.perf_counter() - start
        return self.warmup_seconds


@dataclass(frozen=True)
class EngineRun:
    """Another engine's runner for a located model (models/backends), in place of TensorFlow's."""

    run: Callable[[np.ndarray], RawOutputs]
    has_masks: bool
    backend: str  # e.g. "openvino f32"


def load_model(
    path: str | Path,
    label_map: LabelMap | str | Path | None = None,
    warm_up: bool = True,
    name: str | None = None,
    engine: Callable[[str, Path, str, Path], EngineRun | None] | None = None,
    matterport_config: Any = None,
) -> SegmentationModel:
    """Load a model from a local path.

    `path` may be a TF1 zoo folder (with `frozen_inference_graph.pb`), a bare frozen `.pb`, a TF2 zoo folder
    (with `saved_model/`), a SavedModel folder, a zoo `.tar.gz` archive (extracted once into the cache), or a
    matterport Mask_RCNN `.h5` weights file (`matterport_config`: a preset name, a config file, a mapping or a
    `MatterportConfig`; None infers it from the weights, see docs/MATTERPORT.md).
    The label map is `label_map` if given, else a `.pbtxt` inside the model folder, else the COCO map
    (matterport: else the config's class names).
    `engine(name, source, kind, target)` may give another engine's runner for the located model (models/backends:
    OpenVINO behind a parity gate); when it gives None, or there is none, TensorFlow runs the model.
    """
    source = Path(path).expanduser()
    if not source.exists():
        raise ModelLoadError(f"{source}: no such model file or folder")
    name = name or model_name(source)
    if source.is_file() and source.name.lower().endswith(MATTERPORT_SUFFIXES):
        model = _load_matterport(source, name, label_map, matterport_config, engine is not None)
        if warm_up:
            model.warm_up()
        return model
    if source.is_file() and source.name.lower().endswith(ARCHIVE_SUFFIXES):
        source = extract_archive_cached(source)

    start = time.perf_counter()
    try:
        kind, target = locate_model(source)
    except OSError as error:
        raise ModelLoadError(f"{error.filename or source}: cannot read model ({error.strerror})") from None
    other = engine(name, source, kind, target) if engine is not None else None
    if other is not None:
        run, has_masks, backend = other.run, other.has_masks, other.backend
    elif kind == "frozen_graph":
        (run, has_masks), backend = _load_frozen_graph(target), "tensorflow"
    else:
        (run, has_masks), backend = _load_saved_model(target), "tensorflow"
    model = SegmentationModel(
        name=name,
        source=source,
        kind=kind,
        label_map=resolve_label_map(label_map, source),
        has_masks=has_masks,
        _run=run,
        backend=backend,
        load_seconds=time.perf_counter() - start,
    )
    if warm_up:
        model.warm_up()
    log.info("loaded %s (%s, %s) in %.1fs, warm-up %.1fs", model.name, kind, backend, model.load_seconds,
             model.warmup_seconds)
    return model


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
    """Whether `path` is a folder that `load_model` can run (a TF1 or TF2 zoo layout)."""
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


def _load_matterport(
    source: Path, name: str, label_map: LabelMap | str | Path | None, config: Any, other_engine: bool
) -> SegmentationModel:
    """A matterport `.h5` as a `SegmentationModel`: our TensorFlow port of its network, its mask unmolding."""
    from .matterport import load_matterport
    from .matterport.preprocessing import paste_masks

    if other_engine:
        log.warning("back end: only TensorFlow runs matterport .h5 models; %s runs on TensorFlow", name)
    start = time.perf_counter()
    matterport = load_matterport(source, config=config)

    def run(images: np.ndarray) -> RawOutputs:
        # One picture at a time, as matterport's detect() runs; a batch is padded to its longest.
        outputs = [matterport.raw_outputs(image) for image in images]
        if len(outputs) == 1:
            return outputs[0]
        longest = max(out["detection_boxes"].shape[1] for out in outputs)
        return {key: np.concatenate([_pad_detections(out[key], longest) for out in outputs])
                for key in outputs[0]}

    return SegmentationModel(
        name=name, source=source, kind="matterport_h5",
        label_map=matterport_label_map(label_map, source, matterport.config.CLASS_NAMES), has_masks=True,
        _run=run, paste_masks=paste_masks, load_seconds=time.perf_counter() - start,
    )


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


def _pad_detections(array: np.ndarray, length: int) -> np.ndarray:
    if array.ndim < 2:  # num_detections
        return array
    padding = [(0, 0), (0, length - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, padding)


def _load_frozen_graph(path: Path) -> tuple[Callable[[np.ndarray], RawOutputs], bool]:
    tf = import_tensorflow()
    from google.protobuf.message import DecodeError

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except OSError as error:
        raise ModelLoadError(f"{path}: cannot read model ({error.strerror})") from None
    except (DecodeError, RuntimeWarning, ValueError):
        raise ModelLoadError(f"{path}: not a TensorFlow frozen graph, or a truncated one (cannot parse GraphDef); "
                             f"{REPLACE_HINT}") from None
    node_names = {node.name for node in graph_def.node}
    if FROZEN_INPUT not in node_names:
        raise ModelLoadError(f"{path}: not a detection-zoo graph (no '{FROZEN_INPUT}' input)")
    missing = [name for name in REQUIRED_OUTPUTS if name not in node_names]
    if missing:
        raise ModelLoadError(f"{path}: not a detection model (missing outputs: {', '.join(missing)})")
    outputs = [*REQUIRED_OUTPUTS, *([MASK_OUTPUT] if MASK_OUTPUT in node_names else [])]

    def import_graph() -> None:
        tf.compat.v1.import_graph_def(graph_def, name="")

    try:
        wrapped = tf.compat.v1.wrap_function(import_graph, [])
        graph = wrapped.graph
        pruned = wrapped.prune(
            feeds=graph.as_graph_element(f"{FROZEN_INPUT}:0"),
            fetches={name: graph.as_graph_element(f"{name}:0") for name in outputs},
        )
    except (ValueError, TypeError, tf.errors.OpError) as error:
        raise ModelLoadError(f"{path}: cannot import graph: {first_line(error)}") from None

    def run(images: np.ndarray) -> RawOutputs:
        result = pruned(tf.constant(images))
        return {name: value.numpy() for name, value in result.items()}

    return run, MASK_OUTPUT in outputs


def _load_saved_model(folder: Path) -> tuple[Callable[[np.ndarray], RawOutputs], bool]:
    tf = import_tensorflow()
    try:
        loaded = tf.saved_model.load(str(folder))
    except Exception as error:  # TF raises many unrelated types for a broken SavedModel
        raise ModelLoadError(f"{folder}: cannot load SavedModel ({first_line(error)}); {REPLACE_HINT}") from None
    signature = getattr(loaded, "signatures", {}).get("serving_default")
    if signature is None:
        raise ModelLoadError(f"{folder}: SavedModel has no 'serving_default' signature")
    _, input_specs = signature.structured_input_signature
    if len(input_specs) != 1:
        raise ModelLoadError(f"{folder}: expected one picture input, signature has {sorted(input_specs)}")
    (input_name, input_spec), = input_specs.items()
    output_names = set(signature.structured_outputs)
    missing = [name for name in REQUIRED_OUTPUTS if name not in output_names]
    if missing:
        raise ModelLoadError(f"{folder}: not a detection model (missing outputs: {', '.join(missing)})")
    wanted = [*REQUIRED_OUTPUTS, *([MASK_OUTPUT] if MASK_OUTPUT in output_names else [])]
    fixed_batch = input_spec.shape.rank is not None and input_spec.shape[0] == 1

    def run(images: np.ndarray) -> RawOutputs:
        if fixed_batch and len(images) != 1:  # TF2 zoo signatures take one picture at a time
            parts = [run(images[i : i + 1]) for i in range(len(images))]
            return {name: np.concatenate([p[name] for p in parts]) for name in wanted}
        result = signature(**{input_name: tf.constant(images, dtype=input_spec.dtype)})
        return {name: result[name].numpy() for name in wanted}

    # keep `loaded` alive for as long as the signature is used
    run.saved_model = loaded  # type: ignore[attr-defined]
    return run, MASK_OUTPUT in wanted
