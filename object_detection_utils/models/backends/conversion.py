"""Converted models in the cache: converted and gated once, in a child process, then reused.

An entry lives in `<cache>/openvino/<key digest>/` and is keyed by the model's content digest, the engine's
version, the precision and the input-size policy (and for bf16 and int8, which are judged and calibrated on
pictures, those pictures: a `--calibration` folder's digest), so a changed model, a new OpenVINO, another
precision or other pictures convert again. A failed or crashed conversion is cached too (its `gate.json` says
why), so a model that cannot be converted costs one attempt, not one per run; delete the entry to try again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ...io.atomic import atomic_directory
from ...io.locks import file_lock
from ..cache import cache_dir
from .convert_child import GATE_FILE
from .openvino_engine import glue_choice

KEY_FILE = "key.json"
CONVERSION_TIMEOUT_S = 1800
log = logging.getLogger("object_detection_utils.models.backends")


@dataclass(frozen=True)
class Conversion:
    """A cache entry: where it is, what it is, and the gate's verdict."""

    entry: Path
    kind: str  # "export" (heavy parts converted) or "whole"
    precision: str
    gate: dict
    converted_now: bool  # False when found in the cache

    @property
    def passed(self) -> bool:
        return bool(self.gate.get("passed"))


def engine_version() -> str | None:
    """The installed OpenVINO's version, without importing it (None when it is not installed)."""
    try:
        return metadata.version("openvino")
    except metadata.PackageNotFoundError:
        return None


def model_digest(paths: list[Path]) -> str:
    """SHA-256 over the files of a model (relative names and contents), in a stable order."""
    digest = hashlib.sha256()
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for file in files:
            digest.update(str(file.relative_to(root) if root.is_dir() else file.name).encode() + b"\0")
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def conversion_key(model_files: list[Path], kind: str, precision: str, version: str,
                   calibration: Path | None = None) -> dict[str, str]:
    # Our exports resize every picture to the export's fixed square; whole zoo graphs keep any picture size.
    key = {"model": model_digest(model_files), "engine": f"openvino {version}", "precision": precision,
           "input_size": "export's fixed square" if kind == "export" else "any (dynamic)", "kind": kind}
    if precision != "f32":  # judged by accuracy (int8 also calibrated) on these pictures
        key["pictures"] = "model's examples and generated" if calibration is None else model_digest([calibration])
    if kind == "export":
        key["glue"] = glue_choice(precision)
    return key


def convert(source: Path, kind: str, model_files: list[Path], precision: str, version: str,
            calibration: Path | None = None) -> Conversion:
    """The cached conversion of `source` (converting and gating it in a child process the first time);
    `calibration` is a folder of the user's pictures to judge (and calibrate) a reduced precision on."""
    key = conversion_key(model_files, kind, precision, version, calibration)
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    entry = cache_dir() / "openvino" / name
    gate_file = entry / GATE_FILE
    # Processes asking for the same conversion at once (the Ray job's actors on one machine, two runs) take
    # turns: the first converts and gates, the others find its entry.
    with file_lock(cache_dir() / "locks" / f"openvino-{name}.lock"):
        if gate_file.is_file():
            return Conversion(entry, kind, precision, json.loads(gate_file.read_text(encoding="utf-8")), False)
        # Once per model and precision, but long enough (int8: minutes) that a user should know why nothing shows.
        log.warning("back end: converting %s to OpenVINO %s and judging it against TensorFlow, once (%s; cached in "
                    "%s)", source.name, precision, "int8 calibrates for several minutes" if precision == "int8"
                    else "a few seconds to a minute", entry)
        with atomic_directory(entry) as staging:
            (staging / KEY_FILE).write_text(json.dumps(key, indent=2), encoding="utf-8")
            _run_child(source, kind, precision, staging, calibration)
    return Conversion(entry, kind, precision, json.loads(gate_file.read_text(encoding="utf-8")), True)


def _run_child(source: Path, kind: str, precision: str, staging: Path, calibration: Path | None = None) -> None:
    """Convert and gate in a child process; a crash or a hang there becomes a failed `gate.json`."""
    command = [sys.executable, "-m", "object_detection_utils.models.backends.convert_child", str(source.resolve()),
               kind, precision, str(staging.resolve())] + ([] if calibration is None else [str(calibration.resolve())])
    log_file = staging / "conversion.log"
    with log_file.open("wb") as log:
        try:
            returncode = subprocess.run(command, check=False, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        timeout=CONVERSION_TIMEOUT_S, cwd=Path(__file__).resolve().parents[3]
                                        ).returncode
        except subprocess.TimeoutExpired:
            returncode = None
    if (staging / GATE_FILE).is_file() and returncode == 0:
        return
    if returncode is None:
        reason = f"conversion did not finish in {CONVERSION_TIMEOUT_S} s"
    elif returncode < 0:
        reason = f"the engine crashed ({_signal_name(-returncode)}) while converting"
    else:
        reason = f"the conversion process failed (exit status {returncode}; see {log_file.name})"
    (staging / GATE_FILE).write_text(json.dumps({"passed": False, "reason": reason}, indent=2), encoding="utf-8")


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
