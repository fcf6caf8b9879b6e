from __future__ import annotations

import sys

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


def test_equality_and_hash_are_identity_and_same_as_compares_values():
    first, second = _three(), _three()
    assert first == first and first != second and hash(first) == hash(first)
    assert {first: "a", second: "b"}[second] == "b" and len({first, second, first}) == 2
    instance = next(iter(first))
    assert instance == instance and instance != next(iter(second))
    assert first.same_as(second) and second.same_as(first)
    masks = second.masks.copy()
    masks[2, 3, 4] = False
    assert not first.same_as(Detections(second.boxes, second.class_ids, second.class_names, second.scores, masks,
                                        second.image_size))
    assert not first.same_as(Detections(second.boxes, second.class_ids, second.class_names, second.scores, None,
                                        second.image_size))
    assert not first.same_as(Detections(second.boxes, second.class_ids, ("person", "cat", "person"), second.scores,
                                        second.masks, second.image_size))
    assert not first.same_as(_with_data())
    assert not _with_data().same_as(_three())
    assert _with_data().same_as(_with_data())


def _with_data() -> Detections:
    d = _three()
    return Detections(d.boxes, d.class_ids, d.class_names, d.scores, d.masks, d.image_size,
                      data={"track_id": [7, 8, 9], "colour": np.array(["red", "green", "blue"])})


def test_data_follows_indexing_filtering_and_iteration():
    detections = _with_data()
    assert isinstance(detections.data["track_id"], np.ndarray)
    picked = detections[np.array([False, True, True])]
    assert picked.data["track_id"].tolist() == [8, 9] and picked.data["colour"].tolist() == ["green", "blue"]
    assert detections[2].data["track_id"].tolist() == [9]
    assert detections.filter(min_score=0.5).data["colour"].tolist() == ["red", "green"]
    assert detections.filter(class_ids=[18]).data["track_id"].tolist() == [8]
    assert detections.filter(min_score=0.95).data["track_id"].shape == (0,)
    assert [(int(i.data["track_id"]), str(i.data["colour"])) for i in detections] == [
        (7, "red"), (8, "green"), (9, "blue")]
    assert next(iter(_three())).data == {}
    empty = Detections.empty((4, 5), data_dtypes={"track_id": np.int64})
    assert empty.data["track_id"].shape == (0,) and empty.data["track_id"].dtype == np.int64
    assert Detections.empty((4, 5)).data == {}


def test_data_of_the_wrong_length_is_refused_naming_the_key():
    d = _three()
    message = r"^detections data\['track_id'\] has 2 entries, not one per instance \(3\)$"
    with pytest.raises(ValueError, match=message):
        Detections(d.boxes, d.class_ids, d.class_names, d.scores, d.masks, d.image_size, data={"track_id": [1, 2]})
    with pytest.raises(ValueError, match=r"data\['frame'\] has a scalar"):
        Detections(d.boxes, d.class_ids, d.class_names, d.scores, d.masks, d.image_size, data={"frame": 4})


def test_to_coco_is_the_coco_module_entries():
    from object_detection_utils.coco_format import decode_mask, detections_to_coco

    detections = _three()
    entries = detections.to_coco(12)
    assert entries == detections_to_coco(detections, 12)
    assert [e["image_id"] for e in entries] == [12, 12, 12] and [e["area"] for e in entries] == [1, 4, 20]
    assert all(np.array_equal(decode_mask(e["segmentation"]), m) for e, m in zip(entries, detections.masks))
    assert all("image_id" not in e for e in detections.to_coco(None))


# --- supervision -----------------------------------------------------------------------------------------------

@pytest.fixture
def sv():
    return pytest.importorskip("supervision")


def _picture_detections() -> Detections:
    """Three instances on a 6 x 8 picture: a small one, a large one under it, one apart."""
    masks = np.zeros((3, 6, 8), bool)
    masks[0, 2:4, 3:6] = True
    masks[1, 1:5, 1:5] = True
    masks[2, 5, 6:8] = True
    masks[2, 0, 7] = True  # outside its box: masks are drawn whole, not cut to the box
    return Detections(
        boxes=np.array([[3, 2, 6, 4], [1, 1, 5, 5], [6, 5, 8, 6]], np.float32),
        class_ids=np.array([18, 1, 3], np.int32),
        class_names=("dog", "person", "car"),
        scores=np.array([0.9, 0.75, 0.5], np.float32),
        masks=masks,
        image_size=(6, 8),
        data={"track_id": np.array([4, 5, 6])},
    )


