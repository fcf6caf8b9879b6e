"""Our matterport model against matterport's own code on the same weights and picture.

The goldens were made by tests/matterport/make_goldens.py with matterport's TF2 port (see
tests/matterport/goldens/README.md); here the weights are regenerated from the recorded layout and the seed, so
nothing of the reference is needed.
"""

from __future__ import annotations

import hashlib
import json

import matterport_h5 as mh5
import numpy as np
import pytest
from matplotlib import cbook
from matplotlib import image as mpimage
from matterport_h5 import golden_masks, load_golden

from object_detection_utils.models.matterport import MatterportConfig, load_matterport
from object_detection_utils.models.matterport.preprocessing import mold_image, resize_image

CASES = sorted(path.stem for path in mh5.GOLDENS.glob("*.npz"))
ROI_TOLERANCE_PX = 1
SCORE_TOLERANCE = 1e-4
MIN_MASK_IOU = 0.99


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    return mpimage.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N,4) with every box in b (M,4), [y1, x1, y2, x2]."""
    a, b = a.astype(np.float64)[:, None], b.astype(np.float64)[None]
    h = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    w = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = h * w
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def match_instances(want_rois: np.ndarray, want_scores: np.ndarray, rois: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """For each of matterport's instances, the index of ours with the highest box IoU, then the nearest score, each
    used once: score ties may order instances differently, and two refined boxes can round to the same pixels."""
    ious = box_iou(want_rois, rois)
    taken = np.zeros(len(rois), dtype=bool)
    match = []
    for i in range(len(want_rois)):
        order = np.lexsort((np.abs(scores - want_scores[i]), -ious[i]))
        j = next(int(j) for j in order if not taken[j])
        taken[j] = True
        match.append(j)
    return np.array(match, dtype=np.int64)


def test_goldens_are_present() -> None:
    assert CASES == ["resnet101_coco", "resnet101_pad64", "resnet101_square", "resnet50_pad64", "resnet50_square"]


@pytest.mark.parametrize("case", CASES)
def test_the_picture_is_molded_to_matterports_exact_bytes(case: str, picture: np.ndarray) -> None:
    golden = load_golden(case)
    config = MatterportConfig.from_mapping(json.loads(str(golden["config"])))
    resized = resize_image(picture, config.IMAGE_RESIZE_MODE, config.IMAGE_MIN_DIM, config.IMAGE_MAX_DIM,
                           config.IMAGE_MIN_SCALE)
    molded = mold_image(resized.image, config.MEAN_PIXEL)
    assert resized.window == tuple(golden["window"].tolist()) and resized.scale == float(golden["scale"])
    assert [list(pad) for pad in resized.padding] == golden["padding"].tolist()
    assert hashlib.sha256(molded.astype(np.float32).tobytes()).hexdigest() == str(golden["molded_sha256"])


@pytest.mark.parametrize("case", CASES)
def test_detect_matches_matterport(case: str, picture: np.ndarray, tmp_path) -> None:
    golden = load_golden(case)
    assert hashlib.sha256(picture.tobytes()).hexdigest() == str(golden["picture_sha256"]), "picture decoded differently"
    config = MatterportConfig.from_mapping(json.loads(str(golden["config"])))
    # the recorded 5-class layout, resized to the case's classes (make_goldens.py checks it is the reference's own)
    layout = mh5.Layout.named(config.BACKBONE, 5).with_num_classes(config.NUM_CLASSES)
    weights = mh5.calibrated_weights(layout, int(golden["seed"]))
    path = mh5.write_matterport_h5(tmp_path / "weights.h5", layout, weights)

    result = load_matterport(path, config=config).detect(picture)

    want_rois, want_classes, want_scores = golden["rois"], golden["class_ids"], golden["scores"]
    want_masks = golden_masks(golden)
    assert len(result["class_ids"]) == len(want_classes), (
        f"{len(result['class_ids'])} detections, want {len(want_classes)}"
    )
    assert result["masks"].shape == want_masks.shape
    match = match_instances(want_rois, want_scores, result["rois"], result["scores"])
    roi_error = np.abs(result["rois"][match].astype(np.int64) - want_rois).max(initial=0)
    score_error = np.abs(result["scores"][match] - want_scores).max(initial=0.0)
    mask_ious = []
    for i, j in enumerate(match):
        ours, theirs = result["masks"][..., j], want_masks[..., i]
        union = np.logical_or(ours, theirs).sum()
        mask_ious.append(np.logical_and(ours, theirs).sum() / union if union else 1.0)
    summary = (
        f"{case}: max roi error {roi_error} px, max score error {score_error:.2e}, "
        f"min mask IoU {min(mask_ious, default=1.0):.4f}"
    )
    np.testing.assert_array_equal(result["class_ids"][match], want_classes, err_msg=summary)
    assert roi_error <= ROI_TOLERANCE_PX, summary
    assert score_error <= SCORE_TOLERANCE, summary
    assert min(mask_ious, default=1.0) >= MIN_MASK_IOU, summary
