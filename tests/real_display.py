"""Real windows for tests: a fresh Xvfb server, finding a script's mapped window, the window manager's close
request, and screenshots. The fixtures built on them are in tests/visualization/conftest.py."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

SLOW = 180  # seconds: loading TensorFlow and a model on a loaded 2-core CI machine


@contextmanager
def xvfb_server(log: Path) -> Iterator[str]:
    """A fresh Xvfb server's display name; `-displayfd` makes it pick a free number and report it once ready."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb): real-window tests skipped")
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


def xdotool_path() -> str:
    path = shutil.which("xdotool")
    if path is None:
        pytest.skip("xdotool not installed (apt-get install xdotool): real key-press tests skipped")
    return path


def send_close_request(display_name: str, window: int) -> None:
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


def wait_for_window(xdotool: str, env: dict, title: str, script: subprocess.Popen, log: Path) -> int:
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


def screenshot(env: dict, window: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB of what the X server shows of `window` now (ImageMagick's `import`)."""
    if shutil.which("import") is None:
        pytest.skip("ImageMagick's import not installed (apt-get install imagemagick): screenshot tests skipped")
    ppm = subprocess.run(["import", "-window", str(window), "-depth", "8", "ppm:-"], env=env, check=True, capture_output=True,
                         timeout=SLOW).stdout
    header = ppm.split(maxsplit=4)  # P6, width, height, maxval, pixels
    assert header[0] == b"P6" and header[3] == b"255", ppm[:20]
    width, height = int(header[1]), int(header[2])
    return np.frombuffer(ppm[-width * height * 3:], np.uint8).reshape(height, width, 3)
