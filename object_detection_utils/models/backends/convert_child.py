"""The child process that converts a model and runs the parity gate (conversion.py starts it).

    python -m object_detection_utils.models.backends.convert_child SOURCE KIND PRECISION OUT [CALIBRATION]

Writes the converted model and `gate.json` into OUT; exits 0 with `gate.json` saying why when conversion or
the gate fails. f32 must pass the parity gate (gate.py); bf16 and int8 are accepted by accuracy (acceptance.py)
on the acceptance pictures: CALIBRATION's pictures when given, else the model's own examples and generated ones.
Each conversion also times itself against TensorFlow on the same pictures, one after the other, so that
`--backend auto` can pick the fastest accepted engine from the cache. An engine crash kills only this process;
the parent then falls back to TensorFlow.
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
ACCEPTANCE_PICTURES = 40  # generated ones; a --calibration folder is taken whole, up to MAX_CALIBRATION_PICTURES
MAX_CALIBRATION_PICTURES = 300
TIMING_PICTURES = 8  # f32 is timed on this many acceptance pictures (reduced precisions on all of them)


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


def calibration_files(calibration: Path) -> list[Path]:
    """The pictures of a `--calibration` folder the acceptance uses, in order."""
    from ...io.images import IMAGE_SUFFIXES

    files = sorted(p for p in calibration.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return files[:MAX_CALIBRATION_PICTURES]


def acceptance_pictures(source: Path, kind: str, calibration: Path | None,
                        count: int = ACCEPTANCE_PICTURES) -> list[np.ndarray]:
    """The pictures a reduced precision is judged (and int8 calibrated) on: every picture in `calibration` when
    given (up to MAX_CALIBRATION_PICTURES); else the model's own `examples/` and generated shapes pictures (at an
    export's size, seed 7), `count` in all."""
    from ...io.images import IMAGE_SUFFIXES, read_image
    from ...shapes import random_shapes_picture

    if calibration is not None:
        return [read_image(p) for p in calibration_files(calibration)]
    folder = source / "examples" if source.is_dir() else None
    examples = sorted(folder.iterdir()) if folder is not None and folder.is_dir() else []
    pictures = [read_image(p) for p in examples if p.suffix.lower() in IMAGE_SUFFIXES][:count]
    if kind == "export":
        from ..export_options import TrainOptions

        size = (TrainOptions.load(source).input_size,) * 2
    else:
        size = (480, 640)
    rng = np.random.default_rng(7)
    return pictures + [random_shapes_picture(rng, size).image for _ in range(count - len(pictures))]


def convert_and_gate(source: Path, kind: str, precision: str, out: Path, calibration: Path | None = None) -> dict:
    """Convert; gate f32 against the same model in TensorFlow, or judge a reduced precision by accuracy; time
    it against TensorFlow. The `gate.json` contents."""
    from ..loading import load_local_model
    from .acceptance import MIN_INSTANCES, judge, validation_labels
    from .gate import TOLERANCES, relative_error, run_gate
    from .openvino_engine import ExportRunner, WholeRunner, convert_export, convert_whole

    start = time.perf_counter()
    _fault_injection()
    pictures = acceptance_pictures(source, kind, calibration, TIMING_PICTURES if precision == "f32" else
                                   ACCEPTANCE_PICTURES)
    quantization: dict = {}
    if kind == "export":
        _, steps = convert_export(source, out, precision)
        if precision == "int8":
            from .int8 import quantize_export

            quantization = quantize_export(out, pictures)
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
        candidate, checked_candidate = runner, (lambda images: runner(images, parts))
        part_errors = lambda: errors
    else:
        convert_whole(source, kind, out)
        candidate = checked_candidate = WholeRunner(out, precision)
        part_errors = None
    seconds = time.perf_counter() - start
    reference = load_local_model(source, warm_up=False)
    found, timing = side_by_side(reference.predict_batch, candidate, pictures)
    result: dict = {}
    if precision != "f32":
        labels = (None if calibration is None else
                  validation_labels(calibration, [p.name for p in calibration_files(calibration)]))
        verdict = judge(*found, labels=labels)
        result = {"passed": verdict.passed, "reason": verdict.reason, "acceptance": verdict.to_dict()}
    if precision == "f32" or (verdict.reference_instances < MIN_INSTANCES and precision in TOLERANCES):
        # f32's parity gate; a reduced precision that finds too little to be judged by accuracy falls back to
        # its own parity tolerance
        gated = run_gate(reference.predict_batch, checked_candidate, gate_pictures(kind), TOLERANCES[precision],
                         part_errors).to_dict()
        if precision != "f32":
            gated["reason"] = f"{result['reason']}: parity at {precision} tolerance: {gated['reason']}"
        result = {**result, **gated}
    return {**result, **quantization, "speed": timing, "conversion_seconds": round(seconds, 2)}


def side_by_side(reference, candidate, pictures: list[np.ndarray]) -> tuple[tuple[list, list], dict]:
    """Both engines' detections of every picture (acceptance.detections_of), taking turns picture by picture, and
    their speed: median seconds a picture each (the engine call alone) and the median of the per-picture ratios
    (the first picture, which pays for the engines' start, left out)."""
    from .acceptance import detections_of

    found: tuple[list, list] = ([], [])
    times: tuple[list[float], list[float]] = ([], [])
    for picture in pictures:
        for run, detections, seconds in zip((reference, candidate), found, times):
            start = time.perf_counter()
            outputs = run(picture[None])
            seconds.append(time.perf_counter() - start)
            detections.append(detections_of(outputs, picture.shape[:2]))
    steady = slice(1, None) if len(pictures) > 1 else slice(None)
    ratios = [a / b for a, b in zip(times[0][steady], times[1][steady])]
    timing = {"pictures": len(ratios), "tensorflow_seconds_per_picture": round(float(np.median(times[0][steady])), 5),
              "seconds_per_picture": round(float(np.median(times[1][steady])), 5),
              "speedup": round(float(np.median(ratios)), 3)}
    return found, timing


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
    calibration = Path(argv[4]) if len(argv) > 4 else None
    try:
        gate = convert_and_gate(source, kind, precision, out, calibration)
    except Exception as error:  # the engine refuses a graph in many ways: any of them means "use TensorFlow"
        gate = {"passed": False, "reason": f"conversion failed: {_essence(error)}"}
    (out / GATE_FILE).write_text(json.dumps(gate, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
