"""Reduced precision judged by accuracy, and `--backend auto` choosing among the accepted engines.

The acceptance arithmetic and auto's choice are tested without OpenVINO (detections made by hand, conversions
and CPU flags faked); bf16 and perturbed weights on the trained model, int8 and masks-only-where-kept are in
test_backends.py, beside the conversion they share.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from object_detection_utils.detections import Detections
from object_detection_utils.label_map import LabelMap
from object_detection_utils.model_contract import EngineRun, KeptInstances, ModelDescription
from object_detection_utils.models import backends
from object_detection_utils.models.backends import acceptance, conversion, race
from object_detection_utils.models.backends.conversion import Conversion


def _picture(class_ids: list[int], scores: list[float]) -> Detections:
    """Instances side by side on a 40x100 picture: instance i fills columns 20i..20i+15, rows 10..29."""
    count = len(class_ids)
    masks = np.zeros((count, 40, 100), bool)
    boxes = np.zeros((count, 4), np.float32)
    for i in range(count):
        masks[i, 10:30, 20 * i : 20 * i + 16] = True
        boxes[i] = [20 * i, 10, 20 * i + 16, 30]
    return Detections(
        boxes,
        np.array(class_ids, np.int32),
        tuple(str(c) for c in class_ids),
        np.array(scores, np.float32),
        masks,
        (40, 100),
    )


def test_agreement_is_one_for_the_same_detections_and_drops_with_each_one_missed():
    reference = [_picture([1, 2], [0.9, 0.8]) for _ in range(10)]  # 20 instances, 10 of each class
    same = acceptance.judge(reference, reference)
    assert same.passed and same.agreement_mask_ap == 1.0 and same.agreement_box_ap == 1.0
    assert same.reason == "agreement mask AP 1.0000 >= 0.97 with f32 on 10 pictures (20 instances)"
    # one class-1 instance missed: recall 0.9 at precision 1 for class 1 (91 of COCO's 101 recall points), 1.0 for 2
    missed = acceptance.judge(reference, [reference[0][[1]], *reference[1:]])
    assert missed.agreement_mask_ap == pytest.approx((91 / 101 + 1.0) / 2)
    assert not missed.passed and missed.reason.startswith("agreement mask AP 0.9505 < 0.97")
    # a candidate scoring under the reference's 0.3 still counts, down to 0.05
    lower = acceptance.judge(reference, [_picture([1, 2], [0.1, 0.06]) for _ in range(10)])
    assert lower.passed and lower.agreement_mask_ap == 1.0


def _validation_set(folder: Path, pictures: list[Detections]) -> list[str]:
    """`folder/images/` file names and `folder/annotations.json` labelling each picture with `pictures`' masks (RLE,
    as pycocotools encodes them), the layout write_shapes_dataset writes."""
    import json

    from pycocotools import mask as mask_utils

    names = [f"picture_{i:02d}.png" for i in range(len(pictures))]
    images, annotations = [], []
    for image_id, (name, found) in enumerate(zip(names, pictures), start=7):  # ids not in file order
        images.append({"id": image_id, "file_name": name, "height": 40, "width": 100})
        for i in range(len(found)):
            rle = mask_utils.encode(np.asfortranarray(found.masks[i].astype(np.uint8)))
            x0, y0, x1, y1 = found.boxes[i].tolist()
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(found.class_ids[i]),
                                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                                "area": int(found.masks[i].sum()), "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0})
    (folder / "images").mkdir()
    (folder / "annotations.json").write_text(json.dumps({
        "images": images, "annotations": annotations, "categories": [{"id": 1, "name": "1"}, {"id": 2, "name": "2"}]}))
    return names


def test_labelled_ap_where_the_pictures_are_a_validation_set(tmp_path):
    reference = [_picture([1, 2], [0.9, 0.8]) for _ in range(10)]
    names = _validation_set(tmp_path, reference)
    labels = acceptance.validation_labels(tmp_path / "images", ["extra.png", *names])  # labels beside the folder
    assert labels.image_ids == [None, *range(7, 17)] and labels.source == tmp_path / "annotations.json"
    assert acceptance.validation_labels(tmp_path / "images", ["other.png"]) is None  # names none of the pictures
    assert acceptance.validation_labels(tmp_path / "other" / "images", names) is None  # no labels there
    labels = acceptance.validation_labels(tmp_path / "images", names)
    same = acceptance.judge(reference, reference, labels=labels)
    assert same.passed and same.labelled_mask_ap == same.reference_labelled_mask_ap == 1.0
    assert same.reason.endswith("; labelled mask AP 1.0000 against f32's 1.0000 on 10 labelled pictures "
                                "(annotations.json): within 0.005 (loss +0.0000)")
    # one instance missed: agreement still passes at 0.9, but 0.0495 of labelled mask AP is lost
    missed = acceptance.judge(reference, [reference[0][[1]], *reference[1:]], min_agreement=0.9, labels=labels)
    assert not missed.passed and missed.agreement_mask_ap > 0.9 and missed.labelled_pictures == 10
    assert missed.labelled_mask_ap == pytest.approx((91 / 101 + 1.0) / 2)
    assert missed.reason.endswith("not within 0.005 (loss +0.0495)")


def test_too_few_instances_cannot_be_judged_by_accuracy():
    reference = [_picture([1, 2], [0.9, 0.2]) for _ in range(5)]  # 5 instances score 0.3 or more
    verdict = acceptance.judge(reference, reference)
    assert not verdict.passed and verdict.agreement_mask_ap is None
    assert verdict.reason == "too few instances to judge accuracy (5 < 20)"


def test_kept_instances_are_the_segmenters_filters():
    kept = KeptInstances(0.5, (1, 3))
    assert kept.keeps(np.array([0.9, 0.5, 0.4999, 0.7]), np.array([1, 3, 1, 2])).tolist() == [True, True, False, False]
    assert KeptInstances(0.3).keeps(np.array([0.3, 0.2]), np.array([7, 7])).tolist() == [True, False]


@pytest.fixture
def faked(monkeypatch, tmp_path):
    """An installed engine, conversions with the given verdicts and speed-ups, CPU flags as given; the model is
    taken for one of our exports. Returns (set verdicts and flags, the description, the precisions converted)."""
    monkeypatch.setattr(conversion, "engine_version", lambda: "0.0-test")
    monkeypatch.setattr(backends, "nncf_installed", lambda: True)
    monkeypatch.setattr(backends, "_conversion_source", lambda model: (model.target, "export", [model.target]))
    monkeypatch.setattr(backends, "_runner", lambda found, name: EngineRun(None, True, f"openvino {found.precision}"))
    verdicts: dict[str, dict] = {}
    converted: list[str] = []

    def convert(source, kind, files, precision, calibration):
        converted.append(precision)
        return Conversion(Path(f"entry-{precision}"), kind, precision, verdicts[precision], False)

    monkeypatch.setattr(backends, "_convert", convert)
    monkeypatch.setattr(race, "speedups", lambda source, entries, calibration: None)  # each conversion's own

    def setup(flags: set[str], **speedups: float | str) -> None:
        monkeypatch.setattr(backends, "cpu_flags", lambda: flags)
        for precision, value in speedups.items():
            verdicts[precision] = (
                {"passed": False, "reason": value}
                if isinstance(value, str)
                else {"passed": True, "speed": {"speedup": value}}
            )

    target = tmp_path / "shapes" / "saved_model"
    return setup, ModelDescription("shapes", target.parent, "saved_model", target, LabelMap({})), converted


ALL_FLAGS = {"avx512f", "avx512_bf16", "avx512_vnni"}


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_auto_takes_the_fastest_accepted_engine_and_says_why(faked, monkeypatch, caplog):
    setup, model, converted = faked
    setup(ALL_FLAGS, f32=1.3, bf16=2.1, int8=2.9)
    assert backends.accelerate(model, "auto").backend == "openvino int8"
    assert converted == ["f32", "bf16", "int8"]
    assert _lines(caplog) == [
        (
            f"back end auto: {model.name} runs on OpenVINO int8 (speed against TensorFlow: "
            "int8 2.90x, bf16 2.10x, f32 1.30x)"
        )
    ]
    caplog.clear()
    # the race between the accepted engines in one process, where it ran, decides over their own timings
    raced = {"entry-f32": 2.2, "entry-bf16": 2.4, "entry-int8": 1.8}
    monkeypatch.setattr(race, "speedups", lambda source, entries, calibration: {e.name: raced[e.name] for e in entries})
    assert backends.accelerate(model, "auto").backend == "openvino bf16"
    assert _lines(caplog)[0].endswith("OpenVINO bf16 (speed against TensorFlow: bf16 2.40x, f32 2.20x, int8 1.80x)")
    caplog.clear()
    monkeypatch.setattr(race, "speedups", lambda source, entries, calibration: None)
    setup(ALL_FLAGS, int8="agreement mask AP 0.9012 < 0.97 with f32 on 40 pictures (128 instances)")
    assert backends.accelerate(model, "auto").backend == "openvino bf16"
    assert _lines(caplog) == [
        (
            f"back end auto: {model.name} runs on OpenVINO bf16 (speed against TensorFlow: "
            "bf16 2.10x, f32 1.30x; int8 refused: agreement mask AP 0.9012 < 0.97 with f32 on "
            "40 pictures (128 instances))"
        )
    ]


def test_auto_falls_back_cleanly_without_bf16_vnni_or_a_faster_engine(faked, monkeypatch, caplog):
    setup, model, converted = faked
    setup({"avx512f"}, f32=1.3)
    assert backends.accelerate(model, "auto").backend == "openvino f32"
    assert converted == ["f32"]  # nothing the CPU cannot run is converted
    assert _lines(caplog) == [
        (
            f"back end auto: {model.name} runs on OpenVINO f32 (speed against TensorFlow: f32 "
            "1.30x; no bf16: this CPU has no avx512_bf16 or amx_bf16; no int8: this CPU has no "
            "VNNI (avx512_vnni, avx_vnni or amx_int8))"
        )
    ]
    caplog.clear()
    monkeypatch.setattr(backends, "nncf_installed", lambda: False)
    setup({"avx512_vnni"}, f32=0.95)
    assert backends.accelerate(model, "auto") is None  # TensorFlow is the fastest
    assert _lines(caplog) == [
        (
            f"back end auto: {model.name} runs on TensorFlow (speed against TensorFlow: f32 0.95x; "
            "no bf16: this CPU has no avx512_bf16 or amx_bf16; no int8: NNCF is not installed "
            f"({backends.INSTALL_HINT}))"
        )
    ]
    caplog.clear()
    assert backends.accelerate(model, "openvino-int8") is None
    assert _lines(caplog) == [
        (
            f"back end: OpenVINO int8 cannot run {model.name} (NNCF is not installed "
            f"({backends.INSTALL_HINT})); it runs on TensorFlow"
        )
    ]
