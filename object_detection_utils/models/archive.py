"""Unpacking model archives safely: nothing may land outside the target folder."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import ModelLoadError
from ..io.atomic import atomic_directory
from .cache import cache_dir

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def extract_archive(archive: Path, destination: Path) -> Path:
    """Extract a tar archive into a new folder `destination`, atomically.

    Members with absolute paths, `..` components, links pointing outside, or device files are refused
    (Python's `data` extraction filter, plus a refusal of absolute names that it would quietly make relative).
    The archive is unpacked into a temporary sibling folder that is renamed into place only when complete, so
    an interrupted extraction never looks like a finished one.
    """
    try:
        with atomic_directory(destination) as staging, tarfile.open(archive) as tar:
            tar.extractall(staging, filter=_safe_member)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ModelLoadError(f"{archive}: cannot extract archive: {error}") from None
    return destination


def _safe_member(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo | None:
    if PurePosixPath(member.name).is_absolute() or PureWindowsPath(member.name).is_absolute():
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, destination)


def extract_archive_cached(archive: Path) -> Path:
    """Extract `archive` once into the cache; later calls for the same unchanged file reuse that folder."""
    stat = archive.stat()
    key = hashlib.sha256(f"{archive.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    stem = archive.name
    for suffix in ARCHIVE_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    destination = cache_dir() / "extracted" / f"{stem}-{key}"
    if destination.is_dir():
        return destination
    return extract_archive(archive, destination)
