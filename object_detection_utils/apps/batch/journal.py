"""The journal of a batch run: one JSON line per finished picture, the record that makes a run resumable.

A picture is *complete* when the journal has a record for it made with the same settings (model, filters),
for the same source file (size and modification time), covering the requested outputs, and every file it
lists exists.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ...io.atomic import atomic_file
from .inputs import Picture

JOURNAL_NAME = ".instance-segmentation-batch.jsonl"


class Journal:
    """The per-picture records of finished pictures, one JSON line each, appended in input order.

    Only the small fields needed to decide completeness are held in memory; detections stay on disk and are
    streamed by `records`. A line cut short by a killed process is ignored (and dropped on the next append).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._latest: dict[str, tuple[int, dict[str, Any]]] = {}  # name -> (line number, record without coco)
        self._lines = 0
        clean = True
        if path.is_file():
            with path.open("rb") as file:
                for number, line in enumerate(file):
                    self._lines = number + 1
                    try:
                        record = json.loads(line)
                        record.pop("coco", None)
                        record["file"]
                    except (ValueError, AttributeError, KeyError, TypeError):
                        clean = False
                        continue
                    self._latest[record["file"]] = (number, record)
        if not clean:
            self._compact()
        self._lock = threading.Lock()

    def _compact(self) -> None:
        """Rewrite the journal without its broken lines (atomically), so appends start on a fresh line."""
        renumbered = {number: new for new, number in enumerate(sorted(n for n, _ in self._latest.values()))}
        with self.path.open("rb") as source, atomic_file(self.path) as target:
            for number, line in enumerate(source):
                if number in renumbered:
                    target.write(line if line.endswith(b"\n") else line + b"\n")
        self._latest = {name: (renumbered[number], record) for name, (number, record) in self._latest.items()}
        self._lines = len(renumbered)

    def is_complete(self, picture: Picture, settings: dict[str, Any], kinds: Iterable[str], output_dir: Path) -> bool:
        entry = self._latest.get(picture.name)
        if entry is None:
            return False
        record = entry[1]
        try:
            stat = picture.source.stat()
        except OSError:
            return False
        return (record.get("settings") == settings
                and record.get("source_size") == stat.st_size
                and record.get("source_mtime_ns") == stat.st_mtime_ns
                and set(kinds) <= set(record.get("kinds", ()))
                and all((output_dir / output).is_file() for output in record.get("outputs", ())))

    def append(self, record: dict[str, Any]) -> None:
        """Add one record with a single write() of a whole line, so a kill cannot leave half a record."""
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
            small = {k: v for k, v in record.items() if k != "coco"}
            self._latest[record["file"]] = (self._lines, small)
            self._lines += 1

    def records(self, names: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The latest full record of each of `names` that has one, streamed in journal order."""
        wanted = {self._latest[n][0] for n in names if n in self._latest}
        if not wanted:
            return
        with self.path.open("rb") as file:
            for number, line in enumerate(file):
                if number in wanted:
                    yield json.loads(line)
