"""OpenCV's video back-ends (FFmpeg, GStreamer) made quiet before their first use, never at import."""

from __future__ import annotations

import functools
import os

import cv2


@functools.cache
def quiet_video_backends() -> None:
    """Silence FFmpeg's and OpenCV's own messages about bad input: our errors say what went wrong.

    Called before the first capture or writer, not at import. FFmpeg's level can only be set through
    OPENCV_FFMPEG_LOGLEVEL, which OpenCV reads once, when its FFmpeg back-end first starts; OpenCV's own
    level is set at run time. Levels the user set in the environment are kept.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
