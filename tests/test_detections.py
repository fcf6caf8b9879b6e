from __future__ import annotations

import numpy as np
import pytest

from object_detection_utils.detections import Detections


def _three() -> Detections:
    masks = np.zeros((3, 4, 5), bool)
    masks[0, 0, 0] = True
    masks[1, :2, :2] = True
    masks[2] = True
    return Detections(
        boxes=np.array([[0, 0, 1, 1], [0, 0, 2, 2], [0, 0, 5, 4]], np.float32),
        class_ids=np.array([1, 18, 1], np.int32),
        class_names=("person", "dog", "person"),
        scores=np.array([0.9, 0.6, 0.3], np.float32),
        masks=masks,
        image_size=(4, 5),
    )


def test_filter_by_score_and_class():
    detections = _three()
    assert detections.filter(min_score=0.5).class_names == ("person", "dog")
    assert detections.filter(class_ids=[1]).scores.tolist() == pytest.approx([0.9, 0.3])
    assert len(detections.filter(min_score=0.95)) == 0


def test_indexing_keeps_every_field_aligned():
    picked = _three()[np.array([False, True, True])]
    assert picked.class_names == ("dog", "person")
    assert picked.masks.sum(axis=(1, 2)).tolist() == [4, 20]
    assert _three()[0].class_ids.tolist() == [1]
    assert _three()[1:].scores.tolist() == pytest.approx([0.6, 0.3])


def test_areas_counts_and_iteration():
    detections = _three()
    assert detections.areas.tolist() == [1, 4, 20]
    assert detections.counts() == {"person": 2, "dog": 1}
    assert [(i.class_name, round(i.score, 1), int(i.mask.sum())) for i in detections] == [
        ("person", 0.9, 1), ("dog", 0.6, 4), ("person", 0.3, 20)]


def test_empty_results_work_everywhere():
    empty = Detections.empty((4, 5))
    assert len(empty) == 0 and empty.areas.shape == (0,) and empty.counts() == {}
    assert empty.filter(min_score=0.5, class_ids=[1]).masks.shape == (0, 4, 5)
    assert empty.to_matterport()["masks"].shape == (4, 5, 0)
    assert Detections.empty((4, 5), with_masks=False).areas.shape == (0,)


def test_inconsistent_fields_are_refused():
    with pytest.raises(ValueError, match="inconsistent"):
        Detections(np.zeros((2, 4), np.float32), np.zeros(1, np.int32), ("a",), np.zeros(1, np.float32), None, (4, 5))
    with pytest.raises(ValueError, match="masks"):
        Detections(np.zeros((1, 4), np.float32), np.zeros(1, np.int32), ("a",), np.zeros(1, np.float32),
                   np.zeros((1, 3, 3), bool), (4, 5))
