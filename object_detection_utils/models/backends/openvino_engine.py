"""OpenVINO as a second engine: imported with telemetry off, converting models, and running converted ones.

Two kinds of conversion, both written as OpenVINO IR (`<part>.xml` + `.bin`, never compressed to f16):
- `export`: our Model Garden exports. The three heavy static parts (`dense` = backbone + FPN + RPN head,
  `box_head`, `mask_head`; see maskrcnn_parts.py) become IR; proposal and detection selection (top-k, NMS, ROI
  align) stays in TensorFlow, saved beside them as a small `glue/` SavedModel that needs no Model Garden to run:
  with the export's own NMS for f32, with batched NMS for bf16 and int8 (`glue_choice`).
- `whole`: any other model (zoo TF1 frozen graphs, zoo TF2 SavedModels) converted whole. Zoo graphs hold while
  loops and NMS ops that OpenVINO refuses or runs unreliably; those fail conversion or the gate, and fall back.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...model_contract import FROZEN_INPUT, MASK_OUTPUT, REQUIRED_OUTPUTS, KeptInstances, RawOutputs
from ..tensorflow_runtime import import_tensorflow

HEAVY_PARTS = ("dense", "box_head", "mask_head")
GLUE_STEPS = ("preprocess", "propose", "detect")
META_FILE = "parts.json"
BATCHED_GLUE = "batched NMS, batches of pictures"
_CONVERTER_MODULES = ("openvino.tools.ovc.convert_impl", "openvino.tools.ovc.telemetry_utils",
                      "openvino.tools.ovc.utils", "openvino.tools.ovc.main")


def import_openvino():
    """`openvino`, with its usage telemetry off before anything can send.

    OpenVINO's converter reports usage through `openvino_telemetry` unless a consent file in the user's home
    says no, and its own opt-out command (`opt_in_out --opt_out`) sends one "opted out" event first. So the
    converter is never given the module: with `openvino_telemetry` unimportable it uses its built-in no-op stub
    (openvino/tools/ovc/telemetry_stub.py). Nothing is written to the user's home either.
    """
    if "openvino.tools.ovc" not in sys.modules:
        sys.modules["openvino_telemetry"] = None  # `import openvino_telemetry` now raises ImportError
    import openvino
    import openvino.tools.ovc.telemetry_stub as stub

    for name in _CONVERTER_MODULES:  # imported before us with the real module: swap it out there too
        module = sys.modules.get(name)
        if module is not None and getattr(module, "tm", stub) is not stub:
            module.tm = stub
    return openvino


def telemetry_is_off() -> bool:
    """Whether every loaded part of OpenVINO's converter reports to the no-op stub."""
    import openvino.tools.ovc.telemetry_stub as stub

    return all(getattr(sys.modules[name], "tm", stub) is stub for name in _CONVERTER_MODULES if name in sys.modules)


def compile_config(precision: str) -> dict[str, str]:
    """OpenVINO CPU settings: the precision asked for (the CPU plugin picks bf16 by itself on some CPUs). An int8
    model's quantized layers run in int8 whatever the hint; the layers it keeps in float run in f32."""
    hint = "f32" if precision == "int8" else precision
    return {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}


def glue_choice(precision: str) -> str:
    """An export's conversion at `precision`: f32 keeps the export's own NMS and one picture a call (its parity
    gate asks for the same instances); the reduced precisions, judged by accuracy, take batched NMS
    (maskrcnn_parts.BATCHED_NMS) and any number of same-size pictures a call (tiles go through in batches)."""
    return "export's own NMS" if precision == "f32" else BATCHED_GLUE


