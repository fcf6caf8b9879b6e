from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from object_detection_utils.coco_format import (
    annotations_from_masks,
    coco_image_ids,
    decode_mask,
    detections_to_coco,
    encode_mask,
)
from object_detection_utils.detections import Detections
from object_detection_utils.io.coco import write_coco_dataset


def _masks() -> np.ndarray:
    masks = np.zeros((2, 5, 7), bool)
    masks[0, 1:3, 2:5] = True  # rows 1-2, columns 2-4: 6 pixels
    masks[1, 4, 0] = masks[1, 0, 6] = True  # two far corners: 2 pixels, box the whole picture
    return masks


def _detections(masks: np.ndarray | None) -> Detections:
    return Detections(
        boxes=np.array([[2.004, 0.996, 5.0, 3.0], [0, 0, 7, 5]], np.float32),
        class_ids=np.array([3, 18], np.int32),
        class_names=("car", "dog"),
        scores=np.array([0.912345678, 0.5], np.float32),
        masks=masks,
        image_size=(5, 7),
    )


def test_rle_round_trip_is_exact_and_serialises_to_json():
    for mask in _masks():
        rle = encode_mask(mask)
        assert isinstance(rle["counts"], str) and rle["size"] == [5, 7]
        assert np.array_equal(decode_mask(json.loads(json.dumps(rle))), mask)
        assert np.array_equal(decode_mask({**rle, "counts": rle["counts"].encode("ascii")}), mask)


def test_result_entries_with_masks():
    masks = _masks()
    entries = detections_to_coco(_detections(masks), image_id=42)
    assert [{k: v for k, v in e.items() if k != "segmentation"} for e in entries] == [
        {"image_id": 42, "category_id": 3, "bbox": [2.0, 1.0, 3.0, 2.0], "score": 0.91235, "area": 6},
        {"image_id": 42, "category_id": 18, "bbox": [0.0, 0.0, 7.0, 5.0], "score": 0.5, "area": 2},
    ]
    assert all(type(e["area"]) is int for e in entries)
    for entry, mask in zip(entries, masks):
        assert np.array_equal(decode_mask(entry["segmentation"]), mask)
        assert entry["area"] == mask.sum()
    assert list(entries[0]) == ["image_id", "category_id", "bbox", "score", "segmentation", "area"]


def test_result_entries_without_masks_or_image_id():
    entries = detections_to_coco(_detections(None), image_id=None)
    assert entries == [
        {"category_id": 3, "bbox": [2.0, 1.0, 3.0, 2.0], "score": 0.91235,
         "area": pytest.approx((5.0 - 2.004) * (3.0 - 0.996), abs=1e-5)},
        {"category_id": 18, "bbox": [0.0, 0.0, 7.0, 5.0], "score": 0.5, "area": 35.0},
    ]
    assert all(type(e["area"]) is float for e in entries)
    assert detections_to_coco(Detections.empty((5, 7)), image_id=1) == []


def test_ground_truth_annotations_from_masks():
    annotations = annotations_from_masks(_masks(), np.array([3, 18], np.int32), image_id=9, first_id=11)
    assert [{k: v for k, v in a.items() if k != "segmentation"} for a in annotations] == [
        {"id": 11, "image_id": 9, "category_id": 3, "area": 6.0, "bbox": [2.0, 1.0, 3.0, 2.0], "iscrowd": 0},
        {"id": 12, "image_id": 9, "category_id": 18, "area": 2.0, "bbox": [0.0, 0.0, 7.0, 5.0], "iscrowd": 0},
    ]
    assert all(np.array_equal(decode_mask(a["segmentation"]), m) for a, m in zip(annotations, _masks()))
    assert annotations_from_masks(np.zeros((0, 5, 7), bool), [], image_id=9, first_id=1) == []


def test_coco_image_ids_are_stable_numeric_stems_else_a_running_index():
    ids = coco_image_ids(["b.jpg", "000000000002.jpg", "a.jpg", "x/000000000002.png", "000000397133.jpg", "0.jpg"])
    assert ids == {"000000000002.jpg": 2, "000000397133.jpg": 397133, "0.jpg": 1, "a.jpg": 3, "b.jpg": 4,
                   "x/000000000002.png": 5}


def _dataset(tmp_path):
    images = [{"id": 1, "file_name": "a.png", "height": 5, "width": 7},
              {"id": 2, "file_name": "b.png", "height": 5, "width": 7}]
    annotations = annotations_from_masks(_masks(), [3, 18], image_id=1, first_id=1)
    streamed = [{"image_id": 2, "category_id": 3, "segmentation": encode_mask(_masks()[0]), "area": 6.0,
                 "bbox": [2.0, 1.0, 3.0, 2.0]}]  # no id, no iscrowd: the writer adds them
    categories = [{"id": 3, "name": "car", "supercategory": "object"},
                  {"id": 18, "name": "dog", "supercategory": "object"}]
    path = tmp_path / "out" / "dataset.json"
    calls = []

    def stream(entries, name):
        calls.append(name)
        yield from entries

    write_coco_dataset(path, lambda: stream(images, "images"), lambda: stream(annotations + streamed, "annotations"),
                       categories, "test set")
    assert calls == ["images", "annotations"]
    return path, images, annotations, streamed, categories


def test_a_written_dataset_loads_in_pycocotools_with_what_went_in(tmp_path):
    path, images, annotations, streamed, categories = _dataset(tmp_path)
    coco = COCO(str(path))
    assert coco.dataset["info"] == {"description": "test set"}
    assert coco.loadImgs(coco.getImgIds()) == images
    assert coco.loadCats(coco.getCatIds()) == categories
    assert coco.loadAnns(coco.getAnnIds()) == annotations + [{"id": 3, **streamed[0], "iscrowd": 0}]
    assert coco.getAnnIds(imgIds=[2]) == [3]
    assert sorted(p.name for p in path.parent.iterdir()) == ["dataset.json"]


def test_result_entries_score_perfectly_against_the_same_masks_as_ground_truth(tmp_path):
    path, *_ = _dataset(tmp_path)
    ground_truth = COCO(str(path))
    found = detections_to_coco(_detections(_masks()), image_id=1) + [
        {**entry, "score": 0.7} for entry in detections_to_coco(_detections(_masks())[:1], image_id=2)]
    evaluation = COCOeval(ground_truth, ground_truth.loadRes(found), "segm")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)


def test_a_failed_write_leaves_nothing(tmp_path):
    def broken():
        yield {"id": 1, "file_name": "a.png", "height": 5, "width": 7}
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_coco_dataset(tmp_path / "dataset.json", broken, lambda: [], [], "broken")
    assert list(tmp_path.iterdir()) == []
