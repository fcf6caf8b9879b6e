"""Claiming an output folder: it must be writable, and only one batch run writes it at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import InstanceSegmentationError
from ...io.atomic import check_writable
from ...io.locks import LockBusy, file_lock

LOCK_NAME = ".instance-segmentation-batch.lock"


@contextmanager
def claim_output_folder(output_dir: str | Path) -> Iterator[None]:
    """Hold `output_dir` for one run: created if needed, checked writable, and locked against other runs.

    Raises one-line errors for a folder that cannot be written (read-only, no permission, full) and for a
    folder another run is writing (naming that run). The lock dies with its process, so a killed run never
    leaves it stuck.
    """
    output_dir = Path(output_dir)
    try:
        check_writable(output_dir)
    except OSError as error:
        raise InstanceSegmentationError(f"{output_dir}: cannot write outputs there ({error.strerror})") from None
    try:
        with file_lock(output_dir / LOCK_NAME, blocking=False):
            yield
    except LockBusy as busy:
        raise InstanceSegmentationError(
            f"{output_dir}: another batch run is writing there ({busy.holder}); wait for it to end or choose "
            "another output folder"
        ) from None
