"""io/locks: one holder at a time, a refusal that names the holder, and no lock outliving a killed process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from object_detection_utils.io.locks import LockBusy, file_lock


def test_a_second_holder_waits_for_the_first(tmp_path):
    events = []
    lock = tmp_path / "x.lock"
    inside = threading.Event()

    def second_holder() -> None:
        with file_lock(lock):
            events.append("second in")
            inside.set()

    with file_lock(lock):
        thread = threading.Thread(target=second_holder)
        thread.start()
        assert not inside.wait(timeout=0.3)  # blocked while we hold it
        events.append("first out")
    thread.join(timeout=30)
    assert events == ["first out", "second in"]


def test_without_waiting_the_refusal_names_the_holder(tmp_path):
    lock = tmp_path / "x.lock"
    with file_lock(lock):
        with pytest.raises(LockBusy) as busy:
            with file_lock(lock, blocking=False):
                pass
    assert busy.value.holder.startswith(f"pid {os.getpid()} on ")
    with file_lock(lock, blocking=False):  # free again once released
        pass


def test_a_killed_holder_leaves_no_stuck_lock(tmp_path):
    lock = tmp_path / "x.lock"
    code = (
        "import sys, time\n"
        "from object_detection_utils.io.locks import file_lock\n"
        "with file_lock(sys.argv[1]):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy, match=f"pid {child.pid} "):
            with file_lock(lock, blocking=False):
                pass
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert lock.exists()  # the file stays; the lock went with the process
    with file_lock(lock, blocking=False):
        pass
