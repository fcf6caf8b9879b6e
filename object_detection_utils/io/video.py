"""Video in and out: frame sources (camera, file, stream URL), a newest-frame reader thread, and writers.

Every source gives RGB uint8 frames through one small interface (`FrameSource`), so a camera, a file, a
network stream or a test's fake camera are used the same way. Live sources are watched: a read that gives no
frame within the stall timeout counts as a drop. Writers write under a temporary name and rename on close,
once the file is checked whole, so an output path only ever holds a finished file.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from ..errors import StreamDroppedError, VideoSourceError, VideoWriteError
from . import atomic
from .atomic import atomic_file, atomic_path

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0  # for cameras and streams that do not report a frame rate
RECONNECT_ATTEMPTS = 3
RECONNECT_DELAY = 0.5  # seconds before the first reconnection attempt; doubles each time
STALL_TIMEOUT = 5.0  # seconds without a frame after which a live source counts as dropped
OPEN_TIMEOUT_FACTOR = 2  # opening a stream (connecting, probing its format) may take this many stall timeouts
PROBE_BYTES = 1 << 20  # written to a failed video's temporary file to learn why writing fails
# Output containers OpenCV's FFmpeg backend writes, with a codec every build has.
FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


@functools.cache
def _quiet_video_backends() -> None:
    """Silence FFmpeg's and OpenCV's own messages about bad input: our errors say what went wrong.

    Called before the first capture or writer, not at import. FFmpeg's level can only be set through
    OPENCV_FFMPEG_LOGLEVEL, which OpenCV reads once, when its FFmpeg back-end first starts; OpenCV's own
    level is set at run time. Levels the user set in the environment are kept.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


@dataclass(frozen=True)
class Frame:
    """One picture of a source: its position, when it was read, and the RGB pixels."""

    index: int  # 0-based position in the source (frames skipped by a newest-frame reader still count)
    image: np.ndarray  # (H, W, 3) uint8 RGB
    captured_at: float  # time.monotonic() when the frame was read


class FrameSource(Protocol):
    """What the video code needs of a camera, file or stream."""

    name: str  # for messages: "camera 0", the file path, the URL
    live: bool  # True for cameras and streams: frames keep coming and are dropped when not read in time
    fps: float  # frames per second (DEFAULT_FPS when the source does not say)
    frame_count: int | None  # frames in a file, None for a live source or when unknown

    def read(self) -> np.ndarray | None:
        """The next (H, W, 3) RGB frame; None at the end of a file or when a live source stops."""

    def close(self) -> None:
        """Release the device or file; safe to call twice."""


class CaptureSource:
    """A `FrameSource` over `cv2.VideoCapture`: camera index, video file or stream URL.

    With `stall_timeout`, a stream's open and reads give up after that long (2x for the open, which probes
    the format) through the back-end's own timeouts (FFmpeg, GStreamer), so a stalled connection is closed
    rather than held; cameras and files take no timeouts (back-ends that do not know them refuse to open).
    """

    def __init__(self, target: int | str, name: str, live: bool, stall_timeout: float | None = None) -> None:
        self.name = name
        self.live = live
        _quiet_video_backends()
        if stall_timeout is None:
            self._capture = cv2.VideoCapture(target)
        else:
            self._capture = cv2.VideoCapture(target, cv2.CAP_ANY, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, round(1000 * OPEN_TIMEOUT_FACTOR * stall_timeout),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC, round(1000 * stall_timeout),
            ])
        if not self._capture.isOpened():
            self._capture.release()
            if isinstance(target, int):
                raise VideoSourceError(f"camera {target}: no camera at that index (or it is in use)")
            if live:
                raise VideoSourceError(f"{name}: cannot open stream (unreachable, refused or not a video stream)")
            raise VideoSourceError(f"{name}: not a readable video (unknown format or damaged file)")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if 0 < fps < 1000 else DEFAULT_FPS
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 and not live else None

    def read(self) -> np.ndarray | None:
        if self._capture is None:
            return None
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            return None
        if bgr.ndim == 2:
            return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def parse_source(spec: str | int) -> int | str:
    """A camera index for digits ("0", "2"), else the text as given (a file path or stream URL)."""
    text = str(spec).strip()
    return int(text) if text.isdigit() else text


def is_stream_url(spec: str | int) -> bool:
    return isinstance(spec, str) and spec.lower().startswith(STREAM_SCHEMES)


