"""Video: sources, the newest-frame reader, writers, the segmenting loop and the webcam script, on the tiny model."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import pytest
import tiny_model

import instance_segmentation_webcam as webcam
from object_detection_utils import Segmenter, load_model
from object_detection_utils.apps import cli
from object_detection_utils.apps.video_segmentation import VideoOptions, segment_video
from object_detection_utils.coco_format import decode_mask
from object_detection_utils.errors import VideoSourceError, VideoWriteError
from object_detection_utils.io.frame_reader import LatestFrameReader
from object_detection_utils.io.video_sinks import JsonLinesSink, VideoSink
from object_detection_utils.io.video_sources import ReconnectingSource, open_source, open_video_source
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


class FakeCamera:
    """A live `FrameSource` that delivers a BRIGHT frame whenever read, ending after `frames` frames (never when
    None). `pause` seconds before each frame only keeps an endless camera from spinning a core."""

    live = True
    fps = 100.0
    frame_count = None

    def __init__(self, frames: int | None = None, pause: float = 0.002) -> None:
        self.name = "fake camera"
        self.frames = frames
        self.pause = pause
        self.delivered = 0
        self.closed = False

    def read(self) -> np.ndarray | None:
        if self.closed or (self.frames is not None and self.delivered >= self.frames):
            return None
        time.sleep(self.pause)
        self.delivered += 1
        return np.full((HEIGHT, WIDTH, 3), BRIGHT, np.uint8)

    def close(self) -> None:
        self.closed = True


class StepCamera:
    """A live `FrameSource` the test drives: `read` waits until the test hands it a frame (`deliver`) or ends it.

    Keeps only weak references to what it delivered, so a test can see which frames are still held.
    """

    live = True
    fps = 100.0
    frame_count = None

    def __init__(self) -> None:
        self.name = "step camera"
        self.delivered: list[weakref.ref] = []
        self.closed = False
        self._queue: deque[np.ndarray | None] = deque()
        self._reads = 0  # calls of read(), the one waiting now included
        self._condition = threading.Condition()

    def deliver(self, *values: int) -> None:
        """Make one uniform frame per value available, in order."""
        with self._condition:
            self._queue.extend(np.full((HEIGHT, WIDTH, 3), value, np.uint8) for value in values)
            self._condition.notify_all()

    def end(self) -> None:
        """The camera stops: the next read gets nothing."""
        with self._condition:
            self._queue.append(None)
            self._condition.notify_all()

    def wait_until_all_read(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` frames were taken and the reader is back waiting for another (so it stored them)."""
        with self._condition:
            assert self._condition.wait_for(lambda: len(self.delivered) == count and self._reads > count, timeout)

    def read(self) -> np.ndarray | None:
        with self._condition:
            self._reads += 1
            self._condition.notify_all()
            self._condition.wait_for(lambda: self._queue)
            image = self._queue.popleft()
            if image is not None:
                self.delivered.append(weakref.ref(image))
            return image

    def close(self) -> None:
        self.closed = True


class GatedModel:
    """A segmenter's model, but each call waits until the test allows it to finish (`allow`).

    `segmenter` runs it; `values` holds the pixel value of each picture the model was given, in call order.
    """

    def __init__(self, segmenter: Segmenter) -> None:
        self.segmenter = Segmenter(dataclasses.replace(segmenter.model, _run=self._run))
        self.values: list[int] = []
        self._run_tiny = segmenter.model._run
        self._allowed = 0
        self._condition = threading.Condition()

    def _run(self, images: np.ndarray):
        with self._condition:
            self.values.append(int(images[0, 0, 0, 0]))
            call = len(self.values)
            self._condition.notify_all()
            assert self._condition.wait_for(lambda: self._allowed >= call, timeout=60), "the test never let it finish"
        return self._run_tiny(images)

    def wait_for_call(self, count: int, timeout: float = 30.0) -> None:
        """Wait until the model has been called `count` times."""
        with self._condition:
            assert self._condition.wait_for(lambda: len(self.values) >= count, timeout), self.values

    def allow(self, calls: int = 1) -> None:
        with self._condition:
            self._allowed += calls
            self._condition.notify_all()


