"""Evaluation on the real COCO subset in ../shared/data: the truth scores AP 1.0, known damage lowers it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from simulated_model import ground_truth_detections

from object_detection_utils.apps import evaluate
from object_detection_utils.coco_format import detections_to_coco
from object_detection_utils.detections import Detections
from object_detection_utils.evaluation import evaluate_results, load_ground_truth, read_report

# pycocotools' mask decoding under numpy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def coco(shared_data):
    annotations = shared_data / "coco" / "annotations" / "instances_val2017.json"
    if not annotations.is_file():
        pytest.skip(f"COCO annotations not available: {annotations} is absent")
    return annotations, load_ground_truth(annotations)


@pytest.fixture(scope="module")
def truth_detections(coco) -> dict[int, Detections]:
    _, ground_truth = coco
    return {image_id: ground_truth_detections(ground_truth, image_id) for image_id in sorted(ground_truth.imgs)}


def entries_of(detections: dict[int, Detections]) -> list[dict]:
    return [entry for image_id, d in detections.items() for entry in detections_to_coco(d, image_id)]


def test_ground_truth_as_results_scores_ap_one_through_the_command(coco, truth_detections, tmp_path, capsys):
    annotations, ground_truth = coco
    results = tmp_path / "results.json"
    results.write_text(json.dumps(entries_of(truth_detections)))  # what the batch script writes
    code = evaluate.main(["--annotations", str(annotations), "--results", str(results),
                          "--report", str(tmp_path / "report.json"), "--plot", str(tmp_path / "pr.svg")])
    assert code == 0
    (run,) = read_report(tmp_path / "report.json").runs
    objects = len(ground_truth.getAnnIds(iscrowd=False))
    assert run.num_images == 80
    for iou_type in ("bbox", "segm"):
        for key, value in run.metrics[iou_type]["summary"].items():
            if key.startswith("AP"):
                assert value == pytest.approx(1.0), (iou_type, key)
        assert len(run.metrics[iou_type]["per_class_ap"]) == 80
        assert all(ap == pytest.approx(1.0) for ap in run.metrics[iou_type]["per_class_ap"].values())
        at = run.metrics[iou_type]["at_threshold"]
        assert (at["true_positives"], at["false_positives"], at["false_negatives"]) == (objects, 0, 0)
    assert (tmp_path / "pr.svg").read_text().lstrip().startswith("<?xml")


def test_missing_instances_lower_recall_and_ap(coco, truth_detections):
    _, ground_truth = coco
    kept = {i: d[np.arange(len(d)) % 4 != 0] for i, d in truth_detections.items()}  # drop every 4th
    dropped = sum(len(d) for d in truth_detections.values()) - sum(len(d) for d in kept.values())
    run = evaluate_results(ground_truth, entries_of(kept), "dropped")
    for iou_type in ("bbox", "segm"):
        at = run.metrics[iou_type]["at_threshold"]
        assert (at["precision"], at["false_negatives"]) == (1.0, dropped)
        assert run.metrics[iou_type]["summary"]["AP"] < 0.9
    # What is found is found exactly: box and mask AP agree.
    assert run.ap("bbox") == pytest.approx(run.ap("segm"))


def test_shifted_masks_lower_mask_ap_only(coco, truth_detections):
    _, ground_truth = coco
    shifted = {i: Detections(d.boxes, d.class_ids, d.class_names, d.scores, np.roll(d.masks, 4, axis=2),
                             d.image_size) for i, d in truth_detections.items()}
    run = evaluate_results(ground_truth, entries_of(shifted), "shifted")
    assert run.ap("bbox") == pytest.approx(1.0)
    assert run.ap("segm") < 0.9
    assert run.ap("segm", "AP50") > run.ap("segm", "AP75") > run.ap("segm")  # small shifts hurt strict IoUs most
    mean_iou = run.metrics["segm"]["at_threshold"]["mean_iou"]
    assert 0.5 <= mean_iou < 0.95


def test_wrong_classes_are_false_positives(coco, truth_detections):
    _, ground_truth = coco
    category_ids = sorted(ground_truth.getCatIds())
    relabelled = {}
    changed = 0
    for image_id, d in truth_detections.items():
        class_ids = d.class_ids.copy()
        wrong = np.arange(len(d)) % 5 == 0
        # the next category of the annotations, so that the wrong class is one that is evaluated
        class_ids[wrong] = [category_ids[(category_ids.index(c) + 1) % len(category_ids)] for c in class_ids[wrong]]
        changed += int(wrong.sum())
        relabelled[image_id] = Detections(d.boxes, class_ids, d.class_names, d.scores, d.masks, d.image_size)
    run = evaluate_results(ground_truth, entries_of(relabelled), "relabelled")
    objects = len(ground_truth.getAnnIds(iscrowd=False))
    crowds = len(ground_truth.getAnnIds()) - objects
    for iou_type in ("bbox", "segm"):
        at = run.metrics[iou_type]["at_threshold"]
        assert (at["true_positives"], at["false_negatives"]) == (objects - changed, changed)
        # each relabelled instance is a false positive, unless it lies on a crowd region of its new class
        assert 0 <= changed - at["false_positives"] <= crowds
        assert run.metrics[iou_type]["summary"]["AP"] < 0.9