def test_supervision_round_trip_keeps_masks_names_and_data(sv):
    ours = _picture_detections()
    theirs = ours.to_supervision()
    assert isinstance(theirs, sv.Detections)
    assert np.array_equal(theirs.mask, ours.masks) and np.array_equal(theirs.xyxy, ours.boxes)
    assert theirs.class_id.tolist() == [18, 1, 3] and theirs.confidence.tolist() == ours.scores.tolist()
    assert theirs.data["class_name"].tolist() == ["dog", "person", "car"]
    assert theirs.data["track_id"].tolist() == [4, 5, 6]
    back = Detections.from_supervision(theirs)
    assert back.same_as(ours) and back.masks.dtype == bool and back.image_size == (6, 8)
    assert Detections.from_supervision(theirs[theirs.confidence > 0.6]).same_as(ours.filter(min_score=0.6))
    assert Detections.from_supervision(ours[:0].to_supervision()).same_as(ours[:0])


def test_supervision_area_equals_our_mask_areas(sv):
    ours = _picture_detections()
    assert ours.to_supervision().area.tolist() == ours.areas.tolist() == [6, 16, 3]


def test_supervision_mask_annotator_paints_exactly_our_masks(sv):
    ours = _picture_detections()
    colours = [sv.Color(255, 0, 0), sv.Color(0, 200, 0), sv.Color(10, 20, 230)]
    annotator = sv.MaskAnnotator(color=sv.ColorPalette(colours), opacity=1.0, color_lookup=sv.ColorLookup.INDEX)
    scene = np.full((6, 8, 3), 100, np.uint8)
    drawn = annotator.annotate(scene.copy(), ours.to_supervision())
    expected = scene.copy()
    for i in np.argsort(-ours.areas, kind="stable"):  # supervision paints the largest first
        expected[ours.masks[i]] = colours[i].as_bgr()
    assert np.array_equal(drawn, expected)
    union = ours.masks.any(axis=0)
    assert np.array_equal(drawn[~union], scene[~union]) and (drawn[union] != 100).any(axis=1).all()
    assert drawn[2, 3].tolist() == [0, 0, 255]  # the small instance (red, BGR) stays on top of the large one

    half = sv.MaskAnnotator(color=sv.ColorPalette(colours), opacity=0.5, color_lookup=sv.ColorLookup.INDEX)
    blended = half.annotate(scene.copy(), ours.to_supervision())
    assert np.array_equal(blended[~union], scene[~union])
    assert np.abs(blended[union].astype(int) - (expected[union].astype(int) + 100) / 2).max() <= 0.5


def test_from_supervision_names_from_a_label_map_and_sizes_without_masks(sv):
    from object_detection_utils.label_map import LabelMap

    theirs = sv.Detections(xyxy=np.array([[0, 0, 2, 2], [1, 1, 3, 4]], float), confidence=np.array([0.8, 0.4]),
                           class_id=np.array([18, 99]))
    ours = Detections.from_supervision(theirs, class_names=LabelMap({1: "person", 18: "dog"}), image_size=(5, 6))
    assert ours.class_names == ("dog", "class 99") and ours.masks is None and ours.image_size == (5, 6)
    assert ours.boxes.dtype == np.float32 and ours.class_ids.dtype == np.int32 and ours.scores.dtype == np.float32
    assert Detections.from_supervision(theirs, {18: "hund", 99: "x"}, image_size=(5, 6)).class_names == ("hund", "x")
    with pytest.raises(ValueError, match=r"without masks: pass image_size"):
        Detections.from_supervision(theirs, class_names={18: "dog"})
    with pytest.raises(ValueError, match=r'without data\["class_name"\]: pass class_names'):
        Detections.from_supervision(theirs, image_size=(5, 6))
    with pytest.raises(ValueError, match="without confidence"):
        Detections.from_supervision(sv.Detections(xyxy=theirs.xyxy, class_id=theirs.class_id), {}, (5, 6))
    with pytest.raises(TypeError, match="expected supervision.Detections, got dict"):
        Detections.from_supervision({}, image_size=(5, 6))


def test_from_supervision_reads_compact_masks(sv):
    ours = _picture_detections()
    theirs = ours.to_supervision()
    theirs.mask = sv.CompactMask.from_dense(ours.masks, np.array([[0, 0, 7, 5]] * 3), image_shape=(6, 8))
    assert Detections.from_supervision(theirs).same_as(ours)


def test_a_missing_supervision_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "supervision", None)
    message = r'^supervision is not installed: pip install "instance-segmentation\[supervision\]"$'
    with pytest.raises(ImportError, match=message):
        _three().to_supervision()
