"""Our vectorised post-processing against the TF OD API's crop_and_resize path: same masks, same AP."""

from __future__ import annotations

import numpy as np
import pytest
from reference_postprocess import mask_ious, random_reframe_case, reference_detections, reference_image_masks
from simulated_model import simulated_outputs

from object_detection_utils import detections_from_outputs, load_model, read_image
from object_detection_utils.coco_format import detections_to_coco
from object_detection_utils.evaluation import evaluate_results, load_ground_truth
from object_detection_utils.label_map import LabelMap
from object_detection_utils.masks import reframe_box_masks

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def assert_same_detections(ours, reference) -> np.ndarray:
    """Boxes, classes and scores identical; returns the per-instance mask IoUs."""
    np.testing.assert_array_equal(ours.boxes, reference.boxes)
    np.testing.assert_array_equal(ours.class_ids, reference.class_ids)
    np.testing.assert_array_equal(ours.scores, reference.scores)
    assert ours.masks.shape == reference.masks.shape
    return mask_ious(ours.masks, reference.masks)


def test_random_masks_match_the_reference():
    """Random boxes (inside, across the edges, a few pixels wide) and soft masks on pictures of every shape."""
    rng = np.random.default_rng(2024)
    ious = []
    for _ in range(60):
        height, width = (int(v) for v in rng.integers(1, 160, size=2))
        box_masks, boxes = random_reframe_case(rng, int(rng.integers(1, 5)), int(rng.choice([15, 33])))
        ours = reframe_box_masks(box_masks, boxes, height, width)
        reference = reference_image_masks(box_masks, boxes, height, width)
        ious.extend(mask_ious(ours, reference))
    assert len(ious) > 100
    assert min(ious) >= 0.99


def test_tiny_model_outputs_match_the_reference(tiny_frozen_dir):
    model = load_model(tiny_frozen_dir, warm_up=False)
    pictures = np.stack([np.full((90, 130, 3), 200, np.uint8), np.full((90, 130, 3), 60, np.uint8)])
    outputs = model.predict_batch(pictures)
    for index in range(2):
        ours = detections_from_outputs(outputs, (90, 130), model.label_map, index=index, min_score=0.25)
        reference = reference_detections(outputs, (90, 130), model.label_map, index=index, min_score=0.25)
        assert list(ours.class_ids) == ([1, 18, 3, 1] if index == 0 else [1, 18, 1])  # row 2 scores 60/255 < 0.25
        assert assert_same_detections(ours, reference).min() >= 0.99
        np.testing.assert_array_equal(ours.masks, reference.masks)


@pytest.fixture(scope="module")
def coco(shared_data):
    annotations = shared_data / "coco" / "annotations" / "instances_val2017.json"
    if not annotations.is_file():
        pytest.skip(f"COCO annotations not available: {annotations} is absent")
    return load_ground_truth(annotations)


def test_simulated_model_on_coco_gives_the_same_masks_and_ap(coco):
    """A model that outputs every true instance as a 33x33 box mask, post-processed both ways."""
    label_map = LabelMap.coco()
    ours_entries, reference_entries, ious = [], [], []
    for image_id in sorted(coco.imgs):
        outputs = simulated_outputs(coco, image_id)
        size = (coco.imgs[image_id]["height"], coco.imgs[image_id]["width"])
        ours = detections_from_outputs(outputs, size, label_map, min_score=0.0)
        reference = reference_detections(outputs, size, label_map, min_score=0.0)
        ious.extend(assert_same_detections(ours, reference))
        ours_entries += detections_to_coco(ours, image_id)
        reference_entries += detections_to_coco(reference, image_id)
    assert len(ious) == len(coco.getAnnIds(iscrowd=False))
    assert min(ious) >= 0.99
    ours_run = evaluate_results(coco, ours_entries, "ours")
    reference_run = evaluate_results(coco, reference_entries, "reference")
    assert ours_run.metrics == reference_run.metrics  # every figure, per class and PR curves included
    assert ours_run.ap("bbox") == pytest.approx(1.0)
    assert 0.5 < ours_run.ap("segm") < 1.0  # 33x33 masks lose detail; both paths lose the same


@pytest.mark.slow
def test_trained_model_matches_the_reference(trained_model_dir, shared_data):
    """A real model from ../shared/models: its masks and AP on the COCO subset, both ways."""
    model = load_model(trained_model_dir)
    if not model.has_masks:
        pytest.skip(f"{trained_model_dir.name} has no mask head")
    coco = load_ground_truth(shared_data / "coco" / "annotations" / "instances_val2017.json")
    ours_entries, reference_entries, ious = [], [], []
    for image_id in sorted(coco.imgs)[:20]:
        image = read_image(shared_data / "coco" / "val2017" / coco.imgs[image_id]["file_name"])
        outputs = model.predict(image)
        ours = detections_from_outputs(outputs, image.shape[:2], model.label_map, min_score=0.0)
        reference = reference_detections(outputs, image.shape[:2], model.label_map, min_score=0.0)
        ious.extend(assert_same_detections(ours, reference))
        ours_entries += detections_to_coco(ours, image_id)
        reference_entries += detections_to_coco(reference, image_id)
    if ious:
        assert min(ious) >= 0.99
    image_ids = sorted(coco.imgs)[:20]
    assert (evaluate_results(coco, ours_entries, "ours", image_ids=image_ids).metrics
            == evaluate_results(coco, reference_entries, "reference", image_ids=image_ids).metrics)
