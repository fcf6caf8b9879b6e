"""Segmenting video: frames in, drawn frames out to a window, a video file and per-frame COCO JSON lines.

Two ways to take frames from a source:
- newest frame (live): a reader thread keeps only the newest frame; each inference takes whatever is newest
  when it starts, so the picture shown lags the camera by at most one inference and nothing piles up.
- every frame (offline, files only): each frame in order, none skipped.

Ctrl+C interrupts reading and inference at once; while a frame's outputs are written, and while the outputs
are finished, it waits for them, so the video and the JSON lines hold the same frames and are never left
half-written.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..detections import TRACK_ID, Detections
from ..errors import TrackingInputError, VideoSourceError, VideoWriteError
from ..io.frame_reader import LatestFrameReader
from ..io.video_sinks import JsonLinesSink, TextLinesSink, VideoSink
from ..io.video_sources import Frame, FrameSource, iter_frames
from ..predictor import Segmenter
from ..tracking.mots import mots_lines
from ..visualization.display import Window, pump_events
from ..visualization.drawing import draw_caption, draw_detections
from .interrupts import DeferredInterrupt
from .video_tracking import TrackingOptions, VideoTracking

FPS_SMOOTHING = 0.2  # weight of the newest frame in the displayed frames-per-second


@dataclass(frozen=True)
class SegmentedFrame:
    """One processed frame: what was found, the drawn picture, and when each step happened."""

    frame: Frame
    detections: Detections
    picture: np.ndarray  # the frame with detections and the status line drawn on it
    started_at: float  # time.monotonic() when inference on this frame began
    inference_seconds: float  # model call and post-processing
    fps: float  # processed frames per second, smoothed


@dataclass(frozen=True)
class VideoOptions:
    """How a video run takes frames, what it writes and when it stops (the filters are the `Segmenter`'s)."""

    every_frame: bool = False  # each frame of a file in order, instead of the newest one (live)
    output: str | Path | None = None  # the segmented video
    json_lines: str | Path | None = None  # one line of COCO results per segmented frame
    max_frames: int | None = None  # stop after segmenting this many frames
    progress: bool = True  # a progress bar
    tracking: TrackingOptions | None = None  # track instances (ids, colours by track) and count
    mots: str | Path | None = None  # MOTS text of the tracks (with tracking)


@dataclass
class VideoRunSummary:
    """What a run did: frames read and processed, why it stopped, speed and display latency."""

    source: str
    frames_read: int = 0
    frames_processed: int = 0
    frames_written: int = 0
    json_lines_written: int = 0
    mots_lines_written: int = 0
    counts: list[str] = field(default_factory=list)  # one line per counting line and zone, when tracking
    seconds: float = 0.0
    stop_reason: str = ""
    error: str | None = None  # the one-line error when the source or an output failed mid-way
    inference_seconds: list[float] = field(default_factory=list, repr=False)
    latencies: list[float] = field(default_factory=list, repr=False)  # capture -> shown, per processed frame

    @property
    def fps(self) -> float:
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        """One line: frames, fps, inference time, display latency, why it stopped."""
        parts = [f"{self.source}: {self.frames_processed} frames segmented of {self.frames_read} read"]
        if self.frames_processed:
            parts.append(f"{self.fps:.2f} fps")
            parts.append(f"inference {1000 * statistics.mean(self.inference_seconds):.0f} ms/frame")
            parts.append(f"latency {1000 * statistics.mean(self.latencies):.0f} ms mean, "
                         f"{1000 * max(self.latencies):.0f} ms max")
        parts.append(f"stopped: {self.stop_reason}")
        return "; ".join(parts)


def segment_frames(segmenter: Segmenter, frames: Iterable[Frame],
                   tracking: VideoTracking | None = None) -> Iterator[SegmentedFrame]:
    """Segment each frame as it is taken from `frames`, drawing masks (coloured by class) and an fps line.

    With `tracking`, only instances of confirmed tracks are kept, with their `data["track_id"]`, coloured by
    track, with the counting lines and zones drawn; a frame's index is its time, so frames skipped by a
    newest-frame reader are a gap in time, not misses. Frames are pulled one at a time, only when the previous
    one is done: with a newest-frame reader this is what makes each inference start on the newest frame.
    """
    fps = 0.0
    last_started: float | None = None
    for frame in frames:
        started = time.monotonic()
        detections = segmenter(frame.image)
        inference = time.monotonic() - started
        interval = inference if last_started is None else started - last_started
        if interval > 0:
            fps = 1.0 / interval if last_started is None else (1 - FPS_SMOOTHING) * fps + FPS_SMOOTHING / interval
        last_started = started
        if tracking is not None:
            detections = tracking.track(frame.index, detections)
            picture = tracking.draw(draw_detections(frame.image, detections, color_by="track"))
        else:
            picture = draw_detections(frame.image, detections, color_by="class")
        # bottom left: boxes touching the top edge put their labels at the top
        picture = draw_caption(picture, f"{fps:.1f} fps  inference {1000 * inference:.0f} ms", (0, picture.shape[0]))
        yield SegmentedFrame(frame, detections, picture, started, inference, fps)


def frame_record(result: SegmentedFrame, fps: float) -> dict:
    """The JSON line of one frame: its index, time in the video, size, and COCO results (image_id = index), each
    with its `track_id` when tracked."""
    height, width = result.frame.image.shape[:2]
    results = result.detections.to_coco(image_id=result.frame.index)
    if TRACK_ID in result.detections.data:
        for entry, track_id in zip(results, result.detections.data[TRACK_ID]):
            entry[TRACK_ID] = int(track_id)
    return {
        "frame": result.frame.index,
        "time": round(result.frame.index / fps, 4),
        "height": height,
        "width": width,
        "inference_ms": round(1000 * result.inference_seconds, 1),
        "results": results,
    }


def segment_video(
    segmenter: Segmenter,
    source: FrameSource,
    options: VideoOptions = VideoOptions(),
    window: Window | None = None,
    on_frame: Callable[[SegmentedFrame, float], None] | None = None,
) -> VideoRunSummary:
    """Segment a source until it ends, the window is closed (q/Esc), Ctrl+C, or `options.max_frames` are processed.

    `options.every_frame` processes each frame of a file in order; otherwise a reader thread keeps only the newest
    frame (a file is then played at its own frame rate, as a camera would deliver it). The output video has
    the source's frame rate and duration: in newest-frame mode each segmented frame is repeated over the
    frames skipped after it. `on_frame(result, shown_at)` is called after each frame is shown and written.
    The source, reader thread, window and writers are released however the run ends. A source failing
    mid-way ends the run with `summary.error` set, and what was written up to then is kept; an output that
    cannot be written (a full disk) ends it the same way, that output is dropped and the other one kept.
    """
    every_frame, max_frames = options.every_frame, options.max_frames
    if every_frame and source.live:
        source.close()
        raise VideoSourceError(f"{source.name}: --every-frame is for video files; a live source drops frames")
    with DeferredInterrupt() as ctrl_c:
        summary = VideoRunSummary(source=source.name)
        reader = None if every_frame else LatestFrameReader(source, pace_fps=None if source.live else source.fps)
        sink: VideoSink | None = None
        lines: JsonLinesSink | None = None
        mots: TextLinesSink | None = None
        tracking = VideoTracking(options.tracking) if options.tracking is not None else None
        bad_input = False
        bar = tqdm(total=source.frame_count if every_frame else None, unit="frame", disable=not options.progress,
                   desc=Path(source.name).name if not source.live else source.name)
        start = time.monotonic()
        last_written: SegmentedFrame | None = None
        summary.stop_reason = "end of file" if not source.live else "source ended"
        try:
            sink = VideoSink(options.output, source.fps) if options.output else None
            lines = JsonLinesSink(options.json_lines) if options.json_lines else None
            mots = TextLinesSink(options.mots) if options.mots and tracking is not None else None
            results = segment_frames(segmenter, iter_frames(source) if reader is None else reader.start().frames(),
                                     tracking)
            while True:
                with ctrl_c.interruptible():
                    result = next(results, None)
                if result is None:
                    break
                if sink is not None:
                    if last_written is not None:  # cover the frames skipped since the previous one
                        sink.write(last_written.picture, repeat=result.frame.index - last_written.frame.index - 1)
                    sink.write(result.picture)
                last_written = result
                if lines is not None:
                    lines.write(frame_record(result, source.fps))
                if mots is not None:
                    mots.write_lines(mots_lines(result.frame.index, result.detections))
                summary.frames_processed += 1
                summary.inference_seconds.append(result.inference_seconds)
                if window is not None:
                    window.show(result.picture)
                    pump_events(0.001)
                shown_at = time.monotonic()
                summary.latencies.append(shown_at - result.frame.captured_at)
                bar.update(1 if reader is None else result.frame.index + 1 - bar.n)
                if on_frame is not None:
                    on_frame(result, shown_at)
                if window is not None and not window.is_open:
                    summary.stop_reason = "window closed"
                    break
                if max_frames is not None and summary.frames_processed >= max_frames:
                    summary.stop_reason = f"{max_frames} frames done"
                    break
        except KeyboardInterrupt:
            summary.stop_reason = "Ctrl+C"
        except VideoSourceError as error:
            summary.stop_reason = "source failed"
            summary.error = str(error)
        except VideoWriteError as error:
            summary.stop_reason = "output failed"
            summary.error = str(error)
        except TrackingInputError:
            bad_input = True  # nothing is kept: raised at the first frame, before anything is written
            raise
        finally:
            summary.seconds = time.monotonic() - start
            if reader is not None:
                reader.stop()
                summary.frames_read = reader.frames_read
            else:
                summary.frames_read = summary.frames_processed
            if reader is None or not reader.running:  # a running reader thread closes the source itself
                source.close()
            bar.close()
            if window is not None:
                window.close()
            for writer in (sink, lines, mots):
                if writer is None:
                    continue
                if bad_input:
                    writer.abort()
                    continue
                try:
                    writer.close()
                except VideoWriteError as error:
                    summary.stop_reason = "output failed"
                    summary.error = summary.error or str(error)
            summary.frames_written = sink.frames_written if sink is not None else 0
            summary.json_lines_written = lines.lines_written if lines is not None else 0
            summary.mots_lines_written = mots.lines_written if mots is not None else 0
            summary.counts = tracking.summary() if tracking is not None else []
    if summary.frames_read == 0 and summary.stop_reason == "end of file":
        summary.error = f"{source.name}: no frame could be decoded (damaged or unsupported video)"
    return summary
