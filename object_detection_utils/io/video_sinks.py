"""Video outputs: a video file and a JSON-lines file, each written under a temporary name and renamed on close,
once the file is checked whole, so an output path only ever holds a finished file.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Self

import cv2
import numpy as np

from ..errors import VideoWriteError
from . import atomic
from .atomic import atomic_file, atomic_path
from .video_backends import quiet_video_backends

PROBE_BYTES = 1 << 20  # written to a failed video's temporary file to learn why writing fails
# Output containers OpenCV's FFmpeg backend writes, with a codec every build has.
FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class VideoSink:
    """Writes RGB frames to a video file at a frame rate; the file appears under its name only on `close`.

    The writer opens on the first frame, so the video has that frame's size. `.mp4`/`.m4v`/`.mov` use
    MPEG-4 (mp4v), `.avi`/`.mkv` Motion-JPEG: codecs every OpenCV build can write. A frame the encoder cannot
    write (a full disk, a file size limit) or a finished file that does not hold every frame raises
    `VideoWriteError` naming the file and the cause; what was written is then dropped, never left half
    written under the name.
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC_BY_SUFFIX:
            raise VideoWriteError(
                f"{self.path}: unsupported video type {self.path.suffix!r} (use {', '.join(FOURCC_BY_SUFFIX)})"
            )
        self.fourcc = FOURCC_BY_SUFFIX[suffix]
        self.fps = float(fps)
        self.size: tuple[int, int] | None = None  # (width, height)
        self.frames_written = 0  # frames in the file (0 once it is dropped)
        self._writer: cv2.VideoWriter | None = None
        self._tmp: Path | None = None  # the file the writer fills until close
        self._output: contextlib.ExitStack | None = None  # holds the atomic_path of `_tmp` until close

    def write(self, image: np.ndarray, repeat: int = 1) -> None:
        """Append an (H, W, 3) RGB frame `repeat` times."""
        height, width = image.shape[:2]
        if self._writer is None:
            self._open(width, height)
        elif (width, height) != self.size:
            raise VideoWriteError(f"{self.path}: frame size changed from {self.size} to {(width, height)}")
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        for _ in range(repeat):
            if self._writer.write(bgr) is False:  # OpenCV 5 says when a frame fails; 4.x returns None
                self._fail()
        self.frames_written += repeat

    def _open(self, width: int, height: int) -> None:
        quiet_video_backends()
        with contextlib.ExitStack() as output:
            try:
                tmp = output.enter_context(atomic_path(self.path, keep_suffix=True))
            except OSError as error:
                raise VideoWriteError(f"{self.path}: {_reason(error)}") from None
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (width, height))
            if not writer.isOpened():
                raise VideoWriteError(f"{self.path}: cannot write {self.fourcc} video of {width}x{height}")
            self._output = output.pop_all()
        self._writer = writer
        self._tmp = tmp
        self.size = (width, height)

    def _fail(self) -> None:
        """Drop the file and raise why writing it fails, asked of the system (the encoder does not say)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        reason = _reason_writes_fail(self._tmp)
        self.abort()
        raise VideoWriteError(f"{self.path}: {reason}")

    def close(self) -> None:
        """Finish the file, check it holds every frame, and move it into place (nothing is created when no
        frame was written)."""
        if self._writer is not None:
            self._writer.release()  # writes the index (mp4's moov): the encoder does not say if that fails
            self._writer = None
            if _frames_in(self._tmp) != self.frames_written:
                self._fail()
            self._output.close()
            self._output = None

    def abort(self) -> None:
        """Drop what was written; the output path is left as it was."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._output is not None:
            _discard(self._output)
            self._output = None
            self.frames_written = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class TextLinesSink:
    """Writes lines of text to a temporary file, renamed to `path` on `close`.

    A write or close the system refuses (a full disk) raises `VideoWriteError` naming the file and the cause,
    and drops the temporary file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._output = contextlib.ExitStack()  # holds the atomic_file until close
        try:
            self._file = self._output.enter_context(atomic_file(self.path, "w"))
        except OSError as error:
            raise VideoWriteError(f"{self.path}: {_reason(error)}") from None
        self.lines_written = 0  # lines in the file (0 once it is dropped)

    def write_lines(self, lines: list[str]) -> None:
        """Append `lines` (without their line ends)."""
        try:
            self._file.write("".join(line + "\n" for line in lines))
        except OSError as error:
            self.abort()
            raise VideoWriteError(f"{self.path}: {_reason(error)}") from None
        self.lines_written += len(lines)

    def close(self) -> None:
        if not self._file.closed:
            try:
                self._output.close()  # atomic_file removes the temporary file when the final flush fails
            except OSError as error:
                self.lines_written = 0
                raise VideoWriteError(f"{self.path}: {_reason(error)}") from None

    def abort(self) -> None:
        if not self._file.closed:
            _discard(self._output)
            self.lines_written = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class JsonLinesSink(TextLinesSink):
    """Writes one JSON object per line, as `TextLinesSink` writes lines."""

    def write(self, record: dict[str, Any]) -> None:
        self.write_lines([json.dumps(record, separators=(",", ":"))])


def check_output_file(path: str | Path) -> None:
    """Raise `VideoWriteError` now if no file can be created beside `path` (a read-only or missing-permission
    folder), so a run fails before its slow start rather than at its first frame."""
    try:
        atomic.check_writable(Path(path).parent)
    except OSError as error:
        raise VideoWriteError(f"{path}: cannot write there ({_reason(error)})") from None


def _reason(error: OSError) -> str:
    """The system's words for a failed write, as in "no space left on device"."""
    return (error.strerror or str(error)).lower()


def _reason_writes_fail(path: Path) -> str:
    """Why writing to `path` fails now: the encoder gives no reason, so append a block and let the system say."""
    try:
        with path.open("ab") as file:  # closing flushes: errors reported late (NFS) surface too
            file.write(bytes(PROBE_BYTES))
    except OSError as error:
        return _reason(error)
    return "the video encoder could not write it"


def _frames_in(path: Path) -> int:
    """How many frames a finished video file holds, as its container says (-1 when it cannot be opened)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else -1
    finally:
        capture.release()


def _discard(output: contextlib.ExitStack) -> None:
    """Leave a held `atomic_file`/`atomic_path` as a failed block would: the temporary file is removed and
    the destination left as it was (a second failure while closing, as on a full disk, changes nothing)."""
    error = VideoWriteError("output discarded")
    with contextlib.suppress(OSError):
        output.__exit__(type(error), error, None)
