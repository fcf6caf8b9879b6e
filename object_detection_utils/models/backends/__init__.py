"""Which engine runs a loaded model: TensorFlow, or OpenVINO where it is accepted, else TensorFlow after one line.

    tensorflow      the model's own graph (the default)
    openvino        OpenVINO f32 where the model converts and passes the parity gate
    openvino-bf16   bf16, on CPUs with native bf16 (avx512_bf16 or amx_bf16), where it is accepted by accuracy
    openvino-int8   our exports' heavy parts quantized with NNCF (CPUs with VNNI), where accepted by accuracy
    auto            the fastest accepted of int8, bf16, f32 and TensorFlow on this CPU (measured once, cached)

openvino_engine  telemetry off, conversion, runners      conversion  the cache of converted models
convert_child    conversion + gate in a child process    gate        the f32 parity gate
acceptance       bf16/int8 judged by agreement with f32  int8        NNCF quantization under accuracy control
race             auto's timing of the accepted engines   (our exports' steps: models/maskrcnn_parts.py)
"""

from __future__ import annotations

import logging
from pathlib import Path

from ...errors import ModelLoadError, first_line
from ...model_contract import MASK_OUTPUT, EngineRun, ModelDescription
from ..export_options import OPTIONS_FILE

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorflow", "openvino", "openvino-bf16", "openvino-int8")
INSTALL_HINT = "pip install 'instance-segmentation[openvino]'"
PRECISIONS = {"openvino": "f32", "openvino-bf16": "bf16", "openvino-int8": "int8"}


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


