"""Windows: the chosen OpenCV distribution, the display check, key handling, and real windows under Xvfb."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest
from real_display import SLOW, send_close_request, wait_for_window

from object_detection_utils.visualization import display


def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
        return True
    except metadata.PackageNotFoundError:
        return False


def test_only_headless_opencv_is_installed():
    # opencv-python beside opencv-python-headless breaks cv2.imshow; we depend on the headless one alone.
    assert _installed("opencv-python-headless")
    assert not _installed("opencv-python")


def test_no_display_without_a_desktop_session(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert display.display_available() is False


def test_non_interactive_backend_is_no_display(monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(plt, "get_backend", lambda: "agg")
    assert display.display_available() is False


@pytest.mark.parametrize("key", ["q", "escape"])
def test_stop_keys_close_the_window(key):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backend_bases import KeyEvent

    window = display.Window("test")
    window.show(np.zeros((20, 30, 3), np.uint8))
    window.show(np.full((20, 30, 3), 255, np.uint8))
    assert window._artist.get_array()[0, 0, 0] == 255  # updated in place
    window.figure.canvas.callbacks.process("key_press_event", KeyEvent("key", window.figure.canvas, key))
    assert window.is_open is False


def test_other_keys_keep_it_open():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backend_bases import KeyEvent

    window = display.Window("test")
    window.figure.canvas.callbacks.process("key_press_event", KeyEvent("key", window.figure.canvas, "a"))
    assert window.is_open
    window.close()


# Real windows: a real X server (Xvfb), the script's real Tk windows, real key presses (xdotool, through XTEST)
# and the close request a window manager sends when the close button is clicked.

@pytest.mark.parametrize("action", ["q", "Escape", "close"])
@pytest.mark.parametrize("which", ["original", "segmented"])
def test_a_key_or_close_in_either_real_window_ends_the_script(xvfb_display, xdotool, tiny_frozen_dir, repo_root,
                                                              tmp_path, which, action):
    try:
        import tkinter  # noqa: F401
    except ImportError:
        pytest.skip("this Python has no tkinter, so matplotlib has no interactive backend")
    if action == "close" and ctypes.util.find_library("X11") is None:
        pytest.skip("libX11 not found: cannot send the window manager's close request")
    env = {**os.environ, "DISPLAY": xvfb_display, "MPLBACKEND": "TkAgg"}
    out, log = tmp_path / "out.png", tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        script = subprocess.Popen(
            [sys.executable, str(repo_root / "instance_segmentation.py"), "--model", str(tiny_frozen_dir),
             "-o", str(out)],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    try:
        ids = {name: wait_for_window(xdotool, env, f"{name}: grace_hopper.jpg", script, log)
               for name in ("original", "segmented")}
        if action == "close":
            send_close_request(xvfb_display, ids[which])
        else:
            subprocess.run([xdotool, "windowfocus", "--sync", str(ids[which])], env=env, check=True, timeout=SLOW)
            # no --window: xdotool then types through XTEST, a real key press to the focused window
            subprocess.run([xdotool, "key", action], env=env, check=True, timeout=SLOW)
        try:
            script.wait(timeout=SLOW)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{action} in the {which} window did not end the script within {SLOW} s")
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
    errors = log.read_text()
    assert script.returncode == 0, errors
    assert "Traceback" not in errors and "X Error" not in errors, errors
    assert out.is_file()
