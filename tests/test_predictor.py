"""The Segmenter (one picture -> Detections, many pictures -> Detections each in order, filters set once) and
run_inference_for_single_image, through both model formats: exact boxes, classes, scores, masks, filters."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tiny_model

from object_detection_utils import Segmenter, load_model, run_inference_for_single_image
from object_detection_utils.errors import LabelMapError

# H - 1 and W - 1 prime (103, 163): no box edge falls on a pixel centre, so expected masks need no tie-breaking.
HEIGHT, WIDTH = 104, 164


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


def _picture(brightness: int) -> np.ndarray:
    return np.full((HEIGHT, WIDTH, 3), brightness, np.uint8)


def test_a_segmenter_and_the_tutorial_call_give_the_same_detections(model):
    for brightness in (0, 204):
        assert Segmenter(model)(_picture(brightness)).same_as(run_inference_for_single_image(model, _picture(brightness)))


def test_filters_are_chosen_once_at_construction(model):
    bright = _picture(204)  # row 2 ("car", id 3) scores 0.8
    assert Segmenter(model, classes=["car", "person"])(bright).class_ids.tolist() == [1, 3]
    assert Segmenter(model, classes=[18])(bright).class_names == ("dog",)
    assert Segmenter(model, min_score=0.9)(bright).class_ids.tolist() == [1]
    assert Segmenter(model, min_score=0.0)(bright).class_ids.tolist() == [1, 18, 3, 1]
    # Row 0's box mask is all ones: every threshold keeps all of it. Row 1's steps from 1 to 0 between two
    # columns: a higher threshold keeps fewer of the interpolated pixels along that edge.
    default, strict = Segmenter(model)(bright), Segmenter(model, mask_threshold=0.99)(bright)
    np.testing.assert_array_equal(strict.masks[0], default.masks[0])
    assert (strict.masks[1] <= default.masks[1]).all() and strict.masks[1].sum() < default.masks[1].sum()


def test_an_unknown_class_is_refused_before_any_picture_runs(model):
    calls = []
    counting = dataclasses.replace(model, _run=lambda images: calls.append(1) or model._run(images))
    with pytest.raises(LabelMapError, match="unicorn"):
        Segmenter(counting, classes=["person", "unicorn"])
    assert calls == []


def test_many_pictures_give_detections_in_order(model):
    segmenter = Segmenter(model)
    brightness = [0, 204, 0, 255, 204, 0]
    expected = [[1, 18] if b == 0 else [1, 18, 3] for b in brightness]
    from_list = [d.class_ids.tolist() for d in segmenter([_picture(b) for b in brightness])]
    from_generator = [d.class_ids.tolist() for d in segmenter(_picture(b) for b in brightness)]
    from_array = [d.class_ids.tolist() for d in segmenter(np.stack([_picture(b) for b in brightness]))]
    with_workers = [d.class_ids.tolist() for d in segmenter.segment_many((_picture(b) for b in brightness), workers=3)]
    assert from_list == from_generator == from_array == with_workers == expected


def test_many_pictures_match_one_at_a_time_exactly(model):
    segmenter = Segmenter(model, min_score=0.0)
    pictures = [_picture(b) for b in (10, 230, 128)]
    for streamed, picture in zip(segmenter(pictures), pictures, strict=True):
        assert streamed.same_as(segmenter(picture))


def test_bgr_pictures_reach_the_model_as_rgb(model):
    seen = []
    recording = dataclasses.replace(model, _run=lambda images: seen.append(images.copy()) or model._run(images))
    rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    rgb[..., 0] = 200  # red
    Segmenter(recording, bgr=True)(rgb[:, :, ::-1])
    Segmenter(recording)(rgb)
    np.testing.assert_array_equal(seen[0][0], rgb)
    np.testing.assert_array_equal(seen[1][0], rgb)


def test_wrong_picture_types_are_refused_with_the_colour_order(model):
    with pytest.raises(ValueError, match="uint8 BGR"):
        Segmenter(model, bgr=True)(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="uint8 RGB"):
        Segmenter(model).segment(np.zeros((10, 10), np.uint8))


def test_settings_name_the_model_and_the_filters(model):
    segmenter = Segmenter(model, classes=["dog", "person"], min_score=0.25, mask_threshold=0.4)
    assert segmenter.settings == {"model": model.name, "class_ids": [1, 18], "min_score": 0.25,
                                  "mask_threshold": 0.4}
    assert Segmenter(model).settings["class_ids"] is None


def test_load_by_path_with_options(tiny_frozen_dir):
    segmenter = Segmenter.load(tiny_frozen_dir, classes=["dog"], min_score=0.5)
    assert segmenter.name == tiny_frozen_dir.name
    assert segmenter(_picture(0)).class_names == ("dog",)


# --- run_inference_for_single_image ---------------------------------------------------------------------------

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
