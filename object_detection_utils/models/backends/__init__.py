"""Which engine runs a loaded model: TensorFlow, or OpenVINO behind a parity gate that falls back to TensorFlow.

    tensorflow      the model's own graph (the default)
    openvino        OpenVINO f32 where the model converts and passes the gate, else TensorFlow with one line
    openvino-bf16   the same in bf16, on CPUs with native bf16 (avx512_bf16 or amx_bf16), at bf16's tolerance
    auto            openvino when it is installed, else TensorFlow with one line

maskrcnn_parts  our exports taken apart into steps       openvino_engine  telemetry off, conversion, runners
conversion      the cache of converted models            convert_child    conversion + gate in a child process
gate            the parity gate
"""

from __future__ import annotations

import logging
from pathlib import Path

from ...errors import ModelLoadError, first_line
from ...model_contract import MASK_OUTPUT, EngineRun, ModelDescription
from ..export_options import OPTIONS_FILE

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorflow", "openvino", "openvino-bf16")
INSTALL_HINT = "pip install 'instance-segmentation[openvino]'"


def cpu_has_bf16() -> bool:
    """Whether the CPU computes in bf16 natively (avx512_bf16 or amx_bf16 in /proc/cpuinfo; False elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_backend(backend: str) -> str:
    """`backend`, checked before any model is touched: a known name, and OpenVINO installed when named."""
    from .conversion import engine_version

    if backend not in BACKENDS:
        raise ModelLoadError(f"unknown back end {backend!r}: choose {', '.join(BACKENDS)}")
    if backend.startswith("openvino") and engine_version() is None:
        raise ModelLoadError(f"--backend {backend}: OpenVINO is not installed ({INSTALL_HINT})")
    return backend


def accelerate(model: ModelDescription, backend: str) -> EngineRun | None:
    """The OpenVINO runner for a described model, or None (after one line saying why) when TensorFlow runs it.

    Raises ModelLoadError only for what `check_backend` refuses.
    """
    from .conversion import convert, engine_version

    if check_backend(backend) == "tensorflow":
        return None
    name, kind, target = model.name, model.kind, model.target
    version = engine_version()
    if version is None:
        log.warning("back end: OpenVINO is not installed (%s); %s runs on TensorFlow", INSTALL_HINT, name)
        return None
    precision = "bf16" if backend == "openvino-bf16" else "f32"
    if precision == "bf16" and not cpu_has_bf16():
        log.warning("back end: this CPU has no native bf16 (no avx512_bf16 or amx_bf16): using f32")
        precision = "f32"
    from .maskrcnn_parts import is_our_export

    if kind == "saved_model" and target.name == "saved_model" and is_our_export(target.parent):
        source, conversion_kind, files = target.parent, "export", [target, target.parent / OPTIONS_FILE]
    else:
        source, conversion_kind, files = target, "whole", [target]
    conversion = convert(source, conversion_kind, files, precision, version)
    if not conversion.passed:
        log.warning("back end: OpenVINO %s cannot run %s (%s); it runs on TensorFlow", precision, name,
                    conversion.gate.get("reason", "no reason recorded"))
        return None
    from .openvino_engine import ExportRunner, WholeRunner

    try:
        if conversion_kind == "export":
            return EngineRun(ExportRunner(conversion.entry, precision), True, f"openvino {precision}")
        runner = WholeRunner(conversion.entry, precision)
        return EngineRun(runner, MASK_OUTPUT in runner.wanted, f"openvino {precision}")
    except Exception as error:  # a converted model that passed its gate but no longer loads (a damaged cache)
        log.warning("back end: OpenVINO cannot load the converted %s from %s (%s); it runs on TensorFlow",
                    name, conversion.entry, first_line(error)[:200])
        return None
