"""Video failures made for real: a stream that stalls, Ctrl+C (a real SIGINT) while writing, a full disk.

Streams come from a local HTTP server sending multipart JPEG (as IP cameras do) that stops sending while
keeping the connection open. Full disks are a small tmpfs where this machine lets the test mount one, and
otherwise (and also) a file size limit (RLIMIT_FSIZE), under which writes fail with EFBIG.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import instance_segmentation_webcam as webcam
from object_detection_utils import load_model
from object_detection_utils.apps import cli
from object_detection_utils.apps.video_segmentation import VideoOptions, segment_video
from object_detection_utils.errors import StreamDroppedError, VideoWriteError
from object_detection_utils.io.atomic import is_temp_name
from object_detection_utils.io.video_sinks import JsonLinesSink, VideoSink
from object_detection_utils.io.video_sources import ReconnectingSource, open_source, open_video_source
from object_detection_utils.predictor import Segmenter

HEIGHT, WIDTH = 48, 64
RUN_BOUND = 120.0  # seconds: a generous bound on any run here; a hang fails instead of blocking the suite


@pytest.fixture(scope="module")
def tiny(tiny_frozen_dir) -> Segmenter:
    return Segmenter(load_model(tiny_frozen_dir))


def temp_files(folder: Path) -> list[str]:
    return [path.name for path in folder.rglob("*") if is_temp_name(path.name)]


def make_video(path: Path, count: int, size: tuple[int, int] = (WIDTH, HEIGHT), noise: bool = False) -> Path:
    """A Motion-JPEG video of `count` frames: grey, or random noise (which compresses badly: big files)."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for index in range(count):
        if noise:
            writer.write(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        else:
            writer.write(np.full((height, width, 3), 100 + index % 100, np.uint8))
    writer.release()
    return path


# --- a stream that stalls --------------------------------------------------------------------------------------


class MjpegServer:
    """A local HTTP server streaming multipart JPEG frames, with one plan per connection, in order (the last
    plan repeats): (frames to send, then "stall" or "close"). A stalled connection stays open and silent until
    the client closes it (recorded in `closed_by_client`) or the server is closed."""

    def __init__(self, plans: list[tuple[int, str]]) -> None:
        self.plans = plans
        self.connections = 0
        self.closed_by_client: list[threading.Event] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        _, jpeg = cv2.imencode(".jpg", np.full((HEIGHT, WIDTH, 3), 200, np.uint8))
        self._part = (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                      + jpeg.tobytes() + b"\r\n")
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server._serve(self)

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/live.mjpg"

    def _serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        with self._lock:
            index = self.connections
            self.connections += 1
            closed = threading.Event()
            self.closed_by_client.append(closed)
        frames, then = self.plans[min(index, len(self.plans) - 1)]
        handler.send_response(200)
        handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        handler.end_headers()
        for _ in range(frames):
            handler.wfile.write(self._part)
            handler.wfile.flush()
            if self._stop.wait(0.02):
                return
        if then == "stall":
            while not self._stop.is_set():  # silent; watch for the client hanging up
                if select.select([handler.connection], [], [], 0.05)[0]:
                    with contextlib.suppress(OSError):
                        if handler.connection.recv(4096):
                            continue
                    closed.set()
                    return

    def close(self) -> None:
        self._stop.set()
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def mjpeg_server():
    servers: list[MjpegServer] = []

    def start(plans: list[tuple[int, str]]) -> MjpegServer:
        servers.append(MjpegServer(plans))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def run_bounded(function, *args, **kwargs):
    """`function(*args, **kwargs)` on a thread; fails the test if it has not returned within RUN_BOUND."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(RUN_BOUND)
    assert not thread.is_alive(), f"still running after {RUN_BOUND} s: it hangs"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_a_stream_that_stalls_stops_the_script_with_one_line_naming_the_timeout(
        mjpeg_server, tiny_frozen_dir, capsys):
    server = mjpeg_server([(5, "stall"), (0, "stall")])  # reconnections get headers, then silence
    argv = ["--source", server.url, "--stall-timeout", "1", "--reconnect", "1", "--no-display",
            "--model", str(tiny_frozen_dir)]
    assert run_bounded(cli.run_main, webcam.main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert not any("Traceback" in line for line in err)
    assert err[-1] == (f"error: {server.url}: stream dropped (no frame for 1 s) and 1 reconnection attempts "
                       f"failed ({server.url}: cannot open stream (unreachable, refused or not a video stream))")
    assert re.match(rf"{re.escape(server.url)}: \d+ frames segmented of 5 read; .*stopped: source failed$",
                    err[-2]), err[-2]
    assert server.connections == 2
    # the stalled connections were hung up, not held (the back-end's own read and open timeouts)
    assert all(closed.wait(RUN_BOUND) for closed in server.closed_by_client)


def test_a_stream_that_stalls_then_comes_back_goes_on(mjpeg_server, tiny):
    server = mjpeg_server([(3, "stall"), (4, "close"), (0, "close")])
    source = open_video_source(server.url, attempts=2, delay=0.01, stall_timeout=1.0)
    summary = run_bounded(segment_video, tiny, source, VideoOptions(progress=False))
    assert source.reconnections == 1
    assert summary.frames_read == 7  # 3 before the stall, 4 after reconnecting
    # the second drop is the server closing the stream (no stall), and reconnecting then fails
    assert summary.error.startswith(f"{server.url}: stream dropped and 2 reconnection attempts failed (")
    assert server.connections == 4
    assert server.closed_by_client[0].wait(RUN_BOUND)


def test_a_read_blocked_in_the_capture_is_abandoned_after_the_stall_timeout(mjpeg_server):
    """The watchdog on its own: a capture without back-end timeouts blocks in its read (for FFmpeg's default
    30 s); the source gives up after the stall timeout anyway, as for a camera whose driver hangs."""
    server = mjpeg_server([(3, "stall")])
    source = ReconnectingSource(lambda: open_source(server.url, stall_timeout=None), attempts=0,
                                stall_timeout=1.0)
    frames = [run_bounded(source.read) for _ in range(3)]
    assert all(frame.shape == (HEIGHT, WIDTH, 3) for frame in frames)
    with pytest.raises(StreamDroppedError) as error:
        run_bounded(source.read)
    assert str(error.value) == f"{server.url}: stream dropped (no frame for 1 s)"
    assert not server.closed_by_client[0].is_set()  # still blocked in the abandoned read: held until it returns
    source.close()


# --- Ctrl+C while writing --------------------------------------------------------------------------------------


def test_ctrl_c_during_every_frame_leaves_a_playable_video_of_the_frames_done(tmp_path, tiny_frozen_dir, repo_root,
                                                                            read_video):
    # Long enough (about 25 s at the tiny model's 600 frames/s) that the Ctrl+C lands mid-run even when this
    # process gets no CPU for seconds on a loaded machine (once, the run ended before it came); 0.5 s to write.
    total = 15000
    clip = make_video(tmp_path / "clip.avi", total)
    out, lines = tmp_path / "out" / "segmented.mp4", tmp_path / "out" / "segmented.jsonl"
    child = subprocess.Popen(
        [sys.executable, str(repo_root / "instance_segmentation_webcam.py"), "--source", str(clip),
         "--every-frame", "-o", str(out), "--json-lines", str(lines), "--no-display",
         "--model", str(tiny_frozen_dir)],
        cwd=repo_root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    stderr = bytearray()
    progressed = threading.Condition()

    def collect() -> None:
        while chunk := os.read(child.stderr.fileno(), 4096):
            with progressed:
                stderr.extend(chunk)
                progressed.notify_all()

    def frames_done() -> int:
        counts = re.findall(rb"(\d+)/%d" % total, bytes(stderr))
        return int(counts[-1]) if counts else 0

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    try:
        with progressed:
            assert progressed.wait_for(lambda: frames_done() >= 5 or child.poll() is not None, RUN_BOUND)
        assert child.poll() is None, stderr.decode()
        child.send_signal(signal.SIGINT)
        assert child.wait(RUN_BOUND) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    collector.join(RUN_BOUND)
    text = stderr.decode()
    summary = re.search(r"clip\.avi: (\d+) frames segmented of (\d+) read; .*stopped: Ctrl\+C\n", text)
    assert summary, text
    done = int(summary.group(1))
    assert 5 <= done < total and int(summary.group(2)) == done
    assert f"saved {out} ({done} frames)" in text and f"saved {lines} ({done} lines)" in text
    frames, _, _ = read_video(out)
    assert len(frames) == done
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [record["frame"] for record in records] == list(range(done))
    assert temp_files(tmp_path) == []


# --- a full disk -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def file_size_limit(limit: int):
    """Files this process writes cannot grow past `limit` bytes (writes fail with EFBIG; Python ignores
    SIGXFSZ)."""
    previous = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, previous[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous)


@contextlib.contextmanager
def tmpfs(mount_point: Path, options: str):
    """A tmpfs mounted at `mount_point` (skips the test where mounting is not permitted)."""
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
                             check=False, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB disk."""
    with tmpfs(tmp_path / "small_disk", "size=1m") as mount_point:
        yield mount_point


@pytest.fixture
def read_only_folder(tmp_path):
    with tmpfs(tmp_path / "read_only", "ro,size=1m") as mount_point:
        yield mount_point


def run_script(repo_root: Path, argv: list[str], limit: int | None = None) -> subprocess.CompletedProcess:
    """The webcam script in a child process, under a file size limit if given."""

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, str(repo_root / "instance_segmentation_webcam.py"), *argv],
        check=False, cwd=repo_root, capture_output=True, text=True, timeout=RUN_BOUND,
        preexec_fn=limit_file_size if limit is not None else None,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def saved_count(stderr: str, path: Path) -> int | None:
    found = re.search(rf"^saved {re.escape(str(path))} \((\d+) (?:frames|lines)\)$", stderr, re.MULTILINE)
    return int(found.group(1)) if found else None


