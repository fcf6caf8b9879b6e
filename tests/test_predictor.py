"""The Segmenter: one picture -> Detections, many pictures -> Detections each in order, filters set once."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tiny_model

from object_detection_utils import Segmenter, load_model, run_inference_for_single_image
from object_detection_utils.errors import LabelMapError

HEIGHT, WIDTH = 104, 164


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


def _picture(brightness: int) -> np.ndarray:
    return np.full((HEIGHT, WIDTH, 3), brightness, np.uint8)


def test_one_picture_gives_the_models_exact_detections(model):
    detections = Segmenter(model)(_picture(0))
    assert detections.class_ids.tolist() == [1, 18]
    np.testing.assert_allclose(detections.scores, [0.95, 0.80])
    np.testing.assert_allclose(
        detections.boxes,
        [[0.2 * WIDTH, 0.1 * HEIGHT, 0.6 * WIDTH, 0.5 * HEIGHT], [0.5 * WIDTH, 0.5 * HEIGHT, WIDTH, HEIGHT]],
        rtol=1e-6,
    )
    for i, row in enumerate([0, 1]):
        np.testing.assert_array_equal(detections.masks[i], tiny_model.expected_full_mask(row, HEIGHT, WIDTH))
    assert detections.same_as(run_inference_for_single_image(model, _picture(0)))


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
