"""Matterport's resize, resize modes, molding and unmolding: values worked out by hand, and scikit-image's own."""

from __future__ import annotations

import random

import numpy as np
import pytest

from object_detection_utils.models.matterport.preprocessing import (
    denorm_boxes,
    mold_image,
    norm_boxes,
    paste_pixel_masks,
    resize_bilinear,
    resize_image,
    unmold_detections,
)

# The 3x5x3 uint8 picture below, resized to 4x7 by skimage.transform.resize(order=1, mode="constant", cval=0,
# clip=True, preserve_range=True, anti_aliasing=False): recorded with scikit-image 0.26.0 and SciPy 1.17.1.
PICTURE = (np.arange(3 * 5 * 3).reshape(3, 5, 3) * 37 % 256).astype(np.uint8)
SKIMAGE_FIRST_ROW = np.array([
    [0.0, 27.750000000000004, 55.50000000000001],
    [55.5, 87.875, 120.25],
    [124.875, 93.24999999999999, 125.62499999999999],
    [194.25, 2.625, 35.0],
    [103.62499999999999, 72.00000000000001, 104.37500000000001],
    [109.00000000000003, 141.37500000000003, 77.74999999999997],
    [140.99999999999994, 168.74999999999991, 4.499999999999998],
])
SKIMAGE_AS_UINT8 = np.array([
    [[0, 27, 55], [55, 87, 120], [124, 93, 125], [194, 2, 35], [103, 72, 104], [109, 141, 77], [140, 168, 4]],
    [[23, 54, 86], [90, 127, 164], [123, 133, 170], [88, 29, 66], [99, 109, 146], [151, 119, 115], [184, 78, 28]],
    [[50, 82, 114], [122, 159, 141], [128, 165, 134], [25, 62, 99], [104, 141, 178], [142, 110, 147],
     [129, 24, 55]],
    [[64, 92, 120], [130, 163, 67], [136, 168, 40], [45, 77, 110], [114, 147, 179], [88, 120, 152],
     [13, 41, 68]],
], dtype=np.uint8)
# A float32 mask resized to 5x3 with preserve_range=False (matterport's unmold_mask), same versions.
MASK = np.array([[0.1, 0.9, 0.6, 0.2], [0.7, 0.3, 0.95, 0.4], [0.05, 0.55, 0.45, 0.8]], np.float32)
SKIMAGE_MASK = np.array([
    [0.18666667, 0.6, 0.21333334],
    [0.39333332, 0.7, 0.35666668],
    [0.6333333, 0.625, 0.49166667],
    [0.33333334, 0.55, 0.64166665],
    [0.10666667, 0.4, 0.59333336],
], np.float32)


def test_resize_upsamples_with_zero_outside_then_clips_to_the_input_range():
    # 2 -> 4 samples at -0.25, 0.25, 0.75, 1.25: the outer ones mix in the 0 beyond the edge (7.5 and 22.5)
    # and the clip to [10, 30] lifts the first back to 10; the row axis (1 -> 1) keeps weight 1.
    assert resize_bilinear(np.array([[10.0, 30.0]]), 1, 4).tolist() == [[10.0, 15.0, 25.0, 22.5]]
    assert resize_bilinear(np.array([[0.0, 30.0]]), 1, 4).tolist() == [[0.0, 7.5, 22.5, 22.5]]


def test_resize_downsamples_between_neighbours():
    # 4 -> 2 samples at 0.5 and 2.5
    assert resize_bilinear(np.array([[10.0, 20.0, 30.0, 40.0]]), 1, 2).tolist() == [[15.0, 35.0]]
    same = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert resize_bilinear(same, 2, 2).tolist() == same.tolist()


def test_resize_matches_skimage_bit_for_bit():
    resized = resize_bilinear(PICTURE, 4, 7)
    assert resized.dtype == np.float64
    np.testing.assert_array_equal(resized[0], SKIMAGE_FIRST_ROW)
    # 140.99999999999994 and 4.499999999999998 truncate to 140 and 4, as matterport's .astype(uint8) does
    np.testing.assert_array_equal(resized.astype(np.uint8), SKIMAGE_AS_UINT8)
    mask = resize_bilinear(MASK, 5, 3)
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask, SKIMAGE_MASK)


def test_resize_rejects_what_skimage_would_not_resize():
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, C\)"):
        resize_bilinear(np.zeros((2, 2, 2, 2)), 4, 4)
    with pytest.raises(ValueError, match=r"cannot resize \(2, 2\) to \(0, 4\)"):
        resize_bilinear(np.zeros((2, 2)), 0, 4)


def test_square_mode_scales_the_long_side_to_max_dim_and_centres():
    picture = np.full((600, 512, 3), 200, np.uint8)
    resized = resize_image(picture, "square", 256, 320, 0)
    # 256 / 512 < 1 never scales down; 600 exceeds 320, so scale = 320 / 600 and width round(273.07) = 273
    assert resized.scale == 320 / 600
    assert resized.image.shape == (320, 320, 3) and resized.image.dtype == np.uint8
    assert resized.padding == ((0, 0), (23, 24), (0, 0))
    assert resized.window == (0, 23, 320, 296)
    assert resized.crop is None
    assert resized.image[:, :23].max() == 0 and resized.image[:, 296:].max() == 0
    assert resized.image[1:-1, 24:295].min() == 200


def test_square_mode_scales_up_to_min_dim():
    resized = resize_image(np.ones((100, 50, 3), np.uint8), "square", 200, 512, 0)
    assert resized.scale == 4  # short side 50 -> 200, long side 400 fits in 512
    assert resized.window == (56, 156, 456, 356)
    assert resized.padding == ((56, 56), (156, 156), (0, 0))


