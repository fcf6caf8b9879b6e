"""The webcam script with --track in a real window (Xvfb), as a user sees it: on consecutive frames each tracked
object keeps its colour and its "#id" caption; `q` ends the run.

The tiny model reports the same instances in every picture, so the tracks are known: #1 (row 0, box x 64-192,
y 24-120 of a 320x240 picture, whole-box mask) and #2 (row 1, box x 160-320, y 120-240, left-half mask). A
small bright square moves elsewhere in the picture, so each frame differs from the one before.
"""

from __future__ import annotations

import itertools
import os
import re
import select
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from real_display import SLOW, screenshot

from object_detection_utils.visualization.drawing import PALETTE

WIDTH, HEIGHT, FRAMES, SHOTS = 320, 240, 12, 4
BACKGROUND = (40, 20, 60)  # BGR; dark, so the tiny model's row 2 (score mean/255) stays under the minimum score;
# not grey, so that no pixel of the window's grey toolbar has its colour
SQUARE = (slice(20, 32), slice(260, 320))  # rows, columns the moving square sweeps
TRACK_AREAS = {1: (slice(4, 120), slice(64, 192)), 2: (slice(120, 210), slice(160, 320))}  # box and caption;
# the bottom rows hold the fps caption, which changes
MASK_POINTS = {1: (72, 128), 2: (180, 197)}  # row, column inside each track's mask


def make_video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for k in range(FRAMES):
        frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
        frame[:] = BACKGROUND
        frame[20:32, 260 + 4 * k:272 + 4 * k] = 255
        writer.write(frame)
    writer.release()
    return path


def read_reply(fd: int, log: Path) -> str:
    """The next line from the paused script ("shown N"), or "" once it has ended."""
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], SLOW)
        if not ready:
            pytest.fail(f"the script said nothing for {SLOW} s:\n{log.read_text()}")
        chunk = os.read(fd, 64)
        if not chunk:
            return ""
        data += chunk
    return data.decode().strip()


class Placement:
    """Where the picture lies in a screenshot of the window: the canvas scales it to fit, keeping its aspect."""

    def __init__(self, shot: np.ndarray, background: np.ndarray) -> None:
        # the background shows at all four corners of the picture (no instance is drawn there)
        rows, columns = np.nonzero((shot == background).all(axis=2))
        self.top, self.left = rows.min(), columns.min()
        self.height, self.width = rows.max() + 1 - self.top, columns.max() + 1 - self.left

    def point(self, row: int, column: int) -> tuple[int, int]:
        """The screenshot pixel showing the picture's pixel (row, column)."""
        return (self.top + int((row + 0.5) * self.height / HEIGHT),
                self.left + int((column + 0.5) * self.width / WIDTH))

    def area(self, rows: slice, columns: slice) -> tuple[slice, slice]:
        (top, left), (bottom, right) = self.point(rows.start, columns.start), self.point(rows.stop, columns.stop)
        return slice(top, bottom), slice(left, right)


def blended(color: np.ndarray, background: np.ndarray) -> list[int]:
    """The colour of a mask pixel over `background`, as draw_detections blends it (alpha 0.45)."""
    return cv2.addWeighted(background[None, None], 0.55, color[None, None], 0.45, 0.0)[0, 0].tolist()


def test_tracked_objects_keep_their_colour_and_caption_in_the_real_window(xvfb_display, xdotool, tiny_frozen_dir,
                                                                         repo_root, tmp_path):
    try:
        import tkinter  # noqa: F401
    except ImportError:
        pytest.skip("this Python has no tkinter, so matplotlib has no interactive backend")
    video = make_video(tmp_path / "clip.avi")
    capture = cv2.VideoCapture(str(video))
    background = cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB)[10, 10]  # as decoded (MJPG shifts it a little)
    capture.release()
    env = {**os.environ, "DISPLAY": xvfb_display, "MPLBACKEND": "TkAgg"}
    log = tmp_path / "stderr.txt"
    command_read, command_write = os.pipe()
    reply_read, reply_write = os.pipe()
    with log.open("w") as stderr:
        script = subprocess.Popen(
            [sys.executable, str(repo_root / "tests" / "gated_frames.py"), str(command_read), str(reply_write),
             str(repo_root / "instance_segmentation_webcam.py"), "--source", str(video), "--every-frame", "--track",
             "--model", str(tiny_frozen_dir)],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr, pass_fds=(command_read, reply_write),
        )
    os.close(command_read)
    os.close(reply_write)
    commands = os.fdopen(command_write, "w", buffering=1)
    shots = []
    try:
        assert read_reply(reply_read, log) == "shown 1", log.read_text()
        window, title = None, f"instance segmentation: {video}"
        for _ in range(400):  # Tk maps a new window from its event loop: let it run until the window shows
            found = subprocess.run([xdotool, "search", "--onlyvisible", "--name", f"^{re.escape(title)}$"],
                                   check=False, env=env, capture_output=True, text=True, timeout=SLOW).stdout.split()  # 1: none yet
            if found:
                window = int(found[0])
                break
            commands.write("pump\n")
            assert read_reply(reply_read, log) == "shown 1"
        assert window is not None, f"the window never showed:\n{log.read_text()}"
        for k in range(1, SHOTS + 1):
            shot = screenshot(env, window)
            for _ in range(20):  # let the window draw until two screenshots agree
                commands.write("pump\n")
                assert read_reply(reply_read, log) == f"shown {k}"
                again = screenshot(env, window)
                if np.array_equal(again, shot):
                    break
                shot = again
            else:
                pytest.fail(f"frame {k} never stopped changing on screen")
            shots.append(shot)
            if k < SHOTS:
                commands.write("next\n")
                assert read_reply(reply_read, log) == f"shown {k + 1}"
        subprocess.run([xdotool, "windowfocus", "--sync", str(window)], env=env, check=True, timeout=SLOW)
        subprocess.run([xdotool, "key", "q"], env=env, check=True, timeout=SLOW)  # a real key press (XTEST)
        while True:  # the next frame's events take the key; the script ends
            commands.write("next\n")
            if read_reply(reply_read, log) == "":
                break
        script.wait(timeout=SLOW)
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
        commands.close()
        os.close(reply_read)
    errors = log.read_text()
    assert script.returncode == 0, errors
    assert "stopped: window closed" in errors and "Traceback" not in errors, errors
    place = Placement(shots[0], background)
    assert place.height >= HEIGHT and abs(place.width / place.height - WIDTH / HEIGHT) < 0.01  # whole, undistorted
    assert all(vars(Placement(shot, background)) == vars(place) for shot in shots)
    for before, after in itertools.pairwise(shots):
        square = place.area(*SQUARE)
        assert not np.array_equal(before[square], after[square])  # consecutive frames, not the same one again
        for area in TRACK_AREAS.values():
            assert np.array_equal(before[place.area(*area)], after[place.area(*area)])  # colour, outline, caption
    for track_id, point in MASK_POINTS.items():
        for shot in shots:
            assert shot[place.point(*point)].tolist() == blended(PALETTE[track_id], background)  # its id's colour
