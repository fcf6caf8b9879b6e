"""Video: sources, the newest-frame reader, writers, the segmenting loop and the webcam script, on the tiny model."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tiny_model

import instance_segmentation_webcam as webcam
from object_detection_utils import load_model
from object_detection_utils.apps import cli
from object_detection_utils.apps.video_segmentation import segment_video
from object_detection_utils.io.coco import decode_mask
from object_detection_utils.io.video import (
    JsonLinesSink,
    LatestFrameReader,
    ReconnectingSource,
    VideoSink,
    VideoSourceError,
    VideoWriteError,
    open_source,
    open_video_source,
)
from object_detection_utils.visualization import display
from object_detection_utils.visualization.drawing import draw_detections

HEIGHT, WIDTH = 48, 64
BRIGHT, DARK = 200, 40  # row 2 of the tiny model scores mean/255: 0.78 (kept) and 0.16 (dropped)


def make_video(path: Path, values: list[int], fps: float = 10.0, fourcc: str = "MJPG") -> Path:
    """A video of uniform grey frames, one per value, written with OpenCV."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (WIDTH, HEIGHT))
    assert writer.isOpened(), f"this OpenCV cannot write {fourcc} to {path.suffix}"
    for value in values:
        writer.write(np.full((HEIGHT, WIDTH, 3), value, np.uint8))
    writer.release()
    return path