def convert_export(folder: Path, out: Path, precision: str = "f32"):
    """Write `folder`'s heavy parts as IR and its glue (glue_choice) as a SavedModel into `out`; returns the rebuilt
    parts and their TensorFlow steps (the gate's reference for the parts)."""
    import tensorflow as tf

    from ..maskrcnn_parts import BATCHED_NMS, MaskRcnnParts, steps_module

    ov = import_openvino()
    glue = glue_choice(precision)
    parts = MaskRcnnParts.from_export(folder, BATCHED_NMS if glue == BATCHED_GLUE else None)
    steps = parts.functions(None if glue == BATCHED_GLUE else 1)
    for name in HEAVY_PARTS:
        ov.save_model(ov.convert_model(steps[name].get_concrete_function()), str(out / f"{name}.xml"),
                      compress_to_fp16=False)
    tf.saved_model.save(steps_module(steps, GLUE_STEPS), str(out / "glue"))
    meta = {"levels": list(parts.levels), "glue": glue, "batched": glue == BATCHED_GLUE}
    (out / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return parts, steps


def convert_whole(source: Path, kind: str, out: Path) -> None:
    """Write a whole zoo model (a frozen graph file or a SavedModel folder) as `out/model.xml`."""
    ov = import_openvino()
    if kind == "frozen_graph":
        model = ov.convert_model(str(source), input=[(FROZEN_INPUT, [1, -1, -1, 3])])
    else:
        model = ov.convert_model(str(source))
    ov.save_model(model, str(out / "model.xml"), compress_to_fp16=False)


def named_outputs(compiled, *inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Run a compiled model; its outputs by every name they carry (a conversion keeps names, not order)."""
    result = compiled(list(inputs))
    return {name: result[output] for output in compiled.outputs for name in output.get_names()}


class ExportRunner:
    """An export run with its heavy parts in OpenVINO and the rest in TensorFlow (a `LoadedModel._run`); a batched
    conversion (glue_choice) runs a batch of same-size pictures in one pass, each part compiled once per batch
    size it meets."""

    def __init__(self, entry: Path, precision: str) -> None:
        tf = import_tensorflow()  # imported quietly, as for the TensorFlow back end
        ov = import_openvino()
        self.core, self.config = ov.Core(), compile_config(precision)
        meta = json.loads((entry / META_FILE).read_text(encoding="utf-8"))
        self.levels, self.batched = tuple(meta["levels"]), bool(meta.get("batched"))
        self.models = {name: self.core.read_model(str(entry / f"{name}.xml")) for name in HEAVY_PARTS}
        self.compiled: dict[tuple[str, int], object] = {}
        for name in HEAVY_PARTS:
            self._compiled(name, 1)
        self.glue = tf.saved_model.load(str(entry / "glue"))
        self.steps = {name: getattr(self.glue, name) for name in GLUE_STEPS}

    def _compiled(self, name: str, batch: int):
        """Part `name` compiled for `batch` pictures (the mask head takes any number of rows as it is)."""
        key = (name, 1 if name == "mask_head" else batch)
        if key not in self.compiled:
            model = self.models[name]
            if name != "mask_head" and model.inputs[0].get_partial_shape()[0].is_dynamic:
                model = model.clone()
                shape = model.inputs[0].get_partial_shape()
                model.reshape({model.inputs[0]: [batch, *[side.get_length() for side in list(shape)[1:]]]})
            self.compiled[key] = self.core.compile_model(model, "CPU", self.config)
        return self.compiled[key]

    def part_callables(self) -> dict[str, Callable[..., dict[str, np.ndarray]]]:
        return {name: (lambda *inputs, name=name: named_outputs(self._compiled(name, len(inputs[0])), *inputs))
                for name in HEAVY_PARTS}

    def __call__(self, images: np.ndarray, parts: dict[str, Callable] | None = None,
                 kept: KeptInstances | None = None) -> RawOutputs:
        """The export's outputs; `parts` replace the compiled parts, and with `kept` only the detections it keeps
        get masks (maskrcnn_parts.run_steps)."""
        from ..maskrcnn_parts import run_pictures

        parts = parts or self.part_callables()
        return run_pictures(self.steps, self.levels, images, self.batched, kept=kept, **parts)


class WholeRunner:
    """A whole converted zoo model (a `LoadedModel._run`)."""

    def __init__(self, entry: Path, precision: str) -> None:
        ov = import_openvino()
        self.compiled = ov.Core().compile_model(str(entry / "model.xml"), "CPU", compile_config(precision))
        names = {name for output in self.compiled.outputs for name in output.get_names()}
        self.wanted = [n for n in (*REQUIRED_OUTPUTS, MASK_OUTPUT) if _find(n, names) is not None]

    def __call__(self, images: np.ndarray) -> RawOutputs:
        outputs = [named_outputs(self.compiled, images[i : i + 1]) for i in range(len(images))]
        return {name: np.concatenate([o[_find(name, set(o))] for o in outputs]).astype(np.float32)
                for name in self.wanted}


def _find(name: str, names: set[str]) -> str | None:
    """A graph's name for output `name` (`detection_boxes` or `detection_boxes:0`)."""
    for candidate in (name, f"{name}:0"):
        if candidate in names:
            return candidate
    return None