def test_a_video_past_the_file_size_limit_stops_with_one_line_and_keeps_the_json_lines(
        tmp_path, tiny_frozen_dir, repo_root, read_video):
    clip = make_video(tmp_path / "noise.avi", 60, size=(320, 240), noise=True)  # ~3 MB of MPEG-4 segmented
    out, lines = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    argv = ["--source", str(clip), "--every-frame", "-o", str(out), "--json-lines", str(lines), "--no-display",
            "--model", str(tiny_frozen_dir)]
    done = run_script(repo_root, argv, limit=400_000)
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip().splitlines()
    assert err[-1] == f"error: {out}: file too large"
    assert not any("Traceback" in line for line in err)
    assert re.search(r": (\d+) frames segmented of \1 read; .*; stopped: output failed$", err[-3]), err
    assert not out.exists()  # nothing rather than a half video
    kept = saved_count(done.stderr, lines)
    assert kept is not None and 1 <= kept < 60
    assert [json.loads(line)["frame"] for line in lines.read_text().splitlines()] == list(range(kept))
    assert temp_files(tmp_path) == []

    # with room again, the same command writes everything
    assert cli.run_main(webcam.main, argv) == 0
    assert len(read_video(out)[0]) == 60 and len(lines.read_text().splitlines()) == 60
    assert temp_files(tmp_path) == []