def open_source(spec: str | int, stall_timeout: float | None = STALL_TIMEOUT) -> FrameSource:
    """Open a camera index, a video file or a stream URL (RTSP/HTTP/...) as a `FrameSource`.

    A stream's open and reads end after `stall_timeout` seconds without data (see `CaptureSource`).
    Raises `VideoSourceError` with one line naming the source: no camera at that index, no such file,
    unreadable video, unreachable stream.
    """
    target = parse_source(spec)
    if isinstance(target, int):
        return CaptureSource(target, f"camera {target}", live=True)
    if is_stream_url(target):
        return CaptureSource(target, target, live=True, stall_timeout=stall_timeout)
    path = Path(target).expanduser()
    if not path.exists():
        raise VideoSourceError(f"{path}: no such video file (for a camera give its index, e.g. --source 0)")
    if path.is_dir():
        raise VideoSourceError(f"{path}: is a folder, not a video file")
    if path.stat().st_size == 0:
        raise VideoSourceError(f"{path}: empty file (0 bytes)")
    return CaptureSource(str(path), str(path), live=False)


class WatchedSource:
    """A live source whose reads give up after `timeout` seconds without a frame.

    Each read runs on a helper thread. When one outlasts the timeout, `read` returns None, `stalled` is set
    and the source is abandoned: a blocked read cannot be interrupted, so the helper thread (a daemon, it
    never keeps the program alive) closes the inner source when that read returns, if it ever does.
    """

    def __init__(self, source: FrameSource, timeout: float) -> None:
        self.name, self.live, self.fps, self.frame_count = source.name, source.live, source.fps, source.frame_count
        self.timeout = timeout
        self.stalled = False
        self._source = source
        self._closed = False
        self._requests: queue.SimpleQueue[bool] = queue.SimpleQueue()  # True: read a frame; False: close
        self._results: queue.SimpleQueue[tuple[np.ndarray | None, BaseException | None]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=f"reads from {source.name}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while self._requests.get():
                try:
                    self._results.put((self._source.read(), None))
                except BaseException as error:  # handed to the caller of `read`
                    self._results.put((None, error))
        finally:
            self._source.close()

    def read(self) -> np.ndarray | None:
        if self._closed:
            return None
        self._requests.put(True)
        try:
            image, error = self._results.get(timeout=self.timeout)
        except queue.Empty:
            self.stalled = True
            self.close()
            return None
        if error is not None:
            raise error
        return image

    def close(self) -> None:
        """Close the inner source; after a stall, only once its blocked read returns."""
        if self._closed:
            return
        self._closed = True
        self._requests.put(False)
        if not self.stalled:  # the helper is idle: it closes the source at once
            self._thread.join()


class ReconnectingSource:
    """A live source that reopens itself when it stops delivering frames.

    A read that gives nothing, or no frame within `stall_timeout` seconds (see `WatchedSource`), is a drop:
    the source is closed and reopened up to `attempts` times, waiting `delay` seconds before the first
    attempt and twice as long before each next one. If none delivers a frame, `read` raises
    `StreamDroppedError` naming the source and, for a stall, the timeout.
    """

    def __init__(
        self,
        opener: Callable[[], FrameSource],
        attempts: int = RECONNECT_ATTEMPTS,
        delay: float = RECONNECT_DELAY,
        stall_timeout: float | None = STALL_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._opener = opener
        self.stall_timeout = stall_timeout
        self._source: FrameSource | None = self._open()
        self.name = self._source.name
        self.live = self._source.live
        self.fps = self._source.fps
        self.frame_count = self._source.frame_count
        self.attempts = attempts
        self.delay = delay
        self.reconnections = 0  # successful reconnections so far
        self._sleep = sleep

    def _open(self) -> FrameSource:
        source = self._opener()
        return source if self.stall_timeout is None else WatchedSource(source, self.stall_timeout)

    def _no_frame(self) -> str:
        """Why the last read gave nothing: a stall (no frame within the timeout) or the source's end."""
        if isinstance(self._source, WatchedSource) and self._source.stalled:
            return f"no frame for {self.stall_timeout:g} s"
        return "no frame"

    def read(self) -> np.ndarray | None:
        frame = self._source.read() if self._source is not None else None
        if frame is not None:
            return frame
        reason = self._no_frame()
        dropped = "stream dropped" if reason == "no frame" else f"stream dropped ({reason})"
        last_problem = "no frame"
        for attempt in range(1, self.attempts + 1):
            self._close_inner()
            self._sleep(self.delay * 2 ** (attempt - 1))
            log.warning("%s: %s, reconnecting (attempt %d of %d)", self.name, dropped, attempt, self.attempts)
            try:
                self._source = self._open()
            except VideoSourceError as error:
                last_problem = str(error)
                continue
            frame = self._source.read()
            if frame is not None:
                self.reconnections += 1
                return frame
            last_problem = f"reopened but {self._no_frame()}"
        self._close_inner()
        if not self.attempts:
            raise StreamDroppedError(f"{self.name}: {dropped}")
        raise StreamDroppedError(
            f"{self.name}: {dropped} and {self.attempts} reconnection attempts failed ({last_problem})"
        )

    def _close_inner(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None

    def close(self) -> None:
        self._close_inner()


def open_video_source(
    spec: str | int,
    attempts: int = RECONNECT_ATTEMPTS,
    delay: float = RECONNECT_DELAY,
    stall_timeout: float | None = STALL_TIMEOUT,
) -> FrameSource:
    """`open_source`, with cameras and streams wrapped to reconnect a few times when they drop or stall
    (no frame for `stall_timeout` seconds; None waits for ever)."""
    source = open_source(spec, stall_timeout=stall_timeout)
    if not source.live:
        return source
    first = [source]

    def reopen() -> FrameSource:
        return first.pop() if first else open_source(spec, stall_timeout=stall_timeout)

    return ReconnectingSource(reopen, attempts=attempts, delay=delay, stall_timeout=stall_timeout)


def iter_frames(source: FrameSource) -> Iterator[Frame]:
    """Every frame of `source` in order, until it ends (for offline work on a file)."""
    index = 0
    while True:
        image = source.read()
        if image is None:
            return
        yield Frame(index, image, time.monotonic())
        index += 1


class LatestFrameReader:
    """Reads a source on its own thread and keeps only the newest frame.

    The consumer asks for a frame when it is ready for one and gets the newest that has arrived; the
    frames in between are dropped. Nothing queues up, so what the consumer sees is never older than the
    time it spent on its last frame, and memory stays at one frame however slow the consumer is.
    With `pace_fps` the thread reads no faster than that rate (a file played back as if it were live).
    The source is closed by the thread when it ends or when `stop` is called.
    """

    def __init__(self, source: FrameSource, pace_fps: float | None = None) -> None:
        self.source = source
        self.pace_fps = pace_fps
        self.frames_read = 0
        self._latest: Frame | None = None
        self._ended = False
        self._error: BaseException | None = None
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"frames from {source.name}", daemon=True)

    def start(self) -> LatestFrameReader:
        self._thread.start()
        return self

    def _run(self) -> None:
        start = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.pace_fps:
                    wait = start + self.frames_read / self.pace_fps - time.monotonic()
                    if wait > 0 and self._stop.wait(wait):
                        break
                image = self.source.read()
                if image is None:
                    break
                frame = Frame(self.frames_read, image, time.monotonic())
                with self._condition:
                    self._latest = frame  # the previous frame, if nobody took it, is dropped here
                    self.frames_read += 1
                    self._condition.notify_all()
        except BaseException as error:  # handed to the consumer, who reports it
            self._error = error
        finally:
            self.source.close()
            with self._condition:
                self._ended = True
                self._condition.notify_all()

    def next_frame(self, newer_than: int = -1, timeout: float | None = None) -> Frame | None:
        """The newest frame with an index above `newer_than`, waiting for one to arrive.

        Returns None when the source has ended (or `timeout` seconds passed); re-raises the source's error
        (e.g. `StreamDroppedError`) once the frames before it have been taken.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while True:
                frame = self._latest
                if frame is not None and frame.index > newer_than:
                    self._latest = None  # the consumer owns it now; keep no second reference
                    return frame
                if self._ended:
                    if self._error is not None:
                        raise self._error
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._condition.wait(remaining)

    def frames(self) -> Iterator[Frame]:
        """The newest frame each time the consumer asks, until the source ends."""
        last = -1
        while (frame := self.next_frame(newer_than=last)) is not None:
            last = frame.index
            yield frame

    @property
    def running(self) -> bool:
        """True while the thread is reading (it owns the source until it ends)."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading and wait for the thread to close the source.

        A read blocked in the device or network may outlast `timeout`; the thread then closes the source
        itself when that read returns (it is a daemon thread, so it never keeps the program alive).
        """
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> LatestFrameReader:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


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
        _quiet_video_backends()
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

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class JsonLinesSink:
    """Writes one JSON object per line to a temporary file, renamed to `path` on `close`.

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

    def write(self, record: dict[str, Any]) -> None:
        try:
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        except OSError as error:
            self.abort()
            raise VideoWriteError(f"{self.path}: {_reason(error)}") from None
        self.lines_written += 1

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

    def __enter__(self) -> JsonLinesSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_writable(path: str | Path) -> None:
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
