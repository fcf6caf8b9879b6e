"""Pictures and outputs in remote storage (`s3://`, `gs://`, `hdfs://`, whatever pyarrow's filesystems reach).

`RemotePath` is the handful of `pathlib.Path` operations that the batch code uses on its files (`/`, `stat`,
`is_file`, `glob`, `unlink`, `write_bytes`, ...), so a remote picture or output folder goes through the same
`outputs`, `journal` and `run_files` code as a local one. An object store writes an object whole or not at
all, so `write_bytes` is atomic there without a temporary name.

Credentials and endpoints come from the usual environment variables (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` for an S3-compatible server, ...), or from
query parameters in the URI (`s3://bucket/photos?endpoint_override=host:9000&scheme=http`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple
from urllib.parse import urlsplit

import numpy as np

from ...errors import ImageReadError, InstanceSegmentationError
from ...io.images import IMAGE_SUFFIXES, read_image
from .inputs import Picture, find_pictures


def is_remote(location: str | os.PathLike) -> bool:
    """Whether `location` is a URI of a remote filesystem (`s3://...`), not a local path (`file://` is local)."""
    scheme = urlsplit(str(location)).scheme if "://" in str(location) else ""
    return scheme not in ("", "file")


def location(text: str) -> Path | RemotePath:
    """A command-line location: a `RemotePath` for a remote URI, else a local `Path` (`file://` stripped)."""
    if is_remote(text):
        return RemotePath.from_uri(text)
    return Path(text.removeprefix("file://"))


@functools.cache
def _filesystem(root: str):
    """One pyarrow filesystem per scheme, bucket and options, per process (its clients are reused)."""
    from pyarrow.fs import FileSystem

    return FileSystem.from_uri(root)[0]


class RemoteStat(NamedTuple):
    st_size: int
    st_mtime_ns: int


@dataclass(frozen=True)
class RemotePath:
    """A file or folder in a pyarrow filesystem: `root` (`s3://bucket?options`) and `path` (`bucket/key`).

    `size` and `mtime_ns` are those of a listing, kept so that a picture is not asked for them again. A
    folder made by `listed` knows every file under it, and answers `is_file` for them without a request.
    """

    root: str
    path: str
    size: int | None = field(default=None, compare=False)
    mtime_ns: int | None = field(default=None, compare=False)
    _listing: frozenset[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_uri(cls, uri: str) -> RemotePath:
        from pyarrow.fs import FileSystem

        parts = urlsplit(uri)
        try:
            path = FileSystem.from_uri(uri)[1]
        except (ValueError, OSError) as error:  # ArrowInvalid (a ValueError): unknown scheme, bad options
            raise InstanceSegmentationError(f"{uri}: cannot open this location ({error})") from None
        root = f"{parts.scheme}://{parts.netloc}" + (f"?{parts.query}" if parts.query else "")
        return cls(root, path.rstrip("/"))

    @property
    def filesystem(self):
        return _filesystem(self.root)

    def __str__(self) -> str:
        parts = urlsplit(self.root)
        return f"{parts.scheme}://{self.path}"

    def __truediv__(self, relative: str | os.PathLike) -> RemotePath:
        return RemotePath(self.root, f"{self.path}/{PurePosixPath(relative).as_posix()}".strip("/"),
                          _listing=self._listing)

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.path).suffix

    @property
    def parent(self) -> RemotePath:
        return RemotePath(self.root, str(PurePosixPath(self.path).parent), _listing=self._listing)

    def relative_to(self, other: RemotePath) -> PurePosixPath:
        return PurePosixPath(self.path).relative_to(other.path)

    def stat(self) -> RemoteStat:
        """Size and modification time, as `Path.stat` names them; FileNotFoundError when there is no such file."""
        if self.size is not None and self.mtime_ns is not None:
            return RemoteStat(self.size, self.mtime_ns)
        info = self.filesystem.get_file_info(self.path)
        if info.type.name != "File":
            raise FileNotFoundError(2, "no such file", str(self))
        return RemoteStat(info.size, info.mtime_ns or 0)

    def is_file(self) -> bool:
        if self._listing is not None:
            return self.path in self._listing
        return self.filesystem.get_file_info(self.path).type.name == "File"

    def is_dir(self) -> bool:
        return self.filesystem.get_file_info(self.path).type.name == "Directory"

    def files(self, recursive: bool = True) -> list[RemotePath]:
        """The files under this folder, with their size and modification time, sorted by path."""
        from pyarrow.fs import FileSelector

        infos = self.filesystem.get_file_info(FileSelector(self.path, recursive=recursive, allow_not_found=True))
        return sorted((RemotePath(self.root, info.path, info.size, info.mtime_ns or 0)
                       for info in infos if info.type.name == "File"), key=lambda p: p.path)

    def listed(self) -> RemotePath:
        """This folder, knowing the files under it now (one listing instead of one request per `is_file`)."""
        return RemotePath(self.root, self.path, _listing=frozenset(p.path for p in self.files()))

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        """The files directly in this folder whose name matches `pattern` (`*.png`)."""
        return (p for p in self.files(recursive=False) if fnmatch.fnmatchcase(p.name, pattern))

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.filesystem.delete_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def read_bytes(self) -> bytes:
        with self.filesystem.open_input_stream(self.path) as stream:
            return stream.read()

    def write_bytes(self, data: bytes) -> None:
        """Write the whole object in one go: an object store shows it whole or not at all."""
        with self.filesystem.open_output_stream(self.path) as stream:
            stream.write(data)

    def download(self, target: Path) -> None:
        with self.filesystem.open_input_stream(self.path) as stream, target.open("wb") as file:
            shutil.copyfileobj(stream, file, 1 << 20)

    def upload(self, source: Path) -> None:
        with source.open("rb") as file, self.filesystem.open_output_stream(self.path) as stream:
            shutil.copyfileobj(file, stream, 1 << 20)


def find_remote_pictures(folder: RemotePath, recursive: bool = False) -> list[Picture]:
    """The pictures in a remote folder (with `recursive`, its subfolders' too), named relative to it, sorted;
    or the one picture a remote file URI names. Hidden files and folders are left out, as locally."""
    info = folder.filesystem.get_file_info(folder.path)
    if info.type.name == "File":
        return [Picture(RemotePath(folder.root, folder.path, info.size, info.mtime_ns or 0), folder.name)]
    if info.type.name != "Directory" and not folder.files(recursive=False):  # S3 has no empty folders
        raise InstanceSegmentationError(f"{folder}: no such file or folder")
    pictures = []
    for file in folder.files(recursive=recursive):
        relative = file.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or relative.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        pictures.append(Picture(file, relative.as_posix()))
    return pictures


def find_pictures_anywhere(
    inputs: Sequence[str], recursive: bool = False, exclude: Path | RemotePath | None = None
) -> list[Picture]:
    """`find_pictures` for local inputs and `find_remote_pictures` for remote ones, in the order given; two
    different files that would take the same output name are refused, as locally."""
    pictures: list[Picture] = []
    owners: dict[str, str] = {}
    for spec in inputs:
        if is_remote(spec):
            found = find_remote_pictures(RemotePath.from_uri(spec), recursive)
            if isinstance(exclude, RemotePath):  # the output folder, when it lies within an input
                found = [p for p in found if not _within(p.source, exclude)]
        else:
            found = find_pictures([spec], recursive, exclude if isinstance(exclude, Path) else None)
        for picture in found:
            if picture.name in owners:
                if owners[picture.name] == str(picture.source):
                    continue
                raise InstanceSegmentationError(
                    f"{picture.source}: would overwrite the outputs of {owners[picture.name]} (same name "
                    f"{picture.name!r}); process them into different output folders")
            owners[picture.name] = str(picture.source)
            pictures.append(picture)
    return pictures


def _within(path: RemotePath, folder: RemotePath) -> bool:
    return path.root == folder.root and f"{path.path}/".startswith(f"{folder.path}/")


def read_picture(source: Path | RemotePath, max_pixels: int) -> np.ndarray:
    """`read_image` of a local or remote picture; a remote one is fetched into a temporary file first, and its
    errors name the URI."""
    if isinstance(source, Path):
        return read_image(source, max_pixels)
    with tempfile.TemporaryDirectory(prefix="instance-segmentation-") as folder:
        local = Path(folder) / (source.name or "picture")
        try:
            source.download(local)
        except FileNotFoundError:
            raise ImageReadError(f"{source}: no such file") from None
        except OSError as error:
            raise ImageReadError(f"{source}: cannot fetch ({error})") from None
        try:
            return read_image(local, max_pixels)
        except ImageReadError as error:
            raise ImageReadError(str(error).replace(str(local), str(source))) from None


@contextlib.contextmanager
def written_locally(path: Path | RemotePath, download: bool = False) -> Iterator[Path]:
    """A local path standing for `path`: `path` itself when local; for a remote file a temporary file
    (holding its current content with `download`, when there is one) that is uploaded when the block ends,
    whether or not it ended with an error, so that what was written there is kept."""
    if isinstance(path, Path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="instance-segmentation-") as folder:
        local = Path(folder) / path.name
        if download and path.is_file():
            path.download(local)
        try:
            yield local
        finally:
            if local.is_file():
                path.upload(local)
