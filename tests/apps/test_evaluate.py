"""Evaluation: AP worked out by hand on synthetic ground truth for the tiny model, the command, the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tiny_model

from object_detection_utils import load_model, read_image, run_inference_for_single_image, write_image
from object_detection_utils.apps import evaluate
from object_detection_utils.coco_format import detections_to_coco, encode_mask
from object_detection_utils.evaluation import (
    EvaluationReport,
    check_results,
    evaluate_results,
    ground_truth_from_dict,
    load_results,
    read_report,
    write_report,
)

SIZE = 100  # no pixel sits exactly on a box edge, where float rounding decides (tiny_model.expected_full_mask)
GRAY = 128  # row 2 then scores 128 / 255 = 0.502: above a 0.5 threshold, row 3 (0.30) below it
CATEGORIES = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 18, "name": "dog"}]
IMAGE_ID = 7
# COCO interpolates precision at 101 recall thresholds 0.00, 0.01, ..., 1.00.
RECALL_POINTS = 101


def annotation(row: int, category_id: int | None = None, shift_mask: int = 0, box=None) -> dict:
    """A ground-truth instance where tiny-model row `row` is, from its box alone (not the code under test)."""
    ymin, xmin, ymax, xmax = (float(v) for v in (tiny_model.BOXES[row] if box is None else box))
    mask = tiny_model.expected_full_mask(row, SIZE, SIZE) if box is None else np.zeros((SIZE, SIZE), bool)
    if box is not None:
        mask[round(ymin * SIZE):round(ymax * SIZE), round(xmin * SIZE):round(xmax * SIZE)] = True
    mask = np.roll(mask, shift_mask, axis=1)
    return {
        "image_id": IMAGE_ID,
        "category_id": int(tiny_model.CLASSES[row]) if category_id is None else category_id,
        "bbox": [xmin * SIZE, ymin * SIZE, (xmax - xmin) * SIZE, (ymax - ymin) * SIZE],
        "area": int(mask.sum()),
        "iscrowd": 0,
        "segmentation": encode_mask(mask),
    }


def ground_truth(annotations: list[dict]) -> dict:
    for number, entry in enumerate(annotations, start=1):
        entry["id"] = number
    return {
        "images": [{"id": IMAGE_ID, "file_name": "gray.png", "height": SIZE, "width": SIZE}],
        "annotations": annotations,
        "categories": CATEGORIES,
    }


PERFECT = [0, 1, 2, 3]  # the four instances the tiny model reports, exactly


@pytest.fixture(scope="module")
def tiny_entries(tiny_frozen_dir) -> list[dict]:
    """The tiny model's COCO results on the gray picture, through the real inference path."""
    model = load_model(tiny_frozen_dir, warm_up=False)
    detections = run_inference_for_single_image(model, np.full((SIZE, SIZE, 3), GRAY, np.uint8), min_score=0.0)
    return detections_to_coco(detections, IMAGE_ID)


def test_tiny_model_exactly_right_scores_ap_one(tiny_entries):
    run = evaluate_results(ground_truth_from_dict(ground_truth([annotation(r) for r in PERFECT])), tiny_entries,
                           "tiny", score_threshold=0.5)
    for iou_type in ("bbox", "segm"):
        summary = run.metrics[iou_type]["summary"]
        # Rows 2 and 3 are small, rows 0 and 1 medium.
        for key in ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AR_100"):
            assert summary[key] == pytest.approx(1.0), key
        assert summary["AP_large"] is None  # no large instance: undefined, not 0
        assert run.metrics[iou_type]["per_class_ap"] == pytest.approx({"person": 1.0, "car": 1.0, "dog": 1.0})
        # Row 3 (score 0.30) is below the threshold: found by AP, missed at 0.5.
        assert run.metrics[iou_type]["at_threshold"] == pytest.approx({
            "score_threshold": 0.5, "precision": 1.0, "recall": 0.75, "mean_iou": 1.0,
            "true_positives": 3, "false_positives": 0, "false_negatives": 1,
        })
        assert run.metrics[iou_type]["pr_curve"]["precision_iou50"] == pytest.approx([1.0] * RECALL_POINTS)
    assert run.metrics["segm"]["at_threshold"]["mean_iou"] == 1.0  # pixel for pixel


