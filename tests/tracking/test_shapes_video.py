"""Generated tracking videos: the same from the same seed, and their planned crossings really meet."""

from __future__ import annotations

import numpy as np

from object_detection_utils.shapes_video import generate_sequence


def test_sequences_follow_the_seed_and_crossing_objects_meet():
    first, again = generate_sequence(5, frames=40, size=(96, 128)), generate_sequence(5, frames=40, size=(96, 128))
    assert all(np.array_equal(a, b) for a, b in zip(first.frames, again.frames))
    assert all(np.array_equal(a, b) for a, b in zip(first.track_ids, again.track_ids))
    shapes = {shape.track_id: shape for shape in first.shapes}
    for event in first.crossings:
        assert shapes[event.first].position(event.frame) == shapes[event.second].position(event.frame)
    for masks, ids in zip(first.masks, first.track_ids):
        assert len(set(ids.tolist())) == len(ids) and not (masks.sum(axis=0) > 1).any()  # visible parts only
