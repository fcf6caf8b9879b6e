"""Windows: the chosen OpenCV distribution, the display check, key handling, and a real window under Xvfb."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from importlib import metadata

import numpy as np
import pytest
from conftest import REPO

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


@pytest.fixture
def xvfb_display():
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb): real-window test skipped")
    number = 90 + os.getpid() % 50
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    if server.poll() is not None:
        pytest.skip("Xvfb did not start")
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def test_script_opens_two_real_windows_on_a_display(xvfb_display, tiny_frozen_dir, tmp_path):
    try:
        import tkinter  # noqa: F401
    except ImportError:
        pytest.skip("this Python has no tkinter, so matplotlib has no interactive backend")
    env = {**os.environ, "DISPLAY": xvfb_display, "MPLBACKEND": "TkAgg"}
    probe = (
        "import sys, instance_segmentation as s, object_detection_utils.visualization.display as d, matplotlib.pyplot as plt;"
        "assert d.display_available();"
        "orig = d.show_until_closed;"
        "d.show_until_closed = lambda w, timeout=None: (print('windows', len(plt.get_fignums()),"
        " [plt.figure(n).canvas.manager.get_window_title() for n in plt.get_fignums()]), orig(w, 0.5));"
        f"sys.exit(s.main(['--model', r'{tiny_frozen_dir}', '-o', r'{tmp_path / 'out.png'}']))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "windows 2 ['original: grace_hopper.jpg', 'segmented: grace_hopper.jpg']" in result.stdout
    assert (tmp_path / "out.png").is_file()