def cpu_has_bf16() -> bool:
    """Whether the CPU computes in bf16 natively (avx512_bf16 or amx_bf16)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_has_int8() -> bool:
    """Whether the CPU has int8 dot products (VNNI: avx512_vnni, avx_vnni, or AMX's amx_int8)."""
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def nncf_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("nncf") is not None


def check_backend(backend: str) -> str:
    """`backend`, checked before any model is touched: a known name, and OpenVINO installed when named."""
    from .conversion import engine_version

    if backend not in BACKENDS:
        raise ModelLoadError(f"unknown back end {backend!r}: choose {', '.join(BACKENDS)}")
    if backend.startswith("openvino") and engine_version() is None:
        raise ModelLoadError(f"--backend {backend}: OpenVINO is not installed ({INSTALL_HINT})")
    return backend


def accelerate(model: ModelDescription, backend: str, calibration: Path | None = None) -> EngineRun | None:
    """The OpenVINO runner for a described model, or None (after one line saying why) when TensorFlow runs it.

    `calibration` is a folder of the user's pictures that bf16 and int8 are judged (int8 also calibrated) on.
    Raises ModelLoadError only for what `check_backend` refuses.
    """
    from .conversion import engine_version

    if check_backend(backend) == "tensorflow":
        return None
    name = model.name
    if engine_version() is None:
        log.warning("back end: OpenVINO is not installed (%s); %s runs on TensorFlow", INSTALL_HINT, name)
        return None
    source, kind, files = _conversion_source(model)
    if backend == "auto":
        return _fastest(model, source, kind, files, calibration)
    precision = PRECISIONS[backend]
    if precision == "bf16" and not cpu_has_bf16():
        log.warning("back end: this CPU has no native bf16 (no avx512_bf16 or amx_bf16): using f32")
        precision = "f32"
    if precision == "int8":
        unavailable = _int8_unavailable(kind)
        if unavailable:
            log.warning("back end: OpenVINO int8 cannot run %s (%s); it runs on TensorFlow", name, unavailable)
            return None
    conversion = _convert(source, kind, files, precision, calibration)
    if not conversion.passed:
        log.warning("back end: OpenVINO %s cannot run %s (%s); it runs on TensorFlow", precision, name,
                    conversion.gate.get("reason", "no reason recorded"))
        return None
    return _runner(conversion, name)


def _conversion_source(model: ModelDescription) -> tuple[Path, str, list[Path]]:
    """What is converted: our export's folder (its parts), or the model whole."""
    from ..maskrcnn_parts import is_our_export

    target = model.target
    if model.kind == "saved_model" and target.name == "saved_model" and is_our_export(target.parent):
        return target.parent, "export", [target, target.parent / OPTIONS_FILE]
    return target, "whole", [target]


def _int8_unavailable(kind: str) -> str:
    """Why int8 cannot be tried here ('' when it can)."""
    if kind != "export":
        return "int8 quantizes the parts of our exports only"
    if not cpu_has_int8():
        return "this CPU has no VNNI (avx512_vnni, avx_vnni or amx_int8)"
    if not nncf_installed():
        return f"NNCF is not installed ({INSTALL_HINT})"
    return ""


def _convert(source: Path, kind: str, files: list[Path], precision: str, calibration: Path | None):
    from .conversion import convert, engine_version

    return convert(source, kind, files, precision, engine_version(), calibration)


def _fastest(model: ModelDescription, source: Path, kind: str, files: list[Path],
             calibration: Path | None) -> EngineRun | None:
    """`--backend auto`: every precision this CPU has, converted and judged once (cached), then the accepted ones
    raced against TensorFlow once (cached); the fastest, if it beats TensorFlow. One line says which and why."""
    int8_unavailable = _int8_unavailable(kind)
    precisions = ["f32"] + (["bf16"] if cpu_has_bf16() else []) + ([] if int8_unavailable else ["int8"])
    tried = {precision: _convert(source, kind, files, precision, calibration) for precision in precisions}
    speedups = _speedups(source, {p: c for p, c in tried.items() if c.passed}, calibration)
    refused = [f"{p} refused: {c.gate.get('reason', 'no reason recorded')}" for p, c in tried.items() if not c.passed]
    refused += [] if cpu_has_bf16() else ["no bf16: this CPU has no avx512_bf16 or amx_bf16"]
    refused += [f"no int8: {int8_unavailable}"] if int8_unavailable else []
    measured = ", ".join(f"{p} {x:.2f}x" for p, x in sorted(speedups.items(), key=lambda item: -item[1]))
    why = "; ".join(([f"speed against TensorFlow: {measured}"] if measured else []) + refused)
    best = max(speedups, key=speedups.get, default=None)
    if best is None or speedups[best] <= 1.0:
        log.warning("back end auto: %s runs on TensorFlow (%s)", model.name, why or "nothing accepted")
        return None
    log.warning("back end auto: %s runs on OpenVINO %s (%s)", model.name, best, why)
    return _runner(tried[best], model.name)


def _speedups(source: Path, accepted: dict, calibration: Path | None) -> dict[str, float]:
    """Each accepted precision's speed-up over TensorFlow: from the race between them all in one process
    (race.py, cached), else, where that failed, from each conversion's own side-by-side timing."""
    from . import race

    raced = race.speedups(source, [c.entry for c in accepted.values()], calibration)
    if raced is not None:
        return {p: raced[c.entry.name] for p, c in accepted.items()}
    return {p: float(c.gate.get("speed", {}).get("speedup", 0.0)) for p, c in accepted.items()}


def _runner(conversion, name: str) -> EngineRun | None:
    from .openvino_engine import ExportRunner, WholeRunner

    precision = conversion.precision
    try:
        if conversion.kind == "export":
            runner = ExportRunner(conversion.entry, precision)
            return EngineRun(runner, True, f"openvino {precision}", masks_where_kept=True, batched=runner.batched)
        runner = WholeRunner(conversion.entry, precision)
        return EngineRun(runner, MASK_OUTPUT in runner.wanted, f"openvino {precision}")
    except Exception as error:  # a converted model that passed its gate but no longer loads (a damaged cache)
        log.warning("back end: OpenVINO cannot load the converted %s from %s (%s); it runs on TensorFlow",
                    name, conversion.entry, first_line(error)[:200])
        return None
