"""Counting on a generated video with planned crossings: the tracker follows the exact ground-truth masks and the
line counter gives exactly the in/out counts per class that the plan implies."""

from __future__ import annotations

import numpy as np

from object_detection_utils.detections import TRACK_ID
from object_detection_utils.shapes_video import MovingShape, render_sequence, truth_detections
from object_detection_utils.tracking.counting import LineCounter
from object_detection_utils.tracking.tracker import MaskTracker

SIZE = (120, 160)  # height, width
FRAMES = 80
LINE = ((80.0, 0.0), (80.0, 119.0))  # vertical, drawn downwards: its left is x > 80, so "in" is right to left
CIRCLE, SQUARE, TRIANGLE = 1, 2, 3


def mover(track_id: int, class_id: int, y: float, times: list[int], xs: list[float], radius: int = 6) -> MovingShape:
    """An object moving along the row `y` through x = `xs` at frames `times`."""
    return MovingShape(track_id, class_id, None, radius, 0.3, np.array(times, float),
                       np.array([(x, y) for x in xs], float))


PLAN = [
    mover(1, CIRCLE, 12, [0, 50], [20, 140]),  # crosses left to right once: out
    # out, back in, out again (counted once); it slows to a stop before each turn: a reversal from 4 px a frame
    # to -4 at once is a jump the motion model cannot follow on a 12-pixel object (it would get a new id)
    mover(2, TRIANGLE, 36, [0, 25, 29, 49, 53, 73], [60, 110, 110, 70, 70, 110], radius=8),
    mover(3, SQUARE, 60, [5, 50], [140, 20]),  # 3 and 4 cross right to left together: in, in
    mover(4, CIRCLE, 84, [5, 50], [140, 20]),
    mover(5, SQUARE, 108, [0, 30, 59], [140, 90, 140]),  # comes near the line and turns back: never counted
]


def test_line_counts_on_a_generated_video_are_exactly_the_planned_crossings():
    sequence = render_sequence(PLAN, FRAMES, SIZE, np.random.default_rng(0))
    tracker, line = MaskTracker(), LineCounter(*LINE)
    events: list[tuple[int, int, str]] = []  # (frame, ground-truth id, direction)
    truth_of: dict[int, set[int]] = {}  # tracker id -> ground-truth ids it was given to
    for t in range(FRAMES):
        found = truth_detections(sequence, t)
        found.data["truth"] = sequence.track_ids[t]  # carried through the tracker with each instance
        tracked = tracker.update(found, t)
        truth = dict(zip(tracked.data[TRACK_ID].tolist(), tracked.data["truth"].tolist()))
        for track_id, truth_id in truth.items():
            truth_of.setdefault(track_id, set()).add(truth_id)
        events += [(t, truth[track_id], direction) for track_id, direction in line.update(tracked)]
    assert sorted(truth_of) == [1, 2, 3, 4, 5]
    assert all(len(ids) == 1 for ids in truth_of.values())  # no id switch
    assert (line.counted_in, line.counted_out) == ({"triangle": 1, "square": 1, "circle": 1},
                                                   {"circle": 1, "triangle": 1})
    assert (line.total_in, line.total_out) == (3, 2)
    order = [(truth_id, direction) for _, truth_id, direction in events]
    assert sorted(order) == [(1, "out"), (2, "in"), (2, "out"), (3, "in"), (4, "in")]
    frames = {(truth_id, direction): t for t, truth_id, direction in events}
    assert frames[(3, "in")] == frames[(4, "in")]  # the pair crossed together, in one frame
    assert frames[(2, "out")] < frames[(2, "in")]  # the turn-back: out first, then in; its second out not counted
