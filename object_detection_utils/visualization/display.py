"""On-screen windows, through matplotlib.

Why not `cv2.imshow`: the project depends on `opencv-python-headless` only, because tf-models-official (the
training extra) pulls it in, and having it beside `opencv-python` breaks `cv2.imshow`. Headless OpenCV has
no GUI, so windows go through matplotlib's interactive backend (Tk, Qt, macOS), which every platform has.
Windows open only where a display exists; `display_available()` says whether one does.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

_NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "cairo", "template", "pgf"}
_STOP_KEYS = {"q", "escape"}


def display_available() -> bool:
    """True when windows can be shown: a desktop session and an interactive matplotlib backend."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    return plt.get_backend().lower() not in _NON_INTERACTIVE


class Window:
    """A window showing one picture that can be replaced, for stills and live video alike.

    Pressing `q` or Esc, or closing the window, makes `is_open` false; the caller's loop then stops.
    """

    def __init__(self, title: str) -> None:
        import matplotlib.pyplot as plt

        self._plt = plt
        self.figure = plt.figure(title)
        self.figure.subplots_adjust(0, 0, 1, 1)
        self.axes = self.figure.add_subplot()
        self.axes.set_axis_off()
        self._artist = None
        self.is_open = True
        self.figure.canvas.mpl_connect("key_press_event", self._on_key)
        self.figure.canvas.mpl_connect("close_event", self._on_close)

    def _on_key(self, event) -> None:
        if event.key in _STOP_KEYS:
            self.close()

    def _on_close(self, event) -> None:
        self.is_open = False
        # `pump_events` runs the GUI loop of the newest figure for a set time. Tk's backend cancels the timer
        # that ends that loop when the figure is destroyed (`q`, Esc or closing the newest window), so the loop
        # would run on until every window is gone: end it now. `event.canvas`, because by now the figure's own
        # `canvas` is matplotlib's GUI-less base one.
        event.canvas.stop_event_loop()

    def show(self, image: np.ndarray) -> None:
        """Display an (H, W, 3) RGB picture, replacing the last one."""
        if self._artist is None or self._artist.get_array().shape != image.shape:
            self.axes.clear()
            self.axes.set_axis_off()
            self._artist = self.axes.imshow(image, interpolation="nearest")
            height, width = image.shape[:2]
            self.figure.set_size_inches(*_window_inches(width, height, self.figure.dpi), forward=True)
        else:
            self._artist.set_data(image)
        self.figure.canvas.draw_idle()

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            self._plt.close(self.figure)


def _window_inches(width: int, height: int, dpi: float, max_pixels: int = 1000) -> tuple[float, float]:
    scale = min(1.0, max_pixels / max(width, height))
    return width * scale / dpi, height * scale / dpi


def pump_events(seconds: float) -> None:
    """Let open windows draw and handle keys for `seconds` (at least one round of events)."""
    import matplotlib.pyplot as plt

    if plt.get_fignums():
        plt.pause(max(seconds, 0.001))
    elif seconds > 0:
        time.sleep(seconds)


def show_until_closed(windows: list[Window], timeout: float | None = None) -> None:
    """Keep windows up until any of them is closed (`q`, Esc or its close button), or `timeout` seconds pass."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while all(window.is_open for window in windows):
            if deadline is not None and time.monotonic() >= deadline:
                break
            pump_events(0.05)
    finally:
        for window in windows:
            window.close()
