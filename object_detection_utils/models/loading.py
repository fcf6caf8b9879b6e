"""Running a described model: TensorFlow for TF1 frozen graphs and TF2 SavedModels, our port for matterport `.h5`,
or another engine's runner where one is given (models/backends); one persistent callable either way."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelLoadError, first_line
from ..label_map import LabelMap
from ..model_contract import (
    FROZEN_INPUT,
    MASK_OUTPUT,
    REQUIRED_OUTPUTS,
    EngineRun,
    LoadedModel,
    ModelDescription,
    RawOutputs,
)
from .dispatch import describe_model
from .maskrcnn_parts import SavedStepsRunner, saved_steps
from .tensorflow_runtime import import_tensorflow

log = logging.getLogger(__name__)

REPLACE_HINT = "download or export the model again, or pass --model PATH to a good copy"
Engine = Callable[[ModelDescription], EngineRun | None]


def load_local_model(
    path: str | Path,
    label_map: LabelMap | str | Path | None = None,
    warm_up: bool = True,
    name: str | None = None,
    engine: Engine | None = None,
    matterport_config: Any = None,
) -> LoadedModel:
    """Load the model at a local path (any layout `dispatch.describe_model` knows) and warm it up.

    `engine(description)` may give another engine's runner for the model (models/backends: OpenVINO behind a
    parity gate); when it gives None, or there is none, TensorFlow runs the model.
    """
    described = describe_model(path, label_map, matterport_config, name)
    start = time.perf_counter()
    if described.kind == "matterport_h5":
        if engine is not None:
            log.warning("back end: only TensorFlow runs matterport .h5 models; %s runs on TensorFlow", described.name)
        runner = EngineRun(_matterport_runner(described.source, matterport_config), True, "tensorflow")
    else:
        runner = engine(described) if engine is not None else None
        if runner is None:
            runner = (_load_frozen_graph(described.target) if described.kind == "frozen_graph"
                      else _load_saved_model(described.target))
    model = LoadedModel(
        name=described.name,
        source=described.source,
        kind=described.kind,
        label_map=described.label_map,
        has_masks=runner.has_masks,
        _run=runner.run,
        backend=runner.backend,
        batched=runner.batched,
        masks_where_kept=runner.masks_where_kept,
        paste_masks=described.paste_masks,
        load_seconds=time.perf_counter() - start,
    )
    if warm_up:
        model.warm_up()
    log.info("loaded %s (%s, %s) in %.1fs, warm-up %.1fs", model.name, model.kind, model.backend, model.load_seconds,
             model.warmup_seconds)
    return model


def _matterport_runner(source: Path, config: Any) -> Callable[[np.ndarray], RawOutputs]:
    """A matterport `.h5` on our TensorFlow port of its network, one picture at a time as its detect() runs;
    a batch's outputs are padded to its longest."""
    from .matterport import load_matterport

    matterport = load_matterport(source, config=config)

    def run(images: np.ndarray) -> RawOutputs:
        outputs = [matterport.raw_outputs(image) for image in images]
        if len(outputs) == 1:
            return outputs[0]
        longest = max(out["detection_boxes"].shape[1] for out in outputs)
        return {key: np.concatenate([_pad_detections(out[key], longest) for out in outputs])
                for key in outputs[0]}

    return run


def _pad_detections(array: np.ndarray, length: int) -> np.ndarray:
    if array.ndim < 2:  # num_detections
        return array
    padding = [(0, 0), (0, length - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, padding)


def _load_frozen_graph(path: Path) -> EngineRun:
    """The pruned graph's runner on TensorFlow (it takes several pictures a call)."""
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

    return EngineRun(run, MASK_OUTPUT in outputs, "tensorflow", batched=True)


def _load_saved_model(folder: Path) -> EngineRun:
    """The SavedModel's runner on TensorFlow: the steps an export of ours carries (masks only where kept), else
    its signature."""
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
    steps = saved_steps(loaded)
    if steps is not None:
        runner = SavedStepsRunner(steps, loaded)
        return EngineRun(runner, True, "tensorflow", masks_where_kept=True, batched=runner.batched)

    def run(images: np.ndarray) -> RawOutputs:
        if fixed_batch and len(images) != 1:  # TF2 zoo signatures take one picture at a time
            parts = [run(images[i : i + 1]) for i in range(len(images))]
            return {name: np.concatenate([p[name] for p in parts]) for name in wanted}
        result = signature(**{input_name: tf.constant(images, dtype=input_spec.dtype)})
        return {name: result[name].numpy() for name in wanted}

    # keep `loaded` alive for as long as the signature is used
    run.saved_model = loaded  # type: ignore[attr-defined]
    return EngineRun(run, MASK_OUTPUT in wanted, "tensorflow", batched=not fixed_batch)
