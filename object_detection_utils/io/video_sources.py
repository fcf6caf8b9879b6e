"""Frame sources: cameras, video files and stream URLs as one small interface, watched for stalls and reopened
when a live one drops.

Every source gives RGB uint8 frames through `FrameSource`, so a camera, a file, a network stream or a test's
fake camera are used the same way. Live sources are watched: a read that gives no frame within the stall
timeout counts as a drop.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..errors import StreamDroppedError, VideoSourceError
from .video_backends import quiet_video_backends

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0  # for cameras and streams that do not report a frame rate
RECONNECT_ATTEMPTS = 3
RECONNECT_DELAY = 0.5  # seconds before the first reconnection attempt; doubles each time
STALL_TIMEOUT = 5.0  # seconds without a frame after which a live source counts as dropped
OPEN_TIMEOUT_FACTOR = 2  # opening a stream (connecting, probing its format) may take this many stall timeouts
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


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
        quiet_video_backends()
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