def read_video(path: Path) -> tuple[list[np.ndarray], float, tuple[int, int]]:
    """All frames (BGR), the frame rate and (width, height) of a video file."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    fps = capture.get(cv2.CAP_PROP_FPS)
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps, size


class FakeCamera:
    """A live `FrameSource` whose frame i is captured at start + i * `period`, like a real camera's clock.

    A reader that falls behind gets the frames that were due meanwhile right away, one by one, as from a
    camera's buffer; `times[i]` is when frame i was captured. Ends after `frames` frames (never when None).
    """

    live = True
    fps = 100.0
    frame_count = None

    def __init__(self, frames: int | None = None, period: float = 0.0, name: str = "fake camera") -> None:
        self.name = name
        self.frames = frames
        self.period = period
        self.times: list[float] = []
        self.closed = False

    @property
    def delivered(self) -> int:
        return len(self.times)

    def read(self) -> np.ndarray | None:
        if self.closed or (self.frames is not None and self.delivered >= self.frames):
            return None
        now = time.monotonic()
        due = self.times[0] + self.delivered * self.period if self.times else now
        if due > now:
            time.sleep(due - now)
        self.times.append(due)
        return np.full((HEIGHT, WIDTH, 3), BRIGHT, np.uint8)

    def close(self) -> None:
        self.closed = True


class FakeWindow:
    """Stands in for display.Window: records what is shown, closes itself after `close_after` pictures."""

    def __init__(self, close_after: int) -> None:
        self.close_after = close_after
        self.shown: list[np.ndarray] = []
        self.is_open = True
        self.close_calls = 0

    def show(self, image: np.ndarray) -> None:
        self.shown.append(image)
        if len(self.shown) >= self.close_after:
            self.is_open = False

    def close(self) -> None:
        self.close_calls += 1
        self.is_open = False


@pytest.fixture(scope="module")
def tiny(tiny_frozen_dir):
    return load_model(tiny_frozen_dir)


def slow(model, seconds: float):
    """The same model, taking at least `seconds` per call: slower than the camera."""

    def run(images):
        time.sleep(seconds)
        return model._run(images)

    return dataclasses.replace(model, _run=run)


def no_part_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".part" in p.name]


# --- the script, every frame of a file ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix, fourcc", [(".avi", "MJPG"), (".mp4", "mp4v")])
def test_every_frame_writes_each_frame_with_masks_where_the_model_puts_them(
    tmp_path, tiny_frozen_dir, suffix, fourcc, capsys
):
    values = [BRIGHT, DARK] * 6
    clip = make_video(tmp_path / f"clip{suffix}", values, fps=12.0, fourcc=fourcc)
    out, lines = tmp_path / "out" / f"segmented{suffix}", tmp_path / "out" / "frames.jsonl"
    rc = webcam.main(["--source", str(clip), "--every-frame", "-o", str(out), "--json-lines", str(lines),
                      "--model", str(tiny_frozen_dir), "--no-display"])
    assert rc == 0
    frames, fps, size = read_video(out)
    assert len(frames) == len(values)
    assert fps == pytest.approx(12.0)
    assert size == (WIDTH, HEIGHT)
    assert no_part_files(out.parent)

    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(len(values)))
    assert [r["time"] for r in records] == pytest.approx([i / 12.0 for i in range(len(values))], abs=1e-4)
    for record, value in zip(records, values):
        assert (record["height"], record["width"]) == (HEIGHT, WIDTH)
        results = record["results"]
        expected_rows = [0, 1, 2] if value == BRIGHT else [0, 1]
        assert [r["category_id"] for r in results] == [int(tiny_model.CLASSES[row]) for row in expected_rows]
        assert all(r["image_id"] == record["frame"] for r in results)
        for result, row in zip(results, expected_rows):
            np.testing.assert_array_equal(decode_mask(result["segmentation"]),
                                          tiny_model.expected_full_mask(row, HEIGHT, WIDTH))
        if value == BRIGHT:  # row 2 scores the frame's mean brightness, through lossy compression
            assert results[2]["score"] == pytest.approx(BRIGHT / 255, abs=0.02)
    assert f"{len(values)} frames segmented of {len(values)} read" in capsys.readouterr().err


def test_drawn_frames_show_class_coloured_masks_and_the_status_line(tmp_path, tiny):
    clip = make_video(tmp_path / "clip.avi", [DARK] * 3)
    window = FakeWindow(close_after=99)
    results = []
    summary = segment_video(tiny, open_source(clip), every_frame=True, window=window, progress=False,
                            on_frame=lambda result, _: results.append(result))
    assert summary.frames_processed == 3 and summary.stop_reason == "end of file"
    assert len(window.shown) == 3 and window.close_calls == 1
    result = results[0]
    assert result.detections.class_ids.tolist() == [1, 18]
    masks = [tiny_model.expected_full_mask(row, HEIGHT, WIDTH) for row in (0, 1)]
    np.testing.assert_array_equal(result.detections.masks, np.stack(masks))
    picture = window.shown[0]
    assert picture is result.picture
    expected = draw_detections(result.frame.image, result.detections, color_by="class")
    differs = np.any(picture != expected, axis=2)
    rows = np.flatnonzero(differs.any(axis=1))
    assert rows.size and rows.min() >= HEIGHT - 20  # only the status line at the bottom differs from the drawing
    covered = (masks[0] | masks[1]) & ~differs
    assert np.abs(picture[covered].astype(int) - result.frame.image[covered]).max(axis=1).min() > 20


# --- newest-frame mode ---------------------------------------------------------------------------------------


def test_newest_frame_mode_never_shows_a_frame_older_than_one_inference(tiny):
    inference = 0.12
    camera = FakeCamera(period=0.005)  # 200 frames per second, far faster than the model
    seen = []
    summary = segment_video(slow(tiny, inference), camera, max_frames=6, progress=False,
                            on_frame=lambda result, shown_at: seen.append((result, shown_at)))
    assert summary.frames_processed == 6 and summary.stop_reason == "6 frames done"
    for result, shown_at in seen:
        assert result.inference_seconds >= inference
        captured = camera.times[result.frame.index]  # by the camera's clock, not when it was read
        # when inference started, the frame was the newest (at most about one camera period old) ...
        assert result.started_at - captured < 0.06
        # ... so what is shown is no older than the time spent on it
        assert shown_at - captured < (shown_at - result.started_at) + 0.06
        assert shown_at - captured < 1.6 * result.inference_seconds
    indices = [result.frame.index for result, _ in seen]
    assert min(np.diff(indices)) >= 5  # frames that arrived during an inference were skipped
    assert summary.frames_read > 5 * summary.frames_processed
    assert camera.closed


def test_reader_keeps_only_the_newest_frame(tiny):
    source = FakeCamera(frames=50)
    reader = LatestFrameReader(source).start()
    try:
        deadline = time.monotonic() + 10
        while source.delivered < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        frame = reader.next_frame()
        assert frame.index == 49  # the 49 older ones were dropped, not queued
        assert reader.next_frame(newer_than=49) is None  # the source ended
        assert reader.frames_read == 50
    finally:
        reader.stop()
    assert source.closed


def test_newest_frame_mode_on_a_file_keeps_its_frame_rate_and_duration(tmp_path, tiny):
    clip = make_video(tmp_path / "clip.avi", [BRIGHT] * 30, fps=25.0)
    out = tmp_path / "out.avi"
    indices = []
    summary = segment_video(slow(tiny, 0.1), open_source(clip), output=out, progress=False,
                            on_frame=lambda result, _: indices.append(result.frame.index))
    assert summary.stop_reason == "end of file" and summary.frames_read == 30
    assert summary.frames_processed < 30  # played at 25 fps, the model keeps up with one frame in ~3
    # each segmented frame stands in for the frames skipped after it: the video lasts as long as the source
    assert summary.frames_written == indices[-1] + 1
    frames, fps, size = read_video(out)
    assert len(frames) == summary.frames_written and fps == pytest.approx(25.0) and size == (WIDTH, HEIGHT)


# --- stopping: failures, window, Ctrl+C ----------------------------------------------------------------------


def test_camera_failing_midway_reconnects_a_few_times_then_stops_with_one_line(tmp_path, tiny):
    cameras, sleeps = [], []

    def opener():
        if cameras:
            raise VideoSourceError("fake camera: unplugged")
        cameras.append(FakeCamera(frames=5, period=0.01))
        return cameras[-1]

    source = ReconnectingSource(opener, attempts=3, delay=0.01, sleep=sleeps.append)
    out, lines = tmp_path / "out.avi", tmp_path / "out.jsonl"
    summary = segment_video(tiny, source, output=out, json_lines=lines, progress=False)
    assert summary.stop_reason == "source failed"
    assert summary.error == ("fake camera: stream dropped and 3 reconnection attempts failed "
                             "(fake camera: unplugged)")
    assert sleeps == [0.01, 0.02, 0.04]  # back-off doubles
    assert summary.frames_read == 5 and cameras[0].closed
    # what was segmented before the failure is kept, complete
    assert len(read_video(out)[0]) == summary.frames_written >= summary.frames_processed >= 1
    assert len(lines.read_text().splitlines()) == summary.frames_processed
    assert no_part_files(tmp_path)


def test_dropped_stream_that_comes_back_goes_on(tiny):
    opened, attempts = [], []

    def opener():
        attempts.append(len(attempts))
        if len(attempts) == 2:  # the first reconnection fails, the second works
            raise VideoSourceError("fake camera: not yet")
        if len(attempts) > 3:
            raise VideoSourceError("fake camera: gone")
        opened.append(FakeCamera(frames=4, period=0.005))
        return opened[-1]

    source = ReconnectingSource(opener, attempts=2, delay=0, sleep=lambda s: None)
    summary = segment_video(tiny, source, progress=False)
    assert source.reconnections == 1
    assert summary.frames_read == 8  # 4 before the drop, 4 after reconnecting
    assert summary.error.startswith("fake camera: stream dropped and 2 reconnection attempts failed")
    assert all(camera.closed for camera in opened)


def test_window_closed_and_ctrl_c_stop_cleanly_and_finish_the_files(tmp_path, tiny):
    window = FakeWindow(close_after=3)
    camera = FakeCamera(period=0.002)
    out = tmp_path / "window.avi"
    summary = segment_video(tiny, camera, window=window, output=out, progress=False)
    assert summary.stop_reason == "window closed" and summary.frames_processed == 3
    assert camera.closed and window.close_calls == 1 and out.is_file()

    def press_ctrl_c(result, _):
        if result.frame.index >= 2:
            raise KeyboardInterrupt

    clip = make_video(tmp_path / "clip.avi", [BRIGHT] * 10)
    out = tmp_path / "interrupted.avi"
    summary = segment_video(tiny, open_source(clip), every_frame=True, output=out, on_frame=press_ctrl_c,
                            progress=False)
    assert summary.stop_reason == "Ctrl+C" and summary.error is None
    assert len(read_video(out)[0]) == 3 and no_part_files(tmp_path)


@pytest.mark.parametrize("key", ["q", "escape"])
def test_pressing_q_or_esc_in_the_real_window_stops_the_run(tiny, key):
    from matplotlib.backend_bases import KeyEvent

    window = display.Window("video test")
    camera = FakeCamera(period=0.002)

    def press_key_at_third_frame(result, _):
        if len(shown) == 2:
            window.figure.canvas.callbacks.process("key_press_event", KeyEvent("key", window.figure.canvas, key))
        shown.append(result.frame.index)

    shown: list[int] = []
    summary = segment_video(tiny, camera, window=window, on_frame=press_key_at_third_frame, progress=False)
    assert summary.stop_reason == "window closed" and summary.frames_processed == 3
    assert not window.is_open and camera.closed
    assert window._artist.get_array().shape == (HEIGHT, WIDTH, 3)  # the segmented frames were shown


def test_stream_url_is_read_and_a_dead_server_ends_it_with_a_message(tmp_path, tiny):
    make_video(tmp_path / "clip.avi", [BRIGHT] * 8, fps=20.0)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
    try:
        source = open_video_source(url, attempts=2, delay=0.01)
        assert source.live and source.name == url
    finally:
        server.shutdown()
        server.server_close()
    summary = segment_video(tiny, source, progress=False)
    assert summary.frames_read >= 1
    assert summary.error.startswith(f"{url}: stream dropped and 2 reconnection attempts failed")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


# --- clear errors ---------------------------------------------------------------------------------------------


def _one_line_error(capsys, argv: list[str]) -> str:
    rc = cli.run_main(webcam.main, argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_bad_sources_fail_with_one_line_before_loading_the_model(tmp_path, capsys):
    model = ["--model", str(tmp_path / "no-model-needed")]
    assert _one_line_error(capsys, ["--source", "9", *model]) == (
        "error: camera 9: no camera at that index (or it is in use)")
    missing = tmp_path / "missing.mp4"
    assert _one_line_error(capsys, ["--source", str(missing), *model]) == (
        f"error: {missing}: no such video file (for a camera give its index, e.g. --source 0)")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_text("not a video\n")
    assert _one_line_error(capsys, ["--source", str(garbage), *model]) == (
        f"error: {garbage}: not a readable video (unknown format or damaged file)")
    assert _one_line_error(capsys, ["--source", str(tmp_path), *model]) == (
        f"error: {tmp_path}: is a folder, not a video file")
    dead = "http://127.0.0.1:9/none.mp4"
    assert _one_line_error(capsys, ["--source", dead, *model]).startswith(f"error: {dead}: cannot open stream")


def test_every_frame_refuses_a_live_source(tiny):
    camera = FakeCamera()
    with pytest.raises(VideoSourceError, match="--every-frame is for video files"):
        segment_video(tiny, camera, every_frame=True)
    assert camera.closed


def test_unsupported_output_type_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        webcam.main(["--source", "0", "-o", str(tmp_path / "out.gif")])
    assert exit_info.value.code == 2
    assert "out.gif: unsupported video type" in capsys.readouterr().err


# --- writers ---------------------------------------------------------------------------------------------------


def test_video_sink_shows_the_file_only_when_finished(tmp_path):
    out = tmp_path / "out.mp4"
    sink = VideoSink(out, fps=5)
    sink.write(np.zeros((HEIGHT, WIDTH, 3), np.uint8), repeat=3)
    assert not out.exists() and not no_part_files(tmp_path)
    with pytest.raises(VideoWriteError, match="frame size changed"):
        sink.write(np.zeros((HEIGHT + 2, WIDTH, 3), np.uint8))
    sink.close()
    frames, fps, size = read_video(out)
    assert len(frames) == 3 and fps == pytest.approx(5.0) and size == (WIDTH, HEIGHT)
    assert no_part_files(tmp_path)

    old = out.read_bytes()
    sink = VideoSink(out, fps=5)
    sink.write(np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    sink.abort()
    assert out.read_bytes() == old and no_part_files(tmp_path)
    with pytest.raises(VideoWriteError, match="unsupported video type '.gif'"):
        VideoSink(tmp_path / "x.gif", fps=5)


def test_json_lines_sink_is_atomic(tmp_path):
    path = tmp_path / "lines.jsonl"
    with JsonLinesSink(path) as sink:
        sink.write({"frame": 0})
        sink.write({"frame": 1})
        assert not path.exists()
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"frame": 0}, {"frame": 1}]
    assert no_part_files(tmp_path)
