"""The child process that converts a model and runs the parity gate (conversion.py starts it).

    python -m object_detection_utils.models.backends.convert_child SOURCE KIND PRECISION OUT

Writes the converted model and `gate.json` into OUT; exits 0 with `gate.json` saying why when conversion or
the gate fails. An engine crash kills only this process; the parent then falls back to TensorFlow.
`INSTANCE_SEGMENTATION_CONVERSION_FAULT=abort|segv` makes the conversion step crash that way (for tests).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

FAULT_ENV = "INSTANCE_SEGMENTATION_CONVERSION_FAULT"
GATE_FILE = "gate.json"


def gate_pictures(kind: str) -> list[np.ndarray]:
    """The gate's pictures: generated shapes pictures (what our exports learn from) and a photo (the zoo's)."""
    import matplotlib.cbook

    from ...io.images import read_image
    from ...shapes import random_shapes_picture

    rng = np.random.default_rng(2)
    sizes = [(128, 128), (128, 128), (480, 640)] if kind == "export" else [(480, 640)]
    pictures = [random_shapes_picture(rng, size).image for size in sizes]
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as photo:
        pictures.append(read_image(photo.name))
    return pictures


def convert_and_gate(source: Path, kind: str, precision: str, out: Path) -> dict:
    """Convert, then gate against the same model in TensorFlow; the `gate.json` contents."""
    from ..loading import load_local_model
    from .gate import TOLERANCES, relative_error, run_gate
    from .openvino_engine import ExportRunner, WholeRunner, convert_export, convert_whole

    start = time.perf_counter()
    _fault_injection()
    if kind == "export":
        _, steps = convert_export(source, out)
        runner = ExportRunner(out, precision)
        errors: dict[str, float] = {}

        def checked(name: str, converted):
            def call(*inputs):
                found = converted(*inputs)
                for key, value in steps[name](*inputs).items():
                    errors[name] = max(errors.get(name, 0.0), relative_error(value.numpy(), found[key]))
                return found
            return call

        parts = {name: checked(name, call) for name, call in runner.part_callables().items()}
        candidate = lambda images: runner(images, parts)
    else:
        convert_whole(source, kind, out)
        candidate, errors = WholeRunner(out, precision), None
    seconds = time.perf_counter() - start
    reference = load_local_model(source, warm_up=False)
    result = run_gate(reference.predict_batch, candidate, gate_pictures(kind), TOLERANCES[precision],
                      None if errors is None else (lambda: errors))
    return {**result.to_dict(), "conversion_seconds": round(seconds, 2)}


def _fault_injection() -> None:
    fault = os.environ.get(FAULT_ENV, "")
    if fault == "abort":
        os.abort()
    if fault == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)


def _essence(error: Exception) -> str:
    """The line of an engine error that says what went wrong (OpenVINO leads with the C++ file and line)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    telling = [line.lstrip("- ") for line in lines if "for operation" in line.lower()]  # "no rule found for ..."
    return (telling or lines or [type(error).__name__])[0][:300]


def main(argv: list[str]) -> int:
    source, kind, precision, out = Path(argv[0]), argv[1], argv[2], Path(argv[3])
    try:
        gate = convert_and_gate(source, kind, precision, out)
    except Exception as error:  # the engine refuses a graph in many ways: any of them means "use TensorFlow"
        gate = {"passed": False, "reason": f"conversion failed: {_essence(error)}"}
    (out / GATE_FILE).write_text(json.dumps(gate, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
