"""MaskTracker on hand-made detections whose ids are known: masks against boxes, confirmation, the low-score
stage, time gaps and lost tracks."""

from __future__ import annotations

import numpy as np

from object_detection_utils.detections import TRACK_ID, Detections
from object_detection_utils.tracking.tracker import MaskTracker, TrackerOptions

SIZE = (64, 64)


def square(x: float, y: float, side: int = 10) -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros(SIZE, bool)
    mask[int(y):int(y) + side, int(x):int(x) + side] = True
    return np.array([x, y, x + side, y + side], np.float32), mask


def detections(*items: tuple[np.ndarray, np.ndarray], scores: list[float] | None = None) -> Detections:
    n = len(items)
    boxes = np.stack([b for b, _ in items]) if n else np.zeros((0, 4), np.float32)
    masks = np.stack([m for _, m in items]) if n else np.zeros((0, *SIZE), bool)
    return Detections(boxes, np.ones(n, np.int32), ("square",) * n,
                      np.array(scores or [0.9] * n, np.float32), masks, SIZE)


def diagonal(anti: bool) -> tuple[np.ndarray, np.ndarray]:
    """A 3-pixel-wide diagonal (or anti-diagonal) line filling the box (10, 10, 50, 50)."""
    mask = np.zeros(SIZE, bool)
    for i in range(40):
        column = 10 + (39 - i if anti else i)
        mask[10 + i, max(column - 1, 10):column + 2] = True
    return np.array([10, 10, 50, 50], np.float32), mask


def ids(result: Detections) -> list[int]:
    return result.data[TRACK_ID].tolist()


def test_masks_tell_apart_two_objects_with_the_same_box_where_boxes_alone_swap_ids():
    a, b = diagonal(False), diagonal(True)
    orders = [(a, b), (b, a), (a, b), (b, a), (b, a)]
    for options, expected in ((TrackerOptions(), [[1, 2], [2, 1], [1, 2], [2, 1], [2, 1]]),
                              (TrackerOptions(mask_weight=0.0), [[1, 2]] * 5)):
        tracker = MaskTracker(options)
        # with masks, the id follows the shape (a is always 1) whatever the detection order; with boxes only,
        # the two are equally similar and the ids follow the order instead
        assert [ids(tracker.update(detections(*order))) for order in orders] == expected


def test_tracks_after_the_first_frame_get_an_id_only_once_confirmed():
    tracker = MaskTracker()
    assert ids(tracker.update(detections(square(5, 5)))) == [1]  # the first frame has no history to doubt
    second = tracker.update(detections(square(6, 5), square(40, 40)))
    assert ids(second) == [1] and len(second) == 1  # the newcomer is tentative: left out, no id
    assert ids(tracker.update(detections(square(7, 5), square(41, 40)))) == [1, 2]


def test_a_tentative_track_that_misses_once_is_dropped():
    tracker = MaskTracker()
    tracker.update(detections())
    tracker.update(detections(square(40, 40)))
    tracker.update(detections())
    assert ids(tracker.update(detections(square(40, 40)))) == []  # started again, tentative again
    assert ids(tracker.update(detections(square(40, 40)))) == [1]


def test_low_score_detections_keep_a_track_alive_but_start_none():
    tracker = MaskTracker()
    tracker.update(detections(square(5, 5)))
    kept = tracker.update(detections(square(6, 5), square(40, 40), scores=[0.3, 0.3]))
    assert ids(kept) == [1] and kept.scores.tolist() == [np.float32(0.3)]
    assert ids(tracker.update(detections(square(7, 5), square(40, 40), scores=[0.9, 0.3]))) == [1]
    assert ids(tracker.update(detections(square(8, 5), square(40, 40), scores=[0.9, 0.05]))) == [1]


def test_skipped_frames_are_a_time_gap_the_motion_model_bridges():
    frames = [0, 1, 2, 3, 4, 5, 8, 9]  # 4 px a frame; frames 6 and 7 skipped (newest-frame mode)
    tracker = MaskTracker()
    assert [ids(tracker.update(detections(square(4 * t, 20)), t)) for t in frames] == [[1]] * 8
    tracker = MaskTracker()  # the same pictures taken as consecutive frames: the jump loses the object
    assert [ids(tracker.update(detections(square(4 * t, 20)))) for t in frames] == [[1]] * 6 + [[], [2]]


def test_a_lost_track_comes_back_with_its_id_until_it_has_been_lost_too_long():
    tracker = MaskTracker(TrackerOptions(max_lost_frames=5))
    tracker.update(detections(square(20, 20)), 0)
    tracker.update(detections(), 1)
    assert ids(tracker.update(detections(square(20, 20)), 5)) == [1]  # lost 4 frames: the same object
    tracker.update(detections(), 6)
    tracker.update(detections(square(20, 20)), 12)  # lost 7 frames: a new, tentative track
    assert ids(tracker.update(detections(square(20, 20)), 13)) == [2]


def test_output_keeps_masks_and_data_in_detection_order():
    tracker = MaskTracker()
    found = detections(square(40, 40), square(5, 5))
    found = Detections(found.boxes, found.class_ids, found.class_names, found.scores, found.masks, SIZE,
                       {"note": np.array(["a", "b"])})
    out = tracker.update(found)
    assert ids(out) == [1, 2] and out.data["note"].tolist() == ["a", "b"]
    assert np.array_equal(out.masks, found.masks)