def test_missed_instance(tiny_entries):
    """A second dog the model misses: dog recall stops at 1/2, so 51 of 101 recall points have precision 1."""
    missed = annotation(1, box=(0.0, 0.70, 0.20, 0.95))
    run = evaluate_results(ground_truth_from_dict(ground_truth([*map(annotation, PERFECT), missed])),
                           tiny_entries, "tiny")
    for iou_type in ("bbox", "segm"):
        dog = 51 / RECALL_POINTS
        assert run.metrics[iou_type]["per_class_ap"] == pytest.approx({"person": 1.0, "car": 1.0, "dog": dog})
        assert run.metrics[iou_type]["summary"]["AP"] == pytest.approx((2 + dog) / 3)
        assert run.metrics[iou_type]["summary"]["AP50"] == pytest.approx((2 + dog) / 3)
        at = run.metrics[iou_type]["at_threshold"]
        assert (at["true_positives"], at["false_positives"], at["false_negatives"]) == (3, 0, 2)
        assert at["recall"] == pytest.approx(3 / 5)


def test_wrong_class(tiny_entries):
    """The truth says person where the model says car: person recall 2/3 (67 recall points), car undefined."""
    truth = [annotation(0), annotation(1), annotation(2, category_id=1), annotation(3)]
    run = evaluate_results(ground_truth_from_dict(ground_truth(truth)), tiny_entries, "tiny")
    for iou_type in ("bbox", "segm"):
        person = 67 / RECALL_POINTS
        assert run.metrics[iou_type]["per_class_ap"] == pytest.approx({"person": person, "car": None, "dog": 1.0})
        assert run.metrics[iou_type]["summary"]["AP"] == pytest.approx((person + 1) / 2)
        at = run.metrics[iou_type]["at_threshold"]  # the car (0.502) is a false positive, row 3 (0.30) missed
        assert (at["true_positives"], at["false_positives"], at["false_negatives"]) == (2, 1, 2)
        assert at["precision"] == pytest.approx(2 / 3)


def test_shifted_mask(tiny_entries):
    """Row 0's true mask (40x40) lies 6 pixels to the right: mask IoU 34/46 = 0.739, boxes still exact.

    At IoU thresholds 0.50..0.70 all is found (AP 1); at 0.75..0.95 the first person (0.95) is a false positive
    before the true second one (0.30): precision 1/2 up to recall 1/2, so 51 points of 0.5.
    """
    truth = [annotation(0, shift_mask=6), annotation(1), annotation(2), annotation(3)]
    run = evaluate_results(ground_truth_from_dict(ground_truth(truth)), tiny_entries, "tiny")
    assert run.metrics["bbox"]["summary"]["AP"] == pytest.approx(1.0)
    person_strict = 0.5 * 51 / RECALL_POINTS
    person = (5 * 1.0 + 5 * person_strict) / 10
    segm = run.metrics["segm"]
    assert segm["per_class_ap"] == pytest.approx({"person": person, "car": 1.0, "dog": 1.0})
    assert segm["summary"]["AP"] == pytest.approx((person + 2) / 3)
    assert segm["summary"]["AP50"] == pytest.approx(1.0)
    assert segm["summary"]["AP75"] == pytest.approx((person_strict + 2) / 3)
    assert segm["at_threshold"]["mean_iou"] == pytest.approx((34 / 46 + 1 + 1) / 3)
    assert segm["at_threshold"]["true_positives"] == 3


def test_crowd_region_neither_found_nor_missed(tiny_entries):
    """A detection on a crowd region is not a false positive, and the crowd region is not a missed instance."""
    crowd = annotation(1)
    crowd["iscrowd"] = 1
    run = evaluate_results(ground_truth_from_dict(ground_truth([annotation(0), annotation(2), annotation(3), crowd])),
                           tiny_entries, "tiny")
    at = run.metrics["segm"]["at_threshold"]
    assert (at["true_positives"], at["false_positives"], at["false_negatives"]) == (2, 0, 1)
    assert run.metrics["segm"]["per_class_ap"]["dog"] is None


def test_no_detections_scores_zero():
    run = evaluate_results(ground_truth_from_dict(ground_truth([annotation(r) for r in PERFECT])), [], "nothing",
                           with_masks=True)
    for iou_type in ("bbox", "segm"):
        assert run.metrics[iou_type]["summary"]["AP"] == 0.0
        at = run.metrics[iou_type]["at_threshold"]
        assert (at["precision"], at["recall"], at["false_negatives"]) == (None, 0.0, 4)


