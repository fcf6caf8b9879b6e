#!/usr/bin/env python3
"""The video script's frame rate with and without tracking, side by side in one run, on the same frames.

    python benchmarks/video_tracking_fps.py                        # shapes model, the shared car video
    python benchmarks/video_tracking_fps.py --video clip.mp4 --frames 60 --rounds 3

Each round segments the first `--frames` frames of the video every frame in order (`--every-frame`, no window),
once without tracking and once with `--track` and a counting line, alternating which goes first, so a change in
the machine's load falls on both. Reported: median fps and inference ms/frame of each, and the tracker's own
median ms/frame (tracker and counters, timed around `VideoTracking.track`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import ClassVar

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

import numpy as np

from object_detection_utils import Segmenter
from object_detection_utils.apps import video_segmentation, video_tracking
from object_detection_utils.apps.video_segmentation import VideoOptions, segment_video
from object_detection_utils.detections import Detections
from object_detection_utils.io.video_sources import open_video_source

MODEL = REPO.parent / "shared" / "models" / "shapes-r18-128"
VIDEO = REPO.parent / "shared" / "data" / "video" / "car-detection.mp4"


class TimedTracking(video_tracking.VideoTracking):
    """`VideoTracking` that records how long each `track` call takes."""

    seconds: ClassVar[list[float]] = []  # every call of every instance

    def track(self, frame_index: int, detections: Detections) -> Detections:
        started = time.perf_counter()
        tracked = super().track(frame_index, detections)
        TimedTracking.seconds.append(time.perf_counter() - started)
        return tracked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    segmenter = Segmenter.load(str(args.model))
    video_segmentation.VideoTracking = TimedTracking  # what segment_video builds for --track
    results: dict[str, dict[str, list[float]]] = {mode: {"fps": [], "inference": []} for mode in ("plain", "track")}
    first = open_first_frame(args.video)
    segmenter(first)  # warm-up: the first call builds the graph
    height, width = first.shape[:2]
    line = ((0.0, height / 2), (width - 1.0, height / 2))  # across the middle
    for round_index in range(args.rounds):
        modes = ("plain", "track") if round_index % 2 == 0 else ("track", "plain")
        for mode in modes:
            tracking = video_tracking.TrackingOptions(count_lines=(line,)) if mode == "track" else None
            summary = segment_video(segmenter, open_video_source(str(args.video)),
                                    VideoOptions(every_frame=True, max_frames=args.frames, progress=False,
                                                 tracking=tracking))
            results[mode]["fps"].append(summary.fps)
            results[mode]["inference"].append(1000 * statistics.mean(summary.inference_seconds))
            print(f"round {round_index + 1} {mode:5s}: {summary.describe()}", file=sys.stderr, flush=True)
    print(f"{args.video.name}, {args.frames} frames x {args.rounds} rounds, model {args.model.name}")
    for mode, label in (("plain", "without --track"), ("track", "with --track")):
        print(f"  {label:16s} {statistics.median(results[mode]['fps']):6.2f} fps, "
              f"inference {statistics.median(results[mode]['inference']):6.1f} ms/frame")
    print(f"  tracker + counting line: {1000 * statistics.median(TimedTracking.seconds):.2f} ms/frame (median)")


def open_first_frame(video: Path) -> np.ndarray:
    source = open_video_source(str(video))
    try:
        return source.read()
    finally:
        source.close()


if __name__ == "__main__":
    main()
