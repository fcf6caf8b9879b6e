"""Writing files and folders so that a path only ever holds a finished one.

Everything is written under a temporary name beside its destination and renamed into place when complete;
on any error the temporary file or folder is removed. Temporary names all look like

    .<name>.<random>.part          files (`temp_path_beside`)
    .<stem>.<random>.part<suffix>  files whose writer picks the format from the suffix (videos)
    .<name>.<random>.part          folders (`atomic_directory`)

and `is_temp_name` recognises exactly those, so `remove_stale_temp_files` cleans what a killed process left
and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

TEMP_SUFFIX = ".part"
_RANDOM_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")  # tempfile's name alphabet


def _ordinary_permissions(path: str | Path, directory: bool = False) -> None:
    """mkstemp/mkdtemp make private files; finished outputs get the permissions of any new file."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if directory else 0o666) & ~umask)


def temp_path_beside(path: str | Path, keep_suffix: bool = False) -> Path:
    """A new empty file beside `path`, named `.<name>.<random>.part` (or `.<stem>.<random>.part<suffix>` with
    `keep_suffix`, for writers that choose the format by suffix), with ordinary file permissions."""
    path = Path(path)
    with _naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        if keep_suffix:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{TEMP_SUFFIX}{path.suffix}", dir=path.parent)
        else:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    _ordinary_permissions(tmp)
    return Path(tmp)


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Errors while writing `path` name `path`: a full disk says `out.png: No space left on device`, not
    nothing (a failed write() names no file) or a temporary name the user never asked for."""
    try:
        yield
    except OSError as error:
        names_another_file = error.filename is not None and not is_temp_name(Path(error.filename).name)
        if names_another_file or error.errno is None:
            raise
        raise OSError(error.errno, error.strerror, str(path)) from error


def check_writable(folder: str | Path) -> None:
    """Create `folder` if needed and make sure a file can be written in it, so a read-only or full place fails
    before any slow work starts; raises OSError naming the folder."""
    folder = Path(folder)
    with _naming(folder):
        folder.mkdir(parents=True, exist_ok=True)
    temp_path_beside(folder / ".write-check").unlink()


def is_temp_name(name: str) -> bool:
    """Whether `name` is one `temp_path_beside` or `atomic_directory` makes (`.<name>.<random>.part[<suffix>]`)."""
    if not name.startswith("."):
        return False
    head, sep, tail = name[1:].rpartition(TEMP_SUFFIX)
    if not sep or (tail and not (tail.startswith(".") and tail.count(".") == 1)):
        return False
    stem, dot, random = head.rpartition(".")
    return bool(dot and stem and len(random) >= 6 and set(random) <= _RANDOM_CHARS)


def remove_stale_temp_files(folder: str | Path) -> int:
    """Delete the temporary files and folders a killed run left anywhere under `folder`; returns how many."""
    folder = Path(folder)
    removed = 0
    if not folder.is_dir():
        return 0
    for root, dirs, files in os.walk(folder):
        for name in files:
            if is_temp_name(name):
                (Path(root) / name).unlink(missing_ok=True)
                removed += 1
        for name in [d for d in dirs if is_temp_name(d)]:
            shutil.rmtree(Path(root) / name, ignore_errors=True)
            dirs.remove(name)
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """A file open for writing under a temporary name beside `path`, renamed into place when the block ends
    without error and removed when it does not: `path` is never half-written."""
    path = Path(path)
    tmp = temp_path_beside(path)
    try:
        with _naming(path):
            with tmp.open(mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as file:
                yield file
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """A temporary path beside `path` for a writer that opens files by name itself (TFRecord, video);
    renamed to `path` when the block ends without error, removed when it does not."""
    path = Path(path)
    tmp = temp_path_beside(path, keep_suffix=keep_suffix)
    try:
        with _naming(path):
            yield tmp
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it into place."""
    with atomic_file(path) as file:
        file.write(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write UTF-8 `text` to a temporary file beside `path`, then rename it into place."""
    write_bytes_atomic(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(path: str | Path, replace: bool = False) -> Iterator[Path]:
    """An empty temporary folder beside `path` to fill; renamed to `path` when the block ends without error.

    With `replace`, an existing `path` is swapped out only once the new folder is complete. Without it, a
    `path` that another process completed meanwhile is kept and ours dropped (both are equally good).
    On error the temporary folder is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent))
    _ordinary_permissions(staging, directory=True)
    try:
        yield staging
        if replace and path.exists():
            holder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent))
            previous = holder / "previous"
            path.rename(previous)
            try:
                staging.rename(path)
            except BaseException:
                previous.rename(path)
                raise
            finally:
                if path.exists():
                    shutil.rmtree(holder, ignore_errors=True)
        else:
            try:
                staging.rename(path)
            except OSError:
                if not path.is_dir():
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
