"""Windows: the chosen OpenCV distribution, the display check, key handling, and real windows under Xvfb."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import select
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

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

SLOW = 180  # seconds: loading TensorFlow and a model on a loaded 2-core CI machine


@pytest.fixture
def xvfb_display(tmp_path):
    """A fresh Xvfb server; `-displayfd` makes it pick a free display number and report it once it is ready."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb): real-window tests skipped")
    log = tmp_path / "xvfb.log"
    read_end, write_end = os.pipe()
    with log.open("w") as errors:
        server = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=errors,
        )
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], SLOW)
        number = os.read(read_end, 64).decode().strip() if ready else ""
        if not number:  # no answer, or the pipe closed because Xvfb exited
            pytest.fail(f"Xvfb did not start: {log.read_text()[-500:]}")
        yield f":{number}"
    finally:
        os.close(read_end)
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def xdotool() -> str:
    path = shutil.which("xdotool")
    if path is None:
        pytest.skip("xdotool not installed (apt-get install xdotool): real key-press tests skipped")
    return path


def _send_close_request(display_name: str, window: int) -> None:
    """Send the WM_DELETE_WINDOW message a window manager sends when the close button is clicked.

    Xvfb has no window manager, and `xdotool windowclose` destroys the X window behind Tk's back (Tk then
    dies on an X error), so this sends the real request with libX11.
    """

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                    ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

    class XEvent(ctypes.Union):
        _fields_ = [("client", ClientMessage), ("pad", ctypes.c_long * 24)]

    x11 = ctypes.CDLL(ctypes.util.find_library("X11"))
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(XEvent)]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    connection = x11.XOpenDisplay(display_name.encode())
    assert connection, f"cannot open X display {display_name}"
    event = XEvent()
    event.client.type = 33  # ClientMessage
    event.client.window = window
    event.client.message_type = x11.XInternAtom(connection, b"WM_PROTOCOLS", False)
    event.client.format = 32
    event.client.data[0] = x11.XInternAtom(connection, b"WM_DELETE_WINDOW", False)
    try:
        assert x11.XSendEvent(connection, window, False, 0, ctypes.byref(event))
    finally:
        x11.XCloseDisplay(connection)  # flushes the request


def _wait_for_window(xdotool: str, env: dict, title: str, script: subprocess.Popen, log: Path) -> int:
    """The id of the visible window named `title` once it is mapped; fails at once if the script ends first."""
    search = subprocess.Popen([xdotool, "search", "--sync", "--onlyvisible", "--name", f"^{re.escape(title)}$"],
                              env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + SLOW
    try:
        while search.poll() is None:
            if script.poll() is not None:
                pytest.fail(f"the script ended before its window {title!r} opened:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no window {title!r} within {SLOW} s:\n{log.read_text()}")
            try:
                search.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        return int(search.stdout.read().split()[0])
    finally:
        if search.poll() is None:
            search.kill()
        search.wait()
        search.stdout.close()


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
        ids = {name: _wait_for_window(xdotool, env, f"{name}: grace_hopper.jpg", script, log)
               for name in ("original", "segmented")}
        if action == "close":
            _send_close_request(xvfb_display, ids[which])
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