def test_report_round_trips(tmp_path, tiny_entries):
    run = evaluate_results(ground_truth_from_dict(ground_truth([annotation(0), annotation(1, category_id=3)])),
                           tiny_entries, "tiny", seconds_per_image=0.0123, skipped=["a.jpg: no such file"])
    report = EvaluationReport("annotations.json", "pictures", 0.5, [run])
    path = tmp_path / "out" / "report.json"
    write_report(path, report)
    assert read_report(path) == report
    assert json.loads(path.read_text())["runs"][0]["metrics"]["segm"]["per_class_ap"]["car"] == 0.0
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no temp file left behind


# --- the command ---------------------------------------------------------------------------------------------


@pytest.fixture()
def dataset(tmp_path) -> tuple[Path, Path]:
    """(annotations JSON, picture folder) where the tiny model is exactly right."""
    images = tmp_path / "pictures"
    write_image(images / "gray.png", np.full((SIZE, SIZE, 3), GRAY, np.uint8))
    annotations = tmp_path / "annotations.json"
    annotations.write_text(json.dumps(ground_truth([annotation(r) for r in PERFECT])))
    return annotations, images


def test_command_with_a_model(tiny_model_dir, dataset, tmp_path, capsys):
    annotations, images = dataset
    report_path, plot = tmp_path / "report.json", tmp_path / "pr.png"
    code = evaluate.main(["--annotations", str(annotations), "--images", str(images), "--model", str(tiny_model_dir),
                          "--report", str(report_path), "--plot", str(plot)])
    assert code == 0
    out = capsys.readouterr().out
    assert "mask AP 1.000  AP50 1.000  AP75 1.000" in out
    assert "precision 1.000  recall 0.750  mean IoU 1.000  (TP 3, FP 0, FN 1)" in out
    report = read_report(report_path)
    (run,) = report.runs
    assert (run.source, run.num_images, run.ap("bbox"), run.ap("segm")) == (tiny_model_dir.name, 1, 1.0, 1.0)
    assert 0 < run.seconds_per_image < 5
    assert read_image(plot).shape[2] == 3  # a real picture


def test_speed_accuracy_table(tiny_frozen_dir, tiny_boxes_only_dir, dataset, tmp_path, capsys):
    annotations, images = dataset
    code = evaluate.main(["--annotations", str(annotations), "--images", str(images), "--model", str(tiny_frozen_dir),
                          "--model", str(tiny_boxes_only_dir), "--report", str(tmp_path / "r.json")])
    assert code == 0
    table = capsys.readouterr().out.split("model ")[-1].splitlines()
    assert table[0].split() == ["pictures", "ms/picture", "box", "AP", "mask", "AP", "mask", "AP50"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["tiny_tf1_coco"][1:2] + rows["tiny_tf1_coco"][3:] == ["1", "1.000", "1.000", "1.000"]
    assert rows["tiny_boxes"][1:2] + rows["tiny_boxes"][3:] == ["1", "1.000", "-", "-"]  # no mask head
    runs = read_report(tmp_path / "r.json").runs
    assert [sorted(run.metrics) for run in runs] == [["bbox", "segm"], ["bbox"]]


def test_command_with_results_file(tiny_entries, dataset, tmp_path):
    annotations, _ = dataset
    results = tmp_path / "results.json"
    results.write_text(json.dumps(tiny_entries[:2]))  # rows 0 and 1 only
    assert evaluate.main(["--annotations", str(annotations), "--results", str(results),
                          "--report", str(tmp_path / "r.json")]) == 0
    (run,) = read_report(tmp_path / "r.json").runs
    assert run.seconds_per_image is None
    # person: 1 of 2 found first (51 points); car: missed (0); dog: 1.
    assert run.ap("segm") == pytest.approx((51 / RECALL_POINTS + 0 + 1) / 3)


def test_missing_picture_is_skipped_and_the_rest_evaluated(tiny_frozen_dir, dataset, tmp_path, capsys):
    annotations, images = dataset
    truth = json.loads(annotations.read_text())
    truth["images"].append({"id": 8, "file_name": "gone.jpg", "height": SIZE, "width": SIZE})
    truth["images"].append({"id": 9, "file_name": "gray.png", "height": 50, "width": SIZE})
    truth["annotations"].append({**truth["annotations"][0], "id": 99, "image_id": 8})
    annotations.write_text(json.dumps(truth))
    code = evaluate.main(["--annotations", str(annotations), "--images", str(images), "--model", str(tiny_frozen_dir),
                          "--report", str(tmp_path / "r.json")])
    assert code == 0
    (run,) = read_report(tmp_path / "r.json").runs
    assert run.num_images == 1 and run.ap("segm") == 1.0  # the unreadable picture's truth does not count
    assert run.skipped == [f"{images / 'gone.jpg'}: no such file",
                           f"{images / 'gray.png'}: picture is 100x100, the annotations say 100x50"]


@pytest.mark.parametrize("content, message", [
    (None, "no such annotations file"),
    ("{not json", "line 1: not valid JSON (Expecting property name enclosed in double quotes)"),
    ('{"images": []}', "not COCO annotations (missing annotations, categories)"),
])
def test_bad_annotations_give_one_line(tmp_path, capsys, content, message):
    annotations = tmp_path / "annotations.json"
    if content is not None:
        annotations.write_text(content)
    from object_detection_utils.apps.cli import run_main

    code = run_main(evaluate.main, ["--annotations", str(annotations), "--results", str(tmp_path / "r.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"error: {annotations}: {message}") and "\n" not in err


def test_results_with_other_image_ids_are_refused(tiny_entries, dataset, tmp_path, capsys, monkeypatch):
    annotations, _ = dataset
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{**tiny_entries[0], "image_id": 123}]))
    from object_detection_utils.apps.cli import run_main

    code = run_main(evaluate.main, ["--annotations", str(annotations), "--results", str(results)])
    assert code == 2
    assert capsys.readouterr().err == (f"error: {results}: 1 image ids are not in the annotations (e.g. 123); "
                                       "results must use the annotations' image ids\n")
    assert not (tmp_path / "evaluation_report.json").exists()  # no report for a failed evaluation


def test_results_entries_are_checked(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]))
    with pytest.raises(Exception, match="entry 0 is not a COCO result"):
        load_results(results)
    ok = ground_truth_from_dict(ground_truth([annotation(0)]))
    check_results([{"image_id": IMAGE_ID}], ok)  # known ids pass


