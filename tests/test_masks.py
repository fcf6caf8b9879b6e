"""Mask reframing against hand-computed cases and against the TF OD API's crop_and_resize path."""

from __future__ import annotations

import numpy as np
import pytest
from reference_postprocess import reference_image_masks

from object_detection_utils.masks import masks_to_boxes, reframe_box_masks


def test_full_box_mask_covers_exactly_the_box_pixels():
    # 11 rows: row i sits at i/10; box rows 0.25..0.75 -> rows 3..7. 21 cols: j/20; box 0.1..0.5 -> cols 2..10.
    masks = reframe_box_masks(np.ones((1, 15, 15)), np.array([[0.25, 0.1, 0.75, 0.5]]), 11, 21)
    expected = np.zeros((11, 21), bool)
    expected[3:8, 2:11] = True
    np.testing.assert_array_equal(masks[0], expected)


def test_two_by_two_mask_checkerboard_is_resampled_bilinearly():
    # A 2x2 box mask [[1, 0], [0, 0]] over the whole 5x5 picture: sample (i, j) at (i/4, j/4) of the mask,
    # value (1 - i/4) * (1 - j/4): 1.0 at (0, 0), 0.75 at (0, 1)/(1, 0), 0.5625 at (1, 1), 0.5 at (0, 2)/(2, 0).
    box_mask = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    masks = reframe_box_masks(box_mask, np.array([[0.0, 0.0, 1.0, 1.0]]), 5, 5)
    expected = np.zeros((5, 5), bool)
    expected[:2, :2] = True
    np.testing.assert_array_equal(masks[0], expected)


def test_box_past_the_border_is_clipped_to_the_picture():
    # Box 0.5..1.5 vertically over 9 rows (i/8): rows 4..8 are inside; nothing wraps or raises.
    masks = reframe_box_masks(np.ones((1, 15, 15)), np.array([[0.5, -0.5, 1.5, 0.5]]), 9, 9)
    expected = np.zeros((9, 9), bool)
    expected[4:, :5] = True
    np.testing.assert_array_equal(masks[0], expected)


def test_box_entirely_outside_gives_an_empty_mask():
    masks = reframe_box_masks(np.ones((1, 15, 15)), np.array([[1.2, 1.2, 1.5, 1.5]]), 20, 30)
    assert masks.shape == (1, 20, 30) and not masks.any()


def test_tiny_box_between_pixel_centres_is_empty_and_on_one_is_a_single_pixel():
    between = reframe_box_masks(np.ones((1, 15, 15)), np.array([[0.51, 0.51, 0.52, 0.52]]), 11, 11)
    assert not between.any()
    on_pixel = reframe_box_masks(np.ones((1, 15, 15)), np.array([[0.49, 0.29, 0.51, 0.31]]), 11, 11)
    assert np.argwhere(on_pixel[0]).tolist() == [[5, 3]]


def test_degenerate_box_does_not_divide_by_zero():
    masks = reframe_box_masks(np.ones((1, 15, 15)), np.array([[0.5, 0.5, 0.5, 0.5]]), 11, 11)
    assert masks.shape == (1, 11, 11)
    assert masks.sum() <= 1


def test_threshold_is_strictly_greater():
    half = np.full((1, 15, 15), 0.5)
    assert not reframe_box_masks(half, np.array([[0, 0, 1, 1]]), 8, 8).any()
    assert reframe_box_masks(half, np.array([[0, 0, 1, 1]]), 8, 8, threshold=0.49).all()


def test_no_instances_gives_empty_stack():
    masks = reframe_box_masks(np.zeros((0, 15, 15)), np.zeros((0, 4)), 7, 9)
    assert masks.shape == (0, 7, 9) and masks.dtype == bool


def test_mismatched_boxes_are_refused():
    with pytest.raises(ValueError):
        reframe_box_masks(np.ones((2, 15, 15)), np.zeros((1, 4)), 5, 5)


def test_matches_tensorflow_crop_and_resize_on_random_cases():
    rng = np.random.default_rng(1234)
    for _ in range(60):
        count = int(rng.integers(1, 5))
        height, width = (int(v) for v in rng.integers(1, 160, 2))
        corners = np.sort(rng.uniform(-0.3, 1.3, (count, 2, 2)), axis=1)
        boxes = np.stack([corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]], 1)
        box_masks = rng.uniform(0, 1, (count, 15, 15)).astype(np.float32)
        ours = reframe_box_masks(box_masks, boxes.astype(np.float32), height, width)
        np.testing.assert_array_equal(ours, reference_image_masks(box_masks, boxes, height, width))


def test_masks_to_boxes_is_tight_and_exclusive():
    masks = np.zeros((2, 6, 8), bool)
    masks[0, 1:4, 2:7] = True
    boxes = masks_to_boxes(masks)
    np.testing.assert_array_equal(boxes, [[2, 1, 7, 4], [0, 0, 0, 0]])
