#!/usr/bin/env python3
"""Segment live or recorded video: a camera, a video file or a stream URL, shown with fps and inference time.

    python instance_segmentation_webcam.py                                  # first camera, until q/Esc/Ctrl+C
    python instance_segmentation_webcam.py --source rtsp://host/stream --classes person
    python instance_segmentation_webcam.py --source clip.mp4 --every-frame -o clip_segmented.mp4 --no-display

The command is object_detection_utils/apps/webcam.py; --help says the rest.
"""

from object_detection_utils.apps.webcam import main, run

__all__ = ["main", "run"]

if __name__ == "__main__":
    run()
