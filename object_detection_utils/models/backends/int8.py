"""int8: an export's converted heavy parts quantized after training with NNCF, under accuracy control.

The three heavy parts (`dense` = backbone + FPN + RPN head, `box_head`, `mask_head`; openvino_engine.py) are
quantized one after the other, in place of their f32 IR; proposals, NMS and ROI align stay in float (they are
the `glue/` SavedModel, never quantized). Each part goes through NNCF's `quantize_with_accuracy_control`:
calibrated on that part's inputs as the acceptance pictures produce them, and validated by the agreement metric
(acceptance.py: mask AP against the f32 conversion's own detections on the same pictures, with the parts
quantized so far in int8); NNCF puts back into float the layers that cost agreement, until the part loses at
most MAX_AGREEMENT_DROP. The result is then judged like bf16 (acceptance.judge, against TensorFlow).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .openvino_engine import HEAVY_PARTS, ExportRunner, import_openvino

# The agreement each part may lose (on 40 pictures one borderline instance is ~0.005 of it). The parts' losses
# add up, and `judge` then asks for acceptance.MIN_AGREEMENT of the whole.
MAX_AGREEMENT_DROP = 0.01
CALIBRATION_PICTURES = 40  # at most; NNCF's statistics settle within a few dozen


def import_nncf():
    """`nncf`, with its usage telemetry off.

    NNCF decides once, when `nncf.telemetry.wrapper` is first imported: it sends through `openvino_telemetry`
    when that imports, else it uses its no-op `NNCFTelemetryStub` (its `NNCF_CI`/`NNCF_DEV` variables also
    choose the stub, but only for NNCF's own machines). So `openvino_telemetry` is made unimportable while NNCF is
    first imported; where NNCF was imported before us with the real module, its telemetry objects are swapped
    for the stub.
    """
    import_openvino()
    if "nncf.telemetry.wrapper" not in sys.modules:
        blocked = sys.modules.get("openvino_telemetry", _ABSENT)
        sys.modules["openvino_telemetry"] = None  # `import openvino_telemetry` now raises ImportError
        try:
            import nncf
        finally:
            if blocked is _ABSENT:
                del sys.modules["openvino_telemetry"]
            else:
                sys.modules["openvino_telemetry"] = blocked
    import nncf
    import nncf.telemetry
    import nncf.telemetry.decorator
    import nncf.telemetry.wrapper

    stub = nncf.telemetry.wrapper.NNCFTelemetryStub
    for module in (nncf.telemetry, nncf.telemetry.decorator, nncf.telemetry.wrapper):
        if not isinstance(module.telemetry, stub):
            module.telemetry = stub()
    return nncf


_ABSENT = object()


def nncf_telemetry_is_off() -> bool:
    """Whether every reference NNCF keeps to its telemetry is the no-op stub."""
    import nncf.telemetry
    import nncf.telemetry.decorator
    import nncf.telemetry.wrapper

    stub = nncf.telemetry.wrapper.NNCFTelemetryStub
    return all(
        isinstance(m.telemetry, stub) for m in (nncf.telemetry, nncf.telemetry.decorator, nncf.telemetry.wrapper)
    )


def quantize_export(
    entry: Path, pictures: Sequence[np.ndarray], metric: Callable[[list, list], float] | None = None
) -> dict:
    """Quantize the f32 IR of `entry`'s heavy parts to int8 in place (see the module docstring); returns what was
    done, for `gate.json`. `metric(reference, candidate)` scores a list of detections against the f32 ones
    (default: the agreement mask AP; None counts as 0). With the default metric and too few f32 instances to
    judge agreement by, nothing is quantized (int8 will be refused)."""
    from .acceptance import MIN_INSTANCES, REFERENCE_MIN_SCORE, agreement, detections_of

    nncf = import_nncf()
    ov = import_openvino()
    metric_is_default = metric is None
    metric = metric or (lambda reference, candidate: agreement(reference, candidate)[0] or 0.0)
    pictures = list(pictures)[:CALIBRATION_PICTURES]
    f32 = ExportRunner(entry, "f32")
    parts = f32.part_callables()
    inputs = {name: [] for name in HEAVY_PARTS}

    def recording(name: str, call):
        def record(*arrays):
            inputs[name].append([np.array(a) for a in arrays])
            return call(*arrays)

        return record

    recorded = {name: recording(name, call) for name, call in parts.items()}
    reference = [detections_of(f32(p[None], recorded), p.shape[:2]) for p in pictures]
    instances = sum(int((d.scores >= REFERENCE_MIN_SCORE).sum()) for d in reference)
    if metric_is_default and instances < MIN_INSTANCES:
        # Agreement cannot be judged (acceptance.judge will refuse int8): NNCF would chase the noise of a few
        # instances layer by layer, for nothing.
        return {"quantized": {}, "skipped": f"too few instances to control accuracy ({instances} < {MIN_INSTANCES})"}
    core = ov.Core()
    report: dict = {"quantized": {}}
    for name in HEAVY_PARTS:
        start = time.perf_counter()

        def validate(compiled, items, name=name) -> float:
            items = list(items)
            call = {**parts, name: lambda *arrays: {k: v for k, v in _named(compiled, arrays).items()}}
            found = [detections_of(f32(p[None], call), p.shape[:2]) for p in items]
            return metric([reference[i] for i in _indices(items, pictures)], found)

        model = core.read_model(str(entry / f"{name}.xml"))
        quantized = nncf.quantize_with_accuracy_control(
            model,
            nncf.Dataset(inputs[name]),
            nncf.Dataset(pictures),
            validate,
            max_drop=MAX_AGREEMENT_DROP,
            drop_type=nncf.DropType.ABSOLUTE,
            subset_size=len(inputs[name]),
        )
        # Written beside, then moved over the f32 IR: the f32 weights are memory-mapped while NNCF runs.
        ov.save_model(quantized, str(entry / f"{name}.int8.xml"), compress_to_fp16=False)
        del model, quantized
        for suffix in (".xml", ".bin"):
            (entry / f"{name}.int8{suffix}").replace(entry / f"{name}{suffix}")
        compiled = core.compile_model(str(entry / f"{name}.xml"), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
        parts[name] = lambda *arrays, compiled=compiled: _named(compiled, arrays)
        found = [detections_of(f32(p[None], parts), p.shape[:2]) for p in pictures]
        report["quantized"][name] = {
            "agreement": round(float(metric(reference, found)), 4),
            "seconds": round(time.perf_counter() - start, 1),
        }
    return report


def _named(compiled, arrays) -> dict[str, np.ndarray]:
    from .openvino_engine import named_outputs

    return named_outputs(compiled, *arrays)


def _indices(items, pictures: list[np.ndarray]) -> list[int]:
    """Where each of NNCF's validation items (a subset of `pictures`, the same objects) sits in `pictures`."""
    positions = {id(p): i for i, p in enumerate(pictures)}
    return [positions[id(item)] for item in items]
