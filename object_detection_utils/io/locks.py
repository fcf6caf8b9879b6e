"""Exclusive locks between processes, held on a file and released by the system when the holder dies.

A killed process never leaves a lock stuck: the lock is the open file's (`flock`, or `msvcrt.locking` on
Windows), not the file's existence. The file keeps a line about its holder so a refused process can say who.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class LockBusy(Exception):
    """The lock is held by another process; `holder` is what that process wrote about itself."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path}: held by {holder or 'another process'}")
        self.path = path
        self.holder = holder


@contextmanager
def file_lock(path: str | Path, blocking: bool = True, waiting: str = "") -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the block.

    With `blocking`, wait for it, printing `waiting` first if another process holds it; without, raise
    `LockBusy` at once. While held, the file says which process holds it (pid, host, start time, command).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as file:
        if not _try_lock(file, blocking=False):
            if not blocking:
                raise LockBusy(path, _holder(path))
            if waiting:
                print(waiting, file=sys.stderr)
            _try_lock(file, blocking=True)
        try:
            _describe_holder(file)
            yield
        finally:
            _unlock(file)


def _describe_holder(file: IO[bytes]) -> None:
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
    file.seek(0)
    file.truncate()
    file.write(f"pid {os.getpid()} on {socket.gethostname()} since {started}: {command}\n".encode())
    file.flush()


def _holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


if os.name == "nt":
    import msvcrt

    def _try_lock(file: IO[bytes], blocking: bool) -> bool:
        while True:
            try:
                file.seek(0)
                msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not blocking:
                    return False
                time.sleep(0.2)

    def _unlock(file: IO[bytes]) -> None:
        file.seek(0)
        msvcrt.locking(file.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(file: IO[bytes], blocking: bool) -> bool:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            return True
        except BlockingIOError:
            return False

    def _unlock(file: IO[bytes]) -> None:
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)
