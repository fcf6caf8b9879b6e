"""Run a video script with its loop paused after each frame is shown, so that a test can look at the window.

    python gated_frames.py COMMAND_FD REPLY_FD script.py ARGS...

After each frame is drawn in the window (the loop's `pump_events`), this writes "shown N" (N = frames shown) to
REPLY_FD and waits for a line on COMMAND_FD: "pump" lets the window handle its events once more and reports
again; "next", or the pipe closing, goes on. The script itself runs unchanged.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path


def main() -> None:
    script = sys.argv[3]
    sys.path.insert(0, str(Path(script).resolve().parent))  # as running the script itself would: its package
    from object_detection_utils.apps import video_segmentation

    pump_events = video_segmentation.pump_events
    commands = os.fdopen(int(sys.argv[1]), "r")
    replies = os.fdopen(int(sys.argv[2]), "w", buffering=1)
    shown = 0

    def gated(seconds: float) -> None:
        nonlocal shown
        pump_events(seconds)
        shown += 1
        while True:
            replies.write(f"shown {shown}\n")
            if commands.readline().strip() != "pump":
                return
            pump_events(0.05)

    video_segmentation.pump_events = gated
    sys.argv = sys.argv[3:]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