def test_min_scale_wins_over_min_dim():
    resized = resize_image(np.ones((64, 96, 3), np.uint8), "square", 64, 512, 3)
    assert resized.scale == 3
    assert resized.window == (160, 112, 352, 400)


def test_pad64_mode_pads_each_side_to_a_multiple_of_64():
    resized = resize_image(np.ones((130, 64, 3), np.uint8), "pad64", 64, 9999, 0)
    assert resized.scale == 1  # max_dim is ignored in pad64
    assert resized.image.shape == (192, 64, 3)
    assert resized.padding == ((31, 31), (0, 0), (0, 0))
    assert resized.window == (31, 0, 161, 64)
    with pytest.raises(ValueError, match="multiple of 64"):
        resize_image(np.ones((130, 64, 3), np.uint8), "pad64", 100, None, 0)


def test_crop_mode_draws_its_crop_like_matterport():
    picture = np.arange(300 * 400 * 3, dtype=np.int64).reshape(300, 400, 3).astype(np.uint8)
    resized = resize_image(picture, "crop", 128, None, 0, rng=random.Random(7))
    draw = random.Random(7)
    y, x = draw.randint(0, 300 - 128), draw.randint(0, 400 - 128)
    assert resized.crop == (y, x, 128, 128)
    assert resized.window == (0, 0, 128, 128)
    np.testing.assert_array_equal(resized.image, picture[y:y + 128, x:x + 128])


def test_none_mode_returns_the_picture():
    picture = np.ones((70, 90, 3), np.uint8)
    resized = resize_image(picture, "none", 800, 1024, 0)
    assert resized.image is picture and resized.window == (0, 0, 70, 90) and resized.scale == 1
    with pytest.raises(ValueError, match="unknown IMAGE_RESIZE_MODE 'fit'"):
        resize_image(picture, "fit", 800, 1024, 0)


def test_mold_subtracts_the_mean_in_float64():
    molded = mold_image(np.array([[[5, 0, 255]]], np.uint8), (123.7, 116.8, 103.9))
    assert molded.dtype == np.float32
    assert molded.tolist() == [[[np.float32(5 - 123.7), np.float32(-116.8), np.float32(255 - 103.9)]]]


def test_norm_and_denorm_boxes():
    boxes = norm_boxes(np.array([[0, 0, 320, 320], [10, 20, 30, 41]]), (320, 320))
    assert boxes.dtype == np.float32
    np.testing.assert_array_equal(boxes[0], [0, 0, 1, 1])
    np.testing.assert_array_equal(denorm_boxes(boxes, (320, 320)), [[0, 0, 320, 320], [10, 20, 30, 41]])
    # np.around rounds half to even: 0.5 -> 0, 2.5 -> 2, 0.5 + 1 -> 2, 1.5 + 1 -> 2
    assert denorm_boxes(np.array([[0.5 / 9, 2.5 / 9, 0.5 / 9, 1.5 / 9]]), (10, 10)).tolist() == [[0, 2, 2, 2]]


def test_unmold_maps_the_window_to_the_picture_and_drops_empty_boxes():
    window = (0, 23, 320, 296)
    wy1, wx1, wy2, wx2 = norm_boxes(np.array(window), (320, 320))
    detections = np.zeros((5, 6), np.float32)
    detections[0] = [wy1, wx1, wy2, wx2, 3, 0.9]  # the whole window: the whole picture
    # normalised y2 is inclusive: y2 == y1 is one pixel high; one pixel less is no pixel at all
    detections[1] = [0.5, wx1, 0.5 - 1 / 319, wx2, 1, 0.8]
    detections[2] = [wy1, wx1 + 0.3 * (wx2 - wx1), wy2, wx2, 2, 0.7]  # x from 0.3 * 511 = 153.3
    masks = np.stack([np.full((28, 28), i, np.float32) for i in range(5)])
    found = unmold_detections(detections, masks, (600, 512), (320, 320), window)
    assert found.rois.dtype == np.int32 and found.class_ids.dtype == np.int32
    assert found.rois.tolist() == [[0, 0, 600, 512], [0, 153, 600, 512]]
    assert found.class_ids.tolist() == [3, 2]
    np.testing.assert_array_equal(found.scores, np.float32([0.9, 0.7]))
    assert [m[0, 0] for m in found.box_masks] == [0, 2]


def test_unmold_with_every_row_a_detection():
    detections = np.tile(np.float32([0, 0, 1, 1, 1, 0.5]), (3, 1))
    found = unmold_detections(detections, np.zeros((3, 28, 28), np.float32), (64, 64), (64, 64), (0, 0, 64, 64))
    assert found.rois.tolist() == [[0, 0, 64, 64]] * 3


def test_paste_mask_resizes_onto_the_box_and_keeps_values_from_half():
    box_mask = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)

    def paste_mask(mask, box, height, width, **threshold):
        return paste_pixel_masks(mask[None], box[None], height, width, **threshold)[0]

    full = paste_mask(box_mask, np.array([1, 2, 3, 6]), 5, 8)
    assert full.dtype == bool and full.shape == (5, 8)
    # 2x2 -> 2x4 along x: samples at -0.25, 0.25, 0.75, 1.25 of each row, clipped to [0, 1]
    # row 0 [0, 1] -> [0, 0.25, 0.75, 0.75]; row 1 [0.5, 0.25] -> [0.375, 0.4375, 0.3125, 0.1875] -> none >= 0.5
    expected = np.zeros((5, 8), bool)
    expected[1, 4:6] = True
    np.testing.assert_array_equal(full, expected)
    assert not paste_mask(box_mask, np.array([1, 2, 1, 6]), 5, 8).any()
    assert paste_mask(box_mask, np.array([1, 2, 3, 6]), 5, 8, threshold=0.3).sum() == 5