class CountingSource:
    """Wraps a `FrameSource`; a test can wait until it has delivered a number of frames."""

    def __init__(self, source) -> None:
        self._source = source
        self.name, self.live, self.fps, self.frame_count = source.name, source.live, source.fps, source.frame_count
        self.delivered = 0
        self._condition = threading.Condition()

    def read(self) -> np.ndarray | None:
        image = self._source.read()
        with self._condition:
            self.delivered += image is not None
            self._condition.notify_all()
        return image

    def wait_for_frames(self, count: int, timeout: float = 30.0) -> None:
        with self._condition:
            assert self._condition.wait_for(lambda: self.delivered >= count, timeout), self.delivered

    def close(self) -> None:
        self._source.close()


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


class InBackground:
    """Runs `segment_video` on a thread, so the test can drive the camera and the model meanwhile."""

    def __init__(self, segmenter, source, **option_fields) -> None:
        self.results: list = []
        self.summary = None
        self._error: BaseException | None = None
        options = VideoOptions(progress=False, **option_fields)
        self._thread = threading.Thread(target=self._run, args=(segmenter, source, options), daemon=True)
        self._thread.start()

    def _run(self, segmenter, source, options: VideoOptions) -> None:
        try:
            self.summary = segment_video(segmenter, source, options,
                                         on_frame=lambda result, _: self.results.append(result))
        except BaseException as error:  # re-raised on the test's thread by `finish`
            self._error = error

    def finish(self, timeout: float = 60.0):
        """The run's summary, once it has ended."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the run did not end"
        if self._error is not None:
            raise self._error
        return self.summary


@pytest.fixture(scope="module")
def tiny(tiny_frozen_dir) -> Segmenter:
    return Segmenter(load_model(tiny_frozen_dir))


def no_part_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".part" in p.name]


# --- the script, every frame of a file ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix, fourcc", [(".avi", "MJPG"), (".mp4", "mp4v")])
def test_every_frame_writes_each_frame_with_masks_where_the_model_puts_them(
    tmp_path, tiny_frozen_dir, suffix, fourcc, capsys, read_video
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
    summary = segment_video(tiny, open_source(clip), VideoOptions(every_frame=True, progress=False), window=window,
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


def test_newest_frame_mode_segments_the_newest_frame_and_drops_the_others(tiny):
    camera, gated = StepCamera(), GatedModel(tiny)
    run = InBackground(gated.segmenter, camera, max_frames=3)
    camera.deliver(10)
    gated.wait_for_call(1)  # the reader hands over the first frame as soon as it arrives
    camera.deliver(11, 12, 13)  # while the model is busy
    camera.wait_until_all_read(4)
    # the reader holds the newest frame only: 11 and 12 are gone, not queued (10 is the model's)
    assert [ref() is not None for ref in camera.delivered] == [True, False, False, True]
    gated.allow()
    gated.wait_for_call(2)
    assert gated.values == [10, 13]  # the next inference starts on the newest frame
    gated.allow()
    camera.deliver(14)  # the loop is waiting for a newer frame: it wakes when one arrives
    gated.wait_for_call(3)
    camera.end()
    gated.allow()
    summary = run.finish()

    assert gated.values == [10, 13, 14]
    assert [result.frame.index for result in run.results] == [0, 3, 4]
    assert summary.stop_reason == "3 frames done"
    assert (summary.frames_read, summary.frames_processed) == (5, 3)
    assert camera.closed


def test_reader_keeps_only_the_newest_frame_and_wakes_the_consumer_when_one_arrives():
    camera = StepCamera()
    reader = LatestFrameReader(camera).start()
    try:
        camera.deliver(*range(50, 100))
        camera.wait_until_all_read(50)
        assert sum(ref() is not None for ref in camera.delivered) == 1  # memory stays at one frame
        frame = reader.next_frame()
        assert frame.index == 49 and (frame.image == 99).all()  # the 49 older ones were dropped, not queued

        taken = []
        consumer = threading.Thread(target=lambda: taken.append(reader.next_frame(newer_than=49)), daemon=True)
        consumer.start()
        camera.deliver(7)
        consumer.join(30)
        assert not consumer.is_alive() and taken[0].index == 50 and (taken[0].image == 7).all()

        camera.end()
        assert reader.next_frame(newer_than=50) is None  # the source ended
        assert reader.frames_read == 51
    finally:
        reader.stop()
    assert camera.closed


def test_newest_frame_mode_on_a_file_keeps_its_frame_rate_and_duration(tmp_path, tiny, read_video):
    values = [40 + 5 * i for i in range(30)]  # every frame looks different
    source = CountingSource(open_source(make_video(tmp_path / "clip.avi", values, fps=25.0)))
    out = tmp_path / "out.avi"
    gated = GatedModel(tiny)
    run = InBackground(gated.segmenter, source, output=out)
    gated.wait_for_call(1)
    source.wait_for_frames(12)  # played at 25 fps while the model is held: frame 10 was stored, 11 read
    gated.allow(len(values))
    summary = run.finish()

    assert summary.stop_reason == "end of file" and summary.frames_read == 30
    indices = [result.frame.index for result in run.results]
    assert indices[0] == 0 and indices[1] >= 10  # the frames that came during the first inference were skipped
    assert indices[-1] == 29  # the last frame is always segmented
    # each segmented frame stands in for the frames skipped after it: the video lasts as long as the source
    assert summary.frames_written == 30
    frames, fps, size = read_video(out)
    assert len(frames) == 30 and fps == pytest.approx(25.0) and size == (WIDTH, HEIGHT)
    for start, stop in zip(indices, indices[1:] + [30]):
        for skipped in range(start + 1, stop):
            np.testing.assert_array_equal(frames[skipped], frames[start])
    assert not np.array_equal(frames[indices[1]], frames[0])


# --- stopping: failures, window, Ctrl+C ----------------------------------------------------------------------


def test_camera_failing_midway_reconnects_a_few_times_then_stops_with_one_line(tmp_path, tiny, read_video):
    cameras, sleeps = [], []

    def opener():
        if cameras:
            raise VideoSourceError("fake camera: unplugged")
        cameras.append(FakeCamera(frames=5))
        return cameras[-1]

    source = ReconnectingSource(opener, attempts=3, delay=0.01, sleep=sleeps.append)
    out, lines = tmp_path / "out.avi", tmp_path / "out.jsonl"
    summary = segment_video(tiny, source, VideoOptions(output=out, json_lines=lines, progress=False))
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
        opened.append(FakeCamera(frames=4))
        return opened[-1]

    source = ReconnectingSource(opener, attempts=2, delay=0, sleep=lambda s: None)
    summary = segment_video(tiny, source, VideoOptions(progress=False))
    assert source.reconnections == 1
    assert summary.frames_read == 8  # 4 before the drop, 4 after reconnecting
    assert summary.error.startswith("fake camera: stream dropped and 2 reconnection attempts failed")
    assert all(camera.closed for camera in opened)


def test_window_closed_and_ctrl_c_stop_cleanly_and_finish_the_files(tmp_path, tiny, read_video):
    window = FakeWindow(close_after=3)
    camera = FakeCamera()
    out = tmp_path / "window.avi"
    summary = segment_video(tiny, camera, VideoOptions(output=out, progress=False), window=window)
    assert summary.stop_reason == "window closed" and summary.frames_processed == 3
    assert camera.closed and window.close_calls == 1 and out.is_file()

    def press_ctrl_c(result, _):
        if result.frame.index >= 2:
            raise KeyboardInterrupt

    clip = make_video(tmp_path / "clip.avi", [BRIGHT] * 10)
    out = tmp_path / "interrupted.avi"
    summary = segment_video(tiny, open_source(clip), VideoOptions(every_frame=True, output=out, progress=False),
                            on_frame=press_ctrl_c)
    assert summary.stop_reason == "Ctrl+C" and summary.error is None
    assert len(read_video(out)[0]) == 3 and no_part_files(tmp_path)


@pytest.mark.parametrize("key", ["q", "escape"])
def test_pressing_q_or_esc_in_the_real_window_stops_the_run(tiny, key):
    from matplotlib.backend_bases import KeyEvent

    window = display.Window("video test")
    camera = FakeCamera()

    def press_key_at_third_frame(result, _):
        if len(shown) == 2:
            window.figure.canvas.callbacks.process("key_press_event", KeyEvent("key", window.figure.canvas, key))
        shown.append(result.frame.index)

    shown: list[int] = []
    summary = segment_video(tiny, camera, VideoOptions(progress=False), window=window,
                            on_frame=press_key_at_third_frame)
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
    summary = segment_video(tiny, source, VideoOptions(progress=False))
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
        segment_video(tiny, camera, VideoOptions(every_frame=True))
    assert camera.closed


def test_unsupported_output_type_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        webcam.main(["--source", "0", "-o", str(tmp_path / "out.gif")])
    assert exit_info.value.code == 2
    assert "out.gif: unsupported video type" in capsys.readouterr().err


# --- writers ---------------------------------------------------------------------------------------------------


def test_video_sink_shows_the_file_only_when_finished(tmp_path, read_video):
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


def test_opening_a_damaged_video_prints_nothing_from_ffmpeg_or_opencv(tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "good.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for value in range(0, 200, 10):
        writer.write(np.full((48, 64, 3), value, np.uint8))
    writer.release()
    data = (tmp_path / "good.mp4").read_bytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(data[: len(data) // 3])  # FFmpeg alone would print "moov atom not found"
    code = """
