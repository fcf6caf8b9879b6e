"""Which pictures a batch covers: folders (optionally recursive), glob patterns and files, with the relative
names that their outputs take."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import InstanceSegmentationError
from ...io.images import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Picture:
    """One input file: `source` on disk, `name` its relative path (POSIX), which names its outputs."""

    source: Path
    name: str


def find_pictures(
    inputs: Sequence[str | Path], recursive: bool = False, exclude: Path | None = None
) -> list[Picture]:
    """The pictures that `inputs` name, sorted within each input.

    Each input is a folder (its pictures, with `recursive` its subfolders' too, named relative to it), a
    glob pattern (`**` recurses; named relative to the pattern's fixed leading folder) or one file. Folders
    and patterns keep only files with a picture suffix; a file named outright is taken as it is. Pictures
    inside `exclude` (the output folder, when it lies within an input) are left out.
    """
    pictures: list[Picture] = []
    owners: dict[str, Path] = {}
    for spec in inputs:
        path = Path(spec).expanduser()
        if path.is_dir():
            found = _walk(path, recursive)
        elif path.is_file():
            found = [Picture(path, path.name)]
        elif glob.has_magic(str(spec)):
            base = _glob_base(str(spec))
            matches = sorted(glob.glob(str(spec), recursive=True))
            found = [Picture(Path(m), Path(m).relative_to(base).as_posix()) for m in matches
                     if Path(m).is_file() and Path(m).suffix.lower() in IMAGE_SUFFIXES]
        else:
            raise InstanceSegmentationError(f"{spec}: no such file, folder or matching pattern")
        for picture in found:
            if picture.name in owners:
                if owners[picture.name].resolve() == picture.source.resolve():
                    continue
                raise InstanceSegmentationError(
                    f"{picture.source}: would overwrite the outputs of {owners[picture.name]} (same name "
                    f"{picture.name!r}); process them into different output folders")
            owners[picture.name] = picture.source
            pictures.append(picture)
    if exclude is not None:
        excluded = Path(exclude).resolve()
        pictures = [p for p in pictures if not p.source.resolve().is_relative_to(excluded)]
    return pictures


def _walk(folder: Path, recursive: bool) -> list[Picture]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                source = Path(root) / name
                found.append(Picture(source, source.relative_to(folder).as_posix()))
    return found


def _glob_base(pattern: str) -> Path:
    """The leading folders of a glob pattern that hold no wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")