def test_polygon_results_are_evaluated_too(dataset):
    """COCO results may carry polygons instead of RLE: a square polygon on row 0's 40x40 mask (rows and
    columns 10..49 / 20..59 of the 100x100 picture) matches it exactly."""
    annotations, _ = dataset
    from object_detection_utils.evaluation import load_ground_truth

    square = [[20, 10, 60, 10, 60, 50, 20, 50]]  # polygon corners on pixel edges
    entry = {"image_id": IMAGE_ID, "category_id": 1, "bbox": [20, 10, 40, 40], "score": 0.9, "segmentation": square}
    run = evaluate_results(load_ground_truth(annotations), [entry], "polygons")
    at = run.metrics["segm"]["at_threshold"]
    assert (at["true_positives"], at["false_negatives"], at["mean_iou"]) == (1, 3, 1.0)


def test_malformed_results_give_one_line(dataset, tmp_path, capsys):
    annotations, _ = dataset
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": IMAGE_ID, "category_id": 1, "bbox": "wide", "score": 0.9}]))
    from object_detection_utils.apps.cli import run_main

    assert run_main(evaluate.main, ["--annotations", str(annotations), "--results", str(results),
                                    "--report", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {results}: malformed COCO results") and err.count("\n") == 1


def test_batch_scripts_coco_file_evaluates_directly(tiny_frozen_dir, dataset, tmp_path):
    """The hand-off users make: instance_segmentation_images.py --coco-json, then evaluate --results."""
    import instance_segmentation_images

    annotations, images = dataset
    output = tmp_path / "out"
    assert instance_segmentation_images.main(
        ["-i", str(images), "-o", str(output), "--coco-json", str(output / "results.json"), "--min-score", "0",
         "--model", str(tiny_frozen_dir), "--no-progress"]) == 0
    batch_ids = {image["id"] for image in json.loads((output / "results.json").read_text())["images"]}
    assert batch_ids != {IMAGE_ID}  # "gray.png" has no COCO number: the batch numbers it itself
    assert evaluate.main(["--annotations", str(annotations), "--results", str(output / "results.json"),
                          "--report", str(tmp_path / "r.json")]) == 0
    (run,) = read_report(tmp_path / "r.json").runs
    assert run.ap("segm") == pytest.approx(1.0) and run.ap("bbox") == pytest.approx(1.0)
