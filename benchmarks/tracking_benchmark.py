#!/usr/bin/env python3
"""Tracking on generated shapes videos: ours (MaskTracker) against roboflow `trackers`' ByteTrack and SORT, on the
same cached detections, scored by TrackEval; then speed with 30 objects and peak RSS.

    nice -n 10 python benchmarks/tracking_detections.py    # once: the model's detections, cached (~10 min)
    python benchmarks/tracking_benchmark.py                 # the tables (~1 min)

Sequences: `shapes_video.generate_sequence(seed, 150)` for seeds 0-19 (192x256, crossings, a turn-back,
near-identical neighbours, objects entering and leaving). "crossings" scores only the 31 frames around each
planned crossing (frame - 15 .. frame + 15), where id switches between the two crossing objects happen.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from tracking_detections import FRAMES, SEEDS, load_detections

from object_detection_utils.detections import TRACK_ID, Detections
from object_detection_utils.shapes_video import generate_sequence
from object_detection_utils.tracking.mots import MotsObject, mots_lines, parse_mots
from object_detection_utils.tracking.scoring import score_data, sequence_data
from object_detection_utils.tracking.tracker import MaskTracker

CROSSING_WINDOW = 15


def truth_objects(sequence) -> list[MotsObject]:
    lines = []
    for frame, (masks, ids, classes) in enumerate(zip(sequence.masks, sequence.track_ids, sequence.class_ids)):
        n = len(ids)
        found = Detections(np.zeros((n, 4), np.float32), classes, ("",) * n, np.ones(n, np.float32), masks,
                           masks.shape[1:], {TRACK_ID: ids})
        lines += mots_lines(frame, found)
    return parse_mots("\n".join(lines))


class Ours:
    name = "ours (MaskTracker)"

    def __init__(self) -> None:
        self.tracker = MaskTracker()

    def __call__(self, detections: Detections) -> Detections:
        return self.tracker.update(detections)


class Roboflow:
    """A `trackers` tracker on supervision detections; its unconfirmed tracks (id -1) are left out."""

    def __init__(self, kind: str) -> None:
        import trackers

        self.name = f"trackers {kind}"
        self.tracker = trackers.ByteTrackTracker() if kind == "ByteTrack" else trackers.SORTTracker()

    def __call__(self, detections: Detections) -> Detections:
        out = self.tracker.update(detections.to_supervision())
        keep = out.tracker_id >= 0
        out = out[keep]
        result = Detections.from_supervision(out, image_size=detections.image_size)
        return Detections(result.boxes, result.class_ids, result.class_names, result.scores, result.masks,
                          result.image_size, {TRACK_ID: np.asarray(out.tracker_id, np.int64)})


def run(make, detections: Iterable[Detections]) -> tuple[list[MotsObject], list[float]]:
    tracker = make()
    lines, times = [], []
    for frame, found in enumerate(detections):
        started = time.perf_counter()
        tracked = tracker(found)
        times.append(time.perf_counter() - started)
        lines += mots_lines(frame, tracked)
    return parse_mots("\n".join(lines)), times


def crowd(rng: np.random.Generator, count: int = 30, frames: int = 300, size=(480, 640)) -> Iterator[Detections]:
    """`count` squares of 24 px moving in straight lines (bouncing), with masks: the speed test's input, made
    frame by frame as it is tracked (the time of making them is not counted)."""
    height, width = size
    position = rng.uniform([0, 0], [width - 24, height - 24], (count, 2))
    velocity = rng.uniform(-3, 3, (count, 2))
    for _ in range(frames):
        position += velocity
        bounce = (position < 0) | (position > [width - 24, height - 24])
        velocity[bounce] *= -1
        position = np.clip(position, 0, [width - 24, height - 24])
        boxes = np.concatenate([position, position + 24], axis=1).astype(np.float32)
        masks = np.zeros((count, height, width), bool)
        for k, (x, y) in enumerate(position.astype(int)):
            masks[k, y:y + 24, x:x + 24] = True
        yield Detections(boxes, np.ones(count, np.int32), ("square",) * count,
                         rng.uniform(0.3, 1.0, count).astype(np.float32), masks, size)


def table(rows: dict[str, dict[str, dict[str, float]]], crossing: dict[str, int]) -> str:
    head = ("| tracker | HOTA | IDF1 | MOTA | IDSW | IDSW at crossings | mask HOTA | mask IDF1 | sMOTSA | mask IDSW |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for name, figures in rows.items():
        box, mask = figures["box"], figures["mask"]
        lines.append(f"| {name} | {100 * box['HOTA']:.1f} | {100 * box['IDF1']:.1f} | {100 * box['MOTA']:.1f} | "
                     f"{box['IDSW']} | {crossing[name]} | {100 * mask['HOTA']:.1f} | {100 * mask['IDF1']:.1f} | "
                     f"{100 * mask['sMOTSA']:.1f} | {mask['IDSW']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    makers = [Ours, lambda: Roboflow("ByteTrack"), lambda: Roboflow("SORT")]
    names = ["ours (MaskTracker)", "trackers ByteTrack", "trackers SORT"]
    data = {name: {"box": [], "mask": [], "crossing": []} for name in names}
    for seed in args.seeds:
        sequence = generate_sequence(seed, FRAMES)
        truth = truth_objects(sequence)
        detections = load_detections(seed)
        for name, make in zip(names, makers):
            tracks, _ = run(make, detections)
            for on in ("box", "mask"):
                data[name][on].append(sequence_data(truth, tracks, on))
            for event in sequence.crossings:
                window = range(max(event.frame - CROSSING_WINDOW, 0), min(event.frame + CROSSING_WINDOW + 1, FRAMES))
                pair = [o for o in truth if o.track_id in (event.first, event.second)]
                data[name]["crossing"].append(sequence_data(pair, tracks, "mask", window))
        print(f"seed {seed} done", file=sys.stderr, flush=True)
    rows = {name: {on: score_data(data[name][on]) for on in ("box", "mask")} for name in names}
    crossing = {name: score_data(data[name]["crossing"])["IDSW"] for name in names}
    print(f"{len(args.seeds)} sequences of {FRAMES} frames (seeds {args.seeds[0]}-{args.seeds[-1]}), same detections\n")
    print(table(rows, crossing))
    if not args.skip_speed:
        print("\nspeed, 30 objects (480x640, masks), 300 frames: median ms/frame")
        medians = {}
        for name, make in zip(names, makers):
            _, times = run(make, crowd(np.random.default_rng(0)))
            medians[name] = 1000 * statistics.median(times)
        for name, value in medians.items():
            print(f"  {name:24s} {value:6.3f} ms  ({value / medians[names[0]]:.2f}x ours)")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