import sys
from object_detection_utils.errors import VideoSourceError
from object_detection_utils.io.video_sources import open_source
for spec in sys.argv[1:]:
    try:
        open_source(spec)
    except VideoSourceError as error:
        print(error)
"""
    env = {name: value for name, value in os.environ.items() if not name.startswith("OPENCV_")}
    result = subprocess.run([sys.executable, "-c", code, str(damaged), "99"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.stderr == ""
    assert result.stdout == (f"{damaged}: not a readable video (unknown format or damaged file)\n"
                             "camera 99: no camera at that index (or it is in use)\n")


# --- tracking and counting in the script ----------------------------------------------------------------------


def test_track_gives_json_lines_and_mots_the_same_ids_every_frame(tmp_path, tiny_frozen_dir, capsys):
    clip = make_video(tmp_path / "clip.avi", [BRIGHT] * 5)
    lines, mots = tmp_path / "frames.jsonl", tmp_path / "tracks.txt"
    rc = webcam.main(["--source", str(clip), "--every-frame", "--json-lines", str(lines), "--mots", str(mots),
                      "--count-line", f"0,1,{WIDTH - 1},1", "--model", str(tiny_frozen_dir), "--no-display"])
    assert rc == 0
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    ids = [[r["track_id"] for r in record["results"]] for record in records]
    assert ids == [[1, 2, 3]] * 5  # the model finds the same three instances: each keeps its id
    mots_rows = [line.split()[:5] for line in mots.read_text().splitlines()]
    assert mots_rows == [[str(f), str(i), str(c), str(HEIGHT), str(WIDTH)]
                         for f in range(5) for i, c in zip((1, 2, 3), [int(tiny_model.CLASSES[r]) for r in (0, 1, 2)])]
    err = capsys.readouterr().err
    assert f"line (0.0, 1.0)-({WIDTH - 1.0}, 1.0): in 0, out 0" in err and f"saved {mots} (15 lines)" in err


@pytest.mark.parametrize("options, message", [
    (["--count-line", f"0,0,{WIDTH},0"], f"error: --count-line point ({WIDTH}, 0) is outside the {WIDTH}x{HEIGHT} picture"),
    (["--zone", "1,1,5,5"], "error: --zone '1,1,5,5': a zone needs at least 3 points, got 2"),
    (["--count-line", "1,2,3"], "error: --count-line '1,2,3': expected x,y pairs of numbers, e.g. 10,20,300,20"),
])
def test_bad_count_lines_and_zones_fail_with_one_line_and_leave_no_file(tmp_path, tiny_frozen_dir, capsys,
                                                                         options, message):
    clip = make_video(tmp_path / "clip.avi", [BRIGHT] * 2)
    out = tmp_path / "out"
    out.mkdir()
    rc = cli.run_main(webcam.main, ["--source", str(clip), "--every-frame", "--json-lines", str(out / "a.jsonl"),
                                    "--model", str(tiny_frozen_dir), "--no-display", *options])
    assert rc == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == message
    assert list(out.iterdir()) == []


def test_mots_into_a_folder_that_cannot_be_written_fails_with_one_line_before_opening_the_source(tmp_path, capsys):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")  # a file where the folder should be: refused even to root
    err = _one_line_error(capsys, ["--source", "9", "--mots", str(not_a_folder / "t.txt"), "--model", "x"])
    assert err.startswith(f"error: {not_a_folder / 't.txt'}: cannot write there")