def test_a_full_disk_stops_the_script_with_one_line_naming_the_file(small_disk, tmp_path, tiny_frozen_dir,
                                                                      repo_root, read_video):
    clip = make_video(tmp_path / "noise.avi", 60, size=(320, 240), noise=True)
    out, lines = small_disk / "out.mp4", small_disk / "out.jsonl"
    done = run_script(repo_root, ["--source", str(clip), "--every-frame", "-o", str(out), "--json-lines",
                                  str(lines), "--no-display", "--model", str(tiny_frozen_dir)])
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip().splitlines()
    assert err[-1] in (f"error: {out}: no space left on device", f"error: {lines}: no space left on device")
    assert not any("Traceback" in line for line in err)
    # each output is whole, or absent: never half-written under its name
    if saved_count(done.stderr, out) is None:
        assert not out.exists()
    else:
        assert len(read_video(out)[0]) == saved_count(done.stderr, out)
    if saved_count(done.stderr, lines) is None:
        assert not lines.exists()
    else:
        assert len([json.loads(line) for line in lines.read_text().splitlines()]) == saved_count(done.stderr, lines)
    assert temp_files(small_disk) == []


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_a_video_whose_end_does_not_fit_is_dropped_with_the_cause(tmp_path, suffix):
    """Every frame was accepted, but finishing the file (the buffered frames, mp4's index) fails."""
    out = tmp_path / f"out{suffix}"
    sink = VideoSink(out, fps=10)
    rng = np.random.default_rng(0)
    for _ in range(7):
        sink.write(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    (tmp,) = temp_files(tmp_path)
    with file_size_limit(max((tmp_path / tmp).stat().st_size, 1)), pytest.raises(VideoWriteError) as error:
        sink.close()
    assert str(error.value) == f"{out}: file too large"
    assert sink.frames_written == 0 and not out.exists() and temp_files(tmp_path) == []


def test_json_lines_that_cannot_be_finished_are_dropped_with_the_cause(tmp_path):
    path = tmp_path / "lines.jsonl"
    path.write_text('{"frame":0}\n')
    sink = JsonLinesSink(path)
    sink.write({"frame": 0, "results": []})  # buffered: nothing on disk yet
    with file_size_limit(1), pytest.raises(VideoWriteError) as error:
        sink.close()
    assert str(error.value) == f"{path}: file too large"
    assert sink.lines_written == 0 and path.read_text() == '{"frame":0}\n' and temp_files(tmp_path) == []


def test_an_output_in_a_read_only_folder_fails_before_the_model_loads(read_only_folder, tmp_path, capsys):
    clip = make_video(tmp_path / "clip.avi", 3)
    for option, name in (("-o", "out.mp4"), ("--json-lines", "out.jsonl")):
        target = read_only_folder / name
        argv = ["--source", str(clip), option, str(target), "--model", str(tmp_path / "no-model-needed")]
        assert cli.run_main(webcam.main, argv) == 2
        assert capsys.readouterr().err == f"error: {target}: cannot write there (read-only file system)\n"
