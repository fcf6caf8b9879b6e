"""A newest-frame reader: a live source read on its own thread, keeping only the frame that arrived last."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from .video_sources import Frame, FrameSource


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
