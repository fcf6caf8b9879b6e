"""run_inference_for_single_image through both model formats: exact boxes, classes, scores, masks, filters."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_model

from object_detection_utils import load_model, run_inference_for_single_image
from object_detection_utils.errors import LabelMapError

# H - 1 and W - 1 prime (103, 163): no box edge falls on a pixel centre, so expected masks need no tie-breaking.
HEIGHT, WIDTH = 104, 164


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


def _picture(brightness: int) -> np.ndarray:
    return np.full((HEIGHT, WIDTH, 3), brightness, np.uint8)


def test_default_threshold_keeps_the_confident_instances(model):
    detections = run_inference_for_single_image(model, _picture(0))
    assert detections.class_ids.tolist() == [1, 18]
    assert detections.class_names == ("person", "dog")
    np.testing.assert_allclose(detections.scores, [0.95, 0.80])
    np.testing.assert_allclose(
        detections.boxes,
        [[0.2 * WIDTH, 0.1 * HEIGHT, 0.6 * WIDTH, 0.5 * HEIGHT], [0.5 * WIDTH, 0.5 * HEIGHT, WIDTH, HEIGHT]],
        rtol=1e-6,
    )
    assert detections.image_size == (HEIGHT, WIDTH)


def test_masks_are_full_size_and_exact(model):
    detections = run_inference_for_single_image(model, _picture(0))
    assert detections.masks.shape == (2, HEIGHT, WIDTH) and detections.masks.dtype == bool
    for i, row in enumerate([0, 1]):
        np.testing.assert_array_equal(detections.masks[i], tiny_model.expected_full_mask(row, HEIGHT, WIDTH))


def test_score_depends_on_the_picture_and_the_threshold_filters(model):
    bright = run_inference_for_single_image(model, _picture(204))  # row 2 scores 0.8
    assert bright.class_ids.tolist() == [1, 18, 3]
    np.testing.assert_array_equal(bright.masks[2], tiny_model.expected_full_mask(2, HEIGHT, WIDTH))
    everything = run_inference_for_single_image(model, _picture(204), min_score=0.0)
    assert everything.class_ids.tolist() == [1, 18, 3, 1]  # row 4 lies past num_detections
    strict = run_inference_for_single_image(model, _picture(204), min_score=0.9)
    assert strict.class_ids.tolist() == [1]


def test_class_filter_by_id_and_name(model):
    picture = _picture(204)
    assert run_inference_for_single_image(model, picture, class_ids=[18]).class_names == ("dog",)
    assert run_inference_for_single_image(model, picture, class_ids=["car", "person"]).class_ids.tolist() == [1, 3]
    assert len(run_inference_for_single_image(model, picture, class_ids=["bicycle"])) == 0
    with pytest.raises(LabelMapError):
        run_inference_for_single_image(model, picture, class_ids=["unicorn"])


def test_non_square_and_tiny_pictures(model):
    for height, width in [(3, 500), (500, 3), (1, 1)]:
        detections = run_inference_for_single_image(model, np.zeros((height, width, 3), np.uint8))
        assert detections.masks.shape == (2, height, width)
        assert (detections.boxes[:, [0, 2]] <= width).all() and (detections.boxes[:, [1, 3]] <= height).all()


def test_matterport_style_dict(model):
    result = run_inference_for_single_image(model, _picture(0)).to_matterport()
    assert result["rois"].tolist() == [[10, 33, 52, 98], [52, 82, 104, 164]]  # y1, x1, y2, x2 rounded
    assert result["masks"].shape == (HEIGHT, WIDTH, 2)
    assert result["class_ids"].tolist() == [1, 18]


def test_wrong_picture_type_is_refused(model):
    with pytest.raises(ValueError, match="uint8 RGB"):
        run_inference_for_single_image(model, np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB"):
        run_inference_for_single_image(model, np.zeros((10, 10, 3), np.float32))


def test_boxes_only_model_gives_detections_without_masks(tiny_boxes_only_dir):
    model = load_model(tiny_boxes_only_dir, warm_up=False)
    detections = run_inference_for_single_image(model, _picture(0))
    assert detections.masks is None and detections.class_ids.tolist() == [1, 18]
    assert detections.areas.tolist() == pytest.approx([0.4 * WIDTH * 0.4 * HEIGHT, 0.5 * WIDTH * 0.5 * HEIGHT])
