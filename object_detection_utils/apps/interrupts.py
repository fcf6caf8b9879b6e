"""Ctrl+C (SIGINT) for the commands: one way to take it over for a block, and the two behaviours built on it.

* `stop_on_interrupt`: the first Ctrl+C asks the run to stop (an event), so it can finish what is in flight; a
  second one interrupts at once (the batch job).
* `DeferredInterrupt`: Ctrl+C interrupts only inside `interruptible()` blocks and waits for the next one
  elsewhere (the video loop, so that outputs are never left half-written).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

from tqdm import tqdm


@contextlib.contextmanager
def sigint_handler(on_sigint: Callable[[], None], only_over_default: bool = False) -> Iterator[bool]:
    """Call `on_sigint()` on each Ctrl+C inside the block (it may raise KeyboardInterrupt); the previous handler is
    restored afterwards. Yields whether the handler was installed: with `only_over_default` it is not off the
    main thread or over a handler someone else set (Ctrl+C then behaves as before); without, off the main thread
    is a ValueError."""
    if only_over_default and not (threading.current_thread() is threading.main_thread()
                                  and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        yield False
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: on_sigint())
    try:
        yield True
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def stop_on_interrupt(notice: str) -> Iterator[threading.Event]:
    """An event set by the first Ctrl+C, which also prints `notice` (above any progress bar); a second Ctrl+C
    raises KeyboardInterrupt. Main thread only."""
    stop = threading.Event()

    def on_sigint() -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        tqdm.write(notice)

    with sigint_handler(on_sigint):
        yield stop


class DeferredInterrupt:
    """Ctrl+C that interrupts only inside `interruptible()` blocks; elsewhere it is noted in `pressed` and acted on
    at the next `interruptible()`.

    Taken over only on the main thread, and only from Python's default handler; otherwise Ctrl+C behaves as usual
    (it interrupts anywhere).
    """

    def __init__(self) -> None:
        self.pressed = False
        self._interruptible = True
        self._handler = contextlib.ExitStack()

    def __enter__(self) -> DeferredInterrupt:
        if self._handler.enter_context(sigint_handler(self._on_sigint, only_over_default=True)):
            self._interruptible = False
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._handler.close()

    def _on_sigint(self) -> None:
        if self._interruptible:
            raise KeyboardInterrupt
        self.pressed = True

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block that Ctrl+C interrupts; raises KeyboardInterrupt at once if it was pressed before."""
        if self.pressed:
            raise KeyboardInterrupt
        held = not self._interruptible
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = not held
