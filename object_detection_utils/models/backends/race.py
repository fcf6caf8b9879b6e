"""`--backend auto`'s measurement: TensorFlow and every accepted conversion of a model, side by side in one child
process, once; the result is cached beside the conversions.

    python -m object_detection_utils.models.backends.race SOURCE OUT CALIBRATION|- ENTRY...

Each engine runs the same acceptance pictures, taking turns picture by picture with the order rotating, so
that the machine's other load falls on all alike (separate processes at separate times would not compare);
the speed-up of each is the median of its per-picture ratios to TensorFlow. OUT is written as JSON:
`{"pictures": n, "speedups": {entry name: speed-up}}`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ...io.atomic import write_text_atomic
from ...io.locks import file_lock
from ..cache import cache_dir

RACE_PICTURES = 12  # the first round pays for the engines' start and is left out
RACE_TIMEOUT_S = 900


def race_file(entries: list[Path]) -> Path:
    """Where the race between these conversions (and TensorFlow) is cached."""
    import hashlib

    digest = hashlib.sha256("\n".join(sorted(entry.name for entry in entries)).encode()).hexdigest()[:24]
    return cache_dir() / "openvino" / f"race-{digest}.json"


def speedups(source: Path, entries: list[Path], calibration: Path | None) -> dict[str, float] | None:
    """Each entry's speed-up over TensorFlow on this machine, by entry name (measured once in a child process,
    then read from the cache); None when the measurement failed."""
    if not entries:
        return {}
    found = race_file(entries)
    with file_lock(cache_dir() / "locks" / f"{found.stem}.lock"):
        if not found.is_file():
            command = [
                sys.executable,
                "-m",
                __name__,
                str(source.resolve()),
                str(found),
                "-" if calibration is None else str(calibration.resolve()),
                *map(str, entries),
            ]
            try:
                subprocess.run(
                    command,
                    check=False,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=RACE_TIMEOUT_S,
                    cwd=Path(__file__).resolve().parents[3],
                )
            except subprocess.TimeoutExpired:
                return None
        if not found.is_file():
            return None
    return json.loads(found.read_text(encoding="utf-8"))["speedups"]


def race(source: Path, entries: list[Path], calibration: Path | None) -> dict:
    """Time TensorFlow and each converted entry side by side (see the module docstring)."""
    from ..loading import load_local_model
    from .conversion import KEY_FILE
    from .convert_child import acceptance_pictures
    from .openvino_engine import ExportRunner, WholeRunner

    runners = []
    for entry in entries:
        key = json.loads((entry / KEY_FILE).read_text(encoding="utf-8"))
        runner_class = ExportRunner if key["kind"] == "export" else WholeRunner
        runners.append(runner_class(entry, key["precision"]))
    kind = json.loads((entries[0] / KEY_FILE).read_text(encoding="utf-8"))["kind"]
    engines = [load_local_model(source, warm_up=False).predict_batch, *runners]
    pictures = acceptance_pictures(source, kind, calibration, RACE_PICTURES)[:RACE_PICTURES]
    times: list[list[float]] = [[] for _ in engines]
    for turn, picture in enumerate(pictures):
        for offset in range(len(engines)):
            index = (turn + offset) % len(engines)
            start = time.perf_counter()
            engines[index](picture[None])
            times[index].append(time.perf_counter() - start)
    steady = slice(1, None) if len(pictures) > 1 else slice(None)
    ratios = {
        entry.name: float(np.median([a / b for a, b in zip(times[0][steady], t[steady])]))
        for entry, t in zip(entries, times[1:])
    }
    return {"pictures": len(pictures), "speedups": {name: round(value, 3) for name, value in ratios.items()}}


def main(argv: list[str]) -> int:
    source, out, calibration, entries = Path(argv[0]), Path(argv[1]), argv[2], [Path(a) for a in argv[3:]]
    result = race(source, entries, None if calibration == "-" else Path(calibration))
    write_text_atomic(out, json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
